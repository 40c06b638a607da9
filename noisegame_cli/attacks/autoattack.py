"""AutoAttack (Croce & Hein, ICML 2020): the standard protocol of robustness evaluation, natively in TensorFlow.

``autoattack`` measures the clean accuracy, then runs the attacks of a version in order, each only on the
points still classified correctly, and keeps for every point the first adversarial image found. Versions
and settings as in the original:

- ``standard``: APGD-CE (1 restart), APGD-T (9 target classes, 1 restart each), FAB-T (9 target classes,
  1 restart each), Square (5 000 queries); 100 iterations for APGD and FAB;
- ``plus``: APGD-CE and APGD-DLR (5 restarts each), FAB (untargeted, 5 restarts), Square, APGD-T, FAB-T;
- ``rand``, for randomised defences: APGD-CE and APGD-DLR, 1 restart, gradients averaged over 20 draws;
- ``fast``, not the original's and not its standard protocol: APGD-CE, then APGD-T against the 3 target
  classes whose linearised decision boundary is nearest (``apgd-t-malt``: MALT's targeting, Melamed,
  Yehudai and Shamir, NeurIPS 2024), for sweeps where a much cheaper upper bound is worth more than the
  last points; its result carries a ``version`` flag saying so;
- ``custom``: the attacks named in ``attacks``, with the ``plus`` settings (the original's defaults).

Before the attacks the checks of ``checks`` run on the first batch (the randomness check only outside
``rand``), and after them the check that Square did not break points the gradient attacks missed; their
warnings are printed (with ``verbose``) and returned in the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf

from noisegame_cli.attacks import checks
from noisegame_cli.attacks.apgd import apgd, apgd_targeted
from noisegame_cli.attacks.common import as_point_ids, check_norm, lp_norm, pixel_logits
from noisegame_cli.attacks.fab import fab
from noisegame_cli.attacks.gradient import check_budget
from noisegame_cli.attacks.square import square
from noisegame_cli.checks import chosen
from noisegame_cli.errors import UserError

VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
    "fast": ("apgd-ce", "apgd-t-malt"),
    "custom": (),
}


@dataclass(frozen=True)
class Settings:
    """How the attacks of the protocol run (the defaults are the original's, as in version ``plus``)."""

    steps: int = 100  # APGD and FAB iterations
    apgd_restarts: int = 5  # APGD-CE and APGD-DLR
    fab_restarts: int = 5  # untargeted FAB
    targeted_restarts: int = 1  # APGD-T and FAB-T, per target class
    n_target_classes: int = 9  # APGD-T and FAB-T
    eot_iter: int = 1  # forward passes averaged per APGD gradient
    square_queries: int = 5000
    square_p_init: float = 0.8


SETTINGS = {
    "standard": Settings(apgd_restarts=1, fab_restarts=1),
    "plus": Settings(),
    "rand": Settings(apgd_restarts=1, eot_iter=20),
    "fast": Settings(apgd_restarts=1, n_target_classes=3),
    "custom": Settings(),
}

AttackRunner = Callable[..., tf.Tensor]  # (model, images, labels, eps, norm, seed, point_ids, settings) -> images


def _apgd_ce(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return apgd(
        model, images, labels, eps, norm=norm, loss="ce", steps=settings.steps, restarts=settings.apgd_restarts,
        eot_iter=settings.eot_iter, seed=seed, point_ids=point_ids,
    )  # fmt: skip


def _apgd_dlr(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return apgd(
        model, images, labels, eps, norm=norm, loss="dlr", steps=settings.steps, restarts=settings.apgd_restarts,
        eot_iter=settings.eot_iter, seed=seed, point_ids=point_ids,
    )  # fmt: skip


def _apgd_t(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return apgd_targeted(
        model, images, labels, eps, norm=norm, steps=settings.steps, restarts=settings.targeted_restarts,
        n_target_classes=settings.n_target_classes, eot_iter=settings.eot_iter, seed=seed, point_ids=point_ids,
    )  # fmt: skip


def _apgd_t_malt(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return apgd_targeted(
        model, images, labels, eps, norm=norm, steps=settings.steps, restarts=settings.targeted_restarts,
        n_target_classes=settings.n_target_classes, ranking="malt", eot_iter=settings.eot_iter, seed=seed,
        point_ids=point_ids,
    )  # fmt: skip


def _fab(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return fab(
        model, images, labels, eps, norm=norm, targeted=False, steps=settings.steps, restarts=settings.fab_restarts,
        seed=seed, point_ids=point_ids,
    )  # fmt: skip


def _fab_t(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return fab(
        model, images, labels, eps, norm=norm, targeted=True, n_target_classes=settings.n_target_classes,
        steps=settings.steps, restarts=settings.targeted_restarts, seed=seed, point_ids=point_ids,
    )  # fmt: skip


def _square(model, images, labels, eps, norm, seed, point_ids, settings: Settings):
    return square(
        model, images, labels, eps, norm=norm, queries=settings.square_queries, p_init=settings.square_p_init,
        seed=seed, point_ids=point_ids,
    )  # fmt: skip


AUTOATTACK_ATTACKS: dict[str, AttackRunner] = {
    "apgd-ce": _apgd_ce,
    "apgd-dlr": _apgd_dlr,
    "apgd-t": _apgd_t,
    "fab": _fab,
    "fab-t": _fab_t,
    "square": _square,
    "apgd-t-malt": _apgd_t_malt,
}
GRADIENT_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "apgd-t-malt")


@dataclass(frozen=True)
class AutoAttackResult:
    """What ``autoattack`` measured. ``robust_accuracy`` maps "clean" and then each attack, in the order
    run, to the accuracy after it (an attack left with no points to attack keeps the accuracy it found);
    ``broken_by`` names per point the attack that broke it, "clean" where the clean image was already
    misclassified and "" where no attack succeeded."""

    version: str
    norm: str
    eps: float
    attacks: tuple[str, ...]
    clean_accuracy: float
    robust_accuracy: dict[str, float]
    broken_by: np.ndarray
    flags: tuple[checks.Flag, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    max_perturbation: float = 0.0  # the largest change in ``norm``, 0..1 scale

    @property
    def robust(self) -> float:
        """The final robust accuracy."""
        return self.robust_accuracy[self.attacks[-1]] if self.attacks else self.clean_accuracy


def attack_names(version: str, attacks=None) -> tuple[str, ...]:
    """The attacks of ``version`` in order; ``attacks`` only (and then required) with ``custom``."""
    chosen(version, VERSIONS, "AutoAttack version")
    if version != "custom":
        if attacks:
            raise UserError(f'attacks are chosen by the version; use version="custom" to run {list(attacks)}')
        return VERSIONS[version]
    names = tuple(attacks or ())
    if not names:
        raise UserError('version="custom" needs attacks=[...], e.g. ["apgd-ce", "square"]')
    return chosen(names, AUTOATTACK_ATTACKS, "attack")


def _predict(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([
        np.argmax(pixel_logits(model, tf.constant(images[start : start + batch_size])), axis=-1)
        for start in range(0, len(images), batch_size)
    ])  # fmt: skip


def run_checks(model, images, labels, names, version: str, settings: Settings) -> list[checks.Flag]:
    """The checks that come before the attacks, on one batch."""
    found = [checks.check_probabilities(model, images)]
    if version != "rand":
        found.append(checks.check_randomized(model, images, labels))
    if any(name in GRADIENT_ATTACKS for name in names):
        found.append(checks.check_zero_gradients(model, images, labels))
    classes = int(model(tf.constant(images[:1]), training=False).shape[-1])
    found.append(checks.check_classes(classes, names, settings.n_target_classes, settings.n_target_classes))
    return [flag for flag in found if flag is not None]


def _largest_change(adversarial, original, norm) -> float:
    return float(tf.reduce_max(lp_norm(tf.constant((adversarial - original) / 255.0), norm)))


@dataclass
class _Tally:
    """What the protocol knows of every point so far: its adversarial image, whether it still resists,
    and which attack broke it."""

    adversarial: np.ndarray
    robust: np.ndarray
    broken_by: np.ndarray

    def record(self, points: np.ndarray, found: np.ndarray, fooled: np.ndarray, name: str) -> None:
        self.adversarial[points[fooled]] = found[fooled]
        self.robust[points[fooled]] = False
        self.broken_by[points[fooled]] = name


def _run_attack(model, name, tally: _Tally, pixels, labels, point_ids, eps, norm, seed, settings, batch_size, say):
    """One attack of the protocol, batch by batch, on the points that still resist. Its draws are keyed
    by (seed, the attack, each point's index): the same in any batch."""
    remaining = np.flatnonzero(tally.robust)
    batches = range(0, remaining.size, batch_size)
    attack_seed = (*np.ravel(seed), list(AUTOATTACK_ATTACKS).index(name))
    for batch_index, start in enumerate(batches):
        points = remaining[start : start + batch_size]
        found = AUTOATTACK_ATTACKS[name](
            model, pixels[points], labels[points], eps, norm, attack_seed, point_ids[points], settings
        )
        found = np.asarray(found, dtype=np.float32)
        fooled = _predict(model, found, batch_size) != labels[points]
        tally.record(points, found, fooled, name)
        say(
            f"{name} - batch {batch_index + 1}/{len(batches)} - {fooled.sum()} of {len(points)} points broken"
            f" - {tally.robust.sum()} left, robust accuracy so far {tally.robust.mean():.2%}"
        )


def autoattack(
    model,
    images,
    labels,
    eps: float,
    norm: str = "Linf",
    version: str = "standard",
    attacks=None,
    seed=0,
    batch_size: int = 500,
    verbose: bool = True,
    *,
    settings: Settings | None = None,
    point_ids=None,
) -> tuple[np.ndarray, AutoAttackResult]:
    """Run AutoAttack on ``images`` (0..255, [N, H, W, C], any dtype) with true ``labels`` under an ``eps``
    budget in ``norm`` ("Linf" or "L2", 0..1 scale: 8/255, 0.5). Returns (the adversarial images as float32
    0..255, where points no attack broke keep their clean image, and an ``AutoAttackResult``).

    ``batch_size`` points go to an attack at a time; ``settings`` replaces the version's settings (fewer
    iterations for a quick look, say; the result is then not comparable with published numbers).
    ``point_ids`` (int [N], ``arange(N)`` by default) are the points' indices in the evaluated set: every
    random draw of every attack comes from (``seed``, the attack, its restart or target, the point's
    index), and every model call runs on a canonical number of rows, so a point's adversarial image and
    ``broken_by`` are the same at any ``batch_size`` and in any chunk or shard that holds it."""
    check_norm(norm)
    eps = check_budget(eps, norm=norm)
    names = attack_names(version, attacks)
    settings = SETTINGS[version] if settings is None else settings
    if int(batch_size) < 1:
        raise UserError(f"the batch size must be >= 1, got {batch_size}")
    pixels = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(pixels) != len(labels) or len(labels) == 0:
        raise UserError(
            f"AutoAttack needs as many labels as images, and at least one: got {len(pixels)} and {len(labels)}"
        )
    point_ids = as_point_ids(point_ids, len(labels))
    say = print if verbose else (lambda *_: None)

    say(f"using {version} version including {', '.join(names)}")
    flags = run_checks(model, pixels[:batch_size], labels[:batch_size], names, version, settings)
    version_flag = checks.check_version(version)
    if version_flag is not None:
        flags.insert(0, version_flag)
    for flag in flags:
        say(flag)

    robust = _predict(model, pixels, batch_size) == labels
    broken_by = np.where(robust, "", "clean").astype(f"<U{max(map(len, AUTOATTACK_ATTACKS))}")
    tally = _Tally(pixels.copy(), robust, broken_by)
    accuracy = {"clean": float(robust.mean())}
    seconds: dict[str, float] = {}
    say(f"initial accuracy: {accuracy['clean']:.2%}")
    started = time.perf_counter()
    for name in names:
        attack_started = time.perf_counter()
        _run_attack(model, name, tally, pixels, labels, point_ids, eps, norm, seed, settings, batch_size, say)
        accuracy[name] = float(tally.robust.mean())
        seconds[name] = time.perf_counter() - attack_started
        total = time.perf_counter() - started
        say(f"robust accuracy after {name.upper()}: {accuracy[name]:.2%} (total time {total:.1f} s)")

    square_flag = checks.check_square(accuracy)
    if square_flag is not None:
        flags.append(square_flag)
        say(square_flag)
    adversarial = tally.adversarial
    largest = _largest_change(adversarial, pixels, norm)
    say(
        f"max {norm} perturbation: {largest:.5f}, nan in images: {int(np.isnan(adversarial).sum())}, "
        f"max: {adversarial.max():.1f}, min: {adversarial.min():.1f}"
    )
    say(f"robust accuracy: {accuracy[names[-1]]:.2%}")
    result = AutoAttackResult(
        version=version, norm=norm, eps=eps, attacks=names, clean_accuracy=accuracy["clean"],
        robust_accuracy=accuracy, broken_by=tally.broken_by, flags=tuple(flags), seconds=seconds,
        max_perturbation=largest,
    )  # fmt: skip
    return adversarial, result
