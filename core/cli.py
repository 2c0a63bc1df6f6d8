"""The ``fpx`` command: thin argument parsing over the core modules.

Every failure the user can cause ends in one line, ``fpx: error: ...``, and a non-zero
exit status (2 for usage, 1 for unusable input); tracebacks are kept for real bugs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from core import __version__
from core.errors import FpxError
from core.spectrum import RESIDUALS, WINDOWS

EXIT_INPUT, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


MIN_SIZE = 8  # pixels: smaller crops leave too few frequency bins to find a grid


def _crop_size(text: str) -> int:
    value = _positive_int(text)
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"expected a size of at least {MIN_SIZE}, got {value}")
    return value


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- fpx spectrum -----------------------------------------------------------------------


def _add_spectrum(sub) -> None:
    p = sub.add_parser(
        "spectrum", help="mean spectrum, radial profile and grid peaks of images",
        description="Analyse images (files or folders, searched recursively): mean log "
                    "spectrum of their centre crops, radial profile, grid peaks, estimated "
                    "upsampling factor and power-law tail.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--size", type=_crop_size, default=128,
                   help="centre-crop size in pixels; smaller images are skipped (default 128)")
    p.add_argument("--residual", choices=RESIDUALS, default="none",
                   help="high-pass residual taken before the FFT (default none)")
    p.add_argument("--window", choices=("none",) + WINDOWS, default="none",
                   help="apodisation window (default none)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="also write spectrum.png, profile.png and spectrum.json to DIR")
    p.set_defaults(run=_run_spectrum)


def _run_spectrum(args) -> int:
    from tqdm import tqdm

    from core.analysis import analyse_paths
    from core.runtime import resolve_device

    device = resolve_device(args.device)
    bar = None

    def on_files(n: int) -> None:
        nonlocal bar
        # A bar only for long runs, and only on a terminal (stderr; stdout may carry JSON).
        bar = tqdm(total=n, unit="img", desc="spectrum", file=sys.stderr,
                   disable=n < 256 or not sys.stderr.isatty())

    try:
        report = analyse_paths(
            args.paths, size=args.size, residual=args.residual,
            window=None if args.window == "none" else args.window,
            batch_size=args.batch_size, device=device,
            notify=lambda path, reason: _say(f"fpx: skipped {path}: {reason}"),
            on_files=on_files, progress=lambda n: bar.update(n) if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    summary = report.to_json_dict()
    if args.out is not None:
        _write_spectrum_outputs(report, summary, args.out, args.command_line)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_spectrum_table(summary, args.out)
    return 0


def _write_spectrum_outputs(report, summary: dict, out: Path, command: str) -> None:
    from core.figures import profile_png, spectrum_png
    from core.runtime import atomic_write, code_version

    if out.exists() and not out.is_dir():
        raise FpxError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    spectrum_png(report.spectrum, out / "spectrum.png", peaks=report.peaks,
                 title=f"Mean log spectrum ({report.images} images)")
    profile_png({"images": report.profile}, out / "profile.png")
    record = {**summary, "made_by": {"command": command, "code_version": code_version()}}
    atomic_write(out / "spectrum.json", json.dumps(record, indent=2))


def _print_spectrum_table(s: dict, out: Path | None) -> None:
    fit = s["power_law"]
    factor = s["upsampling_factor"]
    rows = [
        ("images", f"{s['images']} (skipped {len(s['skipped'])})"),
        ("crop size", f"{s['size']} px"),
        ("residual / window", f"{s['residual']} / {s['window'] or 'none'}"),
        ("upsampling factor", "none detected" if factor is None
         else f"{factor} (grid prominence {s['grid_prominence_db']:.1f} dB)"),
        ("grid peaks", str(len(s["peaks"]))),
        ("power-law exponent", f"{fit['exponent']:.2f} (tail {fit['min_frequency']}-"
                               f"{fit['max_frequency']} cycles/pixel, rms {fit['rms_db']:.2f} dB)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if s["peaks"]:
        print("\n  fy (c/px)  fx (c/px)  prominence (dB)")
        for p in s["peaks"][:10]:
            print(f"  {p['fy']:+9.4f}  {p['fx']:+9.4f}  {p['prominence_db']:15.1f}")
        if len(s["peaks"]) > 10:
            print(f"  ... {len(s['peaks']) - 10} more (see --json)")
    if out is not None:
        print(f"\nwrote {out / 'spectrum.png'}, {out / 'profile.png'}, {out / 'spectrum.json'}")


# --- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fpx", description="Generative-model fingerprints in the "
                                             "frequency domain.")
    parser.add_argument("--version", action="version", version=f"fpx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_spectrum(sub)
    from core import cli_extractor, cli_manifold, cli_zoo

    cli_extractor.register(sub, _positive_int)
    cli_zoo.register(sub, _positive_int)
    cli_manifold.register(sub, _positive_int)
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
        _say(f"fpx: error: {err}")
        return EXIT_INPUT
    except KeyboardInterrupt:
        _say("fpx: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
