"""The corruption engine: each corruption on its own, against independent NumPy/SciPy/PIL computations
of the published formulas (deterministic ones) or their output statistics (random ones)."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage
from skimage import color, data, transform

from noisegame_cli.corruptions import (
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    PARAMETERS,
    corrupt,
    corrupt_dataset,
    corrupt_tf,
)
from noisegame_cli.corruptions import PARAMETER_SETS, samples
from noisegame_cli.corruptions import _tensor, engine
from noisegame_cli.corruptions import frost as frost_module
from noisegame_cli.corruptions import ops
from noisegame_cli.corruptions import spatter as spatter_module
from noisegame_cli.corruptions.frost_fit import grey_autocorrelation
from noisegame_cli.errors import UserError

SEVERITIES = (1, 2, 3, 4, 5)
DETERMINISTIC = {
    "brightness", "contrast", "saturate", "pixelate", "jpeg_compression", "gaussian_blur", "defocus_blur", "zoom_blur",
}
RANDOM = sorted(set(ALL_CORRUPTIONS) - DETERMINISTIC)
# Severity pairs (weaker, stronger) whose order the parameter table implies; every other corruption
# is expected to change an image more at each step 1 -> 2 -> ... -> 5.
ORDERED_PAIRS = {
    # S scaled by .3 then .1 (desaturate), then by 1.5, 2 (+.1), 2.5 (+.2) (oversaturate): two ladders
    "saturate": [(1, 2), (3, 4), (4, 5)],
    # the random affine part shrinks (.08 -> .03 of the size) while the elastic part grows
    "elastic_transform": [],
    # sigma .05/.25/.4 with one pass, then .25/.4 with two passes: more passes shuffle more
    "glass_blur": [(2, 4), (3, 5)],
    # the image weight drops from severity 3 on, which offsets part of the added frost
    "frost": [(1, 2), (2, 3)],
    # water drops at severities 1-3, mud at 4-5
    "spatter": [(1, 2), (2, 3), (4, 5)],
}
# Radius 6 and 8 at the same sigma 2 give almost the same kernel (taps past 6 weigh < 0.3 %).
NEARLY_EQUAL = {("motion_blur", 3, 4)}


def natural_images() -> np.ndarray:
    """Six 32x32 crops of two photographs that ship with scikit-image."""
    astronaut, chelsea = data.astronaut(), data.chelsea()
    crops = [
        astronaut,
        astronaut[:256, 128:384],
        astronaut[256:, 256:],
        chelsea,
        chelsea[50:250, 100:300],
        chelsea[:150, 300:],
    ]
    return np.stack([(transform.resize(crop, (32, 32), anti_aliasing=True) * 255).astype(np.uint8) for crop in crops])


def natural_images_sample(count: int, size: int = 32) -> np.ndarray:
    return samples.natural_images(count, size, seed=count)


@pytest.fixture(scope="module")
def images():
    return natural_images()


def as_uint8(values: np.ndarray) -> np.ndarray:
    """The generator's final step: clip to 0..1, scale by 255, truncate."""
    return (np.clip(values, 0, 1) * 255).astype(np.uint8)


def assert_close(actual: np.ndarray, expected: np.ndarray, max_levels: int = 2, mean_levels: float = 0.5):
    difference = np.abs(actual.astype(int) - expected.astype(int))
    assert difference.max() <= max_levels, f"max difference {difference.max()} grey levels"
    assert difference.mean() <= mean_levels, f"mean difference {difference.mean():.3f} grey levels"


# ------------------------------------------------------------------ independent references


def reference_hsv(image: np.ndarray, severity: int, name: str) -> np.ndarray:
    hsv = color.rgb2hsv(image / 255.0)
    if name == "brightness":
        hsv[..., 2] = np.clip(hsv[..., 2] + PARAMETERS[name][severity - 1], 0, 1)
    else:
        factor, shift = PARAMETERS[name][severity - 1]
        hsv[..., 1] = np.clip(hsv[..., 1] * factor + shift, 0, 1)
    return as_uint8(color.hsv2rgb(hsv))


