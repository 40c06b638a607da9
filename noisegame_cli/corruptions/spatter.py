"""Spatter: water drops (severities 1-3 of every set) or mud (4-5) on the image.

The water drops' lighting is computed step by step as the generator does it with OpenCV, as integer
TensorFlow ops that give OpenCV's values exactly: Canny edges of the 8-bit drop layer (3x3 Sobel, L1
gradient magnitude, non-maximum suppression, hysteresis 50/150), OpenCV's 5x5 chamfer approximation of
the Euclidean distance to the nearest edge, capped at 20 px, a 3x3 box blur truncated to 8 bits,
histogram equalisation, an emboss filter saturated to 8 bits and a last 3x3 box blur.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from noisegame_cli.corruptions import _tensor as T

WATER_COLOUR = (175.0, 238.0, 238.0)
MUD_COLOUR = (63.0, 42.0, 20.0)
CANNY_THRESHOLDS = (50, 150)
DISTANCE_CAP = 20
EMBOSS = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))
# OpenCV's distance transform adds float32 steps: its 5x5 mask for DIST_L2 weighs a straight step 1, a
# diagonal step 1.4 and a knight's step 2.1969. The passes here add the same float32 steps in the same
# float32 arithmetic; the result is handed on as int32 fixed point with 23 fractional bits (the float32
# grid of [1, 2)), exact for every float32 distance below 32 px; distances of 32 px or more (far beyond
# the cap) all become FAR.
FRACTION_BITS = 23
FIXED_ONE = 1 << FRACTION_BITS
STRAIGHT, DIAGONAL, KNIGHT = 1.0, 1.4, 2.1969
FAR = 64 * FIXED_ONE
FAR_DISTANCE = 64.0  # float32 distances of FAR_DISTANCE and beyond stand for "no edge within reach"
WIDEST_BINADE = 5  # values below 32 = 2^5


def spatter(images, parameter, seed, scale):
    loc, spread, sigma, threshold, intensity, mode = parameter
    height, width = images.shape[1], images.shape[2]
    liquid = loc + spread * tf.random.stateless_normal([tf.shape(images)[0], height, width, 1], seed)
    liquid = T.gaussian_filter(liquid, sigma * scale, mode="edge")
    liquid = tf.where(liquid < threshold, 0.0, liquid)
    if mode == 0:
        return images + water_drops(liquid, intensity) * tf.constant(WATER_COLOUR) / 255.0
    mud = T.gaussian_filter(tf.cast(liquid > threshold, tf.float32), intensity * scale, mode="edge")
    mud = tf.where(mud < 0.8, 0.0, mud)
    return images * (1 - mud) + mud * tf.constant(MUD_COLOUR) / 255.0


def water_drops(liquid: tf.Tensor, intensity: float) -> tf.Tensor:
    """How strongly each pixel shows the water colour, [N, H, W, 1] in 0..intensity, from the
    thresholded liquid layer [N, H, W, 1]: the 8-bit layer times its lighting, normalised per image."""
    # NumPy's uint8 cast of the float layer: truncation, and values past 255 wrap around
    layer = tf.math.floormod(tf.floor(liquid[..., 0] * 255.0), 256.0)
    drops = layer * tf.cast(_water_lighting(tf.cast(layer, tf.int32)), tf.float32)
    peak = tf.reduce_max(drops, axis=[1, 2], keepdims=True)
    # a layer without drops has no lighting maximum (the generator divides 0 by 0); it stays dry here
    return (tf.math.divide_no_nan(drops, peak) * intensity)[..., None]


def water_lighting(layer: tf.Tensor) -> tf.Tensor:
    """The lighting of the drops (int32 [N, H, W], 0..255) from the 8-bit drop layer (int32 [N, H, W])."""
    edges = canny(layer, *CANNY_THRESHOLDS)
    distance = tf.minimum(chamfer_distance(edges), DISTANCE_CAP * FIXED_ONE)
    distance = truncated_mean_3x3(distance)
    embossed = tf.clip_by_value(correlate_3x3(equalise_histogram(distance, DISTANCE_CAP + 1), EMBOSS), 0, 255)
    return rounded_box_blur_3x3(embossed)


# XLA turns the long chain of small integer steps into a few loops; integer work, so the compiled
# function gives the same values as plain execution.
_water_lighting = tf.function(water_lighting, jit_compile=True, autograph=False)


# ---------------------------------------------------------------- 3x3 neighbourhoods, integer images [N, H, W]


def _pad(values: tf.Tensor, width: int, mode: str, constant=0) -> tf.Tensor:
    paddings = [[0, 0], [width, width], [width, width]]
    if mode == "constant":
        return tf.pad(values, paddings, constant_values=constant)
    return tf.pad(values, paddings, mode=mode)


def _window(padded: tf.Tensor, row: int, col: int, height: int, width: int, margin: int = 1) -> tf.Tensor:
    """The padded image shifted so that output (i, j) reads input (i + row, j + col)."""
    return padded[:, margin + row : margin + row + height, margin + col : margin + col + width]


def correlate_3x3(values: tf.Tensor, kernel) -> tf.Tensor:
    """OpenCV's filter2D with a 3x3 kernel (correlation, reflected borders: dcb|abcd|cba)."""
    height, width = values.shape[1], values.shape[2]
    padded = _pad(values, 1, "REFLECT")
    total = None
    for (row, col), weight in np.ndenumerate(np.asarray(kernel)):
        if weight:
            term = int(weight) * _window(padded, row - 1, col - 1, height, width)
            total = term if total is None else total + term
    return total


