"""CIFAR-10 from its official releases, read without trusting pickle.

* The **binary** release (``cifar-10-batches-bin/*.bin``, or ``cifar-10-binary.tar.gz``):
  records of one label byte and 3072 pixel bytes, parsed with NumPy.
* The **python** release (``cifar-10-batches-py/``, or ``cifar-10-python.tar.gz``): its
  batches are pickles, which can run arbitrary code. They are read with an unpickler that
  resolves no global except NumPy's array reconstruction, so only arrays, lists, dicts,
  strings and numbers can come out; anything else is refused with a clear error. Arrays
  are not rebuilt by NumPy from the pickle: their recorded state is checked first (a plain
  dtype, and exactly the bytes its shape needs), so a batch cannot ask for an array of
  terabytes.

Archives are read in place (member bytes only, nothing is extracted). Every batch file or
member is bounded in size (:data:`MAX_BATCH_BYTES`, checked before it is read) and an
archive in number of members, so a small archive that inflates to gigabytes is refused.
"""

from __future__ import annotations

import io
import math
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from core.errors import InvalidInputError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_RECORD = 1 + 3 * 32 * 32
_BIN_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
_PY_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
MAX_BATCH_BYTES = 48 * 2**20  # a batch of 10,000 images is 29.3 MiB in either release
MAX_ARCHIVE_MEMBERS = 100  # the releases hold 8 files and their folder


class _PendingArray:
    """What the restricted unpickler makes of ``numpy.core.multiarray._reconstruct``: the
    array's recorded state, turned into an array by :func:`_arrays` only once checked."""

    def __init__(self, *args):
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def array(self) -> np.ndarray:
        state = self.state
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("malformed array state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise pickle.UnpicklingError("arrays of Python objects are refused")
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}"[:80])
        if not isinstance(raw, bytes) or math.prod(shape) * dtype.itemsize != len(raw):
            size = len(raw) if isinstance(raw, bytes) else type(raw).__name__
            raise pickle.UnpicklingError(f"array of shape {shape} does not match its {size} "
                                         "bytes of data"[:120])
        array = np.frombuffer(raw, dtype=dtype)
        return (array.reshape(shape[::-1]).T if fortran else array.reshape(shape)).copy()


def _arrays(obj, depth: int = 0):
    """``obj`` with every :class:`_PendingArray` in its dicts, lists and tuples made an
    array (after its checks)."""
    if depth > 20:
        raise pickle.UnpicklingError("containers nested too deeply")
    if isinstance(obj, _PendingArray):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _arrays(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v, depth + 1) for v in obj)
    return obj


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How Python 3 pickles ``bytes`` at protocols < 3: ``_codecs.encode(str, 'latin1')``.
    Only that call is honoured; it builds a bytes object and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refused _codecs.encode call other than latin1 bytes")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _PendingArray,
    ("numpy._core.multiarray", "_reconstruct"): _PendingArray,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load '{module}.{name}': only arrays, lists and dicts are accepted"
            ) from None


