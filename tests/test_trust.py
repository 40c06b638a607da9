"""Runs a researcher can trust (issue 11): seeded runs repeat exactly, a shared results table keeps
every row under concurrent writers, the report skips damaged runs, every path and name is checked
before any work (one line, nothing written), and SIGTERM interrupts a run that ``--resume`` finishes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import click
import pandas as pd
import pytest

from helpers import assert_one_line_error, quick_digits_model
from noisegame_cli import checks
from noisegame_cli.cli import cli
from noisegame_cli.commands import COMMANDS
from noisegame_cli.config import check_model_source, field_kinds, flag_name
from noisegame_cli.runs import metrics_frame, recorded_run

ROOT = Path(__file__).resolve().parents[1]
PATH_CHECKS = (checks.existing_file, checks.existing_dir, checks.existing_path, checks.writable_dir, checks.writable_file,
               checks.writable_existing_dir, check_model_source)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout's package, TensorFlow's chatter off."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def start_cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "noisegame_cli", *map(str, args)], env=cli_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def the_run(runs: Path, command: str) -> Path:
    found = sorted((runs / command).iterdir())
    assert len(found) == 1, found
    return found[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with the bytes of its files (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def without_wall_time(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=[c for c in history.columns if "seconds" in c or "time" in c])


def leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    """(command words, Click command) for every command built from a config dataclass."""
    found = []
    for name in COMMANDS:
        command = cli.get_command(None, name)
        children = command.commands.items() if isinstance(command, click.Group) else [(None, command)]
        found += [(tuple(filter(None, (name, child_name))), child) for child_name, child in children if hasattr(child, "config_class")]
    return found


# --- 1. seeded runs repeat exactly -------------------------------------------------------------------

TRAINERS = {
    "train-teacher": (("train-teacher",), "train-teacher"),
    "fgsm train": (("fgsm", "train", "--eps", "2/255"), "fgsm-train"),
    # RandomCorruption draws a corruption, a severity and the corruption's own randomness per image
    "train-teacher --augment-corruptions": (("train-teacher", "--augment-corruptions", "gaussian_noise,impulse_noise"), "train-teacher"),
}


@pytest.mark.slow
@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_the_same_seed_gives_the_same_numbers_in_two_processes(tmp_path, trainer):
    words, folder = TRAINERS[trainer]
    processes = [start_cli(*words, "--smoke", "--epochs", "2", "--seed", "7", "--runs-dir", tmp_path / f"runs{i}") for i in (1, 2)]
    for process in processes:
        code, out, err = finish(process)
        assert code == 0, out + err
    runs = [the_run(tmp_path / f"runs{i}", folder) for i in (1, 2)]
    for run in runs:
        env = json.loads((run / "env.json").read_text())
        assert env["deterministic_ops"] is True and env["seed"] == 7
    first, second = (pd.read_csv(run / "metrics.csv").drop(columns="run_id") for run in runs)
    assert len(first) > 0
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    first, second = (pd.read_csv(run / "history.csv") for run in runs)
    assert len(first) == 2 and list(first.columns) == list(second.columns)
    assert "loss" in first and "epoch_seconds" in first  # the wall-time column exists and is left out below
    pd.testing.assert_frame_equal(without_wall_time(first), without_wall_time(second), check_exact=True)


def test_nondeterministic_ops_are_recorded_as_such(invoke, runs_dir):
    result = invoke("train-teacher", "--smoke", "--nondeterministic", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    run = the_run(runs_dir, "train-teacher")
    assert json.loads((run / "env.json").read_text())["deterministic_ops"] is False
    assert json.loads((run / "config.json").read_text())["nondeterministic"] is True


# --- 2. a results table shared by concurrent writers ----------------------------------------------

WORKERS, APPENDS = 8, 6
APPEND_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from noisegame_cli.runs import append_results, metrics_frame

    table, worker, folder = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    (folder / f"ready-{worker}").touch()
    while not (folder / "go").exists():
        time.sleep(0.005)
    for index in range(int(sys.argv[4])):
        rows = [{"run_id": f"w{worker}-{index}", "command": "sweep", "dataset": "digits", "model": "tiny_cnn",
                 "metric": metric, "value": worker * 1000 + index + offset, "condition": "clean"}
                for offset, metric in ((0.25, "accuracy"), (0.5, "loss"))]
        if worker % 2:  # half the writers add a column, so the table widens while others append
            rows = [{**row, "sigma": 0.1 * worker} for row in rows]
        append_results(metrics_frame(rows), table)
""")


