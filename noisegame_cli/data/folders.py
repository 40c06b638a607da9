"""Image folders with one subfolder per class, streamed from their files; the ``folder:PATH`` dataset.

``folder:PATH`` reads either

- ``PATH/train/<class>/*`` with optional ``PATH/val/<class>/*`` and ``PATH/test/<class>/*``: without
  ``val/``, 10 % of each class of ``train/`` is held out as the validation split (drawn with the
  fixed seed 0, not ``--seed``); without ``test/`` there is no test split; or
- one class-folder tree ``PATH/<class>/*``, split per class into 80 % train, 10 % val and 10 % test
  by a permutation with the fixed seed 0 (each class needs at least 3 images).

Files are JPEG, PNG, BMP or GIF (the first frame), found by suffix; other files are ignored. Each is
checked before anything runs from its first and last bytes (``sources.scan_image_files``), so a file
named .JPEG that holds a PNG, or a CMYK JPEG, decodes; a damaged or unreadable file (truncated, not
an image, a format neither TensorFlow nor Pillow reads) is left out with a warning naming it and the
count of skipped files (recorded in the run's env.json), or with ``--strict`` refused in one line. Class names are the folder names, sorted; every split must have
the same classes. Images keep the first training image's size and channels (grey files stay
1-channel) unless ``--image-size`` / ``--channels`` say otherwise; others are resized to it.

Within a split the files come class-interleaved (the first file of each class in turn, then the
second, ...; each class's files sorted by name), so ``--limit`` keeps the classes balanced.
The helpers here also serve the ImageNet, ImageNet-C, natural-shift and Tiny-ImageNet loaders;
``release_class_files`` reads a published release's class folders with the release's own labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from noisegame_cli.data.datasets import PARTIAL, Dataset, LoadOptions, register_dataset
from noisegame_cli.data.sources import FileSplit, first_image_shape, image_files, report_skipped, scan_image_files
from noisegame_cli.errors import UserError

PARTITION_SEED = 0  # fixed: the same files land in the same split whatever --seed is
TREE_FRACTIONS = (0.8, 0.1, 0.1)  # train, val, test of each class of a single class-folder tree
HOLDOUT_FRACTION = 0.1  # of each class of train/, held out as val/ where there is none
SPLIT_FOLDERS = ("train", "val", "test")


@register_dataset(
    "folder",
    layout="PATH/train/<class>/* (+ optional PATH/val/, PATH/test/), or PATH/<class>/* split 80/10/10 per class (seed 0); JPEG/PNG/BMP/GIF",
    argument="PATH",
)
def folder_dataset(argument: str, options: LoadOptions) -> Dataset:
    if not argument:
        raise UserError("dataset folder needs a path: folder:PATH")
    return load_image_folder(argument, strict=options.strict)


def load_image_folder(path: str | os.PathLike, *, strict: bool = False) -> Dataset:
    """The image folder at ``path`` in either layout (see the module's docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"folder:{path}: no such folder")
    if (root / "train").is_dir():
        class_names, train = read_class_tree(root / "train")
        val = _matching_tree(root / "val", class_names)
        test = _matching_tree(root / "test", class_names)
        if val is None:
            train, val = divide_classes(root / "train", class_names, train, (1 - HOLDOUT_FRACTION, HOLDOUT_FRACTION))
        parts = {"train": train, "val": val, "test": test}
    else:
        class_names, tree = read_class_tree(root)
        parts = dict(zip(SPLIT_FOLDERS, divide_classes(root, class_names, tree, TREE_FRACTIONS)))
    height, width, channels = sampled_image_shape(parts["train"], root)
    splits = {which: None if files is None else file_split(files, (height, width), channels, strict=strict, where=f"folder:{path} {which}")
              for which, files in parts.items()}  # fmt: skip
    return Dataset(f"folder:{path}", splits["train"], splits["val"], splits["test"], class_names)


def _matching_tree(folder: Path, class_names: tuple[str, ...]) -> list[list[Path]] | None:
    """The class files of ``folder`` (None where it is absent), or a ``UserError`` when its classes differ."""
    if not folder.is_dir():
        return None
    names, files = read_class_tree(folder)
    check_same_classes(folder, names, class_names)
    return files


def check_same_classes(folder: Path, names: Sequence[str], expected: Sequence[str], reference: str = "the training split") -> None:
    """A ``UserError`` naming ``folder`` when its class folders ``names`` are not ``expected``
    (those of ``reference``), with the first few missing and extra ones."""
    missing, extra = sorted(set(expected) - set(names)), sorted(set(names) - set(expected))
    if missing or extra:
        detail = "; ".join(part for part in (f"missing {', '.join(missing[:5])}" if missing else "", f"extra {', '.join(extra[:5])}" if extra else "") if part)
        raise UserError(f"{folder} has other classes than {reference} ({detail})")


@dataclass(frozen=True)
class ReleaseClasses:
    """The class folders a published release holds: ``folders`` their names in label order, ``title``
    the release's name and ``classes`` what its folders are, in words (both for messages)."""

    title: str
    folders: tuple[str, ...]
    classes: str


def release_class_files(root: Path, release: ReleaseClasses, *, spec: str, partial: bool = False) -> list[list[Path]]:
    """Each of ``release``'s class folders' image files under ``root``, in its label order, so that
    labels are the release's whatever folders a copy holds.

    A ``UserError`` for a folder of ``root`` that is not one of the release's, for a class folder
    without images, and, unless ``partial``, for a missing class folder (advising ``spec:partial``);
    a copy with none is refused either way. A class missing from a partial copy has no files."""
    present = set(class_folder_names(root))
    foreign = sorted(present - set(release.folders))
    if foreign:
        raise UserError(f"{root / foreign[0]} is not a class folder of {release.title}: its class folders are {release.classes}")
    missing = [folder for folder in release.folders if folder not in present]
    if missing and (not partial or len(missing) == len(release.folders)):
        advice = f"; name the dataset {spec}:{PARTIAL} to evaluate the classes present" if not partial and present else ""
        raise UserError(f"{root} holds {len(present)} of the {len(release.folders)} class folders of {release.title}; "
                        f"missing {listed(missing)}{advice}")  # fmt: skip
    return [class_files(root / folder) if folder in present else [] for folder in release.folders]


def listed(names: Sequence[str], count: int = 3) -> str:
    """The first ``count`` of ``names``, comma-separated, with ``...`` where there are more."""
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")


def class_folder_names(root: Path) -> tuple[str, ...]:
    """The subfolders of ``root`` (hidden ones left out), sorted: its class names."""
    return tuple(sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")))


def read_class_tree(root: Path) -> tuple[tuple[str, ...], list[list[Path]]]:
    """Class names and each class's image files, from ``root/<class>/*``.

    A ``UserError`` when ``root`` has no class folder or a class folder holds no image."""
    names = class_folder_names(root)
    if not names:
        raise UserError(f"{root} holds no class folders (expected {root}/<class>/<image files>)")
    return names, [class_files(root / name) for name in names]


def class_files(folder: Path) -> list[Path]:
    """The image files of one class folder, sorted; a ``UserError`` when there are none."""
    if not folder.is_dir():
        raise UserError(f"class folder missing: {folder}")
    files = image_files(folder)
    if not files:
        raise UserError(f"class folder {folder} holds no JPEG, PNG, BMP or GIF image")
    return files


def partition(files: Sequence[Path], fractions: Sequence[float], *, seed, where: Path) -> list[list[Path]]:
    """``files`` divided into ``len(fractions)`` parts of about those fractions by a seeded permutation.

    Every part after the first gets at least one file (so a class needs ``len(fractions)`` files);
    each part keeps the files sorted by name."""
    if len(files) < len(fractions):
        raise UserError(f"class folder {where} has {len(files)} image(s); dividing it into {len(fractions)} splits needs at least {len(fractions)}")
    order = np.random.default_rng(seed).permutation(len(files))
    sizes = [max(1, int(round(fraction * len(files)))) for fraction in fractions[1:]]
    sizes = [len(files) - sum(sizes), *sizes]
    if sizes[0] < 1:
        raise UserError(f"class folder {where} has {len(files)} images, too few to divide by {list(fractions)}")
    bounds = np.cumsum([0, *sizes])
    return [sorted(files[i] for i in order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]


def divide_classes(root: Path, class_names: Sequence[str], files_by_class: Sequence[Sequence[Path]], fractions: Sequence[float]) -> list[list[list[Path]]]:
    """Each class's files partitioned by ``fractions`` (class ``k`` with the seed ``(0, k)``); one
    list of per-class files for each fraction."""
    divided = [partition(files, fractions, seed=(PARTITION_SEED, k), where=root / name) for k, (name, files) in enumerate(zip(class_names, files_by_class))]
    return [[per_class[index] for per_class in divided] for index in range(len(fractions))]


def sampled_image_shape(files_by_class: Sequence[Sequence[Path]], where: Path) -> tuple[int, int, int]:
    """The first class's first readable image's height and width, and 1 channel only when every class's
    first readable image is grey (a colour set with a few grey files, as ImageNet has, stays colour)."""
    shapes = [shape for shape in (_first_readable_shape(files) for files in files_by_class) if shape is not None]
    if not shapes:
        raise UserError(f"{where} holds no readable image files")
    height, width, _ = shapes[0]
    grey = all(shape[2] == 1 for shape in shapes)
    return height, width, 1 if grey else 3


def _first_readable_shape(files: Sequence[Path]) -> tuple[int, int, int] | None:
    """The shape of the first of ``files`` whose header reads (damaged files are skipped later, with a warning)."""
    for path in files:
        try:
            return first_image_shape(path)
        except UserError:
            continue
    return None


def interleaved(files_by_class: Sequence[Sequence[Path]]) -> tuple[tuple[str, ...], np.ndarray]:
    """Paths and labels taking each class's next file in turn (classes with fewer files drop out)."""
    paths, labels = [], []
    for index in range(max((len(files) for files in files_by_class), default=0)):
        for label, files in enumerate(files_by_class):
            if index < len(files):
                paths.append(str(files[index]))
                labels.append(label)
    return tuple(paths), np.asarray(labels, dtype=np.int64)


def file_split(
    files_by_class: Sequence[Sequence[Path]], image_size: tuple[int, int], channels: int, resize: str = "stretch",
    *, strict: bool = False, where: str = "the dataset",
) -> FileSplit:  # fmt: skip
    """A class-interleaved ``FileSplit`` of every class's usable files: each is checked first
    (``scan_image_files``); damaged ones are left out with a warning naming them (``where`` says whose
    files they are), or with ``strict`` refused in one line."""
    paths, labels = interleaved(files_by_class)
    usable, pillow, skipped = scan_image_files(paths, strict=strict)
    report_skipped(skipped, len(paths), where)
    if paths and not any(usable):
        raise UserError(f"{where}: none of its {len(paths)} image files is readable (see the warnings above)")
    kept = np.asarray(usable, dtype=bool)
    return FileSplit(tuple(p for p, keep in zip(paths, usable) if keep), labels[kept] if len(labels) else labels, tuple(image_size),
                     channels, resize, tuple(pillow) if any(pillow) else (), skipped)  # fmt: skip
