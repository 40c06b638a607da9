"""Datasets by name: one registry of names, the on-disk layout each expects, and the loaders.

A dataset spec is ``NAME`` or ``NAME:ARGUMENT`` (``synthetic:28x28x1:10``, ``folder:PATH``). Two
kinds exist:

- ``images`` datasets load as a ``Dataset``: train / val / test splits (any may be missing, as
  ImageNet's validation set is all there is) of uint8 images and int64 labels;
- ``corrupted`` datasets (CIFAR-10-C and its relatives) load as a ``CorruptedDataset``: one split per
  corruption and severity, plus the clean test split where it is known.

Each loader module registers its names with ``register_dataset``; importing ``noisegame_cli.data``
imports them all. A name is checked (``check_dataset``) before any file is read.

``load_dataset`` and ``load_corrupted_dataset`` apply ``image_size`` and ``channels`` to whatever a
loader returns (``with_image_size``, ``with_channels``), so every dataset takes them: a file-backed
split converts as it streams, an in-memory one is converted once. Grey datasets stay 1-channel
unless ``channels=3`` is asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np

from noisegame_cli import checks
from noisegame_cli.corruptions.names import SEVERITIES
from noisegame_cli.data.sources import FileSplit, Split, StreamSplit
from noisegame_cli.errors import UserError
from noisegame_cli.keras_cache import keras_cache

AnySplit = Union[Split, FileSplit, StreamSplit]
KINDS = ("images", "corrupted")
SPLITS = ("train", "val", "test")
VALIDATION_FRACTION = 0.1  # the part of a training set held out as validation where a release has none
PARTIAL = "partial"  # the word after a release's name (imagenet:partial) that lets a copy lack some of its classes or images


@dataclass(frozen=True)
class LoadOptions:
    """What a loader may need besides the spec: where the files are and how to shape the images.

    ``image_size`` ``(height, width)`` resizes images read from files (None: the files' own size,
    or the first file's); ``channels`` 1 or 3 converts grey to colour and back (None: as stored);
    ``labels`` picks a label set where a dataset has several (CIFAR-100: fine or coarse); ``strict``
    refuses a folder of image files holding a damaged one instead of skipping it with a warning."""

    data_dir: str | None = None
    download: bool = False
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    labels: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class ClassSubset:
    """A dataset's classes as a part of the larger label space its models are trained on (ImageNet-R's
    200 of the 1000 ImageNet classes): a model of the whole space is evaluated on these classes alone."""

    indices: tuple[int, ...]  # each class's index in the larger space, in label order
    total: int  # the number of classes of the larger space
    space: str  # its name ("ImageNet")

    @property
    def protocol(self) -> str:
        """What evaluating a model of the whole space on these classes does, in words for a card."""
        return f"{len(self.indices)}-class subset of the {self.total} {self.space} classes"


@dataclass(frozen=True)
class Dataset:
    name: str
    train: AnySplit | None
    val: AnySplit | None
    test: AnySplit | None
    class_names: tuple[str, ...]
    class_subset: ClassSubset | None = None  # where its classes are a part of a larger label space (ImageNet-R, -A)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return next(split for split in (self.train, self.val, self.test) if split is not None).image_shape

    @property
    def skipped(self) -> tuple[tuple[str, str], ...]:
        """``(path, why)`` of every image file its splits left out as damaged or unreadable."""
        return tuple(entry for which in SPLITS for entry in getattr(getattr(self, which), "skipped", ()))

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
    severities: tuple[int, ...] = SEVERITIES  # the severities present (MNIST-C has one)

    def load(self, corruption: str, severity: int, limit: int | None = None) -> AnySplit:
        if corruption not in self.corruptions:
            raise UserError(f"{self.name} has no {corruption} images; it has {', '.join(self.corruptions)}")
        if severity not in self.severities:
            raise UserError(f"{self.name} has no severity {severity}; it has {', '.join(map(str, self.severities))}")
        return self.load_split(corruption, severity).head(limit)

    def converted(self, image_size: tuple[int, int] | None, channels: int | None) -> "CorruptedDataset":
        """The same sets with every split resized and/or converted to ``channels`` as it is loaded."""
        if image_size is None and channels is None:
            return self
        shape = (*(image_size or self.image_shape[:2]), channels or self.image_shape[-1])
        return replace(
            self,
            image_shape=tuple(shape),
            load_split=lambda corruption, severity: converted(self.load_split(corruption, severity), image_size, channels),
            clean=None if self.clean is None else converted(self.clean, image_size, channels),
        )


Loader = Callable[[str, LoadOptions], Union[Dataset, CorruptedDataset]]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Loader
    kind: str
    layout: str  # one line: the files it reads (or "embedded"), for --help and the docs
    argument: str | None  # what follows "NAME:", if the name takes an argument
    labels: str | None = None  # what --labels picks for it ("fine (default) or coarse"); None: it has one label set


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str, *, layout: str, kind: str = "images", argument: str | None = None, labels: str | None = None
) -> Callable[[Loader], Loader]:
    """Register ``loader(argument, options)`` under ``name``; ``labels`` says what ``--labels`` picks
    for it, where it has several label sets (the loader checks the value)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")

    def decorator(loader: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = DatasetEntry(name, loader, kind, layout, argument, labels)
        return loader

    return decorator


def parse_spec(spec: str) -> tuple[DatasetEntry, str]:
    """The registry entry and the argument of ``NAME[:ARGUMENT]``, or a ``UserError``."""
    _load_all()
    name, _, argument = str(spec).partition(":")
    checks.chosen(name, DATASETS, "dataset")
    entry = DATASETS[name]
    if argument and entry.argument is None:
        raise UserError(f"dataset {name} takes no argument (got {spec!r})")
    return entry, argument


def argument_words(name: str, argument: str, allowed: Sequence[str]) -> list[str]:
    """The ``:``-separated words after a dataset's name, each one of ``allowed``, or a ``UserError``."""
    words = [word for word in argument.split(":") if word] if argument else []
    unknown = [word for word in words if word not in allowed]
    if unknown:
        raise UserError(f"dataset {name} takes {' or '.join(allowed)} after its name ({name}:WORD), got {unknown[0]!r}")
    return words


def partial_argument(name: str, argument: str) -> tuple[str, bool]:
    """For a release whose only argument is ``partial``: the name results record (``name`` or
    ``name:partial``) and whether a partial copy was allowed."""
    partial = PARTIAL in argument_words(name, argument, (PARTIAL,))
    return (f"{name}:{PARTIAL}" if partial else name), partial


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
    strict: bool = False,
) -> Dataset:
    """Load an ``images`` dataset by spec; ``limit`` keeps the first examples of each split."""
    entry, argument = parse_spec(spec)
    check_dataset(spec, "images")
    options = _checked_options(entry, LoadOptions(None if data_dir is None else str(data_dir), download, image_size, channels, labels, strict))
    dataset = entry.load(argument, options)
    dataset = replace(dataset, **{w: converted(getattr(dataset, w), image_size, channels) for w in SPLITS if getattr(dataset, w) is not None})
    return dataset.limited(limit)


