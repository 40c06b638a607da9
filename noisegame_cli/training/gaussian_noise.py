"""Gaussian-noise training (GNT): half of every batch gets Gaussian noise of one or several sigmas.

Sigmas are standard deviations in the 0..1 scale of the image range; images stay 0..255.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from noisegame_cli.budgets import PIXEL_MAX
from noisegame_cli.errors import UserError


def add_gaussian_noise(images, sigma: float, seed) -> tf.Tensor:
    """``clip(images + N(0, sigma^2))`` as float32 0..255, ``sigma`` a standard deviation on the 0..1
    image scale; ``seed`` a stateless seed pair (the same seed gives the same noise)."""
    images = tf.cast(images, tf.float32)
    noise = tf.random.stateless_normal(tf.shape(images), seed=seed)
    return tf.clip_by_value(images + noise * (float(sigma) * PIXEL_MAX), 0.0, PIXEL_MAX)


def gaussian_transform(sigma: float, seed: int):
    """A batch transform (images 0..255, batch index) -> the images plus Gaussian noise of std ``sigma``
    (0..1 scale), clipped to 0..255; the noise is seeded by (seed, batch index), so every model
    evaluated with it sees the same noisy images."""

    def transform(images, index):
        return add_gaussian_noise(images, sigma, tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)]))

    return transform


def gaussian_noise_mix(images255, labels, seed, sigmas: Sequence[float]):
    """Add Gaussian noise (std in the 0..1 scale) to the first half of a batch, clip to 0..255.

    With several ``sigmas`` each noisy image draws its own sigma uniformly from the list (the
    multi-sigma variant of Rusak et al. 2020). ``seed`` is a stateless seed pair, so the mix is
    reproducible inside ``tf.data``; the batches are expected to be shuffled already.
    """
    images = tf.cast(images255, tf.float32)
    count = tf.shape(images)[0]
    sigma_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    choice = tf.random.stateless_uniform([count], sigma_seed, 0, len(sigmas), dtype=tf.int32)
    sigma = tf.gather(tf.constant(list(sigmas), tf.float32), choice)
    noisy_half = tf.cast(tf.range(count) < count // 2, tf.float32)
    std = (sigma * noisy_half * 255.0)[:, None, None, None]
    noise = tf.random.stateless_normal(tf.shape(images), noise_seed) * std
    return tf.clip_by_value(images + noise, 0.0, 255.0), labels


def with_gaussian_noise(dataset: tf.data.Dataset, sigmas: Sequence[float], seed: int) -> tf.data.Dataset:
    """Map a batched ``(images, labels)`` dataset to half-clean, half-noisy batches."""
    sigmas = validate_sigmas(sigmas)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        lambda batch, pair: gaussian_noise_mix(batch[0], batch[1], pair, sigmas),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def validate_sigmas(sigmas) -> tuple[float, ...]:
    sigmas = tuple(float(s) for s in (sigmas if isinstance(sigmas, (list, tuple)) else [sigmas]))
    if not sigmas or any(not 0.0 < s <= 1.0 for s in sigmas):
        raise UserError(f"sigma values must lie in (0, 1] (0..1 image scale), got {list(sigmas)}")
    return sigmas
