"""Where Keras keeps what it downloads (``$KERAS_HOME``, else ``~/.keras``): one answer for the
datasets, the application weights and every message that names the cache."""

from __future__ import annotations

import os
from pathlib import Path


def keras_cache(subdir: str) -> Path:
    """``<keras home>/<subdir>``: ``datasets`` for datasets, ``models`` for network weights."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / subdir
