"""Losses for consistency training (teacher -> student distillation on noisy views).

The default objective follows the Keras example "Consistency training with supervision"
(Sayak Paul, 2021)::

    loss = (CE(y, s) + KL(softmax(t / T) || softmax(s / T))) / 2

with student logits ``s``, teacher logits ``t`` and temperature ``T`` (10 by default).
``alpha`` generalises the weighting to ``alpha * CE + (1 - alpha) * KL``; ``alpha = 0.5``
gives the formula above.

Hinton et al. (2015) multiply the softened term by ``T**2`` so that its gradients keep the same
size as the hard-label term when ``T`` changes. The Keras example, and therefore the default here,
does not: at ``T = 10`` the KL part is small and the cross-entropy dominates the gradient.
``scale_kl_by_t2=True`` switches to Hinton's scaling.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy


class ConsistencyLoss(NamedTuple):
    """The three numbers a consistency-training step logs (each a scalar, mean over the batch)."""

    total: object
    ce: object
    kl: object


def softened_kl(teacher_logits, student_logits, temperature: float):
    """Per-example KL(softmax(t / T) || softmax(s / T)).

    Written with log-softmax rather than ``keras.losses.KLDivergence`` on probabilities, because
    the latter clips probabilities to 1e-7 and so misreports confident teachers at low ``T``.
    """
    teacher_log_probs = ops.log_softmax(ops.divide(teacher_logits, temperature), axis=-1)
    student_log_probs = ops.log_softmax(ops.divide(student_logits, temperature), axis=-1)
    teacher_probs = ops.exp(teacher_log_probs)
    return ops.sum(teacher_probs * (teacher_log_probs - student_log_probs), axis=-1)


def consistency_loss(
    labels,
    student_logits,
    teacher_logits,
    *,
    temperature: float = 10.0,
    alpha: float = 0.5,
    scale_kl_by_t2: bool = False,
) -> ConsistencyLoss:
    """``alpha * CE(labels, student) + (1 - alpha) * KL_T(teacher || student)``, batch means.

    Returns the total and both parts so that each can be logged; the teacher logits are
    treated as constants (no gradient flows into the teacher).
    """
    validate_weights(temperature, alpha)
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, student_logits.dtype))
    ce = ops.mean(cross_entropy(labels, student_logits))
    kl = ops.mean(softened_kl(teacher_logits, student_logits, temperature))
    if scale_kl_by_t2:
        kl = kl * (temperature**2)
    total = alpha * ce + (1.0 - alpha) * kl
    return ConsistencyLoss(total=total, ce=ce, kl=kl)


def validate_weights(temperature: float, alpha: float) -> None:
    """Raise ``UserError`` for a non-positive temperature or an alpha outside [0, 1]."""
    if not temperature > 0:
        raise UserError(f"temperature must be positive, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"alpha must lie in [0, 1], got {alpha}")
