"""The 1000 ImageNet (ILSVRC 2012) classes: one table for every loader that maps WordNet ids to the
1000-class index, and the 200-class lists of ImageNet-R and ImageNet-A.

``classes/imagenet.tsv`` lists the 1000 wnids in class-index order (the sorted wnids: the index
Keras' and torchvision's pretrained models use, and the order of Keras' ``imagenet_class_index.json``,
whose class names it carries). ``classes/imagenet-r.txt`` and ``classes/imagenet-a.txt`` list the
200 wnids of each, sorted (from the evaluation scripts of hendrycks/imagenet-r, ``imagenet_r_wnids``,
and of hendrycks/natural-adv-examples, ``indices_in_1k``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Sequence

IMAGENET_SPACE = "ImageNet"  # how a class subset names the label space of the 1000 classes


def _lines(file_name: str) -> list[str]:
    text = resources.files("noisegame_cli.data").joinpath("classes", file_name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


@cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """``(wnid, name)`` of each of the 1000 classes, in class-index order."""
    rows = _lines("imagenet.tsv")[1:]  # after the header line
    return tuple(tuple(row.split("\t")) for row in rows)


@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 wnids in class-index order."""
    return tuple(wnid for wnid, _ in imagenet_classes())


@cache
def imagenet_r_wnids() -> tuple[str, ...]:
    """The 200 wnids of ImageNet-R, sorted (their order is their label order)."""
    return tuple(_lines("imagenet-r.txt"))


@cache
def imagenet_a_wnids() -> tuple[str, ...]:
    """The 200 wnids of ImageNet-A, sorted."""
    return tuple(_lines("imagenet-a.txt"))


def imagenet_indices(wnids: Sequence[str]) -> tuple[int, ...]:
    """Each wnid's index among the 1000 classes; a ``ValueError`` for one that is not an ImageNet class."""
    index = {wnid: k for k, wnid in enumerate(imagenet_wnids())}
    unknown = [wnid for wnid in wnids if wnid not in index]
    if unknown:
        raise ValueError(f"not ImageNet classes: {', '.join(unknown[:5])}")
    return tuple(index[wnid] for wnid in wnids)
