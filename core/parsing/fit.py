"""Fit design heads end to end, as ``fpx design fit`` does, and check them on synthetic
architectures that neither they nor the extractor's bank held.

    heads = fit_design_heads("core/assets/extractor", "runs/heads")
    # runs/heads/extractor/ and runs/heads/spectrum/ (the baseline's heads)
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.errors import InvalidInputError
from core.parsing.data import extractor_identity, labelled_features
from core.parsing.evaluate import DesignScores, score_heads
from core.parsing.features import FEATURES, feature_fn
from core.parsing.heads import DesignHeads, fit_heads
from core.runtime import code_version

SPACES = ("decoder", "autoencoder")
# Heads shipped for the shipped extractor (``fpx design fit``; its manifest says how).
DEFAULT_HEADS = Path(__file__).resolve().parent.parent / "assets" / "design_heads"


def space_configs(spaces: Sequence[str], architectures: int, *, fit_steps: int = 20,
                  seed: int = 0):
    """One :class:`core.synthetic.BankConfig` per space: ``architectures`` distinct
    architectures (one weight seed each: the heads learn designs, not seeds), fitted as
    the ``cpu``/``decoder`` training presets fit theirs (64-px crops, 16 channels)."""
    from core.synthetic import BankConfig

    unknown = sorted(set(spaces) - set(SPACES))
    if unknown or not spaces:
        raise InvalidInputError(f"spaces {list(spaces)}; valid: {', '.join(SPACES)}")
    return [BankConfig(architectures=architectures, seeds=1, fit_steps=fit_steps,
                       crop_size=64, batch=16, channels=16, seed=seed, space=s)
            for s in dict.fromkeys(spaces)]


def readers(kinds: Sequence[str], extractor: str | Path | None,
            device: str | torch.device = "cpu") -> dict[str, Callable]:
    """kind -> feature function (loading the extractor once)."""
    unknown = sorted(set(kinds) - set(FEATURES))
    if unknown or not kinds:
        raise InvalidInputError(f"features {list(kinds)}; valid: {', '.join(FEATURES)}")
    model = None
    if "extractor" in kinds:
        from core.extractor import load_extractor

        if extractor is None:
            raise InvalidInputError("extractor features need --extractor")
        model = load_extractor(extractor, device)
    return {k: feature_fn(k, model) for k in dict.fromkeys(kinds)}


def heldout_scores(heads: dict[str, DesignHeads], configs, reads: dict[str, Callable], *,
                   models: int, images: int, sizes: Sequence[int], device="cpu",
                   progress=None) -> list[DesignScores]:
    """Each heads file on ``models`` architectures per space after those of ``configs``
    (:func:`core.synthetic.heldout_config` ``"architectures"``), crops of the test split."""
    from core.synthetic import heldout_config

    held = [dataclasses.replace(heldout_config(c, "architectures"), seeds=1)
            for c in configs]
    feats, labels, groups = labelled_features(held, reads, models=models, images=images,
                                              sizes=sizes, split="test", seed=1,
                                              device=device, progress=progress)
    rows = [f"m{g:03d}" for g in groups]
    truth = {r: {f: labels[f][i] for f in labels} for i, r in enumerate(rows)}
    return [score_heads(h, feats[k], rows, truth, name=f"{k} heads",
                        set_name="held-out synthetic architectures")
            for k, h in heads.items()]


def fit_design_heads(extractor: str | Path | None, out: str | Path, *,
                     kinds: Sequence[str] = FEATURES, spaces: Sequence[str] = SPACES,
                     architectures: int = 96, images: int = 12,
                     sizes: Sequence[int] = (32, 64), heldout: int = 32,
                     banks: Sequence[str | Path] = (), device: str | torch.device = "cpu",
                     command: str = "", progress: Callable[[str], None] | None = None
                     ) -> tuple[dict[str, DesignHeads], list[DesignScores]]:
    """Fit one heads file per feature kind on the same synthetic images, check them on
    ``heldout`` unseen architectures per space, and write ``out/<kind>/``.

    ``banks``: saved banks (a training run's ``bank/`` folder) read instead of fitting
    ``architectures`` new models of their space (the other spaces are fitted); the
    held-out architectures then follow each bank's own.

    Returns ``(heads, held-out scores)``; each file's record holds its command, data,
    code version, the extractor's identity, the fitting data's majority values and the
    held-out accuracy per field.
    """
    from core.synthetic import SyntheticBank

    loaded = [SyntheticBank.load(b) for b in banks]
    rest = [s for s in spaces if s not in {b.config.space for b in loaded}]
    fitted = space_configs(rest, architectures) if rest else []
    sources = [*loaded, *fitted]
    configs = [*(b.config for b in loaded), *fitted]
    what = " + ".join([*(f"{len(b)} models of a saved {b.config.space} bank" for b in loaded),
                       *(f"{architectures} {c.space} architectures" for c in fitted)])
    reads = readers(kinds, extractor, device)
    feats, labels, _ = labelled_features(sources, reads, models=None, images=images,
                                         sizes=sizes, device=device, progress=progress)
    majority = {f: Counter(v).most_common(1)[0][0] for f, v in labels.items()}
    data = (f"{len(labels['period'])} images: {what} ("
            f"{', '.join(c.space for c in configs)}) x {images} images x sizes {list(sizes)}")
    heads = {}
    for kind, x in feats.items():
        made_by = {"command": command, "data": data, "code_version": code_version(),
                   "spaces": [dataclasses.asdict(c) for c in configs],
                   "sizes": list(sizes), "majority": majority}
        if kind == "extractor":
            made_by["extractor"] = extractor_identity(extractor)
        if progress:
            progress(f"fitting {kind} heads on {len(x)} rows of {x.shape[1]} features")
        heads[kind] = fit_heads(x, labels, kind=kind, made_by=made_by)
    scores = heldout_scores(heads, configs, reads, models=heldout, images=images,
                            sizes=sizes, device=device, progress=progress) if heldout else []
    for score in scores:
        h = heads[score.kind]
        record = {**h.made_by, "heldout": {s.field: {"accuracy": s.accuracy,
                                                     "majority": s.majority,
                                                     "generators": s.generators}
                                           for s in score.fields}}
        heads[score.kind] = dataclasses.replace(h, made_by=record)
    for kind, h in heads.items():
        h.save(Path(out) / kind)
    return heads, scores


def load_heads(folder: str | Path) -> dict[str, DesignHeads]:
    """Heads in ``folder`` itself or in its sub-folders (``fpx design fit``'s ``out``),
    by kind."""
    folder = Path(folder)
    if (folder / "heads.json").exists():
        h = DesignHeads.load(folder)
        return {h.kind: h}
    found = {}
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if (p / "heads.json").exists()):
            h = DesignHeads.load(sub)
            found[h.kind] = h
    if not found:
        raise InvalidInputError(f"{folder}: no design heads (heads.json) in it or its "
                                "sub-folders; fit some with fpx design fit")
    return found


def check_extractor(heads: DesignHeads, extractor: str | Path) -> None:
    """Refuse extractor heads fitted on another extractor's embeddings."""
    want = heads.made_by.get("extractor")
    have = extractor_identity(extractor)
    if heads.kind == "extractor" and want != have:
        raise InvalidInputError(f"these design heads were fitted on extractor {want}, not "
                                f"on {extractor} ({have}); refit with fpx design fit")
