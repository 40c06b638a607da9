"""The engine's C-bar corruptions against the published generator, run live where a copy of it exists
(``NOISEGAME_CBAR_GENERATOR``; see tests/cbar_reference.py); skipped otherwise, when
tests/test_corruptions_cbar.py still checks the generator's recorded outputs and draws.

- rendering: the generator's own parameters, rendered by the engine, give its pixels within one grey
  level: on natural 32-px images at severities 1, 3 and 5 of each set that has the corruption, and on
  224-px images for ImageNet-C-bar (one image per severity: the generator takes up to half a minute
  per 224-px image);
- draws: the engine's parameter draws follow the generator's (Kolmogorov-Smirnov, 400 per side) at
  each set's native size;
- the whole corruption: on the same 32-px images the engine (its own draws) changes the images as the
  generator does: mean |out - in|, its spread and the mean level, within 15 % on 48 images (both sides
  taking the images' size as the set's native size); 30 % for the two whose weakest severity changes a
  few pixels of few images (on 400 images both are within 1 %).

``python tests/test_corruptions_cbar_generator.py`` prints these measurements as docs/corruptions.md's table.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from scipy import stats

from cbar_reference import engine_draws, engine_parameters, engine_rendering, generate, generator_draws, load_generator, sets_with
from noisegame_cli.corruptions import C_BAR_CORRUPTIONS, IMAGENET_C_BAR_CORRUPTIONS, corrupt, samples

GENERATOR = load_generator()
pytestmark = pytest.mark.skipif(GENERATOR is None, reason="the C-bar generator is not there (set NOISEGAME_CBAR_GENERATOR)")

SEVERITIES = (1, 3, 5)
STATISTICS_IMAGES = 48
STATISTICS_TOLERANCE = 0.15
FEW_EVENTS_TOLERANCE = {"checkerboard_cutout": 0.3, "blue_noise_sample": 0.3}
DRAWS = 400


def rendering_differences(name: str, parameter_set, severity: int, images: np.ndarray) -> np.ndarray:
    """|engine - generator| per pixel over the images, the engine rendering the generator's parameters."""
    level = parameter_set.row(name, severity)
    differences = []
    for index, image in enumerate(images):
        expected, params = generate(GENERATOR, name, level, image, seed=1000 * severity + index)
        rendered = engine_rendering(name, level, image, engine_parameters(GENERATOR, name, params, image.shape[0]))
        differences.append(np.abs(rendered.astype(int) - expected.astype(int)))
    return np.stack(differences)


def change_statistics(images: np.ndarray, out: np.ndarray) -> np.ndarray:
    change = out.astype(np.float64) - images
    return np.array([np.abs(change).mean(), change.std(), out.mean()])


def whole_corruption_ratios(name: str, parameter_set, severity: int, images: np.ndarray) -> np.ndarray:
    """Engine / generator for mean |out - in|, the std of out - in and the mean level, each side with its
    own draws. Both run the set's levels at the images' size as their native size (the generator's
    ``im_size``): ImageNet-C-bar's on 32-px images is then what the generator does at 32 px, not a 224-px
    corruption scaled down."""
    level = parameter_set.row(name, severity)
    theirs = np.stack([generate(GENERATOR, name, level, image, seed=severity * 7919 + index)[0] for index, image in enumerate(images)])
    at_this_size = dataclasses.replace(parameter_set, native_size=images.shape[1])
    ours = corrupt(images, name, severity, seed=severity, parameters=at_this_size)
    return change_statistics(images, ours) / change_statistics(images, theirs)


def draw_p_values(name: str, parameter_set) -> np.ndarray:
    level = parameter_set.row(name, 3)
    theirs = generator_draws(GENERATOR, name, parameter_set.native_size, level, count=DRAWS, seed=3)
    ours = engine_draws(name, parameter_set.native_size, level, count=DRAWS, seed=3)
    return np.array([stats.ks_2samp(ours[:, column], theirs[:, column]).pvalue for column in range(theirs.shape[1])])


@pytest.fixture(scope="module")
def small_images():
    return samples.natural_images(STATISTICS_IMAGES, 32, seed=32)


@pytest.mark.parametrize("name", C_BAR_CORRUPTIONS)
def test_rendering_at_32_px(small_images, name):
    for parameter_set in sets_with(name):
        for severity in SEVERITIES:
            difference = rendering_differences(name, parameter_set, severity, small_images[:4])
            assert difference.max() <= 1 and difference.mean() < 0.01, (name, parameter_set.name, severity, difference.max(), difference.mean())


@pytest.mark.slow  # the generator's per-pixel Python loops: up to half a minute per 224-px image
@pytest.mark.parametrize("name", IMAGENET_C_BAR_CORRUPTIONS)
def test_rendering_at_224_px(name):
    image = samples.natural_images(1, 224, seed=224)
    for parameter_set in sets_with(name):
        if parameter_set.native_size == 224:
            for severity in (1, 5):
                difference = rendering_differences(name, parameter_set, severity, image)
                assert difference.max() <= 1 and difference.mean() < 0.01, (name, severity, difference.max(), difference.mean())


@pytest.mark.parametrize("name", sorted(set(C_BAR_CORRUPTIONS) - {"circular_motion_blur"}))
def test_draws(name):
    for parameter_set in sets_with(name):
        p_values = draw_p_values(name, parameter_set)
        assert (p_values > 1e-3).all(), (name, parameter_set.name, p_values)


@pytest.mark.slow  # the generator on 48 images x 3 severities x each set
@pytest.mark.parametrize("name", C_BAR_CORRUPTIONS)
def test_whole_corruption_changes_images_as_the_generator_does(small_images, name):
    for parameter_set in sets_with(name):
        for severity in SEVERITIES:
            ratios = whole_corruption_ratios(name, parameter_set, severity, small_images)
            assert np.all(np.abs(ratios - 1) < FEW_EVENTS_TOLERANCE.get(name, STATISTICS_TOLERANCE)), (name, parameter_set.name, severity, ratios)


def fidelity_table() -> list[str]:
    """The measurements above as Markdown rows (``python tests/test_corruptions_cbar_generator.py``)."""
    small = samples.natural_images(STATISTICS_IMAGES, 32, seed=32)
    large = samples.natural_images(1, 224, seed=224)
    rows = ["| corruption | set | severity (level) | rendering at 32 px: max / mean difference | at 224 px | draws: least KS p | "
            "whole corruption at 32 px, engine / generator: mean abs change | std of change | mean level |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name in C_BAR_CORRUPTIONS:
        for parameter_set in sets_with(name):
            p_values = draw_p_values(name, parameter_set) if name != "circular_motion_blur" else np.array([])
            least = f"{p_values.min():.3f}" if len(p_values) else "(no draws)"
            for severity in SEVERITIES:
                small_difference = rendering_differences(name, parameter_set, severity, small[:4])
                large_text = ""
                if parameter_set.native_size == 224:
                    large_difference = rendering_differences(name, parameter_set, severity, large)
                    large_text = f"{large_difference.max()} / {large_difference.mean():.4f}"
                ratios = whole_corruption_ratios(name, parameter_set, severity, small)
                rows.append(f"| {name} | {parameter_set.name} | {severity} ({parameter_set.row(name, severity)}) | "
                            f"{small_difference.max()} / {small_difference.mean():.4f} | {large_text} | {least if severity == 1 else ''} | "
                            + " | ".join(f"{ratio:.3f}" for ratio in ratios) + " |")  # fmt: skip
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    if GENERATOR is None:
        raise SystemExit("set NOISEGAME_CBAR_GENERATOR to the generator's folder")
    print("\n".join(fidelity_table()))
