"""Clean accuracy and loss: the one answer to "how accurate is this model on this split"."""

from __future__ import annotations

from typing import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli.data.sources import Split
from noisegame_cli.losses import cross_entropy

# A batch transform: (float images 0..255, batch index) -> images; the index seeds any randomness,
# so every model evaluated sees the same transformed images.
BatchTransform = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def float_batches(split, batch_size: int, transform: BatchTransform | None = None) -> tf.data.Dataset:
    """The split's images in order as float32 batches (0..255), optionally transformed batch by batch."""
    images = split.batches(batch_size).map(lambda x, _: tf.cast(x, tf.float32), num_parallel_calls=tf.data.AUTOTUNE)
    if transform is not None:
        images = images.enumerate().map(lambda index, x: transform(x, index), num_parallel_calls=tf.data.AUTOTUNE)
    return images.prefetch(tf.data.AUTOTUNE)


def predict_logits(model: keras.Model, split, batch_size: int = 256, transform: BatchTransform | None = None) -> np.ndarray:
    """The model's logits for every image of ``split`` (a Split, a FileSplit, or an array of images)."""
    if isinstance(split, np.ndarray):
        split = Split(split, np.zeros(len(split), np.int64))
    return model.predict(float_batches(split, batch_size, transform), verbose=0)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean cross-entropy and accuracy of logits against integer labels."""
    labels = np.asarray(labels, dtype=np.int64)
    loss = keras.ops.convert_to_numpy(cross_entropy(labels, logits))
    return {"loss": float(np.mean(loss)), "accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels))}


def evaluate(model: keras.Model, split, batch_size: int = 256, transform: BatchTransform | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``split`` (images optionally transformed first)."""
    return classification_metrics(predict_logits(model, split, batch_size, transform), split.labels)


def clean_measurement(model: keras.Model, split, batch_size: int = 256) -> dict[str, float]:
    """Accuracy, error and loss of one model on ``split``: what every clean part of an evaluation records."""
    result = evaluate(model, split, batch_size)
    return {"accuracy": result["accuracy"], "error": 1.0 - result["accuracy"], "loss": result["loss"]}


def clean_rows(models: Mapping[str, keras.Model], split, batch_size: int) -> list[dict]:
    """Test accuracy and loss of each model, one row each, keyed by role (teacher, student, ...)."""
    rows = []
    for role, model in models.items():
        rows += [role_row(role, model, metric, value, condition="clean") for metric, value in evaluate(model, split, batch_size).items()]
    return rows


def transformed_rows(models: Mapping[str, keras.Model], split, transform: BatchTransform | None, batch_size: int, metric: str, *,
                     condition: str, **columns) -> list[dict]:  # fmt: skip
    """The accuracy of each model (keyed by role) on the split's images after ``transform`` (a noise,
    say; every model sees the same transformed images), one ``metric`` row each, of ``condition``."""
    return [role_row(role, model, metric, evaluate(model, split, batch_size, transform)["accuracy"], condition=condition, **columns)
            for role, model in models.items()]  # fmt: skip


def role_row(role: str, model: keras.Model, metric: str, value: float, **columns) -> dict:
    """A metric row of one of several models a run measures side by side."""
    return {"split": "test", "role": role, "model": model.name, "metric": metric, "value": value, **columns}


def accuracy_by_role(rows: list[dict]) -> dict[str, float]:
    """``{role: clean accuracy}`` from rows made by :func:`clean_rows`."""
    return {row["role"]: row["value"] for row in rows if row["metric"] == "accuracy" and row["condition"] == "clean"}
