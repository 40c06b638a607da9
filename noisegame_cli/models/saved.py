"""Loading saved classifiers (``model.keras`` files or run directories) and checking they fit the data."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from noisegame_cli.errors import UserError

MODEL_FILE = "model.keras"


def resolve_model_file(path: str | os.PathLike) -> Path:
    """A ``model.keras`` path, or the one inside a run directory."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise UserError(f"no saved model at {path}")
    return path


def load_classifier(path: str | os.PathLike) -> keras.Model:
    """Load a saved classifier (logits out, rank-2) without its training state."""
    model_file = resolve_model_file(path)
    try:
        model = keras.models.load_model(model_file, compile=False)
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise UserError(f"{model_file} is not a readable Keras model ({type(error).__name__}: {error})".splitlines()[0]) from None
    if not isinstance(model, keras.Model) or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise UserError(f"{model_file} is not a classifier (expected one [batch, classes] output)")
    return model


def copy_classifier(model: keras.Model) -> keras.Model:
    """A trainable copy of ``model`` with its weights; ``model`` itself stays as it was."""
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
