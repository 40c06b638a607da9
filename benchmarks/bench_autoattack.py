"""APGD-CE here against IBM ART's AutoProjectedGradientDescent on the same Keras model, and a full AutoAttack run.

A small CNN trained for a few seconds on the digits training split (32x32x3, 0..255 in, logits out); both
attack the digits test split with matched settings: Linf eps 8/255 (8 in ART's convention, where eps is in
the units of the model's input, 0..255 here), first step 2 * eps, 100 iterations, one restart, the
cross-entropy loss, the whole test split as one batch. Robust accuracy is measured on each side's
adversarial images; the time is the best of ``--repeats`` calls per side (the first call of each traces or
warms up). Needs ``pip install adversarial-robustness-toolbox`` (the ``bench`` extra).

    python benchmarks/bench_autoattack.py [--points 360] [--repeats 3] [--eps 8] [--no-full]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from noisegame_cli.attacks import apgd, autoattack  # noqa: E402
from noisegame_cli.data import load_dataset  # noqa: E402

STEPS = 100


def small_cnn(data, epochs: int = 6) -> keras.Model:
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


def art_apgd(model, data, points: int, eps: float):
    from art.attacks.evasion import AutoProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    classifier = TensorFlowV2Classifier(
        model=model, nb_classes=data.num_classes, input_shape=data.image_shape, clip_values=(0.0, 255.0),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )  # fmt: skip
    eps = eps * 255.0  # ART's eps is in the units of the model's input
    return AutoProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=STEPS, nb_random_init=1, batch_size=points,
        loss_type="cross_entropy", verbose=False,
    )  # fmt: skip


def machine_load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=360, help="test images to attack (the digits test split has 360)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eps", type=float, default=8.0, help="the Linf budget in pixels of 0..255 (8 = 8/255)")
    parser.add_argument("--no-full", action="store_true", help="skip the full standard AutoAttack run")
    args = parser.parse_args()
    import art

    print(f"load at the start: {machine_load()}")
    data = load_dataset("digits")
    model = small_cnn(data)
    images = data.test.images[: args.points].astype(np.float32)
    labels = data.test.labels[: args.points]
    count = len(labels)
    eps = args.eps / 255
    clean = accuracy(model, images, labels)
    print(f"small CNN on digits {data.image_shape}: clean accuracy {clean:.2%} on {count} test images")
    print(f"APGD-CE, Linf eps {args.eps:g}/255, {STEPS} iterations, 1 restart, one batch of {count}; best of {args.repeats}")

    ours_time, ours = best_of(args.repeats, lambda: apgd(model, images, labels, eps, steps=STEPS, restarts=1, seed=0))
    attack = art_apgd(model, data, count, eps)
    art_time, theirs = best_of(args.repeats, lambda: attack.generate(images, labels))
    ours_accuracy, art_accuracy = accuracy(model, ours, labels), accuracy(model, theirs, labels)
    print(f"{'':28s} {'robust acc':>10s} {'seconds':>8s} {'images/s':>9s} {'max Linf':>9s}")
    rows = (
        ("noisegame apgd (APGD-CE)", ours_accuracy, ours_time, ours),
        (f"ART {art.__version__} APGD (CE)", art_accuracy, art_time, theirs),
    )
    for name, robust, seconds, adversarial in rows:
        largest = np.abs(adversarial - images).max()
        print(f"{name:28s} {robust:10.2%} {seconds:8.2f} {count / seconds:9.1f} {largest:7.3f}/255")
    difference = (ours_accuracy - art_accuracy) * 100
    met = "met" if difference <= 1.0 else "NOT met"
    print(f"robust accuracy here minus ART: {difference:+.2f} points (target <= +1: {met})")
    speed = art_time / ours_time
    print(f"speed ratio (images/s here / ART): {speed:.2f}x (target >= 3x: {'met' if speed >= 3 else 'NOT met'})")

    if not args.no_full:
        started = time.perf_counter()
        _, result = autoattack(model, images, labels, eps, version="standard", verbose=False)
        seconds = time.perf_counter() - started
        per_attack = ", ".join(
            f"{name} {result.robust_accuracy[name]:.2%} ({result.seconds[name]:.1f} s)" for name in result.attacks
        )
        print(f"full standard AutoAttack here: clean {result.clean_accuracy:.2%}, {per_attack}; {seconds:.1f} s in all")
        for flag in result.flags:
            print(f"  {flag}")
    print(f"load at the end: {machine_load()}")


if __name__ == "__main__":
    main()