def reference_contrast(image, severity):
    x = image / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return as_uint8((x - means) * PARAMETERS["contrast"][severity - 1] + means)


def reference_pixelate(image, severity):
    side = int(32 * PARAMETERS["pixelate"][severity - 1])
    small = Image.fromarray(image).resize((side, side), Image.BOX)
    return np.asarray(small.resize((32, 32), Image.BOX))


def reference_jpeg(image, severity):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=PARAMETERS["jpeg_compression"][severity - 1])
    return np.asarray(Image.open(buffer))


def reference_gaussian_blur(image, severity):
    sigma = PARAMETERS["gaussian_blur"][severity - 1]
    return as_uint8(ndimage.gaussian_filter(image / 255.0, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0))


def reference_defocus_blur(image, severity):
    radius, alias_sigma = PARAMETERS["defocus_blur"][severity - 1]
    grid = np.arange(-8, 9)
    rows, cols = np.meshgrid(grid, grid)
    disk = (rows**2 + cols**2 <= radius**2).astype(float)
    disk /= disk.sum()
    kernel = ndimage.gaussian_filter(disk, alias_sigma, radius=1, mode="mirror")  # a 3x3 Gaussian
    x = image / 255.0
    return as_uint8(np.stack([ndimage.correlate(x[..., c], kernel, mode="mirror") for c in range(3)], axis=-1))


def reference_zoom_blur(image, severity):
    stop = (1.06, 1.11, 1.16, 1.21, 1.26)[severity - 1]
    x = (image / 255.0).astype(np.float32)
    total = np.zeros_like(x)
    for factor in np.arange(1, stop, 0.01):
        crop = int(np.ceil(32 / factor))
        top = (32 - crop) // 2
        zoomed = ndimage.zoom(x[top : top + crop, top : top + crop], (factor, factor, 1), order=1)
        trim = (zoomed.shape[0] - 32) // 2
        total += zoomed[trim : trim + 32, trim : trim + 32]
    return as_uint8((x + total) / (len(np.arange(1, stop, 0.01)) + 1))


REFERENCES = {
    "brightness": lambda image, severity: reference_hsv(image, severity, "brightness"),
    "saturate": lambda image, severity: reference_hsv(image, severity, "saturate"),
    "contrast": reference_contrast,
    "pixelate": reference_pixelate,
    "jpeg_compression": reference_jpeg,
    "gaussian_blur": reference_gaussian_blur,
    "defocus_blur": reference_defocus_blur,
    "zoom_blur": reference_zoom_blur,
}


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_corruption_matches_published_formula(images, name):
    for severity in SEVERITIES:
        expected = np.stack([REFERENCES[name](image, severity) for image in images])
        assert_close(corrupt(images, name, severity), expected)


# ------------------------------------------------------------------ statistics of the random ones


@pytest.mark.parametrize("mode, scipy_mode", [("reflect101", "mirror"), ("edge", "nearest")])
def test_fourier_filter_is_a_correlation_with_borders(mode, scipy_mode):
    """The FFT route of filter_2d (large kernels on large images), against SciPy's correlation."""
    rng = np.random.default_rng(4)
    values = rng.uniform(size=(2, 40, 36, 3)).astype(np.float32)
    kernel = rng.uniform(size=(9, 7))
    got = _tensor.fourier_filter_2d(tf.constant(values), kernel, mode).numpy()
    expected = np.stack([[ndimage.correlate(image[..., c].astype(float), kernel, mode=scipy_mode) for c in range(3)] for image in values])
    np.testing.assert_allclose(got, np.moveaxis(expected, 1, -1), atol=1e-5)


def grey_images(value=128, count=32, size=32):
    return np.full((count, size, size, 3), value, dtype=np.uint8)


def test_gaussian_noise_residual_std_is_sigma():
    base = grey_images()
    for severity, sigma in zip(SEVERITIES, PARAMETERS["gaussian_noise"]):
        residual = corrupt(base, "gaussian_noise", severity, seed=severity).astype(float) - 128
        # truncation to uint8 shifts the mean by half a level and adds 1/12 level^2 of variance
        assert residual.std() == pytest.approx(np.sqrt((sigma * 255) ** 2 + 1 / 12), rel=0.03)
        assert residual.mean() == pytest.approx(-0.5, abs=0.3)


