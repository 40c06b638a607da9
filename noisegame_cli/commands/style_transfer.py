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

from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from noisegame_cli import checks, plots, sections
from noisegame_cli import style as neural_style
from noisegame_cli.commands.common import experiment, prepare
from noisegame_cli.config import InputOptions, RunOptions, check_model_source, require, setting
from noisegame_cli.errors import UserError
from noisegame_cli.models import model_label
from noisegame_cli.models import extractors
from noisegame_cli.models.applications import check_application, is_application
from noisegame_cli.options import config_command

# Colour photographs in skimage.data that load without a download.
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")


@dataclasses.dataclass(frozen=True)
class Config(InputOptions, RunOptions):
    command = "style-transfer"
    section = sections.STYLE
    smoke_preset: ClassVar[Mapping[str, Any]] = {"size": 32, "iterations": 3, "save_every": 0, "weights": "none"}

    content: str = setting("chelsea", f"Content image file, or a scikit-image photograph ({', '.join(SKIMAGE_PHOTOS)}).",
                           check=lambda value, flag: check_image_source(value, flag))
    style: str = setting("immunohistochemistry", "Style image file or scikit-image photograph.", check=lambda value, flag: check_image_source(value, flag))
    size: int = setting(128, "Working resolution: the longer side in pixels.", check=checks.at_least(16))
    extractor: tuple[str, ...] = setting((), "Feature network NAME[:WEIGHTS], repeatable: vgg19 or resnet50 (Gatys-style layers) or "
                                         "app:NAME (any keras.applications network); WEIGHTS overrides --weights for it "
                                         "[default: vgg19 unless --extractor-path is given].", multiple=True, show_default=False)
    extractor_path: tuple[str, ...] = setting((), "A saved classifier (run directory, saved model; --input-range, --mean, --std say "
                                              "what it expects), repeatable; app:NAME[:WEIGHTS] is --extractor's.", multiple=True,
                                              check=check_model_source, show_default=False)
    weights: str = setting(extractors.IMAGENET, "imagenet (from the Keras cache; downloaded only with --download), none (random), "
                           "or a weights file.")
    download: bool = setting(False, "Allow Keras to download the ImageNet weights of the extractors (else read from its cache).")
    style_layers: tuple[str, ...] | None = setting(None, "Comma-separated style layers [default: Gatys' relu1_1..relu5_1 for vgg19, "
                                                   "the stage outputs otherwise].", show_default=False)
    content_layer: str | None = setting(None, "Content layer [default: relu4_2 for vgg19, the last stage but one otherwise].", show_default=False)
    content_weight: float = setting(1.0, "Weight of the content loss.", check=checks.at_least(0))
    style_weight: float = setting(100.0, "Weight of the style loss.", check=checks.at_least(0))
    tv_weight: float = setting(0.0, "Weight of the total-variation loss.", check=checks.at_least(0))
    normalize_losses: bool = setting(True, "Divide each loss by its target's scale, so the weights fit every network (--no-normalize-losses: raw).")
    optimizer: str = setting("lbfgs", "L-BFGS or Adam.", choices=neural_style.OPTIMIZERS)
    init: str = setting("content", "Start from the content image or from noise.", choices=neural_style.INITS)
    iterations: int = setting(100, "Optimisation iterations (L-BFGS iterations, or Adam steps).", check=checks.at_least(1))
    save_every: int = setting(25, "Save an intermediate image every N iterations, 0 for none.", check=checks.at_least(0))
    learning_rate: float = setting(2.0, "Adam step size in pixel units (0..255).", check=checks.positive)

    def validate(self) -> None:
        shared = [architecture for architecture, weights in self.applications if weights is None]
        require(
            len(shared) <= 1 or self.weights.lower() in (extractors.IMAGENET, extractors.NO_WEIGHTS),
            f"--weights FILE fits one network; give it with only one of {', '.join(shared)} (or per network: NAME:FILE)",
        )
        for architecture, weights in self.applications:
            if is_application(architecture):
                check_application(architecture)
            else:
                checks.chosen(architecture, extractors.ARCHITECTURES, "--extractor", also=" or app:NAME (saved models: --extractor-path)")
            if weights not in (None, extractors.IMAGENET, extractors.NO_WEIGHTS):
                checks.existing_file(weights, "--extractor weights")
        if self.weights.lower() not in (extractors.IMAGENET, extractors.NO_WEIGHTS):
            checks.existing_file(self.weights, "--weights")
        require(self.input_scale.is_pixels or bool(self.saved_extractor_paths),
                "--input-range, --mean and --std say what an --extractor-path model expects; none is given")

    @property
    def applications(self) -> tuple[tuple[str, str | None], ...]:
        """``(architecture, own weights or None)`` from each ``NAME[:WEIGHTS]``; VGG-19 when no extractor is given."""
        specs = tuple(dict.fromkeys(self.extractor + tuple(path for path in self.extractor_path if is_application(path))))
        if not specs and not self.extractor_path:
            specs = ("vgg19",)
        return tuple(_split_spec(spec) for spec in specs)

    @property
    def saved_extractor_paths(self) -> tuple[str, ...]:
        """The --extractor-path models that are files or folders (``app:NAME`` ones join ``applications``)."""
        return tuple(path for path in self.extractor_path if not is_application(path))

    @property
    def default_run_name(self) -> str:
        return "-".join([architecture.replace("app:", "").lower() for architecture, _ in self.applications]
                        + [model_label(p) for p in self.saved_extractor_paths])  # fmt: skip


