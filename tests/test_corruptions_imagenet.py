"""The engine at 224x224 with the ImageNet-C parameters against imagecorruptions-imaug, the runnable
per-image port of the ImageNet-C generator, on natural 224x224 images at severities 1, 3 and 5.

Deterministic corruptions must agree within one grey level. Random ones are compared by their output
statistics over a few dozen images: how much they change an image (mean |out - in|), the spread of
the change, and the mean output level. Two rows of imagecorruptions are not the generator's:
its elastic transform drops the random affine step and uses other parameters, so elastic is compared
against the generator's formula written out below (OpenCV affine warp, then the smoothed random
displacement); its frost draws from six photographs where the generator draws from the first five
(the sixth, the darkest, is listed and never drawn), so frost is compared against the generator's
mix of a random crop of frost1..frost5 (the photographs imagecorruptions ships). Its motion blur is
its own kernel rather than ImageMagick's, which only the statistics comparison can cover anyway
(the angle is random)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from noisegame_cli.corruptions import ALL_CORRUPTIONS, corrupt, samples

imagecorruptions = pytest.importorskip("imagecorruptions", reason="imagecorruptions-imaug is not installed (pip install -e '.[dev]')")
cv2 = pytest.importorskip("cv2")

SEVERITIES = (1, 3, 5)
SIZE = 224
DETERMINISTIC = ("brightness", "contrast", "saturate", "pixelate", "jpeg_compression", "gaussian_blur", "defocus_blur", "zoom_blur")
# Random layers drawn once per image (a fractal, a frost crop, drops, a warp field) vary a lot from
# image to image, so they are measured on more images and with a wider tolerance.
PER_IMAGE_LAYERS = {"fog": 0.07, "frost": 0.07, "snow": 0.07, "spatter": 0.08, "elastic_transform": 0.07}
PIXEL_NOISE_TOLERANCE = 0.04
WHOLE_IMAGE_LAYERS = ("fog", "frost")  # one layer for the whole image: measured on the most images
GENERATOR_FROST_PHOTOGRAPHS = [Path(imagecorruptions.__file__).parent / "frost" / name for name in
                               ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")]  # fmt: skip
IMAGENET_C_FROST = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]  # image and frost weights
# ImageNet-C's elastic transform: (alpha, sigma, affine offset) in pixels of a 224x224 image.
IMAGENET_C_ELASTIC = [
    (244 * 2, 244 * 0.7, 244 * 0.1),
    (244 * 2, 244 * 0.08, 244 * 0.2),
    (244 * 0.05, 244 * 0.01, 244 * 0.02),
    (244 * 0.07, 244 * 0.01, 244 * 0.02),
    (244 * 0.12, 244 * 0.01, 244 * 0.02),
]


RANDOM_CASES = sorted(set(ALL_CORRUPTIONS) - set(DETERMINISTIC)) + ["frost with photographs"]


def natural_224_images() -> np.ndarray:
    return samples.natural_images(96, SIZE, seed=224)


def copy_generator_frost(folder: Path) -> Path:
    """The five photographs the generator draws from, as a folder for ``frost_dir``."""
    for path in GENERATOR_FROST_PHOTOGRAPHS:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.fixture(scope="module")
def photos():
    return natural_224_images()


@pytest.fixture(scope="module")
def frost_folder(tmp_path_factory):
    return copy_generator_frost(tmp_path_factory.mktemp("frost"))


def generator_frost(image: np.ndarray, severity: int, frosts: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C's frost: a random crop of one of frost1..frost5, mixed with the image."""
    image_weight, frost_weight = IMAGENET_C_FROST[severity - 1]
    frost = frosts[rng.integers(len(frosts))]
    top, left = rng.integers(0, frost.shape[0] - SIZE), rng.integers(0, frost.shape[1] - SIZE)
    crop = frost[top : top + SIZE, left : left + SIZE]
    return np.clip(image_weight * image.astype(np.float64) + frost_weight * crop, 0, 255).astype(np.uint8)


