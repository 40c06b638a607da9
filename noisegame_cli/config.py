"""Configuration: frozen dataclasses resolved as defaults < YAML file < --smoke preset < flags.

Every command's ``Config`` subclasses ``CommonConfig``. ``resolve_config`` is the one place that
merges the layers, so ``config.json`` always records exactly what ran.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml

from noisegame_cli.errors import UserError

STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """Options every command shares. Batch sizes are global (summed over replicas)."""

    # The command name, used for the run directory; each subclass sets its own.
    command: ClassVar[str] = ""
    # Values a ``--smoke`` run overrides: seconds-long, same code path.
    smoke_preset: ClassVar[Mapping[str, Any]] = {"epochs": 1, "limit": 128, "batch_size": 32, "model": "tiny_cnn"}

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    model: str = "small_cnn"
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    runs_dir: str = "runs"
    name: str | None = None
    results: str | None = None
    smoke: bool = False
    strategy: str = "default"
    limit: int | None = None
    resume: str | None = None

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}")
        require(self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}")
        require(self.limit is None or self.limit >= 1, f"--limit must be at least 1, got {self.limit}")
        require(self.strategy in STRATEGIES, f"unknown --strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}")

    @property
    def run_name(self) -> str:
        return self.name or self.model

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, **dataclasses.asdict(self)}


def require(condition: bool, message: str) -> None:
    """Raise a ``UserError`` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe into a flat mapping with underscore keys."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as error:
        raise UserError(f"cannot read config file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UserError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"config file {path} must hold a mapping of option names to values")
    return {str(key).replace("-", "_"): value for key, value in loaded.items()}


def load_saved_config(run_dir: str | Path, command: str) -> dict[str, Any]:
    """The resolved config of an unfinished run of ``command``, as the base for ``--resume``."""
    run_dir = Path(run_dir)
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        status = json.loads((run_dir / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"--resume {run_dir}: not a run directory (no readable config.json and status.json)") from None
    if saved.pop("command", command) != command:
        raise UserError(f"--resume {run_dir}: that run is not a {command} run")
    if status == "completed":
        raise UserError(f"--resume {run_dir}: that run already completed")
    return {**saved, "resume": str(run_dir)}


def resolve_config(
    cls: type[CommonConfig],
    file_values: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    source: str = "config file",
) -> CommonConfig:
    """Build ``cls`` from its defaults, then ``file_values``, the smoke preset, then ``flags``.

    ``flags`` holds only the options the user actually gave. ``smoke`` may come from either layer.
    """
    file_values = dict(file_values or {})
    flags = dict(flags or {})
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(file_values) - known)
    if unknown:
        raise UserError(f"{source}: unknown option {unknown[0]!r} for {cls.command or cls.__name__}")
    values = {**file_values}
    if flags.get("smoke", values.get("smoke", False)):
        values.update(cls.smoke_preset)
    values.update(flags)
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    try:
        return cls(**values)
    except TypeError as error:
        raise UserError(f"bad configuration for {cls.command}: {error}") from None
