"""AutoAttack here against the original (fra31/auto-attack, PyTorch) and APGD-CE against IBM ART's.

``original`` (the part the issue's speed target is about): the standard version here
(``noisegame_cli.attacks.autoattack``) and the original's ``AutoAttack(version="standard")`` on an exact
PyTorch twin of the same Keras model (``torch_twin``: weights copied, logits checked), on the same
images, with the same budgets (Linf 8/255 and L2 0.5 by default), each side pinned to the same number of
threads (TensorFlow's intra- and inter-op pools, OMP and ``torch.set_num_threads``), one worker process
per thread count. Each attack of the protocol is timed on both sides (the original's by wrapping its
attacks' ``perturb``); the two sides alternate which runs first from one budget to the next. Ours is
timed after a warm-up call on the same images with 2 iterations and 20 queries, which traces and
compiles its graphs; that one-off cost is printed beside it. The model is ``--model-path`` (a run
directory or a saved model; repeatable) or, by default, the digits recipe's FGSM-trained small CNN
(``experiments/digits-fgsm-adv-train.yaml``, trained here in a temporary folder, about two minutes).
``--original`` is a checkout of https://github.com/fra31/auto-attack (the folder holding its
``autoattack`` package); its code is run from there, never copied.

Before the attacks, each worker times the model's bare passes on the same images, forward and forward
with the input gradient, on both sides in turn (``model_passes``): every attack here makes the same passes
as its original (one forward per Square query, one forward and backward per APGD iteration, both per FAB
iteration), so their ratio bounds what any attack can gain. ``--sides ""`` times only these passes.

The fast version here (``version="fast"``: APGD-CE, then APGD-T against MALT's 3 best target classes) runs on
the same images too: its time against the standard version's, and the points it misses.

``art``: APGD-CE here against ART's ``AutoProjectedGradientDescent`` on the same Keras model (a small
CNN trained for a few seconds), matched settings, the whole test split as one batch, best of
``--repeats`` calls per side.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: PyTorch 2.13.0, ART).

    python benchmarks/bench_autoattack.py --original PATH [--parts original,art] [--threads 1,2]
        [--points 120] [--budgets Linf:8/255,L2:0.5] [--model-path RUN ...] [--attack-steps N]
        [--square-queries N] [--sides ours,original]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STEPS = 100
STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
FGSM_RECIPE = ROOT / "experiments" / "digits-fgsm-adv-train.yaml"


def pin_threads(threads: int) -> None:
    """Both sides on ``threads`` threads; must run before TensorFlow or PyTorch is imported."""
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def machine_load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def parse_budgets(text: str) -> list[tuple[str, float, str]]:
    """``Linf:8/255,L2:0.5`` -> [(norm, eps, label), ...]."""
    budgets = []
    for item in text.split(","):
        norm, value = item.split(":")
        budgets.append((norm, float(Fraction(value)), f"{norm} {value}"))
    return budgets


# --- the original's side ------------------------------------------------------------------------------


def run_original(twin, images, labels, norm: str, eps: float, settings, original_dir: str) -> dict:
    """The original's standard protocol on the twin: seconds and robust accuracy after each attack."""
    import torch

    if original_dir not in sys.path:
        sys.path.insert(0, original_dir)
    from autoattack import AutoAttack
    from torch_twin import to_nchw

    adversary = AutoAttack(twin, norm=norm, eps=eps, version="standard", device="cpu", verbose=True, seed=0)
    robust_after = {}
    adversary.logger = _AccuracyLog(robust_after)
    adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = settings.steps
    adversary.square.n_queries = settings.square_queries
    attacks = {"apgd-ce": adversary.apgd, "apgd-t": adversary.apgd_targeted, "fab-t": adversary.fab, "square": adversary.square}
    seconds = dict.fromkeys(attacks, 0.0)
    x, y = to_nchw(images), torch.tensor(labels)

    def timed(name, perturb):
        def run(points, point_labels):
            started = time.perf_counter()
            found = perturb(points, point_labels)
            seconds[name] += time.perf_counter() - started
            return found

        return run

    for name, attack in attacks.items():
        attack.perturb = timed(name, attack.perturb)
    started = time.perf_counter()
    adversarial = adversary.run_standard_evaluation(x, y, bs=len(labels))
    total = time.perf_counter() - started
    with torch.no_grad():
        robust = twin(adversarial).argmax(1).numpy() == labels
    robust_after["final"] = float(robust.mean())
    return {"seconds": seconds, "total": total, "robust": robust_after, "robust_points": robust.tolist()}


