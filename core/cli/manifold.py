"""``fpx artifacts | attribute | structure``: manifold fingerprints (ManiFPT) from the
command line; thin parsing and printing over :mod:`core.manifold`."""

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
    seed,
    seed_list,
    skipped,
)
from core.errors import InvalidInputError


def register(sub) -> None:
    from core.manifold.embeddings import SPACES

    p = command(sub, "artifacts", run_artifacts, device=True, json=True,
                help="artifacts: samples minus their nearest real image",
                description="Compute artifacts (generated sample minus its nearest real "
                            "sample) of each folder of samples, in one space.")
    p.add_argument("--real", type=Path, required=True, metavar="DIR",
                   help="real images (the reference manifold)")
    p.add_argument("--generated", type=Path, nargs="+", required=True, metavar="DIR",
                   help="one folder per model (a folder of model folders is expanded)")
    p.add_argument("--space", choices=SPACES, default="rgb")
    add_out(p, required=True)
    p.add_argument("--size", type=int_range(8, 8192), metavar="S",
                   help="centre-crop every image to SxS (default: the samples' own size, "
                        "which the real images must share)")
    p.add_argument("--k", type=int_range(1, 1000), default=1,
                   help="neighbours kept (default 1)")
    p.add_argument("--holdout-real", type=int_range(0, 10**6), default=200, metavar="N",
                   help="real images held out as the 'real' class (default 200; 0: none)")
    p.add_argument("--backend", choices=["auto", "torch", "faiss"], default="auto")
    p.add_argument("--extractor", type=Path, metavar="DIR",
                   help="extractor for the learned space (default: the shipped one)")
    p.add_argument("--learned", choices=["extractor", "ssl"], default="extractor",
                   help="learned space: the extractor, or a self-supervised encoder trained "
                        "on the real images (used anyway when no extractor is installed)")
    p.add_argument("--ssl-steps", type=int_range(1, 10**6), default=300,
                   help="training steps of the self-supervised encoder (default 300)")
    p.add_argument("--seed", type=seed, default=0)
    add_skip_unusable(p)

    p = command(sub, "attribute", run_attribute, device=True, json=True,
                help="attribution on artifacts against raw images",
                description="Train a small classifier on artifacts and the same classifier "
                            "on raw images; accuracy over seeds.")
    _add_sets(p)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int_range(1, 10_000), default=20)
    add_out(p, "confusion matrices (PNG) go here")

    p = command(sub, "structure", run_structure, json=True,
                help="do fingerprints cluster by design choice?",
                description="Cluster model fingerprints; NMI against each recorded design "
                            "choice; leave-one-model-out upsampling.")
    _add_sets(p)
    add_out(p, "t-SNE plots (PNG) go here")
    p.add_argument("--seed", type=seed, default=0)


def _add_sets(p) -> None:
    p.add_argument("sets", type=Path, nargs="+", metavar="DIR",
                   help="outputs of fpx artifacts (one per space)")


def run_artifacts(args) -> int:
    import json

    from core.data.folder import common_crop_size, model_folders, read_folder
    from core.extractor import load_extractor
    from core.figures import artifact_grid
    from core.manifold.artifacts import compute_artifacts
    from core.manifold.ssl import SSLConfig
    from core.runtime import atomic_write, code_version, resolve_device
    from core.zoo.sample import read_design

    device = resolve_device(args.device)
    if not args.real.is_dir():
        raise InvalidInputError(f"{args.real}: not a folder")
    folders = model_folders(args.generated)
    size = common_crop_size(folders, args.real, args.size)
    real, real_paths = read_folder(args.real, size, notify=skipped)
    generated, paths, designs = {}, {}, {}
    for folder in folders:
        found = read_named_folder(folder, size, args)
        if found is None:
            continue
        generated[folder.name], paths[folder.name] = found
        design = read_design(folder)
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
    rows = result.model_summary()  # compute_artifacts refuses an empty set of models
    summary = {"space": args.space, "real": len(real), "models": rows,
               "out": str(args.out)}
    atomic_write(args.out / "summary.json", json.dumps(summary, indent=2))
    return emit(args, summary, lambda: _artifact_table(args, len(real), rows))


ARTIFACT_LEGEND = ("NN dist: mean distance from a sample to its nearest real image, in "
                   "the space's units; |artifact|: mean absolute value of the artifact "
                   "(sample minus that neighbour) per dimension; distinct NN: how many "
                   "different real images are nearest (few: the samples crowd a few "
                   "real images)")


