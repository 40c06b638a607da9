"""The up-front check of image folders: what reading each file's first and last bytes costs on a set of
ImageNet's size, against reading its first bytes only (what the loader did before) and decoding it whole.

N distinct JPEG files (one 224x224 picture written under N names, about the size of an ImageNet
validation image's header and tail) are made in a temporary folder; each check runs over all of them,
alternated, best of ``--repeats``; full decoding (Pillow) is timed on the first 2 000 and scaled up.
The files are in the page cache (just written), so this measures the work per file, not a cold disk's
seeks: on a cold disk each variant adds about one seek per file (the tail read is a second one).

    python benchmarks/bench_image_scan.py [--files 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from noisegame_cli.data.sources import IMAGE_SIGNATURES, scan_image_files  # noqa: E402

DECODED = 2000  # files decoded whole (the rate is scaled to all of them)


def fabricate(folder: Path, count: int) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = np.clip(128 + rng.normal(0, 40, size=(224, 224, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    content = buffer.getvalue()
    paths = []
    for index in range(count):
        path = folder / f"class_{index % 1000:04d}" / f"ILSVRC2012_val_{index:08d}.JPEG"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        paths.append(str(path))
    return paths


def first_bytes_only(paths) -> None:
    """The check before this change: each file's first 8 bytes against the image signatures."""
    for path in paths:
        with open(path, "rb") as handle:
            start = handle.read(8)
        assert any(start.startswith(signature) for signature in IMAGE_SIGNATURES)


def head_and_tail(paths) -> None:
    usable, _, skipped = scan_image_files(paths)
    assert all(usable) and not skipped


def decoded(paths) -> None:
    from PIL import Image

    for path in paths:
        with Image.open(path) as image:
            image.load()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = fabricate(Path(folder), args.files)
        size = os.path.getsize(paths[0])
        timings: dict[str, list[float]] = {"first 8 bytes (before)": [], "first 16 + last 1024 bytes (now)": []}
        checks = {"first 8 bytes (before)": first_bytes_only, "first 16 + last 1024 bytes (now)": head_and_tail}
        for _ in range(args.repeats):
            for name, check in checks.items():
                started = time.perf_counter()
                check(paths)
                timings[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        decoded(paths[:DECODED])
        decode_all = (time.perf_counter() - started) * len(paths) / DECODED
    load = os.getloadavg()[0]
    baseline = min(timings["first 8 bytes (before)"])
    print(f"{args.files} JPEG files of {size / 1000:.0f} kB, best of {args.repeats}; load average {load:.2f}")
    print("| check | seconds | per file | ratio |")
    print("|---|---:|---:|---:|")
    for name, values in timings.items():
        best = min(values)
        print(f"| {name} | {best:.2f} | {best / args.files * 1e6:.0f} us | {best / baseline:.2f} |")
    print(f"| decode every file (Pillow, from {DECODED}) | {decode_all:.1f} | {decode_all / args.files * 1e6:.0f} us | {decode_all / baseline:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
