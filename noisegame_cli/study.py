"""The whole robustness study on one dataset: every command in turn, from the recipes in ``experiments/``,
ending in the results page.

Each step names the command it runs (its ``Config`` class and ``run`` function) and its recipe; a step
that needs an earlier model is linked to that step's run directory. The noise-robustness comparison
(teacher, student, GNT, ANT and their corruption evaluation) is repeated for every seed of ``seeds``;
the other steps run once, with the first seed. The corrupted test set is written once (``digits-C``
in the CIFAR-10-C layout) and every model is evaluated on the same images, the teacher serving as the
mCE baseline; on CIFAR-10 the official CIFAR-10-C files play that part. The study ends with two
robustness cards (``benchmark``): the teacher's and the FGSM-trained model's, the latter's mCE against
the former.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from noisegame_cli import checks
from noisegame_cli.config import Config, check_values, load_config_file, resolve_config
from noisegame_cli.errors import UserError

CORRUPTED_SET = "digits-C"
STUDIES = ("digits", "cifar10")


@dataclass(frozen=True)
class Step:
    """One command run from ``recipe``, with earlier runs linked in."""

    name: str
    config: type[Config]
    run: Callable[[Config], Mapping[str, Any]]
    recipe: str | None = None
    links: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)  # config field -> step name(s)
    values: Mapping[str, Any] = field(default_factory=dict)  # fixed values; "{runs}" / "{corrupted}" are folders
    shorten: Mapping[str, Any] = field(default_factory=dict)  # recipe values the demo replaces (below --smoke)
    every_seed: bool = False  # part of the comparison repeated for each seed


# The recipe of each step, per study; steps share their structure across studies.
RECIPE_FILES = {
    "digits": {
        "teacher": "digits-teacher.yaml", "student": "digits-student.yaml", "gnt": "digits-gnt.yaml", "ant": "digits-ant.yaml",
        "adversarial": "digits-fgsm-adv-train.yaml", "fgsm": "digits-fgsm-eval.yaml", "freq-eval": "digits-freq-eval.yaml",
        "freq-train": "digits-freq-train.yaml", "freq-smooth": "digits-freq-smooth.yaml", "style": "digits-style.yaml",
        "corruption": "digits-eval-corruption.yaml", "denoiser": "digits-denoise.yaml", "purifier": "digits-denoise-eval.yaml",
        "benchmark": "digits-benchmark.yaml",
    },
    "cifar10": {
        "teacher": "cifar10-teacher.yaml", "student": "cifar10-student-resnet50v2.yaml", "gnt": "cifar10-gnt.yaml",
        "ant": "cifar10-ant-resnet20.yaml", "adversarial": "cifar10-fgsm-pgd-train.yaml", "fgsm": "cifar10-fgsm-eval.yaml",
        "freq-eval": "cifar10-freq-eval.yaml", "freq-train": "cifar10-freq-train.yaml", "freq-smooth": "cifar10-freq-smooth.yaml",
        "style": "cifar10-style.yaml", "corruption": "cifar10-eval-corruption.yaml", "benchmark": "cifar10-benchmark.yaml",
    },
}  # fmt: skip

# What the digits demo changes in the recipes to finish well inside 20 minutes on a 2-core CPU: the
# models trained from scratch are compact_cnn (small_cnn at half the width, a quarter of the
# computation) and four steps are shorter. The recipes themselves keep the settings docs/ reports.
COMPACT = {"model": "compact_cnn"}
SHORTENED = {
    "digits": {
        "teacher": COMPACT,
        "student": {**COMPACT, "epochs": 12},
        "adversarial": {**COMPACT, "epochs": 8},
        "freq-train": {**COMPACT, "epochs": 8},
        "freq-smooth": {"attack_steps": 5},
    },
    "cifar10": {},
}


def build_study(name: str) -> tuple[Step, ...]:
    """The steps of study ``name``."""
    from noisegame_cli.commands import (
        adv_noise,
        benchmark,
        corrupt,
        denoise,
        eval_corruption,
        fgsm,
        freq_split,
        style_transfer,
        train_student,
        train_teacher,
    )

    checks.chosen(name, RECIPE_FILES, "study")
    recipe, shorter = RECIPE_FILES[name], SHORTENED[name]
    corrupted = {"dataset": "cifar10-c", "data_dir": "{runs}/" + CORRUPTED_SET if name == "digits" else "{corrupted}"}
    # The robustness cards read the same corrupted images; the FGSM-trained model's mCE is against the teacher's card.
    cards = {"corrupted_dir": "{runs}/" + CORRUPTED_SET if name == "digits" else "{corrupted}"}
    style = {"weights": "none"} if name == "digits" else {}  # the digits models need no ImageNet weights

    def corruption(model_step: str, *, every_seed: bool) -> Step:
        return Step(f"corruption-{model_step}", eval_corruption.Config, eval_corruption.run, recipe["corruption"],
                    links={"model_path": model_step, "baseline": "corruption-teacher"}, values={**corrupted, "name": f"{model_step}-C"},
                    every_seed=every_seed)  # fmt: skip

    # On digits the corrupted test set is made once, before any model needs it.
    written_set = [Step("corrupted-set", corrupt.Config, corrupt.run, values={"dataset": "digits", "out": "{runs}/" + CORRUPTED_SET})]
    return (
        *(written_set if name == "digits" else ()),
        Step("teacher", train_teacher.Config, train_teacher.run, recipe["teacher"], shorten=shorter.get("teacher", {}), every_seed=True),
        Step("corruption-teacher", eval_corruption.Config, eval_corruption.run, recipe["corruption"], links={"model_path": "teacher"},
             values={**corrupted, "name": "teacher-C"}, every_seed=True),
        Step("student", train_student.Config, train_student.run, recipe["student"], links={"teacher": "teacher"},
             shorten=shorter.get("student", {}), every_seed=True),
        Step("gnt", adv_noise.GntConfig, adv_noise.run_gnt, recipe["gnt"], links={"teacher": "teacher"}, every_seed=True),
        Step("ant", adv_noise.AntConfig, adv_noise.run_ant, recipe["ant"], links={"teacher": "teacher"}, every_seed=True),
        *(corruption(model, every_seed=True) for model in ("student", "gnt", "ant")),
        Step("adversarial", fgsm.TrainConfig, fgsm.run_train, recipe["adversarial"], shorten=shorter.get("adversarial", {})),
        Step("fgsm-teacher", fgsm.EvalConfig, fgsm.run_eval, recipe["fgsm"], links={"model_path": "teacher"}, values={"name": "teacher"}),
        Step("fgsm-adversarial", fgsm.EvalConfig, fgsm.run_eval, recipe["fgsm"], links={"model_path": "adversarial"},
             values={"name": "adversarial"}),
        Step("freq-eval", freq_split.EvalConfig, freq_split.run_eval, recipe["freq-eval"], links={"model_paths": ("teacher", "adversarial")}),
        Step("freq-train", freq_split.TrainConfig, freq_split.run_train, recipe["freq-train"], values={"name": "high-natural"},
             shorten=shorter.get("freq-train", {})),
        Step("freq-train-shuffled", freq_split.TrainConfig, freq_split.run_train, recipe["freq-train"],
             values={"shuffle_labels": True, "name": "high-shuffled"}, shorten=shorter.get("freq-train", {})),
        Step("freq-smooth", freq_split.SmoothConfig, freq_split.run_smooth, recipe["freq-smooth"],
             links={"model_paths": ("teacher", "adversarial")}, shorten=shorter.get("freq-smooth", {})),
        Step("style", style_transfer.Config, style_transfer.run, recipe["style"], links={"extractor_path": ("teacher", "adversarial")},
             values=style),
        corruption("adversarial", every_seed=False),
        *((Step("denoiser", denoise.TrainConfig, denoise.run_train, recipe["denoiser"]),
           Step("purifier", denoise.EvalConfig, denoise.run_eval, recipe["purifier"], links={"denoiser": "denoiser", "classifier": "teacher"}))
          if "denoiser" in recipe else ()),
        Step("benchmark-teacher", benchmark.Config, benchmark.run, recipe["benchmark"], links={"model_path": "teacher"},
             values={**cards, "name": "teacher"}),
        Step("benchmark-adversarial", benchmark.Config, benchmark.run, recipe["benchmark"],
             links={"model_path": "adversarial", "baseline": "benchmark-teacher"}, values={**cards, "name": "adversarial"}),
    )  # fmt: skip


def default_recipes_dir() -> Path:
    """The repository's ``experiments/`` folder (where ``make demo`` runs the study from)."""
    return Path(__file__).resolve().parent.parent / "experiments"


