"""``noisegame corrupt``: both layouts, read back by eval-corruption, resumed after an interruption,
the parameter sets, and its mistakes as one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from fabricate import colour_of, smooth_images, write_class_tree, write_colour_classes
from helpers import assert_one_line_error, imagenet_classifier, known_logits, per_set_accuracy, quick_digits_model, save
import noisegame_cli
from noisegame_cli.corruptions import corrupt
from noisegame_cli.data import cifar10c, copies
from noisegame_cli.data import load_corrupted_dataset, load_dataset
from noisegame_cli.data.imagenet_c import part_folder
from noisegame_cli.data.imagenet_classes import imagenet_wnids
from noisegame_cli.data.sources import Split

CLASSES = ("cat", "dog", "fox")


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("model"), epochs=1)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """PATH/train/<class>/*.png (4 per class) and PATH/test/<class>/*.png (3 per class), 32x32 colour."""
    root = tmp_path_factory.mktemp("images")
    for split, count in (("train", 4), ("test", 3)):
        write_class_tree(root / split, {name: smooth_images(count, (32, 32), seed=index) for index, name in enumerate(CLASSES)})
    return root


def test_npy_layout_reads_back_with_the_generated_accuracies(invoke, tmp_path, digits_model):
    out = tmp_path / "digits-C"
    result = invoke("corrupt", "--dataset", "digits", "--out", out, "--corruptions", "gaussian_noise,contrast", "--limit", "40", "--seed", "3",
                    "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "layout: npy" in result.output
    images = np.load(out / "contrast.npy")
    clean = load_dataset("digits").test.images[:40]
    assert images.shape == (200, 32, 32, 3) and np.array_equal(np.load(out / "clean.npy"), clean)
    assert np.array_equal(images[80:120], corrupt(clean, "contrast", 3, seed=3))  # severity 3's block
    run = only_run_dir(tmp_path / "runs", "corrupt")
    assert (run / "corruption_samples.png").is_file()

    common = ["--model-path", digits_model, "--corruptions", "gaussian_noise,contrast", "--limit", "40"]
    generated = invoke("eval-corruption", *common, "--seed", "3", "--runs-dir", tmp_path / "gen")
    official = invoke("eval-corruption", *common, "--dataset", "cifar10-c", "--data-dir", out, "--runs-dir", tmp_path / "read")
    assert generated.exit_code == 0 and official.exit_code == 0, official.output
    pd.testing.assert_series_equal(per_set_accuracy(only_run_dir(tmp_path / "read", "eval-corruption")),
                                   per_set_accuracy(only_run_dir(tmp_path / "gen", "eval-corruption")))  # fmt: skip


def test_folder_layout_writes_jpegs_that_read_back(invoke, tmp_path, image_folder):
    out = tmp_path / "folder-C"
    result = invoke("corrupt", "--dataset", f"folder:{image_folder}", "--out", out, "--corruptions", "fog,pixelate", "--severities", "2,5",
                    "--runs-dir", tmp_path / "runs", "--batch-size", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "layout: folder" in result.output
    assert sorted(p.name for p in part_folder(out, "fog", 2).iterdir()) == list(CLASSES)
    # the files keep their source names (as .JPEG), and are the engine's pixels saved at JPEG quality 85
    assert sorted(p.name for p in (part_folder(out, "pixelate", 5) / "dog").iterdir()) == [f"dog_{i:03d}.JPEG" for i in range(3)]
    assert not (out / "fog" / "1").exists() and not (out / "fog.npy").exists()
    test = load_dataset(f"folder:{image_folder}").test
    images, labels = test.arrays()
    back = load_corrupted_dataset("imagenet-c", out)
    assert back.corruptions == ("fog", "pixelate") and back.severities == (2, 5) and back.num_classes == 3
    read, read_labels = back.load("pixelate", 5).arrays()
    expected = corrupt(images, "pixelate", 5, seed=0)
    order = np.argsort(read_labels, kind="stable")
    assert np.array_equal(read_labels[order], np.sort(labels, kind="stable"))
    difference = np.abs(read[order].astype(int) - expected[np.argsort(labels, kind="stable")].astype(int))
    assert difference.mean() < 6  # JPEG at 85 on smooth images

    model = quick_digits_model(tmp_path / "model", epochs=1)  # 32x32x3, 10 classes: does not fit 3 classes
    mismatch = invoke("eval-corruption", "--model-path", model, "--dataset", "imagenet-c", "--data-dir", out, "--runs-dir", tmp_path / "e")
    assert_one_line_error(mismatch, "predicts 10 classes but the dataset has 3")


def test_a_copy_of_imagenet_keeps_the_1000_class_labels(invoke, tmp_path):
    source = write_colour_classes(tmp_path / "val")  # 3 of the 1000 classes: a partial copy
    out = tmp_path / "imagenet-C"
    chosen = ["--corruptions", "defocus_blur", "--severities", "1"]  # a blur keeps a flat colour: the colour classifier's answers stay
    result = invoke("corrupt", "--dataset", "imagenet:partial", "--data-dir", source, "--out", out, *chosen, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert (out / "classes.txt").read_text().split() == list(imagenet_wnids())
    back = load_corrupted_dataset("imagenet-c", out)  # a copy lists its classes: no :partial needed, labels as written
    part = back.load("defocus_blur", 1)
    assert back.num_classes == 1000 and sorted(set(part.labels)) == [7, 500, 999]
    assert [imagenet_wnids()[label] for label in part.labels] == [Path(path).parent.name for path in part.paths]

    model = save(imagenet_classifier(), tmp_path / "model")
    evaluated = invoke("eval-corruption", "--model-path", model, "--dataset", "imagenet-c", "--data-dir", out, *chosen, "--runs-dir", tmp_path / "eval")
    assert evaluated.exit_code == 0, evaluated.output
    accuracy = per_set_accuracy(only_run_dir(tmp_path / "eval", "eval-corruption"))[("defocus_blur", 1)]
    images, labels = part.arrays()
    direct = np.argmax(known_logits(images, [colour_of(index) for index in range(1000)]), axis=1)
    assert accuracy == pytest.approx(np.mean(direct == labels)) == pytest.approx(3 / 6)  # every own-colour image, no other


def test_an_interrupted_copy_resumes_without_rewriting_finished_parts(invoke, tmp_path, image_folder):
    out = tmp_path / "folder-C"
    first = invoke("corrupt", "--dataset", f"folder:{image_folder}", "--out", out, "--corruptions", "gaussian_noise", "--severities", "1",
                   "--runs-dir", tmp_path / "runs1")  # fmt: skip
    assert first.exit_code == 0, first.output
    finished = part_folder(out, "gaussian_noise", 1) / "cat" / "cat_000.JPEG"
    stamp = finished.stat().st_mtime_ns
    (out / "gaussian_noise" / ".2.partial" / "cat").mkdir(parents=True)  # what an interrupted part leaves
    (out / "gaussian_noise" / ".2.partial" / "cat" / "half.JPEG").write_bytes(b"\xff\xd8\xff")
    again = invoke("corrupt", "--dataset", f"folder:{image_folder}", "--out", out, "--corruptions", "gaussian_noise", "--severities", "1,2",
                   "--runs-dir", tmp_path / "runs2")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "kept the finished parts gaussian_noise/1" in again.output and "sets_written: 1" in again.output
    assert finished.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (part_folder(out, "gaussian_noise", 2) / "cat").iterdir()) == [f"cat_{i:03d}.JPEG" for i in range(3)]
    assert not (out / "gaussian_noise" / ".2.partial").exists()
    metrics = pd.read_csv(only_run_dir(tmp_path / "runs2", "corrupt") / "metrics.csv")
    seconds = metrics[metrics["metric"] == "seconds"]
    assert seconds["severity"].astype(int).tolist() == [2]  # only the part written now was timed

    # another seed into the same copy would mix two copies: refused, nothing written
    other = invoke("corrupt", "--dataset", f"folder:{image_folder}", "--out", out, "--corruptions", "fog", "--seed", "1", "--runs-dir", tmp_path / "runs3")
    assert_one_line_error(other, "holds a copy made with seed 0, not 1")
    assert not (out / "fog").exists() and not (tmp_path / "runs3").exists()


def test_an_interrupted_npy_file_is_written_again_and_finished_ones_kept(tmp_path):
    split = load_dataset("digits", limit=12).test
    rows = copies.write_copy(split, (), tmp_path, ["brightness"], layout="npy", progress=False)
    assert not any(row["kept"] for row in rows)
    stamp = (tmp_path / "brightness.npy").stat().st_mtime_ns
    (tmp_path / "fog.npy.partial").write_bytes(b"half")
    rows = copies.write_copy(split, (), tmp_path, ["brightness", "fog"], layout="npy", progress=False)
    assert [(row["corruption"], row["kept"]) for row in rows if row["severity"] == 1] == [("brightness", True), ("fog", False)]
    assert (tmp_path / "brightness.npy").stat().st_mtime_ns == stamp
    assert np.load(tmp_path / "fog.npy").shape == (60, 32, 32, 3) and not (tmp_path / "fog.npy.partial").exists()


def test_a_part_another_writer_holds_is_left_for_the_end_then_kept(tmp_path):
    """Another process writes contrast while this one writes the copy: this one writes the other parts
    first, then waits for contrast and keeps what the other wrote."""
    images, labels = load_dataset("digits", limit=12).test.arrays()
    holding, finished_others = threading.Event(), []

    def other_writer():
        with copies.file_lock(tmp_path, "contrast"):
            holding.set()
            while not cifar10c.corruption_file_complete(tmp_path, "brightness", count=len(labels)):  # written past the busy part
                time.sleep(0.05)
            finished_others.append(True)
            cifar10c.write_corruption_file(tmp_path, "contrast", (corrupt(images, "contrast", s, seed=0) for s in range(1, 6)))

    thread = threading.Thread(target=other_writer)
    thread.start()
    holding.wait(timeout=60)
    rows = copies.write_copy(Split(images, labels), (), tmp_path, ["gaussian_noise", "contrast", "brightness"], layout="npy", progress=False)
    thread.join(timeout=60)
    assert finished_others and [(r["corruption"], r["kept"]) for r in rows if r["severity"] == 1] == [
        ("gaussian_noise", False), ("contrast", True), ("brightness", False)]  # fmt: skip
    assert np.array_equal(np.load(tmp_path / "contrast.npy")[: len(labels)], corrupt(images, "contrast", 1, seed=0))


NAMES = "gaussian_noise,impulse_noise,jpeg_compression"
WRITERS = """
import sys
from click.testing import CliRunner
from noisegame_cli.cli import cli
for layout in ("npy", "folder"):
    result = CliRunner().invoke(cli, ["corrupt", "--dataset", "digits", "--limit", "8", "--corruptions", sys.argv[3], "--layout", layout,
                                      "--out", f"{sys.argv[1]}/{layout}", "--runs-dir", sys.argv[2]])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
print("WRITTEN")
"""


@pytest.mark.slow  # two fresh TensorFlow processes side by side: about a minute on two cores
def test_two_processes_writing_one_copy_at_once_finish_it_whole(invoke, tmp_path):
    root = os.path.dirname(os.path.dirname(noisegame_cli.__file__))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": root}
    writers = [subprocess.Popen([sys.executable, "-c", WRITERS, str(tmp_path / "shared"), str(tmp_path / f"runs{i}"), NAMES],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]  # fmt: skip
    outputs = [writer.communicate(timeout=600) for writer in writers]
    for writer, (output, errors) in zip(writers, outputs):
        assert writer.returncode == 0 and "WRITTEN" in output and "Traceback" not in errors, errors[-3000:]
    for layout in ("npy", "folder"):  # the same files as one process writes alone
        alone = invoke("corrupt", "--dataset", "digits", "--limit", "8", "--corruptions", NAMES, "--layout", layout, "--out",
                       tmp_path / "alone" / layout, "--runs-dir", tmp_path / "runs")  # fmt: skip
        assert alone.exit_code == 0, alone.output
        shared, single = (sorted(p.relative_to(base) for p in base.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
                          for base in (tmp_path / "shared" / layout, tmp_path / "alone" / layout))  # fmt: skip
        assert shared == single and len(shared) > 5
        for path in shared:
            assert (tmp_path / "shared" / layout / path).read_bytes() == (tmp_path / "alone" / layout / path).read_bytes(), path
    written = [pd.read_csv(run / "metrics.csv") for i in range(2) for run in (tmp_path / f"runs{i}" / "corrupt").iterdir()]
    timed = sum(len(frame[frame["metric"] == "seconds"]) for frame in written)
    assert timed == 2 * 3 * 5  # every set written once between the two processes, in each layout


def test_parameter_sets_give_different_images_and_are_recorded(invoke, tmp_path):
    written = {}
    for name in ("cifar10-c", "imagenet-c"):
        out = tmp_path / name
        result = invoke("corrupt", "--dataset", "digits", "--out", out, "--corruptions", "gaussian_noise", "--limit", "8", "--parameters", name,
                        "--runs-dir", tmp_path / f"runs-{name}")  # fmt: skip
        assert result.exit_code == 0, result.output
        written[name] = np.load(out / "gaussian_noise.npy")
        config = json.loads((only_run_dir(tmp_path / f"runs-{name}", "corrupt") / "config.json").read_text())
        assert config["parameters"] == name and json.loads((out / "corrupt.json").read_text())["parameters"] == name
    clean = np.tile(np.load(tmp_path / "cifar10-c" / "clean.npy"), (5, 1, 1, 1)).astype(float)
    # ImageNet-C's gaussian noise is stronger (sigma .08 .. .38 against CIFAR-10-C's .04 .. .10)
    assert np.abs(written["imagenet-c"] - clean).mean() > 1.5 * np.abs(written["cifar10-c"] - clean).mean()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "digits", "--out", "{tmp}/x", "--parameters", "cifar-10-c"], "unknown parameters 'cifar-10-c'; choose from cifar10-c, tiny-imagenet-c, imagenet-c"),
        (["--dataset", "digits", "--out", "{tmp}/x", "--severities", "1,2"], "needs all 5 severities"),
        (["--dataset", "digits", "--out", "{tmp}/x", "--layout", "npy", "--severities", "3"], "stacks all 5 severities"),
        (["--dataset", "digits", "--out", "{tmp}/x", "--layout", "tar"], "--layout"),
        (["--dataset", "cifar10-c", "--out", "{tmp}/x"], "holds only corrupted test images"),
        (["--dataset", "digits"], "corrupt needs --out DIR"),
        (["digits", "{tmp}/x"], "this command takes options only: noisegame corrupt --dataset D --out DIR"),
        (["--dataset", "digits", "--out-dir", "{tmp}/x"], "--out-dir is now --out"),
    ],
)
def test_mistakes_are_one_line_errors(invoke, tmp_path, extra, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    result = invoke("corrupt", *args, "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, message)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()
