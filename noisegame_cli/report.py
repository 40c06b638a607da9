"""Collect the ``metrics.csv`` of every run under a folder into one table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from noisegame_cli.errors import UserError
from noisegame_cli.runs import METRICS_FILE, METRIC_COLUMNS, metrics_frame, read_status

RUN_COLUMNS = ("run_id", "command", "status", "path")


def find_runs(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Every run directory under ``runs_dir`` (found by its config.json) with its status."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UserError(f"no runs folder at {root}")
    rows = [
        {"run_id": config.parent.name, "command": config.parent.parent.name, "status": read_status(config.parent), "path": str(config.parent)}
        for config in sorted(root.rglob("config.json"))
    ]
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def collect_metrics(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """The metric rows of every completed run under ``runs_dir``, in one long frame."""
    runs = find_runs(runs_dir)
    frames = [
        pd.read_csv(Path(path) / METRICS_FILE)
        for path, status in zip(runs["path"], runs["status"])
        if status == "completed" and (Path(path) / METRICS_FILE).is_file()
    ]
    if not frames:
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    return metrics_frame(pd.concat(frames, ignore_index=True).to_dict("records"))


def summary_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run and measurement context, one column per metric (the readable view)."""
    if metrics.empty:
        return metrics
    context = [c for c in metrics.columns if c not in ("metric", "value") and metrics[c].notna().any()]
    table = metrics.pivot_table(index=context, columns="metric", values="value", aggfunc="first", dropna=False)
    return table.dropna(how="all").reset_index()
