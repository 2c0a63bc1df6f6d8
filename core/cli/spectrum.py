"""``fpx spectrum``: thin parsing and printing over :func:`core.analysis.analyse_paths`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.options import (
    add_out,
    command,
    crop_size,
    emit,
    positive_int,
    print_rows,
    skipped,
)
from core.errors import FpxError
from core.spectrum import RESIDUALS, WINDOWS


def register(sub) -> None:
    p = command(
        sub, "spectrum", run, device=True, json=True,
        help="mean spectrum, radial profile and grid peaks of images",
        description="Analyse images (files or folders, searched recursively): mean log "
                    "spectrum of their centre crops, radial profile, grid peaks, estimated "
                    "upsampling factor and power-law tail.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--size", type=crop_size, default=128,
                   help="centre-crop size in pixels; smaller images are skipped (default 128)")
    p.add_argument("--residual", choices=RESIDUALS, default="none",
                   help="high-pass residual taken before the FFT (default none)")
    p.add_argument("--window", choices=("none",) + WINDOWS, default="none",
                   help="apodisation window (default none)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_out(p, "also write spectrum.png, profile.png and spectrum.json to DIR")


def run(args) -> int:
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
            batch_size=args.batch_size, device=device, notify=skipped,
            on_files=on_files, progress=lambda n: bar.update(n) if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    summary = report.to_json_dict()
    if args.out is not None:
        _write_outputs(report, summary, args.out, args.command_line)
    return emit(args, summary, lambda: _print_table(summary, args.out))


def _write_outputs(report, summary: dict, out: Path, command: str) -> None:
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


def _print_table(s: dict, out: Path | None) -> None:
    fit = s["power_law"]
    factor = s["upsampling_factor"]
    print_rows([
        ("images", f"{s['images']} (skipped {len(s['skipped'])})"),
        ("crop size", f"{s['size']} px"),
        ("residual / window", f"{s['residual']} / {s['window'] or 'none'}"),
        ("upsampling factor", "none detected" if factor is None
         else f"{factor} (grid prominence {s['grid_prominence_db']:.1f} dB)"),
        ("grid peaks", str(len(s["peaks"]))),
        ("power-law exponent", f"{fit['exponent']:.2f} (tail {fit['min_frequency']}-"
                               f"{fit['max_frequency']} cycles/pixel, rms {fit['rms_db']:.2f} dB)"),
    ])
    if s["peaks"]:
        print("\n  fy (c/px)  fx (c/px)  prominence (dB)")
        for p in s["peaks"][:10]:
            print(f"  {p['fy']:+9.4f}  {p['fx']:+9.4f}  {p['prominence_db']:15.1f}")
        if len(s["peaks"]) > 10:
            print(f"  ... {len(s['peaks']) - 10} more (see --json)")
    if out is not None:
        print(f"\nwrote {out / 'spectrum.png'}, {out / 'profile.png'}, {out / 'spectrum.json'}")
