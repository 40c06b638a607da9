"""`noisegame adv-noise gnt|ant` through the CLI: both modes write a complete run directory; bad input in one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import only_run_dir
from helpers import assert_one_line_error
from noisegame_cli.models import build_model


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "model.keras"
    build_model("tiny_cnn", (32, 32, 3), 10).save(path)
    return path


def _complete_run(runs_dir, mode):
    run = only_run_dir(runs_dir, f"adv-noise-{mode}")
    for name in ("config.json", "env.json", "history.csv", "metrics.csv", "model.keras", "training_curves.png", "noise_grid.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    return run, pd.read_csv(run / "history.csv"), pd.read_csv(run / "metrics.csv")


def test_gnt_smoke_run_with_several_sigmas(invoke, runs_dir, teacher_file):
    result = invoke("adv-noise", "gnt", "--smoke", "--limit", "48", "--sigma", "0.05,0.2",
                    "--teacher", teacher_file, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    run, history, metrics = _complete_run(runs_dir, "gnt")
    assert {"loss", "accuracy", "val_accuracy"} <= set(history.columns)
    gaussian = metrics[metrics["metric"] == "gaussian_accuracy"]
    assert sorted(zip(gaussian["sigma"], gaussian["role"])) == [(0.05, "gnt"), (0.05, "teacher"), (0.2, "gnt"), (0.2, "teacher")]
    assert "gnt_test_accuracy:" in result.output


def test_ant_smoke_run_keeps_the_budget_and_logs_the_game(invoke, runs_dir, teacher_file):
    result = invoke("adv-noise", "ant", "--smoke", "--limit", "48", "--eps", "2.5", "--generator", "3x3",
                    "--replay", "0.5", "--replay-size", "2", "--reset-generator-every", "1",
                    "--teacher", teacher_file, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    run, history, metrics = _complete_run(runs_dir, "ant")
    for column in ("classifier_loss", "generator_loss", "clean_accuracy", "noise_accuracy", "noise_l2", "val_noise_accuracy"):
        assert column in history.columns
    assert history["noise_l2"].iloc[-1] == pytest.approx(2.5, rel=1e-3)
    noise_l2 = metrics.loc[metrics["metric"] == "noise_l2", "value"].item()
    assert noise_l2 == pytest.approx(2.5, rel=1e-3)
    under_noise = metrics[metrics["metric"] == "generator_noise_accuracy"]
    assert sorted(under_noise["role"]) == ["ant", "teacher"] and (under_noise["epsilon"] == 2.5).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["ant", "--teacher", "{other}"], "teacher predicts 3 classes but the dataset has 10"),
        (["ant", "--teacher", "{teacher}", "--eps", "0"], "--eps must be positive"),
        (["ant", "--teacher", "{teacher}", "--eps", "-1"], "--eps must be positive"),
        (["ant", "--teacher", "{teacher}", "--epsilon", "3"], "--epsilon is now --eps"),
        (["--mode", "ant", "--teacher", "{teacher}"], "adv-noise takes a mode first: `adv-noise gnt ...` or `adv-noise ant ...`"),
        (["fgsm", "--teacher", "{teacher}"], "No such command 'fgsm'"),
        (["ant", "--teacher", "{teacher}", "--config", "{tmp}/mode.yaml"], "unknown option 'sigma' for adv-noise-ant"),
        (["gnt", "--teacher", "{teacher}", "--sigma", "0"], "--sigma must lie in (0, 1]"),
        (["ant", "--teacher", "{teacher}", "--p-noise", "1.5"], "--p-noise must lie in (0, 1]"),
        (["ant", "--teacher", "{tmp}/missing"], "--teacher {tmp}/missing: no such file or folder"),
        (["ant"], "--teacher is required"),
    ],
)
def test_bad_input_fails_in_one_line_without_a_run_directory(invoke, runs_dir, tmp_path, teacher_file, args, message):
    other = tmp_path / "other.keras"
    if "{other}" in args:
        build_model("tiny_cnn", (32, 32, 3), 3).save(other)
    (tmp_path / "mode.yaml").write_text("sigma: 0.1\n")
    args = [a.replace("{other}", str(other)).replace("{tmp}", str(tmp_path)).replace("{teacher}", str(teacher_file)) for a in args]
    message = message.replace("{tmp}", str(tmp_path))
    result = invoke("adv-noise", args[0], "--smoke", "--runs-dir", runs_dir, *args[1:])
    assert_one_line_error(result, message)
    assert not runs_dir.exists()
