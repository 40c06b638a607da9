"""FAB, the fast adaptive boundary attack (Croce & Hein, ICML 2020): minimum-norm adversarial points, Linf and L2.

Each iteration linearises the model at the current point ``x1``, picks the class whose linearised decision
boundary is nearest, and projects both ``x1`` and the original ``x0`` onto that hyperplane within the image
box (``project_onto_hyperplane_in_box``). The next point mixes the two projections, leaning towards the one
from ``x0`` by ``alpha = min(|d1| / (|d1| + |d2|), alpha_max)`` and overshooting by ``eta``; whenever it is
adversarial it is recorded if it is the closest so far and pulled back towards ``x0`` by ``beta``.
Constants as in the original: 100 iterations, ``alpha_max = 0.1``, ``eta = 1.05``, ``beta = 0.9``; restarts
after the first start from a random point at half of ``min(eps, best distance)`` around ``x0``.

The targeted version (FAB-T, the one in AutoAttack's standard set) takes the boundary towards the 2nd,
3rd, ... most likely class of the clean image in turn (9 by default), each as a separate search.
``fab`` returns images within an ``eps`` budget (the attack stops for a point once it has one);
``fab_minimum_norm`` runs every target class and restart and returns the closest points and distances.
Targets and restarts run in turn (``common.attack_in_turn``); a restart's random start is drawn from
(seed, target, restart, the point's index ``point_ids``).
Conventions: images 0..255 (any dtype), distances and budgets in the 0..1 scale, float32 0..255 out.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from noisegame_cli.attacks.common import (
    TracedPerImageShape,
    as_inputs,
    as_point_ids,
    attack_in_turn,
    batch_logits,
    check_norm,
    flat,
    logits_of,
    lp_norm,
    num_classes,
    per_example,
    point_keys,
    predictions,
    random_direction,
    row_sum,
    run_rows,
    split_runs,
    to_pixels,
)
from noisegame_cli.attacks.gradient import check_budget
from noisegame_cli.attacks.targets import boundaries, boundary_distances, logit_ranking
from noisegame_cli.errors import UserError

ALPHA_MAX = 0.1
ETA = 1.05
BETA = 0.9
# The random-start radius of the original when no budget is given
DEFAULT_START_RADIUS = {"Linf": 0.3, "L2": 1.0}
TINY_WEIGHT = 1e-8  # L2: hyperplane coordinates below this count as zero, as in the original
NEWTON_STEPS = 64  # a cap: from the left, Newton's method typically lands on the solution in a few steps


# --- projection onto a hyperplane inside the box [0, 1]^d --------------------------------------------


def _solve_saturating_sum(weights: tf.Tensor, limits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Per row, the smallest lambda >= 0 with sum_i weights_i * min(lambda, limits_i) = target (weights,
    limits >= 0); +inf where even lambda = inf falls short.

    The sum is concave, piecewise linear and non-decreasing in lambda, so Newton's method from lambda = 0
    stays left of the solution, crosses at least one kink per step and is exact once it reaches the
    solution's linear piece (no sort of the d coordinates needed)."""
    reachable = row_sum(weights * limits) >= target

    def newton(step, amount, _moving):
        value = row_sum(weights * tf.minimum(amount[:, None], limits))
        slope = row_sum(tf.where(limits > amount[:, None], weights, 0.0))
        advance = tf.maximum(tf.math.divide_no_nan(target - value, slope), 0.0)
        moving = (advance > 0) & (target - value > 1e-7 * target)
        return step + 1, tf.where(moving, amount + advance, amount), moving

    def unsettled(step, _amount, moving):
        return (step < NEWTON_STEPS) & tf.reduce_any(moving)

    start = (tf.constant(0), tf.zeros_like(target), tf.ones_like(target, tf.bool))
    _, amount, _ = tf.while_loop(unsettled, newton, start)
    return tf.where(reachable, amount, tf.constant(np.inf, tf.float32))


def project_onto_hyperplane_in_box(points: tf.Tensor, w: tf.Tensor, b: tf.Tensor, norm: str) -> tf.Tensor:
    """The smallest change ``d`` (in ``norm``) with ``w . (points + d) = b`` and ``points + d`` in [0, 1]^d,
    per row of the [M, d] ``points`` (in the box); where the box cannot reach the hyperplane, the move to
    the box corner nearest it. The solution has the form ``d_i = -v_i * min(lambda, limit_i)``: every
    coordinate moves towards the hyperplane until it hits the box, by the same amount (Linf, ``v = sign w``)
    or in proportion to its weight (L2, ``v = w``)."""
    gap = row_sum(w * points) - b
    w = tf.where(gap[:, None] < 0, -w, w)  # now lowering w . z by |gap| reaches the hyperplane
    room = tf.where(w > 0, points, 1.0 - points)  # how far each coordinate may move in that direction
    if norm == "Linf":
        direction = tf.sign(w)
        limits = room
    else:
        direction = tf.where(tf.abs(w) > TINY_WEIGHT, w, 0.0)
        limits = tf.math.divide_no_nan(room, tf.abs(direction))
    weights = direction * w
    amount = _solve_saturating_sum(weights, limits, tf.abs(gap))
    return -direction * tf.minimum(amount[:, None], limits)


