"""Adversarial accuracy: a model's accuracy and loss on the adversarial versions of a whole split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli.attacks import AttackSpec, run_attack
from noisegame_cli.attacks.common import pixel_logits
from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy


def attack_condition(eps: float) -> str:
    """The ``condition`` of a row measured under an attack of budget ``eps``: at 0 the images are
    left as they are (FGSM moves nothing, PGD starts and stays at the image), so the row is clean."""
    return "attack" if eps > 0 else "clean"


@dataclass(frozen=True)
class AttackResult:
    accuracy: float  # on the adversarial images, against the true labels
    loss: float  # mean cross-entropy on the adversarial images, against the true labels
    count: int
    target_rate: float | None = None  # targeted: share of images not of the target class now predicted as it


def evaluate_attack(
    model: keras.Model, data, spec: AttackSpec, *, batch_size: int = 256, seed: int = 0, verbose: bool = True,
    evaluated: keras.Model | None = None, first_point: int = 0,
) -> AttackResult:  # fmt: skip
    """Attack every batch of ``data`` (a split: in memory or streamed) and measure accuracy and loss
    on the adversarial images, against the true labels. An image's random start is drawn from ``seed``
    and its index in the evaluated set (``first_point`` for the first image of ``data``, which may be a
    shard of the set), so the numbers do not depend on ``batch_size`` or on how the set is split.

    The attack sees ``model``; the accuracy is measured on ``evaluated`` (``model`` itself by default).
    Attacking a classifier and measuring the classifier behind a purifier is the oblivious setting
    of a defence evaluation; attacking the whole defence is the white-box one."""
    num_classes = model.outputs[0].shape[-1]
    if spec.targeted and spec.target_class >= num_classes:
        raise UserError(f"target class {spec.target_class} does not exist: the model predicts {num_classes} classes")
    batches = data.batches(batch_size)
    cardinality = int(batches.cardinality())
    progress = keras.utils.Progbar(cardinality if cardinality > 0 else None, verbose=int(verbose), unit_name="batch")
    correct = hits = candidates = count = 0
    losses = []
    for index, (images, labels) in enumerate(batches):
        labels = tf.cast(labels, tf.int64)
        point_ids = np.arange(first_point + count, first_point + count + len(labels))
        adversarial = run_attack(model, images, labels, spec, seed=seed, point_ids=point_ids)
        logits = pixel_logits(evaluated or model, adversarial)
        predictions = tf.argmax(logits, axis=-1)
        correct += int(tf.reduce_sum(tf.cast(predictions == labels, tf.int64)))
        losses.append(cross_entropy(labels, logits).numpy())
        count += int(tf.size(labels))
        if spec.targeted:
            others = labels != spec.target_class
            candidates += int(tf.reduce_sum(tf.cast(others, tf.int64)))
            hits += int(tf.reduce_sum(tf.cast(others & (predictions == spec.target_class), tf.int64)))
        progress.update(index + 1)
    if count == 0:
        raise UserError("no images to attack")
    target_rate = (hits / candidates if candidates else float("nan")) if spec.targeted else None
    loss = math.fsum(np.concatenate(losses).astype(np.float64)) / count  # exact sum: the same in any batches
    return AttackResult(accuracy=correct / count, loss=loss, count=count, target_rate=target_rate)
