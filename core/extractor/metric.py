"""The hybrid fingerprint's synthetic metric: a within-class whitening of hybrid features
(:mod:`core.extractor.hybrid`) learnt on synthetic models only.

Cosine similarity of hybrid features treats every direction alike, but the images of
one generator scatter far more along some directions (content) than along others (its
fingerprint). :func:`fit_metric` draws synthetic models of the extractor's own bank
with weight seeds no other use of the bank draws (``heldout="metric"`` of
:func:`core.bench.sets.synthetic_set`: not its training models, not the validation models
thresholds are fixed on, not the held-out test sets), makes their images at each of
``sizes`` (each size's models are classes of their own: the bank draws its architectures
per size), and learns the within-class whitening of :mod:`core.extractor.whitening` on
their hybrid features. Its shrinkage is chosen by the transfer criterion, a 2-fold
cross-validation inside them (:func:`core.extractor.whitening.choose_transfer_whitening`):
learnt on the models of half the designs (first up-block's upsampling, normalization,
activation and order, and the number of stages, :func:`core.bench.sets.spec_design`),
scored by verification AUC among the other half's. No image or label of any test set
takes part.

Stored beside the extractor's weights as ``hybrid_metric.safetensors`` (the ``(D, d)``
matrix) and ``hybrid_metric.json`` (format, shrinkage, cross-validation, the extractor's
identity, what made it); :func:`find_metric` reads it back for the extractor it was fitted
on and refuses another's::

    metric = fit_metric("core/assets/extractor", models=48, images=20, sizes=(32, 64))
    metric.save("core/assets/extractor")
    z = metric(hybrid_features)          # (N, D) -> (N, d) unit rows; cosine there
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.errors import InvalidInputError
from core.extractor.whitening import (
    MAX_DIMS,
    WITHIN,
    Whitening,
    choose_transfer_whitening,
)

METRIC_FORMAT = "fpx.hybrid_metric/1"
RECORD, WEIGHTS = "hybrid_metric.json", "hybrid_metric.safetensors"


@dataclass(frozen=True, eq=False)
class HybridMetric:
    """A whitening of hybrid features and what made it.

    Attributes:
        whitening: the map (``matrix`` ``(D, d)``, ``D`` = embedding + spectrum length).
        made_by: command, extractor identity, synthetic models, images, sizes, code version.
    """

    whitening: Whitening
    made_by: dict = field(default_factory=dict)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Hybrid features ``(N, D)`` -> whitened unit rows ``(N, d)``."""
        if features.shape[-1] != self.in_dims:
            raise InvalidInputError(f"the hybrid metric takes {self.in_dims} features, got "
                                    f"{features.shape[-1]} (another extractor's?)")
        return self.whitening(features)

    @property
    def in_dims(self) -> int:
        return int(self.whitening.matrix.shape[0])

    @property
    def digest(self) -> str:
        """16 hex digits of the SHA-256 of the matrix: which metric this is."""
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(self.whitening.matrix).tobytes()
                              ).hexdigest()[:16]

    def describe(self) -> str:
        m = self.made_by
        return (f"whitened within class on {m.get('models', '?')} synthetic models x "
                f"{m.get('images', '?')} images at {m.get('sizes', '?')} px "
                f"({self.whitening.dims} dims, shrinkage {self.whitening.shrinkage:g})")

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        from core.runtime import atomic_path, atomic_write

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS) as tmp:
            save_file({"matrix": torch.from_numpy(np.ascontiguousarray(
                self.whitening.matrix, dtype=np.float32))}, str(tmp))
        record = {"format": METRIC_FORMAT, **self.whitening.to_dict(), "made_by": self.made_by}
        atomic_write(folder / RECORD, json.dumps(record, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> HybridMetric:
        """Read :meth:`save`'s files; every refusal is one line naming the file."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        record_path, weights_path = folder / RECORD, folder / WEIGHTS
        for p in (record_path, weights_path):
            if not p.is_file():
                raise InvalidInputError(f"{p}: no such file (written by fpx metric fit)")
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidInputError(f"{record_path}: not JSON ({str(err)[:80]})") from None
        shrinkage = record.get("shrinkage") if isinstance(record, dict) else None
        if not isinstance(record, dict) or record.get("format") != METRIC_FORMAT \
                or isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float)) \
                or not 0 <= shrinkage <= 1:
            raise InvalidInputError(f"{record_path}: not a hybrid metric record "
                                    f"({METRIC_FORMAT}, shrinkage in [0, 1])")
        try:  # "accuracy": the score's name before the transfer criterion
            scores = tuple((float(c["shrinkage"]), float(c.get("score", c.get("accuracy"))))
                           for c in record.get("cross_validation") or ()
                           if isinstance(c, dict) and "shrinkage" in c
                           and ("score" in c or "accuracy" in c))
        except (TypeError, ValueError):
            raise InvalidInputError(f"{record_path}: damaged cross_validation") from None
        criterion = record.get("criterion")
        if not isinstance(criterion, str):  # a record of before the transfer criterion
            legacy = any(isinstance(c, dict) and "accuracy" in c
                         for c in record.get("cross_validation") or ())
            criterion = WITHIN if legacy else ""
        try:
            matrix = load_file(str(weights_path)).get("matrix")
        except (SafetensorError, OSError, ValueError) as err:
            raise InvalidInputError(f"{weights_path}: unreadable ({str(err)[:80]})") from None
        if matrix is None or matrix.ndim != 2 or not 0 < matrix.shape[1] <= MAX_DIMS \
                or matrix.shape[0] > 1 << 16 or not bool(torch.isfinite(matrix).all()):
            raise InvalidInputError(f"{weights_path}: damaged (a finite (D, d) matrix, "
                                    f"d <= {MAX_DIMS})")
        made_by = record.get("made_by") if isinstance(record.get("made_by"), dict) else {}
        return cls(Whitening(matrix.float().numpy(), float(shrinkage), scores, criterion),
                   made_by)


def find_metric(extractor: str | Path) -> HybridMetric | None:
    """The metric stored beside the extractor in folder ``extractor``, or ``None``.

    Raises:
        InvalidInputError: the files are damaged, or were fitted on another extractor.
    """
    from core.parsing.data import extractor_identity

    folder = Path(extractor)
    if not (folder / RECORD).exists() and not (folder / WEIGHTS).exists():
        return None
    metric = HybridMetric.load(folder)
    have, want = extractor_identity(folder), metric.made_by.get("extractor")
    if want != have:
        raise InvalidInputError(f"{folder / RECORD}: fitted on extractor {want}, not on this "
                                f"one ({have}); refit with fpx metric fit")
    return metric


def fit_metric(extractor: str | Path, *, models: int = 48, images: int = 20,
               sizes: Sequence[int] = (32, 64), device: str | torch.device = "cpu",
               progress: Callable[[str], None] | None = None,
               command: str = "") -> HybridMetric:
    """Learn the metric of the extractor in folder ``extractor`` (module docstring):
    ``models`` synthetic models of its bank with the metric's weight seeds, ``images``
    each at every one of ``sizes``."""
    from core.bench.baselines import hybrid_method
    from core.bench.sets import synthetic_set
    from core.extractor.checkpoint import load_extractor
    from core.parsing.data import extractor_identity
    from core.runtime import code_version

    if models < 2 or images < 2:
        raise InvalidInputError(f"the metric needs at least 2 models and 2 images each "
                                f"(got {models} and {images})")
    features = hybrid_method(load_extractor(extractor, device), "metric").features
    feats, labels, designs = [], [], []
    for size in sizes:
        found = synthetic_set(extractor, "metric", models=models, images=images, size=size,
                              device=device, progress=progress)
        if progress:
            progress(f"hybrid features of {len(found.images)} images at {size} px")
        feats.append(features(found.images).numpy())
        labels += [f"{size}:{found.models[i]}" for i in found.labels.tolist()]
        if progress and not found.designs:
            progress("the synthetic models record no design: the shrinkage is chosen "
                     "within models")
        # a design at both sizes is one group: never learnt at one size, scored at the other
        designs += [json.dumps(found.designs.get(found.models[i], {}), sort_keys=True)
                    for i in found.labels.tolist()]
    whitening = choose_transfer_whitening(np.concatenate(feats), labels, designs)
    if whitening.matrix is None:
        raise InvalidInputError("the synthetic models gave nothing to whiten")
    return HybridMetric(whitening, {
        "command": command or "fpx metric fit", "extractor": extractor_identity(extractor),
        "models": models, "images": images, "sizes": list(sizes),
        "heldout": "metric (the bank's architectures, weight seeds of their own)",
        "code_version": code_version()})
