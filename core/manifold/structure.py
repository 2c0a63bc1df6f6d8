"""Structure: do models' fingerprints group by their design choices?

Each model's artifact set is summarised into one fingerprint vector
(:func:`fingerprint_vectors`); the vectors are clustered (:func:`cluster`) and the clusters
compared with each design factor by normalised mutual information (:func:`design_nmi`), as
ManiFPT does; :func:`leave_one_model_out` asks the sharper question of whether one
factor of an unseen model can be read off its fingerprint. :func:`structure_report`
gathers both; :func:`tsne_png` draws individual artifacts.

``designs`` map each model name to its design, ``{factor: value}`` with the factors of
:data:`DESIGN_FACTORS` (``ZooEntry.to_dict()`` has them all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from core.errors import InvalidInputError, check_int
from core.manifold.reports import FactorScores, LeaveOneOut, Prediction, StructureReport

DESIGN_FACTORS = ("family", "upsampling", "normalization", "activation", "loss")
CLUSTER_METHODS = ("kmeans", "agglomerative")
FINGERPRINT = "mean artifact ++ mean |artifact|"  # what fingerprint_vectors computes


def _finite_array(x, what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InvalidInputError(f"{what} must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InvalidInputError(f"{what} contain NaN or Inf")
    return a


def fingerprint_vectors(artifacts: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """One vector per model: ``[mean artifact, mean |artifact|]``.

    Args:
        artifacts: model name -> its artifacts ``(N_i, D)`` or ``(N_i, C, H, W)``
            (flattened); NumPy or torch, at least 2 models, one ``D`` for all.

    Returns:
        ``(names, vectors)``: names in the mapping's order and ``(M, 2 D)`` float64.

    The mean is the systematic part of a model's artifact (a fixed pattern, a colour or
    brightness bias); the mean absolute value adds its per-element magnitude, which the
    mean loses when the artifact changes sign from sample to sample (a pattern with a
    random phase, noise). Both halves have the artifact's units.
    """
    if not isinstance(artifacts, Mapping) or len(artifacts) < 2:
        n = len(artifacts) if isinstance(artifacts, Mapping) else type(artifacts).__name__
        raise InvalidInputError(f"structure needs artifacts of at least 2 models, got {n}")
    names, rows, dim = [], [], None
    for name, arts in artifacts.items():
        a = _finite_array(arts, f"artifacts of '{name}'")
        if a.ndim not in (2, 4) or a.shape[0] == 0:
            raise InvalidInputError(f"artifacts of '{name}' have shape {a.shape}; expected "
                                    "(N, D) or (N, C, H, W) with N > 0")
        a = a.reshape(a.shape[0], -1)
        if dim is None:
            dim, first = a.shape[1], name
        elif a.shape[1] != dim:
            raise InvalidInputError(f"artifacts of '{name}' have {a.shape[1]} values each, "
                                    f"those of '{first}' {dim}; all models need the same")
        names.append(str(name))
        rows.append(np.concatenate([a.mean(0), np.abs(a).mean(0)]))
    return names, np.stack(rows)


def _vectors(vectors, n_min: int = 2) -> np.ndarray:
    v = _finite_array(vectors, "fingerprint vectors")
    if v.ndim != 2 or v.shape[0] < n_min:
        raise InvalidInputError(f"fingerprint vectors must be (M, D) with M >= {n_min} "
                                f"models, got shape {v.shape}")
    return v


def standardise(vectors: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column of ``(M, D)``; constant columns become 0."""
    std = vectors.std(0)
    return (vectors - vectors.mean(0)) / np.where(std > 0, std, 1.0)


