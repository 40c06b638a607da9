"""Noises for denoiser training and ``(noisy, clean)`` batches made from clean ones.

A noise is named by a spec string, through one table of kinds (:data:`NOISE_KINDS`):

- ``gaussian`` or ``gaussian:SIGMA``: additive Gaussian noise of mean 0 and standard deviation SIGMA on
  the 0..1 image scale, clipped to 0..255 (default: the study's variance of 50 on the 0..255 scale,
  sigma = sqrt(50) / 255, about 0.0277 or 7.07 grey levels);
- ``corruption:NAME:SEVERITY``: a corruption of the engine (:func:`noisegame_cli.corruptions.corrupt_tf`),
  e.g. ``corruption:gaussian_noise:3``; RGB images only.

With several noises each batch draws one of them uniformly (per batch rather than per image: a
corruption is one graph per name and severity, and drawing per batch runs only the one drawn).
Randomness is stateless: batch ``b`` of a fixed pipeline always gets seed ``(seed, b)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from noisegame_cli.corruptions import ALL_CORRUPTIONS, check_corruption, corrupt_tf
from noisegame_cli.errors import UserError
from noisegame_cli.training.gaussian_noise import add_gaussian_noise, validate_sigmas

STUDY_SIGMA = math.sqrt(50.0) / 255.0  # the study's noise: variance 50 on the 0..255 scale
AUTOTUNE = tf.data.AUTOTUNE


def _as_seed(seed) -> tf.Tensor:
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int64)
    return tf.cast(tf.reshape(seed, [2]), tf.int64)


def _as_uint8(images) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return images
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(images, tf.float32)), 0.0, 255.0), tf.uint8)


@dataclass(frozen=True)
class GaussianNoise:
    sigma: float = STUDY_SIGMA  # standard deviation on the 0..1 image scale

    def __post_init__(self) -> None:
        validate_sigmas(self.sigma)

    @property
    def spec(self) -> str:
        return f"gaussian:{self.sigma:g}"

    def __call__(self, images, seed) -> tf.Tensor:
        return add_gaussian_noise(images, self.sigma, _as_seed(seed))


@dataclass(frozen=True)
class CorruptionNoise:
    name: str
    severity: int

    @property
    def spec(self) -> str:
        return f"corruption:{self.name}:{self.severity}"

    def __call__(self, images, seed) -> tf.Tensor:
        return tf.cast(corrupt_tf(_as_uint8(images), self.name, self.severity, seed), tf.float32)


Noise = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _gaussian(arguments: list[str], spec: str) -> GaussianNoise:
    if len(arguments) > 1:
        raise UserError(f"bad noise {spec!r}: write gaussian or gaussian:SIGMA")
    if not arguments:
        return GaussianNoise()
    try:
        sigma = float(arguments[0])
    except ValueError:
        raise UserError(f"bad noise {spec!r}: the sigma {arguments[0]!r} is not a number") from None
    return GaussianNoise(sigma)


def _corruption(arguments: list[str], spec: str) -> CorruptionNoise:
    if len(arguments) != 2:
        raise UserError(f"bad noise {spec!r}: write corruption:NAME:SEVERITY, e.g. corruption:gaussian_noise:3")
    name, severity = arguments
    if not severity.strip().isdigit():
        raise UserError(f"bad noise {spec!r}: severity must be an integer in 1..5, got {severity!r}")
    check_corruption(name, int(severity))
    return CorruptionNoise(name, int(severity))


NOISE_KINDS: dict[str, Callable[[list[str], str], Noise]] = {"gaussian": _gaussian, "corruption": _corruption}


def parse_noise(spec: str) -> Noise:
    """One noise from its spec (see the module docstring); ``UserError`` for anything else."""
    kind, *arguments = spec.strip().split(":")
    if kind not in NOISE_KINDS:
        raise UserError(f"unknown noise {spec!r}; kinds: {', '.join(NOISE_KINDS)} (corruptions: {', '.join(ALL_CORRUPTIONS)})")
    return NOISE_KINDS[kind](arguments, spec)


def parse_noises(specs: str | Sequence[str]) -> tuple[Noise, ...]:
    """Noises from a comma-separated string or a sequence of specs (duplicates kept: they weigh the draw)."""
    if isinstance(specs, str):
        specs = specs.split(",")
    noises = tuple(parse_noise(spec) for spec in specs if spec.strip())
    if not noises:
        raise UserError("no noise given; e.g. gaussian, gaussian:0.05 or corruption:gaussian_noise:3")
    return noises


def apply_noises(images, noises: Sequence[Noise], seed) -> tf.Tensor:
    """``images`` (0..255) under one of ``noises``, drawn uniformly from ``seed``, as float32 0..255."""
    choice_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(_as_seed(seed), 2))
    if len(noises) == 1:
        return noises[0](images, noise_seed)
    index = tf.random.stateless_uniform([], choice_seed, 0, len(noises), dtype=tf.int32)
    branches = [lambda noise=noise: noise(images, noise_seed) for noise in noises]
    return tf.switch_case(index, branches)


def _clean_images(element):
    # Batches of (images, labels) from the data pipelines, or plain image batches.
    return element[0] if isinstance(element, tuple) else element


def noisy_pairs(dataset: tf.data.Dataset, noises: str | Sequence[str] | Sequence[Noise], seed: int, *, fixed: bool) -> tf.data.Dataset:
    """Map batches of clean 0..255 images (or ``(images, labels)``) to ``(noisy, clean)`` float32 pairs.

    ``fixed=False`` (training): fresh noise every epoch, the same sequence for the same ``seed``.
    ``fixed=True`` (validation, evaluation): batch ``b`` always gets seed ``(seed, b)``, so every
    epoch sees the same noisy images and validation metrics are comparable across epochs (keep the
    dataset's order fixed: no reshuffling).
    """
    noises = _as_noises(noises)
    if fixed:
        seeds = tf.data.Dataset.range(np.iinfo(np.int64).max).map(lambda index: tf.stack([tf.constant(seed, tf.int64), index]))
    else:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def pair(element, pair_seed):
        clean = tf.cast(_clean_images(element), tf.float32)
        return apply_noises(clean, noises, pair_seed), clean

    return tf.data.Dataset.zip(dataset, seeds).map(pair, num_parallel_calls=AUTOTUNE)


def noise_transform(noises: str | Sequence[str] | Sequence[Noise], seed: int):
    """A batch transform (images 0..255, batch index) -> noisy images, with the noise of
    ``noisy_pairs(..., fixed=True)`` for the same batch size, for evaluating models on it."""
    noises = _as_noises(noises)

    def transform(images, index):
        return apply_noises(tf.cast(images, tf.float32), noises, tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)]))

    return transform


def noisy_copies(images: np.ndarray, noises: str | Sequence[str] | Sequence[Noise], seed: int = 0, *, batch_size: int = 256) -> np.ndarray:
    """Fixed noisy copies (float32 0..255) of an image array, as ``noisy_pairs(..., fixed=True)`` makes them."""
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    noisy = [batch for batch, _ in noisy_pairs(dataset, noises, seed, fixed=True).as_numpy_iterator()]
    return np.concatenate(noisy) if noisy else np.zeros(np.shape(images), np.float32)


def _as_noises(noises) -> tuple[Noise, ...]:
    if isinstance(noises, str) or (noises and all(isinstance(noise, str) for noise in noises)):
        return parse_noises(noises)
    noises = tuple(noises)
    if not noises:
        raise UserError("no noise given; e.g. gaussian, gaussian:0.05 or corruption:gaussian_noise:3")
    return noises
