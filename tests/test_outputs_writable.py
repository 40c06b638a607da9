"""Output locations that cannot be written end in one line before any work: a full disk, a system folder,
the report's default output (the runs folder itself). test_trust checks every path option of every command."""

from __future__ import annotations

import errno

import pytest

from helpers import assert_one_line_error
from noisegame_cli import checks


@pytest.fixture
def full_disk(monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checks.tempfile, "NamedTemporaryFile", no_space)


@pytest.mark.parametrize("command", [
    ("fgsm", "eval", "--model-path", "{model}", "--runs-dir", "{out}"),
    ("corrupt", "--dataset", "digits", "--out", "{out}", "--runs-dir", "{tmp}/runs"),
    ("train-teacher", "--results", "{out}/all.csv", "--runs-dir", "{tmp}/runs"),
])  # fmt: skip
def test_a_full_disk_ends_in_one_line_before_any_work(command, full_disk, invoke, tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    args = [part.format(model=tmp_path / "model.keras", out=tmp_path / "out", tmp=tmp_path) for part in command]
    line = assert_one_line_error(invoke(*args), "No space left on device")
    assert "is not writable" in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.keras"]


def test_the_report_checks_the_folder_it_writes_into_by_default(invoke, tmp_path, full_disk):
    (tmp_path / "runs").mkdir()
    assert_one_line_error(invoke("report", tmp_path / "runs"), "RUNS_DIR (where the page goes without --out)")
    assert_one_line_error(invoke("report", tmp_path / "runs", "--out", tmp_path / "page"), "--out")


def test_a_writable_folder_passes_and_keeps_no_trace(tmp_path):
    checks.writable_dir(str(tmp_path / "new" / "runs"), "--runs-dir")
    checks.writable_file(str(tmp_path / "results.csv"), "--results")
    assert list(tmp_path.iterdir()) == []
