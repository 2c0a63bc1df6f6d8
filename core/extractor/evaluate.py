"""Using an extractor: verify, identify and relate generators from embeddings (made by
:mod:`core.extractor.embeddings`; arrays ``(N, D)`` with ``N`` labels in, figures out).

The three tasks of Yang et al., measured as they measure them:
  * verification: pairs of images (half from the same model), cosine similarity, ROC AUC
    and the accuracy at the best threshold;
  * identification: a gallery embedding per model (the mean of ``shots`` images), each
    query assigned to the nearest by cosine; accuracy and macro-F1 over known models,
    and, when the query holds models the gallery lacks, the open-set AUROC of the best
    similarity (known against unknown);
  * relationships: the model-by-model cosine similarity of mean embeddings (drawn as a
    dendrogram by :func:`core.figures.dendrogram_png`) and, when the models' specs are
    known, Spearman's correlation between embedding distance and
    :func:`core.specs.spec_distance`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InvalidInputError, SpecError, check_int
from core.specs import GeneratorSpec, spec_distance

MAX_PAIRS = 10**6  # drawn in a Python loop: 10**6 pairs take seconds, 10**12 forever


def _check_finite(*arrays) -> None:
    for a in arrays:
        a = np.asarray(a)
        if a.size and not np.isfinite(a).all():
            raise InvalidInputError("embeddings contain NaN or Inf (a damaged extractor or "
                                    "embeddings file); re-embed with a sound extractor")


def _classes(labels: Sequence[str], minimum: int, task: str) -> np.ndarray:
    arr = np.asarray(labels)
    if len(set(labels)) < minimum:
        raise InvalidInputError(f"{task} needs images of at least {minimum} models (top "
                                f"folders); got {len(set(labels))}")
    return arr


def verify(embeddings: np.ndarray, labels: Sequence[str], *, pairs: int = 10_000,
           seed: int = 0) -> dict:
    """Verification on ``pairs`` image pairs, half from the same model."""
    from sklearn.metrics import roc_auc_score

    check_int("pairs", pairs, 2, MAX_PAIRS)
    check_int("seed", seed, 0, 2**64 - 1)
    _check_finite(embeddings)
    lab = _classes(labels, 2, "verification")
    e = torch.as_tensor(embeddings)
    rng = np.random.default_rng(seed)
    by = {c: np.flatnonzero(lab == c) for c in np.unique(lab)}
    multi = [c for c, idx in by.items() if len(idx) >= 2]
    if not multi:
        raise InvalidInputError("verification needs a model with at least 2 images")
    half = pairs // 2
    cls = rng.choice(multi, half)
    same = np.array([rng.choice(by[c], 2, replace=False) for c in cls])
    a, b = rng.integers(len(lab), size=(2, half * 4))
    diff = np.stack([a, b], 1)[lab[a] != lab[b]][:half]
    if len(diff) < half:
        raise InvalidInputError("too few images of different models to draw pairs")
    idx = np.concatenate([same, diff])
    y = np.concatenate([np.ones(len(same)), np.zeros(len(diff))])
    sim = (e[idx[:, 0]] * e[idx[:, 1]]).sum(1).numpy()
    order = np.sort(sim)
    cuts = (order[:-1] + order[1:]) / 2 if len(order) > 1 else order
    acc = max(float(((sim > t) == y).mean()) for t in cuts[:: max(1, len(cuts) // 2000)])
    return {"pairs": int(len(y)), "auc": float(roc_auc_score(y, sim)),
            "best_threshold_accuracy": acc}


def split_gallery(embeddings: np.ndarray, labels: Sequence[str], shots: int
                  ) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """One folder as both gallery and query: per model, its first ``shots`` images (in
    the order given) form the gallery and the rest are the queries.

    Args:
        embeddings: ``(N, D)``, one row per image.
        labels: ``N`` model names.

    Returns:
        ``(gallery (G, D), gallery labels, query (N - G, D), query labels)``.
    """
    check_int("shots", shots)
    if len(labels) != len(embeddings):
        raise InvalidInputError(f"{len(labels)} labels for {len(embeddings)} embeddings")
    seen: dict[str, int] = {}
    in_gallery = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        in_gallery.append(seen[lab] <= shots)
    mask = np.asarray(in_gallery, dtype=bool)
    return (embeddings[mask], [lab for lab, m in zip(labels, mask) if m],
            embeddings[~mask], [lab for lab, m in zip(labels, mask) if not m])


def identify(gallery: np.ndarray, gallery_labels: Sequence[str], query: np.ndarray,
             query_labels: Sequence[str], *, shots: int = 10, seed: int = 0) -> dict:
    """Few-shot identification; open-set AUROC when the query holds unknown models."""
    from sklearn.metrics import f1_score, roc_auc_score

    check_int("shots", shots)
    check_int("seed", seed, 0, 2**64 - 1)
    _check_finite(gallery, query)
    g_lab = _classes(gallery_labels, 2, "identification")
    q_lab = np.asarray(query_labels)
    if len(q_lab) == 0:
        raise InvalidInputError("identification needs query images")
    rng = np.random.default_rng(seed)
    names = sorted(set(g_lab.tolist()))
    centroids = []
    for c in names:
        idx = np.flatnonzero(g_lab == c)
        take = rng.choice(idx, min(shots, len(idx)), replace=False)
        centroids.append(F.normalize(torch.as_tensor(gallery[take]).mean(0), dim=0))
    cent = torch.stack(centroids)
    sim = torch.as_tensor(query) @ cent.T
    best, arg = sim.max(1)
    pred = np.asarray(names)[arg.numpy()]
    known = np.isin(q_lab, names)
    if not known.any():
        def shown(models):
            return ", ".join(models[:4]) + (", ..." if len(models) > 4 else "")

        raise InvalidInputError(f"the gallery and the query have no model in common "
                                f"(gallery: {shown(names)}; query: "
                                f"{shown(sorted(set(q_lab.tolist())))}): nothing to identify")
    result = {"gallery_models": len(names), "shots": shots, "queries": int(len(q_lab)),
              "known_queries": int(known.sum())}
    if known.any():
        result["accuracy"] = float((pred[known] == q_lab[known]).mean())
        result["macro_f1"] = float(f1_score(q_lab[known], pred[known], average="macro",
                                            labels=sorted(set(q_lab[known].tolist()))))
    if (~known).any() and known.any():
        result["open_set_auroc"] = float(roc_auc_score(known, best.numpy()))
        result["unknown_models"] = sorted(set(q_lab[~known].tolist()))
    return result


def relate(embeddings: np.ndarray, labels: Sequence[str],
           specs: dict[str, GeneratorSpec] | None = None) -> dict:
    """Model-by-model cosine similarity of mean embeddings (and, with specs, Spearman's
    rho between embedding distance and design distance over model pairs)."""
    from scipy.stats import spearmanr

    _check_finite(embeddings)
    lab = _classes(labels, 2, "relationship analysis")
    names = sorted(set(lab.tolist()))
    cent = torch.stack([F.normalize(torch.as_tensor(embeddings[lab == c]).mean(0), dim=0)
                        for c in names])
    sim = (cent @ cent.T).numpy()
    out = {"models": names, "similarity": sim.round(4).tolist()}
    if specs and all(n in specs for n in names):
        iu = np.triu_indices(len(names), 1)
        design = np.array([[spec_distance(specs[a], specs[b]) for b in names] for a in names])
        if len(iu[0]) >= 3 and np.ptp(design[iu]) > 0:
            rho = spearmanr(1 - sim[iu], design[iu]).statistic
            out["spearman_embedding_vs_spec_distance"] = float(rho)
    return out


MAX_SPEC_BYTES = 1 << 20


def read_specs(folders: list[str | Path]) -> dict:
    """``spec.json`` of each model folder (as ``fpx bank sample`` writes them), by label.

    A spec that cannot be used (not a regular file, over a megabyte, not UTF-8 JSON,
    nested too deeply, an integer past Python's limits, a bad field) is refused with one
    line naming its file."""
    specs = {}
    for folder in folders:
        root = Path(folder)
        for spec_file in [root / "spec.json", *root.glob("*/spec.json")]:
            if os.path.lexists(spec_file):
                label = root.name if spec_file.parent == root else spec_file.parent.name
                specs[label] = read_spec(spec_file)
    return specs


def read_spec(path: Path):
    """One ``spec.json``; every failure names ``path``."""
    from core.limits import regular_file

    regular_file(path, "spec file")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise InvalidInputError(f"{path}: too large for a spec ({path.stat().st_size} bytes)")
    from core.synthetic.model import spec_from_dict

    try:
        return spec_from_dict(json.loads(path.read_bytes().decode("utf-8")))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not a spec (not UTF-8 text)") from None
    except RecursionError:
        raise InvalidInputError(f"{path}: not a spec (JSON nested too deeply)") from None
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None
    except (ValueError, TypeError, OverflowError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "int_max_str_digits" in why or "Exceeds the limit" in why:
            why = "an integer of thousands of digits"
        raise InvalidInputError(f"{path}: not a usable spec ({why[:120]})") from None
