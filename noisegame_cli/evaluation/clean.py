"""Clean accuracy and loss: the one answer to "how accurate is this model on this split".

Predictions run batch by batch on the replicas of the model's strategy (``evaluation.replicas``: one
device, or whole batches dealt to mirrored devices). Every number comes from per-point outcomes
(``PointOutcomes``: right or wrong, and the loss) with an exact sum, so it does not depend on how the
points were grouped: shards of a set concatenate into the set's outcomes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli.data.sources import Split
from noisegame_cli.evaluation.replicas import deal, local_replicas, logits_function
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
    """The model's logits for every image of ``split`` (a Split, a FileSplit, or an array of images),
    computed batch by batch on the replicas of its strategy."""
    if isinstance(split, np.ndarray):
        split = Split(split, np.zeros(len(split), np.int64))
    batches = float_batches(split, batch_size, transform)
    if local_replicas(model) is None:  # a strategy across workers or on a TPU: Keras spreads its predict
        return model.predict(batches, verbose=0)
    logits = list(deal(model, batches, logits_function(model)))
    return np.concatenate(logits) if logits else np.zeros((0, model.outputs[0].shape[-1]), np.float32)


@dataclasses.dataclass(frozen=True)
class PointOutcomes:
    """Per point of an evaluated set: whether the model classified it right, and its cross-entropy."""

    correct: np.ndarray  # bool [N]
    loss: np.ndarray  # float32 [N]

    @classmethod
    def of_logits(cls, logits: np.ndarray, labels: np.ndarray) -> "PointOutcomes":
        labels = np.asarray(labels, dtype=np.int64)
        loss = keras.ops.convert_to_numpy(cross_entropy(labels, logits)) if len(labels) else np.zeros(0, np.float32)
        return cls(np.argmax(logits, axis=-1) == labels, np.asarray(loss, np.float32))

    @classmethod
    def concatenate(cls, parts: Sequence["PointOutcomes"]) -> "PointOutcomes":
        return cls(np.concatenate([p.correct for p in parts]), np.concatenate([p.loss for p in parts]))

    def __len__(self) -> int:
        return len(self.correct)

    def metrics(self) -> dict[str, float]:
        """Mean cross-entropy (an exact sum: the same however the points were grouped) and accuracy."""
        count = len(self) or float("nan")  # no points: no numbers
        return {"loss": math.fsum(self.loss.astype(np.float64)) / count, "accuracy": np.count_nonzero(self.correct) / count}

    def measurement(self) -> dict[str, float]:
        """Accuracy, error and loss: what every clean or corrupted part of an evaluation records."""
        metrics = self.metrics()
        return {"accuracy": metrics["accuracy"], "error": 1.0 - metrics["accuracy"], "loss": metrics["loss"]}


def point_outcomes(model: keras.Model, split, batch_size: int = 256, transform: BatchTransform | None = None) -> PointOutcomes:
    """Right or wrong, and the loss, of ``model`` on every image of ``split``."""
    return PointOutcomes.of_logits(predict_logits(model, split, batch_size, transform), split.labels)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean cross-entropy and accuracy of logits against integer labels."""
    return PointOutcomes.of_logits(logits, labels).metrics()


def evaluate(model: keras.Model, split, batch_size: int = 256, transform: BatchTransform | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``split`` (images optionally transformed first)."""
    return point_outcomes(model, split, batch_size, transform).metrics()


def clean_measurement(model: keras.Model, split, batch_size: int = 256) -> dict[str, float]:
    """Accuracy, error and loss of one model on ``split``: what every clean part of an evaluation records."""
    return point_outcomes(model, split, batch_size).measurement()


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
