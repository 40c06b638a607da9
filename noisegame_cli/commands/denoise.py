"""``noisegame denoise train|eval``: the adversarial (GAN) denoiser, and an honest evaluation of it as a
purifier in front of a classifier.

- ``train``: a convolutional encoder in front of DCGAN's transposed-convolution decoder learns to
  remove noise (the study's: Gaussian noise of variance 50 on the 0..255 scale, ``--sigma`` sqrt(50)/255), against a DCGAN
  discriminator (``--loss gan``, the study's), by L1 reconstruction (``l1``), or both (``gan+l1``,
  pix2pix's weighting). Writes the denoiser as ``model.keras`` (image in, image out), per-epoch L1,
  PSNR and SSIM, and ``denoise_grid.png`` (noisy | denoised | clean).
- ``eval --denoiser RUN --classifier RUN``: the classifier's accuracy on clean, noisy and denoised
  images, under the common corruptions with and without the denoiser in front, and under FGSM / PGD
  in the settings a defence must be reported in: the attacker sees only the classifier (oblivious,
  the weak setting most purification papers report), or differentiates through denoiser and
  classifier (white-box), and with ``--bpda`` through a straight-through denoiser (BPDA).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import numpy as np
import tensorflow as tf

from noisegame_cli import checks, plots, sections
from noisegame_cli.attacks import NORMS, AttackSpec, check_budget
from noisegame_cli.budgets import budget_label
from noisegame_cli.commands.common import experiment, load_data, load_model, prepare
from noisegame_cli.config import (
    Config,
    CorruptionEvalOptions,
    DataOptions,
    DevicesOptions,
    RunOptions,
    SavedModelOptions,
    TrainingOptions,
    check_corruption_set,
    check_model_source,
    redefault,
    require,
    setting,
)
from noisegame_cli.data.pipelines import eval_pipeline, train_pipeline
from noisegame_cli.corruptions import names
from noisegame_cli.evaluation import attack_condition, generated_corruption_rows, transformed_rows
from noisegame_cli.evaluation.replicas import evaluate_attack_on_replicas, strategy_of
from noisegame_cli.models.denoiser import build_denoiser, build_discriminator, purified_classifier
from noisegame_cli.models.saved import load_denoiser
from noisegame_cli.options import config_command, mode_group
from noisegame_cli.training.classifier import fit_and_record
from noisegame_cli.training.denoiser import LOSSES, DenoiserGAN, dcgan_optimizer
from noisegame_cli.training.noisy_pairs import STUDY_SIGMA, GaussianNoise, noise_transform, noisy_pairs, parse_noise, parse_noises

EXAMPLES_SHOWN = 8
# Why the settings differ, written on every card: published reminders of what the weak setting hides.
SETTINGS = {
    "none": "no denoiser: the classifier alone, attacked directly",
    "oblivious": "the attacker sees only the classifier; its images then pass the denoiser (the weak setting)",
    "white-box": "the attacker differentiates through denoiser and classifier (the honest setting)",
    "bpda": "white-box with the denoiser's backward pass replaced by the identity (BPDA, Athalye et al. 2018)",
}


@dataclasses.dataclass(frozen=True)
class NoiseOptions(Config):
    """The noise the denoiser removes."""

    option_group: ClassVar[str] = "evaluation"
    renamed: ClassVar[Mapping[str, str]] = {"variance": "sigma"}

    noise: tuple[str, ...] = setting(("gaussian",), "Noise to remove, repeatable: gaussian (of --sigma), gaussian:SIGMA, "
                                     "or corruption:NAME:SEVERITY (any corruption of the engine).", multiple=True,
                                     check=lambda value, flag: parse_noises(list(value)))  # fmt: skip
    sigma: float = setting(STUDY_SIGMA, "Standard deviation of the gaussian noise on the 0..1 image scale [default: the study's "
                           "variance of 50 on the 0..255 scale, sqrt(50)/255].", check=checks.between(0, 1, low_open=True), show_default=False)

    def noises(self) -> tuple:
        """The noises to remove; ``gaussian`` with ``--sigma``."""
        return tuple(GaussianNoise(self.sigma) if spec == "gaussian" else parse_noise(spec) for spec in self.noise)

    @property
    def noise_specs(self) -> tuple[str, ...]:
        return tuple(noise.spec for noise in self.noises())


@dataclasses.dataclass(frozen=True)
class TrainConfig(NoiseOptions, TrainingOptions, DataOptions, RunOptions):
    command = "denoise-train"
    section = sections.DENOISER
    smoke_preset: ClassVar[Mapping[str, Any]] = {"depth": 2, "base_filters": 8}

    loss: str = setting("gan", "gan (the study's: the generator learns only from the discriminator), l1, or gan+l1 (pix2pix).",
                        choices=LOSSES)
    l1_weight: float = setting(100.0, "Weight of the L1 term in gan+l1 (L1 on the 0..1 scale).", check=checks.positive)
    depth: int = setting(3, "Stride-2 convolutions in the encoder (and transposed ones in the decoder); H and W must divide by 2**depth.",
                         check=checks.at_least(1))
    base_filters: int = setting(64, "Filters of the first encoder layer (doubling per layer).", check=checks.at_least(1))
    learning_rate: float = redefault(TrainingOptions, "learning_rate", 2e-4, "Adam learning rate of both players (beta_1 0.5, as DCGAN).")

    @property
    def default_run_name(self) -> str:
        return f"denoiser-{self.loss}"


@dataclasses.dataclass(frozen=True)
class EvalConfig(NoiseOptions, SavedModelOptions, DevicesOptions, DataOptions, RunOptions):
    command = "denoise-eval"
    section = sections.DENOISER
    smoke_preset: ClassVar[Mapping[str, Any]] = {"corruptions": ("gaussian_noise", "contrast"), "severities": (3,), "attack_steps": 2}
    renamed: ClassVar[Mapping[str, str]] = {"epsilons": "eps", "steps": "attack_steps"}

    denoiser: str | None = setting(None, "The denoiser: a denoise train run directory or its model.keras (required).",
                                   check=checks.existing_path, show_default=False)
    classifier: str | None = setting(None, "The classifier behind it: a run directory, saved model or app:NAME[:WEIGHTS] (required); "
                                     "--input-range, --mean, --std say what it expects.", check=check_model_source, show_default=False)
    corruptions: tuple[str, ...] = setting(("common",), "Corruptions to evaluate with and without the denoiser (all, common, noise, names).",
                                           check=names.names_check)
    severities: tuple[int, ...] = setting(names.SEVERITIES, "Corruption severities.", check=names.severities_check)
    parameters: str | None = redefault(CorruptionEvalOptions, "parameters", None)
    eps: tuple[float, ...] = setting((2 / 255, 8 / 255), "Attack budgets on the 0..1 image scale.", check=checks.not_empty)
    norm: str = setting("Linf", "Budget norm: Linf, or L2 (the length of the change of the 0..1 image).", choices=NORMS)
    attack_steps: int = setting(10, "PGD steps.", check=checks.at_least(1))
    bpda: bool = setting(False, "Also attack through a straight-through denoiser (BPDA).")

    def validate(self) -> None:
        require(self.denoiser is not None and self.classifier is not None, "denoise eval needs --denoiser and --classifier")
        check_corruption_set(self.corruptions, self.parameters)
        for eps in self.eps:
            check_budget(eps, "--eps", norm=self.norm)

    @property
    def default_run_name(self) -> str:
        return "purifier"


def draw_grid(path, noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, title: str) -> None:
    """The study's figure: noisy input | denoised | clean, one column per image."""
    plots.image_grid({"noisy": list(noisy), "denoised": list(denoised), "clean": list(clean)}, path, title=title)


