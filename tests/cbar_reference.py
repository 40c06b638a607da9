"""The published C-bar generator as the reference for the engine's C-bar corruptions.

The generator (facebookresearch/augmentation-corruption, folder ``imagenet_c_bar/``; MIT licence) is not
part of this project and is never imported by it. Where a copy exists, point ``NOISEGAME_CBAR_GENERATOR``
at it (the clone or its ``imagenet_c_bar/`` folder; it needs NumPy, SciPy, Pillow and scikit-image, all
dependencies here) and:

- ``tests/test_corruptions_cbar_generator.py`` compares the engine with it live;
- ``python tests/cbar_reference.py --record`` rewrites ``tests/data/cbar_generator_reference.npz``, the
  generator's own outputs and parameter draws that ``tests/test_corruptions_cbar.py`` checks the engine
  against in every ``make test``, generator or not.

Each corruption is compared in its two halves (``noisegame_cli.corruptions.cbar``): the rendering, given
the parameters the generator drew and recorded (``engine_parameters`` turns its record, and the draws it
makes inside from its recorded seed, into the engine's), must give the generator's pixels within one
grey level; the engine's own draws must follow the distributions of the generator's (``draw_summaries``:
a few numbers per image, compared by Kolmogorov-Smirnov tests).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import numpy as np
import tensorflow as tf

from noisegame_cli.corruptions import C_BAR_CORRUPTIONS, PARAMETER_SETS, cbar, samples
from noisegame_cli.corruptions.cbar.common import Frame, truncated_pixels

GENERATOR_ENV = "NOISEGAME_CBAR_GENERATOR"
REFERENCE_FILE = Path(__file__).parent / "data" / "cbar_generator_reference.npz"
RECORDED_SIZE = 32
RECORDED_SEVERITIES = (1, 3, 5)
DRAWS = 200  # parameter draws per corruption and set recorded
SETS = ("cifar10-c-bar", "imagenet-c-bar")


def sets_with(name: str) -> list:
    return [PARAMETER_SETS[set_name] for set_name in SETS if name in PARAMETER_SETS[set_name].table]


def load_generator() -> types.SimpleNamespace | None:
    """The generator's modules from ``$NOISEGAME_CBAR_GENERATOR``, or None where it is not set or not there."""
    folder = os.environ.get(GENERATOR_ENV)
    if not folder:
        return None
    path = Path(folder)
    if (path / "imagenet_c_bar").is_dir():
        path = path / "imagenet_c_bar"
    if not (path / "corrupt.py").is_file():
        return None
    # written for NumPy < 1.24, which still had these aliases (its lines corruption uses np.int)
    for alias, kind in (("int", int), ("float", float)):
        if not hasattr(np, alias):
            setattr(np, alias, kind)
    sys.path.insert(0, str(path))
    try:
        finder = importlib.import_module("transform_finder")
        perlin = importlib.import_module("utils.perlin_noise")
    finally:
        sys.path.remove(str(path))
    return types.SimpleNamespace(transforms=finder.transform_dict, PerlinNoiseGenerator=perlin.PerlinNoiseGenerator, path=path)


