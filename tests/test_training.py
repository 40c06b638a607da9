"""SWA averaging and batch-norm re-estimation, EMA through fit, strategies, and the digits accuracy pin."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from noisegame_cli.training.callbacks import StochasticWeightAveraging, reestimate_batch_norm


def _bn_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="dense")(inputs)
    return keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(hidden))


def test_swa_average_is_exact_and_batch_norm_is_reestimated():
    model = _bn_model()
    batches = [np.full((4, 3), v, np.float32) + np.arange(12, dtype=np.float32).reshape(4, 3) for v in (0.0, 10.0)]
    swa = StochasticWeightAveraging(start_epoch=2, bn_data=batches)
    swa.set_model(model)
    swa.on_train_begin()
    dense = model.get_layer("dense")
    visited = []
    for epoch, scale in enumerate((100.0, 1.0, 2.0, 6.0)):
        dense.kernel.assign(np.full((3, 2), scale, np.float32))
        dense.bias.assign(np.full((2,), -scale, np.float32))
        swa.on_epoch_end(epoch)
        if epoch + 1 >= 2:
            visited.append(scale)
    swa.on_train_end()
    assert swa.count == 3
    np.testing.assert_allclose(dense.kernel.numpy(), np.mean(visited), rtol=1e-6)  # epoch 1 (scale 100) excluded
    np.testing.assert_allclose(dense.bias.numpy(), -np.mean(visited), rtol=1e-6)
    # moving mean = exact mean of the two batch means of the averaged dense layer's output
    expected = np.mean([(b @ dense.kernel.numpy() + dense.bias.numpy()).mean(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), expected, rtol=1e-5)
    assert model.get_layer("bn").momentum == pytest.approx(0.99)  # restored after re-estimation


def test_reestimate_counts_batches_and_changes_statistics():
    model = _bn_model()
    before = model.get_layer("bn").moving_variance.numpy().copy()
    seen = reestimate_batch_norm(model, [np.random.default_rng(i).normal(5, 3, (8, 3)).astype(np.float32) for i in range(3)])
    assert seen == 3
    assert not np.allclose(model.get_layer("bn").moving_variance.numpy(), before)


def test_swa_and_ema_run_through_the_cli(invoke, runs_dir):
    for flags in (["--swa-start", "1", "--epochs", "2"], ["--ema"]):
        result = invoke("train-teacher", "--smoke", "--runs-dir", runs_dir, *flags)
        assert result.exit_code == 0, result.output
    assert "SWA: averaged the weights of 2 epochs" in invoke("train-teacher", "--smoke", "--runs-dir", runs_dir, "--swa-start", "1", "--epochs", "2").output


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_replicas(tmp_path):
    """A fresh process, so TensorFlow can still split the CPU into two logical devices."""
    runs = tmp_path / "runs"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "noisegame_cli", "train-teacher", "--smoke", "--strategy", "mirrored", "--runs-dir", str(runs)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = (runs / "train-teacher").iterdir()
    env_record = json.loads((run / "env.json").read_text())
    assert sum("CPU" in d for d in env_record["devices"]) == 2
    assert (run / "model.keras").is_file() and (run / "metrics.csv").is_file()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize("command, run_folder", [(["train-teacher"], "train-teacher"), (["fgsm", "train"], "fgsm-train")])
def test_multi_worker_strategy_trains_across_two_local_workers(tmp_path, command, run_folder):
    """Two worker processes on 127.0.0.1, started with different seeds: synchronous training broadcasts
    the initial weights and averages every step's gradients, so both end with the same trainable
    weights (batch-norm statistics stay per worker: each sees its own half of every batch)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": tf_config}
        arguments = [
            sys.executable, "-m", "noisegame_cli", *command, "--smoke", "--strategy", "multi-worker",
            "--seed", str(index + 1), "--runs-dir", str(tmp_path / f"worker{index}"),
        ]  # fmt: skip
        workers.append(subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    try:
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-2000:]
    models = []
    for index in range(2):
        (run,) = (tmp_path / f"worker{index}" / run_folder).iterdir()
        assert json.loads((run / "status.json").read_text())["status"] == "completed"
        models.append(keras.saving.load_model(run / "model.keras"))
    assert len(pd.read_csv(run / "history.csv")) == 1
    first, second = ([weight.numpy() for weight in model.trainable_weights] for model in models)
    assert len(first) > 2
    for mine, theirs in zip(first, second):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_digits_teacher_reaches_95_percent(invoke, runs_dir):
    result = invoke(
        "train-teacher", "--dataset", "digits", "--model", "small_cnn", "--augment", "crop",
        "--epochs", "6", "--batch-size", "32", "--learning-rate", "0.002", "--runs-dir", runs_dir,
    )
    assert result.exit_code == 0, result.output
    (run,) = (runs_dir / "train-teacher").iterdir()
    metrics = pd.read_csv(run / "metrics.csv").set_index("metric")
    assert metrics.loc["accuracy", "value"] >= 0.95


class _InterruptAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_from_its_last_finished_epoch(invoke, runs_dir, monkeypatch):
    from noisegame_cli.commands import train_teacher

    original = train_teacher.plateau_callbacks
    monkeypatch.setattr(train_teacher, "plateau_callbacks", lambda **kw: [*original(**kw), _InterruptAfterEpoch(1)])
    first = invoke("train-teacher", "--smoke", "--epochs", "4", "--patience", "9", "--runs-dir", runs_dir)
    assert first.exit_code == 130 and "interrupted" in first.stderr
    (run,) = (runs_dir / "train-teacher").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert (run / "backup").is_dir() and not (run / "metrics.csv").exists()
    assert invoke("report", runs_dir).output.count("not included (interrupted)") == 1

    monkeypatch.setattr(train_teacher, "plateau_callbacks", original)
    resumed = invoke("train-teacher", "--resume", run)
    assert resumed.exit_code == 0, resumed.output
    assert list((runs_dir / "train-teacher").iterdir()) == [run]  # same directory, no new run
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [0, 1, 2, 3]  # epochs 2 and 3 only were trained again
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert (run / "metrics.csv").is_file() and not (run / "backup").exists()
    again = invoke("train-teacher", "--resume", run)
    assert again.exit_code != 0 and "already completed" in again.stderr
