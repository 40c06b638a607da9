"""Marks painted on the image: checkerboard cutout, sparkles, inverse sparkles and lines."""

from __future__ import annotations

import math

import tensorflow as tf

from noisegame_cli.corruptions.cbar.common import TWO_PI, CBarCorruption, float_parameter, integers, normal, per_image, uniform

GREY = 128.0
WHITE = 255.0

# ---------------------------------------------------------------- checkerboard cutout


def draw_checkerboard(batch, frame, level, seed):
    """A rotation, a square size of 10-25 % of the side (at least 1 px) and one uniform draw per square of
    a grid [N, G, G] large enough for any size (each image reads the first cells x cells of it)."""
    shortest = max(0.1 * frame.side, frame.scale)
    extent = max(frame.height, frame.width)
    length = tf.maximum(uniform(seed, 1, [batch], 0.1, 0.25) * frame.side, frame.scale)
    most = int(4 * extent // shortest) + 1
    return {
        "angle": uniform(seed, 0, [batch], 0.0, TWO_PI),
        "length": length,
        "cells": tf.cast(tf.floor(4 * extent / length), tf.int32),
        "grid": uniform(seed, 2, [batch, most, most]),
    }


def render_checkerboard(images, frame, level, angle, length, cells, grid):
    """A rotated checkerboard of squares of `length`: of the squares of one colour, those whose grid draw
    is below level / 10 turn grey (128). A square's draw is grid[trunc(u), trunc(v)] with negative indices
    counted from the end of its cells x cells grid, as Python indexing does in the generator."""
    rows, cols = frame.grid()
    cos, sin, length = per_image(tf.cos(angle)), per_image(tf.sin(angle)), per_image(length)
    u = (cos * rows + sin * cols) / length
    v = (-sin * rows + cos * cols) / length
    same_colour = tf.floor(tf.math.floormod(u, 2.0)) == tf.floor(tf.math.floormod(v, 2.0))
    size = per_image(cells)

    def index(coordinate):
        truncated = tf.cast(coordinate, tf.int32)  # toward zero, as int() does
        return tf.where(truncated < 0, truncated + size, truncated)

    flat = tf.reshape(index(u) * tf.shape(grid)[-1] + index(v), [tf.shape(grid)[0], -1])
    draws = tf.reshape(tf.gather(tf.reshape(grid, [tf.shape(grid)[0], -1]), flat, batch_dims=1), tf.shape(u))
    cut = same_colour & (draws < float_parameter(level, 1.0))
    return tf.where(cut[..., None], GREY, images)


# ---------------------------------------------------------------- sparkles and inverse sparkles

MAX_RAYS = 200
SPARKLES = 5


def star_weight(frame, centre, rays, lengths, exponent: float):
    """The generator's sparkle: per pixel, the ray length interpolated at its angle around `centre`
    ([N, 2] row, col; `rays` [N] of `lengths` [N, MAX_RAYS] used), g = (length^2 / (distance^2 + 1e-4))
    ^ exponent, times 1 - (fraction between two rays - 1/2)^2, clipped to 0..1: [N, H, W, 1]."""
    rows, cols = frame.grid(tf.float32)
    d_rows, d_cols = rows - per_image(centre[:, 0]), cols - per_image(centre[:, 1])
    rays = per_image(rays)
    position = (tf.atan2(d_cols, d_rows) + math.pi) / TWO_PI * tf.cast(rays, tf.float32)
    ray = tf.cast(tf.floor(position), tf.int32)
    fraction = position - tf.floor(position)
    shape = tf.shape(position)

    def length_of(index):
        flat = tf.reshape(tf.math.floormod(index, rays), [shape[0], -1])
        return tf.reshape(tf.gather(lengths, flat, batch_dims=1), shape)

    first = length_of(ray)
    length = first + fraction * (length_of(ray + 1) - first)
    gain = (length**2 / (d_rows**2 + d_cols**2 + 1e-4 * frame.scale**2)) ** exponent
    return tf.clip_by_value((1.0 - (fraction - 0.5) ** 2) * gain, 0.0, 1.0)[..., None]


def draw_sparkles(batch, frame, level, seed):
    """Five stars anywhere, each of 50-199 rays whose lengths are radius (1 + 0.25 N(0, 1)), radius =
    0.01 level side, at least 1 px."""
    radius = float_parameter(level, 0.1) * frame.side
    lengths = tf.maximum(radius + 0.25 * radius * normal(seed, 3, [batch, SPARKLES, MAX_RAYS], tf.float32), frame.scale)
    centres = tf.stack([uniform(seed, 0, [batch, SPARKLES], dtype=tf.float32) * frame.height,
                        uniform(seed, 1, [batch, SPARKLES], dtype=tf.float32) * frame.width], axis=-1)  # fmt: skip
    return {"centres": centres, "rays": integers(seed, 2, [batch, SPARKLES], 50, MAX_RAYS), "lengths": lengths}


def render_sparkles(images, frame, level, centres, rays, lengths):
    """Each star in turn brightens towards white by its weight."""

    def brighten(star, images):
        weight = star_weight(frame, centres[:, star], rays[:, star], lengths[:, star], exponent=1.0)
        return star + 1, images + weight * (WHITE - images)

    return tf.while_loop(lambda star, images: star < SPARKLES, brighten, [tf.constant(0), images])[1]


def draw_inverse_sparkles(batch, frame, level, seed):
    """One star centred in the middle half of the image, of 50-199 rays of length radius (1 + 0.25 N(0, 1)),
    radius a quarter of the side."""
    radius = 0.25 * frame.side
    centre = tf.stack([uniform(seed, 0, [batch], 0.25, 0.75, tf.float32) * frame.height,
                       uniform(seed, 1, [batch], 0.25, 0.75, tf.float32) * frame.width], axis=-1)  # fmt: skip
    lengths = radius + 0.25 * radius * normal(seed, 3, [batch, MAX_RAYS], tf.float32)
    return {"centre": centre, "rays": integers(seed, 2, [batch], 50, MAX_RAYS), "lengths": lengths}


def render_inverse_sparkles(images, frame, level, centre, rays, lengths):
    """Not sparkles: the image shows through one star (exponent 0.13 level) and turns white around it."""
    weight = star_weight(frame, centre, rays, lengths, exponent=tf.cast(float_parameter(level, 65) / 50, tf.float32))
    return WHITE + weight * (images - WHITE)


# ---------------------------------------------------------------- lines


def line_count(frame, level):
    """The generator's int(density * size) lines, density = level / 10, at the set's native size."""
    return tf.cast(float_parameter(level, 1.0) * frame.native_side, tf.int32)


def draw_lines(batch, frame, level, seed):
    """Lines through points anywhere, at angles spread around one per image (a base angle, a spread of
    10-100 % of a full turn): as many as the highest level (10) draws; a level uses the first ones."""
    count = frame.native_side
    spread = uniform(seed, 1, [batch, 1], 0.1, 1.0)
    turns = uniform(seed, 3, [batch, count]) - 0.5
    return {
        "centres": uniform(seed, 2, [batch, count, 2]) * tf.constant([frame.height, frame.width], tf.float64),
        "angles": uniform(seed, 0, [batch, 1], 0.0, TWO_PI) + TWO_PI * spread * turns,
    }


def direction(start, end):
    """+1 where the line runs towards larger indices, else -1 (line_aa's sign)."""
    return tf.where(start < end, tf.ones_like(start), -tf.ones_like(start))


def render_lines(images, frame, level, centres, angles):
    """Grey (128) anti-aliased lines 2 sides long, drawn one after the other, each stored as uint8.

    A line is scikit-image's ``line_aa`` between endpoints truncated to integers: the pixels of its
    bounding box whose distance to the line, |cross product| / length, is below 1, weighted 1 - distance
    (its Bresenham walk draws exactly these). At other sizes the band is `scale` px wide."""
    rows, cols = frame.grid()
    margin = frame.scale - 1.0

    def draw_line(line, out):
        reach_rows, reach_cols = tf.cos(angles[:, line]) * frame.side, tf.sin(angles[:, line]) * frame.side
        ends = [tf.cast(tf.cast(value, tf.int32), tf.float64) for value in (
            centres[:, line, 0] - reach_rows, centres[:, line, 1] - reach_cols, centres[:, line, 0] + reach_rows, centres[:, line, 1] + reach_cols,
        )]  # fmt: skip
        row0, col0, row1, col1 = (per_image(end) for end in ends)
        span_rows, span_cols = tf.abs(row1 - row0), tf.abs(col1 - col0)
        steps_rows = (rows - row0) * direction(row0, row1)
        steps_cols = (cols - col0) * direction(col0, col1)
        norm = tf.where(span_rows + span_cols == 0, tf.ones_like(span_rows), tf.sqrt(span_rows**2 + span_cols**2))
        value = 1.0 - tf.abs(span_cols * steps_rows - span_rows * steps_cols) / (norm * frame.scale)
        in_box = (steps_rows >= -margin) & (steps_rows <= span_rows + margin) & (steps_cols >= -margin) & (steps_cols <= span_cols + margin)
        drawn = (in_box & (value > 0))[..., None]
        value = value[..., None]
        return line + 1, tf.where(drawn, tf.floor((1.0 - value) * out + value * GREY), out)

    count = tf.minimum(line_count(frame, level), tf.shape(angles)[1])
    _, out = tf.while_loop(lambda line, out: line < count, draw_line, [tf.constant(0), tf.cast(images, tf.float64)])
    return tf.cast(out, tf.float32)


CHECKERBOARD_CUTOUT = CBarCorruption(draw_checkerboard, render_checkerboard)
SPARKLES_CORRUPTION = CBarCorruption(draw_sparkles, render_sparkles)
INVERSE_SPARKLES = CBarCorruption(draw_inverse_sparkles, render_inverse_sparkles)
LINES = CBarCorruption(draw_lines, render_lines)
