"""Training throughput: `noisegame train-teacher` against a plain hand-written `model.fit`.

Same model (resnet20 at 32x32 unless told), same images (digits), same batch size, measured in
the same process. Epoch wall times come from each run's per-epoch timer; the first epoch (tracing)
is left out. Also the input pipeline alone (flip + pad-and-crop), with no model.

    python benchmarks/bench_train.py [--model resnet20] [--dataset digits] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from noisegame_cli.commands import train_teacher  # noqa: E402
from noisegame_cli.data import load_dataset  # noqa: E402
from noisegame_cli.data.pipelines import train_pipeline  # noqa: E402
from noisegame_cli.models import build_model  # noqa: E402
from noisegame_cli.training.callbacks import EpochTimer  # noqa: E402
from noisegame_cli.training.classifier import compile_classifier  # noqa: E402


def steady_rate(epoch_seconds: list[float], images: int) -> float:
    """Images per second over the epochs after the first (median epoch time)."""
    return images / statistics.median(epoch_seconds[1:])


def baseline_fit(data, model_name: str, batch_size: int, epochs: int) -> float:
    """The hand-written reference: build, compile, fit on in-memory arrays."""
    keras.utils.set_random_seed(0)
    model = build_model(model_name, data.image_shape, data.num_classes)
    compile_classifier(model)
    timer = EpochTimer()
    history = keras.callbacks.History()
    model.fit(
        data.train.images.astype("float32"), data.train.labels, batch_size=batch_size, epochs=epochs,
        validation_data=(data.val.images.astype("float32"), data.val.labels), callbacks=[timer, history], verbose=0,
    )
    return steady_rate(history.history["epoch_seconds"], len(data.train))


def runner_fit(dataset: str, model_name: str, batch_size: int, epochs: int, images: int) -> float:
    with tempfile.TemporaryDirectory() as runs:
        config = train_teacher.Config(
            dataset=dataset, model=model_name, epochs=epochs, batch_size=batch_size, augment="none",
            patience=epochs + 1, runs_dir=runs,
        )
        result = train_teacher.run(config)
        history = pd.read_csv(os.path.join(result["run_dir"], "history.csv"))
    return steady_rate(list(history["epoch_seconds"]), images)


def pipeline_rate(data, batch_size: int, repeats: int = 3) -> float:
    """Images per second through shuffle + flip + pad-and-crop + batch, no model."""
    dataset = train_pipeline(data.train.images, data.train.labels, batch_size, augment="flip_crop")
    for _ in dataset:  # warm-up: tracing
        pass
    started = time.perf_counter()
    for _ in range(repeats):
        for _ in dataset:
            pass
    return repeats * len(data.train) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    print(f"training throughput, {args.model} on {args.dataset} {data.image_shape}, batch {args.batch_size}, "
          f"{len(data.train)} images/epoch, median of epochs 2..{args.epochs}")
    baseline = baseline_fit(data, args.model, args.batch_size, args.epochs)
    runner = runner_fit(args.dataset, args.model, args.batch_size, args.epochs, len(data.train))
    pipeline = pipeline_rate(data, args.batch_size)
    print(f"{'plain model.fit (baseline)':34s} {baseline:9.1f} images/s")
    print(f"{'noisegame train-teacher':34s} {runner:9.1f} images/s   ratio {runner / baseline:.3f} (target >= 0.95)")
    print(f"{'input pipeline alone (flip+crop)':34s} {pipeline:9.1f} images/s   {pipeline / baseline:.1f}x the model's rate")


if __name__ == "__main__":
    main()
