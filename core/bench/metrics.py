"""The transfer benchmark's metrics: pure functions of features ``(N, D)`` and labels.

Every function takes integer labels ``(N,)`` (one model per value) and unit feature rows
(cosine similarity is their dot product; :func:`unit_rows` makes them), draws what it
needs from the ``numpy.random.Generator`` it is given, and returns plain numbers:

  * :func:`draw_pairs`, :func:`verification`: pairs of images, half from the same model
    (exactly: ``pairs // 2``), ROC AUC of their cosine similarity, and the true accept
    rate at a threshold fixed elsewhere (:func:`threshold_at_far` on *other* models'
    pairs: the threshold never sees the test labels);
  * :func:`identification`: ``k`` random shots per model form a gallery (their mean,
    normalised), the other images are assigned to the nearest; accuracy and macro-F1;
  * :func:`open_set`: models are left out of the gallery in turn (folds covering every
    model once); AUROC of the best similarity (known against unknown queries) and OSCR
    (area under the correct-classification rate against the false-positive rate on
    unknown queries, Dhamija et al. 2018).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from core.errors import InvalidInputError


def unit_rows(x: torch.Tensor | np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """``(N, D)`` features -> float64 unit rows, after subtracting ``centre`` ``(D,)``
    when given; an all-zero row stays zero (its similarity to everything is 0)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.reshape(len(a), -1).astype(np.float64)
    if centre is not None:
        a = a - centre
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norm > 0, norm, 1.0)


def _groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(order, starts, counts, rank)``: images sorted by label, where each label's run
    starts and how long it is (indexed by label), and each image's place in its run."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or labels.min() < 0:
        raise InvalidInputError("labels must be a non-empty 1-D array of integers >= 0")
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts[labels[order]]
    return order, starts, counts, rank


