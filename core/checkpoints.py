"""Training checkpoints shared by every trainer (extractor, zoo, self-supervised encoder):
atomic, self-describing, never blindly unpickled.

A checkpoint is a ``torch.save``\\ d dict of state dicts, numbers and strings, tagged with a
format string (``fpx.extractor_checkpoint/1``, ``fpx.zoo_checkpoint/1``,
``fpx.ssl_checkpoint/1``) and the code version. It is read with
``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only, and
refused unless it carries the expected tag.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from core.errors import InvalidInputError
from core.runtime import atomic_path, code_version


def save_checkpoint(path: str | Path, payload: dict, *, format: str,
                    version: str | None = None) -> Path:
    """Write ``payload`` atomically, tagged with ``format`` and the code version.

    ``version`` is the code version to record (default: asked of git now); a training run
    passes the one it took at its start.
    """
    record = {"format": format, "code_version": version or code_version(), **payload}
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, *, format: str, what: str = "fpx") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` with the same ``format``.

    Anything else (a missing file, a truncated or foreign file, a pickle carrying code)
    is refused with one line naming ``path``; ``what`` names the expected kind.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such checkpoint")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError,
            AttributeError, ImportError, IndexError, KeyError, TypeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidInputError(f"{path}: not a readable fpx checkpoint ({first[:200]})") from None
    if not isinstance(record, dict) or record.get("format") != format:
        found = record.get("format") if isinstance(record, dict) else None
        detail = f"format {found!r}" if found else "format tag missing"
        raise InvalidInputError(f"{path}: not an {what} checkpoint ({detail})")
    return record
