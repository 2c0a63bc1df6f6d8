"""``fpx train | bank sample | embed | verify | identify | relate``: thin parsing and
printing over :mod:`core.extractor` and :mod:`core.synthetic`.

``torchrun ... -m core.extractor.train ARGS`` runs ``fpx train ARGS`` (same parser).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.options import (
    EXIT_INTERRUPTED,
    MAX_COUNT,
    add_out,
    add_skip_unusable,
    command,
    count,
    emit,
    int_range,
    positive_int,
    print_json,
    print_rows,
    say,
    seed,
    skipped,
    steps,
)
from core.errors import FpxError, InvalidInputError

FEATURE_MODES = ("auto", "embedding", "hybrid")  # --features of verify | identify | relate

if TYPE_CHECKING:
    from core.extractor.embeddings import EmbeddingSet


def register(sub) -> None:
    from core.extractor import train as training
    from core.synthetic import HELDOUT

    p = command(sub, "train", run_train, device=True,
                help="train the fingerprint extractor on a synthetic bank",
                description=training.__doc__.split("\n")[0])
    p.add_argument("--preset", choices=list(training.PRESETS), default="tiny")
    add_out(p, required=True)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in DIR from its checkpoint")
    p.add_argument("--steps", type=steps, help="override the preset's number of steps")
    p.add_argument("--batch", type=int_range(2, 4096), metavar="N",
                   help="override the preset's bank models per step (each brings the "
                        "preset's images per model)")
    p.add_argument("--seed", type=seed, help="override the preset's seed (initial "
                                             "weights and data order; the bank keeps its own)")
    p.add_argument("--sizes", type=int_range(16, 1024), nargs="+", metavar="PX",
                   help="output sizes to train on, one drawn per step (e.g. 32 64 128; "
                        "default: the preset's crop size)")
    p.add_argument("--augment", action="store_true", default=None,
                   help="random JPEG (q60-100), resize (x0.5-1.5), blur and noise on "
                        "every batch")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="end the whole run within M minutes: the total steps are set to "
                        "what fits once the warmup has shown the pace (at most the "
                        "preset's or --steps)")
    p.add_argument("--init", type=Path, metavar="EXTRACTOR",
                   help="start from an exported extractor's weights (its network must be "
                        "the preset's; the head, optimiser and schedule start afresh): "
                        "train on across sessions, e.g. from core/assets/extractor")

    p = command(sub, "bank", run_bank_sample, device=True,
                help="build a synthetic bank and sample images from it")
    p.add_argument("action", choices=["sample"])
    p.add_argument("--preset", choices=list(training.PRESETS), default="tiny",
                   help="the training preset whose bank to use")
    p.add_argument("--heldout", choices=HELDOUT, default="none",
                   help="seeds: the same architectures with unseen weights; architectures: "
                        "architectures the preset's bank does not hold")
    p.add_argument("--models", type=positive_int, help="keep the first N models")
    p.add_argument("--images", type=count, default=50, help="images per model")
    add_out(p, "model folders (NAME/00000.png ..., spec.json) and bank.json go here",
            required=True)

    # The embedding commands share --extractor, --device and --json.
    p = _embedding_command(sub, "embed", run_embed, "embed images with the extractor")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    add_out(p, required=True, metavar="FILE.npz")

    p = _embedding_command(sub, "verify", run_verify, "do two images come from the same model?")
    p.add_argument("folders", nargs="*", metavar="FOLDER")
    _add_embeddings(p)
    _add_hybrid(p)
    p.add_argument("--pairs", type=int_range(2, MAX_COUNT), default=10_000,
                   help="image pairs drawn (default 10000, at most 1000000)")
    p.add_argument("--seed", type=seed, default=0)

    p = _embedding_command(sub, "identify", run_identify,
                           "which known model made each query image?")
    p.add_argument("--gallery", type=Path, required=True, metavar="DIR")
    p.add_argument("--query", type=Path, required=True, metavar="DIR",
                   help="query images (the gallery's folder: the images after the first "
                        "--shots of each model)")
    p.add_argument("--shots", type=count, default=10)
    p.add_argument("--seed", type=seed, default=0)
    _add_hybrid(p)

    p = command(sub, "metric", run_metric, device=True, json=True,
                help="learn the hybrid fingerprint's metric on synthetic models",
                description="Learn a within-class whitening of the hybrid fingerprint (an "
                            "extractor's embedding beside its input spectrum) on synthetic "
                            "models of the extractor's bank with weight seeds of their own "
                            "(its shrinkage chosen for verification AUC on the models of "
                            "designs the whitening did not see), and store it beside "
                            "the extractor: fpx verify | identify | relate (by default) "
                            "and fpx bench transfer --hybrid use it.")
    p.add_argument("action", choices=["fit"])
    p.add_argument("--extractor", type=Path, metavar="DIR", required=True,
                   help="an exported extractor (the shipped one, core/assets/extractor, "
                        "ships with its metric)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where to write hybrid_metric.{json,safetensors} (default: the "
                        "extractor's folder, where verify | identify | relate read it)")
    p.add_argument("--models", type=int_range(2, 4096), default=48,
                   help="synthetic models (default 48)")
    p.add_argument("--images", type=int_range(2, 10**4), default=20,
                   help="images per model and size (default 20)")
    p.add_argument("--sizes", type=int_range(16, 1024), nargs="+", default=[32, 64],
                   metavar="PX", help="image sizes, each model at each (default 32 64)")

    p = _embedding_command(sub, "relate", run_relate, "which models are alike?")
    p.add_argument("folders", nargs="*", metavar="FOLDER")
    _add_embeddings(p)
    _add_hybrid(p)
    add_out(p, "write dendrogram.png here")


def _embedding_command(sub, name: str, run, help: str):
    p = command(sub, name, run, device=True, json=True, help=help)
    p.add_argument("--extractor", type=Path, metavar="DIR",
                   help="an exported extractor (default: the one shipped with fpx)")
    add_skip_unusable(p)
    return p


def _add_embeddings(p) -> None:
    p.add_argument("--embeddings", type=Path, metavar="FILE.npz",
                   help="use embeddings from fpx embed instead of folders")


def _add_hybrid(p) -> None:
    p.add_argument("--features", dest="feature_mode", choices=FEATURE_MODES, default="auto",
                   help="what to compare: the embedding; the hybrid fingerprint (each "
                        "embedding beside the image's blur-residual log spectrum, read from "
                        "the image files, also with --embeddings; through the synthetic "
                        "metric in the --extractor folder when it has one, fpx metric fit); "
                        "or auto (the default): the hybrid when that extractor has a metric "
                        "fitted on the extractor that made the embeddings and every image "
                        "file is at hand, else the embedding (the output says which, and why)")
    p.add_argument("--hybrid", dest="feature_mode", action="store_const", const="hybrid",
                   help="the same as --features hybrid")


def _no_hybrid(data: EmbeddingSet, metric) -> str:
    """Why ``--features auto`` keeps the embedding for ``data`` (``""``: it need not)."""
    if metric is None:
        return "the extractor has no synthetic metric; fpx metric fit makes one"
    if not data.extractor:
        return ("the embeddings file records no extractor (written before fpx embed "
                "recorded it; embed again for the hybrid)")
    if data.extractor != metric.made_by.get("extractor"):
        return (f"embedded by extractor {data.extractor}, not the one its synthetic metric "
                "was fitted on; pass the --extractor that made them")
    gone = next((p for p in data.paths if not Path(p).is_file()), None)
    return f"{gone} is gone; the hybrid reads each image's spectrum" if gone else ""


def _features(data: EmbeddingSet, args) -> EmbeddingSet:
    """``data``, or its hybrid features through the extractor's synthetic metric when it has
    one, as ``--features`` says (``args.features`` then says which, and ``auto`` is
    resolved once, so a gallery and its queries are compared alike)."""
    mode = getattr(args, "feature_mode", None)
    if mode is None:  # a command without --features (fpx embed)
        return data
    if mode == "embedding":
        args.features = getattr(args, "features", None) or "embedding (--features embedding)"
        return data
    from core.extractor import DEFAULT_EXTRACTOR
    from core.extractor.hybrid import hybrid_set
    from core.extractor.metric import find_metric

    folder = args.extractor or DEFAULT_EXTRACTOR
    if mode == "auto":
        try:
            metric, why = find_metric(folder), ""
        except InvalidInputError as err:  # damaged, or fitted on other weights
            metric, why = None, f"its synthetic metric cannot be used: {err}"
        why = why or _no_hybrid(data, metric)
        args.feature_mode = "embedding" if why else "hybrid"
        if why:
            args.features = f"embedding ({why})"
            return data
    else:
        metric = find_metric(folder)
    if metric is not None and data.extractor not in ("", metric.made_by.get("extractor")):
        raise InvalidInputError(
            f"the embeddings were made by extractor {data.extractor}, but the synthetic "
            f"metric in {folder} was fitted on {metric.made_by.get('extractor')}; pass the "
            "--extractor that made them")
    args.features = "hybrid (embedding + input spectrum)" + (
        f", {metric.describe()}" if metric is not None else "")
    return hybrid_set(data, metric)


def _embed(model, folders, args) -> EmbeddingSet:
    """Embeddings of the images under ``folders``, recording the extractor's identity."""
    from dataclasses import replace

    from core.extractor import DEFAULT_EXTRACTOR
    from core.extractor.embeddings import embed_folders
    from core.parsing.data import extractor_identity

    found = embed_folders(model, folders, notify=skipped, skip_unusable=args.skip_unusable)
    return replace(found, extractor=extractor_identity(args.extractor or DEFAULT_EXTRACTOR))


