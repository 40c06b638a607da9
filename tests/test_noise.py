"""Noise generator, the exact L2 budget, Gaussian-noise mixing and the Game of Noise trainer."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from noisegame_cli.errors import UserError
from noisegame_cli.models import build_model
from noisegame_cli.models.noise_generator import build_noise_generator
from noisegame_cli.training.game_of_noise import GameOfNoiseTrainer, GeneratorSchedule
from noisegame_cli.training.gaussian_noise import with_gaussian_noise
from noisegame_cli.training.l2_budget import apply_noise, budget_penalty, project_l2

SHAPE = (16, 16, 3)


def _images_with_saturated_pixels(seed=0, count=5):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (count, *SHAPE)).astype("float32")
    images[0] = 0.0  # every pixel at a bound: noise pointing outwards is clipped away
    images[1] = 1.0
    images[2] = rng.integers(0, 2, SHAPE)
    noise = rng.normal(0, 1, images.shape).astype("float32")
    return images, noise


@pytest.mark.parametrize("epsilon", [0.01, 0.5, 4.0, 15.0])
def test_projection_gives_norm_epsilon_after_clipping_and_stays_in_range(epsilon):
    images, noise = _images_with_saturated_pixels()
    perturbation = project_l2(images, noise, epsilon).numpy()
    noisy = images + perturbation
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    norms = np.linalg.norm(perturbation.reshape(len(images), -1).astype("float64"), axis=1)
    np.testing.assert_allclose(norms, epsilon, rtol=1e-4)
    # The perturbation is the clipped noise, scaled: it points the same way where it is not clipped.
    free = (noisy > 0) & (noisy < 1)
    assert np.all(np.sign(perturbation[free]) == np.sign(noise[free]))


def test_projection_saturates_when_the_budget_is_out_of_reach_and_works_inside_tf_data():
    images, noise = _images_with_saturated_pixels()
    reachable = np.linalg.norm(np.where(noise > 0, 1 - images, images).reshape(len(images), -1), axis=1)
    norms = np.linalg.norm(project_l2(images, noise, 1e3).numpy().reshape(len(images), -1), axis=1)
    np.testing.assert_allclose(norms, reachable, rtol=1e-4)

    dataset = tf.data.Dataset.from_tensor_slices((images, noise)).batch(2)
    mapped = dataset.map(lambda x, n: tf.norm(tf.reshape(project_l2(x, n, 0.3), [tf.shape(x)[0], -1]), axis=-1))
    np.testing.assert_allclose(np.concatenate(list(mapped.as_numpy_iterator())), 0.3, rtol=1e-4)


def test_projection_passes_gradients_to_the_noise():
    images, noise = _images_with_saturated_pixels()
    variable = tf.Variable(noise)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(project_l2(images, variable, 1.0)[..., 0])
    gradient = tape.gradient(loss, variable).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


def test_penalty_budget_is_distance_of_the_norm_to_epsilon():
    noise = np.zeros((2, *SHAPE), "float32")
    noise[0, 0, 0, 0] = 3.0
    noise[1, 0, 0, 0] = 1.0
    assert float(budget_penalty(noise, 2.0)) == pytest.approx(1.0)
    images = np.full((2, *SHAPE), 127.0, "float32")
    noisy, perturbation = apply_noise(images, noise, 2.0, budget="penalty")
    assert float(tf.reduce_max(noisy)) == pytest.approx(255.0)  # raw noise, clipped to the image range


@pytest.mark.parametrize("kind, batch_norm", [("1x1", False), ("3x3", True)])
def test_generator_output_has_the_image_shape(kind, batch_norm):
    generator = build_noise_generator(SHAPE, kind=kind, depth=3, width=20, batch_norm=batch_norm)
    out = generator(np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32"))
    assert tuple(out.shape) == (2, *SHAPE)
    assert generator.layers[1].kernel.shape[0] == (1 if kind == "1x1" else 3)


def test_one_by_one_generator_makes_no_spatial_correlation():
    generator = build_noise_generator(SHAPE, kind="1x1")
    latent = np.zeros((1, *SHAPE), "float32")
    changed = latent.copy()
    changed[0, 5, 5] = 3.0
    difference = np.abs(generator(changed).numpy() - generator(latent).numpy()).sum(axis=-1)[0]
    assert np.count_nonzero(difference > 1e-6) == 1 and difference[5, 5] > 1e-6


def test_bad_generator_settings_are_user_errors():
    with pytest.raises(UserError, match="unknown generator"):
        build_noise_generator(SHAPE, kind="5x5")


def test_gaussian_mixing_noises_half_the_batch_with_sigmas_from_the_list():
    images = np.full((8, *SHAPE), 128, "uint8")
    labels = np.arange(8)
    dataset = with_gaussian_noise(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), [0.05, 0.2], seed=1)
    (noisy, out_labels), = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(out_labels, labels)
    np.testing.assert_array_equal(noisy[4:], 128.0)
    stds = noisy[:4].reshape(4, -1).std(axis=1) / 255.0
    assert np.all((stds > 0.03) & (stds < 0.25))
    assert noisy.min() >= 0 and noisy.max() <= 255
    with pytest.raises(UserError, match="sigma"):
        with_gaussian_noise(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), [0.0], seed=1)


def _game(**kwargs):
    keras.utils.set_random_seed(0)
    classifier = build_model("tiny_cnn", SHAPE, 3)
    generator = build_noise_generator(SHAPE, depth=3)
    trainer = GameOfNoiseTrainer(classifier, generator, epsilon=1.0, **kwargs)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), generator_optimizer=keras.optimizers.Adam(1e-2))
    return trainer


def _dataset():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, *SHAPE)).astype("uint8")
    return tf.data.Dataset.from_tensor_slices((images, rng.integers(0, 3, 24))).batch(8)


@pytest.mark.parametrize("settings", [{}, {"budget": "penalty", "generator_loss": "reversed", "replay": 0.5, "replay_size": 2}])
def test_game_of_noise_trains_both_players_and_logs_everything(settings):
    trainer = _game(**settings)
    generator_before = [w.copy() for w in trainer.generator.get_weights()]
    classifier_before = [w.copy() for w in trainer.classifier.get_weights()]
    history = trainer.fit(_dataset(), validation_data=_dataset(), epochs=2, verbose=0,
                          callbacks=[GeneratorSchedule(trainer, reset_every=0)]).history
    for name in ("classifier_loss", "generator_loss", "noise_l2", "clean_accuracy", "noise_accuracy"):
        assert name in history and f"val_{name}" in history
    if settings.get("budget", "project") == "project":
        np.testing.assert_allclose(history["noise_l2"], 1.0, rtol=1e-3)
    assert any(not np.array_equal(b, a) for b, a in zip(generator_before, trainer.generator.get_weights()))
    assert any(not np.array_equal(b, a) for b, a in zip(classifier_before, trainer.classifier.get_weights()))


def test_reset_and_replay_bookkeeping():
    trainer = _game(replay=0.5, replay_size=2)
    schedule = GeneratorSchedule(trainer, reset_every=2)
    before = [w.copy() for w in trainer.generator.get_weights()]
    for epoch in range(3):
        schedule.on_epoch_end(epoch)
    assert int(trainer.stored_generators.numpy()) == 2
    np.testing.assert_array_equal(trainer.past_generators[0].get_weights()[0], trainer.generator.get_weights()[0])
    assert not np.array_equal(before[0], trainer.generator.get_weights()[0])  # re-initialised after epoch 2


@pytest.mark.parametrize("kwargs, message", [({"epsilon": 0.0}, "epsilon"), ({"epsilon": 1.0, "budget": "soft"}, "budget"),
                                             ({"epsilon": 1.0, "p_noise": 0.0}, "p-noise")])
def test_bad_game_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        GameOfNoiseTrainer(build_model("tiny_cnn", SHAPE, 3), build_noise_generator(SHAPE), **kwargs)


MIRRORED_SCRIPT = """
import numpy as np, tensorflow as tf, keras
from noisegame_cli.training.strategy import make_strategy
strategy = make_strategy("mirrored")
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
from noisegame_cli.models import build_model
from noisegame_cli.models.noise_generator import build_noise_generator
from noisegame_cli.training.game_of_noise import GameOfNoiseTrainer, GeneratorSchedule
from noisegame_cli.training.student import SelfTrainer
shape = (16, 16, 3)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (32, *shape)).astype("float32")
labels = rng.integers(0, 3, 32)
with strategy.scope():
    game = GameOfNoiseTrainer(build_model("tiny_cnn", shape, 3), build_noise_generator(shape), epsilon=1.0, replay=0.5, replay_size=2)
    game.compile(optimizer=keras.optimizers.Adam(1e-3), generator_optimizer=keras.optimizers.Adam(1e-2))
    student = SelfTrainer(build_model("tiny_cnn", shape, 3), build_model("tiny_cnn", shape, 3))
    student.compile(optimizer=keras.optimizers.Adam(1e-3))
before = [w.copy() for w in game.generator.get_weights()]
game.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), epochs=2, verbose=0, callbacks=[GeneratorSchedule(game)])
assert any(not np.array_equal(b, a) for b, a in zip(before, game.generator.get_weights()))
pairs = tf.data.Dataset.from_tensor_slices(((images, images), labels)).batch(8)
student.fit(pairs, epochs=1, verbose=0)
print("MIRRORED OK")
"""


def test_trainers_fit_on_two_mirrored_replicas():
    """A fresh process, so that TensorFlow can still split the CPU into two replicas."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and "MIRRORED OK" in result.stdout, result.stderr[-3000:]