class _AccuracyLog:
    """Stands in for the original's logger (with ``verbose=True``): keeps the robust accuracy it reports
    after each attack and prints nothing."""

    def __init__(self, accuracy: dict):
        self.accuracy = accuracy

    def log(self, line: str) -> None:
        if line.startswith("robust accuracy after "):
            name, value = line[len("robust accuracy after ") :].split(": ", 1)
            self.accuracy[name.lower()] = float(value.split("%")[0]) / 100


# --- our side ------------------------------------------------------------------------------------------


def run_ours(model, images, labels, norm: str, eps: float, settings, version: str = "standard") -> dict:
    from dataclasses import replace

    from noisegame_cli.attacks import autoattack

    def run(with_settings):
        return autoattack(model, images, labels, eps, norm, version, settings=with_settings, batch_size=len(labels), verbose=False)

    started = time.perf_counter()
    run(replace(settings, steps=2, square_queries=20))
    warm_up = time.perf_counter() - started
    started = time.perf_counter()
    _, result = run(settings)
    total = time.perf_counter() - started
    robust = result.broken_by == ""
    return {
        "seconds": result.seconds, "total": total, "warm_up": warm_up,
        "robust": {**result.robust_accuracy, "final": result.robust}, "robust_points": robust.tolist(),
    }  # fmt: skip


# --- the model's bare passes: the bound of both sides -----------------------------------------------------


def model_passes(model, twin, images, labels, repeats: int = 8) -> dict:
    """Median milliseconds of one bare forward pass and one forward and backward pass (gradient of the
    cross-entropy with respect to the input) of the model on ``images``, here (on the canonical rows its
    attacks run on, compiled) and on the twin (as the original calls it), the four timed in turn."""
    import tensorflow as tf
    import torch

    from noisegame_cli.attacks.common import padded_index, pixel_logits
    from noisegame_cli.attacks.gradient import loss_gradient
    from torch_twin import to_nchw

    padded = padded_index(np.arange(len(images)))
    pixels, targets = tf.constant(images[padded]), tf.constant(labels[padded])
    gradient = tf.function(lambda x, y: loss_gradient(model, x, y))

    x_twin, y_twin = to_nchw(images), torch.tensor(labels)

    def twin_forward():
        with torch.no_grad():
            return twin(x_twin)

    def twin_gradient():
        x = x_twin.clone().requires_grad_()
        torch.nn.functional.cross_entropy(twin(x), y_twin, reduction="sum").backward()
        return x.grad

    passes = {
        "forward here": lambda: pixel_logits(model, pixels).numpy(),
        "forward original": twin_forward,
        "forward+backward here": lambda: gradient(pixels, targets).numpy(),
        "forward+backward original": twin_gradient,
    }
    times = {name: [] for name in passes}
    for run in passes.values():
        run()
        run()
    for _ in range(repeats):
        for name, run in passes.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: float(np.median(values)) for name, values in times.items()}


# --- one worker: one thread count ----------------------------------------------------------------------


def worker(args) -> None:
    pin_threads(args.threads)
    import keras
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    from dataclasses import replace

    from noisegame_cli.attacks import SETTINGS
    from noisegame_cli.data import load_dataset
    from noisegame_cli.models.saved import load_classifier
    from torch_twin import max_logit_difference, torch_twin

    data = load_dataset("digits")
    images = data.test.images[: args.points].astype(np.float32)
    labels = data.test.labels[: args.points]
    settings = {version: replace(SETTINGS[version], steps=args.attack_steps, square_queries=args.square_queries)
                for version in ("standard", "fast") if version in SETTINGS}  # fmt: skip
    sides = [side for side in args.sides.split(",") if side]
    rows = []
    for path in args.model_path:
        keras.utils.set_random_seed(0)
        model = load_classifier(path)
        twin = torch_twin(model)
        difference = max_logit_difference(model, twin, images)
        passes = model_passes(model, twin, images, labels)
        for index, (norm, eps, label) in enumerate(parse_budgets(args.budgets)):
            order = sides if index % 2 == 0 else sides[::-1]
            row = {"model": path, "budget": label, "threads": args.threads, "logit_difference": difference,
                   "passes_ms": passes, "load_before": machine_load()}  # fmt: skip
            for side in order:
                if side == "original":
                    row["original"] = run_original(twin, images, labels, norm, eps, settings["standard"], args.original)
                else:
                    version = "fast" if side == "fast" else "standard"
                    row[side] = run_ours(model, images, labels, norm, eps, settings[version], version)
            row["load_after"] = machine_load()
            rows.append(row)
            print("RESULT " + json.dumps(row), flush=True)


