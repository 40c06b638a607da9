"""The evaluation layer: clean, adversarial and corruption accuracy of models on splits."""

import numpy as np
import pytest
import tensorflow as tf

from helpers import quick_digits_classifier
from noisegame_cli.attacks import AttackSpec
from noisegame_cli.data import FileSplit, Split, load_dataset
from noisegame_cli.errors import UserError
from noisegame_cli.corruptions.names import check_names, expand, select
from noisegame_cli.evaluation import aggregate_rows, corruption_rows, evaluate, evaluate_attack
from noisegame_cli.evaluation.corruption import generated_source
from noisegame_cli.losses import mean_cross_entropy


@pytest.fixture(scope="module")
def trained_model():
    return quick_digits_classifier(epochs=3)


@pytest.fixture(scope="module")
def test_batch():
    digits = load_dataset("digits")
    images, labels = digits.test.arrays(64)
    return Split(images, labels)


def mean_loss(model, images, labels):
    return float(mean_cross_entropy(labels, model(tf.cast(images, tf.float32))))


def test_targets_beyond_the_model_are_user_errors(trained_model, test_batch):
    with pytest.raises(UserError, match="target class 10"):
        evaluate_attack(trained_model, test_batch, AttackSpec(target_class=10), verbose=False)


def test_evaluate_attack_at_zero_budget_is_clean_accuracy(trained_model, test_batch):
    images, labels = test_batch.arrays()
    predictions = np.argmax(trained_model.predict(images, verbose=0), axis=-1)
    result = evaluate_attack(trained_model, test_batch, AttackSpec(eps=0.0), batch_size=24, verbose=False)
    assert result.count == len(labels)
    assert result.accuracy == pytest.approx(np.mean(predictions == labels))
    assert result.loss == pytest.approx(mean_loss(trained_model, images, labels), rel=1e-4)


def test_evaluate_attack_in_batches(trained_model, test_batch):
    split = test_batch
    clean = evaluate_attack(trained_model, split, AttackSpec(eps=0.0), batch_size=20, verbose=False)
    fgsm_result = evaluate_attack(trained_model, split, AttackSpec(eps=16 / 255), batch_size=20, verbose=False)
    pgd_result = evaluate_attack(trained_model, split, AttackSpec("pgd", eps=16 / 255, steps=5), batch_size=20, verbose=False)
    assert pgd_result.accuracy <= fgsm_result.accuracy < clean.accuracy
    assert fgsm_result.target_rate is None


def test_targeted_evaluation_reports_the_target_rate(trained_model, test_batch):
    clean = evaluate_attack(trained_model, test_batch, AttackSpec(eps=0.0, target_class=3), verbose=False)
    attacked = evaluate_attack(trained_model, test_batch, AttackSpec("pgd", eps=16 / 255, target_class=3), verbose=False)
    assert attacked.target_rate > clean.target_rate




def test_clean_evaluation_of_a_streamed_split_equals_the_in_memory_one(trained_model, test_batch, tmp_path):
    from PIL import Image

    images, labels = test_batch.arrays(12)
    paths = []
    for index, image in enumerate(images):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(image).save(paths[-1])
    streamed = FileSplit(tuple(paths), labels, image_size=(32, 32))
    assert evaluate(trained_model, streamed, 5) == pytest.approx(evaluate(trained_model, Split(images, labels), 7))


def test_a_split_read_from_files_is_corrupted_as_it_streams(trained_model, test_batch, tmp_path, monkeypatch):
    from PIL import Image

    images, labels = test_batch.arrays(12)
    paths = [str(tmp_path / f"{index}.png") for index in range(len(images))]
    for image, path in zip(images, paths):
        Image.fromarray(image).save(path)
    monkeypatch.setattr(FileSplit, "arrays", lambda self, count=None: pytest.fail("the whole split was read into memory"))
    streamed = generated_source(FileSplit(tuple(paths), labels, image_size=(32, 32)), seed=4)
    in_memory = generated_source(Split(images, labels), seed=4)
    for corruption in ("shot_noise", "contrast"):  # integer and XLA work: the same pixels in tf.data
        part = streamed.load(corruption, 3)
        assert not part.in_memory
        assert np.array_equal(part.arrays()[0], in_memory.load(corruption, 3).arrays()[0])
        assert evaluate(trained_model, part, 5) == pytest.approx(evaluate(trained_model, in_memory.load(corruption, 3), 5))
    assert len(streamed.load("fog", 1, 0, 5).arrays()[1]) == 5 and len(streamed.load("fog", 1, 5).arrays()[1]) == 7  # images 0..4, 5..11


def test_corruption_names_groups_and_selection():
    assert expand(["noise", "gaussian_noise", "contrast"]) == ("gaussian_noise", "shot_noise", "impulse_noise", "contrast")
    assert len(expand(["all"])) == 19 and len(expand(["common"])) == 15
    with pytest.raises(UserError, match="unknown corruption 'fogg'"):
        check_names(["fogg"])
    assert select(["all"], ("fog", "snow"), "here") == ("fog", "snow")
    assert select(["noise", "fog"], ("fog", "shot_noise"), "here") == ("shot_noise", "fog")
    with pytest.raises(UserError, match="here has no glass_blur"):
        select(["glass_blur"], ("fog",), "here")


def test_corruption_rows_and_aggregates_per_role(trained_model, test_batch):
    source = generated_source(test_batch, seed=0)
    models = {"a": trained_model, "b": trained_model}
    rows = corruption_rows(models, source, ["noise"], (1, 5), batch_size=32)
    assert len(rows) == 2 * 3 * 2 * 3  # roles x corruptions x severities x (accuracy, error, loss)
    accuracy = [r for r in rows if r["metric"] == "accuracy" and r["role"] == "a"]
    aggregates = {(r["role"], r["metric"]): r["value"] for r in aggregate_rows(rows)}
    assert aggregates[("a", "mean_accuracy")] == pytest.approx(np.mean([r["value"] for r in accuracy]))
    assert aggregates[("a", "mean_accuracy_noise")] == aggregates[("b", "mean_accuracy_noise")]
    assert ("a", "mean_accuracy_15x5") not in aggregates  # only 3 of the 15 were evaluated


def test_each_c_bar_benchmark_gets_its_own_average_where_its_ten_are_covered():
    from noisegame_cli.corruptions.names import CIFAR10_C_BAR_CORRUPTIONS, IMAGENET_C_BAR_CORRUPTIONS, SEVERITIES

    rng = np.random.default_rng(0)
    rows = [{"model": "m", "corruption": c, "severity": s, "condition": "corruption", "metric": "accuracy", "value": float(rng.uniform())}
            for c in CIFAR10_C_BAR_CORRUPTIONS for s in SEVERITIES]  # fmt: skip
    rows += [{**row, "corruption": "caustic_refraction"} for row in rows[:5]]  # one ImageNet-C-bar corruption: not covered
    aggregates = {r["metric"]: r["value"] for r in aggregate_rows(rows)}
    expected = np.mean([r["value"] for r in rows[: len(CIFAR10_C_BAR_CORRUPTIONS) * len(SEVERITIES)]])
    assert aggregates["mean_accuracy_cifar10_c_bar"] == pytest.approx(expected)
    assert "mean_accuracy_imagenet_c_bar" not in aggregates and len(IMAGENET_C_BAR_CORRUPTIONS) == 10
