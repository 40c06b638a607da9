"""Classifiers (a registry of builders), saved-model loading, and the GAN denoiser."""

from noisegame_cli.models.classifiers import MODELS, build_model, register
from noisegame_cli.models.denoiser import build_denoiser, build_discriminator, purified_classifier
from noisegame_cli.models.saved import check_fits, copy_classifier, load_classifier, resolve_model_file

__all__ = [
    "MODELS", "build_model", "register", "check_fits", "copy_classifier", "load_classifier", "resolve_model_file",
    "build_denoiser", "build_discriminator", "purified_classifier",
]
