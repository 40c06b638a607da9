"""Loaders of the array releases (CIFAR-100, MNIST, Fashion-MNIST, MNIST-C, SVHN, STL-10, CIFAR-100-C)
on fabricated files in their exact formats: good files, and at least one bad file per loader."""

from __future__ import annotations

import gzip
import pickle
import re

import numpy as np
import pytest

import fabricate
from noisegame_cli.data import load_corrupted_dataset, load_dataset
from noisegame_cli.data.cifar10c import write_corruption_file, write_labels_file
from noisegame_cli.data.sources import RowFile, grey_array
from noisegame_cli.errors import UserError


def raises(message: str):
    return pytest.raises(UserError, match=re.escape(message))


# --- CIFAR-100 ------------------------------------------------------------------------------


@pytest.mark.parametrize("labels, classes", [(None, 100), ("fine", 100), ("coarse", 20)])
def test_cifar100_fine_or_coarse(tmp_path, labels, classes):
    written = fabricate.write_cifar100_folder(tmp_path, train=20, test=10)
    data = load_dataset("cifar100", tmp_path, labels=labels)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 10)
    assert data.num_classes == classes and data.image_shape == (32, 32, 3)
    expected = written["coarse"] if labels == "coarse" else written["fine"]
    assert np.array_equal(np.concatenate([data.train.labels, data.val.labels]), expected)
    assert data.class_names[3] == ("coarse3" if labels == "coarse" else "fine3")
    assert np.array_equal(data.val.images[-1], written["data"][-1].reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar100_archive_and_keras_3_cache(tmp_path, monkeypatch):
    archive = fabricate.write_cifar100_archive(tmp_path / "given")
    assert len(load_dataset("cifar100", archive.parent).test) == 10
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    with raises("CIFAR-100 is not in the Keras cache"):
        load_dataset("cifar100")
    fabricate.write_cifar100_folder(tmp_path / "home" / "datasets" / "cifar-100-python-target")
    assert len(load_dataset("cifar100").train) == 18


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: (folder / "meta").unlink(), "CIFAR-100 file missing"),
        (lambda folder: (folder / "test").write_bytes(fabricate.cifar100_batch(4, 0, fine=[0, 1, 2, 100])[0]), "labels must lie in 0..99"),
        (lambda folder: (folder / "train").write_bytes(b"not a pickle"), "truncated or not a CIFAR-100 pickle batch"),
        (lambda folder: (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"a"] * 3, b"coarse_label_names": [b"b"] * 20})), "3 fine_label_names, expected 100"),
    ],
)
def test_cifar100_bad_files(tmp_path, damage, message):
    damage(fabricate.write_cifar100_folder(tmp_path)["folder"])
    with raises(message):
        load_dataset("cifar100", tmp_path)


def test_labels_option_is_checked(tmp_path):
    fabricate.write_cifar100_folder(tmp_path)
    with raises("--labels for cifar100 must be fine or coarse, got 'medium'"):
        load_dataset("cifar100", tmp_path, labels="medium")
    with raises("dataset digits has one label set; --labels applies to cifar100"):
        load_dataset("digits", labels="coarse")


def test_cifar100c_reads_the_cifar10c_layout_with_100_classes(tmp_path):
    write_corruption_file(tmp_path, "snow", [np.full((4, 32, 32, 3), s, np.uint8) for s in range(1, 6)])
    write_labels_file(tmp_path, np.array([0, 42, 99, 7]))
    data = load_corrupted_dataset("cifar100-c", tmp_path)
    assert data.corruptions == ("snow",) and data.num_classes == 100 and data.clean_source == "cifar100"
    assert list(data.load("snow", 3).labels) == [0, 42, 99, 7]
    write_labels_file(tmp_path, np.array([0, 42, 100, 7]))
    with raises("labels must lie in 0..99"):
        load_corrupted_dataset("cifar100-c", tmp_path)


# --- MNIST, Fashion-MNIST --------------------------------------------------------------------


def test_mnist_npz_in_data_dir_and_keras_cache(tmp_path, monkeypatch):
    arrays = fabricate.write_mnist_npz(tmp_path / "given" / "mnist.npz")
    data = load_dataset("mnist", tmp_path / "given")
    assert data.image_shape == (28, 28, 1) and (len(data.train), len(data.val), len(data.test)) == (18, 2, 10)
    assert np.array_equal(data.test.images[..., 0], arrays["x_test"]) and np.array_equal(data.test.labels, arrays["y_test"])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    with raises("MNIST is not in the Keras cache"):
        load_dataset("mnist")
    fabricate.write_mnist_npz(tmp_path / "home" / "datasets" / "mnist.npz")
    assert np.array_equal(load_dataset("mnist").val.images[..., 0], arrays["x_train"][18:])


def test_mnist_from_the_original_idx_files(tmp_path):
    arrays = fabricate.write_idx_files(tmp_path)
    data = load_dataset("mnist", tmp_path)
    assert np.array_equal(data.test.images[..., 0], arrays["test"][0]) and np.array_equal(data.test.labels, arrays["test"][1])


