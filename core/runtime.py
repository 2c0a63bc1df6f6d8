"""Process-level plumbing: device choice, seeding, atomic writes (a file, or a whole
folder replaced all-or-nothing), code version."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from core import __version__
from core.errors import InvalidInputError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto | cpu | cuda | cuda:N`` into a :class:`torch.device`.

    ``auto`` picks CUDA when a GPU is visible, else the CPU. Asking for CUDA on a machine
    without one is an error, not a silent fallback.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"device must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidInputError(f"device '{name}' requested but no CUDA GPU is available")
        try:
            device = torch.device(key)
        except RuntimeError:
            raise InvalidInputError(f"bad device '{name}'; use auto, cpu, cuda or cuda:N") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InvalidInputError(
                f"device '{name}' requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return device
    raise InvalidInputError(f"bad device '{name}'; use one of auto, cpu, cuda, cuda:N")


@contextlib.contextmanager
def cpu_seeded(seed: int) -> Iterator[None]:
    """Run the block with the CPU random state seeded by ``seed``, then restore it.

    Only the CPU generator is touched (``torch.manual_seed`` would also reseed every CUDA
    generator, or queue a reseed for when CUDA starts): building a network inside leaves
    every global random state as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded alike."""
    # torch takes seeds up to 2**64 - 1 and raises a bare ValueError beyond.
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise InvalidInputError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Readers never see a half-written file: the rename is atomic on POSIX and Windows
    when both names are on the same file system, which a sibling temp file guarantees.
    On error the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_sibling(target)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # A writer may have replaced the file with its own private one (safetensors does):
        # give the result the usual 0o666-less-umask mode either way.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _new_sibling(target: Path) -> Path:
    """Create an empty, uniquely named file beside ``target`` and return its path.

    Unlike :func:`tempfile.mkstemp` (always mode 0o600) the file gets 0o666 less the
    umask, as ``open`` would give it, so the renamed result is as readable as any other.
    """
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def replaced_folder(path: str | os.PathLike, *,
                    carry: Callable[[str], bool] = lambda name: False) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to fill; when the block succeeds it takes
    the place of ``path`` whole (the old folder is renamed aside, then removed), and when
    it fails it is removed and ``path`` is left as it was.

    Entries of the old folder for whose name ``carry(name)`` is true, and that the new
    folder lacks, are moved into the new one first (files a user keeps beside a set that
    fpx rewrites). Folders left by a process killed mid-way (``.NAME.*.new`` and
    ``.NAME.*.old`` beside ``path``) are removed on entry.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*target.parent.glob(f".{target.name}.*.new"),
                  *target.parent.glob(f".{target.name}.*.old")]:
        shutil.rmtree(stale, ignore_errors=True)
    new = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(new, 0o777 & ~umask)
    try:
        yield new
        old = None
        if target.exists():
            for entry in target.iterdir():
                if carry(entry.name) and not os.path.lexists(new / entry.name):
                    os.replace(entry, new / entry.name)
            old = target.parent / f".{target.name}.{secrets.token_hex(6)}.old"
            os.replace(target, old)
        os.replace(new, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; return the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)


def code_version() -> str:
    """``<package version>`` plus ``+g<commit>[.dirty]`` when run from a git checkout.

    Recorded in every artefact fpx writes so that a manifest names the code that made it.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return __version__
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")
