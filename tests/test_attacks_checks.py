from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from attack_models import AlwaysDropout, small_cnn, held_out_digits, with_layers
from noisegame_cli.attacks import SETTINGS, autoattack
from noisegame_cli.attacks import checks

QUICK = replace(SETTINGS["standard"], steps=3, square_queries=20, n_target_classes=2)


@pytest.fixture(scope="module")
def model():
    return small_cnn(epochs=2)


@pytest.fixture(scope="module")
def batch():
    images, labels = held_out_digits()
    return images[:24], labels[:24]


def test_probabilities_are_flagged_and_logits_are_not(model, batch):
    images, _ = batch
    assert checks.check_probabilities(model, images) is None
    flag = checks.check_probabilities(with_layers(model, keras.layers.Softmax()), images)
    assert flag.check == "probabilities" and "logits" in flag.message


def test_randomness_at_inference_is_flagged_with_the_rand_version(model, batch):
    images, labels = batch
    assert checks.check_randomized(model, images, labels) is None
    flag = checks.check_randomized(with_layers(model, AlwaysDropout(0.2)), images, labels)
    assert flag.check == "randomized" and 'version="rand"' in flag.message


def test_zero_gradients_are_flagged(model, batch):
    images, labels = batch
    assert checks.check_zero_gradients(model, images, labels) is None
    frozen = with_layers(model, keras.layers.Lambda(tf.stop_gradient))
    flag = checks.check_zero_gradients(frozen, images, labels)
    correct = int(np.sum(np.argmax(model(images), axis=-1) == labels))
    assert flag.check == "zero-gradients" and flag.message.startswith(f"{correct} of {correct} correctly classified")


def test_square_beating_the_gradient_attacks_is_flagged():
    honest = {"clean": 0.9, "apgd-ce": 0.5, "apgd-t": 0.45, "fab-t": 0.45, "square": 0.449}
    masked = {**honest, "square": 0.2}
    assert checks.check_square(honest) is None
    assert checks.check_square({"clean": 0.9, "square": 0.1}) is None  # nothing ran before Square
    flag = checks.check_square(masked)
    assert flag.check == "square" and "25.00%" in flag.message


def test_too_few_classes_are_flagged():
    assert checks.check_classes(10, ("apgd-ce", "apgd-t", "fab-t", "square"), 9, 9) is None
    flag = checks.check_classes(3, ("apgd-ce", "apgd-t", "fab-t"), 9, 9)
    assert "targeted DLR" in flag.message and "FAB-T" in flag.message
    assert "APGD-T asks for 9" in checks.check_classes(5, ("apgd-t",), 9, 9).message


def test_autoattack_reports_the_flags_it_raised(model, batch, capsys):
    images, labels = batch
    suspicious = with_layers(model, AlwaysDropout(0.2), keras.layers.Softmax())
    _, result = autoattack(suspicious, images, labels, 8 / 255, version="custom", attacks=["square"], settings=QUICK)
    assert {"probabilities", "randomized"} <= {flag.check for flag in result.flags}
    printed = capsys.readouterr().out
    assert "Warning (probabilities)" in printed and "Warning (randomized)" in printed
    _, clean = autoattack(model, images, labels, 8 / 255, settings=QUICK, verbose=False)
    assert [flag.check for flag in clean.flags if flag.check != "square"] == []
