"""Datasets by name: one registry of names, the on-disk layout each expects, and the loaders.

A dataset spec is ``NAME`` or ``NAME:ARGUMENT`` (``synthetic:28x28x1:10``, ``folder:PATH``). Two
kinds exist:

- ``images`` datasets load as a ``Dataset``: train / val / test splits (any may be missing, as
  ImageNet's validation set is all there is) of uint8 images and int64 labels;
- ``corrupted`` datasets (CIFAR-10-C and its relatives) load as a ``CorruptedDataset``: one split per
  corruption and severity, plus the clean test split where it is known.

Each loader module registers its names with ``register_dataset``; importing ``noisegame_cli.data``
imports them all. A name is checked (``check_dataset``) before any file is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Union

import numpy as np

from noisegame_cli.data.sources import FileSplit, Split
from noisegame_cli.errors import UserError

AnySplit = Union[Split, FileSplit]
KINDS = ("images", "corrupted")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LoadOptions:
    """What a loader may need besides the spec: where the files are and how to shape the images.

    ``image_size`` ``(height, width)`` resizes images read from files (None: the files' own size,
    or the first file's); ``channels`` 1 or 3 converts grey to colour and back (None: as stored);
    ``labels`` picks a label set where a dataset has several (CIFAR-100: fine or coarse)."""

    data_dir: str | None = None
    download: bool = False
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    labels: str | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    train: AnySplit | None
    val: AnySplit | None
    test: AnySplit | None
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return next(split for split in (self.train, self.val, self.test) if split is not None).image_shape

    def split(self, which: str) -> AnySplit:
        """The ``train``, ``val`` or ``test`` split, or a ``UserError`` when this dataset has none."""
        found = getattr(self, which)
        if found is None:
            raise UserError(f"dataset {self.name} has no {which} split")
        return found

    def limited(self, count: int | None) -> "Dataset":
        """The first ``count`` examples of each split (all of them for ``None``)."""
        heads = {which: None if getattr(self, which) is None else getattr(self, which).head(count) for which in SPLITS}
        return replace(self, **heads)


@dataclass(frozen=True)
class CorruptedDataset:
    """Corrupted copies of a test set: ``load(corruption, severity)`` gives one split of them."""

    name: str
    corruptions: tuple[str, ...]  # the corruptions present
    image_shape: tuple[int, int, int]
    num_classes: int
    load_split: Callable[[str, int], AnySplit]
    clean: AnySplit | None = None  # the uncorrupted test images, where known
    clean_source: str | None = None  # the images dataset whose test split is the clean set, when ``clean`` is None
    parameters: str = "cifar10-c"  # the published parameter set it was made with (mCE baselines follow it)

    def load(self, corruption: str, severity: int, limit: int | None = None) -> AnySplit:
        if corruption not in self.corruptions:
            raise UserError(f"{self.name} has no {corruption} images; it has {', '.join(self.corruptions)}")
        return self.load_split(corruption, severity).head(limit)


Loader = Callable[[str, LoadOptions], Union[Dataset, CorruptedDataset]]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Loader
    kind: str
    layout: str  # one line: the files it reads (or "embedded"), for --help and the docs
    argument: str | None  # what follows "NAME:", if the name takes an argument


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, layout: str, kind: str = "images", argument: str | None = None) -> Callable[[Loader], Loader]:
    """Register ``loader(argument, options)`` under ``name``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")

    def decorator(loader: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = DatasetEntry(name, loader, kind, layout, argument)
        return loader

    return decorator


def parse_spec(spec: str) -> tuple[DatasetEntry, str]:
    """The registry entry and the argument of ``NAME[:ARGUMENT]``, or a ``UserError``."""
    _load_all()
    name, _, argument = str(spec).partition(":")
    if name not in DATASETS:
        raise UserError(f"unknown dataset {spec!r}; choose from {', '.join(DATASETS)}")
    entry = DATASETS[name]
    if argument and entry.argument is None:
        raise UserError(f"dataset {name} takes no argument (got {spec!r})")
    return entry, argument


def check_dataset(spec: str, kind: str | None = None) -> DatasetEntry:
    """Raise a ``UserError`` for an unknown name, or one of the wrong kind."""
    entry, _ = parse_spec(spec)
    if kind is not None and entry.kind != kind:
        if kind == "images":
            raise UserError(f"{entry.name} holds only corrupted test images: use it with eval-corruption or benchmark")
        raise UserError(f"{entry.name} is not a corrupted dataset; choose from {', '.join(names_of_kind('corrupted'))}")
    return entry


def names_of_kind(kind: str) -> list[str]:
    _load_all()
    return [name for name, entry in DATASETS.items() if entry.kind == kind]


def load_dataset(
    spec: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    limit: int | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    labels: str | None = None,
) -> Dataset:
    """Load an ``images`` dataset by spec; ``limit`` keeps the first examples of each split."""
    entry, argument = parse_spec(spec)
    check_dataset(spec, "images")
    options = LoadOptions(None if data_dir is None else str(data_dir), download, image_size, channels, labels)
    dataset = entry.load(argument, options)
    if channels is not None:
        dataset = replace(dataset, **{w: with_channels(getattr(dataset, w), channels) for w in SPLITS if getattr(dataset, w) is not None})
    return dataset.limited(limit)


def load_corrupted_dataset(
    spec: str,
    data_dir: str | os.PathLike | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    labels: str | None = None,
) -> CorruptedDataset:
    """Load a ``corrupted`` dataset by spec."""
    entry, argument = parse_spec(spec)
    check_dataset(spec, "corrupted")
    return entry.load(argument, LoadOptions(None if data_dir is None else str(data_dir), False, image_size, channels, labels))


def with_channels(split: AnySplit, channels: int) -> AnySplit:
    """``split`` with grey images repeated to 3 channels, or colour ones turned grey (ITU-R 601 luma)."""
    if channels not in (1, 3):
        raise UserError(f"--channels must be 1 or 3, got {channels}")
    if split.image_shape[-1] == channels:
        return split
    if isinstance(split, FileSplit):
        return replace(split, channels=channels)
    images = np.asarray(split.images)
    if channels == 3:
        return Split(np.repeat(images, 3, axis=-1), split.labels)
    luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return Split(np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None], split.labels)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _load_all() -> None:
    """Import every loader module, so that their names are registered."""
    import noisegame_cli.data  # noqa: F401  (its __init__ imports the loader modules)
