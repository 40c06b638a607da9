"""``noisegame freq-split eval|train|smooth``: the high-frequency study of Wang et al. (CVPR 2020).

- ``eval --model-path M [--model-path M2 ...] --radii 4,8,12,16``: test accuracy on the original, low-pass
  L(r) and high-pass H(r) images, and how many images are right from H(r) but wrong from L(r) (and the
  reverse); several models in one table, for the training-heuristics comparison.
- ``train --radius r --part low|high [--shuffle-labels]``: train on L(r) or H(r) images with natural or
  shuffled labels, recording per epoch the training accuracy and the test accuracy on original, L(r)
  and H(r) images.
- ``smooth --model-path M --rho 0.1,0.25,0.5,1.0``: smooth the first-layer kernels with each rho and
  measure clean, FGSM and PGD accuracy; also draws the first-layer kernels of each model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import click
import keras
import numpy as np
import pandas as pd

from noisegame_cli import checks, frequency, plots, sections
from noisegame_cli.commands.common import experiment, load_data, load_models, prepare
from noisegame_cli.config import DataOptions, ModelOptions, RunOptions, SavedModelOptions, TrainingOptions, check_model_source, setting
from noisegame_cli.data.pipelines import eval_pipeline, train_pipeline
from noisegame_cli.evaluation.frequency import VIEWS, frequency_rows, smoothing_rows, view_accuracies, view_condition, view_transform
from noisegame_cli.models import build_model, model_label
from noisegame_cli.options import config_command, mode_group
from noisegame_cli.training.callbacks import EpochMetrics
from noisegame_cli.training.classifier import compile_classifier, fit_and_record

EXAMPLES_SHOWN = 6
MODEL_PATHS_HELP = "Saved model (model.keras, .h5, SavedModel, its run directory, or app:NAME[:WEIGHTS]); repeat to compare several (required)."


def _name_for_models(paths, suffix: str = "") -> str:
    return model_label(paths[0]) + (f"-and-{len(paths) - 1}" if len(paths) > 1 else "") + suffix


def draw_split_examples(images: np.ndarray, radii, path) -> None:
    """Original / L(r) / H(r) of a few test images, one pair of rows per radius."""
    rows = {"original": list(images)}
    for radius in radii:
        low, high = frequency.split(images, radius)
        rows[f"L({radius:g})"], rows[f"H({radius:g})"] = list(low.numpy()), list(high.numpy())
    plots.image_grid(rows, path, centred_rows=[label for label in rows if label.startswith("H(")],
                     title="low-pass L(r) and high-pass H(r) parts (H centred on grey)")  # fmt: skip


def print_table(frame: pd.DataFrame, index: list[str], columns: str) -> None:
    table = frame.pivot_table(index=index, columns=columns, values="value", aggfunc="first", sort=False)
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.precision", 4):
        click.echo(table.to_string())


# --- freq-split eval --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalConfig(SavedModelOptions, DataOptions, RunOptions):
    command = "freq-split-eval"
    section = sections.FREQUENCY

    model_paths: tuple[str, ...] = setting((), MODEL_PATHS_HELP, flag="--model-path", multiple=True,
                                           check=checks.all_of(checks.not_empty, check_model_source), show_default=False)
    radii: tuple[float, ...] = setting((4.0, 8.0, 12.0, 16.0), "Radii r of the low-pass disc.", check=checks.all_of(checks.not_empty, checks.at_least(0)))

    @property
    def default_run_name(self) -> str:
        return _name_for_models(self.model_paths)


def run_eval(config: EvalConfig) -> dict:
    """Evaluate each saved model on L(r) and H(r) test images; returns the accuracies."""
    prepare(config)
    data = load_data(config)
    test = data.split("test")
    models = load_models(config, data, config.model_paths)
    with experiment(config, model="+".join(models), data=data) as run:
        rows = []
        for label, model in models.items():
            print(f"evaluating {label}", flush=True)
            rows += [{**row, "model": label} for row in frequency_rows(model, test, config.radii, config.batch_size)]
        frame = run.write_metrics(rows, results=config.results)
        accuracy = frame[(frame["metric"] == "accuracy") & (frame["part"] != "original")]
        plots.line_plot(
            accuracy, x="radius", y="value", series=["model", "part"], path=run.path("accuracy_vs_radius.png"),
            xlabel="radius r", ylabel="test accuracy", title="accuracy on low-pass L(r) and high-pass H(r) images",
        )  # fmt: skip
        draw_split_examples(test.arrays(EXAMPLES_SHOWN)[0], config.radii, run.path("frequency_examples.png"))
        print_table(frame[frame["metric"] == "accuracy"].fillna({"radius": "-"}), ["model", "radius"], "part")
    result = {"run_dir": str(run.directory)}
    for _, row in frame[frame["metric"] == "accuracy"].iterrows():
        where = "original" if row["part"] == "original" else f"{row['part']}@{row['radius']:g}"
        result[f"{row['model']}:{where}"] = float(row["value"])
    return result


# --- freq-split train -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainConfig(ModelOptions, TrainingOptions, DataOptions, RunOptions):
    command = "freq-split-train"
    section = sections.FREQUENCY
    model_role = "{part}-pass-trained"

    radius: float = setting(8.0, "Radius r of the low-pass disc.", check=checks.at_least(0))
    part: str = setting("high", "Train on the low or the high part.", choices=frequency.PARTS)
    shuffle_labels: bool = setting(False, "Train on randomly permuted labels.")

    @property
    def labels_kind(self) -> str:
        return "shuffled" if self.shuffle_labels else "natural"

    @property
    def default_run_name(self) -> str:
        return f"{self.model}-{self.part}{self.radius:g}-{self.labels_kind}"


def run_train(config: TrainConfig) -> dict:
    """Train a classifier on L(r) or H(r) images (natural or shuffled labels); returns the last epoch.

    Validation uses the same part of the validation images with their true labels."""
    strategy = prepare(config)
    data = load_data(config)
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    if config.shuffle_labels:
        train = train.with_labels(np.random.default_rng(config.seed).permutation(train.labels))
    with strategy.scope():
        model = build_model(config.model, data.image_shape, data.num_classes, weights=config.weights, download=config.download)
        compile_classifier(model, learning_rate=config.learning_rate)
    to_part = view_transform(config.part, config.radius)
    with experiment(config, data=data) as run:
        history = fit_and_record(
            model,
            train_pipeline(train, config.batch_size, augment="none", seed=config.seed, transform=lambda x: to_part(x, 0)),
            eval_pipeline(val, config.batch_size, transform=lambda x: to_part(x, 0)),
            run=run, epochs=config.epochs,
            epoch_metrics=[EpochMetrics(lambda model: view_accuracies(model, test, config.radius, config.batch_size))],
            title=f"trained on {config.part}-pass r={config.radius:g}, {config.labels_kind} labels",
        )  # fmt: skip
        model.save(run.path("model.keras"))
        last = history.iloc[-1]
        rows = [{"split": "train", "part": config.part, "condition": "view", "metric": "accuracy", "value": last["accuracy"]}]
        rows += [{"split": "test", "part": view, "condition": view_condition(view), "metric": "accuracy", "value": last[f"test_{view}_accuracy"]}
                 for view in VIEWS]  # fmt: skip
        rows = [{**row, "radius": config.radius, "labels": config.labels_kind} for row in rows]
        run.write_metrics(rows, results=config.results)
    return {"run_dir": str(run.directory), "train_accuracy": float(last["accuracy"]),
            **{f"test_{view}_accuracy": float(last[f"test_{view}_accuracy"]) for view in VIEWS}}  # fmt: skip


# --- freq-split smooth ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SmoothConfig(SavedModelOptions, DataOptions, RunOptions):
    command = "freq-split-smooth"
    section = sections.FREQUENCY
    smoke_preset: ClassVar[Mapping[str, Any]] = {"attack_steps": 3}
    renamed: ClassVar[Mapping[str, str]] = {"epsilon": "eps", "steps": "attack_steps"}

    model_paths: tuple[str, ...] = setting((), MODEL_PATHS_HELP, flag="--model-path", multiple=True,
                                           check=checks.all_of(checks.not_empty, check_model_source), show_default=False)
    rho: tuple[float, ...] = setting((0.1, 0.25, 0.5, 1.0), "Smoothing weights of the 8 neighbours.", check=checks.all_of(checks.not_empty, checks.at_least(0)))
    eps: float = setting(8 / 255, "FGSM/PGD budget (Linf) in the 0..1 scale.", check=checks.BUDGET)
    attack_steps: int = setting(10, "PGD steps.", check=checks.at_least(1))
    normalize: bool = setting(False, "Divide the smoothing filter by 1 + 8 * rho (keeps the kernel's scale).")

    @property
    def rhos_with_baseline(self) -> tuple[float, ...]:
        """rho = 0 (the unchanged model) first, then the requested values."""
        return tuple(dict.fromkeys((0.0, *self.rho)))

    @property
    def default_run_name(self) -> str:
        return _name_for_models(self.model_paths, "-smooth")


def run_smooth(config: SmoothConfig) -> dict:
    """Kernel smoothing against clean and adversarial accuracy, for each saved model; and the kernels."""
    prepare(config)
    data = load_data(config)
    test = data.split("test")
    models = load_models(config, data, config.model_paths)
    for model in models.values():
        frequency.first_conv2d(model)  # a model without a convolution fails before the run starts
    with experiment(config, model="+".join(models), data=data) as run:
        rows, kernels = [], {}
        for label, model in models.items():
            rows += [{**row, "model": label} for row in smoothing_rows(
                model, test, config.rhos_with_baseline, config.eps, config.attack_steps, normalize=config.normalize,
                batch_size=config.batch_size, seed=config.seed)]  # fmt: skip
            kernel = keras.ops.convert_to_numpy(frequency.first_conv2d(model).kernel)
            kernels[label] = kernel
            for rho in config.rho:
                kernels[f"{label} rho={rho:g}"] = frequency.smooth_kernels(kernel, rho, normalize=config.normalize)
        frame = run.write_metrics(rows, results=config.results)
        accuracy = frame[frame["metric"] == "accuracy"]
        plots.line_plot(
            accuracy, x="rho", y="value", series=["model", "attack"], path=run.path("accuracy_vs_rho.png"), xlabel="rho",
            ylabel="test accuracy",
            title=f"first-layer smoothing{' (normalised)' if config.normalize else ''}, epsilon {config.eps * 255:.3g}/255",
        )  # fmt: skip
        plots.kernel_grid(kernels, run.path("first_layer_kernels.png"))
        print_table(accuracy, ["model", "rho"], "attack")
    result = {"run_dir": str(run.directory)}
    for _, row in accuracy.iterrows():
        result[f"{row['model']}:rho={row['rho']:g}:{row['attack']}"] = float(row["value"])
    return result


command = mode_group(
    "freq-split",
    "Low/high-frequency split of images (Wang et al. 2020): evaluation, training, kernel smoothing.",
    {
        "eval": config_command("eval", EvalConfig, run_eval, "Accuracy on original, L(r) and H(r) test images, and the H-right-L-wrong counts."),
        "train": config_command("train", TrainConfig, run_train, "Train on L(r) or H(r) images; test accuracy on original, L(r), H(r) per epoch."),
        "smooth": config_command("smooth", SmoothConfig, run_smooth, "Smooth first-layer kernels with each rho; clean, FGSM and PGD accuracy; kernel pictures."),
    },
)
