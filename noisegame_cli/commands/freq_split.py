"""``noisegame freq-split``: the high-frequency study of Wang et al. (CVPR 2020), in three subcommands.

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
import re
from pathlib import Path
from typing import Mapping

import click
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from noisegame_cli import frequency, robustness_plots
from noisegame_cli.attacks import AttackSpec, evaluate_attack
from noisegame_cli.commands.common import experiment
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.data import Dataset, load_dataset
from noisegame_cli.data.pipelines import AUTOTUNE, eval_pipeline, train_pipeline
from noisegame_cli.models import build_model, check_fits, load_classifier
from noisegame_cli.options import FLOAT_LIST, FRACTION, common_options, run_command
from noisegame_cli.training.classifier import compile_classifier, fit_and_record

VIEWS = ("original", *frequency.PARTS)
EXAMPLES_SHOWN = 6


# --- shared pieces ----------------------------------------------------------------------------------


def require_radii(radii) -> None:
    require(len(radii) > 0, "give at least one radius")
    for radius in radii:
        require(radius >= 0, f"radius must be >= 0, got {radius:g}")


def model_label(path: str) -> str:
    """A short name for a saved model: its run directory's name without the timestamp, or the file's stem."""
    path = Path(path)
    if path.is_dir() or path.name == "model.keras":
        run_name = (path if path.is_dir() else path.parent).resolve().name
        return re.sub(r"^\d{8}-\d{6}-", "", run_name) or run_name
    return path.stem


def load_models(paths, data: Dataset) -> dict[str, keras.Model]:
    """Saved models by unique label, each checked against the dataset."""
    models: dict[str, keras.Model] = {}
    for path in paths:
        label = model_label(path)
        while label in models:
            label += "'"
        model = load_classifier(path)
        check_fits(model, data.image_shape, data.num_classes, what=f"model {path}")
        models[label] = model
    return models


def view_pipeline(images: np.ndarray, labels: np.ndarray, batch_size: int, view: str, radius: float) -> tf.data.Dataset:
    """Test batches of the original images or of their L(r) / H(r) part, split inside tf.data."""
    dataset = eval_pipeline(images, labels, batch_size)
    if view == "original":
        return dataset
    return dataset.map(lambda x, y: (frequency.part(x, radius, view), y), num_parallel_calls=AUTOTUNE)


def predicted_logits(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    return model.predict(dataset.map(lambda x, _: x), verbose=0)


def accuracy_and_loss(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return {"accuracy": float(np.mean(np.argmax(logits, -1) == labels)), "loss": float(np.mean(keras.ops.convert_to_numpy(loss)))}


def draw_split_examples(images: np.ndarray, radii, path: Path) -> None:
    """Original / L(r) / H(r) of a few test images, one pair of rows per radius."""
    rows = {"original": list(images)}
    for radius in radii:
        low, high = frequency.split(images, radius)
        rows[f"L({radius:g})"], rows[f"H({radius:g})"] = list(low.numpy()), list(high.numpy())
    robustness_plots.image_grid(rows, path, centred_rows=[label for label in rows if label.startswith("H(")],
                                title="low-pass L(r) and high-pass H(r) parts (H centred on grey)")  # fmt: skip


def print_table(frame: pd.DataFrame, index: list[str], columns: str) -> None:
    table = frame.pivot_table(index=index, columns=columns, values="value", aggfunc="first", sort=False)
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.precision", 4):
        click.echo(table.to_string())


# --- freq-split eval --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalConfig(CommonConfig):
    command = "freq-split-eval"

    model_paths: tuple[str, ...] = ()
    radii: tuple[float, ...] = (4.0, 8.0, 12.0, 16.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.model_paths) > 0, "freq-split eval needs at least one --model-path")
        require_radii(self.radii)

    @property
    def run_name(self) -> str:
        return self.name or model_label(self.model_paths[0]) + (f"-and-{len(self.model_paths) - 1}" if len(self.model_paths) > 1 else "")


def frequency_rows(model: keras.Model, data: Dataset, radii, batch_size: int) -> list[dict]:
    """Accuracy/loss on original, L(r), H(r) test images, and the H-right-L-wrong counts, for one model."""
    images, labels = data.test.images, data.test.labels
    original = predicted_logits(model, view_pipeline(images, labels, batch_size, "original", 0))
    rows = [{"split": "test", "part": "original", "metric": m, "value": v} for m, v in accuracy_and_loss(original, labels).items()]
    for radius in radii:
        right = {}
        for part in frequency.PARTS:
            logits = predicted_logits(model, view_pipeline(images, labels, batch_size, part, radius))
            right[part] = np.argmax(logits, -1) == labels
            rows += [{"split": "test", "radius": radius, "part": part, "metric": m, "value": v}
                     for m, v in accuracy_and_loss(logits, labels).items()]  # fmt: skip
        rows += [
            {"split": "test", "radius": radius, "metric": "right_high_wrong_low", "value": int(np.sum(right["high"] & ~right["low"]))},
            {"split": "test", "radius": radius, "metric": "right_low_wrong_high", "value": int(np.sum(right["low"] & ~right["high"]))},
        ]
    return rows


def run_eval(config: EvalConfig) -> dict:
    """Evaluate each saved model on L(r) and H(r) test images; returns the accuracies."""
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    models = load_models(config.model_paths, data)
    with experiment(config, model="+".join(models)) as run:
        rows = []
        for label, model in models.items():
            print(f"evaluating {label}", flush=True)
            rows += [{**row, "model": label} for row in frequency_rows(model, data, config.radii, config.batch_size)]
        frame = run.write_metrics(rows, results=config.results)
        accuracy = frame[(frame["metric"] == "accuracy") & (frame["part"] != "original")]
        robustness_plots.line_plot(
            accuracy, x="radius", y="value", series=["model", "part"], path=run.path("accuracy_vs_radius.png"),
            xlabel="radius r", ylabel="test accuracy", title="accuracy on low-pass L(r) and high-pass H(r) images",
        )  # fmt: skip
        draw_split_examples(data.test.images[:EXAMPLES_SHOWN], config.radii, run.path("frequency_examples.png"))
        print_table(frame[frame["metric"] == "accuracy"].fillna({"radius": "-"}), ["model", "radius"], "part")
    result = {"run_dir": str(run.directory)}
    for _, row in frame[frame["metric"] == "accuracy"].iterrows():
        where = "original" if row["part"] == "original" else f"{row['part']}@{row['radius']:g}"
        result[f"{row['model']}:{where}"] = float(row["value"])
    return result


# --- freq-split train -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainConfig(CommonConfig):
    command = "freq-split-train"

    radius: float = 8.0
    part: str = "high"
    shuffle_labels: bool = False
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        require_radii((self.radius,))
        require(self.part in frequency.PARTS, f"unknown --part {self.part!r}; choose from {', '.join(frequency.PARTS)}")
        require(self.learning_rate > 0, f"--learning-rate must be positive, got {self.learning_rate}")

    @property
    def labels_kind(self) -> str:
        return "shuffled" if self.shuffle_labels else "natural"

    @property
    def run_name(self) -> str:
        return self.name or f"{self.model}-{self.part}{self.radius:g}-{self.labels_kind}"


class ViewAccuracy(keras.callbacks.Callback):
    """Adds ``test_<view>_accuracy`` to each epoch's logs (place it before the CSV logger)."""

    def __init__(self, views: Mapping[str, tf.data.Dataset], labels: np.ndarray):
        super().__init__()
        self.views = dict(views)
        self.labels = labels

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for view, dataset in self.views.items():
            logs[f"test_{view}_accuracy"] = accuracy_and_loss(predicted_logits(self.model, dataset), self.labels)["accuracy"]


