"""Stochastic weight averaging as a Keras callback, with batch-norm statistics re-estimated after averaging.

SWA (Izmailov et al., 2018) averages the weights visited at the end of each epoch from a start
epoch on. The averaged network's batch-norm statistics belong to none of the averaged networks, so
they are recomputed with one pass over the training data, as an exact cumulative average.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable, Iterable, Iterator

import keras
import numpy as np


class HeldSignals:
    """Two callbacks, ``begin`` and ``end``, placed around the callbacks that write an epoch's records
    (its history row, the training backup): SIGINT or SIGTERM arriving in between is held and handed
    to the handler in place once the last of them has run, so an interruption never leaves a
    half-written backup or a history row without its backup. Call ``release`` when ``fit`` ends,
    however it ends."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.begin = _OnEpochEnd(self.hold)
        self.end = _OnEpochEnd(self.release)
        self._previous: dict[int, object] = {}
        self._held: list[int] = []

    def hold(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if previous is not None:  # None: a handler not set from Python, which cannot be put back
                self._previous[signum] = signal.signal(signum, self._keep)

    def _keep(self, signum, frame) -> None:
        self._held.append(signum)

    def release(self) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        held, self._held = self._held, []
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


class _OnEpochEnd(keras.callbacks.Callback):
    def __init__(self, action: Callable[[], None]):
        super().__init__()
        self.action = action

    def on_epoch_end(self, epoch, logs=None):
        self.action()


class EpochMetrics(keras.callbacks.Callback):
    """Adds the values ``measure(model)`` returns to each epoch's logs (place it before the CSV logger)."""

    def __init__(self, measure: Callable[[keras.Model], dict[str, float]]):
        super().__init__()
        self.measure = measure

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.measure(self.model))


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch, validation included) to each epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._started


class StochasticWeightAveraging(keras.callbacks.Callback):
    """Average trainable weights at the end of each epoch from ``start_epoch`` (1-based) on.

    At the end of training the average replaces the weights, then the batch-norm moving statistics
    are re-estimated on ``bn_data`` (batches of ``(images, labels)``) when it is given.
    """

    def __init__(self, start_epoch: int, bn_data: Iterable | None = None):
        super().__init__()
        if start_epoch < 1:
            raise ValueError("start_epoch counts from 1")
        self.start_epoch = start_epoch
        self.bn_data = bn_data
        self.averaged: list[np.ndarray] | None = None
        self.count = 0

    def on_train_begin(self, logs=None):
        self.averaged, self.count = None, 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.start_epoch:
            return
        current = [keras.ops.convert_to_numpy(w) for w in self.model.trainable_weights]
        self.count += 1
        if self.averaged is None:
            self.averaged = [w.astype(np.float64) for w in current]
        else:
            for average, weight in zip(self.averaged, current):
                average += (weight - average) / self.count

    def on_train_end(self, logs=None):
        if self.averaged is None:
            print(f"SWA: training ended before epoch {self.start_epoch}; weights left as trained")
            return
        for variable, average in zip(self.model.trainable_weights, self.averaged):
            variable.assign(average.astype(variable.dtype))
        print(f"SWA: averaged the weights of {self.count} epochs")
        if self.bn_data is not None:
            reestimate_batch_norm(self.model, self.bn_data)


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in _walk(model) if isinstance(layer, keras.layers.BatchNormalization)]


def _walk(layer) -> Iterator:
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _walk(child)


def reestimate_batch_norm(model: keras.Model, batches: Iterable) -> int:
    """Recompute every batch-norm layer's moving mean and variance over ``batches``.

    Setting the momentum to k / (k + 1) for the k-th batch (from 0) turns Keras' exponential moving
    average into the exact mean over batches. Returns the number of batches seen.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(keras.ops.ones_like(layer.moving_variance))
    seen = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = seen / (seen + 1)
            model(images, training=True)
            seen += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return seen
