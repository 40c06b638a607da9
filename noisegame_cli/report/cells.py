"""The cells and tables of the results page: a measurement over the runs of a recipe (``Stat``), a
text cell linked to a run (``Ref``), a table with how to draw it (``PageTable``), a figure, and how
numbers and names are written."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from noisegame_cli.budgets import budget_text

PERCENT_METRICS = ("error", "ce", "relative_ce", "mce", "relative_mce", "right_high_wrong_low", "right_low_wrong_high")


@dataclass(frozen=True)
class Stat:
    """One table cell: a measurement over the runs of a recipe (one value per run)."""

    values: tuple[float, ...]
    runs: tuple[str, ...] = ()  # the run directory each value came from
    seeds: tuple[Any, ...] = ()
    percent: bool = True

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(sum(self.values) / len(self.values))

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1 in the denominator); NaN for one run."""
        if self.n < 2:
            return float("nan")
        mean = self.mean
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / (self.n - 1))

    def number(self, value: float) -> str:
        return f"{100 * value:.1f}" if self.percent else f"{value:.4g}"

    def text(self, *, with_n: bool = True) -> str:
        """``93.1 ± 0.4 (n=3)``; ``93.1 (n=1)`` for a single run."""
        spread = f" ± {self.number(self.sd)}" if self.n > 1 else ""
        return self.number(self.mean) + spread + (f" (n={self.n})" if with_n else "")

    def describe(self) -> str:
        """Each run's value, for a tooltip: ``seed 0: 93.0 (20261203-...-teacher)``."""
        seeds = self.seeds or (None,) * self.n
        return "; ".join(f"seed {s}: {self.number(v)} ({Path(r).name})" if s is not None else f"{self.number(v)} ({Path(r).name})"
                         for s, v, r in zip(seeds, self.values, self.runs))  # fmt: skip


@dataclass(frozen=True)
class Ref:
    """A text cell, linked to a run directory where ``path`` is given."""

    text: str
    path: str | None = None
    title: str = ""


@dataclass(frozen=True)
class PageTable:
    """A table of the page: cells are ``str``, ``Ref``, ``Stat`` or None (empty)."""

    title: str
    frame: pd.DataFrame
    note: str = ""
    details: Mapping[str, str] = field(default_factory=dict)  # column -> second header line
    colour: bool = False  # shade each Stat by its mean, low red to high green
    compact: bool = False  # Stat cells without their n (the row's n is in its label)
    vertical: bool = False  # data column headers written vertically (many narrow columns)


@dataclass(frozen=True)
class Figure:
    source: Path
    caption: str
    run: str  # the run directory it belongs to


def is_percent(metric: str) -> bool:
    return "accuracy" in metric or metric in PERCENT_METRICS


def epsilon_text(eps: float) -> str:
    """A budget whose norm the table does not say: ``8/255`` up to 64/255 on the 1/255 grid, the plain
    number beyond (L2 budgets, noise norms). Loose on the grid: budgets read back may be float32."""
    return budget_text(eps, tolerance=1e-3) if eps <= 64 / 255 else f"{eps:g}"


def humanize(metric: str) -> str:
    return {"mean_accuracy_15x5": "mean accuracy 15×5", "mean_accuracy_19_sev5": "mean accuracy 19 at severity 5",
            "mce": "mCE", "relative_mce": "relative mCE", "mean_accuracy_noise": "noise accuracy"}.get(metric, metric.replace("_", " "))  # fmt: skip


def link(path: str | os.PathLike, out: Path) -> str:
    """``path`` relative to the page's folder, as a URL path (a run directory ends in ``/``)."""
    relative = Path(os.path.relpath(Path(path).resolve(), out.resolve())).as_posix()
    return relative + ("/" if Path(path).is_dir() else "")
