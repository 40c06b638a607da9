"""The one loader of saved classifiers of every kind, wrapped to this project's contract and checked
against the data.

``--model-path`` (and ``--teacher``, ``--classifier``, ``--extractor-path``) take:

- a ``.keras`` file, or a run directory of this project (its ``model.keras``);
- a Keras 2 ``.h5`` full model;
- a weights-only file (Keras 3 ``.weights.h5``, or a Keras 2 ``.h5`` written by ``save_weights``)
  with ``--architecture``: a registered model name or ``app:NAME`` (built for the dataset's image
  shape and classes), or a ``.json`` file of ``model.to_json()``;
- a TensorFlow SavedModel folder (``saved_model.pb``), written by ``model.export()`` (its ``serve``
  endpoint is called) or ``tf.saved_model.save`` (its ``serving_default`` signature, or its only one),
  called through ``keras.layers.TFSMLayer``. Gradients flow through it, so it can be evaluated and
  attacked, but it cannot be trained or fine-tuned: commands that fine-tune refuse it;
- ``app:NAME[:WEIGHTS]``: a ``keras.applications`` network with its own ``preprocess_input`` inside
  (see ``models.applications``); WEIGHTS ``imagenet`` (the default; downloaded only with
  ``--download``), a Keras application weights file with its top, or a ``.weights.h5`` file saved
  from ``app:NAME`` trained for the dataset's classes.

What the model expects is wrapped once (``models.wrapping``): ``--input-range`` / ``--mean`` /
``--std`` in front, probabilities turned into logits behind; the result takes 0..255 pixels and
returns logits like every model of this project. Each thing done is said once, in one line.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from noisegame_cli.errors import UserError
from noisegame_cli.models.applications import application_classifier, is_application, split_application
from noisegame_cli.models.class_subset import restricted_to_dataset
from noisegame_cli.models.wrapping import InputScale, InputScaling, as_logits, layers_within, with_input_scale
from noisegame_cli.runs import run_name_of

MODEL_FILE = "model.keras"
SAVED_MODEL_FILE = "saved_model.pb"
WEIGHTS_SUFFIX = ".weights.h5"
HDF5_SUFFIXES = (".h5", ".hdf5")
ARCHITECTURE_SUFFIX = ".json"
# SavedModel endpoints tried in order: model.export()'s, then tf.saved_model.save's default signature.
ENDPOINTS = ("serve", "serving_default")
PROBE_IMAGES = 4  # random images on which a model's outputs are looked at (probabilities or logits)
SOURCES = "a .keras or .h5 file, a weights file with --architecture, a SavedModel folder, a run directory, or app:NAME[:WEIGHTS]"
Say = Callable[[str], None]


def resolve_model_file(path: str | os.PathLike) -> Path:
    """A model file or SavedModel folder: the path itself, or the ``model.keras`` inside a run directory."""
    path = Path(path)
    if path.is_dir() and not (path / SAVED_MODEL_FILE).is_file():
        path = path / MODEL_FILE
    if not path.exists():
        raise UserError(f"no saved model at {path} ({SOURCES})")
    return path


def check_model_source(value, flag: str) -> None:
    """A config check: ``app:NAME[:WEIGHTS]`` with a known network and weights that exist, or an existing path."""
    for item in value if isinstance(value, (tuple, list)) else (value,):
        if is_application(item):
            split_application(item, flag)
        elif not Path(item).exists():
            raise UserError(f"{flag} {item}: no such file or folder ({SOURCES})")


def check_architecture(value, flag: str) -> None:
    """A config check: a registered model, ``app:NAME``, or an existing ``.json`` file."""
    if str(value).lower().endswith(ARCHITECTURE_SUFFIX):
        if not Path(value).is_file():
            raise UserError(f"{flag} {value}: no such file")
        return
    from noisegame_cli.models import check_model_name

    check_model_name(value)


def holds_weights_only(path: Path) -> bool:
    """Whether ``path`` is a weights file without a model config (``.weights.h5``, or a Keras 2 ``save_weights`` ``.h5``)."""
    if path.name.endswith(WEIGHTS_SUFFIX):
        return True
    if path.is_file() and path.suffix.lower() in HDF5_SUFFIXES:
        import h5py

        try:
            with h5py.File(path, "r") as file:
                return "model_config" not in file.attrs
        except OSError as error:
            raise UserError(f"{path} is not a readable HDF5 file ({error})".splitlines()[0]) from None
    return False


class PartlyLoaded(ValueError):
    """Keras loaded a model or weights file only in part: some layers kept their random initial weights."""


def loaded_whole(load: Callable[[], object]):
    """``load()`` (a Keras model or weights load) with Keras' warnings held back: where Keras loaded the
    file only in part (it warns that layers keep their freshly-initialized weights, and does not raise:
    every number would be wrong) a ``PartlyLoaded`` error; otherwise the warnings are shown after it.
    Warnings of a load that raises are dropped: the caller's one-line error says what went wrong."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load()
    skipped = [str(warning.message) for warning in caught if "freshly-initialized weights" in str(warning.message)]
    if skipped:
        raise PartlyLoaded(f"some of its layers' weights are not in the file: {skipped[0]}")
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return result


