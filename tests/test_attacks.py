import keras
import numpy as np
import pytest
import tensorflow as tf

from noisegame_cli.attacks import gradient
from noisegame_cli.attacks import AttackSpec, fgsm, pgd, run_attack
from noisegame_cli.data import load_dataset
from noisegame_cli.errors import UserError

from helpers import quick_digits_classifier

# Karpathy, "Breaking linear classifiers on ImageNet" (2015): logistic regression with these x and w.
KARPATHY_X = np.array([2, -1, 3, -2, 2, 2, 1, -4, 5, 1], dtype=np.float32)
KARPATHY_W = np.array([-1, -1, 1, -1, 1, -1, 1, 1, -1, 1], dtype=np.float32)
# The model below reads 0..255 pixels as values in -10..10, so one unit of x is 255 / 20 pixels and the
# example's step of 0.5 in x is 0.5 / 20 in the 0..1 epsilon scale.
UNITS_PER_RANGE = 20.0


def karpathy_model() -> keras.Model:
    """Two logits [0, w.x]: softmax gives P(class 1) = sigmoid(w.x), the example's logistic regression."""
    inputs = keras.Input((10,))
    x = keras.layers.Rescaling(UNITS_PER_RANGE / 255, offset=-UNITS_PER_RANGE / 2)(inputs)
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.stack([np.zeros(10), KARPATHY_W], axis=1), np.zeros(2)])
    return model


def as_pixels(x):
    return ((x + UNITS_PER_RANGE / 2) * 255 / UNITS_PER_RANGE)[None, :]


def probability_of_class_1(model, pixels):
    return float(tf.nn.softmax(model(pixels))[0, 1])


