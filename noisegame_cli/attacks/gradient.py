"""Gradient attacks under an L-infinity or L2 budget: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018).

Images are float32 in 0..255, the range every model here takes; budgets (``eps``, ``step_size``) are in
the 0..1 scale of that range (``8/255`` style, or an L2 radius such as 0.5 measured on the 0..1 image),
so the pixel budget is ``eps * 255`` under either norm. Adversarial images are clipped to 0..255.
``norm="Linf"`` takes signed-gradient steps and clips to the box around the original; ``norm="L2"`` takes
steps along the L2-normalised gradient and rescales the perturbation back onto the L2 ball. The attacks
are built from small pieces in the usual PGD decomposition (``random_perturb``, ``step``, ``project``)
and run as one compiled ``tf.function`` per model and attack variant: the model is a traced argument, so
repeated calls with other batches, budgets or step counts reuse the same graph.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli import keyed_random
from noisegame_cli.attacks.common import (
    PIXEL_MAX,
    TINY,
    TracedPerImageShape,
    as_point_ids,
    check_norm,
    lp_norm,
    on_canonical_rows,
    per_example,
)
from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy


# --- the pieces -------------------------------------------------------------------------------------


def per_example_loss(model: keras.Model, images: tf.Tensor, labels: tf.Tensor, *, training: bool = False) -> tf.Tensor:
    """Cross-entropy of the model's logits against integer ``labels``, one value per image."""
    logits = model(images, training=training)
    return cross_entropy(labels, logits)


