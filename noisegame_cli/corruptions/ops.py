"""The corruptions as TensorFlow functions on float32 batches in 0..1.

Each function is ``f(images, parameter, seed, scale) -> images``: `images` float32 [N, H, W, 3] in 0..1,
`parameter` one severity's row of `parameters.PARAMETERS`, `seed` an int [2] tensor for the stateless
random ops, `scale` the factor for pixel-length parameters (1 for 32x32). The result may leave 0..1;
the engine clips, scales by 255 and truncates to uint8 as the published generator does.

Four corruptions whose results are whole grey levels anyway or come from a table (shot noise, impulse
noise, pixelate, JPEG) take and return the uint8 pixels instead (`ON_PIXELS`): the same values without
two float passes over the batch.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf
from scipy import stats

from noisegame_cli.corruptions import _tensor as T


ON_PIXELS = frozenset({"shot_noise", "impulse_noise", "pixelate", "jpeg_compression"})


def truncated_levels(values: tf.Tensor) -> tf.Tensor:
    """NumPy's uint8 cast of clip(values, 0, 1) * 255 (floor), as float grey levels 0..255."""
    return tf.floor(tf.clip_by_value(values, 0.0, 1.0) * 255.0 + 1e-3)


def to_pixels(values: tf.Tensor) -> tf.Tensor:
    """The engine's last step, as the generators store their float result: `truncated_levels` as uint8."""
    return tf.cast(tf.minimum(truncated_levels(values), 255.0), tf.uint8)


def stream(seed: tf.Tensor, index: int) -> tf.Tensor:
    """An independent seed for the index-th random draw of a corruption."""
    return tf.random.experimental.stateless_fold_in(seed, index)


def quantise(images: tf.Tensor) -> tf.Tensor:
    """Round to the nearest of 256 grey levels, as a step that stores an 8-bit image does."""
    return tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0) / 255.0


def truncate(images: tf.Tensor) -> tf.Tensor:
    """`truncated_levels` back in 0..1, as the generator stores an image between steps."""
    return truncated_levels(images) / 255.0


def batch_size(images: tf.Tensor) -> tf.Tensor:
    return tf.shape(images)[0]


# ---------------------------------------------------------------- noise


def gaussian_noise(images, sigma, seed, scale):
    return images + sigma * tf.random.stateless_normal(tf.shape(images), seed)


# Shot noise draws one of this many equally likely quantiles of the Poisson distribution per value.
POISSON_QUANTILES = 4096


@functools.lru_cache(maxsize=None)
def poisson_quantile_table(photons: float, quantiles: int = POISSON_QUANTILES) -> np.ndarray:
    """Flat float32 [256 * quantiles]: entry g * quantiles + q is the (q + 0.5) / quantiles quantile
    of Poisson(g / 255 * photons), divided by photons."""
    rates = np.arange(256) / 255.0 * photons
    counts = np.arange(int(photons + 12 * math.sqrt(photons) + 12))
    cdf = stats.poisson.cdf(counts[None, :], rates[:, None])
    probabilities = (np.arange(quantiles) + 0.5) / quantiles
    table = np.stack([np.searchsorted(row, probabilities) for row in cdf])
    return (table / photons).astype(np.float32).ravel()


def shot_noise(pixels, photons, seed, scale):
    """On uint8 pixels: Poisson(x * photons) / photons, sampled by inverse transform from a table of the
    Poisson quantiles for each of the 256 grey levels the 8-bit input can hold (the sampled CDF is within
    1 / (2 * POISSON_QUANTILES) of the Poisson's; ~3x faster than TensorFlow's Poisson sampler), the table
    holding each quantile as the engine's final 8-bit pixel."""
    bits = tf.random.stateless_uniform(tf.shape(pixels), seed, minval=None, maxval=None, dtype=tf.uint32)
    return _shot_lookup(pixels, bits, shot_noise_pixels(float(photons)))


@functools.lru_cache(maxsize=None)
def shot_noise_pixels(photons: float) -> np.ndarray:
    """`poisson_quantile_table` through the engine's `to_pixels`: uint8 [256 * POISSON_QUANTILES]."""
    with tf.init_scope():  # computed once, eagerly, even when first asked for while a graph is traced
        return to_pixels(tf.constant(poisson_quantile_table(photons))).numpy()


