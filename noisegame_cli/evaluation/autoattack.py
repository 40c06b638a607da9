"""AutoAttack over a whole evaluated set, in chunks of points that are saved as they finish.

Each finished chunk's per-point outcome is saved in the run directory (one JSON file, replaced
atomically), so an interrupted evaluation resumes after its last finished chunk and gives the same
numbers as one that ran through (``run_autoattack_chunks``). A chunk saved under one ``AttackPlan``
is only ever reused under the same plan.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from noisegame_cli.attacks import SETTINGS, Settings, autoattack
from noisegame_cli.attacks.checks import check_square
from noisegame_cli.errors import UserError
from noisegame_cli.runs import write_text_atomically

CHUNKS_DIR = "autoattack"

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class AttackPlan:
    """How the AutoAttack part of a benchmark runs: threat model, budget, version, the attacks'
    settings, the seed, and how the points are cut into chunks. A chunk saved under one plan is only
    ever reused under the same plan."""

    norm: str
    eps: float
    version: str = "standard"
    seed: int = 0
    chunk_size: int = 1000
    settings: Settings | None = None  # None: the version's own (the standard protocol)

    @property
    def resolved_settings(self) -> Settings:
        return SETTINGS[self.version] if self.settings is None else self.settings

    @property
    def standard_settings(self) -> bool:
        return self.resolved_settings == SETTINGS[self.version]

    def identity(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": float(self.eps), "version": self.version, "seed": int(self.seed),
                "chunk_size": int(self.chunk_size), "settings": dataclasses.asdict(self.resolved_settings)}  # fmt: skip


def attack_plan(norm: str, eps: float, version: str = "standard", seed: int = 0, chunk_size: int = 1000, *,
                attack_steps: int | None = None, square_queries: int | None = None) -> AttackPlan:  # fmt: skip
    """The plan of a benchmark's AutoAttack part: the version's own settings, or with fewer
    ``attack_steps`` (APGD and FAB iterations) or ``square_queries`` for a quick look."""
    changed = {key: value for key, value in {"steps": attack_steps, "square_queries": square_queries}.items() if value is not None}
    settings = dataclasses.replace(SETTINGS[version], **changed) if changed else None
    return AttackPlan(norm, eps, version, seed, chunk_size, settings)


@dataclasses.dataclass(frozen=True)
class AutoAttackSummary:
    """The protocol's outcome over all chunks: the attacks in order, the accuracy after each ("clean"
    first, fractions), per point the attack that broke it (as ``AutoAttackResult.broken_by``), the
    sanity checks' warnings, and how many chunks were computed now and found finished."""

    attacks: tuple[str, ...]
    accuracy: dict[str, float]
    broken_by: np.ndarray
    flags: tuple[str, ...]
    computed_chunks: int = 0
    reused_chunks: int = 0

    @property
    def clean_accuracy(self) -> float:
        return self.accuracy["clean"]

    @property
    def robust_accuracy(self) -> float:
        return self.accuracy[self.attacks[-1]] if self.attacks else self.clean_accuracy


