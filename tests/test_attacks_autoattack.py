import importlib
from dataclasses import replace

import numpy as np
import pytest

from attack_models import AlwaysDropout, correctly_classified, small_cnn, held_out_digits, with_layers
from noisegame_cli.attacks import (
    AUTOATTACK_ATTACKS,
    SETTINGS,
    VERSIONS,
    apgd,
    apgd_targeted,
    autoattack,
    fab,
    fgsm,
    pgd,
    square,
)
from noisegame_cli.errors import UserError

# the package exports the function autoattack under the module's name
autoattack_module = importlib.import_module("noisegame_cli.attacks.autoattack")
QUICK = replace(SETTINGS["standard"], steps=8, square_queries=60, n_target_classes=2)


@pytest.fixture(scope="module")
def model():
    return small_cnn()


@pytest.fixture(scope="module")
def points(model):
    """Some points the model gets wrong among many it gets right, with pixels at both ends of the range."""
    images, labels = held_out_digits()
    images, labels = images[:60].copy(), labels[:60]
    images[:, 0, 0, :], images[:, 0, 1, :] = 0, 255
    assert 0 < correctly_classified(model, images, labels).mean() < 1
    return images, labels


def measured(adversarial, images, norm):
    change = (np.asarray(adversarial, np.float64) - images) / 255
    change = change.reshape(len(images), -1)
    return np.abs(change).max(axis=1) if norm == "Linf" else np.linalg.norm(change, axis=1)


SINGLE_ATTACKS = {
    "fgsm": lambda m, x, y, eps, norm: fgsm(m, x, y, eps, norm=norm),
    "pgd": lambda m, x, y, eps, norm: pgd(m, x, y, eps, steps=5, norm=norm),
    "apgd-ce": lambda m, x, y, eps, norm: apgd(m, x, y, eps, norm=norm, steps=5),
    "apgd-dlr-best-loss": lambda m, x, y, eps, norm: apgd(m, x, y, eps, norm=norm, loss="dlr", steps=5, best_loss=True),
    "apgd-t": lambda m, x, y, eps, norm: apgd_targeted(m, x, y, eps, norm=norm, steps=5, n_target_classes=2),
    "fab": lambda m, x, y, eps, norm: fab(m, x, y, eps, norm=norm, targeted=False, steps=5, restarts=2),
    "fab-t": lambda m, x, y, eps, norm: fab(m, x, y, eps, norm=norm, steps=5, n_target_classes=2),
    "square": lambda m, x, y, eps, norm: square(m, x, y, eps, norm=norm, queries=40),
}


@pytest.mark.parametrize("norm, eps", [("Linf", 8 / 255), ("L2", 0.5)])
@pytest.mark.parametrize("name", SINGLE_ATTACKS)
def test_every_attack_stays_within_the_budget_and_the_image_range(model, points, name, norm, eps):
    images, labels = points
    adversarial = SINGLE_ATTACKS[name](model, images, labels, eps, norm).numpy()
    assert adversarial.dtype == np.float32 and adversarial.shape == images.shape
    assert adversarial.min() >= 0.0 and adversarial.max() <= 255.0
    assert measured(adversarial, images, norm).max() <= eps * (1 + 1e-5)


def test_the_protocol_never_attacks_a_point_already_misclassified(model, points, monkeypatch):
    images, labels = points
    calls = []

    def recording(name, attack):
        def run(model, batch_images, *args):
            calls.append((name, np.asarray(batch_images).copy()))
            return attack(model, batch_images, *args)

        return run

    for name, attack in dict(AUTOATTACK_ATTACKS).items():
        monkeypatch.setitem(AUTOATTACK_ATTACKS, name, recording(name, attack))

    _, result = autoattack(model, images, labels, 16 / 255, settings=QUICK, batch_size=25, verbose=False)
    assert [name for name, _ in calls] == sorted((name for name, _ in calls), key=VERSIONS["standard"].index)
    still_robust = correctly_classified(model, images, labels)
    np.testing.assert_array_equal(result.broken_by[~still_robust], "clean")
    for name in VERSIONS["standard"]:
        attacked = np.concatenate([batch for called, batch in calls if called == name] or [images[:0]])
        # exactly the points still classified correctly, each once
        np.testing.assert_array_equal(attacked, images[still_robust].astype(np.float32))
        still_robust &= result.broken_by != name


