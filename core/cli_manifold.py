"""``fpx artifacts | attribute | structure``: manifold fingerprints (ManiFPT) from the
command line; thin parsing over :mod:`core.manifold`. Registered by :mod:`core.cli`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.errors import InvalidInputError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def register(sub, positive_int) -> None:
    from core.manifold.embeddings import SPACES

    p = sub.add_parser("artifacts", help="artifacts: samples minus their nearest real image",
                       description="Compute artifacts (generated sample minus its nearest "
                                   "real sample) of each folder of samples, in one space.")
    p.add_argument("--real", type=Path, required=True, metavar="DIR",
                   help="real images (the reference manifold)")
    p.add_argument("--generated", type=Path, nargs="+", required=True, metavar="DIR",
                   help="one folder per model (a folder of model folders is expanded)")
    p.add_argument("--space", choices=SPACES, default="rgb")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--size", type=int, metavar="S",
                   help="centre-crop every image to SxS (default: the samples' own size, "
                        "which the real images must share)")
    p.add_argument("--k", type=positive_int, default=1, help="neighbours kept (default 1)")
    p.add_argument("--holdout-real", type=int, default=200, metavar="N",
                   help="real images held out as the 'real' class (default 200; 0: none)")
    p.add_argument("--backend", choices=["auto", "torch", "faiss"], default="auto")
    p.add_argument("--extractor", type=Path, metavar="DIR",
                   help="extractor for the learned space (default: the shipped one)")
    p.add_argument("--learned", choices=["extractor", "ssl"], default="extractor",
                   help="learned space: the extractor, or a self-supervised encoder trained "
                        "on the real images (used anyway when no extractor is installed)")
    p.add_argument("--ssl-steps", type=positive_int, default=300,
                   help="training steps of the self-supervised encoder (default 300)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_artifacts)

    p = sub.add_parser("attribute", help="attribution on artifacts against raw images",
                       description="Train a small classifier on artifacts and the same "
                                   "classifier on raw images; accuracy over seeds.")
    p.add_argument("sets", type=Path, nargs="+", metavar="DIR",
                   help="outputs of fpx artifacts (one per space)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--out", type=Path, metavar="DIR", help="confusion matrices (PNG) go here")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_attribute)

    p = sub.add_parser("structure", help="do fingerprints cluster by design choice?",
                       description="Cluster model fingerprints; NMI against each recorded "
                                   "design choice; leave-one-model-out upsampling.")
    p.add_argument("sets", type=Path, nargs="+", metavar="DIR",
                   help="outputs of fpx artifacts (one per space)")
    p.add_argument("--out", type=Path, metavar="DIR", help="t-SNE plots (PNG) go here")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_structure)


def _seed(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**32), got {value}")
    return value


def _native_size(folder: Path) -> tuple[int, int] | None:
    """The most common ``(width, height)`` of the images under ``folder`` (headers only)."""
    from collections import Counter

    from PIL import Image

    from core.data import scan_images

    sizes = Counter()
    for path in scan_images([folder]):
        try:
            with Image.open(path) as im:
                sizes[im.size] += 1
        except Exception:  # unreadable: skipped by name when the pixels are read
            continue
    return sizes.most_common(1)[0][0] if sizes else None


def _crop_size(args, folders: list[Path]) -> int:
    """``--size``, or the samples' common size, which the real images must share."""
    if args.size is not None:
        if args.size < 8:
            raise InvalidInputError(f"--size must be at least 8, got {args.size}")
        return args.size
    sizes = {f.name: _native_size(f) for f in folders}
    shown = ", ".join(f"{n} {s[0]}x{s[1]}" for n, s in sizes.items() if s)
    found = {s for s in sizes.values() if s}
    if not found:
        raise InvalidInputError("no readable image in the generated folders")
    if len(found) > 1:
        raise InvalidInputError(f"the generated sets differ in image size ({shown}); pass "
                                "--size S to centre-crop all of them to SxS")
    (w, h), = found
    real = _native_size(args.real)
    if real is not None and real != (w, h):
        raise InvalidInputError(f"real images are {real[0]}x{real[1]} but the samples are "
                                f"{w}x{h}; pass --size S to centre-crop both to SxS")
    return min(w, h)


