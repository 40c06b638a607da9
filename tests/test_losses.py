"""The consistency loss against a hand computation on fixed logits."""

import math

import numpy as np
import pytest

from noisegame_cli.errors import UserError
from noisegame_cli.training.losses import consistency_loss

STUDENT = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]], dtype="float32")
TEACHER = np.array([[3.0, 1.0, 0.0], [-1.0, 2.0, 1.0]], dtype="float32")
LABELS = np.array([0, 2])


def _softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _by_hand(temperature):
    ce = [-math.log(_softmax(s)[y]) for s, y in zip(STUDENT.tolist(), LABELS.tolist())]
    kl = []
    for s, t in zip(STUDENT.tolist(), TEACHER.tolist()):
        p = _softmax([v / temperature for v in t])
        q = _softmax([v / temperature for v in s])
        kl.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)))
    return sum(ce) / len(ce), sum(kl) / len(kl)


@pytest.mark.parametrize("temperature", [1.0, 10.0])
def test_parts_and_default_total_match_hand_computation(temperature):
    ce, kl = _by_hand(temperature)
    loss = consistency_loss(LABELS, STUDENT, TEACHER, temperature=temperature)
    assert float(loss.ce) == pytest.approx(ce, rel=1e-5)
    assert float(loss.kl) == pytest.approx(kl, rel=1e-4)
    assert float(loss.total) == pytest.approx((ce + kl) / 2, rel=1e-5)


def test_alpha_and_hinton_scaling_reweight_the_parts():
    ce, kl = _by_hand(10.0)
    loss = consistency_loss(LABELS, STUDENT, TEACHER, temperature=10.0, alpha=0.2, scale_kl_by_t2=True)
    assert float(loss.kl) == pytest.approx(kl * 100, rel=1e-4)
    assert float(loss.total) == pytest.approx(0.2 * ce + 0.8 * kl * 100, rel=1e-4)


def test_kl_vanishes_when_student_equals_teacher():
    loss = consistency_loss(LABELS, TEACHER, TEACHER)
    assert float(loss.kl) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("temperature, alpha", [(0.0, 0.5), (10.0, 1.5), (-1.0, 0.5)])
def test_bad_weights_are_user_errors(temperature, alpha):
    with pytest.raises(UserError):
        consistency_loss(LABELS, STUDENT, TEACHER, temperature=temperature, alpha=alpha)
