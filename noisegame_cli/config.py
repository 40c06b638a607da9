"""Configuration: frozen dataclasses resolved as defaults < YAML recipe < ``--smoke`` preset < flags.

A command's ``Config`` stacks the option groups it reads (``RunOptions``, ``DataOptions``,
``ModelOptions``, ``TrainingOptions``, ...) and adds its own fields. Every field is declared once
with :func:`setting`: its default, its help line and its check. The command line's options and their
``[default: ...]`` are generated from these fields (``options.py``), YAML values are parsed by the
same rules as flags (fractions such as ``8/255`` included), and every value is checked when the
config is built, so a mistake ends before any run directory exists. ``resolve_config`` is the one
place that merges the layers; ``config.json`` records exactly what ran.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping

import yaml

from noisegame_cli import checks
from noisegame_cli.corruptions import names
from noisegame_cli.corruptions.parameters import PARAMETER_SETS, check_set_has
from noisegame_cli.errors import UserError
from noisegame_cli.input_scale import INPUT_RANGES, InputScale, check_input_scale
from noisegame_cli.sections import Section

STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
# An evaluation deals whole batches to the local devices (evaluation.replicas); across workers it is cut
# into shards, which need no communication (benchmark only); TPUs are for training.
LOCAL_STRATEGIES = ("default", "mirrored")
AUGMENTATIONS = ("flip_crop", "crop", "resize_crop", "none")


def setting(
    default: Any,
    help: str,
    *,
    check: checks.Check | None = None,
    choices: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    multiple: bool = False,
    show_default: bool = True,
) -> Any:
    """A config field: its default, one line of help, and how its value is checked.

    ``choices`` (a tuple, or a function returning one for registries) is checked and listed in the
    help; ``multiple`` makes a repeatable option.
    """
    metadata = {
        "help": help,
        "check": check,
        "choices": choices,
        "flag": flag,
        "metavar": metavar,
        "multiple": multiple,
        "show_default": show_default,
    }
    return dataclasses.field(default=default, metadata=metadata)


def redefault(group: type, name: str, default: Any, help: str | None = None) -> Any:
    """The field ``name`` of an option group with another default (and optionally another help line)."""
    field = group.__dataclass_fields__[name]
    metadata = dict(field.metadata)
    if help is not None:
        metadata["help"] = help
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


# --- values: one parser for flags and YAML --------------------------------------------------------


def parse_number(value: Any, cast: Callable = float) -> Any:
    """A number from a number or a string such as ``0.5`` or ``8/255``."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, (int, float)):
        return cast(value)
    return cast(Fraction(str(value).strip()))


def parse_list(value: Any, item: Callable[[Any], Any]) -> tuple:
    """A tuple from a list or a comma-separated string."""
    if isinstance(value, (list, tuple)):
        return tuple(item(v) for v in value)
    return tuple(item(part.strip()) for part in str(value).split(",") if part.strip())


def parse_size(value: Any) -> tuple[int, int]:
    """``(height, width)`` from ``224``, ``"224"``, ``"224x192"`` or ``[224, 192]``."""
    if isinstance(value, (list, tuple)):
        parts = [int(v) for v in value]
    else:
        parts = [int(v) for v in str(value).lower().split("x")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise ValueError("not a size")
    return parts[0], parts[1]


def _unwrap_optional(hint) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return inner[0] if len(inner) == 1 else hint
    return hint


def value_kind(hint) -> str:
    """What a field holds: bool, int, float, str, size, ints, floats or names."""
    hint = _unwrap_optional(hint)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args == (int, int):
            return "size"
        return {int: "ints", float: "floats"}.get(args[0], "names")
    return {bool: "bool", int: "int", float: "float"}.get(hint, "str")


PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": lambda v: parse_number(v, int),
    "float": parse_number,
    "str": str,
    "size": parse_size,
    "ints": lambda v: parse_list(v, lambda item: parse_number(item, int)),
    "floats": lambda v: parse_list(v, parse_number),
    "names": lambda v: parse_list(v, str),
}


def parse_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError("not true or false")
    return PARSERS[kind](value)


def field_kinds(cls: type) -> dict[str, str]:
    hints = typing.get_type_hints(cls)
    return {field.name: value_kind(hints[field.name]) for field in dataclasses.fields(cls)}


