"""The ``noisegame`` command: a Click group with one subcommand per module in ``commands/``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep stderr for our messages

import click

from noisegame_cli import __version__
from noisegame_cli.commands import COMMANDS
from noisegame_cli.errors import UserError


class NoisegameGroup(click.Group):
    """A group whose user mistakes end in one line on stderr and a non-zero exit."""

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
        except (click.Abort, KeyboardInterrupt):
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


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli()