# --- one search -------------------------------------------------------------------------------------


def _boundary_step(current, original, differences, gradients, alpha_max, eta, *, norm: str):
    """FAB's move from ``current``: towards the nearest linearised boundary, projected from ``current`` and
    from ``original`` and mixed by alpha, with overshoot ``eta``, clipped to the box (flat [N, d] points)."""
    nearest = tf.argmin(boundary_distances(differences, gradients, norm), axis=1)
    w = tf.gather(gradients, nearest, axis=1, batch_dims=1)
    b = row_sum(w * current) - tf.gather(differences, nearest, axis=1, batch_dims=1)
    both = project_onto_hyperplane_in_box(
        tf.concat([current, original], 0), tf.concat([w, w], 0), tf.concat([b, b], 0), norm
    )
    from_current, from_original = tf.split(both, 2, axis=0)
    size_current, size_original = tf.split(tf.maximum(lp_norm(both, norm), 1e-8), 2, axis=0)
    alpha = tf.clip_by_value(size_current / (size_current + size_original), 0.0, alpha_max)[:, None]
    moved = (current + eta * from_current) * (1.0 - alpha) + (original + eta * from_original) * alpha
    return tf.clip_by_value(moved, 0.0, 1.0)


def _keep_closest(moved, original, adversarial, best, best_distance, beta, *, norm: str):
    """Record adversarial points closer than the best so far; pull adversarial points back by ``beta``."""
    distance = lp_norm(moved - original, norm)
    closer = adversarial & (distance < best_distance)
    best = tf.where(closer[:, None], moved, best)
    best_distance = tf.where(closer, distance, best_distance)
    return tf.where(adversarial[:, None], original + (moved - original) * beta, moved), best, best_distance


# FAB's own arithmetic (the projections above all) fused by XLA; the model is never compiled with XLA.
_fused_boundary_step = tf.function(_boundary_step, jit_compile=True)
_fused_keep_closest = tf.function(_keep_closest, jit_compile=True)


def fab_run_graph(
    model, images, labels, targets, start_radii, steps, keys, alpha_max, eta, beta, *, norm: str, targeted: bool,
):  # fmt: skip
    """One FAB search on 0..1-scale ``images``: (closest adversarial point found, its distance; +inf and
    the image itself where none was found). Each search starts from a random point at half its
    ``start_radii`` (drawn from its key) around its image, or from the image itself where that is 0."""
    shape = tf.shape(images)
    original = flat(images)
    direction = random_direction(keys, images.shape[1:], norm)
    start = tf.clip_by_value(images + per_example(0.5 * start_radii, images) * direction, 0.0, 1.0)

    def iteration(i, current, best, best_distance):
        differences, gradients = boundaries(model, tf.reshape(current, shape), labels, targets, targeted=targeted)
        moved = _fused_boundary_step(current, original, differences, gradients, alpha_max, eta, norm=norm)
        adversarial = predictions(logits_of(model, tf.reshape(moved, shape))) != labels
        moved, best, best_distance = _fused_keep_closest(
            moved, original, adversarial, best, best_distance, beta, norm=norm
        )
        return i + 1, moved, best, best_distance

    initial = (tf.constant(0), flat(start), original, tf.fill(shape[:1], tf.constant(np.inf, tf.float32)))
    _, _, best, best_distance = tf.while_loop(lambda i, *_: i < steps, iteration, initial)
    return tf.reshape(best, shape), best_distance


_compiled_run = TracedPerImageShape(fab_run_graph)


# --- target classes and restarts --------------------------------------------------------------------


