"""Procedural patterns laid over the image: single frequency greyscale, cocentric sine waves, plasma
noise, Perlin noise and caustic refraction (coordinates in float64: several patterns jump where a
modulo or a floor turns over, and float32 would move those edges by a pixel)."""

from __future__ import annotations

import math

import tensorflow as tf

from noisegame_cli.corruptions import _tensor as T
from noisegame_cli.corruptions.cbar.common import TWO_PI, CBarCorruption, as_images, float_parameter, integers, per_image, uniform

# ---------------------------------------------------------------- single frequency greyscale


def draw_single_frequency(batch, frame, level, seed):
    """A plane wave: one frequency uniform in (-pi, pi) rad/px, the other uniform within its magnitude,
    in random order between the two axes; a uniform phase. Frequencies are per native pixel."""
    magnitude = uniform(seed, 0, [batch], -math.pi, math.pi)
    other = uniform(seed, 1, [batch], -1.0, 1.0) * tf.abs(magnitude)
    swapped = uniform(seed, 2, [batch]) < 0.5
    col_frequency, row_frequency = tf.where(swapped, other, magnitude), tf.where(swapped, magnitude, other)
    return {"frequencies": tf.stack([col_frequency, row_frequency], axis=-1) / frame.scale, "phase": uniform(seed, 3, [batch], 0.0, TWO_PI)}


def render_single_frequency(images, frame, level, frequencies, phase):
    """``image + 19.6 level sin(col f0 + row f1 + phase)``, the same wave on every channel."""
    rows, cols = frame.grid()
    wave = tf.sin(cols * per_image(frequencies[:, 0]) + rows * per_image(frequencies[:, 1]) + per_image(phase))
    return images + as_images(float_parameter(level, 196) * wave)


# ---------------------------------------------------------------- cocentric sine waves


def draw_cocentric(batch, frame, level, seed):
    """A centre anywhere in the image, an angular frequency in (0, 10), a radial wobble and a ring width
    each up to a tenth of the side."""
    return {
        "centre": tf.stack([uniform(seed, 0, [batch]) * frame.height, uniform(seed, 1, [batch]) * frame.width], axis=-1),
        "frequency": uniform(seed, 2, [batch], 0.0, 10.0),
        "amplitude": uniform(seed, 3, [batch], 0.0, frame.side / 10),
        "ring_width": uniform(seed, 4, [batch], 0.0, frame.side / 10),
    }


def render_cocentric(images, frame, level, centre, frequency, amplitude, ring_width):
    """Not sine waves: a sawtooth of rings, ``((r + amplitude sin(frequency theta)) mod width) / width -
    1/2`` times 12.8 level, added to every channel; theta is measured as ``atan2(dx, dy)`` (the generator
    passes x first), so a non-integer frequency leaves a seam along one ray."""
    rows, cols = frame.grid()
    d_rows, d_cols = rows - per_image(centre[:, 0]), cols - per_image(centre[:, 1])
    angle = tf.atan2(d_cols, d_rows) * per_image(frequency)
    width = per_image(tf.maximum(ring_width, 1e-12))
    radius = tf.sqrt(d_cols**2 + d_rows**2) + tf.sin(angle) * per_image(amplitude)
    sawtooth = tf.math.floormod(radius, width) / width - 0.5
    return images + as_images(float_parameter(level, 128) * sawtooth)


# ---------------------------------------------------------------- plasma noise

PLASMA_MAX_ITERATIONS = 6


def draw_plasma(batch, frame, level, seed):
    """A time in (0, 6 pi), 4 to 6 iterations, a sharpness in (0.5, 1) and a length of 7.5-20 % of the side."""
    return {
        "time": uniform(seed, 0, [batch], 0.0, 3.0 * TWO_PI),
        "iterations": integers(seed, 1, [batch], 4, PLASMA_MAX_ITERATIONS + 1),
        "sharpness": uniform(seed, 2, [batch], 0.5, 1.0),
        "length": uniform(seed, 3, [batch], 0.075, 0.2) * frame.side,
    }


