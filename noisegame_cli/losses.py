"""Losses on classifier logits that every layer of the project shares (training, attacks, evaluation)."""

from __future__ import annotations

import keras
from keras import ops


def cross_entropy(labels, logits):
    """Per-example cross-entropy of integer ``labels`` against ``logits`` (not probabilities)."""
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def mean_cross_entropy(labels, logits):
    """The batch mean of :func:`cross_entropy`."""
    return ops.mean(cross_entropy(labels, logits))
