"""Consistency training: a student learns from labels and from a frozen teacher.

The teacher sees the clean view of a batch, the student the noisy (augmented) view of the same
images in the same order; see :mod:`noisegame_cli.training.losses` for the objective.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from noisegame_cli.training.losses import consistency_loss, validate_weights
from noisegame_cli.training.strategy import scale_for_replicas


class SelfTrainer(keras.Model):
    """Wraps a student classifier and a frozen teacher for ``fit`` / ``evaluate``.

    Training batches are ``((clean, noisy), labels)``; evaluation batches may be the same or plain
    ``(images, labels)`` (then both networks see the same images). Logs ``loss`` (the weighted
    total), ``ce_loss``, ``kl_loss`` and the student's ``accuracy`` on what it saw.

    Only the student is trained; save ``trainer.student`` (a plain classifier), not the trainer.
    Build the student, the teacher and this wrapper, and call ``compile``, inside the same
    strategy scope when using ``tf.distribute``.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        *,
        temperature: float = 10.0,
        alpha: float = 0.5,
        scale_kl_by_t2: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_weights(temperature, alpha)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.scale_kl_by_t2 = bool(scale_kl_by_t2)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ce_tracker = keras.metrics.Mean(name="ce_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        # The wrapper has no variables of its own: it is built once both networks are, so that
        # callbacks that need a built model (BackupAndRestore) accept it before fit.
        self.built = student.built and teacher.built

    @property
    def metrics(self):
        # Listed here so that fit/evaluate reset them at the start of every epoch.
        return [self.loss_tracker, self.ce_tracker, self.kl_tracker, self.accuracy_tracker]

    def call(self, inputs, training=False):
        # fit may build the wrapper on a training batch's (clean, noisy) pair: the student sees the noisy view.
        if isinstance(inputs, (tuple, list)):
            inputs = inputs[-1]
        return self.student(inputs, training=training)

    def _consistency_parts(self, clean, noisy, labels, training: bool):
        teacher_logits = self.teacher(clean, training=False)
        student_logits = self.student(noisy, training=training)
        parts = consistency_loss(
            labels,
            student_logits,
            teacher_logits,
            temperature=self.temperature,
            alpha=self.alpha,
            scale_kl_by_t2=self.scale_kl_by_t2,
        )
        return parts, student_logits

    def _update_trackers(self, parts, labels, student_logits):
        self.loss_tracker.update_state(parts.total)
        self.ce_tracker.update_state(parts.ce)
        self.kl_tracker.update_state(parts.kl)
        self.accuracy_tracker.update_state(labels, student_logits)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        (clean, noisy), labels = data
        with tf.GradientTape() as tape:
            parts, student_logits = self._consistency_parts(clean, noisy, labels, training=True)
            scaled = self.optimizer.scale_loss(scale_for_replicas(parts.total))
        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_trackers(parts, labels, student_logits)

    def test_step(self, data):
        inputs, labels = data
        clean, noisy = inputs if isinstance(inputs, (tuple, list)) else (inputs, inputs)
        parts, student_logits = self._consistency_parts(clean, noisy, labels, training=False)
        return self._update_trackers(parts, labels, student_logits)


def noise_layer(kind: str, strength: float, num_ops: int, seed: int) -> keras.layers.Layer | None:
    """The Keras layer that makes the student's view (0..255 in, float 0..255 out), or ``None`` for ``none``."""
    if kind == "randaugment":
        return keras.layers.RandAugment(value_range=(0, 255), num_ops=num_ops, factor=strength, seed=seed)
    if kind == "augmix":
        return keras.layers.AugMix(value_range=(0, 255), factor=strength, seed=seed)
    return None
