"""The ``noisegame`` command: a Click group with one subcommand per module in ``commands/``."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep stderr for our messages

import click

from noisegame_cli import __version__
from noisegame_cli.commands import COMMANDS
from noisegame_cli.commands.common import Terminated
from noisegame_cli.errors import UserError


class NoisegameGroup(click.Group):
    """A group that loads each command on first use and ends user mistakes in one line on stderr."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            outcome = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "noisegame"
            _fail(f"{where}: {error.format_message()} (see --help)", error.exit_code)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except UserError as error:
            _fail(str(error), 2)
        except (click.Abort, KeyboardInterrupt) as error:
            # Click turns a KeyboardInterrupt, and so a Terminated, into Abort with the original as its cause
            if isinstance(error, Terminated) or isinstance(error.__cause__, Terminated):
                _fail("terminated (SIGTERM); the run is marked interrupted and --resume continues it", 143)
            _fail("interrupted", 130)
        sys.exit(outcome if isinstance(outcome, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"noisegame: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=NoisegameGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="noisegame")
def cli() -> None:
    """Robustness experiments for image classifiers on TensorFlow / Keras.

    Every command writes a run directory under --runs-dir with config.json, env.json,
    metrics.csv (long format) and its pictures; `noisegame report DIR` collects them.
    """


def main() -> None:
    """The console script: TensorFlow's native start-up chatter is kept off the terminal."""
    if int(os.environ["TF_CPP_MIN_LOG_LEVEL"]) >= 2 and len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        with _native_stderr_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices()  # probes for GPUs (and complains) without fixing the logical devices
    cli()


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null, for C++ logging that Python cannot filter."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
