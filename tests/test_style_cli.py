"""``noisegame style-transfer`` through Click's CliRunner: outputs of a run, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import only_run_dir
from noisegame_cli.models import extractors
from noisegame_cli.commands import style_transfer
from noisegame_cli.config import load_config_file, resolve_config
from noisegame_cli.models import build_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def saved_model(tmp_path) -> Path:
    """A run directory holding a tiny random-weight classifier, as train-teacher leaves one."""
    keras.utils.set_random_seed(0)
    run_dir = tmp_path / "teacher"
    run_dir.mkdir()
    build_model("tiny_cnn", (32, 32, 3), 10).save(run_dir / "model.keras")
    return run_dir


def _fails_in_one_line(result, message: str) -> None:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisegame: error:"), result.stderr
    assert message in lines[0], lines[0]


def test_two_saved_models_write_results_history_metrics_and_grid(invoke, runs_dir, saved_model, tmp_path):
    content = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 60, 3), dtype=np.uint8)).save(content)
    model_file = saved_model / "model.keras"
    result = invoke(
        "style-transfer", "--runs-dir", runs_dir, "--content", content, "--style", "coffee", "--size", "48",
        "--extractor-path", saved_model, "--extractor-path", model_file, "--iterations", "4", "--save-every", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "style-transfer")
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    # the same model twice gets two names; each has its final and intermediate images
    for name in ("teacher", "teacher-2"):
        assert (run / f"{name}.png").is_file()
        assert sorted(p.name for p in run.glob(f"{name}_step*.png")) == [f"{name}_step{s:04d}.png" for s in (0, 2, 4)]
    assert np.asarray(Image.open(run / "content.png")).shape == (16, 48, 3)  # longer side --size, aspect kept
    assert max(np.asarray(Image.open(run / "style.png")).shape[:2]) == 48
    for picture in ("comparison.png", "loss_curves.png"):
        assert (run / picture).is_file()
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == ["extractor", "step", "total", "content", "style", "tv"]
    assert list(history.loc[history["extractor"] == "teacher", "step"]) == [0, 1, 2, 3, 4]
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns[:6]) == ["run_id", "command", "dataset", "model", "metric", "value"]
    assert set(metrics["extractor"]) == {"teacher", "teacher-2"} and (metrics["dataset"] == "wide").all()
    final = metrics.set_index(["extractor", "metric"])["value"]
    first = history[history["extractor"] == "teacher"].iloc[0]
    assert final["teacher", "total_loss"] < first["total"]
    assert final["teacher", "total_loss"] == pytest.approx(history[history["extractor"] == "teacher"].iloc[-1]["total"])
    assert final["teacher", "iterations"] == 4
    assert f"teacher_total_loss: {final['teacher', 'total_loss']:.4f}" in result.output


def test_smoke_run_through_vgg19_with_random_weights(invoke, runs_dir):
    result = invoke("style-transfer", "--smoke", "--runs-dir", runs_dir, "--weights", "none", "--optimizer", "adam")
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, "style-transfer")
    assert (run / "vgg19.png").is_file() and not (run / "comparison.png").exists()  # one extractor: no grid
    config = json.loads((run / "config.json").read_text())
    assert config["weights"] == "none" and config["iterations"] == 3 and config["content"] == "chelsea"
    metrics = pd.read_csv(run / "metrics.csv")
    assert set(metrics["extractor"]) == {"vgg19"} and (metrics["dataset"] == "chelsea").all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--content", "{tmp}/missing.jpg"], "--content {tmp}/missing.jpg: no such image file"),
        (["--style", "{tmp}/not-an-image.png"], "cannot read image"),
        (["--extractor", "alexnet"], "unknown --extractor 'alexnet'"),
        (["--extractor-path", "{tmp}/nowhere"], "--extractor-path {tmp}/nowhere: no such file or folder"),
        (["--extractor-path", "{tmp}"], "no saved model at {tmp}/model.keras"),
        (["--extractor-path", "{model}", "--content-layer", "relu4_2"], "no feature layer 'relu4_2'; choose from:"),
        (["--extractor-path", "{model}", "--style-layers", "stage1,stage9"], "no feature layer 'stage9'"),
        (["--extractor", "vgg19", "--extractor", "resnet50", "--weights", "{tmp}/w.h5"], "--weights FILE fits one network"),
        (["--extractor", "resnet50", "--weights", "{tmp}/w.h5"], "--weights {tmp}/w.h5: no such file"),
        (["--extractor", "app:AlexNet"], "unknown application 'AlexNet'"),
        (["--extractor", "app:EfficientNetB0"], "efficientnetb0 cannot take 21x32 images (its strides shrink them to nothing)"),
        (["--size", "8"], "--size must be at least 16"),
    ],
)
def test_bad_input_ends_in_one_line(invoke, runs_dir, tmp_path, saved_model, args, message):
    (tmp_path / "not-an-image.png").write_text("plain text")
    fill = {"{tmp}": str(tmp_path), "{model}": str(saved_model)}
    for key, value in fill.items():
        args, message = [a.replace(key, value) for a in args], message.replace(key, value)
    result = invoke("style-transfer", "--smoke", "--runs-dir", runs_dir, *args)
    _fails_in_one_line(result, message)
    assert not runs_dir.exists()  # caught before a run directory is made


def test_missing_imagenet_weights_say_so_in_one_line(invoke, runs_dir):
    if (Path.home() / ".keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5").is_file():
        pytest.skip("this machine's Keras cache holds VGG-19's ImageNet weights")
    result = invoke("style-transfer", "--runs-dir", runs_dir, "--extractor", "vgg19", "--iterations", "1")
    _fails_in_one_line(result, "ImageNet weights for VGG19 are not in the Keras cache")
    assert "--download" in result.stderr


def test_the_recipe_is_a_valid_config():
    values = load_config_file(REPO / "experiments" / "digits-style.yaml")
    config = resolve_config(style_transfer.Config, values)
    assert config.size >= 16 and config.iterations >= 1


def test_extractor_specs_carry_their_own_weights(tmp_path):
    robust = tmp_path / "robust.weights.h5"
    robust.write_bytes(b"")
    config = style_transfer.Config(extractor=("vgg19", f"resnet50:{robust}", "ResNet50:none", f"app:ConvNeXtTiny:{robust}"), weights="none")
    assert config.applications == (("vgg19", None), ("resnet50", str(robust)), ("resnet50", "none"), ("app:ConvNeXtTiny", str(robust)))
    names = [
        style_transfer._labelled(extractors.FeatureExtractor(name, None, (), ""), weights).name for name, weights in config.applications[:3]
    ]
    assert names == ["vgg19", "resnet50-robust", "resnet50-random"]
    assert style_transfer.Config(extractor_path=(str(tmp_path),)).applications == ()  # no VGG-19 unless asked
    assert style_transfer.Config().applications == (("vgg19", None),)
