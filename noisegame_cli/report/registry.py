"""What the report knows of each command, read from the commands themselves: every ``Config`` of the
modules in ``commands.COMMANDS`` declares its page section, the role of the model it trains and the
config field naming the model it evaluates (``Config.section``, ``model_role``, ``evaluates``). A
new command declares these beside its ``Config`` and the report picks them up; nothing here names a
command.

Reading the declarations imports the command modules (and with them TensorFlow), once per process.
"""

from __future__ import annotations

import functools
import importlib
from typing import Mapping

from noisegame_cli.commands import COMMANDS
from noisegame_cli.config import Config
from noisegame_cli.sections import OTHER, Section


def command_configs(module_name: str) -> list[type[Config]]:
    """The configs a command module defines, one per run command (a command with modes has several)."""
    module = importlib.import_module(module_name)
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Config) and value.__module__ == module_name and value.command]  # fmt: skip


@functools.cache
def declarations() -> dict[str, type[Config]]:
    """Every run command's config (which carries its declarations), in the order of ``COMMANDS``, then
    of the modes in their module."""
    return {config.command: config for module_name, _ in COMMANDS.values() for config in command_configs(module_name)}


def section_of(command: str) -> Section:
    """The section a run command's runs appear in (``OTHER`` for a command that declares none)."""
    config = declarations().get(command)
    return config.section if config is not None and config.section is not None else OTHER


def section_order() -> list[Section]:
    """The sections in the order of the commands that first declare them, "Other runs" last."""
    return list(dict.fromkeys([*(c.section for c in declarations().values() if c.section is not None), OTHER]))


def model_commands() -> list[str]:
    """The commands that train a model, in the order the leaderboard lists their models."""
    return [command for command, config in declarations().items() if config.model_role is not None]


def evaluated_field(command: str) -> str | None:
    """The config field naming the one model a run of ``command`` measures, where it is an evaluation."""
    config = declarations().get(command)
    return config.evaluates if config is not None else None


def model_role(command: str, run_config: Mapping) -> str | None:
    """The role of the model a run of ``command`` trained, from its declared template and the run's config."""
    config = declarations().get(command)
    template = config.model_role if config is not None else None
    if template is None:
        return None
    try:
        return template.format(**run_config)
    except (KeyError, IndexError):
        return template.split("}")[-1].lstrip("-") or command
