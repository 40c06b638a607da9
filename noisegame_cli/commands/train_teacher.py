"""``noisegame train-teacher``: a standard classifier with geometric augmentation only.

Adam with ReduceLROnPlateau and EarlyStopping (best weights restored), optionally stochastic
weight averaging (``--swa-start``) or an exponential moving average of the weights (``--ema``);
with either, the averaged weights are the result and early stopping restores nothing. The
heuristics of the frequency study are options too: ``--mixup``, ``--dropout``, ``--no-batch-norm``.
``--augment-corruptions NAMES`` corrupts each training image with one of those corruptions at a severity
of ``--augment-severities`` (``RandomCorruption``, after the geometric augmentation), and
``--corruptions`` evaluates the trained model under corruptions (the held-out ones, say).
"""

from __future__ import annotations

import dataclasses

from noisegame_cli import checks, sections
from noisegame_cli.commands.common import experiment, load_data, prepare
from noisegame_cli.config import (
    AugmentOptions,
    CorruptionEvalOptions,
    DataOptions,
    EarlyStoppingOptions,
    ModelOptions,
    RunOptions,
    TrainingOptions,
    check_corruption_set,
    require,
    setting,
)
from noisegame_cli.corruptions import RandomCorruption, names
from noisegame_cli.data.pipelines import eval_pipeline, one_hot_labels, train_pipeline, with_mixup
from noisegame_cli.evaluation import evaluate, generated_corruption_rows
from noisegame_cli.models import build_model
from noisegame_cli.options import config_command
from noisegame_cli.training.callbacks import StochasticWeightAveraging
from noisegame_cli.training.classifier import compile_classifier, fit_and_record, plateau_callbacks


@dataclasses.dataclass(frozen=True)
class Config(CorruptionEvalOptions, ModelOptions, AugmentOptions, EarlyStoppingOptions, TrainingOptions, DataOptions, RunOptions):
    command = "train-teacher"
    section = sections.NOISE_TRAINING
    model_role = "teacher"

    swa_start: int | None = setting(None, "Average the weights from this epoch (1-based) on (SWA).", check=checks.at_least(1))
    ema: bool = setting(False, "Keep an exponential moving average of the weights (Keras' use_ema).")
    mixup: float = setting(0.0, "Mix-up with this Beta alpha (0 = off).", check=checks.at_least(0))
    dropout: float = setting(0.0, "Dropout rate before the classifier layer.", check=checks.between(0, 1, high_open=True))
    batch_norm: bool = setting(True, "Batch normalisation in the model.")
    augment_corruptions: tuple[str, ...] = setting((), "Train on images corrupted by one of these corruptions each, drawn per image "
                                                   "(names, or noise, common, all).", check=names.check_names)
    augment_severities: tuple[int, ...] = setting(names.SEVERITIES, "Severities the corruption augmentation draws from.", check=names.severities_check)

    def validate(self) -> None:
        check_corruption_set(self.augment_corruptions, self.parameters)
        if self.swa_start is not None:
            require(self.swa_start <= self.epochs, f"--swa-start must lie in 1..{self.epochs} (the epochs), got {self.swa_start}")
            require(not self.ema, "choose one of --swa-start and --ema")


def run(config: Config) -> dict:
    """Train a classifier on ``config.dataset``; returns the run directory and clean test metrics."""
    strategy = prepare(config)
    data = load_data(config)
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    soft_labels = config.mixup > 0
    with strategy.scope():
        model = build_model(config.model, data.image_shape, data.num_classes, dropout=config.dropout, batch_norm=config.batch_norm,
                            weights=config.weights, download=config.download)  # fmt: skip
        compile_classifier(model, learning_rate=config.learning_rate, ema=config.ema, soft_labels=soft_labels)
    with experiment(config, data=data) as run:
        corrupting = None
        if config.augment_corruptions:
            layer = RandomCorruption(names.expand(config.augment_corruptions), config.augment_severities, config.parameters,
                                     seed=config.seed + 2)  # fmt: skip
            corrupting = lambda images: layer(images, training=True)  # noqa: E731
        train_batches = train_pipeline(train, config.batch_size, augment=config.augment, seed=config.seed, transform=corrupting)
        validation = eval_pipeline(val, config.batch_size)
        if soft_labels:
            train_batches = with_mixup(train_batches, data.num_classes, config.mixup, seed=config.seed)
            validation = one_hot_labels(validation, data.num_classes)
        averaging = config.ema or config.swa_start is not None
        callbacks = plateau_callbacks(patience=config.patience, restore_best_weights=not averaging)
        if config.swa_start is not None:
            bn_data = train_pipeline(train, config.batch_size, augment="none", shuffle=False)
            callbacks.append(StochasticWeightAveraging(config.swa_start, bn_data=bn_data))
        fit_and_record(model, train_batches, validation, run=run, epochs=config.epochs, callbacks=callbacks,
                       title=f"{config.model} on {data.name}")  # fmt: skip
        model.save(run.path("model.keras"))
        result = evaluate(model, test, config.batch_size)
        rows = [{"split": "test", "condition": "clean", "metric": name, "value": value} for name, value in result.items()]
        if config.corruptions:
            rows += generated_corruption_rows({None: model}, test, config.corruptions, config.severities, config.batch_size,
                                              seed=config.seed, parameters=config.parameters)  # fmt: skip
        run.write_metrics(rows, results=config.results)
    summary = {"run_dir": str(run.directory), "test_accuracy": result["accuracy"], "test_loss": result["loss"]}
    corrupted = [row["value"] for row in rows if row["metric"] == "mean_accuracy" and "corruption" not in row]
    return {**summary, "mean_corruption_accuracy": corrupted[0]} if corrupted else summary


command = config_command("train-teacher", Config, run, "Train a standard classifier (flip + crop augmentation, optional SWA/EMA weights).")
