"""``noisegame freq-split eval / train / smooth`` through Click's CliRunner."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from helpers import assert_one_line_error, dense_only_model, quick_digits_model


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("models") / "20261123-101010-quick")


def test_eval_compares_several_models_on_low_and_high_parts(invoke, runs_dir, digits_model, tmp_path):
    copy = tmp_path / "other.keras"
    shutil.copy(digits_model, copy)
    result = invoke("freq-split", "eval", "--smoke", "--runs-dir", runs_dir, "--model-path", digits_model.parent,
                    "--model-path", copy, "--radii", "2,40")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "freq-split-eval")
    for name in ("metrics.csv", "accuracy_vs_radius.png", "frequency_examples.png"):
        assert (run / name).is_file(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert set(metrics["model"]) == {"quick", "other"}  # run-directory name without its timestamp, file stem
    assert {"radius", "part"} <= set(metrics.columns)
    for _, rows in metrics.groupby("model"):
        accuracy = rows[rows["metric"] == "accuracy"]
        original = accuracy[accuracy["part"] == "original"]["value"].item()
        by_part = accuracy.dropna(subset=["radius"]).set_index(["radius", "part"])["value"]
        assert original > 0.5
        assert by_part[(40.0, "low")] == pytest.approx(original)  # r beyond the half-diagonal keeps everything
        assert by_part[(40.0, "high")] < original
        counts = rows[rows["metric"].isin(["right_high_wrong_low", "right_low_wrong_high"])]
        assert len(counts) == 4 and (counts["value"] >= 0).all()
        assert counts[(counts["radius"] == 40) & (counts["metric"] == "right_low_wrong_high")]["value"].item() > 0
    assert "quick:low@2" in result.output


def test_train_on_high_part_with_shuffled_labels_records_each_view(invoke, runs_dir):
    result = invoke("freq-split", "train", "--smoke", "--runs-dir", runs_dir, "--radius", "4", "--part", "high",
                    "--shuffle-labels", "--limit", "64", "--epochs", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "freq-split-train")
    assert run.name.endswith("tiny_cnn-high4-shuffled")
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0, 1]
    views = ["test_original_accuracy", "test_low_accuracy", "test_high_accuracy"]
    assert set(views) <= set(history.columns) and history[views].notna().all().all()
    metrics = pd.read_csv(run / "metrics.csv")
    assert set(zip(metrics["split"], metrics["part"])) == {("train", "high"), ("test", "original"), ("test", "low"), ("test", "high")}
    assert (metrics["labels"] == "shuffled").all() and (metrics["radius"] == 4).all()
    assert (run / "model.keras").is_file() and (run / "training_curves.png").is_file()


def test_smooth_measures_each_rho_and_draws_the_kernels(invoke, runs_dir, digits_model):
    result = invoke("freq-split", "smooth", "--smoke", "--runs-dir", runs_dir, "--model-path", digits_model,
                    "--rho", "0.5,1", "--eps", "8/255", "--attack-steps", "2", "--limit", "64")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "freq-split-smooth")
    assert (run / "first_layer_kernels.png").is_file() and (run / "accuracy_vs_rho.png").is_file()
    metrics = pd.read_csv(run / "metrics.csv")
    accuracy = metrics[metrics["metric"] == "accuracy"].set_index(["rho", "attack"])["value"]
    assert set(accuracy.index) == {(rho, attack) for rho in (0.0, 0.5, 1.0) for attack in ("none", "fgsm", "pgd")}
    assert accuracy[(0.0, "pgd")] <= accuracy[(0.0, "fgsm")] < accuracy[(0.0, "none")]
    assert accuracy[(1.0, "none")] != accuracy[(0.0, "none")]  # smoothing changed the model
    assert np.allclose(metrics.loc[metrics["attack"] != "none", "epsilon"], 8 / 255)


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "--model-path", "{model}", "--radii", "4,-1"], "--radii must be at least 0, got -1"),
        (["train", "--radius", "-2"], "--radius must be at least 0, got -2"),
        (["eval"], "--model-path needs at least one value"),
        (["smooth", "--model-path", "{dense}"], "has no Conv2D layer to smooth"),
        (["smooth", "--model-path", "{model}", "--rho", "-0.5"], "--rho must be at least 0"),
        (["smooth", "--model-path", "{model}", "--eps", "-8/255"], "--eps must lie in [0, 1]"),
        (["eval", "--model-path", "{model}", "--dataset", "synthetic:32x32x3:4"], "predicts 10 classes but the dataset has 4"),
        (["eval", "--model-path", "{model}", "--dataset", "synthetic:16x16x3:10"], "takes images of shape [32, 32, 3]"),
        (["train", "--part", "middle"], "Invalid value for '--part'"),
    ],
)
def test_bad_input_ends_in_one_line(invoke, runs_dir, tmp_path, digits_model, args, message):
    dense = dense_only_model(tmp_path / "dense") if "{dense}" in args else None
    args = [a.replace("{model}", str(digits_model)).replace("{dense}", str(dense)) for a in args]
    result = invoke("freq-split", *args[:1], "--smoke", "--runs-dir", runs_dir, *args[1:])
    assert_one_line_error(result, message)
    assert not runs_dir.exists()