def cluster(vectors, n_clusters: int, method: str = "kmeans", seed: int = 0) -> np.ndarray:
    """Cluster labels ``(M,)`` of fingerprint vectors ``(M, D)``, standardised first.

    ``kmeans``: ``KMeans(n_init=10, random_state=seed)``; ``agglomerative``: Ward linkage
    (Euclidean, deterministic, ``seed`` unused).
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans

    v = _vectors(vectors)
    check_int("n_clusters", n_clusters, 1, len(v))  # at most one cluster per model
    z = standardise(v)
    if method == "kmeans":
        model = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    elif method == "agglomerative":
        model = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward")
    else:
        raise InvalidInputError(f"unknown clustering method '{method}'; valid: "
                                f"{', '.join(CLUSTER_METHODS)}")
    return np.asarray(model.fit_predict(z), dtype=np.int64)


def factor_values(names: Sequence[str], designs: Mapping[str, Mapping[str, str]],
                  factor: str) -> list[str]:
    """Each model's value of one design factor, refusing a missing design or factor."""
    values = []
    for name in names:
        design = designs.get(name) if isinstance(designs, Mapping) else None
        if design is None:
            raise InvalidInputError(f"no design given for model '{name}'")
        if factor not in design:
            raise InvalidInputError(f"design factor '{factor}' unknown for model '{name}'; it "
                                    f"has: {', '.join(sorted(design))}")
        values.append(str(design[factor]))
    return values


def design_nmi(names: Sequence[str], cluster_labels, designs: Mapping[str, Mapping[str, str]],
               factors: Sequence[str] = DESIGN_FACTORS) -> dict[str, float | None]:
    """NMI (arithmetic normalisation, scikit-learn's default) between one clustering of the
    models and each design factor; ``None`` for a factor with one value across the models
    (nothing to explain). With few models NMI is biased upwards: a random clustering scores
    above 0, so :func:`structure_report` also gives the chance-adjusted AMI."""
    from sklearn.metrics import normalized_mutual_info_score

    labels = _labels(names, cluster_labels)
    out = {}
    for factor in factors:
        values = factor_values(names, designs, factor)
        out[factor] = (None if len(set(values)) < 2 else
                       float(normalized_mutual_info_score(values, labels)))
    return out


def _labels(names: Sequence[str], cluster_labels) -> np.ndarray:
    labels = np.asarray(cluster_labels)
    if labels.ndim != 1 or len(labels) != len(names):
        raise InvalidInputError(f"cluster labels have shape {labels.shape}; expected "
                                f"({len(names)},), one per model")
    return labels


def leave_one_model_out(names: Sequence[str], vectors, designs: Mapping[str, Mapping[str, str]],
                        factor: str = "upsampling") -> LeaveOneOut:
    """Predict each model's value of ``factor`` from the other models' fingerprints.

    Nearest centroid: the other models' vectors are standardised with their own column
    statistics (the held-out model is scaled with them but adds nothing), averaged per
    factor value, and the held-out model takes the value of the nearest (Euclidean)
    centroid. Centroids rather than 1-NN: with a few models per value, averaging damps
    a single unusual model (an odd seed) instead of copying it.

    A model whose value no other model has cannot be predicted and is listed under
    ``skipped``, not counted wrong. ``chance`` is the mean, over predicted models, of the
    majority value's share among the others (what always guessing that value scores).

    Returns:
        a :class:`LeaveOneOut`; its ``accuracy`` and ``chance`` are ``None`` when every
        model is skipped.
    """
    v = _vectors(vectors)
    if len(names) != len(v):
        raise InvalidInputError(f"{len(names)} names for {len(v)} fingerprint vectors")
    values = np.asarray(factor_values(names, designs, factor))
    counts = Counter(values.tolist())
    predictions, skipped, chances = {}, [], []
    for i, name in enumerate(names):
        if counts[values[i]] < 2:
            skipped.append(name)
            continue
        others = np.arange(len(v)) != i
        mean, std = v[others].mean(0), v[others].std(0)
        std = np.where(std > 0, std, 1.0)
        z_others, z_i = (v[others] - mean) / std, (v[i] - mean) / std
        other_values = values[others]
        options = sorted(set(other_values.tolist()))
        centroids = np.stack([z_others[other_values == o].mean(0) for o in options])
        predicted = options[int(np.argmin(((centroids - z_i) ** 2).sum(1)))]
        predictions[name] = Prediction(true=str(values[i]), predicted=predicted)
        chances.append(max(Counter(other_values.tolist()).values()) / len(other_values))
    n = len(predictions)
    correct = sum(p.correct for p in predictions.values())
    return LeaveOneOut(factor=factor, accuracy=correct / n if n else None,
                       chance=float(np.mean(chances)) if n else None, n_predicted=n,
                       predictions=predictions, skipped=tuple(skipped))


