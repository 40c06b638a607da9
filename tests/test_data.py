"""Dataset loaders on real and fabricated files (good and bad), and the tf.data pipelines."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import cifar_batch_bytes, write_cifar_archive, write_cifar_folder
from noisegame_cli.data import Split, load_corrupted_dataset, load_dataset
from noisegame_cli.data.cifar10c import load_corrupted, write_corruption_file, write_labels_file
from noisegame_cli.data.sources import RowFile
from noisegame_cli.data.pipelines import augmentation, eval_pipeline, paired_pipeline, train_pipeline, with_mixup
from noisegame_cli.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_digits_is_the_fixed_stratified_split(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1257, 180, 360)
    assert digits.train.images.dtype == np.uint8 and digits.image_shape == (32, 32, 3)
    assert digits.num_classes == 10
    counts = np.bincount(digits.test.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # stratified: about 36 of each digit
    assert digits.train.images.max() == 255 and digits.train.images.min() == 0
    assert np.array_equal(load_dataset("digits").test.images, digits.test.images)  # independent of any seed


def test_limit_keeps_the_first_examples(digits):
    small = digits.limited(10)
    assert len(small.train) == len(small.val) == len(small.test) == 10
    assert np.array_equal(small.train.images, digits.train.images[:10])


def test_synthetic_any_shape_and_seeded():
    data = load_dataset("synthetic:20x24x1:4")
    assert data.image_shape == (20, 24, 1) and data.num_classes == 4
    again = load_dataset("synthetic:20x24x1:4")
    assert np.array_equal(data.train.images, again.train.images)
    # class-conditional: class means differ far more than noise would make them
    means = [data.train.images[data.train.labels == k].mean() for k in range(4)]
    assert max(means) - min(means) > 10


@pytest.mark.parametrize("make", [write_cifar_folder, write_cifar_archive])
def test_cifar10_from_folder_or_archive(tmp_path, make):
    make(tmp_path, per_batch=20)
    data = load_dataset("cifar10", tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 20)
    assert data.image_shape == (32, 32, 3) and data.train.images.dtype == np.uint8
    raw = pickle.loads(cifar_batch_bytes(20, 1))
    first = raw[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(data.train.images[0], first)  # channel-major rows become HWC
    assert data.train.labels[0] == raw[b"labels"][0]


def test_cifar10_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(UserError, match="--download"):
        load_dataset("cifar10")
    write_cifar_folder(tmp_path / "datasets")
    assert len(load_dataset("cifar10").test) == 20


def _corrupt_folder(folder, damage):
    target = folder / "cifar-10-batches-py" / "data_batch_3"
    damage(target)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.unlink(), "CIFAR-10 file missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:500]), "truncated or not a CIFAR-10 pickle batch"),
        (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4})), "must be uint8 [N, 3072]"),
        (lambda p: p.write_bytes(cifar_batch_bytes(4, 0, labels=[0, 1, 2, 12])), "labels must lie in 0..9"),
    ],
)
def test_cifar10_bad_files(tmp_path, damage, message):
    write_cifar_folder(tmp_path)
    _corrupt_folder(tmp_path, damage)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")) as error:
        load_dataset("cifar10", tmp_path)
    assert "data_batch_3" in str(error.value)


def test_cifar10_truncated_archive(tmp_path):
    archive = write_cifar_archive(tmp_path)
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(UserError, match="not a readable CIFAR-10 archive"):
        load_dataset("cifar10", tmp_path)


def _fabricate_cifar10c(folder, per_severity=6, size=8):
    blocks = [np.full((per_severity, size, size, 3), 10 * s, np.uint8) for s in range(1, 6)]
    write_corruption_file(folder, "fog", blocks)
    write_labels_file(folder, np.arange(per_severity) % 10)


def test_cifar10c_reads_one_severity_on_demand(tmp_path):
    _fabricate_cifar10c(tmp_path)
    split = load_corrupted(tmp_path, "fog", 4, num_classes=10)
    assert isinstance(split.images, RowFile) and split.images.shape == (6, 8, 8, 3)  # nothing read yet
    assert (np.asarray(split.images) == 40).all() and list(split.labels) == [0, 1, 2, 3, 4, 5]
    assert (np.asarray(split.images[2:4]) == 40).all() and split.images[2:4].shape == (2, 8, 8, 3)
    batches = [images.numpy() for images, _ in split.batches(4)]
    assert [len(b) for b in batches] == [4, 2] and all((b == 40).all() for b in batches)


def test_a_row_file_reads_the_rows_it_names_and_nothing_stays_mapped(tmp_path):
    array = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    np.save(tmp_path / "rows.npy", array)
    rows = RowFile.open(tmp_path / "rows.npy")
    np.testing.assert_array_equal(np.asarray(rows[1:4]), array[1:4])
    np.testing.assert_array_equal(rows[3], array[3])
    np.testing.assert_array_equal(np.asarray(rows[2:][1:]), array[3:])
    assert str(tmp_path / "rows.npy") not in Path("/proc/self/maps").read_text()
    with open(tmp_path / "rows.npy", "r+b") as file:  # the file loses its last row after it was opened
        file.truncate(file.seek(0, 2) - 6)
    with pytest.raises(UserError, match="is truncated"):
        np.asarray(rows[4:])


@pytest.mark.parametrize(
    "setup, call, message",
    [
        (lambda d: None, lambda d: load_corrupted(d, "snow", 1), "CIFAR-10-C file missing: .*snow.npy"),
        (lambda d: None, lambda d: load_corrupted(d, "fog", 6), "severity must be one of 1..5"),
        (lambda d: np.save(d / "fog.npy", np.zeros((30, 8, 8, 3), np.float32)), lambda d: load_corrupted(d, "fog", 1), "must be uint8"),
        (lambda d: np.save(d / "labels.npy", np.arange(12)), lambda d: load_corrupted(d, "fog", 1), "12 labels is not 5 severities"),
        (lambda d: np.save(d / "labels.npy", np.arange(35)), lambda d: load_corrupted(d, "fog", 1), "30 images but labels.npy has 35"),
        (lambda d: None, lambda d: load_corrupted(d, "fog", 1, num_classes=3), "labels must lie in 0..2"),
        (lambda d: (d / "fog.npy").write_bytes(b"\x93NUMPY garbage"), lambda d: load_corrupted(d, "fog", 1), "truncated or not a .npy"),
    ],
)
def test_cifar10c_bad_files(tmp_path, setup, call, message):
    _fabricate_cifar10c(tmp_path)
    setup(tmp_path)
    with pytest.raises(UserError, match=message):
        call(tmp_path)


# --- the registry ----------------------------------------------------------------------------

PUBLISHED = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "stl10", "tiny-imagenet", "imagenet", "folder", "tfds")
CORRUPTED = ("cifar10-c", "cifar100-c", "mnist-c", "tiny-imagenet-c", "imagenet-c")


def test_every_dataset_is_registered_with_a_one_line_layout():
    from noisegame_cli.data import DATASETS

    assert set(PUBLISHED + CORRUPTED) <= set(DATASETS)
    assert {name for name, entry in DATASETS.items() if entry.kind == "corrupted"} == set(CORRUPTED)
    for entry in DATASETS.values():
        assert entry.layout and "\n" not in entry.layout and len(entry.layout) < 200


@pytest.mark.parametrize(
    "spec, kind, message",
    [
        ("imagenet2", None, "unknown dataset 'imagenet2'; choose from digits, synthetic, cifar10"),
        ("imagenet-c", "images", "imagenet-c holds only corrupted test images"),
        ("imagenet", "corrupted", "imagenet is not a corrupted dataset; choose from cifar10-c, cifar100-c"),
        ("mnist:extra", None, "dataset mnist takes no argument"),
    ],
)
def test_registry_messages(spec, kind, message):
    from noisegame_cli.data import check_dataset

    with pytest.raises(UserError, match=re.escape(message)):
        check_dataset(spec, kind)


@pytest.mark.parametrize("spec, load", [("imagenet:full", load_dataset), ("imagenet-c:whole", load_corrupted_dataset)])
def test_the_imagenet_sets_take_only_partial_after_their_name(tmp_path, spec, load):
    name, _, word = spec.partition(":")
    with pytest.raises(UserError, match=re.escape(f"dataset {name} takes partial after its name ({name}:WORD), got {word!r}")):
        load(spec, tmp_path)


def test_options_are_checked_before_any_file_is_read(tmp_path):
    with pytest.raises(UserError, match="--channels must be 1 or 3, got 2"):
        load_dataset("imagenet", tmp_path / "nowhere", channels=2)
    with pytest.raises(UserError, match="--image-size must be two positive sizes"):
        load_dataset("digits", image_size=(0, 32))


def test_channels_and_image_size_apply_to_in_memory_splits(digits):
    small = load_dataset("digits", limit=5, channels=1, image_size=(16, 16))
    assert small.image_shape == (16, 16, 1) and small.test.images.dtype == np.uint8
    assert np.array_equal(load_dataset("digits", limit=5, channels=3).test.images, digits.test.images[:5])  # already colour


# --- pipelines -------------------------------------------------------------------------------


def _images(count=8, size=16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8), np.arange(count, dtype=np.int64) % 3


def test_eval_pipeline_keeps_order_and_values():
    images, labels = _images()
    batches = list(eval_pipeline(Split(images, labels), 3))
    assert [len(y) for _, y in batches] == [3, 3, 2]
    x = np.concatenate([b[0].numpy() for b in batches])
    assert x.dtype == np.float32 and np.array_equal(x, images.astype(np.float32))


@pytest.mark.parametrize("kind", ["flip_crop", "crop", "resize_crop", "none"])
def test_train_pipeline_shapes_and_seeded_shuffle(kind):
    images, labels = _images()
    first = [y.numpy() for _, y in train_pipeline(Split(images, labels), 4, augment=kind, seed=1)]
    second = [y.numpy() for _, y in train_pipeline(Split(images, labels), 4, augment=kind, seed=1)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    for x, _ in train_pipeline(Split(images, labels), 4, augment=kind, seed=1):
        assert x.shape == (4, 16, 16, 3) and x.dtype == tf.float32
        assert float(tf.reduce_min(x)) >= 0 and float(tf.reduce_max(x)) <= 255


def test_crop_augmentation_moves_pixels_eagerly_and_inside_tf_data():
    images, labels = _images(count=16)
    layer = augmentation("crop", (16, 16, 3), seed=0)
    eager = layer(images.astype(np.float32), training=True).numpy()
    assert eager.shape == images.shape and not np.array_equal(eager, images)
    in_graph = np.concatenate([x.numpy() for x, _ in train_pipeline(Split(images, labels), 16, augment="crop", shuffle=False)])
    assert in_graph.shape == images.shape and not np.array_equal(in_graph, images)
    # a padded crop only shifts: every output row is a (partly zero) shifted row of its input
    assert np.isclose(in_graph.sum(axis=(1, 2, 3)), images.astype(float).sum(axis=(1, 2, 3)), rtol=0.6).all()


def test_paired_pipeline_keeps_views_aligned():
    images, labels = _images(count=10)
    batches = paired_pipeline(Split(images, labels), 4, lambda x: x + 1.0, augment="flip_crop", seed=2)
    seen = []
    for (clean, noisy), y in batches:
        np.testing.assert_allclose(noisy.numpy() - clean.numpy(), 1.0)  # same image, same crop, same order
        seen.extend(y.numpy())
    assert sorted(seen) == sorted(labels)


def test_mixup_makes_soft_labels_that_sum_to_one():
    images, labels = _images(count=8)
    (x, y), = list(with_mixup(eval_pipeline(Split(images, labels), 8), 3, alpha=0.4, seed=0))
    assert y.shape == (8, 3)
    np.testing.assert_allclose(y.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert x.shape == (8, 16, 16, 3)
