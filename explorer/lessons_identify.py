"""Lesson 5 (``notebooks/05_verify_identify_relate.ipynb``): what a fingerprint is used
for: verify, identify and relate generators, with the shipped extractor beside the
simplest baseline.

The shipped zoo's samples (``core/assets/zoo``, 32 px; the first :data:`PER_MODEL` of
each entry, to keep the lesson to seconds) are turned into unit features two ways, both
through :mod:`core.bench` exactly as ``fpx bench transfer`` does:

* the **shipped extractor** (:func:`core.bench.baselines.load_method` on
  :data:`core.extractor.DEFAULT_EXTRACTOR`), read through the size policy
  (:func:`core.extractor.sizes.embed_any`, as ``fpx embed``: a 32-px image's residual
  log spectrum is resampled onto the 64-px grid the extractor was trained on);
* the **residual-spectrum baseline** (``spectrum`` of
  :func:`core.bench.baselines.baseline_methods`): the log spectrum of a median residual,
  no training at all.

Then the three tasks, on :mod:`core.bench.metrics`: verification (ROC AUC of the cosine
similarity of image pairs), ``k``-shot identification (nearest gallery centroid) and the
relationship of models (the ``fpx relate`` similarity of mean features, in dendrogram
order, :func:`explorer.embedding_maps.similarity`). The pairs of entries that differ in
one design field only (:func:`controlled_pairs`, read from the manifest) show what the
features can and cannot tell apart. No panel import here.
"""

from __future__ import annotations

import functools

import numpy as np
import param
import torch
from matplotlib.patches import Rectangle

from core.bench import metrics
from core.bench.baselines import baseline_methods, load_method
from core.bench.protocol import relationship
from core.bench.sets import TestSet, zoo_set
from core.bench.transfer import features
from core.extractor import DEFAULT_EXTRACTOR
from core.figures import ROLE_COLORS, draw_images, new_figure
from core.zoo.shipped import read_manifest
from explorer.embedding_maps import similarity
from explorer.lessons import OTHER_COLORS, _digest, _png, param_widgets

PER_MODEL = 100  # the first 100 of the 200 shipped samples of each entry
EPISODES = 5  # gallery draws averaged per k (as fpx bench transfer's default)
PAIRS = 10_000  # verification pairs, half same-model
CURVE_SHOTS = (1, 2, 5, 10, 20, 50)
METHODS = {"extractor": "shipped extractor", "spectrum": "residual spectrum (baseline)"}
COLORS = {"extractor": OTHER_COLORS[0], "spectrum": ROLE_COLORS["real"]}


@functools.lru_cache(maxsize=1)
def zoo() -> TestSet:
    """The first :data:`PER_MODEL` shipped samples of every zoo entry, with their labels
    and designs (:func:`core.bench.sets.zoo_set`)."""
    full = zoo_set()
    keep = torch.cat([torch.nonzero(full.labels == i)[:PER_MODEL, 0]
                      for i in range(len(full.models))])
    return TestSet(full.name, full.images[keep], full.labels[keep], full.models,
                   full.designs, f"{full.source}; the first {PER_MODEL} of each entry")


@functools.lru_cache(maxsize=2)
def unit_features(method: str) -> np.ndarray:
    """``(N, D)`` unit feature rows of :func:`zoo` by ``method`` (a key of
    :data:`METHODS`), normalised as the benchmark normalises them."""
    if method == "extractor":
        m = load_method(DEFAULT_EXTRACTOR, "shipped")
    else:
        (m,) = baseline_methods([method], DEFAULT_EXTRACTOR, seed=0)
    return features(m, zoo().images)


def labels() -> np.ndarray:
    return zoo().labels.numpy()


def controlled_pairs() -> list[tuple[str, str, str]]:
    """``(a, b, field)`` for every two zoo entries whose recorded entries differ in one
    field only (besides the name): the manifest's controlled pairs."""
    entries = {n: e.entry.to_dict() for n, e in read_manifest().entries.items()}
    out = []
    names = list(entries)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = [f for f in entries[a] if f != "name" and entries[a][f] != entries[b][f]]
            if len(diff) == 1:
                out.append((a, b, diff[0]))
    return out


