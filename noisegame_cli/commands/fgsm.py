"""``noisegame fgsm``: adversarial examples (FGSM, PGD) and adversarial training.

- ``fgsm --model-path M --epsilons 0,1/255,2/255,4/255,8/255``: test accuracy and loss of a saved model
  at each budget under FGSM (and PGD with ``--attack pgd``); an accuracy-vs-epsilon PNG and a PNG of
  clean / perturbation / adversarial images with their predictions.
- ``fgsm --train``: adversarial training with ``alpha * J(x) + (1 - alpha) * J(x_adv)`` (``--attack pgd``
  for PGD training; ``--alpha 0`` is Madry et al.'s objective), from scratch (``--model``) or starting
  from a teacher (``--model-path``), then the same evaluation of the trained model.
"""

from __future__ import annotations

import dataclasses

import click
import keras
import numpy as np
import tensorflow as tf

from noisegame_cli import robustness_plots
from noisegame_cli.attacks import ATTACKS, AttackSpec, evaluate_attack, run_attack
from noisegame_cli.commands.common import check_training_settings, experiment
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.data import Dataset, load_dataset
from noisegame_cli.data.pipelines import AUGMENTATIONS, eval_pipeline, train_pipeline
from noisegame_cli.models import build_model, check_fits, copy_classifier, load_classifier
from noisegame_cli.options import FLOAT_LIST, FRACTION, common_options, run_command
from noisegame_cli.runs import Run
from noisegame_cli.training.adversarial import AdversarialTrainer
from noisegame_cli.training.classifier import fit_and_record, plateau_callbacks
from noisegame_cli.training.strategy import make_strategy

EXAMPLES_SHOWN = 8


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    command = "fgsm"
    smoke_preset = {**CommonConfig.smoke_preset, "steps": 3}

    model_path: str | None = None
    epsilons: tuple[float, ...] = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
    attack: str = "fgsm"
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    target_class: int | None = None
    use_predictions: bool = False
    train: bool = False
    train_epsilon: float = 8 / 255
    alpha: float = 0.5
    learning_rate: float = 1e-3
    augment: str = "crop"
    patience: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.train or self.model_path is not None, "fgsm needs --model-path (a model to attack) or --train")
        require(len(self.epsilons) > 0, "--epsilons needs at least one value")
        for eps in (*self.epsilons, self.train_epsilon):
            require(0.0 <= eps <= 1.0, f"epsilon must lie in [0, 1] (the 0..1 image scale, e.g. 8/255), got {eps:g}")
        require(self.attack in ATTACKS, f"unknown --attack {self.attack!r}; choose from {', '.join(ATTACKS)}")
        require(self.steps >= 1, f"--steps must be at least 1, got {self.steps}")
        require(self.step_size is None or 0.0 < self.step_size <= 1.0, f"--step-size must lie in (0, 1], got {self.step_size}")
        require(self.target_class is None or self.target_class >= 0, f"--targeted needs a class index >= 0, got {self.target_class}")
        require(0.0 <= self.alpha <= 1.0, f"--alpha must lie in [0, 1], got {self.alpha}")
        check_training_settings(self.augment, self.learning_rate, self.patience)
        require(not (self.train and (self.target_class is not None or self.use_predictions)),
                "--train attacks the true labels: drop --targeted / --use-predictions")  # fmt: skip

    @property
    def attacks_evaluated(self) -> tuple[str, ...]:
        """FGSM always; PGD as well with ``--attack pgd``."""
        return ("fgsm", "pgd") if self.attack == "pgd" else ("fgsm",)

    def spec(self, attack: str, eps: float) -> AttackSpec:
        return AttackSpec(attack, eps, self.steps, self.step_size, self.random_start, self.target_class, self.use_predictions)

    @property
    def run_name(self) -> str:
        return self.name or (f"{self.model}-adv-{self.attack}" if self.train else self.model)


def load_checked_model(path: str, data: Dataset) -> keras.Model:
    model = load_classifier(path)
    check_fits(model, data.image_shape, data.num_classes, what=f"model {path}")
    return model


def train_adversarially(
    config: Config, data: Dataset, teacher: keras.Model | None, run: Run, strategy: tf.distribute.Strategy
) -> keras.Model:
    """Adversarial training of a new model (or of the teacher's copy); saves ``model.keras``."""
    with strategy.scope():
        if teacher is None:
            classifier = build_model(config.model, data.image_shape, data.num_classes)
        else:
            classifier = copy_classifier(teacher)
        trainer = AdversarialTrainer(classifier, config.spec(config.attack, config.train_epsilon), alpha=config.alpha, seed=config.seed)
        trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        trainer(np.zeros((1, *data.image_shape), np.float32))  # built before fit, as the run's backup callback needs
    train = train_pipeline(data.train.images, data.train.labels, config.batch_size, augment=config.augment, seed=config.seed)
    validation = eval_pipeline(data.val.images, data.val.labels, config.batch_size)
    fit_and_record(
        trainer, train, validation, run=run, epochs=config.epochs,
        callbacks=plateau_callbacks(patience=config.patience, restore_best_weights=True),
        title=f"{config.attack} adversarial training (eps {config.train_epsilon * 255:.3g}/255, alpha {config.alpha:g}) on {data.name}",
    )  # fmt: skip
    classifier.save(run.path("model.keras"))
    return classifier


