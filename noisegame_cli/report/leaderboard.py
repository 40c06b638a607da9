"""The leaderboard: one row per model trained or benchmarked in the runs (seeds of a recipe grouped),
one column per measurement any of them has. Each number comes from the best source of that
measurement: the model's own training run, an evaluation of it, its benchmark card, or another run
that measured it beside its own model (a student's run measures its teacher too).

Rows are chosen by what they measured (their ``condition``); which command trains which model, and
which evaluates one, is what the commands declare (``registry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from noisegame_cli.report import registry
from noisegame_cli.report.cards import card_rows
from noisegame_cli.report.cells import PageTable, Ref, Stat, epsilon_text
from noisegame_cli.report.recipes import context_column, seed_key
from noisegame_cli.report.references import reference_table

LINK_NOTE = "Each number links to the run it came from (the first seed's; hover for every seed)."
LEADERBOARD_BUDGETS = (2 / 255, 8 / 255)  # FGSM / PGD columns of the leaderboard where measured
# Plain mCE divides by the baseline's errors; where the baseline misclassified fewer images than this
# of a corruption (summed over the severities), the ratio is noise: its Poisson standard error,
# 1/sqrt(count), exceeds a tenth of it.
MCE_MIN_BASELINE_ERRORS = 100
MCE_RULE = (f"Plain mCE is left out where the baseline misclassified fewer than {MCE_MIN_BASELINE_ERRORS} test images of a common "
            "corruption (summed over the severities): a ratio to so few errors is chance (its standard error is over a tenth "
            "of it). The mean accuracies and relative mCE are kept.")  # fmt: skip


@dataclass(frozen=True)
class Measure:
    """One leaderboard measurement: rows of ``condition`` and ``metric``, taken from the first of
    ``sources`` that has one (own: the model's training run; eval: an evaluation of it; card: its
    benchmark card; side: another run that measured it beside its own model)."""

    key: str
    title: str
    condition: str
    metric: str
    sources: tuple[str, ...]
    by_dataset: bool = False  # the column names the dataset it was measured on (corruption sets differ)


CORRUPTION_SOURCES = ("eval", "card", "own", "side")
MEASURES = (
    Measure("clean", "clean", "clean", "accuracy", ("own", "eval", "card", "side")),
    Measure("c15", "corruptions 15×5", "corruption", "mean_accuracy_15x5", CORRUPTION_SOURCES, by_dataset=True),
    Measure("c19", "19 at severity 5", "corruption", "mean_accuracy_19_sev5", CORRUPTION_SOURCES, by_dataset=True),
    Measure("call", "corruptions (all evaluated)", "corruption", "mean_accuracy", ("eval",), by_dataset=True),
    Measure("rmce", "relative mCE", "corruption", "relative_mce", ("eval", "card"), by_dataset=True),
    Measure("mce", "mCE", "corruption", "mce", ("eval", "card"), by_dataset=True),
    Measure("noise", "noise corruptions", "corruption", "mean_accuracy_noise", ("eval", "own", "side"), by_dataset=True),
    Measure("attack", "", "attack", "accuracy", ("eval", "own")),
    Measure("autoattack", "AutoAttack", "attack", "autoattack_acc", ("card",)),
    Measure("shift", "", "shift", "accuracy", ("card", "eval")),  # one column per shift set, as the shift papers tabulate them
)


def attribute(rows: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Metric rows with the model run each measures (``subject``) and how (``source``): a training
    run's own rows (no role, or its model's role); rows of another role whose config field of that
    name links one run (a student's run measures its ``teacher``); an evaluation's rows, of the one
    model its declared config field links."""
    subject = pd.Series(index=rows.index, dtype=object)
    source = pd.Series(index=rows.index, dtype=object)
    role = context_column(rows, "role")
    for run in runs.itertuples():
        mine = rows["path"] == run.path
        own_role = registry.model_role(run.command, run.config)
        evaluated = run.links.get(registry.evaluated_field(run.command) or "", ())
        if own_role is not None:
            own = mine & (role.isna() | (role == own_role))
            subject, source = subject.mask(own, run.path), source.mask(own, "own")
            for other, linked in run.links.items():
                if other != own_role and len(linked) == 1:
                    beside = mine & (role == other)
                    subject, source = subject.mask(beside, linked[0]), source.mask(beside, "side")
        elif len(evaluated) == 1:
            subject, source = subject.mask(mine, evaluated[0]), source.mask(mine, "eval")
    return rows.assign(subject=subject, source=source).dropna(subset=["subject"])


def mce_means_something(run: str, rows: pd.DataFrame, runs: pd.DataFrame) -> bool:
    """Whether the plain mCE of ``run`` (an evaluation, or a benchmark) passes ``MCE_MIN_BASELINE_ERRORS``:
    its baseline run misclassified at least that many images of each common corruption in the mean,
    summed over the severities ``run`` evaluated. Where that cannot be told it is kept: against a
    published baseline (ImageNet-C's AlexNet errors, large), one outside these runs, or runs written
    before the per-set image counts were recorded."""
    links = runs.set_index("path")["links"]
    baseline = links[run].get("baseline", ()) if run in links.index else ()
    if len(baseline) != 1 or "corruption" not in rows or "severity" not in rows:
        return True
    corrupted = rows[rows["condition"] == "corruption"]
    mine = corrupted[corrupted["path"] == run]
    ratios = mine[(mine["metric"] == "ce") & mine["value"].notna()]
    measured = mine.loc[mine["metric"] == "error", ["corruption", "severity"]].drop_duplicates()
    theirs = corrupted[(corrupted["path"] == baseline[0]) & (corrupted["metric"] == "error") & corrupted["corruption"].isin(ratios["corruption"])]
    if not measured.empty:
        theirs = theirs.merge(measured, on=["corruption", "severity"])
    counts = context_column(theirs, "n_examples")
    if ratios.empty or theirs.empty or counts.isna().any():
        return True
    errors = (theirs["value"] * counts).groupby(theirs["corruption"]).sum()
    return bool(errors.min() >= MCE_MIN_BASELINE_ERRORS - 1e-6)


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
    chosen, mce_left_out = _chosen_values(measured, rows, runs, models)
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
        seeds = sorted((s for s in group["seed"] if seed_key(s)[0] == 0), key=seed_key)
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
    note = f"Mean ± standard deviation over the seeds of each recipe, in percent; (n) is the number of runs. {LINK_NOTE}"
    if mce_left_out:
        note += " " + MCE_RULE
    grid = pd.DataFrame({names[c]: {r: cells.get((r, c)) for r in models["recipe"].unique()} for c in columns})
    return Leaderboard(PageTable("Leaderboard", frame, note=note, details=details), grid, references, reference_note)


