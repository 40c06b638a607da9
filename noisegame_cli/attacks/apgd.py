"""Auto-PGD (Croce & Hein, ICML 2020): PGD whose step size adapts itself, under a Linf or L2 budget.

One run (``apgd_run_graph``, a single compiled ``tf.while_loop``) follows the paper and the original code:

- a random start in the ball (uniform in the cube scaled to its largest coordinate for Linf, a
  normalised Gaussian for L2, at radius ``eps``), then steps of ``2 * eps`` along the signed (Linf) or
  L2-normalised gradient, with momentum 0.75 (none on the first step), each projected back into the
  ball and the image range;
- checkpoints after ``0.22 * steps`` iterations, then windows that shrink by ``0.03 * steps`` down to
  ``0.06 * steps`` (the p_j schedule p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06));
  at each checkpoint an example's step size is halved, and its iterate moved back to its best point so
  far, when the loss increased in at most ``rho = 0.75`` of the window's steps, or when its step size was
  not halved at the previous checkpoint and its best loss has not improved since;
- per example, the point of highest loss and the last point that fooled the model are kept.

The first window's count of loss increases starts from the loss at the random start, as the paper's
condition reads (the original code compares the first iterate's loss with 0 there instead).

Restarts (``apgd``) and target classes (``apgd_targeted``) attack only the points not fooled yet, in
turn; consecutive ones share a compiled call (``common.attack_in_turn``), with the same results. Every
random start is drawn from (seed, restart or target, the point's index): ``point_ids``.
Losses: cross-entropy, DLR (difference of logits ratio) and targeted DLR. The targeted attack, as in
AutoAttack, goes in turn for the 2nd, 3rd, ... most likely class of the clean image (9 by default), or
for the classes MALT ranks first (``targets.RANKINGS``).
Conventions: images 0..255 (any dtype), budgets in the 0..1 scale, results float32 0..255 in the ball.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from noisegame_cli.attacks.common import (
    ZERO_GRADIENT,
    TracedPerImageShape,
    as_inputs,
    check_norm,
    logits_of,
    normalize,
    num_classes,
    as_point_ids,
    attack_in_turn,
    batch_logits,
    per_example,
    point_keys,
    predictions,
    project,
    random_direction,
    run_rows,
    split_runs,
    to_pixels,
)
from noisegame_cli.attacks.gradient import check_budget
from noisegame_cli.attacks.targets import RANKINGS
from noisegame_cli.checks import chosen
from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy

LOSSES = ("ce", "dlr", "dlr-targeted")
STEP_SIZE_FACTOR = 2.0  # the first step size, in units of eps
MOMENTUM = 0.75
DLR_TINY = 1e-12


# --- losses -----------------------------------------------------------------------------------------


def dlr_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Difference of logits ratio, -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3): invariant to shifts and
    scalings of the logits, so it cannot be masked by saturating the softmax. Needs 3 classes."""
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    true = tf.gather(logits, labels, axis=1, batch_dims=1)
    best_other = tf.where(predictions(logits) == labels, ranked[:, 1], ranked[:, 0])
    return -(true - best_other) / (ranked[:, 0] - ranked[:, 2] + DLR_TINY)


