"""Images from files and folders: recursive scan, named skips, batched loading, a whole
folder at once (:func:`read_folder`).

Every file that cannot be used is skipped with a reason (``{path, reason}``) and a
warning; nothing is dropped silently, and the caller gets the list to report. If no file
is usable the loader raises one clear error.

Folders of generated images come one per model: :func:`model_folders` expands a folder
of model folders, and :func:`common_crop_size` finds the size they (and the real images
they are compared with) share.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

from core.data.images import IMAGE_SUFFIXES, ImageReadError, load_rgb
from core.data.transforms import center_crop, to_signed, to_tensor
from core.errors import InvalidInputError, check_int


@dataclass
class Skipped:
    """Files left out, with the reason for each (in encounter order).

    Each skip is announced as it happens: by ``notify(path, reason)`` when given (the CLI
    prints one line), else by a warning.
    """

    items: list[dict[str, str]] = field(default_factory=list)
    notify: Callable[[str, str], None] | None = None

    def add(self, path, reason: str) -> None:
        self.items.append({"path": str(path), "reason": reason})
        if self.notify is not None:
            self.notify(str(path), reason)
        else:
            warnings.warn(f"skipped {path}: {reason}", stacklevel=3)

    def __len__(self) -> int:
        return len(self.items)


def scan_images(paths: Iterable[str | os.PathLike], skipped: Skipped | None = None) -> list[Path]:
    """Image files named by ``paths`` (files, or folders searched recursively), sorted.

    Folders contribute files with a suffix in :data:`IMAGE_SUFFIXES` (any case); other
    files inside folders are ignored quietly, but a file named explicitly with another
    suffix, and a path that does not exist, go to ``skipped``.
    """
    skipped = skipped if skipped is not None else Skipped()
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                skipped.add(p, "folder cannot be read (permission denied)")
                continue
            named = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
            files = [q for q in named if q.is_file()]
            for q in named:
                if not q.is_file() and not q.is_dir():
                    skipped.add(q, "not a regular file (a FIFO, socket or device)")
            if not files and len(named) == 0:
                skipped.add(p, "folder holds no image files")
            found.extend(files)
        elif p.is_file():
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(p)
            else:
                skipped.add(p, f"not an image suffix ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif os.path.lexists(p):
            skipped.add(p, "not a regular file (a FIFO, socket or device)")
        else:
            skipped.add(p, "no such file or folder")
    # A file named twice (directly and through its folder) counts once.
    return list(dict.fromkeys(found))


def _load_crop(path: Path, size: int) -> torch.Tensor | str:
    try:
        image = to_tensor(load_rgb(path))
    except ImageReadError as err:
        return str(err).removeprefix(f"{path}: ")
    h, w = image.shape[-2:]
    if h < size or w < size:
        return f"too small: {w}x{h} < {size}x{size}"
    return to_signed(center_crop(image, size))


def iter_image_batches(files: list[Path], size: int, batch_size: int = 64, *,
                       skipped: Skipped | None = None, workers: int = 2,
                       progress=None, with_paths: bool = False) -> Iterator[torch.Tensor]:
    """Yield ``(B, 3, size, size)`` batches in ``[-1, 1]``: the centre crop of each file
    (with ``with_paths``, ``(batch, paths)`` pairs naming the files kept, in order).

    Centre crops, not resizes, because resampling would paint its own grid over the
    fingerprint. Unreadable and too-small files go to ``skipped``. Decoding runs on
    ``workers`` threads (Pillow releases the GIL while it decodes).

    Args:
        progress: optional callable taking the number of files just processed.

    Raises:
        InvalidInputError: bad ``size`` or ``batch_size``, at the call (not at the first
            ``next``).
    """
    _check_crop_size(size)
    check_int("batch size", batch_size)
    skipped = skipped if skipped is not None else Skipped()
    batches = _batches(files, size, batch_size, skipped, workers, progress)
    return batches if with_paths else (b for b, _ in batches)


def _check_crop_size(size) -> None:
    check_int("size", size, 8)


def _batches(files: list[Path], size: int, batch_size: int, skipped: Skipped, workers: int,
             progress) -> Iterator[tuple[torch.Tensor, list[Path]]]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            good, kept = [], []
            for path, item in zip(chunk, pool.map(lambda p: _load_crop(p, size), chunk)):
                if isinstance(item, str):
                    skipped.add(path, item)
                else:
                    good.append(item)
                    kept.append(path)
            if progress is not None:
                progress(len(chunk))
            if good:
                yield torch.stack(good), kept


def read_folder(folder: str | os.PathLike, size: int, *,
                notify: Callable[[str, str], None] | None = None
                ) -> tuple[torch.Tensor, list[str]]:
    """Every usable image under ``folder`` (searched recursively, sorted by path): their
    centre crops ``(N, 3, size, size)`` in ``[-1, 1]`` and their paths (``N`` strings).

    Unusable files (unreadable, smaller than ``size``) are skipped by name: through
    ``notify(path, reason)`` when given, else with a warning (:class:`Skipped`).

    Raises:
        InvalidInputError: ``folder`` is not a folder, ``size`` is not an integer >= 8,
            or no file is usable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a folder")
    skipped = Skipped(notify=notify)
    batches, paths = [], []
    for x, kept in iter_image_batches(scan_images([folder], skipped), size, 256,
                                      skipped=skipped, with_paths=True):
        batches.append(x)
        paths.extend(map(str, kept))
    if not batches:
        raise InvalidInputError(f"{folder}: no usable image of at least {size}x{size}")
    return torch.cat(batches), paths


