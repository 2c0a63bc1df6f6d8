"""What every ``fpx`` command shares: exit codes, the parser, argument types, the common
options, and one way to print (messages to stderr; tables and JSON to stdout).

stdout carries results only (a table, or exactly one JSON object with ``--json``), so
``fpx ... --json | jq`` works; progress, skips and errors go to stderr.

Output paths (``--out``, ``--sheets``) are declared with :func:`add_out` and checked by
:func:`check_outputs` before a command does any work: a file where a folder is wanted
(or the reverse), a path under a file, a folder fpx cannot write into.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.errors import FpxError, InvalidInputError

EXIT_INPUT, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
MIN_SIZE = 8  # pixels: smaller crops leave too few frequency bins to find a grid
SEED_LIMIT = 2**32  # numpy's legacy seeding, torch and Python all take [0, 2**32)
# Counts past these are typing slips that would run for hours or allocate without end;
# each is far above any useful value of its option.
MAX_COUNT = 10**6  # images, samples, pairs, shots
MAX_STEPS = 10**8  # training steps and epochs
MAX_BATCH = 4096
MAX_SIZE = 8192  # crop side in pixels


class OutputPathError(FpxError):
    """An output path that cannot be written as asked."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argument types (argparse turns their errors into usage errors, exit 2) -------------


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argument type: an integer in ``[lo, hi]``."""
    def parse(text: str) -> int:
        want = (f"an integer in [{lo}, {hi}]" if hi is not None
                else "a positive integer" if lo == 1 else f"an integer >= {lo}")
        try:
            value = int(text)
        except ValueError:  # also Python's refusal of integers of over 4300 digits
            raise argparse.ArgumentTypeError(f"expected {want}, got {_shown(text)}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {want}, got {_shown(text)}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


positive_int = int_range(1)
count = int_range(1, MAX_COUNT)  # images, samples, pairs
steps = int_range(1, MAX_STEPS)
batch = int_range(1, MAX_BATCH)


def crop_size(text: str) -> int:
    """A square crop size in pixels, in ``[MIN_SIZE, MAX_SIZE]``."""
    value = positive_int(text)
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"expected a size in [{MIN_SIZE}, {MAX_SIZE}], got "
                                         f"{value}")
    return value


def seed(text: str) -> int:
    """A random seed in ``[0, 2**32)``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, 2**32), got "
                                         f"{_shown(text)}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**32), got {_shown(text)}")
    return value


