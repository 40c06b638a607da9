"""Dataset splits as sources of examples: held in memory, or streamed from image files.

Every split gives uint8 images ``[H, W, C]`` in 0..255 and int64 labels, in a fixed order, through
the same methods, so pipelines, evaluations and the corruption engine never ask where they live:

- ``examples(shuffle, seed)``: a ``tf.data.Dataset`` of single ``(image, label)`` pairs;
- ``batches(batch_size)``: batches in order (evaluation);
- ``arrays(count)``: the first ``count`` examples as NumPy arrays (figures, small sets);
- ``head(count)``: the first ``count`` examples as a split of the same kind; ``part(start, stop)``
  examples ``start .. stop - 1`` (a shard's);
- ``labels`` (always in memory: one integer per example), ``image_shape`` and ``len()``;
- ``with_channels(channels)``, ``with_image_size(size)``, ``with_labels(labels)``: the same
  examples converted (grey to colour and back, resized) or relabelled.

``Split`` holds NumPy arrays or ``RowFile`` views of ``.npy`` files (read one batch at a time); ``FileSplit``
holds file paths and decodes them in ``tf.data`` with parallel, order-preserving maps (TensorFlow's
decoders, or Pillow's for the few files TensorFlow cannot read; ``scan_image_files`` decides which
before anything runs, and leaves out damaged files);
``StreamSplit`` wraps a ``tf.data`` pipeline that reads its examples in a fixed order (a
TensorFlow Datasets split), and reads its labels only when they are asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from noisegame_cli.errors import UserError

# How a FileSplit brings images to its size: ``stretch`` resizes to the size (bilinear);
# ``centre_crop`` resizes the short side to 256/224 of the size and crops the centre, as ImageNet
# evaluation (and the ImageNet-C generator) prepares validation images.
RESIZE_MODES = ("stretch", "centre_crop")
IMAGE_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"RIFF": "WebP",  # with "WEBP" at byte 8
}
# The bytes read from the end of each file to see that it is whole (a JPEG's end-of-image marker may
# be followed by a few bytes of padding).
TAIL_BYTES = 1024
SKIPPED_SHOWN = 10  # skipped files named one per line; the rest are counted
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# ITU-R 601 luma: how every split turns colour into grey, so in-memory and streamed splits agree.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
CONVERSION_CHUNK = 1024  # images converted at a time when a Split changes channels or size
STREAM_SHUFFLE_BUFFER = 10_000  # examples a StreamSplit shuffles among (it has no random access)
# PIL modes that hold one grey channel (everything else is read as colour).
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _tf():
    import tensorflow as tf

    return tf


@dataclass(frozen=True)
class RowFile:
    """Rows ``[start, start + len)`` of an array stored in a file, read on demand with plain file reads.

    Stands in for a memory-mapped array: pages of a mapping stay resident as long as anything holds
    the mapping (tf.data keeps its map functions, and so the arrays they read, for the life of the
    pipeline), so a corruption benchmark read through memmaps grows to the size of all its files.
    Reading rows into fresh buffers keeps resident memory at the rows in use."""

    path: Path
    offset: int  # bytes from the start of the file to this view's first row
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def open(cls, path: Path) -> "RowFile":
        """A view of every row of a C-ordered ``.npy`` file (its header parsed by NumPy)."""
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        if not mapped.flags.c_contiguous:
            return np.asarray(mapped)  # Fortran order: rare and small in practice; read it whole
        view = cls(Path(path), int(mapped.offset), tuple(mapped.shape), mapped.dtype)
        del mapped
        return view

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[int(index) : int(index) + 1].read()[0]
        if not isinstance(index, slice) or index.step not in (None, 1):
            return self.read()[index]
        start, stop, _ = index.indices(len(self))
        stop = max(start, stop)
        return RowFile(self.path, self.offset + start * self.row_bytes, (stop - start, *self.shape[1:]), self.dtype)

    def read(self) -> np.ndarray:
        count = int(np.prod(self.shape, dtype=np.int64))
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            values = np.fromfile(file, dtype=self.dtype, count=count)
        if values.size != count:
            raise UserError(f"{self.path} is truncated: {values.size} of {count} values after byte {self.offset}")
        return values.reshape(self.shape)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        values = self.read()
        return values if dtype is None else values.astype(dtype)


def _read_in_batches(images) -> bool:
    """Whether a split's images live in a file, to be read one batch at a time."""
    return isinstance(images, (np.memmap, RowFile))


