"""CIFAR-10 and CIFAR-100 in their python-pickle releases, from ``--data-dir`` or the Keras cache.

``--data-dir`` may hold ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz`` (CIFAR-100:
``cifar-100-python/`` or ``cifar-100-python.tar.gz``), or be the folder or the archive; without it
the Keras cache (``~/.keras/datasets`` or ``$KERAS_HOME/datasets``, where Keras 3 keeps them as
``cifar-10-batches-py-target/cifar-10-batches-py/``) is searched, and ``--download`` fetches the
release through Keras. The last 10 % of the training images are held out as the validation split.
CIFAR-100 has two label sets: ``--labels fine`` (100 classes, the default) or ``coarse`` (20).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from noisegame_cli.data.datasets import Dataset, LoadOptions, download_through_keras, keras_cache_dir, register_dataset, with_validation
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
CIFAR100_LABELS = {"fine": 100, "coarse": 20}  # label set: number of classes
CIFAR_KERAS_SUFFIX = "-target"  # Keras 3 extracts an archive into <folder>-target/<folder>/


@register_dataset("cifar10", layout=f"{CIFAR10_FOLDER}/ or {CIFAR10_ARCHIVE} in --data-dir or the Keras cache; --download fetches it")
def cifar10_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_cifar10(options.data_dir, download=options.download)


@register_dataset(
    "cifar100",
    layout=f"{CIFAR100_FOLDER}/ (train, test, meta) or {CIFAR100_ARCHIVE} in --data-dir or the Keras cache; --download fetches it",
    labels="fine (default, 100 classes) or coarse (20 superclasses)",
)
def cifar100_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_cifar100(options.data_dir, download=options.download, labels=options.labels or "fine")


def load_cifar10(data_dir: str | os.PathLike | None = None, *, download: bool = False) -> Dataset:
    source = _locate(data_dir, download, "CIFAR-10", CIFAR10_FOLDER, CIFAR10_ARCHIVE, (CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES[0]), "cifar10")
    read = _archive_reader(source, "CIFAR-10", CIFAR10_FOLDER) if source.is_file() else _folder_reader(source, "CIFAR-10")
    train_parts = [_parse_batch(read(name), f"{source}:{name}", b"labels", 10, "CIFAR-10") for name in CIFAR10_TRAIN_BATCHES]
    images = np.concatenate([part[0] for part in train_parts])
    labels = np.concatenate([part[1] for part in train_parts])
    test = Split(*_parse_batch(read(CIFAR10_TEST_BATCH), f"{source}:{CIFAR10_TEST_BATCH}", b"labels", 10, "CIFAR-10"))
    return with_validation("cifar10", Split(images, labels), test, CIFAR10_CLASSES)


def load_cifar100(data_dir: str | os.PathLike | None = None, *, download: bool = False, labels: str = "fine") -> Dataset:
    """CIFAR-100 with its ``fine`` (100) or ``coarse`` (20) labels; class names from its ``meta`` file."""
    if labels not in CIFAR100_LABELS:
        raise UserError(f"--labels for cifar100 must be fine or coarse, got {labels!r}")
    source = _locate(data_dir, download, "CIFAR-100", CIFAR100_FOLDER, CIFAR100_ARCHIVE, ("train", "test"), "cifar100")
    read = _archive_reader(source, "CIFAR-100", CIFAR100_FOLDER) if source.is_file() else _folder_reader(source, "CIFAR-100")
    key, count = f"{labels}_labels".encode(), CIFAR100_LABELS[labels]
    train = Split(*_parse_batch(read("train"), f"{source}:train", key, count, "CIFAR-100"))
    test = Split(*_parse_batch(read("test"), f"{source}:test", key, count, "CIFAR-100"))
    names = _label_names(read("meta"), f"{source}:meta", f"{labels}_label_names".encode(), count)
    return with_validation("cifar100", train, test, names)


def find_cifar10(data_dir: str | os.PathLike | None) -> Path | None:
    """The CIFAR-10 folder or archive in ``data_dir`` (or the Keras cache), else ``None``."""
    return find_cifar(data_dir, CIFAR10_FOLDER, CIFAR10_ARCHIVE, (CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES[0]))


def find_cifar(data_dir: str | os.PathLike | None, folder: str, archive: str, markers: tuple[str, ...]) -> Path | None:
    """The release ``folder`` (one holding any of the ``markers`` files) or ``archive`` in ``data_dir``
    (or the Keras cache, in the layouts of Keras 2 and 3), else ``None``."""
    cache = keras_cache_dir()
    roots = [Path(data_dir)] if data_dir is not None else [cache, cache / f"{folder}{CIFAR_KERAS_SUFFIX}", cache / f"{folder}_extracted"]
    for root in roots:
        if root.is_file() and root.name.endswith(".tar.gz"):
            return root
        for candidate in (root, root / folder):
            if any((candidate / marker).is_file() for marker in markers):
                return candidate
        if (root / archive).is_file():
            return root / archive
    return None


def _locate(data_dir, download: bool, what: str, folder: str, archive: str, markers: tuple[str, ...], keras_module: str) -> Path:
    """The release folder or archive, from ``data_dir``, the Keras cache, or downloaded into it."""
    source = find_cifar(data_dir, folder, archive, markers)
    if source is not None:
        return source
    if data_dir is not None:
        raise UserError(f"no {what} in {data_dir}: expected {folder}/ or {archive} there")
    if not download:
        raise UserError(f"{what} is not in the Keras cache ({keras_cache_dir()}); pass --data-dir or --download")
    download_through_keras(keras_module, what)
    source = find_cifar(None, folder, archive, markers)
    if source is None:
        raise UserError(f"{what} was downloaded but is not in the Keras cache {keras_cache_dir()}")
    return source


def _folder_reader(folder: Path, what: str):
    def read(name: str) -> bytes:
        path = folder / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{what} file missing: {path}") from None
        except OSError as error:
            raise UserError(f"cannot read {what} file {path}: {error.strerror or error}") from None

    return read


def _archive_reader(archive: Path, what: str, folder: str):
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise UserError(f"{archive} is not a readable {what} archive ({error})") from None

    def read(name: str) -> bytes:
        if name not in members:
            raise UserError(f"{archive} has no {folder}/{name}")
        return members[name]

    return read


def _unpickled(raw: bytes, where: str, what: str, keys: tuple[bytes, ...]) -> list:
    try:
        batch = pickle.load(io.BytesIO(raw), encoding="bytes")
        return [batch[key] for key in keys]
    except Exception as error:  # a truncated or foreign file can fail in many ways inside pickle
        raise UserError(f"{where} is truncated or not a {what} pickle batch ({type(error).__name__})") from None


def _parse_batch(raw: bytes, where: str, label_key: bytes, num_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = _unpickled(raw, where, what, (b"data", label_key))
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{where}: data must be uint8 [N, 3072], got {data.dtype} {list(data.shape)}")
    if len(labels) != len(data):
        raise UserError(f"{where}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{where}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _label_names(raw: bytes, where: str, key: bytes, count: int) -> tuple[str, ...]:
    (names,) = _unpickled(raw, where, "CIFAR-100 meta", (key,))
    names = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)
    if len(names) != count:
        raise UserError(f"{where}: {len(names)} {key.decode()}, expected {count}")
    return names
