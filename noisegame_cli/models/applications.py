"""``app:NAME``: any ``keras.applications`` network as a classifier that keeps this project's contract.

The wrapped model takes 0..255 images of the dataset's shape, repeats grey images to 3 channels,
resizes to the network's native size, applies the network's own ``preprocess_input`` inside the model
(a serialisable layer), and returns logits: a new linear head for the dataset's classes, or, for
1000 classes with ImageNet weights (or a Keras application file with its top), the network's own top
with its softmax removed.

Weights (``--weights``): none (random), ``imagenet`` (from the Keras cache, downloaded only with
``--download``), a Keras application weights file (``.h5``, as Keras distributes them), or a
``.weights.h5`` file saved from a wrapped model of this project.

As a saved model to evaluate (``--model-path app:NAME[:WEIGHTS]``, ``application_classifier``) the
weights must cover the classifier: ImageNet's top for 1000-class data, or a ``.weights.h5`` file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator
from unittest import mock

import keras

from noisegame_cli.errors import UserError
from noisegame_cli.keras_cache import keras_cache

PREFIX = "app:"
# keras.applications submodule of each network (where its preprocess_input lives).
_MODULES = {
    "convnext": ("ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"),
    "densenet": ("DenseNet121", "DenseNet169", "DenseNet201"),
    "efficientnet": tuple(f"EfficientNetB{i}" for i in range(8)),
    "efficientnet_v2": ("EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
                        "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L"),
    "inception_resnet_v2": ("InceptionResNetV2",),
    "inception_v3": ("InceptionV3",),
    "mobilenet": ("MobileNet",),
    "mobilenet_v2": ("MobileNetV2",),
    "mobilenet_v3": ("MobileNetV3Small", "MobileNetV3Large"),
    "nasnet": ("NASNetMobile", "NASNetLarge"),
    "resnet": ("ResNet50", "ResNet101", "ResNet152"),
    "resnet_v2": ("ResNet50V2", "ResNet101V2", "ResNet152V2"),
    "vgg16": ("VGG16",),
    "vgg19": ("VGG19",),
    "xception": ("Xception",),
}  # fmt: skip
APPLICATION_MODULES = {name: module for module, names in _MODULES.items() for name in names}
# The input size each network was trained at (224 unless listed).
NATIVE_SIZES = {
    "InceptionV3": 299, "InceptionResNetV2": 299, "Xception": 299, "NASNetLarge": 331,
    "EfficientNetB1": 240, "EfficientNetB2": 260, "EfficientNetB3": 300, "EfficientNetB4": 380,
    "EfficientNetB5": 456, "EfficientNetB6": 528, "EfficientNetB7": 600,
    "EfficientNetV2B1": 240, "EfficientNetV2B2": 260, "EfficientNetV2B3": 300, "EfficientNetV2S": 384,
    "EfficientNetV2M": 480, "EfficientNetV2L": 480,
}  # fmt: skip
IMAGENET_CLASSES = 1000


def application_names() -> list[str]:
    return [PREFIX + name for name in APPLICATION_MODULES]


def is_application(name: str) -> bool:
    return str(name).startswith(PREFIX)


def check_application(name: str) -> str:
    """The network's Keras name from ``app:NAME`` (case-insensitive), or a ``UserError``."""
    wanted = str(name)[len(PREFIX):]
    for known in APPLICATION_MODULES:
        if known.lower() == wanted.lower():
            return known
    raise UserError(f"unknown application {wanted!r}; choose from {', '.join(APPLICATION_MODULES)}")


def split_application(spec: str, flag: str = "--model-path") -> tuple[str, str | None]:
    """The network's Keras name and the weights (None where not given) of ``app:NAME[:WEIGHTS]``;
    a ``UserError`` for an unknown network or a weights file that does not exist."""
    name, _, weights = str(spec)[len(PREFIX):].partition(":")
    try:
        network = check_application(PREFIX + name)
    except UserError as error:
        raise UserError(f"{flag} {spec}: {error}") from None
    weights = weights or None
    if weights not in (None, "imagenet", "none") and not Path(weights).is_file():
        raise UserError(f"{flag} {spec}: no weights file {weights} (or use imagenet)")
    return network, weights


def has_top(weights: str | None) -> bool:
    """Whether ``weights`` (of ``application_backbone``) include the network's ImageNet classifier top:
    ``imagenet``, or a Keras application weights file without ``notop`` in its name."""
    if weights in (None, "none"):
        return False
    return weights == "imagenet" or ("notop" not in Path(weights).name and not str(weights).endswith(".weights.h5"))