def test_speckle_noise_residual_std_scales_with_intensity():
    base = grey_images(100)
    sigma = PARAMETERS["speckle_noise"][4]
    residual = corrupt(base, "speckle_noise", 5, seed=3).astype(float) - 100
    assert residual.std() == pytest.approx(sigma * 100, rel=0.04)


def test_shot_noise_variance_is_poisson():
    base = grey_images(128)
    for severity, photons in zip(SEVERITIES, PARAMETERS["shot_noise"]):
        out = corrupt(base, "shot_noise", severity, seed=severity).astype(float) / 255
        # Poisson(x c) / c has variance x / c (plus the 8-bit truncation's 1/12 level^2)
        expected = 128 / 255 / photons + 1 / 12 / 255**2
        assert out.var() == pytest.approx(expected, rel=0.06)


def test_impulse_noise_sets_that_fraction_of_values_half_salt_half_pepper():
    base = grey_images(128, count=64)
    for severity, amount in zip(SEVERITIES, PARAMETERS["impulse_noise"]):
        out = corrupt(base, "impulse_noise", severity, seed=severity)
        salt, pepper = np.mean(out == 255), np.mean(out == 0)
        assert salt + pepper == pytest.approx(amount, rel=0.08)
        assert salt == pytest.approx(pepper, rel=0.2)
        assert np.all((out == 0) | (out == 255) | (out == 128))


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus_blur", "zoom_blur", "motion_blur", "glass_blur", "elastic_transform"])
def test_blurs_and_warps_keep_a_constant_image(name):
    base = grey_images(150, count=4)
    for severity in (1, 5):
        assert np.abs(corrupt(base, name, severity, seed=1).astype(int) - 150).max() <= 1


def original_glass_walk(image: np.ndarray, offsets: np.ndarray, delta: int) -> np.ndarray:
    """The generator's loop, statement for statement, with the given (dy, dx) offsets
    [iterations, H - 2 delta, W - 2 delta, 2] (row h, column w at index [h - delta - 1, w - delta - 1])."""
    x = image.copy()
    height, width = x.shape[:2]
    for step in offsets:
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                dy, dx = step[h - delta - 1, w - delta - 1]
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]  # copies: NumPy views
    return x


@pytest.mark.parametrize("height, width, delta, iterations", [(32, 32, 1, 1), (32, 32, 1, 2), (24, 20, 2, 3), (26, 26, 4, 2)])
def test_glass_walk_is_the_generators_copy_statement(height, width, delta, iterations):
    offsets = ops.glass_offsets(3, height, width, delta, iterations, tf.constant([height, delta], tf.int64))
    sources = ops.glass_sources(offsets, height, width, delta).numpy()
    rng = np.random.default_rng(delta)
    for index, source in enumerate(sources):
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        expected = original_glass_walk(image, offsets.numpy()[:, index], delta)
        assert np.array_equal(image.reshape(-1, 3)[source].reshape(image.shape), expected)


def test_glass_blur_at_one_iteration_copies_from_above_or_left():
    offsets = ops.glass_offsets(4, 32, 32, 1, 1, tf.constant([3, 1], tf.int64))
    source = ops.glass_sources(offsets, 32, 32, 1).numpy().reshape(4, 32, 32)
    rows, cols = np.divmod(source, 32)
    dy, dx = rows - np.arange(32)[:, None], cols - np.arange(32)[None, :]
    # the walk visits rows and columns 2..31; every other pixel keeps its value
    inside = np.zeros((32, 32), bool)
    inside[2:, 2:] = True
    assert np.all(dy[:, ~inside] == 0) and np.all(dx[:, ~inside] == 0)
    # a visited pixel copies (still unmodified) itself, or the pixel above, left or above-left: 1/4 each
    assert set(np.unique(dy[:, inside])) == {-1, 0} and set(np.unique(dx[:, inside])) == {-1, 0}
    assert np.mean(dy[:, inside] == -1) == pytest.approx(0.5, abs=0.03)
    assert np.mean((dy[:, inside] == 0) & (dx[:, inside] == 0)) == pytest.approx(0.25, abs=0.03)