class FolderDataset(Dataset):
    """A folder of a generator's outputs (or real photos) as a torch ``Dataset``.

    Items are ``(image, label)``: the centre ``size`` crop in ``[-1, 1]`` and the index of
    the file's top-level sub-folder in :attr:`classes` (0 when files sit at the top).
    Files are decoded once at construction to find the unusable ones, which are skipped
    with a warning and listed in :attr:`skipped`.
    """

    def __init__(self, root: str | os.PathLike, size: int, *, validate: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidInputError(f"{self.root}: not a folder")
        _check_crop_size(size)
        self.size = size
        self.skipped = Skipped()
        files = scan_images([self.root], self.skipped)
        if validate:
            files = [p for p in files if self._usable(p)]
        if not files:
            raise InvalidInputError(f"{self.root}: no usable image of at least {size}x{size}")
        self.files = files
        tops = [self._top(p) for p in files]
        self.classes = sorted(set(tops))
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[t] for t in tops]

    def _usable(self, path: Path) -> bool:
        item = _load_crop(path, self.size)
        if isinstance(item, str):
            self.skipped.add(path, item)
            return False
        return True

    def _top(self, path: Path) -> str:
        rel = path.relative_to(self.root)
        return rel.parts[0] if len(rel.parts) > 1 else ""

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        item = _load_crop(self.files[i], self.size)
        if isinstance(item, str):  # changed on disk since the scan
            raise InvalidInputError(f"{self.files[i]}: {item}")
        return item, self.labels[i]


def model_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """One folder per model: each path is a model's folder, or a folder of model folders
    (sub-folders and no images on top), which stands for its sub-folders, sorted.

    Raises:
        InvalidInputError: a path is not a folder, or two model folders share a name (the
            name is the model's label).
    """
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise InvalidInputError(f"{path}: not a folder")
        top_images = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        subs = sorted(p for p in path.iterdir() if p.is_dir())
        folders += [path] if top_images or not subs else subs
    names = [f.name for f in folders]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"two model folders share a name: {sorted(names)}")
    return folders


AUTO_MAX_SIZE = 1024  # pixels: the automatic crop never exceeds this (a folder of camera
#                       photos is analysed in 1024-px centre crops unless --size says more)


