"""ImageNet's validation set and Tiny ImageNet, streamed from their JPEG files.

``imagenet`` (ILSVRC 2012) is the 50 000-image validation set, the test split of a dataset with no
train or val split, prepared as the ImageNet-C generator prepared it: short side resized to 256,
centre crop 224x224 (``--image-size S`` crops S x S after resizing the short side to S*256/224).
``--data-dir`` holds it in one of two layouts:

- class folders ``<wnid>/*.JPEG`` (as the usual ``valprep.sh`` arranges it), in ``--data-dir`` or
  its ``val/``;
- the flat files of ``ILSVRC2012_img_val.tar`` (``ILSVRC2012_val_00000001.JPEG`` ...) with the
  development kit's ``ILSVRC2012_validation_ground_truth.txt`` (one 1-based ILSVRC2012_ID per line,
  in file-name order) and ``meta.mat`` (which maps each ID to its wnid), beside them or in
  ``ILSVRC2012_devkit_t12/data/``.

Labels and class names come from the table of the 1000 classes (``imagenet_classes``), not from the
folders present: class ``k`` is the ``k``-th wnid in sorted order, the index Keras' (and torchvision's)
pretrained ImageNet models use, and class names are the 1000 wnids. A copy must be whole: a missing
class folder (or, in the flat layout, a missing image the ground truth lists) is an error, unless the
dataset is named ``imagenet:partial``, which reads what is there with the same labels and 1000 classes;
a folder that is not an ImageNet wnid, and a flat file not named as the release names them, are
errors either way.

``tiny-imagenet`` reads ``tiny-imagenet-200/`` (in ``--data-dir`` or the Keras cache): ``wnids.txt``,
``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` labelled by
``val/val_annotations.txt``. The official validation set is the test split (its test set has no
labels); 10 % of each class of ``train/`` (50 images, drawn with the fixed seed 0) is the
validation split. Images are 64x64, class names the sorted wnids. ``--download`` fetches
``tiny-imagenet-200.zip`` into the Keras cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from noisegame_cli.data.datasets import PARTIAL, Dataset, LoadOptions, find_or_download, keras_cache_dir, partial_argument, register_dataset
from noisegame_cli.data.folders import (
    HOLDOUT_FRACTION,
    ReleaseClasses,
    check_same_classes,
    class_files,
    class_folder_names,
    divide_classes,
    file_split,
    interleaved,
    listed,
    release_class_files,
)
from noisegame_cli.data.imagenet_classes import imagenet_indices, imagenet_wnids
from noisegame_cli.data.sources import FileSplit, first_image_size, image_files
from noisegame_cli.errors import UserError

IMAGENET_SIZE = (224, 224)
IMAGENET_CLASSES = 1000
GROUND_TRUTH_FILE = "ILSVRC2012_validation_ground_truth.txt"
META_FILE = "meta.mat"
DEVKIT_DATA = Path("ILSVRC2012_devkit_t12") / "data"
VALIDATION_FILE = re.compile(r"ILSVRC2012_val_(\d{8})")  # a flat file's stem; its number is its ground-truth line
IMAGENET_FOLDERS = "the 1000 ImageNet wnids"
TINY_FOLDER = "tiny-imagenet-200"
TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_ANNOTATIONS = Path("val") / "val_annotations.txt"


@register_dataset(
    "imagenet",
    layout=f"--data-dir holding the validation set as <wnid>/*.JPEG folders, or flat ILSVRC2012_val_*.JPEG with {GROUND_TRUTH_FILE} and {META_FILE} (image-net.org)",
    argument=PARTIAL,
)
def imagenet_dataset(argument: str, options: LoadOptions) -> Dataset:
    name, partial = partial_argument("imagenet", argument)
    return load_imagenet_validation(options.data_dir, partial=partial, name=name, strict=options.strict)


@register_dataset(
    "tiny-imagenet",
    layout=f"{TINY_FOLDER}/ (wnids.txt, train/<wnid>/images/, val/images/ + val_annotations.txt) in --data-dir or the Keras cache (cs231n.stanford.edu)",
)
def tiny_imagenet_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_tiny_imagenet(options.data_dir, download=options.download, strict=options.strict)


def load_imagenet_validation(data_dir: str | os.PathLike | None, *, partial: bool = False, name: str = "imagenet",
                             strict: bool = False) -> Dataset:
    """The validation set in ``data_dir`` (either layout) as a streamed test split labelled by the class
    table; every class folder, or every image the ground truth lists, must be there unless ``partial``."""
    if data_dir is None:
        raise UserError("--dataset imagenet needs --data-dir (the validation images; see docs/datasets.md)")
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data-dir {root}: no such folder")
    if image_files(root):
        files_by_class = _flat_validation(root, partial)
    else:
        folders = root / "val" if (root / "val").is_dir() else root
        files_by_class = release_class_files(folders, imagenet_release("the ImageNet validation set"), spec="imagenet", partial=partial)
    test = file_split(files_by_class, IMAGENET_SIZE, 3, resize="centre_crop", strict=strict, where=f"{name} in {root}")
    return Dataset(name, None, None, test, imagenet_wnids())


def imagenet_release(title: str) -> ReleaseClasses:
    """A release (named ``title`` in messages) whose class folders are the 1000 ImageNet wnids, labelled as the table numbers them."""
    return ReleaseClasses(title, imagenet_wnids(), IMAGENET_FOLDERS)


def _flat_validation(root: Path, partial: bool) -> list[list[Path]]:
    """The flat validation files grouped by the table's classes: file ``ILSVRC2012_val_<n>`` has the
    ILSVRC2012_ID of the ground truth's line ``n``, which ``meta.mat`` maps to its wnid."""
    truth_path, meta_path = (_devkit_file(root, name) for name in (GROUND_TRUTH_FILE, META_FILE))
    ids = _read_ground_truth(truth_path)
    wnid_of_id = read_synsets(meta_path)
    unknown = sorted(set(ids.tolist()) - set(wnid_of_id))
    if unknown:
        raise UserError(f"{truth_path}: ILSVRC2012_ID {unknown[0]} is not one of the {len(wnid_of_id)} classes of {meta_path}")
    line_of = _validation_lines(root, len(ids), truth_path)
    if len(line_of) < len(ids) and not partial:
        missing = [f"ILSVRC2012_val_{number:08d}" for number in range(1, len(ids) + 1) if number not in line_of]
        raise UserError(f"{root} holds {len(line_of)} of the {len(ids)} validation images {truth_path.name} lists; missing {listed(missing)}; "
                        f"name the dataset imagenet:{PARTIAL} to evaluate the images present")  # fmt: skip
    label_of_id = dict(zip(wnid_of_id, imagenet_indices(tuple(wnid_of_id.values()))))
    files_by_class: list[list[Path]] = [[] for _ in imagenet_wnids()]
    for number, path in sorted(line_of.items()):
        files_by_class[label_of_id[int(ids[number - 1])]].append(path)
    return files_by_class


