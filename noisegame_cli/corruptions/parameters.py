"""The corruption parameters of the five published benchmarks, one table per set.

Each table has one row per corruption and one entry per severity 1..5, with the values of the
authors' generators (Hendrycks & Dietterich, ICLR 2019): ``make_cifar_c.py`` (CIFAR-10-C, 32x32),
``make_tinyimagenet_c.py`` (Tiny-ImageNet-C, 64x64) and ``make_imagenet_c.py`` (ImageNet-C, 224x224);
and of the C-bar generator (Mintun et al., NeurIPS 2021): ImageNet-C-bar (224x224) and CIFAR-10-C-bar
(32x32), each with its own ten corruptions (five shared), whose entries are the severity values of its
tables (see the C-bar block below).
Lengths in pixels (blur sigmas and radii, displacements, glass-blur offsets) are for the set's native
size and are multiplied by ``ParameterSet.scale(height, width) = min(height, width) / native_size``
for other sizes; dimensionless values (noise levels, zoom factors, JPEG quality, pixelate fraction,
blend weights) are used as they are.

``PARAMETER_SETS`` maps a set's name to its ``ParameterSet``; ``PARAMETERS`` is the CIFAR-10-C table.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Mapping

import numpy as np

from noisegame_cli import checks
from noisegame_cli.corruptions.names import ALL_CORRUPTIONS, CIFAR10_C_BAR_CORRUPTIONS, IMAGENET_C_BAR_CORRUPTIONS, SEVERITIES
from noisegame_cli.errors import UserError


def zoom_factors(stop: float, step: float) -> tuple[float, ...]:
    """The generators' ``np.arange(1, stop, step)``, rounding included: floating-point rounding makes
    it include `stop` itself for some stops (CIFAR's 1.06 and 1.11 give 7 and 12 factors)."""
    return tuple(float(f) for f in np.arange(1, stop, step))


@dataclasses.dataclass(frozen=True)
class FrostProfile:
    """The statistics of random crops of one frost photograph of the original generator (RGB 0..255),
    measured on crops of the set's native size from the photograph resized by the set's photo scale,
    and the weights that mix the synthetic texture's components to match its autocorrelation."""

    means: tuple[float, float, float]  # channel means over all crops
    channel_std: tuple[float, float, float]  # channel std over all crops' pixels
    within_std: tuple[float, float, float]  # channel std within a crop, averaged over crops
    autocorrelation: tuple[float, ...]  # grey autocorrelation within a crop at the texture's lags
    weights: tuple[float, ...]  # white noise, then one per texture sigma (frost.texture_components)


@dataclasses.dataclass(frozen=True)
class FrostTexture:
    """How a set's frost looks: the original resizes its photographs by `photo_scale` and crops them
    to the image size; the synthetic texture mixes white noise with Gaussian-filtered noise of each of
    `sigmas` (native px), weighted per photograph profile to match the autocorrelation at `lags`."""

    photo_scale: float
    sigmas: tuple[float, ...]
    lags: tuple[int, ...]
    profiles: tuple[FrostProfile, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class ParameterSet:
    """One benchmark's corruption parameters: the table, the image size they were written for, the
    frost texture and, where published, a baseline model's errors (for the mCE normalisation)."""

    name: str
    native_size: int
    table: Mapping[str, tuple]
    frost: FrostTexture | None = None  # the 19's sets only
    baseline: str | None = None  # the model whose errors `baseline_errors` are
    baseline_errors: Mapping[str, float] | None = None  # per corruption, mean over the 5 severities

    def scale(self, height: int, width: int) -> float:
        """How much pixel-length parameters grow for an image of this size (1 at the native size)."""
        return min(height, width) / self.native_size

    def row(self, name: str, severity: int):
        return self.table[name][severity - 1]

    @property
    def corruptions(self) -> tuple[str, ...]:
        return tuple(self.table)


def _frozen(table: dict, names: tuple[str, ...] = ALL_CORRUPTIONS) -> Mapping[str, tuple]:
    assert set(table) == set(names) and all(len(row) == len(SEVERITIES) for row in table.values())
    return MappingProxyType(table)


def _pixels(size: int, rows) -> tuple:
    """Elastic transform rows written as fractions of a size, in pixels at that size."""
    return tuple(tuple(size * value for value in row) for row in rows)


# What each entry means (the same in every table):
# gaussian_noise    sigma of N(0, sigma) added to x in 0..1
# shot_noise        photon count c: Poisson(x * c) / c
# impulse_noise     fraction of values set to 0 or 1, half each
# speckle_noise     sigma of the multiplicative noise: x + x * N(0, sigma)
# gaussian_blur     Gaussian sigma, px
# defocus_blur      (disk radius px, alias-blur sigma px)
# glass_blur        (Gaussian sigma px, max offset px, iterations)
# motion_blur       (radius px, sigma px) of the one-sided Gaussian motion kernel
# zoom_blur         zoom factors averaged with the image
# snow              (loc, scale, zoom, threshold, blur radius px, blur sigma px, blend)
# frost             (image weight, frost weight)
# fog               (fog strength, plasma-fractal wibble decay)
# spatter           (loc, scale, sigma px, threshold, intensity, mode 0 water / 1 mud); the mud
#                   mode's intensity is a Gaussian sigma, px
# brightness        V shift in HSV
# contrast          contrast factor around the per-channel mean
# saturate          (S scale, S shift) in HSV
# elastic_transform (alpha px, sigma px, affine shift px)
# pixelate          fraction of the side kept by the box down-sampling
# jpeg_compression  JPEG quality

CIFAR10_C_TABLE = _frozen({
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": tuple(zoom_factors(stop, 0.01) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    "elastic_transform": _pixels(32, ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
})  # fmt: skip

TINY_IMAGENET_C_TABLE = _frozen({
    "gaussian_noise": (0.04, 0.08, 0.12, 0.15, 0.18),
    "shot_noise": (250, 100, 50, 30, 15),
    "impulse_noise": (0.01, 0.02, 0.05, 0.08, 0.14),
    "speckle_noise": (0.15, 0.2, 0.25, 0.3, 0.35),
    "gaussian_blur": (0.5, 0.75, 1, 1.25, 1.5),
    "defocus_blur": ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
    "glass_blur": ((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
    "motion_blur": ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
    "zoom_blur": tuple(zoom_factors(stop, 0.01) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.8),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6),
    ),
    "frost": ((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
    "fog": ((0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.6, 0),
        (0.65, 0.1, 0.8, 0.7, 0.6, 0),
        (0.65, 0.3, 1, 0.69, 0.6, 0),
        (0.65, 0.1, 0.7, 0.68, 0.6, 1),
        (0.65, 0.1, 0.5, 0.67, 0.6, 1),
    ),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
    "elastic_transform": _pixels(64, ((0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02))),
    "pixelate": (0.9, 0.8, 0.7, 0.6, 0.5),
    "jpeg_compression": (65, 58, 50, 40, 25),
})  # fmt: skip

IMAGENET_C_TABLE = _frozen({
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
    "gaussian_blur": (1, 2, 3, 4, 6),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": tuple(zoom_factors(stop, step) for stop, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))),
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    # The generator writes multiples of 244 where it means 224 (its own comment: nothing is incorrect);
    # the values are the table's, as written.
    "elastic_transform": _pixels(244, ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "jpeg_compression": (25, 18, 15, 10, 7),
})  # fmt: skip

# Synthetic frost. One profile per frost photograph the generators draw (frost1..frost5; a sixth is
# listed and never drawn), measured on random crops of the set's native size after the set's resizing
# (OpenCV's bilinear, as the generators do): CIFAR-10-C's are the reference's (400 crops each), the
# others were measured by `python -m noisegame_cli.corruptions.frost_fit` (1 500 crops of 64 px, 500 of
# 224 px). The weights were fitted to the autocorrelations by `frost_fit.fit_weights` (on max(500,
# 3e6 / size^2) generated crops per component); tests/test_corruptions.py checks the fit.
CIFAR10_C_FROST = FrostTexture(
    photo_scale=0.2,
    sigmas=(1.0, 2.5, 6.0, 12.0),
    lags=(1, 2, 4, 8),
    profiles=(
        FrostProfile((77.8, 148.5, 164.9), (27.8, 16.3, 14.8), (21.5, 13.1, 12.5), (0.53, 0.46, 0.36, 0.18), (0.362, 0.09, 0.062, 0.487, 0.0)),
        FrostProfile((198.0, 202.3, 211.6), (19.7, 20.4, 21.2), (17.9, 18.2, 18.8), (0.38, 0.27, 0.18, 0.16), (0.413, 0.163, 0.0, 0.0, 0.424)),
        FrostProfile((198.1, 202.5, 211.8), (19.8, 20.5, 21.3), (17.8, 18.2, 18.8), (0.38, 0.27, 0.18, 0.16), (0.413, 0.163, 0.0, 0.0, 0.424)),
        FrostProfile((142.5, 157.3, 170.0), (27.9, 27.9, 29.1), (25.7, 25.8, 26.8), (0.23, 0.18, 0.15, 0.10), (0.619, 0.07, 0.0, 0.072, 0.239)),
        FrostProfile((103.7, 115.0, 126.8), (39.1, 38.4, 37.3), (34.3, 33.9, 33.2), (0.35, 0.23, 0.14, 0.08), (0.525, 0.223, 0.0, 0.144, 0.108)),
    ),
)
TINY_IMAGENET_C_FROST = FrostTexture(
    photo_scale=0.3,
    sigmas=(1.0, 2.5, 6.0, 12.0, 24.0),
    lags=(1, 2, 4, 8, 16),
    profiles=(
        FrostProfile((77.1, 148.0, 164.5), (26.9, 15.6, 14.1), (21.6, 13.1, 12.4), (0.67, 0.63, 0.57, 0.44, 0.28), (0.177, 0.017, 0.068, 0.102, 0.0, 0.636)),
        FrostProfile((198.5, 202.9, 212.1), (18.8, 19.6, 20.4), (17.8, 18.4, 19.1), (0.6, 0.45, 0.37, 0.33, 0.26), (0.198, 0.173, 0.0, 0.0, 0.0, 0.629)),
        FrostProfile((198.3, 202.7, 212.0), (18.8, 19.6, 20.4), (17.8, 18.3, 19.1), (0.59, 0.45, 0.37, 0.32, 0.25), (0.211, 0.169, 0.0, 0.016, 0.0, 0.604)),
        FrostProfile((144.5, 159.3, 172.2), (24.4, 24.4, 25.9), (23.2, 23.3, 24.7), (0.4, 0.32, 0.25, 0.22, 0.17), (0.393, 0.126, 0.011, 0.008, 0.0, 0.462)),
        FrostProfile((101.5, 112.9, 124.7), (35.7, 35.0, 34.0), (32.8, 32.3, 31.5), (0.55, 0.38, 0.24, 0.14, 0.1), (0.304, 0.264, 0.112, 0.018, 0.0, 0.302)),
    ),
)
IMAGENET_C_FROST = FrostTexture(
    photo_scale=1.0,
    sigmas=(0.5, 1.0, 2.5, 6.0, 12.0, 25.0, 50.0),
    lags=(1, 2, 4, 8, 16, 32, 64),
    profiles=(
        FrostProfile((76.8, 147.8, 164.3), (28.2, 16.5, 14.9), (23.4, 14.2, 13.4), (0.77, 0.59, 0.58, 0.53, 0.46, 0.35, 0.2), (0.0, 0.219, 0.091, 0.0, 0.062, 0.051, 0.0, 0.578)),
        FrostProfile((197.6, 201.9, 211.2), (20.4, 21.1, 22.0), (19.5, 20.1, 20.9), (0.81, 0.62, 0.5, 0.38, 0.34, 0.28, 0.22), (0.0, 0.149, 0.17, 0.157, 0.011, 0.0, 0.0, 0.512)),
        FrostProfile((198.0, 202.3, 211.6), (20.2, 20.9, 21.7), (19.3, 19.9, 20.6), (0.81, 0.62, 0.5, 0.38, 0.33, 0.27, 0.21), (0.0, 0.15, 0.175, 0.15, 0.029, 0.0, 0.0, 0.495)),
        FrostProfile((144.8, 159.7, 172.6), (27.1, 27.1, 28.4), (26.2, 26.3, 27.6), (0.68, 0.4, 0.31, 0.25, 0.21, 0.19, 0.14), (0.0, 0.301, 0.29, 0.032, 0.029, 0.0, 0.0, 0.348)),
        FrostProfile((101.4, 112.7, 124.6), (38.6, 38.0, 37.0), (36.0, 35.6, 34.9), (0.73, 0.57, 0.42, 0.29, 0.17, 0.11, 0.08), (0.065, 0.173, 0.203, 0.143, 0.194, 0.0, 0.0, 0.222)),
    ),
)  # fmt: skip

# AlexNet's top-1 error on ImageNet-C, per corruption, mean over the 5 severities (the mCE denominator).
ALEXNET_IMAGENET_C_ERRORS = MappingProxyType({
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640, "defocus_blur": 0.819880,
    "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360, "snow": 0.866816, "frost": 0.826572,
    "fog": 0.819324, "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056,
    "pixelate": 0.717840, "jpeg_compression": 0.606500,
})  # fmt: skip

CIFAR10_C = ParameterSet("cifar10-c", 32, CIFAR10_C_TABLE, CIFAR10_C_FROST)
TINY_IMAGENET_C = ParameterSet("tiny-imagenet-c", 64, TINY_IMAGENET_C_TABLE, TINY_IMAGENET_C_FROST)
IMAGENET_C = ParameterSet("imagenet-c", 224, IMAGENET_C_TABLE, IMAGENET_C_FROST, "AlexNet", ALEXNET_IMAGENET_C_ERRORS)

# ---- C-bar: each severity is the published table's value on the generator's 0..10 scale (its
# make_imagenet_c_bar.py and make_cifar10_c_bar.py read imagenet_c_bar.csv and cifar10_c_bar.csv), which
# each corruption turns into its parameters (cbar/*.py); lengths are fractions of the image side.
IMAGENET_C_BAR_TABLE = _frozen({
    "caustic_refraction": (2.35, 3.2, 4.9, 6.6, 9.15),
    "inverse_sparkles": (1.0, 2.0, 4.0, 9.0, 10.0),
    "sparkles": (1.0, 2.0, 3.0, 5.0, 6.0),
    "perlin_noise": (4.6, 5.2, 5.8, 7.6, 8.8),
    "blue_noise_sample": (0.8, 1.6, 2.4, 4.0, 5.6),
    "plasma_noise": (4.75, 7.0, 8.5, 9.25, 10.0),
    "checkerboard_cutout": (2.0, 3.0, 4.0, 5.0, 6.0),
    "cocentric_sine_waves": (3.0, 5.0, 8.0, 9.0, 10.0),
    "single_frequency_greyscale": (1.0, 1.5, 2.0, 4.5, 5.0),
    "brownish_noise": (1.0, 2.0, 3.0, 4.0, 5.0),
}, IMAGENET_C_BAR_CORRUPTIONS)  # fmt: skip
CIFAR10_C_BAR_TABLE = _frozen({
    "blue_noise_sample": (0.7, 1.4, 2.1, 3.5, 4.2),
    "checkerboard_cutout": (1.0, 2.0, 3.0, 4.0, 5.0),
    "inverse_sparkles": (1.0, 1.5, 2.5, 4.5, 5.0),
    "pinch_and_twirl": (5.5, 6.0, 6.5, 8.5, 10.0),
    "ripple": (5.5, 6.0, 6.5, 7.5, 8.0),
    "brownish_noise": (2.5, 4.0, 5.5, 6.5, 7.0),
    "circular_motion_blur": (2.8, 3.6, 4.4, 5.2, 6.0),
    "lines": (0.5, 1.0, 1.5, 2.0, 2.5),
    "sparkles": (0.7, 3.5, 5.6, 6.3, 7.0),
    "transverse_chromatic_abberation": (1.0, 2.0, 5.0, 9.0, 10.0),
}, CIFAR10_C_BAR_CORRUPTIONS)  # fmt: skip
IMAGENET_C_BAR = ParameterSet("imagenet-c-bar", 224, IMAGENET_C_BAR_TABLE)
CIFAR10_C_BAR = ParameterSet("cifar10-c-bar", 32, CIFAR10_C_BAR_TABLE)
# ---- end of C-bar

PARAMETER_SETS: Mapping[str, ParameterSet] = MappingProxyType(
    {s.name: s for s in (CIFAR10_C, TINY_IMAGENET_C, IMAGENET_C, CIFAR10_C_BAR, IMAGENET_C_BAR)}
)
# The CIFAR-10-C table under its historical name.
PARAMETERS = CIFAR10_C_TABLE


def sets_holding(corruption: str | None) -> tuple[ParameterSet, ...]:
    """The sets whose table has `corruption` (None: the sets of the 19 common corruptions)."""
    if corruption is None:
        return tuple(s for s in PARAMETER_SETS.values() if set(ALL_CORRUPTIONS) <= set(s.table))
    return tuple(s for s in PARAMETER_SETS.values() if corruption in s.table)


def nearest_set(height: int, width: int, corruption: str | None = None) -> ParameterSet:
    """Among the sets holding `corruption` (None: the 19's sets), the one whose native size is nearest
    the image's shorter side, as a ratio (48 px: CIFAR-10-C's 32). A C-bar corruption thus takes the
    nearest C-bar set that has it (caustic refraction, only in ImageNet-C-bar, takes that at every size)."""
    side = min(height, width)
    return min(sets_holding(corruption), key=lambda s: abs(math.log(side / s.native_size)))


def size_scale(height: int, width: int, parameter_set: ParameterSet = CIFAR10_C) -> float:
    """How much pixel-length parameters grow for an image of this size (1 at the set's native size)."""
    return parameter_set.scale(height, width)


def parameter_set(parameters: str | ParameterSet) -> ParameterSet:
    """The ParameterSet of that name (or the set itself); UserError listing the sets for an unknown name."""
    if isinstance(parameters, ParameterSet):
        return parameters
    if isinstance(parameters, str) and parameters in PARAMETER_SETS:
        return PARAMETER_SETS[parameters]
    checks.chosen(parameters, PARAMETER_SETS, "parameter set")


def check_in_set(corruption: str, chosen: ParameterSet) -> None:
    """UserError unless the set has the corruption (the 19 and the C-bar corruptions have separate sets)."""
    if corruption not in chosen.table:
        having = ", ".join(s.name for s in sets_holding(corruption))
        raise UserError(f"{corruption} is not one of the {chosen.name} corruptions ({', '.join(chosen.corruptions)}); "
                        f"the sets that have it: {having}")  # fmt: skip


def check_set_has(corruptions, parameters: str | ParameterSet | None) -> None:
    """UserError unless the named set has every one of the corruptions (None, each corruption's nearest
    set, always has it)."""
    if parameters is not None:
        chosen = parameter_set(parameters)
        for name in corruptions:
            check_in_set(name, chosen)
