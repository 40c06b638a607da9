"""The GAN denoiser: networks, noises and noisy pairs, the trainer, and purification under attack."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import noisegame_cli
from noisegame_cli.attacks import pgd
from noisegame_cli.corruptions import corrupt_tf
from noisegame_cli.errors import UserError
from noisegame_cli.losses import cross_entropy
from noisegame_cli.models import build_model
from noisegame_cli.models.denoiser import build_denoiser, build_discriminator, purified_classifier
from noisegame_cli.training.denoiser import DenoiserGAN, adversarial_loss, dcgan_optimizer, discriminator_loss
from noisegame_cli.training.noisy_pairs import (
    CorruptionNoise,
    STUDY_SIGMA,
    GaussianNoise,
    noisy_copies,
    noisy_pairs,
    parse_noise,
    parse_noises,
)

SHAPE = (16, 16, 3)
SMALL = {"depth": 2, "base_filters": 8}
TRAIN_KEYS = {"g_loss", "l1", "psnr", "ssim", "noisy_psnr", "noisy_ssim"}


def clean_images(count=32, shape=SHAPE, seed=0):
    """Smooth random images (blurred noise), so a denoiser has structure to recover."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, shape[0] // 4, shape[1] // 4, shape[2]))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype(np.uint8)


def trainer(loss="gan+l1", *, learning_rate=2e-4, generator_rate=None, discriminator_rate=None, shape=SHAPE):
    keras.utils.set_random_seed(0)
    denoiser = build_denoiser(shape, **SMALL)
    discriminator = build_discriminator(shape, **SMALL) if loss != "l1" else None
    gan = DenoiserGAN(denoiser, discriminator, loss=loss)
    generator_optimizer = dcgan_optimizer(learning_rate if generator_rate is None else generator_rate)
    discriminator_optimizer = dcgan_optimizer(learning_rate if discriminator_rate is None else discriminator_rate)
    gan.compile(generator_optimizer, discriminator_optimizer if loss != "l1" else None)
    return gan


def pair_batches(images, noise="gaussian", *, seed=0, fixed=True, batch_size=16):
    return noisy_pairs(tf.data.Dataset.from_tensor_slices(images).batch(batch_size), noise, seed, fixed=fixed)


# --- the networks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, depth", [((16, 16, 3), 2), ((32, 16, 1), 3), ((8, 24, 3), 2), ((32, 32, 1), 1)])
def test_denoiser_returns_float_images_of_the_input_shape_in_0_255(shape, depth):
    keras.utils.set_random_seed(0)
    denoiser = build_denoiser(shape, depth=depth, base_filters=4)
    rng = np.random.default_rng(0)
    images = np.concatenate([np.zeros((1, *shape)), np.full((1, *shape), 255.0), rng.uniform(0, 255, (2, *shape))]).astype("float32")
    output = denoiser(images, training=False)
    assert output.shape == images.shape and output.dtype == tf.float32
    assert float(tf.reduce_min(output)) >= 0.0 and float(tf.reduce_max(output)) <= 255.0
    logits = build_discriminator(shape, depth=depth, base_filters=4)(images, training=False)
    assert logits.shape == (4, 1)


@pytest.mark.parametrize("shape, depth, named", [((18, 16, 3), 2, ["18x16", "4"]), ((32, 40, 3), 4, ["32x40", "16"])])
def test_size_not_divisible_by_two_to_the_depth_is_a_user_error(shape, depth, named):
    with pytest.raises(UserError) as error:
        build_denoiser(shape, depth=depth)
    assert all(part in str(error.value) for part in named)


@pytest.mark.parametrize("shape, kwargs", [((16, 16, 2), {}), ((16, 16), {}), (SHAPE, {"depth": 0}), (SHAPE, {"base_filters": 0})])
def test_bad_architectures_are_user_errors(shape, kwargs):
    with pytest.raises(UserError):
        build_denoiser(shape, **kwargs)
    with pytest.raises(UserError):
        build_discriminator(shape, **kwargs)


# --- noises and noisy pairs -------------------------------------------------------------------------


