"""What the Embeddings tab draws, from one :class:`~core.extractor.EmbeddingSet`: pure
functions on ``(N, D)`` unit embeddings and ``N`` model labels, no state, no I/O.

* :func:`project` — a 2-D map of the images or of each model's mean embedding (PCA,
  t-SNE, or UMAP when ``umap-learn`` is installed);
* :func:`similarity` — the model-by-model cosine similarity of mean embeddings
  (:func:`core.extractor.evaluate.relate`, as ``fpx relate``) in dendrogram order;
* :func:`roc` — verification ROC over every pair of images, with its AUC;
* :func:`confusion` — identification with ``shots`` images per model as the gallery
  (:func:`core.extractor.evaluate.split_gallery`, as ``fpx identify`` on one folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInputError

METHODS = ("pca", "tsne", "umap")
MIN_POINTS = 3  # a 2-D map of fewer points says nothing
MAX_ROC_IMAGES = 1500  # every pair of up to 1500 images (1.1 M pairs; 5.8 M for the whole
# zoo took tens of seconds of sorting on a loaded 2-core CPU)


def has_umap() -> bool:
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def available_methods() -> list[str]:
    return [m for m in METHODS if m != "umap" or has_umap()]


def model_means(embeddings: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Unit mean embedding per model ``(M, D)``, models in order of first appearance."""
    lab = np.asarray(labels)
    names = list(dict.fromkeys(labels))
    means = np.stack([embeddings[lab == n].mean(0) for n in names])
    return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12), names


def project(points: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """``(N, D)`` -> ``(N, 2)`` map coordinates.

    PCA: the two leading principal axes (of the centred data, signs fixed so the largest loading
    of each axis is positive: the same data give the same picture). t-SNE: scikit-learn,
    PCA-initialised, perplexity ``min(30, (N - 1) / 3)``. UMAP: ``umap-learn``.

    Raises:
        InvalidInputError: fewer than :data:`MIN_POINTS` points, or an unknown method.
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown map method {method!r}; valid: "
                                f"{', '.join(available_methods())}")
    n = len(points)
    if n < MIN_POINTS:
        raise InvalidInputError(f"a map needs at least {MIN_POINTS} points; this one has "
                                f"{n} (choose more images or more models)")
    x = np.asarray(points, dtype=np.float64)
    if method == "pca":
        # Leading eigenvectors of the (D, D) scatter matrix, not an SVD of the (N, D)
        # data: the same axes, and milliseconds instead of seconds for 3400 x 128 on a
        # loaded 2-core CPU (LAPACK's SVD of a tall matrix was 0.1-5.6 s there).
        x = x - x.mean(0)
        _, vecs = np.linalg.eigh(x.T @ x)  # ascending eigenvalues
        axes = vecs[:, ::-1][:, :2].T.copy()
        axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
        out = x @ axes.T
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed
                    ).fit_transform(x.astype(np.float32)).astype(np.float64)
    if not has_umap():
        raise InvalidInputError("UMAP needs the umap-learn package, which is not installed; "
                                "use pca or tsne")
    import umap

    return umap.UMAP(n_neighbors=min(15, n - 1), random_state=seed).fit_transform(x)


@dataclass(frozen=True)
class Similarity:
    """Cosine similarity of models' mean embeddings, rows and columns in dendrogram
    (average-linkage on ``1 - similarity``) leaf order.

    Attributes:
        models: ``M`` names in that order; matrix: ``(M, M)``.
    """

    models: tuple[str, ...]
    matrix: np.ndarray


def similarity(embeddings: np.ndarray, labels: Sequence[str]) -> Similarity:
    """The ``fpx relate`` matrix (:func:`core.extractor.evaluate.relate`), reordered."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    from core.extractor.evaluate import relate

    related = relate(embeddings, labels)
    names, sim = related["models"], np.asarray(related["similarity"], dtype=np.float64)
    if len(names) > 2:
        dist = np.clip(1 - (sim + sim.T) / 2, 0, None)
        np.fill_diagonal(dist, 0)
        order = leaves_list(linkage(squareform(dist, checks=False), "average"))
    else:
        order = np.arange(len(names))
    return Similarity(tuple(names[i] for i in order), sim[np.ix_(order, order)])


@dataclass(frozen=True)
class Roc:
    """Verification ROC: false and true positive rates ``(K,)`` over thresholds on the
    cosine similarity of image pairs, their AUC and the number of pairs."""

    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    pairs: int


def roc(embeddings: np.ndarray, labels: Sequence[str], seed: int = 0) -> Roc:
    """ROC of "same model" on every pair of images (of a seeded draw of
    :data:`MAX_ROC_IMAGES` images when there are more: the ``(N, N)`` similarity is
    formed once)."""
    from sklearn.metrics import auc, roc_curve

    lab = np.asarray(labels)
    if len(set(labels)) < 2:
        raise InvalidInputError("verification needs images of at least 2 models")
    e = np.asarray(embeddings, dtype=np.float32)
    if len(lab) > MAX_ROC_IMAGES:
        keep = np.sort(np.random.default_rng(seed).choice(len(lab), MAX_ROC_IMAGES,
                                                          replace=False))
        e, lab = e[keep], lab[keep]
    i, j = np.triu_indices(len(lab), 1)
    sim = (e @ e.T)[i, j]
    same = lab[i] == lab[j]
    if same.all() or not same.any():
        raise InvalidInputError("verification needs at least 2 images of one model")
    fpr, tpr, _ = roc_curve(same, sim, drop_intermediate=True)
    # The curve's area (dropped points are collinear): roc_auc_score's value, one sort less.
    return Roc(fpr, tpr, float(auc(fpr, tpr)), int(len(i)))


@dataclass(frozen=True)
class Confusion:
    """Identification with ``shots`` gallery images per model: ``matrix[t, p]`` counts
    queries of model ``models[t]`` assigned to ``models[p]``; ``accuracy`` its trace
    share."""

    models: tuple[str, ...]
    matrix: np.ndarray
    shots: int
    accuracy: float


def confusion(embeddings: np.ndarray, labels: Sequence[str], shots: int) -> Confusion:
    """Per model, its first ``shots`` images are its gallery (their unit mean), the rest
    query the nearest gallery model by cosine (``fpx identify --query = --gallery``)."""
    from core.extractor.evaluate import split_gallery

    g, g_lab, q, q_lab = split_gallery(embeddings, list(labels), shots)
    if len(q) == 0:
        raise InvalidInputError(f"no query images left after {shots} shots per model; "
                                "choose fewer shots")
    if len(set(g_lab)) < 2:
        raise InvalidInputError("identification needs at least 2 models")
    cent, names = model_means(g, g_lab)
    pred = (np.asarray(q) @ cent.T).argmax(1)
    index = {n: k for k, n in enumerate(names)}
    truth = np.array([index.get(t, -1) for t in q_lab])
    mat = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(mat, (truth[truth >= 0], pred[truth >= 0]), 1)
    return Confusion(tuple(names), mat, shots, float(np.trace(mat) / max(1, mat.sum())))


def nearest_models(vector: np.ndarray, means: np.ndarray, names: Sequence[str], k: int = 5
                   ) -> list[tuple[str, float]]:
    """The ``k`` models whose unit mean embedding is most cosine-similar to ``vector``."""
    sim = np.asarray(means) @ np.asarray(vector, dtype=np.float32)
    order = np.argsort(-sim, kind="stable")[:k]
    return [(names[i], float(sim[i])) for i in order]
