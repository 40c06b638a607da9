"""Frost: the image dimmed and a frost texture added, ``out = c0 * x + c1 * frost`` (0..255 scale).

The original generator crops a random 32x32 patch from one of five frost photographs (resized by 0.2)
that cannot ship here. Two sources of texture are offered:

- ``synthetic_frost`` (default): a Gaussian random texture per image that reproduces, for a randomly
  chosen photograph profile, the photograph's channel means, the spread of a crop's mean, the std
  within a crop and the grey autocorrelation at 1, 2, 4 and 8 px (the reference's measurements).
  It is not a photograph: its ice-crystal edges are softer, and its channels move together.
  Each component is filtered with reflected borders (one random draw per pixel per component).
- ``photo_frost``: random crops of the user's own frost photographs (``frost_dir``), each resized by
  0.2 * size/32 first, as the generator does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from noisegame_cli.corruptions import _tensor as T
from noisegame_cli.corruptions.parameters import FROST_PHOTO_SCALE, FROST_PROFILES, FROST_TEXTURE_SIGMAS
from noisegame_cli.errors import UserError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _profile_table(column: int) -> tf.Tensor:
    return tf.constant([profile[column] for profile in FROST_PROFILES], tf.float32)


def texture_components(batch, height: int, width: int, seed, scale: float) -> list[tf.Tensor]:
    """White noise, then Gaussian-filtered white noise at each of FROST_TEXTURE_SIGMAS (times `scale`) px,
    each [N, H, W, 1] and of unit variance away from the borders. The filtering reflects the noise at the
    image borders (no margin to draw), which keeps the random draws to one per pixel per component."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, index) for index in range(len(FROST_TEXTURE_SIGMAS) + 1)]
    components = [tf.random.stateless_normal([batch, height, width, 1], seeds[0])]
    for index, sigma in enumerate(FROST_TEXTURE_SIGMAS, start=1):
        kernel = T.gaussian_kernel_1d(sigma * scale)
        noise = tf.random.stateless_normal([batch, height, width, 1], seeds[index])
        # filtered unit white noise has std sum(kernel^2) in 2-D
        components.append(T.separable_filter(noise, kernel, mode="symmetric") / float(np.sum(kernel**2)))
    return components


def texture_field(batch, height: int, width: int, weights: tf.Tensor, seed, scale: float) -> tf.Tensor:
    """Zero-mean, unit-std (per image) grey texture [N, H, W, 1]: the components mixed by `weights` [N, K]."""
    components = texture_components(batch, height, width, seed, scale)
    field = sum(tf.sqrt(weights[:, index])[:, None, None, None] * component for index, component in enumerate(components))
    mean, variance = tf.nn.moments(field, axes=[1, 2, 3], keepdims=True)
    return (field - mean) / tf.sqrt(variance + 1e-12)


def synthetic_frost(batch, height: int, width: int, seed, scale: float) -> tf.Tensor:
    """One synthetic frost texture per image, RGB 0..255, [N, H, W, 3]."""
    profile = tf.random.stateless_uniform([batch], seed, 0, len(FROST_PROFILES), dtype=tf.int32)
    means, channel_std, within_std = (tf.gather(_profile_table(column), profile) for column in range(3))
    weights = tf.gather(_profile_table(4), profile)
    crop_spread = tf.sqrt(tf.maximum(channel_std**2 - within_std**2, 0.0))
    shift = tf.random.stateless_normal([batch, 1], tf.random.experimental.stateless_fold_in(seed, 100))
    crop_means = means + crop_spread * shift
    field = texture_field(batch, height, width, weights, tf.random.experimental.stateless_fold_in(seed, 200), scale)
    texture = crop_means[:, None, None, :] + within_std[:, None, None, :] * field
    return tf.clip_by_value(texture, 0.0, 255.0)


def load_frost_photographs(folder: str | os.PathLike, height: int, width: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The photographs in `folder` resized by 0.2 * scale, zero-padded to one array [P, Hmax, Wmax, 3]
    (float32 0..255), with their sizes [P, 2]."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"frost folder not found: {folder}")
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in PHOTO_SUFFIXES)
    if not paths:
        raise UserError(f"no frost photographs (png/jpg) in {folder}")
    photos = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                size = (max(1, round(image.width * FROST_PHOTO_SCALE * scale)), max(1, round(image.height * FROST_PHOTO_SCALE * scale)))
                photos.append(np.asarray(image.resize(size, Image.BILINEAR), dtype=np.float32))
        except OSError as error:
            raise UserError(f"cannot read frost photograph {path}: {error}") from None
        if photos[-1].shape[0] <= height or photos[-1].shape[1] <= width:
            raise UserError(f"frost photograph {path} is too small: {photos[-1].shape[1]}x{photos[-1].shape[0]} after resizing by {FROST_PHOTO_SCALE * scale:.2f}, need more than {width}x{height}")
    sizes = np.array([photo.shape[:2] for photo in photos], dtype=np.int32)
    stacked = np.zeros((len(photos), sizes[:, 0].max(), sizes[:, 1].max(), 3), dtype=np.float32)
    for index, photo in enumerate(photos):
        stacked[index, : photo.shape[0], : photo.shape[1]] = photo
    return stacked, sizes


def photo_frost(photos: np.ndarray, sizes: np.ndarray, batch, height: int, width: int, seed) -> tf.Tensor:
    """A random height x width crop of a random photograph per image, [N, H, W, 3] in 0..255."""
    choice = tf.random.stateless_uniform([batch], seed, 0, len(photos), dtype=tf.int32)
    limits = tf.cast(tf.gather(tf.constant(sizes), choice) - [height, width], tf.float32)
    corner = tf.cast(tf.random.stateless_uniform([batch, 2], tf.random.experimental.stateless_fold_in(seed, 1)) * limits, tf.int32)
    rows = corner[:, 0:1] + tf.range(height)[None, :]  # [N, H]
    cols = corner[:, 1:2] + tf.range(width)[None, :]  # [N, W]
    shape = tf.stack([batch, height, width])
    index = tf.stack(
        [
            tf.broadcast_to(choice[:, None, None], shape),
            tf.broadcast_to(rows[:, :, None], shape),
            tf.broadcast_to(cols[:, None, :], shape),
        ],
        axis=-1,
    )
    return tf.gather_nd(tf.constant(photos), index)


def frost(images, parameter, seed, scale, photos=None):
    image_weight, frost_weight = parameter
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    if photos is None:
        texture = synthetic_frost(batch, height, width, seed, scale)
    else:
        texture = photo_frost(*photos, batch, height, width, seed)
    return image_weight * images + frost_weight * texture / 255.0
