"""Corruption robustness: accuracy per corruption x severity and the aggregates the field reports.

- ``mean_accuracy``: over everything evaluated;
- ``mean_accuracy_15x5``: over the 15 common corruptions x 5 severities (AugMix, RobustBench);
- ``mean_accuracy_19_sev5``: over all 19 corruptions at severity 5 (the Keras consistency-training example);
- ``mce`` / ``relative_mce`` (Hendrycks & Dietterich 2019): per common corruption, the error summed over
  severities divided by a baseline model's, averaged over corruptions; the relative version subtracts
  each model's clean error first. One baseline policy (``choose_baseline``): a previous run of the
  baseline model when given (CIFAR protocols), else the published baseline of the images' parameter
  set (ImageNet-C: AlexNet's errors), else no mCE. A corruption on which the baseline makes no error (or,
  for the relative version, no more error than on clean images) has no defined ratio: its CE is
  left empty and the mean is taken over the others (easy data such as digits has some).

Corrupted sets come from a corrupted dataset's files (CIFAR-10-C layout, ImageNet-C folders), or are
generated from a clean split by the corruption engine, seeded. ``evaluate_corruptions`` is the one
measurement that ``eval-corruption`` and ``benchmark`` both make.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from noisegame_cli.corruptions import corrupt, corrupt_dataset
from noisegame_cli.corruptions.names import (
    ALL_CORRUPTIONS,
    C_BAR_SETS,
    CORRUPTIONS,
    NOISE_CORRUPTIONS,
    SEVERITIES,
    check_names,
    expand,
    select,
)
from noisegame_cli.corruptions.parameters import PARAMETER_SETS, nearest_set
from noisegame_cli.data import CorruptedDataset
from noisegame_cli.data.counterparts import GENERATED, source_kind
from noisegame_cli.data.sources import Split, StreamSplit
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation.clean import PointOutcomes, point_outcomes
from noisegame_cli.evaluation.parts import PartStore
from noisegame_cli.evaluation.shards import SHARD_FILE
from noisegame_cli.runs import read_metrics

RESULT_METRICS = ("accuracy", "error", "loss")


# --- where corrupted images come from ------------------------------------------------------------


@dataclass(frozen=True)
class CorruptedSource:
    """Where the corrupted images of one (corruption, severity) come from, and the published parameter
    set they were made with (which decides the mCE baseline)."""

    load: Callable[..., Split]  # (corruption, severity, start=0, stop=None) -> images start..stop-1 (to the end for None)
    parameters: str


def _part(split, start: int, stop: int | None):
    return split if start == 0 and stop is None else split.part(start, len(split) if stop is None else stop)


def dataset_source(dataset: CorruptedDataset, limit: int | None = None) -> CorruptedSource:
    """A corrupted dataset's own files (memory-mapped arrays, or image files streamed)."""

    def load(corruption: str, severity: int, start: int = 0, stop: int | None = None):
        return _part(dataset.load(corruption, severity, limit), start, stop)

    return CorruptedSource(load, dataset.parameters)


def generated_source(test, seed: int, frost_dir: str | None = None, parameters: str | None = None) -> CorruptedSource:
    """The test split corrupted by the engine with the ``parameters`` set (None: for each corruption the
    set holding it whose native size is nearest the images'); the same seed gives the same images, and a
    part of the split (a shard's) the pixels it has in the whole split's. A split held in memory is
    corrupted as arrays; one read from files streams through the engine (as `noisegame corrupt` writes
    it), never held whole. The source's parameter set, which decides the mCE baseline, is the one its
    common corruptions come from."""

    def load(corruption: str, severity: int, start: int = 0, stop: int | None = None):
        part = _part(test, start, stop)
        settings = dict(seed=seed, parameters=parameters, frost_dir=frost_dir, offset=start)
        if part.in_memory:
            images, labels = part.arrays()
            return Split(corrupt(images, corruption, severity, **settings), labels)
        labels = np.asarray(part.labels, dtype=np.int64)  # known without decoding the images
        return StreamSplit(lambda: corrupt_dataset(part.examples(), corruption, severity, **settings),
                           lambda: tf.data.Dataset.from_tensor_slices(labels), part.image_shape, len(part))  # fmt: skip

    return CorruptedSource(load, parameters or nearest_set(*test.image_shape[:2]).name)


