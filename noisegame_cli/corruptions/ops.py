"""The corruptions as TensorFlow functions on float32 batches in 0..1.

Each function is ``f(images, parameter, seed, scale) -> images``: `images` float32 [N, H, W, 3] in 0..1,
`parameter` one severity's row of `parameters.PARAMETERS`, `seed` an int [2] tensor for the stateless
random ops, `scale` the factor for pixel-length parameters (1 for 32x32). The result may leave 0..1;
the engine clips, scales by 255 and truncates to uint8 as the published generator does.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf
from scipy import stats

from noisegame_cli.corruptions import _tensor as T


def stream(seed: tf.Tensor, index: int) -> tf.Tensor:
    """An independent seed for the index-th random draw of a corruption."""
    return tf.random.experimental.stateless_fold_in(seed, index)


def quantise(images: tf.Tensor) -> tf.Tensor:
    """Round to the nearest of 256 grey levels, as a step that stores an 8-bit image does."""
    return tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0) / 255.0


def truncate(images: tf.Tensor) -> tf.Tensor:
    """NumPy's uint8 cast of images * 255 (floor), as the generator does between steps."""
    return tf.floor(tf.clip_by_value(images, 0.0, 1.0) * 255.0 + 1e-3) / 255.0


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


def shot_noise(images, photons, seed, scale):
    """Poisson(x * photons) / photons, sampled by inverse transform from a table of the Poisson
    quantiles for each of the 256 grey levels the 8-bit input can hold: the sampled CDF is within
    1 / (2 * POISSON_QUANTILES) of the Poisson's, and the lookup is ~3x faster than TensorFlow's
    Poisson sampler."""
    levels = tf.cast(tf.round(images * 255.0), tf.int32)
    draws = tf.random.stateless_uniform(tf.shape(images), seed, minval=0, maxval=POISSON_QUANTILES, dtype=tf.int32)
    return tf.gather(poisson_quantile_table(float(photons)), levels * POISSON_QUANTILES + draws)


def impulse_noise(images, amount, seed, scale):
    """Each value turns to salt (1) with probability amount / 2 and to pepper (0) with probability
    amount / 2; one uniform draw per value decides both."""
    draws = tf.random.stateless_uniform(tf.shape(images), seed)
    return tf.where(draws < amount, tf.cast(draws < amount / 2, tf.float32), images)


def speckle_noise(images, sigma, seed, scale):
    return images + images * sigma * tf.random.stateless_normal(tf.shape(images), seed)


# ---------------------------------------------------------------- blur


def gaussian_blur(images, sigma, seed, scale):
    return T.gaussian_filter(images, sigma * scale, mode="edge")


