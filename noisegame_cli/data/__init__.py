"""Datasets by name (one registry), splits held in memory or streamed from files, tf.data pipelines.

Importing this package registers every dataset loader (``DATASETS``).
"""

from noisegame_cli.data.datasets import (
    DATASETS,
    ClassSubset,
    CorruptedDataset,
    Dataset,
    LoadOptions,
    check_dataset,
    load_corrupted_dataset,
    load_dataset,
)
from noisegame_cli.data.sources import FileSplit, Split, StreamSplit

from noisegame_cli.data import (  # noqa: E402,F401  (registers their datasets)
    builtin,
    cifar,
    cifar10c,
    folders,
    imagenet,
    imagenet_c,
    mnist,
    shifts,
    stl10,
    svhn,
    tfds_builders,
)

__all__ = [
    "DATASETS",
    "ClassSubset",
    "CorruptedDataset",
    "Dataset",
    "FileSplit",
    "LoadOptions",
    "Split",
    "StreamSplit",
    "check_dataset",
    "load_corrupted_dataset",
    "load_dataset",
]