# --- the report ---------------------------------------------------------------------------------------


def print_row(row: dict) -> None:
    ours, original = row.get("ours"), row.get("original")
    print(f"\n{Path(row['model']).name}, {row['budget']}, {row['threads']} thread(s); max logit difference of the twin "
          f"{row['logit_difference']:.1e}; load before: {row['load_before'].split('load average:')[-1].strip()}, "
          f"after: {row['load_after'].split('load average:')[-1].strip()}")  # fmt: skip
    print(f"{'attack':10s} {'noisegame s':>12s} {'original s':>11s} {'ratio':>7s} {'robust acc (here / original)':>30s}")
    for name in STANDARD:
        here = ours["seconds"].get(name, 0.0) if ours else float("nan")
        there = original["seconds"].get(name, 0.0) if original else float("nan")
        accuracies = " / ".join(f"{side['robust'][name]:.2%}" if side and name in side["robust"] else "-" for side in (ours, original))
        ratio = there / here if ours and original and here > 0 else float("nan")
        print(f"{name:10s} {here:12.1f} {there:11.1f} {ratio:6.2f}x {accuracies:>30s}")
    here = ours["total"] if ours else float("nan")
    there = original["total"] if original else float("nan")
    ratio = there / here if ours and original else float("nan")
    print(f"{'all four':10s} {here:12.1f} {there:11.1f} {ratio:6.2f}x")
    passes = row.get("passes_ms")
    if passes:
        print("bare model passes on these images (median ms, here / original): " + "; ".join(
            f"{kind} {passes[kind + ' here']:.1f} / {passes[kind + ' original']:.1f} "
            f"({passes[kind + ' original'] / passes[kind + ' here']:.2f}x)" for kind in ("forward", "forward+backward")
        ) + " -- the most an attack can gain when both sides make the same passes")  # fmt: skip
    if ours:
        print(f"noisegame's warm-up call (tracing and compiling, 2 iterations, 20 queries): {ours['warm_up']:.1f} s")
    if ours and original:
        same = np.mean(np.array(ours["robust_points"]) == np.array(original["robust_points"]))
        print(f"robust accuracy: noisegame {ours['robust']['final']:.2%}, original {original['robust']['final']:.2%}; "
              f"the same verdict on {same:.1%} of the points")  # fmt: skip
    fast = row.get("fast")
    if fast and ours:
        missed = np.sum(np.array(fast["robust_points"]) & ~np.array(ours["robust_points"]))
        extra = np.sum(~np.array(fast["robust_points"]) & np.array(ours["robust_points"]))
        print(f"version fast (APGD-CE, APGD-T on MALT's 3 targets): {fast['total']:.1f} s, {ours['total'] / fast['total']:.1f}x "
              f"faster than standard; robust accuracy {fast['robust']['final']:.2%}; it missed {missed} of the points "
              f"standard broke and broke {extra} standard missed (warm-up {fast['warm_up']:.1f} s)")  # fmt: skip


def default_model(folder: str) -> str:
    """Train the digits FGSM recipe's small CNN once into ``folder``; its run directory."""
    runs = Path(folder) / "runs"
    found = sorted(runs.glob("fgsm-train/*/model.keras"))
    if not found:
        print(f"training the FGSM small CNN of {FGSM_RECIPE.name} (about two minutes) ...", flush=True)
        command = [sys.executable, "-m", "noisegame_cli", "fgsm", "train", "--config", str(FGSM_RECIPE),
                   "--runs-dir", str(runs), "--eps", "0"]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        found = sorted(runs.glob("fgsm-train/*/model.keras"))
    return str(found[-1].parent)


