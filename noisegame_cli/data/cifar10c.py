"""CIFAR-10-C and CIFAR-100-C files in the official layout, read memory-mapped one corruption and
severity at a time.

A folder holds ``<corruption>.npy`` (uint8 ``[5 * n, H, W, 3]``, severities 1..5 stacked in order)
and ``labels.npy`` (``5 * n`` labels, the test labels repeated). ``write_corruption_file`` writes
the same layout, so a corrupted copy of any dataset can be made once and shared: one corruption's
file at a time, into a temporary file renamed when complete, one severity block in memory at a
time; ``corruption_file_complete`` says whether a file is there whole, so a resumed run skips it.
A folder written here also holds ``clean.npy``, the ``n`` uncorrupted images (the official release
has none: its clean images are CIFAR-10's test split).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from noisegame_cli.corruptions.names import KNOWN_CORRUPTIONS, SEVERITIES
from noisegame_cli.data.datasets import CorruptedDataset, LoadOptions, open_npy, register_dataset
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

LABELS_FILE = "labels.npy"
CLEAN_FILE = "clean.npy"


def npy_corrupted_dataset(name: str, data_dir: str | os.PathLike | None, num_classes: int, clean_source: str | None) -> CorruptedDataset:
    """A folder in the CIFAR-10-C layout as a ``CorruptedDataset`` (the corruptions whose file is there)."""
    if data_dir is None:
        raise UserError(f"--dataset {name} needs --data-dir (the folder of <corruption>.npy files and labels.npy)")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise UserError(f"--data-dir {folder}: no such folder")
    present = tuple(c for c in KNOWN_CORRUPTIONS if corruption_file(folder, c).is_file())
    if not present:
        raise UserError(f"{folder} holds no <corruption>.npy file of the {len(KNOWN_CORRUPTIONS)} corruptions the engine knows")
    first = load_corrupted(folder, present[0], 1, num_classes=num_classes)
    shape = first.image_shape

    def load(corruption: str, severity: int) -> Split:
        split = load_corrupted(folder, corruption, severity, num_classes=num_classes)
        if split.image_shape != shape:
            raise UserError(f"{corruption_file(folder, corruption)}: images of shape {list(split.image_shape)}, others {list(shape)}")
        return split

    clean = load_clean(folder, num_classes)
    if clean is not None and clean.image_shape != shape:
        raise UserError(f"{folder / CLEAN_FILE}: clean images are {list(clean.image_shape)}, the corrupted ones {list(shape)}")
    return CorruptedDataset(name, present, shape, num_classes, load, clean, clean_source=None if clean is not None else clean_source)


@register_dataset(
    "cifar10-c",
    kind="corrupted",
    layout="--data-dir holding <corruption>.npy (severities 1-5 stacked) and labels.npy (Zenodo record 2535967)",
)
def cifar10c_dataset(argument: str, options: LoadOptions) -> CorruptedDataset:
    return npy_corrupted_dataset("cifar10-c", options.data_dir, 10, clean_source="cifar10")


@register_dataset(
    "cifar100-c",
    kind="corrupted",
    layout="--data-dir holding <corruption>.npy (severities 1-5 stacked) and labels.npy, fine labels (Zenodo record 3555552)",
)
def cifar100c_dataset(argument: str, options: LoadOptions) -> CorruptedDataset:
    return npy_corrupted_dataset("cifar100-c", options.data_dir, 100, clean_source="cifar100")


def corruption_file(data_dir: str | os.PathLike, corruption: str) -> Path:
    return Path(data_dir) / f"{corruption}.npy"


def load_labels(data_dir: str | os.PathLike, num_classes: int | None = None) -> np.ndarray:
    path = Path(data_dir) / LABELS_FILE
    labels = np.asarray(_open_npy(path))
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: labels must be a 1-D integer array, got {labels.dtype} {list(labels.shape)}")
    if len(labels) % len(SEVERITIES):
        raise UserError(f"{path}: {len(labels)} labels is not 5 severities x n")
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    return labels


def load_corrupted(
    data_dir: str | os.PathLike, corruption: str, severity: int, *, num_classes: int | None = None
) -> Split:
    """The images of one corruption at one severity, as a view read on demand, with their labels."""
    if severity not in SEVERITIES:
        raise UserError(f"severity must be one of 1..5, got {severity}")
    labels = load_labels(data_dir, num_classes)
    path = corruption_file(data_dir, corruption)
    images = _open_npy(path)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"{path}: images must be uint8 [5n, H, W, 3], got {images.dtype} {list(images.shape)}")
    if len(images) != len(labels):
        raise UserError(f"{path}: {len(images)} images but {LABELS_FILE} has {len(labels)} labels")
    per_severity = len(images) // len(SEVERITIES)
    block = slice((severity - 1) * per_severity, severity * per_severity)
    return Split(images[block], np.asarray(labels[block], dtype=np.int64))


def load_clean(data_dir: str | os.PathLike, num_classes: int | None = None) -> Split | None:
    """The folder's uncorrupted images with their labels (the first severity block's), or None
    when the folder has no ``clean.npy`` (as the official release has not)."""
    path = Path(data_dir) / CLEAN_FILE
    if not path.is_file():
        return None
    images = _open_npy(path)
    labels = load_labels(data_dir, num_classes)
    per_severity = len(labels) // len(SEVERITIES)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) != per_severity:
        raise UserError(f"{path}: clean images must be uint8 [{per_severity}, H, W, 3], got {images.dtype} {list(images.shape)}")
    return Split(images, np.asarray(labels[:per_severity], dtype=np.int64))


def write_corruption_file(data_dir: str | os.PathLike, corruption: str, images_by_severity: Iterable[np.ndarray]) -> Path:
    """Write ``<corruption>.npy`` with the five severity blocks stacked, as the official files are.

    ``images_by_severity`` gives the blocks of severities 1..5 in order (a generator keeps one in
    memory at a time); they fill a temporary file that is renamed to ``<corruption>.npy`` only once
    all five are written, so the file is either absent or complete."""
    path = corruption_file(data_dir, corruption)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    stacked = None
    try:
        for index, block in enumerate(images_by_severity):
            block = np.asarray(block, dtype=np.uint8)
            if index >= len(SEVERITIES):
                raise ValueError("need one image block per severity 1..5, got more")
            if stacked is None:
                stacked = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(SEVERITIES) * len(block), *block.shape[1:]))
            per_severity = len(stacked) // len(SEVERITIES)
            if block.shape != (per_severity, *stacked.shape[1:]):
                raise ValueError(f"severity {index + 1} block has shape {block.shape}, severity 1's {(per_severity, *stacked.shape[1:])}")
            stacked[index * per_severity : (index + 1) * per_severity] = block
        if stacked is None or index != len(SEVERITIES) - 1:
            raise ValueError("need one image block per severity 1..5")
        stacked.flush()
        del stacked
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def corruption_file_complete(data_dir: str | os.PathLike, corruption: str, count: int | None = None) -> bool:
    """Whether ``<corruption>.npy`` is there whole: readable, five equal severity blocks, and (for
    ``count``) ``count`` images in each. A resumed writer skips the corruptions for which this holds."""
    try:
        images = np.load(corruption_file(data_dir, corruption), mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    blocks_whole = images.ndim == 4 and len(images) % len(SEVERITIES) == 0 and len(images) > 0
    return blocks_whole and (count is None or len(images) == count * len(SEVERITIES))


def write_labels_file(data_dir: str | os.PathLike, labels: np.ndarray) -> Path:
    path = Path(data_dir) / LABELS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomically(path, np.tile(np.asarray(labels, dtype=np.int64), len(SEVERITIES)))
    return path


def write_clean_file(data_dir: str | os.PathLike, images: np.ndarray) -> Path:
    path = Path(data_dir) / CLEAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomically(path, np.asarray(images, dtype=np.uint8))
    return path


def _save_atomically(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _open_npy(path: Path) -> np.ndarray:
    return open_npy(path, "CIFAR-10-C")
