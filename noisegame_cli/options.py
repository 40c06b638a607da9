"""Shared Click options, defined once and stacked on every command, and the config builder.

Options default to ``None`` so that only the flags a user actually typed override a
``--config`` file; the dataclass defaults are shown in each option's help.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, Callable, Mapping

import click
from click.core import ParameterSource

from noisegame_cli.config import STRATEGIES, CommonConfig, load_config_file, load_saved_config, resolve_config


class NumberList(click.ParamType):
    """A comma-separated list of numbers; fractions such as ``8/255`` are allowed."""

    name = "LIST"

    def __init__(self, cast: Callable[[Any], Any] = float):
        self.cast = cast

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return tuple(value)
        try:
            return tuple(self.cast(Fraction(item.strip())) for item in str(value).split(",") if item.strip())
        except (ValueError, ZeroDivisionError):
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)


class NameList(click.ParamType):
    """A comma-separated list of names."""

    name = "NAMES"

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return tuple(value)
        return tuple(item.strip() for item in str(value).split(",") if item.strip())


FLOAT_LIST = NumberList(float)
INT_LIST = NumberList(int)
NAME_LIST = NameList()


class FractionNumber(click.ParamType):
    """One number, where a fraction such as ``8/255`` is allowed (attack budgets)."""

    name = "NUMBER"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(Fraction(str(value).strip()))
        except (ValueError, ZeroDivisionError):
            self.fail(f"{value!r} is not a number or a fraction such as 8/255", param, ctx)


FRACTION = FractionNumber()


def _default(field: str) -> Any:
    return {f.name: f.default for f in dataclasses.fields(CommonConfig)}[field]


_COMMON_OPTIONS = (
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="YAML recipe; its values sit between the defaults and the flags."),
    click.option("--dataset", default=None,
                 help=f"digits (embedded), cifar10, cifar10-c or synthetic [default: {_default('dataset')}]."),
    click.option("--data-dir", default=None, help="Folder with the dataset files (cifar10: the Keras cache by default)."),
    click.option("--download", is_flag=True, default=None, help="Allow downloading cifar10 when it is not on disk."),
    click.option("--model", default=None, help=f"Registered model name [default: {_default('model')}]."),
    click.option("--epochs", type=int, default=None, help=f"Training epochs [default: {_default('epochs')}]."),
    click.option("--batch-size", type=int, default=None, help=f"Global batch size [default: {_default('batch_size')}]."),
    click.option("--limit", type=int, default=None, help="Use at most this many examples of each split."),
    click.option("--seed", type=int, default=None, help=f"Random seed [default: {_default('seed')}]."),
    click.option("--runs-dir", default=None,
                 help=f"Where run directories go, relative to the current directory [default: {_default('runs_dir')}/]."),
    click.option("--name", default=None, help="Run name (the run directory's suffix) [default: the model name]."),
    click.option("--results", default=None, help="Also append the metric rows to this shared CSV."),
    click.option("--smoke", is_flag=True, default=None, help="A seconds-long run of the same code path."),
    click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
                 help="tf.distribute strategy: one device, mirrored over local devices, multi-worker from TF_CONFIG, or TPU."),
    click.option("--resume", type=click.Path(file_okay=False), default=None,
                 help="Continue an interrupted run in its own directory, from its last finished epoch and its saved config."),
)


def common_options(function: Callable) -> Callable:
    """Stack the shared options on a Click command."""
    for option in reversed(_COMMON_OPTIONS):
        function = option(function)
    return function


def build_config(cls: type[CommonConfig], ctx: click.Context, params: dict[str, Any]) -> CommonConfig:
    """Resolve a command's config from its defaults, ``--config`` file, ``--smoke`` and typed flags.

    With ``--resume RUN_DIR`` the run's saved (already resolved) config replaces defaults, file and
    preset; only flags typed now go above it.
    """
    params = dict(params)
    config_file = params.pop("config_file", None)
    flags = {
        name: value
        for name, value in params.items()
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        and value is not None
    }
    if flags.get("resume"):
        return resolve_config(cls, {}, {**load_saved_config(flags["resume"], cls.command), **flags})
    file_values = load_config_file(config_file) if config_file else {}
    return resolve_config(cls, file_values, flags, source=f"config file {config_file}")


def run_command(run: Callable[[Any], Mapping[str, Any]], cls: type[CommonConfig], ctx: click.Context, params: dict[str, Any]) -> None:
    """What every command's Click function does: resolve the config, run, print the summary."""
    for key, value in run(build_config(cls, ctx, params)).items():
        click.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
