"""Published reference rows (RobustBench's leaderboard, in percent), shown apart from what was
measured here and only beside a measurement they compare with."""

from __future__ import annotations

import re
from typing import Sequence

import pandas as pd

from noisegame_cli.report.cells import PageTable, epsilon_text

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
    aggregates = ["mean_accuracy_15x5", "mean_accuracy_19_sev5", "mean_accuracy", "mce"]
    corrupted = rows[(rows["condition"] == "corruption") & rows["metric"].isin(aggregates)]
    published = []
    for ref in REFERENCES:
        if ref["threat_model"] == "corruptions":
            applies = any(_same_dataset(d, ref["dataset"] + "-c") for d in corrupted.get("dataset", [])) or any(
                _same_dataset(c.card_dataset, ref["dataset"]) and c.condition == "corruption" for c in cards.itertuples())
            threat, robust_column = "corruptions (CIFAR-10-C)", "corruption accuracy"
        else:
            threat = f"{ref['threat_model']} ε={epsilon_text(ref['eps'])}"
            applies = any(c.condition == "attack" and _same_dataset(c.card_dataset, ref["dataset"]) and c.threat == threat
                          for c in cards.itertuples())  # fmt: skip
            robust_column = "AutoAttack"
        if applies:
            published.append({"published model": ref["name"], "architecture": ref["architecture"], "dataset": ref["dataset"], "threat model": threat,
                              "clean": "" if ref["clean"] is None else f"{ref['clean']:.2f}", "AutoAttack": "", "corruption accuracy": "",
                              "source": "RobustBench (published)"} | {robust_column: f"{ref['robust']:.2f}"})  # fmt: skip
    if not published:
        shown = ", ".join(sorted(set(datasets))) or "no dataset"
        return None, ("No published reference row applies: the RobustBench rows this report knows are for CIFAR-10 "
                      f"(Linf 8/255, L2 0.5 and CIFAR-10-C), and these runs measured {shown}.")  # fmt: skip
    table = pd.DataFrame(published)
    table = table[[c for c in table.columns if (table[c] != "").any()]]
    note = ("Published numbers in percent, not measured here; they compare with a measured row only under the same "
            "dataset, threat model and protocol (AutoAttack standard, the first 10 000 test images; the official CIFAR-10-C files).")
    return PageTable("Published reference rows (RobustBench, not measured here)", table, note=note), ""
