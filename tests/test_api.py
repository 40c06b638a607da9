"""The Python API (``import noisegame``): docs/api.md's example run as written, and the ways images and
models enter it, each against a direct computation."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import noisegame
from noisegame_cli.errors import UserError

REPO = Path(__file__).resolve().parent.parent


def example_code() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    return code


@pytest.mark.slow  # trains a model for 4 epochs and runs a quick card: about 30 s
def test_the_documented_notebook_runs_as_written(tmp_path):
    printed, namespace = io.StringIO(), {}
    previous = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(example_code(), "docs/api.md", "exec"), namespace)
    finally:
        os.chdir(previous)
    assert (tmp_path / "fog.png").stat().st_size > 0
    model, test_images, test_labels = namespace["model"], namespace["test_images"], namespace["test_labels"]
    # the wrapped classifier on 0..255 pixels measures what the raw model measures on 0..1 inputs
    _, direct = model.evaluate(test_images / 255.0, test_labels, verbose=0)
    measured = noisegame.accuracy(namespace["classifier"], test_images, test_labels)
    assert measured["accuracy"] == pytest.approx(direct, abs=1e-6) and str(measured) in printed.getvalue()
    card = namespace["card"]
    first = model.predict(test_images[:64] / 255.0, verbose=0).argmax(-1)
    assert card["clean_acc"] == round(100 * np.mean(first == test_labels[:64]), 2)
    assert card["autoattack_acc"] < card["clean_acc"] and card["n_examples"] == 64
    rows = namespace["rows"]
    assert set(rows.query("condition == 'corruption' and metric == 'accuracy'")["corruption"]) == {"contrast", "pixelate"}


@pytest.fixture(scope="module")
def unit_model():
    """A tiny model trained on 0..1 inputs, with a softmax output (probabilities out)."""
    keras.utils.set_random_seed(1)
    images, labels = noisegame.load_dataset("digits", limit=300).train.arrays()
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, strides=4, activation="relu"), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images / 255.0, labels, epochs=2, verbose=0)
    return model


def test_images_enter_as_arrays_as_a_tf_dataset_or_a_split_alike(unit_model):
    classifier = noisegame.load_model(unit_model, input_range="0-1", verbose=False)
    split = noisegame.load_dataset("digits", limit=50).test
    images, labels = split.arrays()
    expected = noisegame.accuracy(classifier, images, labels)
    batched = tf.data.Dataset.from_tensor_slices((images, labels)).batch(7)
    assert noisegame.accuracy(classifier, batched) == expected
    assert noisegame.accuracy(classifier, split) == expected
    assert noisegame.accuracy(classifier, images.astype(np.float32), labels) == expected  # whole numbers of 0..255 pass
    probabilities = unit_model.predict(images / 255.0, verbose=0)
    assert expected["accuracy"] == pytest.approx(np.mean(probabilities.argmax(-1) == labels))
    # the softmax became logits: the loss is the cross-entropy of the probabilities themselves
    assert expected["loss"] == pytest.approx(-np.mean(np.log(probabilities[np.arange(len(labels)), labels])), rel=1e-4)


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.full((4, 32, 32, 3), 0.5, np.float32), np.zeros(4, int), "look like 0..1 values"),
        (np.full((4, 32, 32, 3), 300.0), np.zeros(4, int), "pixels in 0..255"),
        (np.zeros((4, 32, 32), np.uint8), np.zeros(4, int), "must be \\[N, H, W, C\\]"),
        (np.zeros((4, 32, 32, 3), np.uint8), np.zeros(3, int), "4 images but 3 labels"),
        (np.zeros((4, 32, 32, 3), np.uint8), None, "give the labels"),
    ],
)
def test_images_that_are_not_pixels_are_refused_in_one_line(unit_model, images, labels, message):
    with pytest.raises(UserError, match=message):
        noisegame.accuracy(noisegame.load_model(unit_model, verbose=False), images, labels)


def test_models_that_need_a_dataset_say_so():
    with pytest.raises(UserError, match="give dataset=NAME"):
        noisegame.load_model("app:MobileNetV3Small")
    with pytest.raises(UserError, match="--mean and --std go together"):
        noisegame.load_model(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]), mean=(0.5,) * 3)
