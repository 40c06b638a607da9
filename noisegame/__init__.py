"""noisegame's Python API: robustness measurements of Keras classifiers, for notebooks and scripts.

    import noisegame
    model = noisegame.load_model("model.keras", input_range="0-1")   # or a Keras model, app:NAME, ...
    images, labels = noisegame.load_dataset("digits").test.arrays()
    card = noisegame.benchmark(model, images, labels)                # clean, AutoAttack, corruptions

The functions are the ones the ``noisegame`` command line calls (docs/api.md).
"""

from noisegame_cli.api import (
    accuracy,
    as_split,
    autoattack,
    benchmark,
    evaluate_corruptions,
    evaluate_shift,
    load_dataset,
    load_model,
)
from noisegame_cli.corruptions import RandomCorruption, corrupt

__all__ = [
    "RandomCorruption",
    "accuracy",
    "as_split",
    "autoattack",
    "benchmark",
    "corrupt",
    "evaluate_corruptions",
    "evaluate_shift",
    "load_dataset",
    "load_model",
]
