"""``noisegame fgsm`` through Click's CliRunner: evaluation, adversarial training, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from noisegame_cli.models import load_classifier
from helpers import assert_one_line_error, quick_digits_model


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("teacher") / "run")


def test_accuracy_at_each_epsilon_for_fgsm_and_pgd(invoke, runs_dir, digits_model, tmp_path):
    results = tmp_path / "sweep.csv"
    result = invoke("fgsm", "eval", "--smoke", "--runs-dir", runs_dir, "--model-path", digits_model, "--attack", "pgd",
                    "--eps", "0,4/255,16/255", "--results", results)  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "fgsm-eval")
    for name in ("config.json", "env.json", "metrics.csv", "accuracy_vs_epsilon.png", "adversarial_examples.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    metrics = pd.read_csv(run / "metrics.csv")
    assert {"attack", "epsilon"} <= set(metrics.columns) and (metrics["model"] == "quick_cnn").all()
    accuracy = metrics[metrics["metric"] == "accuracy"].set_index(["attack", "epsilon"])["value"]
    assert len(accuracy) == 6 and set(metrics["metric"]) == {"accuracy", "loss"}
    clean = accuracy[("fgsm", 0.0)]
    assert clean > 0.5 and accuracy[("pgd", 0.0)] == clean
    assert accuracy[("fgsm", 16 / 255)] < clean
    assert accuracy[("pgd", 16 / 255)] <= accuracy[("fgsm", 16 / 255)]
    assert f"fgsm_accuracy@0/255: {clean:.4f}" in result.output
    pd.testing.assert_frame_equal(pd.read_csv(results), metrics)


def test_targeted_attack_reports_the_target_rate(invoke, runs_dir, digits_model):
    result = invoke("fgsm", "eval", "--smoke", "--runs-dir", runs_dir, "--model-path", digits_model, "--targeted", "3",
                    "--eps", "0,16/255", "--use-predictions")  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(only_run_dir(runs_dir, "fgsm-eval") / "metrics.csv")
    rate = metrics[metrics["metric"] == "target_rate"].set_index("epsilon")["value"]
    assert rate[16 / 255] > rate[0.0]


def test_adversarial_training_from_a_teacher_saves_a_plain_classifier(invoke, runs_dir, digits_model):
    result = invoke("fgsm", "train", "--smoke", "--runs-dir", runs_dir, "--model-path", digits_model,
                    "--attack", "pgd", "--alpha", "0", "--train-eps", "4/255", "--eps", "0,4/255")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "fgsm-train")
    assert run.name.endswith("tiny_cnn-adv-pgd")
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0]
    assert {"clean_accuracy", "adv_accuracy", "val_clean_accuracy", "val_adv_accuracy", "loss"} <= set(history.columns)
    assert history.loc[0, "loss"] == pytest.approx(history.loc[0, "adv_loss"])  # alpha 0: adversarial loss only
    model = load_classifier(run)  # a plain classifier, not the trainer
    assert model.name == "quick_cnn" and model.outputs[0].shape[-1] == 10
    assert (run / "training_curves.png").is_file()
    metrics = pd.read_csv(run / "metrics.csv")
    assert set(metrics["attack"]) == {"fgsm", "pgd"}


def test_adversarial_training_from_scratch(invoke, runs_dir):
    result = invoke("fgsm", "train", "--smoke", "--runs-dir", runs_dir, "--eps", "2/255", "--limit", "64")
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "fgsm-train")
    config = json.loads((run / "config.json").read_text())
    assert config["command"] == "fgsm-train" and config["alpha"] == 0.5 and config["train_eps"] == pytest.approx(8 / 255)
    model = load_classifier(run)
    assert model.name == "tiny_cnn"
    assert np.isfinite(pd.read_csv(run / "history.csv")[["clean_loss", "adv_loss"]].to_numpy()).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "--model-path", "{model}", "--eps", "0,-0.1"], "--eps must lie in [0, 1]"),
        (["eval", "--model-path", "{model}", "--eps", "2"], "--eps must lie in [0, 1]"),
        (["train", "--train-eps", "-1/255"], "--train-eps must lie in [0, 1]"),
        (["eval", "--model-path", "{model}", "--attack-steps", "0"], "--attack-steps must be at least 1"),
        (["eval", "--model-path", "{model}", "--epsilons", "8/255"], "--epsilons is now --eps"),
        (["train", "--train-epsilon", "8/255"], "--train-epsilon is now --train-eps"),
        (["--train", "--eps", "8/255"], "fgsm takes a mode first: `fgsm eval ...` or `fgsm train ...`"),
        (["eval", "--dataset", "synthetic:32x32x3:5", "--model-path", "{model}"], "predicts 10 classes but the dataset has 5"),
        (["eval", "--model-path", "{tmp}/nowhere"], "--model-path {tmp}/nowhere: no such file or folder"),
        (["eval", "--model-path", "{tmp}"], "no saved model at"),
        (["eval", "--model-path", "{model}", "--targeted", "12"], "--targeted 12"),
        (["train", "--targeted", "1"], "No such option '--targeted'"),
        (["eval"], "needs --model-path"),
    ],
)
def test_bad_input_ends_in_one_line(invoke, runs_dir, tmp_path, digits_model, args, message):
    args = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(digits_model)) for a in args]
    message = message.replace("{tmp}", str(tmp_path))
    result = invoke("fgsm", args[0], "--smoke", "--runs-dir", runs_dir, *args[1:])
    assert_one_line_error(result, message)
    assert not runs_dir.exists()  # caught before a run directory is made


def test_l2_budgets_evaluate_and_train(invoke, runs_dir, digits_model):
    result = invoke("fgsm", "eval", "--smoke", "--runs-dir", runs_dir, "--model-path", digits_model, "--attack", "pgd",
                    "--norm", "L2", "--eps", "0,0.5,3")  # fmt: skip
    assert result.exit_code == 0, result.output  # 3 is out of range for Linf, a plain budget for L2
    metrics = pd.read_csv(only_run_dir(runs_dir, "fgsm-eval") / "metrics.csv")
    assert set(metrics["norm"]) == {"L2"}
    accuracy = metrics[metrics["metric"] == "accuracy"].set_index(["attack", "epsilon"])["value"]
    assert accuracy[("pgd", 0.0)] == accuracy[("fgsm", 0.0)] > 0.5
    assert accuracy[("pgd", 3.0)] < accuracy[("pgd", 0.5)] <= accuracy[("pgd", 0.0)]
    assert "fgsm_accuracy@L2 0.5" in result.output
    result = invoke("fgsm", "train", "--smoke", "--runs-dir", runs_dir, "--norm", "L2", "--train-eps", "1.5",
                    "--eps", "0,1.5", "--limit", "64")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((only_run_dir(runs_dir, "fgsm-train") / "config.json").read_text())["norm"] == "L2"


def test_a_recorded_config_reruns_the_same_command_with_the_same_settings(invoke, tmp_path, digits_model):
    first = invoke("fgsm", "eval", "--smoke", "--runs-dir", tmp_path / "first", "--model-path", digits_model, "--attack", "pgd",
                   "--eps", "0,8/255", "--attack-steps", "2", "--limit", "40", "--seed", "3")  # fmt: skip
    assert first.exit_code == 0, first.output
    recorded = only_run_dir(tmp_path / "first", "fgsm-eval")
    again = invoke("fgsm", "eval", "--config", recorded / "config.json", "--runs-dir", tmp_path / "again")
    assert again.exit_code == 0, again.output
    rerun = only_run_dir(tmp_path / "again", "fgsm-eval")
    configs = [json.loads((run / "config.json").read_text()) for run in (recorded, rerun)]
    assert configs[1] == {**configs[0], "runs_dir": str(tmp_path / "again")}  # --attack-steps 2 survives the smoke preset's 3
    measured = [pd.read_csv(run / "metrics.csv").drop(columns="run_id") for run in (recorded, rerun)]
    pd.testing.assert_frame_equal(*measured)

    wrong = invoke("eval-corruption", "--config", recorded / "config.json", "--runs-dir", tmp_path / "wrong")
    assert_one_line_error(wrong, "is the config of a fgsm-eval run, not of eval-corruption")
    assert not (tmp_path / "wrong").exists()
