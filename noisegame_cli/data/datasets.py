"""Datasets as uint8 ``[N, H, W, C]`` images and int64 labels, split into train / val / test.

- ``digits``: scikit-learn's 1 797 real 8x8 digits (they ship inside scikit-learn), scaled to
  0..255, resized to 32x32 and repeated to 3 channels; one fixed stratified split
  (1 257 train / 180 val / 360 test) that does not depend on ``--seed``.
- ``cifar10``: the python-pickle release, from ``--data-dir`` (``cifar-10-batches-py/`` or
  ``cifar-10-python.tar.gz``) or the Keras cache; downloaded only with ``download=True``.
  The last 10 % of the training batches are held out as validation.
- ``synthetic[:HxWxC[:CLASSES]]``: seeded class-conditional images of any shape, for tests.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from noisegame_cli.errors import UserError

DATASETS = ("digits", "cifar10", "synthetic")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, count: int | None) -> "Split":
        return self if count is None else Split(self.images[:count], self.labels[:count])


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def limited(self, count: int | None) -> "Dataset":
        """The first ``count`` examples of each split (all of them for ``None``)."""
        return replace(self, train=self.train.head(count), val=self.val.head(count), test=self.test.head(count))


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, *, download: bool = False, limit: int | None = None
) -> Dataset:
    """Load a dataset by name; ``limit`` keeps the first examples of each split."""
    base, _, spec = name.partition(":")
    if base == "digits":
        dataset = load_digits()
    elif base == "cifar10":
        dataset = load_cifar10(data_dir, download=download)
    elif base == "synthetic":
        dataset = load_synthetic(*_parse_synthetic_spec(spec))
    elif base == "cifar10-c":
        raise UserError("cifar10-c holds only corrupted test images: use it with eval-corruption")
    else:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return dataset.limited(limit)


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = upscale_to_rgb(digits.images / 16.0 * 255.0, size=32)
    labels = digits.target.astype(np.int64)
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=360, stratify=labels, random_state=0)
    train, val = train_test_split(rest, test_size=180, stratify=labels[rest], random_state=0)
    pick = lambda idx: Split(images[idx], labels[idx])  # noqa: E731
    return Dataset("digits", pick(train), pick(val), pick(test), tuple(str(d) for d in range(10)))


def upscale_to_rgb(gray: np.ndarray, size: int) -> np.ndarray:
    """Grey images in 0..255 ``[N, h, w]`` to uint8 ``[N, size, size, 3]`` (bilinear)."""
    import tensorflow as tf

    resized = tf.image.resize(gray[..., None].astype(np.float32), (size, size), method="bilinear").numpy()
    return np.repeat(np.clip(np.rint(resized), 0, 255).astype(np.uint8), 3, axis=-1)


def load_synthetic(
    image_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    sizes: tuple[int, int, int] = (512, 128, 128),
    seed: int = 0,
) -> Dataset:
    """Seeded class-conditional images: each class a smooth random template plus pixel noise."""
    rng = np.random.default_rng(seed)
    height, width, channels = image_shape
    coarse = rng.uniform(0, 255, size=(num_classes, 4, 4, channels))
    rows = np.linspace(0, 3, height).round().astype(int)
    cols = np.linspace(0, 3, width).round().astype(int)
    templates = coarse[:, rows][:, :, cols]

    def split(count: int) -> Split:
        labels = rng.integers(0, num_classes, size=count).astype(np.int64)
        noisy = templates[labels] + rng.normal(0, 40, size=(count, *image_shape))
        return Split(np.clip(noisy, 0, 255).astype(np.uint8), labels)

    train, val, test = (split(count) for count in sizes)
    return Dataset("synthetic", train, val, test, tuple(f"class_{i}" for i in range(num_classes)))


def _parse_synthetic_spec(spec: str) -> tuple[tuple[int, int, int], int]:
    if not spec:
        return (32, 32, 3), 10
    shape_text, _, classes_text = spec.partition(":")
    try:
        shape = tuple(int(part) for part in shape_text.lower().split("x"))
        classes = int(classes_text) if classes_text else 10
    except ValueError:
        shape, classes = (), 0
    if len(shape) != 3 or min(shape) < 1 or classes < 2:
        raise UserError(f"synthetic dataset spec {spec!r} must look like HxWxC or HxWxC:CLASSES (e.g. 32x32x3:10)")
    return shape, classes


# --- CIFAR-10 (python pickle release) -----------------------------------------------------------


def load_cifar10(data_dir: str | os.PathLike | None = None, *, download: bool = False) -> Dataset:
    source = find_cifar10(data_dir)
    if source is None:
        if data_dir is not None:
            raise UserError(
                f"no CIFAR-10 in {data_dir}: expected {CIFAR10_FOLDER}/ or {CIFAR10_ARCHIVE} there"
            )
        if not download:
            raise UserError(
                f"CIFAR-10 is not in the Keras cache ({keras_cache_dir()}); pass --data-dir or --download"
            )
        return _download_cifar10()
    read = _archive_reader(source) if source.is_file() else _folder_reader(source)
    train_parts = [_parse_batch(read(name), f"{source}:{name}") for name in CIFAR10_TRAIN_BATCHES]
    images = np.concatenate([part[0] for part in train_parts])
    labels = np.concatenate([part[1] for part in train_parts])
    test = Split(*_parse_batch(read(CIFAR10_TEST_BATCH), f"{source}:{CIFAR10_TEST_BATCH}"))
    held_out = max(1, len(labels) // 10)
    train = Split(images[:-held_out], labels[:-held_out])
    val = Split(images[-held_out:], labels[-held_out:])
    return Dataset("cifar10", train, val, test, CIFAR10_CLASSES)


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def find_cifar10(data_dir: str | os.PathLike | None) -> Path | None:
    """The CIFAR-10 folder or archive in ``data_dir`` (or the Keras cache), else ``None``."""
    roots = [Path(data_dir)] if data_dir is not None else [keras_cache_dir(), keras_cache_dir() / f"{CIFAR10_FOLDER}_extracted"]
    for root in roots:
        if root.is_file() and root.name.endswith(".tar.gz"):
            return root
        for candidate in (root, root / CIFAR10_FOLDER):
            if (candidate / CIFAR10_TEST_BATCH).exists() or (candidate / CIFAR10_TRAIN_BATCHES[0]).exists():
                return candidate
        if (root / CIFAR10_ARCHIVE).is_file():
            return root / CIFAR10_ARCHIVE
    return None


def _folder_reader(folder: Path):
    def read(name: str) -> bytes:
        path = folder / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"CIFAR-10 file missing: {path}") from None

    return read


def _archive_reader(archive: Path):
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise UserError(f"{archive} is not a readable CIFAR-10 archive ({error})") from None

    def read(name: str) -> bytes:
        if name not in members:
            raise UserError(f"{archive} has no {CIFAR10_FOLDER}/{name}")
        return members[name]

    return read


def _parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = pickle.load(io.BytesIO(raw), encoding="bytes")
        data, labels = batch[b"data"], batch[b"labels"]
    except Exception as error:  # a truncated or foreign file can fail in many ways inside pickle
        raise UserError(f"{where} is truncated or not a CIFAR-10 pickle batch ({type(error).__name__})") from None
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{where}: data must be uint8 [N, 3072], got {data.dtype} {list(data.shape)}")
    if len(labels) != len(data):
        raise UserError(f"{where}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise UserError(f"{where}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _download_cifar10() -> Dataset:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # network errors come in many types
        raise UserError(f"could not download CIFAR-10: {error}") from None
    y_train, y_test = y_train.reshape(-1).astype(np.int64), y_test.reshape(-1).astype(np.int64)
    held_out = len(y_train) // 10
    return Dataset(
        "cifar10",
        Split(x_train[:-held_out], y_train[:-held_out]),
        Split(x_train[-held_out:], y_train[-held_out:]),
        Split(x_test, y_test),
        CIFAR10_CLASSES,
    )
