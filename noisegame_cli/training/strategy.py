"""tf.distribute strategies by name. Batch sizes stay global: Keras splits each batch over replicas."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from noisegame_cli.errors import UserError


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (local GPUs, or two CPU replicas without one),
    ``multi-worker`` (MultiWorkerMirroredStrategy from ``TF_CONFIG``) or ``tpu``."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([device.name for device in cpu_replicas(2)])
    if name == "multi-worker":
        read_tf_config()
        return KerasMultiWorkerStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise UserError(f"no TPU available: {str(error).splitlines()[0]}") from None
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"unknown strategy {name!r}")


def read_tf_config() -> dict:
    """The cluster and task ``TF_CONFIG`` describes (what ``--strategy multi-worker`` needs)."""
    if not os.environ.get("TF_CONFIG"):
        raise UserError("--strategy multi-worker needs TF_CONFIG (cluster and task of this worker) in the environment")
    try:
        return json.loads(os.environ["TF_CONFIG"])
    except ValueError:
        raise UserError("TF_CONFIG is not valid JSON") from None


def scale_for_replicas(loss):
    """Divide a replica-local mean loss by the number of replicas, so that the gradients summed
    by a ``tf.distribute`` strategy equal those of the global-batch mean."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / tf.cast(replicas, loss.dtype) if replicas > 1 else loss


class KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose ``reduce`` accepts what Keras 3's ``fit`` passes it.

    Keras (3.15) reduces the first ``(images, labels)`` batch as one nested structure to build the
    model, and every step's scalar logs with ``axis=0``; the strategy's ``reduce`` takes neither (a
    single value, and an axis the value has), so ``fit`` fails before its first step. Here each value
    of a structure is reduced on its own, and a scalar is reduced across replicas only.
    """

    def reduce(self, reduce_op, value, axis):
        reduce_one = super().reduce

        def reduce_value(one):
            local = self.experimental_local_results(one)[0]
            return reduce_one(reduce_op, one, None if tf.convert_to_tensor(local).shape.rank == 0 else axis)

        return tf.nest.map_structure(reduce_value, value)


def cpu_replicas(count: int) -> list[tf.config.LogicalDevice]:
    """Split the CPU into ``count`` logical devices if TensorFlow has not started yet.

    Once TensorFlow has initialised its devices the split can no longer change; the strategy then
    mirrors over the logical CPUs that exist (one, in a process that already ran TensorFlow work).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        pass
    return tf.config.list_logical_devices("CPU")
