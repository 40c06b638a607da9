"""Corruption engine speed and eval-corruption memory.

1. Images per second for each of the 19 corruptions at one severity (3) on 32x32 images: the engine
   (batched TensorFlow ops, ``noisegame_cli.corruptions.corrupt``) against the per-image NumPy / SciPy /
   OpenCV implementation researchers use today, the ``imagecorruptions-imaug`` package (ImageNet-C
   parameters; a benchmark-only dependency: ``pip install -e '.[bench]'``), measured in the same run,
   the two interleaved corruption by corruption, each the best of a few timings; their ratio and its
   geometric mean.
2. Time to generate a full 10 000-image x 19 x 5 set: the first call of each corruption x severity
   (which builds its graph; measured, on the subset) plus the steady-state per-image time measured on
   the subset and extrapolated to 10 000 images.
3. Peak resident memory of a full ``noisegame eval-corruption`` over a fabricated 19-file
   CIFAR-10-C-layout folder (50 000 x 32 x 32 x 3 per file), in a subprocess.
4. The table of 1. at 224x224 with the ImageNet-C parameters (both sides then use the same values),
   and the time to corrupt a 50 000-image 224x224 validation set with the 15 common corruptions x 5
   severities, estimated from it: per corruption, five first calls (graph building, as measured for
   severity 3) plus 5 x 50 000 images at the steady-state rate of severity 3.
5. The C-bar corruptions: images per second at severity 3, CIFAR-10-C-bar's ten at 32x32 and
   ImageNet-C-bar's ten at 224x224, the engine against the published generator run per image (only
   where ``NOISEGAME_CBAR_GENERATOR`` points at a copy, see tests/cbar_reference.py; its per-pixel Python
   loops take up to half a minute per 224x224 image, so it is timed on a few images, once).

    python benchmarks/bench_corruptions.py [--images 2000] [--reference-images 300] [--repeats 3] [--set-images 1000] [--skip-memory]
        [--skip-set] [--skip-small] [--large-images 100] [--large-reference-images 20] [--skip-large]
        [--skip-cbar] [--cbar-reference-images 20] [--cbar-large-reference-images 2]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from noisegame_cli.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, PARAMETER_SETS, SEVERITIES, corrupt, engine, samples  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cbar_reference import generate, load_generator  # noqa: E402  (the C-bar generator, where a copy is there)

FULL_SET_IMAGES = 10_000
IMAGENET_VALIDATION_IMAGES = 50_000


def best_seconds(work, repeats: int) -> float:
    """The shortest of `repeats` timings of work(): the run least disturbed by other work on the machine."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings)


def engine_rate(images: np.ndarray, name: str, severity: int, repeats: int = 1, parameters: str | None = None) -> tuple[float, float]:
    """(seconds of the first call, which builds the graph, steady-state images per second)."""
    start = time.perf_counter()
    corrupt(images, name, severity, seed=1, parameters=parameters)  # same block sizes as the timed call: XLA compiles per shape
    build = time.perf_counter() - start
    seconds = best_seconds(lambda: corrupt(images, name, severity, seed=2, parameters=parameters), repeats)
    return build, len(images) / seconds


def reference_rate(images: np.ndarray, name: str, severity: int, repeats: int = 1) -> float | None:
    """Images per second of imagecorruptions-imaug's per-image function, or None if not installed."""
    try:
        from imagecorruptions import corrupt as reference_corrupt
    except ImportError:
        return None

    def corrupt_each():
        for image in images:
            reference_corrupt(image, corruption_name=name, severity=severity)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_corrupt(images[0], corruption_name=name, severity=severity)
        seconds = best_seconds(corrupt_each, repeats)
    return len(images) / seconds


def speed_table(images: np.ndarray, reference_images: int, severity: int, repeats: int,
                parameters: str | None = None) -> tuple[list[dict], float | None]:  # fmt: skip
    rows = []
    for name in ALL_CORRUPTIONS:
        build, engine = engine_rate(images, name, severity, repeats, parameters)
        reference = reference_rate(images[:reference_images], name, severity, repeats)
        rows.append({"corruption": name, "engine": engine, "reference": reference, "build": build})
        ratio = f"{engine / reference:8.1f}x" if reference else "       -"
        reference_text = f"{reference:12.0f}" if reference else "   (missing)"
        print(f"{name:18s} {engine:12.0f} {reference_text} {ratio}", flush=True)
    ratios = [row["engine"] / row["reference"] for row in rows if row["reference"]]
    geometric_mean = math.exp(np.mean(np.log(ratios))) if len(ratios) == len(rows) else None
    return rows, geometric_mean