def _unreadable(path: Path, error: Exception) -> UserError:
    return UserError(f"{path} is not a readable Keras model ({type(error).__name__}: {error})".splitlines()[0])


ARCHITECTURE_HINT = "give its architecture with --architecture NAME (a registered model or app:NAME) or --architecture FILE.json (model.to_json())"


def load_saved(path: str | os.PathLike, say: Say | None = None, *, weights_only_hint: str = ARCHITECTURE_HINT) -> keras.Model:
    """A saved model of any of the whole-model kinds (a file, a run directory, a SavedModel folder),
    as it is, without its training state; ``say`` hears which SavedModel endpoint is called, and
    ``weights_only_hint`` ends the line refusing a weights-only file."""
    import noisegame_cli.models  # noqa: F401  (registers this project's custom layers before deserialising)

    model_file = resolve_model_file(path)
    if holds_weights_only(model_file):
        raise UserError(f"{model_file} holds weights only: {weights_only_hint}")
    try:
        if model_file.is_dir():
            return _saved_model_classifier(model_file, say)
        return loaded_whole(lambda: keras.models.load_model(model_file, compile=False))
    except UserError:
        raise
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise _unreadable(model_file, error) from None


def _with_weights(path: Path, architecture: str, image_shape, num_classes: int, download: bool) -> keras.Model:
    """The model ``architecture`` describes (a registered name, ``app:NAME``, or a JSON file) with the
    weights of ``path``."""
    from noisegame_cli.models import build_model

    if architecture.lower().endswith(ARCHITECTURE_SUFFIX):
        try:
            model = keras.models.model_from_json(Path(architecture).read_text())
        except Exception as error:  # a JSON or deserialisation error of any type
            raise UserError(f"--architecture {architecture}: not a Keras model description ({type(error).__name__}: {error})".splitlines()[0]) from None
    else:
        model = build_model(architecture, tuple(image_shape), num_classes, download=download)
    try:
        loaded_whole(lambda: model.load_weights(path))
    except Exception as error:  # h5py and Keras raise many types for weights that do not fit
        raise UserError(f"{path} does not fit --architecture {architecture} ({type(error).__name__}: {error})".splitlines()[0]) from None
    return model


def load_user_model(
    source: str | os.PathLike,
    image_shape: tuple[int, ...],
    num_classes: int,
    *,
    architecture: str | None = None,
    download: bool = False,
    say: Say | None = None,
) -> keras.Model:
    """The user's model as it was saved (no wrapping): any kind of ``source`` listed in the module's
    docstring; ``app:NAME`` and ``--architecture`` models are built for ``image_shape`` and ``num_classes``."""
    if is_application(source):
        if architecture is not None:
            raise UserError(f"--architecture is for weights-only files; {source} names its network itself")
        return application_classifier(str(source), tuple(image_shape), num_classes, download=download)
    model_file = resolve_model_file(source)
    if architecture is None:
        return load_saved(model_file, say)
    if not holds_weights_only(model_file):
        raise UserError(f"--architecture is for weights-only files; {model_file} holds a whole model")
    return _with_weights(model_file, architecture, image_shape, num_classes, download)


