"""Run directories: where every command records what it did and what it measured.

A run directory is ``<runs_dir>/<command>/<YYYYmmdd-HHMMSS>-<name>/`` and holds

- ``config.json``: the resolved configuration;
- ``env.json``: package versions, git commit, seed, devices, command line;
- ``status.json``: ``running`` while the command works, then ``completed`` or ``failed``
  (with the error), so an interrupted or failed run never passes as a result;
- ``metrics.csv``: long format, one measurement per row (``METRIC_COLUMNS`` first, ``condition``
  among them, then the extra columns a command needs, empty where unused);
- ``history.csv``, ``model.keras`` and ``*.png`` where the command trains or draws.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import pandas as pd

METRIC_COLUMNS = ("run_id", "command", "dataset", "model", "metric", "value", "condition")
# What a metric row measured (its ``condition``; docs/runs.md says which commands write each).
CONDITIONS = (
    "clean",  # the unmodified test images
    "corruption",  # a corruption x severity set, or an aggregate over such sets (mean accuracy, CE, mCE)
    "attack",  # adversarial images at a budget above 0 (FGSM, PGD, AutoAttack)
    "noise",  # Gaussian or learned (adversarial) noise added to the images; a denoiser's noisy inputs
    "view",  # a transformed view of the images: low- or high-pass parts and their counts
    "style",  # the losses of a style transfer
    "copy",  # a corrupted copy written to disk (images and seconds per set)
    "shift",  # a natural distribution shift: another test set of the same classes
)



# Extra columns in the order they appear when a command uses them; any others follow, sorted.
EXTRA_COLUMNS = (
    "split",
    "attack",
    "norm",
    "corruption",
    "severity",
    "shift",
    "epsilon",
    "radius",
    "part",
    "rho",
    "sigma",
    "extractor",
    "source",
)
INTEGER_COLUMNS = ("severity",)
RECORDED_PACKAGES = (
    "noisegame",
    "tensorflow",
    "keras",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "scikit-image",
    "matplotlib",
    "click",
    "pyyaml",
    "pillow",
    "filelock",
)
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.csv"
CARD_FILE = "card.json"  # a benchmark's robustness card
RUN_STAMP_FORMAT = "%Y%m%d-%H%M%S"  # a run directory's name starts with its time, then its name
RUN_STAMP = re.compile(r"^\d{8}-\d{6}-")


def run_name_of(run_id: str) -> str:
    """A run directory's name without its time stamp (the name it was given), or the whole name."""
    return RUN_STAMP.sub("", run_id) or run_id


@dataclass(frozen=True)
class Run:
    """An open run directory and the identity stamped on each of its metric rows."""

    directory: Path
    command: str
    dataset: str
    model: str

    @property
    def run_id(self) -> str:
        return self.directory.name

    def path(self, filename: str) -> Path:
        return self.directory / filename

    def write_metrics(self, rows: Iterable[Mapping], results: str | os.PathLike | None = None) -> pd.DataFrame:
        """Write ``metrics.csv`` (replacing it atomically) and append the rows to ``results``.

        Each row needs ``metric`` and ``value``; ``run_id``, ``command``, ``dataset`` and ``model``
        default to the run's own and may be overridden (an evaluation of several models).
        """
        identity = {"run_id": self.run_id, "command": self.command, "dataset": self.dataset, "model": self.model}
        frame = metrics_frame([{**identity, **row} for row in rows])
        write_csv_atomically(frame, self.path(METRICS_FILE))
        if results:
            append_results(frame, Path(results))
        return frame

    def write_json(self, filename: str, payload: Mapping) -> None:
        write_text_atomically(self.path(filename), json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")

    def mark(self, status: str, error: str | None = None) -> None:
        payload = {"status": status, "time": _now().isoformat(timespec="seconds")}
        if error:
            payload["error"] = error
        self.write_json(STATUS_FILE, payload)


def metrics_frame(rows: list[Mapping]) -> pd.DataFrame:
    """Rows as a long-format frame: the fixed columns, then the known extras, then the rest. Every
    row must say what it measured (its ``condition``, one of ``CONDITIONS``)."""
    frame = pd.DataFrame(rows)
    for column in METRIC_COLUMNS:
        if column not in frame:
            raise ValueError(f"metric rows need a {column!r} column")
    unknown = sorted({str(condition) for condition in frame["condition"] if condition not in CONDITIONS})
    if unknown:
        raise ValueError(f"every metric row needs a condition, one of {', '.join(CONDITIONS)}; found {', '.join(unknown)}")
    extras = [c for c in EXTRA_COLUMNS if c in frame]
    others = sorted(c for c in frame.columns if c not in METRIC_COLUMNS and c not in EXTRA_COLUMNS)
    for column in INTEGER_COLUMNS:
        if column in frame:  # nullable integers: "3", not "3.0", beside the empty cells of other rows
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame[list(METRIC_COLUMNS) + extras + others]


def append_results(frame: pd.DataFrame, results: Path) -> None:
    """Append rows to a shared sweep table, widening its columns when a new command adds some.

    Any number of processes may append at once, on one machine or over a shared filesystem: the
    read-modify-write runs under an advisory lock (``<table>.lock``), and the new table replaces the
    old one atomically, so a reader never sees half a table and no writer's rows are lost."""
    from filelock import FileLock

    results.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(results) + ".lock"):
        if results.exists() and results.stat().st_size > 0:
            frame = metrics_frame(pd.concat([read_metrics(results), frame], ignore_index=True).to_dict("records"))
        write_csv_atomically(frame, results)


