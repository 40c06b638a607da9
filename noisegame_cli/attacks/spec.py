"""Which attack to run, with which budget and labels (``AttackSpec``), and running it on one batch."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from noisegame_cli.attacks.common import pixel_logits
from noisegame_cli.attacks.gradient import check_budget, fgsm, pgd
from noisegame_cli.checks import chosen
from noisegame_cli.errors import UserError

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
        chosen(self.name, ATTACKS, "attack")
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
        return tf.argmax(pixel_logits(model, images), axis=-1)
    return labels


def run_attack(model: keras.Model, images, labels, spec: AttackSpec, *, seed=0, point_ids=None) -> tf.Tensor:
    """Adversarial versions of ``images`` under ``spec`` (``labels`` are the true labels). ``point_ids``
    are the images' indices in the evaluated set (``arange(N)`` by default), which with ``seed`` fix their
    random starts: an image's result does not depend on the batch it is in."""
    used = attack_labels(model, images, labels, spec)
    if spec.name == "fgsm":
        return fgsm(model, images, used, spec.eps, targeted=spec.targeted, norm=spec.norm)
    return pgd(
        model, images, used, spec.eps, spec.steps, spec.step_size, spec.random_start,
        targeted=spec.targeted, seed=seed, point_ids=point_ids, norm=spec.norm,
    )  # fmt: skip