def original_glass_blur(image: np.ndarray, parameter, rng) -> np.ndarray:
    """The generator's glass blur (scikit-image's gaussian is SciPy's with edge borders)."""
    sigma, delta, iterations = parameter

    def blur(x):
        return ndimage.gaussian_filter(x / 255.0, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)

    x = np.uint8(blur(image) * 255)
    offsets = rng.integers(-delta, delta, size=(iterations, x.shape[0] - 2 * delta, x.shape[1] - 2 * delta, 2))
    return as_uint8(blur(original_glass_walk(x, offsets, delta)))


def test_glass_blur_changes_images_as_much_as_the_generator():
    base = natural_images_sample(60)
    rng = np.random.default_rng(0)
    for severity in (1, 4):
        parameter = PARAMETERS["glass_blur"][severity - 1]
        original = np.stack([original_glass_blur(image, parameter, rng) for image in base])
        engine = corrupt(base, "glass_blur", severity, seed=severity)
        expected, got = (np.abs(out.astype(float) - base).mean() for out in (original, engine))
        assert got == pytest.approx(expected, rel=0.05), (severity, got, expected)


@pytest.mark.parametrize("set_name, height, width", [("cifar10-c", 32, 32), ("tiny-imagenet-c", 64, 64), ("imagenet-c", 224, 224), ("imagenet-c", 48, 80)])
def test_pixelate_is_pillows_box_resize_exactly(set_name, height, width):
    base = np.ascontiguousarray(samples.natural_images(6, max(height, width), seed=height)[:, :height, :width])
    for severity in SEVERITIES:
        fraction = PARAMETER_SETS[set_name].row("pixelate", severity)
        small = (int(width * fraction), int(height * fraction))
        expected = [np.asarray(Image.fromarray(image).resize(small, Image.BOX).resize((width, height), Image.BOX)) for image in base]
        assert np.array_equal(corrupt(base, "pixelate", severity, parameters=set_name), np.stack(expected)), severity


def test_motion_blur_streaks_a_dot_along_one_line():
    dot = np.zeros((1, 32, 32, 3), np.uint8)
    dot[0, 16, 16] = 255
    out = corrupt(dot, "motion_blur", 5, seed=4)[0, ..., 0]
    lit = np.argwhere(out > 0)
    assert len(lit) >= 4
    # all lit pixels lie within a pixel of one straight line through the dot
    direction = (lit - [16, 16]).astype(float)
    _, singular, _ = np.linalg.svd(direction - direction.mean(0))
    assert singular[1] / np.sqrt(len(lit)) < 1.0


def test_snow_brightens_and_water_spatter_only_adds():
    base = natural_images()
    for severity in (1, 5):
        assert corrupt(base, "snow", severity, seed=2).mean() > base.mean()
    for severity in (1, 3):
        assert (corrupt(base, "spatter", severity, seed=2).astype(int) - base).min() >= -1


def opencv_chamfer_distance(edges: np.ndarray) -> np.ndarray:
    """OpenCV's distanceTransform(DIST_L2, mask 5) as written: two raster passes in float32 over the
    5x5 chamfer mask (1, 1.4, 2.1969), distance 0 on the edges."""
    height, width = edges.shape
    straight, diagonal, knight = np.float32(1), np.float32(1.4), np.float32(2.1969)
    d = np.full((height + 4, width + 4), np.float32(1e9), np.float32)
    forward = [(-2, -1, knight), (-2, 1, knight), (-1, -2, knight), (-1, -1, diagonal), (-1, 0, straight),
               (-1, 1, diagonal), (-1, 2, knight), (0, -1, straight)]  # fmt: skip
    for i in range(height):
        for j in range(width):
            d[i + 2, j + 2] = 0 if edges[i, j] else min(d[i + 2 + di, j + 2 + dj] + w for di, dj, w in forward)
    for i in reversed(range(height)):
        for j in reversed(range(width)):
            d[i + 2, j + 2] = min([d[i + 2, j + 2]] + [d[i + 2 - di, j + 2 - dj] + w for di, dj, w in forward])
    return d[2:-2, 2:-2]


