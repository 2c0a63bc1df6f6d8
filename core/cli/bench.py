"""``fpx bench transfer``: thin parsing and printing over :mod:`core.bench`."""

from __future__ import annotations

import json
from pathlib import Path

from core.cli.options import add_out, command, emit, int_range, say, seed, skipped


def register(sub) -> None:
    from core.bench import BASELINES
    from core.data.processing import PROCESSING

    bench = sub.add_parser("bench", help="benchmarks: extractors and baselines on real and "
                                         "held-out generators",
                           description="Benchmarks of fingerprint methods.")
    bsub = bench.add_subparsers(dest="bench_command", metavar="ACTION",
                                parser_class=type(bench))
    bsub.required = True
    p = command(
        bsub, "transfer", run_transfer, device=True, json=True,
        help="zero-shot transfer: extractors beside baselines on one protocol",
        description="Evaluate extractors (the shipped one by default) and the baselines "
                    "(raw pixels, residual log spectrum, radial profile + power-law tail, the "
                    "untrained network; a supervised linear probe as upper reference) on the "
                    "shipped zoo, held-out synthetic models and any folders of model folders: "
                    "verification AUC and TAR at a FAR whose threshold is fixed on synthetic "
                    "validation models, k-shot identification, open-set AUROC and OSCR, and "
                    "the relationship of the models' mean features to their design fields.")
    p.add_argument("folders", nargs="*", type=Path, metavar="DIR",
                   help="folders of model folders (sub-folders = models) to test on")
    p.add_argument("--extractor", action="append", type=Path, metavar="DIR", default=None,
                   help="an exported extractor folder (repeatable; default: the shipped one)")
    p.add_argument("--sets", nargs="*", choices=("zoo", "seeds", "architectures"),
                   default=None, help="built-in test sets: the shipped zoo, held-out synthetic "
                                      "seeds or architectures (default: zoo, or none when "
                                      "folders are given)")
    p.add_argument("--baselines", nargs="*", choices=BASELINES, default=list(BASELINES),
                   help="baselines to run (default all)")
    p.add_argument("--no-probe", action="store_true", help="leave out the linear probe")
    p.add_argument("--native", action="store_true",
                   help="also run each extractor on images under its crop size fed as they "
                        "are (default: the size policy resamples their spectrum)")
    p.add_argument("--hybrid", action="store_true",
                   help="also run each extractor's hybrid fingerprint: its embedding beside "
                        "the blur-residual spectrum it reads, each unit length (the Attribute "
                        "tab's features), and through its synthetic metric when it has one "
                        "(fpx metric fit)")
    p.add_argument("--processing", nargs="+", choices=tuple(PROCESSING), default=["none"],
                   metavar="STEP", help="processing of the test images, one protocol each "
                                        f"(default none; valid: {', '.join(PROCESSING)})")
    p.add_argument("--pairs", type=int_range(2, 10**7), default=10_000,
                   help="verification pairs per set, half same-model (default 10000)")
    p.add_argument("--shots", type=int_range(1, 10**5), nargs="+", default=[1, 5, 10],
                   help="k of k-shot identification (default 1 5 10)")
    p.add_argument("--episodes", type=int_range(1, 1000), default=5,
                   help="gallery draws per k (default 5)")
    p.add_argument("--open-shots", type=int_range(1, 10**5), default=10,
                   help="gallery size of the open-set folds (default 10)")
    p.add_argument("--open-fraction", type=float, default=1 / 3,
                   help="share of models left out of the gallery per fold (default 1/3)")
    p.add_argument("--far", type=float, default=0.01, help="false accept rate (default 0.01)")
    p.add_argument("--synthetic-models", type=int_range(2, 4096), default=24,
                   help="models per held-out synthetic set (default 24)")
    p.add_argument("--synthetic-images", type=int_range(2, 10**4), default=40,
                   help="images per held-out synthetic model (default 40)")
    p.add_argument("--validation-models", type=int_range(2, 4096), default=24,
                   help="synthetic validation models the threshold is fixed on (default 24)")
    p.add_argument("--validation-images", type=int_range(2, 10**4), default=20,
                   help="images per validation model (default 20)")
    p.add_argument("--seed", type=seed, default=0, help="seed of every draw (default 0)")
    p.add_argument("--markdown", action="store_true",
                   help="print the tables as markdown (for docs/results.md)")
    add_out(p, "write report.json and the figures there")

    p = command(
        bsub, "design", run_design, device=True, json=True,
        help="design-choice heads on the zoo's recorded designs and unseen architectures",
        description="Per-field accuracy of design heads (fpx design fit) on the shipped zoo "
                    "and on synthetic architectures no head nor extractor saw, beside the "
                    "majority baseline, with the confusion of the upsampling field.")
    p.add_argument("--heads", type=Path, nargs="+", default=None, metavar="DIR",
                   help="heads folders (default: the shipped heads)")
    p.add_argument("--extractor", type=Path, default=None,
                   help="the extractor the extractor heads read (default: the shipped one)")
    p.add_argument("--sets", nargs="+", choices=("zoo", "architectures"),
                   default=["zoo", "architectures"], help="test sets (default both)")
    p.add_argument("--heldout", type=int_range(1, 4096), default=32,
                   help="unseen architectures per space (default 32)")
    p.add_argument("--images", type=int_range(1, 1000), default=12,
                   help="images per unseen architecture and size (default 12)")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")


