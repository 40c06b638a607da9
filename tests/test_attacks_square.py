import keras
import numpy as np
import pytest
import tensorflow as tf

from attack_models import correct_points, correctly_classified, small_cnn, with_layers
from noisegame_cli.attacks import apgd, square
from noisegame_cli.attacks.square import l2_pattern, phase_starts, square_side
from noisegame_cli.errors import UserError


@pytest.fixture(scope="module")
def model():
    return small_cnn()


@pytest.fixture(scope="module")
def batch(model):
    return correct_points(model, 32)


@tf.custom_gradient
def no_gradient(inputs):
    def gradient(upstream):
        raise AssertionError("a gradient of the model was asked for")

    return tf.identity(inputs), gradient


class GradientTrap(keras.layers.Layer):
    """Passes its inputs through; asking for a gradient through it fails (when the graph is built)."""

    def call(self, inputs):
        return no_gradient(inputs)


def test_square_never_asks_for_a_gradient(model, batch):
    images, labels = batch
    trapped = with_layers(model, GradientTrap())
    with pytest.raises(AssertionError, match="gradient of the model"):  # the trap works
        apgd(trapped, images, labels, 8 / 255, steps=2)
    for norm, eps in (("Linf", 16 / 255), ("L2", 1.0)):
        adversarial = square(trapped, images, labels, eps, norm=norm, queries=200)
        assert correctly_classified(model, adversarial, labels).mean() < 1.0


@pytest.mark.parametrize("norm, eps", [("Linf", 16 / 255), ("L2", 1.0)])
def test_square_breaks_an_undefended_model_and_more_queries_break_more(model, batch, norm, eps):
    images, labels = batch
    few = correctly_classified(model, square(model, images, labels, eps, norm=norm, queries=20), labels).mean()
    many = correctly_classified(model, square(model, images, labels, eps, norm=norm, queries=600), labels).mean()
    assert many < few


def test_square_is_seeded(model, batch):
    images, labels = batch
    first = square(model, images, labels, 8 / 255, queries=50, seed=1).numpy()
    again = square(model, images, labels, 8 / 255, queries=50, seed=1).numpy()
    other = square(model, images, labels, 8 / 255, queries=50, seed=2).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_p_schedule_halves_p_at_the_originals_query_counts():
    # p_init / 2 ** k for queries in (10, 50], (50, 200], ... (8000, ...): phase k starts one query later
    assert phase_starts(5000) == [0, 11, 51, 201, 501, 1001, 2001, 4001, 6001, 8001]
    rescaled = phase_starts(1000, rescale=True)  # the query count mapped onto 10 000 first
    for start, boundary in zip(rescaled[1:], (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)):
        assert int(start / 1000 * 10000) > boundary >= int((start - 1) / 1000 * 10000)
    assert square_side(0.8, 32, 32, "Linf") == round(np.sqrt(0.8 * 1024))
    assert square_side(0.8 / 512, 32, 32, "Linf") == 1 and square_side(0.8 / 512, 32, 32, "L2") == 3
    assert square_side(0.8 / 4, 32, 32, "L2") % 2 == 1


@pytest.mark.parametrize("side", [1, 3, 4, 7, 9])
def test_the_l2_pattern_is_a_unit_positive_over_negative_square(side):
    pattern = l2_pattern(side)
    assert pattern.shape == (side, side)
    assert np.sqrt((pattern**2).sum()) == pytest.approx(1.0, abs=1e-6)
    assert (pattern[: side // 2] > 0).all() and (pattern[side // 2 :] < 0).all()
    if side % 2:  # the sides used after the start: centred, so symmetric left to right
        np.testing.assert_allclose(pattern, pattern[:, ::-1], atol=1e-7)


def test_bad_settings_are_user_errors(model, batch):
    images, labels = batch
    with pytest.raises(UserError, match="queries"):
        square(model, images, labels, 8 / 255, queries=0)
    with pytest.raises(UserError, match=r"\[N, H, W, C\]"):
        square(model, images.reshape(len(images), -1), labels, 8 / 255)
