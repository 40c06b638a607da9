"""Loading saved classifiers of any kind and checking that they fit the data.

``--model-path`` (and ``--teacher``) take:

- a ``.keras`` file, or a run directory of this project (its ``model.keras``);
- a legacy ``.h5`` Keras model;
- a TensorFlow SavedModel folder (``saved_model.pb``), called through ``keras.layers.TFSMLayer``.
  Gradients flow through it, so it can be evaluated and attacked, but it cannot be trained or
  fine-tuned (its variables are frozen graph state): commands that fine-tune refuse it.

Every model must take 0..255 images and return logits (one ``[batch, classes]`` output).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from noisegame_cli.errors import UserError
from noisegame_cli.models.class_subset import restricted_to_dataset
from noisegame_cli.runs import run_name_of

MODEL_FILE = "model.keras"
SAVED_MODEL_FILE = "saved_model.pb"


def resolve_model_file(path: str | os.PathLike) -> Path:
    """A model file or SavedModel folder: the path itself, or the ``model.keras`` inside a run directory."""
    path = Path(path)
    if path.is_dir() and not (path / SAVED_MODEL_FILE).is_file():
        path = path / MODEL_FILE
    if not path.exists():
        raise UserError(f"no saved model at {path} (a .keras or .h5 file, a SavedModel folder, or a run directory)")
    return path


def load_saved(path: str | os.PathLike) -> keras.Model:
    """Load any saved model of the kinds listed above, without its training state."""
    import noisegame_cli.models  # noqa: F401  (registers this project's custom layers before deserialising)

    model_file = resolve_model_file(path)
    try:
        if model_file.is_dir():
            return _saved_model_classifier(model_file)
        return keras.models.load_model(model_file, compile=False)
    except UserError:
        raise
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise UserError(f"{model_file} is not a readable Keras model ({type(error).__name__}: {error})".splitlines()[0]) from None


def load_classifier(path: str | os.PathLike) -> keras.Model:
    """Load a saved classifier (logits out, rank-2) without its training state."""
    model_file = resolve_model_file(path)
    model = load_saved(model_file)
    if not isinstance(model, keras.Model) or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise UserError(f"{model_file} is not a classifier (expected one [batch, classes] output)")
    return model


def _saved_model_classifier(folder: Path) -> keras.Model:
    """A SavedModel's serving signature as a Keras model (image in, logits out)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(folder)).signatures.get("serving_default")
    if signature is None:
        raise UserError(f"{folder}: the SavedModel has no serving_default signature")
    inputs = list(signature.structured_input_signature[1].values())
    outputs = list(signature.structured_outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{folder}: the SavedModel must take one image tensor and return one logits tensor")
    shape = inputs[0].shape
    layer = keras.layers.TFSMLayer(str(folder), call_endpoint="serving_default", name="saved_model")
    images = keras.Input(shape=tuple(shape[1:]), name="images")
    logits = layer(images)
    logits = logits[outputs[0]] if isinstance(logits, dict) else logits
    return keras.Model(images, logits, name=folder.name)


def is_trainable_copyable(model: keras.Model) -> bool:
    return not any(isinstance(layer, keras.layers.TFSMLayer) for layer in model.layers)


def copy_classifier(model: keras.Model) -> keras.Model:
    """A trainable copy of ``model`` with its weights; ``model`` itself stays as it was."""
    if not is_trainable_copyable(model):
        raise UserError(f"{model.name} is a SavedModel: it can be evaluated and attacked, but not fine-tuned; "
                        "save it as a .keras model to train it")  # fmt: skip
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = True
    return copy


def check_fits(model: keras.Model, image_shape: tuple[int, ...], num_classes: int, *, what: str = "model") -> None:
    """Raise a ``UserError`` unless ``model`` takes ``image_shape`` images and predicts ``num_classes`` classes."""
    classes = model.outputs[0].shape[-1]
    if classes != num_classes:
        raise UserError(f"{what} predicts {classes} classes but the dataset has {num_classes}")
    expected = tuple(model.inputs[0].shape[1:])
    if any(e is not None and e != got for e, got in zip(expected, image_shape)) or len(expected) != len(image_shape):
        raise UserError(f"{what} takes images of shape {list(expected)} but the dataset has {list(image_shape)}")


def load_checked(path: str | os.PathLike, data, *, what: str | None = None) -> keras.Model:
    """Load a saved classifier and check it fits ``data`` (a Dataset or CorruptedDataset): the one
    way every command loads a model, a teacher or a baseline. A model of all 1000 ImageNet classes
    is restricted to the classes of a dataset that has a class subset (ImageNet-R, -A)."""
    what = what or f"model {path}"
    model = restricted_to_dataset(load_classifier(path), data, what=what)
    check_fits(model, data.image_shape, data.num_classes, what=what)
    return model


def model_label(path: str | os.PathLike) -> str:
    """A short name for a saved model: its run directory's name without the timestamp, or the file's stem."""
    path = Path(path)
    if (path.is_dir() and not (path / SAVED_MODEL_FILE).is_file()) or path.name == MODEL_FILE:
        run_name = (path if path.is_dir() else path.parent).resolve().name
        return run_name_of(run_name)
    return path.stem if path.is_file() else path.name


def load_labelled(paths, data) -> dict[str, keras.Model]:
    """Saved models checked against ``data``, keyed by a label unique among them (see ``model_label``)."""
    models: dict[str, keras.Model] = {}
    for path in paths:
        label = model_label(path)
        while label in models:
            label += "'"
        models[label] = load_checked(path, data)
    return models


def load_denoiser(path: str | os.PathLike, image_shape) -> keras.Model:
    """Load a saved image-to-image model (a denoiser) and check it takes and returns ``image_shape`` images."""
    model = load_saved(path)
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 4:
        raise UserError(f"{resolve_model_file(path)} is not an image-to-image model (expected one [batch, H, W, C] output)")
    taken = tuple(model.inputs[0].shape[1:])
    if any(t is not None and t != s for t, s in zip(taken, image_shape)):
        raise UserError(f"the denoiser takes images of shape {list(taken)} but the dataset has {list(image_shape)}")
    return model
