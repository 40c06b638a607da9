"""``noisegame train-teacher``: a standard classifier with geometric augmentation only.

Adam with ReduceLROnPlateau and EarlyStopping (best weights restored), optionally stochastic
weight averaging (``--swa-start``) or an exponential moving average of the weights (``--ema``);
with either, the averaged weights are the result and early stopping restores nothing. The
heuristics of the frequency study are options too: ``--mixup``, ``--dropout``, ``--no-batch-norm``.
"""

from __future__ import annotations

import dataclasses

import click

from noisegame_cli.commands.common import check_training_settings, experiment
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.data import load_dataset
from noisegame_cli.data.pipelines import AUGMENTATIONS, eval_pipeline, one_hot_labels, train_pipeline, with_mixup
from noisegame_cli.models import build_model
from noisegame_cli.options import common_options, run_command
from noisegame_cli.training.callbacks import StochasticWeightAveraging
from noisegame_cli.training.classifier import compile_classifier, evaluate_classifier, fit_and_record, plateau_callbacks
from noisegame_cli.training.strategy import make_strategy


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    command = "train-teacher"

    augment: str = "flip_crop"
    learning_rate: float = 1e-3
    patience: int = 5
    swa_start: int | None = None
    ema: bool = False
    mixup: float = 0.0
    dropout: float = 0.0
    batch_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_training_settings(self.augment, self.learning_rate, self.patience)
        require(self.mixup >= 0, f"--mixup alpha must be >= 0, got {self.mixup}")
        require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.swa_start is not None:
            require(1 <= self.swa_start <= self.epochs, f"--swa-start must lie in 1..{self.epochs} (the epochs), got {self.swa_start}")
            require(not self.ema, "choose one of --swa-start and --ema")


def run(config: Config) -> dict:
    """Train a classifier on ``config.dataset``; returns the run directory and clean test metrics."""
    strategy = make_strategy(config.strategy)
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    with experiment(config) as run:
        train = train_pipeline(data.train.images, data.train.labels, config.batch_size, augment=config.augment, seed=config.seed)
        validation = eval_pipeline(data.val.images, data.val.labels, config.batch_size)
        soft_labels = config.mixup > 0
        if soft_labels:
            train = with_mixup(train, data.num_classes, config.mixup, seed=config.seed)
            validation = one_hot_labels(validation, data.num_classes)
        with strategy.scope():
            model = build_model(config.model, data.image_shape, data.num_classes, dropout=config.dropout, batch_norm=config.batch_norm)
            compile_classifier(model, learning_rate=config.learning_rate, ema=config.ema, soft_labels=soft_labels)
        averaging = config.ema or config.swa_start is not None
        callbacks = plateau_callbacks(patience=config.patience, restore_best_weights=not averaging)
        if config.swa_start is not None:
            bn_data = train_pipeline(data.train.images, data.train.labels, config.batch_size, augment="none", shuffle=False)
            callbacks.append(StochasticWeightAveraging(config.swa_start, bn_data=bn_data))
        fit_and_record(model, train, validation, run=run, epochs=config.epochs, callbacks=callbacks, title=f"{config.model} on {data.name}")
        model.save(run.path("model.keras"))
        test = evaluate_classifier(model, data.test.images, data.test.labels, config.batch_size)
        run.write_metrics(
            [{"split": "test", "metric": name, "value": value} for name, value in test.items()],
            results=config.results,
        )
    return {"run_dir": str(run.directory), "test_accuracy": test["accuracy"], "test_loss": test["loss"]}


@click.command("train-teacher")
@common_options
@click.option("--augment", type=click.Choice(AUGMENTATIONS), default=None,
              help="Geometric augmentation [default: flip_crop; digits recipes use crop].")
@click.option("--learning-rate", type=float, default=None, help="Adam learning rate [default: 0.001].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience in epochs [default: 5].")
@click.option("--swa-start", type=int, default=None, help="Average the weights from this epoch on (SWA).")
@click.option("--ema", is_flag=True, default=None, help="Keep an exponential moving average of the weights.")
@click.option("--mixup", type=float, default=None, help="Mix-up with this Beta alpha (0 = off).")
@click.option("--dropout", type=float, default=None, help="Dropout rate before the classifier layer.")
@click.option("--batch-norm/--no-batch-norm", default=None, help="Batch normalisation in the model [default: on].")
@click.pass_context
def command(ctx: click.Context, **params) -> None:
    """Train a standard classifier (flip + crop augmentation, optional SWA/EMA weights)."""
    run_command(run, Config, ctx, params)
