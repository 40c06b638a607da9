"""Corruption names, their groups and the severities: what every list of corruptions is checked and
expanded against.

A leaf module (no TensorFlow, nothing of this project but the checks), so the command line, the
configuration and the dataset loaders can read it without loading the engine.

- ``CORRUPTIONS``: the 15 common corruptions, in the CIFAR-10-C order;
- ``EXTRA_CORRUPTIONS``: the 4 held-out ones (speckle noise, gaussian blur, spatter, saturate);
- ``C_BAR_CORRUPTIONS``: the 15 of ImageNet-C-bar and CIFAR-10-C-bar (ten each, five shared);
  ``KNOWN_CORRUPTIONS``: every name the engine knows;
- ``GROUPS``: names that stand for several corruptions wherever a list is asked for
  (``noise``, ``common``, ``all``, ``imagenet-c-bar``, ``cifar10-c-bar``, ``c-bar``);
- ``SEVERITIES``: 1..5, the index into each corruption's row of a parameter table.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from noisegame_cli import checks
from noisegame_cli.errors import UserError

CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS = CORRUPTIONS + EXTRA_CORRUPTIONS
NOISE_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")
# The corruptions of ImageNet-C-bar and CIFAR-10-C-bar (Mintun et al. 2021), in the order of the published
# generator's tables (imagenet_c_bar.csv, cifar10_c_bar.csv) and with its spellings, which name the released
# files ("cocentric", "abberation").
IMAGENET_C_BAR_CORRUPTIONS = (
    "caustic_refraction",
    "inverse_sparkles",
    "sparkles",
    "perlin_noise",
    "blue_noise_sample",
    "plasma_noise",
    "checkerboard_cutout",
    "cocentric_sine_waves",
    "single_frequency_greyscale",
    "brownish_noise",
)
CIFAR10_C_BAR_CORRUPTIONS = (
    "blue_noise_sample",
    "checkerboard_cutout",
    "inverse_sparkles",
    "pinch_and_twirl",
    "ripple",
    "brownish_noise",
    "circular_motion_blur",
    "lines",
    "sparkles",
    "transverse_chromatic_abberation",
)
C_BAR_CORRUPTIONS = IMAGENET_C_BAR_CORRUPTIONS + tuple(name for name in CIFAR10_C_BAR_CORRUPTIONS if name not in IMAGENET_C_BAR_CORRUPTIONS)
KNOWN_CORRUPTIONS = ALL_CORRUPTIONS + C_BAR_CORRUPTIONS  # every name the engine knows
C_BAR_SETS = {"imagenet-c-bar": IMAGENET_C_BAR_CORRUPTIONS, "cifar10-c-bar": CIFAR10_C_BAR_CORRUPTIONS}
GROUPS = {
    "noise": NOISE_CORRUPTIONS,
    "common": CORRUPTIONS,
    "all": ALL_CORRUPTIONS,
    **C_BAR_SETS,  # generate them with --parameters imagenet-c-bar / cifar10-c-bar
    "c-bar": C_BAR_CORRUPTIONS,
}
SEVERITIES = (1, 2, 3, 4, 5)
# How an option's help names what a list of corruptions may hold.
LIST_HELP = ("names, or groups: noise (3), common (the 15), all (the 19), imagenet-c-bar, cifar10-c-bar (10 each) or c-bar (15; "
             "the C-bar sets are generated with --parameters imagenet-c-bar or cifar10-c-bar)")


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """The corruption names with the groups expanded, in order, each once."""
    expanded: list[str] = []
    for name in names:
        expanded += [n for n in GROUPS.get(name, (name,)) if n not in expanded]
    return tuple(expanded)


def check_names(names: Sequence[str], flag: str = "--corruptions") -> tuple[str, ...]:
    """The one check of a list of corruption names (groups included); returns them expanded."""
    expanded = expand(names)
    checks.chosen(expanded, (*GROUPS, *KNOWN_CORRUPTIONS), "corruption", where=flag)
    return expanded


def names_check(value, flag) -> None:
    """A config field's check of a corruption list: at least one name, each known."""
    checks.not_empty(value, flag)
    check_names(value, flag)


def severities_check(value, flag) -> None:
    """A config field's check of severities: at least one, each in 1..5, none twice."""
    checks.not_empty(value, flag)
    for severity in value:
        if severity not in SEVERITIES:
            raise UserError(f"{flag} must lie in 1..5, got {severity}")
    checks.distinct(value, flag)


def select(requested: Sequence[str], available: Sequence[str], where: str) -> tuple[str, ...]:
    """The requested corruptions that ``available`` (a dataset's files) holds: groups shrink to what
    is there; a name asked for by itself must be there. ``all`` keeps every corruption the files hold,
    the dataset's own names included (MNIST-C's shear, ...)."""
    missing = [name for name in requested if name not in GROUPS and name not in available]
    if missing:
        raise UserError(f"{where} has no {', '.join(missing)} images; it has {', '.join(available)}")
    if "all" in requested:
        return tuple(available)
    selected = tuple(name for name in expand(requested) if name in available)
    if not selected:
        raise UserError(f"{where} holds none of the corruptions asked for ({', '.join(requested)})")
    return selected
