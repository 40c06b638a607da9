"""How perturbation budgets are written for people: ``8/255`` for a budget on the 1/255 pixel grid."""

from __future__ import annotations

PIXEL_MAX = 255.0  # the top of the image range: a budget on the 0..1 scale is eps * PIXEL_MAX pixel levels
ROBUSTBENCH_EPS = {"Linf": 8 / 255, "L2": 0.5}  # RobustBench's budgets for CIFAR-10 (and the benchmark's defaults)


def steps_of_255(value: float, tolerance: float = 1e-6) -> int | None:
    """`value` as a whole number of 1/255 steps, or None when it is not on that grid."""
    steps = value * 255
    return round(steps) if abs(steps - round(steps)) < tolerance else None


def budget_text(eps: float, norm: str = "Linf", tolerance: float = 1e-6) -> str:
    """``8/255`` for a Linf budget on the 1/255 grid (``0`` for none), the plain number otherwise."""
    steps = steps_of_255(eps, tolerance) if norm == "Linf" else None
    if steps is None:
        return f"{eps:g}"
    return "0" if steps == 0 else f"{steps}/255"


def budget_label(eps: float, norm: str = "Linf") -> str:
    """A budget in a command's output and summary keys: ``8/255`` (pixel levels, also off the grid:
    ``2.5/255``) for Linf, ``L2 0.5`` for L2."""
    return f"{eps * 255:.3g}/255" if norm == "Linf" else f"L2 {eps:.3g}"
