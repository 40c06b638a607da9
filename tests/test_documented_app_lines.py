"""Every command line in README.md and docs/ that names an ``app:NAME`` network runs as written: ImageNet
weights "downloaded" as random weights of the same network (nothing can be fetched here), data paths
pointed at fabricated files, and a --runs-dir added. The networks run at their native 224 x 224 on a
few images, hence slow."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import keras
import pytest

from fabricate import save_image, smooth_images
from helpers import assert_one_line_error
from noisegame_cli.models import build_model

ROOT = Path(__file__).resolve().parent.parent
# The files Keras fetches for ImageNet weights: which network, with or without its top.
FAKE_WEIGHTS = {
    "resnet50_weights_tf_dim_ordering_tf_kernels.h5": (keras.applications.ResNet50, True),
    "efficientnetb0_notop.h5": (keras.applications.EfficientNetB0, False),
}


def documented_lines() -> list[str]:
    """Command lines (continuations joined) of README.md and docs/**/*.md that use ``app:NAME``."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = re.sub(r"\\\n\s*", " ", page.read_text())
        for line in text.splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith("noisegame ") and "app:" in command:
                found.append(command)
    return found


@pytest.fixture
def fake_downloads(monkeypatch, tmp_path):
    """Keras' downloads of application weights write random weights of the same network instead."""
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils
    import h5py

    def fetch(origin, target, *args, **kwargs):
        network, top = FAKE_WEIGHTS[Path(target).name]
        with h5py.File(target, "w") as file:
            legacy_h5_format.save_weights_to_hdf5_group(file, network(weights=None, include_top=top, input_shape=(224, 224, 3)))

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(file_utils, "urlretrieve", fetch)
    monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)  # random weights have another hash


def imagenet_c_folder(root: Path) -> Path:
    """ImageNet-C's layout with its 1000 classes listed and two images of gaussian noise at severity 1."""
    wnids = [f"n{index:08d}" for index in range(1000)]
    (root).mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(wnids) + "\n")
    for k, image in enumerate(smooth_images(2, (224, 224), seed=3)):
        save_image(image, root / "gaussian_noise" / "1" / wnids[k] / f"ILSVRC2012_val_{k:08d}.JPEG", "JPEG")
    return root


def prepared(line: str, tmp_path: Path) -> list[str]:
    """The line's arguments with its data and weights files made in ``tmp_path`` (the working folder)."""
    args = shlex.split(line)[1:]
    args = [str(imagenet_c_folder(tmp_path / "ImageNet-C")) if arg == "/data/ImageNet-C" else arg for arg in args]
    for arg in args:
        if arg.startswith("app:") and arg.count(":") == 2:  # app:NAME:FILE: the file, saved from app:NAME
            _, network, weights = arg.split(":")
            build_model(f"app:{network}", (32, 32, 3), 10).save_weights(tmp_path / weights)
    if args[0] == "style-transfer":
        args += ["--iterations", "1", "--save-every", "0"]  # at the documented size (--smoke's 32 px is too small for EfficientNet)
    return [*args, "--runs-dir", str(tmp_path / "runs")]


@pytest.mark.slow
@pytest.mark.parametrize("line", documented_lines())
def test_every_documented_app_line_runs(line, fake_downloads, invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = prepared(line, tmp_path)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and (tmp_path / "runs").is_dir()


def test_the_documented_lines_are_found():
    lines = documented_lines()
    assert any("--model-path app:ResNet50 --download" in line for line in lines)
    assert any(line.startswith("noisegame style-transfer --extractor app:") for line in lines)


def test_imagenet_weights_are_not_fetched_without_download(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    line = next(line for line in documented_lines() if "--model-path app:ResNet50" in line)
    args = [arg for arg in prepared(line, tmp_path) if arg != "--download"]
    assert_one_line_error(invoke(*args), "pass --download")
