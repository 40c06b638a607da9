"""The whole study: every recipe resolves to a valid config, and the smoke form runs end to end."""

from __future__ import annotations

import pandas as pd
import pytest

from noisegame_cli import study
from noisegame_cli.errors import UserError

COMMANDS = ("train-teacher", "train-student", "adv-noise-gnt", "adv-noise-ant", "fgsm-train", "fgsm-eval", "freq-split-eval",
            "freq-split-train", "freq-split-smooth", "style-transfer", "eval-corruption", "benchmark")


@pytest.mark.parametrize("name", study.STUDIES)
def test_every_step_of_every_study_resolves_to_a_valid_config(name, tmp_path):
    steps = study.build_study(name)
    done = {step.name: str(tmp_path / step.name) for step in steps}
    for path in (*done.values(), study.CORRUPTED_SET):
        (tmp_path / path).mkdir(parents=True, exist_ok=True)
    commands = set()
    for step in steps:
        config = study.step_config(step, tmp_path, done, smoke=False, seed=0, recipes=study.default_recipes_dir(),
                                   data_dir=str(tmp_path), corrupted_dir=str(tmp_path))  # fmt: skip
        commands.add(config.command)
        for key, source in step.links.items():
            expected = tuple(done[s] for s in source) if isinstance(source, tuple) else done[source]
            assert getattr(config, key) == expected
    assert set(COMMANDS) <= commands  # every command of the mission takes part


def test_the_demo_shortening_sits_below_the_smoke_preset(tmp_path):
    (student,) = [step for step in study.build_study("digits") if step.name == "student"]
    done = {"teacher": str(tmp_path)}
    full = study.step_config(student, tmp_path, done, smoke=False, seed=0, recipes=study.default_recipes_dir())
    smoke = study.step_config(student, tmp_path, done, smoke=True, seed=0, recipes=study.default_recipes_dir())
    assert full.epochs == study.SHORTENED["digits"]["student"]["epochs"] and smoke.epochs == 1
    assert full.model == "compact_cnn" and smoke.model == "tiny_cnn"


@pytest.mark.parametrize(
    "recipe_text, message",
    [(None, "cannot read config file"), ("epochs: [1\n", "not valid YAML"), ("epochz: 3\n", "unknown option 'epochz'"),
     ("eval_corruptions: [noise]\n", "option 'eval_corruptions' is now 'corruptions'"), ("epochs: 0\n", "--epochs must be at least 1")],
)  # fmt: skip
def test_every_recipe_is_checked_before_the_first_step_runs(tmp_path, recipe_text, message):
    """A broken recipe of a late step (the ANT step, after teacher, student and GNT) ends the study in
    one line before anything runs."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name in study.RECIPE_FILES["digits"].values():
        (recipes / name).write_text((study.default_recipes_dir() / name).read_text())
    ant = recipes / study.RECIPE_FILES["digits"]["ant"]
    if recipe_text is None:
        ant.unlink()
    else:
        ant.write_text(recipe_text)
    with pytest.raises(UserError, match=message):
        study.run_study(tmp_path / "runs", recipes=recipes, smoke=True)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_smoke_study_over_two_seeds_ends_in_a_page_with_every_table_and_figure(tmp_path):
    runs = tmp_path / "runs"
    done = study.run_study(runs, smoke=True, seeds=(0, 1))
    steps = study.build_study("digits")
    assert len(done) == len(steps) + sum(step.every_seed for step in steps)
    assert done["teacher"] != done["teacher@1"] and "adversarial@1" not in done
    markdown = (runs / "REPORT.md").read_text()
    for title in ("Leaderboard", "Noise training: teacher, student, GNT, ANT", "Adversarial examples: FGSM and PGD",
                  "Frequency: low- and high-pass images, kernel smoothing", "Style transfer", "Common corruptions", "Denoiser"):
        assert f"## {title}" in markdown, title
    assert "Accuracy per corruption" in markdown
    leaderboard = markdown.split("## Leaderboard")[1].split("\n## ")[0]
    assert "teacher" in leaderboard and "(n=2)" in leaderboard  # the two seeds of the comparison are grouped
    figures = {p.name.split("--")[0] for p in (runs / "figures").glob("*.png")}
    assert {"train-teacher", "fgsm-eval", "style-transfer", "eval-corruption", "adv-noise-ant", "train-student"} <= figures
    assert (runs / study.CORRUPTED_SET / "labels.npy").is_file()  # the corrupted set was written once and shared
    page = (runs / "report.html").read_text()
    assert page.count("<img ") == len(list((runs / "figures").glob("*.png")))
    rows = pd.read_csv(runs / "report.csv")  # every command's rows say what they measured
    assert rows.groupby("command")["condition"].agg(set).to_dict() == CONDITIONS
    attacked = rows["attack"].notna() & (rows["attack"] != "none")
    assert (rows.loc[attacked, "condition"] == rows.loc[attacked, "epsilon"].gt(0).map({True: "attack", False: "clean"})).all()
    assert set(rows.loc[rows["part"].isin(["low", "high"]), "condition"]) == {"view"}
    assert set(rows.loc[rows["corruption"].notna() & (rows["command"] != "corrupt"), "condition"]) == {"corruption"}


CONDITIONS = {
    "train-teacher": {"clean"}, "train-student": {"clean", "corruption"}, "adv-noise-gnt": {"clean", "noise", "corruption"},
    "adv-noise-ant": {"clean", "noise", "corruption"}, "fgsm-train": {"clean", "attack"}, "fgsm-eval": {"clean", "attack"},
    "freq-split-eval": {"clean", "view"}, "freq-split-train": {"clean", "view"}, "freq-split-smooth": {"clean", "attack"},
    "style-transfer": {"style"}, "eval-corruption": {"clean", "corruption"}, "corrupt": {"copy"}, "denoise-train": {"noise"},
    "denoise-eval": {"clean", "noise", "corruption", "attack"}, "benchmark": {"clean", "attack", "corruption"},
}  # fmt: skip