@dataclass(frozen=True)
class Split:
    """A split held as arrays: uint8 images ``[N, H, W, C]`` (possibly memory-mapped) and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def in_memory(self) -> bool:
        return True

    def head(self, count: int | None) -> "Split":
        return self if count is None else Split(self.images[:count], self.labels[:count])

    def part(self, start: int, stop: int) -> "Split":
        return Split(self.images[start:stop], self.labels[start:stop])

    def arrays(self, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        part = self.head(count)
        return np.asarray(part.images), np.asarray(part.labels, dtype=np.int64)

    def with_labels(self, labels: np.ndarray) -> "Split":
        return Split(self.images, np.asarray(labels, dtype=np.int64))

    def with_channels(self, channels: int) -> "Split":
        """Grey images repeated to 3 channels, or colour ones turned grey; converted chunk by chunk
        into memory (a memory-mapped split becomes an in-memory one)."""
        if self.image_shape[-1] == channels:
            return self
        convert = (lambda part: np.repeat(part, 3, axis=-1)) if channels == 3 else grey_array
        return Split(_converted(self.images, convert), self.labels)

    def with_image_size(self, size: tuple[int, int]) -> "Split":
        """The images resized (bilinear, antialiased, as ``FileSplit`` resizes), chunk by chunk into memory."""
        if tuple(self.image_shape[:2]) == tuple(size):
            return self
        return Split(_converted(self.images, lambda part: resized_batch(part, size)), self.labels)

    def examples(self, *, shuffle: bool = False, seed: int = 0):
        tf = _tf()
        if _read_in_batches(self.images):
            # One batch of the file at a time.
            return self.batches(1024).unbatch().shuffle(len(self), seed=seed) if shuffle else self.batches(1024).unbatch()
        dataset = tf.data.Dataset.from_tensor_slices((self.images, self.labels.astype(np.int64)))
        return dataset.shuffle(len(self), seed=seed, reshuffle_each_iteration=True) if shuffle else dataset

    def batches(self, batch_size: int):
        tf = _tf()
        if not _read_in_batches(self.images):
            return self.examples().batch(batch_size)
        count, shape = len(self), self.image_shape
        starts = tf.data.Dataset.range(0, count, batch_size)

        def read(start):
            stop = min(int(start) + batch_size, count)
            return np.ascontiguousarray(np.asarray(self.images[int(start) : stop])), self.labels[int(start) : stop].astype(np.int64)

        def load(start):
            images, labels = tf.numpy_function(read, [start], (tf.uint8, tf.int64), stateful=False)
            return tf.ensure_shape(images, (None, *shape)), tf.ensure_shape(labels, (None,))

        return starts.map(load, num_parallel_calls=2, deterministic=True)


@dataclass(frozen=True)
class FileSplit:
    """A split streamed from image files (JPEG, PNG, BMP, GIF), decoded and resized in ``tf.data``.

    ``image_size`` is ``(height, width)``; ``channels`` 1 or 3 (grey files are repeated to 3,
    colour files turned grey for 1).
    """

    paths: tuple[str, ...]
    labels: np.ndarray
    image_size: tuple[int, int]
    channels: int = 3
    resize: str = "stretch"
    pillow: tuple[bool, ...] = ()  # per path: decoded with Pillow (a format TensorFlow cannot read); () for none
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why) of the files left out as damaged or unreadable

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} files but {len(self.labels)} labels")
        if self.pillow and len(self.pillow) != len(self.paths):
            raise ValueError(f"{len(self.paths)} files but {len(self.pillow)} decoder flags")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (*self.image_size, self.channels)

    @property
    def in_memory(self) -> bool:
        return False

    def head(self, count: int | None) -> "FileSplit":
        return self if count is None else replace(self, paths=self.paths[:count], labels=self.labels[:count], pillow=self.pillow[:count])

    def part(self, start: int, stop: int) -> "FileSplit":
        return replace(self, paths=self.paths[start:stop], labels=self.labels[start:stop])

    def with_labels(self, labels: np.ndarray) -> "FileSplit":
        return replace(self, labels=np.asarray(labels, dtype=np.int64))

    def with_channels(self, channels: int) -> "FileSplit":
        return replace(self, channels=channels)

    def with_image_size(self, size: tuple[int, int]) -> "FileSplit":
        return replace(self, image_size=tuple(size))

    def decode(self, path, pillow=False):
        """One file's image as uint8 ``[H, W, C]`` at this split's size (a graph function); ``pillow``
        (a boolean tensor) decodes it with Pillow instead of TensorFlow."""
        tf = _tf()

        def with_tensorflow():
            return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

        def with_pillow():
            return tf.ensure_shape(tf.numpy_function(pillow_rgb, [path], tf.uint8, stateful=False), (None, None, 3))

        image = tf.cond(pillow, with_pillow, with_tensorflow) if self.pillow else with_tensorflow()
        image = resized(image, self.image_size, self.resize)
        return tf.ensure_shape(converted_channels(image, self.channels), self.image_shape)

    def examples(self, *, shuffle: bool = False, seed: int = 0):
        tf = _tf()
        flags = list(self.pillow) or [False] * len(self.paths)
        dataset = tf.data.Dataset.from_tensor_slices((list(self.paths), flags, self.labels.astype(np.int64)))
        if shuffle:
            dataset = dataset.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return dataset.map(lambda path, pillow, label: (self.decode(path, pillow), label), num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True)  # fmt: skip

    def batches(self, batch_size: int):
        return self.examples().batch(batch_size)

    def arrays(self, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        part = self.head(count)
        images = [image.numpy() for image, _ in part.examples()]
        empty = np.zeros((0, *self.image_shape), np.uint8)
        return (np.stack(images) if images else empty), np.asarray(part.labels, dtype=np.int64)


@dataclass(frozen=True)
class StreamSplit:
    """A split read through a ``tf.data`` pipeline that gives its examples in a fixed order.

    ``make()`` starts the pipeline of single ``(image, label)`` pairs (uint8 ``[H, W, C]`` of
    ``image_shape``, int64); ``make_labels()`` one of the labels alone, cheaper because it leaves
    the images undecoded. ``labels`` are read (one pass of ``make_labels``) the first time they are
    asked for; ``count`` is the number of examples where the source knows it without a pass.
    Shuffling draws from a buffer of ``STREAM_SHUFFLE_BUFFER`` examples, as there is no random access.
    """

    make: Callable[[], Any]
    make_labels: Callable[[], Any]
    image_shape: tuple[int, int, int]
    count: int | None = None

    def __len__(self) -> int:
        return self.count if self.count is not None else len(self.labels)

    @cached_property
    def labels(self) -> np.ndarray:
        # not larger batches: after a parallel map, tf.data fuses map and batch and a batch of 65536 took
        # 3 s to start on 9 examples (4096: 0.2 s)
        parts = [batch.numpy() for batch in self.make_labels().batch(4096)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    @property
    def in_memory(self) -> bool:
        return False

    def head(self, count: int | None) -> "StreamSplit":
        if count is None:
            return self
        known = None if self.count is None else min(count, self.count)
        return StreamSplit(lambda: self.make().take(count), lambda: self.make_labels().take(count), self.image_shape, known)

    def part(self, start: int, stop: int) -> "StreamSplit":
        """Examples ``start .. stop - 1``, read past the first ``start`` (a stream has no random access)."""
        known = None if self.count is None else max(0, min(stop, self.count) - start)
        return StreamSplit(lambda: self.make().skip(start).take(stop - start), lambda: self.make_labels().skip(start).take(stop - start),
                           self.image_shape, known)  # fmt: skip

    def examples(self, *, shuffle: bool = False, seed: int = 0):
        dataset = self.make()
        return dataset.shuffle(STREAM_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True) if shuffle else dataset

    def batches(self, batch_size: int):
        return self.make().batch(batch_size)

    def arrays(self, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(image.numpy(), int(label)) for image, label in self.head(count).make()]
        if not pairs:
            return np.zeros((0, *self.image_shape), np.uint8), np.zeros(0, np.int64)
        return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs], np.int64)

    def with_labels(self, labels: np.ndarray) -> "StreamSplit":
        tf = _tf()
        labels = np.asarray(labels, dtype=np.int64)
        images = lambda: self.make().map(lambda image, label: image)  # noqa: E731
        return StreamSplit(
            lambda: tf.data.Dataset.zip(images(), tf.data.Dataset.from_tensor_slices(labels)),
            lambda: tf.data.Dataset.from_tensor_slices(labels),
            self.image_shape,
            len(labels),
        )

    def with_channels(self, channels: int) -> "StreamSplit":
        if self.image_shape[-1] == channels:
            return self
        return self.mapped(lambda image: converted_channels(image, channels), (*self.image_shape[:2], channels))

    def with_image_size(self, size: tuple[int, int]) -> "StreamSplit":
        if tuple(self.image_shape[:2]) == tuple(size):
            return self
        return self.mapped(lambda image: resized(image, size), (*size, self.image_shape[-1]))

    def mapped(self, function: Callable, image_shape: tuple[int, int, int]) -> "StreamSplit":
        """The same examples with ``function`` (a graph function) applied to each image."""
        tf = _tf()

        def make():
            pairs = self.make().map(lambda image, label: (function(image), label), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            return pairs.map(lambda image, label: (tf.ensure_shape(image, image_shape), label))

        return StreamSplit(make, self.make_labels, tuple(image_shape), self.count)


def converted_channels(image, channels: int):
    """A uint8 image ``[..., H, W, C]`` with 1 or 3 channels brought to ``channels`` (a graph function)."""
    tf = _tf()
    have = image.shape[-1]
    if have == channels:
        return image
    if channels == 3:
        return tf.repeat(image, 3, axis=-1)
    pixels = tf.cast(image, tf.float32)
    luma = pixels[..., 0] * LUMA_WEIGHTS[0] + pixels[..., 1] * LUMA_WEIGHTS[1] + pixels[..., 2] * LUMA_WEIGHTS[2]
    return tf.cast(tf.clip_by_value(tf.round(luma), 0, 255), tf.uint8)[..., None]


def grey_array(images: np.ndarray) -> np.ndarray:
    """Colour uint8 images ``[..., 3]`` as grey ``[..., 1]`` (the same arithmetic as ``converted_channels``)."""
    pixels = np.asarray(images, dtype=np.float32)
    weights = [np.float32(weight) for weight in LUMA_WEIGHTS]
    luma = pixels[..., 0] * weights[0] + pixels[..., 1] * weights[1] + pixels[..., 2] * weights[2]
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def resized_batch(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 images ``[N, H, W, C]`` stretched to ``size`` as ``resized`` does one image."""
    return resized(np.asarray(images), tuple(size)).numpy()


