"""A clean dataset's corrupted counterpart on disk: CIFAR-10-C for cifar10, a folder written by
``noisegame corrupt`` for any other dataset.

``find_corrupted`` looks in a given folder, else in the release's own folder names (``CIFAR-10-C``,
...) under the data folder and the Keras cache, and loads what it finds in the counterpart's layout,
checked against the clean images' shape and classes. ``source_kind`` says whether the files are an
official release or a copy this project's engine wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

from noisegame_cli.data import cifar10c, copies
from noisegame_cli.data.datasets import DATASETS, PARTIAL, CorruptedDataset, keras_cache_dir, load_corrupted_dataset
from noisegame_cli.errors import UserError

OFFICIAL_FILES = "official files"
GENERATED = "generated"
# Where the official archives unpack (the folder names of their releases), per corrupted dataset.
RELEASE_FOLDERS = {
    "cifar10-c": ("CIFAR-10-C",),
    "cifar100-c": ("CIFAR-100-C",),
    "tiny-imagenet-c": ("Tiny-ImageNet-C",),
    "imagenet-c": ("ImageNet-C",),
    "mnist-c": ("mnist_c",),
}


def corrupted_counterpart(dataset: str) -> str | None:
    """The registered corrupted dataset of an images dataset: ``NAME-c`` (cifar10 -> cifar10-c), or None."""
    name = str(dataset).partition(":")[0]
    entry = DATASETS.get(f"{name}-c")
    return entry.name if entry is not None and entry.kind == "corrupted" else None


def _as_partial_as(dataset: str, counterpart: str) -> str:
    """The counterpart's spec: ``imagenet:partial``'s is ``imagenet-c:partial``, a partial copy being
    allowed for the corrupted images as for the clean ones."""
    partial = PARTIAL in str(dataset).split(":")[1:] and DATASETS[counterpart].argument == PARTIAL
    return f"{counterpart}:{PARTIAL}" if partial else counterpart


def candidate_folders(counterpart: str | None, data_dir: str | None) -> list[Path]:
    """Where a dataset's corrupted counterpart is looked for: its release folder (CIFAR-10-C, ...)
    or its own name, in the data folder and in the Keras cache."""
    if counterpart is None:
        return []
    names = (*RELEASE_FOLDERS.get(counterpart, ()), counterpart)
    roots = [Path(data_dir)] if data_dir else []
    roots.append(keras_cache_dir())
    return [root / name for root in roots for name in names]


def load_corrupted_folder(folder: str | os.PathLike, dataset: str, image_shape, num_classes: int, *,
                          image_size=None, channels=None, strict: bool = False) -> CorruptedDataset:  # fmt: skip
    """The corrupted images in ``folder``: in the counterpart's own layout where the dataset has a
    registered one, in the CIFAR-10-C layout (as ``noisegame corrupt`` writes) otherwise; checked to
    match the clean images' shape and classes."""
    counterpart = corrupted_counterpart(dataset)
    if counterpart is not None:
        corrupted = load_corrupted_dataset(_as_partial_as(dataset, counterpart), folder, image_size=image_size, channels=channels,
                                           strict=strict)  # fmt: skip
    else:
        name = f"{str(dataset).partition(':')[0]}-c"
        corrupted = cifar10c.npy_corrupted_dataset(name, folder, num_classes, clean_source=None).converted(image_size, channels)
    if tuple(corrupted.image_shape) != tuple(image_shape) or corrupted.num_classes != num_classes:
        raise UserError(f"{folder}: corrupted images of shape {list(corrupted.image_shape)} in {corrupted.num_classes} classes, "
                        f"but {dataset} has {list(image_shape)} in {num_classes}")  # fmt: skip
    return corrupted


def find_corrupted(dataset: str, image_shape, num_classes: int, *, corrupted_dir: str | None = None, data_dir: str | None = None,
                   image_size=None, channels=None, strict: bool = False) -> tuple[CorruptedDataset, Path] | None:  # fmt: skip
    """The dataset's corrupted images on disk: ``corrupted_dir`` when given (it must hold them),
    else the first candidate folder that exists; None where there is none (generate them)."""
    folders = [Path(corrupted_dir)] if corrupted_dir else [f for f in candidate_folders(corrupted_counterpart(dataset), data_dir) if f.is_dir()]
    if not folders:
        return None
    folder = folders[0]
    return load_corrupted_folder(folder, dataset, image_shape, num_classes, image_size=image_size, channels=channels, strict=strict), folder


def source_kind(folder: str | os.PathLike) -> str:
    """"official files" for a release as published; "generated" for a set this project's engine wrote
    (``noisegame corrupt`` records its settings beside the copy, and the clean images of an npy copy,
    which no release has)."""
    written_here = any((Path(folder) / name).is_file() for name in (copies.SETTINGS_FILE, cifar10c.CLEAN_FILE))
    return GENERATED if written_here else OFFICIAL_FILES
