"""The C-bar corruptions (ImageNet-C-bar, CIFAR-10-C-bar) in the engine.

Against the published generator, without it: ``tests/data/cbar_generator_reference.npz`` holds the
generator's own outputs with the parameters it drew (the engine's rendering of those parameters must
give its pixels within one grey level) and summaries of its parameter draws (the engine's draws must
follow the same distributions); ``tests/cbar_reference.py`` wrote it and says how. Then the engine's
own properties: severities ordered, seeded, batch-invariant, the parameter sets and their sizes."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import stats

from cbar_reference import REFERENCE_FILE, engine_draws, engine_rendering, recorded_renderings
from conftest import only_run_dir
from helpers import assert_one_line_error, per_set_accuracy
from noisegame_cli.corruptions import (
    C_BAR_CORRUPTIONS,
    CIFAR10_C_BAR_CORRUPTIONS,
    IMAGENET_C_BAR_CORRUPTIONS,
    KNOWN_CORRUPTIONS,
    PARAMETER_SETS,
    RandomCorruption,
    corrupt,
    corrupt_dataset,
    corrupt_tf,
    engine,
    samples,
)
from noisegame_cli.data import load_dataset
from noisegame_cli.errors import UserError
from noisegame_cli.corruptions.names import expand

SEVERITIES = (1, 2, 3, 4, 5)
DETERMINISTIC = {"circular_motion_blur"}


@pytest.fixture(scope="module")
def recorded():
    return np.load(REFERENCE_FILE)


@pytest.fixture(scope="module")
def images():
    return samples.natural_images(6, 32, seed=11)


def native_set(name: str) -> str:
    """The set whose rows a 32-px test uses: CIFAR-10-C-bar where it has the corruption."""
    return "cifar10-c-bar" if name in CIFAR10_C_BAR_CORRUPTIONS else "imagenet-c-bar"


# ------------------------------------------------------------------ against the generator's record


@pytest.mark.parametrize("name", C_BAR_CORRUPTIONS)
def test_rendering_gives_the_generators_pixels_for_its_parameters(recorded, name):
    cases = [case for case in recorded_renderings(recorded) if case[0] == name]
    assert len(cases) == 3
    for _, severity, level, image, parameters, expected in cases:
        difference = np.abs(engine_rendering(name, level, image, parameters).astype(int) - expected)
        assert difference.max() <= 1 and difference.mean() < 0.01, (name, severity, difference.max(), difference.mean())


@pytest.mark.parametrize("name", sorted(set(C_BAR_CORRUPTIONS) - DETERMINISTIC))
def test_draws_follow_the_generators_distributions(recorded, name):
    for set_name in ("cifar10-c-bar", "imagenet-c-bar"):
        key = f"draws/{name}/{set_name}"
        if key not in recorded.files:
            continue
        chosen = PARAMETER_SETS[set_name]
        theirs = recorded[key]
        ours = engine_draws(name, chosen.native_size, chosen.row(name, 3), count=len(theirs)).astype(theirs.dtype)  # as recorded
        assert ours.shape == theirs.shape
        for column in range(theirs.shape[1]):
            p_value = stats.ks_2samp(ours[:, column], theirs[:, column]).pvalue
            assert p_value > 1e-3, (name, set_name, column, p_value, ours[:, column].mean(), theirs[:, column].mean())


# ------------------------------------------------------------------ the sets


def test_sets_names_and_groups():
    imagenet, cifar = PARAMETER_SETS["imagenet-c-bar"], PARAMETER_SETS["cifar10-c-bar"]
    assert (imagenet.native_size, cifar.native_size) == (224, 32)
    assert imagenet.corruptions == IMAGENET_C_BAR_CORRUPTIONS and cifar.corruptions == CIFAR10_C_BAR_CORRUPTIONS
    shared = set(IMAGENET_C_BAR_CORRUPTIONS) & set(CIFAR10_C_BAR_CORRUPTIONS)
    assert shared == {"blue_noise_sample", "brownish_noise", "checkerboard_cutout", "inverse_sparkles", "sparkles"}
    assert len(C_BAR_CORRUPTIONS) == 15 and set(C_BAR_CORRUPTIONS) <= set(KNOWN_CORRUPTIONS)
    assert set(C_BAR_CORRUPTIONS) <= set(engine.FUNCTIONS) and not set(C_BAR_CORRUPTIONS) & set(PARAMETER_SETS["imagenet-c"].table)
    for chosen in (imagenet, cifar):  # severities are the tables' values, rising, on the generator's 0..10 scale
        for name in chosen.corruptions:
            levels = [chosen.row(name, severity) for severity in SEVERITIES]
            assert levels == sorted(set(levels)) and 0 < levels[0] and levels[-1] <= 10, (chosen.name, name, levels)
    assert expand(["imagenet-c-bar"]) == IMAGENET_C_BAR_CORRUPTIONS
    assert expand(["cifar10-c-bar"]) == CIFAR10_C_BAR_CORRUPTIONS
    assert expand(["imagenet-c-bar", "cifar10-c-bar"]) == expand(["c-bar"]) == C_BAR_CORRUPTIONS


@pytest.mark.parametrize("height, width, name, expected", [
    (32, 32, "blue_noise_sample", "cifar10-c-bar"),
    (224, 224, "blue_noise_sample", "imagenet-c-bar"),
    (32, 32, "caustic_refraction", "imagenet-c-bar"),  # only ImageNet-C-bar has it
    (224, 160, "ripple", "cifar10-c-bar"),  # only CIFAR-10-C-bar has it
    (100, 100, "sparkles", "imagenet-c-bar"),  # nearer 224 than 32 as a ratio
    (32, 32, "gaussian_noise", "cifar10-c"),
])  # fmt: skip
def test_no_parameter_set_takes_the_nearest_set_that_has_the_corruption(height, width, name, expected):
    assert engine.resolve_parameters(None, height, width, name).name == expected


def test_a_set_without_the_corruption_is_a_user_error(images):
    with pytest.raises(UserError, match="ripple is not one of the imagenet-c-bar corruptions.*sets that have it: cifar10-c-bar"):
        corrupt(images, "ripple", 1, parameters="imagenet-c-bar")
    with pytest.raises(UserError, match="gaussian_noise is not one of the cifar10-c-bar corruptions"):
        corrupt(images, "gaussian_noise", 1, parameters="cifar10-c-bar")
    with pytest.raises(UserError, match="fog is not one of the imagenet-c-bar corruptions"):
        RandomCorruption(["sparkles", "fog"], parameters="imagenet-c-bar")


# ------------------------------------------------------------------ every corruption


@pytest.mark.parametrize("name", C_BAR_CORRUPTIONS)
def test_each_c_bar_corruption(images, name):
    set_name = native_set(name)
    outputs = {severity: corrupt(images, name, severity, seed=11, parameters=set_name) for severity in SEVERITIES}
    for out in outputs.values():
        assert out.shape == images.shape and out.dtype == np.uint8
    change = [np.abs(outputs[severity].astype(float) - images).mean() for severity in SEVERITIES]
    assert change[0] > 0.5 and all(stronger > weaker for weaker, stronger in zip(change, change[1:])), change
    # the same seed gives the same pixels; another seed other pixels (all but circular motion blur draw at random)
    assert np.array_equal(corrupt(images, name, 3, seed=11, parameters=set_name), outputs[3])
    assert np.array_equal(corrupt(images, name, 3, seed=12, parameters=set_name), outputs[3]) == (name in DETERMINISTIC)
    assert np.array_equal(corrupt(images, name, 3, seed=11), outputs[3])  # the nearest set that has it at 32 px is the same


def test_the_same_pixels_in_one_call_in_parts_and_streamed():
    name = "checkerboard_cutout"
    base = np.random.default_rng(4).integers(0, 256, (engine.block_size(96, 96) + 3, 96, 96, 3), dtype=np.uint8)  # two blocks
    together = corrupt(base, name, 2, seed=5)
    assert np.array_equal(corrupt(base[:5], name, 2, seed=5), together[:5])  # each image's draws do not depend on the batch
    streamed = np.stack([image.numpy() for image in corrupt_dataset(tf.data.Dataset.from_tensor_slices(base), name, 2, seed=5)])
    assert np.array_equal(streamed, together)
    mapped = tf.data.Dataset.from_tensor_slices(base[:5]).batch(5).map(lambda batch: corrupt_tf(batch, name, 2, seed=(5, 0)))
    assert np.array_equal(next(iter(mapped)).numpy(), together[:5])


def test_other_sizes_scale_the_lengths(images):
    """A 64-px copy of 32-px images, corrupted with CIFAR-10-C-bar's lengths doubled, changes as much as
    the 32-px images: the sparkles, lines and cutout squares grow with the image."""
    larger = np.asarray(tf.image.resize(images, (64, 64)), np.uint8)
    for name in ("sparkles", "lines", "checkerboard_cutout"):
        small = np.abs(corrupt(images, name, 4, seed=2, parameters="cifar10-c-bar").astype(float) - images).mean()
        large = np.abs(corrupt(larger, name, 4, seed=2, parameters="cifar10-c-bar").astype(float) - larger).mean()
        assert large == pytest.approx(small, rel=0.25), (name, small, large)
    oblong = corrupt(samples.natural_images(2, 40, seed=1)[:, :, :24], "pinch_and_twirl", 5, seed=1)
    assert oblong.shape == (2, 40, 24, 3)


def test_random_corruption_layer_draws_c_bar_corruptions(images):
    layer = RandomCorruption(["lines", "ripple", "blue_noise_sample"], severities=[5], parameters="cifar10-c-bar", seed=3)
    out = layer(images, training=True).numpy()
    assert out.shape == images.shape and out.dtype == np.uint8 and (out != images).any(axis=(1, 2, 3)).all()
    assert np.array_equal(layer(images, training=False), images)


@pytest.mark.slow  # two commands and three evaluations: about 16 s
def test_corrupt_writes_and_eval_corruption_evaluates_a_c_bar_set(invoke, tmp_path):
    out, chosen = tmp_path / "digits-C-bar", ["--parameters", "cifar10-c-bar", "--corruptions", "lines,ripple", "--seed", "3", "--limit", "12"]
    written = invoke("corrupt", "--dataset", "digits", "--out", out, *chosen, "--runs-dir", tmp_path / "runs")
    assert written.exit_code == 0, written.output
    clean = load_dataset("digits").test.images[:12]
    assert np.array_equal(np.load(out / "ripple.npy")[12:24], corrupt(clean, "ripple", 2, seed=3, parameters="cifar10-c-bar"))
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3, strides=4),
                              keras.layers.Flatten(), keras.layers.Dense(10)], name="tiny")  # fmt: skip
    model.save(tmp_path / "model.keras")
    common = ["--model-path", tmp_path / "model.keras", "--limit", "12", "--severities", "2,5"]
    generated = invoke("eval-corruption", *common, *chosen, "--runs-dir", tmp_path / "generated")
    read = invoke("eval-corruption", *common, "--dataset", "cifar10-c", "--data-dir", out, "--runs-dir", tmp_path / "read")
    assert generated.exit_code == 0 and read.exit_code == 0, read.output
    pd.testing.assert_series_equal(per_set_accuracy(only_run_dir(tmp_path / "read", "eval-corruption")),
                                   per_set_accuracy(only_run_dir(tmp_path / "generated", "eval-corruption")))  # fmt: skip
    wrong = invoke("eval-corruption", *common, "--parameters", "imagenet-c-bar", "--corruptions", "ripple", "--runs-dir", tmp_path / "wrong")
    assert_one_line_error(wrong, "ripple is not one of the imagenet-c-bar corruptions")