def _model_folders(paths: list[Path]) -> list[Path]:
    """Each path is a model's folder, or a folder of model folders (no images on top)."""
    from core.data import IMAGE_SUFFIXES

    folders = []
    for path in paths:
        if not path.is_dir():
            raise InvalidInputError(f"{path}: not a folder")
        top_images = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        subs = sorted(p for p in path.iterdir() if p.is_dir())
        folders += [path] if top_images or not subs else subs
    names = [f.name for f in folders]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"two model folders share a name: {sorted(names)}")
    return folders


def _design(folder: Path) -> dict | None:
    """The design choices recorded by ``fpx zoo sample`` (``samples.json``), if any."""
    try:
        entry = json.loads((folder / "samples.json").read_text())["entry"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    from core.zoo import ZooEntry

    try:
        return ZooEntry.from_dict(entry).design()
    except Exception:  # a foreign samples.json: no design, not an error
        return None


def _run_artifacts(args) -> int:
    from core.extractor import load_extractor
    from core.manifold.artifacts import artifact_grid, compute_artifacts, read_images
    from core.manifold.ssl import SSLConfig
    from core.runtime import atomic_write, code_version, resolve_device

    device = resolve_device(args.device)
    notify = lambda path, why: _say(f"fpx: skipped {path}: {why}")  # noqa: E731
    if not args.real.is_dir():
        raise InvalidInputError(f"{args.real}: not a folder")
    folders = _model_folders(args.generated)
    size = _crop_size(args, folders)
    real, real_paths = read_images(args.real, size, notify=notify)
    generated, paths, designs = {}, {}, {}
    for folder in folders:
        generated[folder.name], paths[folder.name] = read_images(folder, size, notify=notify)
        design = _design(folder)
        if design is not None:
            designs[folder.name] = design
    extractor = load_extractor(args.extractor, device) if args.extractor else None
    result = compute_artifacts(generated, real, args.space, k=args.k,
                               holdout_real=args.holdout_real, seed=args.seed,
                               backend=args.backend, extractor=extractor,
                               learned=args.learned,
                               ssl_config=SSLConfig(steps=args.ssl_steps, seed=args.seed),
                               generated_paths=paths, real_paths=real_paths, device=device)
    result.meta.update({"designs": designs, "command": args.command_line,
                        "code_version": code_version(), "real": str(args.real)})
    result.save(args.out / "artifacts.npz")
    atomic_write(args.out / "artifact_grid.png", artifact_grid(result))
    rows = {}
    for name in result.models:
        mask = result.of(name)
        rows[name] = {"samples": int(mask.sum()),
                      "nn_distance": float(result.distances[mask, 0].mean()),
                      "artifact_abs": float(abs(result.artifacts[mask]).mean()),
                      "unique_neighbors": int(len(set(result.neighbors[mask, 0].tolist())))}
    summary = {"space": args.space, "real": len(real), "models": rows,
               "out": str(args.out)}
    atomic_write(args.out / "summary.json", json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"space {args.space}: {len(real)} real images "
          f"({args.holdout_real} held out as 'real'); artifacts -> {args.out}")
    print(f"{'model':<26} {'samples':>7} {'NN dist':>9} {'|artifact|':>10} {'distinct NN':>11}")
    for name, r in rows.items():
        print(f"{name:<26} {r['samples']:>7} {r['nn_distance']:>9.3f} "
              f"{r['artifact_abs']:>10.4f} {r['unique_neighbors']:>11}")
    return 0


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InvalidInputError(f"--seeds must be comma-separated integers, got {text!r}") \
            from None
    if not seeds:
        raise InvalidInputError("--seeds is empty")
    return seeds


def _load_sets(folders: list[Path]) -> list[tuple[str, object]]:
    """Artifact sets with a display name each: the space, or ``space:folder`` where two
    sets share a space (the learned space of the extractor and of the encoder, say)."""
    from collections import Counter

    from core.manifold.artifacts import ArtifactSet

    sets = [ArtifactSet.load(folder) for folder in folders]
    count = Counter(s.space for s in sets)
    return [(s.space if count[s.space] == 1 else f"{s.space}:{Path(folder).name}", s)
            for folder, s in zip(folders, sets)]


def _run_attribute(args) -> int:
    import numpy as np
    import torch

    from core.figures import confusion_png
    from core.manifold.attribution import AttributionConfig, attribute, fisher_ratio
    from core.runtime import resolve_device

    config = AttributionConfig(epochs=args.epochs, seeds=_seeds(args.seeds),
                               device=str(resolve_device(args.device)))
    report, raw_done = {}, []  # raw images are the same whatever the space: train once
    for label, s in _load_sets(args.sets):
        names = s.models
        labels = torch.tensor([names.index(v) for v in s.labels.tolist()])
        inputs = {(label, "artifacts"): _as_inputs(s)}
        if not any(np.array_equal(s.images, images) and np.array_equal(s.labels, lab)
                   for images, lab in raw_done):
            raw_done.append((s.images, s.labels))
            key = "raw" if len(raw_done) == 1 else f"raw:{label}"
            inputs[(key, "raw images")] = s.image_tensor()
        for (name, kind), x in inputs.items():
            _say(f"fpx attribute: {name} / {kind}: {len(x)} samples, {len(names)} classes")
            result = attribute(x, labels, names, config)
            row = {**result.to_dict(), "fisher_ratio": fisher_ratio(x, labels)}
            report[f"{name}/{kind}"] = row
            if args.out is not None:
                tag = name.replace(":", "_")
                confusion_png(result.confusion, names,
                              args.out / f"confusion_{tag}_{kind.split()[0]}.png",
                              title=f"{name}, {kind}: accuracy {result.accuracy_mean:.3f}")
    if args.json:
        print(json.dumps({"seeds": list(config.seeds), "epochs": config.epochs,
                          "results": report}))
        return 0
    print(f"{'space / input':<24} {'accuracy':>16} {'macro-F1':>9} {'Fisher':>8}")
    for key, r in report.items():
        print(f"{key:<24} {r['accuracy_mean']:>8.3f} ± {r['accuracy_std']:.3f} "
              f"{r['macro_f1_mean']:>9.3f} {r['fisher_ratio']:>8.3f}")
    return 0


def _as_inputs(s):
    """Artifacts as the classifier's input: images for rgb / freq, vectors otherwise."""
    import torch

    from core.manifold.embeddings import image_shaped

    x = torch.from_numpy(s.artifacts)
    if image_shaped(s.space):
        x = x.reshape(len(x), *s.images.shape[1:])
    return x


def _run_structure(args) -> int:
    from core.manifold.artifacts import REAL
    from core.manifold.structure import structure_report, tsne_png

    report = {}
    for label, s in _load_sets(args.sets):
        designs = s.meta.get("designs", {})
        models = [m for m in s.models if m != REAL]
        missing = [m for m in models if m not in designs]
        if missing:
            raise InvalidInputError(f"{label} set: no recorded design for {', '.join(missing)} "
                                    "(folders made by fpx zoo sample carry one)")
        artifacts = {m: s.artifacts[s.of(m)] for m in models}
        report[label] = structure_report(artifacts, {m: designs[m] for m in models},
                                         seed=args.seed)
        if args.out is not None:
            mask = s.labels != REAL
            tsne_png(s.artifacts[mask], s.labels[mask].tolist(),
                     args.out / f"tsne_{label.replace(':', '_')}.png",
                     title=f"Artifacts in the {label} space (t-SNE)")
    if args.json:
        print(json.dumps(report))
        return 0
    for space, r in report.items():
        print(f"space {space}: {len(r['models'])} models, fingerprint = {r['fingerprint']}")
        print(f"  {'factor':<14} {'values':>6} {'NMI k-means':>12} {'NMI agglo':>10} "
              f"{'AMI k-means':>12} {'AMI agglo':>10}")
        for factor, t in r["nmi"].items():
            if t["n_values"] < 2:
                print(f"  {factor:<14} {t['n_values']:>6}   (one value: nothing to cluster)")
                continue
            print(f"  {factor:<14} {t['n_values']:>6} {t['nmi']['kmeans']:>12.3f} "
                  f"{t['nmi']['agglomerative']:>10.3f} {t['ami']['kmeans']:>12.3f} "
                  f"{t['ami']['agglomerative']:>10.3f}")
        loo = r["leave_one_out"]
        acc = "n/a" if loo["accuracy"] is None else f"{loo['accuracy']:.3f}"
        chance = "n/a" if loo["chance"] is None else f"{loo['chance']:.3f}"
        print(f"  leave-one-model-out {loo['factor']}: accuracy {acc} over "
              f"{loo['n_predicted']} models (chance {chance}; skipped: "
              f"{', '.join(loo['skipped']) or 'none'})")
    return 0
