import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from noisegame_cli.errors import UserError
from noisegame_cli.frequency import first_conv2d, smooth_first_layer, smooth_kernels, smoothed_variants, split
from noisegame_cli.models import build_model


def random_images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def reference_low_pass(images: np.ndarray, radius: float) -> np.ndarray:
    """The same definition computed another way: the disc in the unshifted spectrum, via signed frequencies."""
    height, width = images.shape[-3:-1]
    rows = np.fft.fftfreq(height) * height
    cols = np.fft.fftfreq(width) * width
    mask = (np.hypot(rows[:, None], cols[None, :]) < radius)[:, :, None]
    spectrum = np.fft.fft2(images.astype(np.float64), axes=(-3, -2))
    return np.real(np.fft.ifft2(spectrum * mask, axes=(-3, -2)))


@pytest.mark.parametrize("shape", [(3, 32, 32, 3), (2, 7, 9, 1), (16, 12, 2)])
@pytest.mark.parametrize("radius", [0.5, 2, 4, 8])
def test_low_part_matches_the_definition_and_parts_add_up(shape, radius):
    images = random_images(shape)
    low, high = split(images, radius)
    assert low.dtype == tf.float32 and low.shape == images.shape and high.shape == images.shape
    np.testing.assert_allclose(low.numpy(), reference_low_pass(images, radius), atol=1e-3)
    np.testing.assert_allclose(low.numpy() + high.numpy(), images, atol=1e-3)


def test_high_part_is_not_trivial():
    low, high = split(random_images((2, 32, 32, 3)), 4)
    assert np.abs(high.numpy()).mean() > 10
    assert np.abs(low.numpy()).mean() > 10


def test_constant_image_is_all_low_frequency():
    images = np.full((2, 32, 32, 3), 137, dtype=np.uint8)
    low, high = split(images, 1)
    np.testing.assert_allclose(low.numpy(), 137.0, atol=1e-3)
    np.testing.assert_allclose(high.numpy(), 0.0, atol=1e-3)


@pytest.mark.parametrize("size", [(32, 32), (15, 20)])
def test_radius_beyond_the_half_diagonal_keeps_everything(size):
    images = random_images((2, *size, 3))
    radius = np.hypot(size[0] / 2, size[1] / 2) + 1
    low, high = split(images, radius)
    np.testing.assert_allclose(low.numpy(), images, atol=1e-3)
    np.testing.assert_allclose(high.numpy(), 0.0, atol=1e-3)


