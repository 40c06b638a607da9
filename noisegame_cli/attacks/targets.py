"""Which classes the targeted attacks go for, and in which order (a registry: ``RANKINGS``).

- ``logits``: AutoAttack's order, the 2nd, 3rd, ... most likely classes of the clean image;
- ``malt``: MALT's (Melamed, Yehudai and Shamir, "MALT Powers Up Adversarial Attacks", NeurIPS 2024):
  the classes whose decision boundary is nearest under the model's linearisation at the clean image,
  |z_t - z_y| / ||grad (z_t - z_y)||_* with ||.||_* the dual of the budget's norm (L1 for Linf, L2 for L2).
  The logits alone miss targets the model is close to in input space but not in confidence.

``boundaries`` (the logit differences z_k - z_y and their gradients) and ``boundary_distances`` (that
linearised distance) are FAB's too: FAB steps towards the nearest of those boundaries.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from noisegame_cli.attacks.common import (
    ZERO_GRADIENT,
    TracedPerImageShape,
    flat,
    logits_of,
    num_classes,
    on_canonical_rows,
    row_sum,
)

EXCLUDED = 1e10  # the logit difference given to the true class so it is never the nearest boundary


def boundaries(model, points, labels, targets, *, targeted: bool):
    """Logit differences f_k = z_k - z_y and their gradients, shapes [N, K'] and [N, K', d]: the target
    only (targeted) or every class, the true one given ``EXCLUDED`` (untargeted)."""
    with tf.GradientTape(persistent=not targeted) as tape:
        tape.watch(points)
        logits = logits_of(model, points)
        true = tf.gather(logits, labels, axis=1, batch_dims=1)
        if targeted:
            difference = tf.gather(logits, targets, axis=1, batch_dims=1) - true
            total = tf.reduce_sum(difference)
        else:
            columns = [tf.reduce_sum(logits[:, k]) for k in range(num_classes(logits))]
    if targeted:
        return difference[:, None], flat(tape.gradient(total, points, unconnected_gradients=ZERO_GRADIENT))[:, None, :]
    per_class = [flat(tape.gradient(column, points, unconnected_gradients=ZERO_GRADIENT)) for column in columns]
    del tape
    per_class = tf.stack(per_class, axis=1)  # [N, K, d]: each image's logits depend on that image alone
    gradients = per_class - tf.gather(per_class, labels, axis=1, batch_dims=1)[:, None, :]
    differences = logits - true[:, None]
    is_true = tf.one_hot(labels, num_classes(logits), on_value=True, off_value=False)
    return tf.where(is_true, EXCLUDED, differences), gradients


def boundary_distances(differences, gradients, norm: str) -> tf.Tensor:
    """[N, K'] distances to the linearised boundaries, in the ``norm`` of the budget (its dual measures
    the gradients)."""
    if norm == "Linf":
        dual_norms = row_sum(tf.abs(gradients))
    else:
        dual_norms = tf.sqrt(row_sum(gradients**2))
    return tf.abs(differences) / (1e-12 + dual_norms)


def logit_ranking(model, x, labels, logits, norm: str) -> tf.Tensor:
    """[N, K - 1]: the classes from the 2nd most likely down (the first is the true class for the points a
    targeted attack works on)."""
    return tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)[:, 1:]


def _malt_distances(model, x, labels, *, norm: str):
    return boundary_distances(*boundaries(model, x, labels, None, targeted=False), norm)


_compiled_malt_distances = TracedPerImageShape(_malt_distances)


def malt_ranking(model, x, labels, logits, norm: str) -> tf.Tensor:
    """[N, K - 1]: the classes other than the label, nearest linearised boundary first (one backward pass
    per class, once per image)."""
    distances = on_canonical_rows(lambda points, classes: _compiled_malt_distances(model, points, classes, norm=norm), x, labels)
    return tf.argsort(distances, axis=-1, stable=True)[:, :-1]  # the label, EXCLUDED, comes last


Ranking = Callable[..., tf.Tensor]  # (model, 0..1-scale x, labels, clean logits, norm) -> [N, K - 1] classes
RANKINGS: dict[str, Ranking] = {"logits": logit_ranking, "malt": malt_ranking}
