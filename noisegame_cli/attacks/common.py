"""Pieces the attacks of this package share: norms and balls in the 0..1 scale, logits, per-point keys,
canonical batch sizes, the final clip.

The AutoAttack family (``apgd``, ``fab``, ``square``) works inside its graphs on images in the 0..1 scale
(pixels / 255), the scale its budgets and constants are given in; the model still sees 0..255 pixels.
``to_pixels`` turns a result back into 0..255 images, clipped to the range and to the budget around the
original pixels (so float round-off in the rescaling can never leave the ball).

Every random draw of an attack comes from the keys of ``point_keys``: (seed, the attack's run, the
point's index in the evaluated set), every model call runs on ``canonical_rows`` (a multiple of 16
rows), every per-row sum is a fixed tree of additions (``row_sum``) and every graph is traced for an
open batch size (``TracedPerImageShape``), so a point's result does not depend on the batch, chunk or
shard it is computed in: bit-identical, on the same machine.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from noisegame_cli import keyed_random
from noisegame_cli.budgets import PIXEL_MAX
from noisegame_cli.checks import chosen
from noisegame_cli.errors import UserError

NORMS = ("Linf", "L2")
# Added to norms before dividing by them, as the original AutoAttack does
TINY = 1e-12
# For tape.gradient: an output that does not depend on the input has gradient 0 (not None)
ZERO_GRADIENT = tf.UnconnectedGradients.ZERO


def check_norm(norm: str) -> str:
    """``norm`` if it is one of ``NORMS``, else a ``UserError``."""
    return chosen(norm, NORMS, "norm")


def per_example(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``values`` of shape [N] reshaped to broadcast against ``like`` of shape [N, ...]."""
    return tf.reshape(values, tf.concat([[-1], tf.ones([tf.rank(like) - 1], tf.int32)], axis=0))


def flat(images: tf.Tensor) -> tf.Tensor:
    """[N, d], with d static where the image shape is."""
    if images.shape[1:].is_fully_defined():
        return tf.reshape(images, [-1, int(np.prod(images.shape[1:]))])
    return tf.reshape(images, [tf.shape(images)[0], -1])


def row_sum(values: tf.Tensor) -> tf.Tensor:
    """The sum over the last axis (of static length), as a fixed tree of pairwise additions.

    ``tf.reduce_sum`` leaves the order of the additions to the kernel, and XLA's order depends on the
    number of rows (on this CPU, from 384 rows on it sums each row in another order): a point's norm
    would change in its last bits with the batch it is in. Explicit additions are never reordered, so
    this sum is the same for a row in any batch, compiled with XLA or not (and faster under XLA)."""
    while values.shape[-1] > 1:
        half = values.shape[-1] // 2
        folded = values[..., :half] + values[..., half : 2 * half]
        values = tf.concat([folded, values[..., 2 * half :]], axis=-1) if values.shape[-1] % 2 else folded
    return values[..., 0]


def lp_norm(images: tf.Tensor, norm: str) -> tf.Tensor:
    """The ``norm`` of each example, shape [N]."""
    values = flat(images)
    if norm == "Linf":
        return tf.reduce_max(tf.abs(values), axis=1)
    return tf.sqrt(row_sum(tf.square(values)))


def normalize(images: tf.Tensor, norm: str) -> tf.Tensor:
    """Each example divided by its ``norm`` (zero stays zero)."""
    return images / per_example(lp_norm(images, norm) + TINY, images)


def project(images: tf.Tensor, center: tf.Tensor, eps, norm: str) -> tf.Tensor:
    """Into the ``norm`` ball of radius ``eps`` around ``center``, then into [0, 1] (0..1 scale).

    Clipping to the range after the ball keeps the point in the ball: the centre lies in the range, so
    clipping only moves each coordinate towards it."""
    if norm == "Linf":
        images = tf.clip_by_value(images, center - eps, center + eps)
    else:
        delta = images - center
        radius = tf.minimum(tf.cast(eps, images.dtype), lp_norm(delta, norm))
        images = center + normalize(delta, norm) * per_example(radius, delta)
    return tf.clip_by_value(images, 0.0, 1.0)


def random_direction(keys: tf.Tensor, shape, norm: str) -> tf.Tensor:
    """A random perturbation of unit ``norm`` per point, ``[N, *shape]``, row n drawn from ``keys[n]``
    alone: uniform in the cube then scaled to its largest coordinate (Linf), a normalised Gaussian (L2),
    as AutoAttack's random starts."""
    draw = keyed_random.uniform(keys, shape, -1.0, 1.0) if norm == "Linf" else keyed_random.normal(keys, shape)
    return normalize(draw, norm)


def model_logits(model, pixels: tf.Tensor) -> tf.Tensor:
    """The model's logits for 0..255 ``pixels``, in inference mode."""
    return model(pixels, training=False)


