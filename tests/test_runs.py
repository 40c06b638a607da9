"""Run directories, the long metrics format, sweep tables and config precedence, as library calls."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from noisegame_cli.config import DataOptions, ModelOptions, RunOptions, TrainingOptions, resolve_config, setting
from noisegame_cli.errors import UserError
from noisegame_cli.runs import recorded_run, read_status


def _open(tmp_path, **overrides):
    kwargs = dict(runs_dir=tmp_path, name="demo run", dataset="digits", model="tiny_cnn", seed=7)
    kwargs.update(overrides)
    return recorded_run("train-teacher", {"epochs": 2}, **kwargs)


def test_run_directory_layout_and_metrics_schema(tmp_path):
    with _open(tmp_path) as run:
        assert read_status(run.directory) == "running"
        frame = run.write_metrics([
            {"metric": "accuracy", "value": 0.5, "condition": "clean", "split": "test"},
            {"metric": "accuracy", "value": 0.25, "condition": "corruption", "corruption": "fog", "severity": 3, "zeta": "x"},
        ])
    assert run.directory.parent == tmp_path / "train-teacher"
    assert run.directory.name.endswith("-demo-run")  # names are made safe for paths
    assert read_status(run.directory) == "completed"
    assert json.loads((run.directory / "config.json").read_text()) == {"epochs": 2}
    on_disk = pd.read_csv(run.directory / "metrics.csv")
    assert list(on_disk.columns) == ["run_id", "command", "dataset", "model", "metric", "value", "condition", "split", "corruption", "severity",
                                     "zeta"]
    assert on_disk["split"].isna().tolist() == [False, True]  # empty where unused
    assert (run.directory / "metrics.csv").read_text().splitlines()[2].endswith(",fog,3,x")  # severity stays an integer
    assert list(frame["run_id"]) == [run.run_id] * 2


def test_a_failing_run_is_marked_failed(tmp_path):
    with pytest.raises(RuntimeError):
        with _open(tmp_path) as run:
            raise RuntimeError("out of memory\n" + "details " * 500)
    status = json.loads((run.directory / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == "RuntimeError: out of memory"
    assert not (run.directory / "metrics.csv").exists()


def test_two_runs_in_the_same_second_get_distinct_directories(tmp_path):
    with _open(tmp_path) as first, _open(tmp_path) as second:
        assert first.directory != second.directory


def test_results_table_appends_and_widens(tmp_path):
    sweep = tmp_path / "sweep.csv"
    with _open(tmp_path) as run:
        run.write_metrics([{"metric": "accuracy", "value": 0.9, "condition": "clean"}], results=sweep)
    with _open(tmp_path, model="resnet20") as run:
        run.write_metrics([{"metric": "accuracy", "value": 0.4, "condition": "attack", "attack": "fgsm", "epsilon": 0.03}], results=sweep)
    table = pd.read_csv(sweep)
    assert list(table["model"]) == ["tiny_cnn", "resnet20"]
    assert table["epsilon"].isna().tolist() == [True, False]


@dataclasses.dataclass(frozen=True)
class _Config(ModelOptions, TrainingOptions, DataOptions, RunOptions):
    command = "demo"
    sigma: float = setting(0.1, "a noise level")


def test_precedence_defaults_file_smoke_flags():
    assert resolve_config(_Config).epochs == 10
    assert resolve_config(_Config, {"epochs": 3, "sigma": 0.5}).epochs == 3
    smoke = resolve_config(_Config, {"epochs": 3, "smoke": True})
    assert smoke.epochs == 1 and smoke.model == "tiny_cnn"  # the smoke preset beats the file
    flagged = resolve_config(_Config, {"epochs": 3, "sigma": 0.5}, {"smoke": True, "epochs": 2, "sigma": 0.2})
    assert (flagged.epochs, flagged.sigma, flagged.limit) == (2, 0.2, 128)  # flags beat everything


def test_unknown_or_mistyped_file_values_are_user_errors():
    with pytest.raises(UserError, match="unknown option 'sigmaa'"):
        resolve_config(_Config, {"sigmaa": 1})
    with pytest.raises(UserError):
        resolve_config(_Config, {"epochs": "ten"})
