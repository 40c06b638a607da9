"""Adversarial attacks on Keras classifiers: images 0..255 as the models take them, budgets in the 0..1 scale.

- ``gradient``: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018), Linf and L2, built from small pieces;
- ``apgd``, ``fab``, ``square``: the attacks of AutoAttack (Croce & Hein 2020), Linf and L2;
- ``autoattack``: the standard protocol over them, with the sanity checks of ``checks``;
- ``spec``: ``AttackSpec`` (which attack, budget and labels) and ``run_attack`` on one batch.
"""

from noisegame_cli.attacks.apgd import apgd, apgd_targeted
from noisegame_cli.attacks.autoattack import (
    AUTOATTACK_ATTACKS,
    SETTINGS,
    VERSIONS,
    AutoAttackResult,
    Settings,
    autoattack,
)
from noisegame_cli.attacks.checks import Flag
from noisegame_cli.attacks.common import NORMS
from noisegame_cli.attacks.fab import fab, fab_minimum_norm
from noisegame_cli.attacks.gradient import PIXEL_MAX, check_budget, default_step_size, fgsm, fgsm_graph, pgd, pgd_graph
from noisegame_cli.attacks.spec import ATTACKS, AttackSpec, attack_labels, run_attack
from noisegame_cli.attacks.square import square

__all__ = [
    "ATTACKS",
    "AUTOATTACK_ATTACKS",
    "NORMS",
    "PIXEL_MAX",
    "SETTINGS",
    "VERSIONS",
    "AttackSpec",
    "AutoAttackResult",
    "Flag",
    "Settings",
    "apgd",
    "apgd_targeted",
    "attack_labels",
    "autoattack",
    "check_budget",
    "default_step_size",
    "fab",
    "fab_minimum_norm",
    "fgsm",
    "fgsm_graph",
    "pgd",
    "pgd_graph",
    "run_attack",
    "square",
]