def check_classifier(model, what: str) -> None:
    if not isinstance(model, keras.Model) or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise UserError(f"{what} is not a classifier (expected one [batch, classes] output)")


def load_classifier(path: str | os.PathLike) -> keras.Model:
    """A saved classifier file, run directory or SavedModel as it is (logits out, rank-2), without data
    to check it against (no weights-only file: building its architecture needs the data's shape and
    classes); ``load_checked`` is the loader commands use."""
    model = load_saved(path, weights_only_hint="save the whole model (model.save('model.keras')) to use it here")
    check_classifier(model, str(resolve_model_file(path)))
    return model


def _endpoint(folder: Path, loaded) -> tuple[str, object]:
    """The SavedModel endpoint to call and its function: ``serve`` (``model.export()``), else
    ``serving_default``, else the only signature there is."""
    for name in ENDPOINTS:
        if hasattr(loaded, name):
            return name, getattr(loaded, name)
        if name in loaded.signatures:
            return name, loaded.signatures[name]
    if len(loaded.signatures) == 1:
        name = next(iter(loaded.signatures))
        return name, loaded.signatures[name]
    found = ", ".join(loaded.signatures) or "none"
    raise UserError(f"{folder}: the SavedModel has no serve endpoint and no serving_default signature (signatures: {found})")


def _endpoint_input(function) -> tuple[object, int]:
    """The input spec of an endpoint and its number of inputs."""
    concrete = getattr(function, "concrete_functions", None)
    signature = (concrete[0] if concrete else function).structured_input_signature
    specs = [*signature[0], *signature[1].values()]
    return (specs[0] if specs else None), len(specs)


def _saved_model_classifier(folder: Path, say: Say | None = None) -> keras.Model:
    """A SavedModel's endpoint (see ``_endpoint``) as a Keras model: image in, one output out."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    name, function = _endpoint(folder, loaded)
    spec, count = _endpoint_input(function)
    if count != 1:
        raise UserError(f"{folder}: the SavedModel's {name} takes {count} inputs; a classifier takes one image tensor")
    if not spec.dtype.is_floating:
        raise UserError(f"{folder}: the SavedModel's {name} takes {spec.dtype.name} images; attacks need a float input to differentiate")
    layer = keras.layers.TFSMLayer(str(folder), call_endpoint=name, name="saved_model")
    images = keras.Input(shape=tuple(spec.shape[1:]), name="images")
    outputs = layer(images)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise UserError(f"{folder}: the SavedModel's {name} returns {len(outputs)} outputs ({', '.join(outputs)}); a classifier returns one")
        outputs = next(iter(outputs.values()))
    if say is not None:
        say(f"SavedModel: calling its {name} {'endpoint' if hasattr(loaded, name) else 'signature'}")
    return keras.Model(images, outputs, name=folder.name)


def is_trainable_copyable(model: keras.Model) -> bool:
    return not any(isinstance(layer, keras.layers.TFSMLayer) for layer in layers_within(model))


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
    check_image_shape(model, image_shape, what=what)
    check_classes(model, num_classes, what=what)


def check_classes(model: keras.Model, num_classes: int, *, what: str = "model") -> None:
    """Raise a ``UserError`` unless ``model`` predicts ``num_classes`` classes."""
    classes = model.outputs[0].shape[-1]
    if classes != num_classes:
        raise UserError(f"{what} predicts {classes} classes but the dataset has {num_classes}")


def check_image_shape(model: keras.Model, image_shape: tuple[int, ...], *, what: str = "model") -> None:
    """Raise a ``UserError`` unless ``model`` takes ``image_shape`` images."""
    expected = tuple(model.inputs[0].shape[1:])
    if any(e is not None and e != got for e, got in zip(expected, image_shape)) or len(expected) != len(image_shape):
        raise UserError(f"{what} takes images of shape {list(expected)} but the dataset has {list(image_shape)}")


def _probe(image_shape, scale: InputScale) -> np.ndarray:
    """A few seeded random images as a model expecting ``scale`` takes them."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(PROBE_IMAGES, *image_shape)).astype(np.float32)
    return keras.ops.convert_to_numpy(InputScaling(scale.input_range, scale.mean, scale.std)(pixels))


