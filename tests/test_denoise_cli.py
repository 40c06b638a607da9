"""``noisegame denoise train|eval`` through the CLI: the records, the purifier card, and one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import only_run_dir
from helpers import assert_one_line_error, quick_digits_model


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("classifier") / "run", epochs=3)


@pytest.fixture(scope="module")
def denoiser_run(tmp_path_factory):
    from click.testing import CliRunner

    from noisegame_cli.cli import cli

    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(cli, ["denoise", "train", "--smoke", "--loss", "l1", "--epochs", "2", "--runs-dir", str(runs)],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return only_run_dir(runs, "denoise-train")


def test_train_records_quality_per_epoch_and_the_grid(denoiser_run):
    for name in ("model.keras", "history.csv", "metrics.csv", "denoise_grid.png", "training_curves.png"):
        assert (denoiser_run / name).is_file(), name
    history = pd.read_csv(denoiser_run / "history.csv")
    assert {"l1", "psnr", "ssim", "noisy_psnr", "val_psnr", "val_ssim"} <= set(history.columns) and len(history) == 2
    metrics = pd.read_csv(denoiser_run / "metrics.csv").set_index("metric")["value"]
    assert 25 < metrics["noisy_psnr"] < 40  # variance 50 on 0..255 is about 31 dB
    config = json.loads((denoiser_run / "config.json").read_text())
    assert config["noise"] == ["gaussian"] and config["sigma"] == pytest.approx(50**0.5 / 255)  # the study's variance of 50


def test_eval_reports_every_setting_and_the_white_box_is_at_least_as_strong(invoke, runs_dir, denoiser_run, classifier):
    result = invoke("denoise", "eval", "--smoke", "--denoiser", denoiser_run, "--classifier", classifier, "--bpda",
                    "--eps", "8/255", "--attack-steps", "5", "--runs-dir", runs_dir)  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "denoise-eval")
    metrics = pd.read_csv(run / "metrics.csv")
    attacked = metrics[metrics["setting"].notna()].set_index(["attack", "setting"])["value"]
    assert set(attacked.index.get_level_values("setting")) == {"none", "oblivious", "white-box", "bpda"}
    assert attacked[("pgd", "white-box")] <= attacked[("pgd", "oblivious")]
    images = metrics[metrics["inputs"].notna()].set_index(["role", "inputs"])["value"]
    assert set(images.index) == {(r, i) for r in ("classifier", "purified") for i in ("clean", "noisy")}
    card = (run / "card.md").read_text()
    assert "the weak setting" in card and "white-box" in card and "| pgd | 8/255 |" in card


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--sigma", "0"], "--sigma must lie in (0, 1]"),
        (["train", "--variance", "50"], "--variance is now --sigma"),
        (["eval", "--denoiser", "{denoiser}", "--classifier", "{classifier}", "--norm", "L2", "--eps", "-1"], "L2 --eps must be finite"),
        (["train", "--noise", "corruption:fog:9"], "severity must be an integer in 1..5"),
        (["train", "--noise", "salt"], "unknown noise 'salt'"),
        (["train", "--dataset", "synthetic:18x18x3:4", "--depth", "2"], "divisible by 4"),
        (["eval", "--denoiser", "{denoiser}", "--classifier", "{other}"], "takes images of shape [28, 28, 3]"),
        (["eval", "--denoiser", "{classifier}", "--classifier", "{classifier}"], "is not an image-to-image model"),
        (["eval", "--denoiser", "{denoiser}"], "needs --denoiser and --classifier"),
    ],
)
def test_bad_input_ends_in_one_line(invoke, runs_dir, tmp_path, denoiser_run, classifier, args, message):
    import keras

    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(other)
    fill = {"{denoiser}": str(denoiser_run), "{classifier}": str(classifier), "{other}": str(other)}
    for key, value in fill.items():
        args = [a.replace(key, value) for a in args]
    result = invoke("denoise", args[0], "--smoke", "--runs-dir", runs_dir, *args[1:])
    assert_one_line_error(result, message)
    assert not runs_dir.exists()
