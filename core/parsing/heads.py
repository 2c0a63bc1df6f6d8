"""Design-choice heads (model parsing): one linear softmax per design field over
fixed-length features (:mod:`core.parsing.features`), fitted on synthetic models whose
design is known, applied to a *set* of images of an unknown generator.

For images ``i = 1..n`` of one generator with per-image class probabilities
``p_i(c | field)``, the set's prediction is their mean ``p(c) = 1/n sum_i p_i(c)``: a
probability per value that stays calibrated-looking as ``n`` grows (the product of the
``p_i`` would be overconfident, the images are not independent evidence).

Stored as ``heads.safetensors`` (standardisation and weights) plus ``heads.json`` (format,
fields, vocabularies, feature kind, the extractor's identity, what made it); read back
checked (shapes against the record, finite values), never unpickled.

    heads = fit_heads(features, {"upsampling": labels, ...}, kind="extractor")
    heads.predict_set(features_of_one_generator)  # {"upsampling": {"transposed": 0.8, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from core.errors import InvalidInputError
from core.parsing.features import FEATURES
from core.parsing.labels import FIELDS
from core.runtime import atomic_path, atomic_write

HEADS_FORMAT = "fpx.design_heads/1"
MAX_CLASSES = 64
MAX_DIM = 1 << 16


@dataclass(frozen=True)
class DesignHeads:
    """Per-field linear heads over standardised features.

    Attributes:
        kind: the features read (``extractor`` or ``spectrum``).
        vocab: field -> the values it can predict, in weight-row order.
        mean, std: ``(D,)`` feature standardisation, from the fitting set.
        weights: field -> ``(C, D + 1)``: one row per value, the bias last.
        made_by: what fitted them (command, data, extractor identity, accuracy on the
            fitting data and on held-out models when measured).
    """

    kind: str
    vocab: dict[str, tuple[str, ...]]
    mean: torch.Tensor
    std: torch.Tensor
    weights: dict[str, torch.Tensor]
    made_by: dict = field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.vocab)

    def log_probabilities(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, D)`` -> field -> ``(N, C)`` per-image log probabilities."""
        if features.ndim != 2 or features.shape[1] != self.mean.numel():
            raise InvalidInputError(f"design heads read {self.mean.numel()} features "
                                    f"({self.kind}); got rows of shape "
                                    f"{tuple(features.shape[1:])}")
        z = (features.float() - self.mean) / self.std
        z = torch.cat([z, torch.ones(len(z), 1)], 1)
        return {f: F.log_softmax(z @ w.T, 1) for f, w in self.weights.items()}

    def predict_set(self, features: torch.Tensor) -> dict[str, dict[str, float]]:
        """The mean per-image probability of each value, per field, most likely first."""
        out = {}
        for f, lp in self.log_probabilities(features).items():
            p = lp.exp().mean(0)
            order = torch.argsort(p, descending=True)
            out[f] = {self.vocab[f][int(i)]: round(float(p[i]), 4) for i in order}
        return out

    def predict_images(self, features: torch.Tensor) -> dict[str, list[str]]:
        """The most likely value per image, per field."""
        return {f: [self.vocab[f][int(i)] for i in lp.argmax(1)]
                for f, lp in self.log_probabilities(features).items()}

    # --- storage ---------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"mean": self.mean.contiguous(), "std": self.std.contiguous(),
                   **{f"w.{f}": w.contiguous() for f, w in self.weights.items()}}
        with atomic_path(folder / "heads.safetensors") as tmp:
            save_file(tensors, str(tmp))
        atomic_write(folder / "heads.json", json.dumps(
            {"format": HEADS_FORMAT, "kind": self.kind,
             "vocab": {f: list(v) for f, v in self.vocab.items()},
             "made_by": self.made_by}, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> DesignHeads:
        """Read :meth:`save`'s folder; every refusal is one line naming the file."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        record_path, weights_path = folder / "heads.json", folder / "heads.safetensors"
        for p in (record_path, weights_path):
            if not p.is_file():
                raise InvalidInputError(f"{p}: no such file (design heads are a folder "
                                        "written by fpx design fit)")
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidInputError(f"{record_path}: not JSON ({str(err)[:80]})") from None
        vocab = _check_record(record, record_path)
        try:
            t = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as err:
            raise InvalidInputError(f"{weights_path}: unreadable ({str(err)[:80]})") from None
        mean, std = t.get("mean"), t.get("std")
        if mean is None or std is None or mean.ndim != 1 or std.shape != mean.shape \
                or not 0 < mean.numel() <= MAX_DIM:
            raise InvalidInputError(f"{weights_path}: damaged (mean/std)")
        weights = {}
        for f, values in vocab.items():
            w = t.get(f"w.{f}")
            if w is None or tuple(w.shape) != (len(values), mean.numel() + 1):
                raise InvalidInputError(f"{weights_path}: damaged (weights of {f!r} do not "
                                        f"match {len(values)} values x {mean.numel()} features)")
            weights[f] = w.float()
        if not all(bool(torch.isfinite(v).all()) for v in (mean, std, *weights.values())) \
                or not bool((std > 0).all()):
            raise InvalidInputError(f"{weights_path}: damaged (non-finite values)")
        return cls(record["kind"], vocab, mean.float(), std.float(), weights,
                   record.get("made_by") or {})


def _check_record(record, path: Path) -> dict[str, tuple[str, ...]]:
    if not isinstance(record, dict) or record.get("format") != HEADS_FORMAT:
        raise InvalidInputError(f"{path}: not fpx design heads (format "
                                f"{HEADS_FORMAT!r} expected)")
    if record.get("kind") not in FEATURES:
        raise InvalidInputError(f"{path}: unknown feature kind {record.get('kind')!r}")
    vocab = record.get("vocab")
    if not isinstance(vocab, dict) or not vocab or not set(vocab) <= set(FIELDS):
        raise InvalidInputError(f"{path}: damaged (vocab must map fields of {FIELDS})")
    out = {}
    for f, values in vocab.items():
        if not isinstance(values, list) or not 2 <= len(values) <= MAX_CLASSES \
                or not all(isinstance(v, str) for v in values) or len(set(values)) != len(values):
            raise InvalidInputError(f"{path}: damaged (vocab of {f!r})")
        out[f] = tuple(values)
    return out


def fit_heads(features: torch.Tensor, labels: dict[str, list[str]], *, kind: str,
              l2: float = 1e-3, steps: int = 100, made_by: dict | None = None
              ) -> DesignHeads:
    """Fit one multinomial logistic regression per field on ``features`` ``(N, D)``
    (standardised over the rows) and ``labels`` (field -> N values). A field whose
    labels take a single value is left out (there is nothing to predict). L-BFGS on the
    mean cross-entropy plus ``l2`` times the squared weights (not the bias)."""
    if features.ndim != 2 or len(features) < 2:
        raise InvalidInputError(f"fitting needs features (N >= 2, D); got "
                                f"{tuple(features.shape)}")
    x = features.float()
    mean, std = x.mean(0), x.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    z = torch.cat([(x - mean) / std, torch.ones(len(x), 1)], 1)
    vocab, weights = {}, {}
    for f in FIELDS:
        if f not in labels:
            continue
        values = list(labels[f])
        if len(values) != len(x):
            raise InvalidInputError(f"{len(values)} labels of {f!r} for {len(x)} rows")
        names = tuple(sorted(set(values)))
        if len(names) < 2:
            continue
        y = torch.tensor([names.index(v) for v in values])
        vocab[f], weights[f] = names, _logistic(z, y, len(names), l2, steps)
    if not vocab:
        raise InvalidInputError("no field has two or more values among the labels")
    return DesignHeads(kind, vocab, mean, std, weights, dict(made_by or {}))


def _logistic(z: torch.Tensor, y: torch.Tensor, classes: int, l2: float, steps: int
              ) -> torch.Tensor:
    """``(N, D + 1)`` rows (bias column last), ``(N,)`` classes -> ``(classes, D + 1)``."""
    w = torch.zeros(classes, z.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.T, y) + l2 * (w[:, :-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()
