"""``noisegame fgsm eval|train``: adversarial examples (FGSM, PGD) and adversarial training.

- ``fgsm eval --model-path M --eps 0,1/255,2/255,4/255,8/255``: test accuracy and loss of a saved
  model at each budget under FGSM (and PGD with ``--attack pgd``); an accuracy-vs-epsilon PNG and a
  PNG of clean / perturbation / adversarial images with their predictions.
- ``fgsm train``: adversarial training with ``alpha * J(x) + (1 - alpha) * J(x_adv)`` (``--attack pgd``
  for PGD training; ``--alpha 0`` is Madry et al.'s objective), from scratch (``--model``) or starting
  from a saved model (``--model-path``), then the same evaluation of the trained model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np

from noisegame_cli import checks, plots, sections
from noisegame_cli.attacks import ATTACKS, NORMS, AttackSpec, run_attack
from noisegame_cli.budgets import budget_label
from noisegame_cli.attacks.gradient import check_budget
from noisegame_cli.commands.common import experiment, load_data, load_model, prepare
from noisegame_cli.config import (
    AugmentOptions,
    Config,
    DataOptions,
    DevicesOptions,
    EarlyStoppingOptions,
    ModelOptions,
    RunOptions,
    SavedModelOptions,
    TrainingOptions,
    check_model_source,
    redefault,
    require,
    setting,
)
from noisegame_cli.data import Dataset
from noisegame_cli.data.pipelines import eval_pipeline, train_pipeline
from noisegame_cli.evaluation import attack_condition
from noisegame_cli.evaluation.replicas import evaluate_attack_on_replicas
from noisegame_cli.models import build_model, copy_classifier
from noisegame_cli.options import config_command, mode_group
from noisegame_cli.runs import Run
from noisegame_cli.training.adversarial import AdversarialTrainer
from noisegame_cli.training.classifier import fit_and_record, plateau_callbacks

EXAMPLES_SHOWN = 8


@dataclasses.dataclass(frozen=True)
class AttackOptions(Config):
    """The attack (FGSM, or PGD with its steps and start) and the budgets it is evaluated at."""

    option_group: ClassVar[str] = "evaluation"
    smoke_preset: ClassVar[Mapping[str, Any]] = {"attack_steps": 3}
    renamed: ClassVar[Mapping[str, str]] = {"epsilons": "eps", "steps": "attack_steps"}

    eps: tuple[float, ...] = setting((0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255), "Budgets to evaluate, in the 0..1 image scale.",
                                          check=checks.not_empty)
    norm: str = setting("Linf", "Budget norm: Linf, or L2 (the length of the change of the 0..1 image).", choices=NORMS)
    attack: str = setting("fgsm", "fgsm, or pgd (evaluates FGSM and PGD; trains with PGD).", choices=ATTACKS)
    attack_steps: int = setting(10, "PGD steps.", check=checks.at_least(1))
    step_size: float | None = setting(None, "PGD step in the 0..1 scale [default: 2.5 * eps / attack steps].", show_default=False,
                                      check=checks.positive)
    random_start: bool = setting(True, "PGD from a uniform random point in the ball.")

    def validate(self) -> None:
        for eps in self.eps:
            check_budget(eps, "--eps", norm=self.norm)
        if self.step_size is not None:
            check_budget(self.step_size, "--step-size", norm=self.norm)

    @property
    def attacks_evaluated(self) -> tuple[str, ...]:
        """FGSM always; PGD as well with ``--attack pgd``."""
        return ("fgsm", "pgd") if self.attack == "pgd" else ("fgsm",)

    def spec(self, attack: str, eps: float, *, target_class: int | None = None, use_predictions: bool = False) -> AttackSpec:
        return AttackSpec(attack, eps, self.attack_steps, self.step_size, self.random_start, target_class, use_predictions, self.norm)

    def evaluation_spec(self, attack: str, eps: float) -> AttackSpec:
        return self.spec(attack, eps)


@dataclasses.dataclass(frozen=True)
class EvalConfig(AttackOptions, SavedModelOptions, DevicesOptions, DataOptions, RunOptions):
    command = "fgsm-eval"
    section = sections.ADVERSARIAL
    evaluates = "model_path"

    model_path: str | None = setting(None, "Saved model to attack (model.keras, .h5, SavedModel, its run directory, or "
                                     "app:NAME[:WEIGHTS]; required).", check=check_model_source, show_default=False)
    target_class: int | None = setting(None, "Targeted attack towards this class index.", flag="--targeted", check=checks.at_least(0),
                                       show_default=False)
    use_predictions: bool = setting(False, "Attack the model's predictions instead of the true labels (no label leaking).")

    def validate(self) -> None:
        super().validate()
        require(self.model_path is not None, "fgsm eval needs --model-path (a saved model to attack)")

    def evaluation_spec(self, attack: str, eps: float) -> AttackSpec:
        return self.spec(attack, eps, target_class=self.target_class, use_predictions=self.use_predictions)

    @property
    def default_run_name(self) -> str:
        return "eval"


@dataclasses.dataclass(frozen=True)
class TrainConfig(AttackOptions, ModelOptions, SavedModelOptions, AugmentOptions, EarlyStoppingOptions, TrainingOptions, DataOptions, RunOptions):
    command = "fgsm-train"
    renamed: ClassVar[Mapping[str, str]] = {"train_epsilon": "train_eps"}
    section = sections.ADVERSARIAL
    model_role = "{attack}-trained"

    model_path: str | None = setting(None, "Start from this saved model (any kind --model-path takes) instead of a new --model.",
                                     check=check_model_source, show_default=False)
    train_eps: float = setting(8 / 255, "Training budget in the 0..1 scale (of --norm).")
    alpha: float = setting(0.5, "Weight of the clean loss in the training objective.", check=checks.between(0, 1))
    augment: str = redefault(AugmentOptions, "augment", "crop")

    def validate(self) -> None:
        super().validate()
        check_budget(self.train_eps, "--train-eps", norm=self.norm)

    @property
    def default_run_name(self) -> str:
        return f"{self.model}-adv-{self.attack}"


def robustness_rows(config: AttackOptions, model: keras.Model, test, batch_size: int, seed: int) -> list[dict]:
    """Accuracy and loss on the test split for every attack and epsilon."""
    rows = []
    for attack in config.attacks_evaluated:
        for eps in config.eps:
            print(f"{attack} at epsilon {budget_label(eps, config.norm)}", flush=True)
            result = evaluate_attack_on_replicas(model, test, config.evaluation_spec(attack, eps), batch_size=batch_size, seed=seed)
            measured = {"accuracy": result.accuracy, "loss": result.loss}
            if result.target_rate is not None:
                measured["target_rate"] = result.target_rate
            rows += [{"split": "test", "attack": attack, "norm": config.norm, "epsilon": eps, "condition": attack_condition(eps), "metric": m,
                      "value": v} for m, v in measured.items()]  # fmt: skip
    return rows


def draw_examples(config: AttackOptions, model: keras.Model, data: Dataset, run: Run, seed: int) -> None:
    """Clean, amplified perturbation and adversarial test images at the largest epsilon."""
    images, labels = data.split("test").arrays(EXAMPLES_SHOWN)
    images = images.astype(np.float32)
    eps = max(config.eps)
    adversarial = run_attack(model, images, labels, config.evaluation_spec(config.attack, eps), seed=seed).numpy()
    names = data.class_names

    def predicted(batch):
        return [names[i] for i in np.argmax(model.predict(batch, verbose=0), axis=-1)]

    plots.image_grid(
        {"clean": list(images), "perturbation": list(adversarial - images), "adversarial": list(adversarial)},
        run.path("adversarial_examples.png"),
        titles=[[f"{names[y]} -> {p}" for y, p in zip(labels, predicted(images))], [],
                [f"pred {p}" for p in predicted(adversarial)]],
        centred_rows=("perturbation",),
        title=f"{config.attack} at epsilon {budget_label(eps, config.norm)} (perturbation amplified)",
    )  # fmt: skip


def attack_and_record(config, model: keras.Model, data: Dataset, run: Run) -> dict:
    """Evaluate ``model`` at every budget, write the metrics and both figures; returns the summary."""
    frame = run.write_metrics(robustness_rows(config, model, data.split("test"), config.batch_size, config.seed), results=config.results)
    pixels = config.norm == "Linf"
    accuracy = frame[frame["metric"] == "accuracy"].assign(budget=lambda f: f["epsilon"] * (255 if pixels else 1))
    plots.line_plot(
        accuracy, x="budget", y="value", series=["attack"], path=run.path("accuracy_vs_epsilon.png"),
        xlabel="epsilon (x 1/255)" if pixels else "L2 epsilon", ylabel="test accuracy", title=f"{run.run_id}: accuracy under attack",
    )  # fmt: skip
    draw_examples(config, model, data, run, config.seed)
    summary = {"run_dir": str(run.directory)}
    for _, row in accuracy.iterrows():
        summary[f"{row['attack']}_accuracy@{budget_label(row['epsilon'], config.norm)}"] = float(row["value"])
    return summary


def run_eval(config: EvalConfig) -> dict:
    """Attack a saved model at each budget; returns the accuracies."""
    strategy = prepare(config)
    data = load_data(config)
    with strategy.scope():  # mirrored: whole batches are dealt to the replicas
        model = load_model(config, data, config.model_path)
    if config.target_class is not None:
        require(config.target_class < data.num_classes, f"--targeted {config.target_class}: {data.name} has {data.num_classes} classes")
    with experiment(config, model=model.name, data=data) as run:
        return attack_and_record(config, model, data, run)


def run_train(config: TrainConfig) -> dict:
    """Adversarially train a model (new, or a saved one's copy), then attack it at each budget."""
    strategy = prepare(config)  # before any TensorFlow work: multi-worker needs that
    data = load_data(config)
    train, val = data.split("train"), data.split("val")
    with strategy.scope():
        if config.model_path is None:
            classifier = build_model(config.model, data.image_shape, data.num_classes, weights=config.weights, download=config.download)
        else:
            classifier = copy_classifier(load_model(config, data, config.model_path))
        trainer = AdversarialTrainer(classifier, config.spec(config.attack, config.train_eps), alpha=config.alpha, seed=config.seed)
        trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        trainer(np.zeros((1, *data.image_shape), np.float32))  # built before fit, as the run's backup callback needs
    with experiment(config, model=classifier.name, data=data) as run:
        fit_and_record(
            trainer, train_pipeline(train, config.batch_size, augment=config.augment, seed=config.seed),
            eval_pipeline(val, config.batch_size), run=run, epochs=config.epochs,
            callbacks=plateau_callbacks(patience=config.patience, restore_best_weights=True),
            title=f"{config.attack} adversarial training (eps {budget_label(config.train_eps, config.norm)}, alpha {config.alpha:g}) on {data.name}",
        )  # fmt: skip
        classifier.save(run.path("model.keras"))
        return attack_and_record(config, classifier, data, run)


command = mode_group(
    "fgsm",
    "Adversarial examples: eval (FGSM/PGD accuracy vs epsilon of a saved model) or train (adversarial training).",
    {
        "eval": config_command("eval", EvalConfig, run_eval, "FGSM/PGD accuracy and loss of a saved model at each epsilon, with pictures."),
        "train": config_command("train", TrainConfig, run_train, "Adversarial training (FGSM or PGD), then the same evaluation."),
    },
)
