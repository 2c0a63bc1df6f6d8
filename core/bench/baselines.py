"""What the transfer benchmark compares: extractors and the simplest baselines, each a
:class:`Method` that turns images ``(N, 3, S, S)`` in ``[-1, 1]`` into features
``(N, D)`` compared by cosine similarity.

Baselines (features with no training on any model):
  * ``raw``: the pixels themselves;
  * ``spectrum``: the log magnitude spectrum of a 3x3 median residual, mean-pooled over
    the colour channels (Marra et al.'s residual, Durall et al.'s spectrum);
  * ``input-spectrum``: the extractor's own input, the blur-residual log spectrum per
    channel on a 32-px frequency grid (:func:`core.extractor.hybrid.input_spectrum`):
    what the network reads, without the network;
  * ``radial``: the image's azimuthally averaged log spectrum plus the power law fitted
    to its tail above 1/8 cycles/pixel (decay, level, top, misfit; Dzanic et al.);
  * ``untrained``: the shipped extractor's network with random weights (seeded): what
    the architecture gives before any training.

Before the cosine, what every image shares is taken out, without labels (a
:class:`Method`'s ``normalise``): the residual spectrum loses each image's own mean
level (as the extractor's input does: the fingerprint lies in the spectrum's shape),
raw pixels the set's mean image, and the radial features, whose units differ (dB, an
exponent), are standardised per feature over the set. Extractor embeddings are compared
as ``fpx verify`` and ``identify`` compare them: unit vectors, as they are. An
extractor's *hybrid* method (:func:`hybrid_method`) puts its unit embedding beside its
unit input spectrum (:mod:`core.extractor.hybrid`).

The supervised linear probe (:func:`linear_probe`) is an upper reference, not a
baseline: it learns from the test models' own gallery labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import InvalidInputError

BASELINES = ("raw", "spectrum", "input-spectrum", "radial", "untrained")
NORMALISE = ("none", "image", "centre", "standardise")
TAIL_FREQUENCY = 0.125  # cycles/pixel: the power law is fitted above this (Dzanic's tail)


@dataclass(frozen=True)
class Method:
    """A way to turn images into comparable features.

    Attributes:
        name: short key (``extractor``, ``spectrum`` ...), unique in a run.
        label: what tables print.
        features: ``(N, 3, S, S)`` images -> ``(N, D)`` features.
        normalise: before the cosine, ``none``; ``image``: each row minus its own
            mean; ``centre``: minus the set's mean row; ``standardise``: per feature,
            minus the set's mean and over the set's standard deviation.
        kind: ``extractor`` or ``baseline``.
    """

    name: str
    label: str
    features: Callable[[torch.Tensor], torch.Tensor]
    normalise: str
    kind: str

    def __post_init__(self) -> None:
        if self.normalise not in NORMALISE:
            raise InvalidInputError(f"normalise = {self.normalise!r}; valid: "
                                    f"{', '.join(NORMALISE)}")


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], batch: int = 256):
    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([fn(x[i:i + batch]).float().cpu() for i in range(0, len(x), batch)])
    return run


def raw_features(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, S, S) -> (N, 3 S S)``: the pixels."""
    return x.reshape(len(x), -1).float()


def spectrum_features(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, S, S) -> (N, S S)``: log power (dB, i.e. ``20 log10 |FFT|``) of the 3x3
    median residual, averaged over the colour channels."""
    from core.spectrum import power_spectrum, residual

    return power_spectrum(residual(x.float(), "median")).mean(1).reshape(len(x), -1)


def radial_features(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, S, S) -> (N, S // 2 + 5)``: the radial profile (dB) of the grey image's
    spectrum, then the power-law fit of its tail: decay exponent (x10, dB per decade),
    level and top (dB) and misfit (dB)."""
    from core.spectrum import power_law_fit, power_spectrum, radial_profile

    grey = x.float().mean(1, keepdim=True)
    profile = radial_profile(power_spectrum(grey)[:, 0])
    fit = power_law_fit(profile, min_frequency=TAIL_FREQUENCY)
    tail = torch.stack([10 * fit[0], fit[1], fit[2], fit[3]], 1)
    return torch.cat([profile.power, tail], 1)


def extractor_features(model, small: str = "spectrum") -> Callable[[torch.Tensor], torch.Tensor]:
    """The extractor's unit embeddings by the size policy
    (:func:`core.extractor.sizes.embed_any`: tiles above its crop size; below it, its
    log spectrum resampled onto the trained grid, or with ``small="native"`` the image
    fed as it is)."""
    from core.extractor.sizes import embed_any

    model.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        with torch.no_grad():
            return torch.cat([embed_any(model, x[i:i + 128].to(device), small=small)
                              .float().cpu() for i in range(0, len(x), 128)])
    return run


