"""core.data.folder: recursive scan, batches of centre crops, named skips, FolderDataset.

Images are lossless PNGs, so crops are compared exactly with the written pixels mapped to
``[-1, 1]`` the same way the loader does (``uint8 / 255 * 2 - 1`` in float32).
"""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.folder import (
    FolderDataset,
    Skipped,
    common_crop_size,
    iter_image_batches,
    model_folders,
    native_size,
    read_folder,
    scan_images,
)
from core.errors import InvalidInputError


def write_png(path, pixels: np.ndarray):
    """Write ``(H, W, 3)`` uint8 ``pixels`` as a PNG at ``path`` (parents made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path, "PNG")
    return path


def flat(value: int, h: int = 10, w: int = 10) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def signed(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` in [-1, 1], as the loader computes it."""
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1) * 2.0 - 1.0


def collect(skipped: Skipped):
    """A ``notify`` that records calls instead of warning."""
    calls = []
    skipped.notify = lambda path, reason: calls.append((path, reason))
    return calls


# --- scan_images ---------------------------------------------------------------------------

def test_scan_is_recursive_and_matches_suffixes_in_any_case(tmp_path):
    for name in ["a.png", "B.PNG", "c.JpG", "sub/d.jpeg", "sub/deeper/e.WebP", "f.bmp",
                 "g.TIF", "h.tiff"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("ignored quietly inside a folder")
    (tmp_path / "raw.gif").write_bytes(b"x")
    skipped = Skipped()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing warned
        found = scan_images([tmp_path], skipped)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == sorted(
        ["a.png", "B.PNG", "c.JpG", "sub/d.jpeg", "sub/deeper/e.WebP", "f.bmp", "g.TIF",
         "h.tiff"])
    assert len(skipped) == 0


def test_scan_returns_each_folder_sorted(tmp_path):
    for name in ["z.png", "a.png", "m/b.png", "m/a.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = scan_images([tmp_path])
    assert found == sorted(found)
    assert [p.name for p in found] == ["a.png", "a.png", "b.png", "z.png"]


def test_scan_keeps_argument_order(tmp_path):
    for name in ["x/2.png", "y/1.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = scan_images([tmp_path / "y", tmp_path / "x"])
    assert [p.name for p in found] == ["1.png", "2.png"]


def test_scan_skips_explicit_non_image_and_missing_path_with_reasons(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    missing = tmp_path / "gone.png"
    image = tmp_path / "ok.png"
    image.write_bytes(b"x")
    skipped = Skipped()
    calls = collect(skipped)
    found = scan_images([text, missing, image], skipped)
    assert found == [image]
    assert skipped.items == [
        {"path": str(text), "reason": skipped.items[0]["reason"]},
        {"path": str(missing), "reason": "no such file or folder"},
    ]
    assert skipped.items[0]["reason"].startswith("not an image suffix (.bmp, .jpeg, .jpg")
    assert calls == [(d["path"], d["reason"]) for d in skipped.items]


def test_scan_records_an_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    skipped = Skipped()
    collect(skipped)
    assert scan_images([empty], skipped) == []
    assert skipped.items == [{"path": str(empty), "reason": "folder holds no image files"}]


def test_scan_counts_a_file_named_twice_once(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    found = scan_images([image, tmp_path, image])
    assert found == [image, tmp_path / "b.png"]


def test_scan_ignores_a_folder_named_like_an_image(tmp_path):
    (tmp_path / "looks.png").mkdir()
    (tmp_path / "looks.png" / "real.png").write_bytes(b"x")
    assert scan_images([tmp_path]) == [tmp_path / "looks.png" / "real.png"]


def test_skips_warn_without_notify(tmp_path):
    skipped = Skipped()
    with pytest.warns(UserWarning, match=r"skipped .*gone: no such file or folder"):
        scan_images([tmp_path / "gone"], skipped)
    assert len(skipped) == 1


# --- iter_image_batches --------------------------------------------------------------------

def test_batches_hold_the_centre_crops_in_file_order(tmp_path):
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (11 + i, 13, 3), np.uint8) for i in range(5)]
    files = [write_png(tmp_path / f"{i}.png", p) for i, p in enumerate(pixels)]
    batches = list(iter_image_batches(files, 8, batch_size=2, workers=3))
    assert [tuple(b.shape) for b in batches] == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]
    images = torch.cat(batches)
    for i, p in enumerate(pixels):
        top, left = (p.shape[0] - 8) // 2, (p.shape[1] - 8) // 2  # extra pixel bottom/right
        assert torch.equal(images[i], signed(p[top:top + 8, left:left + 8]))
    assert images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1


def test_batches_reach_both_ends_of_the_range(tmp_path):
    files = [write_png(tmp_path / "black.png", flat(0)), write_png(tmp_path / "white.png",
                                                                    flat(255))]
    (batch,) = iter_image_batches(files, 8)
    assert torch.equal(batch[0], torch.full((3, 8, 8), -1.0))
    assert torch.equal(batch[1], torch.full((3, 8, 8), 1.0))


def test_bad_and_small_files_are_skipped_and_the_rest_kept(tmp_path):
    good = [write_png(tmp_path / f"good{i}.png", flat(10 * i + 5)) for i in range(4)]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    small = write_png(tmp_path / "small.png", flat(7, h=6, w=12))
    missing = tmp_path / "vanished.png"
    files = [good[0], corrupt, good[1], small, good[2], missing, good[3]]
    skipped = Skipped()
    calls = collect(skipped)
    progress = []
    batches = list(iter_image_batches(files, 8, batch_size=3, skipped=skipped,
                                      progress=progress.append))
    images = torch.cat(batches)
    # Nothing lost: every file is either in a batch or in the skip list.
    assert len(images) + len(skipped) == len(files)
    assert sum(progress) == len(files) and progress == [3, 3, 1]
    for image, i in zip(images, range(4)):
        assert torch.equal(image, signed(flat(10 * i + 5, 8, 8)))
    assert [d["path"] for d in skipped.items] == [str(corrupt), str(small), str(missing)]
    reasons = [d["reason"] for d in skipped.items]
    assert reasons[0].startswith("not a recognised image")
    assert reasons[1] == "too small: 12x6 < 8x8"
    assert reasons[2] == "no such file"
    assert calls == [(d["path"], d["reason"]) for d in skipped.items]


def test_a_batch_with_no_usable_file_is_not_yielded(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    files = [bad, write_png(tmp_path / "ok.png", flat(1))]
    skipped = Skipped()
    collect(skipped)
    batches = list(iter_image_batches(files, 8, batch_size=1, skipped=skipped))
    assert len(batches) == 1 and batches[0].shape == (1, 3, 8, 8)
    assert len(skipped) == 1


def test_skipped_files_warn_when_nobody_listens(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    with pytest.warns(UserWarning, match="bad.png: not a recognised image"):
        assert list(iter_image_batches([bad], 8)) == []


def test_no_files_yields_nothing():
    assert list(iter_image_batches([], 8)) == []


@pytest.mark.parametrize("size", [7, 0, -8, 8.0, "64", None])
def test_size_below_8_or_not_int_raises_at_call(size):
    with pytest.raises(InvalidInputError, match="size must be an integer >= 8"):
        iter_image_batches([], size)  # raised on the call, before any iteration


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "4"])
def test_bad_batch_size_raises_at_call(batch_size):
    with pytest.raises(InvalidInputError, match="batch size must be a positive integer"):
        iter_image_batches([], 8, batch_size)


# --- read_folder ---------------------------------------------------------------------------

def test_read_folder_returns_crops_and_paths_in_sorted_order(tmp_path):
    pixels = [np.random.default_rng(i).integers(0, 256, (12, 14, 3)) for i in range(3)]
    for name, px in zip(["b.png", "a.png", "sub/c.png"], pixels):
        write_png(tmp_path / name, px)
    x, paths = read_folder(tmp_path, 8)
    assert paths == [str(tmp_path / n) for n in ["a.png", "b.png", "sub/c.png"]]
    assert x.shape == (3, 3, 8, 8)
    assert torch.equal(x[0], signed(pixels[1].astype(np.uint8))[:, 2:10, 3:11])


def test_read_folder_names_skips_through_notify_or_a_warning(tmp_path):
    write_png(tmp_path / "good.png", flat(90, 16, 16))
    write_png(tmp_path / "small.png", flat(90, 4, 4))
    calls = []
    x, paths = read_folder(tmp_path, 8, notify=lambda path, reason: calls.append((path, reason)))
    assert paths == [str(tmp_path / "good.png")] and len(x) == 1
    assert calls == [(str(tmp_path / "small.png"), "too small: 4x4 < 8x8")]
    with pytest.warns(UserWarning, match="small.png: too small"):
        read_folder(tmp_path, 8)


def test_read_folder_errors(tmp_path):
    write_png(tmp_path / "small.png", flat(90, 4, 4))
    with pytest.raises(InvalidInputError, match="no usable image of at least 8x8"):
        read_folder(tmp_path, 8, notify=lambda path, reason: None)
    with pytest.raises(InvalidInputError, match="small.png: not a folder"):
        read_folder(tmp_path / "small.png", 8)
    with pytest.raises(InvalidInputError, match="size must be an integer >= 8"):
        read_folder(tmp_path, 4)


# --- FolderDataset -------------------------------------------------------------------------

def test_dataset_labels_come_from_top_level_sub_folders(tmp_path):
    write_png(tmp_path / "zeta" / "a.png", flat(1))
    write_png(tmp_path / "alpha" / "deep" / "er" / "b.png", flat(2))
    write_png(tmp_path / "alpha" / "c.png", flat(3))
    write_png(tmp_path / "mid" / "d.png", flat(4))
    data = FolderDataset(tmp_path, 8)
    assert data.classes == ["alpha", "mid", "zeta"]
    by_name = {p.name: label for p, label in zip(data.files, data.labels)}
    assert by_name == {"a.png": 2, "b.png": 0, "c.png": 0, "d.png": 1}
    assert len(data) == 4
    assert len(data.skipped) == 0


def test_dataset_files_at_the_top_have_the_empty_class(tmp_path):
    write_png(tmp_path / "top.png", flat(1))
    write_png(tmp_path / "cats" / "c.png", flat(2))
    data = FolderDataset(tmp_path, 8)
    assert data.classes == ["", "cats"]
    assert dict(zip([p.name for p in data.files], data.labels)) == {"top.png": 0, "c.png": 1}


def test_dataset_items_are_signed_centre_crops_with_labels(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (12, 9, 3), np.uint8)
    write_png(tmp_path / "only" / "x.png", pixels)
    data = FolderDataset(tmp_path, 8)
    image, label = data[0]
    assert label == 0
    assert torch.equal(image, signed(pixels[2:10, 0:8]))


def test_dataset_skips_unusable_files_and_lists_them(tmp_path):
    write_png(tmp_path / "a" / "ok.png", flat(1))
    write_png(tmp_path / "a" / "tiny.png", flat(1, 4, 4))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.warns(UserWarning, match="skipped"):
        data = FolderDataset(tmp_path, 8)
    assert [p.name for p in data.files] == ["ok.png"]
    assert data.classes == ["a"]  # a class whose files were all skipped does not exist
    assert sorted(d["path"] for d in data.skipped.items) == [
        str(tmp_path / "a" / "tiny.png"), str(tmp_path / "b" / "broken.jpg")]


def test_dataset_without_validation_keeps_every_image_suffix(tmp_path):
    write_png(tmp_path / "ok.png", flat(1))
    (tmp_path / "broken.png").write_bytes(b"junk")
    data = FolderDataset(tmp_path, 8, validate=False)
    assert len(data) == 2
    with pytest.raises(InvalidInputError, match="broken.png: not a recognised image"):
        data[0]  # sorted: broken.png comes first


def test_dataset_with_no_usable_image_raises(tmp_path):
    write_png(tmp_path / "tiny.png", flat(1, 4, 4))
    with pytest.warns(UserWarning), pytest.raises(
            InvalidInputError, match="no usable image of at least 8x8"):
        FolderDataset(tmp_path, 8)


def test_dataset_on_an_empty_folder_raises(tmp_path):
    with pytest.warns(UserWarning, match="folder holds no image files"), pytest.raises(
            InvalidInputError, match="no usable image"):
        FolderDataset(tmp_path, 8)


def test_dataset_on_a_file_raises_not_a_folder(tmp_path):
    path = write_png(tmp_path / "a.png", flat(1))
    with pytest.raises(InvalidInputError, match=r"a\.png: not a folder"):
        FolderDataset(path, 8)


def test_dataset_on_a_missing_path_raises_not_a_folder(tmp_path):
    with pytest.raises(InvalidInputError, match="not a folder"):
        FolderDataset(tmp_path / "nope", 8)


@pytest.mark.parametrize("size", [7, 0, "64", 8.5])
def test_dataset_refuses_a_bad_size(tmp_path, size):
    write_png(tmp_path / "a.png", flat(1, 16, 16))
    with pytest.raises(InvalidInputError, match="size must be an integer >= 8"):
        FolderDataset(tmp_path, size)


def test_dataset_item_that_changed_on_disk_raises(tmp_path):
    path = write_png(tmp_path / "a.png", flat(1))
    data = FolderDataset(tmp_path, 8)
    path.write_bytes(b"junk")
    with pytest.raises(InvalidInputError, match=r"a\.png: not a recognised image"):
        data[0]


def test_dataset_works_with_a_dataloader(tmp_path):
    for i in range(5):
        write_png(tmp_path / ("x" if i % 2 else "y") / f"{i}.png", flat(i, 9, 9))
    data = FolderDataset(tmp_path, 8)
    images, labels = next(iter(torch.utils.data.DataLoader(data, batch_size=5)))
    assert images.shape == (5, 3, 8, 8)
    assert labels.tolist() == [0, 0, 1, 1, 1]


# --- model folders and their common size ------------------------------------------------


def test_model_folders_expands_a_folder_of_model_folders(tmp_path):
    write_png(tmp_path / "zoo" / "b" / "0.png", flat(1))
    write_png(tmp_path / "zoo" / "a" / "0.png", flat(1))
    write_png(tmp_path / "single" / "0.png", flat(1))
    (tmp_path / "single" / "notes").mkdir()  # images on top: the folder is one model
    (tmp_path / "empty").mkdir()
    found = model_folders([tmp_path / "zoo", str(tmp_path / "single"), tmp_path / "empty"])
    assert found == [tmp_path / "zoo" / "a", tmp_path / "zoo" / "b", tmp_path / "single",
                     tmp_path / "empty"]


def test_model_folders_errors(tmp_path):
    write_png(tmp_path / "one" / "m" / "0.png", flat(1))
    write_png(tmp_path / "two" / "m" / "0.png", flat(1))
    with pytest.raises(InvalidInputError, match="two model folders share a name"):
        model_folders([tmp_path / "one", tmp_path / "two"])
    with pytest.raises(InvalidInputError, match="nope: not a folder"):
        model_folders([tmp_path / "nope"])
    with pytest.raises(InvalidInputError, match="not a folder"):
        model_folders([write_png(tmp_path / "file.png", flat(1))])


def test_native_size_is_the_most_common_header_size(tmp_path):
    write_png(tmp_path / "a.png", flat(1, 12, 20))  # 20 wide, 12 high
    write_png(tmp_path / "sub" / "b.png", flat(1, 12, 20))
    write_png(tmp_path / "c.png", flat(1, 30, 30))
    (tmp_path / "junk.png").write_bytes(b"junk")
    assert native_size(tmp_path) == (20, 12)
    (tmp_path / "empty").mkdir()
    assert native_size(tmp_path / "empty") is None


def test_common_crop_size(tmp_path):
    for name in ("a", "b"):
        write_png(tmp_path / name / "0.png", flat(1, 24, 32))
    write_png(tmp_path / "real" / "0.png", flat(1, 24, 32))
    models = [tmp_path / "a", tmp_path / "b"]
    assert common_crop_size(models, tmp_path / "real") == 24  # the shorter side
    assert common_crop_size(models, tmp_path / "real", 16) == 16
    with pytest.raises(InvalidInputError, match="--size must be at least 8, got 4"):
        common_crop_size(models, tmp_path / "real", 4)
    write_png(tmp_path / "other" / "0.png", flat(1, 16, 16))
    with pytest.raises(InvalidInputError, match=r"differ in image size \(a 32x24, other 16x16"):
        common_crop_size([tmp_path / "a", tmp_path / "other"], tmp_path / "real")
    with pytest.raises(InvalidInputError, match="real images are 32x24 but the samples are "
                                                "16x16; pass --size S"):
        common_crop_size([tmp_path / "other"], tmp_path / "real")
    (tmp_path / "none").mkdir()
    with pytest.raises(InvalidInputError, match="no readable image"):
        common_crop_size([tmp_path / "none"], tmp_path / "real")


def test_fifos_and_devices_are_named_not_lost(tmp_path):
    import os

    from core.data.folder import Skipped, scan_images

    fifo = tmp_path / "named.png"
    os.mkfifo(fifo)
    inside = tmp_path / "sub"
    inside.mkdir()
    os.mkfifo(inside / "pipe.png")
    skipped = Skipped(notify=lambda path, reason: None)
    assert scan_images([fifo, "/dev/zero", inside], skipped) == []
    reasons = {item["path"]: item["reason"] for item in skipped.items}
    assert reasons == {str(fifo): "not a regular file (a FIFO, socket or device)",
                       "/dev/zero": "not a regular file (a FIFO, socket or device)",
                       str(inside / "pipe.png"): "not a regular file (a FIFO, socket or "
                                                 "device)"}
