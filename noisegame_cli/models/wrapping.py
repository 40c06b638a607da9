"""What a foreign model expects, wrapped once so that it keeps this project's contract (0..255 in, logits out).

- ``InputScaling``: the input a model was trained on (an ``InputScale``: ``--input-range``,
  ``--mean``, ``--std``; see ``noisegame_cli.input_scale``) as a map from 0..255 pixels, as one serialisable Keras layer put in front of the
  user's model; attacks, budgets (0..1 image scale), corruptions and gradients see 0..255 pixels as
  everywhere else, and the gradient flows through the map.
- ``as_logits``: a model that returns probabilities (a softmax last layer, or non-negative rows that
  sum to 1) turned into one that returns logits: the tensor before its softmax where the model shows
  it, else the log of the probabilities. Attacks then never work through a saturated softmax.
- ``wrapping_of``: what was wrapped, read back from the model's own layers (for cards and records).
"""

from __future__ import annotations

import keras
import numpy as np

from noisegame_cli.budgets import PIXEL_MAX
from noisegame_cli.input_scale import DEFAULT_RANGE, INPUT_RANGES, InputScale

PROBABILITY_TOLERANCE = 1e-4  # how far from 1 a row of float32 probabilities may sum
# The smallest probability the log keeps (float32's smallest normal number): below it log() would
# be -inf and its gradient undefined.
SMALLEST_PROBABILITY = float(np.finfo(np.float32).tiny)


