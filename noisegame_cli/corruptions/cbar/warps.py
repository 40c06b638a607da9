"""Geometric corruptions: pinch and twirl, ripple, circular motion blur and transverse chromatic
aberration. The first two resample the image bilinearly with black outside (the generator's own
bilinear interpolation); the last two use SciPy's cubic B-splines, written here as matrices built once
per size and severity (mirrored borders, as SciPy's spline code uses for its 'constant' mode)."""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf
from scipy import ndimage, sparse, special

from noisegame_cli.corruptions import _tensor as T
from noisegame_cli.corruptions.cbar.common import TWO_PI, CBarCorruption, float_parameter, per_image, uniform

# ---------------------------------------------------------------- pinch and twirl


def pinch_cells(frame) -> int:
    """Cells per axis: 5 for a set written for 224-px images, else 3 (the generator's rule)."""
    return 5 if frame.native_side == 224 else 3


def draw_pinch(batch, frame, level, seed):
    """A random sense of twist per cell, [N, cell row, cell column]."""
    cells = pinch_cells(frame)
    return {"signs": tf.where(uniform(seed, 0, [batch, cells, cells]) < 0.5, -1.0, 1.0)}


def render_pinch(images, frame, level, signs):
    """Each cell of a cells x cells grid (of side // cells px; the rest of the image untouched) is pinched
    and twisted inside its inscribed circle: a pixel at distance d (a fraction of the radius) from the
    cell's centre reads the image at distance d sin(pi d / 2)^(-amount), turned by angle (1 - d)^2,
    amount = 0.04 level + 0.1, angle = +-(pi / 20) level."""
    cells = signs.shape[1]
    cell_height, cell_width = frame.height // cells, frame.width // cells
    radius = min(cell_height, cell_width) / 2
    rows, cols = frame.grid()
    block_rows, block_cols = tf.floor(rows / cell_height), tf.floor(cols / cell_width)
    in_grid = (block_rows < cells) & (block_cols < cells)
    centre_rows, centre_cols = block_rows * cell_height + cell_height / 2, block_cols * cell_width + cell_width / 2
    block = tf.cast(tf.minimum(block_rows, cells - 1) * cells + tf.minimum(block_cols, cells - 1), tf.int32)
    flat = tf.reshape(signs, [tf.shape(signs)[0], cells * cells])
    angle = tf.gather(flat, tf.reshape(block, [-1]), axis=1)
    angle = tf.cast(tf.reshape(angle, [-1, frame.height, frame.width]), tf.float64) * float_parameter(level, math.pi / 2)
    d_rows, d_cols = rows - centre_rows, cols - centre_cols
    distance = tf.sqrt(d_rows**2 + d_cols**2)
    fraction = distance / radius
    stretch = tf.pow(tf.sin(math.pi / 2 * tf.maximum(fraction, 1e-9)), -(float_parameter(level, 0.4) + 0.1))
    twist = angle * (1.0 - fraction) ** 2
    source_rows = centre_rows + stretch * (d_rows * tf.cos(twist) - d_cols * tf.sin(twist))
    source_cols = centre_cols + stretch * (d_rows * tf.sin(twist) + d_cols * tf.cos(twist))
    moved = in_grid & (distance <= radius) & (distance > 0.0005)  # the generator leaves its centre pixel as it is
    shape = tf.shape(source_rows)
    source_rows = tf.where(moved, source_rows, tf.broadcast_to(rows, shape))
    source_cols = tf.where(moved, source_cols, tf.broadcast_to(cols, shape))
    return T.bilinear_sample(images, tf.cast(source_rows, tf.float32), tf.cast(source_cols, tf.float32), mode="zeros")


# ---------------------------------------------------------------- ripple


def draw_ripple(batch, frame, level, seed):
    """Per axis, a wavelength of 10-30 % of the side and a phase."""
    return {"wavelengths": uniform(seed, 0, [batch, 2], 0.1, 0.3) * frame.side, "phases": uniform(seed, 1, [batch, 2], 0.0, TWO_PI)}