def logits_of(model, images: tf.Tensor) -> tf.Tensor:
    """The model's logits for 0..1-scale ``images`` (the model takes 0..255)."""
    return model(images * PIXEL_MAX, training=False)


def predictions(logits: tf.Tensor) -> tf.Tensor:
    return tf.argmax(logits, axis=-1, output_type=tf.int64)


def _to_pixels(original: tf.Tensor, original_unit: tf.Tensor, adversarial_unit: tf.Tensor, eps, norm: str) -> tf.Tensor:
    delta = (adversarial_unit - original_unit) * PIXEL_MAX
    eps_pixels = tf.cast(eps, tf.float32) * PIXEL_MAX
    if norm == "Linf":
        delta = tf.clip_by_value(delta, -eps_pixels, eps_pixels)
    else:
        size = lp_norm(delta, norm)
        delta = delta * per_example(tf.minimum(1.0, tf.math.divide_no_nan(eps_pixels, size)), delta)
    return tf.clip_by_value(original + delta, 0.0, PIXEL_MAX)


class TracedPerImageShape:
    """``tf.function(function)``, traced once per image shape with the batch dimension left open, before
    its first call; the images are the first tensor argument (after the model, say).

    Static image shapes (``row_sum`` needs them) even in a process that attacks images of several sizes;
    and one graph for every batch size: a graph traced for one concrete batch size is optimised with
    that size (Grappler rewrites its arithmetic), which changed a row's gradient in its last bits
    against the graph of any other size. Tensor arguments whose first dimension is the batch's (a
    multiple of ``ROW_MULTIPLE``) get it left open too; the others keep their shapes."""

    def __init__(self, function):
        self.function = function
        self.compiled = tf.function(self._traced)

    def _traced(self, *args, image_shape, **kwargs):
        return self.function(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        images = next(value for value in args if isinstance(value, tf.Tensor))
        count = images.shape[0]

        def open_batch(value):
            if not isinstance(value, tf.Tensor):
                return value
            leading = [None] if value.shape.rank and value.shape[0] == count else value.shape[:1]
            return tf.TensorSpec([*leading, *value.shape[1:]], value.dtype)

        image_shape = tuple(images.shape[1:])
        # a lookup once traced: the call below then runs this generic graph, never one of its own size
        self.compiled.get_concrete_function(*map(open_batch, args), image_shape=image_shape, **kwargs)
        return self.compiled(*args, image_shape=image_shape, **kwargs)

    def experimental_get_tracing_count(self) -> int:
        return self.compiled.experimental_get_tracing_count()


def point_keys(seed, parts, point_ids) -> tf.Tensor:
    """The keys of the points ``point_ids`` (their indices in the evaluated set) for the draws of one
    run, named by ``parts`` (attack, target, restart, ...) under a user ``seed`` (an int or a pair)."""
    return keyed_random.fold(keyed_random.seed_key([*np.ravel(seed), *parts]), tf.constant(point_ids, tf.int64))


def as_point_ids(point_ids, count: int) -> np.ndarray:
    """``point_ids`` as int64 ``[count]`` (``arange(count)`` for None), or a ``UserError``."""
    if point_ids is None:
        return np.arange(count, dtype=np.int64)
    ids = np.asarray(point_ids)
    if ids.shape != (count,) or (ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0)):
        raise UserError(f"point_ids must be {count} non-negative integers (one per image), got shape {ids.shape}")
    return ids.astype(np.int64)


# Model calls run on a multiple of this many rows. TensorFlow's CPU kernels (oneDNN and Eigen) vectorise
# along the batch, and a row's logits and gradient came out bit-identical at every batch size that is
# a multiple of 16 (checked on the registry's CNNs and ResNet-20 at 16..688 rows, random subsets), but
# differed in the last bits at other sizes. Running every call on such a size keeps each point's result
# independent of the batch it is computed in.
ROW_MULTIPLE = 16


# NumPy, not a tf.constant: a tensor made on import would start TensorFlow before a command can split
# the CPU into logical devices (--strategy mirrored)
_POWERS_OF_TWO = np.array([2**k for k in range(48)], np.int64)


def canonical_rows(index: tf.Tensor) -> tf.Tensor:
    """A non-empty 1-D ``index`` tensor lengthened, by repeating its last entry, to the batch size a call
    on that many rows runs on: a multiple of ``ROW_MULTIPLE``, four sizes per doubling above 64 (80, 96,
    112, 128, 160, ...), so that compiled graphs see few batch sizes however the set of points still to
    attack shrinks (the padding costs under 25 % more work above 64 rows). Callers keep the first
    ``len(index)`` results: a repeated point gets the same draws and the same result."""
    count = tf.shape(index, out_type=tf.int64)[0]
    bit_length = tf.searchsorted(_POWERS_OF_TWO, count[None], side="right", out_type=tf.int64)[0]
    one = tf.constant(1, tf.int64)
    unit = tf.maximum(ROW_MULTIPLE * one, tf.bitwise.left_shift(one, tf.maximum(bit_length - 3, 0)))
    size = (count + unit - 1) // unit * unit
    return tf.concat([index, tf.fill([size - count], index[-1])], axis=0)


