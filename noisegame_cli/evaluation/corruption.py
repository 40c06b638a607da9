"""Corruption robustness: accuracy per corruption x severity and the aggregates the field reports.

- ``mean_accuracy``: over everything evaluated;
- ``mean_accuracy_15x5``: over the 15 common corruptions x 5 severities (AugMix, RobustBench);
- ``mean_accuracy_19_sev5``: over all 19 corruptions at severity 5 (the Keras consistency-training example);
- ``mce`` / ``relative_mce`` (Hendrycks & Dietterich 2019): per common corruption, the error summed over
  severities divided by a baseline model's, averaged over corruptions; the relative version subtracts
  each model's clean error first. The baseline is a previous run here (CIFAR protocols) or, for
  ImageNet-C, the published AlexNet errors. A corruption on which the baseline makes no error (or,
  for the relative version, no more error than on clean images) has no defined ratio: its CE is
  left empty and the mean is taken over the others (easy data such as digits has some).

Corrupted sets come from a corrupted dataset's files (CIFAR-10-C layout, ImageNet-C folders), or are
generated from a clean split by the corruption engine, seeded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from noisegame_cli.corruptions import (
    ALL_CORRUPTIONS,
    C_BAR_CORRUPTIONS,
    CIFAR10_C_BAR_CORRUPTIONS,
    CORRUPTIONS,
    IMAGENET_C_BAR_CORRUPTIONS,
    KNOWN_CORRUPTIONS,
    SEVERITIES,
    corrupt,
    corrupt_dataset,
)
from noisegame_cli.data import CorruptedDataset
from noisegame_cli.data.sources import Split, StreamSplit
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation.clean import evaluate

RESULT_METRICS = ("accuracy", "error", "loss")
NOISE_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")
# Names that stand for several corruptions wherever a list of corruptions is asked for.
CORRUPTION_GROUPS = {
    "noise": NOISE_CORRUPTIONS,
    "common": CORRUPTIONS,
    "all": ALL_CORRUPTIONS,
    # ---- C-bar: each set's ten (generate them with --parameters imagenet-c-bar / cifar10-c-bar), and all 15
    "imagenet-c-bar": IMAGENET_C_BAR_CORRUPTIONS,
    "cifar10-c-bar": CIFAR10_C_BAR_CORRUPTIONS,
    "c-bar": C_BAR_CORRUPTIONS,
    # ---- end of C-bar
}


def expand_corruptions(names: Iterable[str]) -> tuple[str, ...]:
    """The corruption names, with ``noise`` / ``common`` / ``all`` expanded, in order, each once."""
    expanded: list[str] = []
    for name in names:
        expanded += [n for n in CORRUPTION_GROUPS.get(name, (name,)) if n not in expanded]
    return tuple(expanded)


def check_corruptions(names: Sequence[str], flag: str = "--corruptions") -> None:
    """The one check of a list of corruption names (the groups included)."""
    for name in expand_corruptions(names):
        if name not in KNOWN_CORRUPTIONS:
            raise UserError(f"unknown corruption {name!r} in {flag}; choose from {', '.join(CORRUPTION_GROUPS)}, {', '.join(KNOWN_CORRUPTIONS)}")


def corruption_names_check(value, flag) -> None:
    """``check_corruptions`` in the form a config field's check takes."""
    if len(value) == 0:
        raise UserError(f"{flag} needs at least one name")
    check_corruptions(value, flag)


def severities_check(value, flag) -> None:
    if len(value) == 0:
        raise UserError(f"{flag} needs at least one severity")
    for severity in value:
        if severity not in SEVERITIES:
            raise UserError(f"{flag} must lie in 1..5, got {severity}")
    if len(set(value)) != len(value):
        raise UserError(f"{flag} lists a severity twice")


# --- where corrupted images come from ------------------------------------------------------------


@dataclass(frozen=True)
class CorruptedSource:
    """Where the corrupted images of one (corruption, severity) come from."""

    load: Callable[..., Split]  # (corruption, severity, count=None) -> the first `count` images (all for None)
    description: str


def dataset_source(dataset: CorruptedDataset, limit: int | None = None) -> CorruptedSource:
    """A corrupted dataset's own files (memory-mapped arrays, or image files streamed)."""

    def load(corruption: str, severity: int, count: int | None = None):
        return dataset.load(corruption, severity, limit).head(count)

    return CorruptedSource(load, f"the {dataset.name} files")


