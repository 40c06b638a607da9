"""The whole robustness study on one dataset, every command in turn, ending in a results page.

    python experiments/study.py --runs-dir runs/demo [--smoke] [--seed 0]

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


def _corruption_eval(name: str, model_step: str) -> Step:
    return Step(
        f"corruption-{name}", "eval_corruption", "digits-eval-corruption.yaml",
        links={"model_path": model_step, "baseline": "corruption-teacher"},
        values={"dataset": "cifar10-c", "data_dir": "{runs}/" + CORRUPTED_SET, "name": f"{name}-C"},
    )


STUDY: tuple[Step, ...] = (
    Step("teacher", "train_teacher", "digits-teacher.yaml"),
    Step("student", "train_student", "digits-student.yaml", links={"teacher": "teacher"}),
    Step("gnt", "adv_noise", "digits-gnt.yaml", links={"teacher": "teacher"}),
    Step("ant", "adv_noise", "digits-ant.yaml", links={"teacher": "teacher"}),
    Step("adversarial", "fgsm", "digits-fgsm-adv-train.yaml"),
    Step("fgsm-teacher", "fgsm", "digits-fgsm-eval.yaml", links={"model_path": "teacher"}, values={"name": "teacher"}),
    Step("fgsm-adversarial", "fgsm", "digits-fgsm-eval.yaml", links={"model_path": "adversarial"}, values={"name": "adversarial"}),
    Step("freq-eval", "freq_split", "digits-freq-eval.yaml", "run_eval", "EvalConfig", links={"model_paths": ("teacher", "adversarial")}),
    Step("freq-train", "freq_split", "digits-freq-train.yaml", "run_train", "TrainConfig", values={"name": "high-natural"}),
    Step("freq-train-shuffled", "freq_split", "digits-freq-train.yaml", "run_train", "TrainConfig",
         values={"shuffle_labels": True, "name": "high-shuffled"}),
    Step("freq-smooth", "freq_split", "digits-freq-smooth.yaml", "run_smooth", "SmoothConfig", links={"model_paths": ("teacher", "adversarial")}),
    Step("style", "style_transfer", "digits-style.yaml", links={"extractor_path": ("teacher", "adversarial")}, values={"weights": "none"}),
    Step("corruption-teacher", "eval_corruption", "digits-eval-corruption.yaml", links={"model_path": "teacher"},
         values={"dataset": "digits", "write_dir": "{runs}/" + CORRUPTED_SET, "name": "teacher-C"}),
    _corruption_eval("student", "student"),
    _corruption_eval("gnt", "gnt"),
    _corruption_eval("ant", "ant"),
    _corruption_eval("adversarial", "adversarial"),
)


def step_config(step: Step, runs_dir: Path, done: Mapping[str, str], *, smoke: bool, seed: int):
    module = importlib.import_module(f"noisegame_cli.commands.{step.module}")
    config_class = getattr(module, step.config_class)
    file_values = load_config_file(RECIPES / step.recipe) if step.recipe else {}
    flags = {key: value.replace("{runs}", str(runs_dir)) if isinstance(value, str) else value for key, value in step.values.items()}
    for key, source in step.links.items():
        flags[key] = tuple(done[s] for s in source) if isinstance(source, tuple) else done[source]
    flags.update(runs_dir=str(runs_dir), seed=seed, smoke=smoke)
    return getattr(module, step.function), resolve_config(config_class, file_values, flags, source=f"recipe {step.recipe}")


def run_study(runs_dir: str | os.PathLike, *, smoke: bool = False, seed: int = 0, steps: tuple[Step, ...] = STUDY) -> dict[str, str]:
    """Run ``steps`` in order; returns each step's run directory. Ends with the results page."""
    runs_dir = Path(runs_dir)
    done: dict[str, str] = {}
    started = time.perf_counter()
    for index, step in enumerate(steps, start=1):
        function, config = step_config(step, runs_dir, done, smoke=smoke, seed=seed)
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
    args = parser.parse_args(argv)
    try:
        run_study(args.runs_dir, smoke=args.smoke, seed=args.seed)
    except UserError as error:
        print(f"study: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