def read_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """A ``metrics.csv`` (or ``--results`` table) as written; rows from before the ``condition`` column
    get theirs from :func:`derived_condition`. Every reader of metric rows goes through here."""
    frame = pd.read_csv(path)
    if "condition" not in frame:
        frame["condition"] = None
    unknown = frame["condition"].isna()
    if unknown.any():
        frame["condition"] = frame["condition"].astype(object)
        frame.loc[unknown, "condition"] = [derived_condition(row) for row in frame[unknown].to_dict("records")]
    return frame


# Commands of the format before the condition column whose every row measured one condition.
WHOLE_RUN_CONDITIONS = {"style-transfer": "style", "corrupt": "copy", "denoise-train": "noise"}
CORRUPTION_AGGREGATES = ("mean_accuracy", "mean_accuracy_15x5", "mean_accuracy_19_sev5", "mean_accuracy_noise", "mce", "relative_mce")


def derived_condition(row: Mapping) -> str:
    """What a row written before the ``condition`` column measured, from its command and the columns it
    fills: the one place that reads a condition from blank columns."""

    def given(column: str) -> bool:
        value = row.get(column)
        return value is not None and not pd.isna(value) and value != ""

    if row.get("command") in WHOLE_RUN_CONDITIONS:
        return WHOLE_RUN_CONDITIONS[row["command"]]
    if given("corruption") or given("severity") or row.get("metric") in CORRUPTION_AGGREGATES:
        return "corruption"
    if given("inputs"):  # denoise eval: the classifier on clean or on noisy images
        return "clean" if row["inputs"] == "clean" else "noise"
    if given("sigma"):
        return "noise"
    if given("attack"):  # an attack at budget 0 leaves the images as they are
        return "attack" if given("epsilon") and float(row["epsilon"]) > 0 else "clean"
    if given("epsilon"):  # adv-noise ant: the generator's noise of that L2 size
        return "noise"
    if given("part"):
        return "clean" if row["part"] == "original" else "view"
    if given("radius"):  # freq-split eval's counts of images right from one part and wrong from the other
        return "view"
    return "clean"


def write_csv_atomically(frame: pd.DataFrame, path: Path) -> None:
    with _temporary_beside(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_text_atomically(path: Path, text: str) -> None:
    with _temporary_beside(path) as tmp:
        tmp.write_text(text)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with _temporary_beside(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A uniquely named file next to ``path`` that replaces it when the block succeeds (and is
    removed when it fails), so concurrent writers never share a temporary file."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_status(run_dir: Path) -> str:
    """``completed``, ``failed``, ``interrupted``, ``running`` (or killed), or ``unknown`` without a status file."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())["status"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def create_run_directory(runs_dir: str | os.PathLike, command: str, name: str) -> Path:
    parent = Path(runs_dir) / command
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{_now():{RUN_STAMP_FORMAT}}-{_safe_name(name)}"
    for attempt in range(1000):
        candidate = parent / (stem if attempt == 0 else f"{stem}-{attempt + 1}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run directory under {parent}")


@contextlib.contextmanager
def recorded_run(
    command: str,
    config: Mapping,
    *,
    runs_dir: str | os.PathLike,
    name: str,
    dataset: str,
    model: str,
    seed: int,
    deterministic: bool = True,
    existing: str | os.PathLike | None = None,
    data_record: Mapping | None = None,
) -> Iterator[Run]:
    """Open a run directory (or reopen ``existing`` to resume it), record config and environment (with
    ``data_record``, what the data loading found, under ``data``), and mark the outcome on exit."""
    directory = Path(existing) if existing else create_run_directory(runs_dir, command, name)
    run = Run(directory, command, dataset, model)
    run.mark("running")
    run.write_json("config.json", dict(config))
    run.write_json("env.json", {**environment_record(seed, deterministic), **({"data": dict(data_record)} if data_record else {})})
    try:
        yield run
    except KeyboardInterrupt:
        run.mark("interrupted")
        raise
    except BaseException as error:  # the directory must say it is not a result
        run.mark("failed", _one_line(f"{type(error).__name__}: {error}"))
        raise
    run.mark("completed")


def environment_record(seed: int, deterministic: bool = True) -> dict:
    """What is needed to reproduce a run: versions, commit, seed, op determinism, devices, command line."""
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "seed": seed,
        "deterministic_ops": deterministic,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "packages": versions,
        "git": git_state(Path(__file__).resolve().parent.parent),
        "devices": _devices(),
        "started": _now().isoformat(timespec="seconds"),
    }


def git_state(source_dir: Path) -> dict:
    """The commit of the source tree and whether it had uncommitted changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(source_dir), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _devices() -> list[str]:
    if "tensorflow" not in sys.modules:
        return []
    import tensorflow as tf

    return [device.name for device in tf.config.list_logical_devices()]


def _one_line(message: str, limit: int = 300) -> str:
    first = message.strip().splitlines()[0] if message.strip() else message
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    return cleaned or "run"


def _now() -> dt.datetime:
    return dt.datetime.now()
