"""``noisegame adv-noise``: fine-tune a teacher on noisy images, by Gaussian-noise training or the Game of Noise.

- ``--mode gnt``: every batch is half clean, half with Gaussian noise of ``--sigma`` (one value, or a
  list from which each noisy image draws its own, the multi-sigma variant of Rusak et al. 2020).
- ``--mode ant``: adversarial noise training (Rusak et al., ECCV 2020). A noise generator (1x1 or 3x3
  convolutions on N(0, 1) input) learns the noise of L2 size ``--epsilon`` that fools the classifier,
  while the classifier fine-tunes on batches where a random ``--p-noise`` share of images is noisy.

Sizes (``sigma``, ``epsilon``) are in the 0..1 image scale. The teacher is copied, not changed; the
test metrics put teacher and fine-tuned model side by side (role column), clean, under the mode's own
noise, and with ``--eval-corruptions`` under CIFAR-10-C style corruptions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import keras
import numpy as np

from noisegame_cli import plots
from noisegame_cli.commands.common import experiment
from noisegame_cli.commands.train_student import (
    check_corruption_request,
    clean_rows,
    corruption_options,
    corruption_rows,
    load_teacher,
)
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.data import load_dataset
from noisegame_cli.data.pipelines import AUGMENTATIONS, eval_pipeline, train_pipeline
from noisegame_cli.models import copy_classifier
from noisegame_cli.models.noise_generator import GENERATOR_KERNELS, build_noise_generator
from noisegame_cli.options import FLOAT_LIST, common_options, run_command
from noisegame_cli.training.classifier import compile_classifier, evaluate_classifier, fit_and_record
from noisegame_cli.training.noise import (
    BUDGETS,
    GENERATOR_LOSSES,
    GameOfNoiseTrainer,
    GeneratorSchedule,
    add_gaussian_noise,
    generate_noisy,
    validate_game,
    validate_sigmas,
    with_gaussian_noise,
)
from noisegame_cli.training.strategy import make_strategy

MODES = ("gnt", "ant")


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    command = "adv-noise"

    teacher: str | None = None
    mode: str = "ant"
    sigma: tuple[float, ...] = (0.1,)
    epsilon: float = 4.0
    budget: str = "project"
    penalty_weight: float = 1.0
    generator: str = "1x1"
    generator_depth: int = 4
    generator_width: int = 20
    generator_batch_norm: bool = False
    generator_loss: str = "ce"
    generator_learning_rate: float = 1e-3
    p_noise: float = 0.5
    reset_generator_every: int = 0
    replay: float = 0.0
    replay_size: int = 5
    learning_rate: float = 1e-4
    augment: str = "flip_crop"
    eval_corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.teacher), "--teacher is required (a train-teacher run directory or a model.keras file)")
        require(self.mode in MODES, f"unknown --mode {self.mode!r}; choose from {', '.join(MODES)}")
        validate_sigmas(self.sigma)
        validate_game(self.epsilon, self.p_noise, self.budget, self.generator_loss, self.replay)
        require(self.generator in GENERATOR_KERNELS, f"unknown --generator {self.generator!r}; choose from {', '.join(GENERATOR_KERNELS)}")
        require(self.generator_depth >= 2, f"--generator-depth must be at least 2, got {self.generator_depth}")
        require(self.generator_width >= 1, f"--generator-width must be positive, got {self.generator_width}")
        require(self.reset_generator_every >= 0, f"--reset-generator-every must be >= 0, got {self.reset_generator_every}")
        require(self.replay_size >= 1, f"--replay-size must be at least 1, got {self.replay_size}")
        require(self.learning_rate > 0 and self.generator_learning_rate > 0, "learning rates must be positive")
        require(self.augment in AUGMENTATIONS, f"unknown --augment {self.augment!r}; choose from {', '.join(AUGMENTATIONS)}")
        check_corruption_request(self.eval_corruptions, self.severities)


def train_gnt(config: Config, classifier: keras.Model, train, validation, run, title: str):
    train = with_gaussian_noise(train, config.sigma, seed=config.seed)
    fit_and_record(classifier, train, validation, run=run, epochs=config.epochs, title=title)


def train_ant(config: Config, trainer: GameOfNoiseTrainer, train, validation, run, title: str):
    schedule = GeneratorSchedule(trainer, reset_every=config.reset_generator_every)
    fit_and_record(trainer, train, validation, run=run, epochs=config.epochs, callbacks=[schedule], title=title)


def gnt_rows(models, images, labels, sigmas, batch_size: int, seed: int) -> list[dict]:
    """Accuracy of each model under Gaussian noise of each training sigma (the same noise for all)."""
    rows = []
    for sigma in sigmas:
        noisy = add_gaussian_noise(images, sigma, seed=seed)
        for role, model in models.items():
            accuracy = evaluate_classifier(model, noisy, labels, batch_size)["accuracy"]
            rows.append({"split": "test", "role": role, "model": model.name, "metric": "gaussian_accuracy", "value": accuracy, "sigma": sigma})
    return rows


def ant_rows(models, noisy, perturbations, labels, epsilon: float, batch_size: int) -> list[dict]:
    """Accuracy of each model under the final generator's noise, and the noise's mean L2 size."""
    rows = []
    mean_l2 = float(np.mean(np.linalg.norm(perturbations.reshape(len(perturbations), -1), axis=1)))
    for role, model in models.items():
        accuracy = evaluate_classifier(model, noisy, labels, batch_size)["accuracy"]
        rows.append({"split": "test", "role": role, "model": model.name, "metric": "generator_noise_accuracy", "value": accuracy, "epsilon": epsilon})
    rows.append({"split": "test", "role": "generator", "model": "noise_generator", "metric": "noise_l2", "value": mean_l2, "epsilon": epsilon})
    return rows


def noise_grid(clean: np.ndarray, noisy: np.ndarray, path: Path, *, title: str, count: int = 8) -> Path:
    """Rows of clean images, the noise (centred on grey, stretched to full contrast) and noisy images."""
    import matplotlib.pyplot as plt

    count = min(count, len(clean))
    noise = noisy[:count] - clean[:count].astype(np.float32)
    stretch = max(float(np.abs(noise).max()), 1e-6)
    rows = (("clean", clean[:count] / 255.0), ("noise (stretched)", 0.5 + 0.5 * noise / stretch), ("noisy", noisy[:count] / 255.0))
    figure, axes = plt.subplots(3, count, figsize=(1.3 * count, 4.2), squeeze=False)
    for row, (label, images) in enumerate(rows):
        for column in range(count):
            axis = axes[row][column]
            axis.imshow(np.clip(images[column], 0.0, 1.0))
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row][0].set_ylabel(label, fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    return plots.save(figure, path)


def run(config: Config) -> dict:
    """Fine-tune a teacher with Gaussian-noise or adversarial-noise training; returns the run
    directory and the test accuracies of teacher and fine-tuned model."""
    strategy = make_strategy(config.strategy)
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    with strategy.scope():
        teacher = load_teacher(config.teacher, data.image_shape, data.num_classes)
    with experiment(config, model=teacher.name) as run:
        train = train_pipeline(data.train.images, data.train.labels, config.batch_size, augment=config.augment, seed=config.seed)
        validation = eval_pipeline(data.val.images, data.val.labels, config.batch_size)
        title = f"{config.mode.upper()} fine-tuning of {teacher.name} on {data.name}"
        with strategy.scope():
            classifier = copy_classifier(teacher)
            if config.mode == "gnt":
                compile_classifier(classifier, learning_rate=config.learning_rate)
            else:
                generator = build_noise_generator(data.image_shape, kind=config.generator, depth=config.generator_depth,
                                                  width=config.generator_width, batch_norm=config.generator_batch_norm)
                trainer = GameOfNoiseTrainer(
                    classifier, generator, epsilon=config.epsilon, p_noise=config.p_noise, budget=config.budget,
                    generator_loss=config.generator_loss, penalty_weight=config.penalty_weight,
                    replay=config.replay, replay_size=config.replay_size,
                )
                trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                                generator_optimizer=keras.optimizers.Adam(config.generator_learning_rate))
        if config.mode == "gnt":
            train_gnt(config, classifier, train, validation, run, title)
        else:
            train_ant(config, trainer, train, validation, run, title)
        classifier.save(run.path("model.keras"))

        models = {"teacher": teacher, config.mode: classifier}
        test_images, test_labels = data.test.images, data.test.labels
        rows, accuracy = clean_rows(models, test_images, test_labels, config.batch_size)
        if config.mode == "gnt":
            rows += gnt_rows(models, test_images, test_labels, config.sigma, config.batch_size, config.seed)
            noisy = add_gaussian_noise(test_images[:8], config.sigma[-1], seed=config.seed)
            grid_title = f"Gaussian noise, sigma {config.sigma[-1]:g}"
        else:
            noisy_all, perturbations = generate_noisy(generator, test_images, config.epsilon, budget=config.budget,
                                                      batch_size=config.batch_size, seed=config.seed)
            rows += ant_rows(models, noisy_all, perturbations, test_labels, config.epsilon, config.batch_size)
            noisy = noisy_all[:8]
            grid_title = f"final generator noise, L2 epsilon {config.epsilon:g}"
        noise_grid(test_images[:8], noisy, run.path("noise_grid.png"), title=grid_title)
        if config.eval_corruptions:
            rows += corruption_rows(models, test_images, test_labels, config.eval_corruptions,
                                    config.severities, config.batch_size, seed=config.seed)
        run.write_metrics(rows, results=config.results)
    return {"run_dir": str(run.directory), "teacher_test_accuracy": accuracy["teacher"],
            f"{config.mode}_test_accuracy": accuracy[config.mode]}


@click.command("adv-noise")
@common_options
@click.option("--teacher", default=None, help="Classifier to fine-tune: a train-teacher run directory or model.keras (required).")
@click.option("--mode", type=click.Choice(MODES), default=None, help="gnt: Gaussian-noise training; ant: the Game of Noise [default: ant].")
@click.option("--sigma", type=FLOAT_LIST, default=None,
              help="gnt: Gaussian noise std in the 0..1 scale; a comma list draws one per image [default: 0.1].")
@click.option("--epsilon", type=float, default=None, help="ant: L2 size of the noise per image, 0..1 scale [default: 4.0].")
@click.option("--budget", type=click.Choice(BUDGETS), default=None,
              help="ant: exact projection onto epsilon, or the penalty |norm - epsilon| [default: project].")
@click.option("--penalty-weight", type=float, default=None, help="ant: weight of the budget penalty [default: 1].")
@click.option("--generator", type=click.Choice(tuple(GENERATOR_KERNELS)), default=None,
              help="ant: 1x1 (pixel-wise) or 3x3 (spatially correlated) convolutions [default: 1x1].")
@click.option("--generator-depth", type=int, default=None, help="ant: generator layers [default: 4].")
@click.option("--generator-width", type=int, default=None, help="ant: generator filters per hidden layer [default: 20].")
@click.option("--generator-batch-norm/--no-generator-batch-norm", default=None, help="ant: batch norm in the generator [default: off].")
@click.option("--generator-loss", type=click.Choice(GENERATOR_LOSSES), default=None,
              help="ant: maximise cross-entropy (ce) or minimise -log(1 - p_true) (reversed) [default: ce].")
@click.option("--generator-learning-rate", type=float, default=None, help="ant: generator Adam learning rate [default: 0.001].")
@click.option("--p-noise", type=float, default=None, help="ant: share of each batch that gets noise [default: 0.5].")
@click.option("--reset-generator-every", type=int, default=None, help="ant: re-initialise the generator every N epochs (0 = never).")
@click.option("--replay", type=float, default=None, help="ant: probability of noise from a stored past generator [default: 0].")
@click.option("--replay-size", type=int, default=None, help="ant: past generators kept for replay [default: 5].")
@click.option("--learning-rate", type=float, default=None, help="Classifier Adam learning rate for fine-tuning [default: 0.0001].")
@click.option("--augment", type=click.Choice(AUGMENTATIONS), default=None, help="Geometric augmentation [default: flip_crop].")
@corruption_options
@click.pass_context
def command(ctx: click.Context, **params) -> None:
    """Gaussian-noise training or the Game of Noise (adversarial noise training) from a teacher."""
    run_command(run, Config, ctx, params)
