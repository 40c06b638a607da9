"""``noisegame corrupt --dataset D --out DIR``: write a corrupted copy of any dataset in the standard layout.

- ``--layout npy`` (CIFAR-10-C; the default for datasets held as arrays: digits, cifar10, mnist, ...):
  ``<corruption>.npy`` with the five severities stacked, ``labels.npy`` and ``clean.npy``;
  ``eval-corruption --dataset cifar10-c --data-dir DIR`` reads it back.
- ``--layout folder`` (ImageNet-C; the default for image folders and other streamed datasets:
  ``folder:PATH``, ``imagenet``, ``tiny-imagenet``, ...): ``<corruption>/<severity>/<class>/<file>.JPEG``
  saved as the released ImageNet-C was (JPEG quality 85); ``eval-corruption --dataset imagenet-c``
  (or ``tiny-imagenet-c``) ``--data-dir DIR`` reads it back.

Each part (a corruption's file; a corruption x severity folder) is written atomically, so an
interrupted run resumes where it stopped: finished parts are kept and skipped. ``DIR/corrupt.json``
records the dataset, split, seed and parameter set; adding to a copy made with others is refused.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

from noisegame_cli import checks, plots, sections
from noisegame_cli.commands.common import experiment, load_data, prepare
from noisegame_cli.config import CorruptionEvalOptions, DataOptions, RunOptions, check_corruption_set, redefault, require, setting
from noisegame_cli.corruptions import names
from noisegame_cli.data import check_dataset, copies
from noisegame_cli.data.datasets import SPLITS
from noisegame_cli.evaluation import corruption as measure
from noisegame_cli.options import config_command


@dataclasses.dataclass(frozen=True)
class Config(DataOptions, RunOptions):
    command = "corrupt"
    section = sections.CORRUPTIONS
    smoke_preset: ClassVar[Mapping[str, Any]] = {"limit": 32, "corruptions": ("gaussian_noise", "defocus_blur", "jpeg_compression")}
    renamed: ClassVar[Mapping[str, str]] = {"out_dir": "out"}

    out: str | None = setting(None, "Where the corrupted copy goes (required).", check=checks.writable_dir, show_default=False)
    split: str = setting("test", "Which split to corrupt.", choices=SPLITS)
    corruptions: tuple[str, ...] = setting(("all",), f"Which corruptions: {names.LIST_HELP}.",
                                           check=names.names_check)
    severities: tuple[int, ...] = setting(names.SEVERITIES, "Severities in 1..5 (the npy layout needs all 5).", check=names.severities_check)
    layout: str = setting("auto", "npy (CIFAR-10-C) or folder (ImageNet-C JPEGs); auto: npy for arrays, folder for image files.",
                          choices=("auto", *copies.LAYOUTS))
    parameters: str | None = redefault(CorruptionEvalOptions, "parameters", None)
    frost_dir: str | None = setting(None, "Folder of frost photographs to use instead of the synthetic frost texture.",
                                    check=checks.existing_dir, show_default=False)

    def validate(self) -> None:
        require(self.out is not None, "corrupt needs --out DIR (e.g. noisegame corrupt --dataset digits --out digits-C)")
        check_dataset(self.dataset, "images")
        check_corruption_set(self.corruptions, self.parameters)
        copies.check_layout_severities(self.layout, self.severities)  # before loading the data, for an explicit --layout npy

    @property
    def default_run_name(self) -> str:
        return Path(self.out).name


def run(config: Config) -> dict:
    """Corrupt the split with every selected corruption at the selected severities; returns what was written."""
    prepare(config)
    data = load_data(config)
    split = data.split(config.split)
    corruptions = names.expand(config.corruptions)
    out = Path(config.out)
    layout = copies.start_copy(split, out, config.severities, dataset=config.dataset, split_name=config.split, layout=config.layout,
                               seed=config.seed, parameters=config.parameters)  # fmt: skip
    with experiment(config, dataset=config.dataset, model="none", data=data) as run:
        written = copies.write_copy(split, data.class_names, out, corruptions, config.severities, layout=layout, seed=config.seed,
                                    parameters=config.parameters, frost_dir=config.frost_dir, batch_size=config.batch_size)  # fmt: skip
        kept = sorted({f"{row['corruption']}/{row['severity']}" if layout == "folder" else row["corruption"] for row in written if row["kept"]})
        if kept:
            print(f"kept the finished parts {', '.join(kept)} (delete them to write them again)", flush=True)
        rows = [{"corruption": r["corruption"], "severity": r["severity"], "condition": "copy", "metric": "images", "value": r["images"]}
                for r in written]  # fmt: skip
        rows += [{"corruption": r["corruption"], "severity": r["severity"], "condition": "copy", "metric": "seconds", "value": r["seconds"]}
                 for r in written if not r["kept"]]  # fmt: skip
        run.write_metrics(rows, results=config.results)
        source = measure.dataset_source(copies.read_copy(out, layout, data.num_classes))
        samples = measure.sample_images(source, corruptions, config.severities)
        first = split.arrays(1)[0][0]
        plots.image_grid({name: [first] + [samples[(name, s)] for s in config.severities] for name in corruptions},
                         run.path("corruption_samples.png"), titles=[["clean", *(f"severity {s}" for s in config.severities)]],
                         title=f"{config.dataset} {config.split} split, corrupted", cell=1.3)  # fmt: skip
    return {"run_dir": str(run.directory), "out_dir": str(out), "layout": layout, "corruptions": len(corruptions), "images": len(split),
            "sets_written": sum(1 for r in written if not r["kept"])}  # fmt: skip


command = config_command("corrupt", Config, run, "Write a corrupted copy of a dataset (CIFAR-10-C npy files or ImageNet-C folders), "
                         "readable by eval-corruption.", no_arguments="noisegame corrupt --dataset D --out DIR")  # fmt: skip
