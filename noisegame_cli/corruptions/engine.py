"""Apply a named corruption at a severity to uint8 images, in TensorFlow, reproducibly.

``corrupt_tf`` is the graph function (usable inside ``tf.data.Dataset.map``, in a model, on a GPU);
``corrupt`` is the NumPy convenience around it and ``corrupt_dataset`` its streaming form for a
``tf.data.Dataset``. Randomness comes only from stateless random ops seeded by `seed`, so the same seed
gives the same pixels on every run and different seeds differ. `parameters` picks the benchmark whose
parameters are used (``parameters.PARAMETER_SETS``): None for the one whose native size is nearest the
images' among those that have the corruption (the 19 and the C-bar corruptions have separate sets).
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import sys

import numpy as np
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.corruptions import cbar
from noisegame_cli.corruptions import fog as fog_module
from noisegame_cli.corruptions import frost as frost_module
from noisegame_cli.corruptions import ops
from noisegame_cli.corruptions import spatter as spatter_module
from noisegame_cli.corruptions.names import KNOWN_CORRUPTIONS, SEVERITIES
from noisegame_cli.corruptions.parameters import ParameterSet, check_in_set, nearest_set, parameter_set
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
    "spatter": spatter_module.spatter,
    "saturate": ops.saturate,
    **cbar.CORRUPTIONS,
}
# Corruptions that take and return the uint8 pixels (the C-bar ones end as their generator does).
ON_PIXELS = ops.ON_PIXELS | frozenset(cbar.CORRUPTIONS)
# Deterministic corruptions compiled with XLA, which fuses their many element-wise steps: 2-10x faster
# on a 2-core CPU. Not the random ones: XLA draws other numbers from the same stateless seed (so
# `corrupt` and `corrupt_tf` in tf.data would disagree) and its random-number generation is slower.
XLA_COMPILED = frozenset({"brightness", "saturate", "contrast", "zoom_blur", "pixelate", "gaussian_blur", "defocus_blur"})
# Randomness is drawn per block of images (block b uses seed (seed, b)), so `corrupt` gives the same
# pixels whatever the caller's batch size: blocks of BLOCK images of 32x32, or of the same number of
# pixels for larger images (`block_size`). Every draw has the images first in its shape, so an image's
# draws depend on its block and its place in it, not on how many images follow: with `offset` (the
# index of the first image in the whole set) a slice of a set, a shard's, gets the pixels the whole
# set's corruption gives it.
BLOCK = 1000
# How many blocks `corrupt` and `corrupt_dataset` work on at once: one per core this process may use,
# for the corruptions that gain from it (random draws, JPEG coding and the long chains of small ops run
# on one core each: 1.1-1.3x on 2 cores). The others ran 5-30 % slower two blocks at a time (measured at
# 32x32 and 224x224 on 2 cores): their XLA-compiled loops and large ops already use every core.
CONCURRENT_BLOCKS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
CONCURRENT_CORRUPTIONS = frozenset(
    {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "snow", "frost", "spatter", "jpeg_compression", "zoom_blur"}
)
MIN_SIZE = 8


def check_corruption(name: str, severity: int) -> None:
    """Raise UserError for an unknown corruption name or a severity outside 1..5."""
    checks.chosen(name, KNOWN_CORRUPTIONS, "corruption")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise UserError(f"severity must be an integer in 1..5, got {severity!r}")


def resolve_parameters(parameters: str | ParameterSet | None, height: int, width: int, corruption: str | None = None) -> ParameterSet:
    """The set to use for `corruption` on images of this size: the named one (UserError if it has no such
    corruption), or (None) the one whose native size is nearest among the sets that have it (for None, the
    19's sets). Prints a note on stderr, once per set and size, when the size is more than 2x off."""
    chosen = nearest_set(height, width, corruption) if parameters is None else parameter_set(parameters)
    if corruption is not None:
        check_in_set(corruption, chosen)
    side = min(height, width)
    if side > 2 * chosen.native_size or 2 * side < chosen.native_size:
        _note_size(chosen.name, chosen.native_size, height, width)
    return chosen


@functools.lru_cache(maxsize=None)  # the cache is what makes the note appear once per set and size
def _note_size(name: str, native_size: int, height: int, width: int) -> None:
    print(
        f"note: {name} parameters assume {native_size}x{native_size} images; these are {height}x{width} "
        "(lengths are rescaled; some corruptions, such as pixelate and snow, still depend on scale)",
        file=sys.stderr,
    )


def block_size(height: int, width: int) -> int:
    """Images per random-number block: BLOCK for 32x32, the same number of pixels for other sizes."""
    return max(1, BLOCK * 32 * 32 // (height * width))


def _check_shape(shape) -> None:
    if len(shape) != 4 or shape[-1] != 3 or shape[1] is None or shape[2] is None:
        raise UserError(f"images must be [N, H, W, 3] (H and W known), got {list(shape)}")
    if shape[1] < MIN_SIZE or shape[2] < MIN_SIZE:
        raise UserError(f"images must be at least {MIN_SIZE}x{MIN_SIZE} pixels to corrupt, got {shape[1]}x{shape[2]}")


def _as_seed(seed) -> tf.Tensor:
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int64)
    return tf.cast(tf.reshape(seed, [2]), tf.int64)


@functools.lru_cache(maxsize=8)
def _frost_photographs(frost_dir: str, height: int, width: int, factor: float):
    return frost_module.load_frost_photographs(frost_dir, height, width, factor)


def _photo_factor(chosen: ParameterSet, height: int, width: int) -> float:
    return chosen.frost.photo_scale * chosen.scale(height, width)


def corruption_function(name: str, chosen: ParameterSet, height: int, width: int, frost_dir: str | os.PathLike | None = None):
    """The corruption as ``f(images float 0..1, parameter row, seed, scale)`` for this set and size."""
    function = FUNCTIONS[name]
    if name == "frost":
        photos = None if frost_dir is None else _frost_photographs(str(frost_dir), height, width, _photo_factor(chosen, height, width))
        function = functools.partial(function, texture=chosen.frost, photos=photos)
    return function


def corrupt_tf(
    images: tf.Tensor,
    name: str,
    severity: int,
    seed=0,
    parameters: str | ParameterSet | None = None,
    frost_dir: str | os.PathLike | None = None,
) -> tf.Tensor:
    """Corrupt a uint8 batch ``[N, H, W, 3]`` (a tensor; N may be unknown) and return uint8 of the same shape.

    `seed` is an int or an int ``[2]`` tensor (inside ``Dataset.map`` pass e.g. ``(seed, batch_index)``).
    `parameters`: a set's name (``PARAMETER_SETS``), or None for the set whose native size is nearest the
    images'. Float work is done on x / 255; the result is ``clip(., 0, 1) * 255`` truncated to uint8,
    as in the generators. `frost_dir` (frost only): read frost photographs from this folder instead of
    synthesising the texture.
    """
    check_corruption(name, severity)
    images = tf.convert_to_tensor(images)
    _check_shape(images.shape)
    if images.dtype != tf.uint8:
        raise UserError(f"images must be uint8 0..255, got {images.dtype.name}")
    height, width = images.shape[1], images.shape[2]
    chosen = resolve_parameters(parameters, height, width, name)
    function = corruption_function(name, chosen, height, width, frost_dir)
    if name in ON_PIXELS:
        return function(images, chosen.row(name, severity), _as_seed(seed), chosen.scale(height, width))
    return ops.to_pixels(function(tf.cast(images, tf.float32) / 255.0, chosen.row(name, severity), _as_seed(seed), chosen.scale(height, width)))


def _corrupt_block(images, seed, *, name, severity, parameters, frost_dir):
    return corrupt_tf(images, name, severity, seed, parameters, frost_dir)


@functools.lru_cache(maxsize=256)
def _compiled(name: str, severity: int, height: int, width: int, parameters: ParameterSet, frost_dir: str | None):
    signature = [tf.TensorSpec([None, height, width, 3], tf.uint8), tf.TensorSpec([2], tf.int64)]
    # A partial rather than a lambda: TensorFlow counts retracing per code object, and would warn about
    # "excessive retracing" when many corruptions share one lambda's code.
    return tf.function(
        functools.partial(_corrupt_block, name=name, severity=severity, parameters=parameters, frost_dir=frost_dir),
        input_signature=signature,
        autograph=False,
        jit_compile=name in XLA_COMPILED,
    )


def blocks_at_once(name: str) -> int:
    return CONCURRENT_BLOCKS if name in CONCURRENT_CORRUPTIONS else 1


def _prepare(name, severity, height: int, width: int, parameters, frost_dir):
    """Validate, pick the set and load frost photographs (bad folders fail here, not in tracing);
    returns the compiled block function."""
    check_corruption(name, severity)
    _check_shape([None, height, width, 3])
    chosen = resolve_parameters(parameters, height, width, name)
    if name == "frost" and frost_dir is not None:
        _frost_photographs(str(frost_dir), height, width, _photo_factor(chosen, height, width))
    return _compiled(name, int(severity), height, width, chosen, None if frost_dir is None else str(frost_dir))


def corrupt(
    images: np.ndarray,
    name: str,
    severity: int,
    seed: int = 0,
    parameters: str | ParameterSet | None = None,
    frost_dir: str | os.PathLike | None = None,
    *,
    offset: int = 0,
) -> np.ndarray:
    """Corrupt uint8 images ``[N, H, W, 3]`` (or one ``[H, W, 3]`` image) with the corruption `name` at
    `severity` 1..5 with the `parameters` set's values (None: the set nearest the images' size); returns
    uint8 of the same shape. `offset`: the index of the first image in the set it was taken from, whose
    corruption then gives these images the same pixels."""
    check_corruption(name, severity)
    array = np.asarray(images)
    single = array.ndim == 3
    batch = array[None] if single else array
    _check_shape(batch.shape)
    if batch.dtype != np.uint8:
        raise UserError(f"images must be uint8 0..255, got {batch.dtype}")
    height, width = batch.shape[1], batch.shape[2]
    function = _prepare(name, severity, height, width, parameters, frost_dir)
    size = block_size(height, width)
    lead = _lead(offset, size)
    if lead and len(batch):  # stand-ins before the first image put it at its place in its block
        batch = np.concatenate([np.repeat(batch[:1], lead, axis=0), batch])

    def corrupt_block(start: int) -> np.ndarray:
        block = (offset - lead + start) // size
        return function(tf.constant(batch[start : start + size]), tf.constant([int(seed), block], tf.int64)).numpy()

    starts = range(0, len(batch), size)
    threads = min(blocks_at_once(name), len(starts))
    if threads > 1:
        # blocks are independent (each has its own seed): the same pixels in any order
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            blocks = list(pool.map(corrupt_block, starts))
    else:
        blocks = [corrupt_block(start) for start in starts]
    result = np.concatenate(blocks)[lead:] if blocks else np.zeros_like(batch)
    return result[0] if single else result


def _lead(offset: int, size: int) -> int:
    """How many images of its block come before image ``offset`` of a set."""
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise UserError(f"the offset of the first image must be a non-negative integer, got {offset!r}")
    return int(offset) % size


def corrupt_dataset(
    dataset: tf.data.Dataset,
    name: str,
    severity: int,
    seed: int = 0,
    parameters: str | ParameterSet | None = None,
    frost_dir: str | os.PathLike | None = None,
    *,
    offset: int = 0,
) -> tf.data.Dataset:
    """Corrupt an unbatched dataset of (uint8 image [H, W, 3], label) pairs (or of images alone) as it
    streams: the pixels of `corrupt` of all its images stacked (with the same `offset`), block by block,
    whatever its size (tf.data's executor may round a float step differently: a few values in a million
    differ by one grey level)."""
    image_spec = dataset.element_spec[0] if isinstance(dataset.element_spec, tuple) else dataset.element_spec
    if not isinstance(image_spec, tf.TensorSpec) or image_spec.shape.rank != 3:
        raise UserError(f"corrupt_dataset needs unbatched images [H, W, 3] (or (image, label) pairs), got {dataset.element_spec}")
    if image_spec.dtype != tf.uint8:
        raise UserError(f"images must be uint8 0..255, got {image_spec.dtype.name}")
    height, width, channels = image_spec.shape
    if channels != 3 or height is None or width is None:
        raise UserError(f"images must be [H, W, 3] with H and W known, got {list(image_spec.shape)}")
    function = _prepare(name, severity, height, width, parameters, frost_dir)
    size = block_size(height, width)
    seed = int(seed)
    lead = _lead(offset, size)
    count = int(dataset.cardinality())
    if lead:  # stand-ins (copies of the first example) put the first image at its place in its block
        dataset = dataset.take(1).repeat(lead).concatenate(dataset)

    def corrupt_block(index, block):
        seeds = tf.stack([tf.constant(seed, tf.int64), index + (offset - lead) // size])
        if isinstance(block, tuple):
            return (function(block[0], seeds), *block[1:])
        return function(block, seeds)

    corrupted = dataset.batch(size).enumerate().map(corrupt_block, num_parallel_calls=blocks_at_once(name), deterministic=True).unbatch()
    corrupted = corrupted.skip(lead)
    # unbatch forgets the length; keeping it spares Keras' predict its "ran out of data" warning
    return corrupted.apply(tf.data.experimental.assert_cardinality(count)) if count >= 0 else corrupted
