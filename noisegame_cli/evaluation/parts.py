"""The finished parts of an evaluation, saved in its run directory as they finish.

A long evaluation (a benchmark: its clean part, then every corruption x severity set; AutoAttack keeps
its own chunks, ``evaluation.autoattack``) saves each part's per-point outcomes once the part is done:
``parts/<part>.npz`` holds whether the model was right on each point and its loss, with the identity
of what was measured (the model's weights, the points, the settings), replaced atomically. A resumed
run reads the parts it finds instead of computing them again, and refuses one computed otherwise; the
shards of one evaluation merge by putting their parts' outcomes end to end (``merge_parts``): the
outcomes of the whole set, from which every number is computed as an unsharded run computes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np

from noisegame_cli.errors import UserError
from noisegame_cli.evaluation.clean import PointOutcomes
from noisegame_cli.runs import write_bytes_atomically

PARTS_DIR = "parts"


def model_fingerprint(model: keras.Model) -> str:
    """A digest of a model's weights (shapes, types and values): which model a record was made with."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class PartStore:
    """The parts of one evaluation under ``directory``, each made under ``identity`` (JSON values).
    ``complete``: every part is there already (merged shards), and one that is not is a ``UserError``.
    ``computed`` and ``reused`` list the parts measured now and read back, in order."""

    directory: Path
    identity: Mapping[str, Any]
    complete: bool = False
    computed: list[str] = dataclasses.field(default_factory=list)
    reused: list[str] = dataclasses.field(default_factory=list)

    def path(self, part: str) -> Path:
        return Path(self.directory) / PARTS_DIR / f"{part}.npz"

    def names(self) -> list[str]:
        """The parts saved so far."""
        folder = Path(self.directory) / PARTS_DIR
        return sorted(path.stem for path in folder.glob("*.npz")) if folder.is_dir() else []

    def read(self, part: str) -> PointOutcomes | None:
        """A finished part's outcomes; None where it is not there; a ``UserError`` where it was made
        under another identity (a resumed run given other settings, or another model)."""
        path = self.path(part)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                identity, correct, loss = json.loads(str(saved["identity"])), saved["correct"], saved["loss"]
        except (OSError, ValueError, KeyError, EOFError):
            raise UserError(f"{path}: not a readable part record; delete it to compute that part again") from None
        if identity != json.loads(json.dumps(dict(self.identity))) or correct.shape != loss.shape:
            changed = ", ".join(f"{key} {identity.get(key)!r}" for key in self.identity if identity.get(key) != self.identity[key])
            raise UserError(f"{path} was computed with other settings ({changed or identity}); resume with the run's own settings")
        return PointOutcomes(correct.astype(bool), loss.astype(np.float32))

    def write(self, part: str, outcomes: PointOutcomes) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, identity=np.array(json.dumps(dict(self.identity))), correct=outcomes.correct, loss=outcomes.loss)
        self.path(part).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(self.path(part), buffer.getvalue())

    def outcomes(self, part: str, compute: Callable[[], PointOutcomes]) -> PointOutcomes:
        """The part's outcomes: read back where finished, else computed now and saved."""
        found = self.read(part)
        if found is not None:
            self.reused.append(part)
            return found
        if self.complete:
            raise UserError(f"{self.path(part)} is missing: the shards merged do not hold the {part} part")
        outcomes = compute()
        self.write(part, outcomes)
        self.computed.append(part)
        return outcomes


def merge_parts(shards: Sequence[PartStore], into: PartStore) -> list[str]:
    """Write into ``into`` every part the ``shards`` (in order) all hold, their outcomes end to end;
    returns the parts' names. A ``UserError`` where the shards do not hold the same parts."""
    names = shards[0].names()
    for shard in shards[1:]:
        if shard.names() != names:
            missing = sorted(set(names) ^ set(shard.names()))
            raise UserError(f"{shard.directory} and {shards[0].directory} hold different parts ({', '.join(missing)}): "
                            "finish each shard (--resume) before merging")  # fmt: skip
    for name in names:
        into.write(name, PointOutcomes.concatenate([shard.read(name) for shard in shards]))
    return names