def test_radius_zero_keeps_nothing_low():
    images = random_images((1, 8, 8, 3))
    low, high = split(images, 0)
    np.testing.assert_allclose(low.numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(high.numpy(), images, atol=1e-4)


def test_split_inside_tf_data_matches_eager():
    images = random_images((6, 16, 16, 3))
    eager_low, eager_high = split(images, 3)
    per_image = tf.data.Dataset.from_tensor_slices(images).map(lambda x: split(x, 3.0))
    batched = tf.data.Dataset.from_tensor_slices(images).batch(4).map(lambda x: split(x, tf.constant(3.0)))
    for dataset in (per_image.batch(6), batched.unbatch().batch(6)):
        low, high = next(iter(dataset))
        np.testing.assert_allclose(low.numpy(), eager_low.numpy(), atol=1e-3)
        np.testing.assert_allclose(high.numpy(), eager_high.numpy(), atol=1e-3)


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_negative_radius_is_a_user_error(bad):
    with pytest.raises(UserError, match="radius"):
        split(random_images((1, 8, 8, 3)), bad)


def test_wrong_rank_is_a_user_error():
    with pytest.raises(UserError, match="shape"):
        split(np.zeros((8, 8)), 2)


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_smooth_kernels_matches_a_direct_convolution(rho, kernel_size):
    kernel = np.random.default_rng(1).normal(size=(kernel_size, kernel_size, 3, 4)).astype(np.float32)
    smoothed = smooth_kernels(kernel, rho)
    neighbourhood = np.array([[rho, rho, rho], [rho, 1.0, rho], [rho, rho, rho]])
    for i in range(kernel.shape[2]):
        for o in range(kernel.shape[3]):
            expected = scipy.signal.convolve2d(kernel[:, :, i, o], neighbourhood, mode="same", boundary="symm")
            np.testing.assert_allclose(smoothed[:, :, i, o], expected, rtol=1e-5, atol=1e-5)
    if rho == 0.0:
        np.testing.assert_array_equal(smoothed, kernel)


def test_normalized_smoothing_keeps_the_kernel_scale():
    constant = np.full((3, 3, 2, 2), 0.7, dtype=np.float32)
    np.testing.assert_allclose(smooth_kernels(constant, 0.5, normalize=True), constant, rtol=1e-6)
    np.testing.assert_allclose(smooth_kernels(constant, 0.5), constant * 5.0, rtol=1e-6)  # 1 + 8 * 0.5
    kernel = np.random.default_rng(2).normal(size=(5, 5, 1, 3)).astype(np.float32)
    np.testing.assert_allclose(smooth_kernels(kernel, 0.25, normalize=True), smooth_kernels(kernel, 0.25) / 3.0, rtol=1e-5)


def test_smooth_kernels_rejects_bad_input():
    with pytest.raises(UserError, match="rho"):
        smooth_kernels(np.zeros((3, 3, 1, 1)), -0.1)
    with pytest.raises(UserError, match="kernel"):
        smooth_kernels(np.zeros((3, 3)), 0.1)


def test_smooth_first_layer_changes_only_the_first_conv():
    model = build_model("tiny_cnn", (16, 16, 3), 4)
    smoothed = smooth_first_layer(model, 0.5)
    original_kernel = first_conv2d(model).kernel.numpy()
    np.testing.assert_allclose(first_conv2d(smoothed).kernel.numpy(), smooth_kernels(original_kernel, 0.5), rtol=1e-5)
    assert smoothed is not model
    np.testing.assert_array_equal(first_conv2d(model).kernel.numpy(), original_kernel)  # the original is untouched
    changed = [
        a.path for a, b in zip(model.weights, smoothed.weights) if not np.array_equal(a.numpy(), b.numpy())
    ]
    assert changed == [first_conv2d(model).kernel.path]
    images = random_images((2, 16, 16, 3))
    assert not np.allclose(model(images.astype(np.float32)), smoothed(images.astype(np.float32)))


def test_smoothed_variants_reuse_one_copy_with_each_rhos_kernel():
    model = build_model("tiny_cnn", (16, 16, 3), 4)
    original = first_conv2d(model).kernel.numpy()
    copies = set()
    for rho, smoothed in smoothed_variants(model, (0.0, 0.5, 1.0), normalize=True):
        copies.add(id(smoothed))
        np.testing.assert_allclose(first_conv2d(smoothed).kernel.numpy(), smooth_kernels(original, rho, normalize=True), rtol=1e-5)
    assert len(copies) == 1 and id(model) not in copies
    np.testing.assert_array_equal(first_conv2d(model).kernel.numpy(), original)


def test_smooth_first_layer_finds_a_conv_inside_a_nested_model():
    inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="inner_conv")], name="inner")
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(inner(keras.layers.Rescaling(1 / 255)(inputs))))
    model = keras.Model(inputs, outputs)
    assert first_conv2d(model).name == "inner_conv"
    smoothed = smooth_first_layer(model, 1.0)
    expected = smooth_kernels(first_conv2d(model).kernel.numpy(), 1.0)
    np.testing.assert_allclose(first_conv2d(smoothed).kernel.numpy(), expected, rtol=1e-5)


def test_model_without_conv_is_a_user_error():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3)], name="mlp")
    with pytest.raises(UserError, match="no Conv2D"):
        smooth_first_layer(model, 0.5)
