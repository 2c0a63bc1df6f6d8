"""The records of :mod:`core.manifold.structure`: what ``fpx structure`` reports, as
frozen dataclasses with exact JSON round trips (``to_dict`` / ``from_dict``).

:class:`StructureReport` holds, per design factor, the :class:`FactorScores` of the
clusters against it, and the :class:`LeaveOneOut` prediction of one factor for each
held-out model (:class:`Prediction`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import InvalidInputError, check_int, check_real
from core.records import check_text, exact_fields


@dataclass(frozen=True)
class Prediction:
    """One held-out model's value of a factor: the ``true`` one and the ``predicted``."""

    true: str
    predicted: str

    def __post_init__(self) -> None:
        check_text(self, "true", "predicted")

    @property
    def correct(self) -> bool:
        return self.true == self.predicted

    def to_dict(self) -> dict:
        return {"true": self.true, "predicted": self.predicted}


@dataclass(frozen=True)
class LeaveOneOut:
    """Leave-one-model-out prediction of one design factor (:func:`leave_one_model_out`).

    Attributes:
        factor: the design factor predicted (``upsampling`` ...).
        accuracy: share of predicted models whose value came out right, in ``[0, 1]``;
            ``None`` when no model could be predicted.
        chance: mean share of the majority value among the others (what always guessing
            it scores), in ``[0, 1]``; ``None`` likewise.
        n_predicted: how many models were predicted (``len(predictions)``).
        predictions: model name -> :class:`Prediction`, for each predicted model.
        skipped: models whose value no other model has (not predictable, not counted).
    """

    factor: str
    accuracy: float | None
    chance: float | None
    n_predicted: int
    predictions: Mapping[str, Prediction]
    skipped: tuple[str, ...]

    def __post_init__(self) -> None:
        check_text(self, "factor")
        check_int("n_predicted", self.n_predicted, 0)
        if not isinstance(self.predictions, Mapping) or not all(
                isinstance(p, Prediction) for p in self.predictions.values()):
            raise InvalidInputError("predictions must map model names to Predictions")
        if len(self.predictions) != self.n_predicted:
            raise InvalidInputError(f"n_predicted is {self.n_predicted} but "
                                    f"{len(self.predictions)} predictions are given")
        for name in ("accuracy", "chance"):
            value = getattr(self, name)
            if self.n_predicted == 0 and value is not None:
                raise InvalidInputError(f"{name} must be None when no model is predicted, "
                                        f"got {value!r}")
            if self.n_predicted:
                object.__setattr__(self, name, _number(name, value, 0.0, 1.0))
        object.__setattr__(self, "predictions", dict(self.predictions))
        object.__setattr__(self, "skipped", _string_tuple(self.skipped, "skipped"))
        if set(self.predictions) & set(self.skipped):
            raise InvalidInputError("a model cannot be both predicted and skipped")

    def to_dict(self) -> dict:
        return {"factor": self.factor, "accuracy": self.accuracy, "chance": self.chance,
                "n_predicted": self.n_predicted,
                "predictions": {n: p.to_dict() for n, p in self.predictions.items()},
                "skipped": list(self.skipped)}

    @classmethod
    def from_dict(cls, d: dict) -> LeaveOneOut:
        d = dict(exact_fields(cls, d, "a leave-one-out record"))
        if not isinstance(d["predictions"], dict):
            raise InvalidInputError("predictions must be a JSON object")
        d["predictions"] = {n: Prediction(**exact_fields(Prediction, p, "a prediction"))
                            for n, p in d["predictions"].items()}
        return cls(**d)


