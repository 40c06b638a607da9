"""Adversarial training: the mixed objective of Goodfellow et al. (2015) and PGD training (Madry et al. 2018).

Every batch is attacked with the current weights (FGSM, or PGD from a random start), then the loss is
``alpha * J(x, y) + (1 - alpha) * J(x_adv, y)``; ``alpha = 0`` trains on adversarial images only, as
Madry et al. do. The attack sees the model in inference mode, so batch-norm statistics only move on
the training pass itself.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from noisegame_cli.attacks import PIXEL_MAX, AttackSpec, default_step_size, fgsm_graph, pgd_graph
from noisegame_cli.errors import UserError
from noisegame_cli.training.strategy import scale_for_replicas
from noisegame_cli.losses import mean_cross_entropy


class AdversarialTrainer(keras.Model):
    """Wraps a classifier for ``fit`` / ``evaluate`` on ``(images, labels)`` batches (0..255, integer labels).

    Logs ``loss`` (the mixed objective), ``clean_loss``, ``adv_loss``, ``clean_accuracy`` and
    ``adv_accuracy``; validation gets the same with ``val_``. Save ``trainer.classifier``, a plain model.
    """

    def __init__(self, classifier: keras.Model, spec: AttackSpec, *, alpha: float = 0.5, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise UserError(f"alpha must lie in [0, 1], got {alpha:g}")
        if spec.targeted or spec.use_predictions:
            raise UserError("adversarial training attacks the true labels: no target class or predicted labels")
        self.classifier = classifier
        self.spec = spec
        self.alpha = float(alpha)
        self.seed = int(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "clean_loss", "adv_loss")
        } | {
            name: keras.metrics.SparseCategoricalAccuracy(name=name) for name in ("clean_accuracy", "adv_accuracy")
        }

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def adversarial_images(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """The attack of ``spec`` on a batch, with the current weights; no gradient flows through it."""
        eps_pixels = tf.constant(self.spec.eps * PIXEL_MAX)
        if self.spec.name == "fgsm":
            adversarial = fgsm_graph(self.classifier, images, labels, eps_pixels, norm=self.spec.norm)
        else:
            step_size = self.spec.step_size or default_step_size(self.spec.eps, self.spec.steps)
            # A fresh random start each optimizer step (and for each evaluation batch of the same step).
            seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
            adversarial = pgd_graph(
                self.classifier, images, labels, eps_pixels, self.spec.steps, tf.constant(step_size * PIXEL_MAX), seed,
                random_start=self.spec.random_start, norm=self.spec.norm,
            )  # fmt: skip
        return tf.stop_gradient(adversarial)

    def _objective(self, images, labels, adversarial, training: bool):
        clean_logits = self.classifier(images, training=training)
        adv_logits = self.classifier(adversarial, training=training)
        clean_loss = mean_cross_entropy(labels, clean_logits)
        adv_loss = mean_cross_entropy(labels, adv_logits)
        total = self.alpha * clean_loss + (1.0 - self.alpha) * adv_loss
        return total, clean_loss, adv_loss, clean_logits, adv_logits

    def _log_metrics(self, total, clean_loss, adv_loss, labels, clean_logits, adv_logits):
        for name, value in (("loss", total), ("clean_loss", clean_loss), ("adv_loss", adv_loss)):
            self.trackers[name].update_state(value)
        self.trackers["clean_accuracy"].update_state(labels, clean_logits)
        self.trackers["adv_accuracy"].update_state(labels, adv_logits)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        images, labels = data
        images, labels = tf.cast(images, tf.float32), tf.cast(labels, tf.int64)
        adversarial = self.adversarial_images(images, labels)
        with tf.GradientTape() as tape:
            total, clean_loss, adv_loss, clean_logits, adv_logits = self._objective(images, labels, adversarial, training=True)
            scaled = self.optimizer.scale_loss(scale_for_replicas(total))
        variables = self.classifier.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return self._log_metrics(total, clean_loss, adv_loss, labels, clean_logits, adv_logits)

    def test_step(self, data):
        images, labels = data
        images, labels = tf.cast(images, tf.float32), tf.cast(labels, tf.int64)
        adversarial = self.adversarial_images(images, labels)
        total, clean_loss, adv_loss, clean_logits, adv_logits = self._objective(images, labels, adversarial, training=False)
        return self._log_metrics(total, clean_loss, adv_loss, labels, clean_logits, adv_logits)
