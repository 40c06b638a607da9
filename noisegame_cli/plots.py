"""Pictures written beside the metrics: small functions from data to a PNG file, no global state."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def training_curves(history: pd.DataFrame, path: Path, *, title: str = "training") -> Path:
    """Loss and every accuracy-like column per epoch, training and validation side by side."""
    epochs = history["epoch"] + 1 if "epoch" in history else range(1, len(history) + 1)
    loss_columns = [c for c in history.columns if c.endswith("loss")]
    other_columns = [c for c in history.columns if c not in loss_columns and c not in ("epoch", "learning_rate", "lr", "epoch_seconds")]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, columns, label in ((axes[0], loss_columns, "loss"), (axes[1], other_columns, "accuracy")):
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


def save(figure, path: Path) -> Path:
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
