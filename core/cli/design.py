"""``fpx design fit | predict``: design-choice heads (model parsing), thin parsing and
printing over :mod:`core.parsing`. (``fpx bench design`` lives with the benchmarks.)"""

from __future__ import annotations

from pathlib import Path

from core.cli.options import (
    add_out,
    add_skip_unusable,
    command,
    emit,
    int_range,
    read_named_folder,
    say,
)


def register(sub) -> None:
    from core.parsing.features import FEATURES
    from core.parsing.fit import SPACES

    design = sub.add_parser("design", help="design-choice heads: name a generator's "
                                           "upsampling, period, norm and activation",
                            description="Heads fitted on synthetic models that predict, "
                                        "for a set of images of an unknown generator, its "
                                        "likely design choices with probabilities.")
    dsub = design.add_subparsers(dest="design_command", metavar="ACTION",
                                 parser_class=type(design))
    dsub.required = True
    p = command(dsub, "fit", run_fit, device=True, json=True,
                help="fit heads on synthetic models (extractor features and the spectrum "
                     "baseline's)",
                description="Fit one heads file per feature kind on the same synthetic "
                            "images (OUT/extractor, OUT/spectrum) and check them on unseen "
                            "synthetic architectures.")
    add_out(p, "folder for the heads (one sub-folder per feature kind)", required=True)
    p.add_argument("--extractor", type=Path, default=None,
                   help="exported extractor whose embeddings the heads read (default: "
                        "the shipped one)")
    p.add_argument("--features", nargs="+", choices=FEATURES, default=list(FEATURES),
                   help="feature kinds, one heads file each (default: both)")
    p.add_argument("--spaces", nargs="+", choices=SPACES, default=list(SPACES),
                   help="synthetic spaces to draw models from (default: both)")
    p.add_argument("--bank", nargs="+", type=Path, default=[], metavar="DIR",
                   help="saved banks (a training run's bank/ folder) to read instead of "
                        "fitting new models")
    p.add_argument("--architectures", type=int_range(2, 4096), default=96,
                   help="architectures per space (default 96)")
    p.add_argument("--images", type=int_range(1, 1000), default=12,
                   help="images per model and size (default 12)")
    p.add_argument("--sizes", nargs="+", type=int_range(16, 256), default=[32, 64],
                   help="image sizes in pixels (default 32 64)")
    p.add_argument("--heldout", type=int_range(0, 4096), default=32,
                   help="unseen architectures per space to check on (default 32; 0: none)")

    p = command(dsub, "predict", run_predict, device=True, json=True,
                help="predict the design of the generator(s) behind folders of images",
                description="Each FOLDER holding images is one generator; a FOLDER holding "
                            "only sub-folders of images is one generator per sub-folder.")
    p.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    p.add_argument("--heads", type=Path, default=None,
                   help="heads folder (fpx design fit's --out, or one kind's sub-folder; "
                        "default: the shipped heads)")
    p.add_argument("--extractor", type=Path, default=None,
                   help="the extractor the heads were fitted on (default: the shipped one)")
    p.add_argument("--top", type=int_range(1, 64), default=3,
                   help="values shown per field (default 3)")
    add_skip_unusable(p)


def _extractor(path: Path | None) -> Path:
    from core.extractor import DEFAULT_EXTRACTOR

    return path or DEFAULT_EXTRACTOR


def run_fit(args) -> int:
    from core.parsing import fit_design_heads, table
    from core.runtime import resolve_device

    heads, scores = fit_design_heads(
        _extractor(args.extractor), args.out, kinds=args.features, spaces=args.spaces,
        architectures=args.architectures, images=args.images, sizes=args.sizes,
        heldout=args.heldout, banks=args.bank, device=resolve_device(args.device),
        command=args.command_line, progress=say)
    say(f"wrote {', '.join(str(args.out / k) for k in heads)}")
    return emit(args, {"heads": {k: str(args.out / k) for k in heads},
                       "heldout": [s.to_dict() for s in scores]},
                lambda: print(table(scores) or "fitted (no held-out check)"))


def _generator_folders(folder: Path) -> list[Path]:
    from core.data.images import IMAGE_SUFFIXES

    if not folder.is_dir():
        from core.errors import InvalidInputError

        raise InvalidInputError(f"{folder}: not a folder")
    if any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir())


def run_predict(args) -> int:
    from core.data.folder import native_size
    from core.errors import InvalidInputError
    from core.parsing import check_extractor, load_heads
    from core.parsing.fit import DEFAULT_HEADS, readers
    from core.runtime import resolve_device

    heads = load_heads(args.heads or DEFAULT_HEADS)
    extractor = _extractor(args.extractor)
    for h in heads.values():
        if h.kind == "extractor":
            check_extractor(h, extractor)
    reads = readers(list(heads), extractor, resolve_device(args.device))
    out = {}
    for folder in args.folders:
        for g in _generator_folders(folder):
            size = native_size(g)
            if size is None:
                if not args.skip_unusable:
                    raise InvalidInputError(f"{g}: no readable image; pass --skip-unusable "
                                            "to go on without it")
                say(f"fpx: skipped {g}: no readable image")
                continue
            found = read_named_folder(g, min(size), args)
            if found is None:
                continue
            x, _ = found
            out[str(g)] = {"images": len(x), "size": int(x.shape[-1]),
                           **{kind: h.predict_set(reads[kind](x))
                              for kind, h in heads.items()}}
    if not out:
        raise InvalidInputError("no generator folder with usable images")

    def show() -> None:
        for g, r in out.items():
            print(f"{g} ({r['images']} images, {r['size']} px)")
            for kind in heads:
                for field, probs in r[kind].items():
                    top = ", ".join(f"{v} {p:.2f}" for v, p in list(probs.items())[:args.top])
                    print(f"  {kind:9s} {field:13s} {top}")
    return emit(args, out, show)
