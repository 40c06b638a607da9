"""``noisegame style-transfer``: Gatys et al. (2016) style transfer through one or several networks.

The observation it lets a researcher repeat (Nakano, Distill 2019, on the robust features of Ilyas
et al. 2019): style transfer works out of the box through VGG-19 but not through a ResNet-50, unless
the ResNet is adversarially robust. Each ``--extractor NAME[:WEIGHTS]`` / ``--extractor-path`` gets its
own result (``resnet50 resnet50:robust.weights.h5`` puts ImageNet and robust weights side by side);
with several, ``comparison.png`` shows content, style and every result.

Without ``--content`` / ``--style`` the photographs that ship with scikit-image are used
(``chelsea``, a cat, stylised after ``immunohistochemistry``, a stained tissue micrograph), so
the command needs no download.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click
import keras
import matplotlib
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from noisegame_cli import style as neural_style
from noisegame_cli.commands.common import experiment
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.errors import UserError
from noisegame_cli.options import NAME_LIST, common_options, run_command

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from noisegame_cli.plots import save as save_figure  # noqa: E402

# Colour photographs in skimage.data that load without a download.
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    command = "style-transfer"
    smoke_preset = {**CommonConfig.smoke_preset, "size": 32, "steps": 3, "save_every": 0, "weights": "none"}

    content: str = "chelsea"
    style: str = "immunohistochemistry"
    size: int = 128
    extractor: tuple[str, ...] = ()
    extractor_path: tuple[str, ...] = ()
    weights: str = neural_style.IMAGENET
    style_layers: tuple[str, ...] | None = None
    content_layer: str | None = None
    content_weight: float = 1.0
    style_weight: float = 100.0
    tv_weight: float = 0.0
    normalize_losses: bool = True
    optimizer: str = "lbfgs"
    init: str = "content"
    steps: int = 100
    save_every: int = 25
    learning_rate: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.size >= 16, f"--size must be at least 16 pixels, got {self.size}")
        require(self.steps >= 1, f"--steps must be at least 1, got {self.steps}")
        require(self.save_every >= 0, f"--save-every must be 0 (never) or positive, got {self.save_every}")
        require(self.learning_rate > 0, f"--learning-rate must be positive, got {self.learning_rate}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            require(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        require(self.optimizer in neural_style.OPTIMIZERS, f"unknown --optimizer {self.optimizer!r}; choose from {', '.join(neural_style.OPTIMIZERS)}")
        require(self.init in neural_style.INITS, f"unknown --init {self.init!r}; choose from {', '.join(neural_style.INITS)}")
        for architecture, _ in self.applications:
            require(
                architecture in neural_style.ARCHITECTURES,
                f"unknown --extractor {architecture!r}; choose from {', '.join(neural_style.ARCHITECTURES)} (saved models: --extractor-path)",
            )
        shared = [architecture for architecture, weights in self.applications if weights is None]
        require(
            len(shared) <= 1 or self.weights.lower() in (neural_style.IMAGENET, neural_style.NO_WEIGHTS),
            f"--weights FILE fits one network; give it with only one of {', '.join(shared)} (or per network: NAME:FILE)",
        )

    @property
    def applications(self) -> tuple[tuple[str, str | None], ...]:
        """``(architecture, own weights or None)`` from each ``NAME[:WEIGHTS]``; VGG-19 when no extractor is given."""
        specs = tuple(dict.fromkeys(_names(self.extractor)))
        if not specs and not _names(self.extractor_path):
            specs = ("vgg19",)
        return tuple((name.lower(), weights or None) for name, _, weights in (spec.partition(":") for spec in specs))

    @property
    def run_name(self) -> str:
        names = [architecture for architecture, _ in self.applications] + [Path(p).name for p in _names(self.extractor_path)]
        return self.name or "-".join(names)


def _names(value) -> tuple[str, ...]:
    """A tuple of names from a tuple, a YAML list, or a comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(value)