def _validation_lines(root: Path, lines: int, truth_path: Path) -> dict[int, Path]:
    """Each flat file by its number (``ILSVRC2012_val_00000042.JPEG``: 42), or a ``UserError`` for a file
    named otherwise, numbered twice, or past the ground truth's last line."""
    line_of: dict[int, Path] = {}
    for path in image_files(root):
        match = VALIDATION_FILE.fullmatch(path.stem)
        if match is None:
            raise UserError(f"{path} is not an ImageNet validation file: the flat layout holds ILSVRC2012_val_<8 digits>.JPEG")
        number = int(match.group(1))
        if not 1 <= number <= lines:
            raise UserError(f"{path} has no label: {truth_path} has {lines} lines")
        if number in line_of:
            raise UserError(f"{root} holds two files numbered {number}: {line_of[number].name} and {path.name}")
        line_of[number] = path
    return line_of


def _devkit_file(root: Path, name: str) -> Path:
    for candidate in (root / name, root / DEVKIT_DATA / name, root.parent / DEVKIT_DATA / name):
        if candidate.is_file():
            return candidate
    raise UserError(f"{root} holds flat validation images but no {name} (expected beside them or in {DEVKIT_DATA}/)")


def _read_ground_truth(path: Path) -> np.ndarray:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    try:
        return np.array([int(line) for line in lines], dtype=np.int64)
    except ValueError:
        bad = next(line for line in lines if not line.lstrip("-").isdigit())
        raise UserError(f"{path}: {bad!r} is not an ILSVRC2012_ID (one integer per line)") from None


