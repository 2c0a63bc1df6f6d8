"""``fpx train | bank | embed | verify | identify | relate``: thin parsing over
:mod:`core.extractor` and :mod:`core.synthetic`. Registered by :mod:`core.cli`."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from core.errors import FpxError, InvalidInputError

HELDOUT = ("none", "seeds", "architectures")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _extractor(path: Path | None, device: str):
    from core.extractor import DEFAULT_EXTRACTOR, load_extractor
    from core.runtime import resolve_device

    folder = path or DEFAULT_EXTRACTOR
    if path is None and not (folder / "extractor.json").exists():
        raise FpxError("no default extractor is installed; pass --extractor DIR (made by "
                       "fpx train)")
    return load_extractor(folder, resolve_device(device))


def _table(rows: dict) -> None:
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")


def _add_common(p, extractor: bool = True) -> None:
    if extractor:
        p.add_argument("--extractor", type=Path, metavar="DIR",
                       help="an exported extractor (default: the one shipped with fpx)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(sub, positive_int) -> None:
    from core.extractor import train as training

    p = sub.add_parser("train", help="train the fingerprint extractor on a synthetic bank",
                       description=training.__doc__.split("\n")[0])
    training.add_arguments(p)
    p.set_defaults(run=training.run_from_args)

    p = sub.add_parser("bank", help="build a synthetic bank and sample images from it")
    p.add_argument("action", choices=["sample"])
    p.add_argument("--preset", choices=list(training.PRESETS), default="tiny",
                   help="the training preset whose bank to use")
    p.add_argument("--heldout", choices=HELDOUT, default="none",
                   help="seeds: the same architectures with unseen weights; architectures: "
                        "architectures the preset's bank does not hold")
    p.add_argument("--models", type=positive_int, help="keep the first N models")
    p.add_argument("--images", type=positive_int, default=50, help="images per model")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=_run_bank_sample)

    p = sub.add_parser("embed", help="embed images with the extractor")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz")
    _add_common(p)
    p.set_defaults(run=_run_embed)

    p = sub.add_parser("verify", help="do two images come from the same model?")
    p.add_argument("folders", nargs="*", metavar="FOLDER")
    p.add_argument("--embeddings", type=Path, metavar="FILE.npz",
                   help="use embeddings from fpx embed instead of folders")
    p.add_argument("--pairs", type=positive_int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)
    p.set_defaults(run=_run_verify)

    p = sub.add_parser("identify", help="which known model made each query image?")
    p.add_argument("--gallery", type=Path, required=True, metavar="DIR")
    p.add_argument("--query", type=Path, required=True, metavar="DIR")
    p.add_argument("--shots", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)
    p.set_defaults(run=_run_identify)

    p = sub.add_parser("relate", help="which models are alike?")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p.add_argument("--out", type=Path, metavar="DIR", help="write dendrogram.png here")
    _add_common(p)
    p.set_defaults(run=_run_relate)


def heldout_config(preset: str, heldout: str):
    """The bank config for ``fpx bank sample``: the preset's, or a held-out variant."""
    from core.extractor.train import PRESETS

    base = PRESETS[preset].bank
    if heldout == "seeds":
        return dataclasses.replace(base, weight_seed=base.seed + 10_000)
    if heldout == "architectures":
        if base.architectures == 0:
            raise InvalidInputError(f"preset {preset}'s bank holds every architecture")
        return dataclasses.replace(base, skip_architectures=base.skip_architectures
                                   + base.architectures)
    return base


def _run_bank_sample(args) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from core.data import bundled_crops, from_signed
    from core.runtime import atomic_write, code_version, resolve_device
    from core.synthetic import SyntheticBank

    config = heldout_config(args.preset, args.heldout)
    device = resolve_device(args.device)
    fit_crops = bundled_crops(config.crop_size, 256, seed=config.seed, split="train")
    bank = SyntheticBank.build(config, fit_crops.to(device))
    ids = list(range(len(bank)))[:args.models or len(bank)]
    # Held-out photos feed the samples: no image seen while fitting or training.
    real = bundled_crops(config.crop_size, args.images * 4, seed=1, split="test").to(device)
    g = torch.Generator().manual_seed(7)
    for i in ids:
        spec = bank.specs[i]
        b = spec.up[0]
        name = f"m{i:03d}-{len(spec.up)}x{b.upsampling}-{b.norm}-{b.activation}-{b.order}"
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        pick = torch.randperm(len(real), generator=g)[:args.images].to(device)
        y = bank.generate([i], real[pick][None])[0]
        pixels = (from_signed(y).permute(0, 2, 3, 1).cpu().numpy() * 255).round()
        for j, img in enumerate(pixels.astype(np.uint8)):
            Image.fromarray(img).save(folder / f"{j:04d}.png")
        atomic_write(folder / "spec.json", spec.to_json())
    atomic_write(args.out / "bank.json", json.dumps({
        "preset": args.preset, "heldout": args.heldout, "config": dataclasses.asdict(config),
        "models": len(ids), "images_per_model": args.images, "code_version": code_version(),
    }, indent=2))
    _say(f"fpx: wrote {len(ids)} models x {args.images} images to {args.out}")
    return 0


