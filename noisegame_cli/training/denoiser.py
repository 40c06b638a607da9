"""Training the GAN denoiser: generator (the denoiser) against a DCGAN discriminator, and/or L1.

Losses (``loss``):

- ``"gan"``: the study's. The generator learns only from the discriminator, with the non-saturating
  loss ``-log D(G(noisy))``; the discriminator tells clean images from denoised ones.
- ``"l1"``: plain reconstruction, mean ``|G(noisy) - clean|`` on the 0..1 scale; no discriminator.
- ``"gan+l1"``: pix2pix (Isola et al. 2017): the GAN loss plus ``l1_weight`` (100) times the L1 loss.

The discriminator's loss is pix2pix's: the mean of the cross-entropies on the clean and on the denoised
batch (halved, so ``ln 2`` is chance). Its batches are the clean images of the same step; it is not
conditioned on the noisy input (DCGAN's discriminator, as in the study).

The noise is added in the input pipeline (:mod:`noisegame_cli.training.noisy_pairs`), not in the step:
the trainer itself draws nothing, and validation pairs made with ``fixed=True`` carry the same noise
every epoch, so ``val_`` metrics are comparable across epochs.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.budgets import PIXEL_MAX
from noisegame_cli.errors import UserError
from noisegame_cli.training.strategy import scale_for_replicas

LOSSES = ("gan", "l1", "gan+l1")
PIX2PIX_L1_WEIGHT = 100.0
SSIM_WINDOW = 11


# --- the pieces ----------------------------------------------------------------------------------


def discriminator_loss(real_logits, fake_logits):
    """``(BCE(1, D(clean)) + BCE(0, D(denoised))) / 2``, each averaged over the batch."""
    real = tf.reduce_mean(tf.nn.softplus(-real_logits))
    fake = tf.reduce_mean(tf.nn.softplus(fake_logits))
    return (real + fake) / 2.0


def adversarial_loss(fake_logits):
    """The generator's non-saturating loss ``-log sigmoid(D(G(x)))``, averaged over the batch."""
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def l1_error(restored, clean):
    """Mean absolute error on the 0..1 scale, one value per image."""
    difference = tf.abs(tf.cast(restored, tf.float32) - tf.cast(clean, tf.float32)) / PIXEL_MAX
    return tf.reduce_mean(tf.reshape(difference, [tf.shape(difference)[0], -1]), axis=-1)


def image_quality(restored, clean) -> dict[str, tf.Tensor]:
    """Per-image PSNR (dB) and SSIM of 0..255 images against their clean originals (``max_val`` 255).

    The SSIM window is the usual 11 pixels, or the image's smaller side where that is less than 11.
    """
    restored = tf.cast(restored, tf.float32)
    clean = tf.cast(clean, tf.float32)
    window = min(SSIM_WINDOW, *(size for size in clean.shape[1:3] if size is not None))
    return {
        "psnr": tf.image.psnr(restored, clean, max_val=PIXEL_MAX),
        "ssim": tf.image.ssim(restored, clean, max_val=PIXEL_MAX, filter_size=window),
    }


def validate_training(loss: str, l1_weight: float, discriminator) -> None:
    checks.chosen(loss, LOSSES, "denoiser loss")
    if loss == "gan+l1" and not l1_weight > 0:
        raise UserError(f"the L1 weight must be positive, got {l1_weight:g}")
    if loss != "l1" and discriminator is None:
        raise ValueError(f"loss {loss!r} needs a discriminator")


# --- the trainer -----------------------------------------------------------------------------------


