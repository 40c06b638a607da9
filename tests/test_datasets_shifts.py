"""The natural-shift test sets (imagenet-r, imagenet-a, imagenet-sketch, imagenet-v2, cifar10.1) on
fabricated copies in their published layouts, the table of the 1000 ImageNet classes, and the
200-class protocol of ImageNet-R and ImageNet-A, evaluated end to end with models whose logits are known."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import noisegame
from fabricate import colour_of, jpeg, whole_release, write_cifar101, write_tree
from helpers import colour_classifier, imagenet_classifier, known_logits
from noisegame_cli.attacks import fgsm
from noisegame_cli.data import load_dataset
from noisegame_cli.data.imagenet_classes import imagenet_a_wnids, imagenet_classes, imagenet_indices, imagenet_r_wnids, imagenet_wnids
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation.clean import evaluate
from noisegame_cli.evaluation.shifts import evaluate_shift
from noisegame_cli.losses import cross_entropy
from noisegame_cli.models import LogitSubset, class_protocol, load_checked, load_classifier, restricted_to_dataset

V2_MATCHED = "imagenetv2-matched-frequency-format-val"


def raises(message: str):
    return pytest.raises(UserError, match=re.escape(message))


# --- fabricated copies ------------------------------------------------------------------------------


@pytest.fixture
def saved_imagenet_classifier(tmp_path) -> Path:
    path = tmp_path / "imagenet_classifier.keras"
    imagenet_classifier().save(path)
    return path


# --- the class table ------------------------------------------------------------------------------


def test_the_class_table_is_the_sorted_wnids_and_labels_the_imagenet_folders(tmp_path):
    wnids = list(imagenet_wnids())
    assert len(wnids) == 1000 == len(set(wnids)) and all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids) and wnids == sorted(wnids)
    shuffled = [wnids[i] for i in np.random.default_rng(0).permutation(1000)]  # folders made in no particular order
    whole_release(tmp_path / "val", shuffled, "ILSVRC2012_val_00000001.JPEG")
    data = load_dataset("imagenet", tmp_path)
    assert data.class_names == imagenet_wnids()
    folder_of = [Path(path).parent.name for path in data.test.paths]
    assert [wnids.index(folder) for folder in folder_of] == list(data.test.labels)
    names = dict(imagenet_classes())
    assert names["n01440764"] == "tench" and names["n15075141"] == "toilet_tissue"


@pytest.mark.parametrize(
    "wnids, first, last",
    [  # the 1000-class indices the sets' evaluation scripts publish (imagenet_r_mask, indices_in_1k)
        (imagenet_r_wnids, [1, 2, 4, 6, 8, 9], [981, 983, 988]),
        (imagenet_a_wnids, [6, 11, 13, 15, 17, 22], [986, 987, 988]),
    ],
)
def test_the_200_wnids_of_r_and_a_are_distinct_imagenet_classes(wnids, first, last):
    listed = wnids()
    assert len(listed) == 200 == len(set(listed)) and set(listed) <= set(imagenet_wnids())
    assert list(listed) == sorted(listed)
    indices = imagenet_indices(listed)
    assert list(indices[:6]) == first and list(indices[-3:]) == last
    assert set(imagenet_r_wnids()) != set(imagenet_a_wnids())


def test_each_original_dataset_lists_registered_shift_sets():
    from noisegame_cli.data import DATASETS
    from noisegame_cli.data.shifts import NATURAL_SHIFTS

    for original, shifts in NATURAL_SHIFTS.items():
        assert original in DATASETS and all(DATASETS[name].kind == "images" for name in shifts)


# --- the ImageNet shift sets: layouts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, folder, class_folders, file_name",
    [
        ("imagenet-r", "imagenet-r", imagenet_r_wnids, "art_0.jpg"),
        ("imagenet-a", "imagenet-a", imagenet_a_wnids, "0.000116_digital clock _ digital clock_0.865662.jpg"),
        ("imagenet-sketch", "sketch", imagenet_wnids, "sketch_0.JPEG"),
    ],
)
def test_wnid_folder_releases_load_and_stream_at_224(tmp_path, spec, folder, class_folders, file_name):
    root = whole_release(tmp_path / folder, class_folders(), file_name)
    (root / "README.txt").write_text("ImageNet-A's own notes, not a class\n")
    data = load_dataset(spec, tmp_path)
    assert data.train is None and data.val is None and data.class_names == class_folders()
    assert len(data.test) == len(class_folders()) and data.image_shape == (224, 224, 3)
    assert [Path(path).parent.name for path in data.test.paths] == [class_folders()[label] for label in data.test.labels]
    images, labels = next(iter(data.test.batches(4)))
    assert images.shape == (4, 224, 224, 3) and images.dtype == tf.uint8 and list(labels.numpy()) == [0, 1, 2, 3]
    assert np.abs(images.numpy().astype(int) - 90).max() <= 2  # the flat picture, centre-cropped
    assert load_dataset(spec, root).class_names == class_folders()  # --data-dir may be the release's folder itself
    assert load_dataset(spec, tmp_path, image_size=(32, 32)).image_shape == (32, 32, 3)
    subset = data.class_subset
    if spec == "imagenet-sketch":
        assert subset is None
    else:
        assert subset.indices == imagenet_indices(class_folders()) and subset.total == 1000
        assert subset.protocol == "200-class subset of the 1000 ImageNet classes"


def test_imagenet_v2_folders_are_class_indices_not_sorted_names(tmp_path):
    whole_release(tmp_path / V2_MATCHED, [str(index) for index in range(1000)], "7e2bd2b5e1c8d6b8e48d3e0e6ba3b1f7e0c1b8a9.jpeg")
    data = load_dataset("imagenet-v2", tmp_path)
    assert data.name == "imagenet-v2:matched-frequency" and data.class_names == imagenet_wnids() and data.class_subset is None
    assert [int(Path(path).parent.name) for path in data.test.paths] == list(data.test.labels)  # folder "10" is class 10, not 2
    with raises("is ImageNet-V2's matched-frequency variant, not top-images: name the dataset imagenet-v2:matched-frequency"):
        load_dataset("imagenet-v2:top-images", tmp_path)
    with raises("is ImageNet-V2's matched-frequency variant, not threshold0.7"):
        load_dataset("imagenet-v2:threshold0.7", tmp_path / V2_MATCHED)
    (tmp_path / V2_MATCHED).rename(tmp_path / "imagenetv2-top-images-format-val")
    assert load_dataset("imagenet-v2:top-images", tmp_path).name == "imagenet-v2:top-images"


def test_a_partial_copy_is_refused_unless_named_partial(tmp_path):
    present = [imagenet_r_wnids()[k] for k in (0, 7, 199)]
    write_tree(tmp_path / "imagenet-r", {wnid: {"art_0.jpg": jpeg((0, 0, 0))} for wnid in present})
    with raises(f"{tmp_path / 'imagenet-r'} holds 3 of the 200 class folders of ImageNet-R; missing n01484850, n01494475, n01498041, ...; "
                "name the dataset imagenet-r:partial to evaluate the classes present"):  # fmt: skip
        load_dataset("imagenet-r", tmp_path)
    data = load_dataset("imagenet-r:partial", tmp_path)
    assert data.name == "imagenet-r:partial" and data.num_classes == 200 and data.class_subset.indices == imagenet_indices(imagenet_r_wnids())
    assert sorted(data.test.labels) == [0, 7, 199]
    shutil.rmtree(tmp_path / "imagenet-r")
    (tmp_path / "imagenet-r").mkdir()
    with raises("holds 0 of the 200 class folders of ImageNet-R; missing n01443537"):
        load_dataset("imagenet-r:partial", tmp_path)


@pytest.mark.parametrize(
    "spec, setup, message",
    [
        ("imagenet-r", lambda root: write_tree(root / "imagenet-r", {"n01440764": {"a.jpg": jpeg((0, 0, 0))}}),
         "imagenet-r/n01440764 is not a class folder of ImageNet-R: its class folders are the 200 wnids of ImageNet-R"),
        ("imagenet-a:partial", lambda root: write_tree(root / "imagenet-a", {imagenet_a_wnids()[0]: {"notes.txt": b"no image"}}),
         "holds no JPEG, PNG, BMP or GIF image"),
        ("imagenet-sketch:partial", lambda root: write_tree(root / "sketch", {imagenet_wnids()[3]: {"sketch_0.JPEG": b"<html>not an image"}}),
         "imagenet-sketch:partial in {root}/sketch: none of its 1 image files is readable"),
        ("imagenet-v2", lambda root: write_tree(root / V2_MATCHED, {"n01440764": {"a.jpeg": jpeg((0, 0, 0))}}),
         "is not a class folder of ImageNet-V2 matched-frequency: its class folders are the class indices 0..999 (ImageNet-V2 names its class folders by index, not by wnid)"),
        ("imagenet-v2:partial", lambda root: write_tree(root / V2_MATCHED, {"007": {"a.jpeg": jpeg((0, 0, 0))}}),
         "007 is not a class folder of ImageNet-V2 matched-frequency"),
        ("imagenet-sketch", lambda root: write_tree(root / "ImageNet-Sketch", {"n01440764": {"a.JPEG": jpeg((0, 0, 0))}}),
         "no ImageNet-Sketch in {root}: expected sketch/<wnid>/*.JPEG there, the class folders being the 1000 ImageNet wnids"),
        ("imagenet-r:full", lambda root: None, "dataset imagenet-r takes partial after its name (imagenet-r:WORD), got 'full'"),
        ("imagenet-v2:top-images:matched-frequency", lambda root: None, "dataset imagenet-v2 takes one variant, got top-images, matched-frequency"),
        ("cifar10.1", lambda root: write_cifar101(root, images=np.zeros((4, 3, 32, 32), np.uint8), labels=np.zeros(4, np.int32)),
         "cifar10.1_v6_data.npy: images must be uint8 [N, 32, 32, 3], got uint8 [4, 3, 32, 32]"),
        ("cifar10.1", lambda root: write_cifar101(root, images=np.zeros((4, 32, 32, 3), np.float32), labels=np.zeros(4, np.int32)),
         "images must be uint8 [N, 32, 32, 3], got float32 [4, 32, 32, 3]"),
        ("cifar10.1", lambda root: write_cifar101(root, labels=np.full(20, 10, np.int32)), "labels must lie in 0..9, found 10..10"),
        ("cifar10.1", lambda root: write_cifar101(root, labels=np.zeros(19, np.int32)),
         "cifar10.1_v6_data.npy holds 20 images but cifar10.1_v6_labels.npy 19 labels"),
        ("cifar10.1", lambda root: without_labels(root), "CIFAR-10.1 file missing: {root}/cifar10.1_v6_labels.npy"),
        ("cifar10.1:v4", lambda root: write_cifar101(root),
         "no CIFAR-10.1 v4 in {root}: expected cifar10.1_v4_data.npy and cifar10.1_v4_labels.npy there or in its datasets/"),
        ("cifar10.1:v5", lambda root: None, "dataset cifar10.1 takes v6 or v4 after its name (cifar10.1:WORD), got 'v5'"),
    ],
)  # fmt: skip
def test_wrong_layouts_are_one_line_naming_what_was_expected(tmp_path, spec, setup, message):
    setup(tmp_path)
    with pytest.raises(UserError) as error:
        load_dataset(spec, tmp_path)
    assert message.format(root=tmp_path) in str(error.value) and "\n" not in str(error.value)


def test_the_imagenet_sets_are_found_in_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with raises(f"ImageNet-A is not in the Keras cache ({tmp_path / 'datasets' / 'imagenet-a'}); pass --data-dir"):
        load_dataset("imagenet-a")
    write_tree(tmp_path / "datasets" / "imagenet-a", {imagenet_a_wnids()[5]: {"x.jpg": jpeg((0, 0, 0))}})
    assert list(load_dataset("imagenet-a:partial").test.labels) == [5]


# --- the 200-class protocol, end to end --------------------------------------------------------------


def write_r_images(root: Path, positions=(1, 12, 150, 199)) -> None:
    """Three images for each of a few ImageNet-R classes (class k of the 1000): ``own`` in k's colour;
    ``other`` in the colour of the next listed class; ``near`` nearest the colour of the class k + 1,
    which is not one of ImageNet-R's, but nearer k's than any other ImageNet-R class's."""
    wnids, r_indices = imagenet_r_wnids(), set(imagenet_indices(imagenet_r_wnids()))
    indices = [imagenet_indices([wnids[position]])[0] for position in positions]
    files = {}
    for place, (position, k) in enumerate(zip(positions, indices)):
        assert k % 10 != 9 and k + 1 not in r_indices  # the fixture's premise
        near = np.add(colour_of(k), (15, 0, 0))  # 10 from k + 1's colour, 15 from k's, 29+ from any other's
        other = indices[(place + 1) % len(indices)]
        files[wnids[position]] = {"own.jpg": jpeg(colour_of(k)), "other.jpg": jpeg(colour_of(other)), "near.jpg": jpeg(near)}
    write_tree(root / "imagenet-r", files)


