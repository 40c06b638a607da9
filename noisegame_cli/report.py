"""Collect run directories into tables and a results page (``REPORT.md`` and ``report.html``).

Only completed runs feed the tables; failed and interrupted ones are listed as such. The tables
are views of the long metrics format selected by their context columns (clean rows, corruption
rows, epsilon rows, radius rows), so any command that records those columns shows up in them.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from noisegame_cli.errors import UserError
from noisegame_cli.runs import METRICS_FILE, METRIC_COLUMNS, metrics_frame, read_status

RUN_COLUMNS = ("run_id", "command", "status", "path", "reason")
CONTEXT_COLUMNS = ("corruption", "severity", "epsilon", "radius", "rho", "sigma")


def find_runs(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Every run directory under ``runs_dir`` (found by its config.json) with its status."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UserError(f"no runs folder at {root}")
    rows = [
        {"run_id": config.parent.name, "command": config.parent.parent.name, "status": read_status(config.parent),
         "path": str(config.parent), "reason": ""}
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


@dataclass(frozen=True)
class TableView:
    title: str
    build: Callable[[pd.DataFrame], pd.DataFrame]


def _column(metrics: pd.DataFrame, name: str) -> pd.Series:
    return metrics[name] if name in metrics else pd.Series(index=metrics.index, dtype=object)


def _without_context(metrics: pd.DataFrame) -> pd.Series:
    return pd.concat([_column(metrics, c).isna() for c in CONTEXT_COLUMNS], axis=1).all(axis=1)


def _label(metrics: pd.DataFrame) -> pd.Series:
    """A column label per row: the model and its run, e.g. ``small_cnn (20261123-1200-teacher)``,
    and the row's ``role`` where a run measures several models (a teacher beside its student)."""
    label = metrics["model"].astype(str) + " (" + metrics["run_id"].astype(str) + ")"
    if "role" in metrics:
        label = label + metrics["role"].map(lambda role: "" if pd.isna(role) else f" {role}")
    return label


