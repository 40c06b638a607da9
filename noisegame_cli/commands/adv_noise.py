"""``noisegame adv-noise gnt|ant``: fine-tune a teacher on noisy images.

- ``gnt``: Gaussian-noise training; every batch is half clean, half with Gaussian noise of ``--sigma``
  (one value, or a list from which each noisy image draws its own, the multi-sigma variant of Rusak
  et al. 2020).
- ``ant``: adversarial noise training, the Game of Noise (Rusak et al., ECCV 2020). A noise generator
  (1x1 or 3x3 convolutions on N(0, 1) input) learns the noise of L2 size ``--eps`` that fools the
  classifier, while the classifier fine-tunes on batches where a random ``--p-noise`` share is noisy.

Sizes (``--sigma``, ``--eps``) are on the 0..1 image scale. The teacher is copied, not changed; the
test metrics put teacher and fine-tuned model side by side (role column), clean, under the mode's own
noise, and with ``--corruptions`` under the common corruptions.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Mapping

import keras
import tensorflow as tf

from noisegame_cli import checks, plots, sections
from noisegame_cli.commands.common import experiment, load_data, load_model, prepare
from noisegame_cli.config import (
    AugmentOptions,
    CorruptionEvalOptions,
    DataOptions,
    RunOptions,
    SavedModelOptions,
    TrainingOptions,
    check_model_source,
    redefault,
    require,
    setting,
)
from noisegame_cli.data.pipelines import eval_pipeline, train_pipeline
from noisegame_cli.evaluation import accuracy_by_role, clean_rows, generated_corruption_rows, transformed_rows
from noisegame_cli.evaluation.clean import float_batches
from noisegame_cli.models import copy_classifier
from noisegame_cli.models.noise_generator import GENERATOR_KERNELS, build_noise_generator
from noisegame_cli.options import config_command, mode_group
from noisegame_cli.training.classifier import compile_classifier, fit_and_record
from noisegame_cli.training.game_of_noise import (
    GENERATOR_LOSSES,
    GameOfNoiseTrainer,
    GeneratorSchedule,
    generator_transform,
    mean_noise_l2,
)
from noisegame_cli.training.gaussian_noise import gaussian_transform, with_gaussian_noise
from noisegame_cli.training.l2_budget import BUDGETS

EXAMPLES_SHOWN = 8


@dataclasses.dataclass(frozen=True)
class FineTuningOptions(CorruptionEvalOptions, SavedModelOptions, AugmentOptions, TrainingOptions, DataOptions, RunOptions):
    """What both modes share: the teacher to copy and fine-tune."""

    teacher: str | None = setting(None, "Classifier to fine-tune: a train-teacher run directory or a saved model (required).",
                                  check=check_model_source, show_default=False)
    learning_rate: float = redefault(TrainingOptions, "learning_rate", 1e-4, "Classifier Adam learning rate for fine-tuning.")

    def validate(self) -> None:
        super().validate()
        require(self.teacher is not None, "--teacher is required (a train-teacher run directory or a saved model)")

    @property
    def mode(self) -> str:
        return self.command.rsplit("-", 1)[-1]

    @property
    def default_run_name(self) -> str:
        return self.mode


@dataclasses.dataclass(frozen=True)
class GntConfig(FineTuningOptions):
    command = "adv-noise-gnt"
    section = sections.NOISE_TRAINING
    model_role = "gnt"

    sigma: tuple[float, ...] = setting((0.1,), "Gaussian noise std in the 0..1 scale; a comma list draws one per noisy image.",
                                       check=checks.all_of(checks.not_empty, checks.between(0, 1, low_open=True)))


@dataclasses.dataclass(frozen=True)
class AntConfig(FineTuningOptions):
    command = "adv-noise-ant"
    renamed: ClassVar[Mapping[str, str]] = {"epsilon": "eps"}
    section = sections.NOISE_TRAINING
    model_role = "ant"

    eps: float = setting(4.0, "Budget of the generator's noise: its L2 size per image, on the 0..1 image scale.", check=checks.positive)
    budget: str = setting("project", "Exact projection onto --eps, or the penalty |norm - eps|.", choices=BUDGETS)
    penalty_weight: float = setting(1.0, "Weight of the budget penalty (--budget penalty).", check=checks.at_least(0))
    generator: str = setting("1x1", "Generator convolutions: 1x1 (pixel-wise) or 3x3 (spatially correlated).", choices=tuple(GENERATOR_KERNELS))
    generator_depth: int = setting(4, "Generator layers.", check=checks.at_least(2))
    generator_width: int = setting(20, "Generator filters per hidden layer.", check=checks.at_least(1))
    generator_batch_norm: bool = setting(False, "Batch normalisation in the generator.")
    generator_loss: str = setting("ce", "Maximise cross-entropy (ce) or minimise -log(1 - p_true) (reversed).", choices=GENERATOR_LOSSES)
    generator_learning_rate: float = setting(1e-3, "Generator Adam learning rate.", check=checks.positive)
    p_noise: float = setting(0.5, "Share of each batch that gets noise.", check=checks.between(0, 1, low_open=True))
    reset_generator_every: int = setting(0, "Re-initialise the generator every N epochs (0 = never).", check=checks.at_least(0))
    replay: float = setting(0.0, "Probability of noise from a stored past generator.", check=checks.between(0, 1, high_open=True))
    replay_size: int = setting(5, "Past generators kept for replay.", check=checks.at_least(1))


def _noise_grid(path, test, transform, title: str) -> None:
    """Clean test images, the noise (centred on grey, stretched) and the noisy images."""
    images, _ = test.arrays(EXAMPLES_SHOWN)
    noisy = transform(tf.constant(images, tf.float32), tf.constant(0, tf.int64)).numpy()
    plots.image_grid({"clean": list(images), "noise (stretched)": list(noisy - images), "noisy": list(noisy)},
                     path, centred_rows=("noise (stretched)",), title=title)  # fmt: skip


def _fine_tune(config: FineTuningOptions, build_trainer, train_fit, evaluate_noise) -> dict:
    """The flow both modes share: copy the teacher, train, evaluate teacher and result side by side."""
    strategy = prepare(config)
    data = load_data(config)
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    with strategy.scope():
        teacher = load_model(config, data, config.teacher, what="teacher")
        classifier = copy_classifier(teacher)
        trainer = build_trainer(classifier, data)
    with experiment(config, model=teacher.name, data=data) as run:
        train_batches = train_pipeline(train, config.batch_size, augment=config.augment, seed=config.seed)
        validation = eval_pipeline(val, config.batch_size)
        train_fit(trainer, train_batches, validation, run, f"{config.mode.upper()} fine-tuning of {teacher.name} on {data.name}")
        classifier.save(run.path("model.keras"))
        models = {"teacher": teacher, config.mode: classifier}
        rows = clean_rows(models, test, config.batch_size)
        rows += evaluate_noise(models, test, run, trainer)
        if config.corruptions:
            rows += generated_corruption_rows(models, test, config.corruptions, config.severities, config.batch_size, seed=config.seed,
                                              parameters=config.parameters)
        run.write_metrics(rows, results=config.results)
    accuracy = accuracy_by_role(rows)
    return {"run_dir": str(run.directory), "teacher_test_accuracy": accuracy["teacher"], f"{config.mode}_test_accuracy": accuracy[config.mode]}


def run_gnt(config: GntConfig) -> dict:
    """Gaussian-noise training from a teacher; returns the run directory and both test accuracies."""

    def build(classifier, data):
        compile_classifier(classifier, learning_rate=config.learning_rate)
        return classifier

    def fit(classifier, train, validation, run, title):
        fit_and_record(classifier, with_gaussian_noise(train, config.sigma, seed=config.seed), validation, run=run,
                       epochs=config.epochs, title=title)  # fmt: skip

    def evaluate_noise(models, test, run, classifier):
        rows = []
        for sigma in config.sigma:
            noisy = gaussian_transform(sigma, config.seed)
            rows += transformed_rows(models, test, noisy, config.batch_size, "gaussian_accuracy", condition="noise", sigma=sigma)
        _noise_grid(run.path("noise_grid.png"), test, gaussian_transform(config.sigma[-1], config.seed),
                    f"Gaussian noise, sigma {config.sigma[-1]:g}")  # fmt: skip
        return rows

    return _fine_tune(config, build, fit, evaluate_noise)


def run_ant(config: AntConfig) -> dict:
    """The Game of Noise from a teacher; returns the run directory and both test accuracies."""

    def build(classifier, data):
        generator = build_noise_generator(data.image_shape, kind=config.generator, depth=config.generator_depth,
                                          width=config.generator_width, batch_norm=config.generator_batch_norm)  # fmt: skip
        trainer = GameOfNoiseTrainer(
            classifier, generator, epsilon=config.eps, p_noise=config.p_noise, budget=config.budget,
            generator_loss=config.generator_loss, penalty_weight=config.penalty_weight,
            replay=config.replay, replay_size=config.replay_size,
        )  # fmt: skip
        trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                        generator_optimizer=keras.optimizers.Adam(config.generator_learning_rate))  # fmt: skip
        return trainer

    def fit(trainer, train, validation, run, title):
        schedule = GeneratorSchedule(trainer, reset_every=config.reset_generator_every)
        fit_and_record(trainer, train, validation, run=run, epochs=config.epochs, callbacks=[schedule], title=title)

    def evaluate_noise(models, test, run, trainer):
        transform = generator_transform(trainer.generator, config.eps, budget=config.budget, seed=config.seed)
        rows = transformed_rows(models, test, transform, config.batch_size, "generator_noise_accuracy", condition="noise",
                                epsilon=config.eps)
        size = mean_noise_l2(trainer.generator, float_batches(test, config.batch_size), config.eps, budget=config.budget, seed=config.seed)
        rows.append({"split": "test", "role": "generator", "model": "noise_generator", "condition": "noise", "metric": "noise_l2", "value": size,
                     "epsilon": config.eps})  # fmt: skip
        _noise_grid(run.path("noise_grid.png"), test, transform, f"final generator noise, L2 epsilon {config.eps:g}")
        return rows

    return _fine_tune(config, build, fit, evaluate_noise)


command = mode_group(
    "adv-noise",
    "Fine-tune a teacher on noisy images: gnt (Gaussian-noise training) or ant (the Game of Noise).",
    {
        "gnt": config_command("gnt", GntConfig, run_gnt, "Gaussian-noise training (one or several sigmas) from a teacher."),
        "ant": config_command("ant", AntConfig, run_ant, "Adversarial noise training (the Game of Noise) from a teacher."),
    },
)
