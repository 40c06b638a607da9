"""The registered classifiers. Each takes 0..255 images, rescales them in its first layer and returns logits.

Feature stages are named ``stage1``, ``stage2``, ... (the output of each resolution stage), so that
style transfer and feature studies can find them in any registered model.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

from noisegame_cli import checks
from noisegame_cli.errors import UserError

ModelBuilder = Callable[..., keras.Model]
# Keras' default momentum (0.99) leaves the moving statistics far from the data's after the few
# hundred steps of a small dataset, so evaluation-mode accuracy lags; 0.9 tracks them in time.
BN_MOMENTUM = 0.9
MODELS: dict[str, ModelBuilder] = {}


def register(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = builder
        return builder

    return decorator


def build_model(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    dropout: float = 0.0,
    batch_norm: bool = True,
) -> keras.Model:
    """Build a registered classifier for images of ``input_shape`` and ``num_classes`` classes."""
    checks.chosen(name, MODELS, "model")
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"dropout must lie in [0, 1), got {dropout}")
    if num_classes < 2:
        raise UserError(f"a classifier needs at least 2 classes, got {num_classes}")
    return MODELS[name](tuple(input_shape), num_classes, dropout=dropout, batch_norm=batch_norm)


def _norm_act(x, batch_norm: bool, name: str):
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _conv(x, filters: int, name: str, *, batch_norm: bool, strides: int = 1, kernel_size: int = 3):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm, name=name)(x)
    return _norm_act(x, batch_norm, name)


def _head(x, num_classes: int, dropout: float) -> keras.KerasTensor:
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _input(input_shape, scale: float = 1 / 255.0, offset: float = 0.0):
    inputs = keras.Input(shape=input_shape, name="images")
    return inputs, layers.Rescaling(scale, offset, name="rescale")(inputs)


@register("tiny_cnn")
def tiny_cnn(input_shape, num_classes, *, dropout=0.0, batch_norm=True) -> keras.Model:
    """Two strided convolutions: a few thousand parameters, for tests."""
    inputs, x = _input(input_shape)
    x = _conv(x, 8, "conv1", batch_norm=batch_norm, strides=2)
    x = layers.Identity(name="stage1")(x)
    x = _conv(x, 16, "conv2", batch_norm=batch_norm, strides=2)
    x = layers.Identity(name="stage2")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name="tiny_cnn")


@register("small_cnn")
def small_cnn(input_shape, num_classes, *, dropout=0.0, batch_norm=True) -> keras.Model:
    """Three VGG-style stages (32, 64, 128 filters), about 0.29 M parameters."""
    return _vgg_stages(input_shape, num_classes, (32, 64, 128), "small_cnn", dropout=dropout, batch_norm=batch_norm)


@register("compact_cnn")
def compact_cnn(input_shape, num_classes, *, dropout=0.0, batch_norm=True) -> keras.Model:
    """small_cnn at half the width (16, 32, 64 filters): about 73 k parameters and a quarter of its
    computation, for studies on a CPU (the digits demo)."""
    return _vgg_stages(input_shape, num_classes, (16, 32, 64), "compact_cnn", dropout=dropout, batch_norm=batch_norm)


def _vgg_stages(input_shape, num_classes, widths, name: str, *, dropout: float, batch_norm: bool) -> keras.Model:
    """Three stages of two 3x3 convolutions each, 2x2 max-pooling between stages."""
    inputs, x = _input(input_shape)
    for stage, filters in enumerate(widths, start=1):
        x = _conv(x, filters, f"conv{stage}a", batch_norm=batch_norm)
        x = _conv(x, filters, f"conv{stage}b", batch_norm=batch_norm)
        x = layers.Identity(name=f"stage{stage}")(x)
        if stage < len(widths):
            x = layers.MaxPooling2D(name=f"pool{stage}")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name=name)


@register("resnet20")
def resnet20(input_shape, num_classes, *, dropout=0.0, batch_norm=True) -> keras.Model:
    """The CIFAR ResNet-20 of He et al. (2016): 3 stages x 3 basic blocks, 16/32/64 filters."""
    inputs, x = _input(input_shape)
    x = _conv(x, 16, "conv0", batch_norm=batch_norm)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(3):
            strides = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(x, filters, strides, f"s{stage}b{block}", batch_norm)
        x = layers.Identity(name=f"stage{stage}")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name="resnet20")


def _basic_block(x, filters: int, strides: int, name: str, batch_norm: bool):
    shortcut = x
    y = _conv(x, filters, f"{name}_conv1", batch_norm=batch_norm, strides=strides)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv2")(y)
    if batch_norm:
        y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_conv2_bn")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_shortcut")(shortcut)
        if batch_norm:
            shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_shortcut_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


@register("resnet50v2")
def resnet50v2(input_shape, num_classes, *, dropout=0.0, batch_norm=True) -> keras.Model:
    """keras.applications.ResNet50V2 (random init) on images resized to 72x72, as in the Keras
    consistency-training example; any input size is resized first."""
    if not batch_norm:
        raise UserError("resnet50v2 is defined with batch normalisation; --no-batch-norm does not apply")
    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Resizing(72, 72, name="resize")(inputs)
    x = layers.Rescaling(1 / 127.5, -1.0, name="rescale")(x)
    backbone = keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=(72, 72, input_shape[-1]))
    x = backbone(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name="resnet50v2")


@register("vgg19")
def vgg19(input_shape, num_classes, *, dropout=0.0, batch_norm=True) -> keras.Model:
    """keras.applications.VGG19 convolutional base (random init, no batch norm) with a linear head."""
    if input_shape[0] < 32 or input_shape[1] < 32:
        raise UserError(f"vgg19 needs images of at least 32x32, got {input_shape[0]}x{input_shape[1]}")
    inputs, x = _input(input_shape)
    backbone = keras.applications.VGG19(include_top=False, weights=None, input_shape=tuple(input_shape))
    x = backbone(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name="vgg19")