def generator_elastic(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C's elastic transform of one uint8 image, written from its published steps."""
    from scipy import ndimage
    from skimage.filters import gaussian

    alpha, sigma, offset = IMAGENET_C_ELASTIC[severity - 1]
    x = image.astype(np.float32) / 255.0
    size = x.shape[:2]
    center, half = np.float32(size) // 2, min(size) // 3
    source = np.float32([center + half, [center[0] + half, center[1] - half], center - half])
    target = source + rng.uniform(-offset, offset, size=source.shape).astype(np.float32)
    x = cv2.warpAffine(x, cv2.getAffineTransform(source, target), size[::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx, dy = ((gaussian(rng.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32) for _ in range(2))
    rows, cols = np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij")
    warped = np.stack([ndimage.map_coordinates(x[..., c], [rows + dy, cols + dx], order=1, mode="reflect") for c in range(3)], axis=-1)
    return (np.clip(warped, 0, 1) * 255).astype(np.uint8)


def image_count(name: str) -> int:
    """How many of the 96 test images a corruption is measured on."""
    if name in DETERMINISTIC:
        return 8
    return 96 if name in WHOLE_IMAGE_LAYERS else 48 if name in PER_IMAGE_LAYERS else 16


def reference(images: np.ndarray, name: str, severity: int) -> np.ndarray:
    rng = np.random.default_rng(severity)
    if name == "elastic_transform":
        return np.stack([generator_elastic(image, severity, rng) for image in images])
    if name == "frost":
        frosts = [cv2.imread(str(path))[..., ::-1] for path in GENERATOR_FROST_PHOTOGRAPHS]  # BGR to RGB
        return np.stack([generator_frost(image, severity, frosts, rng) for image in images])
    np.random.seed(severity)  # imagecorruptions draws from NumPy's global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs = [imagecorruptions.corrupt(image, corruption_name=name, severity=severity) for image in images]
    return np.stack([np.asarray(out).astype(np.uint8) for out in outputs])  # the generator's final np.uint8


def engine_and_generator(photos: np.ndarray, case: str, severity: int, frost_folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the images measured, the engine's output, the generator's) for one test case at one severity;
    the case "frost with photographs" is frost with ``frost_dir`` set to the generator's photographs."""
    name, frost_dir = ("frost", frost_folder) if case == "frost with photographs" else (case, None)
    images = photos[: image_count(name)]
    engine = corrupt(images, name, severity, seed=severity, parameters="imagenet-c", frost_dir=frost_dir)
    return images, engine, reference(images, name, severity)


def change_statistics(images: np.ndarray, out: np.ndarray) -> dict[str, float]:
    change = out.astype(np.float64) - images
    return {"mean |out - in|": np.abs(change).mean(), "std of out - in": change.std(), "mean level": out.mean()}


@pytest.mark.slow
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruption_is_the_generators_within_one_grey_level(photos, frost_folder, name):
    for severity in SEVERITIES:
        _, engine, generator = engine_and_generator(photos, name, severity, frost_folder)
        difference = np.abs(engine.astype(int) - generator)
        assert difference.max() <= 1, (name, severity, difference.max())
        assert difference.mean() <= 0.3, (name, severity, difference.mean())


@pytest.mark.slow
@pytest.mark.parametrize("case", RANDOM_CASES)
def test_random_corruption_has_the_generators_output_statistics(photos, frost_folder, case):
    tolerance = PER_IMAGE_LAYERS.get(case.split()[0], PIXEL_NOISE_TOLERANCE)
    for severity in SEVERITIES:
        images, engine, generator = engine_and_generator(photos, case, severity, frost_folder)
        expected, got = change_statistics(images, generator), change_statistics(images, engine)
        for statistic, value in expected.items():
            assert got[statistic] == pytest.approx(value, rel=tolerance), (case, severity, statistic, got, expected)


def fidelity_table() -> list[str]:
    """The measurements the tests above check, as Markdown rows (``python tests/test_corruptions_imagenet.py``)."""
    import tempfile

    photos = natural_224_images()
    rows = ["| corruption | severity | max / mean difference (grey levels) | mean abs change, engine / generator | std of change | mean level |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        frost_folder = copy_generator_frost(Path(folder))
        for case in list(ALL_CORRUPTIONS) + ["frost with photographs"]:
            for severity in SEVERITIES:
                images, engine, generator = engine_and_generator(photos, case, severity, frost_folder)
                if case in DETERMINISTIC:
                    difference = np.abs(engine.astype(int) - generator)
                    rows.append(f"| {case} | {severity} | {difference.max()} / {difference.mean():.3f} | | | |")
                else:
                    ours, theirs = change_statistics(images, engine), change_statistics(images, generator)
                    rows.append(f"| {case} | {severity} | | " + " | ".join(f"{ours[key] / theirs[key]:.3f}" for key in theirs) + " |")
    return rows


if __name__ == "__main__":
    print("\n".join(fidelity_table()))