@keras.saving.register_keras_serializable(package="noisegame")
class InputScaling(keras.layers.Layer):
    """0..255 pixels mapped to what a model expects (see ``InputScale``); differentiable."""

    def __init__(self, input_range: str = DEFAULT_RANGE, mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = InputScale(input_range, mean, std)

    def call(self, images):
        low, high = INPUT_RANGES[self.scale.input_range]
        x = keras.ops.cast(images, "float32") * ((high - low) / PIXEL_MAX) + low
        if self.scale.mean is not None:
            mean = keras.ops.convert_to_tensor(np.asarray(self.scale.mean, np.float32))
            std = keras.ops.convert_to_tensor(np.asarray(self.scale.std, np.float32))
            x = (x - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        scale = self.scale
        return {**super().get_config(), "input_range": scale.input_range,
                "mean": None if scale.mean is None else list(scale.mean), "std": None if scale.std is None else list(scale.std)}  # fmt: skip


# How a model's probabilities became logits (the ``method`` of ``ProbabilityLogits``).
BEFORE_SOFTMAX = "before-softmax"
LOG = "log"
OUTPUT_NOTES = {
    BEFORE_SOFTMAX: "its last layer is a softmax: the attacks use the logits before it",
    LOG: "its outputs are probabilities (non-negative, rows summing to 1): the attacks use their log as logits",
}


@keras.saving.register_keras_serializable(package="noisegame")
class ProbabilityLogits(keras.layers.Layer):
    """Logits of a model that returned probabilities: ``before-softmax`` passes on the tensor its
    softmax was given (the layer marks what was done), ``log`` takes the log of the probabilities."""

    def __init__(self, method: str = LOG, **kwargs):
        super().__init__(**kwargs)
        if method not in OUTPUT_NOTES:
            raise ValueError(f"method must be one of {tuple(OUTPUT_NOTES)}")
        self.method = method

    def call(self, outputs):
        outputs = keras.ops.cast(outputs, "float32")
        if self.method == BEFORE_SOFTMAX:
            return outputs
        return keras.ops.log(keras.ops.maximum(outputs, SMALLEST_PROBABILITY))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "method": self.method}


def looks_like_probabilities(outputs: np.ndarray, tolerance: float = PROBABILITY_TOLERANCE) -> bool:
    """Whether a batch of outputs ``[N, classes]`` is non-negative with rows summing to 1."""
    outputs = np.asarray(outputs, np.float64)
    return bool(outputs.size) and outputs.min() >= 0.0 and bool(np.all(np.abs(outputs.sum(axis=-1) - 1.0) < tolerance))


def _is_softmax(layer) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", None) == "softmax"


def _before_softmax(model: keras.Model) -> keras.Model | None:
    """``model`` ending at the input of its final softmax, or None where its structure does not show one
    (a subclassed model, a SavedModel, a softmax inside a nested model or a custom layer)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    layer = getattr(getattr(outputs[0], "_keras_history", None), "operation", None)  # the layer that made the output
    if layer is None or not _is_softmax(layer):
        return None
    try:
        before = layer.input
    except (AttributeError, ValueError):  # a layer called more than once has no single input
        return None
    if not hasattr(before, "shape"):
        return None
    if not isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):  # Dense, Conv...: the same layer without its activation
        twin = layer.__class__.from_config({**layer.get_config(), "activation": "linear", "name": f"{layer.name}_logits"})
        before = twin(before)
        twin.set_weights(layer.get_weights())
    logits = ProbabilityLogits(BEFORE_SOFTMAX, name="logits_before_softmax")(before)
    return keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, logits, name=model.name)


def as_logits(model: keras.Model, probe: np.ndarray) -> tuple[keras.Model, str | None]:
    """``model`` returning logits, and a note saying what was done (None when it returned logits already).

    ``probe`` is a small batch of inputs as ``model`` takes them, on which its outputs are looked at."""
    cut = _before_softmax(model)
    if cut is not None:
        return cut, OUTPUT_NOTES[BEFORE_SOFTMAX]
    if not looks_like_probabilities(keras.ops.convert_to_numpy(model(probe, training=False))):
        return model, None
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="images")
    logits = ProbabilityLogits(LOG, name="log_probabilities")(model(inputs))
    return keras.Model(inputs, logits, name=model.name), OUTPUT_NOTES[LOG]


def with_input_scale(model: keras.Model, scale: InputScale) -> keras.Model:
    """``model`` (which expects ``scale``'s input) behind ``InputScaling``, so it takes 0..255 pixels;
    ``model`` itself when it takes them already."""
    if scale.is_pixels:
        return model
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="images")
    scaled = InputScaling(scale.input_range, scale.mean, scale.std, name="input_scaling")(inputs)
    return keras.Model(inputs, model(scaled), name=model.name)


def input_core(model: keras.Model) -> keras.Model:
    """The model behind a ``with_input_scale`` wrapper (``model`` itself where there is none)."""
    layers = model.layers
    if len(layers) == 3 and isinstance(layers[1], InputScaling) and isinstance(layers[2], keras.Model):
        return layers[2]
    return model


def rescaled(model: keras.Model, scale: InputScale) -> keras.Model:
    """The same user model as ``model`` behind another input scale (for the silent-failure check)."""
    return with_input_scale(input_core(model), scale)


def layers_within(model: keras.Model):
    """Every layer of ``model``, and of the models nested in it."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from layers_within(layer)


def wrapping_of(model: keras.Model) -> dict:
    """What was wrapped around the user's model, read from its layers: ``input_range``, ``mean``,
    ``std``, ``outputs`` (``logits``, or how probabilities became logits), ``preprocess_input``
    (the ``keras.applications`` network whose own preprocessing is inside), ``signature`` (the
    SavedModel endpoint called). A small dict for cards and records."""
    from noisegame_cli.models.applications import ApplicationPreprocessing

    scale, outputs, application, signature = InputScale(), "logits", None, None
    for layer in layers_within(model):
        if isinstance(layer, InputScaling):
            scale = layer.scale
        elif isinstance(layer, ProbabilityLogits):
            outputs = f"probabilities, {'logits before the softmax' if layer.method == BEFORE_SOFTMAX else 'log taken'}"
        elif isinstance(layer, ApplicationPreprocessing):
            application = layer.application
        elif isinstance(layer, keras.layers.TFSMLayer):
            signature = layer.call_endpoint
    return {"input_range": scale.input_range, "mean": None if scale.mean is None else list(scale.mean),
            "std": None if scale.std is None else list(scale.std), "outputs": outputs, "preprocess_input": application,
            "signature": signature}  # fmt: skip


def describe_wrapping(model: keras.Model) -> str:
    """``wrapping_of`` as one line for a card."""
    record = wrapping_of(model)
    scale = InputScale(record["input_range"], record["mean"], record["std"])
    parts = [f"input: {scale.describe()}" + (f" ({record['preprocess_input']}'s preprocess_input inside)" if record["preprocess_input"] else "")]
    parts.append(f"outputs: {record['outputs']}")
    if record["signature"]:
        parts.append(f"SavedModel signature: {record['signature']}")
    return "; ".join(parts)
