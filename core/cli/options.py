"""What every ``fpx`` command shares: exit codes, the parser, argument types, the common
options, and one way to print (messages to stderr; tables and JSON to stdout).

stdout carries results only (a table, or exactly one JSON object with ``--json``), so
``fpx ... --json | jq`` works; progress, skips and errors go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from core.errors import InvalidInputError

EXIT_INPUT, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
MIN_SIZE = 8  # pixels: smaller crops leave too few frequency bins to find a grid
SEED_LIMIT = 2**32  # numpy's legacy seeding, torch and Python all take [0, 2**32)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argument types (argparse turns their errors into usage errors, exit 2) -------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def crop_size(text: str) -> int:
    """A square crop size in pixels, at least :data:`MIN_SIZE`."""
    value = positive_int(text)
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"expected a size of at least {MIN_SIZE}, got {value}")
    return value


def seed(text: str) -> int:
    """A random seed in ``[0, 2**32)``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**32), got {value}")
    return value


def seed_list(text: str, option: str = "--seeds") -> tuple[int, ...]:
    """Comma-separated seeds (``"0,1,2"``), checked when the command runs (exit 1)."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InvalidInputError(f"{option} must be comma-separated integers, got {text!r}") \
            from None
    if not seeds:
        raise InvalidInputError(f"{option} is empty")
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


def add_out(p: argparse.ArgumentParser, help: str | None = None, *, required: bool = False,
            metavar: str = "DIR", **kwargs) -> None:
    p.add_argument("--out", type=Path, required=required, metavar=metavar, help=help, **kwargs)


# --- output -----------------------------------------------------------------------------


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
