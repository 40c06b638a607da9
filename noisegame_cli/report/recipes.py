"""Recipes and seeds. A *recipe* is what a run would repeat with another ``--seed``: its command,
name and config, apart from the seed and where results go, with links to earlier runs replaced by
those runs' recipes. Runs of one recipe are grouped and every number is shown as mean +- standard
deviation over them (``seed_stats``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from noisegame_cli.report.cells import Stat, is_percent
from noisegame_cli.runs import RUN_STAMP

# Config fields that do not make another recipe: the seed and where the results go.
SEEDLESS_FIELDS = ("seed", "runs_dir", "results", "resume")
ADDED_COLUMNS = ("path", "recipe", "name", "seed", "order")  # what ``annotate`` adds to each metric row


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


def annotate(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Metric rows of the described runs with their run's path, recipe, name, seed and order."""
    keyed = runs.set_index(["command", "run_id"])[list(ADDED_COLUMNS)]
    rows = metrics.join(keyed, on=["command", "run_id"], how="inner")
    return rows.sort_values("order", kind="stable").reset_index(drop=True)  # tables list runs in the order they ran


def context_column(rows: pd.DataFrame, name: str) -> pd.Series:
    """A context column of the rows, all empty where no row has it."""
    return rows[name] if name in rows else pd.Series(index=rows.index, dtype=object)


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


def seed_key(seed) -> tuple:
    """Seeds in numeric order, unknown ones last."""
    if seed is None or (isinstance(seed, float) and math.isnan(seed)):
        return (1, 0, "")
    return (0, seed, "") if isinstance(seed, (int, float)) else (0, 0, str(seed))

