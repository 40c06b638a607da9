"""Corrupted copies of a dataset split in the two standard layouts, written part by part and resumable.

- ``npy`` (CIFAR-10-C): ``<corruption>.npy`` with the five severities stacked, ``labels.npy`` (the
  labels five times) and ``clean.npy`` (the uncorrupted images, which the official release lacks).
  A part is one corruption's file (all five severities: the layout stacks them); the split is held
  in memory, one severity block of output at a time.
- ``folder`` (ImageNet-C): ``<corruption>/<severity>/<class>/<file>.JPEG`` saved as the released
  ImageNet-C was (PIL JPEG, quality 85, ``optimize=True``), ``classes.txt``. A part is one
  (corruption, severity); the split streams from its files and keeps their names.

Every part is written into a temporary file or folder and renamed into place once complete, so an
interrupted run leaves only finished parts and a rerun skips them. ``SETTINGS_FILE`` records what the
copy was made from (dataset, split, image count, seed, parameter set, layout); a rerun with other
settings into the same folder is refused rather than mixing two copies. The pixels are those of
``corrupt`` on the split's images stacked in order, whatever the layout and the batch size.

Several processes may write one copy at once (a job array over machines sharing the folder, or a
second run started beside the first): the settings and the shared files (labels, clean images) are
written under the copy's file lock, and each part under its own (``.<part>.lock`` in the folder). A
process skips a part another is writing and comes back to it at the end, waiting for that process
and keeping what it wrote, so the processes share the parts and none writes a part twice.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
from filelock import FileLock, Timeout

from noisegame_cli import checks
from noisegame_cli.corruptions.engine import corrupt, corrupt_dataset
from noisegame_cli.corruptions.names import SEVERITIES
from noisegame_cli.corruptions.parameters import check_set_has
from noisegame_cli.data import cifar10c, imagenet_c
from noisegame_cli.errors import UserError
from noisegame_cli.runs import write_text_atomically

LAYOUTS = ("npy", "folder")
SETTINGS_FILE = "corrupt.json"
COPY_LOCK = "copy"  # the lock of the settings and the files every part shares


def file_lock(out: str | os.PathLike, name: str) -> FileLock:
    """The lock of one part (or of the copy's shared files) among the processes writing ``out``."""
    Path(out).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(out) / f".{name}.lock"))


def choose_layout(split, layout: str) -> str:
    """``auto``: npy for a split held as arrays, folder for one streamed from files or a pipeline."""
    if layout == "auto":
        return "npy" if split.in_memory else "folder"
    return checks.chosen(layout, ("auto", *LAYOUTS), "layout")


def check_settings(out: str | os.PathLike, settings: dict) -> None:
    """Refuse to add parts to a copy made with other settings; record them for a new copy (under the
    copy's lock: of two processes starting a copy at once, the second checks the first's settings)."""
    path = Path(out) / SETTINGS_FILE
    with file_lock(out, COPY_LOCK):
        if not path.is_file():
            write_text_atomically(path, json.dumps(settings, indent=2) + "\n")
            return
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            raise UserError(f"{path} is not readable JSON; delete it to write a new copy there") from None
    differing = [key for key in settings if saved.get(key) != settings[key]]
    if differing:
        key = differing[0]
        raise UserError(f"{out} holds a copy made with {key} {saved.get(key)!r}, not {settings[key]!r}; "
                        "write into another folder or delete it")  # fmt: skip


def check_layout_severities(layout: str, severities: Sequence[int]) -> None:
    """The npy layout stacks the five severities in each corruption's file, so it takes all five."""
    if layout == "npy" and sorted(severities) != list(SEVERITIES):
        raise UserError("the npy layout stacks all 5 severities in each file, so it needs all 5 severities "
                        "(noisegame corrupt --layout folder writes some)")


def copy_settings(dataset: str, split_name: str, split, seed: int, parameters: str | None, layout: str) -> dict:
    """What ``SETTINGS_FILE`` records of a copy: a rerun into the same folder must match all of it."""
    return {"dataset": dataset, "split": split_name, "images": len(split), "seed": seed, "parameters": parameters, "layout": layout,
            "image_shape": list(split.image_shape)}  # fmt: skip


def start_copy(split, out: str | os.PathLike, severities: Sequence[int], *, dataset: str, split_name: str, layout: str, seed: int,
               parameters: str | None) -> str:  # fmt: skip
    """Choose the layout (``auto``: by how the split is held), check the severities fit it and that
    ``out`` holds no copy made otherwise (recording the settings for a new one); returns the layout."""
    layout = choose_layout(split, layout)
    check_layout_severities(layout, severities)
    check_settings(out, copy_settings(dataset, split_name, split, seed, parameters, layout))
    return layout


