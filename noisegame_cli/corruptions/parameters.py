"""The CIFAR-10-C corruption parameters: one table, one row per corruption, one entry per severity 1..5.

Values are those of Hendrycks & Dietterich (ICLR 2019) for 32x32 CIFAR images. Lengths given in
pixels (blur sigmas and radii, displacements) are for 32x32 and are multiplied by
``size_scale(height, width) = min(height, width) / 32`` for other image sizes; dimensionless values
(noise levels, zoom factors, JPEG quality, pixelate fraction, blend weights) are used as they are.
"""

from __future__ import annotations

import numpy as np

CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS = CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIZE = 32


def _zoom_factors(stop: float) -> tuple[float, ...]:
    # The published generator writes np.arange(1, stop, 0.01); floating-point rounding makes that
    # include `stop` itself for stops 1.06 and 1.11, so severities 1 and 2 average 7 and 12 zooms.
    return tuple(float(f) for f in np.arange(1, stop, 0.01))


PARAMETERS: dict[str, tuple] = {
    # sigma of N(0, sigma) added to x in 0..1
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    # photon count c: Poisson(x * c) / c
    "shot_noise": (500, 250, 100, 75, 50),
    # fraction of values set to 0 or 1, half each
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    # sigma of the multiplicative noise: x + x * N(0, sigma)
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),
    # Gaussian sigma in px
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    # (disk radius px, alias-blur sigma px)
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # (Gaussian sigma px, max swap distance px, iterations)
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    # (radius px, sigma px) of the one-sided Gaussian motion kernel
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    # zoom factors averaged with the image
    "zoom_blur": tuple(_zoom_factors(stop) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    # (loc, scale, zoom, threshold, blur radius px, blur sigma px, blend)
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    # (image weight, frost weight)
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    # (fog strength, plasma-fractal wibble decay)
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    # (loc, scale, sigma px, threshold, intensity, mode 0 water / 1 mud)
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    # V shift in HSV
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    # contrast factor around the per-channel mean
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    # (S scale, S shift) in HSV
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    # (alpha, sigma, affine) as fractions of the image size (32 x these in px for CIFAR)
    "elastic_transform": (
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    ),
    # fraction of the side kept by the box down-sampling
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    # JPEG quality
    "jpeg_compression": (80, 65, 58, 50, 40),
}

# Synthetic frost: one profile per frost photograph of the original generator (frost1..frost5), with
# the statistics measured on 400 random 32x32 crops each (RGB 0..255, from the reference): channel
# means, channel std over all crops, std within a crop, and grey autocorrelation at FROST_LAGS px.
# `weights` mix the texture components (white noise, then Gaussian-filtered noise of each sigma in
# FROST_TEXTURE_SIGMAS px, see frost.texture_components); they were fitted (least squares, on
# 3 000 generated crops per component) to the autocorrelations, and tests/test_corruptions.py checks the fit.
FROST_TEXTURE_SIGMAS = (1.0, 2.5, 6.0, 12.0)
FROST_PROFILES = (
    # (channel means, channel std, within-crop std, autocorrelation, component weights)
    ((77.8, 148.5, 164.9), (27.8, 16.3, 14.8), (21.5, 13.1, 12.5), (0.53, 0.46, 0.36, 0.18), (0.486, 0.093, 0.095, 0.326, 0.0)),
    ((198.0, 202.3, 211.6), (19.7, 20.4, 21.2), (17.9, 18.2, 18.8), (0.38, 0.27, 0.18, 0.16), (0.562, 0.205, 0.0, 0.0, 0.233)),
    ((198.1, 202.5, 211.8), (19.8, 20.5, 21.3), (17.8, 18.2, 18.8), (0.38, 0.27, 0.18, 0.16), (0.562, 0.205, 0.0, 0.0, 0.233)),
    ((142.5, 157.3, 170.0), (27.9, 27.9, 29.1), (25.7, 25.8, 26.8), (0.23, 0.18, 0.15, 0.10), (0.768, 0.076, 0.0, 0.062, 0.095)),
    ((103.7, 115.0, 126.8), (39.1, 38.4, 37.3), (34.3, 33.9, 33.2), (0.35, 0.23, 0.14, 0.08), (0.626, 0.239, 0.0, 0.107, 0.029)),
)
FROST_LAGS = (1, 2, 4, 8)
# The original resizes each photograph by 0.2 before cropping 32x32; photographs read from a
# frost folder are resized by 0.2 * size_scale.
FROST_PHOTO_SCALE = 0.2


def size_scale(height: int, width: int) -> float:
    """How much pixel-length parameters grow for an image of this size (1 for 32x32)."""
    return min(height, width) / REFERENCE_SIZE
