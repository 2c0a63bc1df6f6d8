"""The ``fpx`` command: one module per command group, each thin parsing and printing
over the library.

Every failure the user can cause ends in one line, ``fpx: error: ...``, and a non-zero
exit status (2 for usage, 1 for unusable input, 130 on Ctrl-C); tracebacks are kept for
real bugs. Output paths are checked before a command runs; a file the system refuses to
read or write (permission, a full disk) and memory running out are reported in one line
too; library warnings (skipped files) print as one ``fpx: ...`` line each.

    options.py     exit codes, the parser, argument types, shared options, output
    spectrum.py    fpx spectrum
    extractor.py   fpx train | bank sample | embed | verify | identify | relate |
                   metric fit
    zoo.py         fpx zoo list | train | sample | quality | ship
    manifold.py    fpx artifacts | attribute | structure
    design.py      fpx design fit | predict
    bench.py       fpx bench transfer | design
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings

from core import __version__
from core.cli import bench, design, extractor, manifold, spectrum, zoo
from core.cli.options import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    check_outputs,
    say,
    warned,
)
from core.errors import FpxError

__all__ = ["EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]

# each has register(subparsers)
COMMAND_GROUPS = (spectrum, extractor, zoo, manifold, design, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fpx", description="Generative-model fingerprints in the "
                                            "frequency domain.")
    parser.add_argument("--version", action="version", version=f"fpx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["fpx", *argv])  # recorded in what fpx writes
    try:
        with warnings.catch_warnings():
            warnings.showwarning = warned
            check_outputs(args)
            status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader left early (``fpx ... --json | head``): no traceback. Point stdout at
        # devnull so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INPUT
    except FpxError as err:
        say(f"fpx: error: {err}")
        return EXIT_INPUT
    except MemoryError:
        say("fpx: error: out of memory; use fewer or smaller inputs (FPX_MAX_PIXELS and "
            "FPX_MAX_BYTES bound what one file may hold)")
        return EXIT_INPUT
    except OSError as err:
        # The system refused a file operation fpx asked for (permission, a full disk, a
        # folder removed meanwhile): the user's environment, not a bug.
        say(f"fpx: error: {_os_error(err)}")
        return EXIT_INPUT
    except KeyboardInterrupt:
        say("fpx: interrupted")
        return EXIT_INTERRUPTED


def _os_error(err: OSError) -> str:
    what = err.strerror or type(err).__name__
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else f"{what} ({err})".splitlines()[0]