def _with_features(result: dict, args) -> dict:
    if getattr(args, "features", None):
        result["features"] = args.features
    return result


def _extractor(path: Path | None, device: str):
    from core.extractor import DEFAULT_EXTRACTOR, load_extractor
    from core.runtime import resolve_device

    folder = path or DEFAULT_EXTRACTOR
    if path is None and not (folder / "extractor.json").exists():
        raise FpxError("no default extractor is installed; pass --extractor DIR (made by "
                       "fpx train)")
    return load_extractor(folder, resolve_device(device))


def _embedded(args) -> EmbeddingSet:
    from core.extractor.embeddings import EmbeddingSet

    if getattr(args, "embeddings", None):
        return _features(EmbeddingSet.load(args.embeddings), args)
    if not args.folders:
        raise InvalidInputError("give image folders or --embeddings FILE.npz")
    return _features(_embed(_extractor(args.extractor, args.device), args.folders, args),
                     args)


def run_train(args) -> int:
    from core.extractor.train import train

    record = train(args.preset, args.out, resume=args.resume, device=args.device,
                   steps=args.steps, sizes=args.sizes, augment=args.augment,
                   batch=args.batch, seed=args.seed, minutes=args.minutes,
                   init=args.init)
    if record:
        print_json(record)
    return EXIT_INTERRUPTED if record.get("interrupted") else 0


