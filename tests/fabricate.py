"""Small files in the exact published formats of each dataset, for the loader tests (nothing can
be downloaded here). Each writer returns what it wrote, so a test can compare the loaded images
with the ones it put into the files."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from noisegame_cli.data.imagenet_classes import imagenet_wnids


def random_images(count: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)


def smooth_images(count: int, size: tuple[int, int], channels: int = 3, seed: int = 0) -> np.ndarray:
    """Images with smooth content (JPEG keeps them close), distinct per image and channel."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(0, 1, size[0]), np.linspace(0, 1, size[1]), indexing="ij")
    out = np.empty((count, *size, channels), np.uint8)
    for index in range(count):
        for channel in range(channels):
            a, b, c = rng.uniform(-1, 1, 3)
            out[index, ..., channel] = np.clip(128 + 100 * (a * rows + b * cols + c * rows * cols), 0, 255).astype(np.uint8)
    return out


def save_image(image: np.ndarray, path: Path, format: str | None = None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(pixels).save(path, format=format)
    return path


# --- CIFAR-100 ------------------------------------------------------------------------------


def cifar100_batch(count: int, seed: int, *, fine=None) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """A CIFAR-100 pickle (train or test): data rows channel-major, fine and coarse labels."""
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, 100, size=count) if fine is None else np.asarray(fine)
    coarse = fine // 5
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    batch = {
        b"filenames": [f"img_{i}.png".encode() for i in range(count)],
        b"batch_label": b"fabricated",
        b"fine_labels": [int(v) for v in fine],
        b"coarse_labels": [int(v) for v in coarse],
        b"data": data,
    }
    return pickle.dumps(batch, protocol=2), data, fine, coarse


def write_cifar100_folder(root: Path, train: int = 20, test: int = 10) -> dict:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    raw_train, data, fine, coarse = cifar100_batch(train, 1)
    (folder / "train").write_bytes(raw_train)
    (folder / "test").write_bytes(cifar100_batch(test, 2)[0])
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)], b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"folder": folder, "data": data, "fine": fine, "coarse": coarse}


def write_cifar100_archive(root: Path, train: int = 20, test: int = 10) -> Path:
    written = write_cifar100_folder(root / "unpacked", train, test)
    archive = root / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(written["folder"], arcname="cifar-100-python")
    return archive


# --- MNIST family ---------------------------------------------------------------------------


def write_mnist_npz(path: Path, train: int = 20, test: int = 10) -> dict:
    arrays = {
        "x_train": random_images(train, (28, 28), 1),
        "y_train": np.arange(train, dtype=np.uint8) % 10,
        "x_test": random_images(test, (28, 28), 2),
        "y_test": (np.arange(test, dtype=np.uint8) * 3) % 10,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0, 0, type 0x08, number of dimensions, big-endian sizes, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_files(folder: Path, train: int = 20, test: int = 10) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train": (random_images(train, (28, 28), 3), np.arange(train, dtype=np.uint8) % 10),
        "test": (random_images(test, (28, 28), 4), (np.arange(test, dtype=np.uint8) + 5) % 10),
    }
    for which, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[which]
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return arrays


def write_mnist_c(root: Path, corruptions=("shot_noise", "zigzag"), count: int = 12, clean: bool = True) -> dict:
    """``mnist_c/<corruption>/{test_images,test_labels,train_images,train_labels}.npy``."""
    written = {}
    names = list(corruptions) + (["identity"] if clean else [])
    for index, name in enumerate(names):
        folder = root / "mnist_c" / name
        folder.mkdir(parents=True)
        images = random_images(count, (28, 28, 1), 10 + index)
        labels = np.arange(count, dtype=np.int64) % 10
        np.save(folder / "test_images.npy", images)
        np.save(folder / "test_labels.npy", labels)
        np.save(folder / "train_images.npy", images[:2])
        np.save(folder / "train_labels.npy", labels[:2])
        written[name] = (images, labels)
    return written


# --- SVHN, STL-10 ---------------------------------------------------------------------------


