"""CIFAR-10 in its python-pickle release, from ``--data-dir`` or the Keras cache.

``--data-dir`` may hold ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz`` (or be the archive);
without it the Keras cache (``~/.keras/datasets`` or ``$KERAS_HOME/datasets``) is searched, and
``--download`` fetches the release through Keras. The last 10 % of the training batches are held
out as the validation split.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from noisegame_cli.data.datasets import Dataset, LoadOptions, keras_cache_dir, register_dataset
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


@register_dataset("cifar10", layout=f"{CIFAR10_FOLDER}/ or {CIFAR10_ARCHIVE} in --data-dir or the Keras cache; --download fetches it")
def cifar10_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_cifar10(options.data_dir, download=options.download)


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
