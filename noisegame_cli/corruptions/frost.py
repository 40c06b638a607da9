"""Frost: the image dimmed and a frost texture added, ``out = c0 * x + c1 * frost`` (0..255 scale).

The original generators crop a random patch of the image's size from one of five frost photographs
(resized by 0.2 for CIFAR-10-C, 0.3 for Tiny-ImageNet-C, not at all for ImageNet-C) that cannot ship
here. Two sources of texture are offered:

- ``synthetic_frost`` (default): a Gaussian random texture per image that reproduces, for a randomly
  chosen photograph profile of the parameter set (``parameters.FrostTexture``), the photograph's
  channel means, the spread of a crop's mean, the std within a crop and the grey autocorrelation at the
  set's lags. It is not a photograph: its ice-crystal edges are softer, and its channels move together.
  Each component is filtered with reflected borders (one random draw per pixel per component).
- ``photo_frost``: random crops of the user's own frost photographs (``frost_dir``), each resized by
  the set's photo scale times the image's size scale first (OpenCV's bilinear, as the generators do).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from noisegame_cli.corruptions import _tensor as T
from noisegame_cli.corruptions.parameters import FrostTexture
from noisegame_cli.errors import UserError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _profile_table(texture: FrostTexture, field: str) -> tf.Tensor:
    return tf.constant([getattr(profile, field) for profile in texture.profiles], tf.float32)


def component_matrix(size: int, sigma: float) -> np.ndarray:
    """The linear map [size, noise size] from a line of unit white noise to a line of Gaussian-filtered
    noise of `sigma` px with unit variance at every pixel (rows normalised), reflected at the borders.
    Wide Gaussians filter noise on a coarser grid (a factor of 2^k, at most sigma / 2) and interpolate
    linearly: fewer random draws and small matrices, for a field as smooth."""
    factor = 1 if sigma < 4 else 1 << int(math.log2(sigma / 2))
    kernel = T.gaussian_kernel_1d(sigma / factor)
    if factor == 1:
        matrix = T.filter_matrix(size, kernel, "symmetric")
    else:
        coarse = size // factor + 2
        positions = (np.arange(size) + 0.5) / factor + 0.5  # inside [0, coarse - 1]
        lower = np.floor(positions).astype(int)
        fraction = positions - lower
        interpolation = np.zeros((size, coarse))
        interpolation[np.arange(size), lower] = 1 - fraction
        interpolation[np.arange(size), np.minimum(lower + 1, coarse - 1)] += fraction
        matrix = interpolation @ T.filter_matrix(coarse, kernel, "symmetric")
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def texture_components(batch, height: int, width: int, seed, scale: float, sigmas) -> list[tf.Tensor]:
    """White noise, then Gaussian-filtered white noise at each of `sigmas` (times `scale`) px, each
    [N, H, W, 1] with unit variance at every pixel (`component_matrix`)."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, index) for index in range(len(sigmas) + 1)]
    components = [tf.random.stateless_normal([batch, height, width, 1], seeds[0])]
    for index, sigma in enumerate(sigmas, start=1):
        rows, cols = component_matrix(height, sigma * scale), component_matrix(width, sigma * scale)
        noise = tf.random.stateless_normal([batch, rows.shape[1], cols.shape[1], 1], seeds[index])
        components.append(T.along_axes(noise, rows, cols))
    return components


def texture_field(batch, height: int, width: int, weights: tf.Tensor, seed, scale: float, sigmas) -> tf.Tensor:
    """Zero-mean, unit-std (per image) grey texture [N, H, W, 1]: the components mixed by `weights` [N, K]."""
    components = texture_components(batch, height, width, seed, scale, sigmas)
    field = sum(tf.sqrt(weights[:, index])[:, None, None, None] * component for index, component in enumerate(components))
    mean, variance = tf.nn.moments(field, axes=[1, 2, 3], keepdims=True)
    return (field - mean) / tf.sqrt(variance + 1e-12)


def synthetic_frost(batch, height: int, width: int, seed, scale: float, texture: FrostTexture) -> tf.Tensor:
    """One synthetic frost texture per image, RGB 0..255, [N, H, W, 3]; `scale` relative to the set's size."""
    profile = tf.random.stateless_uniform([batch], seed, 0, len(texture.profiles), dtype=tf.int32)
    means, channel_std, within_std, weights = (tf.gather(_profile_table(texture, field), profile) for field in ("means", "channel_std", "within_std", "weights"))
    crop_spread = tf.sqrt(tf.maximum(channel_std**2 - within_std**2, 0.0))
    shift = tf.random.stateless_normal([batch, 1], tf.random.experimental.stateless_fold_in(seed, 100))
    crop_means = means + crop_spread * shift
    field = texture_field(batch, height, width, weights, tf.random.experimental.stateless_fold_in(seed, 200), scale, texture.sigmas)
    colour = crop_means[:, None, None, :] + within_std[:, None, None, :] * field
    return tf.clip_by_value(colour, 0.0, 255.0)


def bilinear_resize(image: np.ndarray, factor: float) -> np.ndarray:
    """OpenCV's ``resize(image, (0, 0), fx=factor, fy=factor)`` (bilinear on pixel centres, no
    anti-aliasing, edge pixels repeated), float32."""
    image = np.asarray(image, dtype=np.float32)
    if factor == 1:
        return image

    def taps(size_in: int):
        size_out = max(1, int(round(size_in * factor)))
        position = np.clip((np.arange(size_out) + 0.5) / factor - 0.5, 0, size_in - 1)
        lower = np.minimum(np.floor(position).astype(int), size_in - 1)
        upper = np.minimum(lower + 1, size_in - 1)
        return lower, upper, (position - lower).astype(np.float32)

    (top, bottom, row_weight), (left, right, col_weight) = taps(image.shape[0]), taps(image.shape[1])
    rows = image[top] + (image[bottom] - image[top]) * row_weight[:, None, None]
    return rows[:, left] + (rows[:, right] - rows[:, left]) * col_weight[None, :, None]


def load_frost_photographs(folder: str | os.PathLike, height: int, width: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The photographs in `folder` resized by `factor` (rounded to 8 bits), zero-padded to one array
    [P, Hmax, Wmax, 3] (float32 0..255), with their sizes [P, 2]."""
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
                pixels = np.asarray(image.convert("RGB"))
        except OSError as error:
            raise UserError(f"cannot read frost photograph {path}: {error}") from None
        photos.append(np.round(bilinear_resize(pixels, factor)))
        if photos[-1].shape[0] <= height or photos[-1].shape[1] <= width:
            raise UserError(f"frost photograph {path} is too small: {photos[-1].shape[1]}x{photos[-1].shape[0]} after resizing by {factor:.2f}, need more than {width}x{height}")
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


def frost(images, parameter, seed, scale, texture: FrostTexture, photos=None):
    """``image weight * x + frost weight * frost``; the frost synthetic, or crops of `photos`
    (``load_frost_photographs``)."""
    image_weight, frost_weight = parameter
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    if photos is None:
        layer = synthetic_frost(batch, height, width, seed, scale, texture)
    else:
        layer = photo_frost(*photos, batch, height, width, seed)
    return image_weight * images + frost_weight * layer / 255.0