def run_train(config: TrainConfig) -> dict:
    """Train a classifier on L(r) or H(r) images (natural or shuffled labels); returns the last epoch.

    Validation uses the same part of the validation images with their true labels."""
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    with experiment(config) as run:
        labels = data.train.labels
        if config.shuffle_labels:
            labels = np.random.default_rng(config.seed).permutation(labels)
        train = train_pipeline(data.train.images, labels, config.batch_size, augment="none", seed=config.seed)
        train = train.map(lambda x, y: (frequency.part(x, config.radius, config.part), y), num_parallel_calls=AUTOTUNE)
        validation = view_pipeline(data.val.images, data.val.labels, config.batch_size, config.part, config.radius)
        views = {view: view_pipeline(data.test.images, data.test.labels, config.batch_size, view, config.radius) for view in VIEWS}
        model = build_model(config.model, data.image_shape, data.num_classes)
        compile_classifier(model, learning_rate=config.learning_rate)
        history = fit_and_record(
            model, train, validation, run=run, epochs=config.epochs, epoch_metrics=[ViewAccuracy(views, data.test.labels)],
            title=f"trained on {config.part}-pass r={config.radius:g}, {config.labels_kind} labels",
        )
        model.save(run.path("model.keras"))
        last = history.iloc[-1]
        rows = [{"split": "train", "part": config.part, "metric": "accuracy", "value": last["accuracy"]}]
        rows += [{"split": "test", "part": view, "metric": "accuracy", "value": last[f"test_{view}_accuracy"]} for view in VIEWS]
        rows = [{**row, "radius": config.radius, "labels": config.labels_kind} for row in rows]
        run.write_metrics(rows, results=config.results)
    return {"run_dir": str(run.directory), "train_accuracy": float(last["accuracy"]),
            **{f"test_{view}_accuracy": float(last[f"test_{view}_accuracy"]) for view in VIEWS}}  # fmt: skip