def load_corrupted_dataset(
    spec: str,
    data_dir: str | os.PathLike | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    labels: str | None = None,
    strict: bool = False,
) -> CorruptedDataset:
    """Load a ``corrupted`` dataset by spec; every split it gives is resized and converted as asked."""
    entry, argument = parse_spec(spec)
    check_dataset(spec, "corrupted")
    options = _checked_options(entry, LoadOptions(None if data_dir is None else str(data_dir), False, image_size, channels, labels, strict))
    return entry.load(argument, options).converted(image_size, channels)


def _checked_options(entry: DatasetEntry, options: LoadOptions) -> LoadOptions:
    if options.channels is not None and options.channels not in (1, 3):
        raise UserError(f"--channels must be 1 or 3, got {options.channels}")
    if options.image_size is not None and (len(options.image_size) != 2 or min(options.image_size) < 1):
        raise UserError(f"--image-size must be two positive sizes (height, width), got {options.image_size}")
    if options.labels is not None and entry.labels is None:
        takes = ", ".join(name for name, other in DATASETS.items() if other.labels is not None)
        raise UserError(f"dataset {entry.name} has one label set; --labels applies to {takes}")
    return options


def converted(split: AnySplit, image_size: tuple[int, int] | None, channels: int | None) -> AnySplit:
    """``split`` resized to ``image_size`` and brought to ``channels`` (either None: as it is)."""
    return with_channels(with_image_size(split, image_size), channels)


def with_channels(split: AnySplit, channels: int | None) -> AnySplit:
    """``split`` with grey images repeated to 3 channels, or colour ones turned grey (ITU-R 601
    luma); unchanged for ``None`` or when it has them already."""
    if channels is None:
        return split
    if channels not in (1, 3):
        raise UserError(f"--channels must be 1 or 3, got {channels}")
    return split.with_channels(channels)


