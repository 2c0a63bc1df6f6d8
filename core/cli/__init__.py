"""The ``fpx`` command: one module per command group, each thin parsing and printing
over the library.

Every failure the user can cause ends in one line, ``fpx: error: ...``, and a non-zero
exit status (2 for usage, 1 for unusable input, 130 on Ctrl-C); tracebacks are kept for
real bugs.

    options.py     exit codes, the parser, argument types, shared options, output
    spectrum.py    fpx spectrum
    extractor.py   fpx train | bank sample | embed | verify | identify | relate
    zoo.py         fpx zoo list | train | sample | quality | ship
    manifold.py    fpx artifacts | attribute | structure
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from core import __version__
from core.cli import extractor, manifold, spectrum, zoo
from core.cli.options import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_USAGE, Parser, say
from core.errors import FpxError

__all__ = ["EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]

COMMAND_GROUPS = (spectrum, extractor, zoo, manifold)  # each has register(subparsers)


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
    except KeyboardInterrupt:
        say("fpx: interrupted")
        return EXIT_INTERRUPTED
