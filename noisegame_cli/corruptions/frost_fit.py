"""Where the synthetic frost's numbers come from: statistics of crops of the frost photographs, and the
texture weights fitted to their autocorrelation (``parameters.FrostProfile``).

    python -m noisegame_cli.corruptions.frost_fit FOLDER [--set imagenet-c] [--crops 400]

FOLDER holds the generators' frost1.png, frost2.png, frost3.png, frost4.jpg and frost5.jpg; one
``FrostProfile(...)`` line per photograph is printed, for the set's crop size and photo scale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from scipy import optimize

from noisegame_cli.corruptions import frost
from noisegame_cli.corruptions.parameters import PARAMETER_SETS, FrostProfile, FrostTexture

PHOTOGRAPHS = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
LUMA = np.array([0.299, 0.587, 0.114])


def grey_autocorrelation(fields: np.ndarray, lag: int) -> float:
    """Pearson correlation of pixels `lag` apart (horizontally and vertically) within each field
    [K, H, W], averaged over the fields."""
    correlations = []
    for field in fields:
        first = np.concatenate([field[:, :-lag].ravel(), field[:-lag, :].ravel()])
        second = np.concatenate([field[:, lag:].ravel(), field[lag:, :].ravel()])
        correlations.append(np.corrcoef(first, second)[0, 1])
    return float(np.mean(correlations))


def random_crops(photo: np.ndarray, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random size x size crops [K, size, size, 3] of a photograph, float."""
    tops = rng.integers(0, photo.shape[0] - size, count)
    lefts = rng.integers(0, photo.shape[1] - size, count)
    return np.stack([photo[top : top + size, left : left + size] for top, left in zip(tops, lefts)]).astype(np.float32)


def crop_statistics(crops: np.ndarray, lags) -> dict:
    """The FrostProfile statistics of crops [K, s, s, 3] (RGB 0..255)."""
    def rounded(values):
        return tuple(round(float(value), 1) for value in values)

    return {
        "means": rounded(crops.mean(axis=(0, 1, 2), dtype=np.float64)),
        "channel_std": rounded(crops.std(axis=(0, 1, 2), dtype=np.float64)),
        "within_std": rounded(crops.std(axis=(1, 2), dtype=np.float64).mean(axis=0)),
        "autocorrelation": tuple(round(grey_autocorrelation(crops @ LUMA, lag), 2) for lag in lags),
    }


def generated_components(texture: FrostTexture, size: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` generated crops [K, size, size] of each texture component (white noise, then each sigma)."""
    components = frost.texture_components(count, size, size, tf.constant([seed, 0], tf.int64), 1.0, texture.sigmas)
    return [component.numpy()[..., 0] for component in components]


def _within_crop_covariance(field: np.ndarray, lag: int) -> float:
    centred = field - field.mean(axis=(1, 2), keepdims=True)
    return float(np.mean(np.concatenate([(centred[:, :, :-lag] * centred[:, :, lag:]).ravel(), (centred[:, :-lag] * centred[:, lag:]).ravel()])))


def mixture(components: list[np.ndarray], weights) -> np.ndarray:
    return sum(np.sqrt(weight) * component for weight, component in zip(weights, components))


def fit_weights(target, components: list[np.ndarray], lags, rounds: int = 4) -> tuple[float, ...]:
    """Component weights whose mixture has the `target` grey autocorrelation within a crop (Pearson per
    crop, averaged). The mixture's within-crop covariance is linear in the weights, so non-negative
    shares of the within-crop variance (summing to 1) are fitted by least squares to a target that is
    then corrected, `rounds` times, by what the generated mixture measures."""
    variance = np.array([component.var(axis=(1, 2)).mean() for component in components])
    correlation = np.array([[_within_crop_covariance(component, lag) for component in components] for lag in lags]) / variance
    stiffness = 100.0  # enforces the shares' sum of 1
    design = np.vstack([correlation, stiffness * np.ones((1, len(components)))])
    target = np.asarray(target, dtype=float)
    aim = target.copy()
    for _ in range(rounds):
        shares, _ = optimize.nnls(design, np.append(aim, stiffness))
        weights = shares / variance
        weights = weights / weights.sum()
        field = mixture(components, weights)
        measured = np.array([grey_autocorrelation(field, lag) for lag in lags])
        aim = aim + (target - measured)
    return tuple(float(w) for w in np.round(weights, 3))


def measure(folder: Path, set_name: str, count: int, seed: int = 0) -> list[FrostProfile]:
    """A profile per photograph for the set: crops of its native size after its photo scale."""
    chosen = PARAMETER_SETS[set_name]
    size, texture = chosen.native_size, chosen.frost
    components = generated_components(texture, size, count=max(500, 3_000_000 // size**2))
    rng = np.random.default_rng(seed)
    profiles = []
    for name in PHOTOGRAPHS:
        with Image.open(folder / name) as image:
            photo = np.round(frost.bilinear_resize(np.asarray(image.convert("RGB")), texture.photo_scale))
        statistics = crop_statistics(random_crops(photo, size, count, rng), texture.lags)
        profiles.append(FrostProfile(**statistics, weights=fit_weights(statistics["autocorrelation"], components, texture.lags)))
    return profiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--set", default="cifar10-c", choices=sorted(name for name, chosen in PARAMETER_SETS.items() if chosen.frost is not None))
    parser.add_argument("--crops", type=int, default=400)
    args = parser.parse_args(argv)
    for profile in measure(args.folder, args.set, args.crops):
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