def _artifact_table(args, real: int, rows: dict) -> None:
    print(f"space {args.space}: {real} real images "
          f"({args.holdout_real} held out as 'real'); artifacts -> {args.out}")
    print(f"{'model':<26} {'samples':>7} {'NN dist':>9} {'|artifact|':>10} {'distinct NN':>11}")
    for name, r in rows.items():
        print(f"{name:<26} {r['samples']:>7} {r['nn_distance']:>9.3f} "
              f"{r['artifact_abs']:>10.4f} {r['unique_neighbors']:>11}")
    print(ARTIFACT_LEGEND)


def run_attribute(args) -> int:
    import numpy as np
    import torch

    from core.figures import confusion_png
    from core.manifold.artifacts import load_artifact_sets
    from core.manifold.attribution import AttributionConfig, attribute, fisher_ratio
    from core.runtime import resolve_device

    config = AttributionConfig(epochs=args.epochs, seeds=seed_list(args.seeds),
                               device=str(resolve_device(args.device)))
    report, raw_done = {}, []  # raw images are the same whatever the space: train once
    for label, s in load_artifact_sets(args.sets):
        names = s.models
        labels = torch.tensor([names.index(v) for v in s.labels.tolist()])
        inputs = {(label, "artifacts"): s.classifier_input()}
        if not any(np.array_equal(s.images, images) and np.array_equal(s.labels, lab)
                   for images, lab in raw_done):
            raw_done.append((s.images, s.labels))
            key = "raw" if len(raw_done) == 1 else f"raw:{label}"
            inputs[(key, "raw images")] = s.image_tensor()
        for (name, kind), x in inputs.items():
            say(f"fpx attribute: {name} / {kind}: {len(x)} samples, {len(names)} classes")
            result = attribute(x, labels, names, config)
            report[f"{name}/{kind}"] = {**result.to_dict(),
                                        "fisher_ratio": fisher_ratio(x, labels)}
            if args.out is not None:
                tag = name.replace(":", "_")
                confusion_png(result.confusion, names,
                              args.out / f"confusion_{tag}_{kind.split()[0]}.png",
                              title=f"{name}, {kind}: accuracy {result.accuracy_mean:.3f}")
    return emit(args, {"seeds": list(config.seeds), "epochs": config.epochs, "results": report},
                lambda: _attribution_table(report, len(config.seeds)))


def _attribution_table(report: dict, seeds: int) -> None:
    # A spread needs two seeds at least: with one, "± 0.000" would claim a certainty
    # that nobody measured.
    print(f"{'space / input':<24} {'accuracy':>16} {'macro-F1':>9} {'Fisher':>8}")
    for key, r in report.items():
        spread = f" ± {r['accuracy_std']:.3f}" if seeds > 1 else " " * 8
        print(f"{key:<24} {r['accuracy_mean']:>8.3f}{spread} "
              f"{r['macro_f1_mean']:>9.3f} {r['fisher_ratio']:>8.3f}")
    if seeds == 1:
        print("one seed: no spread over seeds (pass --seeds 0,1,2 for one)")


def run_structure(args) -> int:
    from core.manifold.artifacts import REAL, load_artifact_sets
    from core.manifold.structure import structure_report, tsne_png

    report = {}
    for label, s in load_artifact_sets(args.sets):
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
    return emit(args, {space: r.to_dict() for space, r in report.items()},
                lambda: _structure_table(report))


def _structure_table(report: dict) -> None:
    for space, r in report.items():
        print(f"space {space}: {len(r.models)} models, fingerprint = {r.fingerprint}")
        print(f"  {'factor':<14} {'values':>6} {'NMI k-means':>12} {'NMI agglo':>10} "
              f"{'AMI k-means':>12} {'AMI agglo':>10}")
        for factor, t in r.nmi.items():
            if t.n_values < 2:
                print(f"  {factor:<14} {t.n_values:>6}   (one value: nothing to cluster)")
                continue
            print(f"  {factor:<14} {t.n_values:>6} {t.nmi['kmeans']:>12.3f} "
                  f"{t.nmi['agglomerative']:>10.3f} {t.ami['kmeans']:>12.3f} "
                  f"{t.ami['agglomerative']:>10.3f}")
        loo = r.leave_one_out
        acc = "n/a" if loo.accuracy is None else f"{loo.accuracy:.3f}"
        chance = "n/a" if loo.chance is None else f"{loo.chance:.3f}"
        print(f"  leave-one-model-out {loo.factor}: accuracy {acc} over "
              f"{loo.n_predicted} models (chance {chance}; skipped: "
              f"{', '.join(loo.skipped) or 'none'})")
