"""The evaluation layer: the one place that answers "how is this measured".

- ``clean``: accuracy and loss on a split (``evaluate``, ``clean_rows`` for several models by role);
- ``corruption``: accuracy under corruptions, the published aggregates, mCE and relative mCE, and the
  one check of corruption names (``noise``, ``common`` and ``all`` included);
- ``adversarial``: accuracy and loss under an attack over a whole split.

Functions take models and splits (in memory or streamed) and return plain dicts, rows or frames;
commands only write what they return.
"""

from noisegame_cli.evaluation.adversarial import AttackResult, attack_condition, evaluate_attack
from noisegame_cli.evaluation.clean import accuracy_by_role, classification_metrics, clean_rows, evaluate, predict_logits, role_row
from noisegame_cli.evaluation.corruption import (
    CORRUPTION_GROUPS,
    aggregate_rows,
    check_corruptions,
    corruption_rows,
    expand_corruptions,
    generated_corruption_rows,
)

__all__ = [
    "CORRUPTION_GROUPS",
    "AttackResult",
    "accuracy_by_role",
    "aggregate_rows",
    "attack_condition",
    "check_corruptions",
    "classification_metrics",
    "clean_rows",
    "corruption_rows",
    "evaluate",
    "evaluate_attack",
    "expand_corruptions",
    "generated_corruption_rows",
    "predict_logits",
    "role_row",
]
