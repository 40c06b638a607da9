"""Which attack to run, with which budget and labels (``AttackSpec``), and attacking a whole set with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import keras
import tensorflow as tf

from noisegame_cli.attacks.gradient import check_budget, fgsm, pgd
from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy

ATTACKS = ("fgsm", "pgd")



@dataclass(frozen=True)
class AttackSpec:
    """Which attack, with which budget and labels. ``target_class`` makes it targeted; ``use_predictions``
    attacks the model's own predictions instead of the true labels (no label leaking, Kurakin et al. 2017);
    ``norm`` is the budget's norm, "Linf" or "L2" (both measured on the 0..1 image)."""

    name: str = "fgsm"
    eps: float = 8 / 255
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    target_class: int | None = None
    use_predictions: bool = False
    norm: str = "Linf"

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise UserError(f"unknown attack {self.name!r}; choose from {', '.join(ATTACKS)}")
        check_budget(self.eps, norm=self.norm)
        if self.step_size is not None:
            check_budget(self.step_size, "step size", norm=self.norm)
        if self.steps < 1:
            raise UserError(f"PGD needs at least 1 step, got {self.steps}")
        if self.target_class is not None and self.target_class < 0:
            raise UserError(f"the target class must be a class index >= 0, got {self.target_class}")

    @property
    def targeted(self) -> bool:
        return self.target_class is not None


def attack_labels(model: keras.Model, images, labels, spec: AttackSpec) -> tf.Tensor:
    """The labels the attack works with: the target class, the model's predictions, or the true labels."""
    labels = tf.cast(labels, tf.int64)
    if spec.targeted:
        return tf.fill(tf.shape(labels), tf.constant(spec.target_class, tf.int64))
    if spec.use_predictions:
        return tf.argmax(model(tf.cast(images, tf.float32), training=False), axis=-1)
    return labels


def run_attack(model: keras.Model, images, labels, spec: AttackSpec, *, seed=0) -> tf.Tensor:
    """Adversarial versions of ``images`` under ``spec`` (``labels`` are the true labels)."""
    used = attack_labels(model, images, labels, spec)
    if spec.name == "fgsm":
        return fgsm(model, images, used, spec.eps, targeted=spec.targeted, norm=spec.norm)
    return pgd(
        model, images, used, spec.eps, spec.steps, spec.step_size, spec.random_start,
        targeted=spec.targeted, seed=seed, norm=spec.norm,
    )  # fmt: skip


@dataclass(frozen=True)
class AttackResult:
    accuracy: float  # on the adversarial images, against the true labels
    loss: float  # mean cross-entropy on the adversarial images, against the true labels
    count: int
    target_rate: float | None = None  # targeted: share of images not of the target class now predicted as it


def _batches(data, batch_size: int) -> Iterable:
    if isinstance(data, tf.data.Dataset):
        return data
    images, labels = data
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def evaluate_attack(
    model: keras.Model, data, spec: AttackSpec, *, batch_size: int = 256, seed: int = 0, verbose: bool = True
) -> AttackResult:
    """Attack every batch of ``data`` (a batched ``tf.data.Dataset`` of ``(images, labels)`` or an
    ``(images, labels)`` pair of arrays) and measure accuracy and loss on the adversarial images."""
    num_classes = model.outputs[0].shape[-1]
    if spec.targeted and spec.target_class >= num_classes:
        raise UserError(f"target class {spec.target_class} does not exist: the model predicts {num_classes} classes")
    batches = _batches(data, batch_size)
    cardinality = int(batches.cardinality())
    progress = keras.utils.Progbar(cardinality if cardinality > 0 else None, verbose=int(verbose), unit_name="batch")
    correct = hits = candidates = count = 0
    loss_sum = 0.0
    for index, (images, labels) in enumerate(batches):
        labels = tf.cast(labels, tf.int64)
        adversarial = run_attack(model, images, labels, spec, seed=(seed, index))
        logits = model(adversarial, training=False)
        predictions = tf.argmax(logits, axis=-1)
        correct += int(tf.reduce_sum(tf.cast(predictions == labels, tf.int64)))
        loss_sum += float(tf.reduce_sum(cross_entropy(labels, logits)))
        count += int(tf.size(labels))
        if spec.targeted:
            others = labels != spec.target_class
            candidates += int(tf.reduce_sum(tf.cast(others, tf.int64)))
            hits += int(tf.reduce_sum(tf.cast(others & (predictions == spec.target_class), tf.int64)))
        progress.update(index + 1)
    if count == 0:
        raise UserError("no images to attack")
    target_rate = (hits / candidates if candidates else float("nan")) if spec.targeted else None
    return AttackResult(accuracy=correct / count, loss=loss_sum / count, count=count, target_rate=target_rate)