def recipe_values(step: Step, recipes: Path) -> dict[str, Any]:
    """The values of a step's recipe with the study's shortening (a missing or broken file: ``UserError``)."""
    return {**(load_config_file(recipes / step.recipe) if step.recipe else {}), **step.shorten}


def check_recipes(steps: Sequence[Step], recipes: Path) -> None:
    """Every step's recipe read and its options checked before the first step runs, so a broken or
    outdated recipe costs one line, not a study stopped minutes in."""
    for step in steps:
        check_values(step.config, recipe_values(step, recipes), source=f"recipe {recipes / step.recipe}" if step.recipe else step.name)


def step_config(step: Step, runs_dir: Path, done: Mapping[str, str], *, smoke: bool, seed: int, recipes: Path,
                data_dir: str | None = None, corrupted_dir: str | None = None) -> Config:  # fmt: skip
    """The resolved config of one step: its recipe (shortened), its fixed values, its links, the study's settings."""
    file_values = recipe_values(step, recipes)
    places = {"{runs}": str(runs_dir), "{corrupted}": str(corrupted_dir)}
    fields = step.config.__dataclass_fields__
    flags: dict[str, Any] = {"data_dir": str(data_dir)} if data_dir and "data_dir" in fields else {}
    for key, value in step.values.items():
        for placeholder, path in places.items():
            value = value.replace(placeholder, path) if isinstance(value, str) else value
        flags[key] = value
    for key, source in step.links.items():
        flags[key] = tuple(done[s] for s in source) if isinstance(source, tuple) else done[source]
    flags.update(runs_dir=str(runs_dir), seed=seed, smoke=smoke)
    return resolve_config(step.config, file_values, flags, source=f"recipe {step.recipe}")