def clean_accuracy(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = metrics[(metrics["metric"] == "accuracy") & _without_context(metrics)]
    if rows.empty:
        return rows
    index = ["command", "run_id", "model", "dataset"] + [
        c for c in ("role", "split", "attack", "part", "extractor") if c in rows and rows[c].notna().any()
    ]
    return _wide(rows, index)


def corruption_aggregates(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = metrics[(metrics["command"] == "eval-corruption") & _column(metrics, "corruption").isna()]
    if rows.empty:
        return rows
    return rows.pivot_table(index=["run_id", "model", "dataset"], columns="metric", values="value", aggfunc="first").reset_index()


def per_corruption(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = metrics[(metrics["metric"] == "accuracy") & _column(metrics, "corruption").notna()]
    if rows.empty:
        return rows
    rows = rows.assign(model_run=_label(rows))
    return rows.pivot_table(index="corruption", columns="model_run", values="value", aggfunc="mean").reset_index()


def _curve(metrics: pd.DataFrame, axis: str, series: tuple[str, ...], *, unless: str | None = None) -> pd.DataFrame:
    """Accuracy against ``axis``, one column per model, run and ``series`` values; rows that also
    vary ``unless`` belong to another table."""
    rows = metrics[(metrics["metric"] == "accuracy") & _column(metrics, axis).notna()]
    if unless is not None:
        rows = rows[_column(rows, unless).isna()]
    if rows.empty:
        return rows
    label = _label(rows)
    for extra in series:
        if extra in rows and rows[extra].notna().any():
            label = label + " " + rows[extra].fillna("").astype(str)
    return rows.assign(series=label).pivot_table(index=axis, columns="series", values="value", aggfunc="mean").reset_index()


TABLES = (
    TableView("Clean accuracy", clean_accuracy),
    TableView("Corruption benchmark: mean accuracy and mCE per model", corruption_aggregates),
    TableView("Accuracy per corruption (mean over the severities evaluated)", per_corruption),
    TableView("Accuracy vs epsilon", lambda m: _curve(m, "epsilon", ("attack",), unless="rho")),
    TableView("Accuracy vs radius", lambda m: _curve(m, "radius", ("part",))),
    TableView("Accuracy vs kernel smoothing rho", lambda m: _curve(m, "rho", ("attack",))),
)


def collect_figures(runs: pd.DataFrame, figures_dir: Path) -> list[tuple[str, str, Path]]:
    """Copy each completed run's PNGs into ``figures_dir``; returns (command, run_id, copy) triples."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    found = []
    for run in runs[runs["status"] == "completed"].itertuples():
        for png in sorted(Path(run.path).glob("*.png")):
            copy = figures_dir / f"{run.command}--{run.run_id}--{png.name}"
            shutil.copyfile(png, copy)
            found.append((run.command, run.run_id, copy))
    return found


def build_report(runs_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write report.csv, summary.csv, REPORT.md, report.html and figures/ into ``out_dir``.

    Returns the paths written (``markdown``, ``html``, ``csv``, ``summary_csv``) and the frames
    they came from (``runs``: every run with its status; ``summary``: the wide table)."""
    runs, metrics = collect_runs(runs_dir)
    out = Path(out_dir or runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out / "report.csv", index=False)
    summary = summary_table(metrics)
    summary.to_csv(out / "summary.csv", index=False)
    tables = [(view.title, view.build(metrics)) for view in TABLES] if not metrics.empty else []
    tables = [(title, table) for title, table in tables if not table.empty]
    figures = collect_figures(runs, out / "figures")
    (out / "REPORT.md").write_text(_markdown(runs, tables, figures, out))
    (out / "report.html").write_text(_html(runs, tables, figures, out))
    return {"markdown": out / "REPORT.md", "html": out / "report.html", "csv": out / "report.csv",
            "summary_csv": out / "summary.csv", "runs": runs, "summary": summary}


def _format(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4g}"
    return str(value)


def markdown_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(_format(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _unfinished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] != "completed"]


def _markdown(runs, tables, figures, out: Path) -> str:
    parts = ["# noisegame results", "", f"{(runs['status'] == 'completed').sum()} completed runs."]
    unfinished = _unfinished(runs)
    if len(unfinished):
        parts += ["", "## Runs not included (failed or interrupted)", "", markdown_table(unfinished[["command", "run_id", "status", "reason"]])]
    for title, table in tables:
        parts += ["", f"## {title}", "", markdown_table(table)]
    if figures:
        parts += ["", "## Figures"]
        for command, run_id, path in figures:
            parts += ["", f"**{command}** `{run_id}`: {path.stem.split('--')[-1]}", "", f"![{path.stem}]({path.relative_to(out).as_posix()})"]
    return "\n".join(parts) + "\n"


def _html(runs, tables, figures, out: Path) -> str:
    style = "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;margin:1em 0}" \
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%;border:1px solid #eee}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>noisegame results</title><style>{style}</style></head><body>",
             "<h1>noisegame results</h1>", f"<p>{(runs['status'] == 'completed').sum()} completed runs.</p>"]
    unfinished = _unfinished(runs)
    if len(unfinished):
        parts += ["<h2>Runs not included (failed or interrupted)</h2>", unfinished[["command", "run_id", "status", "reason"]].to_html(index=False)]
    for title, table in tables:
        parts += [f"<h2>{html.escape(title)}</h2>", table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")]
    if figures:
        parts.append("<h2>Figures</h2>")
        for command, run_id, path in figures:
            caption = html.escape(f"{command} {run_id}: {path.stem.split('--')[-1]}")
            parts.append(f"<figure><img src='{html.escape(path.relative_to(out).as_posix())}' alt='{caption}'><figcaption>{caption}</figcaption></figure>")
    parts += [f"<script>{_FIGURE_CHECK}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


# Once the page has loaded, count the figures that decoded and flag the ones that did not; a reader
# sees a missing picture named, and a headless browser check reads the counts from the body.
_FIGURE_CHECK = """window.addEventListener('load', function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
    else { images[i].insertAdjacentHTML('afterend', '<p><b>missing figure: ' + images[i].getAttribute('src') + '</b></p>'); }
  }
  document.body.setAttribute('data-figures-total', images.length);
  document.body.setAttribute('data-figures-loaded', loaded);
});"""
