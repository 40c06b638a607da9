import importlib
import math

import numpy as np
import pytest
import tensorflow as tf

from attack_models import correct_points, correctly_classified, held_out_digits, small_cnn
from noisegame_cli.attacks import apgd, apgd_targeted, pgd
from noisegame_cli.attacks.apgd import checkpoints, dlr_loss, targeted_dlr_loss
from noisegame_cli.attacks.gradient import per_example_loss
from noisegame_cli.errors import UserError

# the package exports the function apgd under the module's name
apgd_module = importlib.import_module("noisegame_cli.attacks.apgd")


@pytest.fixture(scope="module")
def model():
    return small_cnn()


@pytest.fixture(scope="module")
def batch(model):
    return correct_points(model, 48)


def mean_loss(model, images, labels):
    return float(tf.reduce_mean(per_example_loss(model, tf.cast(images, tf.float32), labels)))


def test_checkpoints_follow_the_papers_schedule():
    # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), as fractions of the iterations
    fractions = [0.0, 0.22]
    while fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06) <= 1.0:
        fractions.append(fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06))
    assert checkpoints(100) == [math.floor(100 * p + 1e-9) for p in fractions[1:]]
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]  # every window at its one-iteration minimum


def test_dlr_losses_are_invariant_to_shifting_and_scaling_the_logits():
    logits = tf.random.stateless_normal([16, 10], seed=(0, 1))
    labels = tf.range(16, dtype=tf.int64) % 10
    targets = (labels + 3) % 10
    for loss in (lambda z: dlr_loss(z, labels), lambda z: targeted_dlr_loss(z, labels, targets)):
        np.testing.assert_allclose(loss(3.0 * logits + 7.0).numpy(), loss(logits).numpy(), rtol=1e-4, atol=1e-5)
    # negative exactly while the true class is on top
    correct = tf.argmax(logits, axis=-1) == labels
    np.testing.assert_array_equal(dlr_loss(logits, labels).numpy() < 0, correct.numpy())


@pytest.mark.parametrize("norm, eps", [("Linf", 8 / 255), ("L2", 0.5)])
def test_apgd_is_at_least_as_strong_as_pgd_with_the_same_budget_and_iterations(model, batch, norm, eps):
    images, labels = batch
    steps = 20
    with_pgd = pgd(model, images, labels, eps, steps=steps, norm=norm)
    highest = apgd(model, images, labels, eps, norm=norm, steps=steps, best_loss=True)
    pgd_loss, apgd_loss = mean_loss(model, with_pgd, labels), mean_loss(model, highest, labels)
    # Linf on 8x8 digits: both end in the same corners of the box (equal up to round-off); L2: APGD is ahead
    assert apgd_loss >= pgd_loss * (1 - 1e-4)
    if norm == "L2":
        assert apgd_loss > pgd_loss
    fooling = apgd(model, images, labels, eps, norm=norm, steps=steps)
    assert correctly_classified(model, fooling, labels).mean() <= correctly_classified(model, with_pgd, labels).mean()


@pytest.mark.parametrize("norm, eps", [("Linf", 0.3), ("L2", 3.0)])
def test_targeted_apgd_reaches_given_targets_on_an_undefended_model(model, batch, norm, eps):
    images, labels = batch
    targets = (labels + 1 + np.arange(len(labels)) % 9) % 10
    adversarial = apgd_targeted(model, images, labels, eps, norm=norm, steps=30, target_labels=targets)
    reached = np.argmax(model(adversarial), axis=-1) == targets
    assert reached.mean() >= 0.9
    untouched = ~reached  # a point that missed its target is returned unchanged
    np.testing.assert_array_equal(adversarial.numpy()[untouched], images[untouched].astype(np.float32))


def test_autoattack_style_targets_break_what_the_untargeted_run_leaves(model, batch):
    images, labels = batch
    eps = 12 / 255
    untargeted = correctly_classified(model, apgd(model, images, labels, eps, steps=15), labels)
    targeted_images = apgd_targeted(model, images, labels, eps, steps=15, n_target_classes=3)
    targeted = correctly_classified(model, targeted_images, labels)
    assert targeted.mean() < 1.0
    assert targeted.mean() <= untargeted.mean() + 0.1  # of the same order: the two losses differ


def test_points_already_misclassified_are_returned_unchanged(model):
    images, labels = held_out_digits()
    wrong = ~correctly_classified(model, images, labels)
    assert wrong.any()
    adversarial = apgd(model, images[wrong], labels[wrong], 8 / 255, steps=5).numpy()
    np.testing.assert_array_equal(adversarial, images[wrong].astype(np.float32))


def test_a_fixed_seed_repeats_the_result_and_the_seed_moves_the_start(model, batch):
    images, labels = batch
    first = apgd(model, images, labels, 8 / 255, steps=5, seed=3, best_loss=True).numpy()
    again = apgd(model, images, labels, 8 / 255, steps=5, seed=3, best_loss=True).numpy()
    other = apgd(model, images, labels, 8 / 255, steps=5, seed=4, best_loss=True).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_new_batch_sizes_budgets_and_step_counts_reuse_the_graph(model, batch):
    images, labels = batch
    for count in (40, 30):  # warm up: the second shape makes the batch dimension generic
        apgd(model, images[:count], labels[:count], 2 / 255, steps=3, best_loss=True)
    traces = apgd_module._compiled_run.experimental_get_tracing_count()
    for count, eps, steps in ((17, 4 / 255, 4), (25, 0.1, 6)):
        apgd(model, images[:count], labels[:count], eps, steps=steps, best_loss=True)
    assert apgd_module._compiled_run.experimental_get_tracing_count() == traces


def test_bad_settings_are_user_errors(model, batch):
    images, labels = batch
    with pytest.raises(UserError, match="loss"):
        apgd(model, images, labels, 8 / 255, loss="hinge")
    with pytest.raises(UserError, match="norm"):
        apgd(model, images, labels, 8 / 255, norm="L1")
    with pytest.raises(UserError, match="epsilon"):
        apgd(model, images, labels, 2.0)
    with pytest.raises(UserError, match="steps"):
        apgd(model, images, labels, 8 / 255, steps=0)