def _grid(path, denoiser, test, transform, title: str) -> None:
    clean, _ = test.arrays(EXAMPLES_SHOWN)
    noisy = transform(tf.constant(clean, tf.float32), tf.constant(0, tf.int64)).numpy()
    draw_grid(path, noisy, denoiser.predict(noisy, verbose=0), clean, title)


def run_train(config: TrainConfig) -> dict:
    """Train the denoiser; returns the run directory and the test PSNR of noisy and denoised images."""
    strategy = prepare(config)
    data = load_data(config)
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    noises = config.noises()
    with strategy.scope():
        denoiser = build_denoiser(data.image_shape, depth=config.depth, base_filters=config.base_filters)
        discriminator = None if config.loss == "l1" else build_discriminator(data.image_shape, depth=config.depth, base_filters=config.base_filters)
        trainer = DenoiserGAN(denoiser, discriminator, loss=config.loss, l1_weight=config.l1_weight)
        trainer.compile(dcgan_optimizer(config.learning_rate), None if discriminator is None else dcgan_optimizer(config.learning_rate))
    with experiment(config, model=denoiser.name, data=data) as run:
        training = noisy_pairs(train_pipeline(train, config.batch_size, augment="none", seed=config.seed), noises, config.seed, fixed=False)
        validation = noisy_pairs(eval_pipeline(val, config.batch_size), noises, config.seed + 1, fixed=True)
        fit_and_record(trainer, training, validation, run=run, epochs=config.epochs,
                       title=f"denoiser ({config.loss}) on {data.name}, noise {', '.join(config.noise_specs)}")  # fmt: skip
        denoiser.save(run.path("model.keras"))
        measured = trainer.evaluate(noisy_pairs(eval_pipeline(test, config.batch_size), noises, config.seed, fixed=True),
                                    return_dict=True, verbose=0)  # fmt: skip
        rows = [{"split": "test", "condition": "noise", "metric": name, "value": float(value)} for name, value in measured.items()]
        run.write_metrics(rows, results=config.results)
        _grid(run.path("denoise_grid.png"), denoiser, test, noise_transform(noises, config.seed),
              f"noisy | denoised | clean ({config.loss}, {', '.join(config.noise_specs)})")  # fmt: skip
    return {"run_dir": str(run.directory), "noisy_psnr": measured["noisy_psnr"], "denoised_psnr": measured["psnr"]}


