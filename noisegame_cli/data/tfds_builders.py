"""Any TensorFlow Datasets builder already prepared on disk: ``tfds:NAME[:SPLIT]``.

NAME is a builder name, with its config where it has several (``cifar10_corrupted/fog_5``); it
is read from ``--data-dir`` or TensorFlow Datasets' own directory (``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``) and downloaded and prepared only with ``--download``. The images and
labels are the builder's ``Image`` feature and ``ClassLabel`` feature (``image`` and ``label`` where
there are several; ``--labels`` names another ``ClassLabel``, such as cifar100's ``coarse_label``);
a builder without both is refused. Images must be uint8; builders of variable-size images are
resized to their first image's size unless ``--image-size`` is given.

Without SPLIT the builder's ``train``, ``validation`` and ``test`` splits are the dataset's; where
there is ``train`` but no ``validation``, the last 10 % of ``train`` is the validation split (as for
CIFAR). With SPLIT (any TensorFlow Datasets split spec: ``test``, ``train[:1000]``) that one split
is the test split. Splits stream in the builder's file order (``shuffle_files=False``).

TensorFlow Datasets is the optional extra ``tfds``: ``pip install noisegame[tfds]``.
"""

from __future__ import annotations

from noisegame_cli.data.datasets import VALIDATION_FRACTION, Dataset, LoadOptions, register_dataset
from noisegame_cli.data.sources import StreamSplit, converted_channels, resized
from noisegame_cli.errors import UserError

INSTALL_HINT = "pip install noisegame[tfds]"


@register_dataset(
    "tfds",
    layout=f"tfds:NAME[:SPLIT], a TensorFlow Datasets builder prepared in --data-dir or ~/tensorflow_datasets (--download prepares it; {INSTALL_HINT})",
    argument="NAME[:SPLIT]",
    labels="the ClassLabel feature to use (default: label, or the only one)",
)
def tfds_dataset(argument: str, options: LoadOptions) -> Dataset:
    name, _, split = argument.partition(":")
    if not name:
        raise UserError("dataset tfds needs a builder name: tfds:NAME or tfds:NAME:SPLIT (e.g. tfds:mnist:test)")
    return load_tfds(name, split or None, data_dir=options.data_dir, download=options.download, label_key=options.labels)


def load_tfds(name: str, split: str | None = None, *, data_dir: str | None = None, download: bool = False, label_key: str | None = None) -> Dataset:
    """The builder ``name``'s splits (or its ``split`` alone, as the test split), streamed."""
    tfds = import_tfds()
    builder = _prepared_builder(tfds, name, data_dir, download)
    image_key, label_key = feature_keys(tfds, builder.info.features, label_key, f"tfds:{name}")
    if split is not None:
        splits = {"test": split}
    else:
        splits = default_splits(set(builder.info.splits.keys()))
        if not splits:
            raise UserError(f"tfds:{name} has none of the splits train, validation, test; name one: tfds:{name}:SPLIT")
    declared = tuple(builder.info.features[image_key].shape)
    shape = _image_shape(declared, lambda: _first_image_shape(tfds, builder, next(iter(splits.values())), image_key))
    made = {which: builder_split(tfds, builder, spec, image_key, label_key, shape) for which, spec in splits.items()}
    class_names = tuple(str(label) for label in builder.info.features[label_key].names)
    return Dataset(f"tfds:{name}" + (f":{split}" if split else ""), made.get("train"), made.get("val"), made.get("test"), class_names)


def import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError(f"tfds: datasets need TensorFlow Datasets, which is not installed: {INSTALL_HINT}") from None
    return tfds


