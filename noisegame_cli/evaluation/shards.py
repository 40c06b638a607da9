"""Which points an evaluation covers: all of them, or one shard's contiguous slice.

An evaluation of the first ``total`` test images cuts them into chunks of ``chunk_size`` points counted
from the first (AutoAttack's unit of work and of ``--resume``). Shard K of N (``--shard K/N``, K counted
from 0, as job arrays number their tasks) takes a contiguous run of whole chunks: chunks
``K * C // N .. (K + 1) * C // N - 1`` of the C chunks. Every random draw of the evaluation is keyed by
the seed and a point's place in the whole set (AutoAttack: by chunk; the corruption engine: by image),
and images are classified in the batches they have in the whole set (a shard's chunks hold whole
batches: the chunk size is a multiple of the batch size), so a point's outcome is the same in a shard
as in an unsharded run, and the shards' outcomes put together are the unsharded run's.

``shard_from_tf_config`` names the shard of a worker of a multi-worker cluster (``TF_CONFIG``):
evaluation workers need no communication, each evaluates its own shard.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from noisegame_cli.errors import UserError
from noisegame_cli.runs import read_status

SHARD_FILE = "shard.json"  # in a shard's run directory: which shard, which points, what was evaluated
SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str, flag: str = "--shard") -> "Shard":
        """``K/N`` (``0/4`` .. ``3/4``); a ``UserError`` naming ``flag`` otherwise."""
        found = SHARD_PATTERN.match(str(text))
        if not found:
            raise UserError(f"{flag} takes K/N, shard K of N counted from 0 (0/4 .. 3/4), got {text!r}")
        index, count = int(found.group(1)), int(found.group(2))
        if count < 1 or index >= count:
            raise UserError(f"{flag} {text}: K counts from 0 and must be below N (0/{max(count, 1)} .. {max(count, 1) - 1}/{max(count, 1)})")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def check_shard(value, flag) -> None:
    """The config check of a ``--shard`` value."""
    Shard.parse(value, flag)


def chunk_bounds(count: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each chunk of ``count`` points."""
    if chunk_size < 1:
        raise UserError(f"the chunk size must be >= 1, got {chunk_size}")
    return [(start, min(start + chunk_size, count)) for start in range(0, count, chunk_size)]


@dataclasses.dataclass(frozen=True)
class Points:
    """Points ``start .. stop - 1`` of an evaluated set of ``total``, whose chunks of ``chunk_size`` are
    counted from the set's first point; ``shard`` where they are one shard's."""

    total: int
    chunk_size: int
    start: int
    stop: int
    shard: Shard | None = None

    def __len__(self) -> int:
        return self.stop - self.start

    def chunks(self) -> list[tuple[int, int, int]]:
        """``(index, start, stop)`` of each chunk of these points, indexed in the whole set."""
        return [(index, start, stop) for index, (start, stop) in enumerate(chunk_bounds(self.total, self.chunk_size))
                if self.start <= start < self.stop]  # fmt: skip

    def record(self) -> dict:
        return {"shard": None if self.shard is None else str(self.shard), "total": self.total, "chunk_size": self.chunk_size,
                "start": self.start, "stop": self.stop}  # fmt: skip


def shard_points(total: int, chunk_size: int, shard: Shard | None = None, batch_size: int | None = None) -> Points:
    """All ``total`` points, or shard K of N: a contiguous run of whole chunks, made of whole batches of
    ``batch_size`` (a ``UserError`` where there are fewer chunks than shards, or a chunk is not whole
    batches: a shard's first images would be classified in a batch other than the whole set's)."""
    if shard is None:
        return Points(total, chunk_size, 0, total)
    if batch_size is not None and chunk_size % batch_size:
        raise UserError(f"--shard needs --chunk-size ({chunk_size}) to be a multiple of --batch-size ({batch_size}), so that each image is "
                        "classified in the batch it has in the whole set; e.g. --batch-size 125, 200, 250 or 500 with --chunk-size 1000")  # fmt: skip
    bounds = chunk_bounds(total, chunk_size)
    if shard.count > len(bounds):
        raise UserError(f"--shard {shard}: the {total} points make {len(bounds)} chunk(s) of --chunk-size {chunk_size}, fewer than "
                        f"{shard.count} shards; use a smaller --chunk-size or fewer shards")  # fmt: skip
    first, last = shard.index * len(bounds) // shard.count, (shard.index + 1) * len(bounds) // shard.count
    return Points(total, chunk_size, bounds[first][0], bounds[last - 1][1], shard)