# --- freq-split smooth ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SmoothConfig(CommonConfig):
    command = "freq-split-smooth"
    smoke_preset = {**CommonConfig.smoke_preset, "steps": 3}

    model_paths: tuple[str, ...] = ()
    rho: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    epsilon: float = 8 / 255
    steps: int = 10
    normalize: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.model_paths) > 0, "freq-split smooth needs at least one --model-path")
        require(len(self.rho) > 0, "give at least one --rho")
        for rho in self.rho:
            require(rho >= 0, f"rho must be >= 0, got {rho:g}")
        require(0.0 <= self.epsilon <= 1.0, f"epsilon must lie in [0, 1] (the 0..1 image scale, e.g. 8/255), got {self.epsilon:g}")
        require(self.steps >= 1, f"--steps must be at least 1, got {self.steps}")

    @property
    def rhos_with_baseline(self) -> tuple[float, ...]:
        """rho = 0 (the unchanged model) first, then the requested values."""
        return tuple(dict.fromkeys((0.0, *self.rho)))

    @property
    def run_name(self) -> str:
        return self.name or model_label(self.model_paths[0]) + "-smooth"


def smoothing_rows(model: keras.Model, data: Dataset, config: SmoothConfig) -> list[dict]:
    """Clean, FGSM and PGD test accuracy of ``model`` with its first-layer kernels smoothed by each rho."""
    test = eval_pipeline(data.test.images, data.test.labels, config.batch_size)
    specs = {
        "none": AttackSpec("fgsm", 0.0),
        "fgsm": AttackSpec("fgsm", config.epsilon),
        "pgd": AttackSpec("pgd", config.epsilon, steps=config.steps),
    }
    rows = []
    for rho, smoothed in frequency.smoothed_variants(model, config.rhos_with_baseline, normalize=config.normalize):
        for attack, spec in specs.items():
            print(f"rho {rho:g}, attack {attack}", flush=True)
            result = evaluate_attack(smoothed, test, spec, seed=config.seed)
            rows += [{"split": "test", "rho": rho, "attack": attack, "epsilon": spec.eps, "metric": metric, "value": value,
                      "smoothing": "normalized" if config.normalize else "plain"}
                     for metric, value in (("accuracy", result.accuracy), ("loss", result.loss))]  # fmt: skip
    return rows


