"""Streamed image-folder datasets (folder:, tiny-imagenet, imagenet, imagenet-c, tiny-imagenet-c) on
fabricated files, and the writers of the corrupted layouts (folders of JPEGs, stacked .npy files)."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest

import fabricate
from helpers import imagenet_classifier, known_logits, save
from noisegame_cli.data import FileSplit, Split, load_corrupted_dataset, load_dataset
from noisegame_cli.data.cifar10c import corruption_file, corruption_file_complete, load_corrupted, write_corruption_file
from noisegame_cli.data.imagenet_c import folder_part_complete, output_file_names, part_folder, save_jpeg, write_folder_part
from noisegame_cli.data.imagenet_classes import imagenet_wnids
from noisegame_cli.data.sources import grey_array
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation.clean import evaluate
from noisegame_cli.models import load_checked


def raises(message: str):
    return pytest.raises(UserError, match=re.escape(message))


def batches_of(split, size=4):
    pairs = [(x.numpy(), y.numpy()) for x, y in split.batches(size)]
    return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])


@pytest.fixture
def split_folder(tmp_path):
    """folder:PATH with train/, val/ and test/, PNG files (lossless), three classes, 8x10 pixels."""
    images = {}
    for which, count in (("train", 4), ("val", 2), ("test", 3)):
        images[which] = {name: fabricate.random_images(count, (8, 10, 3), seed=hash((which, name)) % 1000) for name in ("dog", "cat", "bird")}
        fabricate.write_class_tree(tmp_path / which, images[which])
    return tmp_path, images


def test_folder_streams_the_same_batches_as_the_arrays_in_memory(split_folder):
    root, images = split_folder
    data = load_dataset(f"folder:{root}", channels=None)
    assert isinstance(data.test, FileSplit) and data.class_names == ("bird", "cat", "dog")
    assert data.image_shape == (8, 10, 3) and (len(data.train), len(data.val), len(data.test)) == (12, 6, 9)
    # class-interleaved order: bird_000, cat_000, dog_000, bird_001, ...
    in_memory = Split(
        np.stack([images["test"][name][i] for i in range(3) for name in data.class_names]),
        np.array([label for _ in range(3) for label in range(3)]),
    )
    streamed_x, streamed_y = batches_of(data.test)
    memory_x, memory_y = batches_of(in_memory)
    assert np.array_equal(streamed_x, memory_x) and np.array_equal(streamed_y, memory_y)
    assert [len(y) for _, y in data.test.batches(4)] == [len(y) for _, y in in_memory.batches(4)]
    assert np.array_equal(data.test.arrays(5)[0], memory_x[:5])


def test_folder_limit_keeps_the_classes_balanced(split_folder):
    root, _ = split_folder
    data = load_dataset(f"folder:{root}", limit=6)
    assert list(data.train.labels) == [0, 1, 2, 0, 1, 2] and len(data.val) == 6


def test_folder_channels_and_size_as_asked(split_folder):
    root, images = split_folder
    grey = load_dataset(f"folder:{root}", channels=1)
    assert grey.image_shape == (8, 10, 1)
    colour = np.stack([images["test"][name][0] for name in ("bird", "cat", "dog")])
    assert np.array_equal(grey.test.arrays(3)[0], grey_array(colour))  # streamed grey == in-memory grey
    assert np.array_equal(grey.test.arrays(3)[0], load_dataset(f"folder:{root}").test.with_channels(1).arrays(3)[0])
    larger = load_dataset(f"folder:{root}", image_size=(16, 12))
    assert larger.image_shape == (16, 12, 3) and larger.train.arrays(2)[0].shape == (2, 16, 12, 3)
    memory = Split(colour, np.zeros(3, np.int64)).with_image_size((16, 12)).images
    assert np.array_equal(larger.test.arrays(3)[0], memory)  # the same resize in memory and streamed


def test_grey_folders_stay_grey_unless_asked(tmp_path):
    fabricate.write_class_tree(tmp_path, {name: fabricate.random_images(5, (6, 6, 1), seed=k) for k, name in enumerate("ab")})
    grey = load_dataset(f"folder:{tmp_path}")
    assert grey.image_shape == (6, 6, 1)
    first = grey.train.arrays(1)[0]
    colour = load_dataset(f"folder:{tmp_path}", channels=3).train.arrays(1)[0]
    assert colour.shape == (1, 6, 6, 3) and np.array_equal(colour, np.repeat(first, 3, axis=-1))


def test_folder_without_val_holds_out_a_seeded_tenth_of_train(tmp_path):
    fabricate.write_class_tree(tmp_path / "train", {name: fabricate.random_images(10, (4, 4, 3), seed=k) for k, name in enumerate("abc")})
    data = load_dataset(f"folder:{tmp_path}")
    assert data.test is None and (len(data.train), len(data.val)) == (27, 3)
    assert sorted(data.val.labels) == [0, 1, 2]
    assert not set(data.val.paths) & set(data.train.paths)
    assert load_dataset(f"folder:{tmp_path}").val.paths == data.val.paths  # fixed, not drawn anew
    with raises("has no test split"):
        data.split("test")


def test_one_class_tree_is_split_80_10_10(tmp_path):
    files = fabricate.write_class_tree(tmp_path, {name: fabricate.random_images(10, (4, 4, 3), seed=k) for k, name in enumerate(["x", "y"])}, suffix=".bmp", format="BMP")
    data = load_dataset(f"folder:{tmp_path}")
    assert (len(data.train), len(data.val), len(data.test)) == (16, 2, 2)
    every = sorted(data.train.paths + data.val.paths + data.test.paths)
    assert every == sorted(str(path) for paths in files.values() for path in paths)
    assert load_dataset(f"folder:{tmp_path}").test.paths == data.test.paths


def test_jpeg_gif_and_sizes_from_the_first_image(tmp_path):
    for index in range(2):
        fabricate.save_image(fabricate.smooth_images(1, (12, 9), seed=index)[0], tmp_path / "train" / "a" / f"{index}.jpg", "JPEG")
    fabricate.save_image(fabricate.smooth_images(1, (20, 20), seed=2)[0], tmp_path / "train" / "b" / "two.gif", "GIF")
    fabricate.save_image(fabricate.smooth_images(1, (7, 7), seed=3)[0], tmp_path / "train" / "b" / "four.jpeg", "JPEG")
    data = load_dataset(f"folder:{tmp_path}")
    assert data.image_shape == (12, 9, 3)  # the first training image's; the others are resized to it
    images = np.concatenate([data.train.arrays()[0], data.val.arrays()[0]])
    assert images.shape == (4, 12, 9, 3) and images.std() > 10
    relabelled = data.train.with_labels(np.array([1, 0]))
    assert list(relabelled.arrays()[1]) == [1, 0] and list(data.train.labels) == [0, 1]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: fabricate.save_image(np.zeros((8, 10, 3), np.uint8), root / "val" / "fish" / "f.png"), "val has other classes than the training split (extra fish)"),
        (lambda root: shutil.rmtree(root / "test" / "cat"), "test has other classes than the training split (missing cat)"),
        (lambda root: [path.unlink() for path in (root / "test" / "cat").iterdir()], "class folder"),
        (lambda root: (root / "train" / "dog" / "dog_001.png").write_bytes(b"plain text"), "dog_001.png: not an image Pillow or TensorFlow can read"),
        (lambda root: (root / "train" / "dog" / "dog_002.png").write_bytes(b""), "dog_002.png: empty file (--strict refuses"),
    ],
)
def test_folder_bad_layouts(split_folder, damage, message):
    root, _ = split_folder
    damage(root)
    with raises(message):
        load_dataset(f"folder:{root}", strict=True)


def test_folder_empty_class_and_missing_path(tmp_path):
    fabricate.write_class_tree(tmp_path / "train", {"a": fabricate.random_images(3, (4, 4, 3))})
    (tmp_path / "train" / "b").mkdir()
    (tmp_path / "train" / "b" / "notes.txt").write_text("no image here")
    with raises(f"class folder {tmp_path / 'train' / 'b'} holds no JPEG, PNG, BMP or GIF image"):
        load_dataset(f"folder:{tmp_path}")
    with raises("no such folder"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")
    with raises("needs a path"):
        load_dataset("folder")


def test_one_class_tree_needs_three_images_a_class(tmp_path):
    fabricate.write_class_tree(tmp_path, {"a": fabricate.random_images(5, (4, 4, 3)), "b": fabricate.random_images(2, (4, 4, 3))})
    with raises("has 2 image(s); dividing it into 3 splits needs at least 3"):
        load_dataset(f"folder:{tmp_path}")


# --- Tiny ImageNet -----------------------------------------------------------------------------


def test_tiny_imagenet_official_val_is_test_and_a_tenth_of_train_is_val(tmp_path):
    written = fabricate.write_tiny_imagenet(tmp_path, classes=3, per_class=10, val_per_class=2)
    data = load_dataset("tiny-imagenet", tmp_path)
    assert data.class_names == tuple(sorted(written["wnids"])) and data.image_shape == (16, 16, 3)
    assert (len(data.train), len(data.val), len(data.test)) == (27, 3, 6)
    by_file = {name: data.class_names.index(wnid) for name, wnid in written["val"]}
    assert [by_file[path.rsplit("/", 1)[1]] for path in data.test.paths] == list(data.test.labels)
    image = data.train.arrays(1)[0][0].astype(int)
    original = written["train"][data.class_names[0]]
    assert min(np.abs(image - candidate.astype(int)).mean() for candidate in original) < 4  # JPEG of one of them


def test_tiny_imagenet_from_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with raises("Tiny ImageNet is not in the Keras cache"):
        load_dataset("tiny-imagenet")
    fabricate.write_tiny_imagenet(tmp_path / "datasets")
    assert load_dataset("tiny-imagenet").num_classes == 3


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda base: (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn09999999\t0\t0\t1\t1\n"), "line 1: expected '<file>\\t<wnid of wnids.txt>"),
        (lambda base: (base / "val" / "images" / "val_1.JPEG").unlink(), "lists 6 images but"),
        (lambda base: (base / "train" / "n09999999" / "images").mkdir(parents=True), "has other classes than wnids.txt (extra n09999999)"),
        (lambda base: (base / "wnids.txt").write_text("n01443537\nn01443537\n"), "lists a wnid twice"),
        (lambda base: (base / "val" / "images" / "val_2.JPEG").write_bytes(b"GIF9 nonsense"), "val_2.JPEG: not an image Pillow or TensorFlow can read"),
    ],
)
def test_tiny_imagenet_bad_files(tmp_path, damage, message):
    written = fabricate.write_tiny_imagenet(tmp_path)
    damage(written["root"])
    with raises(message):
        load_dataset("tiny-imagenet", tmp_path, strict=True)


# --- ImageNet validation -------------------------------------------------------------------------


WNIDS = imagenet_wnids()
PRESENT = (7, 500, 999)  # write_colour_classes' ImageNet classes: numbered among the folders present, they would be 0, 1, 2
TRUTH = "ILSVRC2012_validation_ground_truth.txt"
DEVKIT = ("ILSVRC2012_devkit_t12", "data")


def accuracy_of_the_imagenet_colour_classifier(tmp_path, data, split) -> float:
    """A model of the 1000 classes (saved, loaded and checked against ``data`` as every command does)
    evaluated on ``split``; checked against the accuracy computed directly."""
    model = load_checked(save(imagenet_classifier(data.image_shape), tmp_path / "model"), data)
    accuracy = evaluate(model, split, batch_size=4)["accuracy"]
    images, labels = split.arrays()
    direct = np.argmax(known_logits(images, [fabricate.colour_of(k) for k in range(1000)]), axis=1)
    assert accuracy == pytest.approx(np.mean(direct == labels))
    return accuracy


def test_imagenet_class_folders_are_centre_cropped_to_224(tmp_path):
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[:, :12] = (255, 0, 0)  # the outer 12 columns on each side fall outside a centre crop
    picture[:, 12:48] = (0, 255, 0)
    picture[:, 48:] = (0, 0, 255)
    for k in (500, 7):
        fabricate.save_image(picture, tmp_path / "val" / WNIDS[k] / "ILSVRC2012_val_1.png")
    data = load_dataset("imagenet:partial", tmp_path)
    assert data.train is None and data.val is None and data.class_names == WNIDS and list(data.test.labels) == [7, 500]
    image = data.test.arrays(1)[0][0]
    assert image.shape == (224, 224, 3)
    assert image[..., 1].min() > 200 and image[..., 0].max() < 40 and image[..., 2].max() < 40
    assert load_dataset("imagenet:partial", tmp_path, image_size=(32, 32)).test.arrays(1)[0].shape == (1, 32, 32, 3)


def test_a_partial_imagenet_copy_is_refused_unless_named_partial(tmp_path):
    fabricate.write_colour_classes(tmp_path / "val")
    with pytest.raises(UserError) as error:
        load_dataset("imagenet", tmp_path)
    assert str(error.value) == (f"{tmp_path / 'val'} holds 3 of the 1000 class folders of the ImageNet validation set; "
                                f"missing {', '.join(WNIDS[:3])}, ...; name the dataset imagenet:partial to evaluate the classes present")  # fmt: skip
    data = load_dataset("imagenet:partial", tmp_path)
    assert data.name == "imagenet:partial" and data.num_classes == 1000 and data.class_names == WNIDS
    assert [WNIDS[label] for label in data.test.labels] == [path.split("/")[-2] for path in data.test.paths]
    assert sorted(set(data.test.labels)) == list(PRESENT)


def test_a_1000_class_model_scores_a_partial_imagenet_copy_by_the_table(tmp_path):
    fabricate.write_colour_classes(tmp_path / "images")  # --data-dir holding the class folders itself
    data = load_dataset("imagenet:partial", tmp_path / "images")
    assert accuracy_of_the_imagenet_colour_classifier(tmp_path, data, data.test) == pytest.approx(3 / 6)  # every own-colour image


@pytest.mark.parametrize("spec", ["imagenet", "imagenet:partial"])
def test_a_folder_that_is_not_an_imagenet_class_is_an_error(tmp_path, spec):
    fabricate.write_colour_classes(tmp_path / "val")
    fabricate.write_tree(tmp_path / "val", {"n01": {"a.JPEG": fabricate.jpeg((0, 0, 0))}})
    with raises(f"{tmp_path / 'val' / 'n01'} is not a class folder of the ImageNet validation set: its class folders are the 1000 ImageNet wnids"):
        load_dataset(spec, tmp_path)


def test_imagenet_flat_files_with_the_devkit_ground_truth(tmp_path):
    # ILSVRC2012_ID 1 is the class 999, 2 is 7, 3 is 500 (the devkit's IDs are not in wnid order): labels are the table's
    fabricate.write_imagenet_flat(tmp_path, [WNIDS[999], WNIDS[7], WNIDS[500]], [1, 2, 3, 1, 2])
    data = load_dataset("imagenet", tmp_path)
    assert data.name == "imagenet" and data.class_names == WNIDS
    label_of = dict(zip((path.rsplit("/", 1)[1] for path in data.test.paths), data.test.labels))
    assert [label_of[f"ILSVRC2012_val_{i:08d}.JPEG"] for i in range(1, 6)] == [999, 7, 500, 999, 7]


def test_a_flat_copy_missing_images_is_refused_unless_named_partial(tmp_path):
    fabricate.write_imagenet_flat(tmp_path, [WNIDS[999], WNIDS[7], WNIDS[500]], [1, 2, 3, 1, 2])
    (tmp_path / "ILSVRC2012_val_00000003.JPEG").unlink()
    with raises(f"{tmp_path} holds 4 of the 5 validation images {TRUTH} lists; missing ILSVRC2012_val_00000003; "
                "name the dataset imagenet:partial to evaluate the images present"):  # fmt: skip
        load_dataset("imagenet", tmp_path)
    data = load_dataset("imagenet:partial", tmp_path)
    label_of = dict(zip((path.rsplit("/", 1)[1] for path in data.test.paths), data.test.labels))
    assert data.num_classes == 1000 and label_of == {f"ILSVRC2012_val_{i:08d}.JPEG": label for i, label in ((1, 999), (2, 7), (4, 999), (5, 7))}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: root.joinpath(*DEVKIT, TRUTH).write_text("1\n2\n"), "ILSVRC2012_val_00000003.JPEG has no label: {truth} has 2 lines"),
        (lambda root: root.joinpath(*DEVKIT, TRUTH).write_text("1\n2\n3\n1\n7\n"), "ILSVRC2012_ID 7 is not one of the 3 classes"),
        (lambda root: root.joinpath(*DEVKIT, "meta.mat").unlink(), "holds flat validation images but no meta.mat"),
        (lambda root: root.joinpath(*DEVKIT, "meta.mat").write_bytes(b"MATLAB nonsense"), "is not the devkit's meta.mat"),
        (lambda root: fabricate.write_meta_mat(root.joinpath(*DEVKIT, "meta.mat"), ["n03", WNIDS[7], "n02"]),
         "meta.mat maps ILSVRC2012_IDs to wnids that are not ImageNet classes: n03, n02"),
        (lambda root: root.joinpath("photo.JPEG").write_bytes(fabricate.jpeg((0, 0, 0))),
         "photo.JPEG is not an ImageNet validation file: the flat layout holds ILSVRC2012_val_<8 digits>.JPEG"),
        (lambda root: root.joinpath("ILSVRC2012_val_00000002.jpg").write_bytes(fabricate.jpeg((0, 0, 0))),
         "holds two files numbered 2: ILSVRC2012_val_00000002.JPEG and ILSVRC2012_val_00000002.jpg"),
    ],
)  # fmt: skip
def test_imagenet_bad_devkit_files(tmp_path, damage, message):
    fabricate.write_imagenet_flat(tmp_path, [WNIDS[999], WNIDS[7], WNIDS[500]], [1, 2, 3, 1, 2])
    damage(tmp_path)
    with pytest.raises(UserError) as error:
        load_dataset("imagenet", tmp_path)
    assert message.format(truth=tmp_path.joinpath(*DEVKIT, TRUTH)) in str(error.value) and "\n" not in str(error.value)


def test_imagenet_needs_a_data_dir():
    with raises("--dataset imagenet needs --data-dir"):
        load_dataset("imagenet")


# --- ImageNet-C / Tiny-ImageNet-C folders --------------------------------------------------------


@pytest.mark.parametrize(
    "name, parameters, clean, classes, labels",
    [
        ("imagenet-c:partial", "imagenet-c", "imagenet:partial", 1000, [3, 500, 3, 500]),  # the table's indices of the two wnids
        ("tiny-imagenet-c", "tiny-imagenet-c", "tiny-imagenet", 2, [0, 1, 0, 1]),  # the folders present, sorted
    ],
)
def test_corrupted_folders_stream_each_part(tmp_path, name, parameters, clean, classes, labels):
    written = fabricate.write_corrupted_folders(tmp_path, corruptions=("fog", "gaussian_noise", "my_own"), severities=(1, 2))
    data = load_corrupted_dataset(name, tmp_path)
    assert data.name == name and data.corruptions == ("gaussian_noise", "fog", "my_own")  # the engine's order, then others
    assert data.severities == (1, 2) and data.num_classes == classes and data.image_shape == (16, 16, 3)
    assert data.parameters == parameters and data.clean_source == clean
    part = data.load("fog", 2)
    assert isinstance(part, FileSplit) and list(part.labels) == labels
    image = part.arrays(1)[0][0].astype(int)
    assert np.abs(image - written[("fog", 2, WNIDS[3])][0].astype(int)).mean() < 4
    with raises(f"{name} has no severity 5"):
        data.load("fog", 5)
    assert load_corrupted_dataset(name, tmp_path, image_size=(8, 8), channels=1).load("fog", 1).image_shape == (8, 8, 1)


def test_corrupted_folder_parts_must_agree(tmp_path):
    fabricate.write_corrupted_folders(tmp_path, corruptions=("fog", "snow"), severities=(1, 2))
    fabricate.save_image(fabricate.smooth_images(1, (16, 16))[0], tmp_path / "snow" / "2" / "n03" / "x.JPEG", "JPEG")
    shutil.rmtree(tmp_path / "fog" / "2")
    data = load_corrupted_dataset("tiny-imagenet-c", tmp_path)
    with raises(f"has other classes than {tmp_path / 'snow' / '1'} (extra n03)"):  # snow comes first
        data.load("snow", 2)
    with raises(f"tiny-imagenet-c part missing: {tmp_path / 'fog' / '2'}"):
        data.load("fog", 2)
    with raises("holds no <corruption>/<severity 1-5>/ folder"):
        load_corrupted_dataset("imagenet-c", tmp_path / "fog" / "1")


def test_a_partial_imagenet_c_is_refused_unless_named_partial(tmp_path):
    fabricate.write_colour_classes(tmp_path / "fog" / "1")
    fabricate.write_colour_classes(tmp_path / "fog" / "2", classes=(500,))  # with :partial, each part reads the classes it has
    with pytest.raises(UserError) as error:
        load_corrupted_dataset("imagenet-c", tmp_path)
    assert str(error.value) == (f"{tmp_path / 'fog' / '1'} holds 3 of the 1000 class folders of ImageNet-C; missing {', '.join(WNIDS[:3])}, ...; "
                                "name the dataset imagenet-c:partial to evaluate the classes present")  # fmt: skip
    data = load_corrupted_dataset("imagenet-c:partial", tmp_path)
    assert data.name == "imagenet-c:partial" and data.num_classes == 1000 and data.clean_source == "imagenet:partial"
    assert sorted(set(data.load("fog", 1).labels)) == list(PRESENT) and list(data.load("fog", 2).labels) == [500, 500]
    assert accuracy_of_the_imagenet_colour_classifier(tmp_path, data, data.load("fog", 1)) == pytest.approx(3 / 6)
    fabricate.write_tree(tmp_path / "fog" / "2", {"n01": {"a.JPEG": fabricate.jpeg((0, 0, 0))}})
    with raises(f"{tmp_path / 'fog' / '2' / 'n01'} is not a class folder of ImageNet-C: its class folders are the 1000 ImageNet wnids"):
        data.load("fog", 2)


def test_a_partial_imagenets_corrupted_counterpart_is_read_partial(tmp_path):
    from noisegame_cli.data.counterparts import find_corrupted

    fabricate.write_colour_classes(tmp_path / "ImageNet-C" / "fog" / "1")  # where benchmark looks under --data-dir
    found, folder = find_corrupted("imagenet:partial", (12, 16, 3), 1000, data_dir=str(tmp_path))
    assert folder == tmp_path / "ImageNet-C" and found.name == "imagenet-c:partial" and found.num_classes == 1000
    with raises("holds 3 of the 1000 class folders of ImageNet-C"):
        find_corrupted("imagenet", (12, 16, 3), 1000, data_dir=str(tmp_path))


# --- writing the ImageNet-C layout -------------------------------------------------------------


def test_written_part_reads_back_with_its_classes_and_jpeg_85(tmp_path):
    images = fabricate.smooth_images(5, (12, 12))
    labels = np.array([2, 0, 2, 1, 0])
    classes = ("T-shirt/top", "Trouser", "Bag")
    split = Split(images, labels)
    final = write_folder_part(tmp_path, "fog", 3, split.batches(2).as_numpy_iterator(), classes)
    assert final == part_folder(tmp_path, "fog", 3) and folder_part_complete(tmp_path, "fog", 3)
    assert (tmp_path / "classes.txt").read_text().split() == ["T-shirt_top", "Trouser", "Bag"]
    assert sorted(path.name for path in (final / "Bag").iterdir()) == ["00000000.JPEG", "00000002.JPEG"]
    expected = io.BytesIO()
    from PIL import Image

    Image.fromarray(images[3]).save(expected, format="JPEG", quality=85, optimize=True)
    assert (final / "Trouser" / "00000003.JPEG").read_bytes() == expected.getvalue()
    # a class with no image in a part keeps its label through classes.txt
    write_folder_part(tmp_path, "fog", 1, [(images[:2], np.array([2, 2]))], classes)
    data = load_corrupted_dataset("imagenet-c", tmp_path)
    assert data.num_classes == 3 and list(data.load("fog", 1).labels) == [2, 2]
    assert sorted(data.load("fog", 3).labels) == [0, 0, 1, 2, 2]


def test_interrupted_part_leaves_nothing_and_a_rerun_completes(tmp_path):
    images, labels = fabricate.smooth_images(4, (8, 8)), np.array([0, 1, 0, 1])

    def failing():
        yield images[:2], labels[:2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_folder_part(tmp_path, "snow", 2, failing(), ("a", "b"))
    assert not folder_part_complete(tmp_path, "snow", 2) and not part_folder(tmp_path, "snow", 2).exists()
    assert (tmp_path / "snow" / ".2.partial").exists()  # what a resumed run clears
    write_folder_part(tmp_path, "snow", 2, [(images, labels)], ("a", "b"))
    assert folder_part_complete(tmp_path, "snow", 2) and not (tmp_path / "snow" / ".2.partial").exists()
    write_folder_part(tmp_path, "snow", 2, [(images[:1], labels[:1])], ("a", "b"))  # a finished part written again is replaced
    assert sum(1 for _ in part_folder(tmp_path, "snow", 2).rglob("*.JPEG")) == 1
    with raises("already holds a corrupted copy with other classes"):
        write_folder_part(tmp_path, "snow", 3, [(images, labels)], ("a", "c"))


def test_written_files_keep_source_names_and_grey(tmp_path):
    source = tmp_path / "source"
    fabricate.write_class_tree(source / "train", {"a": fabricate.random_images(3, (6, 6, 1)), "b": fabricate.random_images(3, (6, 6, 1), seed=1)})
    data = load_dataset(f"folder:{source}")
    names = output_file_names(data.train)
    out = tmp_path / "out"
    write_folder_part(out, "blur", 1, data.train.batches(2).as_numpy_iterator(), data.class_names, file_names=names)
    written = sorted(path.name for path in (out / "blur" / "1" / "a").iterdir())
    assert written == sorted(name.replace(".png", ".JPEG") for name in names if name.startswith("a_"))
    back = load_corrupted_dataset("imagenet-c", out)
    assert back.image_shape == (6, 6, 1) and sorted(back.load("blur", 1).labels) == sorted(data.train.labels)
    with raises("would both be written as"):
        write_folder_part(out, "blur", 2, [(np.zeros((2, 6, 6, 1), np.uint8), np.array([0, 0]))], data.class_names, file_names=["x.png", "x.gif"])


def test_save_jpeg_grey_and_colour(tmp_path):
    from PIL import Image

    save_jpeg(np.full((4, 4, 1), 100, np.uint8), tmp_path / "grey.JPEG")
    save_jpeg(np.full((4, 4, 3), 100, np.uint8), tmp_path / "colour.JPEG")
    assert Image.open(tmp_path / "grey.JPEG").mode == "L" and Image.open(tmp_path / "colour.JPEG").mode == "RGB"


# --- writing the CIFAR-10-C layout -------------------------------------------------------------


def test_npy_writer_streams_severity_blocks_and_is_atomic(tmp_path):
    blocks = (np.full((3, 4, 4, 3), severity, np.uint8) for severity in range(1, 6))
    write_corruption_file(tmp_path, "fog", blocks)
    assert corruption_file_complete(tmp_path, "fog", count=3) and not corruption_file_complete(tmp_path, "fog", count=4)
    np.save(tmp_path / "labels.npy", np.zeros(15, np.int64))
    assert (np.asarray(load_corrupted(tmp_path, "fog", 4).images) == 4).all()

    def interrupted():
        yield np.zeros((3, 4, 4, 3), np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_corruption_file(tmp_path, "snow", interrupted())
    assert not corruption_file(tmp_path, "snow").exists() and not corruption_file_complete(tmp_path, "snow")
    assert list(tmp_path.glob("*.partial")) == []
    with pytest.raises(ValueError, match="severity 2 block has shape"):
        write_corruption_file(tmp_path, "snow", [np.zeros((3, 4, 4, 3), np.uint8), np.zeros((2, 4, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="need one image block per severity"):
        write_corruption_file(tmp_path, "snow", [np.zeros((3, 4, 4, 3), np.uint8)] * 4)
    corruption_file(tmp_path, "zoom_blur").write_bytes(corruption_file(tmp_path, "fog").read_bytes()[:200])
    assert not corruption_file_complete(tmp_path, "zoom_blur")  # a truncated copy is not complete


def test_tiny_imagenet_download_unpacks_into_the_keras_cache(tmp_path, monkeypatch):
    import zipfile

    from noisegame_cli.data import imagenet

    fabricate.write_tiny_imagenet(tmp_path / "server")
    archive = tmp_path / "server" / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((tmp_path / "server" / "tiny-imagenet-200").rglob("*")):
            bundle.write(path, path.relative_to(tmp_path / "server"))
    monkeypatch.setattr(imagenet, "TINY_URL", archive.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    with raises("pass --data-dir or --download"):
        load_dataset("tiny-imagenet")
    data = load_dataset("tiny-imagenet", download=True)
    assert data.num_classes == 3 and len(data.test) == 6
