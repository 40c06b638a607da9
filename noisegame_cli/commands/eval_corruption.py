"""``noisegame eval-corruption``: accuracy of a saved model under the CIFAR-10-C corruptions.

- ``--dataset cifar10-c --data-dir DIR``: the official files (``<corruption>.npy`` + ``labels.npy``),
  memory-mapped, one severity block in memory at a time.
- ``--dataset digits`` / ``cifar10`` / ``synthetic``: the test split corrupted on the fly by the engine
  (seeded by ``--seed``); ``--write-dir DIR`` also saves the sets in the official layout (an ``X-C``).

Writes accuracy / error / loss per corruption x severity, the clean accuracy, the mean accuracy over
the 15 x 5 protocol and over the 19 corruptions at severity 5, with ``--baseline RUN_DIR`` the CE per
corruption, mCE and relative mCE; and ``corruption_heatmap.png`` and ``corruption_samples.png``.
"""

from __future__ import annotations

import dataclasses

import click
import keras
import numpy as np
import pandas as pd

from noisegame_cli import corruption_plots, evaluation
from noisegame_cli.commands.common import experiment
from noisegame_cli.config import CommonConfig, require
from noisegame_cli.corruptions import ALL_CORRUPTIONS, SEVERITIES
from noisegame_cli.data import cifar10c, load_dataset
from noisegame_cli.data.cifar import CIFAR10_CLASSES, find_cifar10, load_cifar10
from noisegame_cli.data.sources import Split
from noisegame_cli.models import check_fits, load_classifier
from noisegame_cli.options import INT_LIST, NAME_LIST, common_options, run_command
from noisegame_cli.training.classifier import evaluate_classifier

OFFICIAL = "cifar10-c"


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    command = "eval-corruption"
    smoke_preset = {**CommonConfig.smoke_preset, "limit": 64, "corruptions": ("gaussian_noise", "defocus_blur", "jpeg_compression")}

    model_path: str | None = None
    corruptions: tuple[str, ...] = ALL_CORRUPTIONS
    severities: tuple[int, ...] = SEVERITIES
    baseline: str | None = None
    write_dir: str | None = None
    frost_dir: str | None = None
    clean_data_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.model_path is not None, "eval-corruption needs --model-path (a model.keras file or a run directory)")
        require(len(self.corruptions) > 0, "--corruptions needs at least one name")
        for name in self.corruptions:
            require(name in ALL_CORRUPTIONS, f"unknown corruption {name!r}; choose from {', '.join(ALL_CORRUPTIONS)}")
        require(len(set(self.corruptions)) == len(self.corruptions), "--corruptions lists a name twice")
        require(len(self.severities) > 0, "--severities needs at least one value")
        for severity in self.severities:
            require(severity in SEVERITIES, f"severities must lie in 1..5, got {severity}")
        require(len(set(self.severities)) == len(self.severities), "--severities lists a value twice")
        if self.write_dir is not None:
            require(self.dataset != OFFICIAL, "--write-dir saves sets generated on the fly; with cifar10-c they are files already")
            require(sorted(self.severities) == list(SEVERITIES), "--write-dir writes the official layout, which needs all 5 severities")

    @property
    def run_name(self) -> str:
        return self.name or "eval"


def clean_test_split(config: Config, num_classes: int, image_shape: tuple[int, ...]) -> Split | None:
    """The clean test images of a cifar10-c folder: its own ``clean.npy`` (folders written with
    --write-dir), else CIFAR-10's test split when it is on disk."""
    written = cifar10c.load_clean(config.data_dir, num_classes)
    if written is not None:
        shape = tuple(written.images.shape[1:])
        require(shape == tuple(image_shape), f"{config.data_dir}: clean images are {list(shape)}, the corrupted ones {list(image_shape)}")
        return written.head(config.limit)
    if find_cifar10(config.clean_data_dir) is None:
        print("CIFAR-10 not found (--clean-data-dir or the Keras cache): no clean accuracy", flush=True)
        return None
    return load_cifar10(config.clean_data_dir).test.head(config.limit)