def run_study(
    runs_dir: str | os.PathLike,
    *,
    study: str = "digits",
    seeds: Sequence[int] = (0,),
    smoke: bool = False,
    recipes: str | os.PathLike | None = None,
    data_dir: str | None = None,
    corrupted_dir: str | None = None,
) -> dict[str, str]:
    """Run the study's steps in order (the seeded comparison once per seed); returns each step's run
    directory (``name`` for the first seed, ``name@seed`` for the others). Ends with the results page."""
    from noisegame_cli.report import build_report

    if not seeds:
        raise UserError("--seeds needs at least one seed")
    if study == "cifar10" and not corrupted_dir:
        raise UserError("the cifar10 study needs --corrupted-dir (the official CIFAR-10-C files)")
    steps = build_study(study)
    recipes = Path(recipes) if recipes else default_recipes_dir()
    if not recipes.is_dir():
        raise UserError(f"--recipes {recipes}: no such folder (the study's YAML recipes, experiments/ in the repository)")
    check_recipes(steps, recipes)
    runs_dir = Path(runs_dir)
    planned = [(step, seed) for seed_index, seed in enumerate(seeds) for step in steps if seed_index == 0 or step.every_seed]
    done_by_seed: dict[int, dict[str, str]] = {seed: {} for seed in seeds}
    shared: dict[str, str] = {}
    started = time.perf_counter()
    for index, (step, seed) in enumerate(planned, start=1):
        done = {**shared, **done_by_seed[seed]}
        config = step_config(step, runs_dir, done, smoke=smoke, seed=seed, recipes=recipes, data_dir=data_dir, corrupted_dir=corrupted_dir)
        elapsed = time.perf_counter() - started
        print(f"\n=== [{index}/{len(planned)}] {config.command}: {step.name} (seed {seed})  ({elapsed / 60:.1f} min so far)", flush=True)
        run_dir = step.run(config)["run_dir"]
        done_by_seed[seed][step.name] = run_dir
        if not step.every_seed:
            shared[step.name] = run_dir
    written = build_report(runs_dir)
    print(f"\nstudy finished in {(time.perf_counter() - started) / 60:.1f} min")
    print(f"results page: {written['html']}  (and {written['markdown']})")
    first = done_by_seed[seeds[0]]
    return {**first, **{f"{name}@{seed}": path for seed in seeds[1:] for name, path in done_by_seed[seed].items()}}
