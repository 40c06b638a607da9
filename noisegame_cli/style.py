"""Neural style transfer (Gatys et al. 2016) through a chosen feature extractor.

The losses are small pure functions; an extractor is a Keras model that maps 0..255 images to the
feature maps of its style layers and its content layer (doing its own preprocessing); ``stylise``
optimises the pixels of one image against those features with L-BFGS or Adam.

Extractors: VGG-19 with average pooling (as in Gatys et al.), ResNet-50 (the comparison of Nakano,
Distill 2019, on the robust features of Ilyas et al. 2019) and any classifier saved by this tool.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from noisegame_cli.errors import UserError
from noisegame_cli.models.applications import ApplicationPreprocessing, application_backbone, check_application, is_application
from noisegame_cli.input_scale import InputScale
from noisegame_cli.models.saved import load_classifier, model_label
from noisegame_cli.models.wrapping import InputScaling

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


@dataclass(frozen=True)
class FeatureExtractor:
    """A model from 0..255 images ``[B, H, W, 3]`` to a dict of feature maps, one per named layer."""

    name: str
    model: keras.Model
    style_layers: tuple[str, ...]
    content_layer: str


@dataclass(frozen=True)
class _Architecture:
    """A keras.applications network with Gatys-style default layers."""

    builder: Callable[..., keras.Model]
    weights_file: str  # the no-top ImageNet file Keras caches under <keras home>/models
    style_layers: tuple[str, ...]
    content_layer: str
    average_pooling: bool


ARCHITECTURES: dict[str, _Architecture] = {
    # Keras' convolutions include their ReLU, so blockN_conv1 is Gatys et al.'s reluN_1.
    "vgg19": _Architecture(
        builder=keras.applications.VGG19,
        weights_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        style_layers=tuple(f"block{block}_conv1" for block in range(1, 6)),
        content_layer="block4_conv2",
        average_pooling=True,
    ),
    # The outputs of the four residual stages; content from the third.
    "resnet50": _Architecture(
        builder=keras.applications.ResNet50,
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        style_layers=("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        content_layer="conv4_block6_out",
        average_pooling=False,
    ),
}

NO_WEIGHTS = "none"
IMAGENET = "imagenet"
_STAGE_NAME = re.compile(r"stage(\d+)$")


def keras_cache_dirs() -> list[Path]:
    """Where Keras keeps downloaded files: ``$KERAS_HOME`` or ``~/.keras``, and its ``/tmp`` fallback."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [Path(home), Path("/tmp/.keras")]


def cached_imagenet_weights(architecture: str) -> Path | None:
    """The cached ImageNet weights file of ``architecture``, or None when Keras has not downloaded it."""
    file_name = ARCHITECTURES[architecture].weights_file
    for cache in keras_cache_dirs():
        candidate = cache / "models" / file_name
        if candidate.is_file():
            return candidate
    return None


def resolve_weights(architecture: str, weights: str) -> Path | None:
    """The weights file to load: the cached ImageNet file, a given path, or None for random weights.

    Never downloads: without network access Keras would hang or fail on the download.
    """
    if weights.lower() == NO_WEIGHTS:
        return None
    if weights.lower() == IMAGENET:
        cached = cached_imagenet_weights(architecture)
        if cached is None:
            where = keras_cache_dirs()[0] / "models" / ARCHITECTURES[architecture].weights_file
            raise UserError(
                f"no ImageNet weights for {architecture}: {where} does not exist and this tool never downloads; "
                f"copy that file there, give a weights file (--weights FILE), or use --weights none for random weights"
            )
        return cached
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist (or use --weights imagenet / none)")
    return path


