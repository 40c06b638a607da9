"""Checks of single configuration values, each raising a one-line ``UserError`` that names the option.

A check is a function ``check(value, flag)``; the factories below build them. Config fields name
their check in their metadata (see :func:`noisegame_cli.config.setting`), so every value is checked
once, whether it came from a flag, a YAML recipe or a saved config.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from noisegame_cli.errors import UserError

Check = Callable[[Any, str], None]


def _each(value) -> Iterable:
    return value if isinstance(value, (tuple, list)) else (value,)


def at_least(minimum: float) -> Check:
    def check(value, flag):
        for item in _each(value):
            if not item >= minimum:
                raise UserError(f"{flag} must be at least {minimum:g}, got {item:g}")

    return check


def positive(value, flag) -> None:
    for item in _each(value):
        if not item > 0:
            raise UserError(f"{flag} must be positive, got {item:g}")


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False, unit: str = "") -> Check:
    """``low <= value <= high`` (an open end excludes its bound); ``unit`` is added to the message."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value, flag):
        for item in _each(value):
            below = item <= low if low_open else item < low
            above = item >= high if high_open else item > high
            if below or above or item != item:  # the last test rejects NaN
                raise UserError(f"{flag} must lie in {shown}{unit}, got {item:g}")

    return check


BUDGET = between(0.0, 1.0, unit=" (the 0..1 scale of the image range, e.g. 8/255)")


def chosen(value, choices: Iterable, what: str, *, where: str = "", also: str = ""):
    """``value`` (or each of a list) if it is one of ``choices``, else the one message every unknown
    name gets: "unknown WHAT 'x' [in WHERE]; choose from a, b, c[ ALSO]". Returns ``value``."""
    allowed = tuple(choices)
    for item in _each(value):
        if item not in allowed:
            place = f" in {where}" if where else ""
            raise UserError(f"unknown {what} {item!r}{place}; choose from {', '.join(map(str, allowed))}{also}")
    return value


def one_of(choices: Iterable[str] | Callable[[], Iterable[str]], what: str | None = None) -> Check:
    """Membership in ``choices`` (or in what a function returns: registries fill up on import)."""

    def check(value, flag):
        chosen(value, choices() if callable(choices) else choices, what or flag)

    return check


def distinct(value, flag) -> None:
    if len(set(value)) != len(value):
        raise UserError(f"{flag} lists a value twice: {', '.join(map(str, value))}")


def not_empty(value, flag) -> None:
    if len(value) == 0:
        raise UserError(f"{flag} needs at least one value")


def all_of(*checks: Check) -> Check:
    def check(value, flag):
        for one in checks:
            one(value, flag)

    return check


# --- paths ------------------------------------------------------------------------------------------


def existing_file(value, flag) -> None:
    for item in _each(value):
        path = Path(item)
        if not path.exists():
            raise UserError(f"{flag} {path}: no such file")
        if not path.is_file():
            raise UserError(f"{flag} {path}: is a folder, not a file")


def existing_dir(value, flag) -> None:
    for item in _each(value):
        path = Path(item)
        if not path.exists():
            raise UserError(f"{flag} {path}: no such folder")
        if not path.is_dir():
            raise UserError(f"{flag} {path}: is a file, not a folder")


def existing_path(value, flag) -> None:
    for item in _each(value):
        if not Path(item).exists():
            raise UserError(f"{flag} {item}: no such file or folder")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def writable_dir(value, flag) -> None:
    """A folder that exists and is writable, or one that can be created."""
    for item in _each(value):
        path = Path(item)
        if path.exists() and not path.is_dir():
            raise UserError(f"{flag} {path}: is a file, not a folder")
        _creatable(path, path, flag, "folder")


PROBE_BYTES = 4096  # written (then deleted) to see that a folder takes a file: one block of a full disk


def write_problem(folder: Path) -> str | None:
    """Why a small file cannot be written in ``folder`` (None when it can), found by writing one:
    ``os.access`` says yes to root whatever the permissions, and nothing of a full disk."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".noisegame-write-test-") as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
    except OSError as error:
        return error.strerror or str(error)
    return None


def _creatable(path: Path, folder: Path, flag: str, what: str) -> None:
    """``folder`` (``path`` itself or its parent) exists and takes a file, or its nearest existing
    ancestor does (so it can be created); the message names the path the user gave."""
    anchor = _nearest_existing(folder)
    if not anchor.is_dir():
        raise UserError(f"{flag} {path}: {anchor} is a file, so the {what} cannot be created")
    problem = write_problem(anchor)
    if problem is not None:
        raise UserError(f"{flag} {path}: {anchor} is not writable ({problem})")


def writable_existing_dir(value, flag) -> None:
    """A folder that exists and takes a file (a run directory to resume)."""
    existing_dir(value, flag)
    for item in _each(value):
        problem = write_problem(Path(item))
        if problem is not None:
            raise UserError(f"{flag} {item}: is not writable ({problem})")


def writable_file(value, flag) -> None:
    """A file that exists and is writable, or one that can be created."""
    for item in _each(value):
        path = Path(item)
        if path.is_dir():
            raise UserError(f"{flag} {path}: is a folder, not a file")
        if path.exists():
            try:
                with open(path, "ab"):  # appending nothing changes nothing
                    pass
            except OSError as error:
                raise UserError(f"{flag} {path}: is not writable ({error.strerror or error})") from None
            _creatable(path, path.parent, flag, "file")  # a full disk: the appended rows need room
            continue
        _creatable(path, path.parent, flag, "file")
