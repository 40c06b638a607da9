"""Corrupted copies in the ImageNet-C folder layout: ``<corruption>/<severity>/<class>/<file>.JPEG``.

Reading (``imagenet-c``, ``tiny-imagenet-c``): ``--data-dir`` holds one folder per corruption, each
with severity folders ``1`` .. ``5``, each with one folder per class. Each (corruption, severity)
part streams from its files when it is loaded (its files are listed and their first bytes checked
then, not before). The corruptions are the folders that hold a severity folder. The classes are,
in this order of precedence:

- a copy's ``classes.txt`` (written below, by ``noisegame corrupt``): its lines in label order,
  whatever the dataset's name; a class may have no images. A copy of ``imagenet`` lists the 1000
  wnids of the class table, so its labels are the table's; a copy of any other dataset keeps that
  dataset's own classes;
- for ``imagenet-c`` (the release, which has no ``classes.txt``): the 1000 ImageNet wnids of the
  class table (``imagenet_classes``), whatever folders are present, so a 1000-class model fits.
  Every part must hold every class folder, unless the dataset is named ``imagenet-c:partial``
  (each part then reads the class folders it has, with the same labels); a folder that is not an
  ImageNet wnid is an error either way;
- otherwise (``tiny-imagenet-c``): the first part's class folders, sorted, and every part must have
  the same ones.

Writing (the ``corrupt`` command): ``write_folder_part`` writes one (corruption, severity) part as
the released ImageNet-C was saved (PIL JPEG, quality 85, ``optimize=True``), into a hidden folder
beside its place that is renamed into place once every image is written, so that a part is either
absent or complete (``folder_part_complete``) and a resumed run can skip finished parts.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from noisegame_cli.corruptions.names import KNOWN_CORRUPTIONS, SEVERITIES
from noisegame_cli.data.datasets import PARTIAL, CorruptedDataset, LoadOptions, partial_argument, register_dataset
from noisegame_cli.data.folders import (
    ReleaseClasses,
    check_same_classes,
    class_files,
    class_folder_names,
    file_split,
    release_class_files,
    sampled_image_shape,
)
from noisegame_cli.data.imagenet import imagenet_release
from noisegame_cli.data.sources import FileSplit, image_files
from noisegame_cli.errors import UserError
from noisegame_cli.runs import write_text_atomically

JPEG_QUALITY = 85  # what the released ImageNet-C was saved with (PIL, optimize=True)
CLASS_LIST_FILE = "classes.txt"
JPEG_SUFFIX = ".JPEG"
WRITER_THREADS = 4  # Pillow releases the GIL while it encodes, so threads can overlap the saves


@register_dataset(
    "imagenet-c",
    kind="corrupted",
    layout="--data-dir holding <corruption>/<severity 1-5>/<wnid>/*.JPEG (the 1000 ImageNet wnids), 224x224 (Zenodo record 2235448)",
    argument=PARTIAL,
)
def imagenet_c_dataset(argument: str, options: LoadOptions) -> CorruptedDataset:
    name, partial = partial_argument("imagenet-c", argument)
    return folder_corrupted_dataset(name, options.data_dir, parameters="imagenet-c", clean_source=f"imagenet:{PARTIAL}" if partial else "imagenet",
                                    release=imagenet_release("ImageNet-C"), partial=partial, strict=options.strict)  # fmt: skip


@register_dataset(
    "tiny-imagenet-c",
    kind="corrupted",
    layout="--data-dir holding <corruption>/<severity 1-5>/<wnid>/*.JPEG, 64x64 (Zenodo record 2536630)",
)
def tiny_imagenet_c_dataset(argument: str, options: LoadOptions) -> CorruptedDataset:
    return folder_corrupted_dataset("tiny-imagenet-c", options.data_dir, parameters="tiny-imagenet-c", clean_source="tiny-imagenet",
                                    strict=options.strict)  # fmt: skip


def folder_corrupted_dataset(
    name: str,
    data_dir: str | os.PathLike | None,
    *,
    parameters: str,
    clean_source: str | None,
    release: ReleaseClasses | None = None,
    partial: bool = False,
    strict: bool = False,
) -> CorruptedDataset:
    """A copy in the ImageNet-C folder layout as a ``CorruptedDataset`` of streamed splits; its classes
    are its ``classes.txt``, else ``release``'s (all present in every part unless ``partial``), else
    its first part's (see the module's docstring); each part's files are checked as it is loaded
    (see ``folders.file_split``)."""
    if data_dir is None:
        raise UserError(f"--dataset {name} needs --data-dir (the folder of <corruption>/<severity>/<class>/ images)")
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data-dir {root}: no such folder")
    severities_of = {corruption: severity_folders(root / corruption) for corruption in class_folder_names(root)}
    corruptions = _in_engine_order([corruption for corruption, found in severities_of.items() if found])
    if not corruptions:
        raise UserError(f"{root} holds no <corruption>/<severity 1-5>/ folder")
    severities = tuple(sorted({severity for found in severities_of.values() for severity in found}))
    first = part_folder(root, corruptions[0], severities_of[corruptions[0]][0])
    class_names, part_files = _part_reader(root, first, release, name, partial)
    height, width, channels = sampled_image_shape(part_files(first), first)

    def load(corruption: str, severity: int) -> FileSplit:
        folder = part_folder(root, corruption, severity)
        if not folder.is_dir():
            raise UserError(f"{name} part missing: {folder}")
        return file_split(part_files(folder), (height, width), channels, strict=strict, where=str(folder))

    return CorruptedDataset(
        name, corruptions, (height, width, channels), len(class_names), load,
        clean_source=clean_source, parameters=parameters, severities=severities,
    )  # fmt: skip


def _part_reader(root: Path, first: Path, release: ReleaseClasses | None, spec: str, partial: bool):
    """The copy's class names and the function giving each class's files in one part (by precedence:
    ``classes.txt``, the release's classes, the ``first`` part's class folders)."""
    listed = read_class_list(root)
    if listed is not None:
        return listed, lambda folder: _listed_part_files(folder, listed)
    if release is not None:
        return release.folders, lambda folder: release_class_files(folder, release, spec=spec, partial=partial)
    class_names = class_folder_names(first)

    def same_as_first(folder: Path) -> list[list[Path]]:
        check_same_classes(folder, class_folder_names(folder), class_names, reference=str(first))
        return [class_files(folder / name) for name in class_names]

    return class_names, same_as_first


def severity_folders(folder: Path) -> list[int]:
    """The severities 1..5 that have a folder in ``folder``."""
    return [severity for severity in SEVERITIES if (folder / str(severity)).is_dir()]


def part_folder(root: str | os.PathLike, corruption: str, severity: int) -> Path:
    return Path(root) / corruption / str(severity)


def _in_engine_order(names: list[str]) -> tuple[str, ...]:
    known = [name for name in KNOWN_CORRUPTIONS if name in names]
    return tuple(known + sorted(set(names) - set(known)))


def _listed_part_files(folder: Path, class_names: tuple[str, ...]) -> list[list[Path]]:
    """Each listed class's files in one part; a class may lack a folder or images, a folder must be listed."""
    present = class_folder_names(folder)
    extra = sorted(set(present) - set(class_names))
    if extra:
        raise UserError(f"{folder} has class folder {extra[0]}, which {CLASS_LIST_FILE} does not list")
    return [image_files(folder / name) if name in present else [] for name in class_names]


