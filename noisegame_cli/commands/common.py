"""What every command does around its own work: seed, strategy, run directory, summary.

A command's ``run(config)`` validates its inputs first (so a mistake creates no run directory),
then opens ``experiment(config)`` and does its work inside it; the run directory is marked
``failed`` if anything raises in there.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras

from noisegame_cli.config import CommonConfig, require
from noisegame_cli.data.pipelines import AUGMENTATIONS
from noisegame_cli.runs import Run, recorded_run


def check_training_settings(augment: str, learning_rate: float, patience: int) -> None:
    """The checks of --augment, --learning-rate and --patience that the training commands share."""
    require(augment in AUGMENTATIONS, f"unknown --augment {augment!r}; choose from {', '.join(AUGMENTATIONS)}")
    require(learning_rate > 0, f"--learning-rate must be positive, got {learning_rate}")
    require(patience >= 1, f"--patience must be at least 1, got {patience}")


@contextlib.contextmanager
def experiment(config: CommonConfig, *, dataset: str | None = None, model: str | None = None) -> Iterator[Run]:
    """Seed every generator with ``config.seed`` and open a recorded run directory."""
    keras.utils.set_random_seed(config.seed)
    with recorded_run(
        config.command,
        config.to_dict(),
        runs_dir=config.runs_dir,
        name=config.run_name,
        dataset=dataset or config.dataset,
        model=model or config.model,
        seed=config.seed,
        existing=config.resume,
    ) as run:
        print(f"run directory: {run.directory}", flush=True)
        yield run
