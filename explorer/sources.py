"""Real images for the dashboard: the bundled photos, an uploaded image, or a folder on
the server. Every source returns crops in ``[-1, 1]``; every failure is one line.

A folder path typed into the dashboard is read as images only: files are listed by image
suffix, decoded as pixels, and nothing else about them is ever shown. It must lie under
one of the server's data roots (:func:`data_roots`: ``FPX_DATA_ROOTS``, by default the
folder the server was started in and the user's home), checked after every symlink is
resolved, so that a lab shared with a class cannot browse the machine's files; whether a
path outside the roots exists is not told either.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data import (
    IMAGE_SUFFIXES,
    Skipped,
    bundled_crops,
    decode_rgb,
    iter_image_batches,
    to_signed,
    to_tensor,
)
from core.errors import FpxError, InvalidInputError

MAX_UPLOAD_BYTES = 25 * 2**20
MAX_UPLOAD_PIXELS = 40_000_000
MAX_FOLDER_IMAGES = 64
MAX_SCANNED_ENTRIES = 20_000
BUNDLED_CROPS = 64


@dataclass(frozen=True)
class RealSet:
    """Real crops ``(N, 3, S, S)`` in ``[-1, 1]``, where they came from, and notes
    (files skipped and why)."""

    crops: torch.Tensor
    label: str
    key: str
    notes: tuple[str, ...] = ()


@functools.lru_cache(maxsize=8)
def bundled(size: int, seed: int = 0) -> RealSet:
    crops = bundled_crops(size, BUNDLED_CROPS, seed=seed)
    return RealSet(crops, f"bundled photos ({BUNDLED_CROPS} crops)", f"bundled:{size}:{seed}")


def _tiles(image: torch.Tensor, size: int, count: int) -> torch.Tensor:
    """Up to ``count`` non-overlapping ``size`` tiles of ``(3, H, W)``, centred."""
    h, w = image.shape[-2:]
    ny, nx = h // size, w // size
    top, left = (h - ny * size) // 2, (w - nx * size) // 2
    tiles = [image[:, top + i * size:top + (i + 1) * size, left + j * size:left + (j + 1) * size]
             for i in range(ny) for j in range(nx)]
    return torch.stack(tiles[:count])


@functools.lru_cache(maxsize=4)
def _upload_cached(digest: str, data: bytes, name: str, size: int) -> RealSet:
    image = to_tensor(decode_rgb(data, name, max_pixels=MAX_UPLOAD_PIXELS))
    h, w = image.shape[-2:]
    if min(h, w) < size:
        raise InvalidInputError(
            f"{name}: {w}x{h} is smaller than the crop size {size}; choose a smaller crop size"
        )
    crops = to_signed(_tiles(image, size, BUNDLED_CROPS))
    return RealSet(crops, f"{name} ({len(crops)} tiles)", f"upload:{digest}:{size}")


def upload(data: bytes | None, name: str, size: int) -> RealSet:
    """Tiles of an uploaded image (the bytes are decoded as pixels, nothing else)."""
    if data is None:
        raise InvalidInputError("no image uploaded yet: choose a file with the upload button")
    name = name or "upload"
    if len(data) == 0:
        raise InvalidInputError(f"{name}: the uploaded file is empty (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError(f"{name}: {len(data) / 2**20:.0f} MB is larger than the "
                                f"{MAX_UPLOAD_BYTES // 2**20} MB upload limit")
    digest = hashlib.sha256(data).hexdigest()[:16]
    return _upload_cached(digest, bytes(data), name, size)


def data_roots() -> tuple[Path, ...]:
    """The folders (symlinks resolved) under which the folder source may read:
    ``FPX_DATA_ROOTS`` (paths separated by ``os.pathsep``), else the server's working
    folder and the user's home."""
    text = os.environ.get("FPX_DATA_ROOTS", "")
    raw = [p for p in text.split(os.pathsep) if p.strip()] or [os.getcwd(), str(Path.home())]
    return tuple(Path(p.strip()).expanduser().resolve() for p in raw)


def within_roots(path: Path, roots: tuple[Path, ...] | None = None) -> bool:
    """Whether ``path``, symlinks resolved, lies in (or is) one of the data roots."""
    real = Path(os.path.realpath(path))
    return any(real == root or root in real.parents for root in roots or data_roots())


@dataclass(frozen=True)
class FolderTarget:
    """A folder the lab may read, checked (cheaply: no listing, no decoding): its path as
    typed, its real path, its modification stamp (a changed folder is read again) and
    the crop size asked for."""

    text: str
    root: str
    stamp: int
    size: int


def confined_folder(text: str, empty: str) -> Path:
    """The folder a typed path names, refused (one line) when ``text`` is empty (saying
    ``empty``), outside :func:`data_roots` (whether it exists is not told) or not a folder."""
    if not text:
        raise InvalidInputError(empty)
    root = Path(text).expanduser()
    if not root.is_absolute():
        root = Path.cwd() / root
    if not within_roots(root):
        raise InvalidInputError(f"{text}: outside the folders this server may read (its "
                                "data roots, FPX_DATA_ROOTS)")
    if not root.is_dir():
        raise InvalidInputError(f"{text}: no such folder")
    return root


