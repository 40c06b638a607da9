"""The command line through Click's CliRunner: help, run directories, config precedence, bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import only_run_dir
from noisegame_cli.commands import COMMANDS

MISSION_COMMANDS = ("train-teacher", "train-student", "adv-noise", "fgsm", "freq-split", "style-transfer", "eval-corruption")


def test_help_lists_every_mission_command(invoke):
    result = invoke("--help")
    assert result.exit_code == 0
    for name in MISSION_COMMANDS:
        assert name in result.output


def test_every_command_has_help(invoke):
    for name in COMMANDS:
        result = invoke(name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert "noisegame, version" in result.output


def test_train_teacher_smoke_writes_a_complete_run_directory(invoke, runs_dir, tmp_path):
    results = tmp_path / "sweep.csv"
    result = invoke("train-teacher", "--smoke", "--runs-dir", runs_dir, "--results", results, "--seed", "3")
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "train-teacher")
    for name in ("config.json", "env.json", "status.json", "history.csv", "metrics.csv", "model.keras", "training_curves.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 3 and config["smoke"] is True and config["model"] == "tiny_cnn"
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 3 and env["packages"]["tensorflow"] and "commit" in env["git"]
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns[:6]) == ["run_id", "command", "dataset", "model", "metric", "value"]
    assert set(metrics["metric"]) == {"accuracy", "loss"}
    assert (metrics["run_id"] == run.name).all() and (metrics["split"] == "test").all()
    accuracy = metrics.loc[metrics["metric"] == "accuracy", "value"].item()
    assert 0.0 <= accuracy <= 1.0
    assert f"test_accuracy: {accuracy:.4f}" in result.output
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0] and {"loss", "val_loss", "accuracy"} <= set(history.columns)
    pd.testing.assert_frame_equal(pd.read_csv(results), metrics)


def test_config_file_sits_between_defaults_and_flags(invoke, runs_dir, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: tiny_cnn\nepochs: 2\nbatch-size: 16\nlimit: 64\naugment: crop\n")
    result = invoke("train-teacher", "--config", recipe, "--epochs", "1", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    config = json.loads((only_run_dir(runs_dir, "train-teacher") / "config.json").read_text())
    assert config["epochs"] == 1  # flag beats file
    assert config["batch_size"] == 16 and config["augment"] == "crop"  # file beats default
    assert config["learning_rate"] == 0.001  # default kept


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--dataset", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
        (["--model", "resnet1000"], "unknown model 'resnet1000'"),
        (["--dataset", "cifar10", "--data-dir", "{tmp}/nowhere"], "--data-dir {tmp}/nowhere: no such file or folder"),
        (["--config", "{tmp}/missing.yaml"], "cannot read config file"),
        (["--swa-start", "5", "--epochs", "2"], "--swa-start must lie in 1..2"),
        (["--dropout", "1.5"], "--dropout must lie in [0, 1)"),
        (["--strategy", "multi-worker"], "needs TF_CONFIG"),
        (["--dataset", "synthetic:32x32"], "synthetic dataset spec"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_input_ends_in_one_line(invoke, runs_dir, tmp_path, monkeypatch, args, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    message = message.replace("{tmp}", str(tmp_path))
    result = invoke("train-teacher", "--smoke", "--runs-dir", runs_dir, *args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisegame: error:"), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content, message", [("epochs: [1\n", "not valid YAML"), ("- 1\n- 2\n", "must hold a mapping"), ("epochz: 3\n", "unknown option 'epochz'")])
def test_bad_config_files(invoke, runs_dir, tmp_path, content, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(content)
    result = invoke("train-teacher", "--config", recipe, "--runs-dir", runs_dir)
    assert result.exit_code != 0 and message in result.stderr
    assert not runs_dir.exists()  # a mistake caught up front leaves no run directory behind


def test_train_teacher_on_a_fabricated_cifar_archive(invoke, runs_dir, cifar_archive):
    result = invoke("train-teacher", "--smoke", "--dataset", "cifar10", "--data-dir", cifar_archive.parent, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(only_run_dir(runs_dir, "train-teacher") / "metrics.csv")
    assert (metrics["dataset"] == "cifar10").all()


def test_report_collects_completed_runs_and_lists_failed_ones(invoke, runs_dir):
    assert invoke("train-teacher", "--smoke", "--runs-dir", runs_dir, "--name", "a").exit_code == 0
    failed = runs_dir / "train-teacher" / "20000101-000000-broken"
    failed.mkdir(parents=True)
    (failed / "config.json").write_text("{}")
    (failed / "status.json").write_text(json.dumps({"status": "failed"}))
    (failed / "metrics.csv").write_text("run_id,command,dataset,model,metric,value\nbroken,train-teacher,digits,x,accuracy,0.99\n")
    result = invoke("report", runs_dir)
    assert result.exit_code == 0, result.output
    report = pd.read_csv(runs_dir / "report.csv")
    completed = [p.name for p in (runs_dir / "train-teacher").iterdir() if p.name.endswith("-a")]
    assert set(report["run_id"]) == set(completed) and len(completed) == 1
    assert "not included (failed)" in result.output
    summary = pd.read_csv(runs_dir / "summary.csv")
    assert {"accuracy", "loss"} <= set(summary.columns)


def test_report_of_a_missing_folder(invoke, tmp_path):
    result = invoke("report", tmp_path / "nothing")
    assert result.exit_code != 0 and "nothing: no such folder" in result.stderr
