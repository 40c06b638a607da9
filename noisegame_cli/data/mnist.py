"""MNIST, Fashion-MNIST and MNIST-C in their published files, from ``--data-dir`` or the Keras cache.

- ``mnist``: Keras' ``mnist.npz`` (``x_train`` ``[60000, 28, 28]`` uint8, ``y_train``, ``x_test``,
  ``y_test``), in ``--data-dir`` or the Keras cache (``~/.keras/datasets/mnist.npz``); or the four
  IDX files of the original release (``train-images-idx3-ubyte.gz`` ...) in ``--data-dir``.
- ``fashion_mnist``: the four IDX files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
  ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, in ``--data-dir`` (or its
  ``fashion-mnist/``) or where Keras keeps them (``~/.keras/datasets/fashion-mnist/``).
- ``mnist-c`` (Mu & Gilmer 2019): ``mnist_c/<corruption>/test_images.npy`` (uint8 ``[N, 28, 28, 1]``)
  and ``test_labels.npy``, for MNIST-C's own 15 corruptions. It has one severity, so it loads as a
  ``CorruptedDataset`` whose only severity is 1; its ``identity/`` folder, where present, is the
  clean test set.

Images stay 1-channel (``--channels 3`` repeats them); the last 10 % of the training images are the
validation split. ``--download`` fetches MNIST and Fashion-MNIST through Keras.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from noisegame_cli.data.datasets import (
    CorruptedDataset,
    Dataset,
    LoadOptions,
    check_labels,
    download_through_keras,
    keras_cache_dir,
    open_npy,
    register_dataset,
    with_validation,
)
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

DIGITS = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_FILE = "mnist.npz"
FASHION_FOLDER = "fashion-mnist"
IDX_FILES = {  # split: (images, labels)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes
MNIST_C_FOLDER = "mnist_c"
MNIST_C_CORRUPTIONS = (
    "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
    "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
)  # fmt: skip
MNIST_C_CLEAN = "identity"
MNIST_C_SEVERITY = 1


@register_dataset("mnist", layout=f"{MNIST_FILE} (Keras' file) or the four IDX .gz files in --data-dir, or {MNIST_FILE} in the Keras cache; --download fetches it")
def mnist_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_mnist(options.data_dir, download=options.download)


@register_dataset(
    "fashion_mnist",
    layout=f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-*.gz in --data-dir or the Keras cache's {FASHION_FOLDER}/; --download fetches them",
)
def fashion_mnist_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_fashion_mnist(options.data_dir, download=options.download)


@register_dataset(
    "mnist-c",
    kind="corrupted",
    layout=f"--data-dir holding {MNIST_C_FOLDER}/<corruption>/test_images.npy + test_labels.npy (Zenodo record 3239543); one severity",
)
def mnist_c_dataset(argument: str, options: LoadOptions) -> CorruptedDataset:
    return load_mnist_c(options.data_dir)


def load_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = False) -> Dataset:
    if data_dir is not None:
        root = Path(data_dir)
        npz = root if root.is_file() else root / MNIST_FILE
        if npz.is_file():
            return _mnist_from_npz(npz)
        if all((root / name).is_file() for name in IDX_FILES["train"]):
            return _idx_dataset("mnist", root, DIGITS)
        raise UserError(f"no MNIST in {data_dir}: expected {MNIST_FILE} or the IDX files {', '.join(IDX_FILES['train'])} there")
    npz = keras_cache_dir() / MNIST_FILE
    if not npz.is_file():
        if not download:
            raise UserError(f"MNIST is not in the Keras cache ({npz}); pass --data-dir or --download")
        download_through_keras("mnist", "MNIST")
    return _mnist_from_npz(npz)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = False) -> Dataset:
    if data_dir is not None:
        roots = [Path(data_dir), Path(data_dir) / FASHION_FOLDER]
        folder = next((root for root in roots if (root / IDX_FILES["train"][0]).is_file()), None)
        if folder is None:
            raise UserError(f"no Fashion-MNIST in {data_dir}: expected {IDX_FILES['train'][0]} and the other IDX files there or in {FASHION_FOLDER}/")
        return _idx_dataset("fashion_mnist", folder, FASHION_CLASSES)
    folder = keras_cache_dir() / FASHION_FOLDER
    if not (folder / IDX_FILES["train"][0]).is_file():
        if not download:
            raise UserError(f"Fashion-MNIST is not in the Keras cache ({folder}); pass --data-dir or --download")
        download_through_keras("fashion_mnist", "Fashion-MNIST")
    return _idx_dataset("fashion_mnist", folder, FASHION_CLASSES)


def _mnist_from_npz(path: Path) -> Dataset:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = next((key for key in keys if key not in archive.files), None)
            if missing is not None:
                raise UserError(f"{path} has no {missing} array (expected {', '.join(keys)})")
            arrays = {key: archive[key] for key in keys}
    except FileNotFoundError:
        raise UserError(f"MNIST file missing: {path}") from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise UserError(f"{path} is truncated or not an .npz archive ({error})") from None
    splits = {}
    for which in ("train", "test"):
        images, labels = arrays[f"x_{which}"], arrays[f"y_{which}"]
        where = f"{path}:x_{which}"
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise UserError(f"{where}: images must be uint8 [N, 28, 28], got {images.dtype} {list(images.shape)}")
        if len(images) != len(labels):
            raise UserError(f"{where}: {len(images)} images but y_{which} has {len(labels)} labels")
        splits[which] = Split(images[..., None], check_labels(labels, 10, f"{path}:y_{which}"))
    return with_validation("mnist", splits["train"], splits["test"], DIGITS)


def _idx_dataset(name: str, folder: Path, class_names: tuple[str, ...]) -> Dataset:
    splits = {}
    for which, (images_file, labels_file) in IDX_FILES.items():
        images = read_idx(folder / images_file, dims=3)
        labels = read_idx(folder / labels_file, dims=1)
        if len(images) != len(labels):
            raise UserError(f"{folder / labels_file}: {len(labels)} labels but {images_file} has {len(images)} images")
        splits[which] = Split(images[..., None], check_labels(labels, len(class_names), str(folder / labels_file)))
    return with_validation(name, splits["train"], splits["test"], class_names)


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file (gzipped or not) of unsigned bytes with ``dims`` dimensions, as a uint8 array.

    The format: two zero bytes, the type code (0x08 for unsigned bytes), the number of dimensions,
    then each dimension as a big-endian int32, then the values."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"IDX file missing: {path}") from None
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"{path} is truncated or not gzip-compressed ({error})") from None
    header = 4 + 4 * dims
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != IDX_UBYTE or raw[3] != dims or len(raw) < header:
        raise UserError(f"{path} is not an IDX file of unsigned bytes with {dims} dimension(s)")
    shape = tuple(int(size) for size in np.frombuffer(raw, ">i4", count=dims, offset=4))
    values = np.frombuffer(raw, np.uint8, offset=header)
    if values.size != int(np.prod(shape)):
        raise UserError(f"{path}: header says {'x'.join(map(str, shape))} = {int(np.prod(shape))} values, the file holds {values.size}")
    return values.reshape(shape)


def load_mnist_c(data_dir: str | os.PathLike | None) -> CorruptedDataset:
    """MNIST-C's corruptions present under ``data_dir`` (or its ``mnist_c/``), memory-mapped."""
    if data_dir is None:
        raise UserError(f"--dataset mnist-c needs --data-dir (the {MNIST_C_FOLDER}/ folder of <corruption>/test_images.npy)")
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data-dir {root}: no such folder")
    if (root / MNIST_C_FOLDER).is_dir():
        root = root / MNIST_C_FOLDER
    present = tuple(name for name in MNIST_C_CORRUPTIONS if (root / name / "test_images.npy").exists())
    if not present:
        raise UserError(f"{root} holds none of MNIST-C's corruptions ({', '.join(MNIST_C_CORRUPTIONS)}) as <corruption>/test_images.npy")

    def load(corruption: str, severity: int) -> Split:
        return mnist_c_split(root / corruption)

    shape = mnist_c_split(root / present[0]).image_shape
    clean = mnist_c_split(root / MNIST_C_CLEAN) if (root / MNIST_C_CLEAN / "test_images.npy").exists() else None
    return CorruptedDataset(
        "mnist-c", present, shape, 10, load, clean, clean_source=None if clean is not None else "mnist",
        parameters="mnist-c", severities=(MNIST_C_SEVERITY,),
    )  # fmt: skip


def mnist_c_split(folder: Path) -> Split:
    """One MNIST-C corruption's test images (read on demand) and labels."""
    images_path, labels_path = folder / "test_images.npy", folder / "test_labels.npy"
    images, labels = open_npy(images_path, "MNIST-C"), open_npy(labels_path, "MNIST-C")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise UserError(f"{images_path}: images must be uint8 [N, 28, 28, 1], got {images.dtype} {list(images.shape)}")
    if len(images) != len(labels):
        raise UserError(f"{labels_path}: {len(labels)} labels but test_images.npy has {len(images)} images")
    return Split(images, check_labels(np.asarray(labels), 10, str(labels_path)))