def with_image_size(split: AnySplit, image_size: tuple[int, int] | None) -> AnySplit:
    """``split`` with images resized to ``(height, width)`` (bilinear, antialiased; a centre-cropping
    ``FileSplit`` crops to it); unchanged for ``None``."""
    return split if image_size is None else split.with_image_size(tuple(image_size))


def with_validation(name: str, train: Split, test: Split | None, class_names: tuple[str, ...]) -> Dataset:
    """A ``Dataset`` whose validation split is the last ``VALIDATION_FRACTION`` of ``train``, as
    for releases that have none (CIFAR, MNIST, SVHN, STL-10)."""
    held_out = max(1, int(round(len(train) * VALIDATION_FRACTION)))
    rest = len(train) - held_out
    return Dataset(
        name,
        Split(train.images[:rest], train.labels[:rest]),
        Split(train.images[rest:], train.labels[rest:]),
        test,
        class_names,
    )


def download_to_cache(url: str, file_name: str, *, folder: str = "", extract: bool = False) -> Path:
    """Fetch ``url`` into the Keras cache (``keras_cache_dir()``, or its ``folder``) as Keras' own
    datasets are; the path of the file, or of the folder it was extracted into (Keras names it
    ``<file name up to the first dot>_extracted``); look for the files there, as Keras may have
    used another folder where the cache is not writable. A failed download is a ``UserError``."""
    import keras

    subdir = str(Path("datasets") / folder) if folder else "datasets"
    keras_cache_dir().mkdir(parents=True, exist_ok=True)  # else Keras falls back to /tmp/.keras
    try:
        found = keras.utils.get_file(file_name, origin=url, cache_dir=str(keras_cache_dir().parent), cache_subdir=subdir, extract=extract)
    except Exception as error:  # network and archive errors come in many types
        raise UserError(f"could not download {url}: {error}") from None
    return Path(found)


def download_through_keras(module: str, what: str) -> None:
    """Let Keras fetch a dataset it hosts (``keras.datasets.<module>``) into its cache; the arrays
    it returns are not used, the loader reads the cached files as it reads any."""
    import keras

    try:
        getattr(keras.datasets, module).load_data()
    except Exception as error:  # network errors come in many types
        raise UserError(f"could not download {what}: {error}") from None


def open_npy(path: Path, what: str):
    """A ``.npy`` file as a ``RowFile`` (rows read on demand), or a ``UserError`` naming it (``what``
    names the dataset)."""
    from noisegame_cli.data.sources import RowFile

    try:
        return RowFile.open(path)
    except FileNotFoundError:
        raise UserError(f"{what} file missing: {path}") from None
    except (ValueError, OSError, EOFError) as error:
        raise UserError(f"{path} is truncated or not a .npy array ({error})") from None


def check_labels(labels: np.ndarray, num_classes: int, where: str, *, first: int = 0) -> np.ndarray:
    """``labels`` as int64 (shifted to start at 0), or a ``UserError`` naming ``where`` when one lies
    outside ``first .. first + num_classes - 1``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{where}: labels must be a 1-D integer array, got {labels.dtype} {list(labels.shape)}")
    if len(labels) and (labels.min() < first or labels.max() >= first + num_classes):
        raise UserError(f"{where}: labels must lie in {first}..{first + num_classes - 1}, found {labels.min()}..{labels.max()}")
    return labels.astype(np.int64) - first


def find_or_download(find: Callable[[Any], Path | None], data_dir, download: bool, *, name: str, folder: str, marker: str,
                     url: str, archive: str) -> Path:  # fmt: skip
    """Where ``find`` locates the dataset ``name`` (its ``folder``, recognised by ``marker``): under
    ``data_dir``, else in the Keras cache, else downloaded there with ``--download``."""
    found = find(data_dir)
    if found is not None:
        return found
    if data_dir is not None:
        raise UserError(f"no {name} in {data_dir}: expected {folder}/ with {marker} there")
    if not download:
        raise UserError(f"{name} is not in the Keras cache ({keras_cache_dir() / folder}); pass --data-dir or --download")
    unpacked = download_to_cache(url, archive, extract=True)
    found = find(unpacked)
    if found is None:
        raise UserError(f"{name} was downloaded but {unpacked} holds no {folder}/")
    return found


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return keras_cache("datasets")


def _load_all() -> None:
    """Import every loader module, so that their names are registered."""
    import noisegame_cli.data  # noqa: F401  (its __init__ imports the loader modules)
