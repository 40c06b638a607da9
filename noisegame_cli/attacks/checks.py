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

And one that runs before any attack, on any model a command loads:

- ``check_input_range``: the model seems to be fed another input range than the one it was trained on:
  its clean accuracy is near chance but clearly higher under another range, or its outputs are saturated
  (zero input gradient, or a softmax one-hot to float precision, for most correctly classified points)
  where another range keeps the accuracy without saturating and with a clearly lower cross-entropy. A 0..1
  model fed 0..255 pixels keeps its accuracy with 255 times larger logits, and gradient attacks then report
  a robustness it does not have. The loss tells the range it was trained at: a ReLU network without
  normalisation trained on raw 0..255 pixels is saturated as well and keeps its accuracy at 0..1, but its
  training made its loss lowest at 0..255 (its 255 times smaller logits at 0..1 are near uniform).

The original's check for dynamic (input-dependent, test-time-optimising) defences traces PyTorch calls
and is not available for TensorFlow models there either; it has no counterpart here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import tensorflow as tf

from noisegame_cli.attacks.apgd import dlr_loss
from noisegame_cli.attacks.common import ZERO_GRADIENT, as_inputs, logits_of, predictions
from noisegame_cli.losses import cross_entropy
from noisegame_cli.models.wrapping import looks_like_probabilities


@dataclass(frozen=True)
class Flag:
    """A warning from one of the checks."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"Warning ({self.check}): {self.message}"


def check_probabilities(model, images) -> Flag | None:
    if not looks_like_probabilities(model(tf.cast(images, tf.float32), training=False).numpy()):
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


# check_input_range: accuracy within this many points of chance is "near chance"; another range must
# beat it by this many points to be "clearly higher"; "most" correct points is this share of them;
# another range saturates "clearly less" with this share fewer, at an accuracy at most this much lower
# and a mean cross-entropy at most this fraction of the one asked for.
NEAR_CHANCE = 0.10
CLEARLY_HIGHER = 0.20
MOST = 0.5
CLEARLY_LESS = 0.25
SAME_ACCURACY = 0.05
LOWER_LOSS = 0.5


@dataclass(frozen=True)
class Reading:
    """What one batch shows of a model: its accuracy, its mean cross-entropy, and the share of its correctly
    classified points whose outputs are saturated (an exactly zero cross-entropy gradient, or a softmax
    one-hot in float32)."""

    accuracy: float
    loss: float
    saturated: float
    correct: int
    saturated_count: int
    classes: int


def read_outputs(model, images, labels) -> Reading:
    images, labels = as_inputs(images, labels)
    x = images / 255.0
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(logits_of(model, x), tf.float32)
        losses = cross_entropy(labels, logits)
        total = tf.reduce_sum(losses)
    gradient = tape.gradient(total, x, unconnected_gradients=ZERO_GRADIENT).numpy().reshape(len(labels), -1)
    correct = (predictions(logits) == labels).numpy()
    one_hot = tf.reduce_max(tf.nn.softmax(logits), axis=-1).numpy() == 1.0
    saturated = int(np.sum(correct & ((np.abs(gradient).max(axis=1) == 0) | one_hot)))
    count = int(correct.sum())
    return Reading(count / len(correct), float(np.mean(losses)), saturated / max(count, 1), count, saturated, int(logits.shape[-1]))


def check_input_range(model, images, labels, given: str, alternatives: Mapping[str, object]) -> Flag | None:
    """``model`` read as asked (``given``: the options, e.g. ``--input-range 0-255``) against the same
    network behind each of ``alternatives`` (options -> model), on one batch of correctly labelled
    images; a flag naming the options that seem right, or None."""
    images, labels = as_inputs(images, labels)
    here = read_outputs(model, images, labels)
    others = {flags: read_outputs(other, images, labels) for flags, other in alternatives.items()}
    if not others:
        return None
    chance = 1.0 / here.classes
    best, reading = max(others.items(), key=lambda item: item[1].accuracy)
    shown = f"{len(labels)} test images"
    if here.accuracy <= chance + NEAR_CHANCE and reading.accuracy >= here.accuracy + CLEARLY_HIGHER:
        return Flag("input-range", f"clean accuracy {here.accuracy:.1%} on {shown} with {given} (chance {chance:.1%}) but "
                                   f"{reading.accuracy:.1%} with {best}: the model seems to expect {best}; the run goes on as asked")  # fmt: skip
    if here.correct == 0 or here.saturated < MOST:
        return None
    unsaturated = {flags: r for flags, r in others.items() if r.accuracy >= here.accuracy - SAME_ACCURACY
                   and r.saturated <= here.saturated - CLEARLY_LESS and r.loss <= here.loss * LOWER_LOSS}  # fmt: skip
    if not unsaturated:
        return None
    best, reading = min(unsaturated.items(), key=lambda item: (item[1].saturated, -item[1].accuracy))
    return Flag("input-range", f"{here.saturated_count} of {here.correct} correctly classified points of {shown} have saturated outputs "
                               f"(zero input gradient or a one-hot softmax) with {given}, {reading.saturated_count} of {reading.correct} "
                               f"with {best} (accuracy {here.accuracy:.1%} and {reading.accuracy:.1%}, mean loss {here.loss:.3g} and "
                               f"{reading.loss:.3g}): the model seems to expect {best}, "
                               "and gradient attacks on saturated outputs report a robustness it does not have; the run goes on as asked")  # fmt: skip