def targeted_dlr_loss(logits: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Targeted DLR, -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2). Needs 4 classes."""
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    true = tf.gather(logits, labels, axis=1, batch_dims=1)
    target = tf.gather(logits, targets, axis=1, batch_dims=1)
    return -(true - target) / (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3]) + DLR_TINY)


def attack_loss(name: str, logits: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """The per-example loss APGD climbs: ``ce``, ``dlr`` or ``dlr-targeted`` (which reads ``targets``)."""
    if name == "ce":
        return cross_entropy(labels, logits)
    if name == "dlr":
        return dlr_loss(logits, labels)
    return targeted_dlr_loss(logits, labels, targets)


# --- the step-size schedule -------------------------------------------------------------------------


def schedule(steps: int) -> tuple[int, int, int]:
    """(first window, shortest window, shrink per checkpoint) in iterations, as the original computes them."""
    return max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)


def checkpoints(steps: int) -> list[int]:
    """The iterations (counted from 1) after which the step size is checked."""
    first, shortest, shrink = schedule(steps)
    found, at, window = [], 0, first
    while at + window <= steps:
        at += window
        found.append(at)
        window = max(window - shrink, shortest)
    return found


# --- one run ----------------------------------------------------------------------------------------


def _loss_and_gradient(model, images, labels, targets, eot_iter, *, loss: str):
    """Logits and loss of the last of ``eot_iter`` forward passes and the gradient averaged over all of
    them (expectation over transformation, for randomised models)."""

    def one_pass():
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = logits_of(model, images)
            values = attack_loss(loss, logits, labels, targets)
            total = tf.reduce_sum(values)
        return logits, values, tape.gradient(total, images, unconnected_gradients=ZERO_GRADIENT)

    logits, values, gradient = one_pass()

    def another(index, _logits, _values, total):
        logits, values, gradient = one_pass()
        return index + 1, logits, values, total + gradient

    _, logits, values, total = tf.while_loop(
        lambda index, *_: index < eot_iter, another, (tf.constant(1), logits, values, gradient)
    )
    return logits, values, total / tf.cast(eot_iter, tf.float32)


def _next_point(x, x_previous, gradient, step, images, eps, first, *, norm: str):
    """The step from ``x``: along the signed (Linf) or normalised (L2) gradient, projected, then mixed with
    the previous step (momentum, none on the first step) and projected again."""
    weight = tf.where(first, 1.0, MOMENTUM)
    direction = tf.sign(gradient) if norm == "Linf" else normalize(gradient, norm)
    plain = project(x + per_example(step, x) * direction, images, eps, norm)
    return project(x + weight * (plain - x) + (1.0 - weight) * (x - x_previous), images, eps, norm)


def _record(s, x_new, new_loss, gradient, hit, shortest_window, shrink, rho):
    """The state after evaluating ``x_new``: best point and loss, fooling point, and at a checkpoint the
    step-size decision (halve and go back to the best point, or not)."""
    better = new_loss > s["loss_best"]
    loss_best = tf.where(better, new_loss, s["loss_best"])
    x_best = tf.where(per_example(better, x_new), x_new, s["x_best"])
    gradient_best = tf.where(per_example(better, x_new), gradient, s["gradient_best"])
    increases = s["increases"] + tf.cast(new_loss > s["loss_previous"], tf.float32)

    since_check = s["since_check"] + 1
    at_check = since_check == s["window"]
    oscillating = increases <= tf.cast(s["window"], tf.float32) * rho
    stalled = ~s["halved_at_check"] & (s["best_at_check"] >= loss_best)
    halve = at_check & (oscillating | stalled)
    back = per_example(halve, x_new)
    return dict(
        i=s["i"] + 1,
        x=tf.where(back, x_best, x_new),
        x_previous=s["x"],
        gradient=tf.where(back, gradient_best, gradient),
        x_best=x_best, gradient_best=gradient_best, loss_best=loss_best,
        x_fooling=tf.where(per_example(hit, x_new), x_new, s["x_fooling"]),
        fooled=s["fooled"] | hit,
        step=tf.where(halve, s["step"] / 2.0, s["step"]),
        loss_previous=new_loss,
        increases=tf.where(at_check, 0.0, increases),
        since_check=tf.where(at_check, 0, since_check),
        window=tf.where(at_check, tf.maximum(s["window"] - shrink, shortest_window), s["window"]),
        best_at_check=tf.where(at_check, loss_best, s["best_at_check"]),
        halved_at_check=tf.where(at_check, oscillating | stalled, s["halved_at_check"]),
    )  # fmt: skip


# The attack's own arithmetic (a few dozen elementwise passes over the batch per iteration, more than a
# small model's forward and backward pass costs on a CPU) fused by XLA; the model itself is never compiled
# with XLA, so any model runs.
_fused_next_point = tf.function(_next_point, jit_compile=True)
_fused_record = tf.function(_record, jit_compile=True)


def apgd_run_graph(
    model, images, labels, targets, eps, steps, windows, keys, eot_iter, rho,
    *, norm: str, loss: str, reach_target: bool,
):  # fmt: skip
    """One APGD run on 0..1-scale ``images``; ``windows`` is ``schedule(steps)`` as a tensor, ``keys`` the
    points' keys for the random start.

    Returns (point of highest loss, fooled, highest loss, last fooling point) per example. An example is
    fooled once an iterate is misclassified (or, with ``reach_target``, classified as its target)."""
    eps = tf.cast(eps, tf.float32)
    first_window, shortest_window, shrink = windows[0], windows[1], windows[2]

    def reached(logits):
        predicted = predictions(logits)
        return predicted == targets if reach_target else predicted != labels

    def evaluate(points):
        return _loss_and_gradient(model, points, labels, targets, eot_iter, loss=loss)

    start = project(images + eps * random_direction(keys, images.shape[1:], norm), images, eps, norm)
    logits, start_loss, gradient = evaluate(start)
    count = tf.shape(images)[0]
    state = dict(
        i=tf.constant(0), x=start, x_previous=start, gradient=gradient,
        x_best=start, gradient_best=gradient, loss_best=start_loss, x_fooling=start, fooled=reached(logits),
        step=tf.fill([count], STEP_SIZE_FACTOR * eps), loss_previous=start_loss, increases=tf.zeros([count]),
        since_check=tf.constant(0), window=first_window, best_at_check=start_loss,
        halved_at_check=tf.ones([count], tf.bool),
    )  # fmt: skip

    def iteration(s):
        first = s["i"] == 0
        x_new = _fused_next_point(s["x"], s["x_previous"], s["gradient"], s["step"], images, eps, first, norm=norm)
        logits, new_loss, gradient = evaluate(x_new)
        return _fused_record(s, x_new, new_loss, gradient, reached(logits), shortest_window, shrink, rho)

    final = tf.while_loop(lambda s: s["i"] < steps, lambda s: (iteration(s),), (state,))[0]
    return final["x_best"], final["fooled"], final["loss_best"], final["x_fooling"]


# The model is a traced argument: one graph per model and variant, reused across batches, budgets and steps.
_compiled_run = TracedPerImageShape(apgd_run_graph)


# --- restarts and targets ---------------------------------------------------------------------------


def _check_settings(eps, norm, steps, restarts, eot_iter, loss=None) -> float:
    check_norm(norm)
    eps = check_budget(eps, norm=norm)
    if int(steps) < 1 or int(restarts) < 1 or int(eot_iter) < 1:
        raise UserError(f"APGD needs steps, restarts and eot_iter >= 1, got {steps}, {restarts}, {eot_iter}")
    if loss is not None:
        chosen(loss, LOSSES, "APGD loss")
    return eps


class _Run:
    """The settings of one attack call, and one compiled run on a subset of its points."""

    def __init__(self, model, x, labels, eps, norm, steps, eot_iter, rho, seed, point_ids):
        self.model, self.x, self.labels, self.eps, self.norm, self.seed = model, x, labels, eps, norm, seed
        self.point_ids = as_point_ids(point_ids, int(x.shape[0]))
        self.steps = tf.constant(int(steps))
        self.windows = tf.constant(schedule(int(steps)))
        self.eot_iter = tf.constant(int(eot_iter))
        self.rho = tf.constant(float(rho))

    def on(self, index: np.ndarray, runs, *, loss: str, reach_target: bool = False) -> list[tuple]:
        """One compiled call for the ``runs`` ((targets or None, seed parts) each) on the points ``index``:
        per run, (point of highest loss, fooled, highest loss, last fooling point) as arrays."""
        rows, padded = run_rows(index, len(runs))
        labels = tf.gather(self.labels, rows)
        targets = tf.concat([labels[: index.size] if targets is None else tf.gather(targets, index) for targets, _ in runs], 0)
        keys = tf.concat([point_keys(self.seed, parts, self.point_ids[index]) for _, parts in runs], 0)
        results = _compiled_run(
            self.model, tf.gather(self.x, rows[padded]), tf.gather(labels, padded), tf.gather(targets, padded),
            tf.constant(self.eps, tf.float32), self.steps, self.windows, tf.gather(keys, padded), self.eot_iter, self.rho,
            norm=self.norm, loss=loss, reach_target=reach_target,
        )  # fmt: skip
        return split_runs(results, len(runs), index.size)

    def values_per_point(self) -> int:
        return int(np.prod(self.x.shape[1:]))


def _attack_in_turn(run: _Run, runs, adversarial: np.ndarray, remaining: np.ndarray, **variant) -> None:
    """``runs`` in turn on the points still ``remaining``: a fooled point gets its last fooling iterate."""

    def keep(index, result):
        _, fooled, _, found = result
        adversarial[index[fooled]] = found[fooled]
        remaining[index[fooled]] = False

    attack_in_turn(runs, lambda: remaining, lambda index, group: run.on(index, group, **variant), keep, run.values_per_point())


def apgd(
    model,
    images,
    labels,
    eps: float,
    *,
    norm: str = "Linf",
    loss: str = "ce",
    steps: int = 100,
    restarts: int = 1,
    eot_iter: int = 1,
    rho: float = 0.75,
    seed=0,
    point_ids=None,
    best_loss: bool = False,
) -> tf.Tensor:
    """Untargeted APGD on the cross-entropy (``loss="ce"``, APGD-CE) or DLR loss (``"dlr"``, APGD-DLR).

    Each of ``restarts`` runs attacks the points that are still classified correctly; a fooled point gets
    the last iterate that fooled the model, the others stay unchanged. ``best_loss=True`` instead runs every
    restart on every point and returns the point of highest loss (for measuring the loss, not accuracy).
    ``eot_iter`` averages each gradient over that many forward passes (for randomised models).
    ``point_ids`` (int [N], ``arange(N)`` by default) are the points' indices in the evaluated set: a
    point's random starts depend on ``seed`` and its index alone, whatever else is in the batch."""
    eps = _check_settings(eps, norm, steps, restarts, eot_iter, loss)
    if loss == "dlr-targeted":
        raise UserError("the targeted DLR loss needs target classes: use apgd_targeted")
    pixels, labels = as_inputs(images, labels)
    x = pixels / 255.0
    logits = batch_logits(model, x)
    if loss == "dlr" and num_classes(logits) < 3:
        raise UserError(f"the DLR loss needs at least 3 classes, the model has {num_classes(logits)}")
    run = _Run(model, x, labels, eps, norm, steps, eot_iter, rho, seed, point_ids)
    if best_loss:
        return to_pixels(pixels, x, _highest_loss_points(run, restarts, loss), eps, norm)
    adversarial = x.numpy()
    remaining = (predictions(logits) == labels).numpy()
    _attack_in_turn(run, [(None, (0, restart)) for restart in range(int(restarts))], adversarial, remaining, loss=loss)
    return to_pixels(pixels, x, tf.constant(adversarial), eps, norm)


