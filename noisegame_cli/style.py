"""Neural style transfer (Gatys et al. 2016) through a chosen feature extractor.

The losses are small pure functions; an extractor is a Keras model that maps 0..255 images to the
feature maps of its style layers and its content layer (doing its own preprocessing); ``stylise``
optimises the pixels of one image against those features with L-BFGS or Adam.

The extractors (VGG-19, ResNet-50, any ``app:NAME`` network, any classifier saved by this tool) are
built by ``models.extractors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.errors import UserError
from noisegame_cli.models.extractors import FeatureExtractor

# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Channel correlations ``F^T F / (H W)`` of ``[B, H, W, C]`` features, shape ``[B, C, C]``.

    Dividing by the number of positions makes Gram matrices of images of different sizes comparable.
    """
    features = tf.convert_to_tensor(features, tf.float32)
    positions = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], tf.float32)
    return tf.einsum("bhwc,bhwd->bcd", features, features) / positions


def style_loss(target_gram: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
    """Gatys et al.'s per-layer style loss ``sum((G - A)^2) / (4 C^2)``, averaged over the batch.

    With Gram matrices normalised by the number of positions M this equals their
    ``sum((G' - A')^2) / (4 C^2 M^2)`` on unnormalised ones.
    """
    gram = gram_matrix(features)
    channels = tf.cast(tf.shape(gram)[-1], tf.float32)
    per_image = tf.reduce_sum(tf.square(gram - target_gram), axis=[1, 2]) / (4.0 * channels**2)
    return tf.reduce_mean(per_image)


def content_loss(target_features: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of two feature maps."""
    return tf.reduce_mean(tf.square(tf.convert_to_tensor(features, tf.float32) - target_features))


def total_variation_loss(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference between neighbouring pixels of 0..255 images, in the 0..1 scale."""
    images = tf.convert_to_tensor(images, tf.float32) / 255.0
    values_per_image = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), tf.float32)
    return tf.reduce_mean(tf.image.total_variation(images)) / values_per_image


# ---------------------------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------

