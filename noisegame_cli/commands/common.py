"""What every experiment does around its own work: seeds, determinism, signals, the run directory.

A command's ``run(config)`` calls ``prepare(config)`` first (the distribution strategy, which must
exist before any TensorFlow work, then seeds and op determinism), loads and checks what it needs
(so a mistake creates no run directory), then opens ``experiment(config)`` and does its work inside
it; the run directory is marked ``failed`` if anything raises in there, and ``interrupted`` on
Ctrl-C or SIGTERM (what a cluster scheduler sends), with the training backup kept for ``--resume``.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator

from noisegame_cli.config import Config
from noisegame_cli.data import Dataset, load_dataset
from noisegame_cli.runs import Run, recorded_run


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run is marked interrupted and can be resumed."""


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; with ``deterministic`` every TensorFlow op (tf.data included)
    gives the same result on every run, at some cost in speed."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # the only home of disable_op_determinism

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # a process (the tests, a study) may run deterministic and nondeterministic commands in turn
        tf_config.disable_op_determinism()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into a ``Terminated`` exception in the main thread while the block runs."""

    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def prepare(config: Config):
    """The config's tf.distribute strategy (the default one for commands that do not train), then
    seeds and op determinism; call it before any other TensorFlow work."""
    from noisegame_cli.training.strategy import make_strategy

    strategy = make_strategy(config.process_strategy)
    seed_everything(config.seed, not config.nondeterministic)
    return strategy


def load_data(config: Config) -> Dataset:
    """The images dataset a config names, with its data options."""
    return load_dataset(config.dataset, download=config.download, limit=config.limit, **config.load_options())


@contextlib.contextmanager
def experiment(config: Config, *, dataset: str | None = None, model: str | None = None) -> Iterator[Run]:
    """Open a recorded run directory for ``config`` (call ``prepare`` first)."""
    deterministic = not config.nondeterministic
    with terminate_as_interrupt(), recorded_run(
        config.command,
        config.to_dict(),
        runs_dir=config.runs_dir,
        name=config.run_name,
        dataset=dataset or getattr(config, "dataset", config.command),
        model=model or getattr(config, "model", config.command),
        seed=config.seed,
        deterministic=deterministic,
        existing=getattr(config, "resume", None),
    ) as run:
        print(f"run directory: {run.directory}", flush=True)
        yield run