def render_plasma(images, frame, level, time, iterations, sharpness, length):
    """An iterated map of (col, row) / length (each step pushes the point by rotated cosines and sines of
    growing frequency), then sines of the end point as R, G and B; the image is dimmed by
    ``1 - 6.4 level / 255`` and the pattern (-1..1) times 6.4 level added."""
    rows, cols = frame.grid()
    time, length = per_image(time), per_image(length)
    x, y = cols / length, rows / length
    for step in range(PLASMA_MAX_ITERATIONS):
        # the generator's fourth factor starts at 0 and is only ever multiplied, so it stays 0
        divisor = per_image((2.25 - sharpness) ** step)
        push_x = tf.cos(y * 1.93**step + time / 1.15**step) / divisor
        push_y = tf.sin(x * 1.93**step + time / 1.15**step) / divisor
        active = per_image(step < iterations)
        x = tf.where(active, x + push_x - 0.3 * push_y, x)
        y = tf.where(active, y + push_y + 0.3 * push_x, y)
    pattern = tf.stack([tf.sin(x - time), tf.sin((x + y + tf.sin(time)) * 0.5), tf.sin(y + time)], axis=-1)
    intensity = float_parameter(level, 64)
    return tf.cast(1.0 - intensity / 255.0, tf.float32) * images + tf.cast(intensity * pattern, tf.float32)


# ---------------------------------------------------------------- Perlin noise

PERLIN_TABLE = 256
PERLIN_OCTAVES = (1, 2, 4, 8, 16)


def draw_perlin(batch, frame, level, seed):
    """Perlin's tables, per image: a permutation of 0..255 and 256 unit gradients whose components are
    uniform integers in -256..255 before normalising (as the generator draws them)."""
    permutation = tf.argsort(uniform(seed, 0, [batch, PERLIN_TABLE], dtype=tf.float32), axis=-1)
    components = tf.cast(integers(seed, 1, [batch, PERLIN_TABLE, 2], -256, 256), tf.float64) / 256.0
    norms = tf.maximum(tf.norm(components, axis=-1, keepdims=True), 1e-12)
    return {"permutation": permutation, "gradients": components / norms}


def perlin_noise_2d(x, y, permutation, gradients):
    """Perlin's reference noise at (x, y) >= 0 (float64 [N, ...]) with per-image tables, times 1.5 as
    the generator scales it."""
    batch = tf.shape(x)[0]
    shape = tf.shape(x)

    def lookup(table, index):
        flat = tf.reshape(index, [batch, -1])
        return tf.reshape(tf.gather(table, flat, batch_dims=1), tf.concat([shape, tf.shape(table)[2:]], axis=0))

    cell_x, cell_y = tf.floor(x), tf.floor(y)
    rx0, ry0 = x - cell_x, y - cell_y
    bx0 = tf.math.floormod(tf.cast(cell_x, tf.int32), PERLIN_TABLE)
    by0 = tf.math.floormod(tf.cast(cell_y, tf.int32), PERLIN_TABLE)
    bx1, by1 = (bx0 + 1) % PERLIN_TABLE, (by0 + 1) % PERLIN_TABLE
    i, j = lookup(permutation, bx0), lookup(permutation, bx1)
    # the generator's tables repeat the first 258 entries, so index k reads entry k mod 256

    def corner(hash_a, rx, ry):
        gradient = lookup(gradients, lookup(permutation, hash_a % PERLIN_TABLE))
        return rx * gradient[..., 0] + ry * gradient[..., 1]

    sx, sy = rx0**2 * (3.0 - 2.0 * rx0), ry0**2 * (3.0 - 2.0 * ry0)
    rx1, ry1 = rx0 - 1.0, ry0 - 1.0
    u, v = corner(i + by0, rx0, ry0), corner(j + by0, rx1, ry0)
    a = u + sx * (v - u)
    u, v = corner(i + by1, rx0, ry1), corner(j + by1, rx1, ry1)
    b = u + sx * (v - u)
    return 1.5 * (a + sy * (b - a))


def render_perlin(images, frame, level, permutation, gradients):
    """Not plain Perlin noise: turbulence, sum over octaves f = 1..16 of |noise(f p)| / f, at a period
    of 32 px per 224 (p = (row, col) / period), as 0.5 t + 0.5 clipped to 0..1, blended over the image
    with weight 0.05 level."""
    rows, cols = frame.grid()
    period = 32.0 * frame.side / 224.0
    octaves = tf.constant(PERLIN_OCTAVES, tf.float64)[None, :, None, None]  # all octaves at once: [N, octave, H, W]
    shape = [tf.shape(permutation)[0], len(PERLIN_OCTAVES), frame.height, frame.width]
    x, y = tf.broadcast_to(octaves * rows[:, None] / period, shape), tf.broadcast_to(octaves * cols[:, None] / period, shape)
    turbulence = tf.reduce_sum(tf.abs(perlin_noise_2d(x, y, permutation, gradients)) / octaves, axis=1)
    pattern = tf.clip_by_value(0.5 * turbulence + 0.5, 0.0, 1.0)
    alpha = float_parameter(level, 0.5)
    return tf.cast(1.0 - alpha, tf.float32) * images + as_images(255.0 * alpha * pattern)


