"""Pictures for ``eval-corruption``: the accuracy heatmap and the grid of corrupted samples."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from noisegame_cli.plots import save  # also selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402


def accuracy_heatmap(per_set: pd.DataFrame, path: Path, *, title: str) -> Path:
    """Accuracy per corruption (rows, in evaluation order) x severity (columns), values printed."""
    accuracy = per_set[per_set["metric"] == "accuracy"]
    order = list(dict.fromkeys(accuracy["corruption"]))
    table = accuracy.pivot_table(index="corruption", columns="severity", values="value").reindex(order)
    figure, axis = plt.subplots(figsize=(1.1 * len(table.columns) + 3, 0.38 * len(table) + 1.5))
    image = axis.imshow(table.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axis.set_xticks(range(len(table.columns)), [str(s) for s in table.columns])
    axis.set_yticks(range(len(table)), table.index)
    axis.set_xlabel("severity")
    for (row, col), value in np.ndenumerate(table.to_numpy()):
        axis.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
    figure.colorbar(image, ax=axis, label="accuracy")
    axis.set_title(title)
    figure.tight_layout()
    return save(figure, path)


def sample_grid(clean: np.ndarray | None, samples: Mapping[tuple[str, int], np.ndarray], path: Path, *, title: str) -> Path:
    """One row per corruption: the clean image (when given), then the image at each severity."""
    corruptions = list(dict.fromkeys(c for c, _ in samples))
    severities = sorted({s for _, s in samples})
    columns = len(severities) + (clean is not None)
    figure, axes = plt.subplots(len(corruptions), columns, figsize=(1.3 * columns + 1.2, 1.3 * len(corruptions) + 0.6), squeeze=False)
    for row, corruption in enumerate(corruptions):
        pictures = [("clean", clean)] if clean is not None else []
        pictures += [(f"severity {s}", samples[(corruption, s)]) for s in severities]
        for col, (label, picture) in enumerate(pictures):
            axis = axes[row, col]
            axis.imshow(np.asarray(picture, dtype=np.uint8).squeeze(), cmap="gray" if picture.shape[-1] == 1 else None)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(label, fontsize=8)
        axes[row, 0].set_ylabel(corruption, fontsize=7, rotation=0, ha="right", va="center")
    figure.suptitle(title)
    figure.tight_layout()
    return save(figure, path)
