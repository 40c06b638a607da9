"""Click commands generated from config dataclasses: one option per field, defaults shown from the field.

A command is declared as its ``Config`` (the option groups it stacks plus its own fields) and a
``run(config) -> dict`` function; :func:`config_command` turns the pair into a Click command whose
options are exactly the config's fields, plus ``--config FILE.yaml``. Options default to ``None``
so that only the flags a user typed override the recipe; the help shows the dataclass default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import click
from click.core import ParameterSource

from noisegame_cli.budgets import budget_text
from noisegame_cli.config import (
    Config,
    field_kinds,
    flag_name,
    load_config_file,
    parse_value,
    resolve_config,
)

GROUP_ORDER = ("evaluation", "model", "data", "training", "run")
METAVARS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "size": "HxW", "ints": "LIST", "floats": "LIST", "names": "NAMES"}


class ConfigValue(click.ParamType):
    """Parses a flag by the same rules as a YAML value (``8/255``, comma-separated lists, sizes)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.name = METAVARS.get(kind, kind)

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return parse_value(self.kind, value)
        except (ValueError, TypeError, ZeroDivisionError):
            self.fail(f"{value!r} is not a valid {self.kind} value" + (" (numbers may be fractions such as 8/255)" if self.kind in ("float", "floats") else ""), param, ctx)


def format_default(value: Any) -> str:
    """A default as a user would type it: ``8/255`` for budgets, comma lists for tuples."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        text = f"{value:g}"
        return budget_text(value) if len(text) > 6 else text  # 0.0313725 is 8/255, 0.5 stays 0.5
    if isinstance(value, tuple):
        return ",".join(format_default(v) for v in value) or "none"
    return str(value)


def _help(field: dataclasses.Field) -> str:
    text = field.metadata.get("help", "")
    choices = field.metadata.get("choices")
    if choices is not None and callable(choices):
        text += f" Choices: {', '.join(map(str, choices()))}."
    show = field.metadata.get("show_default", True) and field.default is not None
    if show and not (isinstance(field.default, bool) and field.default is False):
        text += f" [default: {format_default(field.default)}]"
    return text


def _group_rank(cls: type, field: dataclasses.Field) -> int:
    """Own options first, then the groups in GROUP_ORDER."""
    for klass in cls.__mro__:
        if field.name in klass.__dict__.get("__annotations__", {}):
            group = klass.__dict__.get("option_group")
            return 0 if group is None else 1 + GROUP_ORDER.index(group)
    return 0


def click_params(cls: type[Config]) -> list[click.Parameter]:
    """One Click parameter per field of ``cls``, own options first."""
    kinds = field_kinds(cls)
    fields = sorted(dataclasses.fields(cls), key=lambda f: _group_rank(cls, f))
    params: list[click.Parameter] = []
    for field in fields:
        kind = kinds[field.name]
        meta = field.metadata
        flag = flag_name(field)
        choices = meta.get("choices")
        if kind == "bool":
            declaration = f"{flag}/--no-{flag[2:]}" if field.default is True else flag
            params.append(click.Option([declaration, field.name], is_flag=True, default=None, help=_help(field)))
            continue
        if choices is not None and not callable(choices):
            value_type = click.Choice([str(c) for c in choices])
        else:
            value_type = ConfigValue(kind)
        multiple = meta.get("multiple", False)
        params.append(click.Option(
            [flag, field.name], type=value_type, default=None, multiple=multiple, help=_help(field),
            metavar=meta.get("metavar"),
        ))  # fmt: skip
    params.append(click.Option(["--config", "config_file"], type=click.Path(dir_okay=False), default=None,
                               help="YAML recipe, or a run's config.json (reruns that run's settings); its values sit between the defaults and the flags."))  # fmt: skip
    return params


def typed_flags(ctx: click.Context, params: Mapping[str, Any]) -> dict[str, Any]:
    """The options the user actually gave (on the command line or through the environment)."""
    given = {}
    for name, value in params.items():
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT) or value is None:
            continue
        if isinstance(value, tuple) and not value and _is_multiple(ctx, name):
            continue
        given[name] = value
    return given


def _is_multiple(ctx: click.Context, name: str) -> bool:
    return any(p.name == name and getattr(p, "multiple", False) for p in ctx.command.params)


def build_config(cls: type[Config], ctx: click.Context, params: dict[str, Any]) -> Config:
    """Resolve a command's config from its defaults, ``--config`` file, ``--smoke`` and typed flags.

    With ``--resume RUN_DIR`` (or another recorded base, ``Config.recorded_values``) the run's saved
    (already resolved) config replaces defaults, file and preset; only flags typed now go above it.
    """
    params = dict(params)
    config_file = params.pop("config_file", None)
    flags = typed_flags(ctx, params)
    flags = {name: _joined(value) if _is_multiple(ctx, name) else value for name, value in flags.items()}
    recorded = cls.recorded_values(flags)
    if recorded is not None:
        return resolve_config(cls, {}, {**recorded, **flags})
    file_values = load_config_file(config_file) if config_file else {}
    return resolve_config(cls, file_values, flags, source=f"config file {config_file}")


def _joined(values: tuple) -> tuple:
    """A repeatable option's values, each of which may itself be a comma list."""
    joined: list = []
    for value in values:
        joined += list(value) if isinstance(value, tuple) else [value]
    return tuple(joined)


