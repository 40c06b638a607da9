"""Natural distribution shifts: new test sets for ImageNet and CIFAR-10, in their published layouts.

Each is a test-only dataset (no train or val split) for a model trained on the original set:

- ``imagenet-r`` (ImageNet-R, Hendrycks et al. 2021): renditions of 200 ImageNet classes,
  ``imagenet-r/<wnid>/*.jpg``;
- ``imagenet-a`` (ImageNet-A, Hendrycks et al. 2021): natural adversarial examples of 200 ImageNet
  classes, ``imagenet-a/<wnid>/*.jpg`` (the release's ``README.txt`` is ignored);
- ``imagenet-sketch`` (ImageNet-Sketch, Wang et al. 2019): sketches of the 1000 classes,
  ``sketch/<wnid>/*.JPEG``;
- ``imagenet-v2[:VARIANT]`` (ImageNetV2, Recht et al. 2019): new test images of the 1000 classes in
  folders named by class index ``0`` .. ``999`` (not by wnid), ``imagenetv2-<VARIANT>-format-val/<index>/*.jpeg``;
  VARIANT is ``matched-frequency`` (the default), ``threshold0.7`` or ``top-images``;
- ``cifar10.1[:v4]`` (CIFAR-10.1, Recht et al. 2018): ``cifar10.1_v6_data.npy`` (uint8 ``[2000, 32, 32, 3]``)
  and ``cifar10.1_v6_labels.npy``, or the v4 files (2021 images) with ``:v4``; read one batch at a time.

The ImageNet sets are found in ``--data-dir`` (holding the release's top folder, or being it) or in the
Keras cache (``<cache>/<top folder>``); they are never downloaded. They are prepared as ``imagenet`` is:
short side to 256, centre crop 224. Labels index the set's own classes, in the sorted wnid order (the
order of their evaluation scripts, and for ImageNet-V2 the class index); class names are wnids.
ImageNet-R's and ImageNet-A's 200 classes carry a ``ClassSubset`` of the 1000 ImageNet classes, by
which a model of the 1000 classes is restricted to them (``models.class_subset``).

A copy must hold every class folder of its release: a missing one is an error naming it, since a
partial download or extraction would otherwise give a number that passes for the published protocol's.
To evaluate a partial copy on purpose, add ``:partial`` to the name (``imagenet-r:partial``,
``imagenet-v2:top-images:partial``): the class folders present are read, labels and classes stay those
of the whole set (so ImageNet-R keeps its 200-class restriction), and the dataset's name, which results
record, says that it was partial. A folder that is not one of the release's classes is an error either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from noisegame_cli.data.cifar import CIFAR10_CLASSES
from noisegame_cli.data.datasets import (
    PARTIAL,
    ClassSubset,
    Dataset,
    LoadOptions,
    argument_words,
    check_labels,
    download_to_cache,
    keras_cache_dir,
    open_npy,
    partial_argument,
    register_dataset,
)
from noisegame_cli.data.folders import ReleaseClasses, file_split, release_class_files
from noisegame_cli.data.imagenet import IMAGENET_CLASSES, IMAGENET_FOLDERS, IMAGENET_SIZE
from noisegame_cli.data.imagenet_classes import IMAGENET_SPACE, imagenet_a_wnids, imagenet_indices, imagenet_r_wnids, imagenet_wnids
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

# The natural shifts of each original dataset, as a card lists them (the C-bar corruptions are corrupted datasets).
NATURAL_SHIFTS = {
    "cifar10": ("cifar10.1",),
    "imagenet": ("imagenet-v2", "imagenet-sketch", "imagenet-r", "imagenet-a"),
}


def _class_index_folders() -> tuple[str, ...]:
    return tuple(str(index) for index in range(IMAGENET_CLASSES))


@dataclass(frozen=True)
class FolderRelease:
    """A test set published as one top folder of class folders."""

    title: str  # as its paper names it
    folder: str  # the release's top folder
    files: str  # its images' file names, for messages and the docs ("*.jpg")
    class_folders: Callable[[], tuple[str, ...]]  # the class folders' names, in label order
    classes: str  # what the class folders are, in words, for messages
    class_names: Callable[[], tuple[str, ...]] | None = None  # the wnids in label order, where they are not the folders' names
    subset: bool = False  # whether its classes are a part of the 1000 ImageNet classes (restricted to, for a model of the 1000)
    class_folder: str = "<wnid>"  # how the layout names a class folder

    @property
    def layout(self) -> str:
        return f"{self.folder}/{self.class_folder}/{self.files}"


IMAGENET_R = FolderRelease("ImageNet-R", "imagenet-r", "*.jpg", imagenet_r_wnids, "the 200 wnids of ImageNet-R", subset=True)
IMAGENET_A = FolderRelease("ImageNet-A", "imagenet-a", "*.jpg", imagenet_a_wnids, "the 200 wnids of ImageNet-A", subset=True)
IMAGENET_SKETCH = FolderRelease("ImageNet-Sketch", "sketch", "*.JPEG", imagenet_wnids, IMAGENET_FOLDERS)
V2_FOLDERS = {
    "matched-frequency": "imagenetv2-matched-frequency-format-val",
    "threshold0.7": "imagenetv2-threshold0.7-format-val",
    "top-images": "imagenetv2-top-images-format-val",
}
V2_DEFAULT = "matched-frequency"
CIFAR101_VERSIONS = ("v6", "v4")
CIFAR101_FOLDER = "cifar10.1"  # where --download puts the files in the Keras cache
CIFAR101_URL = "https://raw.githubusercontent.com/modestyachts/CIFAR-10.1/master/datasets/{file}"
CIFAR101_SHAPE = (32, 32, 3)


def v2_release(variant: str) -> FolderRelease:
    return FolderRelease(
        f"ImageNet-V2 {variant}", V2_FOLDERS[variant], "*.jpeg", _class_index_folders,
        "the class indices 0..999 (ImageNet-V2 names its class folders by index, not by wnid)", class_names=imagenet_wnids,
        class_folder="<class index>",
    )  # fmt: skip


def _release_loader(name: str, release: FolderRelease) -> Callable[[str, LoadOptions], Dataset]:
    def load(argument: str, options: LoadOptions) -> Dataset:
        spec, partial = partial_argument(name, argument)
        return load_folder_release(spec, release, options.data_dir, partial=partial, strict=options.strict)

    return load


for _name, _release, _source in (
    ("imagenet-r", IMAGENET_R, "github.com/hendrycks/imagenet-r"),
    ("imagenet-a", IMAGENET_A, "github.com/hendrycks/natural-adv-examples"),
    ("imagenet-sketch", IMAGENET_SKETCH, "github.com/HaohanWang/ImageNet-Sketch"),
):
    register_dataset(
        _name,
        layout=f"{_release.layout} ({_release.classes}) in --data-dir or the Keras cache ({_source})",
        argument=PARTIAL,
    )(_release_loader(_name, _release))


@register_dataset(
    "imagenet-v2",
    layout="imagenetv2-<variant>-format-val/<class index 0-999>/*.jpeg in --data-dir or the Keras cache (github.com/modestyachts/ImageNetV2)",
    argument=f"{'|'.join(V2_FOLDERS)} (default {V2_DEFAULT}), and/or {PARTIAL}",
)
def imagenet_v2_dataset(argument: str, options: LoadOptions) -> Dataset:
    words = argument_words("imagenet-v2", argument, (*V2_FOLDERS, PARTIAL))
    variants = [word for word in words if word in V2_FOLDERS]
    if len(variants) > 1:
        raise UserError(f"dataset imagenet-v2 takes one variant, got {', '.join(variants)}")
    variant = variants[0] if variants else V2_DEFAULT
    _check_v2_variant(options.data_dir, variant)
    name = ":".join(["imagenet-v2", variant, *([PARTIAL] if PARTIAL in words else [])])
    return load_folder_release(name, v2_release(variant), options.data_dir, partial=PARTIAL in words, strict=options.strict)


@register_dataset(
    "cifar10.1",
    layout="cifar10.1_v6_data.npy and cifar10.1_v6_labels.npy (v4: cifar10.1_v4_*) in --data-dir, its datasets/, or the Keras cache; --download fetches them (github.com/modestyachts/CIFAR-10.1)",
    argument="v6 (default) or v4",
)
def cifar101_dataset(argument: str, options: LoadOptions) -> Dataset:
    versions = argument_words("cifar10.1", argument, CIFAR101_VERSIONS)
    if len(versions) > 1:
        raise UserError(f"dataset cifar10.1 takes one version, got {', '.join(versions)}")
    return load_cifar101(options.data_dir, version=versions[0] if versions else CIFAR101_VERSIONS[0], download=options.download)


def load_folder_release(name: str, release: FolderRelease, data_dir: str | os.PathLike | None, *, partial: bool = False,
                        strict: bool = False) -> Dataset:  # fmt: skip
    """The test set ``release`` from ``data_dir`` (or the Keras cache) as a streamed test split; every
    class folder must be there unless ``partial`` (see the module's docstring); damaged files are
    skipped with a warning, or refused with ``strict``."""
    root = locate_release(release, data_dir)
    expected = release.class_folders()
    files = release_class_files(root, ReleaseClasses(release.title, expected, release.classes), spec=name, partial=partial)
    class_names = release.class_names() if release.class_names is not None else expected
    subset = ClassSubset(imagenet_indices(class_names), IMAGENET_CLASSES, IMAGENET_SPACE) if release.subset else None
    test = file_split(files, IMAGENET_SIZE, 3, resize="centre_crop", strict=strict, where=f"{name} in {root}")
    return Dataset(name, None, None, test, class_names, subset)


def locate_release(release: FolderRelease, data_dir: str | os.PathLike | None) -> Path:
    """The release's top folder: in ``data_dir`` or ``data_dir`` itself (when it holds one of the
    release's class folders), else in the Keras cache."""
    if data_dir is None:
        cached = keras_cache_dir() / release.folder
        if not cached.is_dir():
            raise UserError(f"{release.title} is not in the Keras cache ({cached}); pass --data-dir (docs/datasets.md says where to get it)")
        return cached
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data-dir {root}: no such folder")
    if (root / release.folder).is_dir():
        return root / release.folder
    if root.name == release.folder or any((root / folder).is_dir() for folder in release.class_folders()):
        return root
    raise UserError(f"no {release.title} in {root}: expected {release.layout} there, the class folders being {release.classes}")


def _check_v2_variant(data_dir: str | os.PathLike | None, variant: str) -> None:
    """A ``UserError`` when ``data_dir`` is, or holds only, another variant's folder than ``variant``'s:
    its images would otherwise be evaluated under the wrong name."""
    if data_dir is None or (Path(data_dir) / V2_FOLDERS[variant]).is_dir():
        return
    root = Path(data_dir)
    for other, folder in V2_FOLDERS.items():
        if other != variant and (root.name == folder or (root / folder).is_dir()):
            raise UserError(f"{root / folder if root.name != folder else root} is ImageNet-V2's {other} variant, not {variant}: "
                            f"name the dataset imagenet-v2:{other}")  # fmt: skip


def load_cifar101(data_dir: str | os.PathLike | None = None, *, version: str = "v6", download: bool = False) -> Dataset:
    """CIFAR-10.1 (``version`` v6 or v4) as a test split read from its ``.npy`` files one batch at a time."""
    data_file, labels_file = (f"cifar10.1_{version}_{part}.npy" for part in ("data", "labels"))
    folder = _find_cifar101(data_dir, data_file)
    if folder is None:
        if data_dir is not None:
            raise UserError(f"no CIFAR-10.1 {version} in {data_dir}: expected {data_file} and {labels_file} there or in its datasets/")
        if not download:
            raise UserError(f"CIFAR-10.1 {version} is not in the Keras cache ({keras_cache_dir() / CIFAR101_FOLDER}); pass --data-dir or --download")
        fetched = [download_to_cache(CIFAR101_URL.format(file=file), file, folder=CIFAR101_FOLDER) for file in (data_file, labels_file)]
        folder = fetched[0].parent
    images = open_npy(folder / data_file, "CIFAR-10.1")
    labels = check_labels(np.asarray(open_npy(folder / labels_file, "CIFAR-10.1")), len(CIFAR10_CLASSES), str(folder / labels_file))
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != CIFAR101_SHAPE:
        raise UserError(f"{folder / data_file}: images must be uint8 [N, 32, 32, 3], got {images.dtype} {list(images.shape)}")
    if len(images) != len(labels):
        raise UserError(f"{folder / data_file} holds {len(images)} images but {labels_file} {len(labels)} labels")
    name = "cifar10.1" if version == CIFAR101_VERSIONS[0] else f"cifar10.1:{version}"
    return Dataset(name, None, None, Split(images, labels), CIFAR10_CLASSES)


def _find_cifar101(data_dir: str | os.PathLike | None, data_file: str) -> Path | None:
    """The folder holding ``data_file``: ``data_dir`` or its ``datasets/`` (a clone of the repository),
    or the Keras cache's ``cifar10.1/``."""
    roots = [Path(data_dir), Path(data_dir) / "datasets"] if data_dir is not None else [keras_cache_dir() / CIFAR101_FOLDER]
    return next((root for root in roots if (root / data_file).is_file()), None)
