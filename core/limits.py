"""Bounds on what fpx reads from a user's files, checked before anything is allocated.

* Pixels per image: :func:`max_pixels` (``FPX_MAX_PIXELS``, default 2**25, about 33
  megapixels; a float32 RGB copy of such an image is 400 MB). Image headers are read
  first and an image past the limit is refused before its pixels are decoded.
* Bytes per file or archive member: :func:`max_bytes` (``FPX_MAX_BYTES``, default
  1 GiB): checkpoints, weights, ``.npz`` members, CIFAR batches.
* :func:`regular_file`: a path that is a plain file (not a FIFO, a device, a folder).
* :func:`read_npz`: an ``.npz`` whose every member header is read and checked (no
  object arrays, a declared size that the member really holds and that fits the limit)
  before its array is read; nothing is ever unpickled.

A value that does not fit is one line naming the file, the size and the setting that
raises the limit.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from core.errors import InvalidInputError

DEFAULT_MAX_PIXELS = 1 << 25
DEFAULT_MAX_BYTES = 1 << 30
MAX_NPZ_MEMBERS = 64


def _setting(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {text!r}")
    return value


def max_pixels() -> int:
    """The most pixels (width x height) an image may have (``FPX_MAX_PIXELS``)."""
    return _setting("FPX_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def max_bytes() -> int:
    """The most bytes a file (or an archive member) fpx reads may hold (``FPX_MAX_BYTES``)."""
    return _setting("FPX_MAX_BYTES", DEFAULT_MAX_BYTES)


def too_large(path, size: int, limit: int, unit: str, setting: str) -> InvalidInputError:
    return InvalidInputError(f"{path}: too large ({size} {unit} > {limit}; set {setting} to "
                             "raise the limit)")


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is a readable regular file within :func:`max_bytes`; otherwise one
    line saying what it is instead (missing, a folder, a FIFO or device, unreadable)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such {what}") from None
    except OSError as err:
        raise InvalidInputError(f"{path}: cannot read the {what} ({err.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(f"{path}: is a folder; expected the {what}")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"{path}: not a regular file (a FIFO, socket or device); "
                                f"expected the {what}")
    if not os.access(path, os.R_OK):
        raise InvalidInputError(f"{path}: permission denied")
    if info.st_size > max_bytes():
        raise too_large(path, info.st_size, max_bytes(), "bytes", "FPX_MAX_BYTES")
    return path


def read_npz(path: str | os.PathLike, what: str = "npz file") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, by name, read only after its header was
    checked: a plain dtype (no pickled objects), a declared size within
    :func:`max_bytes` and within what the member holds. Anything else is refused with one
    line naming ``path``."""
    path = regular_file(path, what)

    def refuse(why: str) -> InvalidInputError:
        return InvalidInputError(f"{path}: not a readable {what} ({why})")

    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            raise refuse("a bare .npy array, not an .npz archive")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise refuse(f"{len(members)} members")
            if sum(m.file_size for m in members) > max_bytes():
                raise too_large(path, sum(m.file_size for m in members), max_bytes(),
                                "bytes unpacked", "FPX_MAX_BYTES")
            arrays = {}
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise refuse(f"member {member.filename!r} is not an array")
                with archive.open(member) as fh:
                    arrays[member.filename.removesuffix(".npy")] = _read_member(
                        fh, member, refuse)
            return arrays
    except InvalidInputError:
        raise
    except zipfile.BadZipFile:
        raise refuse("not an .npz archive") from None
    except (zipfile.LargeZipFile, zlib.error, ValueError, OSError,
            EOFError, NotImplementedError, RuntimeError, UnicodeDecodeError, SyntaxError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise refuse(first) from None


def _read_member(fh, member: zipfile.ZipInfo, refuse) -> np.ndarray:
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    else:
        raise refuse(f"member {member.filename!r}: unknown .npy version {version}")
    if dtype.hasobject:
        raise refuse(f"member {member.filename!r} holds Python objects (pickled); fpx never "
                     "unpickles them")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > member.file_size:
        raise refuse(f"member {member.filename!r} declares {nbytes} bytes but holds "
                     f"{member.file_size}")
    data = fh.read(nbytes + 1)
    if len(data) != nbytes:
        raise refuse(f"member {member.filename!r} holds {len(data)} bytes of data, not "
                     f"{nbytes}")
    array = np.frombuffer(data, dtype=dtype)
    if fortran:
        return array.reshape(shape[::-1]).transpose().copy()
    return array.reshape(shape).copy()
