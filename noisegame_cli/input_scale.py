"""What a model expects of its input, as plain data: ``InputScale`` (``--input-range``, ``--mean``,
``--std``), checked in one place. Kept free of Keras so that configs can check it without loading
TensorFlow; the Keras layer that applies it is ``models.wrapping.InputScaling``.

``0-255``: pixels as they are (this project's models, the ``keras.applications`` networks behind their
``preprocess_input``); ``0-1``: RobustBench's and AutoAttack's convention; ``-1-1``; and ``0-1``
followed by a per-channel ``(x - mean) / std``, mean and std on the 0..1 scale as torchvision's
``ToTensor()`` + ``Normalize(mean, std)`` write them.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from noisegame_cli.errors import UserError

# The interval each --input-range maps 0..255 pixels onto.
INPUT_RANGES = {"0-255": (0.0, 255.0), "0-1": (0.0, 1.0), "-1-1": (-1.0, 1.0)}
DEFAULT_RANGE = "0-255"
NORMALISED_RANGE = "0-1"  # mean and std are on the 0..1 scale (torchvision's ToTensor, then Normalize)

def _channel_values(values) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True)
class InputScale:
    """The input a model expects: ``input_range`` and, with ``0-1``, an optional per-channel
    ``(x - mean) / std`` (1 value for every channel, or one per channel)."""

    input_range: str = DEFAULT_RANGE
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _channel_values(self.mean))
        object.__setattr__(self, "std", _channel_values(self.std))
        check_input_scale(self.input_range, self.mean, self.std)

    @property
    def is_pixels(self) -> bool:
        """Whether the model takes 0..255 pixels as they are (nothing to wrap)."""
        return self.input_range == DEFAULT_RANGE and self.mean is None

    @property
    def flags(self) -> str:
        """The options that ask for this input, as a user types them."""
        text = f"--input-range {self.input_range}"
        if self.mean is not None:
            text += f" --mean {_listed(self.mean)} --std {_listed(self.std)}"
        return text

    def describe(self) -> str:
        """One line: what 0..255 pixels become before the model sees them."""
        if self.is_pixels:
            return "0..255 pixels as they are"
        low, high = INPUT_RANGES[self.input_range]
        text = f"pixels mapped to {low:g}..{high:g}"
        if self.mean is not None:
            text += f", then (x - mean) / std with mean {_listed(self.mean)}, std {_listed(self.std)}"
        return text

    def alternatives(self) -> list["InputScale"]:
        """The plain input ranges other than this one (and this range without mean/std, where given):
        what the silent-failure check tries."""
        others = [InputScale(name) for name in INPUT_RANGES if name != self.input_range]
        if self.mean is not None:
            others.insert(0, InputScale(self.input_range))
        return others


def _listed(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def check_input_scale(input_range: str, mean, std) -> None:
    """A ``UserError`` naming the option for an unknown range, mean without std (or the reverse), a
    count of values other than 1 or 3, a std that is not positive, or mean/std with a range other than 0-1."""
    if input_range not in INPUT_RANGES:
        raise UserError(f"--input-range {input_range}: choose from {', '.join(INPUT_RANGES)}")
    if (mean is None) != (std is None):
        raise UserError("--mean and --std go together (per channel, on the 0..1 scale, as torchvision's Normalize)")
    if mean is None:
        return
    for flag, values in (("--mean", mean), ("--std", std)):
        if len(values) not in (1, 3):
            raise UserError(f"{flag} takes 1 value or 3 (R,G,B), got {len(values)}")
    if not all(value > 0 for value in std):
        raise UserError(f"--std must be positive, got {_listed(std)}")
    if input_range != NORMALISED_RANGE:
        raise UserError(f"--mean and --std are on the 0..1 scale (torchvision's ToTensor, then Normalize): give them with "
                        f"--input-range {NORMALISED_RANGE}, not {input_range}")  # fmt: skip