def chunk_bounds(count: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each chunk of ``count`` points."""
    if chunk_size < 1:
        raise UserError(f"the chunk size must be >= 1, got {chunk_size}")
    return [(start, min(start + chunk_size, count)) for start in range(0, count, chunk_size)]


def chunk_path(directory: str | os.PathLike, index: int) -> Path:
    return Path(directory) / CHUNKS_DIR / f"chunk-{index:05d}.json"


def accuracy_after_each(broken_by: np.ndarray, attacks: Sequence[str]) -> dict[str, float]:
    """The accuracy before any attack and after each attack in turn, from who broke each point."""
    broken_by = np.asarray(broken_by)
    accuracy = {"clean": float(np.mean(broken_by != "clean"))}
    broken = broken_by == "clean"
    for name in attacks:
        broken = broken | (broken_by == name)
        accuracy[name] = float(np.mean(~broken))
    return accuracy


def read_chunk(path: Path, plan: AttackPlan, start: int, stop: int) -> dict | None:
    """A finished chunk's record, None where it is not there yet; a ``UserError`` where it was
    computed under another plan (a resumed run given other settings)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        saved_plan, bounds = record["plan"], (record["start"], record["stop"])
        points = len(record["broken_by"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a readable chunk record; delete it to compute that chunk again") from None
    if saved_plan != plan.identity() or bounds != (start, stop) or points != stop - start:
        raise UserError(f"{path} was computed with other settings ({saved_plan}); resume with the run's own settings")
    return record


def attack_chunk(model: keras.Model, images: np.ndarray, labels: np.ndarray, plan: AttackPlan, index: int, *,
                 batch_size: int, verbose: bool) -> dict:  # fmt: skip
    """Run the protocol on one chunk of points (seeded by the plan's seed and the chunk's index);
    returns its record: who broke each point, the checks' warnings, the time per attack."""
    _, result = autoattack(
        model, images, labels, plan.eps, plan.norm, plan.version, seed=(plan.seed, index), batch_size=batch_size,
        verbose=verbose, settings=plan.resolved_settings,
    )  # fmt: skip
    return {
        "attacks": list(result.attacks),
        "broken_by": [str(name) for name in result.broken_by],
        "flags": [{"check": flag.check, "message": flag.message} for flag in result.flags],
        "seconds": result.seconds,
    }


def chunk_arrays(split, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``start..stop`` of a split (in memory: a slice; streamed: read through)."""
    if split.in_memory:
        images, labels = split.head(stop).arrays()
        return np.asarray(images[start:]), np.asarray(labels[start:])
    images, labels = [], []
    for image, label in split.examples().skip(start).take(stop - start).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def run_autoattack_chunks(model: keras.Model, split, plan: AttackPlan, directory: str | os.PathLike, *, batch_size: int = 500,
                          verbose: bool = True, say: Say = print) -> AutoAttackSummary:  # fmt: skip
    """AutoAttack on every point of ``split``, chunk by chunk; chunks already saved under
    ``directory`` (by an interrupted run of the same plan) are read instead of computed again."""
    bounds = chunk_bounds(len(split), plan.chunk_size)
    (Path(directory) / CHUNKS_DIR).mkdir(parents=True, exist_ok=True)
    broken_by: list[str] = []
    flags: dict[tuple[str, str], None] = {}
    attacks: tuple[str, ...] = ()
    computed = reused = 0
    for index, (start, stop) in enumerate(bounds):
        path = chunk_path(directory, index)
        record = read_chunk(path, plan, start, stop)
        if record is None:
            say(f"AutoAttack chunk {index + 1}/{len(bounds)}: points {start}..{stop - 1}")
            images, labels = chunk_arrays(split, start, stop)
            record = {"plan": plan.identity(), "start": start, "stop": stop,
                      **attack_chunk(model, images, labels, plan, index, batch_size=batch_size, verbose=verbose)}  # fmt: skip
            write_text_atomically(path, json.dumps(record) + "\n")
            computed += 1
            done = "done"
        else:
            reused += 1
            done = "finished earlier, read from " + str(path.relative_to(directory))
        attacks = tuple(record["attacks"])
        broken_by += record["broken_by"]
        for flag in record["flags"]:
            if flag["check"] != "square":  # judged on all the points below
                flags[(flag["check"], flag["message"])] = None
        so_far = accuracy_after_each(np.asarray(broken_by), attacks)
        say(f"AutoAttack chunk {index + 1}/{len(bounds)} {done}: over {len(broken_by)} of {len(split)} points, "
            f"clean {so_far['clean']:.2%}, robust {so_far[attacks[-1]]:.2%} so far")  # fmt: skip
    broken = np.asarray(broken_by)
    accuracy = accuracy_after_each(broken, attacks)
    notes = [f"Warning ({check}): {message}" for check, message in flags]
    square = check_square(accuracy)
    if square is not None:
        notes.append(str(square))
    if not plan.standard_settings:
        notes.append(f"Warning (settings): the attacks ran with settings other than the {plan.version} version's "
                     f"({_settings_change(plan)}); the robust accuracy is not comparable with published numbers")  # fmt: skip
    return AutoAttackSummary(attacks, accuracy, broken, tuple(notes), computed, reused)


def _settings_change(plan: AttackPlan) -> str:
    standard, used = dataclasses.asdict(SETTINGS[plan.version]), dataclasses.asdict(plan.resolved_settings)
    return ", ".join(f"{key} {used[key]} instead of {standard[key]}" for key in standard if used[key] != standard[key])
