"""The whole study: every recipe resolves to a valid config, and the smoke form runs end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import study  # noqa: E402

COMMANDS = ("train-teacher", "train-student", "adv-noise", "fgsm", "freq-split-eval", "freq-split-train",
            "freq-split-smooth", "style-transfer", "eval-corruption")


@pytest.mark.parametrize("name", sorted(study.RECIPE_FILES))
def test_every_step_of_every_study_resolves_to_a_valid_config(name, tmp_path):
    steps = study.build_study(name)
    done = {step.name: f"/runs/{step.name}" for step in steps}
    commands = set()
    for step in steps:
        _, config = study.step_config(step, tmp_path, done, smoke=False, seed=0, data_dir="/data", corrupted_dir="/c")
        commands.add(config.command)
        for key, source in step.links.items():
            expected = tuple(done[s] for s in source) if isinstance(source, tuple) else done[source]
            assert getattr(config, key) == expected
    assert commands == set(COMMANDS)  # every command of the mission takes part


def test_the_demo_shortening_sits_below_the_smoke_preset(tmp_path):
    (student,) = [step for step in study.build_study("digits") if step.name == "student"]
    done = {"teacher": "/runs/teacher"}
    full = study.step_config(student, tmp_path, done, smoke=False, seed=0)[1]
    smoke = study.step_config(student, tmp_path, done, smoke=True, seed=0)[1]
    assert full.epochs == study.SHORTENED["digits"]["student"]["epochs"] and smoke.epochs == 1
    assert full.model == "compact_cnn" and smoke.model == "tiny_cnn"


def test_smoke_study_ends_in_a_page_with_every_table_and_figure(tmp_path):
    runs = tmp_path / "runs"
    done = study.run_study(runs, smoke=True)
    assert len(done) == len(study.STUDY)
    markdown = (runs / "REPORT.md").read_text()
    for title in ("Clean accuracy", "Corruption benchmark", "Accuracy per corruption", "Accuracy vs epsilon",
                  "Accuracy vs radius", "Accuracy vs kernel smoothing rho", "Figures"):
        assert f"## {title}" in markdown, title
    figures = {p.name.split("--")[0] for p in (runs / "figures").glob("*.png")}
    assert {"train-teacher", "fgsm", "style-transfer", "eval-corruption", "adv-noise", "train-student"} <= figures
    assert any(name.startswith("freq-split") for name in figures)
    assert (runs / "digits-C" / "labels.npy").is_file()  # the corrupted set was written once and shared
    page = (runs / "report.html").read_text()
    assert page.count("<img ") == len(list((runs / "figures").glob("*.png")))
