"""Shared fixtures: fabricated data files in the real formats, and a CLI runner."""

from __future__ import annotations


import os
import pickle
import tarfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from click.testing import CliRunner

from noisegame_cli.cli import cli


def pytest_collection_modifyitems(items):
    """The tests marked slow first: on `make test`'s two workers they then run beside the short ones
    instead of alone at the end (a stable sort: the order is otherwise kept)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def cifar_batch_bytes(count: int, seed: int, *, labels=None) -> bytes:
    """A CIFAR-10 python batch: {b'data': uint8 [N, 3072] channel-major, b'labels': list of int}."""
    rng = np.random.default_rng(seed)
    labels = list(rng.integers(0, 10, size=count)) if labels is None else list(labels)
    batch = {b"batch_label": b"fabricated", b"data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8), b"labels": [int(v) for v in labels]}
    return pickle.dumps(batch, protocol=2)


def write_cifar_folder(root: Path, per_batch: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index in range(1, 6):
        (folder / f"data_batch_{index}").write_bytes(cifar_batch_bytes(per_batch, index))
    (folder / "test_batch").write_bytes(cifar_batch_bytes(per_batch, 99))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"x"] * 10}, protocol=2))
    return folder


def write_cifar_archive(root: Path, per_batch: int = 20) -> Path:
    folder = write_cifar_folder(root / "unpacked", per_batch)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive


@pytest.fixture
def cifar_folder(tmp_path) -> Path:
    write_cifar_folder(tmp_path)
    return tmp_path


@pytest.fixture
def cifar_archive(tmp_path) -> Path:
    return write_cifar_archive(tmp_path)


@pytest.fixture
def invoke(tmp_path):
    """Run the CLI in-process; returns Click's result (exit_code, stdout, stderr)."""

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def only_run_dir(runs: Path, command: str) -> Path:
    """The single run directory a command made under ``runs``."""
    found = sorted((runs / command).iterdir())
    assert len(found) == 1, found
    return found[0]


