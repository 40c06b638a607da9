"""What the C-bar corruptions share: the image frame, the split of each corruption into a random draw
and a deterministic rendering, and the generator's last step.

A corruption is ``draw(batch, frame, level, seed) -> {name: tensor [N, ...]}`` (its per-image random
parameters, from stateless random ops) followed by ``render(images, frame, level, **drawn)`` (float32
0..255 ``[N, H, W, 3]`` in, the generator's float result out, before its uint8 cast). `level` is the
severity as the published tables write it (a float on the generator's 0..10 scale); the rendering gets
it as a float64 scalar tensor, so that one compiled rendering serves the five severities, except where
it shapes the work (`static_level`: a line count, a matrix). Keeping the two apart is what lets a test
give the rendering the generator's own recorded parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Mapping

import tensorflow as tf

from noisegame_cli.corruptions import ops

TWO_PI = 2.0 * math.pi


@dataclasses.dataclass(frozen=True)
class Frame:
    """The images' size and how it relates to the parameter set's: the generator writes its lengths as
    fractions of the (square) image side, here the shorter side; `scale` is side / the set's native side,
    which the few lengths the generator writes in pixels (a 1-pixel minimum, a blur sigma, a line width)
    are multiplied by."""

    height: int
    width: int
    scale: float

    @property
    def side(self) -> int:
        return min(self.height, self.width)

    @property
    def native_side(self) -> int:
        return round(self.side / self.scale)

    def grid(self, dtype=tf.float64) -> tuple[tf.Tensor, tf.Tensor]:
        """Row and column indices [1, H, W], to broadcast against per-image values [N, 1, 1]."""
        rows, cols = tf.meshgrid(tf.range(self.height, dtype=dtype), tf.range(self.width, dtype=dtype), indexing="ij")
        return rows[None], cols[None]


@dataclasses.dataclass(frozen=True)
class CBarCorruption:
    """One corruption as a random draw and a deterministic rendering; `xla`: the rendering is compiled
    with XLA (measured faster; the draw never is, since XLA would draw other numbers); `static_level`:
    the rendering takes the level as a Python float (compiled once per severity)."""

    draw: Callable[..., Mapping[str, tf.Tensor]]
    render: Callable[..., tf.Tensor]
    xla: bool = True
    static_level: bool = False

    def __call__(self, pixels: tf.Tensor, level: float, seed: tf.Tensor, scale: float) -> tf.Tensor:
        """uint8 [N, H, W, 3] in and out, as the engine's on-pixel corruptions are called."""
        frame = Frame(pixels.shape[1], pixels.shape[2], float(scale))
        drawn = self.draw(tf.shape(pixels)[0], frame, float(level), seed)
        return truncated_pixels(self.rendering(frame, level)(tf.cast(pixels, tf.float32), drawn))

    def rendering(self, frame: Frame, level: float):
        """``f(images, drawn)``: the compiled rendering at this level."""
        if self.static_level:
            return compiled_render(self, frame, float(level))
        return functools.partial(compiled_render(self, frame, None), level=tf.constant(level, tf.float64))


@functools.lru_cache(maxsize=None)
def compiled_render(corruption: CBarCorruption, frame: Frame, level: float | None):
    """The rendering as a tf.function, for one level (`level` a float) or any (None: a `level` argument)."""

    def render(images, drawn, level=level):
        return corruption.render(images, frame, level, **drawn)

    return tf.function(render, jit_compile=corruption.xla, autograph=False, reduce_retracing=True)


def float_parameter(level, maximum: float):
    """The generator's ``float_parameter``: level on its 0..10 scale as a fraction of `maximum`, computed
    in its order (the same float); a float for a float level, a tensor for a tensor."""
    return level * maximum / 10.0


def truncated_pixels(values: tf.Tensor) -> tf.Tensor:
    """The generator's ``np.clip(x, 0, 255).astype(np.uint8)`` on 0..255 values: clipped, then truncated."""
    return tf.cast(tf.floor(tf.clip_by_value(values, 0.0, 255.0)), tf.uint8)


# ---------------------------------------------------------------- draws


def uniform(seed: tf.Tensor, stream: int, shape, low=0.0, high=1.0, dtype=tf.float64) -> tf.Tensor:
    """U(low, high) of `shape` from the `stream`-th independent draw of `seed`."""
    return tf.random.stateless_uniform(shape, ops.stream(seed, stream), minval=low, maxval=high, dtype=dtype)


def integers(seed: tf.Tensor, stream: int, shape, low: int, high: int) -> tf.Tensor:
    """Uniform integers in [low, high) (NumPy's ``randint(low, high)``), int32."""
    return tf.random.stateless_uniform(shape, ops.stream(seed, stream), minval=low, maxval=high, dtype=tf.int32)


def normal(seed: tf.Tensor, stream: int, shape, dtype=tf.float64) -> tf.Tensor:
    return tf.random.stateless_normal(shape, ops.stream(seed, stream), dtype=dtype)


def per_image(values: tf.Tensor) -> tf.Tensor:
    """Per-image values [N] as [N, 1, 1], to broadcast over a frame's grid."""
    return values[:, None, None]


def as_images(values: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """A grey pattern [N, H, W] as float32 images [N, H, W, channels]."""
    return tf.repeat(tf.cast(values, tf.float32)[..., None], channels, axis=-1)