def generated_source(test, seed: int, frost_dir: str | None = None, parameters: str | None = None) -> CorruptedSource:
    """The test split corrupted by the engine; the same seed gives the same images. A split held in
    memory is corrupted as arrays; one read from files streams through the engine (as `noisegame
    corrupt` writes it), never held whole."""

    def load(corruption: str, severity: int, count: int | None = None):
        part = test.head(count)
        settings = dict(seed=seed, parameters=parameters, frost_dir=frost_dir)
        if part.in_memory:
            images, labels = part.arrays()
            return Split(corrupt(images, corruption, severity, **settings), labels)
        labels = np.asarray(part.labels, dtype=np.int64)  # known without decoding the images
        return StreamSplit(lambda: corrupt_dataset(part.examples(), corruption, severity, **settings),
                           lambda: tf.data.Dataset.from_tensor_slices(labels), part.image_shape, len(part))  # fmt: skip

    return CorruptedSource(load, "generated by the corruption engine")


# --- evaluating -----------------------------------------------------------------------------------


def corruption_rows(
    models: Mapping[str, keras.Model],
    source: CorruptedSource,
    corruptions: Sequence[str],
    severities: Sequence[int],
    batch_size: int,
) -> list[dict]:
    """Accuracy, error and loss of each model (keyed by role; a single model may have role None) on
    every corruption x severity.

    Each corrupted set is made (or read) once and shared by the models. A progress bar counts the sets.
    """
    rows = []
    names = expand_corruptions(corruptions)
    progress = keras.utils.Progbar(len(names) * len(severities), unit_name="set")
    latest: dict[str, float] = {}
    for corruption in names:
        for severity in severities:
            data = source.load(corruption, severity)
            for role, model in models.items():
                result = evaluate(model, data, batch_size)
                latest[role] = result["accuracy"]
                measured = {"accuracy": result["accuracy"], "error": 1.0 - result["accuracy"], "loss": result["loss"]}
                identity = {"model": model.name} if role is None else {"role": role, "model": model.name}
                rows += [{**identity, "corruption": corruption, "severity": severity, "metric": m, "value": v} for m, v in measured.items()]
            progress.add(1, values=[(f"{role or 'model'} accuracy", value) for role, value in latest.items()])
    return rows


def aggregate_rows(per_set: Sequence[Mapping]) -> list[dict]:
    """Per role: the mean accuracy over what was evaluated, and the two published protocols where fully covered."""
    frame = pd.DataFrame(per_set)
    keys = [key for key in ("role", "model") if key in frame]
    accuracy = frame[frame["metric"] == "accuracy"]
    groups = accuracy.groupby(keys, sort=False, dropna=False) if keys else [((), accuracy)]
    rows = []
    for values, group in groups:
        identity = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        rows.append({**identity, "metric": "mean_accuracy", "value": float(group["value"].mean())})
        common = group[group["corruption"].isin(CORRUPTIONS)]
        if len(common) == len(CORRUPTIONS) * len(SEVERITIES):
            rows.append({**identity, "metric": "mean_accuracy_15x5", "value": float(common["value"].mean())})
        strongest = group[group["severity"] == 5]
        if set(strongest["corruption"]) == set(ALL_CORRUPTIONS):
            rows.append({**identity, "metric": "mean_accuracy_19_sev5", "value": float(strongest["value"].mean())})
        noise = group[group["corruption"].isin(NOISE_CORRUPTIONS)]
        if set(noise["corruption"]) == set(NOISE_CORRUPTIONS):
            rows.append({**identity, "metric": "mean_accuracy_noise", "value": float(noise["value"].mean())})
    return rows


def generated_corruption_rows(models: Mapping[str, keras.Model], test, corruptions: Sequence[str], severities: Sequence[int],
                              batch_size: int, *, seed: int = 0, parameters: str | None = None) -> list[dict]:  # fmt: skip
    """Per-set and aggregate accuracy of each model on ``test`` corrupted by the engine (after training),
    with the ``parameters`` set's values (None: the set nearest the images' size)."""
    per_set = corruption_rows(models, generated_source(test, seed, parameters=parameters), corruptions, severities, batch_size)
    accuracy = [{**row, "split": "test"} for row in per_set if row["metric"] == "accuracy"]
    return accuracy + [{**row, "split": "test"} for row in aggregate_rows(per_set)]


# --- mCE ------------------------------------------------------------------------------------------


def errors_by_set(metrics: pd.DataFrame) -> pd.Series:
    """Error per (corruption, severity) from long metric rows."""
    rows = metrics[(metrics["metric"] == "error") & metrics["corruption"].notna()]
    return rows.set_index(["corruption", rows["severity"].astype(int)])["value"]


def clean_error(metrics: pd.DataFrame) -> float | None:
    rows = metrics[(metrics["metric"] == "error") & metrics["corruption"].isna()] if "corruption" in metrics else metrics[metrics["metric"] == "error"]
    return float(rows["value"].iloc[0]) if len(rows) else None


