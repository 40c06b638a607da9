"""tf.data pipelines: training (shuffle + geometric augmentation), evaluation, and paired clean/noisy views.

Pipelines take a split (in memory or streamed from files, see ``sources.py``). Batches come out as
float32 images in 0..255 (the models rescale themselves) and int64 labels. Augmentation runs on whole
batches with Keras preprocessing layers inside ``Dataset.map``; maps keep their order, so with op
determinism on (the default of every command) a seed gives the same batches on every run.

Augmentations (``AUGMENTATIONS``):
- ``flip_crop``: random horizontal flip, zero-pad by 1/8 of the size (4 px at 32x32), random crop back;
- ``crop``: the same without the flip (for data where mirroring changes the class, such as digits);
- ``resize_crop``: resize up by 1/8 and random-crop back, as in the Keras consistency-training example
  (resize to 80, crop to 72 there);
- ``none``.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from noisegame_cli import checks
from noisegame_cli.config import AUGMENTATIONS

AUTOTUNE = tf.data.AUTOTUNE
ImageMap = Callable[[tf.Tensor], tf.Tensor]


def augmentation(kind: str, image_shape: tuple[int, int, int], seed: int = 0) -> keras.Sequential | None:
    """The geometric augmentation ``kind`` for images of ``image_shape``, or ``None`` for ``none``."""
    checks.chosen(kind, AUGMENTATIONS, "augmentation")
    height, width = image_shape[:2]
    pad_h, pad_w = max(1, height // 8), max(1, width // 8)
    if kind == "none":
        return None
    if kind in ("flip_crop", "crop"):
        steps = [keras.layers.RandomFlip("horizontal", seed=seed)] if kind == "flip_crop" else []
        steps += [keras.layers.ZeroPadding2D((pad_h, pad_w)), keras.layers.RandomCrop(height, width, seed=seed + 1)]
    else:  # resize_crop
        steps = [keras.layers.Resizing(height + pad_h, width + pad_w), keras.layers.RandomCrop(height, width, seed=seed + 1)]
    return keras.Sequential(steps, name=f"augment_{kind}")


def _as_float(images, labels):
    return tf.cast(images, tf.float32), labels


def train_pipeline(split, batch_size: int, *, augment: str = "flip_crop", seed: int = 0, shuffle: bool = True,
                   transform: ImageMap | None = None) -> tf.data.Dataset:  # fmt: skip
    """Shuffled, augmented float32 batches of ``(images, labels)`` from a split.

    ``transform`` (a batch function on float images, e.g. a frequency filter or a corruption) runs
    after the augmentation."""
    layer = augmentation(augment, split.image_shape, seed)
    dataset = split.examples(shuffle=shuffle, seed=seed).batch(batch_size).map(_as_float, num_parallel_calls=AUTOTUNE)
    if layer is not None:
        dataset = dataset.map(lambda x, y: (layer(x, training=True), y), num_parallel_calls=AUTOTUNE)
    if transform is not None:
        dataset = dataset.map(lambda x, y: (transform(x), y), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def one_hot_labels(dataset: tf.data.Dataset, num_classes: int) -> tf.data.Dataset:
    """Batches with one-hot float labels, for losses on soft labels."""
    return dataset.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=AUTOTUNE)


def with_mixup(dataset: tf.data.Dataset, num_classes: int, alpha: float, seed: int = 0) -> tf.data.Dataset:
    """Mix-up (Zhang et al., 2018) of each batch with a permutation of itself; labels become soft."""
    layer = keras.layers.MixUp(alpha=alpha, seed=seed)

    def mix(images, labels):
        mixed = layer({"images": images, "labels": labels}, training=True)
        return mixed["images"], mixed["labels"]

    return one_hot_labels(dataset, num_classes).map(mix, num_parallel_calls=AUTOTUNE)


def eval_pipeline(split, batch_size: int, *, transform: ImageMap | None = None) -> tf.data.Dataset:
    """Float32 batches of ``(images, labels)`` in order, no augmentation (``transform`` applied to each batch)."""
    dataset = split.batches(batch_size).map(_as_float, num_parallel_calls=AUTOTUNE)
    if transform is not None:
        dataset = dataset.map(lambda x, y: (transform(x), y), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def paired_pipeline(
    split,
    batch_size: int,
    noise: Callable[[tf.Tensor], tf.Tensor] | None,
    *,
    augment: str = "flip_crop",
    seed: int = 0,
    shuffle: bool = True,
) -> tf.data.Dataset:
    """Batches of ``((clean, noisy), labels)``: two views of the same images in the same order.

    The geometric augmentation is applied once and shared by both views; ``noise`` (for example a
    ``keras.layers.RandAugment``) then makes the noisy view. ``noise=None`` gives two equal views.
    """
    base = train_pipeline(split, batch_size, augment=augment, seed=seed, shuffle=shuffle)

    def views(clean, y):
        noisy = clean if noise is None else tf.cast(noise(clean), tf.float32)
        return (clean, noisy), y

    return base.map(views, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
