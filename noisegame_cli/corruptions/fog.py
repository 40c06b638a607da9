"""Fog: a plasma fractal (diamond-square) added to the image, then the contrast compressed."""

from __future__ import annotations

import tensorflow as tf


def plasma_fractal(batch, map_size: int, decay: float, seed) -> tf.Tensor:
    """One periodic diamond-square fractal per image, [N, map_size, map_size] in 0..1.

    As in the generator: start from a single zero corner; at every level the new points are the mean
    of their four neighbours plus uniform noise of amplitude wibble^2 (wibble starts at 100 and is
    divided by `decay` per level), so coarse levels dominate more as `decay` grows.
    """
    grid = tf.zeros([batch, 1, 1])
    wibble = 100.0
    level = 0
    size = 1
    while size < map_size:

        def noisy_mean(total, draw):
            noise = tf.random.stateless_uniform(tf.shape(total), tf.random.experimental.stateless_fold_in(seed, 3 * level + draw), -1.0, 1.0)
            return total / 4.0 + wibble * wibble * noise

        corners = grid
        square_sum = corners + tf.roll(corners, -1, axis=1)
        square_sum = square_sum + tf.roll(square_sum, -1, axis=2)
        centres = noisy_mean(square_sum, 0)
        tops = noisy_mean(centres + tf.roll(centres, 1, axis=1) + corners + tf.roll(corners, -1, axis=2), 1)
        lefts = noisy_mean(centres + tf.roll(centres, 1, axis=2) + corners + tf.roll(corners, -1, axis=1), 2)
        even_rows = tf.reshape(tf.stack([corners, tops], axis=-1), [batch, size, 2 * size])
        odd_rows = tf.reshape(tf.stack([lefts, centres], axis=-1), [batch, size, 2 * size])
        grid = tf.reshape(tf.stack([even_rows, odd_rows], axis=2), [batch, 2 * size, 2 * size])
        size *= 2
        wibble /= decay
        level += 1
    low = tf.reduce_min(grid, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(grid, axis=[1, 2], keepdims=True)
    return (grid - low) / (high - low)


def fog(images, parameter, seed, scale):
    strength, decay = parameter
    height, width = images.shape[1], images.shape[2]
    map_size = 1 << (max(height, width) - 1).bit_length()
    plasma = plasma_fractal(tf.shape(images)[0], map_size, decay, seed)[:, :height, :width, None]
    brightest = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    fogged = images + strength * plasma
    return fogged * brightest / (brightest + strength)
