"""MALT's ordering of target classes, APGD-T with it, and the fast version of the protocol built on it."""

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from attack_models import correctly_classified, digits_32x32, linear_model, tiny_digits_cnn
from noisegame_cli.attacks import SETTINGS, VERSIONS, apgd_targeted, autoattack
from noisegame_cli.attacks.targets import logit_ranking, malt_ranking
from noisegame_cli.errors import UserError


@pytest.fixture(scope="module")
def linear():
    """A linear classifier on 20 inputs whose weight vectors differ widely in size: the class a point is
    nearest to in input space is often not its runner-up in the logits."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(20, 6)) * np.array([1.0, 0.2, 3.0, 0.5, 5.0, 1.5])
    bias = rng.normal(size=6)
    pixels = rng.uniform(0, 255, size=(200, 20)).astype(np.float32)
    labels = np.argmax(pixels / 255 @ weights + bias, axis=1)
    return linear_model(weights, bias), weights, bias, pixels, labels


@pytest.mark.parametrize("norm, dual", [("Linf", 1), ("L2", 2)])
def test_malt_orders_targets_by_the_distance_to_their_decision_boundary(linear, norm, dual):
    model, weights, bias, pixels, labels = linear
    x = pixels / 255
    logits = x @ weights + bias
    # for a linear model the linearisation is exact: distance to the boundary with class t is
    # |z_t - z_y| / ||w_t - w_y||_* (the dual norm of the budget's)
    gaps = np.abs(logits - logits[np.arange(len(labels)), labels][:, None])
    sizes = np.linalg.norm(weights.T[None, :, :] - weights.T[labels][:, None, :], ord=dual, axis=2)
    distances = np.where(np.arange(6)[None, :] == labels[:, None], np.inf, gaps / np.maximum(sizes, 1e-12))
    expected = np.argsort(distances, axis=1, kind="stable")[:, :5]
    found = malt_ranking(model, tf.constant(x), tf.constant(labels), tf.constant(logits, tf.float32), norm).numpy()
    np.testing.assert_array_equal(found[:, 0], expected[:, 0])
    assert (found[:, :5] == expected).mean() > 0.99  # ties aside
    by_logits = logit_ranking(model, x, labels, tf.constant(logits, tf.float32), norm).numpy()
    assert (by_logits[:, 0] != found[:, 0]).mean() > 0.05  # not the logits' choice everywhere


def test_apgd_t_goes_for_the_classes_of_the_ranking_asked_for(linear):
    model, _, _, pixels, labels = linear
    with pytest.raises(UserError, match="ranking"):
        apgd_targeted(model, pixels, labels, 0.1, ranking="confidence")
    for ranking in ("logits", "malt"):
        adversarial = apgd_targeted(model, pixels, labels, 0.05, steps=10, n_target_classes=1, ranking=ranking).numpy()
        assert not correctly_classified(model, adversarial, labels).all()


def test_the_fast_version_runs_apgd_ce_then_malt_targets_and_says_it_is_not_standard():
    model = tiny_digits_cnn()
    images, labels = digits_32x32()
    images, labels = images[1400:1440], labels[1400:1440]
    assert VERSIONS["fast"] == ("apgd-ce", "apgd-t-malt") and SETTINGS["fast"].n_target_classes == 3
    quick = replace(SETTINGS["fast"], steps=5)
    adversarial, result = autoattack(model, images, labels, 24 / 255, version="fast", settings=quick, verbose=False)
    assert list(result.robust_accuracy) == ["clean", "apgd-ce", "apgd-t-malt"]
    assert "version" in [flag.check for flag in result.flags]
    robust = correctly_classified(model, adversarial, labels)
    assert result.robust == pytest.approx(robust.mean()) and result.robust < result.clean_accuracy