@dataclass(frozen=True)
class CorruptedSets:
    """What a corruption measurement runs over: where the images come from, the corruptions and
    severities, and ``kind``: "official files" (a release as published) or "generated" (by the engine,
    now or by ``noisegame corrupt``)."""

    source: CorruptedSource
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    kind: str

    def record(self) -> dict:
        """What a shard records of its sets, for the merge (``recorded``)."""
        return {"kind": self.kind, "parameters": self.source.parameters, "corruptions": list(self.corruptions), "severities": list(self.severities)}

    @classmethod
    def recorded(cls, record: Mapping) -> "CorruptedSets":
        """The sets a shard recorded, without their images: a merge reads the shards' saved outcomes only."""

        def unavailable(corruption: str, severity: int, *_):
            raise UserError(f"the shards hold no outcomes of {corruption} at severity {severity}")

        return cls(CorruptedSource(unavailable, record["parameters"]), tuple(record["corruptions"]), tuple(record["severities"]), record["kind"])


def choose_sets(
    corruptions: Sequence[str],
    severities: Sequence[int],
    *,
    files: tuple[CorruptedDataset, str | os.PathLike] | None = None,
    test=None,
    count: int | None = None,
    seed: int = 0,
    parameters: str | None = None,
    frost_dir: str | None = None,
) -> CorruptedSets:
    """The sets a corruption measurement evaluates, the first ``count`` images of each: a corrupted
    dataset's ``files`` (the dataset and its folder; groups of names shrink to what it holds, and
    severities to those present), else the ``test`` split corrupted by the engine with ``seed`` and
    the ``parameters`` set."""
    if files is not None:
        dataset, folder = files
        where = f"the corrupted images in {folder}"
        chosen = tuple(s for s in severities if s in dataset.severities)
        if not chosen:
            raise UserError(f"{where} have severities {', '.join(map(str, dataset.severities))} only")
        return CorruptedSets(dataset_source(dataset, count), select(corruptions, dataset.corruptions, where), chosen, source_kind(folder))
    source = generated_source(test.head(count), seed, frost_dir, parameters)
    return CorruptedSets(source, check_names(corruptions), tuple(severities), GENERATED)


# --- evaluating -----------------------------------------------------------------------------------


SetKey = tuple  # (role, corruption, severity)


def corruption_outcomes(
    models: Mapping[str | None, keras.Model],
    source: CorruptedSource,
    corruptions: Sequence[str],
    severities: Sequence[int],
    batch_size: int,
    *,
    start: int = 0,
    stop: int | None = None,
    store: PartStore | None = None,
) -> dict[SetKey, PointOutcomes]:
    """Per-point outcomes of each model (keyed by role; a single model may have role None) on images
    ``start .. stop - 1`` of every corruption x severity set (a shard's). Each set is made (or read) once and shared by the models; with a ``store``,
    a finished set is read back instead, and each new one saved as it finishes. A progress bar counts
    the sets."""
    outcomes: dict[SetKey, PointOutcomes] = {}
    names = expand(corruptions)
    progress = keras.utils.Progbar(len(names) * len(severities), unit_name="set")
    for corruption in names:
        for severity in severities:
            data = functools.cache(lambda c=corruption, s=severity: source.load(c, s, start, stop))
            for role, model in models.items():

                def compute(model=model, data=data) -> PointOutcomes:
                    return point_outcomes(model, data(), batch_size)

                part = f"{corruption}-{severity}" + ("" if role is None else f"-{role}")
                outcomes[(role, corruption, severity)] = compute() if store is None else store.outcomes(part, compute)
            progress.add(1, values=[(f"{role or 'model'} accuracy", outcomes[(role, corruption, severity)].metrics()["accuracy"])
                                    for role in models])  # fmt: skip
    return outcomes


