"""Square Attack (Andriushchenko et al., ECCV 2020): a score-based random search, Linf and L2, no gradients.

As in AutoAttack's version: the margin loss z_y - max_{i != y} z_i (a point is fooled when it is <= 0),
5 000 queries, ``p_init = 0.8``, and the schedule that halves the fraction ``p`` of pixels in a square after
10, 50, 200, 500, 1 000, 2 000, 4 000, 6 000 and 8 000 queries (on the query count itself: AutoAttack does
not rescale it to the budget). The side of a square is ``round(sqrt(p * h * w))``, at least 1 (Linf) or 3
and odd (L2). Linf starts from vertical stripes of +-eps (one sign per column and channel) and each query
sets one random square to +-2 eps per channel, clipped back into the ball; L2 starts from a grid of
5 x 5 blocks of the paper's centred pattern and each query moves the mass of one square to another
square with a fresh pattern, keeping the perturbation's L2 norm at eps. A proposal is kept when it
lowers the margin; a point stops being queried once fooled. Unlike the original, which draws one square
position and one set of signs per query for the whole batch, every image gets its own draws, keyed by
(seed, restart, its index ``point_ids``, the query): each image's search is distributed as in the
paper, and the same whatever other images are searched with it. A query's own arithmetic is fused by
XLA; the model's forward pass is the rest.
Conventions: images 0..255 (any dtype), budgets in the 0..1 scale, results float32 0..255 in the ball.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from noisegame_cli.attacks.common import (
    TINY,
    TracedPerImageShape,
    as_inputs,
    as_point_ids,
    batch_logits,
    canonical_rows,
    check_norm,
    logits_of,
    lp_norm,
    normalize,
    padded_index,
    per_example,
    point_keys,
    predictions,
    row_sum,
    to_pixels,
)
from noisegame_cli import keyed_random
from noisegame_cli.attacks.gradient import check_budget
from noisegame_cli.errors import UserError

P_INIT = 0.8
QUERIES = 5000
# The p schedule: p = p_init / 2 ** k for query counts in (BOUNDARIES[k - 1], BOUNDARIES[k]]
BOUNDARIES = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def margin(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """z_y - max_{i != y} z_i: positive while the point is classified correctly."""
    true = tf.gather(logits, labels, axis=1, batch_dims=1)
    is_true = tf.one_hot(labels, tf.shape(logits)[1], on_value=True, off_value=False)
    return true - tf.reduce_max(tf.where(is_true, -np.inf, logits), axis=1)


# --- the schedule and the L2 pattern (plain Python, evaluated when a graph is traced) -----------------


def phase_starts(queries: int, rescale: bool = False) -> list[int]:
    """The first query of each of the 10 phases of the p schedule (phase k uses p_init / 2 ** k).

    ``rescale`` maps the query count to a budget of 10 000 first (the original's option)."""
    if not rescale:
        return [0] + [boundary + 1 for boundary in BOUNDARIES]
    # query i is in phase k when int(i / queries * 10000) > BOUNDARIES[k - 1]
    return [0] + [math.ceil((boundary + 1) * queries / 10000) for boundary in BOUNDARIES]


def square_side(p: float, height: int, width: int, norm: str) -> int:
    side = round(math.sqrt(p * height * width))
    if norm == "Linf":
        side = max(side, 1)
    else:
        side = max(side, 3)
        side += 1 - side % 2
    return min(side, height, width)


def _centred_rectangle(rows: int, cols: int) -> np.ndarray:
    """Nested rectangles around the centre, ring k weighted 1 / (k + 1) ** 2, unit L2 norm."""
    pattern = np.zeros((rows, cols))
    centre_row, centre_col = rows // 2, cols // 2
    for ring in range(max(rows // 2 + 1, cols // 2 + 1)):
        top, left = max(centre_row - ring, 0), max(centre_col - ring, 0)
        pattern[top : centre_row + ring + 1, left : centre_col + ring + 1] += 1.0 / (ring + 1) ** 2
    return pattern / max(np.sqrt((pattern**2).sum()), TINY)


def l2_pattern(side: int) -> np.ndarray:
    """The paper's L2 square: the upper half one centred pattern, the lower half its negative, unit norm."""
    upper = side // 2
    pattern = np.concatenate([_centred_rectangle(upper, side), -_centred_rectangle(side - upper, side)], axis=0)
    return (pattern / np.sqrt((pattern**2).sum())).astype(np.float32)


# --- per-image random squares -----------------------------------------------------------------------


def _square_masks(corner_rows, corner_cols, side, height: int, width: int) -> tf.Tensor:
    """[n, H, W, 1] masks of the side x side squares with these top-left corners."""
    rows = tf.range(height, dtype=tf.int32)[None, :, None]
    cols = tf.range(width, dtype=tf.int32)[None, None, :]
    inside_rows = (rows >= corner_rows[:, None, None]) & (rows < corner_rows[:, None, None] + side)
    inside_cols = (cols >= corner_cols[:, None, None]) & (cols < corner_cols[:, None, None] + side)
    return tf.cast(inside_rows & inside_cols, tf.float32)[..., None]


def padded_l2_patterns(side: int, height: int, width: int) -> np.ndarray:
    """[2, H * W]: ``l2_pattern(side)`` and its transpose, each in the top-left corner of an H x W zero image
    (so that the patterns of every side fit one table)."""
    pattern = l2_pattern(side)
    padded = np.zeros((2, height, width), np.float32)
    padded[0, :side, :side], padded[1, :side, :side] = pattern, pattern.T
    return padded.reshape(2, -1)


def _shift_matrices(corners, size: int) -> tf.Tensor:
    """[n, size, size] one-hot matrices M with M[i, k] = 1 where i - corner = k: ``M @ A`` moves the rows of
    A down by the corner (zeros above), exactly (one product with 1, the rest with 0)."""
    offsets = tf.range(size, dtype=tf.int32)[None, :, None] - corners[:, None, None]
    return tf.cast(offsets == tf.range(size, dtype=tf.int32)[None, None, :], tf.float32)


def _placed_patterns(patterns, corner_rows, corner_cols, transpose, height: int, width: int) -> tf.Tensor:
    """[n, H, W, 1]: the pattern of ``patterns`` (``padded_l2_patterns``, zero beyond the square's side; its
    transpose where ``transpose``) moved to each image's square corner, zero elsewhere. Two one-hot
    matrix products per image: XLA's per-image gathers for the same placement cost several times more."""
    chosen = tf.reshape(tf.where(transpose[:, None], patterns[1][None, :], patterns[0][None, :]), [-1, height, width])
    placed = tf.matmul(_shift_matrices(corner_rows, height), chosen)
    placed = tf.matmul(placed, _shift_matrices(corner_cols, width), transpose_b=True)
    return placed[..., None]


def _random_corners(keys, side, height: int, width: int):
    """Top-left corners as the original draws them: floor(U * (size - side)), so in [0, size - side)."""
    draws = keyed_random.uniform(keys, [2])
    rows = tf.cast(tf.floor(draws[:, 0] * tf.cast(height - side, tf.float32)), tf.int32)
    cols = tf.cast(tf.floor(draws[:, 1] * tf.cast(width - side, tf.float32)), tf.int32)
    return rows, cols


def _random_signs(keys, shape) -> tf.Tensor:
    """[n, *shape] signs, -1 or +1 with equal chance."""
    return tf.where(keyed_random.uniform(keys, shape) < 0.5, -1.0, 1.0)


def _streams(keys, count: int) -> list[tf.Tensor]:
    """``count`` sub-streams of each image's key (one per kind of draw)."""
    return [keyed_random.fold(keys, index) for index in range(count)]


# --- the search -------------------------------------------------------------------------------------


def _linf_start(images, eps, keys):
    stripes = _random_signs(keys, [1, images.shape[2], images.shape[3]])
    return tf.clip_by_value(images + eps * stripes, 0.0, 1.0)


def _l2_start(images, eps, keys):
    _, height, width, channels = images.shape
    side = max(height // 5, 1)
    offset = (height - side * 5) // 2
    pattern = l2_pattern(side)
    # which block (if any) each pixel belongs to, and where in the block: fixed by the shapes
    block_of = np.full((height, width), -1)
    local_of = np.zeros((height, width), dtype=np.int64)
    blocks = [(offset + i * side, offset + j * side) for i in range(height // side) for j in range(width // side)]
    for number, (top, left) in enumerate(blocks):
        for row in range(top, min(top + side, height)):
            for col in range(left, min(left + side, width)):
                block_of[row, col], local_of[row, col] = number, (row - top) * side + (col - left)
    transpose_keys, sign_keys = _streams(keys, 2)
    transpose = keyed_random.uniform(transpose_keys, [len(blocks)]) > 0.5
    signs = _random_signs(sign_keys, [len(blocks), channels])
    pixel_block = tf.constant(np.maximum(block_of, 0).ravel())
    in_block = tf.constant((block_of >= 0).ravel().astype(np.float32))
    plain = tf.constant(pattern.ravel()[local_of.ravel()])
    transposed = tf.constant(pattern.T.ravel()[local_of.ravel()])
    value = tf.where(tf.gather(transpose, pixel_block, axis=1), transposed, plain) * in_block  # [n, H * W]
    delta = value[:, :, None] * tf.gather(signs, pixel_block, axis=1)
    delta = tf.reshape(delta, tf.shape(images))
    return tf.clip_by_value(images + normalize(delta, "L2") * eps, 0.0, 1.0)


def _linf_proposal(images, best, eps, keys, side, _patterns):
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    corner_keys, sign_keys = _streams(keys, 2)
    rows, cols = _random_corners(corner_keys, side, height, width)
    mask = _square_masks(rows, cols, side, height, width)
    signs = _random_signs(sign_keys, [1, 1, channels])
    proposal = tf.where(mask > 0, best + 2.0 * eps * signs, best)
    return tf.clip_by_value(tf.clip_by_value(proposal, images - eps, images + eps), 0.0, 1.0)


def _l2_proposal(images, best, eps, keys, side, patterns):
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    streams = _streams(keys, 4)
    rows, cols = _random_corners(streams[0], side, height, width)
    rows_2, cols_2 = _random_corners(streams[1], side, height, width)
    window = _square_masks(rows, cols, side, height, width)
    window_2 = _square_masks(rows_2, cols_2, side, height, width)
    delta = best - images

    def channel_norms(values):  # [n, 1, 1, C]
        per_channel = tf.reshape(tf.transpose(values**2, [0, 3, 1, 2]), [-1, channels, height * width])
        return tf.sqrt(row_sum(per_channel))[:, None, None, :]

    norm_in_window = channel_norms(delta * window)
    norm_image = per_example(lp_norm(delta, "L2"), delta)
    norm_windows = per_example(lp_norm(delta * tf.maximum(window, window_2), "L2"), delta)
    transpose = keyed_random.uniform(streams[2], []) > 0.5
    fresh = _placed_patterns(patterns, rows, cols, transpose, height, width)
    fresh = fresh * _random_signs(streams[3], [1, 1, channels])
    new = fresh + delta * window / (TINY + norm_in_window)
    budget = tf.sqrt(tf.maximum(eps**2 - norm_image**2, 0.0) / channels + norm_windows**2)
    new = new / (TINY + channel_norms(new)) * budget
    delta = delta * (1.0 - window_2)
    delta = delta * (1.0 - window) + new
    return tf.clip_by_value(images + normalize(delta, "L2") * eps, 0.0, 1.0)


def _proposals(images, best, keys, rows, query, eps, side, patterns, *, norm: str):
    """Query ``query``'s proposals for the points ``rows``, drawn from ``fold(keys, query + 1)``, with
    squares of ``side`` (L2: the pattern table of ``padded_l2_patterns`` for that side)."""
    propose = _linf_proposal if norm == "Linf" else _l2_proposal
    query_keys = keyed_random.fold(tf.gather(keys, rows), tf.cast(query, tf.int64) + 1)
    return propose(tf.gather(images, rows), tf.gather(best, rows), eps, query_keys, side, patterns)


def _keep_better(best, best_margin, rows, proposals, logits, labels):
    """``best`` and ``best_margin`` with the proposals that lower the margin of their point kept (a row
    repeated in ``rows`` carries the same proposal and margin each time)."""
    proposed = margin(logits, tf.gather(labels, rows))
    current = tf.gather(best_margin, rows)
    kept = tf.where(per_example(proposed < current, proposals), proposals, tf.gather(best, rows))
    best = tf.tensor_scatter_nd_update(best, rows[:, None], kept)
    return best, tf.tensor_scatter_nd_update(best_margin, rows[:, None], tf.minimum(proposed, current))


# A query's own work (drawing a square, placing it, clipping; dozens of passes over the queried images)
# fused by XLA: on a small model it cost several times the model's forward pass as separate ops. The
# model itself is never compiled with XLA.
_fused_proposals = tf.function(_proposals, jit_compile=True)
_fused_keep_better = tf.function(_keep_better, jit_compile=True)


def square_graph(model, images, labels, eps, starts, queries, keys, *, norm: str, p_init: float):
    """The search on 0..1-scale ``images``: (best points, their margins). ``keys`` are the images' keys:
    the start draws from ``fold(keys, 0)``, query i from ``fold(keys, i + 1)``.

    ``starts`` holds the first query of each phase of the p schedule (phase k: squares of side
    ``square_side(p_init / 2 ** k)``). Only points not fooled yet are queried, on ``canonical_rows``."""
    _, height, width, _ = images.shape
    eps = tf.cast(eps, tf.float32)
    sides = [square_side(p_init / 2**phase, height, width, norm) for phase in range(len(BOUNDARIES) + 1)]
    if norm == "L2":
        patterns = tf.constant(np.stack([padded_l2_patterns(side, height, width) for side in sides]))
    else:
        patterns = tf.zeros([len(sides), 2, 1])  # not read
    sides = tf.constant(sides, tf.int32)
    best = (_linf_start if norm == "Linf" else _l2_start)(images, eps, keyed_random.fold(keys, 0))
    best_margin = margin(logits_of(model, best), labels)

    def query(i, best, best_margin):
        phase = tf.searchsorted(starts, i[None], side="right")[0] - 1
        rows = canonical_rows(tf.where(best_margin > 0)[:, 0])
        proposals = _fused_proposals(images, best, keys, rows, i, eps, sides[phase], patterns[phase], norm=norm)
        logits = logits_of(model, proposals)
        return (i + 1, *_fused_keep_better(best, best_margin, rows, proposals, logits, labels))

    def going(i, _best, best_margin):
        return (i < queries) & tf.reduce_any(best_margin > 0)

    _, best, best_margin = tf.while_loop(going, query, (tf.constant(0), best, best_margin))
    return best, best_margin


_compiled_square = TracedPerImageShape(square_graph)


def square(
    model,
    images,
    labels,
    eps: float,
    *,
    norm: str = "Linf",
    queries: int = QUERIES,
    p_init: float = P_INIT,
    restarts: int = 1,
    rescale_schedule: bool = False,
    seed=0,
    point_ids=None,
) -> tf.Tensor:
    """Untargeted Square Attack: each of ``restarts`` searches of up to ``queries`` queries per point runs
    on the points still classified correctly; a fooled point gets its fooling image, the others stay
    unchanged. Only forward passes of ``model`` are used. ``point_ids`` (int [N], ``arange(N)`` by default)
    are the points' indices in the evaluated set: each point's draws depend on ``seed`` and its index alone."""
    check_norm(norm)
    eps = check_budget(eps, norm=norm)
    if int(queries) < 1 or int(restarts) < 1 or not 0.0 < float(p_init) <= 1.0:
        raise UserError(
            f"Square needs queries, restarts >= 1 and p_init in (0, 1], got {queries}, {restarts}, {p_init}"
        )
    pixels, labels = as_inputs(images, labels)
    if pixels.shape.rank != 4:
        raise UserError(f"Square needs images of shape [N, H, W, C], got {pixels.shape}")
    point_ids = as_point_ids(point_ids, int(pixels.shape[0]))
    x = pixels / 255.0
    adversarial = x.numpy()
    remaining = (predictions(batch_logits(model, x)) == labels).numpy()
    starts = tf.constant(phase_starts(int(queries), rescale_schedule), tf.int32)
    for restart in range(int(restarts)):
        index = np.flatnonzero(remaining)
        if index.size == 0:
            break
        padded = padded_index(index)
        found, _ = _compiled_square(
            model, tf.gather(x, padded), tf.gather(labels, padded), tf.constant(eps, tf.float32), starts,
            tf.constant(int(queries)), point_keys(seed, (restart,), point_ids[padded]),
            norm=norm, p_init=float(p_init),
        )  # fmt: skip
        found = found[: index.size]
        fooled = (predictions(batch_logits(model, found)) != tf.gather(labels, index)).numpy()
        adversarial[index[fooled]] = found.numpy()[fooled]
        remaining[index[fooled]] = False
    return to_pixels(pixels, x, tf.constant(adversarial), eps, norm)
