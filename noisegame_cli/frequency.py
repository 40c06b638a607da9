"""The high-frequency study of Wang et al. (CVPR 2020): low/high-pass image splits and first-layer kernel smoothing.

``split(images, r)`` takes each channel's 2-D Fourier spectrum, centred (``fftshift``), keeps the disc of
radius ``r`` around the centre (distance < r) for the low part ``L(r)`` and leaves the rest to the high part
``H(r) = x - L(r)``, so ``L + H == x``. The parts are not clipped: ``L`` may leave 0..255 slightly and ``H``
is centred on zero, and both are fed to models as they are, as in the paper.

``smooth_kernels(kernel, rho)`` convolves every ``H x W`` slice of a convolution kernel with
``[[rho, rho, rho], [rho, 1, rho], [rho, rho, rho]]`` ("same" size, symmetric borders). Following the
authors' definition (w <- w + rho * sum of the 8 neighbours) the result is *not* normalised: for
``rho > 0`` a smooth kernel grows by up to ``1 + 8 * rho``; ``rho = 0`` is the identity. ``normalize=True``
divides the filter by ``1 + 8 * rho`` instead, keeping the kernel's scale (a choice of this project, for
models whose next layer is sensitive to that scale, such as batch normalisation in evaluation mode).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import keras
import numpy as np
import scipy.ndimage
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.errors import UserError
from noisegame_cli.models import copy_classifier

PARTS = ("low", "high")


def check_radius(radius: float) -> float:
    radius = float(radius)
    if not radius >= 0.0:  # also rejects NaN
        raise UserError(f"radius must be >= 0 (in frequency-index units), got {radius:g}")
    return radius


def low_pass_mask(height: int, width: int, radius: float) -> tf.Tensor:
    """1 inside the disc of ``radius`` around the centred spectrum's zero frequency (at ``(H // 2, W // 2)``
    after ``fftshift``), 0 outside; float32 ``[H, W]``."""
    rows = tf.cast(tf.range(height) - height // 2, tf.float32)
    cols = tf.cast(tf.range(width) - width // 2, tf.float32)
    distance = tf.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)
    return tf.cast(distance < radius, tf.float32)


def low_pass(images: tf.Tensor, radius: float) -> tf.Tensor:
    """``L(r)`` of float32 images ``[..., H, W, C]``, channel by channel."""
    channels_first = tf.experimental.numpy.moveaxis(images, -1, -3)  # fft2d works on the two innermost axes
    height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    mask = tf.cast(low_pass_mask(height, width, radius), tf.complex64)
    spectrum = tf.signal.fftshift(tf.signal.fft2d(tf.cast(channels_first, tf.complex64)), axes=(-2, -1))
    low = tf.signal.ifft2d(tf.signal.ifftshift(spectrum * mask, axes=(-2, -1)))
    return tf.experimental.numpy.moveaxis(tf.math.real(low), -3, -1)


def split(images, radius: float) -> tuple[tf.Tensor, tf.Tensor]:
    """``(L(r), H(r))`` of images ``[H, W, C]`` or ``[N, H, W, C]`` (any size, any dtype, 0..255), as float32.

    Works eagerly and inside ``tf.data`` maps; ``radius`` may be a Python number or a scalar tensor."""
    if not isinstance(radius, tf.Tensor):
        radius = check_radius(radius)
    images = tf.convert_to_tensor(images)
    if images.shape.rank not in (3, 4):
        raise UserError(f"split expects images [H, W, C] or [N, H, W, C], got shape {images.shape.as_list()}")
    images = tf.cast(images, tf.float32)
    low = low_pass(images, radius)
    return low, images - low


def part(images, radius: float, which: str) -> tf.Tensor:
    """One part of the split, ``which`` in ``PARTS``."""
    checks.chosen(which, PARTS, "part")
    low, high = split(images, radius)
    return low if which == "low" else high


# --- first-layer kernel smoothing ------------------------------------------------------------------


def smoothing_filter(rho: float, *, normalize: bool = False) -> np.ndarray:
    """``[[rho, rho, rho], [rho, 1, rho], [rho, rho, rho]]``, divided by its sum ``1 + 8 * rho`` when
    ``normalize`` (then a constant kernel keeps its values)."""
    weights = np.full((3, 3), float(rho))
    weights[1, 1] = 1.0
    return weights / weights.sum() if normalize else weights


def check_rho(rho: float) -> float:
    rho = float(rho)
    if not rho >= 0.0:
        raise UserError(f"rho must be >= 0, got {rho:g}")
    return rho


def smooth_kernels(kernel: np.ndarray, rho: float, *, normalize: bool = False) -> np.ndarray:
    """Convolve every ``[H, W]`` slice of a ``[H, W, in, out]`` kernel with ``smoothing_filter(rho)``
    (same size, symmetric borders; not normalised unless ``normalize``, see the module docstring)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise UserError(f"expected a Conv2D kernel [H, W, in, out], got shape {list(kernel.shape)}")
    weights = smoothing_filter(check_rho(rho), normalize=normalize)[:, :, None, None]
    # ndimage's "reflect" repeats the edge sample (d c b a | a b c d), i.e. signal.convolve2d's "symm"
    return scipy.ndimage.convolve(kernel, weights.astype(kernel.dtype), mode="reflect")


def first_conv2d(model: keras.Model) -> keras.layers.Conv2D:
    """The first ``Conv2D`` layer of ``model`` (looking inside nested models), or a ``UserError``."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer
        if isinstance(layer, keras.Model):
            try:
                return first_conv2d(layer)
            except UserError:
                continue
    raise UserError(f"model {model.name!r} has no Conv2D layer to smooth")


def smooth_first_layer(model: keras.Model, rho: float, *, normalize: bool = False) -> keras.Model:
    """A copy of ``model`` whose first ``Conv2D`` kernel is smoothed with ``rho``; ``model`` is unchanged."""
    first_conv2d(model)  # fail before cloning
    copy = copy_classifier(model)
    conv = first_conv2d(copy)
    conv.kernel.assign(smooth_kernels(keras.ops.convert_to_numpy(conv.kernel), rho, normalize=normalize))
    return copy


def smoothed_variants(model: keras.Model, rhos: Iterable[float], *, normalize: bool = False) -> Iterator[tuple[float, keras.Model]]:
    """``(rho, smoothed model)`` for each rho: one copy of ``model`` whose first kernel is reset for each
    rho in turn, so compiled functions that take the model (the attacks) are traced once, not per rho."""
    copy = smooth_first_layer(model, 0.0)
    conv = first_conv2d(copy)
    original = keras.ops.convert_to_numpy(first_conv2d(model).kernel)
    for rho in rhos:
        conv.kernel.assign(smooth_kernels(original, rho, normalize=normalize))
        yield rho, copy