def robustness_rows(config: Config, model: keras.Model, data: Dataset) -> list[dict]:
    """Accuracy and loss on the test split for every attack and epsilon."""
    test = eval_pipeline(data.test.images, data.test.labels, config.batch_size)
    rows = []
    for attack in config.attacks_evaluated:
        for eps in config.epsilons:
            print(f"{attack} at epsilon {eps * 255:.3g}/255", flush=True)
            result = evaluate_attack(model, test, config.spec(attack, eps), seed=config.seed)
            measured = {"accuracy": result.accuracy, "loss": result.loss}
            if result.target_rate is not None:
                measured["target_rate"] = result.target_rate
            rows += [{"split": "test", "attack": attack, "epsilon": eps, "metric": m, "value": v} for m, v in measured.items()]
    return rows


def draw_examples(config: Config, model: keras.Model, data: Dataset, run: Run) -> None:
    """Clean, amplified perturbation and adversarial test images at the largest epsilon."""
    images = data.test.images[:EXAMPLES_SHOWN].astype(np.float32)
    labels = data.test.labels[:EXAMPLES_SHOWN]
    eps = max(config.epsilons)
    adversarial = run_attack(model, images, labels, config.spec(config.attack, eps), seed=config.seed).numpy()
    names = data.class_names

    def predicted(batch):
        return [names[i] for i in np.argmax(model.predict(batch, verbose=0), axis=-1)]

    robustness_plots.image_grid(
        {"clean": images, "perturbation": adversarial - images, "adversarial": adversarial},
        run.path("adversarial_examples.png"),
        titles=[[f"{names[y]} -> {p}" for y, p in zip(labels, predicted(images))], [],
                [f"pred {p}" for p in predicted(adversarial)]],
        centred_rows=("perturbation",),
        title=f"{config.attack} at epsilon {eps * 255:.3g}/255 (perturbation amplified)",
    )  # fmt: skip


def run(config: Config) -> dict:
    """Attack a saved model (or adversarially train one first); returns the metrics at each epsilon."""
    strategy = make_strategy(config.strategy)  # before any TensorFlow work: multi-worker needs that
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    teacher = load_checked_model(config.model_path, data) if config.model_path else None
    if config.target_class is not None:
        require(config.target_class < data.num_classes, f"--targeted {config.target_class}: {data.name} has {data.num_classes} classes")
    with experiment(config, model=teacher.name if teacher is not None else None) as run:
        model = train_adversarially(config, data, teacher, run, strategy) if config.train else teacher
        frame = run.write_metrics(robustness_rows(config, model, data), results=config.results)
        accuracy = frame[frame["metric"] == "accuracy"].assign(epsilon_255=lambda f: f["epsilon"] * 255)
        robustness_plots.line_plot(
            accuracy, x="epsilon_255", y="value", series=["attack"], path=run.path("accuracy_vs_epsilon.png"),
            xlabel="epsilon (x 1/255)", ylabel="test accuracy", title=f"{run.run_id}: accuracy under attack",
        )  # fmt: skip
        draw_examples(config, model, data, run)
    result = {"run_dir": str(run.directory)}
    for _, row in accuracy.iterrows():
        result[f"{row['attack']}_accuracy@{row['epsilon'] * 255:.3g}/255"] = float(row["value"])
    return result


@click.command("fgsm")
@common_options
@click.option("--model-path", default=None, help="Saved model (model.keras or its run directory) to attack, or the start for --train.")
@click.option("--epsilons", type=FLOAT_LIST, default=None, help="Budgets in the 0..1 image scale [default: 0,1/255,2/255,4/255,8/255].")
@click.option("--attack", type=click.Choice(ATTACKS), default=None, help="fgsm, or pgd (evaluates FGSM and PGD; trains with PGD) [default: fgsm].")
@click.option("--steps", type=int, default=None, help="PGD steps [default: 10].")
@click.option("--step-size", type=FRACTION, default=None, help="PGD step in the 0..1 scale [default: 2.5 * epsilon / steps].")
@click.option("--random-start/--no-random-start", default=None, help="PGD from a uniform random point in the ball [default: on].")
@click.option("--targeted", "target_class", type=int, default=None, help="Targeted attack towards this class index.")
@click.option("--use-predictions", is_flag=True, default=None, help="Attack the model's predictions instead of the true labels (no label leaking).")
@click.option("--train", is_flag=True, default=None, help="Adversarially train a model (--model, or starting from --model-path) first.")
@click.option("--train-epsilon", type=FRACTION, default=None, help="Training budget in the 0..1 scale [default: 8/255].")
@click.option("--alpha", type=float, default=None, help="Weight of the clean loss in the training objective [default: 0.5].")
@click.option("--learning-rate", type=float, default=None, help="Adam learning rate for --train [default: 0.001].")
@click.option("--augment", type=click.Choice(AUGMENTATIONS), default=None, help="Augmentation for --train [default: crop].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience for --train [default: 5].")
@click.pass_context
def command(ctx: click.Context, **params) -> None:
    """FGSM/PGD adversarial examples, accuracy-vs-epsilon curves, adversarial training."""
    run_command(run, Config, ctx, params)