def feature_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers of ``model`` whose output is an image-shaped feature map."""
    return [layer.name for layer in model.layers if _is_feature_map(layer)]


def _is_feature_map(layer: keras.layers.Layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # layers used more than once or never called
        return False


def stage_layer_names(model: keras.Model) -> list[str]:
    """``stage1``, ``stage2``, ... of a classifier built by this tool, in order."""
    stages = [(int(match.group(1)), name) for name in feature_layer_names(model) if (match := _STAGE_NAME.match(name))]
    return [name for _, name in sorted(stages)]


def choose_layers(
    model: keras.Model,
    style_layers: Sequence[str] | None,
    content_layer: str | None,
    *,
    default_style: Sequence[str],
    default_content: str | None,
    what: str,
) -> tuple[tuple[str, ...], str]:
    """The style and content layer names, given ones checked against ``model``'s feature maps."""
    style = tuple(style_layers) if style_layers else tuple(default_style)
    content = content_layer or default_content
    available = feature_layer_names(model)
    if not style or content is None:
        raise UserError(
            f"{what} has no layers named stage1, stage2, ...; choose style and content layers from: {', '.join(available)}"
        )
    unknown = [name for name in (*style, content) if name not in available]
    if unknown:
        raise UserError(f"{what} has no feature layer {', '.join(map(repr, unknown))}; choose from: {', '.join(available)}")
    return style, content


def default_stage_layers(model: keras.Model) -> tuple[tuple[str, ...], str | None]:
    """All stages for style and the last but one for content (the third of ResNet-50's four)."""
    stages = stage_layer_names(model)
    if not stages:
        return (), None
    return tuple(stages), stages[max(len(stages) - 2, 0)]


def _feature_model(network: keras.Model, layer_names: Sequence[str], name: str) -> keras.Model:
    """``network`` cut to a dict of the named layers' outputs."""
    outputs = {layer: network.get_layer(layer).output for layer in dict.fromkeys(layer_names)}
    return keras.Model(network.inputs[0], outputs, name=f"{name}_features")


def _with_average_pooling(network: keras.Model) -> keras.Model:
    """A copy of a plain chain of layers with every max-pooling replaced by average pooling.

    Gatys et al. found average pooling gives smoother results. The layers are rebuilt from their
    configs (not reused) so each layer's ``output`` belongs to the new graph; weights are copied.
    """
    x = inputs = keras.Input(shape=network.inputs[0].shape[1:], name="images")
    for layer in network.layers[1:]:
        if isinstance(layer, keras.layers.MaxPooling2D):
            x = keras.layers.AveragePooling2D(layer.pool_size, layer.strides, layer.padding, name=layer.name)(x)
            continue
        copy = layer.__class__.from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=network.name)


def application_extractor(
    architecture: str,
    *,
    weights: str = IMAGENET,
    style_layers: Sequence[str] | None = None,
    content_layer: str | None = None,
) -> FeatureExtractor:
    """VGG-19 or ResNet-50 from keras.applications, with ImageNet (caffe-style) preprocessing."""
    if architecture not in ARCHITECTURES:
        raise UserError(f"unknown extractor {architecture!r}; choose from {', '.join(ARCHITECTURES)} or a saved model path")
    spec = ARCHITECTURES[architecture]
    weights_file = resolve_weights(architecture, weights)
    network = spec.builder(include_top=False, weights=None, input_shape=(None, None, 3))
    if weights_file is not None:
        try:
            network.load_weights(str(weights_file))
        except Exception as error:  # h5py and Keras raise many types for a wrong file
            raise UserError(f"cannot load {weights_file} into {architecture} ({type(error).__name__}: {error})".splitlines()[0]) from None
    if spec.average_pooling:
        network = _with_average_pooling(network)
    style, content = choose_layers(
        network,
        style_layers,
        content_layer,
        default_style=spec.style_layers,
        default_content=spec.content_layer,
        what=architecture,
    )
    inputs = keras.Input(shape=(None, None, 3), name="images")
    # Both networks were trained on caffe-style inputs: BGR, ImageNet mean subtracted, no scaling.
    preprocessed = keras.applications.imagenet_utils.preprocess_input(inputs, mode="caffe")
    features = _feature_model(network, (*style, content), architecture)
    model = keras.Model(inputs, features(preprocessed), name=f"{architecture}_style")
    return FeatureExtractor(architecture, model, style, content)