@functools.lru_cache(maxsize=256)
def confusion(method: str, shots: int) -> np.ndarray:
    """``(M, M)`` share of each model's query images (rows) assigned to each model
    (columns) with ``shots`` random gallery images per model, averaged over
    :data:`EPISODES` draws; the draws are those of :func:`core.bench.metrics.
    identification` for the same seeds, so the trace's mean share is its accuracy."""
    e, lab = unit_features(method), labels()
    models = np.unique(lab)
    out = np.zeros((len(models), len(models)))
    for ep in range(EPISODES):
        gallery = metrics.split_shots(lab, shots, np.random.default_rng([0, shots, ep]))
        cent = metrics.centroids(e[gallery], lab[gallery], models)
        pred = models[np.argmax(e[~gallery] @ cent.T, axis=1)]
        np.add.at(out, (lab[~gallery], pred), 1)
    return out / out.sum(1, keepdims=True)


def accuracy(method: str, shots: int) -> float:
    """Mean closed-set identification accuracy (every model has as many queries)."""
    return float(np.mean(np.diag(confusion(method, shots))))


@functools.lru_cache(maxsize=64)
def verification_auc(method: str, models: tuple[str, ...] | None = None) -> float:
    """ROC AUC of "same model" over :data:`PAIRS` image pairs, among ``models`` (default
    all)."""
    e, lab = unit_features(method), labels()
    if models is not None:
        names = zoo().models
        keep = np.isin(lab, [names.index(m) for m in models])
        e, lab = e[keep], np.unique(lab[keep], return_inverse=True)[1]
    return metrics.verification(e, lab, pairs=PAIRS, threshold=None,
                                rng=np.random.default_rng(0))["auc"]


def related(method: str):
    """The model-by-model similarity of mean features in dendrogram order
    (:class:`explorer.embedding_maps.Similarity`)."""
    names = zoo().models
    return similarity(unit_features(method), [names[i] for i in labels()])


