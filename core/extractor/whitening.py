"""Within-class whitening of features, learnt from labelled references only: the
Attribute tab's gallery images (:mod:`explorer.attribution_gallery`), or images of
synthetic models (:mod:`core.extractor.metric`, the hybrid fingerprint's metric).

Nearest-centroid cosine treats every direction of the feature space alike, but the
images of one generator scatter far more along some directions (content, seeds) than
along others (its fingerprint). Whitening divides that within-class scatter out:

  1. rows made unit length and projected on the first at most :data:`MAX_DIMS` right
     singular vectors of the references (there are far fewer references than feature
     dimensions). Not centred on the references' mean: the centroids of models that
     make that mean sum to zero around it, which makes a model outside the gallery
     look closer to them than they are to each other, and with one or two models
     leaves nothing of a centroid (the 2-fold cross-validation below also preferred
     it uncentred on the shipped zoo: 0.858 against 0.842);
  2. the pooled within-class covariance ``C`` of the references (each row minus its own
     model's reference mean), shrunk toward a scaled identity,
     ``(1 - a) C + a tr(C) / d I``, so that directions seen in few references are not
     blown up; ``a = 1`` is no whitening (the projection only);
  3. ``x -> C_a^(-1/2) P^T x``, made unit length again: cosine similarity there.

The shrinkage ``a`` is chosen from :data:`SHRINKAGES` by 2-fold cross-validation *inside
the references*; the best mean score wins, a tie goes to the larger shrinkage (the more
conservative transform). No held-back image takes part in any of it. Two criteria, for
the two uses:

- :func:`choose_whitening`, for a gallery whose models are the ones to identify (the
  Attribute tab): each model's references split in two halves (its first half, its
  second), the whitening learnt on one half and nearest-centroid accuracy measured on the
  other, both ways.
- :func:`choose_transfer_whitening`, for a metric that will meet models it never saw
  (the hybrid fingerprint's synthetic metric): the references' *groups* (their designs)
  split in two halves, the whitening learnt on one half's models and the verification
  AUC of pairs among the other half's models measured, both ways. It asks what the metric
  is used for, zero-shot: telling apart generators outside its references. Within-model
  accuracy rewards directions that separate the references' own models and so prefers
  little shrinkage; on the shipped extractor's synthetic metric models it chose 0.03, the
  transfer criterion 0.3 (``docs/results.md``, "The hybrid metric's shrinkage").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_DIMS = 100
SHRINKAGES = (0.03, 0.1, 0.3, 1.0)
WITHIN = "nearest-centroid accuracy, each model's references split in halves"
TRANSFER = "verification AUC on the models of unseen groups, groups split in halves"
_SHORT = {WITHIN: "by nearest-centroid accuracy", TRANSFER: "by AUC on unseen groups"}
TRANSFER_PAIRS = 10_000  # pairs per fold of the transfer criterion (half same-model)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True, eq=False)
class Whitening:
    """``x -> unit(unit(x) @ matrix)``; ``matrix`` ``None``: ``unit(x)`` alone.

    Attributes:
        matrix: ``(D, d)``, ``P C_a^(-1/2)``.
        shrinkage: the ``a`` used; ``None`` for no whitening.
        scores: ``(a, cross-validated score)`` for each candidate, as chosen.
        criterion: what the score is (:data:`WITHIN` or :data:`TRANSFER`).
    """

    matrix: np.ndarray | None = None
    shrinkage: float | None = None
    scores: tuple[tuple[float, float], ...] = ()
    criterion: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = unit(x)
        if self.matrix is None:
            return x.astype(np.float32)
        return unit(x.astype(np.float32) @ self.matrix).astype(np.float32)

    @property
    def dims(self) -> int | None:
        return None if self.matrix is None else int(self.matrix.shape[1])

    def describe(self) -> str:
        if self.matrix is None:
            return "no whitening"
        how = (f", chosen {_SHORT.get(self.criterion, 'by cross-validation')} in them"
               if self.scores else "")
        return (f"whitened within class on the reference images ({self.dims} dims, "
                f"shrinkage {self.shrinkage:g}{how})")

    def to_dict(self) -> dict:
        return {"whitened": self.matrix is not None, "dims": self.dims,
                "shrinkage": self.shrinkage, "criterion": self.criterion,
                "cross_validation": [{"shrinkage": a, "score": round(s, 4)}
                                     for a, s in self.scores]}


def fit_whitening(x: np.ndarray, labels: Sequence[str], shrinkage: float,
                  max_dims: int = MAX_DIMS) -> Whitening:
    """The whitening of references ``x`` ``(N, D)`` with model ``labels``, shrinkage
    ``a`` in ``[0, 1]`` (see the module docstring); ``a = 1`` keeps the projection only."""
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage {shrinkage} must lie in [0, 1]")
    x = unit(x)
    lab = np.asarray(labels)
    # Right singular vectors from the (N, N) Gram matrix: N references << D features.
    ev, u = np.linalg.eigh(x @ x.T)
    ev, u = ev[::-1], u[:, ::-1]
    rank = int((ev > 1e-10 * max(ev[0], 1e-30)).sum()) if len(ev) else 0
    if rank == 0:
        return Whitening()
    k = min(max_dims, rank)
    proj = x.T @ (u[:, :k] / np.sqrt(ev[:k]))  # (D, d), orthonormal columns
    z = x @ proj
    within = z.copy()
    for name in np.unique(lab):
        rows = lab == name
        within[rows] -= z[rows].mean(0)
    d = proj.shape[1]
    cov = within.T @ within / len(within)
    scale = np.trace(cov) / d
    if scale <= 1e-12:  # every model's references identical: nothing to whiten
        scale, cov, shrinkage = 1.0, np.eye(d), 1.0
    cov = (1 - shrinkage) * cov + shrinkage * scale * np.eye(d)
    ev, vec = np.linalg.eigh(cov)
    ev = np.maximum(ev, 1e-12 * ev.max())
    return Whitening((proj @ (vec / np.sqrt(ev))).astype(np.float32), float(shrinkage))


def nearest_centroid_accuracy(w: Whitening, ref: np.ndarray, ref_labels: np.ndarray,
                              query: np.ndarray, query_labels: np.ndarray) -> float:
    names = list(dict.fromkeys(ref_labels.tolist()))
    zr = w(ref)
    cents = unit(np.stack([zr[ref_labels == n].mean(0) for n in names]))
    pred = np.asarray(names)[(w(query) @ cents.T).argmax(1)]
    return float((pred == query_labels).mean())


def _cross_validated(x: np.ndarray, lab: np.ndarray, shrinkages: Sequence[float],
                     max_dims: int, folds, score, criterion: str) -> Whitening:
    """The whitening of all of ``x`` at the shrinkage whose mean ``score(whitening, fit
    rows, held-out rows)`` over ``folds`` (``(fit rows, held-out rows)`` masks) is best."""
    scores = []
    for a in shrinkages:
        s = [score(fit_whitening(x[fit], lab[fit], a, max_dims), fit, held)
             for fit, held in folds]
        scores.append((float(a), float(np.mean(s))))
    best = max(scores, key=lambda s: (round(s[1], 9), s[0]))[0]
    chosen = fit_whitening(x, lab, best, max_dims)
    return Whitening(chosen.matrix, chosen.shrinkage, tuple(scores), criterion)


def choose_whitening(x: np.ndarray, labels: Sequence[str],
                     shrinkages: Sequence[float] = SHRINKAGES,
                     max_dims: int = MAX_DIMS) -> Whitening:
    """The whitening of references ``x`` with the shrinkage chosen by 2-fold
    cross-validation inside them (module docstring). Models with fewer than 2
    references sit the cross-validation out; fewer than 2 models left, or no
    candidate: no whitening."""
    x = np.asarray(x, dtype=np.float64)
    lab = np.asarray(labels)
    halves = np.zeros(len(lab), dtype=int)  # 0: first half of its model's rows, 1: second
    usable = np.zeros(len(lab), dtype=bool)
    for name in dict.fromkeys(lab.tolist()):
        rows = np.flatnonzero(lab == name)
        if len(rows) >= 2:
            halves[rows[(len(rows) + 1) // 2:]] = 1
            usable[rows] = True
    if not shrinkages or len(set(lab[usable].tolist())) < 2:
        return Whitening()
    folds = [(usable & (halves == fit), usable & (halves != fit)) for fit in (0, 1)]

    def score(w: Whitening, fit: np.ndarray, held: np.ndarray) -> float:
        return nearest_centroid_accuracy(w, x[fit], lab[fit], x[held], lab[held])
    return _cross_validated(x, lab, shrinkages, max_dims, folds, score, WITHIN)


def choose_transfer_whitening(x: np.ndarray, labels: Sequence[str], groups: Sequence,
                              shrinkages: Sequence[float] = SHRINKAGES,
                              max_dims: int = MAX_DIMS, seed: int = 0) -> Whitening:
    """The whitening of references ``x`` ``(N, D)`` with model ``labels`` and ``groups``
    (one per row; every row of a model in one group: its design), the shrinkage
    chosen by the transfer criterion (module docstring): the groups in order of first
    appearance go alternately to two halves, and each half's models are scored by
    verification AUC (:data:`TRANSFER_PAIRS` pairs drawn with ``seed``, half same-model)
    under the whitening learnt on the other half's. With fewer than 2 models in either
    half it falls back to :func:`choose_whitening`."""
    from core.bench.metrics import draw_pairs, pair_similarity, roc_auc

    x = np.asarray(x, dtype=np.float64)
    lab, grp = np.asarray(labels), np.asarray(groups)
    if len(grp) != len(lab):
        raise ValueError(f"{len(lab)} labels but {len(grp)} groups")
    split = sorted({m for m in lab.tolist() if len(set(grp[lab == m].tolist())) > 1})
    if split:  # its rows would sit on both sides: scored on what it was learnt on
        raise ValueError(f"model {split[0]} is in more than one group")
    order = {g: i % 2 for i, g in enumerate(dict.fromkeys(grp.tolist()))}
    half = np.array([order[g] for g in grp.tolist()], dtype=int)
    if not shrinkages or min(len(set(lab[half == h].tolist())) for h in (0, 1)) < 2:
        return choose_whitening(x, lab, shrinkages, max_dims)
    folds = [(half == fit, half != fit) for fit in (0, 1)]

    def score(w: Whitening, fit: np.ndarray, held: np.ndarray) -> float:
        ids = np.unique(lab[held], return_inverse=True)[1]
        idx, same = draw_pairs(ids, TRANSFER_PAIRS, np.random.default_rng(seed))
        return roc_auc(pair_similarity(w(x[held]).astype(np.float64), idx), same)
    return _cross_validated(x, lab, shrinkages, max_dims, folds, score, TRANSFER)