def seed_list(text: str, option: str = "--seeds") -> tuple[int, ...]:
    """Comma-separated seeds (``"0,1,2"``), checked when the command runs (exit 1)."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InvalidInputError(f"{option} must be comma-separated integers, got "
                                f"{_shown(text)}") from None
    if not seeds:
        raise InvalidInputError(f"{option} is empty")
    bad = [s for s in seeds if not 0 <= s < SEED_LIMIT]
    if bad:
        raise InvalidInputError(f"{option}: every seed must be in [0, 2**32), got "
                                f"{_shown(str(bad[0]))}")
    return seeds


# --- common options ---------------------------------------------------------------------


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")


def command(sub, name: str, run: Callable[[argparse.Namespace], int], *, device: bool = False,
            json: bool = False, **parser_options) -> argparse.ArgumentParser:
    """The sub-command ``name`` (``parser_options`` go to ``add_parser``: help,
    description) that runs ``run(args)``, with the shared ``--device`` and ``--json``
    options when asked; the caller adds its own arguments to the returned parser."""
    p = sub.add_parser(name, **parser_options)
    if device:
        add_device(p)
    if json:
        add_json(p)
    p.set_defaults(run=run)
    return p


def add_skip_unusable(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-unusable", action="store_true",
                   help="go on without a named folder that holds no usable image (default: "
                        "such a folder is an error)")


def read_named_folder(folder, size: int, args):
    """``(images, paths)`` of a folder the user named (:func:`core.data.read_folder`),
    or ``None`` with a named skip when it holds no usable image and ``--skip-unusable``
    was given; without it, that is an error saying how to go on."""
    from core.data import read_folder

    try:
        return read_folder(folder, size, notify=skipped)
    except InvalidInputError as err:
        if not args.skip_unusable:
            raise InvalidInputError(f"{err}; pass --skip-unusable to go on without "
                                    "it") from None
        skipped(str(folder), "no usable image; left out")
        return None


def add_out(p: argparse.ArgumentParser, help: str | None = None, *, required: bool = False,
            metavar: str = "DIR", option: str = "--out", kind: str | None = None,
            **kwargs) -> None:
    """An output path option; ``kind`` is ``dir`` or ``file`` (default: ``file`` when
    ``metavar`` names a file, else ``dir``). :func:`check_outputs` checks it before the
    command runs."""
    kind = kind or ("file" if "." in metavar else "dir")
    action = p.add_argument(option, type=Path, required=required, metavar=metavar,
                            help=help, **kwargs)
    outputs = [*(p.get_default("outputs") or ()), (action.dest, option, kind)]
    p.set_defaults(outputs=tuple(outputs))


def check_outputs(args: argparse.Namespace) -> None:
    """Check every output path of the command (see :func:`add_out`) before any work."""
    for dest, option, kind in getattr(args, "outputs", ()):
        path = getattr(args, dest, None)
        if path is not None:
            check_output(Path(path), kind, option)


def check_output(path: Path, kind: str, option: str = "--out") -> None:
    """Refuse an output path that cannot be written as a ``kind`` (``dir`` | ``file``):
    one line naming the option, the path and what to do instead. Nothing is created: the
    nearest existing folder is probed with a temporary folder, removed at once."""
    def refuse(why: str) -> OutputPathError:
        return OutputPathError(f"{option} {path}: {why}")

    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:  # a component is a file (ENOTDIR), a loop, no permission
        parent = _existing_parent(path)
        if parent is not None and not parent.is_dir():
            raise refuse(f"{parent} is a file, not a folder") from None
        raise refuse(f"cannot use it ({err.strerror})") from None
    if info is not None:
        if kind == "dir" and not stat.S_ISDIR(info.st_mode):
            raise refuse("exists and is not a folder; give a folder path")
        if kind == "file" and stat.S_ISDIR(info.st_mode):
            raise refuse(f"is a folder; give a file path (e.g. {path / 'embeddings.npz'})")
        if kind == "file" and not stat.S_ISREG(info.st_mode):
            raise refuse("exists and is not a regular file (a FIFO or device)")
    parent = _existing_parent(path if kind == "dir" else path.parent)
    if parent is None:
        raise refuse("no existing folder above it")
    if not parent.is_dir():
        raise refuse(f"{parent} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=parent, prefix=".fpx-probe-").cleanup()
    except OSError as err:
        raise refuse(f"cannot write in {parent} ({err.strerror})") from None


def _existing_parent(path: Path) -> Path | None:
    """``path`` or its nearest ancestor that exists (as anything)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return None


# --- output -----------------------------------------------------------------------------


def warned(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: one ``fpx: ...`` line, no source line (the
    library's loaders warn ``skipped PATH: REASON`` when nobody asked to be notified)."""
    text = str(message).splitlines()[0] if str(message) else category.__name__
    say(f"fpx: {text}" if text.startswith("skipped ") else f"fpx: warning: {text}")


def say(message: str) -> None:
    """One line to stderr, at once (progress and skips interleave with tqdm's bars)."""
    print(message, file=sys.stderr, flush=True)


def skipped(path: str, reason: str) -> None:
    """The ``notify`` of the library's loaders: one line per file left out."""
    say(f"fpx: skipped {path}: {reason}")


def print_json(obj) -> None:
    """Exactly one JSON object, on one line, to stdout."""
    print(json.dumps(obj))


def emit(args: argparse.Namespace, data, table: Callable[[], None] | None = None) -> int:
    """A command's result on stdout: ``data`` as one JSON object with ``--json``, else
    ``table()`` (default: ``data`` as aligned rows). Returns the exit status, 0."""
    if getattr(args, "json", False):
        print_json(data)
    elif table is not None:
        table()
    else:
        print_rows(data)
    return 0


def print_rows(rows: dict | list[tuple[str, object]]) -> None:
    """``key  value`` lines, keys aligned; floats to 4 decimals."""
    items = list(rows.items()) if isinstance(rows, dict) else list(rows)
    width = max(len(k) for k, _ in items)
    for key, value in items:
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
