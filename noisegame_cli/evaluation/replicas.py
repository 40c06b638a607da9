"""Evaluation spread over the replicas of a model's ``tf.distribute`` strategy (``--strategy mirrored``).

A model loaded under ``strategy.scope()`` keeps that strategy (``model.distribute_strategy``).
``deal`` hands whole units of an evaluation's work (a batch of images to classify or to attack, a chunk
of AutoAttack points) to the strategy's replicas in turn, one unit per replica at a time
(``strategy.run``), and each replica computes its unit as a single device would: a batch is never cut
between replicas. So every number is the one a single device gives (the same kind of device), at any
number of replicas: classifying needs only forward passes, but an attack differentiates with respect to
its inputs and runs its own loops, which a Keras ``predict`` could not spread.

Only strategies local to one machine are dealt to (one device, mirrored); across machines an
evaluation is cut into shards instead (``evaluation.shards``), which need no communication. A model
of a multi-worker or TPU strategy (one trained so) is classified by Keras' own ``predict`` and attacked
on one device.
"""

from __future__ import annotations

import itertools
import math
import weakref
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
import tensorflow as tf

from noisegame_cli.data.sources import Split
from noisegame_cli.errors import UserError
from noisegame_cli.evaluation.adversarial import AttackResult, evaluate_attack

Unit = TypeVar("Unit")
Result = TypeVar("Result")


def strategy_of(model) -> tf.distribute.Strategy:
    return getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()


def local_replicas(model) -> int | None:
    """How many replicas ``deal`` spreads ``model``'s work over: 1 for one device, the devices of a
    mirrored strategy; None for a strategy across workers or on a TPU."""
    strategy = strategy_of(model)
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return strategy.num_replicas_in_sync
    if isinstance(strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy)) or strategy.num_replicas_in_sync != 1:
        return None
    return 1


def deal(model, units: Iterable[Unit], work: Callable[[Unit], Result]) -> Iterator[Result]:
    """``work(unit)`` for every unit, in the units' order. With several replicas, a round of one unit
    per replica runs at once, each on its replica's device (``strategy.run``); ``work`` gets the unit
    alone and must return host values (NumPy, plain Python)."""
    replicas = local_replicas(model) or 1
    if replicas == 1:
        yield from map(work, units)
        return
    strategy = strategy_of(model)
    units = iter(units)
    while chunk := list(itertools.islice(units, replicas)):
        results: list = [None] * len(chunk)

        def on_replica(round_units=chunk, round_results=results):
            index = int(tf.distribute.get_replica_context().replica_id_in_sync_group)
            if index < len(round_units):
                round_results[index] = work(round_units[index])

        strategy.run(on_replica)
        yield from results


def logits_function(model) -> Callable[[tf.Tensor], np.ndarray]:
    """``model``'s logits of a float batch (0..255) as a NumPy array, from one compiled call per model."""
    call = _COMPILED_CALLS.get(model)
    if call is None:
        call = _COMPILED_CALLS[model] = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    return lambda images: np.asarray(call(images))


_COMPILED_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # forgotten with their models


def evaluate_attack_on_replicas(model, data, spec, *, batch_size: int = 256, seed: int = 0, verbose: bool = True, evaluated=None):
    """``evaluation.adversarial.evaluate_attack`` with its batches dealt to the replicas of ``model``'s
    strategy (on one device: ``evaluate_attack`` itself). Each batch is attacked whole on one replica,
    and every point keeps its index in the set (its random start is keyed by it): the one-device numbers
    (accuracy exactly; the mean loss to float rounding, summed over batches)."""
    if (local_replicas(model) or 1) == 1:
        return evaluate_attack(model, data, spec, batch_size=batch_size, seed=seed, verbose=verbose, evaluated=evaluated)

    def attack(numbered_batch) -> tuple[AttackResult, int]:
        index, batch = numbered_batch
        images, labels = (np.asarray(part) for part in batch)
        result = evaluate_attack(model, Split(images, labels), spec, batch_size=len(labels), seed=seed, verbose=False,
                                 evaluated=evaluated, first_point=index * batch_size)  # fmt: skip
        return result, int(np.count_nonzero(labels != spec.target_class)) if spec.targeted else 0

    parts = list(deal(model, enumerate(data.batches(batch_size)), attack))
    if not parts:
        raise UserError("no images to attack")
    count = sum(result.count for result, _ in parts)
    correct = sum(round(result.accuracy * result.count) for result, _ in parts)
    loss = math.fsum(result.loss * result.count for result, _ in parts) / count
    target_rate = None
    if spec.targeted:
        candidates = sum(others for _, others in parts)
        hits = sum(round(result.target_rate * others) for result, others in parts if others)
        target_rate = hits / candidates if candidates else float("nan")
    return AttackResult(accuracy=correct / count, loss=loss, count=count, target_rate=target_rate)