def padded_index(index: np.ndarray) -> np.ndarray:
    """``canonical_rows`` of a NumPy index."""
    return canonical_rows(tf.constant(index)).numpy()


# Consecutive restarts or target classes of an attack share one compiled call, up to about this many
# values in it (128 images of 32x32x3): the results are those of one run after another, in fewer calls.
# Not more: a conv net's passes cost the least per image at about 128 such images on this CPU (the
# registry's small CNN: 0.89 ms per image forward and backward at 128, 1.13 ms at 256, 1.17 ms at 32).
VALUES_PER_CALL = 128 * 32 * 32 * 3


def attack_in_turn(runs, active, call, keep, values_per_point: int) -> None:
    """Run ``runs`` (restarts, target classes, ... in the protocol's order), each on the points still
    ``active()`` (a bool array over all points) when its turn comes, as one run after another would.

    Consecutive runs go together to ``call(index, runs)``, which returns one result per run (a tuple of
    arrays aligned with ``index``) on the points active before the first of them; the results are then
    given to ``keep(index, result)`` in order, each cut to the points still active at its turn. A point
    whose draws are keyed by its index gets the same result in any group, so the outcome is exactly
    that of one run after another; only points an earlier run of the group already settled cost more."""
    position = 0
    while position < len(runs):
        index = np.flatnonzero(active())
        if index.size == 0:
            return
        count = max(1, min(len(runs) - position, VALUES_PER_CALL // (index.size * values_per_point)))
        for result in call(index, runs[position : position + count]):
            still = active()[index]
            keep(index[still], tuple(np.asarray(part)[still] for part in result))
        position += count


def run_rows(index: np.ndarray, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``runs`` runs on the points ``index`` in one call: (the points of the rows, run by run; the rows
    padded to ``canonical_rows``, as positions into them)."""
    rows = np.tile(index, runs)
    return rows, padded_index(np.arange(rows.size))


def split_runs(results, runs: int, points: int) -> list[tuple[np.ndarray, ...]]:
    """The results of one call of ``runs`` runs on ``points`` points (padded rows dropped), run by run."""
    arrays = [np.asarray(result)[: runs * points] for result in results]
    return [tuple(array[k * points : (k + 1) * points] for array in arrays) for k in range(runs)]


def on_canonical_rows(function, *tensors):
    """``function(*tensors)`` computed on rows padded (with copies of the last row) to ``canonical_rows``,
    then cut back: each row's result as it would be in any batch. Outputs are tensors or tuples of them."""
    count = int(tensors[0].shape[0])
    if count == 0:
        return function(*tensors)
    padded = padded_index(np.arange(count))
    outputs = function(*(tf.gather(tensor, padded) for tensor in tensors))
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(output[:count] for output in outputs)
    return outputs[:count]


def to_pixels(original: tf.Tensor, original_unit: tf.Tensor, adversarial_unit: tf.Tensor, eps, norm: str) -> tf.Tensor:
    """0..255 float32 adversarial images from a 0..1-scale result: the change added to the original pixels
    (unchanged pixels stay bit-identical), clipped to the range and to the ``eps`` ball (0..1 scale)."""
    return _compiled_to_pixels(original, original_unit, adversarial_unit, tf.constant(eps, tf.float32), norm=norm)


def batch_logits(model, images: tf.Tensor) -> tf.Tensor:
    """``logits_of`` for 0..1-scale ``images``, on canonical rows, in a compiled graph."""
    return on_canonical_rows(lambda x: _compiled_logits(model, x), images)


def pixel_logits(model, pixels: tf.Tensor) -> tf.Tensor:
    """The model's logits for 0..255 ``pixels``, on canonical rows, in a compiled graph."""
    return on_canonical_rows(lambda x: _compiled_model(model, x), tf.cast(pixels, tf.float32))


_compiled_to_pixels = TracedPerImageShape(_to_pixels)
_compiled_logits = TracedPerImageShape(logits_of)
_compiled_model = TracedPerImageShape(model_logits)


def as_inputs(images, labels) -> tuple[tf.Tensor, tf.Tensor]:
    """0..255 float32 images and int64 labels, with matching lengths (else a ``UserError``)."""
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    labels = tf.cast(tf.reshape(tf.convert_to_tensor(labels), [-1]), tf.int64)
    if images.shape[0] != labels.shape[0]:
        raise UserError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def num_classes(logits: tf.Tensor) -> int:
    return int(logits.shape[-1])