@pytest.mark.slow
def test_concurrent_writers_keep_every_row_of_a_shared_table(tmp_path):
    table = tmp_path / "shared" / "results.csv"
    table.parent.mkdir()
    earlier = metrics_frame([{"run_id": "earlier", "command": "train-teacher", "dataset": "digits", "model": "small_cnn",
                              "metric": "accuracy", "value": 0.875, "condition": "clean"}])  # fmt: skip
    earlier.to_csv(table, index=False)
    signals = tmp_path / "signals"
    signals.mkdir()
    workers = [subprocess.Popen([sys.executable, "-c", APPEND_WORKER, str(table), str(w), str(signals), str(APPENDS)], env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(WORKERS)]  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list(signals.glob("ready-*"))) < WORKERS and time.monotonic() < deadline and all(w.poll() is None for w in workers):
        time.sleep(0.01)
    (signals / "go").touch()  # all start appending at once
    for worker in workers:
        code, out, err = finish(worker)
        assert code == 0, out + err

    result = pd.read_csv(table)
    assert len(result) == 1 + WORKERS * APPENDS * 2
    assert not result.duplicated(["run_id", "metric"]).any()
    expected = {(f"w{w}-{i}", metric): w * 1000 + i + offset for w in range(WORKERS) for i in range(APPENDS)
                for offset, metric in ((0.25, "accuracy"), (0.5, "loss"))}  # fmt: skip
    expected[("earlier", "accuracy")] = 0.875  # the row written before the sweep is still there
    assert dict(zip(zip(result["run_id"], result["metric"]), result["value"])) == expected
    assert list(result.columns[:6]) == ["run_id", "command", "dataset", "model", "metric", "value"] and "sigma" in result
    odd = result["run_id"].str.match(r"w\d*[13579]-")
    assert result.loc[odd, "sigma"].notna().all() and result.loc[~odd, "sigma"].isna().all()
    leftovers = [p.name for p in table.parent.iterdir() if p.name not in ("results.csv", "results.csv.lock")]
    assert not leftovers  # no temporary file is left behind


# --- 3. the report skips damaged runs --------------------------------------------------------------


def fake_run(runs: Path, name: str, accuracy: float) -> Path:
    """A completed train-teacher run directory with one metric row, written through the run API."""
    with recorded_run("train-teacher", {"command": "train-teacher", "name": name}, runs_dir=runs, name=name, dataset="digits",
                      model="tiny_cnn", seed=0) as run:  # fmt: skip
        run.write_metrics([{"split": "test", "condition": "clean", "metric": "accuracy", "value": accuracy}])
    return run.directory


def test_report_skips_damaged_runs_and_lists_each_with_its_reason(invoke, runs_dir):
    good = [fake_run(runs_dir, "good-a", 0.5), fake_run(runs_dir, "good-b", 0.75)]
    damaged = {name: fake_run(runs_dir, name, 0.25) for name in ("garbage-csv", "bad-config", "bad-env", "few-columns")}
    (damaged["garbage-csv"] / "metrics.csv").write_bytes(bytes(range(256)) * 8 + b'\n"unclosed,\x00\xff\n')
    (damaged["bad-config"] / "config.json").write_text('{"command": "train-teacher", "epochs": ')
    (damaged["bad-env"] / "env.json").write_bytes(b"\x00\x9c not json")
    pd.DataFrame({"metric": ["accuracy"], "value": [0.25]}).to_csv(damaged["few-columns"] / "metrics.csv", index=False)
    before = snapshot(runs_dir)

    result = invoke("report", runs_dir)
    assert result.exit_code == 0, result.output
    report = pd.read_csv(runs_dir / "report.csv")
    assert set(report["run_id"]) == {run.name for run in good}
    assert sorted(report["value"]) == [0.5, 0.75]
    reasons = {"garbage-csv": "metrics.csv", "bad-config": "config.json", "bad-env": "env.json", "few-columns": "lacks the column"}
    listed = [line for line in result.output.splitlines() if line.startswith("not included")]
    assert len(listed) == len(damaged), listed
    page = (runs_dir / "REPORT.md").read_text()
    for name, run in damaged.items():
        (line,) = [line for line in listed if line.endswith(str(run))]
        assert line.startswith("not included (damaged: ") and reasons[name] in line, line
        assert run.name in page
    assert page.count("damaged") >= len(damaged)
    after = snapshot(runs_dir)
    assert {path: after[path] for path in before} == before  # no run directory was touched