def folder_target(path: str, size: int) -> FolderTarget:
    """Check a typed folder path: present, a folder, readable, under :func:`data_roots`.
    Cheap enough for the request thread; :func:`load_folder` does the heavy part."""
    text = (path or "").strip()
    root = confined_folder(text, "type the path of a folder of images on the server")
    if not os.access(root, os.R_OK | os.X_OK):
        raise InvalidInputError(f"{text}: permission denied")
    return FolderTarget(text, os.path.realpath(root), root.stat().st_mtime_ns, size)


def folder(path: str, size: int) -> RealSet:
    """Centre crops of the first :data:`MAX_FOLDER_IMAGES` images under ``path``, which
    must lie under :func:`data_roots`, read on the calling thread."""
    return load_folder(folder_target(path, size))


def first_images(root: Path, limit: int | None = None,
                 budget: int | None = None) -> list[Path]:
    """The first ``limit`` image files under ``root`` in sorted depth-first order, looking
    at no more than ``budget`` directory entries: a path like ``/`` must not make the
    server walk the whole disk. Symlinked folders are not followed, and a symlinked file
    counts only if it resolves under the data roots."""
    limit = MAX_FOLDER_IMAGES if limit is None else limit
    budget = MAX_SCANNED_ENTRIES if budget is None else budget
    found: list[Path] = []
    roots = data_roots()
    stack, seen = [root], 0
    while stack and len(found) < limit and seen < budget:
        here = stack.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError:
            continue
        seen += len(entries)
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file() \
                        and (not entry.is_symlink() or within_roots(Path(entry.path), roots)):
                    found.append(Path(entry.path))
            except OSError:
                continue
        stack.extend(reversed(subdirs))
    return found[:limit]


class LoadCancelled(Exception):
    """A folder load given up because the lab asked for something else."""


_FOLDERS: OrderedDict[FolderTarget, RealSet] = OrderedDict()
_FOLDERS_LOCK = threading.Lock()
FOLDER_CACHE = 4


def cached_folder(target: FolderTarget) -> RealSet | None:
    """The crops of ``target`` if a load has already finished, else ``None``."""
    with _FOLDERS_LOCK:
        return _FOLDERS.get(target)


def clear_folder_cache() -> None:
    with _FOLDERS_LOCK:
        _FOLDERS.clear()


def load_folder(target: FolderTarget, progress: Callable[[int, int], None] | None = None,
                cancelled: threading.Event | None = None) -> RealSet:
    """Decode the first :data:`MAX_FOLDER_IMAGES` images of ``target`` into centre crops,
    one file at a time: ``progress(done, total)`` after each, and
    :class:`LoadCancelled` as soon as ``cancelled`` is set. Results are kept (the last
    :data:`FOLDER_CACHE` folders)."""
    ready = cached_folder(target)
    if ready is not None:
        return ready
    skipped = Skipped(notify=lambda path, reason: None)
    files = first_images(Path(target.root))
    if not files:
        raise InvalidInputError(f"{target.text}: holds no image files")
    done = 0

    def step(count: int) -> None:  # after each file, used or skipped
        nonlocal done
        done += count
        if cancelled is not None and cancelled.is_set():
            raise LoadCancelled(target.text)
        if progress is not None:
            progress(done, len(files))

    # One file per step on one thread: a cancel is seen after at most one image, and the
    # other core stays free for the sessions' own updates.
    batches = list(iter_image_batches(files, target.size, 1, skipped=skipped, workers=1,
                                      progress=step))
    if not batches:
        small = sum(s["reason"].startswith("too small") for s in skipped.items)
        hint = f" ({small} smaller than {target.size}x{target.size}: try a smaller crop " \
               "size)" if small else ""
        raise InvalidInputError(f"{target.text}: none of {len(files)} image files is "
                                f"usable{hint}")
    crops = torch.cat(batches)
    notes = tuple(f"skipped {Path(s['path']).name}: {s['reason']}" for s in skipped.items)
    result = RealSet(crops, f"{Path(target.root).name}/ ({len(crops)} images)",
                     f"folder:{target.root}:{target.stamp}:{target.size}", notes)
    with _FOLDERS_LOCK:
        _FOLDERS[target] = result
        while len(_FOLDERS) > FOLDER_CACHE:
            _FOLDERS.popitem(last=False)
    return result


class FolderLoad:
    """One folder decoded on a background thread, so that no session waits for it.

    ``on_progress(done, total)`` is called after each file and ``on_done(result,
    error)`` once at the end (exactly one of them ``None``), both on the loading thread;
    nothing is called after :meth:`cancel`.
    """

    def __init__(self, target: FolderTarget,
                 on_done: Callable[[RealSet | None, Exception | None], None],
                 on_progress: Callable[[int, int], None] | None = None):
        self.target = target
        self._cancelled = threading.Event()
        self._on_done, self._on_progress = on_done, on_progress
        self.thread = threading.Thread(target=self._run, name=f"fpx-folder-{target.root}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _progress(self, done: int, total: int) -> None:
        if self._on_progress is not None and not self.cancelled:
            self._on_progress(done, total)

    def _run(self) -> None:
        try:
            result, error = load_folder(self.target, self._progress, self._cancelled), None
        except LoadCancelled:
            return
        except FpxError as err:
            result, error = None, err
        except Exception as err:  # noqa: BLE001 - said in the page, never a dead thread
            result, error = None, InvalidInputError(
                f"{self.target.text}: could not be read ({type(err).__name__}: {err})")
        if not self.cancelled:
            self._on_done(result, error)
