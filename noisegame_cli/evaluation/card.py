"""The robustness card of a benchmark: RobustBench's model-info field names, accuracies in percent
with two decimals as its leaderboards print them (``card``), the same as a readable page
(``card_markdown``), and both written into the run directory (``write_card``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from noisegame_cli.budgets import budget_text
from noisegame_cli.runs import CARD_FILE, write_text_atomically

CARD_MARKDOWN = "card.md"


def percent(value: float | None) -> float | None:
    """A fraction as RobustBench prints it: a percentage with two decimals."""
    return None if value is None or not np.isfinite(value) else round(100.0 * float(value), 2)


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card as a Markdown page."""
    eps = budget_text(card["eps"], card["norm"])
    lines = [
        f"# Robustness card: {card['model']} on {card['dataset']}",
        "",
        f"Run `{card['name']}`, model `{card['model_path']}`, first {card['n_examples']} test images, seed {card['seed']}, "
        f"noisegame {card['versions'].get('noisegame') or '?'} (commit {(card['git_commit'] or 'unknown')[:12]}).",
        *([f"Preprocessing: {card['preprocessing']}."] if card.get("preprocessing") else []),
        "",
        "| measure | value |",
        "|---|---|",
        f"| clean accuracy | {_cell(card['clean_acc'])} |",
        f"| AutoAttack ({card['version']}, {card['threat_model']}, eps {eps}) | "
        + ("not run |" if card["autoattack_acc"] is None else f"{_cell(card['autoattack_acc'])} |"),
    ]
    if card["corruptions_source"] is None:
        lines.append("| corruptions | not run |")
    else:
        lines += [
            f"| corruptions, mean over 15 x 5 ({card['corruptions_source']}) | {_cell(card['corruptions_acc'])} |",
            f"| corruptions, mean over 19 at severity 5 | {_cell(card['corruptions_acc_19_sev5'])} |",
            f"| corruptions, mCE{' (vs ' + card['corruptions_baseline'] + ')' if card.get('corruptions_baseline') else ''} | "
            f"{_cell(card['corruptions_mce'])} |",
        ]
    if card.get("shifts"):
        lines += ["", f"Natural distribution shifts, beside the clean accuracy ({_cell(card['clean_acc'])}) as the shift papers compare "
                  "them:", "", "| shift set | accuracy | share of the clean accuracy kept | images | protocol |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {_cell(shift['acc'])} | {'—' if shift['kept'] is None else format(shift['kept'], '.2f')} | "
                  f"{shift['n_examples']} | {shift['protocol']} |" for name, shift in card["shifts"].items()]  # fmt: skip
    if card["autoattack_per_attack"]:
        lines += ["", "Robust accuracy after each attack (each runs on the points still classified correctly):", "",
                  "| attack | robust accuracy |", "|---|---|"]  # fmt: skip
        lines += [f"| {attack} | {_cell(value)} |" for attack, value in card["autoattack_per_attack"].items()]
    lines += ["", "## Sanity checks", ""]
    lines += [f"- {flag}" for flag in card["flags"]] or ["- no warnings" if card["autoattack_acc"] is not None else "- AutoAttack not run"]
    lines += ["", "A dash marks a measure that could not be computed (a protocol not fully covered, no mCE baseline).", ""]
    return "\n".join(lines)


def write_card(directory: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """``card.json`` (keys in the card's order) and ``card.md``, each replaced atomically."""
    write_text_atomically(Path(directory) / CARD_FILE, json.dumps(payload, indent=2) + "\n")
    write_text_atomically(Path(directory) / CARD_MARKDOWN, card_markdown(payload))
