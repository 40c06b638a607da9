"""Folders of images as they come from the web: damaged files are skipped with a warning (or refused with
--strict) before anything runs, and ImageNet's oddities (CMYK JPEGs, a PNG named .JPEG) decode."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import only_run_dir
from fabricate import smooth_images, write_class_tree
from helpers import assert_one_line_error
from noisegame_cli.data import load_dataset
from noisegame_cli.errors import UserError

SIZE = (16, 16)


def png_16bit(path, pixels: np.ndarray) -> None:
    """An RGB PNG with 16 bits per channel (Pillow writes 16-bit grey only)."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def encoded(image: np.ndarray, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.fixture
def web_folder(tmp_path):
    """PATH/train/<class>/ and PATH/test/<class>/ of good PNGs, plus in test/a the oddities that decode and
    the damaged files that do not. Returns the root, the pixels each odd file should decode to, and the
    damaged files."""
    root = tmp_path / "web"
    for split, count in (("train", 4), ("test", 2)):
        write_class_tree(root / split, {name: smooth_images(count, SIZE, seed=k) for k, name in enumerate(("a", "b"))})
    odd = root / "test" / "a"
    pictures = smooth_images(4, SIZE, seed=7)
    Image.fromarray(pictures[0]).convert("CMYK").save(odd / "cmyk.jpg", quality=95)  # as ImageNet's 22 CMYK JPEGs
    (odd / "png_named.JPEG").write_bytes(encoded(pictures[1], "PNG"))  # as ImageNet's n02105855_2933.JPEG
    png_16bit(odd / "deep.png", pictures[2].astype(np.uint16) * 257)
    (odd / "tiff_named.png").write_bytes(encoded(pictures[3], "TIFF"))  # a format only Pillow reads
    whole_jpeg, whole_png = encoded(pictures[0], "JPEG"), encoded(pictures[1], "PNG")
    damaged = {
        "truncated.jpg": whole_jpeg[: len(whole_jpeg) // 2],
        "truncated.png": whole_png[: len(whole_png) // 2],
        "text.jpg": b"<html>404 not found</html>",
        "empty.png": b"",
    }
    for name, content in damaged.items():
        (odd / name).write_bytes(content)
    expected = {"cmyk.jpg": (pictures[0], 6.0), "png_named.JPEG": (pictures[1], 0), "deep.png": (pictures[2], 0), "tiff_named.png": (pictures[3], 0)}
    return root, expected, {odd / name for name in damaged}


def test_damaged_files_are_skipped_with_a_warning_and_oddities_decode(web_folder, capsys):
    root, expected, damaged = web_folder
    data = load_dataset(f"folder:{root}")
    printed = capsys.readouterr().out.splitlines()
    assert {path for path, _ in data.skipped} == {str(path) for path in damaged}
    for path in damaged:
        assert sum(line.startswith(f"warning: skipped {path}:") for line in printed) == 1, printed
    assert f"warning: skipped 4 of 12 image files of folder:{root} test as damaged or unreadable; --strict refuses them" in printed
    reasons = dict(data.skipped)
    assert reasons[str(root / "test" / "a" / "truncated.jpg")] == "truncated JPEG file"
    assert reasons[str(root / "test" / "a" / "empty.png")] == "empty file"
    images, labels = data.test.arrays()
    assert len(images) == len(labels) == 8 and len(data.train) + len(data.val) == 8  # damaged files left out, labels aligned
    decoded = {path.rsplit("/", 1)[1]: image for path, image in zip(data.test.paths, images)}
    for name, (pixels, tolerance) in expected.items():
        assert np.abs(decoded[name].astype(int) - pixels).mean() <= tolerance, name


def test_strict_refuses_the_first_damaged_file_in_one_line(web_folder):
    root, _, damaged = web_folder
    with pytest.raises(UserError, match=re.escape("(--strict refuses a dataset with a damaged image")) as error:
        load_dataset(f"folder:{root}", strict=True)
    assert any(str(error.value).startswith(f"{path}: ") for path in damaged)


def test_a_run_on_a_damaged_folder_finishes_and_records_what_it_skipped(web_folder, invoke, runs_dir, tmp_path):
    root, _, damaged = web_folder
    corrupt = ("corrupt", "--dataset", f"folder:{root}", "--out", tmp_path / "copy", "--corruptions", "gaussian_noise", "--severities", "1", "--runs-dir")
    result = invoke(*corrupt, runs_dir)
    assert result.exit_code == 0, result.output
    assert "warning: skipped 4 of 12 image files" in result.output and "Traceback" not in result.output
    recorded = json.loads((only_run_dir(runs_dir, "corrupt") / "env.json").read_text())["data"]
    assert recorded["skipped_images"] == 4 and {entry["path"] for entry in recorded["skipped"]} == {str(path) for path in damaged}
    assert len([path for path in (tmp_path / "copy" / "gaussian_noise" / "1").rglob("*") if path.is_file()]) == 8
    assert_one_line_error(invoke(*corrupt, runs_dir / "strict", "--strict"), "--strict refuses a dataset with a damaged image")
    assert not (runs_dir / "strict").exists()