def shard_from_tf_config(config: dict) -> Shard:
    """This worker's shard in the cluster a parsed ``TF_CONFIG`` describes: the chief (if any) first,
    then the workers in order."""
    try:
        cluster, task = config["cluster"], config["task"]
        members = [("chief", i) for i in range(len(cluster.get("chief", [])))] + [("worker", i) for i in range(len(cluster.get("worker", [])))]
        return Shard(members.index((task["type"], int(task["index"]))), len(members))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError("TF_CONFIG must name a cluster of chief/worker tasks and this task among them "
                        '(e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}})') from None


# --- putting shards together ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ShardRun:
    """A shard's run directory as recorded: its config, status, shard record (``SHARD_FILE``) and the
    code that ran it (package versions and git commit, from ``env.json``)."""

    directory: Path
    config: dict
    status: str
    record: dict
    code: dict

    @property
    def shard(self) -> Shard:
        return Shard.parse(self.record["shard"])

    @property
    def points(self) -> Points:
        record = self.record
        return Points(record["total"], record["chunk_size"], record["start"], record["stop"], self.shard)


def find_shard_runs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The shard run directories among ``paths`` and under the folders among them."""
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        found.update(dict.fromkeys([path] if (path / SHARD_FILE).is_file() else sorted(p.parent for p in path.rglob(SHARD_FILE))))
    if not found:
        raise UserError(f"no shard runs in {', '.join(map(str, paths))} (run directories of benchmark --shard K/N)")
    return list(found)


def read_shard_run(directory: Path) -> ShardRun:
    records = {}
    for name in ("config.json", "env.json", SHARD_FILE):
        try:
            records[name] = json.loads((directory / name).read_text())
        except (OSError, ValueError):
            raise UserError(f"{directory}: no readable {name}; not a finished shard run") from None
    env = records["env.json"]
    code = {"packages": env.get("packages"), "commit": (env.get("git") or {}).get("commit")}
    return ShardRun(directory, records["config.json"], read_status(directory), records[SHARD_FILE], code)


def fitting_shards(runs: Sequence[ShardRun], config: Mapping, ignored: Iterable[str]) -> list[ShardRun]:
    """``runs`` in shard order, checked to be every shard of one evaluation: finished, run with
    ``config`` (except the ``ignored`` keys: where and how a shard ran), on one model, by one code,
    cut alike, each shard once, their points following each other from the first to the last. Any
    misfit is a ``UserError`` naming the runs."""
    ignored = set(ignored)
    wanted = {key: value for key, value in json.loads(json.dumps(dict(config), default=str)).items() if key not in ignored}
    first = runs[0]
    for run in runs:
        if run.status != "completed":
            raise UserError(f"{run.directory}: that shard did not finish ({run.status}); finish it (benchmark --resume {run.directory}), then merge")
        for key, value in wanted.items():
            if run.config.get(key) != value:
                flag = "--" + key.replace("_", "-")
                raise UserError(f"{run.directory} was run with {flag} {run.config.get(key)!r}, not {value!r}: merge the shards of one benchmark only")
        if run.record["model"] != first.record["model"]:
            raise UserError(f"{run.directory} and {first.directory} measured different models (weights {run.record['model']} and "
                            f"{first.record['model']}): merge the shards of one model only")  # fmt: skip
        if run.code != first.code:
            raise UserError(f"{run.directory} and {first.directory} ran different code (versions or git commit differ): "
                            "shards of one benchmark run the same code")  # fmt: skip
        if run.shard.count != first.shard.count or run.record["total"] != first.record["total"]:
            raise UserError(f"{run.directory} is shard {run.shard} of {run.record['total']} points, {first.directory} shard {first.shard} "
                            f"of {first.record['total']}: merge the shards of one cut only")  # fmt: skip
    by_index: dict[int, ShardRun] = {}
    for run in runs:
        if run.shard.index in by_index:
            raise UserError(f"{by_index[run.shard.index].directory} and {run.directory} are both shard {run.shard}: keep one")
        by_index[run.shard.index] = run
    missing = [f"{index}/{first.shard.count}" for index in range(first.shard.count) if index not in by_index]
    if missing:
        raise UserError(f"shard(s) {', '.join(missing)} missing: run them (or name their run directories) before merging")
    ordered = [by_index[index] for index in range(first.shard.count)]
    expected = 0
    for run in ordered:
        if run.points.start != expected:
            raise UserError(f"{run.directory} holds points {run.points.start}..{run.points.stop - 1}, but the shards before it end at "
                            f"point {expected - 1}: overlapping or missing points")  # fmt: skip
        expected = run.points.stop
    if expected != first.record["total"]:
        raise UserError(f"the shards hold points 0..{expected - 1} of {first.record['total']}: missing points")
    return ordered
