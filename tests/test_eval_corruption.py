"""``noisegame eval-corruption`` through Click's CliRunner, and the evaluation library's aggregates."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from noisegame_cli.evaluation import corruption as evaluation
from noisegame_cli.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES
from helpers import assert_one_line_error, quick_digits_model, save

SUBSET = "gaussian_noise,contrast"


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("model"), epochs=1)


def per_set_accuracy(metrics: pd.DataFrame) -> pd.Series:
    rows = metrics[(metrics["metric"] == "accuracy") & metrics["corruption"].notna()]
    return rows.set_index(["corruption", rows["severity"].astype(int)])["value"].sort_index()


def scalar(metrics: pd.DataFrame, metric: str) -> float:
    rows = metrics[(metrics["metric"] == metric) & metrics["corruption"].isna()]
    assert len(rows) == 1, (metric, rows)
    return float(rows["value"].iloc[0])


def test_generated_then_official_layout_then_mce(invoke, tmp_path, digits_model):
    runs, written = tmp_path / "runs", tmp_path / "digits-C"
    common = ["--model-path", digits_model, "--corruptions", SUBSET, "--limit", "40", "--seed", "5"]
    result = invoke("eval-corruption", *common, "--runs-dir", runs, "--name", "generated", "--write-dir", written)
    assert result.exit_code == 0, result.output
    generated_run = only_run_dir(runs, "eval-corruption")
    for name in ("config.json", "env.json", "metrics.csv", "corruption_heatmap.png", "corruption_samples.png"):
        assert (generated_run / name).is_file(), name
    metrics = pd.read_csv(generated_run / "metrics.csv")
    accuracy = per_set_accuracy(metrics)
    assert list(accuracy.index) == [(c, s) for c in sorted(SUBSET.split(",")) for s in SEVERITIES]
    errors = metrics[(metrics["metric"] == "error") & metrics["corruption"].notna()]
    assert np.allclose(errors.sort_values(["corruption", "severity"])["value"].to_numpy(), 1 - accuracy.to_numpy())
    assert scalar(metrics, "mean_accuracy") == pytest.approx(accuracy.mean())
    assert "mean_accuracy_15x5" not in set(metrics["metric"])  # only 2 of the 15 corruptions evaluated
    clean = metrics[(metrics["split"] == "test") & (metrics["metric"] == "accuracy")]["value"].item()
    assert 0.3 < clean <= 1.0 and accuracy[("contrast", 5)] <= clean + 0.05

    # the written folder is in the official layout and holds exactly the evaluated images
    images = np.load(written / "contrast.npy")
    labels = np.load(written / "labels.npy")
    assert images.shape == (5 * 40, 32, 32, 3) and images.dtype == np.uint8 and labels.shape == (200,)
    assert np.array_equal(labels[:40], labels[160:])
    assert np.load(written / "clean.npy").shape == (40, 32, 32, 3)
    # --write-dir is `noisegame corrupt`: a rerun keeps the finished files and gives the same numbers;
    # a copy made with another seed is refused before a run starts
    written_at = (written / "contrast.npy").stat().st_mtime_ns
    again = invoke("eval-corruption", *common, "--runs-dir", tmp_path / "again", "--write-dir", written)
    assert again.exit_code == 0 and f"kept 10 finished corruption x severity sets already in {written}" in again.output, again.output
    assert (written / "contrast.npy").stat().st_mtime_ns == written_at
    pd.testing.assert_series_equal(per_set_accuracy(pd.read_csv(only_run_dir(tmp_path / "again", "eval-corruption") / "metrics.csv")), accuracy)
    on_the_fly = invoke("eval-corruption", *common, "--runs-dir", tmp_path / "on-the-fly")
    assert on_the_fly.exit_code == 0, on_the_fly.output
    pd.testing.assert_series_equal(per_set_accuracy(pd.read_csv(only_run_dir(tmp_path / "on-the-fly", "eval-corruption") / "metrics.csv")),
                                   accuracy)  # fmt: skip
    other_seed = invoke("eval-corruption", *common[:-1], "6", "--runs-dir", tmp_path / "other", "--write-dir", written)
    assert other_seed.exit_code != 0 and "holds a copy made with seed 5, not 6" in other_seed.stderr, other_seed.output
    assert not (tmp_path / "other").exists()

    (tmp_path / "no-cifar").mkdir()

    def evaluate_folder(runs_dir):
        official = invoke(
            "eval-corruption", "--model-path", digits_model, "--dataset", "cifar10-c", "--data-dir", written,
            "--corruptions", SUBSET, "--clean-data-dir", tmp_path / "no-cifar", "--runs-dir", runs_dir,
            "--baseline", generated_run,
        )  # fmt: skip
        assert official.exit_code == 0, official.output
        assert "mce: 1.0000" in official.output
        return pd.read_csv(only_run_dir(runs_dir, "eval-corruption") / "metrics.csv")

    # read back: the same accuracies, the clean accuracy from the folder's clean.npy, and against
    # itself as baseline every CE and relative CE is 1
    official_metrics = evaluate_folder(tmp_path / "runs2")
    pd.testing.assert_series_equal(per_set_accuracy(official_metrics), accuracy)
    official_clean = official_metrics[(official_metrics["split"] == "test") & (official_metrics["metric"] == "accuracy")]
    assert official_clean["value"].item() == pytest.approx(clean)
    assert scalar(official_metrics, "mce") == pytest.approx(1.0)
    assert scalar(official_metrics, "relative_mce") == pytest.approx(1.0)
    # an official release has no clean.npy: without CIFAR-10 on disk, no clean accuracy and no relative mCE
    (written / "clean.npy").unlink()
    bare_metrics = evaluate_folder(tmp_path / "runs3")
    assert "relative_mce" not in set(bare_metrics["metric"])
    assert "test" not in set(bare_metrics.get("split", pd.Series(dtype=object)).dropna())


def test_aggregates_follow_the_published_protocols():
    rng = np.random.default_rng(0)
    rows = [
        {"corruption": c, "severity": s, "metric": "accuracy", "value": rng.uniform()}
        for c in ALL_CORRUPTIONS for s in SEVERITIES
    ]  # fmt: skip
    per_set = pd.DataFrame(rows)
    aggregates = {row["metric"]: row["value"] for row in evaluation.aggregate_rows(per_set)}
    common = per_set[per_set["corruption"].isin(CORRUPTIONS)]["value"]
    strongest = per_set[per_set["severity"] == 5]["value"]
    assert aggregates["mean_accuracy_15x5"] == pytest.approx(common.mean()) and len(common) == 75
    assert aggregates["mean_accuracy_19_sev5"] == pytest.approx(strongest.mean()) and len(strongest) == 19
    assert aggregates["mean_accuracy"] == pytest.approx(per_set["value"].mean())


def test_mce_and_relative_mce_follow_imagenet_c():
    def error_rows(errors):
        return pd.DataFrame(
            [{"corruption": c, "severity": s, "condition": "corruption", "metric": "error", "value": e}
             for c, by_severity in errors.items() for s, e in by_severity.items()]  # fmt: skip
        )

    def mce(per_set, clean, baseline):
        return evaluation.mce_rows(per_set, clean, evaluation.errors_by_set(baseline), evaluation.clean_error(baseline))

    mine = {"gaussian_noise": {1: 0.2, 2: 0.4}, "fog": {1: 0.3, 2: 0.3}, "spatter": {1: 0.9, 2: 0.9}}
    theirs = {"gaussian_noise": {1: 0.4, 2: 0.6}, "fog": {1: 0.3, 2: 0.5}, "spatter": {1: 0.1, 2: 0.1}}
    clean = pd.DataFrame([{"corruption": None, "severity": None, "condition": "clean", "metric": "error", "value": 0.2}])
    baseline = pd.concat([error_rows(theirs), clean])
    rows = {(r.get("corruption"), r["metric"]): r["value"] for r in mce(error_rows(mine), 0.1, baseline)}
    # CE = sum of errors / baseline's sum, over the common corruptions only (spatter is an extra)
    assert rows[("gaussian_noise", "ce")] == pytest.approx(0.6 / 1.0)
    assert rows[("fog", "ce")] == pytest.approx(0.6 / 0.8)
    assert rows[(None, "mce")] == pytest.approx((0.6 + 0.75) / 2)
    # relative CE subtracts each model's clean error (0.1 here, 0.2 for the baseline) first
    assert rows[("gaussian_noise", "relative_ce")] == pytest.approx((0.1 + 0.3) / (0.2 + 0.4))
    assert rows[(None, "relative_mce")] == pytest.approx(((0.4 / 0.6) + (0.4 / 0.4)) / 2)
    assert ("spatter", "ce") not in rows

    # a baseline without error on a corruption (or, relative, without more than its clean error)
    # gives no ratio there: that CE is NaN and the means are over the others
    theirs = {"gaussian_noise": {1: 0.4, 2: 0.6}, "fog": {1: 0.0, 2: 0.0}, "contrast": {1: 0.2, 2: 0.2}}
    mine = {"gaussian_noise": {1: 0.2, 2: 0.4}, "fog": {1: 0.1, 2: 0.1}, "contrast": {1: 0.3, 2: 0.3}}
    baseline = pd.concat([error_rows(theirs), clean])
    ratio_rows = mce(error_rows(mine), 0.1, baseline)
    rows = {(r.get("corruption"), r["metric"]): r["value"] for r in ratio_rows}
    assert np.isnan(rows[("fog", "ce")]) and rows[(None, "mce")] == pytest.approx((0.6 + 1.5) / 2)
    assert np.isnan(rows[("contrast", "relative_ce")]) and np.isnan(rows[("fog", "relative_ce")])
    assert rows[(None, "relative_mce")] == pytest.approx(0.4 / 0.6)
    assert evaluation.undefined_ratios(ratio_rows) == ["contrast", "fog"]


def other_model(folder, input_shape, classes):
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(classes)])
    return save(model, folder)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--corruptions", "gaussian_noise,fogg"], "unknown corruption 'fogg'"),
        (["--severities", "1,6"], "severities must lie in 1..5"),
        (["--severities", "1,2", "--write-dir", "x"], "needs all 5 severities"),
        (["--dataset", "cifar10-c"], "needs --data-dir"),
        (["--parameters", "cifar11"], "unknown parameters 'cifar11'; choose from cifar10-c, tiny-imagenet-c, imagenet-c"),
        (["--dataset", "cifar10-c", "--parameters", "imagenet-c"], "holds corrupted files already"),
    ],
)
def test_bad_options_are_one_line_errors(invoke, tmp_path, digits_model, extra, message):
    result = invoke("eval-corruption", "--model-path", digits_model, "--runs-dir", tmp_path / "runs", *extra)
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists()


def test_model_that_does_not_fit_and_missing_files(invoke, tmp_path, digits_model):
    wrong_classes = other_model(tmp_path / "five", (32, 32, 3), 5)
    result = invoke("eval-corruption", "--model-path", wrong_classes, "--runs-dir", tmp_path / "runs")
    assert result.exit_code != 0 and "predicts 5 classes but the dataset has 10" in result.stderr
    wrong_shape = other_model(tmp_path / "small", (28, 28, 3), 10)
    result = invoke("eval-corruption", "--model-path", wrong_shape, "--runs-dir", tmp_path / "runs")
    assert result.exit_code != 0 and "takes images of shape" in result.stderr
    result = invoke("eval-corruption", "--runs-dir", tmp_path / "runs")
    assert result.exit_code != 0 and "needs --model-path" in result.stderr

    folder = tmp_path / "fake-C"
    folder.mkdir()
    np.save(folder / "labels.npy", np.zeros(50, np.int64))
    np.save(folder / "gaussian_noise.npy", np.zeros((50, 32, 32, 3), np.uint8))
    result = invoke(
        "eval-corruption", "--model-path", digits_model, "--dataset", "cifar10-c", "--data-dir", folder,
        "--corruptions", "gaussian_noise,fog", "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.exit_code != 0 and "has no fog images; it has gaussian_noise" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_config_records_the_selection(invoke, tmp_path, digits_model):
    result = invoke(
        "eval-corruption", "--model-path", digits_model, "--corruptions", "brightness", "--severities", "2,4",
        "--limit", "16", "--parameters", "imagenet-c", "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run_dir(tmp_path / "runs", "eval-corruption")
    config = json.loads((run / "config.json").read_text())
    assert config["corruptions"] == ["brightness"] and config["severities"] == [2, 4] and config["parameters"] == "imagenet-c"
    metrics = pd.read_csv(run / "metrics.csv")
    assert sorted(per_set_accuracy(metrics).index) == [("brightness", 2), ("brightness", 4)]


def test_imagenet_c_reports_mce_against_alexnets_published_errors(invoke, tmp_path):
    from fabricate import write_corrupted_folders
    from noisegame_cli.corruptions.parameters import ALEXNET_IMAGENET_C_ERRORS

    folder = tmp_path / "ImageNet-C"
    write_corrupted_folders(folder, corruptions=("gaussian_noise", "fog", "spatter"), severities=(1, 2), per_class=3)  # 2 ImageNet classes
    keras.utils.set_random_seed(0)
    model = other_model(tmp_path / "model", (16, 16, 3), 1000)
    whole = invoke("eval-corruption", "--model-path", model, "--dataset", "imagenet-c", "--data-dir", folder, "--runs-dir", tmp_path / "refused")
    assert_one_line_error(whole, "holds 2 of the 1000 class folders of ImageNet-C; missing n01440764, n01443537, n01484850, ...; "
                                 "name the dataset imagenet-c:partial")  # fmt: skip
    result = invoke("eval-corruption", "--model-path", model, "--dataset", "imagenet-c:partial", "--data-dir", folder,
                    "--clean-data-dir", tmp_path, "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mCE against AlexNet's published errors" in result.output
    metrics = pd.read_csv(only_run_dir(tmp_path / "runs", "eval-corruption") / "metrics.csv")
    errors = metrics[(metrics["metric"] == "error") & metrics["corruption"].notna()].set_index(["corruption", "severity"])["value"]
    ce = metrics[metrics["metric"] == "ce"].set_index("corruption")["value"]
    # per corruption: the errors summed over the severities evaluated / AlexNet's mean error times their count
    for name in ("gaussian_noise", "fog"):
        assert ce[name] == pytest.approx(errors[name].sum() / (2 * ALEXNET_IMAGENET_C_ERRORS[name]))
    assert "spatter" not in ce.index  # an extra corruption: AlexNet has no published error there
    assert scalar(metrics, "mce") == pytest.approx(ce.mean())
    assert set(metrics.loc[metrics["metric"].isin(["ce", "mce"]), "baseline"]) == {"AlexNet"}
    assert "relative_mce" not in set(metrics["metric"])

    # Tiny-ImageNet-C publishes no baseline: no mCE without --baseline
    model = other_model(tmp_path / "tiny-model", (16, 16, 3), 2)  # its classes are the folders present
    result = invoke("eval-corruption", "--model-path", model, "--dataset", "tiny-imagenet-c", "--data-dir", folder,
                    "--clean-data-dir", tmp_path, "--runs-dir", tmp_path / "tiny")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mce" not in set(pd.read_csv(only_run_dir(tmp_path / "tiny", "eval-corruption") / "metrics.csv")["metric"])