def render_ripple(images, frame, level, wavelengths, phases):
    """Each axis displaced by a sine of its own coordinate, amplitude 0.0025 level side: row r reads row
    r + A sin(2 pi r / wavelength + phase), and likewise columns (a separable wobble, not rings)."""
    rows, cols = frame.grid()
    amplitude = float_parameter(level, 0.025) * frame.side
    shape = [tf.shape(wavelengths)[0], frame.height, frame.width]
    source_rows = rows + amplitude * tf.sin(TWO_PI * rows / per_image(wavelengths[:, 0]) + per_image(phases[:, 0]))
    source_cols = cols + amplitude * tf.sin(TWO_PI * cols / per_image(wavelengths[:, 1]) + per_image(phases[:, 1]))
    return T.bilinear_sample(images, tf.cast(tf.broadcast_to(source_rows, shape), tf.float32), tf.cast(tf.broadcast_to(source_cols, shape), tf.float32),
                             mode="zeros")  # fmt: skip


# ---------------------------------------------------------------- cubic B-splines as matrices


def cubic_bspline(offsets: np.ndarray) -> np.ndarray:
    """The cubic B-spline's weight at each offset."""
    t = np.abs(offsets)
    return np.where(t < 1, 2 / 3 - t**2 + t**3 / 2, np.where(t < 2, (2 - t) ** 3 / 6, 0.0))


def spline_taps(size: int, coordinates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights) [len(coordinates), 4]: the four spline coefficients each coordinate reads along an
    axis of `size`, neighbours past the border mirrored (dcb|abcd|cba)."""
    first = np.floor(coordinates)[:, None] + np.arange(-1, 3)
    return T.fold_indices(first.astype(int), size, "reflect101"), cubic_bspline(coordinates[:, None] - first)


def spline_matrix(size: int, coordinates: np.ndarray) -> np.ndarray:
    """[len(coordinates), size]: cubic B-spline interpolation of unfiltered values along one axis."""
    indices, weights = spline_taps(size, coordinates)
    matrix = np.zeros((len(coordinates), size))
    np.add.at(matrix, (np.arange(len(coordinates))[:, None], indices), weights)
    return matrix


@functools.lru_cache(maxsize=None)
def prefilter_matrix(size: int) -> np.ndarray:
    """SciPy's cubic spline prefilter along one axis (mirrored borders) as a [size, size] matrix."""
    return ndimage.spline_filter1d(np.eye(size), order=3, axis=0, mode="mirror")


# ---------------------------------------------------------------- circular motion blur

BLUR_ROTATIONS = 21


@functools.lru_cache(maxsize=16)
def circular_blur_operator(height: int, width: int, level: float) -> sparse.csr_matrix:
    """The blur as one sparse [H W, H W] matrix on spline coefficients: the weighted sum of SciPy's
    ``rotate(reshape=False)`` (order 3, 0 where the rotated position leaves the image) by 21 angles
    evenly spaced in +-1.5 level degrees, weights exp(-2 t^2), t in -1..1, normalised."""
    positions = 2 * np.arange(BLUR_ROTATIONS) / (BLUR_ROTATIONS - 1) - 1
    weights = np.exp(-2 * positions**2)
    weights /= weights.sum()
    rows, cols = (grid.ravel() for grid in np.meshgrid(np.arange(height), np.arange(width), indexing="ij"))
    centre = (np.array([height, width]) - 1) / 2
    outputs, inputs, values = [], [], []
    for angle, weight in zip(positions * float_parameter(level, 15), weights):
        cos, sin = special.cosdg(angle), special.sindg(angle)
        offset = centre - np.array([[cos, sin], [-sin, cos]]) @ centre
        source_rows, source_cols = cos * rows + sin * cols + offset[0], -sin * rows + cos * cols + offset[1]
        inside = (source_rows >= 0) & (source_rows <= height - 1) & (source_cols >= 0) & (source_cols <= width - 1)
        row_taps, row_weights = spline_taps(height, source_rows[inside])
        col_taps, col_weights = spline_taps(width, source_cols[inside])
        outputs.append(np.repeat(np.nonzero(inside)[0], 16))
        inputs.append((row_taps[:, :, None] * width + col_taps[:, None, :]).ravel())
        values.append((weight * row_weights[:, :, None] * col_weights[:, None, :]).ravel())
    shape = (height * width, height * width)
    return sparse.coo_matrix((np.concatenate(values), (np.concatenate(outputs), np.concatenate(inputs))), shape=shape).tocsr()


