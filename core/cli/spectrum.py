"""``fpx spectrum`` (over :func:`core.analysis.analyse_paths`) and ``fpx robustness``
(over :func:`core.robustness.robustness_sweep`): thin parsing and printing."""

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
    say,
    seed,
    skipped,
)
from core.errors import FpxError
from core.spectrum import RESIDUALS, WINDOWS


def register(sub) -> None:
    p = command(
        sub, "spectrum", run, device=True, json=True,
        help="mean spectrum, radial profile and grid peaks of images",
        description="Analyse images (files or folders, searched recursively): mean log "
                    "spectrum of their centre crops, radial profile, grid peaks, the "
                    "upsampling lattice (its period, the frequencies that carry it, a score "
                    "and a false-alarm rate calibrated on the images themselves) and the "
                    "power-law tail. JPEG files' 8x8 block grid is not taken for upsampling.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--size", type=crop_size, default=None,
                   help="centre-crop size in pixels; smaller images are skipped (default: "
                        "the images' own size, the most common one when they differ)")
    p.add_argument("--residual", choices=RESIDUALS, default="none",
                   help="high-pass residual taken before the FFT (default none)")
    p.add_argument("--window", choices=("none",) + WINDOWS, default="none",
                   help="apodisation window (default none)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_out(p, "also write spectrum.png, profile.png and spectrum.json to DIR")


    from core.data.processing import PROCESSING

    r = command(
        sub, "robustness", run_robustness, device=False, json=True,
        help="which processing the upsampling lattice of images survives",
        description="Apply JPEG (q 95, 90, 75, 50), resizing (x0.5 to x1.5), Gaussian blur, "
                    "additive noise and 1-pixel shifts to a set of images and report, for "
                    "each, the detected lattice period, its score and false alarm, beside "
                    "the period the unprocessed images predict (and, with --real, what real "
                    "photos given the same processing show).",
    )
    r.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    r.add_argument("--real", metavar="DIR", default=None,
                   help="real photos given the same processing (they should show no period)")
    r.add_argument("--size", type=crop_size, default=None,
                   help="centre-crop size in pixels (default: the images' own size)")
    r.add_argument("--steps", nargs="+", choices=tuple(PROCESSING), default=None,
                   metavar="STEP", help=f"processing steps (default all: "
                                        f"{', '.join(PROCESSING)})")
    r.add_argument("--seed", type=seed, default=0, help="seed of noise and random shifts")
    r.add_argument("--markdown", action="store_true",
                   help="print the table as markdown (for docs/results.md)")


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
    period = report.grid.period
    # the lattice when one is found (its points, each +-f pair), else the isolated peaks
    marks = report.grid.points() if period else report.peaks
    spectrum_png(report.spectrum, out / "spectrum.png", peaks=marks,
                 title=f"Mean log spectrum ({report.images} images, {report.size} px; "
                       f"residual {report.residual}, window {report.window or 'none'}; "
                       f"{'period ' + format(period, 'g') if period else 'no lattice'})")
    profile_png({"images": report.profile}, out / "profile.png")
    record = {**summary, "made_by": {"command": command, "code_version": code_version()}}
    atomic_write(out / "spectrum.json", json.dumps(record, indent=2))


def _print_table(s: dict, out: Path | None) -> None:
    fit = s["power_law"]
    grid = s["grid"]
    choice = s["size_choice"]
    size = f"{s['size']} px" if choice is None else _describe_size(choice)
    if grid["period"] is None:
        found = (f"none detected (strongest candidate's false alarm "
                 f"{grid['false_alarm']:.3f} > {grid['alpha']})")
    else:
        found = (f"{grid['explanation']} (score {grid['score_db']:.1f} dB, false alarm "
                 f"{grid['false_alarm']:.3f})")
    rows = [
        ("images", f"{s['images']} (skipped {len(s['skipped'])})"),
        ("crop size", size),
        ("residual / window", f"{s['residual']} / {s['window'] or 'none'}"),
        ("upsampling factor", found),
    ]
    if s["jpeg_files"]:
        rows.append(("JPEG files", f"{s['jpeg_files']}: their 8x8 block grid is left out"))
    if grid["evidence"] != "ok":
        rows.append(("evidence", grid["evidence"]))
    rows += [
        ("isolated peaks", str(len(s["peaks"]))),
        ("power-law exponent", f"{fit['exponent']:.2f} (tail {fit['min_frequency']}-"
                               f"{fit['max_frequency']} cycles/pixel, rms {fit['rms_db']:.2f} dB)"),
    ]
    print_rows(rows)
    for note in grid["notes"]:
        print(f"  note: {note}")
    if grid["lattice"]:
        print("\n  lattice  fy (c/px)  fx (c/px)  above background (dB)")
        for p in grid["lattice"][:10]:
            print(f"           {p['fy']:+9.4f}  {p['fx']:+9.4f}  {p['power_db']:21.1f}")
        if len(grid["lattice"]) > 10:
            print(f"           ... {len(grid['lattice']) - 10} more (see --json)")
    if out is not None:
        print(f"\nwrote {out / 'spectrum.png'}, {out / 'profile.png'}, {out / 'spectrum.json'}")


def _describe_size(choice: dict) -> str:
    from core.data.folder import SizeChoice

    return SizeChoice(**choice).describe()


def run_robustness(args) -> int:
    from core.robustness import DEFAULT_STEPS, load_images, markdown_table, robustness_sweep

    images, choice = load_images(args.paths, args.size, notify=skipped)
    real = None
    if args.real is not None:
        real, _ = load_images([args.real], choice.size, notify=skipped)
    say(f"{len(images)} images at {choice.describe()}"
        + (f"; {len(real)} real photos" if real is not None else ""))
    rows = robustness_sweep(images, real=real, steps=args.steps or DEFAULT_STEPS,
                            seed=args.seed, progress=lambda name: say(f"step {name}"))
    data = {"images": len(images), "size": choice.size,
            "real": None if real is None else len(real),
            "rows": [r.__dict__ for r in rows]}
    if args.markdown and not args.json:
        print(markdown_table(rows, real=real is not None))
        return 0
    return emit(args, data, lambda: print(markdown_table(rows, real=real is not None)))
