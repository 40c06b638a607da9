"""Noise training: Gaussian-noise training (GNT) and the Game of Noise (adversarial noise training, ANT).

Images travel in 0..255 as the classifiers take them; noise sizes (``sigma``, ``epsilon``) are in
the 0..1 scale of the image range.

ANT follows Rusak et al. (ECCV 2020): a noise generator turns N(0, 1) noise into a noise pattern,
the pattern is brought to a fixed L2 size ``epsilon`` per image, and generator and classifier
alternate: the generator maximises the classifier's cross-entropy on noisy images, the classifier
minimises cross-entropy on a batch in which a random part of the images (``p_noise``) is noisy.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from noisegame_cli.errors import UserError
from noisegame_cli.training.strategy import scale_for_replicas
from noisegame_cli.losses import mean_cross_entropy

BUDGETS = ("project", "penalty")
GENERATOR_LOSSES = ("ce", "reversed")


# --- the L2 budget -----------------------------------------------------------------------------


def _flat(tensor):
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])


def l2_norms(noise):
    """Per-image L2 norm of a batch of noise patterns."""
    return tf.norm(_flat(noise), axis=-1)


def project_l2(images01, noise, epsilon: float):
    """The perturbation ``clip(x + c * noise, 0, 1) - x`` whose L2 norm is exactly ``epsilon`` per image.

    ``images01`` and ``noise`` are float batches of the same shape, images in 0..1. Scaling the noise
    first and clipping afterwards would leave a smaller norm than asked wherever pixels saturate,
    so the scale ``c >= 0`` is solved for per image. The clipped perturbation's squared norm,
    ``sum_i min(c |n_i|, room_i) ** 2`` (``room_i`` is the distance from ``x_i`` to the bound that
    ``n_i`` points at), is piecewise quadratic and increasing in ``c`` with breakpoints
    ``room_i / |n_i|``; after sorting the breakpoints the segment holding ``epsilon`` and ``c``
    inside it have closed forms. Where even full saturation stays below ``epsilon`` (only for
    budgets near the image-space diameter) the saturated perturbation is returned; an all-zero
    noise pattern gives a zero perturbation. Gradients flow into ``noise``.
    """
    x = tf.cast(_flat(images01), tf.float32)
    n = tf.cast(_flat(noise), tf.float32)
    epsilon_sq = tf.cast(epsilon, tf.float32) ** 2
    moving = tf.not_equal(n, 0.0)
    magnitude = tf.abs(n)
    room = tf.maximum(tf.where(n > 0, 1.0 - x, x), 0.0)
    breakpoints = tf.where(moving, room / tf.where(moving, magnitude, 1.0), np.inf)

    order = tf.argsort(breakpoints, axis=-1, stable=True)
    sorted_breaks = tf.gather(breakpoints, order, batch_dims=1)
    sorted_room_sq = tf.gather(tf.where(moving, room**2, 0.0), order, batch_dims=1)
    sorted_magnitude_sq = tf.gather(magnitude**2, order, batch_dims=1)
    # On the segment ending at sorted breakpoint k, the entries before k are saturated (they add their
    # room squared) and the others grow linearly with c: norm^2(c) = saturated[k] + c^2 * free[k].
    saturated = tf.cumsum(sorted_room_sq, axis=-1, exclusive=True)
    free = tf.cumsum(sorted_magnitude_sq, axis=-1, reverse=True)
    segment_start = tf.concat([tf.zeros_like(sorted_breaks[:, :1]), sorted_breaks[:, :-1]], axis=-1)
    solution = tf.sqrt(tf.math.divide_no_nan(tf.maximum(epsilon_sq - saturated, 0.0), free) + 1e-30)
    # The first segment whose solution does not pass its own end holds the answer (norm^2 is increasing);
    # clamping into the segment absorbs float32 rounding at the segment ends.
    first = tf.argmax(tf.cast(solution <= sorted_breaks, tf.int32), axis=-1)
    reachable = tf.reduce_any(solution <= sorted_breaks, axis=-1)
    scale_on_segment = tf.minimum(tf.maximum(solution, segment_start), sorted_breaks)
    largest_finite_break = tf.reduce_max(tf.where(tf.math.is_finite(sorted_breaks), sorted_breaks, 0.0), axis=-1)
    scale = tf.where(reachable, tf.gather(scale_on_segment, first, batch_dims=1), largest_finite_break)

    perturbation = tf.clip_by_value(x + scale[:, None] * n, 0.0, 1.0) - x
    return tf.reshape(perturbation, tf.shape(noise))


def budget_penalty(noise, epsilon: float):
    """Mean over the batch of ``| ||noise||_2 - epsilon |`` (the seed's soft budget)."""
    return tf.reduce_mean(tf.abs(l2_norms(noise) - epsilon))


def apply_noise(images255, noise, epsilon: float, budget: str = "project"):
    """Noisy images in 0..255 and the perturbation actually applied (0..1 scale).

    ``budget="project"`` scales the noise exactly onto the budget; ``"penalty"`` applies the raw noise
    (clipped to the image range) and leaves the budget to :func:`budget_penalty` in the loss.
    """
    images01 = tf.cast(images255, tf.float32) / 255.0
    if budget == "project":
        perturbation = project_l2(images01, noise, epsilon)
    else:
        perturbation = tf.clip_by_value(images01 + noise, 0.0, 1.0) - images01
    return (images01 + perturbation) * 255.0, perturbation


def generate_noisy(generator: keras.Model, images255: np.ndarray, epsilon: float, *, budget: str = "project",
                   batch_size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of ``images255`` under ``generator``'s noise (seeded latents) and the applied
    perturbations (0..1 scale), as float32 arrays; for evaluating several classifiers on the same noise."""
    noisy, perturbations = [], []
    for index, start in enumerate(range(0, len(images255), batch_size)):
        batch = tf.cast(images255[start : start + batch_size], tf.float32)
        latent = tf.random.stateless_normal(tf.shape(batch), seed=[seed, index])
        images, perturbation = apply_noise(batch, generator(latent, training=False), epsilon, budget)
        noisy.append(images.numpy())
        perturbations.append(perturbation.numpy())
    return np.concatenate(noisy), np.concatenate(perturbations)


def add_gaussian_noise(images255: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Images plus Gaussian noise of std ``sigma`` (0..1 scale), clipped to 0..255, as float32."""
    noise = np.random.default_rng(seed).normal(0.0, sigma * 255.0, images255.shape)
    return np.clip(images255.astype(np.float32) + noise, 0.0, 255.0).astype(np.float32)


# --- Gaussian-noise training --------------------------------------------------------------------


def gaussian_noise_mix(images255, labels, seed, sigmas: Sequence[float]):
    """Add Gaussian noise (std in the 0..1 scale) to the first half of a batch, clip to 0..255.

    With several ``sigmas`` each noisy image draws its own sigma uniformly from the list (the
    multi-sigma variant of Rusak et al. 2020). ``seed`` is a stateless seed pair, so the mix is
    reproducible inside ``tf.data``; the batches are expected to be shuffled already.
    """
    images = tf.cast(images255, tf.float32)
    count = tf.shape(images)[0]
    sigma_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    choice = tf.random.stateless_uniform([count], sigma_seed, 0, len(sigmas), dtype=tf.int32)
    sigma = tf.gather(tf.constant(list(sigmas), tf.float32), choice)
    noisy_half = tf.cast(tf.range(count) < count // 2, tf.float32)
    std = (sigma * noisy_half * 255.0)[:, None, None, None]
    noise = tf.random.stateless_normal(tf.shape(images), noise_seed) * std
    return tf.clip_by_value(images + noise, 0.0, 255.0), labels


def with_gaussian_noise(dataset: tf.data.Dataset, sigmas: Sequence[float], seed: int) -> tf.data.Dataset:
    """Map a batched ``(images, labels)`` dataset to half-clean, half-noisy batches."""
    sigmas = validate_sigmas(sigmas)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        lambda batch, pair: gaussian_noise_mix(batch[0], batch[1], pair, sigmas),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def validate_sigmas(sigmas) -> tuple[float, ...]:
    sigmas = tuple(float(s) for s in (sigmas if isinstance(sigmas, (list, tuple)) else [sigmas]))
    if not sigmas or any(not 0.0 < s <= 1.0 for s in sigmas):
        raise UserError(f"sigma values must lie in (0, 1] (0..1 image scale), got {list(sigmas)}")
    return sigmas


# --- the Game of Noise ----------------------------------------------------------------------------


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
    if budget not in BUDGETS:
        raise UserError(f"unknown budget {budget!r}; choose from {', '.join(BUDGETS)}")
    if generator_loss not in GENERATOR_LOSSES:
        raise UserError(f"unknown generator loss {generator_loss!r}; choose from {', '.join(GENERATOR_LOSSES)}")
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