# ---------------------------------------------------------------- caustic refraction

CAUSTIC_STEPS = 5
REFRACTIVE_INDEX = 4.0


def draw_caustic(batch, frame, level, seed):
    """A time in (0.5, 2) and a pattern size of 75-125 % of the side."""
    return {"time": uniform(seed, 0, [batch], 0.5, 2.0), "size": uniform(seed, 1, [batch], 0.75, 1.25) * frame.side}


def caustic_pattern(frame, time, size):
    """The generator's caustic noise (a water-caustics shader), 0..1, [N, H, W]."""
    rows, cols = frame.grid()
    time, size = per_image(time), per_image(size)
    p0 = tf.math.floormod(rows / size, 1.0) * TWO_PI - 250.0
    p1 = tf.math.floormod(cols / size, 1.0) * TWO_PI - 250.0
    i0, i1 = p0, p1
    total = 1.0
    for step in range(CAUSTIC_STEPS):
        t = time * (1.0 - 3.5 / (step + 1))
        i0, i1 = p0 + tf.cos(t - i0) + tf.sin(t + i1), p1 + tf.sin(t - i1) + tf.cos(t + i0)
        total += 1.0 / tf.sqrt((p0 * 0.005 / tf.sin(i0 + t)) ** 2 + (p1 * 0.005 / tf.cos(i1 + t)) ** 2)
    total = 1.17 - (total / CAUSTIC_STEPS) ** 1.4
    return tf.clip_by_value(tf.abs(total) ** 8.0, 0.0, 1.0)


def neighbour_differences(pattern):
    """(pattern[r+1, c] - pattern[r-1, c], pattern[r, c+1] - pattern[r, c-1]), zero outside the image."""
    padded = tf.pad(pattern, [[0, 0], [1, 1], [1, 1]])
    return padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1], padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]


def refraction_offsets(along_rows, along_cols, lens_scale):
    """Where a vertical ray refracted (index 4) by a surface of slopes (along_rows, along_cols) lands,
    lens_scale away: the generator's rotation of the refracted ray in closed form, rounded to 1/1000 px
    as it rounds; no shift where the surface is within 1/1000 of flat (its cut-off)."""
    squared = along_rows**2 + along_cols**2
    length = tf.sqrt(squared + 1.0)
    sine_out = tf.sqrt(squared) / (length * REFRACTIVE_INDEX)
    factor = lens_scale * (tf.sqrt(1.0 - sine_out**2) - 1.0 / (REFRACTIVE_INDEX * length)) / length
    steep = 1.0 / length < 1.0 - 1e-3
    offsets = [tf.where(steep, tf.round(slope * factor * 1000.0) / 1000.0, 0.0) for slope in (along_rows, along_cols)]
    return offsets


def render_caustic(images, frame, level, time, size):
    """Caustic noise smoothed (Gaussian, sigma 1 px) taken as a lens: each pixel reads the image where its
    refracted ray lands (bilinear, black outside), lens_scale = 0.05 level side, and is lit by the slopes
    times 0.2 level; the result clipped to 0..1 and truncated, as the generator does. The slopes are per
    native pixel."""
    pattern = tf.cast(caustic_pattern(frame, time, size), tf.float32)
    pattern = tf.cast(T.gaussian_filter(pattern[..., None], 1.0 * frame.scale, mode="symmetric")[..., 0], tf.float64)
    along_rows, along_cols = (difference * frame.scale for difference in neighbour_differences(pattern))
    row_offset, col_offset = refraction_offsets(along_rows, along_cols, float_parameter(level, 0.5 * frame.side))
    rows, cols = frame.grid()
    sampled = T.bilinear_sample(images / 255.0, tf.cast(rows + row_offset, tf.float32), tf.cast(cols + col_offset, tf.float32), mode="zeros")
    # the generator's north/south are columns c -/+ 1 and west/east rows r -/+ 1: lighting = (E - W) - (S - N)
    lighting = tf.cast((along_rows - along_cols) * float_parameter(level, 2.0), tf.float32)[..., None]
    return tf.floor(tf.clip_by_value(sampled + lighting, 0.0, 1.0) * 255.0)


SINGLE_FREQUENCY_GREYSCALE = CBarCorruption(draw_single_frequency, render_single_frequency, xla=False)
COCENTRIC_SINE_WAVES = CBarCorruption(draw_cocentric, render_cocentric)
PLASMA_NOISE = CBarCorruption(draw_plasma, render_plasma, xla=False)
PERLIN_NOISE = CBarCorruption(draw_perlin, render_perlin)
CAUSTIC_REFRACTION = CBarCorruption(draw_caustic, render_caustic)