def test_a_1000_class_model_is_restricted_to_the_200_classes_before_the_argmax(tmp_path, saved_imagenet_classifier):
    write_r_images(tmp_path)
    data = load_dataset("imagenet-r:partial", tmp_path)
    model = load_checked(saved_imagenet_classifier, data)
    assert isinstance(model.layers[-1], LogitSubset) and model.outputs[0].shape[-1] == 200 and model.name == "colour_classifier"
    assert class_protocol(model) == "200-class subset of the 1000 ImageNet classes"
    result = evaluate(model, data.test, batch_size=5)
    kinds = [Path(path).stem for path in data.test.paths]
    assert result["accuracy"] == pytest.approx(8 / 12)  # own and near right, other wrong

    images, labels = data.test.arrays()
    full = known_logits(images, [colour_of(index) for index in range(1000)])  # the direct computation
    restricted = np.argmax(full[:, list(data.class_subset.indices)], axis=1)
    assert result["accuracy"] == pytest.approx(np.mean(restricted == labels))
    assert sorted(kind for kind, right in zip(kinds, restricted == labels) if right) == ["near"] * 4 + ["own"] * 4
    unrestricted = np.argmax(full, axis=1)  # the argmax over all 1000 picks class k + 1 for every near image
    near = [kind == "near" for kind in kinds]
    assert all(np.asarray(data.class_subset.indices)[labels[near]] + 1 == unrestricted[near])


