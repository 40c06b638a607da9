"""Corruption-robustness evaluation: accuracy per corruption x severity and the aggregates the field reports.

- ``mean_accuracy_15x5``: mean accuracy over the 15 common corruptions x 5 severities (AugMix, RobustBench).
- ``mean_accuracy_19_sev5``: mean over all 19 corruptions at severity 5 (the Keras consistency-training example).
- ``mce`` / ``relative_mce`` (Hendrycks & Dietterich 2019, ImageNet-C): per common corruption, the error
  summed over severities divided by a baseline model's, averaged over corruptions; the relative
  version subtracts each model's clean error first. A corruption on which the baseline makes no
  error (or, for the relative version, no more error than on clean images) has no defined ratio:
  its CE is left empty and the mean is taken over the others (easy data such as digits has some).

Corrupted sets come either from CIFAR-10-C-layout files (memory-mapped, one severity block at a time)
or are generated on the fly from a test split with the corruption engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd

from noisegame_cli.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES, corrupt
from noisegame_cli.data import cifar10c
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError
from noisegame_cli.training.classifier import evaluate_classifier

RESULT_METRICS = ("accuracy", "error", "loss")


@dataclass(frozen=True)
class CorruptedSource:
    """Where the corrupted images of one (corruption, severity) come from."""

    load: Callable[..., Split]  # (corruption, severity, count=None) -> the first `count` images (all for None)
    description: str


def folder_source(data_dir: str | os.PathLike, num_classes: int | None, limit: int | None = None) -> CorruptedSource:
    """Official CIFAR-10-C-layout files, read memory-mapped."""

    def load(corruption: str, severity: int, count: int | None = None) -> Split:
        data = cifar10c.load_corrupted(data_dir, corruption, severity, num_classes=num_classes).head(limit)
        return data.head(count)

    return CorruptedSource(load, f"files in {data_dir}")


def generated_source(test: Split, seed: int, frost_dir: str | None = None) -> CorruptedSource:
    """The test split corrupted on the fly by the engine; the same seed gives the same images."""

    def load(corruption: str, severity: int, count: int | None = None) -> Split:
        clean = test.head(count)
        return Split(corrupt(clean.images, corruption, severity, seed=seed, frost_dir=frost_dir), clean.labels)

    return CorruptedSource(load, "generated on the fly")


def check_folder(data_dir: str | os.PathLike, corruptions: tuple[str, ...], num_classes: int | None) -> tuple[int, ...]:
    """Raise UserError unless every selected corruption file and the labels are readable and agree;
    returns the image shape."""
    shape = None
    for corruption in corruptions:
        images = cifar10c.load_corrupted(data_dir, corruption, 1, num_classes=num_classes).images
        if shape is not None and images.shape[1:] != shape:
            raise UserError(f"{cifar10c.corruption_file(data_dir, corruption)}: images of shape {list(images.shape[1:])}, others {list(shape)}")
        shape = images.shape[1:]
    return tuple(shape)


def evaluate_corruptions(
    model: keras.Model,
    source: CorruptedSource,
    corruptions: tuple[str, ...],
    severities: tuple[int, ...],
    batch_size: int,
    on_set: Callable[[str, int, Split], None] | None = None,
) -> pd.DataFrame:
    """Accuracy, error and loss for every corruption x severity, with a progress bar.

    ``on_set`` sees each corrupted set after it is evaluated (to save it, for example).
    Returns long rows: corruption, severity, metric, value.
    """
    rows = []
    progress = keras.utils.Progbar(len(corruptions) * len(severities), unit_name="set")
    for corruption in corruptions:
        for severity in severities:
            data = source.load(corruption, severity)
            result = evaluate_classifier(model, data.images, data.labels, batch_size)
            measured = {"accuracy": result["accuracy"], "error": 1.0 - result["accuracy"], "loss": result["loss"]}
            rows += [{"corruption": corruption, "severity": severity, "metric": m, "value": v} for m, v in measured.items()]
            if on_set is not None:
                on_set(corruption, severity, data)
            progress.add(1, values=[("accuracy", result["accuracy"])])
    return pd.DataFrame(rows)


def aggregate_rows(per_set: pd.DataFrame) -> list[dict]:
    """Mean accuracy over what was evaluated, and the two published protocols where fully covered."""
    accuracy = per_set[per_set["metric"] == "accuracy"]
    rows = [{"metric": "mean_accuracy", "value": float(accuracy["value"].mean())}]
    common = accuracy[accuracy["corruption"].isin(CORRUPTIONS)]
    if len(common) == len(CORRUPTIONS) * len(SEVERITIES):
        rows.append({"metric": "mean_accuracy_15x5", "value": float(common["value"].mean())})
    strongest = accuracy[accuracy["severity"] == 5]
    if set(strongest["corruption"]) == set(ALL_CORRUPTIONS):
        rows.append({"metric": "mean_accuracy_19_sev5", "value": float(strongest["value"].mean())})
    return rows


def errors_by_set(metrics: pd.DataFrame) -> pd.Series:
    """Error per (corruption, severity) from long metric rows."""
    rows = metrics[(metrics["metric"] == "error") & metrics["corruption"].notna()]
    return rows.set_index(["corruption", rows["severity"].astype(int)])["value"]


def clean_error(metrics: pd.DataFrame) -> float | None:
    rows = metrics[(metrics["metric"] == "error") & metrics["corruption"].isna()] if "corruption" in metrics else metrics[metrics["metric"] == "error"]
    return float(rows["value"].iloc[0]) if len(rows) else None


def read_baseline(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The metric rows of a previous eval-corruption run."""
    path = Path(run_dir) / "metrics.csv"
    try:
        metrics = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"--baseline {run_dir}: cannot read {path} ({type(error).__name__})") from None
    if "command" not in metrics or not (metrics["command"] == "eval-corruption").any() or "corruption" not in metrics:
        raise UserError(f"--baseline {run_dir}: not an eval-corruption run")
    return metrics


