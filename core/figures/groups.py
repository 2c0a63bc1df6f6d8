"""Figures of labelled groups (classes, models): a confusion matrix, a dendrogram of
models by similarity, a 2-D scatter coloured by group. Each writes a PNG atomically and
returns its path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

from core.errors import InvalidInputError
from core.figures.canvas import new_figure, save_figure


def confusion_png(matrix, class_names: list[str], path: str | Path, *,
                  title: str = "Confusion matrix") -> Path:
    """A confusion matrix ``(C, C)`` of counts (rows: true class, columns: predicted),
    each row coloured by its fractions, the counts printed in the cells."""
    m = np.asarray(matrix, dtype=float)
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig = new_figure((1.0 + 0.42 * n, 0.8 + 0.42 * n))
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the row")
    return save_figure(fig, path)


def dendrogram_png(relation: dict, path: str | Path, *,
                   title: str = "Generators by fingerprint similarity",
                   features: str = "embedding") -> Path:
    """Average-linkage dendrogram of models by the distance ``1 - cosine`` of their
    ``features`` (named on the axis), from ``relation`` as
    :func:`core.extractor.evaluate.relate` returns it (``models``: ``M`` names,
    ``similarity``: ``(M, M)`` cosine similarities)."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    dist = np.clip(1 - np.asarray(relation["similarity"]), 0, 2)
    np.fill_diagonal(dist, 0)
    z = linkage(squareform((dist + dist.T) / 2, checks=False), "average")
    names = [str(n) for n in relation["models"]]
    # Leaves down the left, names beside them, read horizontally: the tree keeps its
    # height however long the names are (a model folder's name can run to 40 letters).
    fig = new_figure((6.5 + 0.06 * max(len(n) for n in names), 1.2 + 0.32 * len(names)))
    ax = fig.subplots()
    dendrogram(z, labels=names, ax=ax, orientation="right", leaf_font_size=9)
    ax.set_xlabel(f"{features} distance (1 - cosine)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


GROUP_MARKERS = ("o", "s", "^", "D", "v", "P")


def group_style(i: int) -> tuple[tuple, str]:
    """Colour and marker of the ``i``-th group: the ten distinct hues of ``tab10`` in
    turn (``tab20``'s dark shades), then their light shades with the next marker shape,
    and so on. Neighbouring groups (paired models sort next to each other:
    ``ddpm_nearest``, ``ddpm_tconv``) never share a hue, as ``tab20`` taken in order
    (dark and light of one hue side by side) would make them."""
    cmap = matplotlib.colormaps["tab20"]
    lap, k = divmod(i, 10)
    return cmap(2 * k + lap % 2), GROUP_MARKERS[lap % len(GROUP_MARKERS)]


def scatter_png(points, labels: Sequence[str], path: str | Path, *,
                title: str = "") -> Path:
    """Points ``(N, 2)`` (a t-SNE map, say: no units, so no ticks) coloured by their
    ``N`` labels, the groups in first-appearance order in the legend."""
    xy = np.asarray(points, dtype=float)
    lab = np.asarray([str(s) for s in labels])
    if xy.ndim != 2 or xy.shape[1] != 2 or len(lab) != len(xy):
        raise InvalidInputError(f"a scatter needs (N, 2) points and N labels, got "
                                f"{xy.shape} and {len(lab)}")
    groups = list(dict.fromkeys(lab.tolist()))
    fig = new_figure((6.4, 5.2))
    ax = fig.subplots()
    for i, g in enumerate(groups):
        sel = lab == g
        color, marker = group_style(i)
        ax.scatter(xy[sel, 0], xy[sel, 1], s=12, color=color, marker=marker, label=g,
                   alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5,
              frameon=False)
    return save_figure(fig, path)
