"""One protocol for every method: what is drawn, with which seed, and what is measured.

Every method meets the same draws: the verification pairs, each k-shot gallery and each
open-set fold come from generators seeded by ``(seed, task, ...)`` alone, never by the
method, so differences between rows are the methods' own. The verification threshold
is chosen on validation models (:func:`calibrate`), never on the test set: a test set's
labels reach no choice the protocol makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core.bench import metrics
from core.errors import InvalidInputError, check_int, check_real

# Seeds of each task's generator: (protocol seed, TASK, ...) keeps the tasks' draws apart.
_PAIRS, _OPEN, _SHOTS, _CALIBRATE = 0, 1, 2, 3


@dataclass(frozen=True)
class Protocol:
    """What the benchmark measures.

    Attributes:
        pairs: verification pairs per set (half same-model).
        shots: gallery sizes of closed-set identification.
        episodes: gallery draws per ``k`` (results are their mean).
        open_shots: gallery size of the open-set folds.
        open_fraction: share of the models left out of the gallery in each fold.
        far: false accept rate the threshold is set to on validation models.
        seed: seed of every draw.
    """

    pairs: int = 10_000
    shots: tuple[int, ...] = (1, 5, 10)
    episodes: int = 5
    open_shots: int = 10
    open_fraction: float = 1 / 3
    far: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("pairs", self.pairs, 2, 10**7)
        object.__setattr__(self, "shots", tuple(self.shots))
        if not self.shots:
            raise InvalidInputError("give at least one shot count")
        for k in self.shots:
            check_int("shots", k, 1, 10**5)
        check_int("episodes", self.episodes, 1, 1000)
        check_int("open_shots", self.open_shots, 1, 10**5)
        check_real("open_fraction", self.open_fraction, 0.01, 0.99)
        check_real("far", self.far, 1e-6, 0.5)
        check_int("seed", self.seed, 0, 2**32 - 1)

    @property
    def needed(self) -> int:
        """Images each model needs: one query beside the largest gallery."""
        return max(*self.shots, self.open_shots) + 1

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "shots": list(self.shots), "episodes": self.episodes,
                "open_shots": self.open_shots, "open_fraction": round(self.open_fraction, 4),
                "far": self.far, "seed": self.seed}


def check_set(name: str, labels: np.ndarray, models, protocol: Protocol) -> None:
    """Refuse, in one line, a set the protocol cannot measure: fewer than 2 models, or a
    model with fewer images than the largest gallery plus one query."""
    counts = np.bincount(labels, minlength=len(models))
    if len(models) < 2:
        raise InvalidInputError(f"{name}: one model ({models[0]}); the benchmark needs "
                                "images of at least 2 models")
    short = [(m, int(n)) for m, n in zip(models, counts) if n < protocol.needed]
    if short:
        worst = min(short, key=lambda s: s[1])
        raise InvalidInputError(
            f"{name}: {len(short)} model(s) have fewer than {protocol.needed} images "
            f"(k+1 for k = {protocol.needed - 1} shots); fewest: {worst[0]} with {worst[1]}; "
            "lower --shots / --open-shots or add images")


def calibrate(e: np.ndarray, labels: np.ndarray, protocol: Protocol) -> float:
    """The similarity threshold at ``protocol.far`` on validation features ``e``: only
    the different-model pairs drawn among the validation models are used."""
    idx, same = metrics.draw_pairs(labels, protocol.pairs, protocol.rng(_CALIBRATE))
    return metrics.threshold_at_far(metrics.pair_similarity(e, idx)[~same], protocol.far)


@dataclass(frozen=True)
class Scores:
    """One method on one set: verification, k-shot identification, open set, and (when
    the models' designs are known) relationship per design field."""

    verification: dict
    identification: dict[int, dict]
    open_set: dict | None
    relationship: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"verification": self.verification,
                "identification": {str(k): v for k, v in self.identification.items()},
                "open_set": self.open_set, "relationship": self.relationship}


def _mean(dicts: list[dict]) -> dict:
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}


def evaluate(e: np.ndarray, labels: np.ndarray, protocol: Protocol, *,
             threshold: float | None, models=(), designs: Mapping | None = None) -> Scores:
    """Every task on unit features ``e`` ``(N, D)`` with integer ``labels`` ``(N,)``."""
    ver = metrics.verification(e, labels, pairs=protocol.pairs, threshold=threshold,
                               rng=protocol.rng(_PAIRS))
    ident = {k: _mean([metrics.identification(e, labels, shots=k,
                                              rng=protocol.rng(_SHOTS, k, ep))
                       for ep in range(protocol.episodes)]) for k in protocol.shots}
    n_models = len(np.unique(labels))
    opened = (metrics.open_set(e, labels, shots=protocol.open_shots,
                               fraction=protocol.open_fraction, rng=protocol.rng(_OPEN))
              if n_models >= 3 else None)
    rel = relationship(e, labels, models, designs) if designs else {}
    return Scores(ver, ident, opened, rel)


def probe(features: np.ndarray, labels: np.ndarray, protocol: Protocol) -> dict[int, dict]:
    """The supervised reference on the galleries :func:`evaluate` draws: per ``k``, a
    logistic regression fitted on the ``k`` shots of every model."""
    from core.bench.baselines import linear_probe

    return {k: _mean([linear_probe(features, labels, metrics.split_shots(
        labels, k, protocol.rng(_SHOTS, k, ep))) for ep in range(protocol.episodes)])
        for k in protocol.shots}


def relationship(e: np.ndarray, labels: np.ndarray, models,
                 designs: Mapping[str, Mapping[str, str]]) -> dict[str, dict]:
    """Per design field with at least 2 values among the models, and fewer values than
    models (else every clustering scores NMI 1 and no model has a peer): NMI between the field
    and an agglomerative clustering (Ward) of the models' mean features into as many
    clusters as the field has values, and leave-one-model-out nearest-centroid
    accuracy (:func:`core.manifold.structure.leave_one_model_out`) beside its chance."""
    from sklearn.metrics import normalized_mutual_info_score

    from core.manifold.structure import cluster, factor_values, leave_one_model_out

    names = list(models)
    vectors = metrics.centroids(e, labels, np.arange(len(names)))
    fields = sorted({f for d in designs.values() for f in d})
    out = {}
    for name in fields:
        if not all(name in designs.get(m, {}) for m in names):
            continue
        values = factor_values(names, designs, name)
        k = len(set(values))
        if not 2 <= k < len(names):  # one value, or one model per value: nothing to learn
            continue
        clusters = cluster(vectors, k, "agglomerative")
        lomo = leave_one_model_out(names, vectors, designs, name)
        out[name] = {"values": k, "nmi": float(normalized_mutual_info_score(values, clusters)),
                     "lomo_accuracy": lomo.accuracy, "lomo_chance": lomo.chance,
                     "lomo_models": lomo.n_predicted}
    return out