def test_gaussian_noise_has_the_asked_sigma_on_the_0_1_scale_and_is_seeded():
    grey = np.full((8, 32, 32, 3), 128, np.uint8)
    noise = GaussianNoise(STUDY_SIGMA)
    noisy = noise(grey, 3).numpy()
    assert noisy.dtype == np.float32
    assert abs(np.var(noisy - 128.0) - 50.0) < 2.5  # the study's variance of 50 on the 0..255 scale
    np.testing.assert_array_equal(noisy, noise(grey, 3).numpy())
    assert not np.array_equal(noisy, noise(grey, 4).numpy())
    extremes = GaussianNoise(20 / 255)(np.array([[[[0, 255, 0]]]] * 4, np.uint8), 0).numpy()
    assert extremes.min() >= 0.0 and extremes.max() <= 255.0 and (extremes == 0).any() and (extremes == 255).any()


@pytest.mark.parametrize("sigma", [0.0, -0.1, 1.5])
def test_a_sigma_outside_the_image_scale_is_a_user_error(sigma):
    with pytest.raises(UserError, match="sigma"):
        GaussianNoise(sigma)
    with pytest.raises(UserError, match="sigma"):
        parse_noise(f"gaussian:{sigma}")


def test_noise_specs_parse_to_noises():
    assert parse_noise("gaussian") == GaussianNoise(STUDY_SIGMA)
    assert parse_noise("gaussian:0.05") == GaussianNoise(0.05)
    assert parse_noise("corruption:gaussian_noise:3") == CorruptionNoise("gaussian_noise", 3)
    assert parse_noises("gaussian, corruption:fog:1") == (GaussianNoise(STUDY_SIGMA), CorruptionNoise("fog", 1))
    assert [noise.spec for noise in parse_noises(["gaussian:0.1", "corruption:fog:1"])] == ["gaussian:0.1", "corruption:fog:1"]


@pytest.mark.parametrize(
    "spec", ["gauss", "gaussian:abc", "gaussian:inf", "gaussian:nan", "gaussian:1:2", "corruption:nope:3", "corruption:gaussian_noise:6",
             "corruption:gaussian_noise", "corruption:gaussian_noise:x", "", " , "],
)  # fmt: skip
def test_bad_noise_specs_are_user_errors(spec):
    with pytest.raises(UserError):
        parse_noises(spec)


def test_corruption_noise_is_the_engines_corruption():
    images = clean_images(4)
    seed = tf.constant([5, 1], tf.int64)
    expected = corrupt_tf(tf.constant(images), "gaussian_noise", 3, seed).numpy().astype(np.float32)
    np.testing.assert_array_equal(CorruptionNoise("gaussian_noise", 3)(images, seed).numpy(), expected)
    # The data pipelines' float32 images give the same result as uint8 ones.
    np.testing.assert_array_equal(CorruptionNoise("gaussian_noise", 3)(images.astype(np.float32), seed).numpy(), expected)


def test_corruption_of_grey_images_is_a_user_error():
    grey = np.zeros((4, 16, 16, 1), np.uint8)
    with pytest.raises(UserError):
        pair_batches(grey, "corruption:gaussian_noise:3")


def test_fixed_pairs_repeat_every_epoch_and_training_pairs_do_not():
    images = clean_images(32)
    fixed = pair_batches(images, fixed=True)
    first, second = (np.concatenate([noisy for noisy, _ in fixed.as_numpy_iterator()]) for _ in range(2))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, noisy_copies(images, "gaussian", seed=0, batch_size=16))
    clean = np.concatenate([c for _, c in fixed.as_numpy_iterator()])
    np.testing.assert_array_equal(clean, images.astype(np.float32))

    fresh = pair_batches(images, fixed=False)
    epoch1, epoch2 = (np.concatenate([noisy for noisy, _ in fresh.as_numpy_iterator()]) for _ in range(2))
    assert not np.array_equal(epoch1, epoch2)
    rebuilt = np.concatenate([noisy for noisy, _ in pair_batches(images, fixed=False).as_numpy_iterator()])
    np.testing.assert_array_equal(epoch1, rebuilt)  # same seed, same noise


