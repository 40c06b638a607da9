"""What each metric row measured (its ``condition``): written by the measurements, refused when
missing, derived for rows written before the column existed, and what the report selects by; and
the commands' declarations the report reads instead of naming commands itself."""

from __future__ import annotations

import dataclasses
import string
import sys
from importlib import import_module
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from noisegame_cli.commands import COMMANDS
from noisegame_cli.data.sources import Split
from noisegame_cli.evaluation import aggregate_rows, clean_rows, corruption_rows
from noisegame_cli.evaluation.corruption import generated_source, mce_rows
from noisegame_cli.evaluation.frequency import frequency_rows, smoothing_rows
from noisegame_cli.report import Stat, build_report
from noisegame_cli.report.leaderboard import MCE_MIN_BASELINE_ERRORS, MCE_RULE
from noisegame_cli.report.registry import command_configs, declarations, section_order
from noisegame_cli.runs import CONDITIONS, append_results, metrics_frame, read_metrics, recorded_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from update_results import leaderboard as readme_leaderboard  # noqa: E402

EPS8 = 8 / 255


# --- the commands' declarations ---------------------------------------------------------------------


def _click_configs(command) -> set[type]:
    """The config classes behind a Click command and its modes."""
    found = {command.config_class} if hasattr(command, "config_class") else set()
    for mode in getattr(command, "commands", {}).values():
        found |= _click_configs(mode)
    return found


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_declares_its_section_beside_its_config(name):
    module = COMMANDS[name][0]
    configs = command_configs(module)
    assert set(configs) == _click_configs(import_module(module).command)  # the registry finds every config a command runs
    for config in configs:
        assert config.section is not None, f"{config.command}: its Config declares no report section (section = sections.X)"
        assert declarations()[config.command] is config
        fields = {field.name for field in dataclasses.fields(config)}
        assert config.evaluates is None or config.evaluates in fields
        if config.model_role is not None:
            assert {part[1] for part in string.Formatter().parse(config.model_role) if part[1]} <= fields


def test_sections_come_in_the_order_of_the_commands_and_other_runs_last():
    anchors = [section.anchor for section in section_order()]
    assert anchors == ["noise-training", "adversarial", "frequency", "style", "corruptions", "denoiser", "benchmark", "other"]


# --- rows say what they measured ----------------------------------------------------------------------


def test_metric_rows_without_a_known_condition_are_refused():
    row = {"run_id": "r", "command": "train-teacher", "dataset": "digits", "model": "m", "metric": "accuracy", "value": 0.5}
    with pytest.raises(ValueError, match="metric rows need a 'condition' column"):
        metrics_frame([row])
    with pytest.raises(ValueError, match="needs a condition, one of clean, corruption.*found blurry"):
        metrics_frame([{**row, "condition": "clean"}, {**row, "condition": "blurry"}])
    assert list(metrics_frame([{**row, "condition": "clean"}])["condition"]) == ["clean"]


