"""Evaluation scaled out: benchmark shards merged into the unsharded card, shards that do not fit
refused in one line, every part of a benchmark resumed, the shard of a multi-worker TF_CONFIG, and the
evaluations on two mirrored devices giving the numbers of one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import only_run_dir
from helpers import assert_one_line_error, quick_digits_model

import noisegame_cli
from noisegame_cli.commands.benchmark import Config
from noisegame_cli.config import resolve_config
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation import autoattack as chunks
from noisegame_cli.evaluation import benchmark as measure
from noisegame_cli.evaluation import corruption
from noisegame_cli.evaluation.parts import PartStore, model_fingerprint
from noisegame_cli.evaluation.shards import SHARD_FILE, Shard, shard_points
from noisegame_cli.runs import read_status

COUNT, CHUNK = 24, 8  # three chunks: shard 0/2 holds chunk 0, shard 1/2 chunks 1 and 2
SETS = 2 * 2  # corruptions x severities below
FLAGS = ["--smoke", "--n-examples", str(COUNT), "--chunk-size", str(CHUNK), "--corruptions", "gaussian_noise,impulse_noise",
         "--severities", "2,5", "--batch-size", "4", "--name", "card", "--no-adversarial"]  # fmt: skip
ATTACKED = [*FLAGS[:-1], "--eps", "2/255", "--attack-steps", "3", "--square-queries", "10"]  # with AutoAttack: slow


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return quick_digits_model(tmp_path_factory.mktemp("model"), epochs=1)


def benchmark_and_shards(root, model_path, flags):
    """An unsharded benchmark and its two shards under ``root``, each in its own runs folder."""
    from click.testing import CliRunner

    from noisegame_cli.cli import cli

    for folder, extra in (("whole", []), ("shard0", ["--shard", "0/2"]), ("shard1", ["--shard", "1/2"])):
        result = CliRunner().invoke(cli, ["benchmark", "--model-path", str(model_path), *flags, *extra, "--runs-dir", str(root / folder)],
                                    catch_exceptions=False)  # fmt: skip
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model_path):
    """Clean and corruption parts only: a few seconds."""
    return benchmark_and_shards(tmp_path_factory.mktemp("runs"), model_path, FLAGS)


@pytest.fixture(scope="module")
def attacked_runs(tmp_path_factory, model_path):
    """With AutoAttack: half a minute and more."""
    return benchmark_and_shards(tmp_path_factory.mktemp("attacked"), model_path, ATTACKED)


def whole_run(runs):
    return only_run_dir(runs / "whole", "benchmark")


def shard_run(runs, index: int):
    return only_run_dir(runs / f"shard{index}", "benchmark")


def card_and_metrics(run_dir):
    metrics = pd.read_csv(run_dir / "metrics.csv").drop(columns=["run_id"])
    return json.loads((run_dir / "card.json").read_text()), metrics


def assert_same_card(run_dir, expected_dir):
    card, metrics = card_and_metrics(run_dir)
    expected_card, expected_metrics = card_and_metrics(expected_dir)
    assert card == expected_card
    pd.testing.assert_frame_equal(metrics, expected_metrics, check_exact=True)


def merged_run(invoke, tmp_path, runs):
    result = invoke("benchmark", "--merge", runs / "shard0", "--merge", shard_run(runs, 1), "--runs-dir", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    return only_run_dir(tmp_path / "merged", "benchmark")


def test_two_shards_merged_give_the_unsharded_card(invoke, tmp_path, runs):
    expected, expected_metrics = card_and_metrics(whole_run(runs))
    assert expected["corruptions_source"] == "generated" and len(expected_metrics) > 15  # numbers worth comparing
    first, second = shard_run(runs, 0), shard_run(runs, 1)
    assert first.name.endswith("card-shard-0-of-2") and not (first / "card.json").exists()
    records = [json.loads((run / SHARD_FILE).read_text()) for run in (first, second)]
    assert [(r["shard"], r["start"], r["stop"]) for r in records] == [("0/2", 0, 8), ("1/2", 8, 24)]
    assert set(pd.read_csv(first / "metrics.csv")["shard"]) == {"0/2"}  # a shard's rows say so

    merged = merged_run(invoke, tmp_path, runs)
    assert_same_card(merged, whole_run(runs))
    assert json.loads((merged / "shards.json").read_text())["shards"] == [str(first), str(second)]
    for name in ("clean", "gaussian_noise-2", "impulse_noise-5"):  # the point-by-point outcomes too
        with np.load(merged / "parts" / f"{name}.npz") as mine, np.load(whole_run(runs) / "parts" / f"{name}.npz") as theirs:
            assert np.array_equal(mine["correct"], theirs["correct"]) and np.array_equal(mine["loss"], theirs["loss"])


@pytest.mark.slow  # three benchmarks with AutoAttack: half a minute on two cores
def test_shards_attacked_and_merged_give_the_unsharded_card(invoke, tmp_path, attacked_runs):
    expected, _ = card_and_metrics(whole_run(attacked_runs))
    assert 0 < expected["autoattack_acc"] < expected["clean_acc"]  # some points broken, some not
    assert sorted(p.name for p in (shard_run(attacked_runs, 1) / "autoattack").iterdir()) == ["chunk-00001.json", "chunk-00002.json"]
    merged = merged_run(invoke, tmp_path, attacked_runs)
    assert_same_card(merged, whole_run(attacked_runs))
    for index in range(3):  # which attack broke each point
        mine, theirs = (json.loads(chunks.chunk_path(run, index).read_text()) for run in (merged, whole_run(attacked_runs)))
        assert mine["broken_by"] == theirs["broken_by"]


def _edit(run_dir, name, change):
    path = run_dir / name
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


MISFITS = {
    "missing": (lambda first, second: [first], "shard(s) 1/2 missing"),
    "duplicate": (lambda first, second: [first, second, _edited(first, "status.json", lambda s: None)], "are both shard 0/2"),
    "other settings": (lambda first, second: [first, _edited(second, "config.json", lambda c: c.update(eps=4 / 255))], "was run with --eps"),
    "other model": (lambda first, second: [first, _edited(second, SHARD_FILE, lambda r: r.update(model="0" * 16))], "different models"),
    "unfinished": (lambda first, second: [first, _edited(second, "status.json", lambda s: s.update(status="interrupted"))], "did not finish"),
    "overlapping": (lambda first, second: [first, _edited(second, SHARD_FILE, lambda r: r.update(start=4))], "overlapping"),
    "other code": (lambda first, second: [first, _edited(second, "env.json", lambda e: e["git"].update(commit="f" * 40))], "different code"),
}


def _edited(run_dir, name, change):
    copy = run_dir.parent / f"{run_dir.name}-edited"
    shutil.copytree(run_dir, copy)
    _edit(copy, name, change)
    return copy


@pytest.mark.parametrize("misfit", MISFITS)
def test_shards_that_do_not_fit_together_are_refused_in_one_line(invoke, tmp_path, runs, misfit):
    choose, message = MISFITS[misfit]
    folders = {}
    for index in range(2):
        folders[index] = tmp_path / f"shard{index}"
        shutil.copytree(shard_run(runs, index), folders[index])
    arguments = [item for folder in choose(folders[0], folders[1]) for item in ("--merge", folder)]
    result = invoke("benchmark", *arguments, "--runs-dir", tmp_path / "merged")
    assert_one_line_error(result, message)
    assert not (tmp_path / "merged").exists()  # refused before any run directory


def test_every_part_is_resumed_and_the_card_is_the_uninterrupted_ones(invoke, tmp_path, runs, model_path, monkeypatch):
    """Interrupted after the clean part and three corruption sets; resumed, it computes only the last
    set and ends with the uninterrupted run's card and metrics (AutoAttack's chunks resume as
    test_benchmark_cli checks)."""
    sets = []
    real_sets, real_clean = corruption.point_outcomes, measure.point_outcomes

    def interrupted_after_three_sets(*args, **kwargs):
        if len(sets) == 3:
            raise KeyboardInterrupt
        sets.append(args[1])
        return real_sets(*args, **kwargs)

    monkeypatch.setattr(corruption, "point_outcomes", interrupted_after_three_sets)
    result = invoke("benchmark", "--model-path", model_path, *FLAGS, "--runs-dir", tmp_path)
    assert result.exit_code == 130
    run_dir = only_run_dir(tmp_path, "benchmark")
    assert read_status(run_dir) == "interrupted" and not (run_dir / "card.json").exists()
    saved = {p.name for p in (run_dir / "parts").iterdir()}
    assert saved == {"clean.npz", "gaussian_noise-2.npz", "gaussian_noise-5.npz", "impulse_noise-2.npz"}

    computed = []
    monkeypatch.setattr(corruption, "point_outcomes", lambda *a, **k: computed.append("set") or real_sets(*a, **k))
    monkeypatch.setattr(measure, "point_outcomes", lambda *a, **k: computed.append("clean") or real_clean(*a, **k))
    result = invoke("benchmark", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert computed == ["set"] and len(sets) == SETS - 1  # only impulse noise at severity 5
    assert_same_card(run_dir, whole_run(runs))


def test_a_saved_part_is_only_reused_for_the_same_model_and_settings(runs, model_path):
    import keras

    model = keras.models.load_model(model_path)
    other = keras.models.clone_model(model)  # the same layers, other weights
    assert model_fingerprint(model) == model_fingerprint(keras.models.load_model(model_path)) != model_fingerprint(other)
    with np.load(whole_run(runs) / "parts" / "clean.npz") as saved:
        identity = json.loads(str(saved["identity"]))
    assert identity["model"] == model_fingerprint(model) and (identity["start"], identity["stop"], identity["batch_size"]) == (0, COUNT, 4)
    assert len(PartStore(whole_run(runs), identity).read("clean")) == COUNT
    for change, message in (({"model": model_fingerprint(other)}, "model"), ({"seed": 1}, "seed 0")):
        with pytest.raises(UserError, match=f"computed with other settings \\({message}"):
            PartStore(whole_run(runs), {**identity, **change}).read("clean")


def test_shards_are_runs_of_whole_chunks_and_bad_shards_are_refused(invoke, tmp_path, model_path, runs):
    assert [(p.start, p.stop) for p in (shard_points(25, 5, Shard(k, 3)) for k in range(3))] == [(0, 5), (5, 15), (15, 25)]
    assert shard_points(25, 5, Shard(2, 3)).chunks() == [(3, 15, 20), (4, 20, 25)]  # chunks keep their index in the whole set
    common = ["benchmark", "--model-path", model_path, *FLAGS, "--runs-dir", tmp_path]
    assert_one_line_error(invoke(*common, "--shard", "2/2"), "must be below N")
    assert_one_line_error(invoke(*common, "--shard", "half"), "takes K/N")
    assert_one_line_error(invoke(*common, "--shard", "0/4"), "3 chunk(s) of --chunk-size 8, fewer than 4 shards")
    assert_one_line_error(invoke(*common, "--shard", "0/2", "--batch-size", "3"), "a multiple of --batch-size (3)")
    assert_one_line_error(invoke(*common, "--shard", "0/2", "--merge", runs / "shard0"), "--merge puts finished shards together")
    assert_one_line_error(invoke("benchmark", "--merge", runs / "whole"), "no shard runs in")
    assert not (tmp_path / "benchmark").exists()


def test_a_multi_worker_benchmark_measures_the_shard_of_its_tf_config(monkeypatch, model_path):
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    config = resolve_config(Config, {}, {"model_path": str(model_path), "strategy": "multi-worker"})
    assert config.shard == "2/3" and config.process_strategy == "mirrored"  # the chief is shard 0; no collective communication
    with pytest.raises(UserError, match="give --shard without it"):
        resolve_config(Config, {}, {"model_path": str(model_path), "strategy": "multi-worker", "shard": "0/3"})
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        resolve_config(Config, {}, {"model_path": str(model_path), "strategy": "multi-worker"})


# --- several devices --------------------------------------------------------------------------------

MIRRORED = """
import json, sys
from click.testing import CliRunner
from noisegame_cli.cli import cli
for arguments in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
print("MIRRORED OK")
"""


@pytest.mark.slow  # a fresh TensorFlow process running four evaluations beside the same ones here: minutes on two cores
def test_mirrored_evaluations_give_the_numbers_of_one_device(invoke, tmp_path, attacked_runs, model_path):
    """benchmark, eval-corruption, fgsm eval and denoise eval on two mirrored CPU replicas (a fresh
    process, so that TensorFlow can still split the CPU) against one device: the same numbers."""
    trained = invoke("denoise", "train", "--smoke", "--loss", "l1", "--epochs", "1", "--limit", "64", "--runs-dir", tmp_path / "denoiser")
    assert trained.exit_code == 0, trained.output
    denoiser = only_run_dir(tmp_path / "denoiser", "denoise-train")
    commands = {
        "benchmark": ["benchmark", "--model-path", model_path, *ATTACKED],
        "eval-corruption": ["eval-corruption", "--smoke", "--model-path", model_path, "--batch-size", "10", "--limit", "30",
                            "--corruptions", "gaussian_noise,impulse_noise", "--severities", "1,4"],
        "fgsm-eval": ["fgsm", "eval", "--smoke", "--model-path", model_path, "--batch-size", "10", "--limit", "30", "--eps", "0,4/255",
                      "--targeted", "3"],
        "denoise-eval": ["denoise", "eval", "--smoke", "--denoiser", denoiser, "--classifier", model_path, "--batch-size", "10",
                         "--limit", "30", "--corruptions", "gaussian_noise", "--eps", "4/255"],
    }
    mirrored = [[*map(str, arguments), "--strategy", "mirrored", "--runs-dir", str(tmp_path / "mirrored")] for arguments in commands.values()]
    root = os.path.dirname(os.path.dirname(noisegame_cli.__file__))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": root}
    process = subprocess.Popen([sys.executable, "-c", MIRRORED, json.dumps(mirrored)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for name, arguments in commands.items():
        if name != "benchmark":  # the unsharded benchmark of the fixture is the one-device run
            assert invoke(*arguments, "--runs-dir", tmp_path / "one").exit_code == 0
    output, errors = process.communicate(timeout=900)
    assert process.returncode == 0 and "MIRRORED OK" in output, errors[-3000:]
    for name in commands:
        run = only_run_dir(tmp_path / "mirrored", name)
        assert sum("CPU" in device for device in json.loads((run / "env.json").read_text())["devices"]) == 2, name
        one = whole_run(attacked_runs) if name == "benchmark" else only_run_dir(tmp_path / "one", name)
        mine, theirs = (pd.read_csv(r / "metrics.csv").drop(columns=["run_id"]) for r in (run, one))
        loss = mine["metric"].str.contains("loss")  # attack losses are summed batch by batch: equal to float rounding
        pd.testing.assert_frame_equal(mine[~loss], theirs[~loss], check_exact=True, obj=name)
        np.testing.assert_allclose(mine.loc[loss, "value"], theirs.loc[loss, "value"], rtol=1e-12, err_msg=name)
    assert_same_card(only_run_dir(tmp_path / "mirrored", "benchmark"), whole_run(attacked_runs))
