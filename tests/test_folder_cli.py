"""Every command runs on data the user brings: an image folder with class subfolders (``folder:PATH``)."""

from __future__ import annotations

import json

import keras
import pytest

from conftest import only_run_dir
from fabricate import smooth_images, write_class_tree

CLASSES = ("cat", "dog", "fox")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """PATH/train/<class>/*.png (12 per class) and PATH/test/<class>/*.png (4 per class), 32x32 colour."""
    root = tmp_path_factory.mktemp("images")
    for split, count in (("train", 12), ("test", 4)):
        write_class_tree(root / split, {name: smooth_images(count, (32, 32), seed=index) for index, name in enumerate(CLASSES)})
    return root


@pytest.fixture(scope="module")
def folder_teacher(image_folder, tmp_path_factory):
    from click.testing import CliRunner

    from noisegame_cli.cli import cli

    runs = tmp_path_factory.mktemp("teacher-runs")
    result = CliRunner().invoke(cli, ["train-teacher", "--smoke", "--dataset", f"folder:{image_folder}", "--runs-dir", str(runs)],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return only_run_dir(runs, "train-teacher")


def test_the_teacher_trained_on_the_folder_fits_it(folder_teacher):
    model = keras.saving.load_model(folder_teacher / "model.keras")
    assert model.outputs[0].shape[-1] == len(CLASSES)
    assert json.loads((folder_teacher / "status.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(
    "command, run_folder",
    [
        (["train-student", "--teacher", "{teacher}"], "train-student"),
        (["adv-noise", "gnt", "--teacher", "{teacher}"], "adv-noise-gnt"),
        (["adv-noise", "ant", "--teacher", "{teacher}"], "adv-noise-ant"),
        (["fgsm", "eval", "--model-path", "{teacher}"], "fgsm-eval"),
        (["fgsm", "train"], "fgsm-train"),
        (["freq-split", "eval", "--model-path", "{teacher}"], "freq-split-eval"),
        (["freq-split", "train"], "freq-split-train"),
        (["freq-split", "smooth", "--model-path", "{teacher}"], "freq-split-smooth"),
        (["eval-corruption", "--model-path", "{teacher}"], "eval-corruption"),
        (["corrupt", "--out", "{tmp}/folder-C"], "corrupt"),
        (["denoise", "train"], "denoise-train"),
    ],
)
def test_every_command_runs_on_an_image_folder(invoke, runs_dir, tmp_path, image_folder, folder_teacher, command, run_folder):
    fill = {"{teacher}": str(folder_teacher), "{data}": f"folder:{image_folder}", "{tmp}": str(tmp_path)}
    args = [fill.get(a, a.replace("{tmp}", str(tmp_path))) for a in command]
    result = invoke(*args, "--smoke", "--dataset", f"folder:{image_folder}", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    run = only_run_dir(runs_dir, run_folder)
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert (run / "metrics.csv").is_file()