def run_smooth(config: SmoothConfig) -> dict:
    """Kernel smoothing against clean and adversarial accuracy, for each saved model; and the kernels."""
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    models = load_models(config.model_paths, data)
    for model in models.values():
        frequency.first_conv2d(model)  # a model without a convolution fails before the run starts
    with experiment(config, model="+".join(models)) as run:
        rows = []
        kernels = {}
        for label, model in models.items():
            rows += [{**row, "model": label} for row in smoothing_rows(model, data, config)]
            kernel = keras.ops.convert_to_numpy(frequency.first_conv2d(model).kernel)
            kernels[label] = kernel
            for rho in config.rho:
                kernels[f"{label} rho={rho:g}"] = frequency.smooth_kernels(kernel, rho, normalize=config.normalize)
        frame = run.write_metrics(rows, results=config.results)
        accuracy = frame[frame["metric"] == "accuracy"]
        robustness_plots.line_plot(
            accuracy, x="rho", y="value", series=["model", "attack"], path=run.path("accuracy_vs_rho.png"),
            xlabel="rho", ylabel="test accuracy", title=f"first-layer smoothing{' (normalised)' if config.normalize else ''}, epsilon {config.epsilon * 255:.3g}/255",
        )  # fmt: skip
        robustness_plots.kernel_grid(kernels, run.path("first_layer_kernels.png"))
        print_table(accuracy, ["model", "rho"], "attack")
    result = {"run_dir": str(run.directory)}
    for _, row in accuracy.iterrows():
        result[f"{row['model']}:rho={row['rho']:g}:{row['attack']}"] = float(row["value"])
    return result


# --- the Click group --------------------------------------------------------------------------------


@click.group("freq-split")
def command() -> None:
    """Low/high-frequency split of images (Wang et al. 2020): evaluation, training, kernel smoothing."""


@command.command("eval")
@common_options
@click.option("--model-path", "model_paths", multiple=True, help="Saved model or its run directory; repeat to compare several.")
@click.option("--radii", type=FLOAT_LIST, default=None, help="Radii r of the low-pass disc [default: 4,8,12,16].")
@click.pass_context
def eval_command(ctx: click.Context, **params) -> None:
    """Accuracy on original, L(r) and H(r) test images, and the H-right-L-wrong counts."""
    run_command(run_eval, EvalConfig, ctx, params)


@command.command("train")
@common_options
@click.option("--radius", type=float, default=None, help="Radius r of the low-pass disc [default: 8].")
@click.option("--part", type=click.Choice(frequency.PARTS), default=None, help="Train on the low or the high part [default: high].")
@click.option("--shuffle-labels", is_flag=True, default=None, help="Train on randomly permuted labels.")
@click.option("--learning-rate", type=float, default=None, help="Adam learning rate [default: 0.001].")
@click.pass_context
def train_command(ctx: click.Context, **params) -> None:
    """Train on L(r) or H(r) images; test accuracy on original, L(r), H(r) per epoch."""
    run_command(run_train, TrainConfig, ctx, params)


@command.command("smooth")
@common_options
@click.option("--model-path", "model_paths", multiple=True, help="Saved model or its run directory; repeat to compare several.")
@click.option("--rho", type=FLOAT_LIST, default=None, help="Smoothing weights of the 8 neighbours [default: 0.1,0.25,0.5,1.0].")
@click.option("--epsilon", type=FRACTION, default=None, help="FGSM/PGD budget in the 0..1 scale [default: 8/255].")
@click.option("--steps", type=int, default=None, help="PGD steps [default: 10].")
@click.option("--normalize", is_flag=True, default=None, help="Divide the smoothing filter by 1 + 8 * rho (keeps the kernel's scale).")
@click.pass_context
def smooth_command(ctx: click.Context, **params) -> None:
    """Smooth first-layer kernels with each rho; clean, FGSM and PGD accuracy; kernel pictures."""
    run_command(run_smooth, SmoothConfig, ctx, params)