def set_rows(outcomes: Mapping[SetKey, PointOutcomes], model_names: Mapping[str | None, str] | None = None) -> list[dict]:
    """Accuracy, error and loss rows per (role, corruption, severity); rows of a role carry it and its
    model's name (``model_names``), those of a single model (role None) neither."""
    rows = []
    for (role, corruption, severity), points in outcomes.items():
        identity = {} if role is None else {"role": role, "model": (model_names or {}).get(role, role)}
        rows += [{**identity, "corruption": corruption, "severity": severity, "n_examples": len(points), "condition": "corruption",
                  "metric": m, "value": v} for m, v in points.measurement().items()]  # fmt: skip
    return rows


def corruption_rows(
    models: Mapping[str, keras.Model],
    source: CorruptedSource,
    corruptions: Sequence[str],
    severities: Sequence[int],
    batch_size: int,
) -> list[dict]:
    """Accuracy, error and loss of each model (keyed by role) on every corruption x severity."""
    outcomes = corruption_outcomes(models, source, corruptions, severities, batch_size)
    return set_rows(outcomes, {role: model.name for role, model in models.items()})


def aggregate_rows(per_set: Sequence[Mapping]) -> list[dict]:
    """Per role: the mean accuracy over what was evaluated, and the published protocols where fully
    covered (15 x 5, 19 at severity 5, the noises, each C-bar benchmark's 10 x 5)."""
    frame = pd.DataFrame(per_set)
    keys = [key for key in ("role", "model") if key in frame]
    accuracy = frame[frame["metric"] == "accuracy"]
    groups = accuracy.groupby(keys, sort=False, dropna=False) if keys else [((), accuracy)]
    rows = []
    for values, group in groups:
        identity = {**dict(zip(keys, values if isinstance(values, tuple) else (values,))), "condition": "corruption"}
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
        for name, members in C_BAR_SETS.items():  # each C-bar benchmark's own average: its ten x 5 severities
            covered = group[group["corruption"].isin(members)]
            if len(covered) == len(members) * len(SEVERITIES):
                rows.append({**identity, "metric": f"mean_accuracy_{name.replace('-', '_')}", "value": float(covered["value"].mean())})
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
    rows = metrics[(metrics["metric"] == "error") & (metrics["condition"] == "corruption")]
    return rows.set_index(["corruption", rows["severity"].astype(int)])["value"]


def clean_error(metrics: pd.DataFrame) -> float | None:
    rows = metrics[(metrics["metric"] == "error") & (metrics["condition"] == "clean")]
    return float(rows["value"].iloc[0]) if len(rows) else None


@dataclass(frozen=True)
class Baseline:
    """The model mCE is measured against: its error per (corruption, severity) and, where known, its
    clean error (relative mCE needs it)."""

    name: str
    errors: pd.Series
    clean_error: float | None = None


def choose_baseline(run_dir: str | os.PathLike | None, parameters: str | None) -> Baseline | None:
    """The one baseline policy of mCE: the run given (a previous eval-corruption or benchmark run of
    the baseline model); else the published baseline of the images' parameter set, where one exists
    (ImageNet-C: AlexNet's errors, Hendrycks & Dietterich 2019), for generated and official files
    alike; else None."""
    if run_dir is not None:
        metrics = read_baseline(run_dir)
        return Baseline(str(run_dir), errors_by_set(metrics), clean_error(metrics))
    chosen = PARAMETER_SETS.get(parameters) if parameters is not None else None
    if chosen is None or chosen.baseline_errors is None:
        return None
    return Baseline(chosen.baseline, baseline_errors_from_means(chosen.baseline_errors))


