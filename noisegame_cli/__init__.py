"""noisegame: a command-line experiment runner for image-classifier robustness research."""

__version__ = "0.1.0"
