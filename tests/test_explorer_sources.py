"""The dashboard's folder source is confined to its data roots (FPX_DATA_ROOTS), with
symlinks resolved before the check, and never says whether a path outside exists."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidInputError
from explorer import sources


def pngs(folder, count=2, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    return folder


@pytest.fixture
def roots(tmp_path, monkeypatch):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    pngs(inside / "photos")
    pngs(outside / "private")
    monkeypatch.setenv("FPX_DATA_ROOTS", str(inside))
    sources.clear_folder_cache()
    return inside, outside


def test_a_folder_under_a_root_is_read(roots):
    inside, _ = roots
    assert len(sources.folder(str(inside / "photos"), 32).crops) == 2


@pytest.mark.parametrize("where", [
    lambda i, o: o / "private",
    lambda i, o: o / "no-such-folder",  # existence outside is not told
    lambda i, o: i / ".." / "outside" / "private",
    lambda i, o: "/",
    lambda i, o: "/root",
])
def test_a_folder_outside_every_root_is_refused(roots, where):
    inside, outside = roots
    with pytest.raises(InvalidInputError, match="outside the folders this server may read"):
        sources.folder(str(where(inside, outside)), 32)


def test_symlinks_are_resolved_before_the_check(roots):
    inside, outside = roots
    os.symlink(outside / "private", inside / "link")
    with pytest.raises(InvalidInputError, match="outside the folders"):
        sources.folder(str(inside / "link"), 32)
    mixed = pngs(inside / "mixed", 1)
    os.symlink(outside / "private" / "0.png", mixed / "stolen.png")
    assert len(sources.folder(str(mixed), 32).crops) == 1  # the symlinked file is left out


def test_default_roots_are_the_working_folder_and_home(monkeypatch, tmp_path):
    monkeypatch.delenv("FPX_DATA_ROOTS")
    monkeypatch.chdir(tmp_path)
    assert sources.data_roots() == (tmp_path.resolve(), Path.home().resolve())


def test_an_empty_upload_is_empty_whatever_its_name():
    for name in ("upload", "", "photo.png"):
        with pytest.raises(InvalidInputError, match="the uploaded file is empty"):
            sources.upload(b"", name, 32)
    with pytest.raises(InvalidInputError, match="no image uploaded yet"):
        sources.upload(None, "upload", 32)