def _split_spec(spec: str) -> tuple[str, str | None]:
    """``vgg19``, ``vgg19:FILE``, ``app:NAME`` or ``app:NAME:FILE`` as (architecture, weights or None)."""
    if is_application(spec):
        name, _, weights = spec[len("app:"):].partition(":")
        return f"app:{name}", weights or None
    name, _, weights = spec.partition(":")
    return name.lower(), weights or None


def check_image_source(value: str, flag: str) -> None:
    if not Path(value).is_file() and value not in SKIMAGE_PHOTOS:
        if Path(value).is_dir():
            raise UserError(f"{flag} {value}: is a folder, not an image file")
        raise UserError(f"{flag} {value}: no such image file (or name a scikit-image photograph: {', '.join(SKIMAGE_PHOTOS)})")


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


def build_extractors(config: Config) -> list[extractors.FeatureExtractor]:
    """Every requested extractor, each with a name unique within the run (used for its files)."""
    layers = {"style_layers": config.style_layers or None, "content_layer": config.content_layer}
    chosen = [_labelled(extractors.application_extractor(name, weights=weights or config.weights, download=config.download, **layers), weights)
              for name, weights in config.applications]  # fmt: skip
    chosen += [extractors.saved_model_extractor(path, scale=config.input_scale, **layers) for path in config.saved_extractor_paths]
    seen: dict[str, int] = {}
    unique = []
    for extractor in chosen:
        seen[extractor.name] = seen.get(extractor.name, 0) + 1
        name = extractor.name if seen[extractor.name] == 1 else f"{extractor.name}-{seen[extractor.name]}"
        unique.append(dataclasses.replace(extractor, name=name))
    return unique


def _labelled(extractor: extractors.FeatureExtractor, own_weights: str | None) -> extractors.FeatureExtractor:
    """``resnet50-<file stem>`` or ``vgg19-random`` for a network given its own weights, so a grid can
    hold the same architecture with ImageNet and with adversarially robust weights."""
    if own_weights is None or own_weights.lower() == extractors.IMAGENET:
        return extractor
    suffix = "random" if own_weights.lower() == extractors.NO_WEIGHTS else Path(own_weights).name.split(".")[0]
    return dataclasses.replace(extractor, name=f"{extractor.name}-{suffix}")


def save_png(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path)
    return path


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def run(config: Config) -> dict:
    """Stylise the content image through each extractor; returns the run directory and final losses."""
    content_label, content = load_image(config.content, config.size)
    style_label, style_image = load_image(config.style, config.size)
    prepare(config)  # seeds first: random weights (--weights none) are drawn when the extractors are built
    networks = build_extractors(config)
    for extractor in networks:
        for image in (content, style_image):
            extractors.check_image_size(extractor, image.shape)
    weights = neural_style.LossWeights(config.content_weight, config.style_weight, config.tv_weight, config.normalize_losses)
    with experiment(config, dataset=content_label, model="+".join(e.name for e in networks)) as run:
        save_png(content, run.path("content.png"))
        save_png(style_image, run.path("style.png"))
        results, rows, histories = {}, [], []
        for extractor in networks:
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
                iterations=config.iterations,
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
            measured.update(iterations=final["step"], seconds=seconds)
            rows += [{"model": extractor.name, "extractor": extractor.name, "condition": "style", "metric": k, "value": v}
                     for k, v in measured.items()]  # fmt: skip
        history = pd.concat(histories, ignore_index=True)[["extractor", "step", *neural_style.LOSS_PARTS]]
        history.to_csv(run.path("history.csv"), index=False)
        plots.line_plot(history, x="step", y="total", series=["extractor"], path=run.path("loss_curves.png"), xlabel="step",
                        ylabel="total loss", title="style transfer loss", log_y=True)  # fmt: skip
        if len(networks) > 1:
            panels = {f"content ({content_label})": content, f"style ({style_label})": style_image, **results}
            plots.image_grid({"": list(panels.values())}, run.path("comparison.png"), titles=[list(panels)], cell=3.0,
                             title=f"style transfer, {config.optimizer}, {config.iterations} iterations")  # fmt: skip
        run.write_metrics(rows, results=config.results)
    summary = {"run_dir": str(run.directory)}
    summary.update({f"{row['extractor']}_total_loss": row["value"] for row in rows if row["metric"] == "total_loss"})
    return summary


command = config_command("style-transfer", Config, run, "Gatys style transfer through VGG-19, ResNet-50, any keras.applications network, or a model trained here.")