def restricted_unpickle(data: bytes):
    """Unpickle ``data`` allowing nothing but plain containers, numbers, strings and
    NumPy arrays of plain dtypes."""
    try:
        return _arrays(_ArraysOnlyUnpickler(io.BytesIO(data), encoding="bytes").load())
    except pickle.UnpicklingError as err:
        raise InvalidInputError(f"unsafe or corrupt pickle: {err}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RecursionError, MemoryError, OverflowError) as err:
        first = str(err).splitlines()[0][:120] if str(err) else ""
        raise InvalidInputError(f"corrupt pickle ({type(err).__name__}: {first})") from None


def _parse_binary(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(data) == 0 or len(data) % _RECORD:
        raise InvalidInputError(f"{name}: {len(data)} bytes is not a whole number of "
                                f"{_RECORD}-byte CIFAR-10 records")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def _parse_python(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = restricted_unpickle(data)
    except InvalidInputError as err:
        raise InvalidInputError(f"{name}: {err}") from None
    if not isinstance(batch, dict):
        raise InvalidInputError(f"{name}: expected a dict batch, got {type(batch).__name__}")
    get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
    pixels, labels = get.get("data"), get.get("labels")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 \
            or pixels.shape[1] != 3072:
        raise InvalidInputError(f"{name}: 'data' must be a uint8 array of shape (N, 3072)")
    try:
        labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    except (OverflowError, ValueError, TypeError):
        raise InvalidInputError(f"{name}: 'labels' must be a list of integers 0..9") from None
    if labels.shape != (pixels.shape[0],):
        raise InvalidInputError(f"{name}: {labels.size} labels for {pixels.shape[0]} images")
    return pixels.reshape(-1, 3, 32, 32), labels


def _locate(root: Path) -> tuple[str, object]:
    """Find a release under ``root``: ('bin' | 'py', folder Path or open TarFile)."""
    candidates = [("bin", root), ("bin", root / "cifar-10-batches-bin"),
                  ("py", root), ("py", root / "cifar-10-batches-py")]
    for kind, folder in candidates:
        first = (_BIN_FILES if kind == "bin" else _PY_FILES)["test"][0]
        if (folder / first).is_file():
            return kind, folder
    archives = [("bin", root), ("bin", root / "cifar-10-binary.tar.gz"),
                ("py", root), ("py", root / "cifar-10-python.tar.gz")]
    for kind, path in archives:
        if path.is_file() and _is_tar(path):
            tar = tarfile.open(path, "r:*")
            try:
                names = {Path(m.name).name for m in _members(tar)}
            except BaseException:
                tar.close()
                raise
            if (_BIN_FILES if kind == "bin" else _PY_FILES)["test"][0] in names:
                return kind, tar
            tar.close()
    raise InvalidInputError(
        f"{root}: no CIFAR-10 release found (expected cifar-10-batches-bin/, "
        "cifar-10-batches-py/ or their .tar.gz archives)"
    )


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's files, each checked against :data:`MAX_BATCH_BYTES` on its header;
    an archive of more than :data:`MAX_ARCHIVE_MEMBERS` entries is refused."""
    found = []
    try:
        for i, member in enumerate(tar):
            if i >= MAX_ARCHIVE_MEMBERS:
                raise InvalidInputError(f"{tar.name}: more than {MAX_ARCHIVE_MEMBERS} "
                                        "entries; not a CIFAR-10 release")
            if member.isfile():
                found.append(member)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise InvalidInputError(f"{tar.name}: corrupt archive ({err})") from None
    return found


def _check_size(name, size: int) -> None:
    if size > MAX_BATCH_BYTES:
        raise InvalidInputError(f"{name}: {size} bytes is larger than any CIFAR-10 batch "
                                f"({MAX_BATCH_BYTES} at most); not a CIFAR-10 release")


def _read_member(source, name: str) -> bytes:
    if isinstance(source, Path):
        from core.limits import regular_file

        path = source / name
        if not path.exists():
            raise InvalidInputError(f"{path}: missing CIFAR-10 batch file")
        regular_file(path, "CIFAR-10 batch file")
        _check_size(path, path.stat().st_size)
        return path.read_bytes()
    for member in _members(source):
        if Path(member.name).name == name:
            _check_size(f"{source.name}: {member.name}", member.size)
            try:
                return source.extractfile(member).read(MAX_BATCH_BYTES + 1)
            except (tarfile.TarError, OSError, EOFError) as err:
                raise InvalidInputError(f"{source.name}: corrupt archive ({err})") from None
    raise InvalidInputError(f"{source.name}: archive lacks {name}")


def load_cifar10(root: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load CIFAR-10 images and labels.

    Args:
        root: a folder holding (or being) ``cifar-10-batches-bin`` or
            ``cifar-10-batches-py``, or one of the official ``.tar.gz`` archives.
        split: ``train`` (50,000 images) or ``test`` (10,000).

    Returns:
        ``(images, labels)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)`` in ``0..9``
        (names in :data:`CIFAR10_CLASSES`). Convert with ``to_signed(images / 255)``.
    """
    if split not in _BIN_FILES:
        raise InvalidInputError(f"unknown CIFAR-10 split '{split}'; valid: train, test")
    root = Path(root)
    if not root.exists():
        raise InvalidInputError(f"{root}: no such file or folder")
    kind, source = _locate(root)
    try:
        parts = []
        for name in (_BIN_FILES if kind == "bin" else _PY_FILES)[split]:
            data = _read_member(source, name)
            parts.append((_parse_binary if kind == "bin" else _parse_python)(data, name))
    finally:
        if isinstance(source, tarfile.TarFile):
            source.close()
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise InvalidInputError(f"{root}: labels outside 0..9 (corrupt file?)")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels)
