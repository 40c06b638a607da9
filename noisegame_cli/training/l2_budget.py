"""The L2 noise budget of the Game of Noise: per-image norms, the exact projection onto a norm, the soft penalty.

Images are in 0..255 where the classifiers take them and in 0..1 here where the budget is measured
(``epsilon`` is an L2 size in the 0..1 image scale).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

BUDGETS = ("project", "penalty")


def _flat(tensor):
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])


def l2_norms(noise):
    """Per-image L2 norm of a batch of noise patterns."""
    return tf.norm(_flat(noise), axis=-1)


def project_l2(images01, noise, epsilon: float):
    """The perturbation ``clip(x + c * noise, 0, 1) - x`` whose L2 norm is exactly ``epsilon`` per image.

    ``images01`` and ``noise`` are float batches of the same shape, images in 0..1. Scaling the noise
    first and clipping afterwards would leave a smaller norm than asked wherever pixels saturate,
    so the scale ``c >= 0`` is solved for per image. The clipped perturbation's squared norm,
    ``sum_i min(c |n_i|, room_i) ** 2`` (``room_i`` is the distance from ``x_i`` to the bound that
    ``n_i`` points at), is piecewise quadratic and increasing in ``c`` with breakpoints
    ``room_i / |n_i|``; after sorting the breakpoints the segment holding ``epsilon`` and ``c``
    inside it have closed forms. Where even full saturation stays below ``epsilon`` (only for
    budgets near the image-space diameter) the saturated perturbation is returned; an all-zero
    noise pattern gives a zero perturbation. Gradients flow into ``noise``.
    """
    x = tf.cast(_flat(images01), tf.float32)
    n = tf.cast(_flat(noise), tf.float32)
    epsilon_sq = tf.cast(epsilon, tf.float32) ** 2
    moving = tf.not_equal(n, 0.0)
    magnitude = tf.abs(n)
    room = tf.maximum(tf.where(n > 0, 1.0 - x, x), 0.0)
    breakpoints = tf.where(moving, room / tf.where(moving, magnitude, 1.0), np.inf)

    order = tf.argsort(breakpoints, axis=-1, stable=True)
    sorted_breaks = tf.gather(breakpoints, order, batch_dims=1)
    sorted_room_sq = tf.gather(tf.where(moving, room**2, 0.0), order, batch_dims=1)
    sorted_magnitude_sq = tf.gather(magnitude**2, order, batch_dims=1)
    # On the segment ending at sorted breakpoint k, the entries before k are saturated (they add their
    # room squared) and the others grow linearly with c: norm^2(c) = saturated[k] + c^2 * free[k].
    saturated = tf.cumsum(sorted_room_sq, axis=-1, exclusive=True)
    free = tf.cumsum(sorted_magnitude_sq, axis=-1, reverse=True)
    segment_start = tf.concat([tf.zeros_like(sorted_breaks[:, :1]), sorted_breaks[:, :-1]], axis=-1)
    solution = tf.sqrt(tf.math.divide_no_nan(tf.maximum(epsilon_sq - saturated, 0.0), free) + 1e-30)
    # The first segment whose solution does not pass its own end holds the answer (norm^2 is increasing);
    # clamping into the segment absorbs float32 rounding at the segment ends.
    first = tf.argmax(tf.cast(solution <= sorted_breaks, tf.int32), axis=-1)
    reachable = tf.reduce_any(solution <= sorted_breaks, axis=-1)
    scale_on_segment = tf.minimum(tf.maximum(solution, segment_start), sorted_breaks)
    largest_finite_break = tf.reduce_max(tf.where(tf.math.is_finite(sorted_breaks), sorted_breaks, 0.0), axis=-1)
    scale = tf.where(reachable, tf.gather(scale_on_segment, first, batch_dims=1), largest_finite_break)

    perturbation = tf.clip_by_value(x + scale[:, None] * n, 0.0, 1.0) - x
    return tf.reshape(perturbation, tf.shape(noise))


def budget_penalty(noise, epsilon: float):
    """Mean over the batch of ``| ||noise||_2 - epsilon |`` (the seed's soft budget)."""
    return tf.reduce_mean(tf.abs(l2_norms(noise) - epsilon))


def apply_noise(images255, noise, epsilon: float, budget: str = "project"):
    """Noisy images in 0..255 and the perturbation actually applied (0..1 scale).

    ``budget="project"`` scales the noise exactly onto the budget; ``"penalty"`` applies the raw noise
    (clipped to the image range) and leaves the budget to :func:`budget_penalty` in the loss.
    """
    images01 = tf.cast(images255, tf.float32) / 255.0
    if budget == "project":
        perturbation = project_l2(images01, noise, epsilon)
    else:
        perturbation = tf.clip_by_value(images01 + noise, 0.0, 1.0) - images01
    return (images01 + perturbation) * 255.0, perturbation