def _prepared_builder(tfds, name: str, data_dir: str | None, download: bool):
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(f"TensorFlow Datasets has no dataset {name!r}") from None
    except (ValueError, KeyError) as error:  # an unknown config or version
        raise UserError(f"tfds:{name}: {str(error).splitlines()[0]}") from None
    if builder.is_prepared():
        return builder
    if not download:
        raise UserError(f"tfds:{name} is not prepared in {builder.data_dir}; pass --download to let TensorFlow Datasets download and prepare it")
    try:
        builder.download_and_prepare()
    except Exception as error:  # downloads and preparation fail in many ways
        raise UserError(f"TensorFlow Datasets could not prepare {name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    return builder


def feature_keys(tfds, features, label_key: str | None, what: str) -> tuple[str, str]:
    """The names of the image feature and of the class-label feature (``label_key`` if given)."""
    images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
    labels = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
    if label_key is not None and label_key not in labels:
        raise UserError(f"{what} has no class-label feature {label_key!r}; it has {', '.join(labels) or 'none'}")
    image_key = _preferred(images, "image")
    label_key = label_key or _preferred(labels, "label")
    if image_key is None or label_key is None:
        raise UserError(f"{what} has no single image feature and class-label feature to use (features: {', '.join(features.keys())})")
    dtype = getattr(features[image_key], "np_dtype", None)
    if dtype is not None and dtype.__name__ != "uint8":
        raise UserError(f"{what}: images are {dtype.__name__}, only uint8 images are read")
    return image_key, label_key


def _preferred(keys: list[str], name: str) -> str | None:
    return name if name in keys else (keys[0] if len(keys) == 1 else None)


def default_splits(available: set[str]) -> dict[str, str]:
    """The builder splits that serve as train / val / test (val carved from train where missing)."""
    splits = {}
    if "train" in available:
        splits["train"] = "train"
        if "validation" in available:
            splits["val"] = "validation"
        else:
            kept = int(round(100 * (1 - VALIDATION_FRACTION)))
            splits["train"], splits["val"] = f"train[:{kept}%]", f"train[{kept}%:]"
    elif "validation" in available:
        splits["val"] = "validation"
    if "test" in available:
        splits["test"] = "test"
    return splits


def builder_split(tfds, builder, split: str, image_key: str, label_key: str, shape: tuple[int, int, int]) -> StreamSplit:
    """One split of a prepared builder as a ``StreamSplit`` of images of ``shape``."""
    import tensorflow as tf

    def read(keys):
        return _read(tfds, builder, split, keys)

    read((image_key, label_key))  # a bad split spec fails here, not at the first batch
    whole = tuple(builder.info.features[image_key].shape) == shape

    def image(example):
        picture = example[image_key]
        if not whole:
            picture = converted_channels(resized(picture, shape[:2]), shape[2])
        return tf.ensure_shape(picture, shape)

    def make():
        return read((image_key, label_key)).map(lambda example: (image(example), tf.cast(example[label_key], tf.int64)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def make_labels():
        return read((label_key,)).map(lambda example: tf.cast(example[label_key], tf.int64))

    return StreamSplit(make, make_labels, shape, _split_size(builder, split))


def _read(tfds, builder, split: str, keys):
    """The split's examples with only the features ``keys`` decoded, in file order."""
    try:
        return builder.as_dataset(split=split, shuffle_files=False, decoders=tfds.decode.PartialDecoding({key: True for key in keys}))
    except (ValueError, KeyError, AssertionError) as error:  # an unknown split, or a split spec it cannot read
        raise UserError(f"tfds:{builder.info.full_name} cannot read split {split!r}: {str(error).splitlines()[0]}") from None


def _first_image_shape(tfds, builder, split: str, image_key: str) -> tuple[int, ...]:
    for example in _read(tfds, builder, split, (image_key,)).take(1):
        return tuple(example[image_key].shape)
    raise UserError(f"tfds:{builder.info.full_name} split {split!r} is empty")


def _image_shape(declared, first_shape) -> tuple[int, int, int]:
    """The declared ``(H, W, C)``, with unknown sizes taken from the first image."""
    height, width, channels = (tuple(declared) + (None,) * 3)[:3]
    if channels not in (1, 3):
        raise UserError(f"images of {channels} channels are not read (only 1 or 3)")
    if height is None or width is None:
        height, width = (int(size) for size in first_shape()[:2])
    return int(height), int(width), int(channels)


def _split_size(builder, split: str) -> int | None:
    try:
        return int(builder.info.splits[split].num_examples)
    except Exception:  # split information can be missing (a builder mocked in tests) or unparsable
        return None
