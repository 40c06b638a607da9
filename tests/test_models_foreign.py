"""Models as researchers hold them, through ``noisegame fgsm eval``: trained on 0..1 inputs, with mean/std
outside the network, returning probabilities, saved as .keras, Keras 2 .h5, weights-only files, SavedModels
of both writers, a keras.applications network and a run directory. For each, the clean accuracy equals a
direct Keras evaluation with the right preprocessing, FGSM at 8/255 equals one computed by hand on the 0..1
scale, and the input-range check stays quiet; it fires where the input range is misread."""

from __future__ import annotations

import json
import warnings

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from conftest import only_run_dir
from helpers import assert_one_line_error
from noisegame_cli.data import load_dataset
from noisegame_cli.models import InputScale, build_model, copy_classifier, load_checked
from noisegame_cli.models.wrapping import wrapping_of

SIZE = 32  # digits' own size
COUNT = 96  # test images evaluated (--limit)
EPS = 8 / 255
MEAN, STD = (0.2, 0.3, 0.4), (0.3, 0.25, 0.2)
DATA = ("--dataset", "digits", "--limit", str(COUNT), "--batch-size", "48")
# What the loader says, once, for the kinds it wraps or calls in a particular way.
NOTES = {
    "model.export()": ("SavedModel: calling its serve endpoint", "takes pixels mapped to 0..1 (--input-range 0-1)"),
    "tf.saved_model.save, probabilities": ("SavedModel: calling its serving_default signature", "the attacks use their log as logits"),
    "softmax .keras": ("its last layer is a softmax: the attacks use the logits before it",),
    "mean/std": ("then (x - mean) / std with mean 0.2,0.3,0.4, std 0.3,0.25,0.2",),
}
ONE_IMAGE = 1 / COUNT + 1e-9  # float round-off (batch sizes, 0..255 against 0..1) may move one image across a decision boundary


def _digits():
    return load_dataset("digits")


def _trained(preprocess, *, softmax: bool = False, name: str) -> keras.Model:
    """A small conv net trained for a few seconds on digits brought to its input by ``preprocess``."""
    digits = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax" if softmax else None),
    ], name=name)  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax))
    model.fit(preprocess(digits.train.images.astype(np.float32) / 255), digits.train.labels, batch_size=64, epochs=3, verbose=0)
    return model


def _expecting(model: keras.Model, *, scale, offset, name: str) -> keras.Model:
    """``model`` (trained on 0..1) behind ``x * scale + offset``: a model that expects the inputs this maps back to 0..1."""
    inputs = keras.Input((SIZE, SIZE, 3))
    return keras.Model(inputs, model(keras.layers.Rescaling(scale, offset)(inputs)), name=name)


def _pixels_model() -> keras.Model:
    """A model as this project trains them: 0..255 pixels in, rescaled and batch-normalised inside."""
    digits = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, strides=2),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ], name="pixels")  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.train.images, digits.train.labels, batch_size=64, epochs=3, verbose=0)
    return model


