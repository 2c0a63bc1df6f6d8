"""core.data.bundled: deterministic, non-flat crops of the embedded photos, split apart.

The photos ship inside scikit-image and scikit-learn (no network). Decoding them takes
about a second once per session (cached); crops are small so the module stays fast.
"""

import pytest
import torch

from core.data.bundled import (
    MIN_STD,
    PHOTOS,
    TEST_PHOTOS,
    bundled_crops,
    bundled_photos,
    photo_names,
)
from core.data.transforms import to_signed
from core.errors import InvalidInputError


def source_photos(crop: torch.Tensor, names) -> list[str]:
    """Names of the photos among ``names`` that hold ``crop`` (``(3, S, S)`` in [-1, 1])
    exactly at some position."""
    size = crop.shape[-1]
    holders = []
    for name in names:
        photo = to_signed(bundled_photos()[name])  # the same float ops as bundled_crops
        h, w = photo.shape[-2:]
        # Candidate corners: where the crop's top-left pixel matches in all channels.
        hits = (photo[:, :h - size + 1, :w - size + 1] == crop[:, :1, :1]).all(0).nonzero()
        if any(torch.equal(photo[:, t:t + size, l:l + size], crop) for t, l in hits.tolist()):
            holders.append(name)
    return holders


# --- photos and splits ---------------------------------------------------------------------

def test_photos_are_rgb_in_unit_range():
    photos = bundled_photos()
    assert list(photos) == list(PHOTOS)
    for name, photo in photos.items():
        assert photo.ndim == 3 and photo.shape[0] == 3, name
        assert photo.dtype == torch.float32
        assert 0 <= float(photo.min()) and float(photo.max()) <= 1, name


def test_splits_partition_the_photos():
    train, test = set(photo_names("train")), set(photo_names("test"))
    assert train.isdisjoint(test)
    assert train | test == set(photo_names("all")) == set(PHOTOS)
    assert test == set(TEST_PHOTOS)


def test_unknown_split_lists_the_valid_ones():
    with pytest.raises(InvalidInputError, match="unknown split 'valid'; valid: all, train, test"):
        photo_names("valid")
    with pytest.raises(InvalidInputError, match="unknown split"):
        bundled_crops(16, 2, split="valid")


# --- crops -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "count"), [(8, 1), (32, 5), (64, 12)])
def test_crops_shape_dtype_and_range(size, count):
    crops = bundled_crops(size, count)
    assert crops.shape == (count, 3, size, size)
    assert crops.dtype == torch.float32
    assert float(crops.min()) >= -1 and float(crops.max()) <= 1


def test_same_arguments_give_identical_crops():
    assert torch.equal(bundled_crops(24, 10, seed=3), bundled_crops(24, 10, seed=3))


def test_different_seed_gives_different_crops():
    a, b = bundled_crops(24, 10, seed=0), bundled_crops(24, 10, seed=1)
    assert not torch.equal(a, b)


def test_different_split_gives_different_crops():
    assert not torch.equal(bundled_crops(24, 4, split="train"),
                           bundled_crops(24, 4, split="test"))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_no_crop_is_flat(seed):
    # MIN_STD is in [0, 1] units; crops are in [-1, 1], twice the spread.
    crops = bundled_crops(16, 40, seed=seed)
    stds = crops.flatten(1).std(dim=1)
    assert float(stds.min()) >= 2 * MIN_STD * (1 - 1e-6)


@pytest.mark.parametrize("split", ["train", "test"])
def test_crops_come_only_from_their_split(split):
    own, other = photo_names(split), photo_names("test" if split == "train" else "train")
    crops = bundled_crops(16, 2 * len(own), seed=5, split=split)
    for crop in crops:
        assert source_photos(crop, own), "crop found in no photo of its own split"
        assert not source_photos(crop, other), "crop shares pixels with the other split"


def test_each_photo_of_the_split_is_used_in_turn():
    names = photo_names("test")
    crops = bundled_crops(16, len(names), seed=2, split="test")
    assert sorted(source_photos(c, names)[0] for c in crops) == sorted(names)


def test_large_size_uses_only_photos_big_enough():
    # Only hubble_deep_field (436 px) and retina (705 px) are at least 400 px on both sides.
    big = [n for n, p in bundled_photos().items() if min(p.shape[-2:]) >= 400]
    assert sorted(big) == ["hubble_deep_field", "retina"]
    crops = bundled_crops(400, 2, seed=0)
    assert crops.shape == (2, 3, 400, 400)


# --- bad arguments ---------------------------------------------------------------------------

def test_size_larger_than_every_photo_raises_naming_the_largest_usable():
    largest = max(min(p.shape[-2:]) for p in bundled_photos().values())
    with pytest.raises(InvalidInputError, match=(
            f"crop size 4096 exceeds every bundled photo in split 'all' "
            f"\\(largest usable size: {largest}\\)")):
        bundled_crops(4096, 1)


def test_size_too_large_for_the_test_split_only():
    largest_test = max(min(bundled_photos()[n].shape[-2:]) for n in photo_names("test"))
    assert bundled_crops(largest_test + 1, 1, split="train").shape[-1] == largest_test + 1
    with pytest.raises(InvalidInputError, match=f"largest usable size: {largest_test}"):
        bundled_crops(largest_test + 1, 1, split="test")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"count": 0}, "count must be a positive integer, got 0"),
    ({"count": -3}, "count must be a positive integer, got -3"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"size": 7}, "size must be an integer >= 8, got 7"),
    ({"size": 16.0}, "size must be an integer >= 8, got 16.0"),
    ({"size": True}, "size must be an integer >= 8, got True"),
    ({"count": "4"}, "count must be a positive integer, got '4'"),
])
def test_bad_arguments_raise_naming_the_value(kwargs, message):
    args = {"size": 16, "count": 2, "seed": 0} | kwargs
    with pytest.raises(InvalidInputError) as err:
        bundled_crops(**args)
    assert str(err.value) == message