def _any_size(model: keras.Model) -> keras.Model:
    """A copy of ``model`` that takes images of any height and width, or ``model`` itself when it cannot."""
    if model.inputs[0].shape[1] is None and model.inputs[0].shape[2] is None:
        return model
    try:
        flexible = keras.models.clone_model(model, input_tensors=keras.Input(shape=(None, None, model.inputs[0].shape[-1])))
        flexible.set_weights(model.get_weights())
    except Exception:  # layers fixed to one size (Flatten, Reshape, ...) cannot be re-sized
        return model
    return flexible


def saved_model_extractor(
    model: keras.Model | str | os.PathLike,
    *,
    style_layers: Sequence[str] | None = None,
    content_layer: str | None = None,
    name: str | None = None,
    scale: InputScale | None = None,
) -> FeatureExtractor:
    """Features of a saved classifier (a model, a saved model file or a run directory).

    ``scale`` says what input it expects (default: 0..255 pixels, as this project's models rescale
    themselves); 0..255 images are mapped to it in front. Layers default to its ``stage1``,
    ``stage2``, ... outputs. It is run at any image size when its layers allow; otherwise images are
    resized to its input size.
    """
    if not isinstance(model, keras.Model):
        name = name or model_label(model)
        model = load_classifier(model)
    name = name or model.name
    if model.inputs[0].shape[-1] != 3:
        raise UserError(f"{name} takes {model.inputs[0].shape[-1]}-channel images; style transfer needs an RGB model")
    default_style, default_content = default_stage_layers(model)
    style, content = choose_layers(
        model, style_layers, content_layer, default_style=default_style, default_content=default_content, what=name
    )
    network = _any_size(model)
    inputs = keras.Input(shape=(None, None, 3), name="images")
    x = inputs
    if network.inputs[0].shape[1] is not None:
        x = keras.layers.Resizing(network.inputs[0].shape[1], network.inputs[0].shape[2], name="to_model_size")(x)
    if scale is not None and not scale.is_pixels:
        x = InputScaling(scale.input_range, scale.mean, scale.std, name="input_scaling")(x)
    features = _feature_model(network, (*style, content), name)
    return FeatureExtractor(name, keras.Model(inputs, features(x), name=f"{name}_style"), style, content)


def stage_output_names(network_name: str, network: keras.Model | None = None) -> list[str]:
    """The last layer at each spatial resolution of a keras.applications network (its stage outputs),
    found on a 224x224 copy with random weights, in order; named as in ``network`` (the same network
    built for any size) where given: layers Keras names itself (``normalization_2``) are numbered
    anew in each copy, so they are matched by position."""
    probe = application_backbone(network_name, input_shape=(224, 224, 3))
    last_at_size: dict[tuple, int] = {}
    for index, layer in enumerate(probe.layers[1:], start=1):
        if _is_feature_map(layer):
            last_at_size[tuple(layer.output.shape[1:3])] = index
    layers = (network or probe).layers
    return [layers[index].name for index in last_at_size.values()]


def app_extractor(
    name: str,
    *,
    weights: str | None = None,
    download: bool = False,
    style_layers: Sequence[str] | None = None,
    content_layer: str | None = None,
) -> FeatureExtractor:
    """Any ``app:NAME`` network (as ``--model app:NAME`` builds it, with the same weights rules and its
    own preprocessing); layers default to its stage outputs, content from the last but one."""
    network_name = check_application(name)
    network = application_backbone(name, weights=weights, download=download)
    stages = stage_output_names(name, network)
    style, content = choose_layers(network, style_layers, content_layer, default_style=stages,
                                   default_content=stages[-2] if len(stages) > 1 else None, what=network_name)  # fmt: skip
    inputs = keras.Input(shape=(None, None, 3), name="images")
    preprocessed = ApplicationPreprocessing(network_name, name="preprocess")(inputs)
    features = _feature_model(network, (*style, content), network_name.lower())
    label = network_name.lower()
    return FeatureExtractor(label, keras.Model(inputs, features(preprocessed), name=f"{label}_style"), style, content)