def loss_gradient(model: keras.Model, images: tf.Tensor, labels: tf.Tensor, *, training: bool = False) -> tf.Tensor:
    """Gradient of each image's own loss with respect to that image (summed, so batch size does not scale it)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(per_example_loss(model, images, labels, training=training))
    return tape.gradient(loss, images)


def step(
    images: tf.Tensor, gradient: tf.Tensor, step_pixels: tf.Tensor, *, targeted: bool, norm: str = "Linf"
) -> tf.Tensor:
    """One gradient step of length ``step_pixels`` in ``norm``: the signed gradient (Linf) or the gradient
    divided by its L2 norm (L2), up the loss of the true class or down the loss of the target class."""
    direction = -1.0 if targeted else 1.0
    if norm == "Linf":
        return images + direction * step_pixels * tf.sign(gradient)
    unit = gradient / per_example(lp_norm(gradient, "L2") + TINY, gradient)
    return images + direction * step_pixels * unit


def project(images: tf.Tensor, original: tf.Tensor, eps_pixels: tf.Tensor, *, norm: str = "Linf") -> tf.Tensor:
    """Back into the ``norm`` ball of radius ``eps_pixels`` around ``original`` and the valid range."""
    if norm == "Linf":
        images = tf.clip_by_value(images, original - eps_pixels, original + eps_pixels)
    else:
        delta = images - original
        shrink = tf.minimum(1.0, tf.math.divide_no_nan(eps_pixels, lp_norm(delta, "L2")))
        images = original + delta * per_example(shrink, delta)
    return tf.clip_by_value(images, 0.0, PIXEL_MAX)


def random_perturb(images: tf.Tensor, eps_pixels: tf.Tensor, keys: tf.Tensor, *, norm: str = "Linf") -> tf.Tensor:
    """A uniform random start inside the ball; image n's start is drawn from ``keys[n]`` alone (see
    ``keyed_random``), so the same key gives the same start in any batch.

    L2: a Gaussian direction scaled to radius ``eps * u ** (1 / d)`` with ``u`` uniform, which is uniform
    in the d-dimensional ball."""
    shape = images.shape[1:]
    if norm == "Linf":
        noise = eps_pixels * keyed_random.uniform(keys, shape, -1.0, 1.0)
    else:
        direction_keys, radius_keys = keyed_random.fold(keys, 0), keyed_random.fold(keys, 1)
        direction = keyed_random.normal(direction_keys, shape)
        direction = direction / per_example(lp_norm(direction, "L2") + TINY, direction)
        dimensions = float(np.prod(shape))
        radius = eps_pixels * keyed_random.uniform(radius_keys, []) ** (1.0 / dimensions)
        noise = direction * per_example(radius, direction)
    return tf.clip_by_value(images + noise, 0.0, PIXEL_MAX)


def fgsm_graph(
    model, images, labels, eps_pixels, *, targeted: bool = False, training: bool = False, norm: str = "Linf"
) -> tf.Tensor:
    """FGSM on float32 0..255 tensors with a pixel budget; plain TensorFlow, for use inside other graphs."""
    gradient = loss_gradient(model, images, labels, training=training)
    return project(step(images, gradient, eps_pixels, targeted=targeted, norm=norm), images, eps_pixels, norm=norm)


def pgd_graph(
    model, images, labels, eps_pixels, steps, step_pixels, seed, point_ids=None,
    *, random_start: bool = True, targeted: bool = False, training: bool = False, norm: str = "Linf",
) -> tf.Tensor:  # fmt: skip
    """PGD on float32 0..255 tensors with pixel budgets; ``steps`` may be a tensor (one ``tf.while_loop``).
    ``seed`` is an int64 tensor of known length; image n's random start is drawn from (``seed``,
    ``point_ids[n]``), ``point_ids`` being ``range(N)`` by default."""
    if point_ids is None:
        point_ids = tf.range(tf.shape(images, out_type=tf.int64)[0])
    keys = keyed_random.fold(keyed_random.seed_key(tf.cast(seed, tf.int64)), point_ids)
    start = random_perturb(images, eps_pixels, keys, norm=norm) if random_start else images

    def one_step(index, adversarial):
        gradient = loss_gradient(model, adversarial, labels, training=training)
        moved = step(adversarial, gradient, step_pixels, targeted=targeted, norm=norm)
        return index + 1, project(moved, images, eps_pixels, norm=norm)

    _, adversarial = tf.while_loop(lambda index, _: index < steps, one_step, (tf.constant(0), start))
    return adversarial


# The model is a traced argument: one graph per model and variant, reused across batches, budgets and steps.
_compiled_fgsm = TracedPerImageShape(fgsm_graph)
_compiled_pgd = TracedPerImageShape(pgd_graph)


# --- the attacks ------------------------------------------------------------------------------------


def check_budget(eps: float, what: str = "epsilon", *, norm: str = "Linf") -> float:
    """``eps`` as a float in the 0..1 scale of the image range, or a ``UserError``: in [0, 1] for Linf
    (e.g. 8/255), finite and >= 0 for L2 (e.g. 0.5, the L2 length of the change on the 0..1 image)."""
    check_norm(norm)
    eps = float(eps)
    if norm == "Linf" and not 0.0 <= eps <= 1.0:
        raise UserError(f"{what} must lie in [0, 1] (the 0..1 scale of the image range, e.g. 8/255), got {eps:g}")
    if norm == "L2" and not (np.isfinite(eps) and eps >= 0.0):
        raise UserError(f"L2 {what} must be finite and >= 0 (measured on the 0..1 image, e.g. 0.5), got {eps:g}")
    return eps


def _as_inputs(images, labels) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32), tf.cast(labels, tf.int64)


def fgsm(
    model: keras.Model,
    images,
    labels,
    eps: float,
    *,
    targeted: bool = False,
    training: bool = False,
    norm: str = "Linf",
) -> tf.Tensor:
    """Fast gradient sign method: ``clip(x + eps * sign(grad_x J(x, y)))``; with ``norm="L2"`` the fast
    gradient method ``clip(x + eps * g / ||g||_2)``.

    ``images`` are 0..255 (any dtype), ``labels`` integer classes (the target classes when ``targeted``,
    in which case the step goes down the target's loss), ``eps`` in the 0..1 scale. Returns float32 images.
    """
    eps = check_budget(eps, norm=norm)
    images, labels = _as_inputs(images, labels)
    return on_canonical_rows(
        lambda x, y: _compiled_fgsm(model, x, y, tf.constant(eps * PIXEL_MAX), targeted=targeted, training=training, norm=norm),
        images, labels,
    )  # fmt: skip


def default_step_size(eps: float, steps: int) -> float:
    """Madry et al.'s choice, 2.5 * eps / steps: enough to reach the boundary of the ball from any start."""
    return 2.5 * eps / steps


def pgd(
    model: keras.Model,
    images,
    labels,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    *,
    targeted: bool = False,
    seed: int | tuple[int, int] = 0,
    point_ids=None,
    training: bool = False,
    norm: str = "Linf",
) -> tf.Tensor:
    """Projected gradient descent in the ``norm`` ball: ``steps`` steps of ``step_size`` (0..1 scale,
    ``2.5 * eps / steps`` by default; signed steps for Linf, L2-normalised gradient steps for L2), each
    projected back into the ball and the valid range, from a uniform random start in the ball when
    ``random_start``. Same conventions as ``fgsm``. ``point_ids`` (int [N], ``arange(N)`` by default)
    are the images' indices in the evaluated set: an image's start depends on ``seed`` and its index
    alone, and the result of each image is the same in any batch."""
    eps = check_budget(eps, norm=norm)
    if int(steps) < 1:
        raise UserError(f"PGD needs at least 1 step, got {steps}")
    if step_size is None:
        step_size = default_step_size(eps, int(steps))
    else:
        step_size = check_budget(step_size, "step size", norm=norm)
    images, labels = _as_inputs(images, labels)
    point_ids = tf.constant(as_point_ids(point_ids, int(images.shape[0])))
    seed = tf.constant((seed, 0) if np.ndim(seed) == 0 else seed, dtype=tf.int64)
    if int(tf.reduce_min(seed)) < 0:
        raise UserError(f"seeds must be non-negative integers, got {seed.numpy().tolist()}")
    return on_canonical_rows(
        lambda x, y, ids: _compiled_pgd(
            model, x, y, tf.constant(eps * PIXEL_MAX), tf.constant(int(steps)), tf.constant(step_size * PIXEL_MAX),
            seed, ids, random_start=bool(random_start), targeted=targeted, training=training, norm=norm,
        ),
        images, labels, point_ids,
    )  # fmt: skip
