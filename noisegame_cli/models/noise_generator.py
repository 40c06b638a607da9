"""The noise generator of the Game of Noise (Rusak et al., ECCV 2020).

It maps N(0, 1) noise of the image's shape (not the image itself) to a noise pattern of the same
shape. With 1x1 convolutions every pixel's noise is independent of its neighbours but its channels
are correlated (the paper's default); 3x3 convolutions let the noise become spatially correlated.
The output is unbounded: its size is set afterwards by the L2 budget in
:mod:`noisegame_cli.training.l2_budget`.
"""

from __future__ import annotations

import keras
from keras import layers

from noisegame_cli import checks
from noisegame_cli.errors import UserError

GENERATOR_KERNELS = {"1x1": 1, "3x3": 3}


def build_noise_generator(
    image_shape: tuple[int, int, int],
    *,
    kind: str = "1x1",
    depth: int = 4,
    width: int = 20,
    batch_norm: bool = False,
    name: str = "noise_generator",
) -> keras.Model:
    """A stack of ``depth`` convolutions (``depth - 1`` hidden ones of ``width`` filters with ReLU,
    then a linear one back to the image's channels), all of kernel ``kind`` ("1x1" or "3x3")."""
    checks.chosen(kind, GENERATOR_KERNELS, "generator")
    if depth < 2:
        raise UserError(f"a noise generator needs at least 2 layers, got {depth}")
    if width < 1:
        raise UserError(f"generator width must be positive, got {width}")
    kernel = GENERATOR_KERNELS[kind]
    inputs = keras.Input(shape=tuple(image_shape), name="latent")
    x = inputs
    for index in range(1, depth):
        x = layers.Conv2D(width, kernel, padding="same", use_bias=not batch_norm, name=f"gen_conv{index}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"gen_conv{index}_bn")(x)
        x = layers.ReLU(name=f"gen_conv{index}_relu")(x)
    outputs = layers.Conv2D(image_shape[-1], kernel, padding="same", name="noise")(x)
    return keras.Model(inputs, outputs, name=name)