def test_several_noises_draw_one_per_batch():
    images = np.full((64, 16, 16, 3), 100, np.uint8)
    pairs = pair_batches(images, "gaussian:0.004,corruption:brightness:5", batch_size=4)
    shifts = np.array([float(np.mean(noisy - clean)) for noisy, clean in pairs.as_numpy_iterator()])
    brightened, gaussian = shifts > 20, np.abs(shifts) < 1
    assert np.all(brightened | gaussian) and brightened.any() and gaussian.any()


def test_pairs_accept_labelled_batches():
    images = clean_images(8)
    labelled = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), np.arange(8))).batch(4)
    noisy = np.concatenate([n for n, _ in noisy_pairs(labelled, [GaussianNoise(STUDY_SIGMA)], 0, fixed=True).as_numpy_iterator()])
    np.testing.assert_array_equal(noisy, noisy_copies(images, "gaussian", seed=0, batch_size=4))


# --- losses and the trainer ---------------------------------------------------------------------------


def test_discriminator_loss_rewards_telling_real_from_fake():
    zeros = tf.zeros([4, 1])
    np.testing.assert_allclose(discriminator_loss(zeros, zeros).numpy(), np.log(2.0), rtol=1e-6)
    assert discriminator_loss(zeros + 3.0, zeros - 3.0) < np.log(2.0) < discriminator_loss(zeros - 3.0, zeros + 3.0)
    assert adversarial_loss(zeros + 3.0) < np.log(2.0) < adversarial_loss(zeros - 3.0)


def test_l1_denoiser_lowers_the_l1_error_on_a_fixed_noisy_batch():
    gan = trainer("l1", learning_rate=3e-3)
    batches = pair_batches(clean_images(16))
    before = gan.evaluate(batches, verbose=0, return_dict=True)
    gan.fit(batches.repeat(30), epochs=1, verbose=0)
    after = gan.evaluate(batches, verbose=0, return_dict=True)
    assert after["l1"] < 0.85 * before["l1"]
    assert after["psnr"] > before["psnr"]
    assert after["g_loss"] == pytest.approx(after["l1"])


def test_discriminator_separates_clean_from_denoised_images():
    gan = trainer("gan", learning_rate=2e-3, generator_rate=0.0)  # the generator stays as it is
    batches = pair_batches(clean_images(16))
    noisy, clean = next(iter(batches))
    before = gan.evaluate(batches, verbose=0, return_dict=True)["d_loss"]
    history = gan.fit(batches.repeat(20), epochs=1, verbose=0).history
    after = gan.evaluate(batches, verbose=0, return_dict=True)["d_loss"]
    assert after < before and after < np.log(2.0) - 0.1 and history["d_loss"][0] < np.log(2.0)
    real = gan.discriminator(clean, training=False).numpy().ravel()
    fake = gan.discriminator(gan.denoiser(noisy, training=False), training=False).numpy().ravel()
    assert real.min() > fake.max()


def test_gan_generator_learns_to_fool_a_fixed_discriminator():
    gan = trainer("gan", learning_rate=2e-3, discriminator_rate=0.0)  # the discriminator's weights stay as they are
    batches = pair_batches(clean_images(16))
    noisy, _ = next(iter(batches))

    def generator_loss():
        # Training mode: batch statistics, so the drifting moving averages of batch norm play no part.
        return float(adversarial_loss(gan.discriminator(gan.denoiser(noisy, training=True), training=True)))

    before = generator_loss()
    gan.fit(batches.repeat(20), epochs=1, verbose=0)
    assert generator_loss() < before - 0.05