def _embedded(args) -> dict:
    from core.extractor.evaluate import embed_folders, load_embeddings

    if getattr(args, "embeddings", None):
        return load_embeddings(args.embeddings)
    if not args.folders:
        raise InvalidInputError("give image folders or --embeddings FILE.npz")
    model = _extractor(args.extractor, args.device)
    return embed_folders(model, args.folders,
                         notify=lambda path, reason: _say(f"fpx: skipped {path}: {reason}"))


def _run_embed(args) -> int:
    from core.extractor.evaluate import save_embeddings

    result = _embedded(args)
    save_embeddings(result, args.out)
    summary = {"images": len(result["paths"]), "dimensions": int(result["embeddings"].shape[1]),
               "models": len(set(result["labels"])), "out": str(args.out),
               "skipped": result["skipped"]}
    print(json.dumps(summary)) if args.json else _table({k: v for k, v in summary.items()
                                                         if k != "skipped"})
    return 0


def _run_verify(args) -> int:
    from core.extractor.evaluate import verify

    data = _embedded(args)
    result = verify(data["embeddings"], data["labels"], pairs=args.pairs, seed=args.seed)
    result["images"] = len(data["labels"])
    result["models"] = len(set(data["labels"]))
    print(json.dumps(result)) if args.json else _table(result)
    return 0


def _run_identify(args) -> int:
    from core.extractor.evaluate import embed_folders, identify

    model = _extractor(args.extractor, args.device)
    notify = lambda path, reason: _say(f"fpx: skipped {path}: {reason}")  # noqa: E731
    gallery = embed_folders(model, [args.gallery], notify=notify)
    if args.query.resolve() == args.gallery.resolve():
        # One folder for both: per model, the first `shots` images form the gallery and
        # the rest are the queries.
        labels = gallery["labels"]
        seen: dict[str, int] = {}
        in_gallery = []
        for lab in labels:
            seen[lab] = seen.get(lab, 0) + 1
            in_gallery.append(seen[lab] <= args.shots)
        import numpy as np

        mask = np.asarray(in_gallery)
        emb = gallery["embeddings"]
        g_e, g_l = emb[mask], [lab for lab, m in zip(labels, mask) if m]
        q_e, q_l = emb[~mask], [lab for lab, m in zip(labels, mask) if not m]
    else:
        query = embed_folders(model, [args.query], notify=notify)
        g_e, g_l, q_e, q_l = (gallery["embeddings"], gallery["labels"],
                              query["embeddings"], query["labels"])
    result = identify(g_e, g_l, q_e, q_l, shots=args.shots, seed=args.seed)
    print(json.dumps(result)) if args.json else _table(
        {k: v for k, v in result.items() if k != "unknown_models"})
    return 0


def _run_relate(args) -> int:
    from core.extractor.evaluate import dendrogram_png, read_specs, relate

    data = _embedded(args)
    result = relate(data["embeddings"], data["labels"], read_specs(args.folders))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        result["dendrogram"] = str(dendrogram_png(result, args.out / "dendrogram.png"))
    if args.json:
        print(json.dumps(result))
    else:
        names = result["models"]
        width = max(len(n) for n in names)
        print(" " * width + "  " + " ".join(f"{i:>5d}" for i in range(len(names))))
        for i, (name, row) in enumerate(zip(names, result["similarity"])):
            print(f"{name:<{width}}  " + " ".join(f"{v:5.2f}" for v in row) + f"  [{i}]")
        if "spearman_embedding_vs_spec_distance" in result:
            print(f"\nSpearman rho (embedding distance vs spec distance): "
                  f"{result['spearman_embedding_vs_spec_distance']:.3f}")
        if "dendrogram" in result:
            print(f"wrote {result['dendrogram']}")
    return 0
