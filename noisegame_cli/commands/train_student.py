"""``noisegame train-student``: consistency training of a student on noisy views, guided by a teacher.

The recipe of the Keras example "Consistency training with supervision" (Sayak Paul, 2021): the
frozen teacher predicts on the clean view of a batch, the student learns on a RandAugment (or
AugMix) view (``--view``) of the same images with ``alpha * CE(y, s) + (1 - alpha) * KL(softmax(t/T) || softmax(s/T))``.
The student is ``--model`` trained from scratch, or a copy of the teacher (``--init-from-teacher``).
Clean test accuracy of teacher and student is reported side by side, and with
``--corruptions`` their accuracy under the common corruptions.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Mapping

import keras

from noisegame_cli import checks, sections
from noisegame_cli.commands.common import experiment, load_data, load_model, prepare
from noisegame_cli.config import (
    AugmentOptions,
    CorruptionEvalOptions,
    DataOptions,
    EarlyStoppingOptions,
    ModelOptions,
    RunOptions,
    SavedModelOptions,
    TrainingOptions,
    check_model_source,
    require,
    setting,
)
from noisegame_cli.data.pipelines import eval_pipeline, paired_pipeline
from noisegame_cli.evaluation import accuracy_by_role, clean_rows, generated_corruption_rows
from noisegame_cli.models import build_model, copy_classifier
from noisegame_cli.options import config_command
from noisegame_cli.training.classifier import fit_and_record, plateau_callbacks
from noisegame_cli.training.student import SelfTrainer, noise_layer

VIEWS = ("randaugment", "augmix", "none")


@dataclasses.dataclass(frozen=True)
class Config(CorruptionEvalOptions, ModelOptions, SavedModelOptions, AugmentOptions, EarlyStoppingOptions, TrainingOptions, DataOptions, RunOptions):
    command = "train-student"
    renamed: ClassVar[Mapping[str, str]] = {"noise": "view"}
    section = sections.NOISE_TRAINING
    model_role = "student"

    teacher: str | None = setting(None, "Teacher: a train-teacher run directory, a saved model or app:NAME[:WEIGHTS] (required).",
                                  check=check_model_source, show_default=False)
    view: str = setting("randaugment", "How the student's (noised) view is made.", choices=VIEWS)
    strength: float = setting(0.5, "RandAugment/AugMix factor in (0, 1] (docs/train-student.md relates it to magnitude 9).",
                              check=checks.between(0, 1, low_open=True))
    num_ops: int = setting(2, "RandAugment operations per batch.", check=checks.at_least(1))
    temperature: float = setting(10.0, "Softmax temperature of the KL term.", check=checks.positive)
    alpha: float = setting(0.5, "Weight of the cross-entropy; 1 - alpha weighs the KL.", check=checks.between(0, 1))
    init_from_teacher: bool = setting(False, "Start the student as a copy of the teacher (fine-tune) instead of --model.")

    def validate(self) -> None:
        super().validate()
        require(self.teacher is not None, "--teacher is required (a train-teacher run directory or a saved model)")


def run(config: Config) -> dict:
    """Consistency-train a student; returns the run directory and teacher/student test accuracy."""
    strategy = prepare(config)
    data = load_data(config)
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    with strategy.scope():
        teacher = load_model(config, data, config.teacher, what="teacher")
        if config.init_from_teacher:
            student = copy_classifier(teacher)
        else:
            student = build_model(config.model, data.image_shape, data.num_classes, weights=config.weights, download=config.download)
        trainer = SelfTrainer(student, teacher, temperature=config.temperature, alpha=config.alpha)
        trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    with experiment(config, model=student.name, data=data) as run:
        noise = noise_layer(config.view, config.strength, config.num_ops, config.seed)
        train_batches = paired_pipeline(train, config.batch_size, noise, augment=config.augment, seed=config.seed)
        validation = eval_pipeline(val, config.batch_size)
        fit_and_record(trainer, train_batches, validation, run=run, epochs=config.epochs,
                       callbacks=plateau_callbacks(patience=config.patience, restore_best_weights=True),
                       title=f"student {student.name} from teacher {teacher.name} on {data.name}")  # fmt: skip
        student.save(run.path("model.keras"))
        models = {"teacher": teacher, "student": student}
        rows = clean_rows(models, test, config.batch_size)
        if config.corruptions:
            rows += generated_corruption_rows(models, test, config.corruptions, config.severities, config.batch_size, seed=config.seed,
                                              parameters=config.parameters)
        run.write_metrics(rows, results=config.results)
    accuracy = accuracy_by_role(rows)
    return {"run_dir": str(run.directory), "teacher_test_accuracy": accuracy["teacher"], "student_test_accuracy": accuracy["student"]}


command = config_command("train-student", Config, run, "Consistency training: a student on noisy views learns from labels and a frozen teacher.")