def test_pix2pix_loss_is_the_gan_loss_plus_100_times_l1():
    gan = trainer("gan+l1")
    batches = pair_batches(clean_images(16)).take(1)
    logged = gan.evaluate(batches, verbose=0, return_dict=True)
    noisy, clean = next(iter(batches))
    denoised = gan.denoiser(noisy, training=False)
    expected = adversarial_loss(gan.discriminator(denoised, training=False)) + 100.0 * logged["l1"]
    assert logged["g_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert logged["l1"] == pytest.approx(float(tf.reduce_mean(tf.abs(denoised - clean))) / 255.0, rel=1e-5)


@pytest.mark.parametrize("loss, adversarial", [("gan", True), ("l1", False), ("gan+l1", True)])
def test_fit_logs_the_listed_metrics_and_validation_sees_fixed_noise(loss, adversarial):
    gan = trainer(loss)
    images = clean_images(32)
    history = gan.fit(pair_batches(images, fixed=False), validation_data=pair_batches(images[:16], seed=1), epochs=2, verbose=0).history
    keys = TRAIN_KEYS | ({"d_loss"} if adversarial else set())
    assert set(history) == keys | {f"val_{key}" for key in keys}
    assert history["val_noisy_psnr"][0] == history["val_noisy_psnr"][1]  # the same noisy images every epoch
    assert history["noisy_psnr"][0] != history["noisy_psnr"][1]  # fresh training noise every epoch
    assert 28.0 < history["val_noisy_psnr"][0] < 35.0  # variance 50: 10 log10(255^2 / 50) = 31.1 dB before clipping
    assert all(np.isfinite(values).all() for values in history.values())


def test_fit_on_arrays():
    gan = trainer("gan+l1")
    clean = clean_images(16)
    noisy = noisy_copies(clean, "gaussian")
    history = gan.fit(noisy, clean.astype(np.float32), batch_size=8, epochs=1, verbose=0).history
    assert history["l1"][0] > 0


def test_saved_generator_reloads_with_the_same_outputs(tmp_path):
    gan = trainer("gan+l1")
    batches = pair_batches(clean_images(16))
    gan.fit(batches, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    gan.denoiser.save(path)
    loaded = keras.models.load_model(path, compile=False)
    noisy, _ = next(iter(batches))
    np.testing.assert_array_equal(loaded.predict(noisy, verbose=0), gan.denoiser.predict(noisy, verbose=0))
    assert loaded.input_shape == loaded.output_shape == (None, *SHAPE)


def test_bad_trainer_settings_are_user_errors():
    denoiser, discriminator = build_denoiser(SHAPE, **SMALL), build_discriminator(SHAPE, **SMALL)
    with pytest.raises(UserError, match="loss"):
        DenoiserGAN(denoiser, discriminator, loss="wgan")
    with pytest.raises(UserError, match="L1 weight"):
        DenoiserGAN(denoiser, discriminator, loss="gan+l1", l1_weight=0.0)


# --- purification under attack ---------------------------------------------------------------------


def coloured_images(count, seed):
    """A three-class task: the class is the channel lifted by 30 grey levels over a smooth image."""
    labels = np.random.default_rng(seed).integers(0, 3, count)
    images = clean_images(count, seed=seed).astype(np.float32) * 0.5
    images[np.arange(count), :, :, labels] += 30.0
    return images.astype(np.uint8), labels


@pytest.fixture(scope="module")
def purifier():
    """An L1 denoiser, a classifier trained on its outputs, and noisy test images with their labels."""
    images, labels = coloured_images(128, seed=0)
    gan = trainer("l1", learning_rate=1e-2)
    gan.fit(pair_batches(images, fixed=False, batch_size=32).repeat(40), epochs=1, verbose=0)
    classifier = build_model("tiny_cnn", SHAPE, 3)
    classifier.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    denoised = gan.denoiser.predict(noisy_copies(images, "gaussian", seed=1), verbose=0)
    classifier.fit(denoised, labels, batch_size=32, epochs=8, verbose=0)
    test_images, test_labels = coloured_images(32, seed=1)
    return gan.denoiser, classifier, noisy_copies(test_images, "gaussian", seed=2), test_labels


def test_white_box_pgd_through_the_denoiser_is_at_least_as_strong_as_the_oblivious_attack(purifier):
    denoiser, classifier, images, labels = purifier
    defended = purified_classifier(denoiser, classifier)
    white_box = pgd(defended, images, labels, 8 / 255, steps=10, seed=0)
    oblivious = pgd(classifier, images, labels, 8 / 255, steps=10, seed=0)  # then passed through the denoiser

    def loss_and_accuracy(adversarial):
        logits = defended(adversarial, training=False)
        return float(tf.reduce_mean(cross_entropy(labels, logits))), float(np.mean(np.argmax(logits, axis=-1) == labels))

    clean_loss, clean_accuracy = loss_and_accuracy(images)
    white_loss, white_accuracy = loss_and_accuracy(white_box)
    oblivious_loss, oblivious_accuracy = loss_and_accuracy(oblivious)
    assert clean_accuracy >= 0.7 and clean_loss < oblivious_loss < white_loss
    assert white_accuracy <= oblivious_accuracy and white_accuracy < clean_accuracy


def test_bpda_keeps_the_forward_pass_and_passes_the_classifiers_gradient_straight_through(purifier):
    denoiser, classifier, images, labels = purifier
    bpda = purified_classifier(denoiser, classifier, bpda=True)
    plain = purified_classifier(denoiser, classifier)
    images = tf.constant(images)
    labels = tf.constant(labels)
    np.testing.assert_allclose(bpda(images, training=False), plain(images, training=False), rtol=1e-4, atol=1e-4)

    def gradient(model, at):
        with tf.GradientTape() as tape:
            tape.watch(at)
            loss = tf.reduce_sum(cross_entropy(labels, model(at, training=False)))
        return tape.gradient(loss, at).numpy()

    straight_through = gradient(bpda, images)
    assert np.isfinite(straight_through).all() and np.abs(straight_through).max() > 0
    at_denoised = gradient(classifier, denoiser(images, training=False))
    np.testing.assert_allclose(straight_through, at_denoised, rtol=1e-3, atol=1e-6)
    assert not np.allclose(straight_through, gradient(plain, images), rtol=1e-2, atol=1e-6)


def test_a_classifier_that_does_not_take_the_denoised_images_is_a_user_error(purifier):
    denoiser, *_ = purifier
    with pytest.raises(UserError, match=r"\[32, 32, 3\].*\[16, 16, 3\]"):
        purified_classifier(denoiser, build_model("tiny_cnn", (32, 32, 3), 3))


# --- scale-out --------------------------------------------------------------------------------------

MIRRORED_SCRIPT = """
import sys, numpy as np, tensorflow as tf, keras
from noisegame_cli.training.strategy import make_strategy
strategy = make_strategy("mirrored")
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
from noisegame_cli.models.denoiser import build_denoiser, build_discriminator
from noisegame_cli.training.denoiser import DenoiserGAN, dcgan_optimizer
from noisegame_cli.training.noisy_pairs import noisy_pairs
images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3)).astype("uint8")
pairs = noisy_pairs(tf.data.Dataset.from_tensor_slices(images).batch(8), "gaussian", 0, fixed=False)

def build():
    with strategy.scope():
        gan = DenoiserGAN(build_denoiser((16, 16, 3), depth=2, base_filters=4), build_discriminator((16, 16, 3), depth=2, base_filters=4))
        gan.compile(dcgan_optimizer(), dcgan_optimizer())
    return gan

class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise RuntimeError("interrupted")

backup = keras.callbacks.BackupAndRestore(sys.argv[1])
first = build()
assert first.built
before = [w.copy() for w in first.denoiser.get_weights() + first.discriminator.get_weights()]
try:
    first.fit(pairs, epochs=2, verbose=0, callbacks=[backup, Interrupt()])
except RuntimeError:
    pass
after = first.denoiser.get_weights() + first.discriminator.get_weights()
assert any(not np.array_equal(b, a) for b, a in zip(before[:4], after[:4]))  # the denoiser moved
assert any(not np.array_equal(b, a) for b, a in zip(before[-4:], after[-4:]))  # the discriminator moved
resumed = build()
history = resumed.fit(pairs, epochs=2, verbose=0, callbacks=[backup])
assert len(history.epoch) == 1 and history.epoch[0] == 1, history.epoch
assert int(resumed.discriminator_optimizer.iterations.numpy()) == 8, resumed.discriminator_optimizer.iterations.numpy()
print("MIRRORED OK")
"""


@pytest.mark.slow  # a fresh TensorFlow process and two fits: about 20 s on two cores
def test_trainer_fits_on_two_mirrored_replicas_and_resumes_from_a_backup(tmp_path):
    """A fresh process, so that TensorFlow can still split the CPU into two replicas."""
    root = os.path.dirname(os.path.dirname(noisegame_cli.__file__))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": root}
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "backup")], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and "MIRRORED OK" in result.stdout, result.stderr[-3000:]