def _converted(images: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``convert`` applied to ``images`` a chunk at a time (a memory-mapped array is read once, in parts)."""
    parts = [convert(np.asarray(images[start : start + CONVERSION_CHUNK])) for start in range(0, len(images), CONVERSION_CHUNK)]
    if parts:
        return np.concatenate(parts)
    empty = convert(np.zeros((1, *images.shape[1:]), np.uint8))
    return empty[:0]


def resized(image, size: tuple[int, int], mode: str = "stretch"):
    """A uint8 image ``[H, W, C]`` (or a batch of them, for ``stretch``) brought to ``size`` (see
    ``RESIZE_MODES``); unchanged when it already has it."""
    tf = _tf()
    height, width = size
    if mode == "centre_crop":
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        short = tf.cast(tf.round(min(height, width) * 256.0 / 224.0), tf.float32)
        scale = short / tf.reduce_min(shape)
        target = tf.cast(tf.round(shape * scale), tf.int32)
        image = tf.image.resize(image, target, method="bilinear", antialias=True)
        image = tf.image.resize_with_crop_or_pad(image, height, width)
    else:
        same = tf.reduce_all(tf.equal(tf.shape(image)[-3:-1], [height, width]))
        image = tf.cond(same, lambda: tf.cast(image, tf.float32), lambda: tf.image.resize(image, (height, width), method="bilinear", antialias=True))
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (other files are ignored)."""
    return sorted(path for path in Path(folder).iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def _whole(kind: str, start: bytes, end: bytes, size: int) -> bool:
    """Whether a file of ``kind`` that starts with ``start`` and ends with ``end`` (its last bytes) is
    whole: a JPEG's end-of-image marker, a PNG's IEND chunk, a GIF's trailer, the size a BMP or WebP
    header declares."""
    if kind == "JPEG":
        return b"\xff\xd9" in end
    if kind == "PNG":
        return b"IEND" in end[-32:]
    if kind == "GIF":
        return end.rstrip(b"\x00").endswith(b";")
    if kind == "BMP":
        return size >= int.from_bytes(start[2:6], "little")
    return size >= int.from_bytes(start[4:8], "little") + 8  # WebP: the RIFF chunk's size


def image_file_problem(path: str | os.PathLike) -> tuple[str | None, bool]:
    """Why the image file at ``path`` cannot be used (None when it can), and whether Pillow must decode
    it (a format TensorFlow does not read, such as TIFF).

    TensorFlow's formats (JPEG, PNG, BMP, GIF, WebP, recognised by their first bytes whatever the
    file's name says) are checked from their first and last bytes only, so the scan is cheap enough
    for every file of a large set; TensorFlow decodes every colour mode of them (CMYK JPEGs, 16-bit and
    palette PNGs). Other files are decoded by Pillow once, here."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(16)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            end = handle.read()
    except OSError as error:
        return f"cannot be read ({error.strerror or error})", False
    if not start:
        return "empty file", False
    kind = next((name for signature, name in IMAGE_SIGNATURES.items() if start.startswith(signature)), None)
    if kind == "WebP" and start[8:12] != b"WEBP":
        kind = None
    if kind is not None:
        return (None if _whole(kind, start, end, size) else f"truncated {kind} file"), False
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # Pillow raises many types for what it cannot read
        return f"not an image Pillow or TensorFlow can read ({type(error).__name__}: {error})".splitlines()[0], False
    return None, True


def scan_image_files(paths: Sequence[str | os.PathLike], *, strict: bool = False) -> tuple[list[bool], list[bool], tuple[tuple[str, str], ...]]:
    """For each file whether it is kept and whether Pillow decodes it, and the ``(path, why)`` of every
    file left out as damaged or unreadable; with ``strict``, a ``UserError`` naming the first of those."""
    usable, pillow, skipped = [], [], []
    for path in paths:
        problem, needs_pillow = image_file_problem(path)
        if problem is not None and strict:
            raise UserError(f"{path}: {problem} (--strict refuses a dataset with a damaged image; without it the file is skipped)")
        usable.append(problem is None)
        if problem is None:
            pillow.append(needs_pillow)
        else:
            skipped.append((str(path), problem))
    return usable, pillow, tuple(skipped)


def report_skipped(skipped: Sequence[tuple[str, str]], total: int, where: str, say=print) -> None:
    """One warning line per skipped file (the first ``SKIPPED_SHOWN``), then their count."""
    if not skipped:
        return
    for path, problem in skipped[:SKIPPED_SHOWN]:
        say(f"warning: skipped {path}: {problem}")
    more = f" ({len(skipped) - SKIPPED_SHOWN} more not named)" if len(skipped) > SKIPPED_SHOWN else ""
    say(f"warning: skipped {len(skipped)} of {total} image files of {where} as damaged or unreadable{more}; --strict refuses them")


def pillow_rgb(path) -> np.ndarray:
    """An image file decoded by Pillow as uint8 RGB ``[H, W, 3]`` (16-bit and float images scaled to 8 bits)."""
    from PIL import Image

    with Image.open(path.decode() if isinstance(path, bytes) else path) as image:
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            top = 1.0 if image.mode == "F" else 65535.0
            grey = np.clip(np.rint(np.asarray(image, np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=-1)
        return np.asarray(image.convert("RGB"), np.uint8)


def first_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of one image file, read from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise UserError(f"cannot read image {path}: {error}") from None
    return height, width


def first_image_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(height, width, channels)`` of one image file, read from its header: 1 channel for grey
    files, 3 for every other mode (colour, palette, with or without alpha)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            (width, height), mode = image.size, image.mode
    except (OSError, UnidentifiedImageError) as error:
        raise UserError(f"cannot read image {path}: {error}") from None
    return height, width, 1 if mode in GREY_MODES else 3