def application_classifier(spec: str, input_shape: tuple[int, int, int], num_classes: int, *, download: bool = False) -> keras.Model:
    """``app:NAME[:WEIGHTS]`` as a trained classifier to evaluate (``--model-path``): WEIGHTS ``imagenet``
    (the default) or a Keras application file with its top, for 1000-class data; or a ``.weights.h5``
    file saved from ``app:NAME`` trained for ``num_classes`` classes. One line says what the weights need
    where they do not fit (a new, random head would be evaluated otherwise)."""
    network, weights = split_application(spec)
    weights = weights or "imagenet"
    if weights == "none":
        raise UserError(f"{spec}: random weights classify nothing; give imagenet or a weights file")
    if not str(weights).endswith(".weights.h5"):
        described = "ImageNet weights" if weights == "imagenet" else f"weights file {weights}"
        if not has_top(weights):
            raise UserError(f"{spec}: {described} hold {network} without its classifier top; evaluate a model trained from it (its run "
                            f"directory, or app:{network}:FILE.weights.h5)")  # fmt: skip
        if num_classes != IMAGENET_CLASSES:
            raise UserError(f"{spec}: {described} classify ImageNet's {IMAGENET_CLASSES} classes but the dataset has {num_classes}; "
                            f"evaluate a model trained for them (train-teacher --model app:{network} --weights imagenet, then its run "
                            "directory, or app:NAME:FILE.weights.h5 saved from it)")  # fmt: skip
    return build_application(PREFIX + network, input_shape, num_classes, weights=weights, download=download)


@keras.saving.register_keras_serializable(package="noisegame")
class ApplicationPreprocessing(keras.layers.Layer):
    """A network's own ``preprocess_input`` as a layer, so it travels inside the saved model."""

    def __init__(self, application: str, **kwargs):
        super().__init__(**kwargs)
        self.application = check_application(PREFIX + application)

    def call(self, images):
        module = getattr(keras.applications, APPLICATION_MODULES[self.application])
        return module.preprocess_input(images)

    def get_config(self):
        return {**super().get_config(), "application": self.application}


@contextlib.contextmanager
def downloads_allowed(allowed: bool, what: str) -> Iterator[None]:
    """Let Keras fetch files only when ``allowed``; files already in its cache are used either way."""
    if allowed:
        yield
        return

    def refuse(url, *args, **kwargs):
        raise UserError(f"{what} are not in the Keras cache ({keras_cache('models')}) and this run may not download: "
                        f"pass --download, or --weights FILE")  # fmt: skip

    with mock.patch("keras.src.utils.file_utils.urlretrieve", refuse):
        yield


def application_backbone(
    name: str, *, weights: str | None = None, download: bool = False, input_shape=(None, None, 3), top: bool = False
) -> keras.Model:
    """The bare ``keras.applications`` network of ``app:NAME``: without its top (global average pooled
    features, or feature maps of any size for ``input_shape=(None, None, 3)``), or with it (``top``,
    1000 ImageNet logits, softmax removed). ``weights``: None / none (random), imagenet, or a Keras
    application weights file."""
    network = check_application(name)
    if weights not in (None, "none", "imagenet") and not Path(weights).is_file():
        raise UserError(f"--weights {weights}: no such file (or use imagenet / none)")
    constructor = getattr(keras.applications, network)
    pooled = input_shape[0] is not None
    options = {"include_top": True, "classifier_activation": None} if top else {"include_top": False, "pooling": "avg" if pooled else None}
    with downloads_allowed(download, f"ImageNet weights for {network}"):
        try:
            return constructor(weights=None if weights == "none" else weights, input_shape=tuple(input_shape), **options)
        except (ValueError, OSError) as error:
            raise UserError(f"cannot build {network} with weights {weights}: {str(error).splitlines()[0]}") from None


def build_application(
    name: str, input_shape: tuple[int, int, int], num_classes: int, *, weights: str | None = None, download: bool = False
) -> keras.Model:
    """``app:NAME`` as a classifier of ``input_shape`` images into ``num_classes`` classes (see module docstring)."""
    network = check_application(name)
    if input_shape[-1] not in (1, 3):
        raise UserError(f"{network} reads 1- or 3-channel images, the data has {input_shape[-1]} channels")
    native = NATIVE_SIZES.get(network, 224)
    whole_model_weights = weights is not None and str(weights).endswith(".weights.h5")
    if whole_model_weights and not Path(weights).is_file():
        raise UserError(f"--weights {weights}: no such file")
    own_top = has_top(weights) and num_classes == IMAGENET_CLASSES
    backbone = application_backbone(name, weights=None if whole_model_weights else weights, download=download,
                                    input_shape=(native, native, 3), top=own_top)  # fmt: skip
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = inputs
    if input_shape[-1] == 1:
        x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if tuple(input_shape[:2]) != (native, native):
        x = keras.layers.Resizing(native, native, name="resize")(x)
    x = ApplicationPreprocessing(network, name="preprocess")(x)
    x = backbone(x)
    logits = x if own_top else keras.layers.Dense(num_classes, name="logits")(x)
    model = keras.Model(inputs, logits, name=network.lower())
    if whole_model_weights:
        from noisegame_cli.models.saved import loaded_whole  # saved.py imports this module

        try:
            loaded_whole(lambda: model.load_weights(weights))
        except (ValueError, OSError) as error:
            raise UserError(f"--weights {weights} does not fit {network} for {num_classes} classes: {str(error).splitlines()[0]}") from None
    return model