def test_the_result_accounts_for_every_point(model, points):
    images, labels = points
    adversarial, result = autoattack(model, images, labels, 16 / 255, settings=QUICK, verbose=False)
    assert list(result.robust_accuracy) == ["clean", *VERSIONS["standard"]]
    assert result.clean_accuracy == pytest.approx(correctly_classified(model, images, labels).mean())
    accuracies = list(result.robust_accuracy.values())
    assert all(later <= earlier for earlier, later in zip(accuracies, accuracies[1:]))
    robust = correctly_classified(model, adversarial, labels)
    assert result.robust == pytest.approx(robust.mean())
    np.testing.assert_array_equal(robust, result.broken_by == "")
    np.testing.assert_array_equal(adversarial[robust], images[robust].astype(np.float32))
    for name in VERSIONS["standard"]:  # each attack's share of the broken points
        share = np.mean(result.broken_by == name)
        previous = list(result.robust_accuracy)[list(result.robust_accuracy).index(name) - 1]
        assert share == pytest.approx(result.robust_accuracy[previous] - result.robust_accuracy[name])
    assert result.max_perturbation <= 16 / 255 * (1 + 1e-5)


def test_a_fixed_seed_repeats_the_evaluation(model, points):
    images, labels = points
    first, result = autoattack(model, images, labels, 8 / 255, settings=QUICK, seed=7, verbose=False)
    again, result_again = autoattack(model, images, labels, 8 / 255, settings=QUICK, seed=7, verbose=False)
    np.testing.assert_array_equal(first, again)
    assert result.robust_accuracy == result_again.robust_accuracy


def test_l2_and_plus_and_custom_versions_run(model, points, capsys):
    images, labels = points
    quick_plus = replace(QUICK, apgd_restarts=2, fab_restarts=2)
    _, plus = autoattack(model, images, labels, 0.5, norm="L2", version="plus", settings=quick_plus, batch_size=40)
    assert list(plus.robust_accuracy) == ["clean", *VERSIONS["plus"]]
    printed = capsys.readouterr().out
    assert "using plus version including apgd-ce, apgd-dlr, fab, square, apgd-t, fab-t" in printed
    assert "robust accuracy after APGD-DLR" in printed and "max L2 perturbation" in printed
    _, custom = autoattack(model, images, labels, 0.5, norm="L2", version="custom", attacks=["square"], settings=QUICK)
    assert list(custom.robust_accuracy) == ["clean", "square"]


def test_the_rand_version_averages_gradients_over_draws_of_a_randomised_model(model, points):
    images, labels = points
    randomised = with_layers(model, AlwaysDropout(0.1))
    settings = replace(SETTINGS["rand"], steps=4, eot_iter=3)
    _, result = autoattack(
        randomised, images[:20], labels[:20], 16 / 255, version="rand", settings=settings, verbose=False
    )
    assert list(result.robust_accuracy) == ["clean", "apgd-ce", "apgd-dlr"]
    assert "randomized" not in [flag.check for flag in result.flags]  # not checked in the version made for it


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(version="standard", attacks=["square"]), "custom"),
        (dict(version="custom"), "needs attacks"),
        (dict(version="custom", attacks=["cw"]), "unknown attack .cw.; choose from"),
        (dict(version="fastest"), "unknown AutoAttack version"),
        (dict(norm="L1"), "unknown norm"),
        (dict(batch_size=0), "batch size"),
    ],
)
def test_bad_arguments_are_user_errors(model, points, arguments, message):
    images, labels = points
    with pytest.raises(UserError, match=message):
        autoattack(model, images, labels, 8 / 255, verbose=False, **arguments)
    with pytest.raises(UserError, match="labels"):
        autoattack(model, images, labels[:-1], 8 / 255, verbose=False)
