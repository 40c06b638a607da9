"""The results page put together and written: ``report.html`` and ``REPORT.md`` with the same
content, ``results.md`` (the leaderboard for docs/results.md), ``report.csv`` (every metric row) and
``summary.csv`` (one column per metric), with the figures the page shows copied beside it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from noisegame_cli.report.cells import Figure, Ref
from noisegame_cli.report.collect import collect_runs, find_figures, run_records
from noisegame_cli.report.html import page_html
from noisegame_cli.report.leaderboard import Leaderboard, leaderboard
from noisegame_cli.report.markdown import page_markdown, results_fragment
from noisegame_cli.report.recipes import ADDED_COLUMNS, annotate, describe_runs
from noisegame_cli.report.tables import SectionContent, build_sections


@dataclass(frozen=True)
class Page:
    title: str
    summary: list[str]
    leaderboard: Leaderboard
    sections: list[SectionContent]
    unfinished: pd.DataFrame  # command, run, status, reason of the runs left out


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


def results_page(runs_dir: str | os.PathLike) -> tuple[Page, pd.DataFrame, pd.DataFrame]:
    """The page's content from the runs under ``runs_dir`` (figures still at their runs), with
    every run's status and all metric rows."""
    runs, metrics, cards = collect_runs(runs_dir)
    configs, seeds = run_records(runs)
    described = describe_runs(runs, configs, seeds, runs_dir)
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