def input_spectrum_features(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, S, S) -> (N, 3 * 32 * 32)``: the extractor's input spectrum
    (:func:`core.extractor.hybrid.input_spectrum`)."""
    from core.extractor.hybrid import input_spectrum

    return input_spectrum(x)


def hybrid_method(model, name: str, small: str = "spectrum", metric=None) -> Method:
    """An extractor's hybrid fingerprint (:mod:`core.extractor.hybrid`): its unit embedding
    by the size policy (``small`` as in :func:`extractor_features`) beside its unit input
    spectrum; through ``metric`` (:class:`core.extractor.metric.HybridMetric`, learnt on
    synthetic models only) when given."""
    from core.extractor.hybrid import hybrid

    embed = extractor_features(model, small)
    spectrum = _batched(input_spectrum_features)

    def run(x: torch.Tensor) -> torch.Tensor:
        f = hybrid(embed(x).numpy(), spectrum(x).numpy())
        return torch.from_numpy(metric(f) if metric is not None else f)
    native = small == "native"
    key = f"{name}{'_native' if native else ''}+spectrum{'+metric' if metric else ''}"
    label = (f"extractor {name}{' (fed natively)' if native else ''} + its input spectrum"
             f"{', synthetic metric' if metric is not None else ''}")
    return Method(key, label, run, "none", "extractor")


def load_method(folder: str | Path, name: str, device: str | torch.device = "cpu", *,
                small: str = "spectrum") -> Method:
    """An exported extractor (``fpx train``'s ``extractor/`` folder) as a method; with
    ``small="native"``, images under its crop size are fed as they are."""
    from core.extractor import load_extractor

    return extractor_method(load_extractor(folder, device), name, small)


def extractor_method(model, name: str, small: str = "spectrum") -> Method:
    """A loaded extractor's embeddings as a method (``small`` as in
    :func:`extractor_features`)."""
    if small == "native":
        return Method(f"{name}_native", f"extractor {name}, fed natively",
                      extractor_features(model, "native"), "none", "extractor")
    return Method(name, f"extractor {name}", extractor_features(model, small), "none",
                  "extractor")


def untrained_method(reference: str | Path, seed: int,
                     device: str | torch.device = "cpu") -> Method:
    """The network of the extractor in ``reference`` with random weights drawn with
    ``seed`` (batch-norm statistics at their initial values)."""
    from core.extractor import Extractor, load_extractor
    from core.runtime import cpu_seeded

    config = load_extractor(reference).config
    with cpu_seeded(seed):
        model = Extractor(config)
    return Method("untrained", "same network, untrained", extractor_features(
        model.to(device).eval()), "none", "baseline")


def baseline_methods(names, reference: str | Path, seed: int,
                     device: str | torch.device = "cpu") -> list[Method]:
    """The baselines named (a subset of :data:`BASELINES`, in that order)."""
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise InvalidInputError(f"unknown baseline(s) {unknown}; valid: {', '.join(BASELINES)}")
    table = {"raw": Method("raw", "raw pixels", raw_features, "centre", "baseline"),
             "spectrum": Method("spectrum", "residual log spectrum", _batched(
                 spectrum_features), "image", "baseline"),
             "input-spectrum": Method("input-spectrum", "blur-residual log spectrum (the "
                                      "extractor's input)", _batched(input_spectrum_features),
                                      "none", "baseline"),
             "radial": Method("radial", "radial profile + power-law tail", _batched(
                 radial_features), "standardise", "baseline")}
    out = []
    for name in BASELINES:
        if name in names:
            out.append(untrained_method(reference, seed, device) if name == "untrained"
                       else table[name])
    return out


def linear_probe(features: np.ndarray, labels: np.ndarray, gallery: np.ndarray) -> dict:
    """Supervised reference: logistic regression fitted on the gallery rows of
    ``features`` ``(N, D)`` (standardised with the gallery's statistics) and their
    labels, scored on the other rows: accuracy and macro-F1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    x = np.asarray(features, np.float64)
    mean, std = x[gallery].mean(0), x[gallery].std(0)
    z = (x - mean) / np.where(std > 0, std, 1.0)
    clf = LogisticRegression(C=1.0, max_iter=500)
    clf.fit(z[gallery], labels[gallery])
    pred = clf.predict(z[~gallery])
    truth = labels[~gallery]
    return {"accuracy": float((pred == truth).mean()),
            "macro_f1": float(f1_score(truth, pred, average="macro",
                                       labels=np.unique(labels)))}
