"""Accuracy under a natural distribution shift: the one answer to "how is a model measured on
ImageNet-R, -A, -Sketch, -V2 or CIFAR-10.1".

A model of the original dataset (a 1000-class ImageNet model, a CIFAR-10 model) is evaluated on the
shift's test split under the shift's protocol: restricted to the 200 classes of ImageNet-R and
ImageNet-A where it predicts the 1000, as it is everywhere else (``models.class_subset``).
"""

from __future__ import annotations

import os

import keras

from noisegame_cli.data import load_dataset
from noisegame_cli.evaluation.clean import evaluate
from noisegame_cli.models import check_fits, class_protocol, restricted_to_dataset


def evaluate_shift(
    model: keras.Model,
    spec: str,
    data_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    limit: int | None = None,
    image_size: tuple[int, int] | None = None,
) -> dict:
    """Accuracy and loss of ``model`` on the test split of the shift dataset ``spec`` (``imagenet-r``,
    ``imagenet-v2:top-images``, ``cifar10.1``, ...), with the dataset's name as loaded, the number of
    images evaluated and the protocol (which classes the predictions range over, in words)."""
    data = load_dataset(spec, data_dir, limit=limit, image_size=image_size)
    what = f"model {model.name}"
    fitted = restricted_to_dataset(model, data, what=what)
    check_fits(fitted, data.image_shape, data.num_classes, what=what)
    metrics = evaluate(fitted, data.test, batch_size)
    return {"dataset": data.name, **metrics, "count": len(data.test), "protocol": class_protocol(fitted)}
