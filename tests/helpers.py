"""Helpers the tests share (not tests): small classifiers, saved or not, the one-line-error assertion,
and a run's accuracies per corruption and severity."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from fabricate import colour_of
from noisegame_cli.data import load_dataset


def per_set_accuracy(run_dir: Path) -> pd.Series:
    """A run's accuracy per (corruption, severity), from its metrics.csv."""
    metrics = pd.read_csv(run_dir / "metrics.csv")
    rows = metrics[(metrics["metric"] == "accuracy") & metrics["corruption"].notna()]
    return rows.set_index(["corruption", rows["severity"].astype(int)])["value"].sort_index()


def assert_one_line_error(result, message: str | None = None) -> str:
    """The command failed with exactly one line on stderr, ``noisegame: error: ...`` (containing
    ``message``), and no traceback; returns that line."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisegame: error:"), result.stderr
    assert "Traceback" not in result.output
    if message is not None:
        assert message in lines[0], lines[0]
    return lines[0]


def quick_digits_model(folder: Path, *, epochs: int = 2) -> Path:
    """A small conv net trained on digits for a few seconds (well above chance), saved as model.keras."""
    return save(quick_digits_classifier(epochs=epochs), folder)


def quick_digits_classifier(*, epochs: int = 2) -> keras.Model:
    """A small conv net trained on digits for a few seconds (well above chance)."""
    digits = load_dataset("digits")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(digits.image_shape),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(digits.num_classes),
    ], name="quick_cnn")  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.train.images, digits.train.labels, batch_size=64, epochs=epochs, verbose=0)
    return model


def dense_only_model(folder: Path) -> Path:
    """A digits-shaped classifier without any convolution."""
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(), keras.layers.Dense(10),
    ], name="dense_only")  # fmt: skip
    return save(model, folder)


def save(model: keras.Model, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    model.save(path)
    return path


def colour_classifier(colours: np.ndarray, name: str = "colour_classifier", input_shape=(224, 224, 3)) -> keras.Model:
    """Known logits: class j's logit is (2 c_j . m - |c_j|^2) / 1000 for the image's mean colour m, that
    is -|m - c_j|^2 / 1000 up to a term the same for every class, so the argmax is the class whose
    colour c_j is nearest the image's."""
    model = keras.Sequential([keras.Input(input_shape), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(colours))], name=name)
    colours = np.asarray(colours, np.float32)
    model.layers[-1].set_weights([2 * colours.T / 1000, -(colours**2).sum(axis=1) / 1000])
    return model


def imagenet_classifier(input_shape=(224, 224, 3)) -> keras.Model:
    """A model of the 1000 ImageNet classes that predicts the class whose ``colour_of`` is nearest an image's mean colour."""
    return colour_classifier(np.array([colour_of(index) for index in range(1000)]), input_shape=input_shape)


def known_logits(images: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The colour classifier's logits computed directly in NumPy."""
    mean = images.astype(np.float64).mean(axis=(1, 2))
    colours = np.asarray(colours, np.float64)
    return (2 * mean @ colours.T - (colours**2).sum(axis=1)) / 1000