def drop_layers(count: int, size: int, seed: int = 0) -> np.ndarray:
    """8-bit liquid layers as the water mode makes them (int32 [count, size, size])."""
    rng = np.random.default_rng(seed)
    layers = []
    for index in range(count):
        loc, spread, sigma, threshold, _, _ = PARAMETERS["spatter"][index % 3]
        liquid = ndimage.gaussian_filter(rng.normal(loc, spread, (size, size)), sigma, mode="nearest", truncate=4.0)
        layers.append((np.where(liquid < threshold, 0, liquid) * 255).astype(np.uint8))
    return np.stack(layers).astype(np.int32)


def test_chamfer_distance_is_opencvs_float32_passes():
    layers = drop_layers(3, 24)
    edges = spatter_module.canny(tf.constant(layers), 50, 150).numpy()
    assert 0.02 < edges.mean() < 0.5
    distance = spatter_module.chamfer_distance(tf.constant(edges)).numpy() / spatter_module.FIXED_ONE
    for got, edge in zip(distance, edges):
        expected = opencv_chamfer_distance(edge)
        near = expected < 30
        assert np.array_equal(got[near].astype(np.float32), expected[near])
        assert np.all(got[~near] >= 30)


def test_histogram_equalisation_is_opencvs():
    values = np.random.default_rng(1).integers(3, 21, size=(2, 16, 16)).astype(np.int32)
    values[1] = 7  # one value only: kept as it is
    got = spatter_module.equalise_histogram(tf.constant(values), 21).numpy()
    counts = np.bincount(values[0].ravel(), minlength=21)
    first = np.nonzero(counts)[0][0]
    scale = np.float32(255) / np.float32(values[0].size - counts[first])
    lut = np.round((np.cumsum(counts) - counts[first]).astype(np.float32) * scale).astype(int)
    assert np.array_equal(got[0], lut[values[0]])
    assert np.all(got[1] == 7)


