"""The corruption engine: 19 corruptions x 5 severities as TensorFlow ops on uint8 batches, with the
parameters of the three published benchmarks (CIFAR-10-C, Tiny-ImageNet-C, ImageNet-C); and the 15
corruptions of ImageNet-C-bar and CIFAR-10-C-bar (``cbar/``) with those two sets' parameters.

Parameters are those of Hendrycks & Dietterich's generators (``parameters.PARAMETER_SETS``), each for
its native image size; pixel-length parameters scale with ``min(H, W) / native size`` for other sizes,
and ``parameters=None`` picks, among the sets that have the corruption, the one whose native size is
nearest the images'. Glass blur and the
spatter water drops follow the generators step by step (the glass walk's copy statement, OpenCV's
Canny, chamfer distance, equalisation and filters, integer-exact). These operations differ from the
generators, because their pieces cannot ship or run here, or for speed:

- motion blur (motion_blur, and the snow layer's streaks) uses ImageMagick's published kernel
  definition (a one-sided Gaussian of 2*ceil(radius)+1 taps along the angle, rounded to the pixel
  grid, edge pixels repeated), computed in TensorFlow instead of by ImageMagick;
- frost adds a synthetic texture matching the original frost photographs' colour statistics and
  autocorrelation, per parameter set (``frost.py``), or crops of the user's own photographs given as
  ``frost_dir``;
- shot noise samples the Poisson law by inverse transform from a table of 4 096 quantiles per grey
  level (``ops.poisson_quantile_table``), its CDF within 1/8 192 of the exact one.

``RandomCorruption`` (``layer.py``) is the engine as a Keras preprocessing layer, a random corruption
and severity per image, for training. Corrupted copies of a dataset are written by ``data.copies``.

Randomness is stateless and seeded: the same seed gives the same pixels, different seeds differ.
"""

import importlib

from noisegame_cli.corruptions.names import (
    ALL_CORRUPTIONS,
    C_BAR_CORRUPTIONS,
    CIFAR10_C_BAR_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    GROUPS,
    IMAGENET_C_BAR_CORRUPTIONS,
    KNOWN_CORRUPTIONS,
    SEVERITIES,
)

# The engine's pieces load TensorFlow, so they are imported on first use: reading the names above
# (the command line's checks, the dataset loaders) must stay cheap.
_LAZY = {
    **dict.fromkeys(("BLOCK", "block_size", "check_corruption", "corrupt", "corrupt_dataset", "corrupt_tf", "resolve_parameters"), "engine"),
    **dict.fromkeys(("RandomCorruption", "random_corruption"), "layer"),
    **dict.fromkeys(("PARAMETERS", "PARAMETER_SETS", "ParameterSet", "check_set_has", "parameter_set", "size_scale"), "parameters"),
}  # fmt: skip


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = [
    "ALL_CORRUPTIONS",
    "CIFAR10_C_BAR_CORRUPTIONS",
    "CORRUPTIONS",
    "C_BAR_CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "GROUPS",
    "IMAGENET_C_BAR_CORRUPTIONS",
    "KNOWN_CORRUPTIONS",
    "SEVERITIES",
    *_LAZY,
]