def corruption_errors(errors: pd.Series, baseline_errors: pd.Series, clean: float | None, baseline_clean: float | None) -> pd.DataFrame:
    """CE and relative CE per common corruption over the severities both runs evaluated."""
    rows = []
    for corruption in CORRUPTIONS:
        if corruption not in errors.index.get_level_values(0):
            continue
        mine = errors.loc[corruption]
        if corruption not in baseline_errors.index.get_level_values(0):
            raise UserError(f"the baseline run has no {corruption} results; evaluate it on the same corruptions")
        theirs = baseline_errors.loc[corruption]
        shared = mine.index.intersection(theirs.index)
        if len(shared) < len(mine):
            raise UserError(f"the baseline run lacks severities {sorted(set(mine.index) - set(shared))} of {corruption}")
        row = {"corruption": corruption, "ce": error_ratio(mine[shared].sum(), theirs[shared].sum())}
        if clean is not None and baseline_clean is not None:
            row["relative_ce"] = error_ratio((mine[shared] - clean).sum(), (theirs[shared] - baseline_clean).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def error_ratio(errors: float, baseline_errors: float) -> float:
    """errors / baseline_errors, NaN where the baseline's (summed) error is not positive: a ratio
    to a zero of a few test images would swamp every mean it enters."""
    return errors / baseline_errors if baseline_errors > 1e-9 else float("nan")


def mce_rows(per_set: pd.DataFrame, clean: float | None, baseline: pd.DataFrame) -> list[dict]:
    """Rows for CE per corruption and the mCE (and relative mCE where both clean errors are known)."""
    table = corruption_errors(errors_by_set(per_set), errors_by_set(baseline), clean, clean_error(baseline))
    if table.empty:
        raise UserError("mCE needs at least one of the 15 common corruptions")
    rows = []
    for column, mean_name in (("ce", "mce"), ("relative_ce", "relative_mce")):
        if column not in table:
            continue
        rows += [{"corruption": r["corruption"], "metric": column, "value": float(r[column])} for _, r in table.iterrows()]
        if table[column].notna().any():
            rows.append({"metric": mean_name, "value": float(table[column].mean())})  # over the defined ratios
    return rows


def undefined_ratios(rows: list[dict]) -> list[str]:
    """The corruptions whose CE or relative CE is undefined (the baseline lost nothing there)."""
    return sorted({row["corruption"] for row in rows if row["metric"] in ("ce", "relative_ce") and np.isnan(row["value"])})


def write_official_layout(write_dir: str | os.PathLike, corruption: str, blocks: list[np.ndarray], clean: Split) -> None:
    """Save one corruption's five severity blocks as CIFAR-10-C files, and once the labels and the
    clean images they were made from."""
    cifar10c.write_corruption_file(write_dir, corruption, blocks)
    if not (Path(write_dir) / cifar10c.LABELS_FILE).exists():
        cifar10c.write_labels_file(write_dir, clean.labels)
    if not (Path(write_dir) / cifar10c.CLEAN_FILE).exists():
        cifar10c.write_clean_file(write_dir, clean.images)


def sample_images(source: CorruptedSource, corruptions: tuple[str, ...], severities: tuple[int, ...]) -> dict:
    """The first image under every corruption at every severity: {(corruption, severity): image}."""
    return {(c, s): np.asarray(source.load(c, s, 1).images[0]) for c in corruptions for s in severities}
