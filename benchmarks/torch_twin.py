"""An exact PyTorch twin of a small Keras classifier, for running the original AutoAttack on the same model.

``torch_twin(model)`` copies the weights of a Keras model made of a chain of the layers the digits models
use (Rescaling, Conv2D, BatchNormalization in inference, ReLU, MaxPooling2D, GlobalAveragePooling2D,
Flatten, Dense, Identity, Dropout) into a ``torch.nn.Module`` that takes what the original AutoAttack
feeds a model: float NCHW images in 0..1. It computes what the Keras model computes on the same images
as 0..255 NHWC pixels (``max_logit_difference`` measures how closely). Needs PyTorch (the ``bench`` extra).
"""

from __future__ import annotations

import keras
import numpy as np
import torch
import torch.nn.functional as F

PIXEL_MAX = 255.0


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), the extra one after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _activation(name: str):
    if name in ("linear", None):
        return lambda x: x
    if name == "relu":
        return F.relu
    raise NotImplementedError(f"activation {name!r} has no twin here")


def _parameter(array) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor(np.asarray(array), dtype=torch.float32), requires_grad=False)


class _Conv(torch.nn.Module):
    def __init__(self, layer: keras.layers.Conv2D):
        super().__init__()
        kernel, *bias = layer.get_weights()
        self.weight = _parameter(np.transpose(kernel, (3, 2, 0, 1)))  # HWIO -> OIHW
        self.bias = _parameter(bias[0]) if bias else None
        self.stride, self.kernel, self.padding = layer.strides, layer.kernel_size, layer.padding
        self.activation = _activation(layer.get_config()["activation"])
        if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
            raise NotImplementedError("dilated or grouped convolutions have no twin here")

    def forward(self, x):
        padding = 0
        if self.padding == "same":
            rows = _same_padding(x.shape[2], self.kernel[0], self.stride[0])
            cols = _same_padding(x.shape[3], self.kernel[1], self.stride[1])
            if rows[0] == rows[1] and cols[0] == cols[1]:
                padding = (rows[0], cols[0])
            else:
                x = F.pad(x, (*cols, *rows))
        return self.activation(F.conv2d(x, self.weight, self.bias, self.stride, padding))


class _BatchNorm(torch.nn.Module):
    def __init__(self, layer: keras.layers.BatchNormalization):
        super().__init__()
        weights = dict(zip([w.path.split("/")[-1] for w in layer.weights], layer.get_weights()))
        channels = weights["moving_mean"].shape[0]
        self.gamma = _parameter(weights.get("gamma", np.ones(channels)))
        self.beta = _parameter(weights.get("beta", np.zeros(channels)))
        self.mean, self.variance = _parameter(weights["moving_mean"]), _parameter(weights["moving_variance"])
        self.epsilon = float(layer.epsilon)

    def forward(self, x):
        return F.batch_norm(x, self.mean, self.variance, self.gamma, self.beta, training=False, eps=self.epsilon)


class _Dense(torch.nn.Module):
    def __init__(self, layer: keras.layers.Dense):
        super().__init__()
        kernel, *bias = layer.get_weights()
        self.weight = _parameter(kernel.T)
        self.bias = _parameter(bias[0]) if bias else None
        self.activation = _activation(layer.get_config()["activation"])

    def forward(self, x):
        return self.activation(F.linear(x, self.weight, self.bias))


class _Lambda(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def _flatten_like_keras(x):
    return torch.flatten(x.permute(0, 2, 3, 1), 1)  # Keras flattens channels-last


def _twin_layer(layer) -> torch.nn.Module | None:
    if isinstance(layer, (keras.layers.InputLayer, keras.layers.Identity, keras.layers.Dropout)):
        return None
    if isinstance(layer, keras.layers.Rescaling):
        scale, offset = float(layer.scale), float(layer.offset)
        return _Lambda(lambda x: x * scale + offset)
    if isinstance(layer, keras.layers.Conv2D):
        return _Conv(layer)
    if isinstance(layer, keras.layers.BatchNormalization):
        return _BatchNorm(layer)
    if isinstance(layer, keras.layers.ReLU):
        return _Lambda(F.relu)
    if isinstance(layer, keras.layers.MaxPooling2D):
        if layer.padding != "valid":
            raise NotImplementedError("only valid max pooling has a twin here")
        return _Lambda(lambda x: F.max_pool2d(x, layer.pool_size, layer.strides))
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return _Lambda(lambda x: x.mean(dim=(2, 3)))
    if isinstance(layer, keras.layers.Flatten):
        return _Lambda(_flatten_like_keras)
    if isinstance(layer, keras.layers.Dense):
        return _Dense(layer)
    raise NotImplementedError(f"layer {type(layer).__name__} has no twin here")


def torch_twin(model: keras.Model) -> torch.nn.Module:
    """A ``torch.nn.Module`` (in eval mode) computing ``model``'s logits from NCHW 0..1 images; ``model``
    must be a chain of supported layers taking 0..255 NHWC pixels."""
    layers = [twin for twin in map(_twin_layer, model.layers) if twin is not None]
    first = _Lambda(lambda x: x * PIXEL_MAX)  # the Keras model takes 0..255 pixels
    return torch.nn.Sequential(first, *layers).eval()


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """0..255 NHWC images as the original AutoAttack takes them: float NCHW in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(images, np.float32) / PIXEL_MAX, (0, 3, 1, 2))))


def to_nhwc_pixels(images: torch.Tensor) -> np.ndarray:
    return np.transpose(images.detach().numpy(), (0, 2, 3, 1)) * PIXEL_MAX


def max_logit_difference(model: keras.Model, twin: torch.nn.Module, images: np.ndarray) -> float:
    """The largest absolute difference between the two models' logits on ``images`` (0..255 NHWC)."""
    ours = model(np.asarray(images, np.float32), training=False).numpy()
    with torch.no_grad():
        theirs = twin(to_nchw(images)).numpy()
    return float(np.abs(ours - theirs).max())
