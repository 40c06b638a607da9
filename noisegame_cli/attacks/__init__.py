"""Adversarial attacks on Keras classifiers: images 0..255 as the models take them, budgets in the 0..1 scale.

- ``gradient``: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018), built from small pieces;
- ``spec``: ``AttackSpec`` (which attack, budget and labels) and ``run_attack`` on one batch.
"""

from noisegame_cli.attacks.gradient import PIXEL_MAX, check_budget, default_step_size, fgsm, fgsm_graph, pgd, pgd_graph
from noisegame_cli.attacks.spec import ATTACKS, AttackSpec, attack_labels, run_attack

__all__ = [
    "ATTACKS",
    "PIXEL_MAX",
    "AttackSpec",
    "attack_labels",
    "check_budget",
    "default_step_size",
    "fgsm",
    "fgsm_graph",
    "pgd",
    "pgd_graph",
    "run_attack",
]