class DenoiserGAN(keras.Model):
    """The denoiser (generator) and its discriminator for ``fit`` / ``evaluate``.

    Batches are ``(noisy, clean)`` pairs of 0..255 images (see
    :func:`noisegame_cli.training.noisy_pairs.noisy_pairs`; ``fit(noisy, clean)`` on arrays works too).
    Each ``train_step`` first updates the discriminator on the clean batch against the current
    denoised batch, then the generator. ``test_step`` measures the same quantities without updates.

    Logs ``g_loss`` (what the generator minimises), ``d_loss`` (not with ``loss="l1"``, where the
    discriminator is neither needed nor trained), ``l1`` (0..1 scale), ``psnr`` and ``ssim`` of denoised
    vs clean, and ``noisy_psnr`` / ``noisy_ssim`` of the input vs clean, so the gain is visible.

    Build the networks, this wrapper and ``compile`` inside the same strategy scope. Save only
    ``trainer.denoiser``: a plain model, image in, image out.
    """

    def __init__(
        self,
        denoiser: keras.Model,
        discriminator: keras.Model | None = None,
        *,
        loss: str = "gan+l1",
        l1_weight: float = PIX2PIX_L1_WEIGHT,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_training(loss, l1_weight, discriminator)
        self.denoiser = denoiser
        self.loss_kind = loss
        self.adversarial = loss != "l1"
        self.discriminator = discriminator if self.adversarial else None
        self.l1_weight = float(l1_weight) if loss == "gan+l1" else 0.0
        self.discriminator_optimizer = None
        names = ["g_loss", *(["d_loss"] if self.adversarial else []), "l1", "psnr", "ssim", "noisy_psnr", "noisy_ssim"]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        # No variables of its own: built once its networks are, so BackupAndRestore accepts it before fit.
        self.built = denoiser.built and (self.discriminator is None or self.discriminator.built)

    def compile(self, optimizer, discriminator_optimizer=None, **kwargs):
        """``optimizer`` for the denoiser, ``discriminator_optimizer`` for the discriminator (needed
        unless ``loss="l1"``). DCGAN's choice for both: ``Adam(2e-4, beta_1=0.5)``."""
        super().compile(optimizer=optimizer, **kwargs)
        if self.adversarial and discriminator_optimizer is None:
            raise ValueError(f"loss {self.loss_kind!r} needs a discriminator optimizer")
        if self.adversarial and isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            # Keras wrapped the denoiser's optimizer for mixed precision; the discriminator's needs the same.
            if not isinstance(discriminator_optimizer, keras.optimizers.LossScaleOptimizer):
                discriminator_optimizer = keras.optimizers.LossScaleOptimizer(discriminator_optimizer)
        self.discriminator_optimizer = discriminator_optimizer if self.adversarial else None
        # Each optimizer on its own network's variables, now (inside the caller's strategy scope).
        self.optimizer.build(self.denoiser.trainable_variables)
        if self.adversarial:
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)):  # fit may build the wrapper on a (noisy, clean) pair
            inputs = inputs[0]
        return self.denoiser(inputs, training=training)

    def _generator_loss(self, denoised, clean, fake_logits):
        l1 = tf.reduce_mean(l1_error(denoised, clean))
        if self.loss_kind == "l1":
            return l1, l1
        gan = adversarial_loss(fake_logits)
        return (gan + self.l1_weight * l1 if self.loss_kind == "gan+l1" else gan), l1

    def _discriminator_step(self, denoised, clean):
        with tf.GradientTape() as tape:
            d_loss = discriminator_loss(self.discriminator(clean, training=True), self.discriminator(denoised, training=True))
            scaled = self.discriminator_optimizer.scale_loss(scale_for_replicas(d_loss))
        variables = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return d_loss

    def train_step(self, data):
        noisy, clean = (tf.cast(images, tf.float32) for images in data)
        # DCGAN's order on one denoised batch: the discriminator learns from it first, then the
        # generator learns through the updated discriminator.
        with tf.GradientTape() as tape:
            denoised = self.denoiser(noisy, training=True)
            fake_logits = None
            if self.adversarial:
                with tape.stop_recording():
                    self.trackers["d_loss"].update_state(self._discriminator_step(tf.stop_gradient(denoised), clean))
                fake_logits = self.discriminator(denoised, training=True)
            g_loss, l1 = self._generator_loss(denoised, clean, fake_logits)
            # Inside the tape: a scaling outside it would cut the gradient path with several replicas.
            scaled = self.optimizer.scale_loss(scale_for_replicas(g_loss))
        variables = self.denoiser.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return self._record(noisy, denoised, clean, g_loss, l1)

    def test_step(self, data):
        noisy, clean = (tf.cast(images, tf.float32) for images in data)
        denoised = self.denoiser(noisy, training=False)
        fake_logits = None
        if self.adversarial:
            fake_logits = self.discriminator(denoised, training=False)
            self.trackers["d_loss"].update_state(discriminator_loss(self.discriminator(clean, training=False), fake_logits))
        g_loss, l1 = self._generator_loss(denoised, clean, fake_logits)
        return self._record(noisy, denoised, clean, g_loss, l1)

    def _record(self, noisy, denoised, clean, g_loss, l1):
        self.trackers["g_loss"].update_state(g_loss)
        self.trackers["l1"].update_state(l1)
        for prefix, images in (("", denoised), ("noisy_", noisy)):
            for name, values in image_quality(images, clean).items():
                self.trackers[prefix + name].update_state(values)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def dcgan_optimizer(learning_rate: float = 2e-4, beta_1: float = 0.5) -> keras.optimizers.Optimizer:
    """Radford et al.'s optimizer: Adam with learning rate 2e-4 and beta_1 0.5."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
