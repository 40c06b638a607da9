"""Collect run directories into a results page (``report.html`` and ``REPORT.md`` with the same
content), a Markdown fragment for docs/results.md (``results.md``) and the metric tables as CSV.

Only completed runs feed the tables; failed, interrupted and damaged ones are listed with their
reason. What the page shows is computed in ``report_tables`` (leaderboard, seeds, sections) and
drawn in ``report_html``; this module reads the run directories and writes the files.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from noisegame_cli.errors import UserError
from noisegame_cli.report_html import link, page_html
from noisegame_cli.report_tables import (
    ADDED_COLUMNS,
    CARD_FILE,
    Figure,
    Leaderboard,
    PageTable,
    Ref,
    SectionContent,
    Stat,
    annotate,
    build_sections,
    describe_runs,
    leaderboard,
)
from noisegame_cli.runs import METRICS_FILE, METRIC_COLUMNS, STATUS_FILE, metrics_frame, read_status

RUN_COLUMNS = ("run_id", "command", "status", "path", "reason")


def find_runs(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Every run directory under ``runs_dir`` (found by its config.json) with its status."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UserError(f"no runs folder at {root}")
    rows = [
        {"run_id": config.parent.name, "command": config.parent.parent.name, "status": read_status(config.parent),
         "path": str(config.parent), "reason": str(_read_json(config.parent / STATUS_FILE).get("error", ""))}
        for config in sorted(root.rglob("config.json"))
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def read_run_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A completed run's metric rows, or a ``DamagedRun`` saying why they cannot be used."""
    path = Path(run_dir) / METRICS_FILE
    for record in ("config.json", "env.json"):  # what the run was and how to reproduce it
        try:
            json.loads((Path(run_dir) / record).read_text())
        except (OSError, ValueError) as error:
            raise DamagedRun(f"{record} unreadable ({type(error).__name__})") from None
    if not path.is_file():
        raise DamagedRun("no metrics.csv")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DamagedRun(f"metrics.csv unreadable ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    missing = [column for column in METRIC_COLUMNS if column not in frame]
    if missing:
        raise DamagedRun(f"metrics.csv lacks the column(s) {', '.join(missing)}")
    if not pd.api.types.is_numeric_dtype(frame["value"]):
        raise DamagedRun("metrics.csv has non-numeric values")
    return frame


class DamagedRun(Exception):
    """A run directory whose records cannot be read; the report lists it with this reason."""


def collect_runs(runs_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run under ``runs_dir`` (status ``damaged`` with a reason where its records are unreadable)
    and the metric rows of the completed ones, in one long frame."""
    runs = find_runs(runs_dir)
    if runs.empty:
        raise UserError(f"no runs under {runs_dir} (no run directory with a config.json)")
    frames = []
    for index, run in runs.iterrows():
        if run["status"] != "completed":
            continue
        try:
            card = read_card(run["path"]) if run["command"] == "benchmark" else None
            if card is None or (Path(run["path"]) / METRICS_FILE).is_file():
                frames.append(read_run_metrics(run["path"]))
        except DamagedRun as damage:
            runs.loc[index, ["status", "reason"]] = ["damaged", str(damage)]
    metrics = metrics_frame(pd.concat(frames, ignore_index=True).to_dict("records")) if frames else pd.DataFrame(columns=list(METRIC_COLUMNS))
    return runs, metrics


def summary_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run and measurement context, one column per metric (the readable view)."""
    if metrics.empty:
        return metrics
    context = [c for c in metrics.columns if c not in ("metric", "value") and metrics[c].notna().any()]
    return _wide(metrics, context)


def _wide(rows: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """One row per observed combination of ``index`` (missing values included), one column per metric."""
    clashing = rows["metric"].isin(index)  # a metric named like a context column (``images`` beside an ``images`` column)
    rows = rows.assign(metric=rows["metric"].where(~clashing, rows["metric"] + " (metric)"))
    grouped = rows.groupby([*index, "metric"], dropna=False, sort=False)["value"].first()
    return grouped.unstack("metric").reset_index()


# --- the results page -------------------------------------------------------------------------


def read_card(run_dir: str | os.PathLike) -> dict | None:
    """A benchmark run's ``card.json`` (None where there is none), or a ``DamagedRun``."""
    path = Path(run_dir) / CARD_FILE
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DamagedRun(f"card.json unreadable ({type(error).__name__})") from None
    if not isinstance(card, dict):
        raise DamagedRun("card.json is not an object")
    return card


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def run_records(runs: pd.DataFrame) -> tuple[dict[str, dict], dict[str, Any]]:
    """Each completed run's config and seed (the config's, else env.json's)."""
    configs, seeds = {}, {}
    for run in runs[runs["status"] == "completed"].itertuples():
        configs[run.path] = _read_json(Path(run.path) / "config.json")
        seeds[run.path] = configs[run.path].get("seed", _read_json(Path(run.path) / "env.json").get("seed"))
    return configs, seeds


def find_figures(runs: pd.DataFrame) -> dict[str, list[Path]]:
    """The PNGs of each completed run."""
    return {run.path: sorted(Path(run.path).glob("*.png")) for run in runs[runs["status"] == "completed"].itertuples()}


def collect_figures(figures: Sequence[Figure], figures_dir: Path) -> list[Figure]:
    """Copy the figures the page shows into ``figures_dir`` (``<command>--<run_id>--<name>.png``,
    replacing earlier copies); returns them pointing at their copies."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    for stale in figures_dir.glob("*--*--*.png"):
        stale.unlink()
    copied = []
    for figure in figures:
        run = Path(figure.run)
        copy = figures_dir / f"{run.parent.name}--{run.name}--{figure.source.name}"
        shutil.copyfile(figure.source, copy)
        copied.append(Figure(copy, figure.caption, figure.run))
    return copied


@dataclass(frozen=True)
class Page:
    title: str
    summary: list[str]
    leaderboard: Leaderboard
    sections: list[SectionContent]
    unfinished: pd.DataFrame  # command, run, status, reason of the runs left out


def results_page(runs_dir: str | os.PathLike) -> tuple[Page, pd.DataFrame, pd.DataFrame]:
    """The page's content from the runs under ``runs_dir`` (figures still at their runs), with
    every run's status and all metric rows."""
    runs, metrics = collect_runs(runs_dir)
    configs, seeds = run_records(runs)
    described = describe_runs(runs, configs, seeds, runs_dir)
    cards = {}
    for run in described[described["command"] == "benchmark"].itertuples():
        card = read_card(run.path)  # checked by collect_runs
        if card is not None:
            cards[run.path] = card
    rows = annotate(metrics, described) if not metrics.empty else pd.DataFrame(columns=[*metrics.columns, *ADDED_COLUMNS])
    board = leaderboard(rows, described, cards)
    sections = build_sections(rows, described, find_figures(runs), cards)
    completed = int((runs["status"] == "completed").sum())
    recipes = described["recipe"].nunique()
    seed_list = sorted({s for s in described["seed"] if s is not None}, key=str)
    summary = [f"{completed} completed runs of {recipes} recipes under {runs_dir}"
               + (f", seeds {', '.join(map(str, seed_list))}" if seed_list else "")
               + (f"; {len(runs) - completed} not included (listed at the end)" if completed < len(runs) else "") + "."]  # fmt: skip
    unfinished = runs[runs["status"] != "completed"]
    left_out = pd.DataFrame({"command": unfinished["command"], "run": [Ref(r, p) for r, p in zip(unfinished["run_id"], unfinished["path"])],
                             "status": unfinished["status"], "reason": unfinished["reason"]})  # fmt: skip
    return Page("noisegame results", summary, board, sections, left_out), runs, metrics


def build_report(runs_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                 docs_out: str | os.PathLike | None = None) -> dict[str, Any]:  # fmt: skip
    """Write report.csv, summary.csv, REPORT.md, report.html, results.md and figures/ into ``out_dir``
    (and the results.md fragment also to ``docs_out``, for docs/results.md).

    Returns the paths written (``markdown``, ``html``, ``csv``, ``summary_csv``, ``results``) and what
    they came from (``runs``: every run with its status; ``summary``: the wide table; ``page``)."""
    page, runs, metrics = results_page(runs_dir)
    out = Path(out_dir or runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out / "report.csv", index=False)
    summary = summary_table(metrics)
    summary.to_csv(out / "summary.csv", index=False)
    shown = [figure for content in page.sections for figure in content.figures]
    copies = iter(collect_figures(shown, out / "figures"))
    sections = [SectionContent(c.section, c.tables, [next(copies) for _ in c.figures]) for c in page.sections]
    page = Page(page.title, page.summary, page.leaderboard, sections, page.unfinished)
    (out / "REPORT.md").write_text(page_markdown(page, out))
    (out / "report.html").write_text(page_html(page, out))
    fragment = results_fragment(page, runs_dir)
    (out / "results.md").write_text(fragment)
    written = {"markdown": out / "REPORT.md", "html": out / "report.html", "csv": out / "report.csv",
               "summary_csv": out / "summary.csv", "results": out / "results.md", "runs": runs, "summary": summary, "page": page}  # fmt: skip
    if docs_out is not None:
        Path(docs_out).parent.mkdir(parents=True, exist_ok=True)
        Path(docs_out).write_text(fragment)
        written["docs"] = Path(docs_out)
    return written


# --- Markdown ---------------------------------------------------------------------------------


def _md_text(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_cell(cell, out: Path | None) -> str:
    if isinstance(cell, Stat):
        text = _md_text(cell.text())
        if out is not None and cell.runs:
            return f'[{text}]({link(cell.runs[0], out)} "{_md_text(cell.describe()).replace(chr(34), chr(39))}")'
        return text
    if isinstance(cell, Ref):
        return f"[{_md_text(cell.text)}]({link(cell.path, out)})" if out is not None and cell.path else _md_text(cell.text)
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return ""
    if isinstance(cell, float):
        return f"{cell:.4g}"
    return _md_text(str(cell))


def markdown_table(table: pd.DataFrame, out: Path | None = None, details: Mapping[str, str] | None = None) -> str:
    """A pipe table; ``Stat`` and ``Ref`` cells link to their runs (relative to ``out``) unless ``out`` is None."""
    details = details or {}
    names = [_md_text(c) + (f" ({_md_text(details[c])})" if c in details else "") for c in table.columns]
    header = "| " + " | ".join(names) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(_md_cell(v, out) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _md_page_table(table: PageTable, out: Path | None, level: str = "###") -> list[str]:
    parts = ["", f"{level} {table.title}"] if table.title else []
    if table.note:
        parts += ["", table.note]
    return parts + ["", markdown_table(table.frame, out, table.details)]


def _leaderboard_markdown(page: Page, out: Path | None) -> list[str]:
    board = page.leaderboard
    parts = []
    if board.table.frame.empty:
        parts += ["", "No model was trained or benchmarked in these runs."]
    else:
        note = board.table.note if out is not None else board.table.note.split(" Each number links")[0]  # no links in the docs
        parts += _md_page_table(PageTable("", board.table.frame, note, board.table.details), out)
    if board.references is not None:
        parts += _md_page_table(board.references, None)
    elif board.reference_note:
        parts += ["", board.reference_note]
    return parts


def page_markdown(page: Page, out: Path) -> str:
    """REPORT.md: the page's content, links relative to ``out`` (the colour scale is the HTML page's only)."""
    parts = [f"# {page.title}", "", *page.summary, "", "## Leaderboard", *_leaderboard_markdown(page, out)]
    for content in page.sections:
        parts += ["", f"## {content.section.title}"]
        if content.section.about:
            parts += ["", content.section.about]
        for table in content.tables:
            parts += _md_page_table(table, out)
        for figure in content.figures:
            parts += ["", f"![{figure.caption}]({link(figure.source, out)})", f"*{figure.caption}*"]
    if len(page.unfinished):
        parts += ["", "## Not included (failed, interrupted or damaged runs)", "", markdown_table(page.unfinished, out)]
    return "\n".join(parts) + "\n"


def results_fragment(page: Page, runs_dir: str | os.PathLike) -> str:
    """The leaderboard as a Markdown fragment for docs/results.md (no links: the runs are not in the docs)."""
    parts = [f"<!-- generated by `noisegame report {Path(runs_dir).as_posix()}`; edit the runs, not this file -->",
             "", *page.summary, *_leaderboard_markdown(page, None)]  # fmt: skip
    return "\n".join(parts) + "\n"
