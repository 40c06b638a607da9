"""AutoAttack over a whole evaluated set, in chunks of points that are saved as they finish.

Each finished chunk's per-point outcome is saved in the run directory (one JSON file, replaced
atomically), so an interrupted evaluation resumes after its last finished chunk and gives the same
numbers as one that ran through (``run_autoattack_chunks``). A chunk saved under one ``AttackPlan``
(and one model) is only ever reused under the same. The chunks still to attack are dealt to the
replicas of the model's strategy, whole (``evaluation.replicas``); a shard attacks its own chunks, which
keep their index in the whole set (``evaluation.shards``), and its records merge with the other shards'
into the whole set's (``summarize_chunks``).
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
from noisegame_cli.evaluation.replicas import deal
from noisegame_cli.evaluation.shards import Points, chunk_bounds
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


def read_chunk(path: Path, plan: AttackPlan, start: int, stop: int, model: str | None = None) -> dict | None:
    """A finished chunk's record, None where it is not there yet; a ``UserError`` where it was
    computed under another plan (a resumed run given other settings) or on another ``model`` (its
    fingerprint, ``parts.model_fingerprint``)."""
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
    if model is not None and record.get("model") != model:
        raise UserError(f"{path} was computed on another model (weights {record.get('model')}, not {model}); resume with the run's own model")
    return record


def attack_chunk(model: keras.Model, split, plan: AttackPlan, chunk: tuple[int, int, int], *, batch_size: int, verbose: bool) -> dict:
    """Run the protocol on one chunk ``(index, start, stop)`` of the points of ``split`` (each point's draws
    keyed by the plan's seed and its index in the set, so the outcome does not depend on how the set is
    cut into chunks or shards); returns its record: the plan, the points, who broke each, the checks'
    warnings, the time per attack."""
    _, start, stop = chunk
    images, labels = chunk_arrays(split, start, stop)
    _, result = autoattack(
        model, images, labels, plan.eps, plan.norm, plan.version, seed=plan.seed, batch_size=batch_size,
        verbose=verbose, settings=plan.resolved_settings, point_ids=np.arange(start, stop),
    )  # fmt: skip
    return {
        "plan": plan.identity(),
        "start": start,
        "stop": stop,
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


def run_autoattack_chunks(model: keras.Model | None, split, plan: AttackPlan, directory: str | os.PathLike, *, points: Points | None = None,
                          model_id: str | None = None, batch_size: int = 500, verbose: bool = True, say: Say = print) -> AutoAttackSummary:  # fmt: skip
    """AutoAttack on ``points`` of ``split`` (all of them by default; a shard's, counted in the whole
    ``split``), chunk by chunk; chunks already saved under ``directory`` (by an interrupted run of the
    same plan, on the model whose fingerprint is ``model_id``) are read instead of computed again, and
    the others are dealt to the model's replicas, each saved as it finishes."""
    points = points or Points(len(split), plan.chunk_size, 0, len(split))
    chunks = points.chunks()
    total = len(chunk_bounds(points.total, points.chunk_size))
    (Path(directory) / CHUNKS_DIR).mkdir(parents=True, exist_ok=True)
    records = {index: read_chunk(chunk_path(directory, index), plan, start, stop, model_id) for index, start, stop in chunks}
    for index, record in records.items():
        if record is not None:
            say(f"AutoAttack chunk {index + 1}/{total} finished earlier, read from {chunk_path(directory, index).relative_to(directory)}")

    def attack(chunk: tuple[int, int, int]) -> dict:
        index, start, stop = chunk
        say(f"AutoAttack chunk {index + 1}/{total}: points {start}..{stop - 1}")
        record = {**attack_chunk(model, split, plan, chunk, batch_size=batch_size, verbose=verbose), "model": model_id}
        write_text_atomically(chunk_path(directory, index), json.dumps(record) + "\n")
        return record

    pending = [chunk for chunk in chunks if records[chunk[0]] is None]
    for (index, _, _), record in zip(pending, deal(model, pending, attack)):
        records[index] = record
        done = [records[i] for i, _, _ in chunks if records[i] is not None]
        so_far = accuracy_after_each(np.concatenate([r["broken_by"] for r in done]), record["attacks"])
        say(f"AutoAttack chunk {index + 1}/{total} done: over {sum(len(r['broken_by']) for r in done)} of {len(points)} points, "
            f"clean {so_far['clean']:.2%}, robust {so_far[record['attacks'][-1]]:.2%} so far")  # fmt: skip
    return summarize_chunks([records[index] for index, _, _ in chunks], plan, computed=len(pending))


def summarize_chunks(records: Sequence[dict], plan: AttackPlan, *, computed: int = 0) -> AutoAttackSummary:
    """The protocol's outcome over chunk ``records`` in order (a run's, or every shard's): accuracy
    after each attack, who broke each point, and the checks' warnings, judged on all the points."""
    attacks = tuple(records[0]["attacks"]) if records else ()
    broken = np.asarray([name for record in records for name in record["broken_by"]], dtype=str)
    flags = {(flag["check"], flag["message"]): None for record in records for flag in record["flags"] if flag["check"] != "square"}
    accuracy = accuracy_after_each(broken, attacks)
    notes = [f"Warning ({check}): {message}" for check, message in flags]
    square = check_square(accuracy)
    if square is not None:
        notes.append(str(square))
    if not plan.standard_settings:
        notes.append(f"Warning (settings): the attacks ran with settings other than the {plan.version} version's "
                     f"({_settings_change(plan)}); the robust accuracy is not comparable with published numbers")  # fmt: skip
    return AutoAttackSummary(attacks, accuracy, broken, tuple(notes), computed, len(records) - computed)


def _settings_change(plan: AttackPlan) -> str:
    standard, used = dataclasses.asdict(SETTINGS[plan.version]), dataclasses.asdict(plan.resolved_settings)
    return ", ".join(f"{key} {used[key]} instead of {standard[key]}" for key in standard if used[key] != standard[key])