def load_image(source: str, size: int) -> tuple[str, np.ndarray]:
    """An image file or a scikit-image photograph, as uint8 RGB with its longer side ``size`` pixels."""
    path = Path(source)
    if path.is_file():
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise UserError(f"cannot read image {path}: {error}") from None
        label = path.stem
    elif source in SKIMAGE_PHOTOS:
        import skimage.data

        image = Image.fromarray(getattr(skimage.data, source)()).convert("RGB")
        label = source
    else:
        raise UserError(f"no image file {source} (or name a scikit-image photograph: {', '.join(SKIMAGE_PHOTOS)})")
    scale = size / max(image.size)
    width, height = (max(1, round(side * scale)) for side in image.size)
    return label, np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), np.uint8)


def build_extractors(config: Config) -> list[neural_style.FeatureExtractor]:
    """Every requested extractor, each with a name unique within the run (used for its files)."""
    layers = {"style_layers": _names(config.style_layers) or None, "content_layer": config.content_layer}
    extractors = [
        _labelled(neural_style.application_extractor(name, weights=weights or config.weights, **layers), weights)
        for name, weights in config.applications
    ]
    extractors += [neural_style.saved_model_extractor(path, **layers) for path in _names(config.extractor_path)]
    seen: dict[str, int] = {}
    unique = []
    for extractor in extractors:
        seen[extractor.name] = seen.get(extractor.name, 0) + 1
        name = extractor.name if seen[extractor.name] == 1 else f"{extractor.name}-{seen[extractor.name]}"
        unique.append(dataclasses.replace(extractor, name=name))
    return unique


def _labelled(extractor: neural_style.FeatureExtractor, own_weights: str | None) -> neural_style.FeatureExtractor:
    """``resnet50-<file stem>`` or ``vgg19-random`` for a network given its own weights, so a grid can
    hold the same architecture with ImageNet and with adversarially robust weights."""
    if own_weights is None or own_weights.lower() == neural_style.IMAGENET:
        return extractor
    suffix = "random" if own_weights.lower() == neural_style.NO_WEIGHTS else Path(own_weights).name.split(".")[0]
    return dataclasses.replace(extractor, name=f"{extractor.name}-{suffix}")


def save_png(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path)
    return path