class Probabilities(tf.Module):
    """A SavedModel written by tf.saved_model.save: a module whose signature returns probabilities."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
    def __call__(self, images):
        return {"probabilities": tf.nn.softmax(self.model(images))}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every kind of saved model: ``{kind: (source, extra flags, reference, returns probabilities)}``; the
    reference maps 0..1 images to what the user's model returns."""
    root = tmp_path_factory.mktemp("zoo")
    unit = _trained(lambda x: x, name="unit")  # trained on 0..1 inputs (RobustBench's convention)
    # The same network behind the inverse of a normalisation: models that expect normalised or -1..1 inputs
    normalised = _expecting(unit, scale=np.float32(STD), offset=np.float32(MEAN), name="normalised")
    symmetric = _expecting(unit, scale=0.5, offset=0.5, name="symmetric")  # -1..1, as MobileNet's preprocess_input
    # 0..255 pixels in, not normalised, probabilities out: saturated and scale-free, so it keeps its accuracy at
    # 0..1 too; the check must still stay quiet (its loss is lowest where it was trained)
    softmax = _trained(lambda x: x * 255, softmax=True, name="softmax")
    unit.save(root / "unit.keras")
    unit.save(root / "unit.h5")
    unit.save_weights(root / "unit.weights.h5")
    with h5py.File(root / "unit-keras2-weights.h5", "w") as file:  # what Keras 2's save_weights("x.h5") writes
        from keras.src.legacy.saving import legacy_h5_format

        legacy_h5_format.save_weights_to_hdf5_group(file, unit)
    (root / "unit.json").write_text(unit.to_json())
    unit.export(root / "unit-export", verbose=False)
    tf.saved_model.save(Probabilities(unit), str(root / "unit-module"))
    normalised.save(root / "normalised.keras")
    softmax.save(root / "softmax.keras")
    pixels = _pixels_model()
    (root / "run").mkdir()
    pixels.save(root / "run" / "model.keras")
    symmetric.save(root / "symmetric.keras")
    keras.utils.set_random_seed(1)
    tiny = build_model("tiny_cnn", (SIZE, SIZE, 3), 10)  # random weights
    tiny.save_weights(root / "tiny.weights.h5")
    unit_range = ("--input-range", "0-1")
    return {
        ".keras 0..1": (root / "unit.keras", unit_range, unit, False),
        ".h5 full 0..1": (root / "unit.h5", unit_range, unit, False),
        ".weights.h5 + json": (root / "unit.weights.h5", (*unit_range, "--architecture", root / "unit.json"), unit, False),
        "keras2 weights .h5 + json": (root / "unit-keras2-weights.h5", (*unit_range, "--architecture", root / "unit.json"), unit, False),
        "weights + registered name": (root / "tiny.weights.h5", ("--architecture", "tiny_cnn"), lambda x: tiny(x * 255), False),
        "model.export()": (root / "unit-export", unit_range, unit, False),
        "tf.saved_model.save, probabilities": (root / "unit-module", unit_range, lambda x: tf.nn.softmax(unit(x)), True),
        "mean/std": (root / "normalised.keras", (*unit_range, "--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD))),
                     lambda x: normalised((x - np.float32(MEAN)) / np.float32(STD)), False),
        "softmax .keras": (root / "softmax.keras", (), lambda x: softmax(x * 255), True),
        "run directory": (root / "run", (), lambda x: pixels(x * 255), False),
        ".keras -1..1": (root / "symmetric.keras", ("--input-range", "-1-1"), lambda x: symmetric(2 * x - 1), False),
    }


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """The figures fgsm eval draws take most of its time and are tested in test_fgsm_cli; these tests read numbers."""
    from noisegame_cli import plots

    monkeypatch.setattr(plots, "image_grid", lambda *args, **kwargs: None)
    monkeypatch.setattr(plots, "line_plot", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def test_images():
    images, labels = _digits().test.arrays(COUNT)
    return images.astype(np.float32) / 255, labels


def _loss(outputs, labels, probabilities: bool):
    if probabilities:
        return -tf.math.log(tf.gather(outputs, labels, batch_dims=1))
    return keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)


def reference_accuracies(reference, probabilities: bool, images, labels, eps: float) -> tuple[float, float]:
    """Clean accuracy, and FGSM's on the 0..1 scale computed by hand with a GradientTape on the user's model."""
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = reference(x)
        loss = tf.reduce_sum(_loss(outputs, labels, probabilities))
    adversarial = tf.clip_by_value(x + eps * tf.sign(tape.gradient(loss, x)), 0.0, 1.0)
    clean = float(np.mean(np.argmax(outputs, axis=-1) == labels))
    return clean, float(np.mean(np.argmax(reference(adversarial), axis=-1) == labels))


def fgsm_accuracies(invoke, runs_dir, source, *flags) -> tuple[dict, str]:
    result = invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", source, "--eps", f"0,{EPS}", *flags)
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(only_run_dir(runs_dir, "fgsm-eval") / "metrics.csv")
    accuracy = metrics[metrics["metric"] == "accuracy"].set_index("epsilon")["value"]
    return {"clean": accuracy[0.0], "fgsm": accuracy[EPS]}, result.output


@pytest.mark.parametrize("kind", [
    ".keras 0..1", ".h5 full 0..1", ".weights.h5 + json", "keras2 weights .h5 + json", "weights + registered name", "model.export()",
    "tf.saved_model.save, probabilities", "mean/std", "softmax .keras", "run directory", ".keras -1..1",
])  # fmt: skip
def test_every_kind_matches_keras_and_a_hand_computed_fgsm(kind, zoo, test_images, invoke, runs_dir):
    source, flags, reference, probabilities = zoo[kind]
    measured, output = fgsm_accuracies(invoke, runs_dir, source, *flags)
    clean, fgsm = reference_accuracies(reference, probabilities, *test_images, EPS)
    assert measured["clean"] == pytest.approx(clean, abs=ONE_IMAGE)
    assert measured["fgsm"] == pytest.approx(fgsm, abs=ONE_IMAGE)
    assert "Warning (input-range)" not in output
    for note in NOTES.get(kind, ()):
        assert output.count(note) == 1, output
    config = json.loads((only_run_dir(runs_dir, "fgsm-eval") / "config.json").read_text())
    assert [config["input_range"], config["mean"]] == [flags[1] if flags[:1] == ("--input-range",) else "0-255",
                                                      list(MEAN) if kind == "mean/std" else None]  # fmt: skip


def test_a_0_1_model_fed_pixels_is_flagged_and_its_fgsm_accuracy_is_not_trusted(zoo, test_images, invoke, runs_dir):
    """The issue's measured failure: accuracy survives 255 times larger logits, FGSM finds nothing."""
    source, flags, reference, _ = zoo[".keras 0..1"]
    misread, output = fgsm_accuracies(invoke, runs_dir, source)
    warning = [line for line in output.splitlines() if line.startswith("Warning (input-range)")]
    assert len(warning) == 1 and "saturated outputs" in warning[0] and "--input-range 0-1" in warning[0], output
    right, _ = fgsm_accuracies(invoke, runs_dir / "right", source, *flags)
    assert misread["clean"] == pytest.approx(right["clean"], abs=0.05)  # the accuracy survives the wrong range
    assert misread["fgsm"] > right["fgsm"] + 0.1  # and the attack looks far weaker than it is


def test_a_model_at_chance_under_the_given_range_is_flagged(zoo, invoke, runs_dir):
    source, _, _, _ = zoo["run directory"]  # takes 0..255 pixels; at 0..1 its batch normalisation sees constants
    _, output = fgsm_accuracies(invoke, runs_dir, source, "--input-range", "0-1")
    warning = [line for line in output.splitlines() if line.startswith("Warning (input-range)")]
    assert len(warning) == 1 and "clean accuracy" in warning[0] and "seems to expect --input-range 0-255" in warning[0], output


def test_the_wrapping_travels_in_a_fine_tuned_copy(zoo, test_images, tmp_path):
    """What fgsm train, adv-noise and train-student --init-from-teacher train and save: a copy that takes 0..255
    pixels with the normalisation inside, and says so."""
    source, flags, reference, _ = zoo["mean/std"]
    scale = InputScale("0-1", MEAN, STD)
    copy = copy_classifier(load_checked(source, _digits(), scale=scale, say=None))
    copy.save(tmp_path / "model.keras")
    saved = keras.models.load_model(tmp_path / "model.keras")
    images = test_images[0]
    np.testing.assert_allclose(saved(images * 255), reference(images), rtol=1e-4, atol=1e-4)
    assert wrapping_of(saved) == {"input_range": "0-1", "mean": list(MEAN), "std": list(STD), "outputs": "logits",
                                  "preprocess_input": None, "signature": None}  # fmt: skip


@pytest.mark.parametrize(("flags", "message"), [
    (("--mean", "0.5,0.5,0.5"), "--mean and --std go together"),
    (("--input-range", "0-1", "--mean", "0.5,0.5", "--std", "0.2,0.2"), "--mean takes 1 value or 3"),
    (("--input-range", "0-1", "--mean", "0.5", "--std", "0"), "--std must be positive"),
    (("--mean", "0.5", "--std", "0.2"), "give them with --input-range 0-1"),
    (("--input-range", "0-2",), "0-2"),
])  # fmt: skip
def test_input_options_that_do_not_make_sense_end_in_one_line(flags, message, invoke, runs_dir, zoo):
    source = zoo[".keras 0..1"][0]
    assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", source, *flags), message)


@pytest.mark.parametrize(("kind", "flags", "message"), [
    (".weights.h5 + json", (), "holds weights only: give its architecture with --architecture"),
    (".keras 0..1", ("--architecture", "tiny_cnn"), "--architecture is for weights-only files"),
    ("weights + registered name", ("--architecture", "small_cnn"), "does not fit --architecture small_cnn"),
])  # fmt: skip
def test_weights_without_a_fitting_architecture_end_in_one_line(kind, flags, message, invoke, runs_dir, zoo):
    source = zoo[kind][0]
    assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", source, *flags), message)


def _warning_of_a_partial_load(load):
    def in_part(*args, **kwargs):
        result = load(*args, **kwargs)
        warnings.warn("Skipping nested container at 'x': no matching group found in the saved file. Affected layers "
                      "will retain their freshly-initialized weights.", UserWarning)  # fmt: skip
        return result

    return in_part


def test_files_keras_loads_only_in_part_are_refused(invoke, runs_dir, zoo, monkeypatch):
    """Keras warns, and does not raise, when a file lacks some nested layers' weights: those layers keep
    their random initial weights, so the model would give wrong numbers; the command refuses it instead,
    for weights with --architecture and for whole saved models alike."""
    source, flags = zoo["weights + registered name"][:2]
    monkeypatch.setattr(keras.Model, "load_weights", _warning_of_a_partial_load(keras.Model.load_weights))
    line = assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", source, *flags),
                                 "some of its layers' weights are not in the file")  # fmt: skip
    assert "does not fit --architecture tiny_cnn" in line
    source, flags = zoo[".keras 0..1"][:2]
    monkeypatch.setattr(keras.models, "load_model", _warning_of_a_partial_load(keras.models.load_model))
    line = assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", source, *flags),
                                 "some of its layers' weights are not in the file")  # fmt: skip
    assert "is not a readable Keras model" in line


