"""Gradient-sign attacks under an L-infinity budget: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018).

Images are float32 in 0..255, the range every model here takes; budgets (``eps``, ``step_size``) are in
the 0..1 scale of that range (``8/255`` style), so the pixel budget is ``eps * 255``. Adversarial images
are clipped to 0..255. The attacks are built from small pieces in the usual PGD decomposition
(``random_perturb``, ``step``, ``project``) and run as one compiled ``tf.function`` per model and
attack variant: the model is a traced argument, so repeated calls with other batches, budgets or step
counts reuse the same graph.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy

PIXEL_MAX = 255.0


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


def step(images: tf.Tensor, gradient: tf.Tensor, step_pixels: tf.Tensor, *, targeted: bool) -> tf.Tensor:
    """One signed-gradient step: up the loss of the true class, or down the loss of the target class."""
    direction = -1.0 if targeted else 1.0
    return images + direction * step_pixels * tf.sign(gradient)


def project(images: tf.Tensor, original: tf.Tensor, eps_pixels: tf.Tensor) -> tf.Tensor:
    """Back into the L-infinity ball of radius ``eps_pixels`` around ``original`` and the valid range."""
    images = tf.clip_by_value(images, original - eps_pixels, original + eps_pixels)
    return tf.clip_by_value(images, 0.0, PIXEL_MAX)


def random_perturb(images: tf.Tensor, eps_pixels: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A uniform random start inside the ball (stateless, so the same ``seed`` gives the same start)."""
    noise = tf.random.stateless_uniform(tf.shape(images), seed=seed, minval=-eps_pixels, maxval=eps_pixels)
    return tf.clip_by_value(images + noise, 0.0, PIXEL_MAX)


def fgsm_graph(model, images, labels, eps_pixels, *, targeted: bool = False, training: bool = False) -> tf.Tensor:
    """FGSM on float32 0..255 tensors with a pixel budget; plain TensorFlow, for use inside other graphs."""
    gradient = loss_gradient(model, images, labels, training=training)
    return project(step(images, gradient, eps_pixels, targeted=targeted), images, eps_pixels)


def pgd_graph(
    model, images, labels, eps_pixels, steps, step_pixels, seed,
    *, random_start: bool = True, targeted: bool = False, training: bool = False,
) -> tf.Tensor:  # fmt: skip
    """PGD on float32 0..255 tensors with pixel budgets; ``steps`` may be a tensor (one ``tf.while_loop``)."""
    start = random_perturb(images, eps_pixels, seed) if random_start else images

    def one_step(index, adversarial):
        gradient = loss_gradient(model, adversarial, labels, training=training)
        return index + 1, project(step(adversarial, gradient, step_pixels, targeted=targeted), images, eps_pixels)

    _, adversarial = tf.while_loop(lambda index, _: index < steps, one_step, (tf.constant(0), start))
    return adversarial


# The model is a traced argument: one graph per model and variant, reused across batches, budgets and steps.
_compiled_fgsm = tf.function(fgsm_graph, reduce_retracing=True)
_compiled_pgd = tf.function(pgd_graph, reduce_retracing=True)


# --- the attacks ------------------------------------------------------------------------------------


def check_budget(eps: float, what: str = "epsilon") -> float:
    """``eps`` as a float in [0, 1] (the 0..1 scale of the image range), or a ``UserError``."""
    eps = float(eps)
    if not 0.0 <= eps <= 1.0:
        raise UserError(f"{what} must lie in [0, 1] (the 0..1 scale of the image range, e.g. 8/255), got {eps:g}")
    return eps


def _as_inputs(images, labels) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32), tf.cast(labels, tf.int64)


def fgsm(model: keras.Model, images, labels, eps: float, *, targeted: bool = False, training: bool = False) -> tf.Tensor:
    """Fast gradient sign method: ``clip(x + eps * sign(grad_x J(x, y)))``.

    ``images`` are 0..255 (any dtype), ``labels`` integer classes (the target classes when ``targeted``,
    in which case the step goes down the target's loss), ``eps`` in the 0..1 scale. Returns float32 images.
    """
    eps = check_budget(eps)
    images, labels = _as_inputs(images, labels)
    return _compiled_fgsm(model, images, labels, tf.constant(eps * PIXEL_MAX), targeted=targeted, training=training)


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
    training: bool = False,
) -> tf.Tensor:
    """Projected gradient descent in the L-infinity ball: ``steps`` signed steps of ``step_size`` (0..1 scale,
    ``2.5 * eps / steps`` by default), each projected back into the ball and the valid range, from a uniform
    random start when ``random_start``. Same conventions as ``fgsm``."""
    eps = check_budget(eps)
    if int(steps) < 1:
        raise UserError(f"PGD needs at least 1 step, got {steps}")
    step_size = default_step_size(eps, int(steps)) if step_size is None else check_budget(step_size, "step size")
    images, labels = _as_inputs(images, labels)
    seed = tf.constant((seed, 0) if np.ndim(seed) == 0 else seed, dtype=tf.int64)
    return _compiled_pgd(
        model, images, labels, tf.constant(eps * PIXEL_MAX), tf.constant(int(steps)), tf.constant(step_size * PIXEL_MAX),
        seed, random_start=bool(random_start), targeted=targeted, training=training,
    )  # fmt: skip