def comparison_grid(panels: dict[str, np.ndarray], path: Path, *, title: str) -> Path:
    """One row of labelled images: content, style, then one result per extractor."""
    figure, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4), squeeze=False)
    for axis, (label, image) in zip(axes[0], panels.items()):
        axis.imshow(image)
        axis.set_title(label, fontsize="small")
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def loss_curves(history: pd.DataFrame, path: Path) -> Path:
    """Total loss per step for each extractor (log scale: the parts span orders of magnitude)."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for extractor, rows in history.groupby("extractor", sort=False):
        axis.plot(rows["step"], rows["total"], label=extractor)
    axis.set_xlabel("step")
    axis.set_ylabel("total loss")
    axis.set_yscale("log")
    axis.legend(fontsize="small")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def run(config: Config) -> dict:
    """Stylise the content image through each extractor; returns the run directory and final losses."""
    content_label, content = load_image(config.content, config.size)
    style_label, style_image = load_image(config.style, config.size)
    keras.utils.set_random_seed(config.seed)  # random weights (--weights none) are drawn here
    extractors = build_extractors(config)
    weights = neural_style.LossWeights(config.content_weight, config.style_weight, config.tv_weight, config.normalize_losses)
    with experiment(config, dataset=content_label, model="+".join(e.name for e in extractors)) as run:
        save_png(content, run.path("content.png"))
        save_png(style_image, run.path("style.png"))
        results, rows, histories = {}, [], []
        for extractor in extractors:
            stem = _file_stem(extractor.name)
            print(f"{extractor.name}: style {', '.join(extractor.style_layers)}; content {extractor.content_layer}", flush=True)
            started = time.perf_counter()
            result = neural_style.stylise(
                extractor,
                content,
                style_image,
                weights=weights,
                optimizer=config.optimizer,
                init=config.init,
                steps=config.steps,
                learning_rate=config.learning_rate,
                save_every=config.save_every,
                on_snapshot=lambda step, image, stem=stem: save_png(image, run.path(f"{stem}_step{step:04d}.png")),
                seed=config.seed,
            )
            seconds = time.perf_counter() - started
            save_png(result.image, run.path(f"{stem}.png"))
            results[extractor.name] = result.image
            histories.append(pd.DataFrame(result.history).assign(extractor=extractor.name))
            final = result.history[-1]
            measured = {f"{part}_loss": final[part] for part in neural_style.LOSS_PARTS}
            measured.update(steps=final["step"], seconds=seconds)
            rows += [{"model": extractor.name, "extractor": extractor.name, "metric": k, "value": v} for k, v in measured.items()]
        history = pd.concat(histories, ignore_index=True)[["extractor", "step", *neural_style.LOSS_PARTS]]
        history.to_csv(run.path("history.csv"), index=False)
        loss_curves(history, run.path("loss_curves.png"))
        if len(extractors) > 1:
            panels = {f"content ({content_label})": content, f"style ({style_label})": style_image, **results}
            comparison_grid(panels, run.path("comparison.png"), title=f"style transfer, {config.optimizer}, {config.steps} steps")
        run.write_metrics(rows, results=config.results)
    summary = {"run_dir": str(run.directory)}
    summary.update({f"{row['extractor']}_total_loss": row["value"] for row in rows if row["metric"] == "total_loss"})
    return summary


@click.command("style-transfer")
@common_options
@click.option("--content", default=None,
              help=f"Content image file, or a scikit-image photograph ({', '.join(SKIMAGE_PHOTOS)}) [default: chelsea].")
@click.option("--style", default=None, help="Style image file or scikit-image photograph [default: immunohistochemistry].")
@click.option("--size", type=int, default=None, help="Working resolution: the longer side in pixels [default: 128].")
@click.option("--extractor", multiple=True, default=None,
              help=f"Feature network NAME[:WEIGHTS], repeatable; NAME is {' or '.join(neural_style.ARCHITECTURES)}, WEIGHTS "
                   "overrides --weights for it [default: vgg19 unless --extractor-path is given].")
@click.option("--extractor-path", multiple=True, default=None,
              help="A classifier trained here (run directory or model.keras), repeatable.")
@click.option("--weights", default=None,
              help="For vgg19/resnet50: imagenet (from the Keras cache, never downloaded), none (random), or a weights file [default: imagenet].")
@click.option("--style-layers", type=NAME_LIST, default=None,
              help="Comma-separated style layers [default: Gatys' relu1_1..relu5_1 for vgg19, the stage outputs otherwise].")
@click.option("--content-layer", default=None, help="Content layer [default: relu4_2 for vgg19, the last stage but one otherwise].")
@click.option("--content-weight", type=float, default=None, help="Weight of the content loss [default: 1].")
@click.option("--style-weight", type=float, default=None, help="Weight of the style loss [default: 100].")
@click.option("--tv-weight", type=float, default=None, help="Weight of the total-variation loss [default: 0].")
@click.option("--normalize-losses/--raw-losses", default=None,
              help="Divide each loss by its target's scale, so the weights fit every network [default: normalize].")
@click.option("--optimizer", type=click.Choice(neural_style.OPTIMIZERS), default=None, help="L-BFGS or Adam [default: lbfgs].")
@click.option("--init", type=click.Choice(neural_style.INITS), default=None, help="Start from the content image or noise [default: content].")
@click.option("--steps", type=int, default=None, help="Optimisation steps (L-BFGS iterations) [default: 100].")
@click.option("--save-every", type=int, default=None, help="Save an intermediate image every N steps, 0 for none [default: 25].")
@click.option("--learning-rate", type=float, default=None, help="Adam step size in pixel units (0..255) [default: 2].")
@click.pass_context
def command(ctx: click.Context, **params) -> None:
    """Gatys style transfer through VGG-19, ResNet-50 or a model trained here."""
    run_command(run, Config, ctx, params)
