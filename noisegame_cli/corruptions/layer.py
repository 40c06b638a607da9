"""Corruptions as a training augmentation: ``RandomCorruption``, a Keras preprocessing layer.

Each image of a batch gets one (corruption, severity) pair drawn uniformly from ``names x severities``;
the images that drew the same pair are corrupted together by the engine (``corrupt_tf``), so a batch
costs one call per pair drawn, not one per image. The layer corrupts only when called with
``training=True`` (``model.fit``, or explicitly in a ``tf.data`` map) and is the identity otherwise,
so a model that holds it evaluates on clean inputs. It takes uint8 images or float ones in 0..255
(as inside a model) and returns the same dtype; float inputs are rounded to whole grey levels first.

Randomness: a Keras ``SeedGenerator`` seeded by ``seed`` gives each call a fresh stateless seed, so
two layers with the same seed give the same images call after call, and successive calls differ.
``random_corruption`` is the stateless function underneath, for a caller that manages its own seeds.
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import keras
import tensorflow as tf

from noisegame_cli.corruptions.engine import check_corruption, corrupt_tf
from noisegame_cli.corruptions.names import SEVERITIES
from noisegame_cli.corruptions.parameters import check_set_has, parameter_set
from noisegame_cli.errors import UserError


def corruption_pairs(names: Sequence[str], severities: Sequence[int] = SEVERITIES) -> tuple[tuple[str, int], ...]:
    """Every (name, severity) pair, checked; a UserError for an unknown name, a bad severity or none."""
    if isinstance(names, str):
        names = (names,)
    if not names or not severities:
        raise UserError("RandomCorruption needs at least one corruption name and one severity")
    pairs = tuple((str(name), int(severity)) for name in names for severity in severities)
    for name, severity in pairs:
        check_corruption(name, severity)
    return pairs


MIN_PADDED = 16


def power_of_two_at_least(count: tf.Tensor) -> tf.Tensor:
    """The least power of two >= count (an int32 scalar >= 1)."""
    bits = count - 1
    for shift in (1, 2, 4, 8, 16):
        bits = tf.bitwise.bitwise_or(bits, tf.bitwise.right_shift(bits, shift))
    return bits + 1


def random_corruption(images, pairs: Sequence[tuple[str, int]], seed, parameters=None, frost_dir: str | os.PathLike | None = None):
    """Corrupt each image of a batch ``[N, H, W, 3]`` with one of ``pairs``, drawn per image from the
    stateless ``seed`` (an int ``[2]``); uint8 or float 0..255 in, the same dtype out."""
    images = tf.convert_to_tensor(images)
    dtype = images.dtype
    pixels = images if dtype == tf.uint8 else tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
    seed = tf.cast(tf.reshape(seed, [2]), tf.int64)
    drawn = tf.random.stateless_uniform(tf.shape(pixels)[:1], seed=seed, minval=0, maxval=len(pairs), dtype=tf.int32)
    result = pixels
    for index, (name, severity) in enumerate(pairs):
        where = tf.where(tf.equal(drawn, index))
        chosen = tf.gather_nd(pixels, where)
        pair_seed = tf.random.experimental.stateless_fold_in(seed, index)

        def corrupted(chosen=chosen, name=name, severity=severity, pair_seed=pair_seed):
            # The XLA-compiled steps compile once per batch size: a pair's share of a batch is padded to a
            # power of two (at least MIN_PADDED), so a few sizes recur instead of every count up to the batch size.
            count = tf.shape(chosen)[0]
            padded = tf.pad(chosen, [[0, power_of_two_at_least(tf.maximum(count, MIN_PADDED)) - count], [0, 0], [0, 0], [0, 0]])
            return corrupt_tf(padded, name, severity, pair_seed, parameters, frost_dir)[:count]

        part = tf.cond(tf.size(where) > 0, corrupted, lambda chosen=chosen: chosen)
        result = tf.tensor_scatter_nd_update(result, where, part)
    return result if dtype == tf.uint8 else tf.cast(result, dtype)


@keras.saving.register_keras_serializable(package="noisegame")
class RandomCorruption(keras.layers.Layer):
    """Corrupt each image with a corruption of ``names`` at a severity of ``severities``, drawn at
    random per image, with the ``parameters`` set's values (None: the set nearest the images' size);
    only when ``training``. ``seed`` (None: unseeded) fixes the sequence of draws."""

    def __init__(self, names: Sequence[str], severities: Sequence[int] = SEVERITIES, parameters: str | None = None, seed: int | None = None,
                 frost_dir: str | None = None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.pairs = corruption_pairs(names, severities)
        self.names = tuple(dict.fromkeys(name for name, _ in self.pairs))
        self.severities = tuple(dict.fromkeys(severity for _, severity in self.pairs))
        check_set_has(self.names, parameters)
        self.parameters = None if parameters is None else parameter_set(parameters).name
        self.seed = seed
        self.frost_dir = None if frost_dir is None else str(frost_dir)
        self.generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    @functools.cached_property
    def _function(self):
        # One traced graph per input signature; inside a tf.data map or a training step it is inlined.
        return tf.function(functools.partial(random_corruption, pairs=self.pairs, parameters=self.parameters, frost_dir=self.frost_dir),
                           reduce_retracing=True, autograph=False)  # fmt: skip

    def call(self, images, training=None):
        if not training:
            return images
        seed = keras.random.randint((2,), 0, 2**31 - 1, seed=self.generator, dtype="int32")
        return self._function(images, seed=seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "names": list(self.names), "severities": list(self.severities), "parameters": self.parameters,
                "seed": self.seed, "frost_dir": self.frost_dir}  # fmt: skip
