"""Models of every kind: .keras, legacy .h5, SavedModel folders, run directories, and app:NAME networks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from noisegame_cli.attacks import fgsm
from noisegame_cli.data import load_dataset
from noisegame_cli.errors import UserError
from noisegame_cli.models import build_model, check_model_name, copy_classifier, load_checked, load_classifier, model_label


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    return build_model("tiny_cnn", (32, 32, 3), 10)


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits").test.arrays(6)[0].astype(np.float32)


def test_keras_h5_and_run_directory_load_the_same_model(small_model, images, tmp_path):
    expected = small_model.predict(images, verbose=0)
    (tmp_path / "run").mkdir()
    small_model.save(tmp_path / "run" / "model.keras")
    small_model.save(tmp_path / "legacy.h5")
    for path in (tmp_path / "run", tmp_path / "run" / "model.keras", tmp_path / "legacy.h5"):
        np.testing.assert_allclose(load_classifier(path).predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert model_label(tmp_path / "run") == "run" and model_label(tmp_path / "legacy.h5") == "legacy"


def test_a_saved_model_folder_is_evaluated_and_attacked_but_not_fine_tuned(small_model, images, tmp_path):
    small_model.export(tmp_path / "exported", verbose=False)
    loaded = load_classifier(tmp_path / "exported")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), small_model.predict(images, verbose=0), rtol=1e-5, atol=1e-5)
    labels = np.arange(6) % 10
    adversarial = fgsm(loaded, images, labels, 8 / 255).numpy()  # gradients flow through the SavedModel
    np.testing.assert_allclose(adversarial, fgsm(small_model, images, labels, 8 / 255).numpy(), atol=1e-3)
    with pytest.raises(UserError, match="SavedModel: it can be evaluated and attacked, but not fine-tuned"):
        copy_classifier(loaded)


def test_models_that_do_not_fit_the_data_are_refused(tmp_path):
    build_model("tiny_cnn", (32, 32, 3), 4).save(tmp_path / "four.keras")
    with pytest.raises(UserError, match="predicts 4 classes but the dataset has 10"):
        load_checked(tmp_path / "four.keras", load_dataset("digits"))
    with pytest.raises(UserError, match="no saved model at"):
        load_classifier(tmp_path)
    with pytest.raises(UserError, match="unknown application 'AlexNet'"):
        check_model_name("app:AlexNet")


def test_an_application_saved_to_a_weights_file_predicts_the_same_through_weights(images, tmp_path):
    keras.utils.set_random_seed(1)
    model = build_model("app:MobileNetV3Small", (32, 32, 3), 10)
    assert model.inputs[0].shape[1:] == (32, 32, 3) and model.outputs[0].shape[-1] == 10
    path = tmp_path / "mobilenet.weights.h5"
    model.save_weights(path)
    keras.utils.set_random_seed(2)  # other random weights, replaced by the file's
    again = build_model("app:MobileNetV3Small", (32, 32, 3), 10, weights=str(path))
    np.testing.assert_allclose(again.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-4, atol=1e-4)
    model.save(tmp_path / "app.keras")  # its preprocessing layer travels with it
    np.testing.assert_allclose(load_classifier(tmp_path / "app.keras").predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_grey_images_reach_an_application_as_three_channels():
    model = build_model("app:MobileNetV3Small", (28, 28, 1), 10)
    assert model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0).shape == (2, 10)


def test_imagenet_weights_are_not_downloaded_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not in the Keras cache .* pass --download"):
        build_model("app:MobileNetV3Small", (32, 32, 3), 10, weights="imagenet")
