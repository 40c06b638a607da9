"""tfds:NAME[:SPLIT] on builders prepared on disk here (tiny ones defined below) and on
TensorFlow Datasets' own mock data; and the message when TensorFlow Datasets is not installed."""

from __future__ import annotations

import functools
import re
import sys

import numpy as np
import pytest

import fabricate
from noisegame_cli.data import StreamSplit, load_dataset
from noisegame_cli.errors import UserError


def raises(message: str):
    return pytest.raises(UserError, match=re.escape(message))


@functools.cache
def builders():
    """Three tiny builders (defining them registers them with TensorFlow Datasets, once)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    features = tfds.features

    class NoisegameTinyShapes(tfds.core.GeneratorBasedBuilder):
        """8x8 colour images, a fine and a coarse label, train and test (no validation) splits."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=features.FeaturesDict(
                    {"image": features.Image(shape=(8, 8, 3)), "label": features.ClassLabel(names=["a", "b", "c"]), "coarse": features.ClassLabel(names=["x", "y"])}
                ),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(20, 0), "test": self._generate_examples(6, 1)}

        def _generate_examples(self, count, seed):
            images = fabricate.random_images(count, (8, 8, 3), seed)
            for index in range(count):
                yield index, {"image": images[index], "label": index % 3, "coarse": index % 2}

    class NoisegameVariableSizes(tfds.core.GeneratorBasedBuilder):
        """Grey images of several sizes, with a validation split."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=features.FeaturesDict({"picture": features.Image(shape=(None, None, 1)), "kind": features.ClassLabel(num_classes=2)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(6), "validation": self._generate_examples(4)}

        def _generate_examples(self, count):
            for index in range(count):
                size = 6 + 2 * index
                yield index, {"picture": fabricate.random_images(1, (size, size + 1, 1), index)[0], "kind": index % 2}

    class NoisegameNoImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=features.FeaturesDict({"value": features.Tensor(shape=(2,), dtype=np.float32), "label": features.ClassLabel(num_classes=2)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            yield 0, {"value": np.zeros(2, np.float32), "label": 0}

    return NoisegameTinyShapes, NoisegameVariableSizes, NoisegameNoImages


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A TensorFlow Datasets directory with the three builders prepared."""
    data_dir = tmp_path_factory.mktemp("tensorflow_datasets")
    for builder in builders():
        builder(data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def test_prepared_builder_streams_its_splits(prepared):
    data = load_dataset("tfds:noisegame_tiny_shapes", prepared)
    assert isinstance(data.train, StreamSplit) and data.class_names == ("a", "b", "c")
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 6)  # val: the last 10 % of train
    assert data.image_shape == (8, 8, 3)
    images, labels = data.test.arrays()
    assert np.array_equal(np.sort(images.reshape(6, -1), axis=0), np.sort(fabricate.random_images(6, (8, 8, 3), 1).reshape(6, -1), axis=0))
    assert sorted(labels) == sorted(np.arange(6) % 3)
    assert np.array_equal(data.test.labels, labels)  # the label-only pass gives the same order
    streamed = np.concatenate([x.numpy() for x, _ in data.test.batches(4)])
    assert np.array_equal(streamed, images) and [len(y) for _, y in data.test.batches(4)] == [4, 2]
    first = [y.numpy() for _, y in data.train.examples(shuffle=True, seed=3)]
    assert first == [y.numpy() for _, y in data.train.examples(shuffle=True, seed=3)] and sorted(first) == sorted(data.train.labels)


def test_labels_pick_another_class_label_and_split_picks_one(prepared):
    coarse = load_dataset("tfds:noisegame_tiny_shapes:test", prepared, labels="coarse")
    assert coarse.train is None and coarse.val is None and coarse.class_names == ("x", "y")
    assert len(coarse.test) == 6 and set(coarse.test.labels) == {0, 1}
    with raises("has no class-label feature 'fine'; it has label, coarse"):
        load_dataset("tfds:noisegame_tiny_shapes", prepared, labels="fine")
    head = load_dataset("tfds:noisegame_tiny_shapes:train[:5]", prepared, limit=3)
    assert len(head.test) == 3 and len(head.test.arrays()[0]) == 3


def test_variable_sizes_take_the_first_images_size_and_convert(prepared):
    data = load_dataset("tfds:noisegame_variable_sizes", prepared)
    height, width, channels = data.image_shape  # the first stored image's (the builder shuffled them)
    assert (height, width - 1, channels) in [(6 + 2 * index, 6 + 2 * index, 1) for index in range(6)]
    assert data.val.image_shape == data.image_shape and data.val.arrays()[0].shape == (4, *data.image_shape)
    colour = load_dataset("tfds:noisegame_variable_sizes", prepared, channels=3, image_size=(5, 5))
    images = colour.train.arrays(2)[0]
    assert images.shape == (2, 5, 5, 3) and np.array_equal(images[..., 0], images[..., 2])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tfds:noisegame_no_images", "has no single image feature and class-label feature to use (features: value, label)"),
        ("tfds:no_such_builder_here", "TensorFlow Datasets has no dataset 'no_such_builder_here'"),
        ("tfds:noisegame_tiny_shapes:nosplit", "cannot read split 'nosplit'"),
        ("tfds:", "dataset tfds needs a builder name"),
    ],
)
def test_bad_builders(prepared, spec, message):
    with raises(message):
        load_dataset(spec, prepared)


def test_unprepared_builder_is_not_downloaded_unless_asked(tmp_path):
    builders()
    with raises("tfds:noisegame_tiny_shapes is not prepared in"):
        load_dataset("tfds:noisegame_tiny_shapes", tmp_path)
    assert len(load_dataset("tfds:noisegame_tiny_shapes", tmp_path, download=True).test) == 6  # prepared now


def test_mock_data_of_a_registered_builder(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        with raises("tfds:mnist is not prepared"):
            load_dataset("tfds:mnist:test", tmp_path)
        data = load_dataset("tfds:mnist:test", tmp_path, download=True)  # preparing is a no-op under the mock
        images, labels = data.test.arrays()
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.uint8 and labels.min() >= 0 and labels.max() <= 9


def test_without_tensorflow_datasets_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with raises("pip install noisegame[tfds]"):
        load_dataset("tfds:mnist")
