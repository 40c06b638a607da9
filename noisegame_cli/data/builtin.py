"""The datasets that need no files: scikit-learn's digits (the embedded default) and seeded synthetic images.

- ``digits``: scikit-learn's 1 797 real 8x8 digits (they ship inside scikit-learn), scaled to
  0..255, resized to 32x32 and repeated to 3 channels; one fixed stratified split
  (1 257 train / 180 val / 360 test) that does not depend on ``--seed``.
- ``synthetic[:HxWxC[:CLASSES]]``: seeded class-conditional images of any shape, for tests.
"""

from __future__ import annotations

import numpy as np

from noisegame_cli.data.datasets import Dataset, LoadOptions, register_dataset
from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError


@register_dataset("digits", layout="embedded: scikit-learn's 8x8 digits, resized to 32x32x3 (no files)")
def digits_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_digits()


@register_dataset("synthetic", layout="generated: synthetic[:HxWxC[:CLASSES]], seeded class-conditional images (no files)", argument="HxWxC[:CLASSES]")
def synthetic_dataset(argument: str, options: LoadOptions) -> Dataset:
    return load_synthetic(*parse_synthetic_spec(argument))


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = upscale_to_rgb(digits.images / 16.0 * 255.0, size=32)
    labels = digits.target.astype(np.int64)
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=360, stratify=labels, random_state=0)
    train, val = train_test_split(rest, test_size=180, stratify=labels[rest], random_state=0)
    pick = lambda idx: Split(images[idx], labels[idx])  # noqa: E731
    return Dataset("digits", pick(train), pick(val), pick(test), tuple(str(d) for d in range(10)))


def upscale_to_rgb(gray: np.ndarray, size: int) -> np.ndarray:
    """Grey images in 0..255 ``[N, h, w]`` to uint8 ``[N, size, size, 3]`` (bilinear)."""
    import tensorflow as tf

    resized = tf.image.resize(gray[..., None].astype(np.float32), (size, size), method="bilinear").numpy()
    return np.repeat(np.clip(np.rint(resized), 0, 255).astype(np.uint8), 3, axis=-1)


def load_synthetic(
    image_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    sizes: tuple[int, int, int] = (512, 128, 128),
    seed: int = 0,
) -> Dataset:
    """Seeded class-conditional images: each class a smooth random template plus pixel noise."""
    rng = np.random.default_rng(seed)
    height, width, channels = image_shape
    coarse = rng.uniform(0, 255, size=(num_classes, 4, 4, channels))
    rows = np.linspace(0, 3, height).round().astype(int)
    cols = np.linspace(0, 3, width).round().astype(int)
    templates = coarse[:, rows][:, :, cols]

    def split(count: int) -> Split:
        labels = rng.integers(0, num_classes, size=count).astype(np.int64)
        noisy = templates[labels] + rng.normal(0, 40, size=(count, *image_shape))
        return Split(np.clip(noisy, 0, 255).astype(np.uint8), labels)

    train, val, test = (split(count) for count in sizes)
    return Dataset("synthetic", train, val, test, tuple(f"class_{i}" for i in range(num_classes)))


def parse_synthetic_spec(spec: str) -> tuple[tuple[int, int, int], int]:
    if not spec:
        return (32, 32, 3), 10
    shape_text, _, classes_text = spec.partition(":")
    try:
        shape = tuple(int(part) for part in shape_text.lower().split("x"))
        classes = int(classes_text) if classes_text else 10
    except ValueError:
        shape, classes = (), 0
    if len(shape) != 3 or min(shape) < 1 or classes < 2:
        raise UserError(f"synthetic dataset spec {spec!r} must look like HxWxC or HxWxC:CLASSES (e.g. 32x32x3:10)")
    return shape, classes
