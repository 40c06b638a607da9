"""Small saved classifiers for the fgsm / freq-split command tests (helpers, not tests)."""

from __future__ import annotations

from pathlib import Path

import keras

from noisegame_cli.data import load_dataset


def quick_digits_model(folder: Path, *, epochs: int = 2) -> Path:
    """A small conv net trained on digits for a few seconds (well above chance), saved as model.keras."""
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
    return save(model, folder)


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
