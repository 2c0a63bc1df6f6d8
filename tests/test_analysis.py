"""core.analysis: which error an empty or unusable set of images gives, decided by the
exception's type (:class:`NoImagesError`), never by its message.

The reports themselves are checked through ``fpx spectrum`` in ``tests/test_cli.py``.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from core.analysis import analyse_batches, analyse_paths
from core.errors import InvalidInputError, NoImagesError, UnknownNameError
from core.spectrum import mean_spectrum


def png(path, size: int):
    Image.fromarray(np.full((size, size, 3), 100, np.uint8)).save(path)


def test_no_images_is_its_own_type():
    assert issubclass(NoImagesError, InvalidInputError)
    with pytest.raises(NoImagesError):
        mean_spectrum(iter([]))
    with pytest.raises(NoImagesError):
        analyse_batches(iter([]))


def test_nothing_found(tmp_path):
    with pytest.raises(NoImagesError, match="^no image files found in the given paths$"):
        analyse_paths([tmp_path / "nowhere"], notify=lambda path, reason: None)


def test_all_too_small_says_how_many_and_hints_at_size(tmp_path):
    for i in range(3):
        png(tmp_path / f"{i}.png", 20)
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(NoImagesError, match=r"^none of the 4 image files is usable \(3 smaller "
                                            r"than 32x32; try a smaller --size\)$"):
        analyse_paths([tmp_path], size=32, notify=lambda path, reason: None)


def test_other_errors_pass_through_unchanged(tmp_path):
    png(tmp_path / "a.png", 16)
    # An unknown residual fails inside the same call that reports "no images": it must
    # reach the caller as it is, not be mistaken for an empty set.
    with pytest.raises(UnknownNameError, match="unknown residual 'foo'"):
        analyse_paths([tmp_path], size=16, residual="foo")
    report = analyse_paths([tmp_path], size=16)
    assert report.images == 1 and report.skipped == []
    assert torch.isfinite(report.spectrum).all()
