"""Sanity checks that flag models whose AutoAttack evaluation may not be trustworthy (as AutoAttack's own).

Each check returns a ``Flag`` (which check, one line saying what was seen and what to do) or ``None``:

- ``check_probabilities``: the outputs look like probabilities (non-negative rows summing to 1), not logits;
- ``check_randomized``: five forward passes on the same images differ: a randomised defence, for which
  ``version="rand"`` (gradients averaged over 20 draws) is the right evaluation;
- ``check_zero_gradients``: correctly classified points whose DLR-loss gradient is exactly zero (a sign
  of gradient masking);
- ``check_classes``: too few classes for the DLR losses or for the number of target classes asked for;
- ``check_square``: the gradient-free Square Attack broke points that every gradient attack before it
  missed (more than 0.2 % of all points): another sign of gradient masking;
- ``check_version``: the version is not one of the original's protocols (``fast``).

The original's check for dynamic (input-dependent, test-time-optimising) defences traces PyTorch calls
and is not available for TensorFlow models there either; it has no counterpart here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from noisegame_cli.attacks.apgd import dlr_loss
from noisegame_cli.attacks.common import ZERO_GRADIENT, as_inputs, logits_of, predictions
from noisegame_cli.losses import cross_entropy


@dataclass(frozen=True)
class Flag:
    """A warning from one of the checks."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"Warning ({self.check}): {self.message}"


def check_probabilities(model, images, tolerance: float = 1e-5) -> Flag | None:
    outputs = model(tf.cast(images, tf.float32), training=False).numpy()
    looks_like_probabilities = (
        outputs.max() < 1.0 + tolerance
        and outputs.min() > -tolerance
        and bool(np.all(np.abs(outputs.sum(axis=-1) - 1.0) < tolerance))
    )
    if not looks_like_probabilities:
        return None
    return Flag(
        "probabilities",
        "the model's outputs are non-negative and sum to 1 per image: they look like probabilities, but the "
        "attacks need logits (remove the final softmax)",
    )


def check_randomized(model, images, labels, passes: int = 5, tolerance: float = 1e-4) -> Flag | None:
    images, labels = as_inputs(images, labels)
    outputs, correct = [], []
    for _ in range(passes):
        logits = model(images, training=False).numpy()
        correct.append(int(np.sum(logits.argmax(axis=-1) == labels.numpy())))
        outputs.append(logits / (np.linalg.norm(logits, axis=-1, keepdims=True) + 1e-10))
    pairs = [(i, j) for i in range(passes) for j in range(i + 1, passes)]
    largest = max(float(np.linalg.norm(outputs[i] - outputs[j], axis=-1).max()) for i, j in pairs)
    if len(set(correct)) == 1 and largest <= tolerance:
        return None
    return Flag(
        "randomized",
        f"{passes} forward passes on the same images differ (largest change of the normalised outputs "
        f"{largest:.2g}, correct counts {sorted(set(correct))}): it seems to be a randomised defence; "
        'evaluate it with version="rand"',
    )


def check_zero_gradients(model, images, labels) -> Flag | None:
    """Correctly classified points of ``images`` (the ones the attacks work on) whose loss gradient is
    exactly zero: DLR loss, or cross-entropy below 3 classes. (On a misclassified point whose true class
    ranks third the DLR loss is constant, so its zero gradient says nothing.)"""
    images, labels = as_inputs(images, labels)
    x = images / 255.0
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = logits_of(model, x)
        values = dlr_loss(logits, labels) if logits.shape[-1] >= 3 else cross_entropy(labels, logits)
        total = tf.reduce_sum(values)
    gradient = tape.gradient(total, x, unconnected_gradients=ZERO_GRADIENT)
    correct = (predictions(logits) == labels).numpy()
    zero = np.abs(gradient.numpy().reshape(len(correct), -1)).sum(axis=1) == 0
    count = int(np.sum(zero & correct))
    if count == 0:
        return None
    return Flag(
        "zero-gradients",
        f"{count} of {int(correct.sum())} correctly classified points have a zero gradient: gradient-based "
        "attacks may be unreliable on this model (gradient masking)",
    )


def check_classes(classes: int, attacks, apgd_targets: int, fab_targets: int) -> Flag | None:
    problems = []
    targeted = "apgd-t" in attacks or "apgd-t-malt" in attacks
    if "apgd-dlr" in attacks or targeted:
        if classes <= 2:
            problems.append(f"with only {classes} classes the DLR loss cannot be used")
        elif classes == 3 and targeted:
            problems.append(f"with only {classes} classes the targeted DLR loss cannot be used")
        elif targeted and apgd_targets + 1 > classes:
            problems.append(f"APGD-T asks for {apgd_targets} target classes but only {classes - 1} exist")
    if "fab-t" in attacks and fab_targets + 1 > classes:
        problems.append(f"FAB-T asks for {fab_targets} target classes but only {classes - 1} exist")
    if not problems:
        return None
    return Flag("classes", "; ".join(problems) + " (the attacks use as many as exist)")


def check_version(version: str) -> Flag | None:
    if version != "fast":
        return None
    return Flag(
        "version",
        "the fast version (APGD-CE, then APGD-T against the 3 target classes MALT ranks first; Melamed et al. "
        "2024) is not AutoAttack's standard protocol: its robust accuracy can be higher than the standard "
        "version's and is not comparable with published numbers",
    )


def check_square(robust_accuracy: dict[str, float], tolerance: float = 0.002) -> Flag | None:
    """``robust_accuracy`` holds the accuracy after each step in order ("clean" first), as ``autoattack``
    reports it."""
    names = list(robust_accuracy)
    if "square" not in names or names.index("square") < 2:
        return None  # no gradient attack ran before Square
    before = robust_accuracy[names[names.index("square") - 1]]
    drop = before - robust_accuracy["square"]
    if drop <= tolerance:
        return None
    return Flag(
        "square",
        f"the Square Attack lowered the robust accuracy by {drop:.2%} after the gradient attacks: their "
        "evaluation may be unreliable (gradient masking); consider Square with more queries and restarts, "
        "or an adaptive attack",
    )