def read_class_list(root: Path) -> tuple[str, ...] | None:
    path = root / CLASS_LIST_FILE
    if not path.is_file():
        return None
    names = tuple(line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip())
    if not names or len(set(names)) != len(names):
        raise UserError(f"{path} must list each class folder once, in label order")
    return names


# --- writing ---------------------------------------------------------------------------------


def folder_part_complete(out: str | os.PathLike, corruption: str, severity: int) -> bool:
    """Whether the part was written whole (a part appears only once complete)."""
    return part_folder(out, corruption, severity).is_dir()


def class_folder_names_for(class_names: Sequence[str]) -> tuple[str, ...]:
    """A safe, distinct folder name for each class (a path separator becomes ``_``: ``T-shirt_top``)."""
    names: list[str] = []
    for index, name in enumerate(class_names):
        safe = "".join("_" if char in "/\\\0" else char for char in str(name)).strip()
        safe = safe if safe and safe not in (".", "..") and not safe.startswith(".") else f"class_{index}"
        names.append(safe if safe not in names else f"{safe}_{index}")
    return tuple(names)


def output_file_names(split) -> list[str] | None:
    """The names to give a split's images in a written part (``write_folder_part(file_names=...)``):
    a split of files keeps its files' names (as ImageNet-C kept ILSVRC2012_val_*.JPEG); None for
    one of arrays, whose images are then numbered."""
    paths = getattr(split, "paths", None)
    return None if paths is None else [Path(path).name for path in paths]