def test_grey_datasets_convert_to_three_channels_and_resize(tmp_path):
    arrays = fabricate.write_mnist_npz(tmp_path / "mnist.npz")
    colour = load_dataset("mnist", tmp_path, channels=3, limit=4)
    assert colour.image_shape == (28, 28, 3) and len(colour.test) == 4
    assert np.array_equal(colour.test.images, np.repeat(arrays["x_test"][:4, ..., None], 3, axis=-1))
    larger = load_dataset("mnist", tmp_path, image_size=(32, 30))
    assert larger.image_shape == (32, 30, 1) and larger.test.images.dtype == np.uint8
    assert abs(float(larger.test.images.mean()) - float(arrays["x_test"].mean())) < 3  # resized, not replaced


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": np.zeros(4), "x_test": np.zeros((2, 28, 28), np.uint8)}, "has no y_test array"),
        ({"x_train": np.zeros((4, 28, 28), np.float32), "y_train": np.zeros(4, int), "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.zeros(2, int)}, "images must be uint8 [N, 28, 28]"),
        ({"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": np.array([0, 1, 2, 12]), "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.zeros(2, int)}, "y_train: labels must lie in 0..9"),
        ({"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": np.zeros(3, int), "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.zeros(2, int)}, "4 images but y_train has 3 labels"),
    ],
)
def test_mnist_bad_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "mnist.npz", **arrays)
    with raises(message):
        load_dataset("mnist", tmp_path)


def test_mnist_truncated_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    fabricate.write_mnist_npz(path)
    path.write_bytes(path.read_bytes()[:300])
    with raises("is truncated or not an .npz archive"):
        load_dataset("mnist", tmp_path)


def test_fashion_mnist_in_the_keras_layout(tmp_path, monkeypatch):
    arrays = fabricate.write_idx_files(tmp_path / "datasets" / "fashion-mnist")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    data = load_dataset("fashion_mnist")
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert np.array_equal(data.train.images[..., 0], arrays["train"][0][:18])
    assert np.array_equal(load_dataset("fashion_mnist", tmp_path / "datasets").test.labels, arrays["test"][1])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[:2] + b"\x09" + raw[3:], "is not an IDX file of unsigned bytes with 3 dimension(s)"),
        (lambda raw: raw[:-28], "header says 10x28x28 = 7840 values, the file holds 7812"),
    ],
)
def test_fashion_mnist_bad_idx(tmp_path, damage, message):
    fabricate.write_idx_files(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(damage(gzip.decompress(path.read_bytes()))))
    with raises(message) as error:
        load_dataset("fashion_mnist", tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(error.value)


def test_fashion_mnist_label_count_must_match(tmp_path):
    fabricate.write_idx_files(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(fabricate.idx_bytes(np.zeros(19, np.uint8))))
    with raises("19 labels but train-images-idx3-ubyte.gz has 20 images"):
        load_dataset("fashion_mnist", tmp_path)


# --- MNIST-C ---------------------------------------------------------------------------------


def test_mnist_c_is_one_severity_of_its_own_corruptions(tmp_path):
    written = fabricate.write_mnist_c(tmp_path, corruptions=("zigzag", "shot_noise"))
    data = load_corrupted_dataset("mnist-c", tmp_path)
    assert data.corruptions == ("shot_noise", "zigzag")  # MNIST-C's order, not the folder listing's
    assert data.severities == (1,) and data.parameters == "mnist-c" and data.image_shape == (28, 28, 1)
    split = data.load("zigzag", 1, limit=5)
    assert isinstance(split.images, RowFile) and np.array_equal(np.asarray(split.images), written["zigzag"][0][:5])
    assert np.array_equal(np.asarray(data.clean.images), written["identity"][0])
    with raises("mnist-c has no severity 3; it has 1"):
        data.load("zigzag", 3)
    colour = load_corrupted_dataset("mnist-c", tmp_path / "mnist_c", channels=3)
    assert colour.image_shape == (28, 28, 3) and colour.load("shot_noise", 1).image_shape == (28, 28, 3)


def test_mnist_c_without_identity_points_at_mnist(tmp_path):
    fabricate.write_mnist_c(tmp_path, clean=False)
    data = load_corrupted_dataset("mnist-c", tmp_path)
    assert data.clean is None and data.clean_source == "mnist"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: np.save(folder / "test_images.npy", np.zeros((12, 28, 28), np.uint8)), "images must be uint8 [N, 28, 28, 1]"),
        (lambda folder: np.save(folder / "test_labels.npy", np.zeros(11, np.int64)), "11 labels but test_images.npy has 12 images"),
        (lambda folder: np.save(folder / "test_labels.npy", np.full(12, 10)), "labels must lie in 0..9"),
        (lambda folder: (folder / "test_labels.npy").unlink(), "MNIST-C file missing"),
    ],
)
def test_mnist_c_bad_files(tmp_path, damage, message):
    fabricate.write_mnist_c(tmp_path, corruptions=("shot_noise",), clean=False)
    damage(tmp_path / "mnist_c" / "shot_noise")
    with raises(message):
        load_corrupted_dataset("mnist-c", tmp_path).load("shot_noise", 1)