def _highest_loss_points(run: _Run, restarts: int, loss: str) -> tf.Tensor:
    best_points, best = run.x.numpy(), np.full(int(run.x.shape[0]), -np.inf, np.float32)

    def keep(index, result):
        points, _, values, _ = result
        better = values > best[index]
        best_points[index[better]], best[index[better]] = points[better], values[better]

    everyone = np.ones(len(best), bool)
    runs = [(None, (0, restart)) for restart in range(int(restarts))]
    attack_in_turn(runs, lambda: everyone, lambda index, group: run.on(index, group, loss=loss), keep, run.values_per_point())
    return tf.constant(best_points)


def apgd_targeted(
    model,
    images,
    labels,
    eps: float,
    *,
    norm: str = "Linf",
    steps: int = 100,
    restarts: int = 1,
    n_target_classes: int = 9,
    target_labels=None,
    ranking: str = "logits",
    eot_iter: int = 1,
    rho: float = 0.75,
    seed=0,
    point_ids=None,
) -> tf.Tensor:
    """APGD-T: APGD on the targeted DLR loss.

    Without ``target_labels`` (AutoAttack's APGD-T): for the first ``n_target_classes`` classes (at most
    classes - 1) of each clean image in the order of ``ranking`` (``targets.RANKINGS``: "logits", the
    2nd, 3rd, ... most likely classes, as AutoAttack; "malt", MALT's nearest linearised boundaries) in
    turn, ``restarts`` runs each on the points still classified correctly; a point counts as fooled once
    it is misclassified. With
    ``target_labels`` (one class per image): the runs go for those classes and a point counts as fooled
    once it is classified as its target. Fooled points get the last fooling iterate, others stay unchanged.
    ``point_ids`` as in ``apgd``.
    """
    eps = _check_settings(eps, norm, steps, restarts, eot_iter)
    pixels, labels = as_inputs(images, labels)
    x = pixels / 255.0
    logits = batch_logits(model, x)
    classes = num_classes(logits)
    if classes < 4:
        raise UserError(f"the targeted DLR loss needs at least 4 classes, the model has {classes}")
    run = _Run(model, x, labels, eps, norm, steps, eot_iter, rho, seed, point_ids)
    adversarial = x.numpy()
    if target_labels is None:
        chosen(ranking, RANKINGS, "target ranking")
        remaining = (predictions(logits) == labels).numpy()
        order = RANKINGS[ranking](model, x, labels, logits, norm)
        target_sets = [order[:, rank] for rank in range(min(int(n_target_classes), classes - 1))]
    else:
        target_labels = tf.cast(tf.reshape(target_labels, [-1]), tf.int64)
        remaining = (predictions(logits) != target_labels).numpy()
        target_sets = [target_labels]
    runs = [(targets, (1, target_index, restart)) for target_index, targets in enumerate(target_sets) for restart in range(int(restarts))]
    _attack_in_turn(run, runs, adversarial, remaining, loss="dlr-targeted", reach_target=target_labels is not None)
    return to_pixels(pixels, x, tf.constant(adversarial), eps, norm)