def test_report_on_a_folder_without_runs_fails_in_one_line(invoke, tmp_path):
    empty = tmp_path / "empty"
    (empty / "train-teacher" / "not-a-run").mkdir(parents=True)
    result = invoke("report", empty)
    assert_one_line_error(result, str(empty))
    assert snapshot(empty) == {"train-teacher": None, "train-teacher/not-a-run": None}  # no empty page written


def test_report_paths_are_checked_first(invoke, tmp_path, runs_dir):
    fake_run(runs_dir, "good", 0.5)
    a_file = tmp_path / "a-file"
    a_file.write_text("kept\n")
    before = snapshot(tmp_path)
    assert_one_line_error(invoke("report", tmp_path / "nowhere"), str(tmp_path / "nowhere"))
    assert_one_line_error(invoke("report", a_file), str(a_file))
    line = assert_one_line_error(invoke("report", runs_dir, "--out", a_file), "--out")
    assert str(a_file) in line
    line = assert_one_line_error(invoke("report", runs_dir, "--out", a_file / "below"), "--out")
    assert str(a_file / "below") in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag, kind", [("--runs-dir", "file"), ("--runs-dir", "below-file"), ("--recipes", "missing"),
                                        ("--data-dir", "file"), ("--corrupted-dir", "missing")])  # fmt: skip
def test_study_paths_are_checked_first(invoke, tmp_path, flag, kind):
    bad = bad_path(tmp_path, kind)
    (tmp_path / "locked").chmod(0o700)
    args = [flag, bad] if flag == "--runs-dir" else [flag, bad, "--runs-dir", tmp_path / "runs"]
    before = snapshot(tmp_path)
    line = assert_one_line_error(invoke("study", "--smoke", *args), flag)
    assert str(bad) in line, line
    assert snapshot(tmp_path) == before


# --- 4. every path option, checked before any work ----------------------------------------------------


def _is_path_check(check) -> bool:
    if check in PATH_CHECKS:
        return True
    inner = [cell.cell_contents for cell in (getattr(check, "__closure__", None) or ())]  # checks.all_of(...)
    return any(isinstance(value, tuple) and any(part in PATH_CHECKS for part in value) for value in inner)


def _path_checks(check) -> list:
    if check in PATH_CHECKS:
        return [check]
    inner = [cell.cell_contents for cell in (check.__closure__ or ())]
    return [part for value in inner if isinstance(value, tuple) for part in value if part in PATH_CHECKS]


# What each kind of path check must reject: a bad value built in a scratch folder, and the words expected.
BAD_PATHS = {
    checks.existing_file: [("missing", "no such"), ("folder", "is a folder")],
    checks.existing_dir: [("missing", "no such folder"), ("file", "is a file")],
    checks.existing_path: [("missing", "no such")],
    checks.writable_dir: [("file", "is a file"), ("below-file", "cannot be created"), ("read-only", "not writable"), ("system", "not writable")],
    checks.writable_file: [("folder", "is a folder"), ("below-file", "cannot be created"), ("read-only", "not writable"), ("system", "not writable")],
    checks.writable_existing_dir: [("missing", "no such folder"), ("file", "is a file"), ("system-folder", "is not writable")],
    check_model_source: [("missing", "no such"), ("unknown-application", "unknown application")],
}


def path_cases():
    cases = []
    for words, command in leaf_commands():
        for field in dataclasses.fields(command.config_class):
            check = field.metadata.get("check")
            if check is None or not _is_path_check(check):
                continue
            for one in _path_checks(check):
                for kind, message in BAD_PATHS[one]:
                    cases.append(pytest.param(words, field, kind, message, id=f"{' '.join(words)} {flag_name(field)} {kind}"))
    return cases


