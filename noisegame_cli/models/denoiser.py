"""The GAN denoiser: a convolutional encoder in front of DCGAN's decoder, and DCGAN's discriminator.

The architecture follows Radford et al. (ICLR 2016): 4x4 convolutions of stride 2 instead of pooling,
batch norm everywhere except the discriminator's input layer and the generator's output layer, ReLU
in the generator's decoder with a tanh output, LeakyReLU (slope 0.2) in the discriminator and the
encoder, weights drawn from N(0, 0.02). The generator's 100-dimensional noise input is replaced by
the noisy image itself: the encoder halves the size ``depth`` times, the decoder doubles it back.
There are no skip connections (not a U-Net), so everything passes through the bottleneck.

Both networks take 0..255 images and rescale them to -1..1 in their first layer; the denoiser maps
its tanh output back to 0..255 (float32), so it can stand in front of any classifier here.
:func:`purified_classifier` puts it there, for attacks that see through the purifier.
"""

from __future__ import annotations

import keras
from keras import layers

from noisegame_cli.errors import UserError
from noisegame_cli.models.classifiers import BN_MOMENTUM

LEAKY_SLOPE = 0.2
INIT_STDDEV = 0.02


def _weights():
    # A fresh initializer per layer: one shared instance would give every layer the same draw.
    return keras.initializers.RandomNormal(stddev=INIT_STDDEV)


def _check_architecture(image_shape, depth: int, base_filters: int) -> tuple[int, int, int]:
    if len(image_shape) != 3 or image_shape[-1] not in (1, 3):
        raise UserError(f"images must be [H, W, 1] or [H, W, 3], got {list(image_shape)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise UserError(f"depth must be a positive integer, got {depth!r}")
    if isinstance(base_filters, bool) or not isinstance(base_filters, int) or base_filters < 1:
        raise UserError(f"base filters must be a positive integer, got {base_filters!r}")
    return tuple(int(size) for size in image_shape)


def _image_input(image_shape, name: str = "images"):
    inputs = keras.Input(shape=image_shape, name=name)
    return inputs, layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)


def _down(x, filters: int, name: str, *, batch_norm: bool):
    x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=not batch_norm, kernel_initializer=_weights(), name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_lrelu")(x)


def _up(x, filters: int, name: str):
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_weights(), name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_denoiser(image_shape, *, depth: int = 3, base_filters: int = 64, name: str = "denoiser") -> keras.Model:
    """Noisy 0..255 images in, denoised float32 0..255 images of the same shape out.

    Encoder: ``depth`` stride-2 4x4 convolutions of ``base_filters * 2**i`` filters (batch norm on all
    but the first), LeakyReLU 0.2. Decoder: ``depth - 1`` stride-2 4x4 transposed convolutions back
    down the same filter counts with batch norm and ReLU, then a last one to the image's channels with
    tanh (no batch norm). H and W must be divisible by ``2**depth``; channels 1 or 3.
    """
    height, width, channels = _check_architecture(image_shape, depth, base_filters)
    divisor = 2**depth
    if height % divisor or width % divisor:
        raise UserError(f"the denoiser of depth {depth} needs H and W divisible by {divisor}, got {height}x{width}")
    inputs, x = _image_input((height, width, channels), name="noisy")
    for level in range(depth):
        x = _down(x, base_filters * 2**level, f"encode{level + 1}", batch_norm=level > 0)
    for level in reversed(range(1, depth)):
        x = _up(x, base_filters * 2 ** (level - 1), f"decode{depth - level}")
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", kernel_initializer=_weights(), name=f"decode{depth}")(x)
    # float32 from here on, so the output stays 0..255 float32 under a mixed-precision policy.
    x = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    outputs = layers.Rescaling(127.5, offset=127.5, dtype="float32", name="to_pixels")(x)
    return keras.Model(inputs, outputs, name=name)


def build_discriminator(image_shape, *, depth: int = 3, base_filters: int = 64, name: str = "discriminator") -> keras.Model:
    """DCGAN's discriminator: 0..255 images in, one logit per image out (positive: looks clean).

    ``depth`` stride-2 4x4 convolutions of ``base_filters * 2**i`` filters with LeakyReLU 0.2, batch norm
    after all but the first, then the flattened features to a single linear unit.
    """
    image_shape = _check_architecture(image_shape, depth, base_filters)
    inputs, x = _image_input(image_shape)
    for level in range(depth):
        x = _down(x, base_filters * 2**level, f"disc{level + 1}", batch_norm=level > 0)
    x = layers.Flatten(name="flatten")(x)
    logits = layers.Dense(1, kernel_initializer=_weights(), dtype="float32", name="logit")(x)
    return keras.Model(inputs, logits, name=name)


def purified_classifier(denoiser: keras.Model, classifier: keras.Model, *, bpda: bool = False, name: str | None = None) -> keras.Model:
    """``classifier(denoiser(x))`` as one model: 0..255 images in, the classifier's logits out.

    Attacks on this model see through the purifier (white-box). With ``bpda=True`` the denoiser's
    backward pass is the identity (the straight-through form of Athalye et al. 2018's BPDA): the
    forward pass is the denoiser's, the gradient with respect to the input is the classifier's
    gradient at the denoised image. Use it where the denoiser's own gradients are unhelpful.
    """
    check_purifies(denoiser, classifier)
    inputs = keras.Input(shape=tuple(denoiser.inputs[0].shape[1:]), name="images")
    denoised = denoiser(inputs)
    if bpda:
        denoised = inputs + keras.ops.stop_gradient(denoised - inputs)
    outputs = classifier(denoised)
    suffix = "bpda" if bpda else "purified"
    return keras.Model(inputs, outputs, name=name or f"{classifier.name}_{suffix}")


def check_purifies(denoiser: keras.Model, classifier: keras.Model) -> None:
    """Raise a ``UserError`` unless ``classifier`` takes images of the shape ``denoiser`` returns."""
    produced = list(denoiser.outputs[0].shape[1:])
    expected = list(classifier.inputs[0].shape[1:])
    fits = len(produced) == len(expected) and all(e is None or e == p for e, p in zip(expected, produced))
    if not fits:
        raise UserError(f"the classifier takes images of shape {expected} but the denoiser returns {produced}")
