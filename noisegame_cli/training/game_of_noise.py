"""The Game of Noise (adversarial noise training, ANT; Rusak et al., ECCV 2020).

A noise generator turns N(0, 1) noise into a noise pattern, the pattern is brought to a fixed L2 size
``epsilon`` per image (``l2_budget``), and generator and classifier alternate: the generator maximises
the classifier's cross-entropy on noisy images, the classifier minimises cross-entropy on a batch in
which a random part of the images (``p_noise``) is noisy.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.errors import UserError
from noisegame_cli.losses import mean_cross_entropy
from noisegame_cli.training.l2_budget import BUDGETS, apply_noise, budget_penalty, l2_norms
from noisegame_cli.training.strategy import scale_for_replicas

GENERATOR_LOSSES = ("ce", "reversed")


def generator_transform(generator: keras.Model, epsilon: float, *, budget: str = "project", seed: int = 0):
    """A batch transform (images 0..255, batch index) -> the images under ``generator``'s noise, its
    latent seeded by (seed, batch index), so every classifier evaluated with it sees the same noise."""

    def transform(images, index):
        return noisy_and_perturbation(generator, images, index, epsilon, budget, seed)[0]

    return transform


def noisy_and_perturbation(generator: keras.Model, images, index, epsilon: float, budget: str, seed: int):
    """Noisy images (0..255) and the applied perturbation (0..1 scale) of one batch, seeded by (seed, index)."""
    images = tf.cast(images, tf.float32)
    latent_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])
    latent = tf.random.stateless_normal(tf.shape(images), seed=latent_seed)
    return apply_noise(images, generator(latent, training=False), epsilon, budget)


def mean_noise_l2(generator: keras.Model, batches, epsilon: float, *, budget: str = "project", seed: int = 0) -> float:
    """The mean L2 size (0..1 scale) of the noise ``generator`` applies to float image batches."""
    norms = [l2_norms(noisy_and_perturbation(generator, images, index, epsilon, budget, seed)[1]).numpy()
             for index, images in enumerate(batches)]  # fmt: skip
    return float(np.mean(np.concatenate(norms)))


def generator_objective(labels, logits, kind: str):
    """What the generator minimises: ``-CE`` ("ce", maximising the classifier's cross-entropy) or the
    reversed-label form ``-log(1 - p_y)`` ("reversed"), which pushes probability away from the true
    class without the vanishing gradients of ``-CE`` while the classifier is still right."""
    if kind == "ce":
        return -mean_cross_entropy(labels, logits)
    true_class_prob = tf.gather(tf.nn.softmax(logits), tf.cast(labels, tf.int32), batch_dims=1)
    return -tf.reduce_mean(tf.math.log1p(-true_class_prob + 1e-7))


class GameOfNoiseTrainer(keras.Model):
    """Alternating generator / classifier training on ``(images, labels)`` batches in 0..255.

    Each ``train_step`` first updates the generator (on noise from the current generator), then the
    classifier on a batch where a Bernoulli(``p_noise``) mask picks the noisy images. With
    ``replay > 0`` the classifier step draws its noise, with probability ``replay``, from one of the
    ``replay_size`` generators stored by :meth:`remember_generator` (experience replay; call it from
    a callback, see :class:`GeneratorSchedule`). ``test_step`` reports clean accuracy and accuracy
    under the current generator's noise. Save ``trainer.classifier``.
    """

    def __init__(
        self,
        classifier: keras.Model,
        generator: keras.Model,
        *,
        epsilon: float,
        p_noise: float = 0.5,
        budget: str = "project",
        generator_loss: str = "ce",
        penalty_weight: float = 1.0,
        replay: float = 0.0,
        replay_size: int = 5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_game(epsilon, p_noise, budget, generator_loss, replay)
        self.classifier = classifier
        self.generator = generator
        self.epsilon = float(epsilon)
        self.p_noise = float(p_noise)
        self.budget = budget
        self.generator_loss = generator_loss
        self.penalty_weight = float(penalty_weight)
        self.replay = float(replay)
        self.past_generators = [keras.models.clone_model(generator) for _ in range(replay_size if replay > 0 else 0)]
        for past in self.past_generators:
            past.trainable = False
        self._remembered = 0
        self.stored_generators = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="stored_generators")
        self.generator_optimizer = None
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("classifier_loss", "generator_loss", "noise_l2")
        }
        self.trackers["clean_accuracy"] = keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")
        self.trackers["noise_accuracy"] = keras.metrics.SparseCategoricalAccuracy(name="noise_accuracy")
        # Built once both players are (the replay slots are built clones), so BackupAndRestore accepts it.
        self.built = classifier.built and generator.built

    def compile(self, optimizer, generator_optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.generator_optimizer = generator_optimizer
        # Build both optimizers on their own variables now (inside the caller's strategy scope);
        # fit would otherwise build the classifier's optimizer over the generators' variables too.
        self.optimizer.build(self.classifier.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def _latent(self, images):
        return tf.random.normal(tf.shape(images), seed=None)

    def _noisy(self, images, noise):
        return apply_noise(images, noise, self.epsilon, self.budget)

    def _replayed_noise(self, latent):
        """Noise from a randomly chosen stored generator (graph-friendly: one branch per slot)."""
        index = tf.random.uniform([], 0, tf.maximum(self.stored_generators, 1), dtype=tf.int32)
        branches = [lambda g=g: g(latent, training=False) for g in self.past_generators]
        return tf.switch_case(index, branches)

    def _classifier_noise(self, images):
        latent = self._latent(images)
        current = lambda: self.generator(latent, training=False)  # noqa: E731
        if not self.past_generators:
            return current()
        use_replay = (tf.random.uniform([]) < self.replay) & (self.stored_generators > 0)
        return tf.cond(use_replay, lambda: self._replayed_noise(latent), current)

    def train_step(self, data):
        images, labels = data
        images = tf.cast(images, tf.float32)

        with tf.GradientTape() as tape:
            noise = self.generator(self._latent(images), training=True)
            noisy, perturbation = self._noisy(images, noise)
            logits = self.classifier(noisy, training=False)
            gen_loss = generator_objective(labels, logits, self.generator_loss)
            if self.budget == "penalty":
                gen_loss += self.penalty_weight * budget_penalty(noise, self.epsilon)
            # Inside the tape: a scaling outside it would cut the gradient path with several replicas.
            scaled = self.generator_optimizer.scale_loss(scale_for_replicas(gen_loss))
        gen_vars = self.generator.trainable_variables
        gradients = tape.gradient(scaled, gen_vars)
        self.generator_optimizer.apply_gradients(zip(gradients, gen_vars))

        noisy, perturbation = self._noisy(images, tf.stop_gradient(self._classifier_noise(images)))
        mask = tf.random.uniform([tf.shape(images)[0]]) < self.p_noise
        mixed = tf.where(mask[:, None, None, None], noisy, images)
        with tf.GradientTape() as tape:
            logits = self.classifier(mixed, training=True)
            clf_loss = mean_cross_entropy(labels, logits)
            scaled = self.optimizer.scale_loss(scale_for_replicas(clf_loss))
        clf_vars = self.classifier.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, clf_vars), clf_vars))

        noisy_weight = tf.cast(mask, tf.float32)
        self.trackers["classifier_loss"].update_state(clf_loss)
        self.trackers["generator_loss"].update_state(gen_loss)
        self.trackers["noise_l2"].update_state(l2_norms(perturbation))
        self.trackers["clean_accuracy"].update_state(labels, logits, sample_weight=1.0 - noisy_weight)
        self.trackers["noise_accuracy"].update_state(labels, logits, sample_weight=noisy_weight)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        images, labels = data
        images = tf.cast(images, tf.float32)
        noise = self.generator(self._latent(images), training=False)
        noisy, perturbation = self._noisy(images, noise)
        clean_logits = self.classifier(images, training=False)
        noisy_logits = self.classifier(noisy, training=False)
        self.trackers["classifier_loss"].update_state(
            mean_cross_entropy(labels, clean_logits)
        )
        self.trackers["generator_loss"].update_state(generator_objective(labels, noisy_logits, self.generator_loss))
        self.trackers["noise_l2"].update_state(l2_norms(perturbation))
        self.trackers["clean_accuracy"].update_state(labels, clean_logits)
        self.trackers["noise_accuracy"].update_state(labels, noisy_logits)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def remember_generator(self) -> None:
        """Copy the current generator into the replay buffer (oldest slot overwritten)."""
        if not self.past_generators:
            return
        slot = self._remembered % len(self.past_generators)
        self.past_generators[slot].set_weights(self.generator.get_weights())
        self._remembered += 1
        self.stored_generators.assign(min(self._remembered, len(self.past_generators)))

    def reset_generator(self) -> None:
        """Re-initialise the generator with fresh random weights (and forget its optimizer moments)."""
        fresh = keras.models.clone_model(self.generator)
        self.generator.set_weights(fresh.get_weights())
        if self.generator_optimizer is not None and self.generator_optimizer.built:
            for variable in self.generator_optimizer.variables:
                if variable.path.endswith(("iteration", "learning_rate")):
                    continue
                variable.assign(tf.zeros_like(variable))


def validate_game(epsilon, p_noise, budget, generator_loss, replay) -> None:
    if not epsilon > 0:
        raise UserError(f"epsilon must be positive (L2 size in the 0..1 image scale), got {epsilon}")
    if not 0.0 < p_noise <= 1.0:
        raise UserError(f"p-noise must lie in (0, 1], got {p_noise}")
    checks.chosen(budget, BUDGETS, "budget")
    checks.chosen(generator_loss, GENERATOR_LOSSES, "generator loss")
    if not 0.0 <= replay < 1.0:
        raise UserError(f"replay probability must lie in [0, 1), got {replay}")


class GeneratorSchedule(keras.callbacks.Callback):
    """At each epoch's end: store the generator for replay, and every ``reset_every`` epochs
    (0 = never) re-initialise it, so that the classifier does not overfit a single noise pattern."""

    def __init__(self, trainer: GameOfNoiseTrainer, reset_every: int = 0):
        super().__init__()
        if reset_every < 0:
            raise UserError(f"reset-generator-every must be >= 0, got {reset_every}")
        self.trainer = trainer
        self.reset_every = reset_every

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.remember_generator()
        if self.reset_every and (epoch + 1) % self.reset_every == 0:
            self.trainer.reset_generator()
