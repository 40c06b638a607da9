"""The whole robustness study on one dataset, every command in turn, ending in a results page.

    python experiments/study.py --runs-dir runs/demo [--smoke] [--seed 0]
    python experiments/study.py --study cifar10 --runs-dir runs/cifar10 --corrupted-dir CIFAR-10-C [--data-dir DIR]

Each step is one command run from its recipe in this folder; a step that needs an earlier model
gets that step's run directory. The corruption evaluation writes a corrupted copy of the test
split once (``<runs-dir>/digits-C``, official CIFAR-10-C layout) and evaluates every model on it,
with the teacher as the mCE baseline. ``--smoke`` runs every step in its seconds-long form.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from noisegame_cli.config import load_config_file, resolve_config  # noqa: E402
from noisegame_cli.errors import UserError  # noqa: E402
from noisegame_cli.report import build_report  # noqa: E402

RECIPES = Path(__file__).resolve().parent
CORRUPTED_SET = "digits-C"


@dataclass(frozen=True)
class Step:
    """One command run: ``module.function(Config)`` from ``recipe``, with earlier runs linked in."""

    name: str
    module: str
    recipe: str | None = None
    function: str = "run"
    config_class: str = "Config"
    links: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)  # config field -> step name(s)
    values: Mapping[str, Any] = field(default_factory=dict)  # fixed values; "{runs}" is the runs folder
    shorten: Mapping[str, Any] = field(default_factory=dict)  # recipe values replaced (below --smoke)


# The recipe of each step, per study; steps share their structure across studies.
RECIPE_FILES = {
    "digits": {
        "teacher": "digits-teacher.yaml", "student": "digits-student.yaml", "gnt": "digits-gnt.yaml", "ant": "digits-ant.yaml",
        "adversarial": "digits-fgsm-adv-train.yaml", "fgsm": "digits-fgsm-eval.yaml", "freq-eval": "digits-freq-eval.yaml",
        "freq-train": "digits-freq-train.yaml", "freq-smooth": "digits-freq-smooth.yaml", "style": "digits-style.yaml",
        "corruption": "digits-eval-corruption.yaml",
    },
    "cifar10": {
        "teacher": "cifar10-teacher.yaml", "student": "cifar10-student-resnet50v2.yaml", "gnt": "cifar10-gnt.yaml",
        "ant": "cifar10-ant-resnet20.yaml", "adversarial": "cifar10-fgsm-pgd-train.yaml", "fgsm": "cifar10-fgsm-eval.yaml",
        "freq-eval": "cifar10-freq-eval.yaml", "freq-train": "cifar10-freq-train.yaml", "freq-smooth": "cifar10-freq-smooth.yaml",
        "style": "cifar10-style.yaml", "corruption": "cifar10-eval-corruption.yaml",
    },
}


# What the digits demo changes in the recipes to finish well inside 20 minutes on a 2-core CPU: the
# models trained from scratch are compact_cnn (small_cnn at half the width, a quarter of the
# computation) and four steps are shorter. The whole study with the recipes as they are took 21.7
# minutes; the recipes themselves keep the settings the README's per-command sections report.
COMPACT = {"model": "compact_cnn"}
SHORTENED = {
    "digits": {
        "teacher": COMPACT,
        "student": {**COMPACT, "epochs": 12},
        "adversarial": {**COMPACT, "epochs": 8},
        "freq-train": {**COMPACT, "epochs": 8},
        "freq-smooth": {"steps": 5},
    },
    "cifar10": {},
}


def build_study(name: str) -> tuple[Step, ...]:
    """The steps of study ``name``. On digits the corrupted test set is generated once by the first
    corruption evaluation; on CIFAR-10 every evaluation reads the official files (``{corrupted}``)."""
    recipe = RECIPE_FILES[name]
    if name == "digits":
        corrupted_set = "{runs}/" + CORRUPTED_SET
        first_corruption = {"dataset": "digits", "write_dir": corrupted_set}
        style = {"weights": "none"}  # the models trained here need no ImageNet weights
    else:
        corrupted_set = "{corrupted}"
        first_corruption = {"dataset": "cifar10-c", "data_dir": corrupted_set}
        style = {}

    def corruption(model_step: str) -> Step:
        return Step(
            f"corruption-{model_step}", "eval_corruption", recipe["corruption"],
            links={"model_path": model_step, "baseline": "corruption-teacher"},
            values={"dataset": "cifar10-c", "data_dir": corrupted_set, "name": f"{model_step}-C"},
        )

    shorter = SHORTENED[name]
    return (
        Step("teacher", "train_teacher", recipe["teacher"], shorten=shorter.get("teacher", {})),
        Step("student", "train_student", recipe["student"], links={"teacher": "teacher"}, shorten=shorter.get("student", {})),
        Step("gnt", "adv_noise", recipe["gnt"], links={"teacher": "teacher"}),
        Step("ant", "adv_noise", recipe["ant"], links={"teacher": "teacher"}),
        Step("adversarial", "fgsm", recipe["adversarial"], shorten=shorter.get("adversarial", {})),
        Step("fgsm-teacher", "fgsm", recipe["fgsm"], links={"model_path": "teacher"}, values={"name": "teacher"}),
        Step("fgsm-adversarial", "fgsm", recipe["fgsm"], links={"model_path": "adversarial"}, values={"name": "adversarial"}),
        Step("freq-eval", "freq_split", recipe["freq-eval"], "run_eval", "EvalConfig", links={"model_paths": ("teacher", "adversarial")}),
        Step("freq-train", "freq_split", recipe["freq-train"], "run_train", "TrainConfig",
             values={"name": "high-natural"}, shorten=shorter.get("freq-train", {})),
        Step("freq-train-shuffled", "freq_split", recipe["freq-train"], "run_train", "TrainConfig",
             values={"shuffle_labels": True, "name": "high-shuffled"}, shorten=shorter.get("freq-train", {})),
        Step("freq-smooth", "freq_split", recipe["freq-smooth"], "run_smooth", "SmoothConfig",
             links={"model_paths": ("teacher", "adversarial")}, shorten=shorter.get("freq-smooth", {})),
        Step("style", "style_transfer", recipe["style"], links={"extractor_path": ("teacher", "adversarial")}, values=style),
        Step("corruption-teacher", "eval_corruption", recipe["corruption"], links={"model_path": "teacher"},
             values={**first_corruption, "name": "teacher-C"}),
        *(corruption(model) for model in ("student", "gnt", "ant", "adversarial")),
    )


STUDY = build_study("digits")


def step_config(step: Step, runs_dir: Path, done: Mapping[str, str], *, smoke: bool, seed: int, data_dir=None, corrupted_dir=None):
    module = importlib.import_module(f"noisegame_cli.commands.{step.module}")
    config_class = getattr(module, step.config_class)
    file_values = {**(load_config_file(RECIPES / step.recipe) if step.recipe else {}), **step.shorten}
    places = {"{runs}": str(runs_dir), "{corrupted}": str(corrupted_dir)}
    flags = {"data_dir": str(data_dir)} if data_dir and step.module != "style_transfer" else {}
    for key, value in step.values.items():
        for placeholder, path in places.items():
            value = value.replace(placeholder, path) if isinstance(value, str) else value
        flags[key] = value
    for key, source in step.links.items():
        flags[key] = tuple(done[s] for s in source) if isinstance(source, tuple) else done[source]
    flags.update(runs_dir=str(runs_dir), seed=seed, smoke=smoke)
    return getattr(module, step.function), resolve_config(config_class, file_values, flags, source=f"recipe {step.recipe}")


def run_study(
    runs_dir: str | os.PathLike,
    *,
    smoke: bool = False,
    seed: int = 0,
    steps: tuple[Step, ...] = STUDY,
    data_dir: str | None = None,
    corrupted_dir: str | None = None,
) -> dict[str, str]:
    """Run ``steps`` in order; returns each step's run directory. Ends with the results page."""
    runs_dir = Path(runs_dir)
    done: dict[str, str] = {}
    started = time.perf_counter()
    for index, step in enumerate(steps, start=1):
        function, config = step_config(step, runs_dir, done, smoke=smoke, seed=seed, data_dir=data_dir, corrupted_dir=corrupted_dir)
        elapsed = time.perf_counter() - started
        print(f"\n=== [{index}/{len(steps)}] {config.command}: {step.name}  ({elapsed / 60:.1f} min so far)", flush=True)
        done[step.name] = function(config)["run_dir"]
    written = build_report(runs_dir)
    print(f"\nstudy finished in {(time.perf_counter() - started) / 60:.1f} min")
    print(f"results page: {written['html']}  (and {written['markdown']})")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs/demo")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--study", choices=sorted(RECIPE_FILES), default="digits")
    parser.add_argument("--data-dir", help="the training data (cifar10: the Keras cache by default)")
    parser.add_argument("--corrupted-dir", help="the official CIFAR-10-C files (cifar10 study)")
    args = parser.parse_args(argv)
    if args.study == "cifar10" and not args.corrupted_dir:
        parser.error("the cifar10 study needs --corrupted-dir (the official CIFAR-10-C files)")
    try:
        run_study(args.runs_dir, smoke=args.smoke, seed=args.seed, steps=build_study(args.study),
                  data_dir=args.data_dir, corrupted_dir=args.corrupted_dir)
    except UserError as error:
        print(f"study: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