def test_evaluate_shift_reports_accuracy_count_and_protocol(tmp_path):
    write_r_images(tmp_path)
    result = evaluate_shift(imagenet_classifier(), "imagenet-r:partial", tmp_path, batch_size=4)
    assert result["dataset"] == "imagenet-r:partial" and result["count"] == 12 and result["accuracy"] == pytest.approx(8 / 12)
    assert result["protocol"] == "200-class subset of the 1000 ImageNet classes" and result["loss"] > 0
    with raises("model colour_classifier predicts 10 classes but imagenet-r:partial takes a model of its 200 classes"):
        evaluate_shift(colour_classifier(np.zeros((10, 3))), "imagenet-r:partial", tmp_path)
    through_api = noisegame.evaluate_shift(imagenet_classifier(), "imagenet-r:partial", data_dir=tmp_path, batch_size=5)
    assert through_api["accuracy"] == result["accuracy"] and through_api["error"] == pytest.approx(1 - 8 / 12)
    assert through_api["loss"] == pytest.approx(result["loss"], rel=1e-6)


def test_the_restriction_comes_before_any_attack(tmp_path, saved_imagenet_classifier):
    write_r_images(tmp_path, positions=(1, 12))
    data = load_dataset("imagenet-r:partial", tmp_path)
    images, labels = data.test.arrays()
    images = tf.constant(images, tf.float32)
    model = load_checked(saved_imagenet_classifier, data)
    inner = load_classifier(saved_imagenet_classifier)
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(cross_entropy(labels, tf.gather(inner(images), list(data.class_subset.indices), axis=1)))
    expected = tf.clip_by_value(images + 4 * tf.sign(tape.gradient(loss, images)), 0, 255)
    np.testing.assert_allclose(fgsm(model, images, labels, 4 / 255).numpy(), expected.numpy(), atol=1e-3)


