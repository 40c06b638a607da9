"""Compiling, fitting and evaluating plain classifiers (logits out, integer or soft labels in)."""

from __future__ import annotations

from typing import Sequence

import keras
import pandas as pd
import tensorflow as tf

from noisegame_cli import plots
from noisegame_cli.runs import Run
from noisegame_cli.training.callbacks import EpochTimer, HeldSignals

HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"


def compile_classifier(model: keras.Model, *, learning_rate: float = 1e-3, ema: bool = False, soft_labels: bool = False) -> None:
    """Adam on cross-entropy from logits; ``soft_labels`` for one-hot / mixed labels (mix-up).

    With ``ema`` the optimizer keeps an exponential moving average of the weights, which ``fit``
    writes into the model when training ends.
    """
    if soft_labels:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, use_ema=ema), loss=loss, metrics=[accuracy])


def plateau_callbacks(*, patience: int, restore_best_weights: bool) -> list[keras.callbacks.Callback]:
    """Halve the learning rate when validation loss stalls; stop when it stops improving."""
    return [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience // 2), min_lr=1e-5, verbose=1),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=restore_best_weights, verbose=1),
    ]


def fit_and_record(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset | None,
    *,
    run: Run,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    epoch_metrics: Sequence[keras.callbacks.Callback] = (),
    title: str = "training",
) -> pd.DataFrame:
    """``model.fit`` with ``history.csv`` written every epoch and a training-curve PNG at the end.

    The training state of a built model is backed up in the run directory after each epoch, so
    ``--resume`` continues an interrupted run from its last finished epoch (the backup is removed
    when training ends). Keras can only restore built models: a trainer that builds itself inside
    ``fit`` starts again from its first epoch. ``epoch_metrics`` are callbacks that add values to
    each epoch's logs; they run before the row is written.
    """
    resumable = model.built
    resuming = resumable and run.path(BACKUP_DIR).is_dir()
    logger = keras.callbacks.CSVLogger(str(run.path(HISTORY_FILE)), append=resuming)
    backup = [keras.callbacks.BackupAndRestore(str(run.path(BACKUP_DIR)))] if resumable else []
    # The timer fills its column before the logger writes the row; these run before a callback can stop training.
    # An interruption (Ctrl-C, SIGTERM) waits while the row and the backup are written, so they always agree.
    held = HeldSignals()
    callbacks = [EpochTimer(), *epoch_metrics, held.begin, logger, *backup, held.end, *callbacks]
    try:
        model.fit(train, validation_data=validation, epochs=epochs, callbacks=callbacks, shuffle=False, verbose="auto")
    finally:
        held.release()
    history = pd.read_csv(run.path(HISTORY_FILE))
    plots.training_curves(history, run.path("training_curves.png"), title=title)
    return history