def read_synsets(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the leaf classes (no children, IDs 1..1000) of the devkit's ``meta.mat``."""
    import scipy.io

    try:
        synsets = scipy.io.loadmat(path, squeeze_me=True)["synsets"]
        ids, wnids = np.atleast_1d(synsets["ILSVRC2012_ID"]), np.atleast_1d(synsets["WNID"])
        children = np.atleast_1d(synsets["num_children"])
    except Exception as error:  # scipy raises many types for a truncated or foreign file
        raise UserError(f"{path} is not the devkit's meta.mat with a synsets table ({type(error).__name__}: {error})") from None
    rows = zip(ids, wnids, children)
    leaves = {int(ilsvrc_id): str(wnid) for ilsvrc_id, wnid, below in rows if int(below) == 0 and 1 <= int(ilsvrc_id) <= IMAGENET_CLASSES}
    if not leaves:
        raise UserError(f"{path}: no synset with an ILSVRC2012_ID in 1..{IMAGENET_CLASSES}")
    try:
        imagenet_indices(list(leaves.values()))
    except ValueError as error:  # the devkit's 1000 leaves are the table's wnids; another file's would label images wrongly
        raise UserError(f"{path} maps ILSVRC2012_IDs to wnids that are {error}") from None
    return leaves


def load_tiny_imagenet(data_dir: str | os.PathLike | None = None, *, download: bool = False, strict: bool = False) -> Dataset:
    root = find_or_download(find_tiny_imagenet, data_dir, download, name="Tiny ImageNet", folder=TINY_FOLDER, marker="wnids.txt",
                            url=TINY_URL, archive="tiny-imagenet-200.zip")  # fmt: skip
    class_names = read_wnids(root / "wnids.txt")
    train_root = root / "train"
    if not train_root.is_dir():
        raise UserError(f"Tiny ImageNet folder missing: {train_root}")
    check_same_classes(train_root, class_folder_names(train_root), class_names, reference="wnids.txt")
    files = [class_files(train_root / wnid / "images") for wnid in class_names]
    train, val = divide_classes(train_root, class_names, files, (1 - HOLDOUT_FRACTION, HOLDOUT_FRACTION))
    size = first_image_size(files[0][0])
    test = _tiny_validation(root, class_names, size, strict)
    return Dataset("tiny-imagenet", file_split(train, size, 3, strict=strict, where=f"{root} train"),
                   file_split(val, size, 3, strict=strict, where=f"{root} train (held out)"), test, class_names)  # fmt: skip


def find_tiny_imagenet(data_dir: str | os.PathLike | None) -> Path | None:
    cache = keras_cache_dir()
    roots = [Path(data_dir)] if data_dir is not None else [cache, cache / f"{TINY_FOLDER}_extracted"]
    for root in roots:
        for candidate in (root, root / TINY_FOLDER):
            if (candidate / "wnids.txt").is_file():
                return candidate
    return None


def read_wnids(path: Path) -> tuple[str, ...]:
    """The sorted wnids of ``wnids.txt`` (one per line), or a ``UserError`` for an empty or repeating list."""
    wnids = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not wnids:
        raise UserError(f"{path} lists no wnid")
    if len(set(wnids)) != len(wnids):
        raise UserError(f"{path} lists a wnid twice")
    return tuple(sorted(wnids))


def _tiny_validation(root: Path, class_names: tuple[str, ...], size: tuple[int, int], strict: bool = False) -> FileSplit:
    """The official validation images, labelled by ``val_annotations.txt`` (file, wnid, box)."""
    annotations, images = root / TINY_ANNOTATIONS, root / "val" / "images"
    if not annotations.is_file():
        raise UserError(f"Tiny ImageNet file missing: {annotations}")
    index = {wnid: k for k, wnid in enumerate(class_names)}
    files_by_class: list[list[Path]] = [[] for _ in class_names]
    for number, line in enumerate(annotations.read_text(errors="replace").splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise UserError(f"{annotations} line {number}: expected '<file>\\t<wnid of wnids.txt>\\t...', got {line[:80]!r}")
        files_by_class[index[fields[1]]].append(images / fields[0])
    listed = sum(len(files) for files in files_by_class)
    present = len(image_files(images)) if images.is_dir() else 0
    if listed != present:
        raise UserError(f"{annotations} lists {listed} images but {images} holds {present}")
    for files in files_by_class:
        files.sort()
    paths, _ = interleaved(files_by_class)
    missing = next((path for path in paths if not Path(path).is_file()), None)
    if missing is not None:
        raise UserError(f"{annotations} lists {Path(missing).name}, which is not in {images}")
    return file_split(files_by_class, size, 3, strict=strict, where=f"{root} val")