def write_folder_part(
    out: str | os.PathLike,
    corruption: str,
    severity: int,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    *,
    file_names: Sequence[str] | None = None,
    quality: int = JPEG_QUALITY,
    threads: int = WRITER_THREADS,
) -> Path:
    """Write one (corruption, severity) part of a corrupted copy as
    ``<out>/<corruption>/<severity>/<class>/<file>.JPEG`` and return its folder.

    ``batches`` gives uint8 images ``[B, H, W, C]`` (C 1 or 3) and their labels in the split's
    order; ``file_names`` names them (``output_file_names``; suffixes become ``.JPEG``), else they
    are numbered ``00000000.JPEG`` .. in order. ``<out>/classes.txt`` records the class folders in
    label order. The part is written into ``<out>/<corruption>/.<severity>.partial`` and renamed
    into place when complete; a finished part written again is replaced whole. ``threads`` encode
    and save the files while the next batch is read."""
    folders = class_folder_names_for(class_names)
    _ensure_class_list(Path(out), folders)
    final = part_folder(out, corruption, severity)
    staging = final.with_name(f".{severity}.partial")
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted run
    for folder in folders:
        (staging / folder).mkdir(parents=True)
    written, taken = 0, set()
    with ThreadPoolExecutor(threads) as pool:
        pending: list = []
        for images, labels in batches:
            for image, label in zip(np.asarray(images), np.asarray(labels)):
                name = _jpeg_name(file_names[written] if file_names is not None else f"{written:08d}")
                target = staging / folders[int(label)] / name
                if target in taken:
                    raise UserError(f"two images of class {folders[int(label)]} would both be written as {name}")
                taken.add(target)
                pending.append(pool.submit(save_jpeg, image, target, quality))
                written += 1
            pending = _finished(pending, keep=4 * threads)
        _finished(pending, keep=0)
    if file_names is not None and written != len(file_names):
        raise ValueError(f"{written} images written but {len(file_names)} file names given")
    _move_into_place(staging, final)
    return final


def save_jpeg(image: np.ndarray, path: Path, quality: int = JPEG_QUALITY) -> None:
    """One uint8 image ``[H, W, C]`` saved as the released ImageNet-C files were."""
    from PIL import Image

    pixels = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path, format="JPEG", quality=quality, optimize=True)


def _finished(pending: list, keep: int) -> list:
    """Wait for the oldest saves until at most ``keep`` are pending (raising any error of theirs)."""
    while len(pending) > keep:
        pending.pop(0).result()
    return pending


def _jpeg_name(name: str) -> str:
    stem = Path(name).stem if Path(name).suffix else name
    return stem + (Path(name).suffix if Path(name).suffix.lower() in (".jpeg", ".jpg") else JPEG_SUFFIX)


def _ensure_class_list(out: Path, folders: tuple[str, ...]) -> None:
    path = out / CLASS_LIST_FILE
    if path.is_file():
        if read_class_list(out) != folders:
            raise UserError(f"{out} already holds a corrupted copy with other classes ({path})")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, "".join(f"{folder}\n" for folder in folders))  # processes writing parts at once may race here


def _move_into_place(staging: Path, final: Path) -> None:
    if final.exists():
        retired = final.with_name(f".{final.name}.replaced")
        if retired.exists():
            shutil.rmtree(retired)
        os.rename(final, retired)
        os.rename(staging, final)
        shutil.rmtree(retired)
    else:
        os.rename(staging, final)
