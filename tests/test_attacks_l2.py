"""FGSM and PGD under an L2 budget (the Linf behaviour is covered by test_attacks.py)."""

import numpy as np
import pytest
import tensorflow as tf

from attack_models import correctly_classified, linear_model, small_cnn, held_out_digits
from noisegame_cli import keyed_random
from noisegame_cli.attacks import AttackSpec, check_budget, fgsm, pgd, run_attack
from noisegame_cli.attacks import gradient
from noisegame_cli.errors import UserError


@pytest.fixture(scope="module")
def model():
    return small_cnn(epochs=2)


@pytest.fixture(scope="module")
def batch():
    images, labels = held_out_digits()
    images = images[:40].astype(np.float32)
    images[:, 0, 0, :], images[:, 0, 1, :] = 0.0, 255.0
    return images, labels[:40]


def l2_change(adversarial, images):
    return np.linalg.norm(((np.asarray(adversarial) - images) / 255).reshape(len(images), -1), axis=1)


def test_l2_fgsm_steps_along_the_gradient_of_a_linear_model():
    # two logits [0, w.u]: the cross-entropy gradient of class 0 points along +w, so the L2 step is eps * w / |w|
    rng = np.random.default_rng(0)
    w = rng.normal(size=10)
    model = linear_model(np.stack([np.zeros(10), w], axis=1), np.zeros(2))
    pixels = rng.uniform(100, 150, size=(1, 10)).astype(np.float32)
    eps = 0.05
    adversarial = fgsm(model, pixels, [0], eps, norm="L2").numpy()
    np.testing.assert_allclose((adversarial - pixels) / 255, eps * w[None] / np.linalg.norm(w), atol=1e-5)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 2.0])
def test_l2_attacks_stay_inside_the_ball_and_the_range(model, batch, eps):
    images, labels = batch
    for adversarial in (
        fgsm(model, images, labels, eps, norm="L2"),
        pgd(model, images, labels, eps, steps=4, norm="L2"),
        pgd(model, images, labels, eps, steps=4, step_size=eps, random_start=False, norm="L2"),
    ):
        adversarial = adversarial.numpy()
        assert adversarial.dtype == np.float32 and adversarial.shape == images.shape
        assert adversarial.min() >= 0.0 and adversarial.max() <= 255.0
        assert l2_change(adversarial, images).max() <= eps * (1 + 1e-5) + 1e-6


def test_l2_random_start_fills_the_ball():
    images = tf.fill([2000, 4], 127.5)
    keys = keyed_random.fold(keyed_random.seed_key([1, 2]), tf.range(2000))
    start = gradient.random_perturb(images, tf.constant(0.1 * 255), keys, norm="L2").numpy()
    radii = l2_change(start, images.numpy()) / 0.1
    assert radii.max() <= 1 + 1e-5
    # uniform in the 4-dimensional ball: P(radius <= r) = r ** 4
    assert np.mean(radii <= 0.5) == pytest.approx(0.5**4, abs=0.02)
    assert np.mean(radii <= 0.9) == pytest.approx(0.9**4, abs=0.03)


def test_l2_pgd_is_at_least_as_strong_as_l2_fgsm_and_seeded(model, batch):
    images, labels = batch
    clean = correctly_classified(model, images, labels).mean()
    with_fgsm = correctly_classified(model, fgsm(model, images, labels, 1.0, norm="L2"), labels).mean()
    with_pgd = correctly_classified(model, pgd(model, images, labels, 1.0, steps=10, norm="L2"), labels).mean()
    assert with_pgd <= with_fgsm < clean
    first = pgd(model, images, labels, 0.5, steps=2, seed=1, norm="L2").numpy()
    np.testing.assert_array_equal(first, pgd(model, images, labels, 0.5, steps=2, seed=1, norm="L2").numpy())
    assert not np.array_equal(first, pgd(model, images, labels, 0.5, steps=2, seed=2, norm="L2").numpy())


def test_budgets_are_checked_per_norm(model, batch):
    assert check_budget(3.0, norm="L2") == 3.0
    with pytest.raises(UserError, match="L2 epsilon"):
        check_budget(-0.5, norm="L2")
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        check_budget(3.0)
    with pytest.raises(UserError, match="unknown norm"):
        AttackSpec(norm="L1")


def test_attack_specs_carry_the_norm(model, batch):
    images, labels = batch
    spec = AttackSpec("pgd", eps=1.5, steps=3, norm="L2")
    adversarial = run_attack(model, images, labels, spec, seed=4)
    direct = pgd(model, images, labels, 1.5, steps=3, seed=4, norm="L2")
    np.testing.assert_array_equal(adversarial.numpy(), direct.numpy())