def _search(
    model, images, labels, *, norm, targeted, n_target_classes, steps, restarts, start_radius,
    alpha_max, eta, beta, seed, point_ids, done_within,
):  # fmt: skip
    """Run the targets and restarts; a point leaves the search once it has an adversarial point within
    ``done_within`` (never, for ``-1``). Returns (0..1-scale originals, closest points, distances, correct)."""
    check_norm(norm)
    if int(steps) < 1 or int(restarts) < 1:
        raise UserError(f"FAB needs steps and restarts >= 1, got {steps} and {restarts}")
    pixels, labels = as_inputs(images, labels)
    point_ids = as_point_ids(point_ids, int(pixels.shape[0]))
    x = pixels / 255.0
    logits = batch_logits(model, x)
    correct = (predictions(logits) == labels).numpy()
    best, best_distance = x.numpy(), np.where(correct, np.inf, 0.0).astype(np.float32)
    if targeted:
        ranking = logit_ranking(model, x, labels, logits, norm)
        target_sets = [ranking[:, rank] for rank in range(min(int(n_target_classes), num_classes(logits) - 1))]
    else:
        target_sets = [labels]  # not read
    constants = [tf.constant(float(value)) for value in (alpha_max, eta, beta)]

    def search(index, runs):
        rows, padded = run_rows(index, len(runs))
        targets = tf.concat([tf.gather(target_sets[target], index) for target, _ in runs], 0)
        keys = tf.concat([point_keys(seed, (target, restart), point_ids[index]) for target, restart in runs], 0)
        radii = np.repeat([float(start_radius) if restart > 0 else 0.0 for _, restart in runs], index.size)
        found = _compiled_run(
            model, tf.gather(x, rows[padded]), tf.gather(labels, rows[padded]), tf.gather(targets, padded),
            tf.constant(radii[padded], tf.float32), tf.constant(int(steps)), tf.gather(keys, padded), *constants,
            norm=norm, targeted=targeted,
        )  # fmt: skip
        return split_runs(found, len(runs), index.size)

    def keep(index, result):
        found, distance = result
        closer = distance < best_distance[index]
        best[index[closer]], best_distance[index[closer]] = found[closer], distance[closer]

    runs = [(target, restart) for target in range(len(target_sets)) for restart in range(int(restarts))]
    attack_in_turn(runs, lambda: correct & ~(best_distance <= done_within), search, keep, int(np.prod(x.shape[1:])))
    return pixels, x, tf.constant(best), best_distance


def fab(
    model,
    images,
    labels,
    eps: float,
    *,
    norm: str = "Linf",
    targeted: bool = True,
    n_target_classes: int = 9,
    steps: int = 100,
    restarts: int = 1,
    alpha_max: float = ALPHA_MAX,
    eta: float = ETA,
    beta: float = BETA,
    seed=0,
    point_ids=None,
) -> tf.Tensor:
    """FAB under an ``eps`` budget (FAB-T by default, ``targeted=False`` for the untargeted FAB): points
    with an adversarial point within ``eps`` get the closest one found, the others stay unchanged.
    ``eps`` is also the radius of the random restarts, as in AutoAttack. ``point_ids`` (int [N], ``arange(N)``
    by default) are the points' indices in the evaluated set, which with ``seed`` fix their random restarts."""
    eps = check_budget(eps, norm=norm)
    pixels, x, best, distance = _search(
        model, images, labels, norm=norm, targeted=targeted, n_target_classes=n_target_classes, steps=steps,
        restarts=restarts, start_radius=eps, alpha_max=alpha_max, eta=eta, beta=beta, seed=seed, point_ids=point_ids,
        done_within=eps,
    )  # fmt: skip
    within = per_example(tf.constant(distance <= eps), x)
    return to_pixels(pixels, x, tf.where(within, best, x), eps, norm)


def fab_minimum_norm(
    model,
    images,
    labels,
    *,
    norm: str = "Linf",
    targeted: bool = True,
    n_target_classes: int = 9,
    steps: int = 100,
    restarts: int = 1,
    start_radius: float | None = None,
    alpha_max: float = ALPHA_MAX,
    eta: float = ETA,
    beta: float = BETA,
    seed=0,
    point_ids=None,
) -> tuple[tf.Tensor, np.ndarray]:
    """FAB with no budget: (closest adversarial images found as float32 0..255, their ``norm`` distances in
    the 0..1 scale). Every target class and restart runs on every correctly classified point; misclassified
    points are their own answer (distance 0); points never fooled keep their image and distance +inf.
    ``start_radius`` (0..1 scale) is the random restarts' radius, 0.3 (Linf) or 1.0 (L2) by default;
    ``point_ids`` as in ``fab``."""
    radius = DEFAULT_START_RADIUS[check_norm(norm)] if start_radius is None else float(start_radius)
    pixels, x, best, distance = _search(
        model, images, labels, norm=norm, targeted=targeted, n_target_classes=n_target_classes, steps=steps,
        restarts=restarts, start_radius=radius, alpha_max=alpha_max, eta=eta, beta=beta, seed=seed, point_ids=point_ids,
        done_within=-1.0,
    )  # fmt: skip
    adversarial = pixels + (best - x) * 255.0
    return tf.clip_by_value(adversarial, 0.0, 255.0), distance