def _name(folder: Path, taken: set[str]) -> str:
    name = folder.parent.name if folder.name == "extractor" else folder.name
    base, i = name or "extractor", 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def run_transfer(args) -> int:
    from core.bench import (
        Protocol,
        baseline_methods,
        extractor_method,
        folder_set,
        hybrid_method,
        run_transfer,
        synthetic_set,
        write_figures,
        zoo_set,
    )
    from core.extractor import DEFAULT_EXTRACTOR, load_extractor
    from core.extractor.metric import find_metric
    from core.runtime import resolve_device

    device = resolve_device(args.device)
    protocol = Protocol(pairs=args.pairs, shots=tuple(args.shots), episodes=args.episodes,
                        open_shots=args.open_shots, open_fraction=args.open_fraction,
                        far=args.far, seed=args.seed)
    extractors = args.extractor or [DEFAULT_EXTRACTOR]
    methods, taken = [], set()
    for folder in extractors:
        name = ("shipped" if Path(folder).resolve() == DEFAULT_EXTRACTOR
                else _name(folder, taken))
        taken.add(name)
        model = load_extractor(folder, device)
        policies = ["spectrum", "native"] if args.native else ["spectrum"]
        methods += [extractor_method(model, name, small) for small in policies]
        if args.hybrid:
            metric = find_metric(folder)
            methods += [hybrid_method(model, name, small) for small in policies]
            if metric is not None:
                methods += [hybrid_method(model, name, small, metric) for small in policies]
    reference = extractors[0]
    methods += baseline_methods(args.baselines, reference, args.seed, device)
    wanted = args.sets if args.sets is not None else ([] if args.folders else ["zoo"])
    sets = [folder_set(f, notify=skipped) for f in args.folders]
    for name in wanted:
        if name == "zoo":
            say("reading the shipped zoo")
            sets.insert(0, zoo_set(notify=skipped))
        else:
            sets.append(synthetic_set(reference, name, models=args.synthetic_models,
                                      images=args.synthetic_images, device=device,
                                      progress=say))
    if not sets:
        from core.errors import InvalidInputError

        raise InvalidInputError("no test set: name folders or --sets")
    validation = {}

    def validation_set(size: int):
        if size not in validation:
            validation[size] = synthetic_set(
                reference, "validation", models=args.validation_models,
                images=args.validation_images, size=size, device=device, progress=say)
        return validation[size]

    report = run_transfer(methods, sets, validation_set, protocol,
                          processings=args.processing, with_probe=not args.no_probe,
                          made_by={"command": args.command_line}, progress=say)
    if args.out is not None:
        from core.runtime import atomic_write

        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out / "report.json", json.dumps(report.to_dict(), indent=2))
        for path in write_figures(report, args.out):
            say(f"wrote {path}")
    return emit(args, report.to_dict(),
                lambda: print(report.markdown() if args.markdown else report.text()))


def run_design(args) -> int:
    from core.extractor import DEFAULT_EXTRACTOR
    from core.parsing import load_heads, table
    from core.parsing.bench import bench_design
    from core.parsing.evaluate import confusion_text
    from core.parsing.fit import DEFAULT_HEADS
    from core.runtime import resolve_device

    heads = {}
    for folder in args.heads or [DEFAULT_HEADS]:
        heads.update(load_heads(folder))
    results = bench_design(heads, args.extractor or DEFAULT_EXTRACTOR, sets=args.sets,
                           heldout=args.heldout, images=args.images,
                           device=resolve_device(args.device), progress=say)

    def show() -> None:
        print(table(results, markdown=args.markdown))
        for r in results:
            for f in r.fields:
                if f.field == "upsampling":
                    print(f"\nupsampling confusion, {r.heads} on {r.set_name} "
                          "(true -> predicted (generators)):")
                    print(confusion_text(f))
    return emit(args, {"results": [r.to_dict() for r in results]}, show)
