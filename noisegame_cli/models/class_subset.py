"""The class-subset protocol of ImageNet-R and ImageNet-A: a model of the 1000 ImageNet classes is
evaluated on a set of 200 of them by keeping only those 200 logits, in the set's class order, before the
argmax and before any attack, as the sets' papers evaluate (their scripts take ``output[:, mask]``).

``restricted_to_dataset(model, data)`` applies it where a dataset asks for it (``data.class_subset``):
a model with one output per class of the whole label space gets a ``LogitSubset`` layer on its logits;
a model with the dataset's own number of classes is taken as it is; any other is refused. Nothing is
restricted for a dataset without a class subset. The layer is saved with the model, so a restricted
model written to a ``.keras`` file loads restricted; ``class_protocol(model)`` says which classes a
model's predictions range over, for a card.
"""

from __future__ import annotations

from typing import Sequence

import keras

from noisegame_cli.errors import UserError


@keras.saving.register_keras_serializable(package="noisegame")
class LogitSubset(keras.layers.Layer):
    """Logits ``[batch, total]`` to the columns ``indices``, in that order: ``[batch, len(indices)]``.
    ``description`` says in words what the subset is (kept for cards)."""

    def __init__(self, indices: Sequence[int], description: str = "", **kwargs):
        super().__init__(**kwargs)
        self.indices = tuple(int(index) for index in indices)
        self.description = str(description)

    def call(self, logits):
        return keras.ops.take(logits, list(self.indices), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.indices))

    def get_config(self):
        return {**super().get_config(), "indices": list(self.indices), "description": self.description}


def restricted_to_dataset(model: keras.Model, data, *, what: str = "model") -> keras.Model:
    """``model`` as ``data`` (a dataset) evaluates it: restricted to the dataset's classes where the
    dataset's ``class_subset`` asks for it and the model predicts the whole label space; as it is
    otherwise. A ``UserError`` for a model of neither the dataset's classes nor the whole space."""
    subset = getattr(data, "class_subset", None)
    outputs = model.outputs[0].shape[-1]
    if subset is None or outputs == len(subset.indices):
        return model
    if outputs != subset.total:
        count = len(subset.indices)
        raise UserError(f"{what} predicts {outputs} classes but {data.name} takes a model of its {count} classes "
                        f"or of the {subset.total} {subset.space} classes (restricted to its {count})")  # fmt: skip
    # the model's own graph, extended: its layers stay visible (a SavedModel's TFSMLayer among them)
    logits = LogitSubset(subset.indices, subset.protocol, name="class_subset")(model.outputs[0])
    return keras.Model(model.inputs, logits, name=model.name)


def class_protocol(model: keras.Model) -> str:
    """Which classes ``model``'s predictions range over, in words for a card: the subset it is
    restricted to (``"200-class subset of the 1000 ImageNet classes"``), else all its classes."""
    last = model.layers[-1] if model.layers else None
    if isinstance(last, LogitSubset):
        return last.description
    return f"all {model.outputs[0].shape[-1]} classes of the model"