def evaluate_corruptions(
    model: keras.Model,
    source: CorruptedSource,
    corruptions: Sequence[str],
    severities: Sequence[int],
    *,
    clean_error: float | None = None,
    baseline: Baseline | None = None,
    batch_size: int = 256,
    say: Callable[[str], None] = print,
    start: int = 0,
    stop: int | None = None,
    store: PartStore | None = None,
) -> list[dict]:
    """The corruption measurement of one model: accuracy, error and loss per corruption x severity,
    the aggregates (``aggregate_rows``), and CE per common corruption with mCE (and relative mCE where
    both clean errors are known) against ``baseline`` (see ``choose_baseline``). What could not be
    measured is said once through ``say``. ``start``, ``stop`` and ``store`` as ``corruption_outcomes``
    (with every set in the store, ``model`` is not needed: a merge of shards)."""
    per_set = set_rows(corruption_outcomes({None: model}, source, corruptions, severities, batch_size, start=start, stop=stop, store=store))
    rows = per_set + aggregate_rows(per_set)
    if not set(expand(corruptions)) & set(CORRUPTIONS):
        return rows
    if baseline is None:
        say(f"no mCE: no baseline run given (--baseline) and no published baseline for the {source.parameters} parameters")
        return rows
    ratios = mce_rows(pd.DataFrame(per_set), clean_error, baseline.errors, baseline.clean_error)
    undefined = undefined_ratios(ratios)
    if undefined:
        say(f"CE undefined for {', '.join(undefined)} (the baseline loses nothing there); mCE averages the others")
    if baseline.clean_error is None:
        say(f"mCE against {baseline.name}'s published errors (relative mCE needs --baseline: a run with its clean error)")
    return rows + [{**row, "baseline": baseline.name} for row in ratios]


def read_baseline(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The corruption and clean metric rows of a previous eval-corruption or benchmark run (without a
    benchmark's attack rows); UserError where there are no errors per corruption."""
    path = Path(run_dir) / "metrics.csv"
    try:
        metrics = read_metrics(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"--baseline {run_dir}: cannot read {path} ({type(error).__name__})") from None
    if "command" not in metrics or not metrics["command"].isin(("benchmark", "eval-corruption")).any() or "corruption" not in metrics:
        raise UserError(f"--baseline {run_dir}: not a benchmark or eval-corruption run with corruption results")
    if (Path(run_dir) / SHARD_FILE).is_file():
        raise UserError(f"--baseline {run_dir}: one shard of a benchmark; give the run that benchmark --merge made of its shards")
    metrics = metrics[metrics["condition"].isin(["clean", "corruption"])]
    if errors_by_set(metrics).empty:
        raise UserError(f"--baseline {run_dir}: no errors per corruption in {path}")
    return metrics


def baseline_errors_from_means(mean_errors: Mapping[str, float]) -> pd.Series:
    """Published per-corruption mean errors (over the 5 severities) as errors per set, for mCE."""
    index = pd.MultiIndex.from_tuples([(c, s) for c in mean_errors for s in SEVERITIES], names=["corruption", "severity"])
    return pd.Series([mean_errors[c] for c in mean_errors for _ in SEVERITIES], index=index)


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
        rows += [{"corruption": r["corruption"], "condition": "corruption", "metric": column, "value": float(r[column])} for _, r in table.iterrows()]
        if table[column].notna().any():
            rows.append({"condition": "corruption", "metric": mean_name, "value": float(table[column].mean())})  # over the defined ratios
    return rows


def undefined_ratios(rows: list[dict]) -> list[str]:
    """The corruptions whose CE or relative CE is undefined (the baseline lost nothing there)."""
    return sorted({row["corruption"] for row in rows if row["metric"] in ("ce", "relative_ce") and np.isnan(row["value"])})


def sample_images(source: CorruptedSource, corruptions: Sequence[str], severities: Sequence[int]) -> dict:
    """The first image under every corruption at every severity: {(corruption, severity): image}."""
    return {(c, s): source.load(c, s, 0, 1).arrays()[0][0] for c in expand(corruptions) for s in severities}
