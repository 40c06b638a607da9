"""Classifiers: the registry of this project's models, ``app:NAME`` for any keras.applications network,
the one loader of saved models of every kind (wrapped to take 0..255 pixels and return logits, checked
against the data); and the GAN denoiser."""

from __future__ import annotations

import keras

from noisegame_cli import checks
from noisegame_cli.errors import UserError
from noisegame_cli.models.applications import application_names, build_application, check_application, is_application
from noisegame_cli.models.class_subset import LogitSubset, class_protocol, restricted_to_dataset
from noisegame_cli.models.classifiers import MODELS, build_model as build_registered, register
from noisegame_cli.models.denoiser import build_denoiser, build_discriminator, purified_classifier
from noisegame_cli.models.saved import (
    check_fits,
    copy_classifier,
    load_checked,
    load_classifier,
    load_user_model,
    model_label,
    resolve_model_file,
)
from noisegame_cli.models.wrapping import InputScale, InputScaling, describe_wrapping, rescaled, wrapping_of


def model_names() -> list[str]:
    """Every name ``--model`` takes: the registered models, then ``app:NAME`` for each application."""
    return [*MODELS, *application_names()]


def check_model_name(name: str) -> None:
    if is_application(name):
        check_application(name)
    else:
        checks.chosen(name, MODELS, "model", also=", or app:NAME (e.g. app:ResNet50)")


def build_model(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    dropout: float = 0.0,
    batch_norm: bool = True,
    weights: str | None = None,
    download: bool = False,
) -> keras.Model:
    """A classifier for ``input_shape`` images and ``num_classes`` classes: a registered model, or
    ``app:NAME`` with ``weights`` (see ``models.applications``)."""
    check_model_name(name)
    if is_application(name):
        if dropout or not batch_norm:
            raise UserError("--dropout and --no-batch-norm apply to this project's models, not to app:NAME")
        return build_application(name, input_shape, num_classes, weights=weights, download=download)
    if weights is not None:
        raise UserError(f"--weights applies to app:NAME models; {name} is built with random weights")
    return build_registered(name, input_shape, num_classes, dropout=dropout, batch_norm=batch_norm)


__all__ = [
    "InputScale",
    "InputScaling",
    "MODELS",
    "LogitSubset",
    "build_denoiser",
    "build_discriminator",
    "build_model",
    "check_fits",
    "check_model_name",
    "class_protocol",
    "copy_classifier",
    "describe_wrapping",
    "load_checked",
    "load_classifier",
    "load_user_model",
    "model_label",
    "model_names",
    "purified_classifier",
    "register",
    "rescaled",
    "resolve_model_file",
    "restricted_to_dataset",
    "wrapping_of",
]