LOSS_PARTS = ("total", "content", "style", "tv")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss parts. With ``normalize``, the content loss and each layer's style loss are
    divided by their value for an all-zero feature map (the target's mean square), so one set of
    weights means the same for extractors whose features differ in scale by orders of magnitude."""

    content: float = 1.0
    style: float = 1.0
    tv: float = 0.0
    normalize: bool = True


@dataclass
class StyleResult:
    """The stylised image (uint8 ``[H, W, 3]``) and one row of weighted loss parts per step (step 0: the start)."""

    image: np.ndarray
    history: list[dict[str, float]]


def make_loss(
    extractor: FeatureExtractor,
    content_image: np.ndarray,
    style_image: np.ndarray,
    weights: LossWeights,
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """A function from a ``[1, H, W, 3]`` 0..255 image to its weighted loss parts (``LOSS_PARTS``)."""
    content_target = extractor.model(_batch(content_image))[extractor.content_layer]
    style_features = extractor.model(_batch(style_image))
    style_targets = {layer: gram_matrix(style_features[layer]) for layer in extractor.style_layers}
    content_scale, style_scales = 1.0, {layer: 1.0 for layer in extractor.style_layers}
    if weights.normalize:
        content_scale = _inverse(content_loss(content_target, tf.zeros_like(content_target)))
        style_scales = {
            layer: _inverse(style_loss(style_targets[layer], tf.zeros_like(style_features[layer])))
            for layer in extractor.style_layers
        }

    def loss_parts(image: tf.Tensor) -> dict[str, tf.Tensor]:
        features = extractor.model(image)
        content = weights.content * content_scale * content_loss(content_target, features[extractor.content_layer])
        per_layer = [style_scales[layer] * style_loss(style_targets[layer], features[layer]) for layer in extractor.style_layers]
        style = weights.style * tf.add_n(per_layer) / len(per_layer)
        tv = weights.tv * total_variation_loss(image)
        return {"total": content + style + tv, "content": content, "style": style, "tv": tv}

    return loss_parts


def _inverse(value: tf.Tensor) -> tf.Tensor:
    return 1.0 / tf.maximum(value, 1e-12)  # a dead layer of a random network has all-zero targets


def _batch(image: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(image, np.float32)[None])


def initial_image(content_image: np.ndarray, init: str, seed: int = 0) -> np.ndarray:
    """The starting point: the content image, or uniform noise over 0..255 (Gatys et al.'s white noise)."""
    checks.chosen(init, INITS, "init")
    if init == "content":
        return np.asarray(content_image, np.float32)
    return np.random.default_rng(seed).uniform(0.0, 255.0, np.shape(content_image)).astype(np.float32)


def to_uint8(image: np.ndarray | tf.Tensor) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)


def stylise(
    extractor: FeatureExtractor,
    content_image: np.ndarray,
    style_image: np.ndarray,
    *,
    weights: LossWeights = LossWeights(),
    optimizer: str = "lbfgs",
    init: str = "content",
    iterations: int = 100,
    learning_rate: float = 2.0,
    save_every: int = 0,
    on_snapshot: Callable[[int, np.ndarray], None] | None = None,
    seed: int = 0,
    verbose: int = 1,
) -> StyleResult:
    """Optimise the pixels of an image so its features match the content and style targets.

    ``content_image`` and ``style_image`` are uint8 ``[H, W, 3]`` (sizes may differ). ``optimizer``
    is ``lbfgs`` (SciPy's L-BFGS-B, as in the Distill article; unbounded, because the 0..255 box
    stalls its line search on pixels that start at a bound, so images are clipped when saved) or
    ``adam`` (``learning_rate`` in pixel units, clipped to 0..255 after each step).
    Every ``save_every`` iterations (0: never) ``on_snapshot(step, uint8 image)`` is called.
    L-BFGS may stop before ``iterations`` when it converges; the history then ends early.
    """
    checks.chosen(optimizer, OPTIMIZERS, "optimizer")
    checks.chosen(init, INITS, "init")
    if iterations < 1:
        raise UserError(f"iterations must be at least 1, got {iterations}")
    if save_every < 0:
        raise UserError(f"save_every must be 0 (never) or positive, got {save_every}")
    loss_parts = make_loss(extractor, content_image, style_image, weights)
    value_and_grad = _value_and_grad(loss_parts)
    start = initial_image(content_image, init, seed)[None]
    progress = keras.utils.Progbar(iterations, verbose=verbose, stateful_metrics=LOSS_PARTS, unit_name="iteration")
    history: list[dict[str, float]] = []

    def record(step: int, image: np.ndarray, parts: Mapping[str, tf.Tensor]) -> None:
        """Keep the loss parts of ``image``, the image after ``step`` iterations."""
        history.append(_floats(step, parts))
        if step:
            progress.update(step, [(part, history[-1][part]) for part in LOSS_PARTS])
        if on_snapshot is not None and save_every and step % save_every == 0:
            on_snapshot(step, to_uint8(image[0]))

    run = _run_lbfgs if optimizer == "lbfgs" else _run_adam
    final = run(value_and_grad, start, iterations, record, learning_rate=learning_rate)
    return StyleResult(to_uint8(final[0]), history)


def _value_and_grad(loss_parts):
    @tf.function(reduce_retracing=True)
    def value_and_grad(image: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(image)
            parts = loss_parts(image)
        return parts, tape.gradient(parts["total"], image)

    return value_and_grad


def _floats(step: int, parts: Mapping[str, tf.Tensor]) -> dict[str, float]:
    return {"step": step, **{part: float(parts[part]) for part in LOSS_PARTS}}


def _run_lbfgs(value_and_grad, start: np.ndarray, iterations: int, record, **_unused) -> np.ndarray:
    shape = start.shape
    last: dict[str, object] = {}

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        parts, grad = value_and_grad(tf.constant(flat.reshape(shape), tf.float32))
        last.update(x=flat.copy(), parts=parts)
        return float(parts["total"]), grad.numpy().astype(np.float64).ravel()

    fun(start.ravel())
    record(0, start, last["parts"])
    step = 0

    def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        nonlocal step
        step += 1
        if not np.array_equal(last["x"], intermediate_result.x):  # the line search ended elsewhere
            fun(intermediate_result.x)
        record(step, intermediate_result.x.reshape(shape), last["parts"])

    result = scipy.optimize.minimize(
        fun,
        start.astype(np.float64).ravel(),
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        # No tolerance stops: the loss scale depends on the extractor and the weights, so run all iterations.
        options={"maxiter": iterations, "maxfun": iterations * 20, "ftol": 0.0, "gtol": 0.0},
    )
    return result.x.reshape(shape).astype(np.float32)


def _run_adam(value_and_grad, start: np.ndarray, iterations: int, record, *, learning_rate: float) -> np.ndarray:
    image = tf.Variable(start)
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def update():
        parts, grad = value_and_grad(tf.convert_to_tensor(image))
        optimizer.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        return parts

    previous = start
    for step in range(1, iterations + 1):
        parts = update()  # the loss parts of `previous`, the image before this update
        record(step - 1, previous, parts)
        previous = image.numpy()
    record(iterations, previous, value_and_grad(tf.constant(previous))[0])
    return previous
