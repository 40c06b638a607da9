"""Every registered model: output shape, logits, any input size and class count; saved-model checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from noisegame_cli.errors import UserError
from noisegame_cli.models import MODELS, build_model, check_fits, load_classifier, register

LIGHT = ("tiny_cnn", "compact_cnn", "small_cnn", "resnet20")


@pytest.mark.parametrize("name", list(MODELS))
def test_registered_model_returns_logits_for_its_input(name):
    model = build_model(name, (32, 32, 3), 7)
    images = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3)).astype(np.float32)
    logits = model(images, training=False).numpy()
    assert logits.shape == (2, 7)
    assert not np.allclose(logits.sum(axis=1), 1.0)  # raw scores, not probabilities
    assert model.layers[1].name in ("rescale", "resize")  # the model scales 0..255 itself


@pytest.mark.parametrize("name", LIGHT)
@pytest.mark.parametrize("shape, classes", [((20, 28, 1), 3), ((48, 40, 3), 12)])
def test_light_models_take_any_size_and_class_count(name, shape, classes):
    model = build_model(name, shape, classes)
    assert model(np.zeros((1, *shape), np.float32)).shape == (1, classes)
    assert {"stage1", "stage2"} <= {layer.name for layer in model.layers}


def test_resnet20_has_about_270k_parameters():
    assert 265_000 < build_model("resnet20", (32, 32, 3), 10).count_params() < 280_000


def test_compact_cnn_is_small_cnn_at_half_the_width():
    small, compact = (build_model(name, (32, 32, 3), 10) for name in ("small_cnn", "compact_cnn"))
    assert [layer.name for layer in compact.layers] == [layer.name for layer in small.layers]
    assert compact.get_layer("conv3b").filters == small.get_layer("conv3b").filters // 2 == 64
    assert 60_000 < compact.count_params() < 0.3 * small.count_params()


def test_heuristic_options_change_the_graph():
    plain = build_model("small_cnn", (32, 32, 3), 10)
    variant = build_model("small_cnn", (32, 32, 3), 10, dropout=0.3, batch_norm=False)
    kinds = lambda m: {type(layer).__name__ for layer in m.layers}  # noqa: E731
    assert "BatchNormalization" in kinds(plain) and "BatchNormalization" not in kinds(variant)
    assert "Dropout" in kinds(variant) and "Dropout" not in kinds(plain)


def test_registry_rejects_unknown_and_duplicate_names():
    with pytest.raises(UserError, match="unknown model 'nope'"):
        build_model("nope", (32, 32, 3), 10)
    with pytest.raises(ValueError, match="already registered"):
        register("tiny_cnn")(lambda *a, **k: None)


def test_saved_classifier_round_trip_and_fit_checks(tmp_path):
    model = build_model("tiny_cnn", (16, 16, 3), 4)
    model.save(tmp_path / "model.keras")
    loaded = load_classifier(tmp_path)  # a run directory works as well as the file
    x = np.ones((1, 16, 16, 3), np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5)
    check_fits(loaded, (16, 16, 3), 4)
    with pytest.raises(UserError, match="predicts 4 classes but the dataset has 10"):
        check_fits(loaded, (16, 16, 3), 10, what="teacher")
    with pytest.raises(UserError, match="takes images of shape"):
        check_fits(loaded, (32, 32, 3), 4)


def test_load_classifier_rejects_non_models(tmp_path):
    with pytest.raises(UserError, match="no saved model"):
        load_classifier(tmp_path / "missing.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable Keras model"):
        load_classifier(tmp_path / "junk.keras")
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Reshape((2, 2))(inputs)).save(tmp_path / "not_classifier.keras")
    with pytest.raises(UserError, match="not a classifier"):
        load_classifier(tmp_path / "not_classifier.keras")


def test_copy_classifier_is_an_independent_trainable_copy():
    from noisegame_cli.models import copy_classifier

    original = build_model("tiny_cnn", (16, 16, 3), 4)
    original.trainable = False
    copy = copy_classifier(original)
    x = np.ones((1, 16, 16, 3), np.float32)
    np.testing.assert_allclose(copy(x).numpy(), original(x).numpy(), rtol=1e-6)
    assert copy.trainable and not original.trainable
    copy.get_layer("logits").bias.assign(np.full((4,), 5.0, np.float32))
    assert not np.allclose(copy(x).numpy(), original(x).numpy())
