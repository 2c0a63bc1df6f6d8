"""Training checkpoints shared by every trainer (extractor, zoo, self-supervised encoder):
atomic, self-describing, never blindly unpickled.

A checkpoint is a ``torch.save``\\ d dict of state dicts, numbers and strings, tagged with a
format string (``fpx.extractor_checkpoint/1``, ``fpx.zoo_checkpoint/1``,
``fpx.ssl_checkpoint/1``) and the code version. It is read with
``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only, and
refused unless it carries the expected tag. Its size is bounded (``FPX_MAX_BYTES``) and
what a trainer needs from it is checked by :func:`require` and :func:`checkpoint_step`
before anything is restored. :func:`remove_orphans` clears the temporary files of writes
that a ``kill -9`` cut short.
"""

from __future__ import annotations

import numbers
import pickle
import warnings
from pathlib import Path

import torch

from core.errors import InvalidInputError
from core.limits import regular_file
from core.runtime import atomic_path, code_version

MAX_REASON = 200  # characters of a library's message quoted in a refusal


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
    if not path.exists():
        raise InvalidInputError(f"{path}: no such checkpoint")
    regular_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():  # torch's notes on foreign pickle protocols
            warnings.simplefilter("ignore", UserWarning)
            record = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError,
            AttributeError, ImportError, IndexError, KeyError, TypeError, MemoryError) as err:
        raise InvalidInputError(f"{path}: not a readable fpx checkpoint ({_reason(err)})") \
            from None
    if not isinstance(record, dict) or record.get("format") != format:
        found = record.get("format") if isinstance(record, dict) else None
        detail = f"format {found!r}" if found else "format tag missing"
        raise InvalidInputError(f"{path}: not an {what} checkpoint ({detail})")
    return record


def _reason(err: BaseException) -> str:
    """A library's refusal in a few words: torch's weights-only refusal (a page of advice
    on loading untrusted files) is summarised; any other message is its first line, cut
    at a word boundary."""
    text = str(err)
    if "Weights only load failed" in text:
        return ("it holds Python objects, not only tensors; fpx loads checkpoints with "
                "torch.load(weights_only=True) and never unpickles anything else")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    if first.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for X:"
        first = f"{first} {lines[1]}"
    if len(first) <= MAX_REASON:
        return first
    return first[:MAX_REASON].rsplit(" ", 1)[0] + " ..."


def require(record: dict, path: str | Path, **kinds) -> None:
    """Check that ``record`` (a loaded checkpoint) holds each ``key`` as an instance of
    ``kinds[key]``; one line naming ``path`` and the first key that is missing or wrong."""
    for key, kind in kinds.items():
        if key not in record:
            raise InvalidInputError(f"{path}: damaged checkpoint (no {key!r}); resume from "
                                    "an intact one or start a new run")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise InvalidInputError(f"{path}: damaged checkpoint ({key!r} is a "
                                    f"{type(record[key]).__name__})")


def checkpoint_step(record: dict, path: str | Path, total: int) -> int:
    """The checkpoint's step, an integer in ``[1, total]`` (a checkpoint is written after
    a step, and never past the run's last)."""
    step = record.get("step")
    if not isinstance(step, numbers.Integral) or isinstance(step, bool) \
            or not 1 <= step <= total:
        raise InvalidInputError(f"{path}: damaged checkpoint (step {step!r} is not in "
                                f"[1, {total}])")
    return int(step)


def restoring(path: str | Path):
    """A context that turns a failure to restore a loaded state (a state dict of other
    shapes, an optimiser state of another structure, a bad random state) into one line
    naming ``path``."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError,
                AttributeError) as err:
            raise InvalidInputError(f"{path}: damaged checkpoint, its state does not fit "
                                    f"this run ({_reason(err)})") from None
    return guard()


def remove_orphans(path: str | Path) -> list[Path]:
    """Remove the temporary files a killed :func:`save_checkpoint` of ``path`` left
    beside it (``.NAME.*.tmp``); returns them."""
    path = Path(path)
    orphans = sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


def require_finite(state: dict, path: str | Path, key: str = "model") -> None:
    """Refuse a state dict holding a NaN or infinite floating tensor (resuming it could
    only diverge, sampling from it only paint NaN)."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            raise InvalidInputError(f"{path}: damaged checkpoint ({key} weight {name!r} holds "
                                    "NaN or Inf)")