@tf.function(jit_compile=True, autograph=False)
def _shot_lookup(pixels, bits, table):
    # the low bits of a full 32-bit draw: uniform over the quantiles (POISSON_QUANTILES is a power of
    # two), and the draw TensorFlow's bounded integers would make; integer work, so XLA fuses it exactly
    quantile = tf.cast(tf.bitwise.bitwise_and(bits, POISSON_QUANTILES - 1), tf.int32)
    return tf.gather(table, tf.cast(pixels, tf.int32) * POISSON_QUANTILES + quantile)


def impulse_noise(pixels, amount, seed, scale):
    """On uint8 pixels: each value turns to salt (255) with probability amount / 2 and to pepper (0)
    with probability amount / 2; one uniform draw per value decides both."""
    return _salt_and_pepper(pixels, tf.random.stateless_uniform(tf.shape(pixels), seed), amount)


@tf.function(jit_compile=True, autograph=False)  # comparisons only: XLA fuses them exactly (about 1.8x)
def _salt_and_pepper(pixels, draws, amount):
    return tf.where(draws < amount, tf.cast(draws < amount / 2, tf.uint8) * 255, pixels)


def speckle_noise(images, sigma, seed, scale):
    return images + images * sigma * tf.random.stateless_normal(tf.shape(images), seed)


# ---------------------------------------------------------------- blur


def gaussian_blur(images, sigma, seed, scale):
    return T.gaussian_filter(images, sigma * scale, mode="edge")


