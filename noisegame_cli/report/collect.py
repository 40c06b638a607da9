"""Reading a folder of run directories: each run with its status, the metric rows of the completed
ones, their configs, seeds, cards and pictures. A run whose records cannot be read is kept as
``damaged``, with the reason, instead of stopping the report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from noisegame_cli.errors import UserError
from noisegame_cli.runs import CARD_FILE, CONDITIONS, METRIC_COLUMNS, METRICS_FILE, STATUS_FILE, metrics_frame, read_metrics, read_status

RUN_COLUMNS = ("run_id", "command", "status", "path", "reason")


class DamagedRun(Exception):
    """A run directory whose records cannot be read; the report lists it with this reason."""


def find_runs(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Every run directory under ``runs_dir`` (found by its config.json) with its status."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UserError(f"no runs folder at {root}")
    rows = [
        {"run_id": config.parent.name, "command": config.parent.parent.name, "status": read_status(config.parent),
         "path": str(config.parent), "reason": str(read_json(config.parent / STATUS_FILE).get("error", ""))}
        for config in sorted(root.rglob("config.json"))
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def read_run_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A completed run's metric rows (each with its condition), or a ``DamagedRun`` saying why they cannot be used."""
    path = Path(run_dir) / METRICS_FILE
    for record in ("config.json", "env.json"):  # what the run was and how to reproduce it
        try:
            json.loads((Path(run_dir) / record).read_text())
        except (OSError, ValueError) as error:
            raise DamagedRun(f"{record} unreadable ({type(error).__name__})") from None
    if not path.is_file():
        raise DamagedRun("no metrics.csv")
    try:
        frame = read_metrics(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DamagedRun(f"metrics.csv unreadable ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    missing = [column for column in METRIC_COLUMNS if column not in frame]
    if missing:
        raise DamagedRun(f"metrics.csv lacks the column(s) {', '.join(missing)}")
    if not pd.api.types.is_numeric_dtype(frame["value"]):
        raise DamagedRun("metrics.csv has non-numeric values")
    unknown = sorted(set(frame["condition"]) - set(CONDITIONS))
    if unknown:
        raise DamagedRun(f"metrics.csv has unknown condition(s) {', '.join(map(str, unknown))}")
    return frame


def read_card(run_dir: str | os.PathLike) -> dict | None:
    """A run's ``card.json`` (None where there is none), or a ``DamagedRun``."""
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


def collect_runs(runs_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict]]:
    """Every run under ``runs_dir`` (status ``damaged`` with a reason where its records are unreadable),
    the metric rows of the completed ones in one long frame, and their cards by run directory."""
    runs = find_runs(runs_dir)
    if runs.empty:
        raise UserError(f"no runs under {runs_dir} (no run directory with a config.json)")
    frames, cards = [], {}
    for index, run in runs.iterrows():
        if run["status"] != "completed":
            continue
        try:
            card = read_card(run["path"])
            if card is None or (Path(run["path"]) / METRICS_FILE).is_file():  # a card may stand for the metric rows
                frames.append(read_run_metrics(run["path"]))
        except DamagedRun as damage:
            runs.loc[index, ["status", "reason"]] = ["damaged", str(damage)]
            continue
        if card is not None:
            cards[run["path"]] = card
    metrics = metrics_frame(pd.concat(frames, ignore_index=True).to_dict("records")) if frames else pd.DataFrame(columns=list(METRIC_COLUMNS))
    return runs, metrics, cards


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; empty where the file is missing or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def run_records(runs: pd.DataFrame) -> tuple[dict[str, dict], dict[str, Any]]:
    """Each completed run's config and seed (the config's, else env.json's)."""
    configs, seeds = {}, {}
    for run in runs[runs["status"] == "completed"].itertuples():
        configs[run.path] = read_json(Path(run.path) / "config.json")
        seeds[run.path] = configs[run.path].get("seed", read_json(Path(run.path) / "env.json").get("seed"))
    return configs, seeds


def find_figures(runs: pd.DataFrame) -> dict[str, list[Path]]:
    """The PNGs of each completed run."""
    return {run.path: sorted(Path(run.path).glob("*.png")) for run in runs[runs["status"] == "completed"].itertuples()}
