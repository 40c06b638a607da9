"""Feature extractors for style transfer: a network cut to the feature maps of its style and content
layers, taking 0..255 images of any size and doing its own preprocessing.

- ``vgg19`` (Gatys et al. 2016: reluN_1 style layers, relu4_2 content, average pooling) and
  ``resnet50`` (its four stage outputs, as Nakano, Distill 2019, compared on the robust features of
  Ilyas et al. 2019), and any ``app:NAME`` network: built by ``models.applications`` with its weights
  rules (ImageNet weights from the Keras cache, downloaded only with ``--download``; a weights file;
  none);
- any classifier saved by this tool (its ``stage1``, ``stage2``, ... outputs by default).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.errors import UserError
from noisegame_cli.models.applications import PREFIX, ApplicationPreprocessing, application_backbone, check_application, is_application
from noisegame_cli.input_scale import InputScale
from noisegame_cli.models.saved import load_classifier, model_label
from noisegame_cli.models.wrapping import InputScaling

IMAGENET = "imagenet"
NO_WEIGHTS = "none"


@dataclass(frozen=True)
class FeatureExtractor:
    """A model from 0..255 images ``[B, H, W, 3]`` to a dict of feature maps, one per named layer."""

    name: str
    model: keras.Model
    style_layers: tuple[str, ...]
    content_layer: str


@dataclass(frozen=True)
class GatysLayers:
    """The layers of a network whose style-transfer results the literature reports, and whether its
    max-pooling becomes average pooling (Gatys et al. found it smoother)."""

    network: str  # the keras.applications network
    style_layers: tuple[str, ...]
    content_layer: str
    average_pooling: bool


ARCHITECTURES: dict[str, GatysLayers] = {
    # Keras' convolutions include their ReLU, so blockN_conv1 is Gatys et al.'s reluN_1.
    "vgg19": GatysLayers("VGG19", tuple(f"block{block}_conv1" for block in range(1, 6)), "block4_conv2", average_pooling=True),
    # The outputs of the four residual stages; content from the third (Nakano, Distill 2019).
    "resnet50": GatysLayers("ResNet50", ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
                            "conv4_block6_out", average_pooling=False),
}


_STAGE_NAME = re.compile(r"stage(\d+)$")


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
    probe = application_backbone(PREFIX + network_name, input_shape=(224, 224, 3))
    last_at_size: dict[tuple, int] = {}
    for index, layer in enumerate(probe.layers[1:], start=1):
        if _is_feature_map(layer):
            last_at_size[tuple(layer.output.shape[1:3])] = index
    layers = (network or probe).layers
    return [layers[index].name for index in last_at_size.values()]


def application_extractor(
    name: str,
    *,
    weights: str | None = IMAGENET,
    download: bool = False,
    style_layers: Sequence[str] | None = None,
    content_layer: str | None = None,
) -> FeatureExtractor:
    """``vgg19`` or ``resnet50`` (Gatys-style layers, VGG's pooling averaged) or any ``app:NAME`` network,
    with the weights rules of ``--model app:NAME`` (``models.applications``: ImageNet weights from the
    Keras cache, downloaded only with ``download``; a weights file; none) and its own preprocessing.
    Layers default to the table's, else to the stage outputs with content from the last but one."""
    gatys = ARCHITECTURES.get(str(name).lower())
    network_name = gatys.network if gatys is not None else check_application(name)
    network = application_backbone(PREFIX + network_name, weights=weights, download=download)
    if gatys is not None:
        if gatys.average_pooling:
            network = _with_average_pooling(network)
        default_style, default_content, label = gatys.style_layers, gatys.content_layer, str(name).lower()
    else:
        default_style = stage_output_names(network_name, network)
        default_content, label = default_style[-2] if len(default_style) > 1 else None, network_name.lower()
    style, content = choose_layers(network, style_layers, content_layer, default_style=default_style, default_content=default_content,
                                   what=network_name)  # fmt: skip
    inputs = keras.Input(shape=(None, None, 3), name="images")
    preprocessed = ApplicationPreprocessing(network_name, name="preprocess")(inputs)
    features = _feature_model(network, (*style, content), label)
    return FeatureExtractor(label, keras.Model(inputs, features(preprocessed), name=f"{label}_style"), style, content)


def build_extractor(
    source: str | os.PathLike | keras.Model,
    *,
    weights: str | None = IMAGENET,
    download: bool = False,
    style_layers: Sequence[str] | None = None,
    content_layer: str | None = None,
) -> FeatureExtractor:
    """``vgg19``, ``resnet50``, a saved classifier (path) or a Keras model, as a feature extractor."""
    if isinstance(source, str) and (source.lower() in ARCHITECTURES or is_application(source)):
        return application_extractor(source, weights=weights, download=download, style_layers=style_layers, content_layer=content_layer)
    if isinstance(source, keras.Model) or Path(source).exists():
        return saved_model_extractor(source, style_layers=style_layers, content_layer=content_layer)
    checks.chosen(str(source), ARCHITECTURES, "extractor", also=", app:NAME or a saved model path")


def check_image_size(extractor: FeatureExtractor, image_shape: Sequence[int]) -> None:
    """A ``UserError`` where ``extractor`` cannot take images of ``image_shape`` (a deep network's strides
    shrink a small image to nothing), found by tracing it once on a blank image of that shape, as the
    optimisation runs it (run eagerly, a convolution over an empty input passes silently)."""
    try:
        tf.function(extractor.model)(np.zeros((1, *image_shape), np.float32))
    except (ValueError, tf.errors.InvalidArgumentError):
        height, width = image_shape[:2]
        raise UserError(f"{extractor.name} cannot take {height}x{width} images (its strides shrink them to nothing): give a larger --size") from None
