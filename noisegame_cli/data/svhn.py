"""SVHN (Street View House Numbers), the cropped-digits release: ``train_32x32.mat`` and
``test_32x32.mat`` (MATLAB files: ``X`` uint8 ``[32, 32, 3, N]``, ``y`` ``[N, 1]`` with 1..10, where 10
is the digit 0), in ``--data-dir`` (or its ``svhn/``) or the Keras cache's ``svhn/``.

``svhn:extra`` adds the 531 131 images of ``extra_32x32.mat`` to the training split (ignored
otherwise). The last 10 % of the training images are the validation split. The files are
compressed, so they are read whole into memory (73 257 training images: 225 MB; with extra 1.9 GB).
``--download`` fetches them from the official page into the Keras cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from noisegame_cli.data.datasets import Dataset, LoadOptions, check_labels, download_to_cache, keras_cache_dir, register_dataset, with_validation
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FOLDER = "svhn"
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
SVHN_CLASSES = tuple(str(digit) for digit in range(10))


@register_dataset(
    "svhn",
    layout="train_32x32.mat, test_32x32.mat (extra_32x32.mat for svhn:extra) in --data-dir or the Keras cache's svhn/ (ufldl.stanford.edu/housenumbers)",
    argument="extra",
)
def svhn_dataset(argument: str, options: LoadOptions) -> Dataset:
    if argument not in ("", "extra"):
        raise UserError(f"svhn takes only the argument extra (svhn:extra), got {argument!r}")
    return load_svhn(options.data_dir, download=options.download, extra=argument == "extra")


def load_svhn(data_dir: str | os.PathLike | None = None, *, download: bool = False, extra: bool = False) -> Dataset:
    wanted = ("train", "test", "extra") if extra else ("train", "test")
    folder = _find_folder(data_dir, wanted, download)
    parts = {which: read_svhn_mat(folder / SVHN_FILES[which]) for which in wanted}
    train = parts["train"]
    if extra:
        train = Split(np.concatenate([train.images, parts["extra"].images]), np.concatenate([train.labels, parts["extra"].labels]))
    return with_validation("svhn", train, parts["test"], SVHN_CLASSES)


def _find_folder(data_dir: str | os.PathLike | None, wanted: tuple[str, ...], download: bool) -> Path:
    names = [SVHN_FILES[which] for which in wanted]
    roots = [Path(data_dir), Path(data_dir) / SVHN_FOLDER] if data_dir is not None else [keras_cache_dir() / SVHN_FOLDER]
    for root in roots:
        if (root / names[0]).is_file():
            return root
    if data_dir is not None:
        raise UserError(f"no SVHN in {data_dir}: expected {', '.join(names)} there or in {SVHN_FOLDER}/")
    if not download:
        raise UserError(f"SVHN is not in the Keras cache ({roots[0]}); pass --data-dir or --download")
    fetched = [download_to_cache(SVHN_URL + name, name, folder=SVHN_FOLDER) for name in names]
    return fetched[0].parent


def read_svhn_mat(path: Path) -> Split:
    """One SVHN ``.mat`` file as a ``Split`` of ``[N, 32, 32, 3]`` images and labels 0..9."""
    import scipy.io

    if not path.is_file():
        raise UserError(f"SVHN file missing: {path}")
    try:
        contents = scipy.io.loadmat(path, variable_names=("X", "y"))
    except Exception as error:  # scipy raises many types for a truncated or foreign file
        raise UserError(f"{path} is truncated or not a MATLAB file ({type(error).__name__}: {error})") from None
    if "X" not in contents or "y" not in contents:
        raise UserError(f"{path} has no X and y arrays")
    images, labels = contents["X"], contents["y"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise UserError(f"{path}: X must be uint8 [32, 32, 3, N], got {images.dtype} {list(images.shape)}")
    labels = labels.reshape(-1) if labels.ndim == 2 and 1 in labels.shape else labels
    if len(labels) != images.shape[3]:
        raise UserError(f"{path}: {images.shape[3]} images but {len(labels)} labels")
    digits = (check_labels(labels, 10, f"{path}:y", first=1) + 1) % 10  # label 10 is the digit 0
    return Split(np.ascontiguousarray(images.transpose(3, 0, 1, 2)), digits)