def test_application_weights_that_cannot_classify_the_data_end_in_one_line(invoke, runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", "app:MobileNetV2"),
                          "ImageNet weights classify ImageNet's 1000 classes but the dataset has 10")  # fmt: skip
    assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", "app:MobileNetV2:missing.h5"),
                          "no weights file missing.h5")  # fmt: skip
    assert_one_line_error(invoke("fgsm", "eval", *DATA, "--runs-dir", runs_dir, "--model-path", "app:NoSuchNet"),
                          "--model-path app:NoSuchNet: unknown application")  # fmt: skip


@pytest.mark.slow
def test_an_application_with_local_weights_matches_its_network(invoke, runs_dir, tmp_path):
    """app:NAME:FILE: the keras.applications network with its own preprocess_input inside (resized to its
    native 224 x 224, so only 4 images)."""
    keras.utils.set_random_seed(2)
    network = build_model("app:MobileNetV3Small", (SIZE, SIZE, 3), 10)
    network.save_weights(tmp_path / "mobilenet.weights.h5")
    count = 4
    result = invoke("fgsm", "eval", "--limit", str(count), "--runs-dir", runs_dir, "--eps", f"0,{EPS}",
                    "--model-path", f"app:MobileNetV3Small:{tmp_path / 'mobilenet.weights.h5'}")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "fgsm-eval")
    assert run.name.endswith("-eval") and json.loads((run / "config.json").read_text())["model_path"].startswith("app:")
    metrics = pd.read_csv(run / "metrics.csv")
    accuracy = metrics[metrics["metric"] == "accuracy"].set_index("epsilon")["value"]
    images, labels = _digits().test.arrays(count)
    clean, fgsm = reference_accuracies(lambda x: network(x * 255), False, images.astype(np.float32) / 255, labels, EPS)
    assert [accuracy[0.0], accuracy[EPS]] == pytest.approx([clean, fgsm], abs=1 / count + 1e-9)
    loaded = load_checked(f"app:MobileNetV3Small:{tmp_path / 'mobilenet.weights.h5'}", _digits(), say=None)
    np.testing.assert_allclose(loaded(images.astype(np.float32)), network(images.astype(np.float32)), rtol=1e-5, atol=1e-5)


def test_the_input_options_travel_in_recipes_and_resumed_configs(tmp_path):
    from noisegame_cli.commands.fgsm import TrainConfig
    from noisegame_cli.config import load_config_file, load_saved_config, resolve_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("input-range: 0-1\nmean: [0.2, 0.3, 0.4]\nstd: 0.3,0.25,0.2\nmodel-path: app:MobileNetV2\n")
    config = resolve_config(TrainConfig, load_config_file(recipe), {"epochs": 2})
    assert config.input_scale.flags == "--input-range 0-1 --mean 0.2,0.3,0.4 --std 0.3,0.25,0.2"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    (run / "status.json").write_text(json.dumps({"status": "interrupted"}))
    resumed = resolve_config(TrainConfig, {}, load_saved_config(run, "fgsm-train"))
    assert resumed.input_scale == config.input_scale and resumed.model_path == "app:MobileNetV2"