def structure_report(artifacts: Mapping[str, np.ndarray],
                     designs: Mapping[str, Mapping[str, str]], seed: int = 0,
                     factors: Sequence[str] = DESIGN_FACTORS) -> StructureReport:
    """NMI of fingerprint clusters against each design factor, and a leave-one-model-out
    prediction of upsampling (``.to_dict()`` is JSON-able).

    For each factor with ``k >= 2`` values among the models, the fingerprints are clustered
    into ``k`` clusters by each method of :data:`CLUSTER_METHODS` and compared with it by
    NMI and by AMI (adjusted for chance: about 0 for a random clustering, which NMI is not
    with few models). A factor with a single value is reported with ``n_values`` 1 and no
    scores. ``leave_one_out`` is :func:`leave_one_model_out` for ``upsampling``.
    """
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    names, vectors = fingerprint_vectors(artifacts)
    factors = list(factors)
    for factor in factors:  # refuse a missing design or factor before any clustering
        factor_values(names, designs, factor)
    table = {}
    for factor in factors:
        values = factor_values(names, designs, factor)
        k = len(set(values))
        if k < 2:
            table[factor] = FactorScores(n_values=k)
            continue
        nmi, ami, clusters = {}, {}, {}
        for method in CLUSTER_METHODS:
            labels = cluster(vectors, k, method, seed)
            nmi[method] = float(normalized_mutual_info_score(values, labels))
            ami[method] = float(adjusted_mutual_info_score(values, labels))
            clusters[method] = dict(zip(names, labels.tolist()))
        table[factor] = FactorScores(n_values=k, nmi=nmi, ami=ami, clusters=clusters)
    return StructureReport(models=tuple(names), fingerprint=FINGERPRINT,
                           dim=int(vectors.shape[1]), seed=seed, nmi=table,
                           leave_one_out=leave_one_model_out(names, vectors, designs,
                                                             "upsampling"))


def tsne_png(vectors_per_sample, labels: Sequence[str], path: str | Path, *,
             per_model: int = 100, seed: int = 0, title: str = "Artifacts (t-SNE)") -> Path:
    """Scatter of individual artifacts in 2-D t-SNE, one colour per model; returns ``path``.

    Args:
        vectors_per_sample: ``(N, D)`` or ``(N, C, H, W)`` artifacts (flattened).
        labels: ``(N,)`` model of each artifact.
        path: the PNG, written atomically.
        per_model: at most this many artifacts per model, drawn at random with ``seed``.
        seed: subsample and ``TSNE(random_state=seed)``.

    Vectors longer than 50 are first reduced to 50 principal components (the usual
    t-SNE preprocessing: it denoises and makes the neighbour search cheap). Perplexity is
    ``min(30, (n - 1) / 3)`` for ``n`` plotted points.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from core.figures import scatter_png

    x = _finite_array(vectors_per_sample, "artifacts")
    if x.ndim < 2:
        raise InvalidInputError(f"artifacts must be (N, D) or (N, C, H, W), got shape {x.shape}")
    x = x.reshape(x.shape[0], -1)
    lab = np.asarray([str(s) for s in labels])
    if len(lab) != len(x):
        raise InvalidInputError(f"{len(lab)} labels for {len(x)} artifacts; one per artifact")
    models = list(dict.fromkeys(lab.tolist()))
    if len(models) < 2:
        raise InvalidInputError(f"t-SNE needs artifacts of at least 2 models, got {len(models)}")
    check_int("per_model", per_model)
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([
        rng.choice(idx, min(per_model, len(idx)), replace=False)
        for idx in (np.flatnonzero(lab == m) for m in models)]))
    x, lab = x[keep], lab[keep]
    if len(x) < 4:
        raise InvalidInputError(f"t-SNE needs at least 4 artifacts, got {len(x)}")
    if x.shape[1] > 50 and len(x) > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    xy = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca",
              random_state=seed).fit_transform(x)
    return scatter_png(xy, lab, path, title=title)