def draw_nothing(batch, frame, level, seed):
    return {}


def render_circular_blur(images, frame, level):
    """Not a motion along a circle of the camera: the image rotated about its centre by 21 angles in
    +-1.5 level degrees (cubic splines, black where the rotation leaves the image), Gaussian-weighted."""
    height, width = frame.height, frame.width
    coefficients = T.along_axes(images / 255.0, prefilter_matrix(height), prefilter_matrix(width))
    operator = circular_blur_operator(height, width, level).tocoo()
    matrix = tf.sparse.reorder(tf.SparseTensor(np.stack([operator.row, operator.col], axis=1).astype(np.int64),
                                               operator.data.astype(np.float32), operator.shape))  # fmt: skip
    columns = tf.reshape(tf.transpose(coefficients, [1, 2, 0, 3]), [height * width, -1])
    blurred = tf.reshape(tf.sparse.sparse_dense_matmul(matrix, columns), [height, width, -1, 3])
    return tf.clip_by_value(tf.transpose(blurred, [2, 0, 1, 3]), 0.0, 1.0) * 255.0


# ---------------------------------------------------------------- transverse chromatic aberration


def aberration_zooms(level: float) -> tuple[float, float, float]:
    spread = float_parameter(level, 0.5)
    return 1.0, 1.0 + spread / 2, 1.0 + spread


@functools.lru_cache(maxsize=None)
def zoom_matrix(size: int, factor: float) -> np.ndarray:
    """SciPy's ``zoom(prefilter=False)`` along one axis (round(size factor) outputs on the corner-aligned
    grid, cubic B-spline weights on the unfiltered values), cropped to the central `size` outputs as the
    generator crops."""
    zoomed = int(round(size * factor))
    coordinates = np.arange(zoomed) * ((size - 1) / (zoomed - 1)) if zoomed > 1 else np.zeros(1)
    edge = (zoomed - size) // 2
    return spline_matrix(size, coordinates[edge : edge + size])


def draw_aberration(batch, frame, level, seed):
    """Which of the three zooms each channel gets: a random permutation per image, [N, 3]."""
    return {"zooms": tf.argsort(uniform(seed, 0, [batch, 3], dtype=tf.float32), axis=-1)}


def render_aberration(images, frame, level, zooms):
    """Each channel zoomed about the centre by 1, 1 + 0.025 level or 1 + 0.05 level (a permutation per
    image); the zoom skips the spline prefilter, so even the unzoomed channel is smoothed by the
    B-spline (1/6, 2/3, 1/6). Rounded, as SciPy stores uint8 results."""
    chosen = tf.one_hot(zooms, 3)  # [N, channel, zoom]
    out = tf.zeros_like(images)
    for index, factor in enumerate(aberration_zooms(level)):
        weights = chosen[:, None, None, :, index]  # 1 on the channel that gets this zoom
        channel = tf.reduce_sum(images * weights, axis=-1, keepdims=True)
        out += T.along_axes(channel, zoom_matrix(frame.height, factor), zoom_matrix(frame.width, factor)) * weights
    return tf.floor(out + 0.5)


PINCH_AND_TWIRL = CBarCorruption(draw_pinch, render_pinch)
RIPPLE = CBarCorruption(draw_ripple, render_ripple, xla=False)
CIRCULAR_MOTION_BLUR = CBarCorruption(draw_nothing, render_circular_blur, xla=False, static_level=True)
TRANSVERSE_CHROMATIC_ABERRATION = CBarCorruption(draw_aberration, render_aberration, xla=False, static_level=True)
