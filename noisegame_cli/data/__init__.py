"""Datasets (uint8 images, int64 labels) and tf.data pipelines."""

from noisegame_cli.data.datasets import DATASETS, Dataset, Split, load_dataset

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]