def test_a_200_output_model_is_taken_as_it_is(tmp_path):
    write_r_images(tmp_path)
    data = load_dataset("imagenet-r:partial", tmp_path)
    own = colour_classifier(np.array([colour_of(index) for index in data.class_subset.indices]), name="r_classifier")
    own.save(tmp_path / "r.keras")
    model = load_checked(tmp_path / "r.keras", data)
    assert not any(isinstance(layer, LogitSubset) for layer in model.layers) and class_protocol(model) == "all 200 classes of the model"
    assert evaluate(model, data.test)["accuracy"] == pytest.approx(8 / 12)  # the near images: k + 1 is not among its classes


def test_a_1000_class_model_on_imagenet_v2_and_sketch_is_not_restricted(tmp_path, saved_imagenet_classifier):
    folders = {"0": 0, "2": 2, "10": 10, "100": 100, "999": 999}  # sorted as names, "10" would come before "2"
    write_tree(tmp_path / V2_MATCHED, {folder: {"a.jpeg": jpeg(colour_of(index)), "b.jpeg": jpeg(colour_of(index // 2))} for folder, index in folders.items()})
    data = load_dataset("imagenet-v2:partial", tmp_path)
    model = load_checked(saved_imagenet_classifier, data)
    assert model.outputs[0].shape[-1] == 1000 and class_protocol(model) == "all 1000 classes of the model"
    assert evaluate(model, data.test)["accuracy"] == pytest.approx(6 / 10)  # every a, and b of class 0 (0 // 2 == 0)
    write_tree(tmp_path / "sketch", {imagenet_wnids()[7]: {"sketch_0.JPEG": jpeg(colour_of(7))}})
    sketch = load_dataset("imagenet-sketch:partial", tmp_path)
    assert restricted_to_dataset(model, sketch) is model and evaluate(model, sketch.test)["accuracy"] == 1.0


def test_a_model_of_other_classes_is_one_line(tmp_path):
    write_r_images(tmp_path, positions=(1,))
    data = load_dataset("imagenet-r:partial", tmp_path)
    colour_classifier(np.zeros((10, 3))).save(tmp_path / "ten.keras")
    with pytest.raises(UserError) as error:
        load_checked(tmp_path / "ten.keras", data)
    assert str(error.value) == (f"model {tmp_path / 'ten.keras'} predicts 10 classes but imagenet-r:partial takes a model of its 200 classes "
                                "or of the 1000 ImageNet classes (restricted to its 200)")  # fmt: skip


def test_a_restricted_model_saves_and_loads_restricted(tmp_path):
    write_r_images(tmp_path, positions=(1,))
    data = load_dataset("imagenet-r:partial", tmp_path)
    model = restricted_to_dataset(imagenet_classifier(), data)
    model.save(tmp_path / "restricted.keras")
    loaded = load_checked(tmp_path / "restricted.keras", data)  # 200 outputs already: taken as it is
    images = data.test.arrays()[0].astype(np.float32)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
    assert class_protocol(loaded) == "200-class subset of the 1000 ImageNet classes"


# --- CIFAR-10.1 ------------------------------------------------------------------------------------


def test_cifar101_streams_its_npy_files(tmp_path):
    images, labels = write_cifar101(tmp_path)
    data = load_dataset("cifar10.1", tmp_path)
    assert data.name == "cifar10.1" and data.train is None and data.class_names[0] == "airplane" and data.class_subset is None
    read = [(x.numpy(), y.numpy()) for x, y in data.test.batches(8)]
    assert [len(y) for _, y in read] == [8, 8, 4]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in read]), images)
    np.testing.assert_array_equal(np.concatenate([y for _, y in read]), labels)
    write_cifar101(tmp_path / "CIFAR-10.1" / "datasets", count=21, version="v4")  # a clone of the repository
    assert load_dataset("cifar10.1:v4", tmp_path / "CIFAR-10.1").name == "cifar10.1:v4"


def test_cifar101_evaluates_a_model_of_cifar10(tmp_path):
    colours = np.array([[25 * k, 0, 0] for k in range(10)], np.float32)
    images = np.zeros((20, 32, 32, 3), np.uint8)
    images[..., 0] = (25 * (np.arange(20) % 10))[:, None, None]
    labels = (np.arange(20) % 10).astype(np.int32)
    labels[:5] = (labels[:5] + 1) % 10  # five wrong
    write_cifar101(tmp_path, images=images, labels=labels)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    model.layers[-1].set_weights([2 * colours.T / 1000, -(colours**2).sum(axis=1) / 1000])
    model.save(tmp_path / "cifar.keras")
    data = load_dataset("cifar10.1", tmp_path)
    assert evaluate(load_checked(tmp_path / "cifar.keras", data), data.test)["accuracy"] == pytest.approx(15 / 20)


def without_labels(folder: Path) -> None:
    write_cifar101(folder)
    (folder / "cifar10.1_v6_labels.npy").unlink()


def test_cifar101_download_fetches_both_files_into_the_keras_cache(tmp_path, monkeypatch):
    from noisegame_cli.data import shifts

    images, _ = write_cifar101(tmp_path / "server")
    monkeypatch.setattr(shifts, "CIFAR101_URL", (tmp_path / "server").as_uri() + "/{file}")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    with raises("CIFAR-10.1 v6 is not in the Keras cache"):
        load_dataset("cifar10.1")
    data = load_dataset("cifar10.1", download=True)
    np.testing.assert_array_equal(data.test.arrays()[0], images)
    assert (tmp_path / "home" / "datasets" / "cifar10.1" / "cifar10.1_v6_labels.npy").is_file()


def test_a_damaged_file_of_a_shift_set_is_skipped_with_a_warning_or_refused_with_strict(tmp_path, capsys):
    write_tree(tmp_path / "imagenet-r", {imagenet_r_wnids()[0]: {"a.jpg": jpeg((10, 20, 30)), "b.jpg": b"<html>not an image"}})
    assert len(load_dataset("imagenet-r:partial", tmp_path).test) == 1
    assert "b.jpg" in capsys.readouterr().out
    with pytest.raises(UserError, match="b.jpg"):
        load_dataset("imagenet-r:partial", tmp_path, strict=True)