def defocus_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """A disk of `radius` on the integer grid, normalised, smoothed by a 3x3 (5x5 beyond radius 8)
    Gaussian of `alias_sigma` to anti-alias it; zero borders trimmed."""
    half = max(8, int(math.ceil(radius)))
    grid = np.arange(-half, half + 1)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    disk = (rows**2 + cols**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    offsets = np.arange(ksize) - ksize // 2
    gaussian = np.exp(-(offsets**2) / (2.0 * alias_sigma**2))
    gaussian /= gaussian.sum()
    smoothing = np.outer(gaussian, gaussian)
    padded = np.pad(disk, ksize // 2)
    kernel = np.zeros_like(disk)
    for (i, j), weight in np.ndenumerate(smoothing):
        kernel += weight * padded[i : i + disk.shape[0], j : j + disk.shape[1]]
    used = np.nonzero(kernel.sum(axis=0) > 1e-12)[0]
    reach = int(max(abs(used[0] - half), abs(used[-1] - half)))
    kernel = kernel[half - reach : half + reach + 1, half - reach : half + reach + 1]
    return (kernel / kernel.sum()).astype(np.float32)


def defocus_blur(images, parameter, seed, scale):
    radius, alias_sigma = parameter
    return T.filter_2d(images, defocus_kernel(radius * scale, alias_sigma * scale), mode="reflect101")


def glass_permutation(batch, height: int, width: int, delta: int, iterations: int, seed) -> tf.Tensor:
    """For every image, the flat source index [N, H * W] of each output pixel after the glass shuffle.

    As in the generator: for rows h from height-delta down to delta+1 and, within a row, columns w
    from width-delta down to delta+1, swap pixel (h, w) with pixel (h + dy, w + dx), dy and dx uniform
    integers in [-delta, delta). The swaps run in sequence, so a pixel can travel several steps.
    """
    moved = glass_swap_order(height, width, delta, iterations)
    offsets = tf.random.stateless_uniform([len(moved), batch, 2], seed, minval=-delta, maxval=delta, dtype=tf.int32)
    return _glass_swaps(height, width, delta, iterations)(offsets)


@functools.lru_cache(maxsize=None)
def glass_swap_order(height: int, width: int, delta: int, iterations: int) -> np.ndarray:
    """The flat index of the pixel each swap step moves, in the order the steps run."""
    rows = np.arange(height - delta, delta, -1)
    columns = np.arange(width - delta, delta, -1)
    return np.tile((rows[:, None] * width + columns[None, :]).ravel(), iterations)


@functools.lru_cache(maxsize=None)
def _glass_swaps(height: int, width: int, delta: int, iterations: int):
    """The swap loop of `glass_permutation` as an XLA-compiled function of the random offsets
    ``[steps, N, 2]``: about a thousand small sequential steps, which XLA runs as one tight loop
    updating the indices in place. Integer work only, so compiled and plain execution give the same
    permutation."""
    here = glass_swap_order(height, width, delta, iterations)

    def run(offsets):
        batch = tf.shape(offsets)[1]
        there = offsets[..., 0] * width + offsets[..., 1] + here[:, None]
        image_index = tf.range(batch)

        def swap(step, source):
            here_index = tf.stack([image_index, tf.fill([batch], tf.constant(here, tf.int32)[step])], axis=1)
            there_index = tf.stack([image_index, there[step]], axis=1)
            values = tf.concat([tf.gather_nd(source, there_index), tf.gather_nd(source, here_index)], 0)
            return step + 1, tf.tensor_scatter_nd_update(source, tf.concat([here_index, there_index], 0), values)

        source = tf.tile(tf.range(height * width)[None, :], [batch, 1])
        _, source = tf.while_loop(lambda step, _: step < len(here), swap, [tf.constant(0), source])
        return source

    return tf.function(run, jit_compile=True, autograph=False)


def glass_blur(images, parameter, seed, scale):
    sigma, delta, iterations = parameter
    height, width, channels = images.shape[1:]
    sigma, delta = sigma * scale, max(1, round(delta * scale))
    blurred = truncate(T.gaussian_filter(images, sigma, mode="edge"))
    source = glass_permutation(batch_size(images), height, width, delta, iterations, seed)
    flat = tf.reshape(blurred, [-1, height * width, channels])
    shuffled = tf.reshape(tf.gather(flat, source, batch_dims=1), tf.shape(images))
    return T.gaussian_filter(shuffled, sigma, mode="edge")


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


def spatter(images, parameter, seed, scale):
    loc, spread, sigma, threshold, intensity, mode = parameter
    height, width = images.shape[1], images.shape[2]
    liquid = loc + spread * tf.random.stateless_normal([batch_size(images), height, width, 1], seed)
    liquid = T.gaussian_filter(liquid, sigma * scale, mode="edge")
    liquid = tf.where(liquid < threshold, 0.0, liquid)
    if mode == 0:
        shade = water_shading(liquid)
        drops = liquid * shade
        drops = tf.math.divide_no_nan(drops, tf.reduce_max(drops, axis=[1, 2], keepdims=True)) * intensity
        return images + drops * tf.constant([175.0, 238.0, 238.0]) / 255.0
    mud = T.gaussian_filter(tf.cast(liquid > threshold, tf.float32), intensity * scale, mode="edge")
    mud = tf.where(mud < 0.8, 0.0, mud)
    return images * (1 - mud) + mud * tf.constant([63.0, 42.0, 20.0]) / 255.0


def water_shading(liquid: tf.Tensor, max_distance: int = 20) -> tf.Tensor:
    """The lighting of the water drops, 0..255: the distance to the nearest drop edge (capped at 20 px),
    box-blurred, histogram-equalised, embossed (lit from the lower right) and box-blurred again.

    The generator finds the edges with Canny and measures Euclidean distance; here the edges are the
    drop pixels next to a dry pixel and the distance is the chessboard distance (see the module notes).
    """
    wet = tf.cast(liquid > 0, tf.float32)
    dry_nearby = 1.0 + T.max_filter_3x3(-wet)
    edges = wet * dry_nearby
    distance = tf.floor(T.box_filter(T.chessboard_distance(edges, max_distance)))
    equalised = equalise_histogram(distance)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)
    embossed = tf.clip_by_value(tf.round(T.filter_2d(equalised, emboss, mode="reflect101")), 0, 255)
    return T.box_filter(embossed)


def equalise_histogram(values: tf.Tensor) -> tf.Tensor:
    """Per-image histogram equalisation of integer values 0..255 in a [N, H, W, 1] float tensor."""
    shape = tf.shape(values)
    flat = tf.cast(tf.reshape(values, [shape[0], -1]), tf.int32)
    counts = tf.math.bincount(flat, minlength=256, maxlength=256, axis=-1)
    cdf = tf.cast(tf.cumsum(counts, axis=-1), tf.float32)
    first = tf.reduce_min(tf.where(cdf > 0, cdf, tf.float32.max), axis=-1, keepdims=True)
    total = cdf[:, -1:]
    lut = tf.round(tf.math.divide_no_nan((cdf - first) * 255.0, total - first))
    return tf.reshape(tf.gather(tf.clip_by_value(lut, 0, 255), flat, batch_dims=1), shape)


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
    alpha, sigma, affine = (value * 32 * scale for value in parameter)
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


def pixelate(images, fraction, seed, scale):
    height, width = images.shape[1], images.shape[2]
    small_height, small_width = int(height * fraction), int(width * fraction)
    small = T.along_axes(images, T.box_resize_matrix(height, small_height), T.box_resize_matrix(width, small_width))
    small = quantise(small)
    small = tf.gather(small, T.box_upsample_indices(small_height, height), axis=1)
    return tf.gather(small, T.box_upsample_indices(small_width, width), axis=2)


def jpeg_compression(images, quality, seed, scale):
    height, width, channels = images.shape[1:]
    pixels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)

    def round_trip(image):
        decoded = tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=quality), dct_method="INTEGER_ACCURATE")
        return tf.ensure_shape(decoded, [height, width, channels])

    decoded = tf.map_fn(round_trip, pixels, fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8))
    return tf.cast(decoded, tf.float32) / 255.0
