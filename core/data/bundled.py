"""The embedded default real images: colour photos shipped inside scikit-image and
scikit-learn, cut into deterministic crops. No network, no download.

The photos are fixed; crops depend only on ``(size, count, seed, split)``. ``split``
keeps two photos apart (``test``) from the rest (``train``), so held-out real crops never
share a pixel with training crops.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from core.data.transforms import to_signed
from core.errors import InvalidInputError, check_int

# name -> (loader module, attribute). All are camera photographs in RGB; synthetic images
# (colorwheel, logo) and the grey ones are left out, and so is "chelsea" (the cat): at its
# native resolution its blur residual shows an 11 dB peak at Nyquist, a resampling trace.
PHOTOS = {
    "astronaut": ("skimage", "astronaut"),
    "coffee": ("skimage", "coffee"),
    "rocket": ("skimage", "rocket"),
    "motorcycle": ("skimage", "stereo_motorcycle"),
    "immunohistochemistry": ("skimage", "immunohistochemistry"),
    "hubble_deep_field": ("skimage", "hubble_deep_field"),
    "retina": ("skimage", "retina"),
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
}
TEST_PHOTOS = ("coffee", "flower")
SPLITS = ("all", "train", "test")
# Photos are reduced by this factor (area average) before cropping. Camera demosaicing
# and JPEG's 8x8 blocks leave faint periodic traces at the original resolution; averaging
# 2x2 blocks cancels the period-2 ones and halves the rest, so real crops show no grid.
DOWNSCALE = 2
MIN_STD = 0.04  # crops flatter than this (in [0, 1] units) are redrawn: black sky, margins


def _load(source: str, key: str) -> np.ndarray:
    if source == "skimage":
        import skimage.data

        image = getattr(skimage.data, key)()
        if isinstance(image, tuple):  # stereo pairs: keep the left view
            image = image[0]
        return image
    from sklearn.datasets import load_sample_image

    return load_sample_image(key)


def _area_downscale(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:h, :w, :3].astype(np.float32).reshape(h // factor, factor, w // factor,
                                                           factor, 3)
    return blocks.mean(axis=(1, 3))


@functools.lru_cache(maxsize=1)
def bundled_photos() -> dict[str, torch.Tensor]:
    """The photos as ``(3, H, W)`` float32 tensors in ``[0, 1]``, already reduced by
    :data:`DOWNSCALE`. Cached: decoding takes about a second."""
    photos = {}
    for name, (source, key) in PHOTOS.items():
        image = _area_downscale(_load(source, key), DOWNSCALE) / 255.0
        photos[name] = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    return photos


def photo_names(split: str = "all") -> list[str]:
    """Names of the photos in ``split`` (``all``, ``train`` or ``test``)."""
    if split not in SPLITS:
        raise InvalidInputError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    if split == "all":
        return list(PHOTOS)
    test = split == "test"
    return [n for n in PHOTOS if (n in TEST_PHOTOS) == test]


def bundled_crops(size: int = 128, count: int = 64, seed: int = 0,
                  split: str = "all") -> torch.Tensor:
    """Deterministic crops of the bundled photos, ``(count, 3, size, size)`` in ``[-1, 1]``.

    Crop ``i`` comes from the photos in ``split`` taken in a seeded order (each photo in
    turn, so no single large photo dominates), at a seeded uniform position. Crops with
    a standard deviation under :data:`MIN_STD` (flat sky, black margins) are redrawn.

    Raises:
        InvalidInputError: bad arguments, or ``size`` larger than every photo in ``split``.
    """
    for field_name, value, lo in (("size", size, 8), ("count", count, 1), ("seed", seed, 0)):
        check_int(field_name, value, lo)
    photos = bundled_photos()
    names = [n for n in photo_names(split) if min(photos[n].shape[-2:]) >= size]
    if not names:
        biggest = max(min(photos[n].shape[-2:]) for n in photo_names(split))
        raise InvalidInputError(f"crop size {size} exceeds every bundled photo in split "
                                f"'{split}' (largest usable size: {biggest})")
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    crops = torch.empty(count, 3, size, size)
    for i in range(count):
        photo = photos[order[i % len(order)]]
        h, w = photo.shape[-2:]
        for _ in range(20):
            top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            crop = photo[:, top:top + size, left:left + size]
            if float(crop.std()) >= MIN_STD:
                break
        crops[i] = crop
    return to_signed(crops)