def test_water_lighting_is_opencvs_step_by_step():
    cv2 = pytest.importorskip("cv2")
    layers = drop_layers(12, 32, seed=2)
    got = spatter_module.water_lighting(tf.constant(layers)).numpy()
    for layer, lighting in zip(layers.astype(np.uint8), got):
        distance = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
        distance = cv2.blur(cv2.threshold(distance, 20, 20, cv2.THRESH_TRUNC)[1], (3, 3)).astype(np.uint8)
        embossed = cv2.filter2D(cv2.equalizeHist(distance), cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        assert np.array_equal(lighting, cv2.blur(embossed, (3, 3)))


def test_water_spatter_changes_images_as_much_as_the_generator():
    cv2 = pytest.importorskip("cv2")
    base = natural_images_sample(100)
    rng = np.random.default_rng(3)
    for severity in (1, 2, 3):
        loc, spread, sigma, threshold, intensity, _ = PARAMETERS["spatter"][severity - 1]
        original = []
        for image in base:
            liquid = ndimage.gaussian_filter(rng.normal(loc, spread, image.shape[:2]), sigma, mode="nearest", truncate=4.0)
            layer = (np.where(liquid < threshold, 0, liquid) * 255).astype(np.uint8)
            distance = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
            distance = cv2.blur(cv2.threshold(distance, 20, 20, cv2.THRESH_TRUNC)[1], (3, 3)).astype(np.uint8)
            embossed = cv2.filter2D(cv2.equalizeHist(distance), cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
            drops = layer * cv2.blur(embossed, (3, 3)).astype(np.float32)
            drops = drops / drops.max() * intensity
            original.append(as_uint8(image / 255.0 + drops[..., None] * np.array([175, 238, 238]) / 255.0))
        engine = corrupt(base, "spatter", severity, seed=severity)
        expected, got = (np.abs(out.astype(float) - base).mean() for out in (np.stack(original), engine))
        assert got == pytest.approx(expected, rel=0.06), (severity, got, expected)


def test_mud_spatter_paints_brown():
    base = grey_images(200, count=16)
    out = corrupt(base, "spatter", 5, seed=6).astype(int)
    changed = np.any(out != 200, axis=-1)
    assert changed.mean() > 0.01
    red, green, blue = out[changed].T
    assert np.all(red >= green) and np.all(green >= blue)


FROST_CASES = [(name, index) for name, chosen in PARAMETER_SETS.items() if chosen.frost is not None for index in range(len(chosen.frost.profiles))]


@pytest.mark.parametrize("set_name, profile", FROST_CASES)
def test_synthetic_frost_matches_the_photographs_statistics(set_name, profile):
    chosen = PARAMETER_SETS[set_name]
    texture, size = chosen.frost, chosen.native_size
    weights = texture.profiles[profile].weights
    count = max(100, 300 * 32 * 32 // size**2)
    seed = tf.constant([profile, 9], tf.int64)
    field = frost_module.texture_field(count, size, size, tf.constant([weights] * count, tf.float32), seed, 1.0, texture.sigmas).numpy()
    errors = np.array([grey_autocorrelation(field[..., 0], lag) - target for lag, target in zip(texture.lags, texture.profiles[profile].autocorrelation)])
    if size < 224:
        assert np.abs(errors).max() < 0.04, errors
    else:  # the components follow the 224-px photographs' curves less closely, and 100 crops vary more
        assert np.abs(errors).max() < 0.1 and np.abs(errors).mean() < 0.04, errors


def test_synthetic_frost_colour_statistics():
    texture = PARAMETER_SETS["cifar10-c"].frost
    layer = frost_module.synthetic_frost(1500, 32, 32, tf.constant([5, 5], tf.int64), 1.0, texture).numpy()
    all_means = np.mean([profile.means for profile in texture.profiles], axis=0)
    assert layer.mean(axis=(0, 1, 2)) == pytest.approx(all_means, abs=5)
    within = layer.std(axis=(1, 2)).mean(axis=0)
    assert within == pytest.approx([23.4, 21.9, 22.0], abs=3)


def test_frost_reads_photographs_from_a_folder(tmp_path, images):
    rng = np.random.default_rng(0)
    for index in range(2):
        photo = rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
        Image.fromarray(photo).save(tmp_path / f"frost{index}.png")
    out = corrupt(images, "frost", 2, seed=1, frost_dir=tmp_path)
    synthetic = corrupt(images, "frost", 2, seed=1)
    assert out.shape == images.shape and not np.array_equal(out, synthetic)
    # a crop of uniform noise 0..255 weighted by .3 adds about 38 grey levels on average
    assert (out.astype(float) - images).mean() == pytest.approx(0.3 * 127.5, abs=8)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no frost photographs"):
        corrupt(images, "frost", 2, frost_dir=empty)


# ------------------------------------------------------------------ every corruption


def test_names():
    assert len(CORRUPTIONS) == 15 and CORRUPTIONS[0] == "gaussian_noise" and CORRUPTIONS[-1] == "jpeg_compression"
    assert EXTRA_CORRUPTIONS == ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    assert set(PARAMETERS) == set(ALL_CORRUPTIONS)
    assert all(len(rows) == 5 for rows in PARAMETERS.values())


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_each_corruption(images, name):
    outputs = {severity: corrupt(images, name, severity, seed=11) for severity in SEVERITIES}
    for out in outputs.values():
        assert out.shape == images.shape and out.dtype == np.uint8
    change = {severity: np.abs(out.astype(float) - images).mean() for severity, out in outputs.items()}
    assert min(change.values()) > 0.3, change
    pairs = ORDERED_PAIRS.get(name, [(s, s + 1) for s in SEVERITIES[:-1]])
    for weaker, stronger in pairs:
        slack = 0.5 if (name, weaker, stronger) in NEARLY_EQUAL else 0.0
        assert change[stronger] > change[weaker] - slack, (name, change)
    # the same seed gives the same pixels; another seed other pixels (random corruptions only)
    assert np.array_equal(corrupt(images, name, 3, seed=11), outputs[3])
    if name in RANDOM:
        assert not np.array_equal(corrupt(images, name, 3, seed=12), outputs[3])


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_each_corruption_inside_tf_data_and_on_other_sizes(images, name):
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(len(images))
    dataset = dataset.enumerate().map(lambda index, batch: corrupt_tf(batch, name, 2, seed=tf.stack([tf.constant(7, tf.int64), index])))
    (mapped,) = [batch.numpy() for batch in dataset]
    # the same pixels as `corrupt` with that seed, up to float rounding under a different executor
    difference = np.abs(mapped.astype(int) - corrupt(images, name, 2, seed=7))
    assert difference.max() <= 1 and difference.mean() < 0.05
    larger = np.asarray(tf.image.resize(images[:2], (48, 40)), dtype=np.uint8)
    out = corrupt(larger, name, 4, seed=1)
    assert out.shape == larger.shape and out.dtype == np.uint8 and not np.array_equal(out, larger)
    single = corrupt(images[0], name, 1, seed=1)
    assert single.shape == images[0].shape


@pytest.mark.parametrize("name", ["gaussian_noise", "contrast"])  # one run blocks at once, one one at a time
def test_blocks_give_the_same_pixels_whatever_runs_them(monkeypatch, name):
    base = samples.natural_images(3 * engine.block_size(96, 96) + 5, 96, seed=4)  # four blocks
    together = corrupt(base, name, 3, seed=5)
    stream = corrupt_dataset(tf.data.Dataset.from_tensor_slices(base), name, 3, seed=5)
    assert int(stream.cardinality()) == len(base)  # known, so Keras' predict knows when it ends
    streamed = np.stack([image.numpy() for image in stream])
    monkeypatch.setattr(engine, "CONCURRENT_BLOCKS", 1)
    assert np.array_equal(corrupt(base, name, 3, seed=5), together)
    # tf.data's executor may round a float step differently: a few values in a million move one level
    difference = np.abs(streamed.astype(int) - together)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-5


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_a_slice_of_a_set_gets_the_pixels_of_the_whole_sets_corruption(monkeypatch, name):
    """What a shard of an evaluation relies on: images 3..8 of ten, corrupted with offset 3, are those
    images of the ten corrupted together (blocks of four images here: the slice starts inside the
    first block and stops inside the third)."""
    monkeypatch.setattr(engine, "BLOCK", 4)
    assert engine.block_size(32, 32) == 4
    whole = natural_images_sample(10)
    together = corrupt(whole, name, 3, seed=2)
    sliced = corrupt(whole[3:9], name, 3, seed=2, offset=3)
    assert np.array_equal(sliced, together[3:9])
    assert not np.array_equal(corrupt(whole[3:9], name, 3, seed=2), sliced) or name in DETERMINISTIC
    stream = corrupt_dataset(tf.data.Dataset.from_tensor_slices((whole[3:9], np.arange(6))), name, 3, seed=2, offset=3)
    assert int(stream.cardinality()) == 6
    streamed = np.stack([image.numpy() for image, _ in stream])
    difference = np.abs(streamed.astype(int) - together[3:9])  # tf.data may round a float step differently
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: corrupt(x, "fogg", 1), "unknown corruption 'fogg'"),
        (lambda x: corrupt(x, "fog", 1, offset=-1), "offset of the first image"),
        (lambda x: corrupt(x, "fog", 0), "severity must be an integer in 1..5"),
        (lambda x: corrupt(x, "fog", 6), "severity must be an integer in 1..5"),
        (lambda x: corrupt(x.astype(np.float32), "fog", 1), "must be uint8"),
        (lambda x: corrupt(x[..., :1], "fog", 1), r"must be \[N, H, W, 3\]"),
        (lambda x: corrupt(x[:, :4, :4], "fog", 1), "at least 8x8"),
    ],
)
def test_bad_input_is_a_user_error(images, call, message):
    with pytest.raises(UserError, match=message):
        call(images)
