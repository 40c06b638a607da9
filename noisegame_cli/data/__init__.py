"""Datasets by name (one registry), splits held in memory or streamed from files, tf.data pipelines.

Importing this package registers every dataset loader (``DATASETS``).
"""

from noisegame_cli.data.datasets import (
    DATASETS,
    CorruptedDataset,
    Dataset,
    LoadOptions,
    check_dataset,
    load_corrupted_dataset,
    load_dataset,
)
from noisegame_cli.data.sources import FileSplit, Split

from noisegame_cli.data import builtin, cifar, cifar10c  # noqa: E402,F401  (registers their datasets)

__all__ = [
    "DATASETS",
    "CorruptedDataset",
    "Dataset",
    "FileSplit",
    "LoadOptions",
    "Split",
    "check_dataset",
    "load_corrupted_dataset",
    "load_dataset",
]
