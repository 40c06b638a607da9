import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linprog, minimize

from attack_models import linear_model
from noisegame_cli.attacks import fab, fab_minimum_norm
from noisegame_cli.attacks.fab import project_onto_hyperplane_in_box
from noisegame_cli.errors import UserError

DIMENSIONS = 12


def exact_linf_projection(point, w, b):
    """min t s.t. |d_i| <= t, w.(point + d) = b, 0 <= point + d <= 1, as a linear programme over (d, t)."""
    n = len(point)
    cost = np.r_[np.zeros(n), 1.0]
    upper = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
    bounds = [(-p, 1 - p) for p in point] + [(0, None)]
    found = linprog(
        cost, A_ub=upper, b_ub=np.zeros(2 * n), A_eq=np.r_[w, 0.0][None], b_eq=[b - w @ point], bounds=bounds
    )
    return found.x[-1]


def exact_l2_projection(point, w, b):
    found = minimize(
        lambda d: d @ d, np.zeros(len(point)), jac=lambda d: 2 * d, method="SLSQP",
        constraints=[{"type": "eq", "fun": lambda d: w @ (point + d) - b}],
        bounds=[(-p, 1 - p) for p in point], options={"ftol": 1e-14, "maxiter": 1000},
    )  # fmt: skip
    return np.sqrt(found.fun)


def projection_problems(count=20, seed=0):
    """Points in the box and hyperplanes that the box reaches, many of them far enough for the box to bind."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, size=(count, DIMENSIONS))
    w = rng.normal(size=(count, DIMENSIONS))
    w[::5, :3] = 0.0  # coordinates the hyperplane ignores
    corners = np.where(w > 0, 0.0, 1.0)  # the box corner where w.z is smallest
    reachable = np.einsum("ij,ij->i", w, corners)
    here = np.einsum("ij,ij->i", w, points)
    b = here + rng.uniform(0.05, 0.95, size=count) * (reachable - here)
    b[1::2] = here[1::2] - (b[1::2] - here[1::2])  # half of them on the other side: the far corner may not reach
    return points, w, b


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_projection_onto_the_hyperplane_in_the_box_is_the_exact_minimum(norm):
    points, w, b = projection_problems()
    d = project_onto_hyperplane_in_box(*(tf.constant(a, tf.float32) for a in (points, w, b)), norm).numpy()
    moved = points + d
    assert moved.min() >= -1e-6 and moved.max() <= 1 + 1e-6
    exact = exact_linf_projection if norm == "Linf" else exact_l2_projection
    order = np.inf if norm == "Linf" else 2
    for i in range(len(points)):
        feasible = min(w[i] @ np.where(w[i] > 0, 0, 1), w[i] @ np.where(w[i] > 0, 1, 0)) <= b[i] <= max(
            w[i] @ np.where(w[i] > 0, 0, 1), w[i] @ np.where(w[i] > 0, 1, 0)
        )
        if feasible:
            assert w[i] @ moved[i] == pytest.approx(b[i], abs=1e-4)
            assert np.linalg.norm(d[i], order) == pytest.approx(exact(points[i], w[i], b[i]), rel=1e-4, abs=1e-6)
        else:  # out of reach: the nearest box corner
            assert abs(w[i] @ moved[i] - b[i]) < abs(w[i] @ points[i] - b[i])


def two_class_linear_problem(seed=0, count=8):
    """A linear two-class model whose boundary passes through the middle of the box, and points near it
    whose nearest boundary point lies well inside the box (so the box does not bind)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(DIMENSIONS, 2))
    w = weights[:, 1] - weights[:, 0]
    model = linear_model(weights, np.array([0.0, -0.5 * w.sum()]))  # f(u) = w . (u - 0.5)
    along = w / np.linalg.norm(w)
    feet = 0.5 + rng.uniform(-0.1, 0.1, size=(count, DIMENSIONS))
    feet -= np.outer((feet - 0.5) @ along, along)  # on the boundary
    margins = rng.uniform(0.05, 0.15, size=count) * np.where(np.arange(count) % 2 == 0, 1, -1)
    pixels = ((feet + np.outer(margins, along)) * 255).astype(np.float32)
    labels = np.argmax(model(pixels), axis=-1)
    gap = np.abs((pixels / 255 - 0.5) @ w)  # |f(u)|, the logit difference
    assert feet.min() > 0 and feet.max() < 1 and len(set(labels)) == 2
    return model, pixels, labels, gap, w


@pytest.mark.parametrize("norm, dual", [("Linf", 1), ("L2", 2)])
@pytest.mark.parametrize("targeted", [True, False])
def test_minimum_norm_on_a_linear_model_matches_the_closed_form_distance(norm, dual, targeted):
    model, pixels, labels, gap, w = two_class_linear_problem()
    expected = gap / np.linalg.norm(w, ord=dual)  # distance to the hyperplane, the box not binding
    adversarial, distance = fab_minimum_norm(model, pixels, labels, norm=norm, targeted=targeted, steps=50)
    assert np.all(np.argmax(model(adversarial), axis=-1) != labels)
    assert np.all(distance >= expected * (1 - 1e-4))  # no point can be closer than the boundary
    np.testing.assert_allclose(distance, expected, rtol=0.01)  # FAB settles about 0.5 % above it
    measured = (adversarial.numpy() - pixels) / 255
    lengths = np.linalg.norm(measured, ord=np.inf if norm == "Linf" else 2, axis=1)
    np.testing.assert_allclose(lengths, distance, rtol=1e-3)


def test_fab_with_a_budget_returns_only_points_within_it():
    model, pixels, labels, gap, w = two_class_linear_problem()
    distance = gap / np.linalg.norm(w, ord=2)
    eps = float(np.median(distance)) * 1.1
    adversarial = fab(model, pixels, labels, eps, norm="L2", steps=50).numpy()
    fooled = np.argmax(model(adversarial), axis=-1) != labels
    reachable = distance * 1.02 < eps
    assert fooled[reachable].all() and not fooled[distance > eps].any()
    np.testing.assert_array_equal(adversarial[~fooled], pixels[~fooled])
    assert np.linalg.norm((adversarial - pixels) / 255, axis=1).max() <= eps + 1e-5


def test_restarts_and_seeds():
    model, pixels, labels, _, _ = two_class_linear_problem()
    first = fab_minimum_norm(model, pixels, labels, norm="Linf", restarts=3, steps=10, seed=5)[1]
    again = fab_minimum_norm(model, pixels, labels, norm="Linf", restarts=3, steps=10, seed=5)[1]
    single = fab_minimum_norm(model, pixels, labels, norm="Linf", restarts=1, steps=10, seed=5)[1]
    np.testing.assert_array_equal(first, again)
    assert np.all(first <= single)  # restarts only ever keep a closer point


def test_bad_settings_are_user_errors():
    model, pixels, labels, _, _ = two_class_linear_problem()
    with pytest.raises(UserError, match="norm"):
        fab(model, pixels, labels, 0.1, norm="L0")
    with pytest.raises(UserError, match="restarts"):
        fab(model, pixels, labels, 0.1, restarts=0)
