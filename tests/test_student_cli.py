"""`noisegame train-student` through the CLI: a complete run directory, and bad input in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from noisegame_cli.commands.train_student import noise_layer
from noisegame_cli.models import build_model


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    """An (untrained) digits-shaped tiny_cnn saved as a teacher: the command only needs its shapes."""
    path = tmp_path_factory.mktemp("teacher") / "model.keras"
    build_model("tiny_cnn", (32, 32, 3), 10).save(path)
    return path


def test_smoke_run_writes_teacher_and_student_side_by_side(invoke, runs_dir, teacher_file):
    result = invoke("train-student", "--smoke", "--limit", "48", "--teacher", teacher_file, "--runs-dir", runs_dir,
                    "--corruptions", "gaussian_noise", "--severities", "2", "--temperature", "4")
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "train-student")
    for name in ("config.json", "env.json", "history.csv", "metrics.csv", "model.keras", "training_curves.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert json.loads((run / "config.json").read_text())["temperature"] == 4
    history = pd.read_csv(run / "history.csv")
    assert {"loss", "ce_loss", "kl_loss", "accuracy", "val_loss", "val_kl_loss"} <= set(history.columns)
    metrics = pd.read_csv(run / "metrics.csv")
    clean = metrics[metrics["corruption"].isna() & (metrics["metric"] == "accuracy")]
    assert sorted(clean["role"]) == ["student", "teacher"]
    corrupted = metrics[metrics["corruption"] == "gaussian_noise"]
    assert sorted(corrupted["role"]) == ["student", "teacher"] and (corrupted["severity"] == 2).all()
    assert metrics["value"].between(0, 10).all()
    student = clean.loc[clean["role"] == "student", "value"].item()
    assert f"student_test_accuracy: {student:.4f}" in result.output


@pytest.mark.parametrize("kind", ["randaugment", "augmix"])
def test_noise_layers_keep_shape_and_range(kind):
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    noisy = np.asarray(noise_layer(kind, 0.5, 2, seed=0)(images, training=True))
    assert noisy.shape == images.shape and noisy.min() >= 0 and noisy.max() <= 255.0 + 1e-3
    assert noise_layer("none", 0.5, 2, seed=0) is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--teacher", "{other}"], "teacher predicts 3 classes but the dataset has 10"),
        (["--teacher", "{tmp}/missing"], "--teacher {tmp}/missing: no such file or folder"),
        (["--teacher", "{tmp}"], "no saved model at"),
        ([], "--teacher is required"),
        (["--teacher", "{teacher}", "--alpha", "1.5"], "--alpha must lie in [0, 1]"),
        (["--teacher", "{teacher}", "--temperature", "0"], "--temperature must be positive"),
        (["--teacher", "{teacher}", "--corruptions", "fog_of_war"], "unknown corruption 'fog_of_war'"),
        (["--teacher", "{teacher}", "--view", "cutout"], "Invalid value for '--view'"),
        (["--teacher", "{teacher}", "--noise", "augmix"], "--noise is now --view"),
    ],
)
def test_bad_input_fails_in_one_line_without_a_run_directory(invoke, runs_dir, tmp_path, teacher_file, args, message):
    other = tmp_path / "other.keras"
    if "{other}" in args:
        build_model("tiny_cnn", (32, 32, 3), 3).save(other)
    args = [a.replace("{other}", str(other)).replace("{tmp}", str(tmp_path)).replace("{teacher}", str(teacher_file)) for a in args]
    message = message.replace("{tmp}", str(tmp_path))
    result = invoke("train-student", "--smoke", "--runs-dir", runs_dir, *args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not runs_dir.exists()
