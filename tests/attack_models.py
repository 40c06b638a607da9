"""Tiny models and data for the attack tests: scikit-learn's 8x8 digits and classifiers that learn them in a second."""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

from noisegame_cli.data.builtin import upscale_to_rgb


@functools.lru_cache(maxsize=1)
def digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """The 1 797 real 8x8 digits as uint8 [N, 8, 8, 1] in 0..255, and their labels."""
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, digits.target.astype(np.int64)


@functools.lru_cache(maxsize=1)
def digits_32x32() -> tuple[np.ndarray, np.ndarray]:
    """The same digits as the ``digits`` dataset shows them: uint8 [N, 32, 32, 3] (bilinear, grey to RGB)."""
    images, labels = digits_8x8()
    return upscale_to_rgb(images[..., 0].astype(np.float32), size=32), labels


def training_digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = digits_8x8()
    return images[:1400], labels[:1400]


def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = digits_8x8()
    return images[1400:], labels[1400:]


def small_cnn(epochs: int = 4, seed: int = 0) -> keras.Model:
    """A conv net on 0..255 pixels with logits out, about 95 % accurate on the held-out digits."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, labels = training_digits()
    model.fit(images, labels, batch_size=64, epochs=epochs, verbose=0)
    return model


def tiny_digits_cnn(epochs: int = 3, seed: int = 0) -> keras.Model:
    """Two strided convolutions on 32x32x3 digits (0..255 in, logits out), trained for a few seconds on the
    first 1 400 of ``digits_32x32`` (about 87 % accurate on the others): a model of the size of the
    benchmark's images that still costs little."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu", padding="same"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu", padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(0.005), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, labels = digits_32x32()
    model.fit(images[:1400], labels[:1400], batch_size=64, epochs=epochs, verbose=0)
    return model


def linear_model(weights: np.ndarray, bias: np.ndarray) -> keras.Model:
    """logits = weights.T @ (pixels / 255) + bias on flat inputs: decision boundaries are hyperplanes."""
    inputs = keras.Input((weights.shape[0],))
    dense = keras.layers.Dense(weights.shape[1])
    model = keras.Model(inputs, dense(keras.layers.Rescaling(1 / 255)(inputs)))
    dense.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    return model


class AlwaysDropout(keras.layers.Layer):
    """Dropout that stays on at inference: a randomised model."""

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, inputs, training=None):
        return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)


def with_layers(model: keras.Model, *layers) -> keras.Model:
    """``model`` followed by ``layers`` (e.g. a softmax), sharing its weights."""
    inputs = keras.Input(model.input_shape[1:])
    outputs = model(inputs)
    for layer in layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs)


def correctly_classified(model, images, labels) -> np.ndarray:
    return np.argmax(model(tf.cast(images, tf.float32), training=False), axis=-1) == labels


def correct_points(model, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` held-out digits that ``model`` classifies correctly (what an attack can break)."""
    images, labels = held_out_digits()
    keep = correctly_classified(model, images, labels)
    return images[keep][:count], labels[keep][:count]
