"""The style-transfer library: losses against hand computations, extractors, layer choice, the optimisation loop."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from noisegame_cli import style
from noisegame_cli.models import extractors
from noisegame_cli.errors import UserError
from noisegame_cli.models import build_model


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return build_model("tiny_cnn", (32, 32, 3), 10)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    style_image = rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)  # another size on purpose
    return content, style_image


# --- losses -----------------------------------------------------------------------------------


def test_gram_matrix_by_hand():
    # two positions with features (1, 2) and (3, 4): F^T F / 2
    features = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_allclose(style.gram_matrix(features).numpy(), [[[5.0, 7.0], [7.0, 10.0]]])


def test_gram_matrix_is_per_image_and_size_independent():
    one = np.random.default_rng(1).normal(size=(1, 3, 3, 4)).astype(np.float32)
    tiled = np.tile(one, (2, 2, 2, 1))  # the same statistics over four times the positions, twice
    np.testing.assert_allclose(style.gram_matrix(tiled).numpy(), np.concatenate([style.gram_matrix(one)] * 2), rtol=1e-5)


def test_style_loss_by_hand():
    features = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])
    # Gram [[5, 7], [7, 10]] against zeros: (25 + 49 + 49 + 100) / (4 * 2^2)
    assert style.style_loss(tf.zeros((1, 2, 2)), features).numpy() == pytest.approx(223 / 16)


def test_style_loss_equals_gatys_formula_on_unnormalised_grams():
    rng = np.random.default_rng(2)
    generated, target = rng.normal(size=(2, 1, 4, 5, 3)).astype(np.float32)
    positions, channels = 4 * 5, 3
    f_gen, f_target = generated.reshape(positions, channels), target.reshape(positions, channels)
    gatys = np.sum((f_gen.T @ f_gen - f_target.T @ f_target) ** 2) / (4 * channels**2 * positions**2)
    loss = style.style_loss(style.gram_matrix(target), generated)
    assert loss.numpy() == pytest.approx(gatys, rel=1e-5)


def test_content_loss_by_hand():
    target = tf.constant([[[[1.0, 2.0]]]])
    features = tf.constant([[[[4.0, -2.0]]]])
    assert style.content_loss(target, features).numpy() == pytest.approx((9 + 16) / 2)


def test_total_variation_by_hand():
    # 0..1 scale: [[0, 1], [1, 1]] has one horizontal and one vertical jump of 1 over 4 values
    image = tf.constant([[[[0.0], [255.0]], [[255.0], [255.0]]]])
    assert style.total_variation_loss(image).numpy() == pytest.approx(2 / 4)
    assert style.total_variation_loss(tf.fill((1, 3, 3, 3), 7.0)).numpy() == 0.0


# --- extractors and layer choice --------------------------------------------------------------


def test_registered_model_layers_are_its_stages(tiny_model):
    extractor = extractors.build_extractor(tiny_model)
    assert extractor.style_layers == ("stage1", "stage2")
    assert extractor.content_layer == "stage1"  # the last stage but one


def test_deeper_registered_model_takes_content_from_the_last_stage_but_one():
    extractor = extractors.saved_model_extractor(build_model("resnet20", (32, 32, 3), 10))
    assert extractor.style_layers == ("stage1", "stage2", "stage3")
    assert extractor.content_layer == "stage2"


def test_layers_can_be_given(tiny_model):
    extractor = extractors.build_extractor(tiny_model, style_layers=["conv1_relu"], content_layer="stage2")
    assert extractor.style_layers == ("conv1_relu",)
    features = extractor.model(np.zeros((1, 32, 32, 3), np.float32))
    assert set(features) == {"conv1_relu", "stage2"}


def test_unknown_layer_lists_the_choices(tiny_model):
    with pytest.raises(UserError, match=r"no feature layer 'relu4_2'.*stage1.*stage2"):
        extractors.build_extractor(tiny_model, content_layer="relu4_2")
    with pytest.raises(UserError, match="no feature layer 'logits'"):  # exists, but is no feature map
        extractors.build_extractor(tiny_model, style_layers=["logits"])


def test_model_without_stages_asks_for_layers():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(features)))
    with pytest.raises(UserError, match="no layers named stage1.*features"):
        extractors.build_extractor(model)
    assert extractors.build_extractor(model, style_layers=["features"], content_layer="features").content_layer == "features"


def test_saved_model_runs_at_any_size(tiny_model, tmp_path):
    run_dir = tmp_path / "20260101-120000-teacher-run"
    run_dir.mkdir()
    tiny_model.save(run_dir / "model.keras")
    extractor = extractors.build_extractor(str(run_dir))
    assert extractor.name == "teacher-run"  # the run directory's name without its timestamp
    images = np.random.default_rng(3).uniform(0, 255, (1, 48, 40, 3)).astype(np.float32)
    assert extractor.model(images)["stage1"].shape == (1, 24, 20, 8)
    # at the model's own size the features are the model's own
    own = keras.Model(tiny_model.input, tiny_model.get_layer("stage2").output)(images[:, :32, :32])
    np.testing.assert_allclose(extractor.model(images[:, :32, :32])["stage2"], own, rtol=1e-4, atol=1e-5)


def test_fixed_size_model_sees_images_resized_to_its_input():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Identity(name="stage1")(keras.layers.Conv2D(4, 3, padding="same")(x))
    x = keras.layers.Identity(name="stage2")(keras.layers.Conv2D(4, 3, strides=2, padding="same")(x))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))  # Flatten fixes the size
    extractor = extractors.build_extractor(model)
    images = np.random.default_rng(5).uniform(0, 255, (1, 40, 24, 3)).astype(np.float32)
    assert extractor.model(images)["stage1"].shape == (1, 16, 16, 4)
    resized = tf.image.resize(images, (16, 16))
    own = keras.Model(model.input, model.get_layer("stage2").output)(resized)
    np.testing.assert_allclose(extractor.model(images)["stage2"], own, rtol=1e-4, atol=1e-4)


def test_vgg19_uses_average_pooling_and_gatys_layers():
    extractor = extractors.build_extractor("vgg19", weights="none")
    assert extractor.style_layers == tuple(f"block{i}_conv1" for i in range(1, 6))
    assert extractor.content_layer == "block4_conv2"
    features_model = extractor.model.layers[-1]
    pools = [type(layer).__name__ for layer in features_model.layers if "pool" in layer.name]
    assert pools and set(pools) == {"AveragePooling2D"}
    features = extractor.model(np.zeros((1, 32, 48, 3), np.float32))
    assert features["block5_conv1"].shape == (1, 2, 3, 512)


def test_resnet50_layers_are_the_stage_outputs():
    extractor = extractors.build_extractor("resnet50", weights="none", content_layer="conv3_block4_out")
    assert extractor.style_layers == ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    assert extractor.content_layer == "conv3_block4_out"
    assert extractors.ARCHITECTURES["resnet50"].content_layer == "conv4_block6_out"


def test_unavailable_imagenet_weights_say_so():
    if (Path.home() / ".keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5").is_file():
        pytest.skip("this machine's Keras cache holds VGG-19's ImageNet weights")
    with pytest.raises(UserError, match="ImageNet weights for VGG19 are not in the Keras cache.*--download"):
        extractors.build_extractor("vgg19")


def test_bad_weights_files(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        extractors.build_extractor("vgg19", weights=str(tmp_path / "missing.h5"))
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_text("not weights")
    with pytest.raises(UserError, match="cannot build VGG19"):
        extractors.build_extractor("vgg19", weights=str(garbage))


def test_unknown_extractor():
    with pytest.raises(UserError, match="unknown extractor 'alexnet'.*vgg19, resnet50, app:NAME"):
        extractors.build_extractor("alexnet")


# --- optimisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("init", ["noise", "content"])
def test_optimisation_lowers_the_loss(tiny_model, images, optimizer, init):
    snapshots = []
    result = style.stylise(
        extractors.build_extractor(tiny_model),
        *images,
        weights=style.LossWeights(content=1.0, style=1.0, tv=0.1),
        optimizer=optimizer,
        init=init,
        iterations=6,
        learning_rate=5.0,
        save_every=3,
        on_snapshot=lambda step, image: snapshots.append((step, image.dtype, image.shape)),
        verbose=0,
    )
    totals = [row["total"] for row in result.history]
    assert [row["step"] for row in result.history] == list(range(7))
    assert totals[-1] < totals[0]
    for row in result.history:
        assert row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"], rel=1e-5)
    assert result.image.dtype == np.uint8 and result.image.shape == images[0].shape
    assert snapshots == [(step, np.uint8, images[0].shape) for step in (0, 3, 6)]


def test_normalised_losses_do_not_depend_on_the_feature_scale(tiny_model, images):
    extractor = extractors.build_extractor(tiny_model)
    inputs = keras.Input((None, None, 3))
    louder = extractors.FeatureExtractor(
        "louder",
        keras.Model(inputs, {k: v * 10.0 for k, v in extractor.model(inputs).items()}),
        extractor.style_layers,
        extractor.content_layer,
    )
    image = tf.constant(style.initial_image(images[0], "noise")[None])
    for normalize, content_ratio, style_ratio in ((True, 1.0, 1.0), (False, 100.0, 1e4)):
        weights = style.LossWeights(normalize=normalize)
        quiet, loud = (style.make_loss(e, *images, weights)(image) for e in (extractor, louder))
        assert loud["content"].numpy() == pytest.approx(content_ratio * quiet["content"].numpy(), rel=1e-3)
        assert loud["style"].numpy() == pytest.approx(style_ratio * quiet["style"].numpy(), rel=1e-3)


def test_content_init_starts_with_zero_content_loss(tiny_model, images):
    result = style.stylise(extractors.build_extractor(tiny_model), *images, init="content", iterations=1, verbose=0)
    assert result.history[0]["content"] == pytest.approx(0.0, abs=1e-9)
    assert result.history[0]["style"] > 0


def test_noise_init_follows_the_seed(images):
    first, again, other = (style.initial_image(images[0], "noise", seed) for seed in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert 0 <= first.min() and first.max() <= 255


@pytest.mark.parametrize(
    "kwargs, message",
    [({"optimizer": "sgd"}, "unknown optimizer"), ({"init": "zeros"}, "unknown init"), ({"iterations": 0}, "iterations")],
)
def test_bad_optimisation_settings(tiny_model, images, kwargs, message):
    with pytest.raises(UserError, match=message):
        style.stylise(extractors.build_extractor(tiny_model), *images, verbose=0, **kwargs)


def test_average_pooling_copy_keeps_the_weights():
    inputs = keras.Input((8, 8, 2))
    first = keras.layers.Conv2D(3, 3, padding="same", name="first")
    second = keras.layers.Conv2D(2, 3, padding="same", name="second")
    chain = keras.Model(inputs, second(keras.layers.MaxPooling2D(name="pool")(first(inputs))))
    copy = extractors._with_average_pooling(chain)
    assert [type(layer).__name__ for layer in copy.layers[1:]] == ["Conv2D", "AveragePooling2D", "Conv2D"]
    x = np.random.default_rng(4).normal(size=(1, 8, 8, 2)).astype(np.float32)
    expected = second(keras.layers.AveragePooling2D(2)(first(x)))
    np.testing.assert_allclose(copy(x), expected, rtol=1e-5, atol=1e-6)
    assert copy.get_layer("second") is not second  # a copy, so its output belongs to the new graph


def test_a_saved_sequential_classifier_is_an_extractor(tmp_path):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3, name="stage1"),
                              keras.layers.Conv2D(4, 3, strides=2, name="stage2"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10)], name="sequential_cnn")  # fmt: skip
    model.save(tmp_path / "model.keras")
    extractor = extractors.saved_model_extractor(tmp_path / "model.keras")  # a reloaded Sequential has inputs but no .input
    features = extractor.model(np.zeros((1, 40, 40, 3), np.float32))
    assert extractor.style_layers == ("stage1", "stage2") and features["stage2"].shape == (1, 18, 18, 4)
