"""``noisegame train-student``: consistency training of a student on noisy views, guided by a teacher.

The recipe of the Keras example "Consistency training with supervision" (Sayak Paul, 2021): the
frozen teacher predicts on the clean view of a batch, the student learns on a RandAugment (or
AugMix) view of the same images with ``alpha * CE(y, s) + (1 - alpha) * KL(softmax(t/T) || softmax(s/T))``.
The student is a registered model trained from scratch, or a copy of the teacher
(``--init-from-teacher``). Clean test accuracy of teacher and student is reported side by side,
and with ``--eval-corruptions`` their accuracy under CIFAR-10-C style corruptions.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import click
import keras
import numpy as np

from noisegame_cli.commands.common import check_training_settings, experiment
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.data import load_dataset
from noisegame_cli.data.pipelines import AUGMENTATIONS, eval_pipeline, paired_pipeline
from noisegame_cli.models import build_model, check_fits, copy_classifier, load_classifier
from noisegame_cli.options import INT_LIST, NAME_LIST, common_options, run_command
from noisegame_cli.training.classifier import evaluate_classifier, fit_and_record, plateau_callbacks
from noisegame_cli.training.strategy import make_strategy
from noisegame_cli.training.student import SelfTrainer

NOISES = ("randaugment", "augmix", "none")
# Shorthands for --eval-corruptions.
NOISE_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    command = "train-student"

    teacher: str | None = None
    noise: str = "randaugment"
    strength: float = 0.5
    num_ops: int = 2
    temperature: float = 10.0
    alpha: float = 0.5
    init_from_teacher: bool = False
    augment: str = "flip_crop"
    learning_rate: float = 1e-3
    patience: int = 5
    eval_corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.teacher), "--teacher is required (a train-teacher run directory or a model.keras file)")
        require(self.noise in NOISES, f"unknown --noise {self.noise!r}; choose from {', '.join(NOISES)}")
        require(0 < self.strength <= 1, f"--strength must lie in (0, 1], got {self.strength}")
        require(self.num_ops >= 1, f"--num-ops must be at least 1, got {self.num_ops}")
        require(self.temperature > 0, f"--temperature must be positive, got {self.temperature}")
        require(0 <= self.alpha <= 1, f"--alpha must lie in [0, 1], got {self.alpha}")
        check_training_settings(self.augment, self.learning_rate, self.patience)
        check_corruption_request(self.eval_corruptions, self.severities)


def noise_layer(kind: str, strength: float, num_ops: int, seed: int) -> keras.layers.Layer | None:
    """The Keras layer that makes the student's view (0..255 in, float 0..255 out), or ``None``."""
    if kind == "randaugment":
        return keras.layers.RandAugment(value_range=(0, 255), num_ops=num_ops, factor=strength, seed=seed)
    if kind == "augmix":
        return keras.layers.AugMix(value_range=(0, 255), factor=strength, seed=seed)
    return None


# --- corruption evaluation, shared with adv-noise --------------------------------------------------


def expand_corruption_names(names: Sequence[str]) -> tuple[str, ...]:
    """``noise`` stands for the three noise corruptions, ``all`` for all 19; others pass through."""
    from noisegame_cli.corruptions import ALL_CORRUPTIONS

    expanded: list[str] = []
    for name in names:
        group = {"noise": NOISE_CORRUPTIONS, "all": ALL_CORRUPTIONS}.get(name, (name,))
        expanded += [n for n in group if n not in expanded]
    return tuple(expanded)


def check_corruption_request(names: Sequence[str], severities: Sequence[int]) -> None:
    if not names:
        return
    from noisegame_cli.corruptions import ALL_CORRUPTIONS

    for name in expand_corruption_names(names):
        require(name in ALL_CORRUPTIONS, f"unknown corruption {name!r}; choose from noise, all, {', '.join(ALL_CORRUPTIONS)}")
    require(len(severities) > 0 and all(1 <= s <= 5 for s in severities), f"--severities must lie in 1..5, got {list(severities)}")


def corruption_rows(
    models: Mapping[str, keras.Model],
    images: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    severities: Sequence[int],
    batch_size: int,
    seed: int = 0,
) -> list[dict]:
    """Accuracy of each model (keyed by its role) on each corruption and severity, plus the mean
    over them all (``corruption="mean"``). Each corrupted set is made once and shared by the models."""
    from noisegame_cli.corruptions import corrupt

    names = expand_corruption_names(names)
    progress = keras.utils.Progbar(len(names) * len(severities), unit_name="corruption")
    accuracies: dict[str, list[float]] = {role: [] for role in models}
    rows = []
    for name in names:
        for severity in severities:
            corrupted = corrupt(images, name, severity, seed=seed)
            for role, model in models.items():
                accuracy = evaluate_classifier(model, corrupted, labels, batch_size)["accuracy"]
                accuracies[role].append(accuracy)
                rows.append(_row(role, model, "accuracy", accuracy, corruption=name, severity=severity))
            progress.add(1)
    for role, model in models.items():
        rows.append(_row(role, model, "accuracy", float(np.mean(accuracies[role])), corruption="mean"))
    return rows


