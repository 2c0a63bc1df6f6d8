"""Who made an image: nearest known generator by cosine similarity, and an "unknown"
threshold calibrated on held-out models. Pure functions on ``(N, D)`` unit embeddings.

The gallery holds, per known model, the unit mean of its first ``shots`` images (the
reference images); the rest of its images are held back to calibrate and to test.
The threshold on the best similarity is set so that a fraction ``far`` of images of
models *not in the gallery* would still be attributed to one (false accepts). Those
models are simulated by leaving each gallery model out in turn: its held-back images
against the other models' centroids are impostors (leave-one-model-out). The measured
rates come back with the threshold, so the page shows what the verdict is worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInputError

UNKNOWN = "unknown"
SHOTS = 10
TARGET_FAR = 0.05


@dataclass(frozen=True, eq=False)
class Gallery:
    """Known models: ``names`` (M), ``centroids`` ``(M, D)`` unit means of ``shots``
    reference images each; ``held`` ``(H, D)`` the other images with ``held_labels``."""

    names: tuple[str, ...]
    centroids: np.ndarray
    held: np.ndarray
    held_labels: tuple[str, ...]
    shots: int


def build_gallery(embeddings: np.ndarray, labels: Sequence[str], shots: int = SHOTS,
                  leave_out: Sequence[str] = ()) -> Gallery:
    """Per model (in order of first appearance, ``leave_out`` excepted) its first
    ``shots`` rows are references, the rest held back."""
    lab = np.asarray(labels)
    names = [n for n in dict.fromkeys(labels) if n not in set(leave_out)]
    if len(names) < 2:
        raise InvalidInputError(f"the gallery needs at least 2 known models; it has "
                                f"{len(names)}")
    cents, held, held_lab = [], [], []
    for n in names:
        rows = np.flatnonzero(lab == n)
        ref = embeddings[rows[:shots]].mean(0)
        cents.append(ref / max(np.linalg.norm(ref), 1e-12))
        held.append(embeddings[rows[shots:]])
        held_lab += [n] * len(rows[shots:])
    return Gallery(tuple(names), np.stack(cents).astype(np.float32),
                   np.concatenate(held).astype(np.float32), tuple(held_lab), shots)


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
    """Best similarity of each held-back image to the centroids of the *other* models."""
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
    """Nearest ``k`` gallery models of each query row, and the verdict."""
    sim = np.asarray(queries, dtype=np.float32) @ g.centroids.T
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
