"""Natural test images for measuring the corruptions: crops of the photographs that ship inside
scikit-image and scikit-learn (no download), resized to the size wanted."""

from __future__ import annotations

import functools

import numpy as np

SKIMAGE_PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry", "hubble_deep_field")


@functools.lru_cache(maxsize=1)
def photographs() -> tuple[np.ndarray, ...]:
    """The bundled photographs as uint8 RGB arrays (grey ones repeated over three channels)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = []
    for name in SKIMAGE_PHOTOGRAPHS:
        photo = getattr(data, name)()
        photos.append(np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3])
    photos.extend(load_sample_images().images)  # china.jpg, flower.jpg
    return tuple(np.ascontiguousarray(photo, dtype=np.uint8) for photo in photos)


def natural_images(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """`count` uint8 images [count, size, size, 3]: random square crops of the photographs, of a side
    between max(64, size) and 256 px (or the photograph's shorter side), resized with anti-aliasing."""
    from skimage import transform

    rng = np.random.default_rng(seed)
    photos = photographs()
    smallest = max(64, size)
    images = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        largest = max(smallest, min(256, *photo.shape[:2]))
        side = int(rng.integers(smallest, largest + 1))
        top, left = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
        crop = transform.resize(photo[top : top + side, left : left + side], (size, size), anti_aliasing=True)
        images.append((crop * 255).astype(np.uint8))
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
