"""``fpx zoo list | train | sample | quality | ship``: thin parsing and printing over
:mod:`core.zoo`."""

from __future__ import annotations

import sys
from pathlib import Path

from core.cli.options import (
    EXIT_INTERRUPTED,
    add_out,
    add_skip_unusable,
    batch,
    command,
    count,
    emit,
    print_json,
    read_named_folder,
    say,
    seed,
    skipped,
    steps,
)
from core.errors import InvalidInputError

RUNS = Path("runs/zoo")


def register(sub) -> None:
    from core.zoo.train import PRESETS

    zoo = sub.add_parser("zoo", help="the generator zoo: small GANs, VAEs, flows, diffusion",
                         description="Train, sample and assess the zoo's generators.")
    zsub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION",
                              parser_class=type(zoo))
    zsub.required = True

    p = command(zsub, "list", run_list, json=True,
                help="the default entries, their design choices and predicted period")
    p.add_argument("--runs", type=Path, default=RUNS, help=f"trained runs (default {RUNS})")
    p.add_argument("--lattice", nargs="?", type=Path, const="shipped", default=None,
                   metavar="DIR", help="also detect the lattice in each entry's samples "
                                       "(DIR/NAME; default: the shipped samples) beside the "
                                       "period its design predicts and the isolated-peak "
                                       "finder's estimate")

    p = command(zsub, "train", run_train, device=True, help="train an entry (or all)")
    p.add_argument("name", help="entry name, 'all', or FILE.json: an entry recorded as JSON "
                                "(the dashboard's lab designs)")
    p.add_argument("--preset", choices=list(PRESETS), default="quick")
    p.add_argument("--data", help="bundled | FOLDER | cifar10:PATH (default: the entry's)")
    p.add_argument("--size", type=int, choices=[32, 64], help="image size (default: preset)")
    p.add_argument("--steps", type=steps, help="override the preset's steps")
    p.add_argument("--batch", type=batch, help="override the preset's batch size")
    p.add_argument("--checkpoint-every", type=steps, metavar="N",
                   help="write the checkpoint every N steps (default: preset)")
    add_out(p, f"runs folder; the entry goes to DIR/NAME (default {RUNS})", default=RUNS)
    p.add_argument("--resume", action="store_true", help="continue from DIR/NAME/checkpoint.pt")
    p.add_argument("--seed", type=seed, help="override the entry's seed (weights, data order)")
    p.add_argument("--snapshots", action="store_true",
                   help="at step 0 and every checkpoint, keep samples and their spectrum "
                        "analysis in DIR/NAME/snapshots/ (watch the fingerprint form)")

    p = command(zsub, "sample", run_sample, device=True,
                help="write samples of a trained entry as PNGs")
    p.add_argument("name", help="entry name, or 'all'")
    p.add_argument("-n", type=count, default=1000, help="samples per entry")
    add_out(p, "samples go to DIR/NAME/00000.png ...", required=True)
    p.add_argument("--runs", type=Path, default=RUNS, help=f"trained runs (default {RUNS})")
    p.add_argument("--seed", type=seed,
                   help="sampling seed (default: the seed its shipped samples were drawn "
                        "with; the DDPM pair each its own)")
    p.add_argument("--overwrite", action="store_true", help="replace existing samples")

    p = command(zsub, "quality", run_quality, json=True,
                help="spectral distance and kernel MMD against real crops")
    p.add_argument("folders", nargs="+", type=Path, help="folders of samples")
    p.add_argument("--real", default="bundled",
                   help="a folder of real images, or 'bundled' (default)")
    p.add_argument("--size", type=int, choices=[32, 64], default=None,
                   help="compare centre crops of this size (default: the samples' own size, "
                        "the most common one)")
    add_out(p, "write a contact sheet per folder", option="--sheets")
    add_skip_unusable(p)

    p = command(zsub, "ship", run_ship, device=True,
                help="make the shipped sample set from trained runs")
    p.add_argument("--runs", type=Path, default=RUNS, help=f"trained runs (default {RUNS})")
    add_out(p, "default: the package's assets/zoo")
    p.add_argument("-n", type=count, default=200, help="samples per entry")
    p.add_argument("--real", type=count, default=1000, help="held-out real crops")
    add_out(p, "contact sheets (PNG) go here", option="--sheets")


def _entries(name: str):
    from core.zoo import DEFAULT_ZOO, get_entry

    if name.endswith(".json"):
        return [read_entry(name)]
    return list(DEFAULT_ZOO) if name == "all" else [get_entry(name)]


def read_entry(path: str | Path):
    """The zoo entry recorded as JSON in ``path`` (checked like every entry)."""
    import json

    from core.errors import FpxError
    from core.limits import regular_file
    from core.zoo.entries import ZooEntry

    path = regular_file(path, "entry file")
    try:
        return ZooEntry.from_dict(json.loads(path.read_text()))
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: not a JSON zoo entry ({err})") from None
    except FpxError as err:
        raise InvalidInputError(f"{path}: {err}") from None


def run_list(args) -> int:
    from core.zoo import DEFAULT_ZOO
    from core.zoo.design import check_lattice, design_of
    from core.zoo.shipped import SHIPPED_ZOO

    rows = [{**e.to_dict(), "trained": (args.runs / e.name / "checkpoint.pt").exists(),
             "design": design_of(e).to_json_dict()} for e in DEFAULT_ZOO]
    if args.lattice is not None:
        root = SHIPPED_ZOO / "samples" if str(args.lattice) == "shipped" else args.lattice
        if not root.is_dir():
            raise InvalidInputError(f"--lattice {root}: not a folder")
        for entry, row in zip(DEFAULT_ZOO, rows):
            folder = root / entry.name
            if not folder.is_dir():
                say(f"fpx: skipped {entry.name}: no folder {folder}")
                row["lattice"] = None
                continue
            say(f"lattice of {entry.name}")
            row["lattice"] = check_lattice(entry, folder, notify=skipped).to_json_dict()
    return emit(args, {"entries": rows}, lambda: _entry_table(rows))