@pytest.fixture(scope="module")
def tiny():
    """An untrained classifier with a first convolution, and 16 test images (what is measured, not how well)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10)], name="tiny")  # fmt: skip
    rng = np.random.default_rng(0)
    return model, Split(rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 16))


def test_the_measurements_say_what_they_measured(tiny):
    model, test = tiny
    assert {row["condition"] for row in clean_rows({"teacher": model}, test, 16)} == {"clean"}

    per_set = corruption_rows({None: model}, generated_source(test, 0), ("gaussian_noise", "contrast"), (1, 2), 16)
    assert {row["condition"] for row in per_set} == {"corruption"} and {row["n_examples"] for row in per_set} == {16}
    aggregates = aggregate_rows(per_set)
    errors = pd.Series(0.5, index=pd.MultiIndex.from_product([("gaussian_noise", "contrast"), (1, 2)], names=["corruption", "severity"]))
    ratios = mce_rows(pd.DataFrame(per_set), 0.1, errors, 0.05)
    assert {row["condition"] for row in aggregates + ratios} == {"corruption"}
    assert {row["metric"] for row in ratios} == {"ce", "relative_ce", "mce", "relative_mce"}

    views = pd.DataFrame(frequency_rows(model, test, (4.0,), 16))
    assert set(views.loc[views["part"] == "original", "condition"]) == {"clean"}
    assert set(views.loc[views["part"] != "original", "condition"]) == {"view"}  # L(r), H(r) and the counts between them
    assert {"right_high_wrong_low", "right_low_wrong_high"} <= set(views.loc[views["condition"] == "view", "metric"])

    smoothed = pd.DataFrame(smoothing_rows(model, test, (0.5,), EPS8, 1, normalize=False, batch_size=16, seed=0))
    assert dict(zip(smoothed["attack"], smoothed["condition"])) == {"none": "clean", "fgsm": "attack", "pgd": "attack"}


# --- rows written before the condition column ---------------------------------------------------------

OLD_ROWS = [  # (command, the columns it filled, what the row measured)
    ("train-teacher", {"split": "test", "metric": "accuracy"}, "clean"),
    ("train-teacher", {"split": "test", "corruption": "fog", "severity": 3, "metric": "accuracy"}, "corruption"),
    ("train-teacher", {"split": "test", "metric": "mean_accuracy"}, "corruption"),
    ("train-student", {"split": "test", "role": "teacher", "metric": "loss"}, "clean"),
    ("adv-noise-gnt", {"split": "test", "role": "gnt", "sigma": 0.1, "metric": "gaussian_accuracy"}, "noise"),
    ("adv-noise-ant", {"split": "test", "role": "ant", "epsilon": 4.0, "metric": "generator_noise_accuracy"}, "noise"),
    ("adv-noise-ant", {"split": "test", "role": "generator", "epsilon": 4.0, "metric": "noise_l2"}, "noise"),
    ("fgsm-eval", {"split": "test", "attack": "fgsm", "norm": "Linf", "epsilon": 0.0, "metric": "accuracy"}, "clean"),
    ("fgsm-train", {"split": "test", "attack": "pgd", "norm": "Linf", "epsilon": EPS8, "metric": "loss"}, "attack"),
    ("freq-split-eval", {"split": "test", "part": "original", "metric": "accuracy"}, "clean"),
    ("freq-split-eval", {"split": "test", "radius": 4.0, "part": "low", "metric": "accuracy"}, "view"),
    ("freq-split-eval", {"split": "test", "radius": 4.0, "metric": "right_high_wrong_low"}, "view"),
    ("freq-split-train", {"split": "train", "part": "high", "radius": 8.0, "labels": "natural", "metric": "accuracy"}, "view"),
    ("freq-split-train", {"split": "test", "part": "original", "radius": 8.0, "labels": "natural", "metric": "accuracy"}, "clean"),
    ("freq-split-smooth", {"split": "test", "rho": 0.5, "attack": "none", "epsilon": 0.0, "metric": "accuracy"}, "clean"),
    ("freq-split-smooth", {"split": "test", "rho": 0.5, "attack": "fgsm", "epsilon": EPS8, "metric": "accuracy"}, "attack"),
    ("style-transfer", {"extractor": "vgg19", "metric": "total_loss"}, "style"),
    ("eval-corruption", {"split": "test", "metric": "error"}, "clean"),
    ("eval-corruption", {"corruption": "fog", "metric": "ce"}, "corruption"),
    ("eval-corruption", {"metric": "relative_mce"}, "corruption"),
    ("denoise-train", {"split": "test", "metric": "psnr"}, "noise"),
    ("denoise-eval", {"split": "test", "role": "purified", "inputs": "noisy", "metric": "accuracy"}, "noise"),
    ("denoise-eval", {"split": "test", "role": "classifier", "inputs": "clean", "metric": "accuracy"}, "clean"),
    ("denoise-eval", {"split": "test", "attack": "pgd", "epsilon": 2 / 255, "setting": "white-box", "metric": "accuracy"}, "attack"),
    ("corrupt", {"corruption": "fog", "severity": 1, "metric": "images"}, "copy"),
    ("benchmark", {"split": "test", "metric": "accuracy"}, "clean"),
    ("benchmark", {"split": "test", "attack": "autoattack-apgd-ce", "norm": "Linf", "epsilon": EPS8, "metric": "accuracy"}, "attack"),
]


def _old_rows() -> pd.DataFrame:
    identity = {"run_id": "20250101-000000-old", "dataset": "digits", "model": "m", "value": 0.5}
    return pd.DataFrame([{**identity, "command": command, **columns} for command, columns, _ in OLD_ROWS])


def test_rows_written_before_the_condition_column_get_theirs_when_read(tmp_path):
    old = tmp_path / "metrics.csv"
    _old_rows().to_csv(old, index=False)
    read = read_metrics(old)
    assert list(read["condition"]) == [condition for _, _, condition in OLD_ROWS]
    assert set(read["condition"]) <= set(CONDITIONS)


def test_a_results_table_of_older_rows_takes_new_ones_and_keeps_the_old_conditions(tmp_path):
    table = tmp_path / "sweep.csv"
    _old_rows().to_csv(table, index=False)
    new = metrics_frame([{"run_id": "new", "command": "train-teacher", "dataset": "digits", "model": "m", "metric": "accuracy",
                          "value": 0.25, "condition": "noise"}])  # fmt: skip
    append_results(new, table)
    written = pd.read_csv(table)
    assert list(written["condition"]) == [condition for _, _, condition in OLD_ROWS] + ["noise"]


# --- the report selects by condition -------------------------------------------------------------------


def _run(root, command, name, rows, *, config=None, seed=0):
    with recorded_run(command, {"name": name, "seed": seed, **(config or {})}, runs_dir=root, name=name, dataset="digits",
                      model="tiny_cnn", seed=seed) as run:  # fmt: skip
        run.write_metrics(rows)
    return str(run.directory)


def _cell(written, label, column):
    frame = written["page"].leaderboard.table.frame
    row = frame[[cell.text == label for cell in frame["model"]]].iloc[0]
    return row[column] if column in frame else None


def test_rows_are_placed_by_their_condition_not_by_their_blank_columns(tmp_path):
    root = tmp_path / "runs"
    # an accuracy on noisy images with no column to say so: blank columns would pass it as clean
    teacher = _run(root, "train-teacher", "teacher", [{"split": "test", "condition": "clean", "metric": "accuracy", "value": 0.9},
                                                      {"split": "test", "condition": "noise", "metric": "accuracy", "value": 0.3}])
    _run(root, "fgsm-eval", "attacked", [{"attack": "fgsm", "epsilon": EPS8, "condition": "attack", "metric": "accuracy", "value": 0.2},
                                         {"attack": "fgsm", "epsilon": 0.0, "condition": "clean", "metric": "accuracy", "value": 0.8}],
         config={"model_path": teacher})  # fmt: skip
    written = build_report(root, tmp_path / "page")
    assert _cell(written, "teacher · teacher", "clean").values == (0.9,)  # the evaluation's 0.8 comes second to the run's own
    assert _cell(written, "teacher · teacher", "FGSM ε=8/255").values == (0.2,)
    assert set(pd.read_csv(tmp_path / "page" / "report.csv")["condition"]) == {"clean", "noise", "attack"}


def test_a_command_that_declares_no_section_gets_other_runs_last(tmp_path):
    root = tmp_path / "runs"
    _run(root, "retired-command", "old", [{"split": "test", "condition": "clean", "metric": "accuracy", "value": 0.5}])
    _run(root, "train-teacher", "teacher", [{"split": "test", "condition": "clean", "metric": "accuracy", "value": 0.9}])
    sections = build_report(root, tmp_path / "page")["page"].sections
    assert [content.section.anchor for content in sections] == ["noise-training", "other"]
    assert sections[1].tables[0].frame["accuracy"].iloc[0].values == (0.5,)


def test_runs_written_before_the_condition_column_still_make_the_page(tmp_path):
    root = tmp_path / "runs"
    teacher = _run(root, "train-teacher", "teacher", [{"split": "test", "condition": "clean", "metric": "accuracy", "value": 0.9}])
    evaluation = _run(root, "fgsm-eval", "attacked", [{"condition": "clean", "metric": "accuracy", "value": 0.0}], config={"model_path": teacher})
    old = pd.DataFrame({"run_id": [evaluation.rsplit("/", 1)[1]] * 2, "command": "fgsm-eval", "dataset": "digits", "model": "m",
                        "metric": "accuracy", "value": [0.85, 0.25], "split": "test", "attack": "pgd", "epsilon": [0.0, EPS8]})  # fmt: skip
    old.to_csv(f"{evaluation}/metrics.csv", index=False)  # as written before the column existed
    written = build_report(root, tmp_path / "page")
    assert _cell(written, "teacher · teacher", "PGD ε=8/255").values == (0.25,)
    report = pd.read_csv(tmp_path / "page" / "report.csv")
    assert list(report.loc[report["command"] == "fgsm-eval", "condition"]) == ["clean", "attack"]


# --- plain mCE only where the baseline's errors mean something -----------------------------------------


def _corruption_eval(root, model, name, errors, n_examples, *, baseline=None):
    """An eval-corruption run: per-set errors on two common corruptions at five severities (with the
    set size where given), and against a baseline its CE, mCE and relative mCE."""
    sizes = {} if n_examples is None else {"n_examples": n_examples}
    rows = [{"condition": "corruption", "corruption": corruption, "severity": severity, "metric": "error", "value": errors, **sizes}
            for corruption in ("gaussian_noise", "fog") for severity in range(1, 6)]  # fmt: skip
    rows.append({"condition": "corruption", "metric": "mean_accuracy", "value": 1 - errors})
    if baseline is not None:
        rows += [{"condition": "corruption", "corruption": c, "metric": "ce", "value": 2.0} for c in ("gaussian_noise", "fog")]
        rows += [{"condition": "corruption", "metric": "mce", "value": 2.0}, {"condition": "corruption", "metric": "relative_mce", "value": 1.5}]
    return _run(root, "eval-corruption", name, rows, config={"model_path": model, "baseline": baseline})


@pytest.mark.parametrize("n_examples, shown", [(100, False), (10_000, True), (None, True)])
def test_plain_mce_is_left_out_where_the_baseline_misclassified_too_few_images(tmp_path, n_examples, shown):
    """The baseline's error is 2 % at each of five severities: 10 % of the images summed, 10 of 100
    (fewer than the rule's 100: left out), 1000 of 10 000 (kept); no recorded set size: kept."""
    root = tmp_path / "runs"
    teacher = _run(root, "train-teacher", "teacher", [{"split": "test", "condition": "clean", "metric": "accuracy", "value": 0.99}])
    student = _run(root, "train-student", "student", [{"split": "test", "condition": "clean", "metric": "accuracy", "value": 0.95}],
                   config={"teacher": teacher})  # fmt: skip
    baseline = _corruption_eval(root, teacher, "teacher-C", 0.02, n_examples)
    _corruption_eval(root, student, "student-C", 0.04, n_examples, baseline=baseline)
    written = build_report(root, tmp_path / "page")
    board = written["page"].leaderboard.table
    assert isinstance(_cell(written, "student · student", "relative mCE"), Stat)
    assert ("mCE" in board.frame.columns) is shown and (MCE_RULE in board.note) is not shown
    for fragment in (written["results"].read_text(), readme_leaderboard(written["markdown"].read_text())):  # docs/results.md, README
        assert (MCE_RULE in fragment) is not shown and ("| mCE" in fragment) is shown
    assert f"fewer than {MCE_MIN_BASELINE_ERRORS} test images" in MCE_RULE
    if shown:
        assert _cell(written, "student · student", "mCE").values == (2.0,) and _cell(written, "teacher · teacher", "mCE") == "baseline"