@pytest.mark.parametrize("method", ["fgsm", "pgd", "targeted"])
def test_karpathy_logistic_regression_example(method):
    model = karpathy_model()
    pixels = as_pixels(KARPATHY_X)
    assert probability_of_class_1(model, pixels) == pytest.approx(0.0474, abs=5e-4)
    eps = 0.5 / UNITS_PER_RANGE
    if method == "fgsm":  # true class 0: the untargeted step pushes towards class 1
        adversarial = fgsm(model, pixels, [0], eps)
    elif method == "pgd":
        adversarial = pgd(model, pixels, [0], eps, steps=5, random_start=True)
    else:
        adversarial = fgsm(model, pixels, [1], eps, targeted=True)
    assert probability_of_class_1(model, adversarial) == pytest.approx(0.88, abs=5e-3)
    np.testing.assert_allclose(adversarial.numpy(), as_pixels(KARPATHY_X + 0.5 * np.sign(KARPATHY_W)), atol=1e-3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained_model(digits):
    # A conv net that learns digits in seconds (the registry's tiny_cnn needs many more epochs)
    return quick_digits_classifier(epochs=3)


@pytest.fixture(scope="module")
def test_batch(digits):
    images = digits.test.images[:64].astype(np.float32)
    images[:, 0, 0, :] = 0.0  # pixels at both ends of the range, to exercise the clipping
    images[:, 0, 1, :] = 255.0
    return images, digits.test.labels[:64]


def mean_loss(model, images, labels):
    return float(tf.reduce_mean(gradient.per_example_loss(model, tf.convert_to_tensor(images), labels)))


@pytest.mark.parametrize("eps", [0.0, 1 / 255, 8 / 255, 0.3])
def test_perturbation_stays_inside_the_budget_and_the_range(trained_model, test_batch, eps):
    images, labels = test_batch
    for adversarial in (
        fgsm(trained_model, images, labels, eps),
        pgd(trained_model, images, labels, eps, steps=3, step_size=eps),
        pgd(trained_model, images, labels, eps, steps=3, random_start=False),
    ):
        adversarial = adversarial.numpy()
        assert adversarial.dtype == np.float32 and adversarial.shape == images.shape
        assert np.abs(adversarial - images).max() <= eps * 255 + 1e-3
        assert adversarial.min() >= 0.0 and adversarial.max() <= 255.0
    if eps > 0:  # FGSM moves every pixel whose gradient is non-zero by exactly eps (unless clipped)
        moved = np.abs(fgsm(trained_model, images, labels, eps).numpy() - images)
        assert np.isclose(moved, eps * 255, atol=1e-3).mean() > 0.5


def test_attacks_raise_the_loss_and_pgd_is_at_least_as_strong_as_fgsm(trained_model, test_batch):
    images, labels = test_batch
    eps = 8 / 255
    clean = mean_loss(trained_model, images, labels)
    with_fgsm = mean_loss(trained_model, fgsm(trained_model, images, labels, eps), labels)
    with_pgd = mean_loss(trained_model, pgd(trained_model, images, labels, eps, steps=10), labels)
    assert clean < with_fgsm <= with_pgd


def test_targeted_attacks_move_towards_the_target(trained_model, test_batch):
    images, labels = test_batch
    target = np.full_like(labels, 3)

    def target_log_probability(batch):
        return float(tf.reduce_mean(tf.nn.log_softmax(trained_model(batch))[:, 3]))

    before = target_log_probability(images)
    after_fgsm = target_log_probability(fgsm(trained_model, images, target, 8 / 255, targeted=True))
    after_pgd = target_log_probability(pgd(trained_model, images, target, 8 / 255, targeted=True))
    assert before < after_fgsm <= after_pgd


def test_pgd_random_start_is_seeded(trained_model, test_batch):
    images, labels = test_batch
    first = pgd(trained_model, images, labels, 4 / 255, steps=2, seed=1).numpy()
    again = pgd(trained_model, images, labels, 4 / 255, steps=2, seed=1).numpy()
    other = pgd(trained_model, images, labels, 4 / 255, steps=2, seed=2).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_new_budgets_steps_and_batch_sizes_do_not_retrace(trained_model, test_batch):
    images, labels = test_batch
    for count in (64, 32):  # warm up: the second shape makes the batch dimension generic
        fgsm(trained_model, images[:count], labels[:count], 1 / 255)
        pgd(trained_model, images[:count], labels[:count], 1 / 255, steps=2)
    fgsm_traces = gradient._compiled_fgsm.experimental_get_tracing_count()
    pgd_traces = gradient._compiled_pgd.experimental_get_tracing_count()
    for count, eps, steps in ((16, 2 / 255, 3), (40, 0.1, 5)):
        fgsm(trained_model, images[:count], labels[:count], eps)
        pgd(trained_model, images[:count], labels[:count], eps, steps=steps, step_size=eps / 2)
    assert gradient._compiled_fgsm.experimental_get_tracing_count() == fgsm_traces
    assert gradient._compiled_pgd.experimental_get_tracing_count() == pgd_traces


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_budget_out_of_range_is_a_user_error(trained_model, test_batch, bad):
    images, labels = test_batch
    with pytest.raises(UserError, match="epsilon"):
        fgsm(trained_model, images, labels, bad)
    with pytest.raises(UserError, match="epsilon"):
        AttackSpec(eps=bad)


def test_bad_specs_are_user_errors():
    with pytest.raises(UserError, match="unknown attack"):
        AttackSpec(name="cw")
    with pytest.raises(UserError, match="step"):
        AttackSpec(name="pgd", steps=0)


def test_use_predictions_attacks_the_models_own_labels(trained_model, test_batch):
    images, labels = test_batch
    wrong = (np.asarray(labels) + 1) % 10  # labels the spec must ignore
    spec = AttackSpec(eps=4 / 255, use_predictions=True)
    predictions = np.argmax(trained_model.predict(images, verbose=0), axis=-1)
    expected = fgsm(trained_model, images, predictions, 4 / 255)
    np.testing.assert_allclose(run_attack(trained_model, images, wrong, spec).numpy(), expected.numpy())
