"""What the results page shows, computed from the run records: recipes and their seeds, the model
leaderboard, the published reference rows, and the tables of each experiment's section.

Pure functions over pandas frames and plain dicts (``report.py`` reads the files, ``report_html.py``
draws). A *recipe* is what a run would repeat with another ``--seed``: its command, name and config,
apart from the seed and where results go, with links to earlier runs replaced by those runs' recipes.
Runs of one recipe are grouped and every number is shown as mean +- standard deviation over them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from noisegame_cli.budgets import budget_text
from noisegame_cli.runs import METRIC_COLUMNS

# Config fields that do not make another recipe: the seed and where the results go.
SEEDLESS_FIELDS = ("seed", "runs_dir", "results", "resume")
RUN_STAMP = re.compile(r"^\d{8}-\d{6}-")
AXES = ("rho", "radius", "sigma", "epsilon")  # the first one a row has is the x axis of its table
AXIS_NAMES = {"rho": "ρ", "radius": "radius", "sigma": "σ", "epsilon": "ε"}
HIDDEN_METRICS = ("loss", "error")  # beside an accuracy they repeat it
PERCENT_METRICS = ("error", "ce", "relative_ce", "mce", "relative_mce", "right_high_wrong_low", "right_low_wrong_high")
ADDED_COLUMNS = ("path", "recipe", "name", "seed", "order")
LEADERBOARD_BUDGETS = (2 / 255, 8 / 255)  # FGSM / PGD columns of the leaderboard where measured

# The model each training command produces, by role; the template reads the run's config.
MODEL_ROLES = {
    "train-teacher": "teacher",
    "train-student": "student",
    "adv-noise-gnt": "gnt",
    "adv-noise-ant": "ant",
    "fgsm-train": "{attack}-trained",
    "freq-split-train": "{part}-pass-trained",
}
EVALUATIONS = ("eval-corruption", "fgsm-eval")  # commands that measure one linked model (``model_path``)
CARD_FILE = "card.json"


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    commands: tuple[str, ...]
    about: str = ""


SECTIONS = (
    Section("noise-training", "Noise training: teacher, student, GNT, ANT",
            ("train-teacher", "train-student", "adv-noise-gnt", "adv-noise-ant"),
            "Each training run measures its model beside the teacher it started from (role column)."),
    Section("adversarial", "Adversarial examples: FGSM and PGD", ("fgsm-eval", "fgsm-train"),
            "Accuracy under attack at each budget ε (in the 0..1 image scale, shown as k/255)."),
    Section("frequency", "Frequency: low- and high-pass images, kernel smoothing",
            ("freq-split-eval", "freq-split-train", "freq-split-smooth")),
    Section("style", "Style transfer", ("style-transfer",), "Final losses per feature extractor (lower is closer)."),
    Section("corruptions", "Common corruptions", ("eval-corruption", "corrupt"),
            "Accuracy per corruption is the mean over the severities evaluated; mCE and relative mCE are "
            "against the baseline run each evaluation names."),
    Section("denoiser", "Denoiser", ("denoise-train", "denoise-eval")),
    Section("benchmark", "Benchmark cards", ("benchmark",), "RobustBench-style cards written by noisegame benchmark."),
)  # fmt: skip

# RobustBench's published rows (percent), shown apart from what was measured here.
REFERENCES = (
    {"name": "Standard", "architecture": "WRN-28-10", "dataset": "cifar10", "threat_model": "Linf", "eps": 8 / 255, "clean": 94.78, "robust": 0.00},
    {"name": "Wong2020Fast", "architecture": "PreActResNet-18", "dataset": "cifar10", "threat_model": "Linf", "eps": 8 / 255, "clean": 83.34, "robust": 43.21},
    {"name": "Wang2023Better", "architecture": "WRN-28-10", "dataset": "cifar10", "threat_model": "Linf", "eps": 8 / 255, "clean": 92.44, "robust": 67.31},
    {"name": "Bartoldson2024Adversarial", "architecture": "WRN-94-16", "dataset": "cifar10", "threat_model": "Linf", "eps": 8 / 255, "clean": 93.68, "robust": 73.71},
    {"name": "Rice2020Overfitting", "architecture": "PreActResNet-18", "dataset": "cifar10", "threat_model": "L2", "eps": 0.5, "clean": 88.67, "robust": 67.68},
    {"name": "Wang2023Better", "architecture": "WRN-70-16", "dataset": "cifar10", "threat_model": "L2", "eps": 0.5, "clean": 95.54, "robust": 84.97},
    {"name": "Standard", "architecture": "WRN-28-10", "dataset": "cifar10", "threat_model": "corruptions", "eps": None, "clean": 94.78, "robust": 73.46},
    {"name": "Hendrycks2020AugMix", "architecture": "WRN-40-2", "dataset": "cifar10", "threat_model": "corruptions", "eps": None, "clean": None, "robust": 88.82},
)  # fmt: skip


# --- cells ------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class SectionContent:
    section: Section
    tables: list[PageTable]
    figures: list[Figure]


def is_percent(metric: str) -> bool:
    return "accuracy" in metric or metric in PERCENT_METRICS


def epsilon_text(eps: float) -> str:
    """A budget whose norm the table does not say: ``8/255`` up to 64/255 on the 1/255 grid, the plain
    number beyond (L2 budgets, noise norms). Loose on the grid: budgets read back may be float32."""
    return budget_text(eps, tolerance=1e-3) if eps <= 64 / 255 else f"{eps:g}"


def humanize(metric: str) -> str:
    return {"mean_accuracy_15x5": "mean accuracy 15×5", "mean_accuracy_19_sev5": "mean accuracy 19 at severity 5",
            "mce": "mCE", "relative_mce": "relative mCE", "mean_accuracy_noise": "noise accuracy"}.get(metric, metric.replace("_", " "))  # fmt: skip


# --- runs and recipes -------------------------------------------------------------------------


def run_name(run_id: str, config: Mapping) -> str:
    """The name the run was given (config ``name``), else its directory name without the time stamp."""
    name = config.get("name")
    return str(name) if name else RUN_STAMP.sub("", run_id)


def describe_runs(runs: pd.DataFrame, configs: Mapping[str, Mapping], seeds: Mapping[str, Any], root: str | Path) -> pd.DataFrame:
    """The completed runs with their ``name``, ``seed``, ``recipe`` key, ``links`` (config field ->
    run directories it names) and ``order`` (chronological: run ids start with their time)."""
    done = runs[runs["status"] == "completed"].copy()
    done = done.assign(order=done["run_id"] + "/" + done["command"]).sort_values("order")
    resolved = {str(Path(p).resolve()): p for p in done["path"]}
    root_text = str(Path(root).resolve())
    recipes: dict[str, str] = {}
    links: dict[str, dict[str, tuple[str, ...]]] = {}

    def linked_run(value: str) -> str | None:
        candidate = Path(value).resolve()
        for path in (candidate, candidate.parent):  # a run directory, or a file in one (model.keras)
            if str(path) in resolved:
                return resolved[str(path)]
        return None

    def normalise(value, found: list[str]):
        if isinstance(value, str):
            target = linked_run(value) if value else None
            if target is not None:
                found.append(target)
                return {"run": recipe_of(target)}
            return value.replace(root_text, "{runs}")
        if isinstance(value, (list, tuple)):
            return [normalise(v, found) for v in value]
        if isinstance(value, dict):
            return {k: normalise(v, found) for k, v in value.items()}
        return value

    commands = dict(zip(done["path"], done["command"]))
    run_ids = dict(zip(done["path"], done["run_id"]))

    def recipe_of(path: str) -> str:
        """The recipe key of ``path``, its linked runs' keys first (a link names a recipe, not a seed)."""
        if path in recipes:
            return recipes[path]
        recipes[path] = Path(path).name  # a link back to itself cannot recurse
        config = configs.get(path, {})
        kept, run_links = {}, {}
        for key in sorted(config):
            if key in SEEDLESS_FIELDS:
                continue
            found: list[str] = []
            kept[key] = normalise(config[key], found)
            if found:
                run_links[key] = tuple(found)
        recipes[path] = json.dumps({"command": commands[path], "name": run_name(run_ids[path], config), "config": kept},
                                   sort_keys=True, default=str)  # fmt: skip
        links[path] = run_links
        return recipes[path]

    for path in done["path"]:
        recipe_of(path)
    done["name"] = [run_name(r, configs.get(p, {})) for r, p in zip(done["run_id"], done["path"])]
    done["seed"] = [seeds.get(p) for p in done["path"]]
    done["recipe"] = done["path"].map(recipes)
    done["links"] = done["path"].map(links)
    done["config"] = [configs.get(p, {}) for p in done["path"]]
    done["name"] = _distinct_names(done)
    return done.reset_index(drop=True)


