"""RandomCorruption: a corruption and severity drawn per image, seeded, in eager code, tf.data and a
model; the identity when not training; and train-teacher --augment-corruptions."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from conftest import only_run_dir
from helpers import assert_one_line_error
from noisegame_cli.corruptions import RandomCorruption, corrupt
from noisegame_cli.data import load_dataset
from noisegame_cli.errors import UserError

PAIRS = (("brightness", 1), ("brightness", 5), ("contrast", 1), ("contrast", 5))  # deterministic: each output is checkable


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits").test.images[:24]


def layer(seed=3, names=("brightness", "contrast"), severities=(1, 5), **kwargs):
    return RandomCorruption(list(names), severities, seed=seed, **kwargs)


def test_each_image_gets_one_of_the_pairs_and_all_pairs_occur(images):
    out = layer()(images, training=True).numpy()
    candidates = {pair: corrupt(images, *pair) for pair in PAIRS}
    drawn = []
    for index in range(len(images)):
        matches = [pair for pair, made in candidates.items() if np.array_equal(out[index], made[index])]
        assert matches, index
        drawn.append(matches[0])
    assert set(drawn) == set(PAIRS)  # 24 images over 4 pairs: every pair is drawn


def test_same_seed_same_images_other_seed_and_next_call_differ(images):
    first, twin, other = layer(seed=3), layer(seed=3), layer(seed=4)
    a, b = first(images, training=True).numpy(), twin(images, training=True).numpy()
    assert np.array_equal(a, b)
    assert np.array_equal(first(images, training=True).numpy(), twin(images, training=True).numpy())  # and call after call
    assert not np.array_equal(a, other(images, training=True).numpy())
    random = RandomCorruption(["gaussian_noise"], (3,), seed=3)
    once, again = random(images, training=True).numpy(), random(images, training=True).numpy()
    assert not np.array_equal(once, again)  # a fresh draw each call


def test_identity_unless_training_and_float_in_float_out(images):
    corrupting = layer()
    assert np.array_equal(np.asarray(corrupting(images)), images)
    assert np.array_equal(np.asarray(corrupting(images, training=False)), images)
    floats = images.astype(np.float32)
    out = corrupting(floats, training=True)
    assert out.dtype == tf.float32 and np.array_equal(out.numpy(), layer()(images, training=True).numpy().astype(np.float32))


def test_in_tf_data_as_in_eager_code(images):
    eager = layer(seed=7)(images[:12], training=True).numpy()
    mapped = layer(seed=7)
    batches = tf.data.Dataset.from_tensor_slices(images[:12]).batch(12).map(lambda batch: mapped(batch, training=True))
    assert np.array_equal(next(iter(batches)).numpy(), eager)


def test_inside_a_model_trains_and_predicts_on_clean_images(images, tmp_path):
    digits = load_dataset("digits", limit=64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), RandomCorruption(["gaussian_noise", "fog"], seed=1), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(10)])  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.train.images.astype("float32"), digits.train.labels, batch_size=32, epochs=1, verbose=0)
    clean = keras.Sequential(model.layers[1:])
    np.testing.assert_allclose(model.predict(images, verbose=0), clean.predict(images.astype("float32"), verbose=0), rtol=1e-5, atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras").layers[0]
    assert isinstance(loaded, RandomCorruption) and loaded.names == ("gaussian_noise", "fog") and loaded.seed == 1


@pytest.mark.parametrize(
    "names, severities, parameters, message",
    [(["fogg"], (1,), None, "unknown corruption 'fogg'"), (["fog"], (6,), None, "severity must be"), ([], (1,), None, "at least one"),
     (["fog"], (1,), "cifar-10", "unknown parameter set")],
)  # fmt: skip
def test_bad_arguments_are_user_errors(names, severities, parameters, message):
    with pytest.raises(UserError, match=message):
        RandomCorruption(names, severities, parameters)


def test_train_teacher_augments_with_corruptions_in_smoke(invoke, tmp_path):
    runs = tmp_path / "runs"
    result = invoke("train-teacher", "--smoke", "--augment-corruptions", "gaussian_noise,contrast", "--augment-severities", "2,4",
                    "--corruptions", "fog", "--severities", "3", "--runs-dir", runs)  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs, "train-teacher")
    config = json.loads((run / "config.json").read_text())
    assert config["augment_corruptions"] == ["gaussian_noise", "contrast"] and config["augment_severities"] == [2, 4]
    metrics = pd.read_csv(run / "metrics.csv")
    held_out = metrics[(metrics["metric"] == "accuracy") & metrics["corruption"].notna()]
    assert held_out[["corruption", "severity"]].values.tolist() == [["fog", 3]]
    assert "mean_corruption_accuracy:" in result.output

    bad = invoke("train-teacher", "--smoke", "--augment-corruptions", "gaussian,fog", "--runs-dir", tmp_path / "bad")
    assert_one_line_error(bad, "unknown corruption 'gaussian' in --augment-corruptions")
    assert not (tmp_path / "bad").exists()


def test_shares_of_a_batch_are_padded_to_a_few_sizes():
    from noisegame_cli.corruptions.layer import power_of_two_at_least

    sizes = [int(power_of_two_at_least(tf.constant(count))) for count in (1, 2, 3, 8, 9, 100, 128, 129)]
    assert sizes == [1, 2, 4, 8, 16, 128, 128, 256]
