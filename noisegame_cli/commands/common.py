"""What every command does around its own work: seed, strategy, run directory, summary.

A command's ``run(config)`` validates its inputs first (so a mistake creates no run directory),
then opens ``experiment(config)`` and does its work inside it; the run directory is marked
``failed`` if anything raises in there.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras

from noisegame_cli.config import CommonConfig
from noisegame_cli.runs import Run, recorded_run


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