def generate(generator, name: str, level: float, image: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """The generator's output and its recorded parameters for one square uint8 image (its draws come
    from NumPy's global generator, seeded here)."""
    np.random.seed(seed)
    transform = generator.transforms[name](severity=level, im_size=image.shape[0], record=True)
    return transform(image)


def engine_parameters(generator, name: str, params: dict, size: int) -> dict[str, np.ndarray]:
    """The generator's recorded parameters (and the draws it makes inside from its recorded seed, in its
    order) as the engine's rendering takes them, for one image (a leading batch axis of 1)."""
    p = params
    if name == "single_frequency_greyscale":
        converted = {"frequencies": p["freq"], "phase": p["phase"]}
    elif name == "cocentric_sine_waves":
        converted = {"centre": [p["offset"][1], p["offset"][0]], "frequency": p["freq"], "amplitude": p["amplitude"], "ring_width": p["ring_width"]}
    elif name == "plasma_noise":
        converted = {"time": p["time"], "iterations": np.int32(p["iterations"]), "sharpness": p["sharpness"], "length": p["scale"]}
    elif name == "perlin_noise":
        tables = generator.PerlinNoiseGenerator(np.random.RandomState(seed=p["seed"]))
        # entries past 255 repeat the first ones, and no index above 255 reads a gradient
        converted = {"permutation": tables.p[:256].astype(np.int32), "gradients": tables.g[:256]}
    elif name == "caustic_refraction":
        converted = {"time": p["time"], "size": p["size"]}
    elif name in ("blue_noise_sample", "brownish_noise"):
        state = np.random.RandomState(seed=p["seed"])
        channels = 1 if name == "blue_noise_sample" else 3
        converted = {"phases": np.stack([state.uniform(0, 2 * np.pi, (size, size // 2)) for _ in range(channels)])}
    elif name == "checkerboard_cutout":
        state = np.random.RandomState(seed=p["seed"])
        length = p["scales"][0]
        cells = int(4 * size // length)
        most = int(4 * size // max(0.1 * size, 1.0)) + 1
        grid = np.ones((most, most))
        grid[:cells, :cells] = state.uniform(size=(cells, cells))
        converted = {"angle": p["angle"], "length": length, "cells": np.int32(cells), "grid": grid}
    elif name == "sparkles":
        state = np.random.RandomState(seed=p["seed"])
        lengths = np.ones((5, 200), np.float32)
        for star, (rays, radius) in enumerate(zip(p["nrays"], p["radii"])):
            lengths[star, :rays] = [max(1, radius + p["randomness"] / 100.0 * radius * state.randn()) for _ in range(rays)]
        converted = {"centres": p["centers"].astype(np.float32), "rays": p["nrays"].astype(np.int32), "lengths": lengths}
    elif name == "inverse_sparkles":
        state = np.random.RandomState(seed=p["seed"])
        lengths = np.ones(200, np.float32)
        lengths[: p["rays"]] = [p["radius"] + p["randomness"] / 100.0 * p["radius"] * state.randn() for _ in range(p["rays"])]
        converted = {"centre": p["center"].astype(np.float32), "rays": np.int32(p["rays"]), "lengths": lengths}
    elif name == "lines":
        state = np.random.RandomState(seed=p["seed"])
        centres, angles = [], []
        for _ in range(int(p["density"] * size)):
            centres.append([size * state.uniform(), size * state.uniform()])  # its x is the row
            angles.append(p["angle"] + 2 * np.pi * p["angle_variation"] * (state.uniform() - 0.5))
        converted = {"centres": np.reshape(centres, (-1, 2)), "angles": np.array(angles)}
    elif name == "pinch_and_twirl":
        converted = {"signs": np.sign(p["angles"]).T.astype(np.float32)}  # its angles[i, j]: cell column i, row j
    elif name == "ripple":
        converted = {"wavelengths": p["wavelengths"], "phases": p["phases"]}
    elif name == "circular_motion_blur":
        converted = {}
    elif name == "transverse_chromatic_abberation":
        converted = {"zooms": np.argsort(np.argsort(p["scales"])).astype(np.int32)}  # rank of each channel's zoom
    else:
        raise KeyError(name)
    return {key: np.asarray(value)[None] for key, value in converted.items()}


def engine_rendering(name: str, level: float, image: np.ndarray, parameters: dict[str, np.ndarray]) -> np.ndarray:
    """The engine's rendering (compiled as the engine runs it) of one image with the given parameters."""
    corruption = cbar.CORRUPTIONS[name]
    frame = Frame(image.shape[0], image.shape[1], 1.0)
    drawn = {key: tf.constant(value) for key, value in parameters.items()}
    rendered = corruption.rendering(frame, float(level))(tf.constant(image[None].astype(np.float32)), drawn)
    return truncated_pixels(rendered).numpy()[0]


# ---------------------------------------------------------------- draws


def draw_summaries(name: str, drawn: dict[str, np.ndarray]) -> np.ndarray:
    """A few numbers per image [N, k] that describe the drawn parameters (with a leading batch axis)."""
    d = {key: np.asarray(value, np.float64) for key, value in drawn.items()}
    if name == "single_frequency_greyscale":
        magnitudes = np.abs(d["frequencies"])
        columns = [magnitudes.max(axis=1), magnitudes.min(axis=1) / magnitudes.max(axis=1), magnitudes[:, 0] > magnitudes[:, 1], d["phase"]]
    elif name == "cocentric_sine_waves":
        columns = [d["centre"][:, 0], d["centre"][:, 1], d["frequency"], d["amplitude"], d["ring_width"]]
    elif name == "plasma_noise":
        columns = [d["time"], d["iterations"], d["sharpness"], d["length"]]
    elif name == "perlin_noise":
        angles = np.arctan2(d["gradients"][..., 1], d["gradients"][..., 0])
        columns = [angles[:, 0], angles[:, 100], d["permutation"][:, 0], d["permutation"][:, 200]]
    elif name == "caustic_refraction":
        columns = [d["time"], d["size"]]
    elif name in ("blue_noise_sample", "brownish_noise"):
        columns = [d["phases"][:, 0, 0, 0], d["phases"][:, -1, -1, -1], d["phases"].mean(axis=(1, 2, 3))]
    elif name == "checkerboard_cutout":
        used = [grid[:cells, :cells] for grid, cells in zip(d["grid"], d["cells"].astype(int))]
        columns = [d["angle"], d["length"], d["cells"], [np.mean(grid < 0.5) for grid in used]]
    elif name == "sparkles":
        used = [lengths[0, : int(rays[0])] for lengths, rays in zip(d["lengths"], d["rays"])]
        columns = [d["centres"][:, 0, 0], d["centres"][:, 0, 1], d["rays"][:, 0], [u.mean() for u in used], [u.std() for u in used]]
    elif name == "inverse_sparkles":
        used = [lengths[: int(rays)] for lengths, rays in zip(d["lengths"], d["rays"])]
        columns = [d["centre"][:, 0], d["centre"][:, 1], d["rays"], [u.mean() for u in used], [u.std() for u in used]]
    elif name == "lines":
        columns = [d["centres"][:, 0, 0], d["centres"][:, 0, 1], np.mod(d["angles"][:, 0], 2 * np.pi)]
        if d["angles"].shape[1] > 1:
            columns.append(np.abs(d["angles"][:, 1] - d["angles"][:, 0]))
    elif name == "pinch_and_twirl":
        columns = [d["signs"][:, 0, 0], d["signs"].mean(axis=(1, 2))]
    elif name == "ripple":
        columns = [d["wavelengths"][:, 0], d["wavelengths"][:, 1], d["phases"][:, 0], d["phases"][:, 1]]
    elif name == "transverse_chromatic_abberation":
        columns = [np.argmax(d["zooms"], axis=1), np.argmin(d["zooms"], axis=1)]
    else:  # circular_motion_blur draws nothing
        columns = []
    return np.stack([np.asarray(column, np.float64) for column in columns], axis=1) if columns else np.zeros((len(next(iter(d.values()), [])), 0))


def generator_draws(generator, name: str, size: int, level: float, count: int = DRAWS, seed: int = 0) -> np.ndarray:
    """Summaries of `count` of the generator's parameter draws for `size`-px images."""
    np.random.seed(seed)
    transform = generator.transforms[name](severity=level, im_size=size)
    drawn = [engine_parameters(generator, name, transform.sample_parameters(), size) for _ in range(count)]
    stacked = {key: np.concatenate([one[key] for one in drawn]) for key in drawn[0]} if drawn[0] else {}
    return draw_summaries(name, stacked) if stacked else np.zeros((count, 0))


def engine_draws(name: str, size: int, level: float, count: int = DRAWS, seed: int = 0) -> np.ndarray:
    drawn = cbar.CORRUPTIONS[name].draw(count, Frame(size, size, 1.0), float(level), tf.constant([seed, 0], tf.int64))
    return draw_summaries(name, {key: value.numpy() for key, value in drawn.items()}) if drawn else np.zeros((count, 0))


# ---------------------------------------------------------------- the recorded reference


def recorded_images() -> np.ndarray:
    return samples.natural_images(len(C_BAR_CORRUPTIONS) * len(RECORDED_SEVERITIES), RECORDED_SIZE, seed=7)


def record(path: Path = REFERENCE_FILE) -> None:
    """Write the generator's outputs for one 32-px image per corruption and severity (1, 3, 5 of the
    first set that has it: CIFAR-10-C-bar, else ImageNet-C-bar), with the parameters it drew, and
    summaries of DRAWS parameter draws per corruption and set at the set's native size."""
    generator = load_generator()
    if generator is None:
        raise SystemExit(f"set {GENERATOR_ENV} to the generator's folder first")
    images = iter(recorded_images())
    arrays = {}
    for name in C_BAR_CORRUPTIONS:
        chosen = sets_with(name)
        for severity in RECORDED_SEVERITIES:
            level = chosen[0].row(name, severity)
            image = next(images)
            output, params = generate(generator, name, level, image, seed=severity)
            key = f"render/{name}/{severity}"
            arrays[f"{key}/image"], arrays[f"{key}/output"], arrays[f"{key}/level"] = image, output.astype(np.uint8), np.float64(level)
            for parameter, value in engine_parameters(generator, name, params, RECORDED_SIZE).items():
                arrays[f"{key}/parameter/{parameter}"] = value
        for parameter_set in chosen:
            level = parameter_set.row(name, 3)
            arrays[f"draws/{name}/{parameter_set.name}"] = generator_draws(generator, name, parameter_set.native_size, level).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB) from {generator.path}")


def recorded_renderings(recorded) -> list[tuple[str, int, float, np.ndarray, dict, np.ndarray]]:
    """(name, severity, level, image, parameters, generator output) of each recorded rendering."""
    cases = []
    for key in recorded.files:
        parts = key.split("/")
        if parts[0] == "render" and parts[3] == "output":
            name, severity = parts[1], int(parts[2])
            prefix = f"render/{name}/{severity}/parameter/"
            parameters = {k[len(prefix) :]: recorded[k] for k in recorded.files if k.startswith(prefix)}
            base = f"render/{name}/{severity}"
            cases.append((name, severity, float(recorded[f"{base}/level"]), recorded[f"{base}/image"], parameters, recorded[key]))
    return cases


if __name__ == "__main__":
    if "--record" in sys.argv:
        record()
    else:
        print(__doc__)
