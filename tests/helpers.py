"""Helpers the tests share (not tests): small classifiers, saved or not, the one-line-error assertion,
and a run's accuracies per corruption and severity."""

from __future__ import annotations

from pathlib import Path

import keras
import pandas as pd

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