def draw_pairs(labels: np.ndarray, pairs: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` index pairs ``(P, 2)`` and whether each is same-model ``(P,)``: the first
    ``pairs // 2`` same-model (a random image with another random image of its model), the
    rest from two different models (a random image with a uniform draw among all images
    of other models). Vectorised; no pair joins an image with itself.

    Raises:
        InvalidInputError: fewer than 2 models, or no model with 2 images.
    """
    labels = np.asarray(labels)
    order, starts, counts, rank = _groups(labels)
    n = len(labels)
    if np.count_nonzero(counts) < 2:
        raise InvalidInputError("verification needs images of at least 2 models")
    eligible = np.flatnonzero(counts[labels] >= 2)
    if eligible.size == 0:
        raise InvalidInputError("verification needs a model with at least 2 images")
    n_same = pairs // 2
    a = rng.choice(eligible, n_same)
    c = labels[a]
    step = rng.integers(1, counts[c])  # 1 .. count-1: another image of the same model
    b = order[starts[c] + (rank[a] + step) % counts[c]]
    i = rng.integers(n, size=pairs - n_same)
    ci = labels[i]
    r = rng.integers(n - counts[ci])  # a position outside the model's own run
    j = order[np.where(r < starts[ci], r, r + counts[ci])]
    idx = np.concatenate([np.stack([a, b], 1), np.stack([i, j], 1)])
    same = np.concatenate([np.ones(n_same, bool), np.zeros(pairs - n_same, bool)])
    return idx, same


def pair_similarity(e: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair of unit rows: ``(P,)``."""
    return np.einsum("pd,pd->p", e[idx[:, 0]], e[idx[:, 1]])


def threshold_at_far(negatives: np.ndarray, far: float) -> float:
    """The lowest threshold ``t`` among the scores such that at most a share ``far`` of
    ``negatives`` (different-model similarities) lie strictly above it."""
    neg = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    if neg.size == 0:
        raise InvalidInputError("a threshold needs different-model pairs")
    if not 0 < far < 1:
        raise InvalidInputError(f"FAR must lie in (0, 1), got {far}")
    return float(neg[min(int(math.floor(far * neg.size)), neg.size - 1)])


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance that a random positive
    scores above a random negative."""
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise InvalidInputError("an AUC needs both positives and negatives")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def verification(e: np.ndarray, labels: np.ndarray, *, pairs: int, threshold: float | None,
                 rng: np.random.Generator) -> dict:
    """AUC over ``pairs`` pairs; with ``threshold`` also TAR and the FAR actually met on
    these pairs (the threshold was fixed on other models)."""
    idx, same = draw_pairs(labels, pairs, rng)
    sim = pair_similarity(e, idx)
    out = {"pairs": int(len(sim)), "auc": roc_auc(sim, same)}
    if threshold is not None:
        out.update(threshold=float(threshold), tar=float((sim[same] > threshold).mean()),
                   far=float((sim[~same] > threshold).mean()))
    return out


def split_shots(labels: np.ndarray, shots: int, rng: np.random.Generator,
                models: np.ndarray | None = None) -> np.ndarray:
    """A boolean gallery mask ``(N,)``: ``shots`` random images of each model in
    ``models`` (default all); every such model must keep at least one query image."""
    order, starts, counts, rank = _groups(labels)
    models = np.flatnonzero(counts) if models is None else np.asarray(models)
    short = [int(m) for m in models if counts[m] < shots + 1]
    if short:
        raise InvalidInputError(f"{shots}-shot identification needs at least {shots + 1} "
                                f"images per model; {len(short)} model(s) have fewer "
                                f"(fewest: {int(counts[short].min())})")
    # A random key per image; the ``shots`` smallest keys of a model form its gallery.
    key = rng.random(len(labels))
    mask = np.zeros(len(labels), bool)
    for m in models:
        members = order[starts[m]:starts[m] + counts[m]]
        mask[members[np.argsort(key[members])[:shots]]] = True
    return mask


def centroids(e: np.ndarray, labels: np.ndarray, models: np.ndarray) -> np.ndarray:
    """Unit mean rows ``(M, D)`` of each model's rows in ``e``."""
    c = np.stack([e[labels == m].mean(0) for m in models])
    return unit_rows(c)


def identification(e: np.ndarray, labels: np.ndarray, *, shots: int,
                   rng: np.random.Generator) -> dict:
    """Closed-set ``shots``-shot identification over every model: accuracy and macro-F1
    of nearest-centroid assignment of the non-gallery images."""
    from sklearn.metrics import f1_score

    gallery = split_shots(labels, shots, rng)
    models = np.unique(labels)
    if len(models) < 2:
        raise InvalidInputError("identification needs images of at least 2 models")
    cent = centroids(e[gallery], labels[gallery], models)
    pred = models[np.argmax(e[~gallery] @ cent.T, axis=1)]
    truth = labels[~gallery]
    return {"accuracy": float((pred == truth).mean()),
            "macro_f1": float(f1_score(truth, pred, average="macro", labels=models))}


def oscr(scores: np.ndarray, correct: np.ndarray, known: np.ndarray) -> float:
    """Open-set classification rate: the area under CCR(t) (known queries classified
    correctly and scoring above ``t``, over all known) against FPR(t) (unknown queries
    scoring above ``t``, over all unknown), ``t`` sweeping every score. 1 when every known
    query is right and outscores every unknown one."""
    scores, correct, known = (np.asarray(a) for a in (scores, correct, known))
    n_known, n_unknown = int(known.sum()), int((~known).sum())
    if n_known == 0 or n_unknown == 0:
        raise InvalidInputError("OSCR needs known and unknown queries")
    order = np.argsort(-scores, kind="stable")
    ccr = np.concatenate([[0.0], np.cumsum((correct & known)[order]) / n_known])
    fpr = np.concatenate([[0.0], np.cumsum(~known[order]) / n_unknown])
    # Equal scores enter together: keep the last point of each run of ties.
    keep = np.concatenate([np.diff(scores[order]) != 0, [True]])
    keep = np.concatenate([[True], keep])
    return float(np.trapezoid(ccr[keep], fpr[keep]))


def open_folds(n_models: int, fraction: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint sets of models to leave out of the gallery, covering every model once:
    ``round(fraction * n_models)`` each (at least 1, leaving at least 2 known)."""
    if n_models < 3:
        raise InvalidInputError(f"open-set evaluation needs at least 3 models (2 known, 1 "
                                f"left out); got {n_models}")
    size = min(max(1, round(fraction * n_models)), n_models - 2)
    perm = rng.permutation(n_models)
    return [perm[i:i + size] for i in range(0, n_models, size)]


def open_set(e: np.ndarray, labels: np.ndarray, *, shots: int, fraction: float,
             rng: np.random.Generator) -> dict:
    """Open-set identification averaged over folds (:func:`open_folds`): per fold, a
    ``shots``-shot gallery of the known models, and as queries their other images plus
    every image of the left-out models; the score of a query is its best similarity."""
    models = np.unique(labels)
    aurocs, oscrs = [], []
    for out in open_folds(len(models), fraction, rng):
        unknown_models = models[out]
        known_models = np.setdiff1d(models, unknown_models)
        gallery = split_shots(labels, shots, rng, known_models)
        cent = centroids(e[gallery], labels[gallery], known_models)
        sim = e[~gallery] @ cent.T
        truth = labels[~gallery]
        known = np.isin(truth, known_models)
        best = sim.max(1)
        correct = known_models[sim.argmax(1)] == truth
        aurocs.append(roc_auc(best, known))
        oscrs.append(oscr(best, correct, known))
    return {"folds": len(aurocs), "auroc": float(np.mean(aurocs)),
            "oscr": float(np.mean(oscrs))}