def _leaderboard_models(runs: pd.DataFrame, measured: pd.DataFrame, cards: Mapping[str, Mapping]) -> pd.DataFrame:
    """The model runs (trained here, or a benchmarked model file of their own) with label, dataset, architecture."""
    subjects = set(measured["subject"]) if not measured.empty else set()
    order = registry.model_commands()
    chosen = runs[runs["command"].isin(order) | (runs["path"].isin(subjects) & runs["path"].isin(list(cards)))]
    rows = []
    for run in chosen.itertuples():
        card = cards.get(run.path, {})
        role = registry.model_role(run.command, run.config) if run.command in order else "benchmarked"
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


def _chosen_values(measured: pd.DataFrame, rows: pd.DataFrame, runs: pd.DataFrame, models: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Per model run and column, the value of the best source (then the latest run of it); and whether
    a plain mCE was left out (``MCE_RULE``). ``rows`` are all metric rows, the baselines' among them."""
    if measured.empty:
        return pd.DataFrame(columns=["model_recipe", "column", "value", "source_run", "seed", "seed_key", "subject_order"]), False
    known = models.set_index("path")
    measured = measured[measured["subject"].isin(known.index)]
    baselines = _baseline_labels(runs, models)
    picked, mce_left_out = [], False
    any_15x5 = (measured["metric"] == "mean_accuracy_15x5").any()
    for measure in MEASURES:
        if measure.key == "call" and any_15x5:
            continue  # the 15 x 5 protocol was run; a mean over another set would confuse
        found = measured[(measured["condition"] == measure.condition) & (measured["metric"] == measure.metric)
                         & measured["source"].isin(measure.sources)]  # fmt: skip
        if measure.key == "mce":
            kept = {path: mce_means_something(path, rows, runs) for path in set(found["path"])}
            mce_left_out |= not all(kept.values())
            found = found[found["path"].map(kept).astype(bool)]
        if found.empty:
            continue
        found = found.assign(rank=found["source"].map(measure.sources.index), identity=_identity(measure, found))
        per_run = found.groupby(["subject", "identity", "rank", "path"], sort=False).agg(
            value=("value", "mean"), dataset=("dataset", "first"), order=("order", "first"))
        per_run = per_run.reset_index().sort_values(["rank", "order"], ascending=[True, False])
        best = per_run.drop_duplicates(["subject", "identity"])
        for row in best.itertuples():
            model = known.loc[row.subject]
            detail = row.dataset if measure.by_dataset else ""
            if measure.key in ("rmce", "mce"):
                detail = f"vs {baselines.get(row.path, 'its baseline')} · {row.dataset}"
            picked.append({"model_recipe": model["recipe"], "column": (measure.key, row.identity, detail),
                           "value": row.value, "source_run": row.path, "seed": model["seed"], "seed_key": seed_key(model["seed"]),
                           "subject_order": model["order"]})  # fmt: skip
    return pd.DataFrame(picked), mce_left_out


def _identity(measure: Measure, rows: pd.DataFrame) -> pd.Series:
    """What makes separate columns of one measure before the source is chosen: attack and budget."""
    if measure.key == "attack":
        return rows["attack"].astype(str).str.upper() + " ε=" + rows["epsilon"].map(epsilon_text)
    if measure.key == "autoattack":
        return rows["threat"].astype(str)
    if measure.key == "shift":
        return rows["dataset"].astype(str)
    return pd.Series(measure.title, index=rows.index)


def _baseline_labels(runs: pd.DataFrame, models: pd.DataFrame) -> dict[str, str]:
    """For each evaluation naming a ``baseline`` evaluation: the label of the baseline's model."""
    by_path = runs.set_index("path")
    labels = models.set_index("path")["name"].to_dict()
    result = {}
    for path, run in by_path.iterrows():
        baseline = run["links"].get("baseline", ())
        if len(baseline) == 1 and baseline[0] in by_path.index:
            model = _evaluated(by_path.loc[baseline[0]])
            result[path] = labels.get(model[0], by_path.loc[baseline[0], "name"]) if model else by_path.loc[baseline[0], "name"]
    return result


def _baseline_models(runs: pd.DataFrame) -> set[str]:
    """Model runs whose evaluation serves as another evaluation's mCE baseline."""
    by_path = runs.set_index("path")
    targets = {b for links in runs["links"] for b in links.get("baseline", ())}
    return {m for t in targets if t in by_path.index for m in _evaluated(by_path.loc[t])}


def _evaluated(run: pd.Series) -> tuple[str, ...]:
    """The model run(s) an evaluation run links through its declared config field."""
    return run["links"].get(registry.evaluated_field(run["command"]) or "", ())


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

