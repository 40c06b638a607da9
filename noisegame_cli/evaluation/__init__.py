"""The evaluation layer: the one place that answers "how is this measured".

- ``clean``: accuracy and loss on a split (``evaluate``, ``clean_measurement``, ``clean_rows`` for
  several models by role);
- ``corruption``: accuracy under corruptions, the published aggregates, mCE and relative mCE against
  one baseline policy (``evaluate_corruptions``: what eval-corruption and benchmark both measure);
- ``adversarial``: accuracy and loss under an attack over a whole split;
- ``autoattack``: AutoAttack over a whole set in resumable chunks;
- ``benchmark``: the robustness card of one model (``benchmark``, ``card``); ``card`` renders it;
- ``replicas``: work dealt whole to the replicas of a model's strategy (``--strategy mirrored``);
- ``parts`` and ``shards``: finished parts saved for ``--resume``, and shards of the points merged
  into one card (``--shard K/N``, ``--merge``).

Functions take models and splits (in memory or streamed) and return plain dicts, rows or frames;
commands only write what they return.
"""

from noisegame_cli.evaluation.adversarial import AttackResult, attack_condition, evaluate_attack
from noisegame_cli.evaluation.clean import (
    accuracy_by_role,
    classification_metrics,
    clean_measurement,
    clean_rows,
    evaluate,
    predict_logits,
    role_row,
    transformed_rows,
)
from noisegame_cli.evaluation.corruption import (
    aggregate_rows,
    corruption_rows,
    evaluate_corruptions,
    generated_corruption_rows,
)

__all__ = [
    "AttackResult",
    "accuracy_by_role",
    "aggregate_rows",
    "attack_condition",
    "classification_metrics",
    "clean_measurement",
    "clean_rows",
    "corruption_rows",
    "evaluate",
    "evaluate_attack",
    "evaluate_corruptions",
    "generated_corruption_rows",
    "predict_logits",
    "role_row",
    "transformed_rows",
]