def run_eval(config: EvalConfig) -> dict:
    """The classifier with and without the denoiser in front: clean, noisy, corrupted, attacked."""
    strategy = prepare(config)
    data = load_data(config)
    test = data.split("test")
    with strategy.scope():  # mirrored: whole batches are dealt to the replicas
        classifier = load_model(config, data, config.classifier, what="classifier")
        denoiser = load_denoiser(config.denoiser, data.image_shape)
        purified = purified_classifier(denoiser, classifier)
    noises = config.noises()
    noisy = noise_transform(noises, config.seed)
    models = {"classifier": classifier, "purified": purified}
    with experiment(config, model=f"{denoiser.name}+{classifier.name}", data=data) as run:
        rows = []
        for inputs, condition, transform in (("clean", "clean", None), ("noisy", "noise", noisy)):
            rows += transformed_rows(models, test, transform, config.batch_size, "accuracy", inputs=inputs, condition=condition)
        rows += generated_corruption_rows(models, test, config.corruptions, config.severities, config.batch_size, seed=config.seed,
                                          parameters=config.parameters)  # fmt: skip
        rows += attack_rows(config, classifier, denoiser, purified, test)
        frame = run.write_metrics(rows, results=config.results)
        _grid(run.path("denoise_grid.png"), denoiser, test, noisy, f"noisy | denoised | clean ({', '.join(config.noise_specs)})")
        run.path("card.md").write_text(card(frame, config))
    accuracy = frame[(frame["metric"] == "accuracy") & frame["inputs"].notna()]
    return {"run_dir": str(run.directory), **{f"{r.role}_{r.inputs}_accuracy": r.value for r in accuracy.itertuples()}}


def attack_rows(config: EvalConfig, classifier, denoiser, purified, test) -> list[dict]:
    """FGSM and PGD accuracy at each budget in each setting (see ``SETTINGS``)."""
    settings = {"none": (classifier, classifier), "oblivious": (classifier, purified), "white-box": (purified, purified)}
    if config.bpda:
        with strategy_of(classifier).scope():
            settings["bpda"] = (purified_classifier(denoiser, classifier, bpda=True), purified)
    rows = []
    for eps in config.eps:
        for attack in ("fgsm", "pgd"):
            spec = AttackSpec(attack, eps, steps=config.attack_steps, norm=config.norm)
            for name, (attacked, evaluated) in settings.items():
                print(f"{attack} at {budget_label(eps, config.norm)}, {name}", flush=True)
                result = evaluate_attack_on_replicas(attacked, test, spec, batch_size=config.batch_size, seed=config.seed, evaluated=evaluated)
                rows.append({"split": "test", "attack": attack, "norm": config.norm, "epsilon": eps, "setting": name, "model": evaluated.name,
                             "condition": attack_condition(eps), "metric": "accuracy", "value": result.accuracy})  # fmt: skip
    return rows


def card(frame, config: EvalConfig) -> str:
    """A Markdown card of the evaluation that says which setting each number comes from."""
    lines = [f"# Purifier card: {config.denoiser} in front of {config.classifier}", "",
             f"Noise: {', '.join(config.noise_specs)}; seed {config.seed}.", "", "| inputs | classifier | denoiser + classifier |", "|---|---|---|"]  # fmt: skip
    accuracy = frame[(frame["metric"] == "accuracy") & frame["inputs"].notna()].set_index(["inputs", "role"])["value"]
    for inputs in ("clean", "noisy"):
        lines.append(f"| {inputs} | {accuracy[(inputs, 'classifier')]:.4f} | {accuracy[(inputs, 'purified')]:.4f} |")
    corrupted = frame[frame["metric"] == "mean_accuracy"].set_index("role")["value"]
    lines.append(f"| corrupted (mean over {', '.join(config.corruptions)}) | {corrupted['classifier']:.4f} | {corrupted['purified']:.4f} |")
    lines += ["", "| attack | epsilon | " + " | ".join(s for s in SETTINGS if s != "bpda" or config.bpda) + " |",
              "|---|---|" + "---|" * (3 + config.bpda)]  # fmt: skip
    attacked = frame[frame["setting"].notna()] if "setting" in frame else frame.iloc[:0]
    for (attack, eps), group in attacked.groupby(["attack", "epsilon"], sort=False):
        values = group.set_index("setting")["value"]
        lines.append(f"| {attack} | {budget_label(eps, config.norm)} | " + " | ".join(f"{values[s]:.4f}" for s in values.index) + " |")
    lines += ["", "Settings:"] + [f"- **{name}**: {text}" for name, text in SETTINGS.items() if name != "bpda" or config.bpda]
    lines += ["", "Only the white-box (and BPDA) numbers measure the defence; the oblivious ones measure the attacker's ignorance."]
    return "\n".join(lines) + "\n"


command = mode_group(
    "denoise",
    "The GAN denoiser of the adversarial-examples study: train it, evaluate it as a purifier in front of a classifier.",
    {
        "train": config_command("train", TrainConfig, run_train, "Train the denoiser (gan, l1 or gan+l1) on noisy images."),
        "eval": config_command("eval", EvalConfig, run_eval, "A classifier with and without the denoiser: clean, noisy, corrupted, under oblivious and white-box attacks."),
    },
)