# --- the option groups ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    """What every command's config shares: its checks, its record and its run name."""

    # The command name, used for the run directory; each command's Config sets its own.
    command: ClassVar[str] = ""
    # Values a ``--smoke`` run overrides (seconds-long, same code path); merged along the class
    # hierarchy, so each option group contributes its own.
    smoke_preset: ClassVar[Mapping[str, Any]] = {}
    # Former option names and the fields that replaced them, merged like the preset: a former name,
    # typed or in a recipe, is refused with one line naming the new one.
    renamed: ClassVar[Mapping[str, str]] = {}
    # What the results page needs to know of each command, declared by the command (None: not said):
    # the section its runs appear in; the role of the model it trains, a template filled from the
    # config ("{attack}-trained"); the config field naming the one model an evaluation measures.
    section: ClassVar[Section | None] = None
    model_role: ClassVar[str | None] = None
    evaluates: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_field(field, getattr(self, field.name))
        for klass in type(self).__mro__:  # an option group's own cross-field checks, whatever a command's validate does
            if "validate_group" in klass.__dict__:
                klass.__dict__["validate_group"](self)
        self.validate()

    def validate(self) -> None:
        """Checks that involve several fields (each command adds its own)."""

    @property
    def run_name(self) -> str:
        return getattr(self, "name", None) or self.default_run_name

    @property
    def default_run_name(self) -> str:
        return getattr(self, "model", None) or self.command

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, **dataclasses.asdict(self)}

    @property
    def process_strategy(self) -> str:
        """The ``tf.distribute`` strategy this process builds (``training.strategy.make_strategy``)."""
        return getattr(self, "strategy", "default")

    @classmethod
    def recorded_values(cls, flags: Mapping[str, Any]) -> dict[str, Any] | None:
        """A recorded config that replaces defaults, recipe and preset (the flags typed now still go
        above it): the saved config of the run ``--resume`` names, else None."""
        return load_saved_config(flags["resume"], cls.command) if flags.get("resume") else None

    @classmethod
    def smoke_values(cls) -> dict[str, Any]:
        names = {field.name for field in dataclasses.fields(cls)}
        return {key: value for key, value in _merged(cls, "smoke_preset").items() if key in names}

    @classmethod
    def renamed_options(cls) -> dict[str, str]:
        """``{former field name: its field now}`` along the class hierarchy."""
        names = {field.name for field in dataclasses.fields(cls)}
        return {old: new for old, new in _merged(cls, "renamed").items() if old not in names}


