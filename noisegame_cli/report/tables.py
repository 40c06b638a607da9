"""Each experiment's section of the results page: its tables, built from its runs' metric rows (or
from their cards), and its figures. Which section a run goes to is its command's declaration
(``registry.section_of``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from noisegame_cli.report.cards import card_tables
from noisegame_cli.report.cells import Figure, PageTable, Stat, epsilon_text, humanize
from noisegame_cli.report.recipes import ADDED_COLUMNS, context_column, seed_stats
from noisegame_cli.report.registry import section_of, section_order
from noisegame_cli.runs import METRIC_COLUMNS
from noisegame_cli.sections import Section

AXES = ("rho", "radius", "sigma", "epsilon")  # the first one a row has is the x axis of its table
AXIS_NAMES = {"rho": "ρ", "radius": "radius", "sigma": "σ", "epsilon": "ε"}
HIDDEN_METRICS = ("loss", "error")  # beside an accuracy they repeat it


@dataclass(frozen=True)
class SectionContent:
    section: Section
    tables: list[PageTable]
    figures: list[Figure]


def section_tables(rows: pd.DataFrame) -> list[PageTable]:
    """The tables of one section's metric rows: scalars per run (and role), accuracy per corruption
    (models x corruptions, shaded), and one table per x axis (ε, σ, radius, ρ)."""
    if rows.empty:
        return []
    rows = rows[~rows["metric"].isin(HIDDEN_METRICS) | ~rows["metric"].isin(["accuracy"]).groupby(rows["path"]).transform("any")]
    rows = rows.assign(label=rows["name"])
    tables = []
    per_run = context_column(rows, "corruption").isna() & context_column(rows, "severity").isna()  # not one of many corrupted sets
    axis = _first_axis(rows)
    scalars = rows[per_run & axis.isna()]
    for group in _sharing_commands(scalars):
        title = "Measurements per run" if len(group) == len(set(scalars["command"])) else f"Measurements per run: {', '.join(group)}"
        tables.append(_wide_table(title, scalars[scalars["command"].isin(group)], columns="metric"))
    corrupted = rows[(rows["condition"] == "corruption") & context_column(rows, "corruption").notna() & (rows["metric"] == "accuracy")]
    if not corrupted.empty:
        tables.append(_wide_table("Accuracy per corruption (%, mean over the severities evaluated)", corrupted, columns="corruption",
                                  colour=True, compact=True, vertical=True))  # fmt: skip
    for name in AXES:
        along = rows[per_run & (axis == name)]
        if along.empty:
            continue
        along = along.assign(**{name: along[name].map(epsilon_text if name == "epsilon" else lambda v: f"{v:g}")})
        metrics = list(dict.fromkeys(along["metric"]))
        title = f"{humanize(metrics[0]).capitalize() if len(metrics) == 1 else 'Measurements'} vs {AXIS_NAMES[name]}"
        tables.append(_wide_table(title, along, columns=name, compact=True, extra_index=("metric",) if len(metrics) > 1 else ()))
    return tables


def _sharing_commands(rows: pd.DataFrame) -> list[list[str]]:
    """Commands grouped so that a group's runs share a metric (a denoiser's PSNR and a classifier's
    accuracy go to separate tables)."""
    groups: list[tuple[list[str], set[str]]] = []
    for command, metrics in rows.groupby("command", sort=False)["metric"]:
        names = set(metrics)
        for commands, seen in groups:
            if seen & names:
                commands.append(command)
                seen |= names
                break
        else:
            groups.append(([command], names))
    return [commands for commands, _ in groups]


def _first_axis(rows: pd.DataFrame) -> pd.Series:
    """The x axis of each row: the first of ``AXES`` it has that takes several values within its run
    (a frequency run's one training radius or ANT's one noise budget is context, not an axis)."""
    axis = pd.Series(index=rows.index, dtype=object)
    for name in reversed(AXES):
        values = context_column(rows, name)
        varies = values.groupby(rows["path"]).transform("nunique") > 1
        axis = axis.where(~(values.notna() & varies), name)
    return axis


def _series_columns(rows: pd.DataFrame, exclude: Iterable[str]) -> list[str]:
    """Context columns that tell rows of one table apart (constant or empty ones say nothing)."""
    skip = {*METRIC_COLUMNS, *ADDED_COLUMNS, "label", "corruption", "severity", *exclude}
    candidates = [c for c in rows.columns if c not in skip and c != "model"]
    varying = [c for c in candidates if rows[c].nunique() > 1 or (rows[c].nunique() == 1 and c in AXES)]
    if rows.groupby("path")["model"].nunique().gt(1).any() and not any(rows[c].equals(rows["model"]) for c in varying):
        varying.insert(0, "model")  # a run that measures several models (freq-split eval of two models)
    return varying


def _wide_table(title: str, rows: pd.DataFrame, *, columns: str, colour=False, compact=False, vertical=False,
                extra_index: Sequence[str] = ()) -> PageTable:  # fmt: skip
    """Rows grouped over seeds into a table: one row per run name and the context that varies, one
    column per value of ``columns``; the dataset is a column where it varies, else in the note."""
    series = [c for c in _series_columns(rows, exclude=(columns, *extra_index, *AXES)) if c not in extra_index]
    datasets = list(dict.fromkeys(rows["dataset"].astype(str)))
    if len(datasets) > 1:
        series.insert(0, "dataset")
    index = ["label", *series, *extra_index]
    filled = rows.assign(**{c: rows[c].astype(object).where(rows[c].notna(), "") for c in index if c != "label"})
    table = seed_stats(filled, index, columns)
    if compact:  # the row's n in its label; a cell shows its own n only where it differs
        table["label"] = [f"{label} (n={_row_n(row)})" for label, (_, row) in zip(table["label"], table.iterrows())]
    if columns == "metric":
        table = table.rename(columns={c: humanize(c) for c in table.columns if c not in index})
    note = f"dataset: {datasets[0]}" if len(datasets) == 1 else ""
    return PageTable(title, table.rename(columns={"label": "run"}), note=note, colour=colour, compact=compact, vertical=vertical)


def _row_n(row: pd.Series) -> int:
    return max((cell.n for cell in row if isinstance(cell, Stat)), default=0)


def section_figures(runs: pd.DataFrame, figures: Mapping[str, Sequence[Path]]) -> list[Figure]:
    """The pictures of the first run of each recipe (other seeds draw the same pictures)."""
    shown = []
    for run in runs.drop_duplicates("recipe").itertuples():
        for png in figures.get(run.path, ()):
            shown.append(Figure(png, f"{run.name}: {png.stem.replace('_', ' ')}", run.path))
    return shown


def build_sections(rows: pd.DataFrame, runs: pd.DataFrame, figures: Mapping[str, Sequence[Path]],
                   cards: Mapping[str, Mapping]) -> list[SectionContent]:  # fmt: skip
    """Each section's tables and figures, in the order the commands declare them: the cards of the
    runs that wrote one, the metric tables of the others. A command that declares no section goes to
    "Other runs", last."""
    placed = runs["command"].map(section_of)
    contents = []
    for section in section_order():
        in_section = runs[placed == section]
        if in_section.empty:
            continue
        carded = in_section["path"].isin(list(cards))
        tables = card_tables(in_section[carded], cards) + section_tables(rows[rows["path"].isin(in_section.loc[~carded, "path"])])
        contents.append(SectionContent(section, tables, section_figures(in_section, figures)))
    return contents