def _dendrogram(ax, sim, color: str, pick: str) -> None:
    """The average-linkage tree of ``sim``'s models, leaves top to bottom in the
    matrix's row order, ``pick`` in red."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    dist = np.clip(1 - (sim.matrix + sim.matrix.T) / 2, 0, None)
    np.fill_diagonal(dist, 0)
    z = linkage(squareform(dist, checks=False), "average")  # as the similarity's order
    dendrogram(z, labels=list(sim.models), ax=ax, orientation="right", leaf_font_size=8,
               color_threshold=0, above_threshold_color=color)
    ax.invert_yaxis()  # first leaf on top, as the matrix's first row
    for label in ax.get_yticklabels():
        if label.get_text() == pick:
            label.set_color("red")
    ax.set_xlabel("distance (1 - cosine of mean features)")
    ax.grid(axis="x", alpha=0.3)


class IdentifyLesson(param.Parameterized):
    """Lesson 5: verify, identify, relate zoo generators, extractor against baseline."""

    shots = param.Integer(default=5, bounds=(1, PER_MODEL - 1), softbounds=(1, 50),
                          label="k shots", doc="Gallery images per model (identification)")
    model = param.Selector(default="gan_tconv", objects=list(read_manifest().entries),
                           label="Model", doc="A generator of the shipped zoo: where do "
                                              "its images go?")
    shown = param.String(default="", doc="Digest of the last figure's data")

    def controls(self) -> dict:
        return param_widgets(self, ["shots", "model"])

    def pairs(self) -> list[dict]:
        """Every controlled pair with its verification AUC (pairs drawn among its two
        models only) and the share of either model's queries given to the other at
        :attr:`shots`, per method."""
        names = list(zoo().models)
        out = []
        for a, b, field in controlled_pairs():
            row = {"pair": f"{a} / {b}", "differs in": field}
            for method in METHODS:
                c = confusion(method, self.shots)
                i, j = names.index(a), names.index(b)
                row[f"{method} auc"] = verification_auc(method, (a, b))
                row[f"{method} swapped"] = (c[i, j] + c[j, i]) / 2
            out.append(row)
        return out

    def relationship(self) -> dict[str, dict[str, float]]:
        """NMI between each design field and a clustering of the models' mean features
        (:func:`core.bench.protocol.relationship`), per method."""
        z = zoo()
        return {method: {field: r["nmi"] for field, r in relationship(
            unit_features(method), labels(), z.models, z.designs).items()}
            for method in METHODS}

    def figure(self):
        z = zoo()
        names, k = list(z.models), self.shots
        pick = names.index(self.model)
        fig = new_figure((15, 10.5))
        grid = fig.add_gridspec(2, 3, width_ratios=[1.05, 1, 1.1])
        digest = []
        for row, method in enumerate(METHODS):
            sim = related(method)
            ax = fig.add_subplot(grid[row, 0])
            im = ax.imshow(sim.matrix, cmap="viridis", vmin=min(0.0, sim.matrix.min()),
                           vmax=1)
            ax.set_xticks(range(len(names)), sim.models, rotation=60, ha="right",
                          fontsize=7)
            ax.set_yticks(range(len(names)), sim.models, fontsize=7)
            at = sim.models.index(self.model)
            ax.add_patch(Rectangle((-0.5, at - 0.5), len(names), 1, fill=False, ec="red",
                                   lw=1.5))
            ax.get_yticklabels()[at].set_color("red")
            fig.colorbar(im, ax=ax, fraction=0.046, label="cosine similarity")
            ax.set_title(f"{METHODS[method]}: similarity of mean features", fontsize=10)
            ax = fig.add_subplot(grid[row, 1])
            _dendrogram(ax, sim, COLORS[method], self.model)
            ax.set_title(f"{METHODS[method]}: relate (average linkage)", fontsize=10)
            digest.append(sim.matrix)
        ax = fig.add_subplot(grid[0, 2])
        shots = sorted({*CURVE_SHOTS, k})
        for method in METHODS:
            acc = [accuracy(method, s) for s in shots]
            ax.plot(shots, acc, "o-", ms=4, color=COLORS[method],
                    label=f"{METHODS[method]} (verification AUC "
                          f"{verification_auc(method):.2f})")
            ax.plot([k], [accuracy(method, k)], "o", ms=10, mfc="none", color="black")
            digest.append([accuracy(method, k)])
        ax.axhline(1 / len(names), color="grey", ls=":", label="chance")
        ax.axvline(k, color="black", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("k (gallery images per model)")
        ax.set_ylabel(f"identification accuracy ({len(names)} models)")
        ax.set_title(f"identify: at k = {k}, extractor {accuracy('extractor', k):.2f}, "
                     f"baseline {accuracy('spectrum', k):.2f}", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        corner = grid[1, 2].subgridspec(2, 1, height_ratios=[1, 6], hspace=0.35)
        ax = fig.add_subplot(corner[0])
        draw_images(ax, z.images[z.labels == pick][:8])
        ax.set_title(f"{self.model}: 8 of its samples", fontsize=9)
        ax = fig.add_subplot(corner[1])
        y = np.arange(len(names))
        for n, method in enumerate(METHODS):
            share = confusion(method, k)[pick]
            ax.barh(y + (n - 0.5) * 0.4, share, height=0.4, color=COLORS[method],
                    label=METHODS[method])
            digest.append(share)
        ax.set_yticks(y, names, fontsize=8)
        ax.get_yticklabels()[pick].set_color("red")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of {self.model}'s query images assigned (k = {k})")
        ax.set_title(f"identify: where {self.model}'s images go", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        self.shown = _digest(*[np.ravel(d) for d in digest], [pick, k])
        return fig

    def render(self, **values) -> bytes:
        self.param.update(**values)
        return _png(self.figure())


__all__ = ["CURVE_SHOTS", "METHODS", "PER_MODEL", "IdentifyLesson", "accuracy",
           "confusion", "controlled_pairs", "related", "unit_features",
           "verification_auc", "zoo"]