def _merged(cls: type, attribute: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(klass.__dict__.get(attribute, {}))
    return merged


@dataclasses.dataclass(frozen=True)
class RunOptions(Config):
    """Where a run is recorded, its seed, and how it is reproduced."""

    option_group: ClassVar[str] = "run"

    seed: int = setting(0, "Random seed: the same seed gives the same numbers on a CPU.")
    runs_dir: str = setting("runs", "Where run directories go, relative to the current directory.", check=checks.writable_dir)
    name: str | None = setting(None, "Run name (the run directory's suffix) [default: the model or command].", show_default=False)
    results: str | None = setting(None, "Also append the metric rows to this shared CSV (safe with concurrent writers).",
                                  check=checks.writable_file)
    smoke: bool = setting(False, "A seconds-long run of the same code path.")
    nondeterministic: bool = setting(False, "Allow nondeterministic TensorFlow ops (faster on a GPU; seeded runs no longer repeat exactly).")


def _dataset_names() -> list[str]:
    from noisegame_cli.data import DATASETS

    return list(DATASETS)


def _check_dataset_spec(value, flag) -> None:
    from noisegame_cli.data import check_dataset

    check_dataset(value)


def _model_names() -> list[str]:
    from noisegame_cli.models import model_names

    return model_names()


def _check_model_name(value, flag) -> None:
    from noisegame_cli.models import check_model_name

    check_model_name(value)


@dataclasses.dataclass(frozen=True)
class DataOptions(Config):
    """Which data, where its files are, and how much of it."""

    option_group: ClassVar[str] = "data"
    smoke_preset: ClassVar[Mapping[str, Any]] = {"limit": 128, "batch_size": 32}

    dataset: str = setting("digits", "Dataset NAME[:ARG] (see docs/datasets.md), e.g. digits, cifar10, folder:PATH.",
                           check=_check_dataset_spec)
    data_dir: str | None = setting(None, "Folder with the dataset files [default: the usual cache].", check=checks.existing_path,
                                   show_default=False)
    download: bool = setting(False, "Allow downloading the dataset where its library offers it (and app:NAME's ImageNet weights).")
    limit: int | None = setting(None, "Use at most this many examples of each split.", check=checks.at_least(1))
    batch_size: int = setting(128, "Global batch size (summed over replicas).", check=checks.at_least(1))
    image_size: tuple[int, int] | None = setting(None, "Resize images read from files to HxW (or one number) [default: the files' size].",
                                                 metavar="HxW", show_default=False)
    channels: int | None = setting(None, "1 (grey) or 3 (colour): convert the images [default: as stored].",
                                   check=checks.one_of((1, 3), what="--channels value"), show_default=False)
    labels: str | None = setting(None, "Label set where a dataset has several (cifar100: fine or coarse).", show_default=False)
    strict: bool = setting(False, "Refuse a folder of image files holding a damaged or unreadable one (default: skip it with a warning).")

    def load_options(self) -> dict[str, Any]:
        """The keyword arguments of ``data.load_dataset`` / ``load_corrupted_dataset`` besides the spec."""
        return {"data_dir": self.data_dir, "image_size": self.image_size, "channels": self.channels, "labels": self.labels,
                "strict": self.strict}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ModelOptions(Config):
    """The architecture a command builds and trains."""

    option_group: ClassVar[str] = "model"
    smoke_preset: ClassVar[Mapping[str, Any]] = {"model": "tiny_cnn"}

    model: str = setting("small_cnn", "Model to build: a registered name or app:NAME (a keras.applications model).",
                         check=_check_model_name)
    weights: str | None = setting(None, "For app:NAME, initial weights: a weights file, or imagenet (downloads only with --download).",
                                  show_default=False)


def check_model_source(value, flag) -> None:
    """A saved model: an existing file or folder, or ``app:NAME[:WEIGHTS]`` (a known network, weights that exist)."""
    from noisegame_cli.models.saved import check_model_source as check

    check(value, flag)


def _check_architecture(value, flag) -> None:
    from noisegame_cli.models.saved import check_architecture

    check_architecture(value, flag)


@dataclasses.dataclass(frozen=True)
class InputOptions(Config):
    """What a saved model (``--model-path``, ``--teacher``, ``--classifier``, ``--extractor-path``) expects;
    it is wrapped once so it takes 0..255 pixels like every model here (``models.wrapping``)."""

    option_group: ClassVar[str] = "model"

    input_range: str = setting("0-255", "The input the saved model was trained on: 0-255 pixels (this project's models, app:NAME), "
                               "0-1 (RobustBench, AutoAttack), or -1-1.", choices=INPUT_RANGES)
    mean: tuple[float, ...] | None = setting(None, "Per-channel mean R,G,B on the 0..1 scale, subtracted after --input-range 0-1 "
                                             "(torchvision's Normalize; with --std).", metavar="R,G,B", show_default=False)
    std: tuple[float, ...] | None = setting(None, "Per-channel std R,G,B on the 0..1 scale, divided by after --mean.", metavar="R,G,B",
                                            show_default=False)

    def validate_group(self) -> None:
        check_input_scale(self.input_range, self.mean, self.std)  # counts, std > 0, mean/std together and with 0-1

    @property
    def input_scale(self) -> InputScale:
        return InputScale(self.input_range, self.mean, self.std)


@dataclasses.dataclass(frozen=True)
class SavedModelOptions(InputOptions):
    """``InputOptions`` and, for a weights-only file, the architecture to build for the dataset's images and classes."""

    option_group: ClassVar[str] = "model"

    architecture: str | None = setting(None, "For a weights-only saved model (.weights.h5, Keras 2 save_weights .h5): a registered "
                                       "model, app:NAME, or a model.to_json() FILE.json.", check=_check_architecture, show_default=False)


@dataclasses.dataclass(frozen=True)
class TrainingOptions(Config):
    """How long and how fast a model trains, on which devices, and resuming."""

    option_group: ClassVar[str] = "training"
    smoke_preset: ClassVar[Mapping[str, Any]] = {"epochs": 1}

    epochs: int = setting(10, "Training epochs.", check=checks.at_least(1))
    learning_rate: float = setting(1e-3, "Adam learning rate.", check=checks.positive)
    strategy: str = setting("default", "tf.distribute strategy: one device, mirrored over local devices, multi-worker from TF_CONFIG, or TPU.",
                            choices=STRATEGIES)
    resume: str | None = setting(None, "Continue an interrupted run in its own directory, from its last finished epoch and its saved config.",
                                 check=checks.writable_existing_dir, show_default=False)


@dataclasses.dataclass(frozen=True)
class DevicesOptions(Config):
    """The devices an evaluation runs on."""

    option_group: ClassVar[str] = "run"

    strategy: str = setting("default", "Devices: one, or mirrored (whole batches dealt to the local GPUs, the same numbers as on one; "
                            "two CPU replicas without a GPU).", choices=LOCAL_STRATEGIES)


@dataclasses.dataclass(frozen=True)
class AugmentOptions(Config):
    option_group: ClassVar[str] = "training"

    augment: str = setting("flip_crop", "Geometric augmentation (crop: no flip, for digits).", choices=AUGMENTATIONS)


@dataclasses.dataclass(frozen=True)
class EarlyStoppingOptions(Config):
    option_group: ClassVar[str] = "training"

    patience: int = setting(5, "Early-stopping patience in epochs (the learning rate halves after half of it).", check=checks.at_least(1))


def check_corruption_set(corruptions, parameters: str | None) -> None:
    """A corruption list given with ``--parameters`` must be of that set (the 19 and the C-bar
    corruptions are separate sets); ``all`` and the like are checked as expanded."""
    check_set_has(names.expand(corruptions), parameters)


def _parameter_set_names() -> tuple[str, ...]:
    return tuple(PARAMETER_SETS)


@dataclasses.dataclass(frozen=True)
class CorruptionEvalOptions(Config):
    """An evaluation under generated corruptions after training (teacher and trained model side by side)."""

    option_group: ClassVar[str] = "evaluation"
    renamed: ClassVar[Mapping[str, str]] = {"eval_corruptions": "corruptions"}

    corruptions: tuple[str, ...] = setting((), f"After training, evaluate on these corruptions: {names.LIST_HELP}.", check=names.check_names)
    severities: tuple[int, ...] = setting(names.SEVERITIES, "Corruption severities to evaluate.", check=names.severities_check)
    parameters: str | None = setting(None, "Corruption parameters of this published benchmark [default: the set whose native size is "
                                     "nearest the images'].", choices=_parameter_set_names, show_default=False)

    def validate_group(self) -> None:
        check_corruption_set(self.corruptions, self.parameters)


def check_field(field: dataclasses.Field, value: Any) -> None:
    """The checks a field declares (its choices, its check), on a value that is not None."""
    if value is None:
        return
    choices, check = field.metadata.get("choices"), field.metadata.get("check")
    if choices is not None:
        checks.one_of(choices, what=flag_name(field)[2:].replace("-", " "))(value, flag_name(field))
    if check is not None:
        check(value, flag_name(field))


def require(condition: bool, message: str) -> None:
    """Raise a ``UserError`` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


# --- resolving ----------------------------------------------------------------------------------------


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
    checks.writable_existing_dir(str(run_dir), "--resume")
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        status = json.loads((run_dir / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"--resume {run_dir}: not a run directory (no readable config.json and status.json)") from None
    if saved.pop("command", command) != command:
        raise UserError(f"--resume {run_dir}: that run is not a {command} run")
    if status == "completed":
        raise UserError(f"--resume {run_dir}: that run already completed")
    return {**saved, "resume": str(run_dir)}


def parse_values(cls: type[Config], values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``values`` (from a file or flags) parsed by the kinds of ``cls``'s fields; a former option name,
    an unknown one or a value that does not parse is a ``UserError`` naming it."""
    kinds = field_kinds(cls)
    renamed = cls.renamed_options()
    parsed = {}
    for key, value in values.items():
        if key in renamed:
            raise UserError(f"{source}: option {key!r} is now {renamed[key]!r} (the option names of docs/runs.md)")
        if key not in kinds:
            raise UserError(f"{source}: unknown option {key!r} for {cls.command or cls.__name__}")
        try:
            parsed[key] = parse_value(kinds[key], value)
        except (ValueError, TypeError, ZeroDivisionError):
            raise UserError(f"{source}: {'--' + key.replace('_', '-')}: {value!r} is not a valid {kinds[key]} value") from None
    return parsed


def check_values(cls: type[Config], values: Mapping[str, Any], source: str) -> None:
    """Parse and check ``values`` field by field, without building the config (the checks that involve
    several fields, and the fields left out, wait for the real run): a recipe checked ahead of time."""
    fields = cls.__dataclass_fields__
    for key, value in parse_values(cls, values, source).items():
        try:
            check_field(fields[key], value)
        except UserError as error:
            raise UserError(f"{source}: {error}") from None


def recorded_config(values: Mapping[str, Any], cls: type[Config], source: str) -> tuple[dict[str, Any], bool]:
    """A config file's values without its ``command`` key, and whether it is a recorded ``config.json``
    (it has one: it must name this command, and its values are already resolved)."""
    values = dict(values)
    if "command" not in values:
        return values, False
    command = values.pop("command")
    if command != cls.command:
        raise UserError(f"{source} is the config of a {command} run, not of {cls.command}")
    return values, True


def resolve_config(
    cls: type[Config],
    file_values: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    source: str = "config file",
) -> Config:
    """Build ``cls`` from its defaults, then ``file_values``, the smoke preset, then ``flags``.

    ``flags`` holds only the options the user actually gave. ``smoke`` may come from either layer.
    Values from a file are parsed like flags (``8/255``, comma lists); a value that does not parse
    is a ``UserError`` naming the option. A recorded ``config.json`` (it names its command) is
    already resolved: the preset is applied over it only when ``--smoke`` is typed now.
    """
    file_values, recorded = recorded_config(file_values or {}, cls, source)
    flags = dict(flags or {})
    values = {**parse_values(cls, file_values, source), **parse_values(cls, flags, "command line")}
    smoke = flags.get("smoke", False) if recorded else values.get("smoke", False)
    if smoke:
        preset = cls.smoke_values()
        values = {**{k: v for k, v in values.items() if k not in flags}, **preset, **{k: values[k] for k in flags}}
    return cls(**values)
