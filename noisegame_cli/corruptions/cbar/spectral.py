"""Noises made in the frequency domain: brownish noise and blue noise sample.

The generator gives each frequency an amplitude (blue: its distance from the spectrum's centre; brownish:
1 / (distance^2 + 1)) and a random phase, mirrors the phases of one half onto the other (reversed along
both axes, not negated, so the result is not real and its real part is kept), moves the centre to the
origin and takes the inverse FFT; the noise is divided by its standard deviation. Frequencies are counted
in cycles per image, so the noise keeps its look relative to the image at every size.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from noisegame_cli.corruptions.cbar.common import TWO_PI, CBarCorruption, float_parameter, uniform


@functools.lru_cache(maxsize=None)
def spectrum_distance(height: int, width: int) -> np.ndarray:
    """Each frequency's distance from the centre (height/2, width/2) of the unshifted spectrum."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.sqrt((cols - width / 2) ** 2 + (rows - height / 2) ** 2)


def draw_phases(batch, frame, seed, channels: int) -> dict:
    """Phases uniform in (0, 2 pi) for the left half of the spectrum [N, channels, H, W // 2] and, for an odd
    width, the upper half of the middle column [N, channels, H // 2]."""
    drawn = {"phases": uniform(seed, 0, [batch, channels, frame.height, frame.width // 2], 0.0, TWO_PI)}
    if frame.width % 2:
        drawn["middle"] = uniform(seed, 1, [batch, channels, frame.height // 2], 0.0, TWO_PI)
    return drawn


def spectral_noise(frame, amplitude: np.ndarray, phases, middle=None):
    """Unit-variance noise [N, channels, H, W] from the left-half phases (and the middle column's)."""
    mirrored = tf.reverse(phases, axis=[2, 3])
    halves = [phases]
    if frame.width % 2:
        centre = tf.concat([middle, tf.zeros_like(middle[..., : frame.height % 2]), tf.reverse(middle, axis=[2])], axis=2)
        halves.append(centre[..., None])
    full = tf.concat([*halves, mirrored], axis=3)
    spectrum = tf.complex(tf.cos(full), tf.sin(full)) * tf.constant(amplitude, tf.complex128)
    spectrum = tf.roll(spectrum, shift=[frame.height // 2, frame.width // 2], axis=[2, 3])
    noise = tf.math.real(tf.signal.ifft2d(spectrum))
    return noise / tf.math.reduce_std(noise, axis=[2, 3], keepdims=True)


def draw_blue_noise_sample(batch, frame, level, seed):
    return draw_phases(batch, frame, seed, channels=1)


def render_blue_noise_sample(images, frame, level, phases, middle=None):
    """Not noise added: the pixels where one blue noise (amplitude growing with frequency) lies at or
    below 0.3 level - 2.5 turn black, on all channels."""
    noise = spectral_noise(frame, spectrum_distance(frame.height, frame.width), phases, middle)[:, 0]
    return images * tf.cast(noise > float_parameter(level, 3.0) - 2.5, tf.float32)[..., None]


def draw_brownish_noise(batch, frame, level, seed):
    return draw_phases(batch, frame, seed, channels=3)


def render_brownish_noise(images, frame, level, phases, middle=None):
    """One low-frequency noise per channel (amplitude 1 / (distance^2 + 1)) times 6.4 level, added."""
    amplitude = 1.0 / (spectrum_distance(frame.height, frame.width) ** 2 + 1.0)
    noise = spectral_noise(frame, amplitude, phases, middle)
    return images + tf.cast(float_parameter(level, 64) * tf.transpose(noise, [0, 2, 3, 1]), tf.float32)


BLUE_NOISE_SAMPLE = CBarCorruption(draw_blue_noise_sample, render_blue_noise_sample, xla=False)
BROWNISH_NOISE = CBarCorruption(draw_brownish_noise, render_brownish_noise)