def write_svhn(folder: Path, train: int = 20, test: int = 10, extra: int = 0) -> dict:
    """``<split>_32x32.mat`` with X [32, 32, 3, N] uint8 and y [N, 1] in 1..10 (10: the digit 0)."""
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for which, count, seed in (("train", train, 1), ("test", test, 2), ("extra", extra, 3)):
        if not count:
            continue
        images = random_images(count, (32, 32, 3), seed)
        digits = np.arange(count) % 10
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(folder / f"{which}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y}, do_compression=True)
        written[which] = (images, digits)
    return written


STL10_CLASS_NAMES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


def write_stl10(root: Path, train: int = 20, test: int = 10) -> dict:
    """``stl10_binary/``: each image's bytes in column-major (Fortran) order of [96, 96, 3]."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    written = {}
    for which, count, seed in (("train", train, 1), ("test", test, 2)):
        images = random_images(count, (96, 96, 3), seed)
        labels = (np.arange(count) % 10 + 1).astype(np.uint8)
        (folder / f"{which}_X.bin").write_bytes(b"".join(image.ravel(order="F").tobytes() for image in images))
        (folder / f"{which}_y.bin").write_bytes(labels.tobytes())
        written[which] = (images, labels.astype(np.int64) - 1)
    (folder / "unlabeled_X.bin").write_bytes(random_images(2, (96, 96, 3), 3).tobytes())
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASS_NAMES) + "\n")
    return written


# --- image folders --------------------------------------------------------------------------


def write_class_tree(root: Path, images_by_class: dict[str, np.ndarray], suffix: str = ".png", format: str | None = None) -> dict[str, list[Path]]:
    """``root/<class>/<class>_<i><suffix>`` for each class's images."""
    return {name: [save_image(image, root / name / f"{name}_{i:03d}{suffix}", format) for i, image in enumerate(images)] for name, images in images_by_class.items()}


def tiny_wnids(count: int = 3) -> list[str]:
    return [f"n0{1443537 + 1000 * k}" for k in range(count)]


def write_tiny_imagenet(root: Path, classes: int = 3, per_class: int = 10, val_per_class: int = 2, size: int = 16) -> dict:
    """``tiny-imagenet-200/``: wnids.txt (unsorted, as released), words.txt, train/<wnid>/images/,
    val/images/ with val_annotations.txt, an unlabelled test/images/."""
    base = root / "tiny-imagenet-200"
    wnids = tiny_wnids(classes)
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")
    (base / "words.txt").write_text("".join(f"{wnid}\tthing {k}\n" for k, wnid in enumerate(wnids)))
    train = {}
    for k, wnid in enumerate(wnids):
        images = smooth_images(per_class, (size, size), seed=k)
        for i, image in enumerate(images):
            save_image(image, base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", "JPEG")
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        train[wnid] = images
    lines, val = [], []
    for index in range(classes * val_per_class):
        wnid = wnids[index % classes]
        save_image(smooth_images(1, (size, size), seed=100 + index)[0], base / "val" / "images" / f"val_{index}.JPEG", "JPEG")
        lines.append(f"val_{index}.JPEG\t{wnid}\t0\t0\t{size - 1}\t{size - 1}\n")
        val.append((f"val_{index}.JPEG", wnid))
    (base / "val" / "val_annotations.txt").write_text("".join(lines))
    save_image(smooth_images(1, (size, size), seed=999)[0], base / "test" / "images" / "test_0.JPEG", "JPEG")
    return {"root": base, "wnids": wnids, "train": train, "val": val}


def write_imagenet_flat(root: Path, wnids: list[str], labels_by_file: list[int], size: tuple[int, int] = (40, 60)) -> Path:
    """Flat ``ILSVRC2012_val_*.JPEG`` files with the devkit's ground truth (1-based ILSVRC2012_IDs)
    and ``meta.mat`` (synsets: IDs in the devkit's own order, not sorted by wnid, plus a non-leaf)."""
    root.mkdir(parents=True, exist_ok=True)
    for index, ilsvrc_id in enumerate(labels_by_file, start=1):
        save_image(smooth_images(1, size, seed=index)[0], root / f"ILSVRC2012_val_{index:08d}.JPEG", "JPEG")
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ilsvrc_id}\n" for ilsvrc_id in labels_by_file))
    write_meta_mat(data / "meta.mat", wnids)
    return root


def write_meta_mat(path: Path, wnids: list[str]) -> Path:
    """The devkit's ``meta.mat``: ILSVRC2012_ID k + 1 is ``wnids[k]``, then a non-leaf synset."""
    import scipy.io

    entries = [(ilsvrc_id, wnid, f"words {wnid}", 0) for ilsvrc_id, wnid in enumerate(wnids, start=1)] + [(len(wnids) + 1, "n00001740", "entity", 3)]
    synsets = np.zeros((len(entries), 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    for row, (ilsvrc_id, wnid, words, children) in enumerate(entries):
        synsets[row, 0] = (np.array([[ilsvrc_id]], np.uint16), wnid, words, np.array([[children]], np.uint8))
    scipy.io.savemat(path, {"synsets": synsets})
    return path


def write_corrupted_folders(root: Path, corruptions=("gaussian_noise", "fog"), severities=(1, 2), classes=None, per_class: int = 2, size: int = 16) -> dict:
    """``<corruption>/<severity>/<class>/<file>.JPEG``, as ImageNet-C and Tiny-ImageNet-C are released
    (``classes``: the wnids of the ImageNet classes 3 and 500 unless given)."""
    classes = (imagenet_wnids()[3], imagenet_wnids()[500]) if classes is None else classes
    written = {}
    for c, corruption in enumerate(corruptions):
        for severity in severities:
            for k, name in enumerate(classes):
                images = smooth_images(per_class, (size, size), seed=100 * c + 10 * severity + k)
                for i, image in enumerate(images):
                    save_image(image, root / corruption / str(severity) / name / f"img_{k}_{i}.JPEG", "JPEG")
                written[(corruption, severity, name)] = images
    return written


# --- flat-colour trees (for models whose logits are known) --------------------------------------


def colour_of(index: int) -> tuple[int, int, int]:
    """A colour for each of the 1000 ImageNet classes: its index's three decimal digits, 25 levels apart."""
    return tuple(25 * digit + 12 for digit in (index % 10, index // 10 % 10, index // 100))


def jpeg(colour, size=(12, 16)) -> bytes:
    """A small JPEG of one flat colour (JPEG keeps a flat colour within a level or two)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((*size, 3), colour, np.uint8)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_tree(root: Path, files: dict[str, dict[str, bytes]]) -> Path:
    """``root/<class folder>/<file name>`` holding the given bytes."""
    for folder, named in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (root / folder / name).write_bytes(data)
    return root


def whole_release(root: Path, folders, file_name: str) -> Path:
    """One image in every class folder (the same bytes, as writing 1000 JPEGs would be slow)."""
    picture = jpeg((90, 90, 90))
    return write_tree(root, {folder: {file_name: picture} for folder in folders})


def write_colour_classes(root: Path, classes=(7, 500, 999)) -> Path:
    """``root/<wnid>/`` for each ImageNet class ``k`` of ``classes``: ``ILSVRC2012_val_00000001.JPEG`` in
    k's colour (a colour classifier gets it right) and ``..._00000002.JPEG`` in the next class's (it gets it wrong)."""
    wnids = imagenet_wnids()
    return write_tree(root, {
        wnids[k]: {"ILSVRC2012_val_00000001.JPEG": jpeg(colour_of(k)), "ILSVRC2012_val_00000002.JPEG": jpeg(colour_of(classes[(place + 1) % len(classes)]))}
        for place, k in enumerate(classes)
    })  # fmt: skip


def write_cifar101(folder: Path, count: int = 20, version: str = "v6", *, images=None, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """``cifar10.1_<version>_data.npy`` (uint8 [N, 32, 32, 3]) and ``..._labels.npy`` (int32, as released)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8) if images is None else images
    labels = (np.arange(len(images)) % 10).astype(np.int32) if labels is None else labels
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"cifar10.1_{version}_data.npy", images)
    np.save(folder / f"cifar10.1_{version}_labels.npy", labels)
    return images, labels
