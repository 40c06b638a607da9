"""``noisegame corrupt DATASET OUT_DIR``: write a corrupted copy of any dataset in the standard layout.

Datasets held as arrays (digits, cifar10, mnist, ...) are written in the CIFAR-10-C layout:
``<corruption>.npy`` with the five severities stacked, ``labels.npy``, and ``clean.npy`` (the
uncorrupted images, which the official release lacks). ``eval-corruption --dataset cifar10-c
--data-dir OUT_DIR`` reads it back. Each corruption's file is written atomically, so an interrupted
run resumes where it stopped: finished files are kept and skipped.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras

from noisegame_cli import checks, plots
from noisegame_cli.commands.common import experiment, load_data, prepare
from noisegame_cli.config import DataOptions, RunOptions, require, setting
from noisegame_cli.corruptions import SEVERITIES, corrupt
from noisegame_cli.data import check_dataset, cifar10c
from noisegame_cli.data.datasets import SPLITS
from noisegame_cli.evaluation import corruption as measure
from noisegame_cli.options import config_command


@dataclasses.dataclass(frozen=True)
class Config(DataOptions, RunOptions):
    command = "corrupt"
    smoke_preset: ClassVar[Mapping[str, Any]] = {"limit": 32, "corruptions": ("gaussian_noise", "defocus_blur", "jpeg_compression")}

    dataset: str | None = setting(None, "The dataset to corrupt (any dataset spec: digits, cifar10, folder:PATH, ...).", argument=True,
                                  check=lambda value, flag: check_dataset(value, "images"))
    out_dir: str | None = setting(None, "Where the corrupted copy goes.", argument=True, check=checks.writable_dir)
    split: str = setting("test", "Which split to corrupt.", choices=SPLITS)
    corruptions: tuple[str, ...] = setting(("all",), "Corruption names, or all (the 19), common (the 15), noise (3).",
                                           check=measure.corruption_names_check)
    frost_dir: str | None = setting(None, "Folder of frost photographs to use instead of the synthetic frost texture.",
                                    check=checks.existing_dir, show_default=False)

    def validate(self) -> None:
        require(self.dataset is not None and self.out_dir is not None, "corrupt needs DATASET and OUT_DIR (e.g. noisegame corrupt digits digits-C)")

    @property
    def default_run_name(self) -> str:
        return Path(self.out_dir).name


def run(config: Config) -> dict:
    """Corrupt the split with every selected corruption at the 5 severities; returns what was written."""
    prepare(config)
    data = load_data(config)
    split = data.split(config.split)
    corruptions = measure.expand_corruptions(config.corruptions)
    out = Path(config.out_dir)
    with experiment(config, dataset=config.dataset, model="none") as run:
        images, labels = split.arrays()
        cifar10c.write_labels_file(out, labels)
        cifar10c.write_clean_file(out, images)
        rows, skipped = [], []
        progress = keras.utils.Progbar(len(corruptions), unit_name="corruption")
        for name in corruptions:
            if cifar10c.corruption_file(out, name).is_file():
                skipped.append(name)
            else:
                started = time.perf_counter()
                blocks = [corrupt(images, name, severity, seed=config.seed, frost_dir=config.frost_dir) for severity in SEVERITIES]
                cifar10c.write_corruption_file(out, name, blocks)
                rows.append({"corruption": name, "metric": "seconds", "value": time.perf_counter() - started})
            rows.append({"corruption": name, "metric": "images", "value": len(labels) * len(SEVERITIES)})
            progress.add(1)
        if skipped:
            print(f"kept the finished files of {', '.join(skipped)} (delete them to write them again)", flush=True)
        run.write_metrics(rows, results=config.results)
        source = measure.dataset_source(cifar10c.npy_corrupted_dataset(out.name, out, data.num_classes, clean_source=None))
        samples = measure.sample_images(source, corruptions, SEVERITIES)
        plots.image_grid({name: [images[0]] + [samples[(name, s)] for s in SEVERITIES] for name in corruptions},
                         run.path("corruption_samples.png"), titles=[["clean", *(f"severity {s}" for s in SEVERITIES)]],
                         title=f"{config.dataset} {config.split} split, corrupted", cell=1.3)  # fmt: skip
    return {"run_dir": str(run.directory), "out_dir": str(out), "corruptions": len(corruptions), "images": len(labels)}


command = config_command("corrupt", Config, run, "Write a corrupted copy of a dataset (CIFAR-10-C layout), readable by eval-corruption.")