def print_summary(summary: Mapping[str, Any]) -> None:
    for key, value in summary.items():
        click.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


class ConfigCommand(click.Command):
    """A command generated from a config class; a former option name is refused with one line naming
    the option that replaced it (``Config.renamed``), and so are positional arguments where the
    command has none (``no_arguments``: what to write instead)."""

    def __init__(self, *args, config_class: type[Config], no_arguments: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config_class = config_class  # also for the test that every option is read
        self.no_arguments = no_arguments

    def parse_args(self, ctx, args):
        renamed = {f"--{old.replace('_', '-')}": flag_name(self.config_class.__dataclass_fields__[new])
                   for old, new in self.config_class.renamed_options().items()}  # fmt: skip
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag in renamed:
                raise click.UsageError(f"{flag} is now {renamed[flag]} (the option names of docs/runs.md)", ctx)
        if self.no_arguments and args and not args[0].startswith("-"):
            raise click.UsageError(f"this command takes options only: {self.no_arguments}", ctx)
        return super().parse_args(ctx, args)


def config_command(
    name: str,
    cls: type[Config],
    run: Callable[[Config], Mapping[str, Any]],
    help: str,
    *,
    short_help: str | None = None,
    no_arguments: str | None = None,
) -> click.Command:
    """A Click command with one option per field of ``cls`` that resolves the config, runs, and
    prints the summary ``run`` returns."""

    @click.pass_context
    def callback(ctx: click.Context, **params):
        print_summary(run(build_config(cls, ctx, params)))

    return ConfigCommand(name, callback=callback, params=click_params(cls), help=help, short_help=short_help, config_class=cls,
                         no_arguments=no_arguments, context_settings={"help_option_names": ["-h", "--help"]})  # fmt: skip


class ModeGroup(click.Group):
    """A command with modes as subcommands (``fgsm eval|train``); arguments that start with an option
    instead of a mode are refused with one line naming the modes."""

    def parse_args(self, ctx, args):
        if args and args[0].startswith("-") and args[0] not in ("-h", "--help"):
            modes = " or ".join(f"`{self.name} {mode} ...`" for mode in self.commands)
            raise click.UsageError(f"{self.name} takes a mode first: {modes}", ctx)
        return super().parse_args(ctx, args)


def mode_group(name: str, help: str, modes: Mapping[str, click.Command]) -> click.Group:
    group = ModeGroup(name, help=help, context_settings={"help_option_names": ["-h", "--help"]})
    for mode, command in modes.items():
        group.add_command(command, mode)
    return group