def _distinct_names(runs: pd.DataFrame) -> list[str]:
    """Run names, with `` (2)``, `` (3)`` after a name two recipes of one command share."""
    labels, seen = {}, {}
    for run in runs.itertuples():
        if run.recipe in labels:
            continue
        count = seen.get((run.command, run.name), 0) + 1
        seen[(run.command, run.name)] = count
        labels[run.recipe] = run.name if count == 1 else f"{run.name} ({count})"
    return [labels[r] for r in runs["recipe"]]


def model_role(command: str, config: Mapping) -> str | None:
    template = MODEL_ROLES.get(command)
    if template is None:
        return None
    try:
        return template.format(**config)
    except (KeyError, IndexError):
        return template.split("}")[-1].lstrip("-") or command


def annotate(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Metric rows of the described runs with their run's path, recipe, name, seed and order."""
    keyed = runs.set_index(["command", "run_id"])[list(ADDED_COLUMNS)]
    rows = metrics.join(keyed, on=["command", "run_id"], how="inner")
    return rows.sort_values("order", kind="stable").reset_index(drop=True)  # tables list runs in the order they ran


def _column(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name] if name in rows else pd.Series(index=rows.index, dtype=object)


# --- grouping over seeds ----------------------------------------------------------------------


def seed_stats(rows: pd.DataFrame, index: Sequence[str], columns: str, percent: bool | None = None) -> pd.DataFrame:
    """One row per ``index`` combination, one column per ``columns`` value, each cell a ``Stat`` over
    the runs (each run's rows averaged first, so a run counts once). Values are shown in percent
    where the metric is a fraction (accuracy, error, CE), or as ``percent`` says."""
    keys = [*index, columns]
    per_run = rows.groupby([*keys, "path"], dropna=False, sort=False).agg(value=("value", "mean"), seed=("seed", "first"), metric=("metric", "first"))
    stats = {}
    for key, group in per_run.groupby(level=list(range(len(keys))), dropna=False, sort=False):
        values = group["value"].dropna()
        if values.empty:
            continue
        runs = tuple(group.index.get_level_values("path")[group["value"].notna()])
        shown_percent = is_percent(group["metric"].iloc[0]) if percent is None else percent
        stats[key] = Stat(tuple(float(v) for v in values), runs, tuple(group["seed"][group["value"].notna()]), shown_percent)
    if not stats:
        return pd.DataFrame()
    series = pd.Series(stats)
    series.index.names = keys
    table = series.unstack(columns)
    first_seen = list(dict.fromkeys(per_run.index.droplevel(["path", columns]) if len(index) > 1 else per_run.index.get_level_values(0)))
    table = table.reindex([k for k in first_seen if k in table.index])
    order = list(dict.fromkeys(rows[columns]))
    return table[[c for c in order if c in table.columns]].reset_index()


# --- sections ---------------------------------------------------------------------------------


def section_tables(rows: pd.DataFrame) -> list[PageTable]:
    """The tables of one section's metric rows: scalars per run (and role), accuracy per corruption
    (models x corruptions, shaded), and one table per x axis (ε, σ, radius, ρ)."""
    if rows.empty:
        return []
    rows = rows[~rows["metric"].isin(HIDDEN_METRICS) | ~rows["metric"].isin(["accuracy"]).groupby(rows["path"]).transform("any")]
    rows = rows.assign(label=rows["name"])
    tables = []
    no_corruption = _column(rows, "corruption").isna() & _column(rows, "severity").isna()
    axis = _first_axis(rows)
    scalars = rows[no_corruption & axis.isna()]
    for group in _sharing_commands(scalars):
        title = "Measurements per run" if len(group) == len(set(scalars["command"])) else f"Measurements per run: {', '.join(group)}"
        tables.append(_wide_table(title, scalars[scalars["command"].isin(group)], columns="metric"))
    corrupted = rows[_column(rows, "corruption").notna() & (rows["metric"] == "accuracy")]
    if not corrupted.empty:
        tables.append(_wide_table("Accuracy per corruption (%, mean over the severities evaluated)", corrupted, columns="corruption",
                                  colour=True, compact=True, vertical=True))  # fmt: skip
    for name in AXES:
        along = rows[no_corruption & (axis == name)]
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
        values = _column(rows, name)
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
    """Each experiment's tables and figures; commands no section names end up in "Other runs"."""
    named = {c for s in SECTIONS for c in s.commands}
    other = tuple(sorted(set(runs["command"]) - named))
    sections = [*SECTIONS, Section("other", "Other runs", other)] if other else list(SECTIONS)
    contents = []
    for section in sections:
        in_section = runs[runs["command"].isin(section.commands)]
        if in_section.empty:
            continue
        section_rows = rows[rows["command"].isin(section.commands)]
        tables = card_tables(in_section, cards) if section.anchor == "benchmark" and cards else section_tables(section_rows)
        contents.append(SectionContent(section, tables, section_figures(in_section, figures)))
    return contents


def card_tables(runs: pd.DataFrame, cards: Mapping[str, Mapping]) -> list[PageTable]:
    """The benchmark cards, one row per recipe (seeds grouped), in percent as the cards are."""
    rows = []
    for run in runs.itertuples():
        card = cards.get(run.path)
        if card is None:
            continue
        identity = {"label": run.name, "model": str(card.get("model") or ""), "dataset": str(card.get("dataset") or ""),
                    "threat model": _threat_text(card), "examples": str(card.get("n_examples") or "")}  # fmt: skip
        values = {"clean": card.get("clean_acc"), "AutoAttack": card.get("autoattack_acc"),
                  **{str(a): v for a, v in (card.get("autoattack_per_attack") or {}).items()},
                  "corruptions 15×5": card.get("corruptions_acc"), "19 at severity 5": card.get("corruptions_acc_19_sev5"),
                  "mCE": card.get("corruptions_mce")}  # fmt: skip
        for column, value in values.items():
            if _number(value) is not None:
                rows.append({**identity, "metric": column, "value": _number(value) / 100, "path": run.path, "seed": run.seed})
    if not rows:
        return []
    table = seed_stats(pd.DataFrame(rows), ["label", "model", "dataset", "threat model", "examples"], "metric", percent=True)
    note = "AutoAttack: robust accuracy under the standard protocol; the per-attack columns are the robust accuracy after each attack."
    return [PageTable("Benchmark cards (%)", table.rename(columns={"label": "card"}), note=note)]


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _threat_text(card: Mapping) -> str:
    norm = card.get("threat_model") or card.get("norm")
    eps = _number(card.get("eps"))
    if not norm:
        return ""
    return f"{norm} ε={epsilon_text(eps)}" if eps is not None else str(norm)


# --- the leaderboard --------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One leaderboard measurement: rows of ``metric`` passing ``where``, taken from the first of
    ``sources`` that has one (own: the model's training run; eval: an evaluation of it; card: its
    benchmark card; side: another run that measured it beside its own model)."""

    key: str
    title: str
    metric: str
    sources: tuple[str, ...]
    where: Callable[[pd.DataFrame], pd.Series] = lambda rows: pd.Series(True, index=rows.index)
    by_dataset: bool = False  # the column names the dataset it was measured on (corruption sets differ)


def _clean_rows(rows: pd.DataFrame) -> pd.Series:
    """Accuracy on the clean test images: no corruption, noise, smoothing or budget above 0; a
    frequency run's ``original`` part (its radius is the one it trained at) and a denoiser's clean inputs."""
    original = _column(rows, "part") == "original"

    def unset_or(column: str, allowed) -> pd.Series:
        values = _column(rows, column)
        return values.isna() | allowed(values)

    return (unset_or("corruption", lambda v: False) & unset_or("severity", lambda v: False) & unset_or("sigma", lambda v: False)
            & unset_or("rho", lambda v: False) & unset_or("radius", lambda v: original) & unset_or("epsilon", lambda v: v == 0)
            & unset_or("split", lambda v: v == "test") & unset_or("part", lambda v: original) & unset_or("inputs", lambda v: v == "clean"))  # fmt: skip


def _aggregate_rows(rows: pd.DataFrame) -> pd.Series:
    return _column(rows, "corruption").isna() & _column(rows, "severity").isna()


def _attacked_rows(rows: pd.DataFrame) -> pd.Series:
    return _column(rows, "attack").notna() & (_column(rows, "epsilon").fillna(0) > 0) & _column(rows, "rho").isna() & _column(rows, "corruption").isna()


CORRUPTION_SOURCES = ("eval", "card", "own", "side")
MEASURES = (
    Measure("clean", "clean", "accuracy", ("own", "eval", "card", "side"), _clean_rows),
    Measure("c15", "corruptions 15×5", "mean_accuracy_15x5", CORRUPTION_SOURCES, _aggregate_rows, by_dataset=True),
    Measure("c19", "19 at severity 5", "mean_accuracy_19_sev5", CORRUPTION_SOURCES, _aggregate_rows, by_dataset=True),
    Measure("call", "corruptions (all evaluated)", "mean_accuracy", ("eval",), _aggregate_rows, by_dataset=True),
    Measure("rmce", "relative mCE", "relative_mce", ("eval", "card"), _aggregate_rows, by_dataset=True),
    Measure("mce", "mCE", "mce", ("eval", "card"), _aggregate_rows, by_dataset=True),
    Measure("noise", "noise corruptions", "mean_accuracy_noise", ("eval", "own", "side"), _aggregate_rows, by_dataset=True),
    Measure("attack", "", "accuracy", ("eval", "own"), _attacked_rows),
    Measure("autoattack", "AutoAttack", "autoattack_acc", ("card",)),
)


def attribute(rows: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Metric rows with the model run each measures (``subject``) and how (``source``): a training
    run's own rows, the teacher rows it measured beside them, evaluations of one linked model."""
    by_path = runs.set_index("path")
    subject = pd.Series(index=rows.index, dtype=object)
    source = pd.Series(index=rows.index, dtype=object)
    role = _column(rows, "role")
    for path, run in by_path.iterrows():
        mine = rows["path"] == path
        if run["command"] in MODEL_ROLES:
            own = mine & (role.isna() | (role == model_role(run["command"], run["config"])))
            subject, source = subject.mask(own, path), source.mask(own, "own")
            teacher = run["links"].get("teacher", ())
            if len(teacher) == 1:
                beside = mine & (role == "teacher")
                subject, source = subject.mask(beside, teacher[0]), source.mask(beside, "side")
        elif run["command"] in EVALUATIONS and len(run["links"].get("model_path", ())) == 1:
            subject, source = subject.mask(mine, run["links"]["model_path"][0]), source.mask(mine, "eval")
    return rows.assign(subject=subject, source=source).dropna(subset=["subject"])


def card_rows(cards: Mapping[str, Mapping], runs: pd.DataFrame) -> pd.DataFrame:
    """Each card as long rows (fractions), attributed to the run of its model or to itself."""
    by_path = runs.set_index("path")
    resolved = {str(Path(p).resolve()): p for p in runs["path"]}
    rows = []
    for path, card in cards.items():
        if path not in by_path.index:
            continue
        run = by_path.loc[path]
        subject = path
        if card.get("model_path"):
            candidate = Path(str(card["model_path"])).resolve()
            subject = resolved.get(str(candidate)) or resolved.get(str(candidate.parent)) or path
        common = {"run_id": run["run_id"], "command": run["command"], "dataset": str(card.get("dataset") or ""),
                  "model": str(card.get("model") or ""), "path": path, "recipe": run["recipe"], "name": run["name"],
                  "seed": run["seed"], "order": run["order"], "subject": subject, "source": "card"}  # fmt: skip
        corrupted = str(card.get("corruptions_source") or f"{common['dataset']} corruptions")
        for metric, key, dataset in (("accuracy", "clean_acc", common["dataset"]), ("autoattack_acc", "autoattack_acc", common["dataset"]),
                                     ("mean_accuracy_15x5", "corruptions_acc", corrupted),
                                     ("mean_accuracy_19_sev5", "corruptions_acc_19_sev5", corrupted), ("mce", "corruptions_mce", corrupted)):
            value = _number(card.get(key))
            if value is not None:
                rows.append({**common, "metric": metric, "value": value / 100, "dataset": dataset, "card_dataset": common["dataset"],
                             "threat": _threat_text(card)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Leaderboard:
    table: PageTable
    cells: pd.DataFrame  # subject recipe x column key -> Stat (for tests and the docs fragment)
    references: PageTable | None
    reference_note: str


def leaderboard(rows: pd.DataFrame, runs: pd.DataFrame, cards: Mapping[str, Mapping]) -> Leaderboard:
    """One row per model (its recipe: seeds grouped), one column per measurement found for any model."""
    measured = pd.concat([attribute(rows, runs), card_rows(cards, runs)], ignore_index=True)
    models = _leaderboard_models(runs, measured, cards)
    references, reference_note = reference_table(measured, rows, list(models["dataset"]))
    if models.empty:
        return Leaderboard(PageTable("Leaderboard", pd.DataFrame()), pd.DataFrame(), references, reference_note)
    chosen = _chosen_values(measured, runs, models)
    columns = _ordered_columns(chosen)
    cells: dict[tuple[str, tuple], Stat] = {}
    for (recipe, column), group in chosen.groupby(["model_recipe", "column"], sort=False):
        group = group.sort_values(["seed_key", "subject_order"])
        cells[(recipe, column)] = Stat(tuple(group["value"]), tuple(group["source_run"]), tuple(group["seed"]))
    baselines = _baseline_models(runs)
    names = _column_names(columns)
    frame_rows = []
    for recipe, group in models.groupby("recipe", sort=False):
        first = group.iloc[0]
        seeds = sorted((s for s in group["seed"] if _seed_key(s)[0] == 0), key=_seed_key)
        row = {"model": Ref(first["label"], first["path"], title=f"{first['command']} run {Path(first['path']).name}"),
               "dataset": first["dataset"], "architecture": first["architecture"],
               "seeds": f"{', '.join(map(str, seeds)) or '?'} (n={len(group)})"}  # fmt: skip
        for column in columns:
            row[names[column]] = cells.get((recipe, column))
            if row[names[column]] is None and column[0] in ("rmce", "mce") and group["path"].isin(baselines).any():
                row[names[column]] = "baseline"
        frame_rows.append(row)
    frame = pd.DataFrame(frame_rows)
    details = {names[c]: c[2] for c in columns if c[2]}
    note = ("Mean ± standard deviation over the seeds of each recipe, in percent; (n) is the number of runs. "
            "Each number links to the run it came from (the first seed's; hover for every seed).")  # fmt: skip
    grid = pd.DataFrame({names[c]: {r: cells.get((r, c)) for r in models["recipe"].unique()} for c in columns})
    return Leaderboard(PageTable("Leaderboard", frame, note=note, details=details), grid, references, reference_note)


def _leaderboard_models(runs: pd.DataFrame, measured: pd.DataFrame, cards: Mapping[str, Mapping]) -> pd.DataFrame:
    """The model runs (trained here, or a benchmarked model file of their own) with label, dataset, architecture."""
    subjects = set(measured["subject"]) if not measured.empty else set()
    chosen = runs[runs["command"].isin(MODEL_ROLES) | (runs["path"].isin(subjects) & runs["path"].isin(list(cards)))]
    order = list(MODEL_ROLES)
    rows = []
    for run in chosen.itertuples():
        card = cards.get(run.path, {})
        role = model_role(run.command, run.config) if run.command in MODEL_ROLES else "benchmarked"
        own = measured[(measured["subject"] == run.path)] if not measured.empty else measured
        own_rows = own[own["source"].isin(["own", "card"])] if not own.empty else own
        dataset = str(own_rows["dataset"].iloc[0]) if len(own_rows) else str(run.config.get("dataset", ""))
        architecture = str(card.get("model") or (own_rows["model"].iloc[0] if len(own_rows) else run.config.get("model", "")))
        label = f"{card.get('name') or run.name} · {role}" if card else f"{run.name} · {role}"
        rank = order.index(run.command) if run.command in order else len(order)
        rows.append({"path": run.path, "recipe": run.recipe, "label": label, "name": card.get("name") or run.name,
                     "dataset": dataset, "architecture": architecture,
                     "seed": run.seed, "command": run.command, "rank": rank, "order": run.order})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["path", "recipe", "label", "name", "dataset", "architecture", "seed", "command", "rank", "order"])
    first = frame.groupby("recipe")["order"].transform("min")
    return frame.assign(first=first).sort_values(["rank", "first", "order"]).reset_index(drop=True)


def _chosen_values(measured: pd.DataFrame, runs: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Per model run and column, the value of the best source (then the latest run of it)."""
    if measured.empty:
        return pd.DataFrame(columns=["model_recipe", "column", "value", "source_run", "seed", "seed_key", "subject_order"])
    known = models.set_index("path")
    measured = measured[measured["subject"].isin(known.index)]
    baselines = _baseline_labels(runs, models)
    picked = []
    any_15x5 = (measured["metric"] == "mean_accuracy_15x5").any()
    for measure in MEASURES:
        if measure.key == "call" and any_15x5:
            continue  # the 15 x 5 protocol was run; a mean over another set would confuse
        rows = measured[(measured["metric"] == measure.metric) & measured["source"].isin(measure.sources)]
        rows = rows[measure.where(rows)] if not rows.empty else rows
        if rows.empty:
            continue
        rows = rows.assign(rank=rows["source"].map(measure.sources.index), identity=_identity(measure, rows))
        per_run = rows.groupby(["subject", "identity", "rank", "path"], sort=False).agg(
            value=("value", "mean"), dataset=("dataset", "first"), order=("order", "first"))
        per_run = per_run.reset_index().sort_values(["rank", "order"], ascending=[True, False])
        best = per_run.drop_duplicates(["subject", "identity"])
        for row in best.itertuples():
            model = known.loc[row.subject]
            detail = row.dataset if measure.by_dataset else ""
            if measure.key in ("rmce", "mce"):
                detail = f"vs {baselines.get(row.path, 'its baseline')} · {row.dataset}"
            picked.append({"model_recipe": model["recipe"], "column": (measure.key, row.identity, detail),
                           "value": row.value, "source_run": row.path, "seed": model["seed"], "seed_key": _seed_key(model["seed"]),
                           "subject_order": model["order"]})  # fmt: skip
    chosen = pd.DataFrame(picked)
    return chosen


def _identity(measure: Measure, rows: pd.DataFrame) -> pd.Series:
    """What makes separate columns of one measure before the source is chosen: attack and budget."""
    if measure.key == "attack":
        return rows["attack"].astype(str).str.upper() + " ε=" + rows["epsilon"].map(epsilon_text)
    if measure.key == "autoattack":
        return rows["threat"].astype(str)
    return pd.Series(measure.title, index=rows.index)


def _baseline_labels(runs: pd.DataFrame, models: pd.DataFrame) -> dict[str, str]:
    """For each evaluation naming a ``baseline`` evaluation: the label of the baseline's model."""
    by_path = runs.set_index("path")
    labels = models.set_index("path")["name"].to_dict()
    result = {}
    for path, run in by_path.iterrows():
        baseline = run["links"].get("baseline", ())
        if len(baseline) == 1 and baseline[0] in by_path.index:
            model = by_path.loc[baseline[0], "links"].get("model_path", ())
            result[path] = labels.get(model[0], by_path.loc[baseline[0], "name"]) if model else by_path.loc[baseline[0], "name"]
    return result


def _seed_key(seed) -> tuple:
    """Seeds in numeric order, unknown ones last."""
    if seed is None or (isinstance(seed, float) and math.isnan(seed)):
        return (1, 0, "")
    return (0, seed, "") if isinstance(seed, (int, float)) else (0, 0, str(seed))


def _baseline_models(runs: pd.DataFrame) -> set[str]:
    """Model runs whose evaluation serves as another evaluation's mCE baseline."""
    by_path = runs.set_index("path")
    targets = {b for links in runs["links"] for b in links.get("baseline", ())}
    return {m for t in targets if t in by_path.index for m in by_path.loc[t, "links"].get("model_path", ())}


def _ordered_columns(chosen: pd.DataFrame) -> list[tuple]:
    if chosen.empty:
        return []
    keys = [m.key for m in MEASURES]
    columns = list(dict.fromkeys(chosen["column"]))
    attacks = [c for c in columns if c[0] == "attack"]
    shown_attacks = set(_leaderboard_budgets(attacks))
    columns = [c for c in columns if c[0] != "attack" or c in shown_attacks]

    def sort_key(column):
        budget = _budget_of(column[1]) if column[0] == "attack" else 0.0
        return keys.index(column[0]), column[1].split(" ")[0], budget, column[2]

    return sorted(columns, key=sort_key)


def _budget_of(identity: str) -> float:
    text = identity.split("ε=")[-1]
    if text.endswith("/255"):
        return float(text[:-4]) / 255
    return float(text)


def _leaderboard_budgets(attacks: list[tuple]) -> list[tuple]:
    """Per attack, the budgets of ``LEADERBOARD_BUDGETS`` it was measured at, else its two smallest."""
    chosen = []
    for attack in dict.fromkeys(c[1].split(" ")[0] for c in attacks):
        mine = sorted((c for c in attacks if c[1].split(" ")[0] == attack), key=lambda c: _budget_of(c[1]))
        preferred = [c for c in mine if any(abs(_budget_of(c[1]) - b) < 1e-6 for b in LEADERBOARD_BUDGETS)]
        chosen += preferred or mine[:2]
    return chosen


def _column_names(columns: list[tuple]) -> dict[tuple, str]:
    """Header text per column: the measure (its detail goes on a second line), the detail added
    where two columns would read the same."""
    plain = {c: f"AutoAttack {c[1]}" if c[0] == "autoattack" else c[1] for c in columns}
    counts = pd.Series(list(plain.values())).value_counts()
    return {c: f"{name} ({c[2]})" if counts[name] > 1 and c[2] else name for c, name in plain.items()}


# --- published reference rows -----------------------------------------------------------------


def _same_dataset(a: str, b: str) -> bool:
    def plain(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())

    return plain(a) == plain(b)


def reference_table(measured: pd.DataFrame, rows: pd.DataFrame, datasets: Sequence[str]) -> tuple[PageTable | None, str]:
    """RobustBench's published rows for the datasets and threat models measured here (a card on
    CIFAR-10 Linf 8/255 brings the Linf rows, a CIFAR-10-C evaluation or a CIFAR-10 card with
    corruption results the corruption rows), or a note saying why none applies. Never mixed into
    the leaderboard: a published row is another model, another protocol run, another machine."""
    cards = measured[measured["source"] == "card"] if not measured.empty else measured
    corrupted = rows[rows["metric"].isin(["mean_accuracy_15x5", "mean_accuracy_19_sev5", "mean_accuracy", "mce"])] if not rows.empty else rows
    rows = []
    for ref in REFERENCES:
        if ref["threat_model"] == "corruptions":
            applies = any(_same_dataset(d, ref["dataset"] + "-c") for d in corrupted.get("dataset", [])) or any(
                _same_dataset(c.card_dataset, ref["dataset"]) and c.metric != "accuracy" and c.metric != "autoattack_acc" for c in cards.itertuples())
            threat, robust_column = "corruptions (CIFAR-10-C)", "corruption accuracy"
        else:
            threat = f"{ref['threat_model']} ε={epsilon_text(ref['eps'])}"
            applies = any(c.metric == "autoattack_acc" and _same_dataset(c.card_dataset, ref["dataset"]) and c.threat == threat
                          for c in cards.itertuples())  # fmt: skip
            robust_column = "AutoAttack"
        if applies:
            rows.append({"published model": ref["name"], "architecture": ref["architecture"], "dataset": ref["dataset"], "threat model": threat,
                         "clean": "" if ref["clean"] is None else f"{ref['clean']:.2f}", "AutoAttack": "", "corruption accuracy": "",
                         "source": "RobustBench (published)"} | {robust_column: f"{ref['robust']:.2f}"})  # fmt: skip
    if not rows:
        shown = ", ".join(sorted(set(datasets))) or "no dataset"
        return None, ("No published reference row applies: the RobustBench rows this report knows are for CIFAR-10 "
                      f"(Linf 8/255, L2 0.5 and CIFAR-10-C), and these runs measured {shown}.")  # fmt: skip
    table = pd.DataFrame(rows)
    table = table[[c for c in table.columns if (table[c] != "").any()]]
    note = ("Published numbers in percent, not measured here; they compare with a measured row only under the same "
            "dataset, threat model and protocol (AutoAttack standard, the first 10 000 test images; the official CIFAR-10-C files).")
    return PageTable("Published reference rows (RobustBench, not measured here)", table, note=note), ""
