"""A point's result depends on the seed and its index in the evaluated set only: not on the batch size, nor
on the other points computed with it (on 32x32x3 digits, the size of the benchmark's images)."""

from dataclasses import replace

import numpy as np
import pytest

from attack_models import digits_32x32, tiny_digits_cnn
from noisegame_cli.attacks import (
    SETTINGS,
    AttackSpec,
    apgd,
    apgd_targeted,
    autoattack,
    fab,
    fgsm,
    pgd,
    square,
)
from noisegame_cli.data import Split
from noisegame_cli.evaluation import evaluate_attack

QUICK = replace(SETTINGS["standard"], steps=4, square_queries=30, n_target_classes=3)
EPS = {"Linf": 16 / 255, "L2": 1.0}
PROTOCOL_EPS = 24 / 255  # APGD-CE breaks most points, APGD-T some, and some resist


@pytest.fixture(scope="module")
def model():
    return tiny_digits_cnn()


@pytest.fixture(scope="module")
def points():
    images, labels = digits_32x32()
    return images[1400:1480], labels[1400:1480]


@pytest.fixture(scope="module")
def whole_set(model, points):
    """The protocol on all 80 points in one batch."""
    images, labels = points
    return autoattack(model, images, labels, PROTOCOL_EPS, settings=QUICK, batch_size=360, verbose=False)


def test_autoattack_gives_every_point_the_same_result_at_batch_sizes_7_64_and_360(model, points, whole_set):
    images, labels = points
    adversarial, result = whole_set
    assert len(set(result.broken_by) - {"", "clean"}) >= 2  # several attacks broke points: their seeds all matter
    for batch_size in (7, 64):
        again, other = autoattack(model, images, labels, PROTOCOL_EPS, settings=QUICK, batch_size=batch_size, verbose=False)
        np.testing.assert_array_equal(again, adversarial)
        np.testing.assert_array_equal(other.broken_by, result.broken_by)
        assert other.robust_accuracy == result.robust_accuracy


def test_a_subset_alone_gets_the_results_its_points_get_in_the_whole_set(model, points, whole_set):
    images, labels = points
    adversarial, result = whole_set
    subset = np.arange(1, 80, 3)
    part, part_result = autoattack(
        model, images[subset], labels[subset], PROTOCOL_EPS, settings=QUICK, batch_size=16, verbose=False, point_ids=subset
    )
    np.testing.assert_array_equal(part, adversarial[subset])
    np.testing.assert_array_equal(part_result.broken_by, result.broken_by[subset])
    # the same images under other indices draw other random starts
    shifted, _ = autoattack(
        model, images[subset], labels[subset], PROTOCOL_EPS, settings=QUICK, batch_size=16, verbose=False, point_ids=subset + 1
    )
    assert not np.array_equal(shifted, part)


SINGLE_ATTACKS = {
    "apgd": lambda m, x, y, ids, norm: apgd(m, x, y, EPS[norm], norm=norm, steps=3, restarts=2, point_ids=ids),
    "apgd-best-loss": lambda m, x, y, ids, norm: apgd(
        m, x, y, EPS[norm], norm=norm, loss="dlr", steps=3, best_loss=True, point_ids=ids
    ),
    "apgd-t": lambda m, x, y, ids, norm: apgd_targeted(m, x, y, EPS[norm], norm=norm, steps=3, n_target_classes=2, point_ids=ids),
    "apgd-t-malt": lambda m, x, y, ids, norm: apgd_targeted(
        m, x, y, EPS[norm], norm=norm, steps=3, n_target_classes=2, ranking="malt", point_ids=ids
    ),
    "fab": lambda m, x, y, ids, norm: fab(m, x, y, EPS[norm], norm=norm, targeted=False, steps=3, restarts=2, point_ids=ids),
    "fab-t": lambda m, x, y, ids, norm: fab(m, x, y, EPS[norm], norm=norm, steps=3, n_target_classes=2, point_ids=ids),
    "square": lambda m, x, y, ids, norm: square(m, x, y, EPS[norm], norm=norm, queries=30, restarts=2, point_ids=ids),
    "pgd": lambda m, x, y, ids, norm: pgd(m, x, y, EPS[norm], steps=3, norm=norm, seed=5, point_ids=ids),
    "fgsm": lambda m, x, y, ids, norm: fgsm(m, x, y, EPS[norm], norm=norm),
}


# each attack under one norm (both norms' own pieces are each covered by several attacks), to stay quick
@pytest.mark.parametrize(
    "name, norm",
    [("apgd", "L2"), ("apgd-best-loss", "Linf"), ("apgd-t", "Linf"), ("apgd-t-malt", "L2"), ("fab", "L2"),
     ("fab-t", "Linf"), ("square", "Linf"), ("square", "L2"), ("pgd", "L2"), ("fgsm", "Linf")],
)  # fmt: skip
def test_every_attack_gives_each_point_the_same_result_in_any_batch(model, points, name, norm):
    images, labels = points[0][:24], points[1][:24]
    attack = SINGLE_ATTACKS[name]
    whole = np.asarray(attack(model, images, labels, np.arange(24), norm))
    assert (whole != images).any()  # the attack changed some points: there is something to compare
    pieces = [np.asarray(attack(model, images[a:b], labels[a:b], np.arange(a, b), norm)) for a, b in ((0, 7), (7, 24))]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_evaluate_attack_gives_the_same_numbers_at_any_batch_size(model, points):
    split = Split(*points)
    spec = AttackSpec("pgd", eps=8 / 255, steps=3)
    results = [evaluate_attack(model, split, spec, batch_size=batch_size, seed=3, verbose=False) for batch_size in (7, 64)]
    assert (results[0].accuracy, results[0].count) == (results[1].accuracy, results[1].count)
    # the mean loss to float32 rounding: with op determinism on (as every CLI run sets it, and as a CLI test
    # earlier in the same process leaves it) a row's logits may differ in the last bit between batch sizes
    assert results[0].loss == pytest.approx(results[1].loss, rel=1e-6)
    assert 0 < results[0].accuracy < 1
    # a shard's points numbered from where it starts get the numbers they get in the whole split
    first, rest = Split(points[0][:30], points[1][:30]), Split(points[0][30:], points[1][30:])
    parts = [evaluate_attack(model, part, spec, seed=3, verbose=False, first_point=start) for part, start in ((first, 0), (rest, 30))]
    correct = sum(part.accuracy * part.count for part in parts)
    assert correct == pytest.approx(results[0].accuracy * results[0].count, abs=1e-9)