def defocus_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """The generators' disk: a disk of `radius` on the integer grid -8..8 (-r..r beyond radius 8, r
    rounded up), normalised, then smoothed by a 3x3 (5x5 beyond radius 8) Gaussian of `alias_sigma` with
    OpenCV's reflected borders and not normalised again (a disk touching the grid's edge loses or gains
    a little weight, as in the generators); zero borders trimmed."""
    half = max(8, int(math.ceil(radius)))
    grid = np.arange(-half, half + 1)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    disk = (rows**2 + cols**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    taps = np.exp(-((np.arange(ksize) - ksize // 2) ** 2) / (2.0 * alias_sigma**2))
    kernel = T.filter_matrix(disk.shape[0], taps / taps.sum(), "reflect101")
    kernel = kernel @ disk @ kernel.T
    used = np.nonzero(np.abs(kernel).sum(axis=0) > 0)[0]
    reach = int(max(abs(used[0] - half), abs(used[-1] - half)))
    return kernel[half - reach : half + reach + 1, half - reach : half + reach + 1].astype(np.float32)


def defocus_blur(images, parameter, seed, scale):
    radius, alias_sigma = parameter
    return T.filter_2d(images, defocus_kernel(radius * scale, alias_sigma * scale), mode="reflect101")


def glass_blur(images, parameter, seed, scale):
    sigma, delta, iterations = parameter
    height, width, channels = images.shape[1:]
    sigma, delta = sigma * scale, max(1, round(delta * scale))
    blurred = truncate(T.gaussian_filter(images, sigma, mode="edge"))
    offsets = glass_offsets(batch_size(images), height, width, delta, iterations, seed)
    source = glass_sources(offsets, height, width, delta)
    flat = tf.reshape(blurred, [-1, height * width, channels])
    shuffled = tf.reshape(tf.gather(flat, source, batch_dims=1), tf.shape(images))
    return T.gaussian_filter(shuffled, sigma, mode="edge")


def glass_offsets(batch, height: int, width: int, delta: int, iterations: int, seed) -> tf.Tensor:
    """The random (row, column) offset, uniform in [-delta, delta), of every pixel the glass walk visits:
    int32 [iterations, N, height - 2 delta, width - 2 delta, 2] for rows and columns delta+1 ..
    height-delta (width-delta), top to bottom. Drawn images first, as every draw of the engine, so an
    image's offsets do not depend on how many images follow it in its block."""
    shape = [batch, iterations, height - 2 * delta, width - 2 * delta, 2]
    drawn = tf.random.stateless_uniform(tf.stack(shape), seed, minval=-delta, maxval=delta, dtype=tf.int32)
    return tf.transpose(drawn, [1, 0, 2, 3, 4])


def glass_sources(offsets: tf.Tensor, height: int, width: int, delta: int) -> tf.Tensor:
    """For every image, the flat index [N, H * W] of the pixel whose value each output pixel ends with.

    The generator walks rows from height-delta down to delta+1 and, within a row, columns from
    width-delta down to delta+1, and at each pixel runs ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on
    NumPy views: pixel (h, w) receives the value of (h', w') = (h + dy, w + dx) and (h', w') then gets
    its own value back, so nothing is swapped: each visited pixel copies its neighbour as it is at that
    moment. A neighbour visited earlier in the pass (a row below, or to the right in the same row) holds
    the value it copied itself, so values can hop along chains, which are followed by pointer jumping.
    With delta 1 the offsets are -1 or 0 and no neighbour has been visited yet: a one-step copy from
    above or the left. Each iteration copies from the previous one's result.
    """
    return _compiled_glass_sources(height, width, delta)(offsets)


# Integer work only, so XLA gives the same indices; it fuses the pointer jumping's gathers and
# comparisons (about 6x faster on 224x224 images on 2 CPU cores).
@functools.lru_cache(maxsize=None)
def _compiled_glass_sources(height: int, width: int, delta: int):
    return tf.function(functools.partial(_glass_sources, height=height, width=width, delta=delta), jit_compile=True, autograph=False)


def _glass_sources(offsets: tf.Tensor, height: int, width: int, delta: int) -> tf.Tensor:
    pad = [[0, 0], [delta + 1, delta - 1], [delta + 1, delta - 1]]
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    here = tf.constant((rows * width + cols).ravel(), tf.int32)
    total = None
    for step in tf.unstack(offsets, num=offsets.shape[0], axis=0):
        row_step, col_step = tf.pad(step[..., 0], pad), tf.pad(step[..., 1], pad)  # [N, H, W], 0 where not visited
        to_row, to_col = rows + row_step, cols + col_step
        visited_neighbour = (to_row > delta) & (to_row <= height - delta) & (to_col > delta) & (to_col <= width - delta)
        visited_before = visited_neighbour & ((row_step > 0) | ((row_step == 0) & (col_step > 0)))
        batch = tf.shape(step)[0]
        pointer = here + tf.reshape(row_step * width + col_step, [batch, -1])
        source = _follow_chains(pointer, tf.reshape(visited_before, [batch, -1]))
        total = source if total is None else tf.gather(total, source, batch_dims=1)
    return total


def _follow_chains(pointer: tf.Tensor, pending: tf.Tensor) -> tf.Tensor:
    """Pointer jumping: where `pending`, replace pointer[p] by pointer[pointer[p]] (and pending by the
    target's) until no pixel is pending; the chains end in a few doublings (they grow with probability
    below 1/2 per step)."""

    def jump(pointer, pending):
        return tf.where(pending, tf.gather(pointer, pointer, batch_dims=1), pointer), pending & tf.gather(pending, pointer, batch_dims=1)

    pointer, _ = tf.while_loop(lambda _, pending: tf.reduce_any(pending), jump, [pointer, pending])
    return pointer


def motion_blur(images, parameter, seed, scale):
    radius, sigma = parameter
    angles = tf.random.stateless_uniform([batch_size(images)], seed, minval=-45.0, maxval=45.0)
    return quantise(T.motion_blur(images, angles, radius * scale, sigma * scale))


def zoom_blur(images, factors, seed, scale):
    total = images
    for factor in factors:
        total += T.clipped_zoom(images, factor)
    return total / (len(factors) + 1)


# ---------------------------------------------------------------- weather


def snow(images, parameter, seed, scale):
    loc, spread, zoom, threshold, radius, sigma, blend = parameter
    height, width = images.shape[1], images.shape[2]
    layer = loc + spread * tf.random.stateless_normal([batch_size(images), height, width, 1], stream(seed, 0))
    layer = T.clipped_zoom(layer, zoom)
    layer = truncate(tf.where(layer < threshold, 0.0, layer))
    angles = tf.random.stateless_uniform([batch_size(images)], stream(seed, 1), minval=-135.0, maxval=-45.0)
    layer = quantise(T.motion_blur(layer, angles, radius * scale, sigma * scale))
    whitened = tf.maximum(images, T.grey(images) * 1.5 + 0.5)
    images = blend * images + (1 - blend) * whitened
    return images + layer + tf.reverse(layer, axis=[1, 2])


# ---------------------------------------------------------------- digital


def brightness(images, shift, seed, scale):
    hue, saturation, value = tf.unstack(tf.image.rgb_to_hsv(images), axis=-1)
    value = tf.clip_by_value(value + shift, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, saturation, value], axis=-1))


def saturate(images, parameter, seed, scale):
    factor, shift = parameter
    hue, saturation, value = tf.unstack(tf.image.rgb_to_hsv(images), axis=-1)
    saturation = tf.clip_by_value(saturation * factor + shift, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, saturation, value], axis=-1))