def box_sum_3x3(values: tf.Tensor) -> tf.Tensor:
    return correlate_3x3(values, np.ones((3, 3), dtype=int))


def truncated_mean_3x3(distance: tf.Tensor) -> tf.Tensor:
    """OpenCV's 3x3 box blur of a float32 image (a sum in float64 times 1/9, stored as float32) followed
    by NumPy's cast to uint8 (truncation), for fixed-point distances (int32 FIXED_ONE = 1) below 32."""
    total = tf.cast(box_sum_3x3(distance), tf.float64) * (1.0 / FIXED_ONE)
    return tf.cast(tf.floor(tf.cast(total * (1.0 / 9.0), tf.float32)), tf.int32)


def rounded_box_blur_3x3(values: tf.Tensor) -> tf.Tensor:
    """OpenCV's 3x3 box blur of an 8-bit image: the mean rounded to the nearest integer (never a tie)."""
    return (box_sum_3x3(values) * 2 + 9) // 18


def sobel(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """3x3 Sobel derivatives (d/dx, d/dy) with repeated edge pixels, as Canny computes them."""
    height, width = values.shape[1], values.shape[2]
    padded = _pad(values, 1, "SYMMETRIC")  # a one-pixel symmetric pad repeats the edge pixel

    def at(row, col):
        return _window(padded, row, col, height, width)

    d_dx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    d_dy = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    return d_dx, d_dy


# tan(22.5 degrees) in OpenCV's 15-bit fixed point
TAN_22_5 = int(0.4142135623730950488 * (1 << 15) + 0.5)


def canny(values: tf.Tensor, low: int, high: int) -> tf.Tensor:
    """OpenCV's Canny edges (bool [N, H, W]) of an 8-bit image (int32 [N, H, W]): L1 gradient magnitude,
    non-maximum suppression along the gradient direction quantised to 4 directions, and hysteresis:
    pixels above `high`, and those above `low` connected to them (8-neighbourhood)."""
    height, width = values.shape[1], values.shape[2]
    d_dx, d_dy = sobel(values)
    magnitude = tf.abs(d_dx) + tf.abs(d_dy)
    padded = _pad(magnitude, 1, "constant")

    def near(row, col):
        return _window(padded, row, col, height, width)

    x, y = tf.abs(d_dx), tf.abs(d_dy) * (1 << 15)
    tan_22 = x * TAN_22_5
    horizontal = y < tan_22
    vertical = ~horizontal & (y > tan_22 + x * (1 << 16))
    rising = (d_dx < 0) != (d_dy < 0)  # the gradient points up-right or down-left
    peak_horizontal = (magnitude > near(0, -1)) & (magnitude >= near(0, 1))
    peak_vertical = (magnitude > near(-1, 0)) & (magnitude >= near(1, 0))
    peak_diagonal = tf.where(
        rising,
        (magnitude > near(-1, 1)) & (magnitude > near(1, -1)),
        (magnitude > near(-1, -1)) & (magnitude > near(1, 1)),
    )
    peak = tf.where(horizontal, peak_horizontal, tf.where(vertical, peak_vertical, peak_diagonal))
    candidate = peak & (magnitude > low)

    def grow(edges, _):
        grown = candidate & (_dilate_3x3(edges) | edges)
        return grown, tf.reduce_any(grown != edges)

    edges, _ = tf.while_loop(lambda _, changed: changed, grow, [candidate & (magnitude > high), tf.constant(True)])
    return edges


def _dilate_3x3(mask: tf.Tensor) -> tf.Tensor:
    """A pixel is set where any pixel of its 3x3 neighbourhood is (a logical or along rows, then along
    columns: about 3x faster under XLA than a max pool of the mask as float)."""
    padded = _pad(mask, 1, "constant", False)
    rows = padded[:, :-2] | padded[:, 1:-1] | padded[:, 2:]
    return rows[:, :, :-2] | rows[:, :, 1:-1] | rows[:, :, 2:]


def chamfer_distance(edges: tf.Tensor) -> tf.Tensor:
    """OpenCV's distanceTransform(DIST_L2, 5) to the nearest edge pixel (float32 values as int32 fixed
    point, FIXED_ONE = 1 px; FAR for 32 px or more). OpenCV's two raster passes with the 5x5 chamfer mask
    run here as scans over rows (rows above, then below), each row's left-to-right (right-to-left)
    dependence resolved by prefix minima."""
    distance = tf.where(edges, 0.0, FAR_DISTANCE)
    rows_first = tf.transpose(distance, [1, 0, 2])  # [H, N, W]
    forward = _chamfer_pass(rows_first, reverse=False)
    backward = tf.transpose(_chamfer_pass(forward, reverse=True), [1, 0, 2])
    # values stay at or below FAR_DISTANCE; scaling by a power of two and converting the integer-valued result are exact
    return tf.where(backward < float(1 << WIDEST_BINADE), tf.cast(backward * FIXED_ONE, tf.int32), FAR)


def _chamfer_pass(rows: tf.Tensor, reverse: bool) -> tf.Tensor:
    """One raster pass over float32 rows [H, N, W]: top-down, left to right (reverse: bottom-up, right
    to left); each pixel takes the least of its own value and its already-visited mask neighbours plus
    the step, each sum rounded to float32 as OpenCV's is."""
    width = rows.shape[2]
    far_row = tf.fill(tf.shape(rows[0]) + [0, 4], FAR_DISTANCE)
    sign = -1 if reverse else 1
    straight, diagonal, knight = (tf.constant(weight, tf.float32) for weight in (STRAIGHT, DIAGONAL, KNIGHT))

    def step(previous, row):
        nearer, further = previous  # the pass's previous two rows, padded with 2 columns of FAR_DISTANCE

        def at(padded, col, weight):  # a neighbour `col` columns along, in the pass's direction, plus a step
            col = sign * col
            return padded[:, 2 + col : 2 + col + width] + weight

        candidates = [at(further, -1, knight), at(further, 1, knight), at(nearer, -2, knight), at(nearer, -1, diagonal),
                      at(nearer, 0, straight), at(nearer, 1, diagonal), at(nearer, 2, knight)]  # fmt: skip
        reached = functools.reduce(tf.minimum, candidates, row)
        done = _along_row(reached, reverse)
        return tf.pad(done, [[0, 0], [2, 2]], constant_values=FAR_DISTANCE), nearer

    padded_rows, _ = tf.scan(step, rows, initializer=(far_row, far_row), reverse=reverse)
    return padded_rows[:, :, 2 : 2 + width]


def _along_row(values: tf.Tensor, reverse: bool) -> tf.Tensor:
    """OpenCV's in-row recursion ``d[j] = min(values[j], d[j - 1] + 1)`` (d[j + 1] when reversed) in
    float32, by doubling: out[j] = min over k of values[k] plus 1 added (j - k) times in float32 (one
    float32 addition at a time: adding j - k at once would round differently where a sum crosses a
    power of two)."""
    width = values.shape[-1]
    one = tf.constant(STRAIGHT, tf.float32)
    shift = 1
    while shift < min(width, 1 << WIDEST_BINADE):  # adding 32 or more gives 32 or more anyway
        far = tf.fill(tf.shape(values[:, :shift]), FAR_DISTANCE)
        moved = tf.concat([values[:, shift:], far], axis=1) if reverse else tf.concat([far, values[:, :-shift]], axis=1)
        for _ in range(shift):
            moved = moved + one
        values = tf.minimum(values, moved)
        shift *= 2
    return values


def equalise_histogram(values: tf.Tensor, levels: int = 256) -> tf.Tensor:
    """OpenCV's equalizeHist of 8-bit images (int32 [N, H, W], values below `levels`): lut[v] =
    round(255 * (count of values in (first, v]) / (count of values above first)), first the smallest
    value present; an image of one value is kept as it is."""
    shape = tf.shape(values)
    flat = tf.reshape(values, [shape[0], -1])
    # XLA has no batched bincount: one segment sum over (image, value) pairs counts every image at once
    image_offsets = tf.range(shape[0])[:, None] * levels
    counts = tf.reshape(tf.math.unsorted_segment_sum(tf.ones_like(flat), flat + image_offsets, shape[0] * levels), [shape[0], levels])
    cumulative = tf.cumsum(counts, axis=-1)
    total = tf.shape(flat)[1]
    first_count = tf.reduce_min(tf.where(cumulative > 0, cumulative, total), axis=-1, keepdims=True)
    scale = tf.math.divide_no_nan(tf.constant(255.0), tf.cast(total - first_count, tf.float32))
    lut = tf.cast(tf.round(tf.cast(tf.maximum(cumulative - first_count, 0), tf.float32) * scale), tf.int32)
    equalised = tf.gather(tf.minimum(lut, 255), flat, batch_dims=1)
    constant = tf.equal(first_count, total)
    return tf.reshape(tf.where(constant, flat, equalised), shape)
