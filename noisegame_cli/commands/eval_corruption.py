"""``noisegame eval-corruption``: accuracy of a saved model under the common corruptions.

- a corrupted dataset (``--dataset cifar10-c --data-dir DIR``, ``cifar100-c``, ``tiny-imagenet-c``,
  ``imagenet-c``, ``mnist-c``, or a folder written by ``noisegame corrupt``): its files, read one
  corruption and severity at a time;
- any other dataset (``digits``, ``cifar10``, ``folder:PATH``, ...): its test split corrupted by the
  engine, seeded by ``--seed``; ``--write-dir DIR`` first writes them as ``noisegame corrupt`` does (same
  layouts, resumable, settings recorded) and then evaluates the copy it wrote.

Writes accuracy / error / loss per corruption x severity, the clean accuracy, the mean accuracy over
the 15 x 5 protocol and over the 19 corruptions at severity 5, with ``--baseline RUN_DIR`` the CE per
corruption, mCE and relative mCE (without ``--baseline``, CE and mCE against the published baseline of the
images' parameter set where there is one: AlexNet's errors for ImageNet-C, as papers report them); and ``corruption_heatmap.png`` and ``corruption_samples.png``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import keras
import pandas as pd

from noisegame_cli import checks, plots, sections
from noisegame_cli.commands.common import experiment, load_data, load_model, prepare
from noisegame_cli.config import (
    CorruptionEvalOptions,
    DataOptions,
    DevicesOptions,
    RunOptions,
    SavedModelOptions,
    check_corruption_set,
    check_model_source,
    redefault,
    require,
    setting,
)
from noisegame_cli.corruptions import names
from noisegame_cli.data import check_dataset, copies, load_corrupted_dataset, load_dataset
from noisegame_cli.evaluation import corruption as measure
from noisegame_cli.evaluation.clean import clean_measurement
from noisegame_cli.options import config_command


@dataclasses.dataclass(frozen=True)
class Config(SavedModelOptions, DevicesOptions, DataOptions, RunOptions):
    command = "eval-corruption"
    section = sections.CORRUPTIONS
    evaluates = "model_path"
    smoke_preset: ClassVar[Mapping[str, Any]] = {"limit": 64, "corruptions": ("gaussian_noise", "defocus_blur", "jpeg_compression")}

    model_path: str | None = setting(None, "Saved model to evaluate (model.keras, .h5, SavedModel, its run directory, or "
                                     "app:NAME[:WEIGHTS]; required).", check=check_model_source, show_default=False)
    corruptions: tuple[str, ...] = setting(("all",), f"Which corruptions: {names.LIST_HELP}; all also means every file present.",
                                           check=checks.not_empty)
    severities: tuple[int, ...] = setting(names.SEVERITIES, "Severities in 1..5.", check=names.severities_check)
    baseline: str | None = setting(None, "A previous eval-corruption or benchmark run of the baseline model, for mCE [default: the "
                                   "published baseline of the parameter set where there is one: AlexNet's errors for ImageNet-C].",
                                   check=checks.existing_dir, show_default=False)
    write_dir: str | None = setting(None, "First write the generated sets here as noisegame corrupt does (npy for arrays, JPEG folders "
                                    "for image files), then evaluate that copy.",
                                    check=checks.writable_dir, show_default=False)
    frost_dir: str | None = setting(None, "Folder of frost photographs to use instead of the synthetic frost texture.",
                                    check=checks.existing_dir, show_default=False)
    parameters: str | None = redefault(CorruptionEvalOptions, "parameters", None)
    clean_data_dir: str | None = setting(None, "Where the clean dataset is, for the clean accuracy of an official corrupted set "
                                         "[default: the Keras cache].", check=checks.existing_dir, show_default=False)

    def validate(self) -> None:
        require(self.model_path is not None, "eval-corruption needs --model-path (a saved model to evaluate)")
        if check_dataset(self.dataset).kind == "images":  # a corrupted dataset's names are checked against its files
            names.check_names(self.corruptions)
            check_corruption_set(self.corruptions, self.parameters)
        if self.parameters is not None:
            require(check_dataset(self.dataset).kind == "images", f"--parameters sets how corruptions are generated; {self.dataset} holds "
                    "corrupted files already")
        if self.write_dir is not None:
            require(check_dataset(self.dataset).kind == "images", "--write-dir saves sets generated on the fly; a corrupted dataset is files already")

    @property
    def default_run_name(self) -> str:
        return "eval"


def _clean_split(dataset, config: Config):
    """The clean test split of a corrupted dataset: its own, else its source dataset's when on disk."""
    if dataset.clean is not None:
        return dataset.clean.head(config.limit)
    try:
        return load_dataset(dataset.clean_source, config.clean_data_dir, limit=config.limit).split("test")
    except Exception as error:  # a missing clean set only costs the clean accuracy
        print(f"no clean accuracy: {str(error).splitlines()[0]}", flush=True)
        return None


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What an evaluation runs over: the model, the corrupted sets, the clean split (None where
    unknown), the dataset's label for the records, and for --write-dir the step that writes the copy
    and returns it as the sets to evaluate."""

    model: keras.Model
    sets: measure.CorruptedSets
    clean: Any
    label: str
    write_copy: Callable[[], measure.CorruptedSets] | None = None
    data: Any = None  # the images dataset the sets are generated from (None for corrupted files)


def prepare_evaluation(config: Config, strategy) -> Evaluation:
    """The model (loaded under ``strategy``'s scope: mirrored, its batches are dealt to the replicas)
    and what it is evaluated on."""
    if check_dataset(config.dataset).kind == "corrupted":
        dataset = load_corrupted_dataset(config.dataset, config.data_dir, image_size=config.image_size, channels=config.channels,
                                         labels=config.labels, strict=config.strict)  # fmt: skip
        with strategy.scope():
            model = load_model(config, dataset, config.model_path)
        sets = measure.choose_sets(config.corruptions, config.severities, files=(dataset, config.data_dir), count=config.limit)
        clean = _clean_split(dataset, config) if dataset.clean is not None or dataset.clean_source else None
        # Named as the user knows it: the folder (digits-C, CIFAR-10-C), not the loader's name.
        return Evaluation(model, sets, clean, Path(config.data_dir).name)
    data = load_data(config)
    with strategy.scope():
        model = load_model(config, data, config.model_path)
    test = data.split("test")
    sets = measure.choose_sets(config.corruptions, config.severities, test=test, seed=config.seed, parameters=config.parameters,
                               frost_dir=config.frost_dir)  # fmt: skip
    write = None
    if config.write_dir is not None:
        layout = copies.start_copy(test, config.write_dir, config.severities, dataset=config.dataset, split_name="test", layout="auto",
                                   seed=config.seed, parameters=config.parameters)  # fmt: skip
        write = functools.partial(write_then_read_copy, config, data, test, sets, layout)
    return Evaluation(model, sets, test, data.name, write_copy=write, data=data)


def write_then_read_copy(config: Config, data, test, sets: measure.CorruptedSets, layout: str) -> measure.CorruptedSets:
    """``--write-dir``: the copy ``noisegame corrupt`` would write (finished parts kept), read back."""
    written = copies.write_copy(test, data.class_names, config.write_dir, sets.corruptions, config.severities, layout=layout, seed=config.seed,
                                parameters=config.parameters, frost_dir=config.frost_dir, batch_size=config.batch_size)  # fmt: skip
    kept = sum(row["kept"] for row in written)
    if kept:
        print(f"kept {kept} finished corruption x severity sets already in {config.write_dir}", flush=True)
    return measure.choose_sets(sets.corruptions, sets.severities, files=(copies.read_copy(config.write_dir, layout, data.num_classes), config.write_dir))


def run(config: Config) -> dict:
    """Evaluate a saved model on every selected corruption x severity; returns the aggregates."""
    evaluation = prepare_evaluation(config, prepare(config))
    model, sets, clean = evaluation.model, evaluation.sets, evaluation.clean
    baseline = measure.choose_baseline(config.baseline, sets.source.parameters)
    with experiment(config, dataset=evaluation.label, model=model.name, data=evaluation.data) as run:
        if evaluation.write_copy is not None:
            print(f"writing the corrupted sets to {config.write_dir}, then evaluating them as written", flush=True)
            sets = evaluation.write_copy()
        rows, clean_error = [], None
        if clean is not None:
            result = clean_measurement(model, clean, config.batch_size)
            clean_error = result["error"]
            rows += [{"split": "test", "condition": "clean", "metric": m, "value": v} for m, v in result.items()]
        rows += measure.evaluate_corruptions(model, sets.source, sets.corruptions, sets.severities, clean_error=clean_error, baseline=baseline,
                                             batch_size=config.batch_size)  # fmt: skip
        frame = run.write_metrics(rows, results=config.results)
        title = f"{model.name} on {evaluation.label}"
        accuracy = frame.query("metric == 'accuracy'").dropna(subset=["corruption"])
        table = accuracy.pivot_table(index="corruption", columns="severity", values="value").reindex(list(dict.fromkeys(accuracy["corruption"])))
        plots.heatmap(table, run.path("corruption_heatmap.png"), title=f"{title}: accuracy", xlabel="severity")
        draw_samples(sets.source, clean, sets.corruptions, sets.severities, run.path("corruption_samples.png"), title)
    return {"run_dir": str(run.directory), **summary_values(frame)}


def draw_samples(source, clean, corruptions, severities, path, title: str) -> None:
    """One row per corruption: the clean image (when known), then the image at each severity."""
    samples = measure.sample_images(source, corruptions, severities)
    first = [] if clean is None else [clean.arrays(1)[0][0]]
    rows = {name: first + [samples[(name, s)] for s in severities] for name in corruptions}
    header = (["clean"] if first else []) + [f"severity {s}" for s in severities]
    plots.image_grid(rows, path, titles=[header], title=title, cell=1.3)


def summary_values(frame: pd.DataFrame) -> dict:
    aggregates = frame[frame["corruption"].isna()] if "corruption" in frame else frame
    values = {}
    for _, row in aggregates.iterrows():
        key = f"clean_{row['metric']}" if row["condition"] == "clean" else row["metric"]
        values[key] = float(row["value"])
    return values


command = config_command(
    "eval-corruption", Config, run, "Accuracy under the 19 common corruptions at 5 severities (corrupted files, or generated on the fly)."
)