def _row(role: str, model: keras.Model, metric: str, value: float, **columns) -> dict:
    return {"split": "test", "role": role, "model": model.name, "metric": metric, "value": value, **columns}


def clean_rows(models: Mapping[str, keras.Model], images: np.ndarray, labels: np.ndarray, batch_size: int) -> tuple[list[dict], dict]:
    """Clean test accuracy and loss of each model; also returns ``{role: accuracy}``."""
    rows, accuracy = [], {}
    for role, model in models.items():
        result = evaluate_classifier(model, images, labels, batch_size)
        accuracy[role] = result["accuracy"]
        rows += [_row(role, model, name, value) for name, value in result.items()]
    return rows, accuracy


def load_teacher(path: str, image_shape, num_classes: int) -> keras.Model:
    teacher = load_classifier(path)
    check_fits(teacher, image_shape, num_classes, what="teacher")
    return teacher


# --- the command ---------------------------------------------------------------------------------


def build_student(config: Config, teacher: keras.Model, image_shape, num_classes: int) -> keras.Model:
    if config.init_from_teacher:
        return copy_classifier(teacher)
    return build_model(config.model, image_shape, num_classes)


def run(config: Config) -> dict:
    """Consistency-train a student; returns the run directory and teacher/student test accuracy."""
    strategy = make_strategy(config.strategy)
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    with strategy.scope():
        teacher = load_teacher(config.teacher, data.image_shape, data.num_classes)
    student_name = teacher.name if config.init_from_teacher else config.model
    with experiment(config, model=student_name) as run:
        noise = noise_layer(config.noise, config.strength, config.num_ops, config.seed)
        train = paired_pipeline(data.train.images, data.train.labels, config.batch_size, noise, augment=config.augment, seed=config.seed)
        validation = eval_pipeline(data.val.images, data.val.labels, config.batch_size)
        with strategy.scope():
            student = build_student(config, teacher, data.image_shape, data.num_classes)
            trainer = SelfTrainer(student, teacher, temperature=config.temperature, alpha=config.alpha)
            trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        callbacks = plateau_callbacks(patience=config.patience, restore_best_weights=True)
        fit_and_record(trainer, train, validation, run=run, epochs=config.epochs, callbacks=callbacks,
                       title=f"student {student_name} from teacher {teacher.name} on {data.name}")
        student.save(run.path("model.keras"))

        models = {"teacher": teacher, "student": student}
        rows, accuracy = clean_rows(models, data.test.images, data.test.labels, config.batch_size)
        if config.eval_corruptions:
            rows += corruption_rows(models, data.test.images, data.test.labels, config.eval_corruptions,
                                    config.severities, config.batch_size, seed=config.seed)
        run.write_metrics(rows, results=config.results)
    return {"run_dir": str(run.directory), "teacher_test_accuracy": accuracy["teacher"], "student_test_accuracy": accuracy["student"]}


def corruption_options(function):
    """``--eval-corruptions`` and ``--severities`` (also used by adv-noise)."""
    function = click.option("--severities", type=INT_LIST, default=None,
                            help="Corruption severities to evaluate [default: 1,2,3,4,5].")(function)
    return click.option("--eval-corruptions", type=NAME_LIST, default=None,
                        help="After training, evaluate on these corruptions (comma list; 'noise' = gaussian, shot "
                             "and impulse noise; 'all' = the 19).")(function)


@click.command("train-student")
@common_options
@click.option("--teacher", default=None, help="Teacher: a train-teacher run directory or a model.keras file (required).")
@click.option("--noise", type=click.Choice(NOISES), default=None, help="How the student's view is made [default: randaugment].")
@click.option("--strength", type=float, default=None,
              help="RandAugment/AugMix factor in (0, 1] (see README for its relation to magnitude 9) [default: 0.5].")
@click.option("--num-ops", type=int, default=None, help="RandAugment operations per image [default: 2].")
@click.option("--temperature", type=float, default=None, help="Softmax temperature of the KL term [default: 10].")
@click.option("--alpha", type=float, default=None, help="Weight of the cross-entropy; 1 - alpha weighs the KL [default: 0.5].")
@click.option("--init-from-teacher", is_flag=True, default=None, help="Start the student as a copy of the teacher (fine-tune).")
@click.option("--augment", type=click.Choice(AUGMENTATIONS), default=None,
              help="Geometric augmentation shared by both views [default: flip_crop].")
@click.option("--learning-rate", type=float, default=None, help="Adam learning rate [default: 0.001].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience in epochs [default: 5].")
@corruption_options
@click.pass_context
def command(ctx: click.Context, **params) -> None:
    """Consistency training: a student on noisy views learns from labels and a frozen teacher."""
    run_command(run, Config, ctx, params)

