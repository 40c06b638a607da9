"""The corruptions of ImageNet-C-bar and CIFAR-10-C-bar (Mintun, Kirillov and Xie, "On Interaction
Between Augmentations and Corruptions in Natural Corruption Robustness", NeurIPS 2021), chosen to be
unlike the 19 of ImageNet-C, as TensorFlow ops on uint8 batches.

Each follows the published generator (facebookresearch/augmentation-corruption, ``imagenet_c_bar/``)
step by step: the same random parameters drawn per image (from TensorFlow's stateless random ops, so
other numbers than NumPy's), the same rendering of them, and the generator's last step, clip to 0..255
and truncate to uint8. Several do something other than their names say; each rendering's docstring
says what. ``CORRUPTIONS`` maps each name to a callable ``f(pixels uint8, level, seed, scale) -> uint8``,
where `level` is the severity as the published tables write it (a float on the generator's 0..10 scale).
"""

from __future__ import annotations

from noisegame_cli.corruptions.cbar import marks, patterns, spectral, warps
from noisegame_cli.corruptions.cbar.common import CBarCorruption, Frame

CORRUPTIONS: dict[str, CBarCorruption] = {
    "blue_noise_sample": spectral.BLUE_NOISE_SAMPLE,
    "brownish_noise": spectral.BROWNISH_NOISE,
    "caustic_refraction": patterns.CAUSTIC_REFRACTION,
    "checkerboard_cutout": marks.CHECKERBOARD_CUTOUT,
    "cocentric_sine_waves": patterns.COCENTRIC_SINE_WAVES,
    "inverse_sparkles": marks.INVERSE_SPARKLES,
    "perlin_noise": patterns.PERLIN_NOISE,
    "plasma_noise": patterns.PLASMA_NOISE,
    "single_frequency_greyscale": patterns.SINGLE_FREQUENCY_GREYSCALE,
    "sparkles": marks.SPARKLES_CORRUPTION,
    "pinch_and_twirl": warps.PINCH_AND_TWIRL,
    "ripple": warps.RIPPLE,
    "circular_motion_blur": warps.CIRCULAR_MOTION_BLUR,
    "lines": marks.LINES,
    "transverse_chromatic_abberation": warps.TRANSVERSE_CHROMATIC_ABERRATION,
}
__all__ = ["CORRUPTIONS", "CBarCorruption", "Frame"]