def prepare(config: Config, model: keras.Model) -> tuple[evaluation.CorruptedSource, Split | None]:
    """The corrupted-set source and the clean test split, after checking the model fits the data."""
    if config.dataset == OFFICIAL:
        require(config.data_dir is not None, "--dataset cifar10-c needs --data-dir (the folder of <corruption>.npy files)")
        classes = model.outputs[0].shape[-1]
        image_shape = evaluation.check_folder(config.data_dir, config.corruptions, classes)
        check_fits(model, image_shape, len(CIFAR10_CLASSES), what=f"model {config.model_path}")
        return evaluation.folder_source(config.data_dir, classes, config.limit), clean_test_split(config, classes, image_shape)
    data = load_dataset(config.dataset, config.data_dir, download=config.download, limit=config.limit)
    check_fits(model, data.image_shape, data.num_classes, what=f"model {config.model_path}")
    return evaluation.generated_source(data.test, config.seed, config.frost_dir), data.test


def saver(config: Config, clean: Split):
    """An ``on_set`` callback that writes each corruption's file once its 5 severities are in."""
    blocks: dict[str, list[np.ndarray]] = {}

    def save(corruption: str, severity: int, data: Split) -> None:
        blocks.setdefault(corruption, []).append(np.asarray(data.images))
        if len(blocks[corruption]) == len(SEVERITIES):
            evaluation.write_official_layout(config.write_dir, corruption, blocks.pop(corruption), clean)

    return save


def run(config: Config) -> dict:
    """Evaluate a saved model on every selected corruption x severity; returns the aggregates."""
    model = load_classifier(config.model_path)
    source, clean = prepare(config, model)
    baseline = evaluation.read_baseline(config.baseline) if config.baseline else None
    with experiment(config, model=model.name) as run:
        rows = []
        clean_result = None
        if clean is not None:
            clean_result = evaluate_classifier(model, clean.images, clean.labels, config.batch_size)
            clean_result["error"] = 1.0 - clean_result["accuracy"]
            rows += [{"split": "test", "metric": m, "value": clean_result[m]} for m in evaluation.RESULT_METRICS]
        on_set = saver(config, clean) if config.write_dir else None
        per_set = evaluation.evaluate_corruptions(model, source, config.corruptions, config.severities, config.batch_size, on_set)
        rows += per_set.to_dict("records")
        rows += evaluation.aggregate_rows(per_set)
        if baseline is not None:
            ratios = evaluation.mce_rows(per_set, clean_result["error"] if clean_result else None, baseline)
            undefined = evaluation.undefined_ratios(ratios)
            if undefined:
                print(f"CE undefined for {', '.join(undefined)} (the baseline loses nothing there); mCE averages the others", flush=True)
            rows += ratios
        frame = run.write_metrics(rows, results=config.results)
        title = f"{model.name} on {config.dataset}"
        corruption_plots.accuracy_heatmap(per_set, run.path("corruption_heatmap.png"), title=f"{title}: accuracy")
        samples = evaluation.sample_images(source, config.corruptions, config.severities)
        corruption_plots.sample_grid(None if clean is None else clean.images[0], samples, run.path("corruption_samples.png"), title=title)
    return {"run_dir": str(run.directory), **summary_values(frame)}


def summary_values(frame: pd.DataFrame) -> dict:
    aggregates = frame[frame["corruption"].isna()] if "corruption" in frame else frame
    values = {}
    for _, row in aggregates.iterrows():
        key = f"clean_{row['metric']}" if row.get("split") == "test" else row["metric"]
        values[key] = float(row["value"])
    return values


@click.command("eval-corruption")
@common_options
@click.option("--model-path", default=None, help="Saved model to evaluate (model.keras or its run directory).")
@click.option("--corruptions", type=NAME_LIST, default=None, help="Comma-separated corruption names [default: all 19].")
@click.option("--severities", type=INT_LIST, default=None, help="Comma-separated severities in 1..5 [default: 1,2,3,4,5].")
@click.option("--baseline", default=None, help="A previous eval-corruption run directory of the baseline model, for mCE.")
@click.option("--write-dir", default=None, help="Also save the generated sets here in the CIFAR-10-C layout (an X-C folder).")
@click.option("--frost-dir", default=None, help="Folder of frost photographs to use instead of the synthetic frost texture.")
@click.option("--clean-data-dir", default=None, help="Where CIFAR-10 is, for the clean accuracy of a cifar10-c run [default: the Keras cache].")
@click.pass_context
def command(ctx: click.Context, **params) -> None:
    """Accuracy under the 19 CIFAR-10-C corruptions at 5 severities (files or generated on the fly)."""
    run_command(run, Config, ctx, params)
