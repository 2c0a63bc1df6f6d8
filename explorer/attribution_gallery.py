"""Who made an image: nearest known generator by cosine similarity, and an "unknown"
threshold calibrated on held-out models. Pure functions on ``(N, D)`` feature rows
(:mod:`explorer.attribution_features`: the extractor's embedding and the residual
spectrum).

The gallery holds, per known model, the unit mean of its first ``shots`` images (the
reference images); the rest of its images are held back to calibrate and to test.
Every row is first mapped by a within-class whitening learnt from the reference images
alone, its shrinkage chosen by cross-validation inside them
(:func:`core.extractor.whitening.choose_whitening`); queries go through the same map, and
cosines, centroids and the threshold all live in that space.
The threshold on the best similarity is set so that a fraction ``far`` of images of
models *not in the gallery* would still be attributed to one (false accepts). Those
models are simulated by leaving each gallery model out in turn: its held-back images
against the other models' centroids are impostors (leave-one-model-out). The model left
out is left out of the whitening too (learnt again from the other models' references,
at the gallery's shrinkage): a whitening learnt with a model's references is shaped to
tell that model from the others, so impostors scored in the gallery's own space set
the threshold too low for a model it has never seen (measured on the shipped zoo: a
zoo entry left out of the gallery accepted at 0.248 with a 0.05 target, 0.077 with the
whitening learnt again). The measured rates come back with the threshold, so the page
shows what the verdict is worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInputError
from core.extractor.whitening import SHRINKAGES, Whitening, choose_whitening, fit_whitening, unit

UNKNOWN = "unknown"
SHOTS = 10
TARGET_FAR = 0.05


@dataclass(frozen=True, eq=False)
class Gallery:
    """Known models: ``names`` (M), ``centroids`` ``(M, d)`` unit means of ``shots``
    reference images each; ``held`` ``(H, d)`` the other images with ``held_labels``;
    both in the ``transform``'s space (:meth:`project` maps features there);
    ``impostors`` ``(H,)``: :func:`impostor_scores`."""

    names: tuple[str, ...]
    centroids: np.ndarray
    held: np.ndarray
    held_labels: tuple[str, ...]
    shots: int
    transform: Whitening = Whitening()
    impostors: np.ndarray | None = None

    def project(self, features: np.ndarray) -> np.ndarray:
        return self.transform(features)


def build_gallery(features: np.ndarray, labels: Sequence[str], shots: int = SHOTS,
                  leave_out: Sequence[str] = (),
                  shrinkages: Sequence[float] = SHRINKAGES) -> Gallery:
    """Per model (in order of first appearance, ``leave_out`` excepted) its first
    ``shots`` rows are references, the rest held back. The whitening is learnt from
    the references, its shrinkage chosen among ``shrinkages`` (none: no whitening)."""
    lab = np.asarray(labels)
    names = [n for n in dict.fromkeys(labels) if n not in set(leave_out)]
    if len(names) < 2:
        raise InvalidInputError(f"the gallery needs at least 2 known models; it has "
                                f"{len(names)}")
    ref_rows = [np.flatnonzero(lab == n)[:shots] for n in names]
    held_rows = [np.flatnonzero(lab == n)[shots:] for n in names]
    refs = np.concatenate(ref_rows)
    transform = choose_whitening(features[refs], lab[refs], shrinkages)
    cents = [transform(features[rows]).mean(0) for rows in ref_rows]
    cents = [c / max(np.linalg.norm(c), 1e-12) for c in cents]
    held = np.concatenate(held_rows)
    g = Gallery(tuple(names), np.stack(cents).astype(np.float32),
                transform(features[held]) if len(held) else
                np.zeros((0, len(cents[0])), np.float32),
                tuple(lab[held].tolist()), shots, transform)
    if transform.matrix is None:
        return g
    imp = []
    for i in range(len(names)):
        others = [j for j in range(len(names)) if j != i]
        if not len(held_rows[i]):
            continue
        rows = np.concatenate([ref_rows[j] for j in others])
        t = fit_whitening(features[rows], lab[rows], transform.shrinkage)
        cents_i = unit(np.stack([t(features[ref_rows[j]]).mean(0) for j in others]))
        imp.append((t(features[held_rows[i]]) @ cents_i.T).max(1))
    return Gallery(*[getattr(g, f) for f in ("names", "centroids", "held", "held_labels",
                                             "shots", "transform")],
                   np.concatenate(imp) if imp else np.zeros(0, np.float32))


@dataclass(frozen=True)
class Calibration:
    """The "unknown" threshold and what it is worth.

    Attributes:
        threshold: best cosine similarity under which an image is "unknown".
        target_far: the false-accept rate asked for.
        far: measured share of held-out-model images (leave-one-model-out) at or above
            the threshold; impostors: their number.
        accept: share of held-back images of known models at or above the threshold
            and attributed to their own model; correct: share attributed to their own
            model whatever the threshold (closed-set accuracy); known: their number.
    """

    threshold: float
    target_far: float
    far: float
    impostors: int
    accept: float
    correct: float
    known: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


def impostor_scores(g: Gallery) -> np.ndarray:
    """Best similarity of each held-back image to the centroids of the *other* models,
    in the whitening learnt without its own model (module docstring)."""
    if g.impostors is not None:
        return g.impostors
    lab = np.asarray(g.held_labels)
    sim = g.held @ g.centroids.T
    own = lab[:, None] == np.asarray(g.names)[None, :]
    return np.where(own, -np.inf, sim).max(1)


def calibrate(g: Gallery, target_far: float = TARGET_FAR) -> Calibration:
    if not 0 < target_far < 1:
        raise InvalidInputError(f"false-accept rate {target_far} must lie in (0, 1)")
    if len(g.held) == 0:
        raise InvalidInputError(f"no images held back to calibrate on: each model needs more "
                                f"than {g.shots} images")
    imp = impostor_scores(g)
    threshold = float(np.quantile(imp, 1 - target_far, method="higher"))
    sim = g.held @ g.centroids.T
    pred = np.asarray(g.names)[sim.argmax(1)]
    right = pred == np.asarray(g.held_labels)
    return Calibration(threshold, float(target_far), float((imp >= threshold).mean()),
                       int(len(imp)), float((right & (sim.max(1) >= threshold)).mean()),
                       float(right.mean()), int(len(right)))


@dataclass(frozen=True)
class Verdict:
    """One image: its ``nearest`` models ``(name, cosine)``, best first, and the
    ``answer`` (the best model, or :data:`UNKNOWN` under the threshold)."""

    name: str
    nearest: tuple[tuple[str, float], ...]
    answer: str

    def to_dict(self) -> dict:
        return {"image": self.name, "answer": self.answer,
                "nearest": [{"model": m, "cosine": round(s, 4)} for m, s in self.nearest]}


def verdicts(queries: np.ndarray, names: Sequence[str], g: Gallery, threshold: float,
             k: int = 5) -> list[Verdict]:
    """Nearest ``k`` gallery models of each query row (features, mapped by the
    gallery's transform), and the verdict."""
    sim = g.project(queries) @ g.centroids.T
    out = []
    for name, row in zip(names, sim):
        order = np.argsort(-row, kind="stable")[:k]
        near = tuple((g.names[i], float(row[i])) for i in order)
        out.append(Verdict(name, near, near[0][0] if near[0][1] >= threshold else UNKNOWN))
    return out


def summary(found: Sequence[Verdict]) -> str:
    """One line over a set: the most frequent answer and how many images gave it."""
    if not found:
        return "no images"
    answers = [v.answer for v in found]
    top = max(dict.fromkeys(answers), key=answers.count)
    return f"{top} ({answers.count(top)} of {len(answers)} image{'s' * (len(answers) != 1)})"
