"""The measurements of the high-frequency study (Wang et al. CVPR 2020): accuracy on low-pass L(r) and
high-pass H(r) test images, and clean / FGSM / PGD accuracy of models with smoothed first-layer kernels."""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from noisegame_cli import frequency
from noisegame_cli.attacks import AttackSpec
from noisegame_cli.evaluation.adversarial import attack_condition, evaluate_attack
from noisegame_cli.evaluation.clean import classification_metrics, predict_logits

VIEWS = ("original", *frequency.PARTS)


def view_condition(view: str) -> str:
    """The ``condition`` of a row measured on ``view``: the original images are clean ones."""
    return "clean" if view == "original" else "view"


def view_transform(view: str, radius: float):
    """The batch transform that shows a model the ``view`` (original, low or high part) of its images."""
    if view == "original":
        return None
    return lambda images, index: frequency.part(images, radius, view)


def view_logits(model: keras.Model, test, view: str, radius: float, batch_size: int) -> np.ndarray:
    return predict_logits(model, test, batch_size, view_transform(view, radius))


def view_accuracies(model: keras.Model, test, radius: float, batch_size: int) -> dict[str, float]:
    """``{"test_<view>_accuracy": accuracy}`` on the original, L(r) and H(r) test images."""
    return {f"test_{view}_accuracy": classification_metrics(view_logits(model, test, view, radius, batch_size), test.labels)["accuracy"]
            for view in VIEWS}  # fmt: skip


def frequency_rows(model: keras.Model, test, radii: Sequence[float], batch_size: int) -> list[dict]:
    """Accuracy and loss on original, L(r) and H(r) test images, and how many images are right from
    H(r) but wrong from L(r) (and the reverse), for one model."""
    labels = test.labels
    original = classification_metrics(view_logits(model, test, "original", 0.0, batch_size), labels)
    rows = [{"split": "test", "part": "original", "condition": view_condition("original"), "metric": m, "value": v}
            for m, v in original.items()]  # fmt: skip
    for radius in radii:
        right = {}
        for part in frequency.PARTS:
            logits = view_logits(model, test, part, radius, batch_size)
            right[part] = np.argmax(logits, -1) == labels
            rows += [{"split": "test", "radius": radius, "part": part, "condition": view_condition(part), "metric": m, "value": v}
                     for m, v in classification_metrics(logits, labels).items()]  # fmt: skip
        rows += [
            {"split": "test", "radius": radius, "condition": "view", "metric": "right_high_wrong_low",
             "value": int(np.sum(right["high"] & ~right["low"]))},
            {"split": "test", "radius": radius, "condition": "view", "metric": "right_low_wrong_high",
             "value": int(np.sum(right["low"] & ~right["high"]))},
        ]
    return rows


def smoothing_rows(model: keras.Model, test, rhos: Sequence[float], epsilon: float, steps: int, *, normalize: bool,
                   batch_size: int, seed: int) -> list[dict]:  # fmt: skip
    """Clean, FGSM and PGD test accuracy and loss of ``model`` with its first-layer kernels smoothed by each rho."""
    specs = {"none": AttackSpec("fgsm", 0.0), "fgsm": AttackSpec("fgsm", epsilon), "pgd": AttackSpec("pgd", epsilon, steps=steps)}
    rows = []
    for rho, smoothed in frequency.smoothed_variants(model, rhos, normalize=normalize):
        for attack, spec in specs.items():
            print(f"rho {rho:g}, attack {attack}", flush=True)
            result = evaluate_attack(smoothed, test, spec, batch_size=batch_size, seed=seed)
            rows += [{"split": "test", "rho": rho, "attack": attack, "epsilon": spec.eps, "condition": attack_condition(spec.eps), "metric": metric,
                      "value": value, "smoothing": "normalized" if normalize else "plain"}
                     for metric, value in (("accuracy", result.accuracy), ("loss", result.loss))]  # fmt: skip
    return rows