def read_baseline(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The corruption and clean metric rows of a previous eval-corruption or benchmark run (without a
    benchmark's attack rows); UserError where there are no errors per corruption."""
    path = Path(run_dir) / "metrics.csv"
    try:
        metrics = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"--baseline {run_dir}: cannot read {path} ({type(error).__name__})") from None
    if "command" not in metrics or not metrics["command"].isin(("benchmark", "eval-corruption")).any() or "corruption" not in metrics:
        raise UserError(f"--baseline {run_dir}: not a benchmark or eval-corruption run with corruption results")
    if "attack" in metrics:
        metrics = metrics[metrics["attack"].isna()]
    if errors_by_set(metrics).empty:
        raise UserError(f"--baseline {run_dir}: no errors per corruption in {path}")
    return metrics


def baseline_errors_from_means(mean_errors: Mapping[str, float]) -> pd.Series:
    """Published per-corruption mean errors (over the 5 severities) as errors per set, for mCE."""
    index = pd.MultiIndex.from_tuples([(c, s) for c in mean_errors for s in SEVERITIES], names=["corruption", "severity"])
    return pd.Series([mean_errors[c] for c in mean_errors for _ in SEVERITIES], index=index)


def published_baseline(parameters: str | None) -> tuple[str, pd.Series] | None:
    """The published baseline of a parameter set's benchmark (ImageNet-C: AlexNet's errors, Hendrycks &
    Dietterich 2019) as ``(model name, errors per set)``; None where none is published."""
    from noisegame_cli.corruptions import PARAMETER_SETS

    chosen = PARAMETER_SETS.get(parameters) if parameters is not None else None
    if chosen is None or chosen.baseline_errors is None:
        return None
    return chosen.baseline, baseline_errors_from_means(chosen.baseline_errors)


def corruption_errors(errors: pd.Series, baseline_errors: pd.Series, clean: float | None, baseline_clean: float | None) -> pd.DataFrame:
    """CE and relative CE per common corruption over the severities both evaluated."""
    rows = []
    for corruption in CORRUPTIONS:
        if corruption not in errors.index.get_level_values(0):
            continue
        mine = errors.loc[corruption]
        if corruption not in baseline_errors.index.get_level_values(0):
            raise UserError(f"the baseline has no {corruption} results; evaluate it on the same corruptions")
        theirs = baseline_errors.loc[corruption]
        shared = mine.index.intersection(theirs.index)
        if len(shared) < len(mine):
            raise UserError(f"the baseline lacks severities {sorted(set(mine.index) - set(shared))} of {corruption}")
        row = {"corruption": corruption, "ce": error_ratio(mine[shared].sum(), theirs[shared].sum())}
        if clean is not None and baseline_clean is not None:
            row["relative_ce"] = error_ratio((mine[shared] - clean).sum(), (theirs[shared] - baseline_clean).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def error_ratio(errors: float, baseline_errors: float) -> float:
    """errors / baseline_errors, NaN where the baseline's (summed) error is not positive: a ratio
    to a zero of a few test images would swamp every mean it enters."""
    return errors / baseline_errors if baseline_errors > 1e-9 else float("nan")


def mce_rows(per_set: pd.DataFrame, clean: float | None, baseline_errors: pd.Series, baseline_clean: float | None) -> list[dict]:
    """Rows for CE per corruption and the mCE (and relative mCE where both clean errors are known)."""
    table = corruption_errors(errors_by_set(per_set), baseline_errors, clean, baseline_clean)
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


def select_corruptions(requested: Sequence[str], available: Sequence[str], where: str) -> tuple[str, ...]:
    """The requested corruptions that ``available`` holds: groups (``all``, ``common``, ``noise``) shrink
    to what is there; a name asked for by itself must be there."""
    missing = [name for name in requested if name not in CORRUPTION_GROUPS and name not in available]
    if missing:
        raise UserError(f"{where} has no {', '.join(missing)} images; it has {', '.join(available)}")
    if "all" in requested:  # every corruption the files hold, the dataset's own names included (MNIST-C's shear, ...)
        return tuple(available)
    selected = tuple(name for name in expand_corruptions(requested) if name in available)
    if not selected:
        raise UserError(f"{where} holds none of the corruptions asked for ({', '.join(requested)})")
    return selected


def sample_images(source: CorruptedSource, corruptions: Sequence[str], severities: Sequence[int]) -> dict:
    """The first image under every corruption at every severity: {(corruption, severity): image}."""
    return {(c, s): source.load(c, s, 1).arrays()[0][0] for c in expand_corruptions(corruptions) for s in severities}