def bad_path(scratch: Path, kind: str) -> Path:
    (scratch / "a-folder").mkdir()
    (scratch / "a-file").write_text("already here\n")
    locked = scratch / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return {
        "missing": scratch / "missing" / "thing",
        "folder": scratch / "a-folder",
        "file": scratch / "a-file",
        "below-file": scratch / "a-file" / "below" / "results.csv",
        "read-only": locked / "results.csv",
        "system": Path("/proc/noisegame-test/results.csv"),  # a system folder: no file can be made there, not even by root
        "system-folder": Path("/proc/self"),
        "unknown-application": "app:NoSuchNetwork",
    }[kind]


@pytest.mark.parametrize("words, field, kind, message", path_cases())
def test_every_path_option_is_checked_before_any_work(invoke, tmp_path, words, field, kind, message):
    if kind == "read-only" and IS_ROOT:
        pytest.skip("root may write anywhere: permissions cannot make a folder read-only")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    bad = bad_path(scratch, kind)
    flag = flag_name(field)
    runs = tmp_path / "runs"
    if field.metadata.get("argument"):  # corrupt DATASET OUT_DIR
        args = ["digits", bad] if field.name == "out_dir" else [bad, tmp_path / "out"]
    else:
        args = [flag, bad]
    if field.name != "runs_dir":
        args += ["--runs-dir", runs]
    before = snapshot(tmp_path)
    try:
        line = assert_one_line_error(invoke(*words, "--smoke", *args), flag)
    finally:
        (scratch / "locked").chmod(0o700)
    assert str(bad) in line and message in line, line
    assert snapshot(tmp_path) == before  # no run directory, no file changed
    assert not runs.exists()


def test_every_path_option_of_the_issue_is_covered():
    covered = {flag_name(case.values[1]) for case in path_cases()}
    assert {"--runs-dir", "--results", "--data-dir", "--model-path", "--teacher", "--frost-dir", "--write-dir", "--resume"} <= covered


@pytest.mark.parametrize("flag, value, message", [
    ("--content", "{tmp}/missing.png", "no such"),
    ("--style", "{tmp}/missing.png", "no such"),
    ("--content", "{tmp}", ""),
    ("--extractor-path", "{tmp}/missing", "no such"),
])  # fmt: skip
def test_style_transfer_images_and_extractors_are_checked_first(invoke, tmp_path, flag, value, message):
    value = value.format(tmp=tmp_path)
    before = snapshot(tmp_path)
    line = assert_one_line_error(invoke("style-transfer", "--smoke", flag, value, "--runs-dir", tmp_path / "runs"), flag)
    assert value in line and message in line, line
    assert snapshot(tmp_path) == before


def test_a_saved_file_that_is_not_a_model_is_refused_before_a_run(invoke, tmp_path):
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_bytes(b"not a zip archive")
    runs = tmp_path / "runs"
    for words in (("fgsm", "eval", "--model-path"), ("eval-corruption", "--model-path"), ("adv-noise", "gnt", "--teacher"),
                  ("train-student", "--teacher")):  # fmt: skip
        line = assert_one_line_error(invoke(*words, not_a_model, "--smoke", "--runs-dir", runs))
        assert str(not_a_model) in line, line
        assert not runs.exists(), words


# --- 5. every name, checked before a run directory exists -------------------------------------------------

NAME_CHECK_FIELDS = {"dataset", "model", "corruptions", "noise"}


def name_cases():
    cases = []
    for words, command in leaf_commands():
        kinds = field_kinds(command.config_class)
        for field in dataclasses.fields(command.config_class):
            if kinds[field.name] not in ("str", "names") or field.metadata.get("argument"):
                continue
            if field.metadata.get("choices") is not None or field.name in NAME_CHECK_FIELDS:
                cases.append(pytest.param(words, (flag_name(field), "no_such_name"), id=f"{' '.join(words)} {flag_name(field)}"))
    return cases


