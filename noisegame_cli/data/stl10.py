"""STL-10 in its binary release: ``stl10_binary/`` with ``train_X.bin``, ``train_y.bin``,
``test_X.bin``, ``test_y.bin`` and ``class_names.txt`` (``unlabeled_X.bin`` is not read).

Each image is 3 x 96 x 96 uint8 bytes, stored column-major: channel planes, each plane column by
column. So a file reshaped to ``[N, 3, 96, 96]`` is indexed ``[image, channel, column, row]`` and
transposed ``(0, 3, 2, 1)`` to ``[image, row, column, channel]``. The labels are bytes 1..10 (made
0..9). Images are memory-mapped and read one batch at a time; the last 10 % of the 5 000 training
images are the validation split. ``--download`` fetches the 2.6 GB archive into the Keras cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from noisegame_cli.data.datasets import Dataset, LoadOptions, check_labels, find_or_download, keras_cache_dir, register_dataset, with_validation
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

STL10_FOLDER = "stl10_binary"
STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_SHAPE = (3, 96, 96)  # channel, column, row: the order of the bytes of one image
STL10_CLASSES_FILE = "class_names.txt"


@register_dataset(
    "stl10",
    layout=f"{STL10_FOLDER}/ (train_X.bin, train_y.bin, test_X.bin, test_y.bin, {STL10_CLASSES_FILE}) in --data-dir or the Keras cache (ai.stanford.edu/~acoates/stl10)",
)
def stl10_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_stl10(options.data_dir, download=options.download)


def load_stl10(data_dir: str | os.PathLike | None = None, *, download: bool = False) -> Dataset:
    folder = find_or_download(find_stl10, data_dir, download, name="STL-10", folder=STL10_FOLDER, marker="train_X.bin",
                              url=STL10_URL, archive="stl10_binary.tar.gz")  # fmt: skip
    class_names = read_class_names(folder / STL10_CLASSES_FILE)
    train = read_stl10_split(folder, "train", len(class_names))
    test = read_stl10_split(folder, "test", len(class_names))
    return with_validation("stl10", train, test, class_names)


def find_stl10(data_dir: str | os.PathLike | None) -> Path | None:
    cache = keras_cache_dir()
    roots = [Path(data_dir)] if data_dir is not None else [cache, cache / f"{STL10_FOLDER}_extracted"]
    for root in roots:
        for candidate in (root, root / STL10_FOLDER):
            if (candidate / "train_X.bin").is_file():
                return candidate
    return None


def read_stl10_split(folder: Path, which: str, num_classes: int) -> Split:
    """``<which>_X.bin`` memory-mapped as ``[N, 96, 96, 3]`` with the labels of ``<which>_y.bin``."""
    images_path, labels_path = folder / f"{which}_X.bin", folder / f"{which}_y.bin"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise UserError(f"STL-10 file missing: {path}")
    image_bytes = int(np.prod(STL10_SHAPE))
    size = images_path.stat().st_size
    if size == 0 or size % image_bytes:
        raise UserError(f"{images_path}: {size} bytes is not a whole number of 3x96x96 images ({image_bytes} bytes each)")
    count = size // image_bytes
    labels = np.fromfile(labels_path, dtype=np.uint8)
    if len(labels) != count:
        raise UserError(f"{labels_path}: {len(labels)} labels but {images_path.name} holds {count} images")
    stored = np.memmap(images_path, dtype=np.uint8, mode="r", shape=(count, *STL10_SHAPE))
    return Split(stored.transpose(0, 3, 2, 1), check_labels(labels, num_classes, str(labels_path), first=1))


def read_class_names(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise UserError(f"STL-10 file missing: {path}")
    names = tuple(line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip())
    if len(names) != 10:
        raise UserError(f"{path}: {len(names)} class names, expected 10")
    return names