def cbar_speed_table(images: np.ndarray, reference_images: int, set_name: str, severity: int, repeats: int) -> float | None:
    """Engine vs the C-bar generator for each corruption of the set; returns the geometric mean of the
    ratios (None without the generator)."""
    generator = load_generator()
    chosen = PARAMETER_SETS[set_name]
    ratios = []
    for name in chosen.corruptions:
        _, rate = engine_rate(images, name, severity, repeats, set_name)
        reference = None
        if generator is not None:
            level = chosen.row(name, severity)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()  # no first call to leave out: plain Python and NumPy
                for index, image in enumerate(images[:reference_images]):
                    generate(generator, name, level, image, seed=index)
            reference = reference_images / (time.perf_counter() - start)
            ratios.append(rate / reference)
        reference_text = f"{reference:12.2f}" if reference else "   (missing)"
        ratio = f"{rate / reference:8.0f}x" if reference else "       -"
        print(f"{name:32s} {rate:12.0f} {reference_text} {ratio}", flush=True)
    return math.exp(np.mean(np.log(ratios))) if ratios else None


def full_set_estimate(images: np.ndarray) -> tuple[float, float]:
    """(graph building seconds, extrapolated steady-state seconds) for 10 000 x 19 x 5."""
    engine._compiled.cache_clear()  # build every graph again, including those the speed table built
    build_total, steady_total = 0.0, 0.0
    for name in ALL_CORRUPTIONS:
        for severity in SEVERITIES:
            build, rate = engine_rate(images, name, severity)
            build_total += build
            steady_total += FULL_SET_IMAGES / rate
        print(f"  {name:18s} built and timed at 5 severities", flush=True)
    return build_total, steady_total


def validation_set_estimate(rows: list[dict], images: int = IMAGENET_VALIDATION_IMAGES) -> tuple[float, float]:
    """(graph building seconds, corrupting seconds) for `images` x the 15 common corruptions x 5
    severities, from a speed table's severity-3 rows (build time and rate taken for every severity)."""
    common = [row for row in rows if row["corruption"] in CORRUPTIONS]
    build = sum(len(SEVERITIES) * row["build"] for row in common)
    steady = sum(len(SEVERITIES) * images / row["engine"] for row in common)
    return build, steady


def fabricate_cifar10c(folder: Path, per_severity: int = 10_000) -> None:
    """19 uint8 [5 * per_severity, 32, 32, 3] files (random images) and labels.npy."""
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size=(per_severity, 32, 32, 3), dtype=np.uint8)
    for name in ALL_CORRUPTIONS:
        array = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=np.uint8, shape=(5 * per_severity, 32, 32, 3))
        for severity in range(5):
            array[severity * per_severity : (severity + 1) * per_severity] = block
        array.flush()
        del array
    np.save(folder / "labels.npy", np.tile(rng.integers(0, 10, per_severity), 5))


def small_model(path: Path) -> Path:
    import keras

    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10),
    ], name="bench_cnn")  # fmt: skip
    model.save(path)
    return path


