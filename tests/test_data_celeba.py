"""core.data.celeba: a fake ``img_align_celeba`` of flat-coloured 178x218 JPEGs.

Each face is one flat colour, so every output pixel is known: JPEG keeps a flat 8x8 block
to within a code or two (measured 1), and the antialiased resize of a constant is that
constant, so outputs are checked to ``TOL = 2 * 3 / 255`` in [-1, 1] units (3 codes).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.celeba import CelebA
from core.errors import InvalidInputError

TOL = 2 * 3 / 255
PARTITION = [0, 0, 0, 1, 2, 2]  # train 3, valid 1, test 2
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200),
           (128, 128, 128)]


def name(i: int) -> str:
    return f"{i + 1:06d}.jpg"


def signed_colour(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32)[:, None, None] / 255 * 2 - 1


@pytest.fixture
def celeba(tmp_path):
    """``tmp_path`` holding ``img_align_celeba/`` and ``list_eval_partition.txt``."""
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (178, 218), colour).save(folder / name(i), quality=95)
    lines = [f"{name(i)} {p}" for i, p in enumerate(PARTITION)]
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n\n")
    return tmp_path


@pytest.mark.parametrize(("split", "count"), [("all", 6), ("train", 3), ("valid", 1),
                                              ("test", 2)])
def test_split_sizes(celeba, split, count):
    data = CelebA(celeba, split)
    assert len(data) == count
    wanted = [name(i) for i, p in enumerate(PARTITION)
              if split == "all" or p == {"train": 0, "valid": 1, "test": 2}[split]]
    assert [p.name for p in data.files] == wanted


def test_root_may_be_the_folder_itself(celeba):
    assert len(CelebA(celeba / "img_align_celeba", "test")) == 2


def test_partition_file_inside_the_folder_is_found(celeba):
    (celeba / "list_eval_partition.txt").rename(
        celeba / "img_align_celeba" / "list_eval_partition.txt")
    assert len(CelebA(celeba, "valid")) == 1


@pytest.mark.parametrize("size", [8, 32, 64])
def test_items_are_signed_squares_labelled_0(celeba, size):
    data = CelebA(celeba, "all", size=size)
    for i, colour in enumerate(COLOURS):
        image, label = data[i]
        assert label == 0
        assert image.shape == (3, size, size) and image.dtype == torch.float32
        assert float(image.min()) >= -1 and float(image.max()) <= 1
        torch.testing.assert_close(image, signed_colour(colour).expand_as(image),
                                   rtol=0, atol=TOL)


def test_crop_is_taken_from_the_centre(tmp_path):
    # A face whose centre 140x140 is white and whose border is black: the default crop
    # sees only white; a crop wider than the white square sees black too.
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[39:179, 19:159] = 255  # rows (218-140)//2.., columns (178-140)//2..
    Image.fromarray(pixels).save(folder / name(0), quality=100, subsampling=0)
    image, _ = CelebA(folder, size=16)[0]
    # JPEG rings a few codes at the black edge; 140 -> 16 averages over ~9 px per output.
    assert float(image.min()) > 1 - 2 * 8 / 255
    wide, _ = CelebA(folder, size=16, crop=178)[0]
    assert float(wide.min()) < -0.5


def test_crop_larger_than_the_face_uses_the_short_side(celeba):
    image, _ = CelebA(celeba, "all", size=16, crop=500)[0]
    assert image.shape == (3, 16, 16)


def test_without_partition_file_all_lists_the_jpegs_sorted(celeba):
    (celeba / "list_eval_partition.txt").unlink()
    (celeba / "img_align_celeba" / "notes.txt").write_text("not a face")
    data = CelebA(celeba)
    assert [p.name for p in data.files] == [name(i) for i in range(6)]


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_without_partition_file_a_split_is_a_clear_error(celeba, split):
    (celeba / "list_eval_partition.txt").unlink()
    with pytest.raises(InvalidInputError,
                       match=f"split '{split}' needs list_eval_partition.txt"):
        CelebA(celeba, split)


def test_listed_file_missing_from_the_folder_is_a_clear_error(celeba):
    (celeba / "img_align_celeba" / name(4)).unlink()
    with pytest.raises(InvalidInputError, match=(
            f"lists 1 file\\(s\\) missing from .*img_align_celeba, e.g. {name(4)}")):
        CelebA(celeba, "test")
    assert len(CelebA(celeba, "train")) == 3  # other splits do not need it


@pytest.mark.parametrize("line", ["000001.jpg", "000001.jpg 3", "000001.jpg 0 extra"])
def test_malformed_partition_line_names_file_and_line(celeba, line):
    partition = celeba / "list_eval_partition.txt"
    partition.write_text(f"{name(1)} 0\n{line}\n")
    with pytest.raises(InvalidInputError, match=r"list_eval_partition.txt:2: expected "):
        CelebA(celeba)


def test_corrupt_jpeg_is_skipped_with_a_warning_and_the_next_is_returned(celeba):
    bad = celeba / "img_align_celeba" / name(1)
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a real jpeg")
    data = CelebA(celeba, "train")
    with pytest.warns(UserWarning, match=f"skipped .*{name(1)}: "):
        image, label = data[1]
    torch.testing.assert_close(image, signed_colour(COLOURS[2]).expand_as(image),
                               rtol=0, atol=TOL)
    assert label == 0
    assert [d["path"] for d in data.skipped] == [str(bad)]
    assert data.skipped[0]["reason"].startswith("cannot decode")  # the path is not repeated
    data[1]  # warned and listed once only
    assert len(data.skipped) == 1


def test_truncated_jpeg_at_the_end_wraps_to_the_first(celeba):
    path = celeba / "img_align_celeba" / name(2)
    path.write_bytes(path.read_bytes()[:300])
    data = CelebA(celeba, "train")
    with pytest.warns(UserWarning, match="truncated|cannot decode"):
        image, _ = data[2]
    torch.testing.assert_close(image, signed_colour(COLOURS[0]).expand_as(image),
                               rtol=0, atol=TOL)


def test_no_readable_image_at_all_is_a_clear_error(celeba):
    for i in range(3):
        (celeba / "img_align_celeba" / name(i)).write_bytes(b"junk")
    data = CelebA(celeba, "train")
    with pytest.warns(UserWarning), pytest.raises(InvalidInputError,
                                                  match="no readable image"):
        data[0]
    assert len(data.skipped) == 3


def test_unknown_split_lists_the_valid_ones(celeba):
    with pytest.raises(InvalidInputError,
                       match="unknown CelebA split 'val'; valid: all, train, valid, test"):
        CelebA(celeba, "val")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInputError, match="no img_align_celeba folder"):
        CelebA(tmp_path)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(InvalidInputError, match="no images for split 'all'"):
        CelebA(tmp_path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 4}, "size must be an integer >= 8, got 4"),
    ({"size": 64.0}, "size must be an integer >= 8, got 64.0"),
    ({"crop": 0}, "crop must be an integer >= 8, got 0"),
])
def test_bad_size_or_crop_is_refused(celeba, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        CelebA(celeba, **kwargs)
