"""Streaming from image files: memory that does not grow with the dataset, and the input pipeline's speed.

An image folder (``folder:PATH`` layout) of fabricated 224x224 JPEGs is made in a temporary folder;
its test split of N images is streamed (``FileSplit.batches``) through a small Keras model's
``predict``. Each N runs in its own process, which reports its peak resident memory (VmHWM), the
images per second of the input pipeline alone (decode + batch, no model) and with the model (best
of two passes each, alternated).
The peaks at the smallest and the largest N must differ by less than 10 %: streaming holds one
batch in flight, not the set (the same images held in memory would take N x 147 kB).

    python benchmarks/bench_streaming.py [--sizes 1000 10000] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 224
CLASSES = 10
MEMORY_TOLERANCE = 0.10
REPEATS = 2  # passes of each kind per process; the best rate is reported


def fabricate_folder(root: Path, count: int, seed: int = 0) -> None:
    """``root/{train,val,test}/<class>/*.JPEG``: ``count`` test images, two per class in train and val.

    Images are smooth colour fields with mild noise (natural-looking sizes, about 10-20 kB each)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE), indexing="ij")
    plan = [("train", 2 * CLASSES), ("val", 2 * CLASSES), ("test", count)]
    for which, total in plan:
        for index in range(total):
            label = index % CLASSES
            a, b, c = rng.uniform(-1, 1, size=(3, 3))
            field = 128 + 90 * (a * rows[..., None] + b * cols[..., None] + c * (rows * cols)[..., None])
            pixels = np.clip(field + rng.normal(0, 6, size=(SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
            folder = root / which / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / f"{which}_{index:06d}.JPEG", quality=90)


def linked_subset(source: Path, target: Path, count: int) -> None:
    """``target``: the same layout as ``source`` with only the first ``count`` test images (hard links)."""
    for path in sorted(source.rglob("*.JPEG")):
        relative = path.relative_to(source)
        if relative.parts[0] == "test" and int(path.stem.split("_")[-1]) >= count:
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, destination)


def peak_memory_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def small_model(classes: int):
    import keras

    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 5, strides=4, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(classes),
        ]
    )


def measure(folder: Path, batch_size: int) -> dict:
    """In this process: stream the test split alone, then through the model; rates and peak memory."""
    import keras
    import tensorflow as tf

    from noisegame_cli.data import load_dataset

    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    split = load_dataset(f"folder:{folder}").test
    listing = time.perf_counter() - started
    images = lambda: split.batches(batch_size).map(lambda x, y: tf.cast(x, tf.float32)).prefetch(2)  # noqa: E731
    model = small_model(CLASSES)
    model.predict(images().take(2), verbose=0)  # tracing, outside the timings

    def pipeline_pass() -> int:
        return sum(int(batch.shape[0]) for batch in images())

    def model_pass() -> int:
        return len(model.predict(images(), verbose=0))

    rates = {"pipeline_per_s": [], "model_per_s": []}
    for _ in range(REPEATS):  # alternated, so that neither side gets the warmer caches
        for key, run in (("pipeline_per_s", pipeline_pass), ("model_per_s", model_pass)):
            started = time.perf_counter()
            assert run() == len(split)
            rates[key].append(len(split) / (time.perf_counter() - started))
    best = {key: max(values) for key, values in rates.items()}
    return {"images": len(split), "listing_s": listing, **best, "peak_mb": peak_memory_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # measure one folder, print JSON
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.batch_size)))
        return 0
    sizes = sorted(args.sizes)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_streaming_") as temporary:
        full = Path(temporary) / f"n{sizes[-1]}"
        started = time.perf_counter()
        fabricate_folder(full, sizes[-1])
        print(f"fabricated {sizes[-1]} JPEGs of {SIZE}x{SIZE} in {time.perf_counter() - started:.0f} s", flush=True)
        for count in sizes:
            folder = full if count == sizes[-1] else Path(temporary) / f"n{count}"
            if folder != full:
                linked_subset(full, folder, count)
            output = subprocess.run([sys.executable, __file__, "--child", str(folder), "--batch-size", str(args.batch_size)], capture_output=True, text=True, check=True)
            rows.append(json.loads(output.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| images | listing + checks (s) | input pipeline alone (images/s) | with the model (images/s) | peak resident memory (MB) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['images']:,} | {row['listing_s']:.1f} | {row['pipeline_per_s']:,.0f} | {row['model_per_s']:,.0f} | {row['peak_mb']:,.0f} |")
    growth = rows[-1]["peak_mb"] / rows[0]["peak_mb"] - 1
    met = abs(growth) < MEMORY_TOLERANCE
    print(f"\npeak memory at {rows[-1]['images']:,} vs {rows[0]['images']:,} images: {growth:+.1%} (target under {MEMORY_TOLERANCE:.0%}: {'met' if met else 'NOT met'})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
