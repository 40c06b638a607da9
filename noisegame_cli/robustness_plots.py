"""Pictures for the ``fgsm`` and ``freq-split`` commands: curves, image grids and first-layer kernels."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from noisegame_cli.plots import save  # also selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402


def line_plot(
    frame: pd.DataFrame, *, x: str, y: str, series: Sequence[str], path: Path, xlabel: str, ylabel: str, title: str
) -> Path:
    """One line of ``y`` against ``x`` per combination of the ``series`` columns."""
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for key, group in frame.groupby(list(series), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        group = group.sort_values(x)
        axis.plot(group[x], group[y], marker="o", label=" / ".join(str(k) for k in key))
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    return save(figure, path)


def displayable(image: np.ndarray, *, centred: bool = False) -> np.ndarray:
    """An image in 0..1 for ``imshow``: clipped from 0..255, or, for signed pictures (perturbations,
    high-pass images, kernels), stretched symmetrically so that zero is mid-grey."""
    image = np.asarray(image, dtype=np.float32)
    if centred:
        extent = np.abs(image).max()
        image = image / (2 * extent) + 0.5 if extent > 0 else np.full_like(image, 0.5)
    else:
        image = np.clip(image / 255.0, 0.0, 1.0)
    return image[..., 0] if image.shape[-1] == 1 else image


def image_grid(rows: Mapping[str, Sequence[np.ndarray]], path: Path, *, titles: Sequence[Sequence[str]] | None = None,
               centred_rows: Sequence[str] = (), title: str = "") -> Path:  # fmt: skip
    """A grid with one row per entry of ``rows`` (label -> images); rows in ``centred_rows`` are signed
    pictures (perturbations, high-pass images), shown with zero as mid-grey."""
    labels = list(rows)
    columns = max(len(images) for images in rows.values())
    figure, axes = plt.subplots(len(labels), columns, figsize=(1.6 * columns, 1.7 * len(labels)), squeeze=False)
    for r, label in enumerate(labels):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(rows[label]):
                axis.imshow(displayable(rows[label][c], centred=label in centred_rows), cmap="gray", vmin=0, vmax=1)
            if titles is not None and c < len(titles[r]):
                axis.set_title(titles[r][c], fontsize=7)
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save(figure, path)


def kernel_grid(kernels: Mapping[str, np.ndarray], path: Path, *, max_filters: int = 16) -> Path:
    """The first ``max_filters`` filters of each model's first convolution (``[H, W, in, out]`` kernels),
    one row per model; RGB where the layer reads 3 channels, zero weight as mid-grey."""
    columns = min(max_filters, max(kernel.shape[-1] for kernel in kernels.values()))
    figure, axes = plt.subplots(len(kernels), columns, figsize=(0.9 * columns + 2.0, 1.0 * len(kernels) + 0.5), squeeze=False)
    for r, (label, kernel) in enumerate(kernels.items()):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < kernel.shape[-1]:
                weights = kernel[:, :, :, c]
                weights = weights if weights.shape[-1] == 3 else weights.mean(axis=-1, keepdims=True)
                axis.imshow(displayable(weights, centred=True), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r][0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    figure.suptitle("first-layer kernels", fontsize=9)
    figure.tight_layout()
    return save(figure, path)