def eval_peak_memory() -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a full eval-corruption run over a fabricated folder, in a subprocess."""
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        folder = root / "CIFAR-10-C"
        folder.mkdir()
        fabricate_cifar10c(folder)
        model = small_model(root / "model.keras")
        (root / "no-cifar").mkdir()
        command = [
            sys.executable, "-m", "noisegame_cli", "eval-corruption", "--dataset", "cifar10-c", "--data-dir", str(folder),
            "--model-path", str(model), "--batch-size", "1000", "--clean-data-dir", str(root / "no-cifar"), "--runs-dir", str(root / "runs"),
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak_kb / 1024, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images per corruption for the engine's rate")
    parser.add_argument("--reference-images", type=int, default=300, help="images per corruption for imagecorruptions")
    parser.add_argument("--repeats", type=int, default=3, help="timings per side and corruption; the best one counts")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--set-images", type=int, default=1000, help="images per corruption x severity for the full-set estimate")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the eval-corruption memory measurement")
    parser.add_argument("--skip-set", action="store_true", help="leave out the full 10 000 x 19 x 5 set estimate at 32x32")
    parser.add_argument("--large-images", type=int, default=100, help="224x224 images per corruption for the engine's rate")
    parser.add_argument("--large-reference-images", type=int, default=20, help="224x224 images per corruption for imagecorruptions")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 224x224 table")
    parser.add_argument("--skip-small", action="store_true", help="leave out the 32x32 table (1.)")
    parser.add_argument("--skip-cbar", action="store_true", help="leave out the C-bar tables (5.)")
    parser.add_argument("--cbar-reference-images", type=int, default=20, help="32x32 images per corruption for the C-bar generator")
    parser.add_argument("--cbar-large-reference-images", type=int, default=2, help="224x224 images per corruption for the C-bar generator")
    args = parser.parse_args(argv)

    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f} (other work on the machine slows both sides)")
    images = samples.natural_images(max(args.images, args.reference_images, args.set_images))
    if not args.skip_small:
        print(f"1. images/s at severity {args.severity}, 32x32, best of {args.repeats} (engine: batches of up to 1000; reference: per image)")
        print(f"{'corruption':18s} {'engine':>12s} {'imagecorr.':>12s} {'ratio':>9s}")
        _, geometric_mean = speed_table(images[: args.images], args.reference_images, args.severity, args.repeats)
        if geometric_mean is not None:
            print(f"geometric mean of the ratios over the 19 corruptions: {geometric_mean:.1f}x")
        else:
            print("imagecorruptions-imaug missing: pip install -e '.[bench]' for the comparison")

    if not args.skip_set:
        print(f"\n2. a full {FULL_SET_IMAGES} x 19 x 5 set, from {args.set_images} images per corruption x severity")
        build, steady = full_set_estimate(images[: args.set_images])
        print(f"first calls, building 95 graphs (measured): {build:.0f} s; corrupting (extrapolated): {steady:.0f} s; "
              f"total {(build + steady) / 60:.1f} min")  # fmt: skip

    if not args.skip_memory:
        print("\n3. peak memory of eval-corruption over a fabricated full-size 19-file CIFAR-10-C folder")
        peak, wall = eval_peak_memory()
        print(f"peak resident memory {peak:.0f} MB ({19 * 5 * 10_000} images evaluated in {wall:.0f} s)")
    if not args.skip_large:
        large = samples.natural_images(max(args.large_images, args.large_reference_images), size=224, seed=1)
        print(f"\n4. images/s at severity {args.severity}, 224x224, ImageNet-C parameters, best of {args.repeats} "
              f"(engine: {args.large_images} images; reference: {args.large_reference_images}, per image)")  # fmt: skip
        print(f"{'corruption':18s} {'engine':>12s} {'imagecorr.':>12s} {'ratio':>9s}")
        rows, geometric_mean = speed_table(large[: args.large_images], args.large_reference_images, args.severity, args.repeats, "imagenet-c")
        if geometric_mean is not None:
            print(f"geometric mean of the ratios over the 19 corruptions: {geometric_mean:.1f}x")
        build, steady = validation_set_estimate(rows)
        print(f"a {IMAGENET_VALIDATION_IMAGES} x 15 x 5 ImageNet-C (estimated from severity 3): first calls {build:.0f} s, "
              f"corrupting {steady / 3600:.1f} h, total {(build + steady) / 3600:.1f} h")  # fmt: skip
    if not args.skip_cbar:
        if load_generator() is None:
            print("\n5. the C-bar generator is missing (set NOISEGAME_CBAR_GENERATOR): the engine alone")
        for set_name, size, count, reference in (("cifar10-c-bar", 32, args.images, args.cbar_reference_images),
                                                 ("imagenet-c-bar", 224, args.large_images, args.cbar_large_reference_images)):  # fmt: skip
            cbar_images = samples.natural_images(max(count, reference), size=size, seed=2)
            print(f"\n5. images/s at severity {args.severity}, {size}x{size}, {set_name}, engine best of {args.repeats} on {count} images; "
                  f"generator once on {reference}, per image")  # fmt: skip
            print(f"{'corruption':32s} {'engine':>12s} {'generator':>12s} {'ratio':>9s}")
            geometric_mean = cbar_speed_table(cbar_images[:count], reference, set_name, args.severity, args.repeats)
            if geometric_mean is not None:
                print(f"geometric mean of the ratios over the 10 corruptions: {geometric_mean:.0f}x")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