@dataclass(frozen=True)
class FactorScores:
    """How one clustering per method matches one design factor (:func:`structure_report`).

    Attributes:
        n_values: distinct values of the factor among the models (``k``).
        nmi, ami: method -> NMI (in ``[0, 1]``) / chance-adjusted AMI (about 0 for a
            random clustering, may be negative) of the ``k`` clusters; ``None`` when
            ``k == 1`` (one value: nothing to cluster).
        clusters: method -> {model name: cluster index}; ``None`` when ``k == 1``.
    """

    n_values: int
    nmi: Mapping[str, float] | None = None
    ami: Mapping[str, float] | None = None
    clusters: Mapping[str, Mapping[str, int]] | None = None

    def __post_init__(self) -> None:
        k = check_int("n_values", self.n_values)
        parts = (self.nmi, self.ami, self.clusters)
        if k == 1:
            if any(p is not None for p in parts):
                raise InvalidInputError("a factor with one value has no nmi, ami or clusters")
            return
        if not all(isinstance(p, Mapping) and p for p in parts) or \
                not set(self.nmi) == set(self.ami) == set(self.clusters):
            raise InvalidInputError(f"a factor with {k} values needs nmi, ami and clusters "
                                    "for the same clustering methods")
        object.__setattr__(self, "nmi", {m: _number(f"nmi[{m!r}]", v, 0.0, 1.0)
                                         for m, v in self.nmi.items()})
        object.__setattr__(self, "ami", {m: _number(f"ami[{m!r}]", v, -math.inf, 1.0)
                                         for m, v in self.ami.items()})
        clusters = {}
        for method, by_model in self.clusters.items():
            if not isinstance(by_model, Mapping):
                raise InvalidInputError(f"clusters[{method!r}] must map models to clusters")
            clusters[method] = {name: check_int(f"clusters[{method!r}][{name!r}]", c, 0)
                                for name, c in by_model.items()}
        object.__setattr__(self, "clusters", clusters)

    def to_dict(self) -> dict:
        """``{"n_values"}``, plus ``nmi``, ``ami``, ``clusters`` when there are scores."""
        if self.n_values == 1:
            return {"n_values": 1}
        return {"n_values": self.n_values, "nmi": dict(self.nmi), "ami": dict(self.ami),
                "clusters": {m: dict(c) for m, c in self.clusters.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> FactorScores:
        if not isinstance(d, dict) or not {"n_values"} <= set(d) <= {f.name for f in
                                                                    dataclasses.fields(cls)}:
            raise InvalidInputError(f"a factor's scores are n_values (and nmi, ami, clusters), "
                                    f"got {d!r:.80}")
        return cls(**d)


@dataclass(frozen=True)
class StructureReport:
    """Do ``M`` models' fingerprints group by their design? (:func:`structure_report`)

    Attributes:
        models: the model names, in the order of the fingerprint vectors.
        fingerprint: what a fingerprint vector is (:data:`FINGERPRINT`).
        dim: length of one fingerprint vector (twice the artifact's size).
        seed: the clustering seed (k-means).
        nmi: design factor -> :class:`FactorScores`, in the order asked for.
        leave_one_out: the leave-one-model-out prediction of ``upsampling``.

    :meth:`to_dict` is what ``fpx structure --json`` prints per space.
    """

    models: tuple[str, ...]
    fingerprint: str
    dim: int
    seed: int
    nmi: Mapping[str, FactorScores]
    leave_one_out: LeaveOneOut

    def __post_init__(self) -> None:
        models = _string_tuple(self.models, "models")
        if len(models) < 2 or len(set(models)) != len(models):
            raise InvalidInputError(f"a structure report needs at least 2 distinct models, "
                                    f"got {list(models)}")
        object.__setattr__(self, "models", models)
        check_text(self, "fingerprint")
        check_int("dim", self.dim)
        check_int("seed", self.seed, 0)
        if not isinstance(self.nmi, Mapping) or not all(
                isinstance(f, str) and isinstance(s, FactorScores) for f, s in self.nmi.items()):
            raise InvalidInputError("nmi must map design factors to FactorScores")
        object.__setattr__(self, "nmi", dict(self.nmi))
        loo = self.leave_one_out
        if not isinstance(loo, LeaveOneOut):
            raise InvalidInputError(f"leave_one_out must be a LeaveOneOut, not {type(loo)}")
        if set(loo.predictions) | set(loo.skipped) != set(models):
            raise InvalidInputError("leave_one_out must predict or skip every model")

    def to_dict(self) -> dict:
        return {"models": list(self.models), "fingerprint": self.fingerprint,
                "dim": self.dim, "seed": self.seed,
                "nmi": {f: s.to_dict() for f, s in self.nmi.items()},
                "leave_one_out": self.leave_one_out.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> StructureReport:
        d = dict(exact_fields(cls, d, "a structure report"))
        if not isinstance(d["nmi"], dict):
            raise InvalidInputError("nmi must be a JSON object of factors")
        d.update(nmi={f: FactorScores.from_dict(s) for f, s in d["nmi"].items()},
                 leave_one_out=LeaveOneOut.from_dict(d["leave_one_out"]))
        return cls(**d)


def _string_tuple(values, what: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not all(isinstance(v, str) for v in values):
        raise InvalidInputError(f"{what} must be a list of model names")
    return tuple(values)


def _number(name: str, value, lo: float, hi: float) -> float:
    """``value`` as a float if it is a finite real number in ``[lo, hi]`` (up to 1e-9:
    scikit-learn's NMI can overshoot 1 by rounding)."""
    return check_real(name, value, lo, hi, slack=1e-9)