@dataclass(frozen=True)
class SizeChoice:
    """The square crop size a set of images is analysed at, and why.

    Attributes:
        size: crop side in pixels.
        auto: chosen from the files (True) or given by the caller.
        sizes: ``"WxH" -> files`` for every size found in the headers, most common first.
        cropped, smaller: files larger than ``size`` (centre-cropped) and smaller
            (skipped by name when read).
    """

    size: int
    auto: bool
    sizes: dict[str, int]
    cropped: int
    smaller: int

    def describe(self) -> str:
        """One line: ``"32 px (the most common size, 200 of 213 files; 10 larger
        centre-cropped, 3 smaller skipped)"``."""
        how = "given" if not self.auto else (
            "the images' own size" if len(self.sizes) <= 1 else "the most common size")
        total = sum(self.sizes.values())
        parts = [f"{self.size} px ({how}"]
        if self.auto and len(self.sizes) > 1:
            parts.append(f", {next(iter(self.sizes.values()))} of {total} files")
        extra = []
        if self.cropped:
            extra.append(f"{self.cropped} larger centre-cropped")
        if self.smaller:
            extra.append(f"{self.smaller} smaller skipped")
        return "".join(parts) + ("; " + ", ".join(extra) if extra else "") + ")"

    def to_json_dict(self) -> dict:
        return {"size": self.size, "auto": self.auto, "sizes": dict(self.sizes),
                "cropped": self.cropped, "smaller": self.smaller}


def is_jpeg(path: str | os.PathLike) -> bool:
    """Whether the file starts with the JPEG signature (SOI marker ``FF D8 FF``), whatever
    its name says; unreadable files are not."""
    try:
        with open(path, "rb") as fh:
            return fh.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


def header_sizes(files: Iterable[str | os.PathLike]) -> Counter:
    """``(width, height) -> count`` read from the files' headers only (no pixel is
    decoded); unreadable headers are left out (whoever reads the pixels names them)."""
    from PIL import Image

    sizes: Counter[tuple[int, int]] = Counter()
    for path in files:
        try:
            with Image.open(path) as im:
                sizes[im.size] += 1
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    return sizes


def choose_crop_size(files: list[Path], size: int | None = None) -> SizeChoice:
    """The crop size for ``files``: ``size`` when given, else the shorter side of the most
    common image size among them (ties: the larger), at most :data:`AUTO_MAX_SIZE`.

    Raises:
        InvalidInputError: ``size`` given and not an integer >= 8.
    """
    auto = size is None
    if not auto:
        _check_crop_size(size)
    counts = header_sizes(files)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -min(kv[0])))
    if auto:
        # no readable header: 8 px, so every file is read and skipped by name
        size = max(8, min(min(ranked[0][0]), AUTO_MAX_SIZE)) if ranked else 8
    cropped = sum(n for (w, h), n in counts.items() if min(w, h) > size)
    smaller = sum(n for (w, h), n in counts.items() if min(w, h) < size)
    return SizeChoice(size, auto, {f"{w}x{h}": n for (w, h), n in ranked}, cropped, smaller)


def native_size(folder: str | os.PathLike) -> tuple[int, int] | None:
    """The most common ``(width, height)`` in pixels of the images under ``folder``, read
    from the headers only; ``None`` when no header is readable."""
    # Quiet: whoever reads the pixels later names the files it skips.
    sizes = header_sizes(scan_images([folder], Skipped(notify=lambda path, reason: None)))
    return sizes.most_common(1)[0][0] if sizes else None


def common_crop_size(generated: Iterable[str | os.PathLike], real: str | os.PathLike,
                     size: int | None = None) -> int:
    """The square crop size in pixels to compare model folders with real images.

    ``size`` when given (at least 8); otherwise the generated images' common native size
    (the smaller side), which the real images must share: comparing crops of different
    scales would compare the resampling, not the generators.

    Raises:
        InvalidInputError: ``size < 8``; no readable image; the generated folders differ
            in size; the real images have another size.
    """
    if size is not None:
        if size < 8:
            raise InvalidInputError(f"--size must be at least 8, got {size}")
        return size
    sizes = {Path(f).name: native_size(f) for f in generated}
    shown = ", ".join(f"{n} {s[0]}x{s[1]}" for n, s in sizes.items() if s)
    found = {s for s in sizes.values() if s}
    if not found:
        raise InvalidInputError("no readable image in the generated folders")
    if len(found) > 1:
        raise InvalidInputError(f"the generated sets differ in image size ({shown}); pass "
                                "--size S to centre-crop all of them to SxS")
    (w, h), = found
    real_size = native_size(real)
    if real_size is not None and real_size != (w, h):
        raise InvalidInputError(f"real images are {real_size[0]}x{real_size[1]} but the "
                                f"samples are {w}x{h}; pass --size S to centre-crop both "
                                "to SxS")
    return min(w, h)