def run_bank_sample(args) -> int:
    from core.extractor.train import PRESETS
    from core.runtime import resolve_device
    from core.synthetic import fit_bank, heldout_config, write_bank_samples

    config = heldout_config(PRESETS[args.preset].bank, args.heldout,
                            name=f"preset {args.preset}'s bank")
    device = resolve_device(args.device)
    total = len(config.specs())
    n = min(args.models or total, total)
    # Only the models sampled are fitted (the bank's first n, the same as in the whole
    # bank); each stage shows a bar, fitting a model takes seconds on a CPU.
    with _bar(n, "fitting models", "model") as bar:
        bank = fit_bank(config, device, models=n, progress=bar.update)
    with _bar(n, "writing samples", "model") as bar:
        folders = write_bank_samples(bank, args.out, images=args.images, device=device,
                                     made_by={"preset": args.preset,
                                              "heldout": args.heldout,
                                              "command": args.command_line},
                                     progress=bar.update)
    say(f"fpx: wrote {len(folders)} models x {args.images} images to {args.out}")
    return 0


def _bar(total: int, desc: str, unit: str):
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def run_embed(args) -> int:
    result = _embedded(args)
    result.save(args.out)
    summary = {"images": len(result.paths), "dimensions": result.dim,
               "models": len(result.models), "out": str(args.out),
               "skipped": result.skipped_records()}
    return emit(args, summary,
                lambda: print_rows({k: v for k, v in summary.items() if k != "skipped"}))