def load_checked(
    source: str | os.PathLike | keras.Model,
    data,
    *,
    scale: InputScale | None = None,
    architecture: str | None = None,
    download: bool = False,
    what: str | None = None,
    say: Say | None = print,
) -> keras.Model:
    """The one way every command loads a saved classifier (a model, a teacher, a baseline): any kind of
    ``source`` (see the module's docstring; or a Keras model already in memory), checked to fit ``data`` (a Dataset or CorruptedDataset:
    its image shape and classes), wrapped so it takes 0..255 pixels (``scale``: what it expects) and
    returns logits (probabilities are turned into them; a 1000-class model's are restricted to the
    classes of a dataset with a class subset, ImageNet-R and -A). ``say`` hears one line per thing done."""
    scale = scale or InputScale()
    what = what or f"model {source.name if isinstance(source, keras.Model) else source}"
    notes: list[str] = []
    if isinstance(source, keras.Model):
        model = source
    else:
        model = load_user_model(source, data.image_shape, data.num_classes, architecture=architecture, download=download, say=notes.append)
    check_classifier(model, what)
    check_image_shape(model, data.image_shape, what=what)  # before the model is first called, on images of the data's shape
    model, output_note = as_logits(model, _probe(data.image_shape, scale))
    if output_note:
        notes.append(output_note)
    model = restricted_to_dataset(model, data, what=what)  # ImageNet-R and -A: a 1000-class model's logits of their 200
    check_classes(model, data.num_classes, what=what)  # its image shape was checked above
    if not scale.is_pixels:
        notes.append(f"takes {scale.describe()} ({scale.flags})")
    for note in notes if say is not None else ():
        say(f"{what}: {note}")
    return with_input_scale(model, scale)


def model_label(path: str | os.PathLike) -> str:
    """A short name for a saved model: its run directory's name without the timestamp, the file's stem,
    or the network (and weights file) of ``app:NAME[:WEIGHTS]``."""
    if is_application(path):
        network, weights = split_application(str(path))
        return network.lower() + (f"-{Path(weights).name.split('.')[0]}" if weights not in (None, "imagenet") else "")
    path = Path(path)
    if (path.is_dir() and not (path / SAVED_MODEL_FILE).is_file()) or path.name == MODEL_FILE:
        run_name = (path if path.is_dir() else path.parent).resolve().name
        return run_name_of(run_name)
    return path.stem.removesuffix(".weights") if path.is_file() else path.name


def unique_labels(paths) -> dict[str, str]:
    """``{label: path}`` with a label unique among ``paths`` (see ``model_label``)."""
    labelled: dict[str, str] = {}
    for path in paths:
        label = model_label(path)
        while label in labelled:
            label += "'"
        labelled[label] = path
    return labelled


def load_denoiser(path: str | os.PathLike, image_shape) -> keras.Model:
    """Load a saved image-to-image model (a denoiser) and check it takes and returns ``image_shape`` images."""
    model = load_saved(path)
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 4:
        raise UserError(f"{resolve_model_file(path)} is not an image-to-image model (expected one [batch, H, W, C] output)")
    taken = tuple(model.inputs[0].shape[1:])
    if any(t is not None and t != s for t, s in zip(taken, image_shape)):
        raise UserError(f"the denoiser takes images of shape {list(taken)} but the dataset has {list(image_shape)}")
    return model
