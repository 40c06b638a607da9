"""Apply a named corruption at a severity to uint8 image batches, in TensorFlow, reproducibly.

``corrupt_tf`` is the graph function (usable inside ``tf.data.Dataset.map`` and on a GPU);
``corrupt`` is the NumPy convenience around it. Randomness comes only from stateless random ops
seeded by `seed`, so the same seed gives the same pixels on every run and different seeds differ.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import tensorflow as tf

from noisegame_cli.corruptions import fog as fog_module
from noisegame_cli.corruptions import frost as frost_module
from noisegame_cli.corruptions import ops
from noisegame_cli.corruptions.parameters import ALL_CORRUPTIONS, PARAMETERS, SEVERITIES, size_scale
from noisegame_cli.errors import UserError

FUNCTIONS = {
    "gaussian_noise": ops.gaussian_noise,
    "shot_noise": ops.shot_noise,
    "impulse_noise": ops.impulse_noise,
    "defocus_blur": ops.defocus_blur,
    "glass_blur": ops.glass_blur,
    "motion_blur": ops.motion_blur,
    "zoom_blur": ops.zoom_blur,
    "snow": ops.snow,
    "frost": frost_module.frost,
    "fog": fog_module.fog,
    "brightness": ops.brightness,
    "contrast": ops.contrast,
    "elastic_transform": ops.elastic_transform,
    "pixelate": ops.pixelate,
    "jpeg_compression": ops.jpeg_compression,
    "speckle_noise": ops.speckle_noise,
    "gaussian_blur": ops.gaussian_blur,
    "spatter": ops.spatter,
    "saturate": ops.saturate,
}
# Deterministic corruptions compiled with XLA, which fuses their many element-wise steps: 2-10x faster
# on a 2-core CPU. Not the random ones: XLA draws other numbers from the same stateless seed (so
# `corrupt` and `corrupt_tf` in tf.data would disagree) and its random-number generation is slower.
XLA_COMPILED = frozenset({"brightness", "saturate", "contrast", "zoom_blur", "pixelate", "gaussian_blur", "defocus_blur"})
# Randomness is drawn per block of this many images (block b uses seed (seed, b)), so `corrupt`
# gives the same pixels whatever the caller's batch size.
BLOCK = 1000
MIN_SIZE = 8


def check_corruption(name: str, severity: int) -> None:
    """Raise UserError for an unknown corruption name or a severity outside 1..5."""
    if name not in FUNCTIONS:
        raise UserError(f"unknown corruption {name!r}; choose from {', '.join(ALL_CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise UserError(f"severity must be an integer in 1..5, got {severity!r}")


def _check_shape(shape) -> None:
    if len(shape) != 4 or shape[-1] != 3 or shape[1] is None or shape[2] is None:
        raise UserError(f"images must be [N, H, W, 3] (H and W known), got {list(shape)}")
    if shape[1] < MIN_SIZE or shape[2] < MIN_SIZE:
        raise UserError(f"images must be at least {MIN_SIZE}x{MIN_SIZE} pixels to corrupt, got {shape[1]}x{shape[2]}")


def _as_seed(seed) -> tf.Tensor:
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int64)
    return tf.cast(tf.reshape(seed, [2]), tf.int64)


@functools.lru_cache(maxsize=4)
def _frost_photographs(frost_dir: str, height: int, width: int):
    return frost_module.load_frost_photographs(frost_dir, height, width, size_scale(height, width))


def corrupt_tf(images: tf.Tensor, name: str, severity: int, seed=0, frost_dir: str | os.PathLike | None = None) -> tf.Tensor:
    """Corrupt a uint8 batch ``[N, H, W, 3]`` (a tensor; N may be unknown) and return uint8 of the same shape.

    `seed` is an int or an int ``[2]`` tensor (inside ``Dataset.map`` pass e.g. ``(seed, batch_index)``).
    Float work is done on x / 255; the result is ``clip(., 0, 1) * 255`` truncated to uint8, as in
    the CIFAR-10-C generator. `frost_dir` (frost only): read frost photographs from this folder
    instead of synthesising the texture.
    """
    check_corruption(name, severity)
    images = tf.convert_to_tensor(images)
    _check_shape(images.shape)
    if images.dtype != tf.uint8:
        raise UserError(f"images must be uint8 0..255, got {images.dtype.name}")
    height, width = images.shape[1], images.shape[2]
    parameter = PARAMETERS[name][severity - 1]
    scale = size_scale(height, width)
    function = FUNCTIONS[name]
    if name == "frost" and frost_dir is not None:
        function = functools.partial(function, photos=_frost_photographs(str(frost_dir), height, width))
    result = function(tf.cast(images, tf.float32) / 255.0, parameter, _as_seed(seed), scale)
    pixels = tf.floor(tf.clip_by_value(result, 0.0, 1.0) * 255.0 + 1e-3)
    return tf.cast(tf.minimum(pixels, 255.0), tf.uint8)


def _corrupt_block(images, seed, *, name, severity, frost_dir):
    return corrupt_tf(images, name, severity, seed, frost_dir)


@functools.lru_cache(maxsize=256)
def _compiled(name: str, severity: int, height: int, width: int, frost_dir: str | None):
    signature = [tf.TensorSpec([None, height, width, 3], tf.uint8), tf.TensorSpec([2], tf.int64)]
    # A partial rather than a lambda: TensorFlow counts retracing per code object, and would warn about
    # "excessive retracing" when many corruptions share one lambda's code.
    return tf.function(
        functools.partial(_corrupt_block, name=name, severity=severity, frost_dir=frost_dir),
        input_signature=signature,
        autograph=False,
        jit_compile=name in XLA_COMPILED,
    )


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0, frost_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Corrupt uint8 images ``[N, H, W, 3]`` (or one ``[H, W, 3]`` image) with the CIFAR-10-C
    corruption `name` at `severity` 1..5; returns uint8 of the same shape."""
    check_corruption(name, severity)
    array = np.asarray(images)
    single = array.ndim == 3
    batch = array[None] if single else array
    _check_shape(batch.shape)
    if batch.dtype != np.uint8:
        raise UserError(f"images must be uint8 0..255, got {batch.dtype}")
    if name == "frost" and frost_dir is not None:
        _frost_photographs(str(frost_dir), batch.shape[1], batch.shape[2])  # bad folders fail here, not in tracing
    function = _compiled(name, int(severity), batch.shape[1], batch.shape[2], None if frost_dir is None else str(frost_dir))
    blocks = [
        function(tf.constant(batch[start : start + BLOCK]), tf.constant([int(seed), start // BLOCK], tf.int64)).numpy()
        for start in range(0, len(batch), BLOCK)
    ]
    result = np.concatenate(blocks) if blocks else np.zeros_like(batch)
    return result[0] if single else result