def test_mnist_c_folder_without_corruptions(tmp_path):
    (tmp_path / "mnist_c" / "not_a_corruption").mkdir(parents=True)
    with raises("holds none of MNIST-C's corruptions"):
        load_corrupted_dataset("mnist-c", tmp_path)


# --- SVHN ------------------------------------------------------------------------------------


def test_svhn_label_10_is_digit_0_and_extra_only_when_asked(tmp_path):
    written = fabricate.write_svhn(tmp_path / "svhn", train=20, test=10, extra=5)
    data = load_dataset("svhn", tmp_path)
    assert data.image_shape == (32, 32, 3) and (len(data.train), len(data.val), len(data.test)) == (18, 2, 10)
    assert np.array_equal(data.test.images, written["test"][0]) and np.array_equal(data.test.labels, written["test"][1])
    assert data.test.labels[0] == 0 and data.class_names[0] == "0"
    with_extra = load_dataset("svhn:extra", tmp_path)
    assert len(with_extra.train) + len(with_extra.val) == 25
    assert np.array_equal(with_extra.val.images[-1], written["extra"][0][-1])


@pytest.mark.parametrize(
    "contents, message",
    [
        ({"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.array([[1], [2], [11], [3]], np.uint8)}, "labels must lie in 1..10"),
        ({"X": np.zeros((4, 32, 32, 3), np.uint8), "y": np.ones((4, 1), np.uint8)}, "X must be uint8 [32, 32, 3, N]"),
        ({"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.ones((3, 1), np.uint8)}, "4 images but 3 labels"),
        ({"images": np.zeros((32, 32, 3, 4), np.uint8)}, "has no X and y arrays"),
    ],
)
def test_svhn_bad_files(tmp_path, contents, message):
    import scipy.io

    fabricate.write_svhn(tmp_path)
    scipy.io.savemat(tmp_path / "test_32x32.mat", contents)
    with raises(message) as error:
        load_dataset("svhn", tmp_path)
    assert "test_32x32.mat" in str(error.value)


def test_svhn_not_a_mat_file(tmp_path):
    fabricate.write_svhn(tmp_path)
    (tmp_path / "train_32x32.mat").write_bytes(b"\x00" * 300)
    with raises("is truncated or not a MATLAB file"):
        load_dataset("svhn", tmp_path)
    with raises("svhn takes only the argument extra"):
        load_dataset("svhn:more", tmp_path)


# --- STL-10 ----------------------------------------------------------------------------------


def test_stl10_column_major_bytes_become_hwc_memory_mapped(tmp_path):
    written = fabricate.write_stl10(tmp_path, train=20, test=10)
    data = load_dataset("stl10", tmp_path)
    assert isinstance(data.test.images, np.memmap) and data.image_shape == (96, 96, 3)
    assert data.class_names[2] == "car" and (len(data.train), len(data.val)) == (18, 2)
    images, labels = data.test.arrays()
    assert np.array_equal(images, written["test"][0]) and np.array_equal(labels, written["test"][1])
    streamed = np.concatenate([x.numpy() for x, _ in data.val.batches(1)])
    assert np.array_equal(streamed, written["train"][0][18:])  # the memmap read batch by batch


def test_stl10_grey_conversion_matches_in_memory_arithmetic(tmp_path):
    written = fabricate.write_stl10(tmp_path, train=10, test=4)
    grey = load_dataset("stl10", tmp_path, channels=1)
    assert grey.image_shape == (96, 96, 1) and not isinstance(grey.test.images, np.memmap)
    assert np.array_equal(grey.test.images, grey_array(written["test"][0]))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: (folder / "test_X.bin").write_bytes(b"\x00" * 27649), "27649 bytes is not a whole number of 3x96x96 images"),
        (lambda folder: (folder / "test_y.bin").write_bytes(bytes([1, 2, 3])), "3 labels but test_X.bin holds 10 images"),
        (lambda folder: (folder / "test_y.bin").write_bytes(bytes([0] * 10)), "labels must lie in 1..10"),
        (lambda folder: (folder / "class_names.txt").write_text("a\nb\n"), "2 class names, expected 10"),
        (lambda folder: (folder / "train_y.bin").unlink(), "STL-10 file missing"),
    ],
)
def test_stl10_bad_files(tmp_path, damage, message):
    fabricate.write_stl10(tmp_path)
    damage(tmp_path / "stl10_binary")
    with raises(message):
        load_dataset("stl10", tmp_path)


def test_svhn_download_fetches_the_files_into_the_keras_cache(tmp_path, monkeypatch):
    from noisegame_cli.data import svhn

    written = fabricate.write_svhn(tmp_path / "server", train=10, test=4)
    monkeypatch.setattr(svhn, "SVHN_URL", (tmp_path / "server").as_uri() + "/")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    data = load_dataset("svhn", download=True)
    assert (tmp_path / "home" / "datasets" / "svhn" / "test_32x32.mat").is_file()
    assert np.array_equal(data.test.images, written["test"][0])
    assert len(load_dataset("svhn").train) == 9  # from the cache now, no download asked
