"""The CIFAR-10-C corruption engine: 19 corruptions x 5 severities as TensorFlow ops on uint8 batches.

Parameters are those of Hendrycks & Dietterich (ICLR 2019) for 32x32 images (``parameters.py``);
pixel-length parameters scale with ``min(H, W) / 32`` for other sizes. These operations differ from
the published generator, because its pieces cannot ship or run here or for speed:

- motion blur (motion_blur, and the snow layer's streaks) uses ImageMagick's published kernel
  definition (a one-sided Gaussian of 2*ceil(radius)+1 taps along the angle, rounded to the pixel
  grid, edge pixels repeated), computed in TensorFlow instead of by ImageMagick;
- frost adds a synthetic texture matching the original frost photographs' colour statistics and
  autocorrelation (``frost.py``), or crops of the user's own photographs given as ``frost_dir``;
- spatter's water drops find drop edges from the drop mask and use a chessboard distance, where the
  generator runs Canny and a Euclidean distance transform (``ops.water_shading``);
- shot noise samples the Poisson law by inverse transform from a table of 4 096 quantiles per grey
  level (``ops.poisson_quantile_table``), its CDF within 1/8 192 of the exact one.

Randomness is stateless and seeded: the same seed gives the same pixels, different seeds differ.
"""

from noisegame_cli.corruptions.engine import check_corruption, corrupt, corrupt_tf
from noisegame_cli.corruptions.parameters import (
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    PARAMETERS,
    SEVERITIES,
    size_scale,
)

__all__ = [
    "ALL_CORRUPTIONS",
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "PARAMETERS",
    "SEVERITIES",
    "check_corruption",
    "corrupt",
    "corrupt_tf",
    "size_scale",
]