def contrast(images, factor, seed, scale):
    means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return (images - means) * factor + means


def elastic_transform(images, parameter, seed, scale):
    alpha, sigma, affine = (value * scale for value in parameter)
    batch = batch_size(images)
    height, width = images.shape[1], images.shape[2]
    rows, cols = T.pixel_grid(batch, height, width)
    source_rows, source_cols = random_affine_sources(rows, cols, height, width, affine, stream(seed, 0))
    images = T.bilinear_sample(images, source_rows, source_cols, mode="reflect101")
    if alpha == 0:
        return images
    fields = tf.random.stateless_uniform([batch, height, width, 2], stream(seed, 1), minval=-1.0, maxval=1.0)
    displacement = T.gaussian_filter(fields, sigma, mode="symmetric", truncate=3.0) * alpha
    return T.bilinear_sample(images, rows + displacement[..., 1], cols + displacement[..., 0], mode="symmetric")


def random_affine_sources(rows, cols, height, width, shift, seed):
    """Where each output pixel reads from under a random affine map that moves three fixed points
    (a triangle around the centre, a third of the image wide) by up to `shift` px each."""
    centre = np.array([width // 2, height // 2], dtype=np.float32)
    reach = min(height, width) // 3
    points = np.stack([centre + reach, [centre[0] + reach, centre[1] - reach], centre - reach]).astype(np.float32)
    batch = tf.shape(rows)[0]
    moved = points + tf.random.stateless_uniform([batch, 3, 2], seed, minval=-shift, maxval=shift)
    # the map from moved points back to the fixed ones gives each output pixel its source
    homogeneous = tf.concat([moved, tf.ones([batch, 3, 1])], axis=-1)
    inverse = tf.linalg.solve(homogeneous, tf.broadcast_to(points, [batch, 3, 2]))  # [N, 3, 2]
    coefficient = inverse[:, None, None, :, :]
    source_cols = cols * coefficient[..., 0, 0] + rows * coefficient[..., 1, 0] + coefficient[..., 2, 0]
    source_rows = cols * coefficient[..., 0, 1] + rows * coefficient[..., 1, 1] + coefficient[..., 2, 1]
    return source_rows, source_cols


def pixelate(pixels, fraction, seed, scale):
    """On uint8 pixels: PIL's box resize down to `fraction` of the size, then its box resize back up
    (which repeats pixels), in PIL's fixed-point arithmetic."""
    height, width = pixels.shape[1], pixels.shape[2]
    small = T.pil_box_resize(tf.cast(pixels, tf.int32), int(height * fraction), int(width * fraction))
    return tf.cast(T.pil_box_resize(small, height, width), tf.uint8)


def jpeg_compression(pixels, quality, seed, scale):
    """On uint8 pixels: one JPEG encode and decode per image (libjpeg, as PIL's save and open)."""
    height, width, channels = pixels.shape[1:]

    def round_trip(image):
        decoded = tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=quality), dct_method="INTEGER_ACCURATE")
        return tf.ensure_shape(decoded, [height, width, channels])

    return tf.map_fn(round_trip, pixels, fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8))