def write_copy(
    split,
    class_names: Sequence[str],
    out: str | os.PathLike,
    corruptions: Sequence[str],
    severities: Sequence[int] = SEVERITIES,
    *,
    layout: str = "npy",
    seed: int = 0,
    parameters: str | None = None,
    frost_dir: str | os.PathLike | None = None,
    batch_size: int = 128,
    progress: bool = True,
) -> list[dict]:
    """Write ``split`` corrupted by each of ``corruptions`` at each of ``severities`` into ``out`` in
    ``layout`` (``npy`` needs all five severities); finished parts already there are kept.

    Returns one row per (corruption, severity): ``images`` (the part's image count) and, for the parts
    written now, ``seconds`` (for npy, a corruption's time spread evenly over its severities); rows
    of kept parts carry ``kept: True``."""
    checks.chosen(layout, LAYOUTS, "layout")
    check_layout_severities(layout, severities)
    check_set_has(corruptions, parameters)  # before anything is written
    bar = keras.utils.Progbar(len(corruptions) * len(severities), unit_name="set", verbose=1 if progress else 0)
    writer = _write_npy if layout == "npy" else _write_folders
    return writer(split, class_names, Path(out), list(corruptions), list(severities), seed, parameters, frost_dir, batch_size,
                  lambda: bar.add(1))  # fmt: skip


def _write_npy(split, class_names, out: Path, corruptions, severities, seed, parameters, frost_dir, batch_size, step: Callable) -> list[dict]:
    images, labels = split.arrays()
    labels_file = out / cifar10c.LABELS_FILE
    with file_lock(out, COPY_LOCK):
        if labels_file.is_file() and not np.array_equal(cifar10c.load_labels(out), np.tile(labels, len(SEVERITIES))):
            raise UserError(f"{out} holds a copy of other images ({labels_file} differs); write into another folder or delete it")
        if not labels_file.is_file():
            cifar10c.write_labels_file(out, labels)
        if not (out / cifar10c.CLEAN_FILE).is_file():
            cifar10c.write_clean_file(out, images)

    def write(name: str) -> list[dict]:
        started = time.perf_counter()

        def blocks():
            for severity in SEVERITIES:
                yield corrupt(images, name, severity, seed=seed, parameters=parameters, frost_dir=frost_dir)

        cifar10c.write_corruption_file(out, name, blocks())
        seconds = (time.perf_counter() - started) / len(SEVERITIES)
        return [_row(name, s, len(labels), seconds=seconds) for s in SEVERITIES]

    def kept(name: str) -> list[dict]:
        return [_row(name, s, len(labels), kept=True) for s in SEVERITIES]

    def complete(name: str) -> bool:
        return cifar10c.corruption_file_complete(out, name, count=len(labels))

    return _parts_in_turn(out, list(corruptions), complete, write, kept, lambda: [step() for _ in SEVERITIES])


def _write_folders(split, class_names, out: Path, corruptions, severities, seed, parameters, frost_dir, batch_size, step: Callable) -> list[dict]:
    file_names = imagenet_c.output_file_names(split)
    count = len(split)

    def write(part: tuple[str, int]) -> list[dict]:
        name, severity = part
        started = time.perf_counter()
        corrupted = corrupt_dataset(split.examples(), name, severity, seed=seed, parameters=parameters, frost_dir=frost_dir)
        imagenet_c.write_folder_part(out, name, severity, corrupted.batch(batch_size).as_numpy_iterator(), class_names, file_names=file_names)
        return [_row(name, severity, count, seconds=time.perf_counter() - started)]

    parts = [(name, severity) for name in corruptions for severity in severities]
    return _parts_in_turn(out, parts, lambda part: imagenet_c.folder_part_complete(out, *part), write,
                          lambda part: [_row(*part, count, kept=True)], step)  # fmt: skip


def _parts_in_turn(out: Path, parts: list, complete: Callable, write: Callable, kept: Callable, step: Callable) -> list[dict]:
    """Each part written once among the processes writing ``out``: a complete part is kept, a free one
    written under its lock, and one another process holds is left for the end, then waited for (kept
    when that process finished it, written when it gave up). Rows in the parts' order."""
    rows: dict[int, list[dict]] = {}

    def settle(index: int, lock: FileLock) -> None:
        with lock:
            rows[index] = kept(parts[index]) if complete(parts[index]) else write(parts[index])
        step()

    busy = []
    for index, part in enumerate(parts):
        if complete(part):
            rows[index] = kept(part)
            step()
            continue
        lock = file_lock(out, _lock_name(part))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            busy.append((index, lock))
            continue
        try:
            settle(index, lock)
        finally:
            lock.release()
    for index, lock in busy:
        settle(index, lock)
    return [row for index in range(len(parts)) for row in rows[index]]


def _lock_name(part) -> str:
    return part if isinstance(part, str) else "-".join(map(str, part))


def _row(corruption: str, severity: int, images: int, *, seconds: float | None = None, kept: bool = False) -> dict:
    return {"corruption": corruption, "severity": severity, "images": images, "seconds": seconds, "kept": kept}


def read_copy(out: str | os.PathLike, layout: str, num_classes: int):
    """The copy in ``out`` as a ``CorruptedDataset`` (what ``eval-corruption`` reads back)."""
    out = Path(out)
    if layout == "npy":
        return cifar10c.npy_corrupted_dataset(out.name, out, num_classes, clean_source=None)
    return imagenet_c.folder_corrupted_dataset(out.name, out, parameters="imagenet-c", clean_source=None)
