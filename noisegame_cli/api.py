"""The Python API (``import noisegame``): the measurements the commands make, as functions for
notebooks and scripts.

A model is a Keras model, or anything ``load_model`` takes (a saved model file, a run directory, a
SavedModel folder, ``app:NAME[:WEIGHTS]``), with ``input_range`` / ``mean`` / ``std`` for what it
expects: every model here takes 0..255 pixels and returns logits, as in the command line. Images are
a NumPy array ``[N, H, W, C]`` of 0..255 pixels with integer labels, a ``tf.data.Dataset`` of
``(image, label)`` pairs (batched or not), or a split of ``load_dataset``. Budgets are on the 0..1
image scale (``8/255``). Results are plain dicts and pandas frames; nothing is written unless a
``directory`` is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from typing import Any, Sequence

import keras
import numpy as np
import pandas as pd

from noisegame_cli.attacks import autoattack as run_autoattack
from noisegame_cli.attacks import check_budget
from noisegame_cli.attacks.common import check_norm
from noisegame_cli.budgets import ROBUSTBENCH_EPS
from noisegame_cli.corruptions.names import SEVERITIES
from noisegame_cli.data import Dataset, Split, load_dataset as load_registered_dataset
from noisegame_cli.errors import UserError
from noisegame_cli.input_scale import InputScale, check_input_scale
from noisegame_cli.models.applications import is_application
from noisegame_cli.models.saved import load_checked, load_classifier
from noisegame_cli.evaluation import benchmark as measure
from noisegame_cli.evaluation.autoattack import attack_plan
from noisegame_cli.evaluation.clean import clean_measurement
from noisegame_cli.evaluation.corruption import choose_baseline, choose_sets, evaluate_corruptions as measure_corruptions
from noisegame_cli.evaluation.shifts import evaluate_shift as measure_shift
from noisegame_cli.runs import environment_record

IN_MEMORY = "<in memory>"


def load_dataset(name: str = "digits", *, data_dir: str | os.PathLike | None = None, limit: int | None = None, image_size=None,
                 channels: int | None = None, download: bool = False) -> Dataset:  # fmt: skip
    """A dataset by name (``digits``, ``cifar10``, ``folder:PATH``, ``imagenet-r``, ...; docs/datasets.md),
    with ``train`` / ``val`` / ``test`` splits: ``load_dataset("digits").test.arrays()`` gives
    ``(images, labels)``."""
    return load_registered_dataset(name, data_dir=data_dir, limit=limit, image_size=image_size, channels=channels, download=download)


@dataclasses.dataclass(frozen=True)
class _ModelShape:
    """What a model fits when no dataset is named: the image shape and classes of its own input and output."""

    image_shape: tuple[int, ...]
    num_classes: int


def load_model(model, *, input_range: str = "0-255", mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               architecture: str | None = None, dataset: str | Dataset | None = None, download: bool = False,
               verbose: bool = True) -> keras.Model:  # fmt: skip
    """A classifier as every function here takes it: 0..255 pixels in, logits out.

    ``model``: a Keras model, a saved model (``.keras``, Keras 2 ``.h5``, a SavedModel folder, a run
    directory), a weights-only file with ``architecture`` (a registered model, ``app:NAME`` or a
    ``model.to_json()`` file), or ``app:NAME[:WEIGHTS]`` (ImageNet weights downloaded only with
    ``download``). ``input_range`` (``0-255``, ``0-1``, ``-1-1``) and ``mean`` / ``std`` (per channel,
    on the 0..1 scale, as torchvision writes them) say what it was trained on: it is wrapped once, in
    a Keras layer, so attacks, budgets and corruptions stay on 0..255 pixels. A model returning
    probabilities gets their log as logits. ``dataset`` (a name or ``load_dataset``'s result) is what it
    must fit: its image shape and classes; ``app:NAME`` and weights-only files are built for it."""
    check_input_scale(input_range, mean, std)
    scale = InputScale(input_range, mean, std)
    fits = load_dataset(dataset) if isinstance(dataset, str) else dataset
    if fits is None:
        if not isinstance(model, keras.Model):
            if is_application(model) or architecture is not None:
                raise UserError("app:NAME and weights-only files are built for a dataset: give dataset=NAME (or a loaded dataset)")
            model = load_classifier(model)
        image_shape = tuple(model.inputs[0].shape[1:])
        if None in image_shape:
            raise UserError(f"{model.name} takes images of any size: give dataset=NAME to say which")
        fits = _ModelShape(image_shape, int(model.outputs[0].shape[-1]))
    return load_checked(model, fits, scale=scale, architecture=architecture, download=download, say=print if verbose else None)


def as_split(images, labels=None):
    """Images and labels as a split: a split itself, a ``tf.data.Dataset`` of ``(image, label)``
    pairs (batched or not), or arrays (uint8, or numbers in 0..255 rounded to the pixel grid)."""
    if hasattr(images, "batches") and hasattr(images, "labels"):
        _no_labels(labels, "a split carries its labels")
        return images
    if _is_tf_dataset(images):
        _no_labels(labels, "a tf.data.Dataset carries its labels: (image, label) pairs")
        images, labels = _dataset_arrays(images)
    if labels is None:
        raise UserError("give the labels with the images (or a tf.data.Dataset of (image, label) pairs)")
    pixels = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if pixels.ndim != 4:
        raise UserError(f"images must be [N, H, W, C], got shape {list(pixels.shape)}")
    if len(pixels) != len(labels):
        raise UserError(f"{len(pixels)} images but {len(labels)} labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"labels must be class indices (integers), got {labels.dtype}")
    return Split(_as_pixels(pixels), labels.astype(np.int64))


def _no_labels(labels, why: str) -> None:
    if labels is not None:
        raise UserError(f"labels are given twice: {why}")


def _is_tf_dataset(value) -> bool:
    import tensorflow as tf

    return isinstance(value, tf.data.Dataset)


def _dataset_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """All ``(image, label)`` pairs of a dataset, batched or not, as two arrays."""
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise UserError("a tf.data.Dataset must give (image, label) pairs")
    if len(spec[0].shape) == 4:
        dataset = dataset.unbatch()
    pairs = list(dataset.as_numpy_iterator())
    if not pairs:
        raise UserError("the tf.data.Dataset gave no images")
    return np.stack([image for image, _ in pairs]), np.asarray([label for _, label in pairs])


def _as_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 pixels; numbers are checked to be 0..255 (not 0..1: a model's input range is its own
    business, given to ``load_model``) and rounded to the pixel grid."""
    if images.dtype == np.uint8:
        return images
    values = images.astype(np.float64)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise UserError("images must be pixels in 0..255")
    if values.max() <= 1.0:
        raise UserError("these images look like 0..1 values: give 0..255 pixels (images * 255), and the model's own range as "
                        "load_model(..., input_range='0-1')")  # fmt: skip
    return np.round(values).astype(np.uint8)


def _model(model) -> keras.Model:
    return model if isinstance(model, keras.Model) else load_model(model)


def accuracy(model, images, labels=None, *, batch_size: int = 256) -> dict[str, float]:
    """Clean accuracy, error and mean cross-entropy of ``model`` on the images."""
    return clean_measurement(_model(model), as_split(images, labels), batch_size)


def autoattack(model, images, labels=None, eps: float | None = None, norm: str = "Linf", version: str = "standard", *, seed: int = 0,
               batch_size: int = 500, verbose: bool = True):  # fmt: skip
    """AutoAttack (``version`` standard, plus or rand) under an ``eps`` budget in ``norm`` (default:
    8/255 for Linf, 0.5 for L2). Returns (adversarial images as float32 0..255, the result: robust
    accuracy after each attack, who broke each point, the sanity checks' warnings)."""
    images, labels = as_split(images, labels).arrays()
    eps = ROBUSTBENCH_EPS.get(norm) if eps is None else eps
    return run_autoattack(_model(model), images, labels, eps, norm, version, seed=seed, batch_size=batch_size, verbose=verbose)


def evaluate_corruptions(model, images, labels=None, corruptions: Sequence[str] = ("common",), severities: Sequence[int] = SEVERITIES, *,
                         seed: int = 0, parameters: str | None = None, baseline: str | os.PathLike | None = None,
                         batch_size: int = 256) -> pd.DataFrame:  # fmt: skip
    """Accuracy under the corruptions (names or the groups ``noise``, ``common``, ``all``) at each
    severity, generated by the engine from ``seed`` with the ``parameters`` set (None: the one nearest
    the images' size), the aggregates and, against ``baseline`` (a run directory) or the parameter
    set's published baseline, CE and mCE: the rows eval-corruption writes, as a frame."""
    model = _model(model)
    split = as_split(images, labels)
    sets = choose_sets(corruptions, severities, test=split, seed=seed, parameters=parameters)
    clean = clean_measurement(model, split, batch_size)
    rows = [{"split": "test", "condition": "clean", "metric": m, "value": v} for m, v in clean.items()]
    rows += measure_corruptions(model, sets.source, sets.corruptions, sets.severities, clean_error=clean["error"],
                                baseline=choose_baseline(baseline, sets.source.parameters), batch_size=batch_size)  # fmt: skip
    return pd.DataFrame(rows)


def evaluate_shift(model, dataset: str, *, data_dir: str | os.PathLike | None = None, limit: int | None = None,
                   image_size=None, batch_size: int = 256) -> dict[str, Any]:  # fmt: skip
    """Accuracy, error and loss on the test split of a natural-shift dataset (``imagenet-r``, ``imagenet-a``,
    ``imagenet-sketch``, ``imagenet-v2[:variant]``, ``cifar10.1``; docs/datasets.md) read from ``data_dir``,
    under its protocol (a 1000-class model is restricted to ImageNet-R's and -A's 200 classes), with the
    count of images and the protocol in words: a shift row of ``benchmark --shifts``."""
    return measure_shift(_model(model), dataset, data_dir, batch_size=batch_size, limit=limit, image_size=image_size)


def benchmark(model, images, labels=None, *, norm: str = "Linf", eps: float | None = None, version: str = "standard",
              corruptions: Sequence[str] | None = ("all",), severities: Sequence[int] = SEVERITIES, n_examples: int | None = None,
              seed: int = 0, batch_size: int = 500, attack_steps: int | None = None, square_queries: int | None = None,
              adversarial: bool = True, baseline: str | os.PathLike | None = None, directory: str | os.PathLike | None = None,
              name: str | None = None, dataset: str = IN_MEMORY, verbose: bool = True) -> dict[str, Any]:  # fmt: skip
    """The robustness card of ``benchmark``: clean accuracy, AutoAttack and corruption accuracy on the
    first ``n_examples`` images (all of them by default), RobustBench's field names, accuracies in
    percent. ``corruptions=None`` or ``adversarial=False`` skip a part; ``attack_steps`` and
    ``square_queries`` shorten the attacks (then not comparable with published numbers). AutoAttack's
    finished chunks go to ``directory`` (a temporary folder when None), so a rerun there resumes."""
    model_path = model if not isinstance(model, keras.Model) else IN_MEMORY
    model = _model(model)
    split = as_split(images, labels).head(n_examples)
    eps = check_budget(ROBUSTBENCH_EPS[check_norm(norm)] if eps is None else eps, "eps", norm=norm)
    plan = attack_plan(norm, eps, version, seed, attack_steps=attack_steps, square_queries=square_queries)
    sets = None if corruptions is None else choose_sets(corruptions, severities, test=split, seed=seed)
    chosen_baseline = None if sets is None else choose_baseline(baseline, sets.source.parameters)
    if directory is not None:
        os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory() if directory is None else contextlib.nullcontext(directory) as folder:
        result = measure.benchmark(model, split, plan=plan, directory=folder, corruptions=sets, baseline=chosen_baseline,
                                   adversarial=adversarial, batch_size=batch_size, verbose=verbose)  # fmt: skip
    environment = environment_record(seed)
    return measure.card(result, name=name or model.name, model=model.name, model_path=str(model_path), dataset=dataset,
                        versions=environment["packages"], git_commit=environment["git"]["commit"])  # fmt: skip
