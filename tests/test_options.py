"""Options generated from the config dataclasses: each command offers exactly what it reads."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from noisegame_cli.cli import cli
from noisegame_cli.commands import COMMANDS
from noisegame_cli.config import parse_value, resolve_config
from noisegame_cli.errors import UserError
from noisegame_cli.options import format_default

PACKAGE = Path(__file__).resolve().parents[1] / "noisegame_cli"
FRAMEWORK_PARAMS = {"config_file", "help"}


def leaf_commands():
    """(command path, Click command) for every command that runs a config."""
    found = []
    for name in COMMANDS:
        command = cli.get_command(None, name)
        children = command.commands.items() if isinstance(command, click.Group) else [(None, command)]
        for child_name, child in children:
            if hasattr(child, "config_class"):
                found.append((" ".join(filter(None, (name, child_name))), child))
    return found


def source_without_declarations() -> str:
    """The package's code with the field declarations (``name: type = setting(...)``) taken out."""
    text = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    return re.sub(r"^\s+\w+: [^=\n]+ = (setting|redefault)\(.*$", "", text, flags=re.MULTILINE)


def test_every_config_command_is_found():
    paths = {path for path, _ in leaf_commands()}
    assert {"train-teacher", "fgsm eval", "fgsm train", "adv-noise gnt", "adv-noise ant", "freq-split smooth", "corrupt",
            "denoise train", "denoise eval", "eval-corruption", "style-transfer"} <= paths  # fmt: skip


@pytest.mark.parametrize("path, command", leaf_commands(), ids=[p for p, _ in leaf_commands()])
def test_help_lists_only_options_its_config_reads(path, command):
    fields = {field.name for field in dataclasses.fields(command.config_class)}
    params = {param.name for param in command.params} - FRAMEWORK_PARAMS
    assert params == fields, path  # one option per field, no option without a field
    code = source_without_declarations()
    unread = [name for name in fields if not re.search(rf"(\.{name}\b|\"{name}\")", code)]
    assert not unread, f"{path}: options that nothing reads: {unread}"


def test_training_options_only_where_a_model_trains_and_devices_where_a_model_is_evaluated():
    by_path = dict(leaf_commands())
    for path in ("eval-corruption", "fgsm eval", "freq-split eval", "corrupt", "denoise eval"):
        names = {param.name for param in by_path[path].params}
        assert not names & {"epochs", "resume", "learning_rate"}, path
    for path in ("train-teacher", "train-student", "adv-noise gnt", "fgsm train", "freq-split train", "denoise train",
                 "benchmark", "eval-corruption", "fgsm eval", "denoise eval"):  # fmt: skip
        assert "strategy" in {param.name for param in by_path[path].params}, path
    strategies = {path: tuple(next(p for p in by_path[path].params if p.name == "strategy").type.choices) for path in ("fgsm eval", "benchmark")}
    assert strategies == {"fgsm eval": ("default", "mirrored"), "benchmark": ("default", "mirrored", "multi-worker")}  # shards across workers


def test_defaults_in_help_come_from_the_dataclass(invoke):
    text = " ".join(invoke("fgsm", "train", "--help").output.split())
    assert "Training budget in the 0..1 scale (of --norm). [default: 8/255]" in text
    assert "[default: crop]" in text and "[default: 0,1/255,2/255,4/255,8/255]" in text  # fgsm's own augment, the budgets
    assert format_default(0.2) == "0.2" and format_default((1, 2)) == "1,2" and format_default(True) == "on"


def test_yaml_values_parse_like_flags():
    from noisegame_cli.commands.fgsm import TrainConfig

    config = resolve_config(TrainConfig, {"train_eps": "16/255", "eps": ["0", "8/255"], "image_size": "24x20"})
    assert config.train_eps == pytest.approx(16 / 255) and config.eps == (0.0, pytest.approx(8 / 255))
    assert config.image_size == (24, 20) and parse_value("size", 32) == (32, 32)
    with pytest.raises(UserError, match="--train-eps: 'lots' is not a valid float value"):
        resolve_config(TrainConfig, {"train_eps": "lots"})
    with pytest.raises(UserError, match="option 'train_epsilon' is now 'train_eps'"):
        resolve_config(TrainConfig, {"train_epsilon": "8/255"})


def test_budgets_are_written_on_the_pixel_grid_when_they_are_on_it():
    import numpy as np

    from noisegame_cli.budgets import budget_label, budget_text
    from noisegame_cli.report.cells import epsilon_text

    assert budget_text(8 / 255) == "8/255" and budget_text(0.0) == "0" and budget_text(0.1) == "0.1"
    assert budget_text(0.5, "L2") == "0.5" and budget_text(1 / 255, "L2") == f"{1 / 255:g}"
    assert budget_text(float(np.float32(32 / 255))) == f"{float(np.float32(32 / 255)):g}"  # strict by default
    assert epsilon_text(float(np.float32(32 / 255))) == "32/255" and epsilon_text(1.0) == "1"  # read back as float32
    assert budget_label(2.5 / 255) == "2.5/255" and budget_label(0.5, "L2") == "L2 0.5"
    assert format_default(8 / 255) == "8/255" and format_default(0.5) == "0.5"
