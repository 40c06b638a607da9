"""Pieces the attacks of this package share: norms and balls in the 0..1 scale, logits, seeds, the final clip.

The AutoAttack family (``apgd``, ``fab``, ``square``) works inside its graphs on images in the 0..1 scale
(pixels / 255), the scale its budgets and constants are given in; the model still sees 0..255 pixels.
``to_pixels`` turns a result back into 0..255 images, clipped to the range and to the budget around the
original pixels (so float round-off in the rescaling can never leave the ball).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from noisegame_cli.budgets import PIXEL_MAX
from noisegame_cli.errors import UserError

NORMS = ("Linf", "L2")
# Added to norms before dividing by them, as the original AutoAttack does
TINY = 1e-12
# For tape.gradient: an output that does not depend on the input has gradient 0 (not None)
ZERO_GRADIENT = tf.UnconnectedGradients.ZERO


def check_norm(norm: str) -> str:
    """``norm`` if it is one of ``NORMS``, else a ``UserError``."""
    if norm not in NORMS:
        raise UserError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")
    return norm


def per_example(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``values`` of shape [N] reshaped to broadcast against ``like`` of shape [N, ...]."""
    return tf.reshape(values, tf.concat([[-1], tf.ones([tf.rank(like) - 1], tf.int32)], axis=0))


def flat(images: tf.Tensor) -> tf.Tensor:
    return tf.reshape(images, [tf.shape(images)[0], -1])


def lp_norm(images: tf.Tensor, norm: str) -> tf.Tensor:
    """The ``norm`` of each example, shape [N]."""
    values = flat(images)
    if norm == "Linf":
        return tf.reduce_max(tf.abs(values), axis=1)
    return tf.sqrt(tf.reduce_sum(tf.square(values), axis=1))


def normalize(images: tf.Tensor, norm: str) -> tf.Tensor:
    """Each example divided by its ``norm`` (zero stays zero)."""
    return images / per_example(lp_norm(images, norm) + TINY, images)


def project(images: tf.Tensor, center: tf.Tensor, eps, norm: str) -> tf.Tensor:
    """Into the ``norm`` ball of radius ``eps`` around ``center``, then into [0, 1] (0..1 scale).

    Clipping to the range after the ball keeps the point in the ball: the centre lies in the range, so
    clipping only moves each coordinate towards it."""
    if norm == "Linf":
        images = tf.clip_by_value(images, center - eps, center + eps)
    else:
        delta = images - center
        radius = tf.minimum(tf.cast(eps, images.dtype), lp_norm(delta, norm))
        images = center + normalize(delta, norm) * per_example(radius, delta)
    return tf.clip_by_value(images, 0.0, 1.0)


def random_direction(shape, seed: tf.Tensor, norm: str) -> tf.Tensor:
    """A random perturbation of unit ``norm`` per example: uniform in the cube then scaled to its largest
    coordinate (Linf), a normalised Gaussian (L2), as AutoAttack's random starts."""
    if norm == "Linf":
        draw = tf.random.stateless_uniform(shape, seed=seed, minval=-1.0, maxval=1.0)
    else:
        draw = tf.random.stateless_normal(shape, seed=seed)
    return normalize(draw, norm)


def logits_of(model, images: tf.Tensor) -> tf.Tensor:
    """The model's logits for 0..1-scale ``images`` (the model takes 0..255)."""
    return model(images * PIXEL_MAX, training=False)


def predictions(logits: tf.Tensor) -> tf.Tensor:
    return tf.argmax(logits, axis=-1, output_type=tf.int64)


def to_pixels(original: tf.Tensor, original_unit: tf.Tensor, adversarial_unit: tf.Tensor, eps, norm: str) -> tf.Tensor:
    """0..255 float32 adversarial images from a 0..1-scale result: the change added to the original pixels
    (unchanged pixels stay bit-identical), clipped to the range and to the ``eps`` ball (0..1 scale)."""
    delta = (adversarial_unit - original_unit) * PIXEL_MAX
    eps_pixels = tf.cast(eps, tf.float32) * PIXEL_MAX
    if norm == "Linf":
        delta = tf.clip_by_value(delta, -eps_pixels, eps_pixels)
    else:
        size = lp_norm(delta, norm)
        delta = delta * per_example(tf.minimum(1.0, tf.math.divide_no_nan(eps_pixels, size)), delta)
    return tf.clip_by_value(original + delta, 0.0, PIXEL_MAX)


def stateless_seed(seed, *parts: int) -> tf.Tensor:
    """A seed for TensorFlow's stateless random ops from a user seed (int or pair) and the indices of the
    restart, target, batch, ... it is for: distinct parts give unrelated streams, equal parts equal ones."""
    entropy = [int(value) for value in np.ravel(seed)] + [int(part) for part in parts]
    if min(entropy, default=0) < 0:
        raise UserError(f"seeds must be non-negative integers, got {seed}")
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return tf.constant(state.astype(np.int64))


def padded_index(index: np.ndarray) -> np.ndarray:
    """``index`` lengthened, by repeating its last entry, to the next of a few batch sizes (four per
    doubling: ..., 32, 40, 48, 56, 64, 80, ...; at least 8), so that the XLA-fused parts of the attacks
    compile for a bounded number of batch sizes however the set of points still to attack shrinks. The
    padding costs under 25 % more work; callers keep the first ``len(index)`` results."""
    count = len(index)
    unit = 2 ** max(count.bit_length() - 3, 0)
    size = max(8, -(-count // unit) * unit)
    return np.concatenate([index, np.full(size - count, index[-1], dtype=index.dtype)])


def as_inputs(images, labels) -> tuple[tf.Tensor, tf.Tensor]:
    """0..255 float32 images and int64 labels, with matching lengths (else a ``UserError``)."""
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    labels = tf.cast(tf.reshape(tf.convert_to_tensor(labels), [-1]), tf.int64)
    if images.shape[0] != labels.shape[0]:
        raise UserError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def num_classes(logits: tf.Tensor) -> int:
    return int(logits.shape[-1])
