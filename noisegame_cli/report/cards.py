"""Robustness cards (``card.json``, RobustBench's field names, percentages): their table on the page
and their numbers as long metric rows for the leaderboard."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import pandas as pd

from noisegame_cli.report.cells import PageTable, epsilon_text
from noisegame_cli.report.recipes import seed_stats

# card field -> the metric row it becomes (metric, condition); its dataset is the corrupted set's where corrupted
CARD_METRICS = {
    "clean_acc": ("accuracy", "clean"),
    "autoattack_acc": ("autoattack_acc", "attack"),
    "corruptions_acc": ("mean_accuracy_15x5", "corruption"),
    "corruptions_acc_19_sev5": ("mean_accuracy_19_sev5", "corruption"),
    "corruptions_mce": ("mce", "corruption"),
}


def number(value) -> float | None:
    """A card's value as a float; None where it is missing or not a number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def threat_text(card: Mapping) -> str:
    """``Linf ε=8/255``: the card's threat model and budget."""
    norm = card.get("threat_model") or card.get("norm")
    eps = number(card.get("eps"))
    if not norm:
        return ""
    return f"{norm} ε={epsilon_text(eps)}" if eps is not None else str(norm)


def card_tables(runs: pd.DataFrame, cards: Mapping[str, Mapping]) -> list[PageTable]:
    """The cards of ``runs``, one row per recipe (seeds grouped), in percent as the cards are."""
    rows = []
    for run in runs.itertuples():
        card = cards.get(run.path)
        if card is None:
            continue
        identity = {"label": run.name, "model": str(card.get("model") or ""), "dataset": str(card.get("dataset") or ""),
                    "threat model": threat_text(card), "examples": str(card.get("n_examples") or "")}  # fmt: skip
        values = {"clean": card.get("clean_acc"), "AutoAttack": card.get("autoattack_acc"),
                  **{str(a): v for a, v in (card.get("autoattack_per_attack") or {}).items()},
                  "corruptions 15×5": card.get("corruptions_acc"), "19 at severity 5": card.get("corruptions_acc_19_sev5"),
                  "mCE": card.get("corruptions_mce"),
                  **{str(shift): measured.get("acc") for shift, measured in (card.get("shifts") or {}).items()}}  # fmt: skip
        for column, value in values.items():
            if number(value) is not None:
                rows.append({**identity, "metric": column, "value": number(value) / 100, "path": run.path, "seed": run.seed})
    if not rows:
        return []
    table = seed_stats(pd.DataFrame(rows), ["label", "model", "dataset", "threat model", "examples"], "metric", percent=True)
    note = "AutoAttack: robust accuracy under the standard protocol; the per-attack columns are the robust accuracy after each attack."
    return [PageTable("Benchmark cards (%)", table.rename(columns={"label": "card"}), note=note)]


def card_rows(cards: Mapping[str, Mapping], runs: pd.DataFrame) -> pd.DataFrame:
    """Each card as long rows (fractions, each with its condition), attributed (``subject``) to the run
    of the model it names, else to its own run."""
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
        for key, (metric, condition) in CARD_METRICS.items():
            value = number(card.get(key))
            if value is not None:
                rows.append({**common, "condition": condition, "metric": metric, "value": value / 100,
                             "dataset": corrupted if condition == "corruption" else common["dataset"],
                             "card_dataset": common["dataset"], "threat": threat_text(card)})  # fmt: skip
        for shift, measured in (card.get("shifts") or {}).items():  # each shift set's accuracy, as measured on its own test set
            value = number(measured.get("acc"))
            if value is not None:
                rows.append({**common, "condition": "shift", "metric": "accuracy", "value": value / 100, "dataset": shift,
                             "card_dataset": common["dataset"], "threat": threat_text(card)})  # fmt: skip
    return pd.DataFrame(rows)
