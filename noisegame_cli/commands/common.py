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


CHECK_IMAGES = 128  # test images the input-range check reads before any attack runs


def load_model(config: Config, data, source, *, what: str | None = None):
    """The saved model ``source`` (any kind, ``app:NAME[:WEIGHTS]`` included), wrapped as the config's
    input options say (``InputOptions``), checked against ``data`` (a Dataset or CorruptedDataset), and
    read on one batch for a misread input range (one warning line; the run goes on as asked)."""
    from noisegame_cli.models import load_checked

    model = load_checked(source, data, scale=config.input_scale, architecture=config.architecture,
                         download=getattr(config, "download", False), what=what)  # fmt: skip
    warn_on_misread_input(model, data, config.input_scale)
    return model


def load_models(config: Config, data, sources) -> dict:
    """``load_model`` for each source, keyed by a label unique among them."""
    from noisegame_cli.models.saved import unique_labels

    return {label: load_model(config, data, source) for label, source in unique_labels(sources).items()}


def check_batch(data, count: int = CHECK_IMAGES):
    """The first ``count`` test images and labels of ``data``: a Dataset's test split, a corrupted
    dataset's clean images, else its first corruption at its lowest severity."""
    if isinstance(data, Dataset):
        return data.split("test").arrays(count)
    split = data.clean if data.clean is not None else data.load(data.corruptions[0], min(data.severities))
    return split.arrays(count)


def warn_on_misread_input(model, data, scale) -> None:
    """Print the input-range check's warning (``attacks.checks.check_input_range``), if it has one."""
    from noisegame_cli.attacks.checks import check_input_range
    from noisegame_cli.models.wrapping import rescaled

    images, labels = check_batch(data)
    flag = check_input_range(model, images, labels, scale.flags, {other.flags: rescaled(model, other) for other in scale.alternatives()})
    if flag is not None:
        print(flag, flush=True)


def data_record(data) -> dict | None:
    """What env.json records of the loaded data: the image files skipped as damaged (count, then each
    path and why), or None when none was."""
    skipped = getattr(data, "skipped", ())
    if not skipped:
        return None
    return {"skipped_images": len(skipped), "skipped": [{"path": path, "why": why} for path, why in skipped]}


@contextlib.contextmanager
def experiment(config: Config, *, dataset: str | None = None, model: str | None = None, data=None) -> Iterator[Run]:
    """Open a recorded run directory for ``config`` (call ``prepare`` first); ``data``, the loaded
    dataset, has what its loading found recorded in env.json (see ``data_record``)."""
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
        data_record=data_record(data),
    ) as run:
        print(f"run directory: {run.directory}", flush=True)
        yield run
