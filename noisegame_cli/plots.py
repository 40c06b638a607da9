"""Every figure the project writes, by chart kind: training curves, line plots, heatmaps, image grids
and kernel grids. Small functions from data to a PNG file.

Figures are built with matplotlib's object-oriented ``Figure`` (no pyplot, so no global backend is
chosen, at import or ever) and rendered by its Agg canvas when saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save(figure, path: Path, *, dpi: int = 110) -> Path:
    path = Path(path)
    figure.savefig(path, dpi=dpi)
    return path


# --- curves -----------------------------------------------------------------------------------------


def training_curves(history: pd.DataFrame, path: Path, *, title: str = "training") -> Path:
    """Loss and every accuracy-like column per epoch, training and validation side by side."""
    epochs = history["epoch"] + 1 if "epoch" in history else range(1, len(history) + 1)
    loss_columns = [c for c in history.columns if c.endswith("loss")]
    other_columns = [c for c in history.columns if c not in loss_columns and c not in ("epoch", "learning_rate", "lr", "epoch_seconds")]
    figure = _figure(10, 4)
    axes = figure.subplots(1, 2)
    for axis, columns, label in ((axes[0], loss_columns, "loss"), (axes[1], other_columns, "value")):
        for column in columns:
            axis.plot(epochs, history[column], marker="o", label=column)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        if columns:
            axis.legend(fontsize="small")
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return save(figure, path)


def line_plot(
    frame: pd.DataFrame, *, x: str, y: str, series: Sequence[str], path: Path, xlabel: str, ylabel: str, title: str,
    log_y: bool = False,
) -> Path:  # fmt: skip
    """One line of ``y`` against ``x`` per combination of the ``series`` columns."""
    figure = _figure(6.5, 4.2)
    axis = figure.subplots()
    for key, group in frame.groupby(list(series), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        group = group.sort_values(x)
        axis.plot(group[x], group[y], marker="o" if len(group) < 30 else None, label=" / ".join(str(k) for k in key))
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if log_y:
        axis.set_yscale("log")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    return save(figure, path)


# --- heatmaps ---------------------------------------------------------------------------------------


def heatmap(table: pd.DataFrame, path: Path, *, title: str, xlabel: str = "", label: str = "accuracy",
            vmin: float = 0.0, vmax: float = 1.0) -> Path:  # fmt: skip
    """A table of values (rows x columns) as coloured cells with the values printed."""
    values = table.to_numpy(dtype=float)
    figure = _figure(0.9 * len(table.columns) + 3.2, 0.38 * len(table) + 1.6)
    axis = figure.subplots()
    image = axis.imshow(values, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    axis.set_xticks(range(len(table.columns)), [str(c) for c in table.columns])
    axis.set_yticks(range(len(table)), [str(i) for i in table.index])
    axis.set_xlabel(xlabel)
    middle = (vmin + vmax) / 2
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            axis.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < middle else "black")
    figure.colorbar(image, ax=axis, label=label)
    axis.set_title(title)
    figure.tight_layout()
    return save(figure, path)


# --- images -----------------------------------------------------------------------------------------


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


def image_grid(
    rows: Mapping[str, Sequence[np.ndarray]],
    path: Path,
    *,
    titles: Sequence[Sequence[str]] | None = None,
    centred_rows: Sequence[str] = (),
    title: str = "",
    cell: float = 1.6,
) -> Path:
    """A grid with one row per entry of ``rows`` (label -> images, 0..255); rows in ``centred_rows`` are
    signed pictures (perturbations, high-pass images, noise), shown with zero as mid-grey. ``titles``
    gives a caption per image, row by row."""
    labels = list(rows)
    columns = max(len(images) for images in rows.values())
    figure = _figure(cell * columns + 0.6, (cell + 0.1) * len(labels) + (0.4 if title else 0))
    axes = figure.subplots(len(labels), columns, squeeze=False)
    for r, label in enumerate(labels):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(rows[label]):
                axis.imshow(displayable(rows[label][c], centred=label in centred_rows), cmap="gray", vmin=0, vmax=1)
            else:
                axis.axis("off")
            if titles is not None and r < len(titles) and c < len(titles[r]):
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
    figure = _figure(0.9 * columns + 2.0, 1.0 * len(kernels) + 0.5)
    axes = figure.subplots(len(kernels), columns, squeeze=False)
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