# Inputs a command checks before the names of its config's validate() (eval-corruption's corruptions).
NEEDED = {("eval-corruption",): ("--model-path", "{model}")}


@pytest.mark.parametrize("words, option", name_cases())
def test_an_unknown_name_fails_before_a_run_directory_exists(invoke, tmp_path, digits_model, words, option):
    runs = tmp_path / "runs"
    needed = [value.format(model=digits_model) for value in NEEDED.get(words, ())]
    assert_one_line_error(invoke(*words, "--smoke", *needed, *option, "--runs-dir", runs), "no_such_name")
    assert not runs.exists()


def test_the_names_of_the_issue_are_covered():
    covered = {case.values[1][0] for case in name_cases()}
    assert {"--model", "--dataset", "--augment", "--corruptions", "--attack", "--noise"} <= covered


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> Path:
    return quick_digits_model(tmp_path_factory.mktemp("model"), epochs=1)


@pytest.mark.parametrize("words", [
    ("eval-corruption", "--model-path", "{model}", "--corruptions", "gaussian_noise,no_such_name"),
    ("corrupt", "--out", "{tmp}/out", "--corruptions", "no_such_name"),
    ("denoise", "eval", "--corruptions", "no_such_name"),
    ("style-transfer", "--extractor", "no_such_name"),
    ("train-teacher", "--model", "app:no_such_name"),
    ("train-teacher", "--dataset", "folder:{tmp}/no_such_name"),
])  # fmt: skip
def test_names_checked_against_data_or_models_also_fail_first(invoke, tmp_path, digits_model, words):
    words = [w.format(tmp=tmp_path, model=digits_model) for w in words]
    runs = tmp_path / "runs"
    before = snapshot(tmp_path)
    assert_one_line_error(invoke(*words, "--smoke", "--runs-dir", runs), "no_such_name")
    assert snapshot(tmp_path) == before


# --- 6. SIGTERM interrupts a run that --resume finishes ------------------------------------------------

EPOCHS = 4


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted_and_resume_finishes_it(tmp_path):
    runs = tmp_path / "runs"
    args = ("--smoke", "--epochs", EPOCHS, "--patience", 50, "--limit", 2000, "--batch-size", 8, "--seed", 3)
    process = start_cli("train-teacher", *args, "--runs-dir", runs, "--results", tmp_path / "results.csv")
    history_file = None
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        found = list(runs.glob("train-teacher/*/history.csv"))
        if found and len(found[0].read_text().splitlines()) >= 2:  # the header and the first epoch
            history_file = found[0]
            break
        time.sleep(0.02)
    assert history_file is not None, finish(process)
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)

    assert code == 143, out + err
    assert err.strip().splitlines()[-1].startswith("noisegame: error: terminated"), err
    run = history_file.parent
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    kept = pd.read_csv(history_file)
    assert 1 <= len(kept) < EPOCHS and list(kept["epoch"]) == list(range(len(kept)))
    assert (run / "backup").is_dir() and not (run / "metrics.csv").exists()
    assert not (tmp_path / "results.csv").exists()  # an interrupted run adds no rows to the shared table

    code, out, err = finish(start_cli("train-teacher", "--resume", run))
    assert code == 0, out + err
    assert sorted((runs / "train-teacher").iterdir()) == [run]  # the same run directory, no new one
    history = pd.read_csv(history_file)
    assert list(history["epoch"]) == list(range(EPOCHS))
    pd.testing.assert_frame_equal(without_wall_time(history.head(len(kept))), without_wall_time(kept))  # nothing lost
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert not (run / "backup").exists()
    metrics = pd.read_csv(run / "metrics.csv")
    assert set(metrics["run_id"]) == {run.name}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), metrics)  # --results survives the resume


def test_a_signal_during_an_epochs_records_waits_for_them():
    from noisegame_cli.training.callbacks import HeldSignals

    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        held = HeldSignals()
        held.begin.on_epoch_end(0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # a signal that was not held would have reached the handler by now
        assert received == []
        held.end.on_epoch_end(0)
        assert received == [signal.SIGTERM]  # delivered once, to the handler that was in place
        os.kill(os.getpid(), signal.SIGTERM)
        assert received == [signal.SIGTERM] * 2  # and that handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)