def run_verify(args) -> int:
    from core.extractor.evaluate import verify

    data = _embedded(args)
    result = verify(data.embeddings, data.labels, pairs=args.pairs, seed=args.seed)
    result["images"] = len(data.labels)
    result["models"] = len(data.models)
    return emit(args, _with_features(result, args))


def run_identify(args) -> int:
    from core.extractor.evaluate import identify, split_gallery

    model = _extractor(args.extractor, args.device)
    gallery = _features(_embed(model, [args.gallery], args), args)
    if args.query.resolve() == args.gallery.resolve():
        g_e, g_l, q_e, q_l = split_gallery(gallery.embeddings, gallery.labels, args.shots)
    else:
        query = _features(_embed(model, [args.query], args), args)
        g_e, g_l, q_e, q_l = gallery.embeddings, gallery.labels, query.embeddings, query.labels
    result = _with_features(identify(g_e, g_l, q_e, q_l, shots=args.shots,
                                     seed=args.seed), args)
    return emit(args, result,
                lambda: print_rows({k: v for k, v in result.items() if k != "unknown_models"}))


def run_relate(args) -> int:
    from core.extractor.evaluate import read_specs, relate
    from core.figures import dendrogram_png

    specs = read_specs(args.folders)  # a bad spec file is refused before any embedding
    data = _embedded(args)
    result = _with_features(relate(data.embeddings, data.labels, specs), args)
    if args.out is not None:
        space = "hybrid" if getattr(args, "feature_mode", None) == "hybrid" else "embedding"
        result["dendrogram"] = str(dendrogram_png(result, args.out / "dendrogram.png",
                                                  features=space))
    return emit(args, result, lambda: _similarity_table(result))


def run_metric(args) -> int:
    from core.extractor.metric import fit_metric
    from core.runtime import resolve_device

    folder = args.extractor
    metric = fit_metric(folder, models=args.models, images=args.images,
                        sizes=tuple(args.sizes), device=resolve_device(args.device),
                        progress=say, command=args.command_line)
    out = metric.save(args.out or folder)
    summary = {"out": str(out), "dims": metric.whitening.dims,
               "shrinkage": metric.whitening.shrinkage,
               "criterion": metric.whitening.criterion,
               "cross_validation": metric.whitening.to_dict()["cross_validation"],
               "extractor": metric.made_by["extractor"]}
    return emit(args, summary)


def _similarity_table(result: dict) -> None:
    if "features" in result:
        print(f"features: {result['features']}\n")
    names = result["models"]
    width = max(len(n) for n in names)
    print(" " * width + "  " + " ".join(f"{i:>5d}" for i in range(len(names))))
    for i, (name, row) in enumerate(zip(names, result["similarity"])):
        print(f"{name:<{width}}  " + " ".join(f"{v:5.2f}" for v in row) + f"  [{i}]")
    if "spearman_embedding_vs_spec_distance" in result:
        print(f"\nSpearman rho (feature distance vs spec distance): "
              f"{result['spearman_embedding_vs_spec_distance']:.3f}")
    if "dendrogram" in result:
        print(f"wrote {result['dendrogram']}")