def build_extractor(
    source: str | os.PathLike | keras.Model,
    *,
    weights: str = IMAGENET,
    style_layers: Sequence[str] | None = None,
    content_layer: str | None = None,
) -> FeatureExtractor:
    """``vgg19``, ``resnet50``, a saved classifier (path) or a Keras model, as a feature extractor."""
    if isinstance(source, str) and source.lower() in ARCHITECTURES:
        return application_extractor(source.lower(), weights=weights, style_layers=style_layers, content_layer=content_layer)
    if isinstance(source, str) and is_application(source):
        return app_extractor(source, weights=weights, style_layers=style_layers, content_layer=content_layer)
    if isinstance(source, keras.Model) or Path(source).exists():
        return saved_model_extractor(source, style_layers=style_layers, content_layer=content_layer)
    raise UserError(f"unknown extractor {str(source)!r}; choose from {', '.join(ARCHITECTURES)} or a saved model path")


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
    if init == "content":
        return np.asarray(content_image, np.float32)
    if init == "noise":
        return np.random.default_rng(seed).uniform(0.0, 255.0, np.shape(content_image)).astype(np.float32)
    raise UserError(f"unknown init {init!r}; choose from {', '.join(INITS)}")


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
    steps: int = 100,
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
    Every ``save_every`` steps (0: never) ``on_snapshot(step, uint8 image)`` is called.
    L-BFGS may stop before ``steps`` when it converges; the history then ends early.
    """
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if init not in INITS:
        raise UserError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
    if steps < 1:
        raise UserError(f"steps must be at least 1, got {steps}")
    if save_every < 0:
        raise UserError(f"save_every must be 0 (never) or positive, got {save_every}")
    loss_parts = make_loss(extractor, content_image, style_image, weights)
    value_and_grad = _value_and_grad(loss_parts)
    start = initial_image(content_image, init, seed)[None]
    progress = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=LOSS_PARTS, unit_name="step")
    history: list[dict[str, float]] = []

    def record(step: int, image: np.ndarray, parts: Mapping[str, tf.Tensor]) -> None:
        """Keep the loss parts of ``image``, the image after ``step`` steps."""
        history.append(_floats(step, parts))
        if step:
            progress.update(step, [(part, history[-1][part]) for part in LOSS_PARTS])
        if on_snapshot is not None and save_every and step % save_every == 0:
            on_snapshot(step, to_uint8(image[0]))

    run = _run_lbfgs if optimizer == "lbfgs" else _run_adam
    final = run(value_and_grad, start, steps, record, learning_rate=learning_rate)
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


def _run_lbfgs(value_and_grad, start: np.ndarray, steps: int, record, **_unused) -> np.ndarray:
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
        # No tolerance stops: the loss scale depends on the extractor and the weights, so run all steps.
        options={"maxiter": steps, "maxfun": steps * 20, "ftol": 0.0, "gtol": 0.0},
    )
    return result.x.reshape(shape).astype(np.float32)


def _run_adam(value_and_grad, start: np.ndarray, steps: int, record, *, learning_rate: float) -> np.ndarray:
    image = tf.Variable(start)
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def update():
        parts, grad = value_and_grad(tf.convert_to_tensor(image))
        optimizer.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        return parts

    previous = start
    for step in range(1, steps + 1):
        parts = update()  # the loss parts of `previous`, the image before this update
        record(step - 1, previous, parts)
        previous = image.numpy()
    record(steps, previous, value_and_grad(tf.constant(previous))[0])
    return previous
