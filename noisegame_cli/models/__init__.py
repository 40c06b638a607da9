"""Classifiers (a registry of builders) and saved-model loading."""

from noisegame_cli.models.classifiers import MODELS, build_model, register
from noisegame_cli.models.saved import check_fits, copy_classifier, load_classifier, resolve_model_file

__all__ = ["MODELS", "build_model", "register", "check_fits", "copy_classifier", "load_classifier", "resolve_model_file"]
