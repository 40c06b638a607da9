"""``noisegame benchmark`` through Click's CliRunner: the card, its agreement with metrics.csv, the
parts that can be skipped, resuming after a finished chunk, and the one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from helpers import assert_one_line_error, quick_digits_model
from noisegame_cli.attacks import Settings
from noisegame_cli.corruptions import ALL_CORRUPTIONS, CORRUPTIONS
from noisegame_cli.data import cifar10c, load_dataset
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation import autoattack as chunks
from noisegame_cli.runs import read_status

CARD_KEYS = [
    "name", "model", "model_path", "preprocessing", "dataset", "threat_model", "norm", "eps", "n_examples", "clean_acc", "autoattack_acc",
    "autoattack_per_attack", "corruptions_acc", "corruptions_acc_19_sev5", "corruptions_mce", "corruptions_source", "corruptions_baseline",
    "shifts", "version", "seed", "flags", "versions", "git_commit",
]  # fmt: skip
COUNT = 24  # test images benchmarked
QUICK = ["--smoke", "--n-examples", str(COUNT), "--chunk-size", "8"]


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("model"), epochs=1)


@pytest.fixture(scope="module")
def corrupted_folder(tmp_path_factory):
    """The first digits test images under 19 made-up "corruptions" (noise growing with severity), in
    the CIFAR-10-C layout without clean.npy, as the official release is."""
    folder = tmp_path_factory.mktemp("digits-C")
    images, labels = load_dataset("digits").split("test").arrays(COUNT)
    rng = np.random.default_rng(0)
    for corruption in ALL_CORRUPTIONS:
        blocks = [np.clip(images + rng.normal(0, 30 * s, images.shape), 0, 255).astype(np.uint8) for s in range(1, 6)]
        cifar10c.write_corruption_file(folder, corruption, blocks)
    cifar10c.write_labels_file(folder, labels)
    return folder


def read_run(run_dir):
    return json.loads((run_dir / "card.json").read_text()), pd.read_csv(run_dir / "metrics.csv")


def aggregate(metrics: pd.DataFrame, metric: str) -> float:
    rows = metrics[(metrics["metric"] == metric) & metrics["corruption"].isna()]
    assert len(rows) == 1, (metric, rows)
    return float(rows["value"].iloc[0])


def clean_accuracy(metrics: pd.DataFrame) -> float:
    rows = metrics[(metrics["split"] == "test") & (metrics["metric"] == "accuracy") & metrics["attack"].isna()]
    return float(rows["value"].item())


def test_card_holds_the_robustbench_fields_and_agrees_with_the_metrics(invoke, tmp_path, digits_model):
    runs = tmp_path / "runs"
    result = invoke("benchmark", "--model-path", digits_model, *QUICK, "--no-corruptions", "--runs-dir", runs, "--name", "card")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(runs, "benchmark")
    card, metrics = read_run(run_dir)
    assert list(card) == CARD_KEYS
    assert card["name"] == "card" and card["dataset"] == "digits" and card["model_path"] == str(digits_model)
    assert (card["threat_model"], card["norm"], card["version"], card["n_examples"]) == ("Linf", "Linf", "standard", COUNT)
    assert card["eps"] == pytest.approx(8 / 255)  # the Linf default
    assert card["clean_acc"] == round(100 * clean_accuracy(metrics), 2)
    attacks = metrics[metrics["attack"].notna()].set_index("attack")
    assert set(attacks["norm"]) == {"Linf"} and np.allclose(attacks["epsilon"], 8 / 255)
    assert list(card["autoattack_per_attack"]) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    for attack, value in card["autoattack_per_attack"].items():
        assert value == round(100 * attacks.loc[f"autoattack-{attack}", "value"], 2)
    assert card["autoattack_acc"] == round(100 * attacks.loc["autoattack", "value"], 2) == card["autoattack_per_attack"]["square"]
    steps = [card["clean_acc"], *card["autoattack_per_attack"].values()]
    assert steps == sorted(steps, reverse=True)  # each attack only ever breaks more points
    assert card["autoattack_acc"] <= card["clean_acc"]
    assert any("settings" in flag for flag in card["flags"])  # the smoke preset shortens the attacks
    assert card["corruptions_source"] is None and card["corruptions_acc"] is None and card["corruptions_mce"] is None
    assert "corruption" not in metrics
    assert card["versions"]["tensorflow"] and "keras" in card["versions"]
    markdown = (run_dir / "card.md").read_text()
    assert f"{card['clean_acc']:.2f} %" in markdown and "8/255" in markdown
    assert sorted(p.name for p in (run_dir / "autoattack").iterdir()) == [f"chunk-0000{i}.json" for i in range(3)]


def test_an_undefended_model_breaks_completely_at_a_large_budget_and_l2_defaults_to_half(invoke, tmp_path, digits_model):
    runs = tmp_path / "runs"
    common = ["benchmark", "--model-path", digits_model, *QUICK, "--no-corruptions", "--runs-dir", runs]
    assert invoke(*common, "--eps", "0.5", "--name", "large").exit_code == 0
    assert invoke(*common, "--norm", "L2", "--name", "l2").exit_code == 0
    cards = {path.name.split("-")[-1]: read_run(path)[0] for path in (runs / "benchmark").iterdir()}
    assert cards["large"]["autoattack_acc"] == 0.0 < cards["large"]["clean_acc"]
    assert cards["l2"]["eps"] == 0.5 and cards["l2"]["threat_model"] == "L2"
    assert cards["l2"]["autoattack_acc"] <= cards["l2"]["clean_acc"]


def test_corruptions_from_files_without_attacks_then_mce_against_a_baseline_run(invoke, tmp_path, digits_model, corrupted_folder):
    runs = tmp_path / "runs"
    common = ["benchmark", "--model-path", digits_model, *QUICK, "--corruptions", "all", "--no-adversarial",
              "--corrupted-dir", corrupted_folder, "--runs-dir", runs]  # fmt: skip
    assert invoke(*common, "--name", "baseline").exit_code == 0
    (baseline_dir,) = (runs / "benchmark").iterdir()
    card, metrics = read_run(baseline_dir)
    assert card["autoattack_acc"] is None and card["autoattack_per_attack"] == {} and card["flags"] == []
    assert "attack" not in metrics or metrics["attack"].isna().all()
    assert card["corruptions_source"] == "official files"  # no clean.npy: not written by noisegame corrupt
    per_set = metrics[(metrics["metric"] == "accuracy") & metrics["corruption"].notna()]
    assert len(per_set) == 19 * 5
    common_sets = per_set[per_set["corruption"].isin(CORRUPTIONS)]["value"]
    assert card["corruptions_acc"] == round(100 * common_sets.mean(), 2) == round(100 * aggregate(metrics, "mean_accuracy_15x5"), 2)
    severity_5 = per_set[per_set["severity"] == 5]["value"]
    assert card["corruptions_acc_19_sev5"] == round(100 * severity_5.mean(), 2) == round(100 * aggregate(metrics, "mean_accuracy_19_sev5"), 2)
    assert card["corruptions_mce"] is None  # digits has no published baseline
    assert card["corruptions_acc_19_sev5"] < card["clean_acc"]  # the strongest noise costs accuracy

    assert invoke(*common, "--name", "against", "--baseline", baseline_dir).exit_code == 0
    (other,) = [path for path in (runs / "benchmark").iterdir() if path != baseline_dir]
    card, metrics = read_run(other)
    assert card["corruptions_mce"] == 100.0 == round(100 * aggregate(metrics, "mce"), 2)  # the same model: every CE is 1


def test_a_written_corrupted_set_counts_as_generated(invoke, tmp_path, digits_model, corrupted_folder):
    written = tmp_path / "written"
    written.mkdir()
    for path in corrupted_folder.iterdir():
        (written / path.name).write_bytes(path.read_bytes())
    cifar10c.write_clean_file(written, load_dataset("digits").split("test").arrays(COUNT)[0])
    runs = tmp_path / "runs"
    result = invoke("benchmark", "--model-path", digits_model, *QUICK, "--no-adversarial", "--corrupted-dir", written, "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    card, _ = read_run(only_run_dir(runs, "benchmark"))
    assert card["corruptions_source"] == "generated" and card["corruptions_acc"] is None  # the smoke preset: 3 corruptions


def test_resume_skips_the_finished_chunks_and_gives_the_same_card(invoke, tmp_path, digits_model, monkeypatch):
    common = ["benchmark", "--model-path", digits_model, *QUICK, "--no-corruptions", "--name", "long"]
    assert invoke(*common, "--runs-dir", tmp_path / "through").exit_code == 0
    expected, expected_metrics = read_run(only_run_dir(tmp_path / "through", "benchmark"))

    real, calls = chunks.autoattack, []

    def interrupted_after_one_chunk(*args, **kwargs):
        calls.append(int(kwargs["point_ids"][0]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(chunks, "autoattack", interrupted_after_one_chunk)
    result = invoke(*common, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 130
    run_dir = only_run_dir(tmp_path / "runs", "benchmark")
    assert read_status(run_dir) == "interrupted" and not (run_dir / "card.json").exists()
    assert [p.name for p in (run_dir / "autoattack").iterdir()] == ["chunk-00000.json"]

    monkeypatch.setattr(chunks, "autoattack", lambda *a, **k: calls.append(int(k["point_ids"][0])) or real(*a, **k))
    calls.clear()
    result = invoke("benchmark", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert calls == [8, 16]  # only the two unfinished chunks ran (their first points)
    assert "finished earlier" in result.output
    card, metrics = read_run(run_dir)
    assert {k: v for k, v in card.items() if k != "model_path"} == {k: v for k, v in expected.items() if k != "model_path"}
    assert np.allclose(metrics["value"], expected_metrics["value"])

    result = invoke("benchmark", "--resume", run_dir)
    assert_one_line_error(result, "already completed")


def test_a_resumed_chunk_from_other_settings_is_refused(tmp_path, digits_model):
    import keras

    model = keras.models.load_model(digits_model)
    test = load_dataset("digits").split("test").head(8)
    plan = chunks.AttackPlan("Linf", 8 / 255, seed=3, chunk_size=8, settings=Settings(steps=2, square_queries=5))
    first = chunks.run_autoattack_chunks(model, test, plan, tmp_path, batch_size=8, verbose=False)
    again = chunks.run_autoattack_chunks(model, test, plan, tmp_path, batch_size=8, verbose=False)
    assert (first.computed_chunks, again.computed_chunks, again.reused_chunks) == (1, 0, 1)
    assert again.accuracy == first.accuracy and np.array_equal(again.broken_by, first.broken_by)
    other = chunks.AttackPlan("Linf", 16 / 255, seed=3, chunk_size=8, settings=plan.settings)
    with pytest.raises(UserError, match="other settings"):
        chunks.run_autoattack_chunks(model, test, other, tmp_path, batch_size=8, verbose=False)


def test_accuracy_after_each_attack_counts_the_points_still_standing():
    broken_by = np.array(["clean", "", "apgd-ce", "square", "", "apgd-ce", "clean", ""])
    accuracy = chunks.accuracy_after_each(broken_by, ("apgd-ce", "apgd-t", "square"))
    assert accuracy == {"clean": 6 / 8, "apgd-ce": 4 / 8, "apgd-t": 4 / 8, "square": 3 / 8}


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--norm", "L1"], "--norm"),
        (["--eps", "2"], "--eps must lie in [0, 1]"),
        (["--norm", "L2", "--eps", "-1"], "L2 --eps must be finite and >= 0"),
        (["--dataset", "cifar10-c"], "benchmark takes the clean dataset (cifar10)"),
        (["--n-examples", "0"], "--n-examples"),
    ],
)
def test_user_mistakes_end_in_one_line_before_any_run_directory(invoke, tmp_path, digits_model, flags, message):
    runs = tmp_path / "runs"
    assert_one_line_error(invoke("benchmark", "--model-path", digits_model, *flags, "--runs-dir", runs), message)
    assert not runs.exists()


def test_a_missing_model_file_is_one_line(invoke, tmp_path):
    runs = tmp_path / "runs"
    assert_one_line_error(invoke("benchmark", "--model-path", tmp_path / "nothing.keras", "--runs-dir", runs), "no such file")
    assert_one_line_error(invoke("benchmark", "--runs-dir", runs), "needs --model-path")
    assert not runs.exists()


def test_cifar10_c_is_found_in_the_data_folder_and_generated_without_it(invoke, tmp_path, digits_model):
    from conftest import write_cifar_folder

    write_cifar_folder(tmp_path / "data")  # 20 test images; the digits model takes 32x32x3 in 10 classes
    common = ["benchmark", "--model-path", digits_model, "--smoke", "--no-adversarial", "--dataset", "cifar10", "--data-dir", tmp_path / "data"]
    assert invoke(*common, "--runs-dir", tmp_path / "without").exit_code == 0
    card, _ = read_run(only_run_dir(tmp_path / "without", "benchmark"))
    assert card["corruptions_source"] == "generated" and card["n_examples"] == 20

    test = load_dataset("cifar10", tmp_path / "data").split("test")
    images, labels = test.arrays()
    release = tmp_path / "data" / "CIFAR-10-C"
    for corruption in ("gaussian_noise", "defocus_blur", "jpeg_compression"):
        cifar10c.write_corruption_file(release, corruption, [255 - images] * 5)  # inverted: not what the engine makes
    cifar10c.write_labels_file(release, labels)
    result = invoke(*common, "--runs-dir", tmp_path / "with")
    assert result.exit_code == 0, result.output
    card, metrics = read_run(only_run_dir(tmp_path / "with", "benchmark"))
    assert card["corruptions_source"] == "official files" and card["dataset"] == "cifar10"
    inverted = metrics[(metrics["metric"] == "accuracy") & metrics["corruption"].notna()]["value"]
    assert len(inverted) == 3 * 5 and inverted.nunique() == 1  # every set is the same inverted images


def test_eval_corruption_and_benchmark_measure_generated_corruptions_alike(invoke, tmp_path, digits_model):
    """One corruption measurement: the same model and generated digits-C give the same per-set
    accuracies and the same mCE against the same baseline run, whichever command measures them."""
    sets = ["--corruptions", "gaussian_noise,fog,contrast", "--severities", "1,3", "--batch-size", "16"]
    baseline = invoke("eval-corruption", "--model-path", digits_model, *sets, "--limit", COUNT, "--seed", "1",
                      "--runs-dir", tmp_path / "baseline")  # fmt: skip
    assert baseline.exit_code == 0, baseline.output
    baseline_dir = only_run_dir(tmp_path / "baseline", "eval-corruption")
    evaluated = invoke("eval-corruption", "--model-path", digits_model, *sets, "--limit", COUNT, "--baseline", baseline_dir,
                       "--runs-dir", tmp_path / "runs")  # fmt: skip
    benchmarked = invoke("benchmark", "--model-path", digits_model, *sets, "--n-examples", COUNT, "--no-adversarial",
                         "--baseline", baseline_dir, "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert evaluated.exit_code == 0 and benchmarked.exit_code == 0, (evaluated.output, benchmarked.output)
    by_command = {}
    for command in ("eval-corruption", "benchmark"):
        metrics = pd.read_csv(only_run_dir(tmp_path / "runs", command) / "metrics.csv")
        per_set = metrics[(metrics["metric"] == "accuracy") & metrics["corruption"].notna()]
        by_command[command] = (per_set.set_index(["corruption", "severity"])["value"].sort_index(), aggregate(metrics, "mce"),
                               aggregate(metrics, "relative_mce"))  # fmt: skip
    (eval_sets, eval_mce, eval_relative), (card_sets, card_mce, card_relative) = by_command.values()
    assert len(eval_sets) == 6
    pd.testing.assert_series_equal(eval_sets, card_sets)
    assert eval_mce == card_mce != 1.0 and eval_relative == card_relative


@pytest.mark.slow  # the C-bar benchmark's 50 generated sets: about 30 s
def test_shifts_sit_beside_the_clean_accuracy_on_the_card(invoke, tmp_path, digits_model, cifar_folder):
    from fabricate import write_cifar101
    import keras
    import noisegame

    shifts = tmp_path / "shifts"
    images, labels = write_cifar101(shifts, count=12)
    result = invoke("benchmark", "--model-path", digits_model, "--dataset", "cifar10", "--data-dir", cifar_folder, "--n-examples", "8",
                    "--batch-size", "8", "--no-adversarial", "--no-corruptions", "--shifts", "--shifts-dir", shifts, "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert result.exit_code == 0, result.output
    card, metrics = read_run(only_run_dir(tmp_path / "runs", "benchmark"))
    assert list(card["shifts"]) == ["cifar10.1", "cifar10-c-bar"]
    model = keras.models.load_model(digits_model)
    direct = np.mean(model.predict(images.astype(np.float32), verbose=0).argmax(-1) == labels)
    assert card["shifts"]["cifar10.1"] == {"acc": round(100 * direct, 2), "kept": pytest.approx(direct / (card["clean_acc"] / 100), abs=1e-4),
                                           "n_examples": 12, "protocol": "all 10 classes of the model"}  # fmt: skip
    # the C-bar benchmark: the mean over its ten corruptions x five severities of the same images, as the corruption measurement has it
    test_images, test_labels = load_dataset("cifar10", cifar_folder).test.arrays(8)
    rows = noisegame.evaluate_corruptions(model, test_images, test_labels, ["cifar10-c-bar"], parameters="cifar10-c-bar")
    expected = rows.query("metric == 'mean_accuracy_cifar10_c_bar'")["value"].item()
    assert card["shifts"]["cifar10-c-bar"]["acc"] == round(100 * expected, 2) and card["shifts"]["cifar10-c-bar"]["n_examples"] == 8
    shifted = metrics[metrics["condition"] == "shift"]
    assert set(shifted["shift"]) == {"cifar10.1", "cifar10-c-bar"} and set(shifted["metric"]) == {"accuracy", "loss"}
    assert "| cifar10.1 |" in (only_run_dir(tmp_path / "runs", "benchmark") / "card.md").read_text()


def test_shifts_of_a_dataset_without_any_are_refused_in_one_line(invoke, tmp_path, digits_model):
    result = invoke("benchmark", "--model-path", digits_model, "--shifts", "--smoke", "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, "--shifts: the card knows the natural shifts of cifar10, imagenet, not of digits")
    assert not (tmp_path / "runs").exists()