def compare_with_original(args) -> None:
    if not args.original or not (Path(args.original) / "autoattack" / "autoattack.py").exists():
        raise SystemExit("--original must be a checkout of fra31/auto-attack (the folder holding autoattack/)")
    model_paths = args.model_path or [default_model(args.cache)]
    for threads in [int(t) for t in args.threads.split(",")]:
        command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--points", str(args.points),
                   "--budgets", args.budgets, "--attack-steps", str(args.attack_steps), "--square-queries",
                   str(args.square_queries), "--sides", args.sides, "--original", args.original]  # fmt: skip
        for path in model_paths:
            command += ["--model-path", path]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
        process = subprocess.run(command, capture_output=True, text=True, env=environment)
        results = [json.loads(line[len("RESULT ") :]) for line in process.stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode != 0:
            print(process.stderr[-3000:])
            raise SystemExit(f"the worker with {threads} thread(s) failed")
        for row in results:
            print_row(row)


# --- ART's APGD ---------------------------------------------------------------------------------------


def tiny_cnn(data, epochs: int = 6):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.image_shape),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(data.num_classes),
    ])  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.train.images, data.train.labels, batch_size=64, epochs=epochs, verbose=0)
    return model


def accuracy(model, images, labels) -> float:
    return float(np.mean(np.argmax(model.predict(images, batch_size=500, verbose=0), axis=-1) == labels))


def best_of(repeats: int, attack) -> tuple[float, np.ndarray]:
    """(fastest wall time of ``repeats`` calls, the last call's images)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        adversarial = np.asarray(attack())
        times.append(time.perf_counter() - started)
    return min(times), adversarial


def compare_with_art(args) -> None:
    import art
    import keras
    from art.attacks.evasion import AutoProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    from noisegame_cli.attacks import apgd
    from noisegame_cli.data import load_dataset

    data = load_dataset("digits")
    model = tiny_cnn(data)
    images = data.test.images.astype(np.float32)
    labels = data.test.labels
    count, eps = len(labels), args.art_eps / 255
    print(f"\nsmall CNN on digits {data.image_shape}: clean accuracy {accuracy(model, images, labels):.2%} on {count} test images")
    print(f"APGD-CE, Linf eps {args.art_eps:g}/255, {STEPS} iterations, 1 restart, one batch of {count}; best of {args.repeats}")
    ours_time, ours = best_of(args.repeats, lambda: apgd(model, images, labels, eps, steps=STEPS, restarts=1, seed=0))
    classifier = TensorFlowV2Classifier(
        model=model, nb_classes=data.num_classes, input_shape=data.image_shape, clip_values=(0.0, 255.0),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )  # fmt: skip
    attack = AutoProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps * 255, eps_step=2 * eps * 255, max_iter=STEPS, nb_random_init=1,
        batch_size=count, loss_type="cross_entropy", verbose=False,
    )  # fmt: skip
    art_time, theirs = best_of(args.repeats, lambda: attack.generate(images, labels))
    ours_accuracy, art_accuracy = accuracy(model, ours, labels), accuracy(model, theirs, labels)
    print(f"{'':28s} {'robust acc':>10s} {'seconds':>8s} {'images/s':>9s}")
    for name, robust, seconds in (("noisegame apgd (APGD-CE)", ours_accuracy, ours_time), (f"ART {art.__version__} APGD (CE)", art_accuracy, art_time)):
        print(f"{name:28s} {robust:10.2%} {seconds:8.2f} {count / seconds:9.1f}")
    print(f"robust accuracy here minus ART: {(ours_accuracy - art_accuracy) * 100:+.2f} points; speed ratio {art_time / ours_time:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="original,art", help="original, art, or both")
    parser.add_argument("--original", default=os.environ.get("AUTOATTACK_ORIGINAL"), help="a checkout of fra31/auto-attack")
    parser.add_argument("--model-path", action="append", default=[], help="a run directory or saved model (repeatable)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "noisegame-bench-autoattack"))
    parser.add_argument("--threads", default="1,2", help="thread counts, one worker process each")
    parser.add_argument("--points", type=int, default=120, help="the first test images of digits to attack")
    parser.add_argument("--budgets", default="Linf:8/255,L2:0.5")
    parser.add_argument("--attack-steps", type=int, default=STEPS, help="APGD and FAB iterations (100: the standard)")
    parser.add_argument("--square-queries", type=int, default=5000, help="5 000: the standard")
    parser.add_argument("--sides", default="ours,original,fast", help="ours (standard), original, fast (ours)")
    parser.add_argument("--repeats", type=int, default=3, help="ART part: calls per side")
    parser.add_argument("--art-eps", type=float, default=8.0, help="ART part: the Linf budget in pixels of 0..255")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        worker(args)
        return
    print(f"load at the start: {machine_load()}")
    parts = args.parts.split(",")
    if "original" in parts:
        compare_with_original(args)
    if "art" in parts:
        compare_with_art(args)
    print(f"\nload at the end: {machine_load()}")


if __name__ == "__main__":
    main()