def _entry_table(rows: list[dict]) -> None:
    cols = ("name", "family", "upsampling", "normalization", "activation", "loss", "seed")
    table = [[str(r[c]) for c in cols] + ["yes" if r["trained"] else "-",
                                          str(r["design"]["period"] or "-")] for r in rows]
    head = list(cols) + ["trained", "period (design)"]
    if any("lattice" in r for r in rows):
        head += ["detected", "false alarm", "consistent", "peak finder"]
        for line, r in zip(table, rows):
            found = r.get("lattice")
            line += (["-"] * 4 if found is None else
                     [format(found["detected"], "g") if found["detected"] else "none",
                      f"{found['false_alarm']:.3f}", "yes" if found["consistent"] else "no",
                      str(found["peaks_factor"] or "none")])
    widths = [max(len(h), *(len(line[i]) for line in table)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for line in table:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())


def run_train(args) -> int:
    import dataclasses

    from core.zoo.train import train_entry

    # A run stopped by Ctrl-C / SIGTERM is checkpointed and reported as interrupted; the
    # entries after it are not started.
    for entry in _entries(args.name):
        if args.seed is not None:
            entry = dataclasses.replace(entry, seed=args.seed)
        summary = train_entry(entry, args.out, preset=args.preset, data=args.data,
                              size=args.size, steps=args.steps, batch=args.batch,
                              checkpoint_every=args.checkpoint_every, resume=args.resume,
                              device=args.device, snapshots=args.snapshots)
        print_json(summary)
        if summary.get("interrupted"):
            return EXIT_INTERRUPTED
    return 0


def run_sample(args) -> int:
    from tqdm import tqdm

    from core.runtime import resolve_device
    from core.zoo.sample import sample_to_folder
    from core.zoo.shipped import sample_seed as shipped_sample_seed
    from core.zoo.train import load_trained

    device = resolve_device(args.device)
    for entry in _entries(args.name):
        run = args.runs / entry.name
        if not (run / "checkpoint.pt").exists():
            raise InvalidInputError(f"{entry.name} is not trained: no {run}/checkpoint.pt "
                                    f"(fpx zoo train {entry.name} --out {args.runs})")
        model, record = load_trained(run, device)
        seed = shipped_sample_seed(entry) if args.seed is None else args.seed
        with tqdm(total=args.n, desc=entry.name, unit="img", file=sys.stderr,
                  dynamic_ncols=True) as bar:
            folder = sample_to_folder(model, args.n, args.out / entry.name, seed=seed,
                                      overwrite=args.overwrite, progress=bar.update,
                                      made_by={"command": args.command_line,
                                               "checkpoint_step": record["step"]})
        say(f"{entry.name}: {args.n} samples -> {folder}")
    return 0


def run_quality(args) -> int:
    from core.data import bundled_crops, read_folder
    from core.figures import write_contact_sheet
    from core.zoo.quality import assess
    from core.zoo.shipped import REAL_SEED

    if args.size is None:
        from core.data.folder import Skipped, choose_crop_size, scan_images

        quiet = Skipped(notify=lambda path, reason: None)  # named when the pixels are read
        args.size = choose_crop_size(scan_images(args.folders, quiet)).size
        if args.size not in (32, 64):
            raise InvalidInputError(f"the samples are {args.size} px; zoo quality compares "
                                    "crops of 32 or 64 px: pass --size 32 or --size 64")
        say(f"comparing {args.size}-px crops (the samples' own size)")
    real = (bundled_crops(args.size, 1000, seed=REAL_SEED, split="train")
            if args.real == "bundled" else read_folder(args.real, args.size, notify=skipped)[0])
    report = {}
    for folder in args.folders:
        found = read_named_folder(folder, args.size, args)
        if found is None:
            continue
        samples = found[0]
        report[folder.name or str(folder)] = assess(samples, real)
        if args.sheets is not None:
            write_contact_sheet(samples[:64], args.sheets / f"{folder.name}.png")
    if not report:
        raise InvalidInputError("no folder of samples was usable")
    return emit(args, {"real": str(args.real),
                       "folders": {name: r.to_dict() for name, r in report.items()}},
                lambda: _quality_table(report))


def _quality_table(report: dict) -> None:
    print(f"{'folder':<28} {'spectral dB':>11} {'MMD':>8} {'noise MMD':>10}  verdict")
    for name, r in report.items():
        print(f"{name:<28} {r.spectral_distance_db:>11.2f} {r.kernel_mmd:>8.3f} "
              f"{r.kernel_mmd_noise:>10.3f}  {'ok' if r.passed else 'FAILED (noise)'}")


def run_ship(args) -> int:
    from core.runtime import resolve_device
    from core.zoo.shipped import SHIPPED_ZOO, ship

    # The recorded command names the runs folder RUNS: where a user keeps runs is theirs.
    recorded = " ".join("RUNS" if word == str(args.runs) else word
                        for word in args.command_line.split(" "))
    if args.out is None:
        say(f"fpx zoo ship: writing the package's own sample set {SHIPPED_ZOO} (pass --out "
            "DIR to write elsewhere); it is replaced only once all of it is written")
    ship(args.runs, args.out or SHIPPED_ZOO, count=args.n, real_count=args.real,
         sheets=args.sheets, device=resolve_device(args.device), command=recorded, log=say)
    return 0
