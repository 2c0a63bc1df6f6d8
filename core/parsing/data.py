"""Labelled features of synthetic models: what design heads are fitted and checked on.

``labelled_features`` fits the first ``models`` models of a bank config (only those:
:func:`core.synthetic.fit_bank`), runs each on its own real crops at every size asked,
and reads each kind of features from the same images, so the heads of every kind see
the same data. Fitting draws crops from the bundled photos' train split; checking on
held-out models uses the test split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from core.errors import InvalidInputError, check_int
from core.parsing.labels import FIELDS, spec_labels

CHUNK = 16  # models generated at once (one stacked network per architecture)


def extractor_identity(folder: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of an exported extractor's weights file:
    heads fitted on one extractor's embeddings refuse another's."""
    path = Path(folder) / "extractor.safetensors"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def labelled_features(configs: Sequence, readers: Mapping[str, Callable], *,
                      models: int | None, images: int, sizes: Sequence[int],
                      split: str = "train", seed: int = 0, device: str | torch.device = "cpu",
                      progress: Callable[[str], None] | None = None
                      ) -> tuple[dict[str, torch.Tensor], dict[str, list[str]], list[int]]:
    """Features and design labels of synthetic models' images.

    Args:
        configs: :class:`core.synthetic.BankConfig` of each space to draw from (its
            first ``models`` are fitted), or an already fitted
            :class:`core.synthetic.SyntheticBank` (e.g. a training run's ``bank/``).
        readers: kind -> images ``(N, 3, S, S)`` -> features ``(N, D)``.
        models: models per config (its first; ``None``: all).
        images: images per model and size.
        sizes: output sizes in pixels (each a multiple of the deepest model's reduction).
        split: the bundled photos' split the real crops come from.

    Returns:
        ``(features, labels, groups)``: kind -> ``(N, D)``; field -> N labels; and each
        row's model number (counted over all configs), for splitting by model.
    """
    from core.data import bundled_crops
    from core.synthetic import SyntheticBank, fit_bank

    check_int("images", images)
    if not sizes:
        raise InvalidInputError("no size to draw images at")
    say = progress or (lambda msg: None)
    feats: dict[str, list[torch.Tensor]] = {k: [] for k in readers}
    labels: dict[str, list[str]] = {f: [] for f in FIELDS}
    groups: list[int] = []
    offset = 0
    g = torch.Generator().manual_seed(seed)
    for source in configs:
        if isinstance(source, SyntheticBank):  # already fitted (a training run's bank)
            bank, config = source, source.config
            n = len(bank) if models is None else min(models, len(bank))
        else:
            config = source
            n = len(config.specs()) if models is None else min(models, len(config.specs()))
            say(f"fitting {n} synthetic models ({config.space} space)")
            bank = fit_bank(config, device, models=n)
        unit = max(2 ** s.down for s in bank.specs)
        for size in sizes:
            if size % unit:
                raise InvalidInputError(f"size {size} is not a multiple of {unit} (the "
                                        f"{config.space} bank's deepest reduction)")
            real = bundled_crops(size, max(64, 4 * images), seed=seed + size, split=split)
            for start in range(0, n, CHUNK):
                ids = list(range(start, min(n, start + CHUNK)))
                pick = torch.stack([torch.randperm(len(real), generator=g)[:images]
                                    for _ in ids])
                with torch.no_grad():
                    y = bank.generate(ids, real[pick].to(device))
                y = y.reshape(-1, *y.shape[2:]).clamp(-1, 1)
                for kind, read in readers.items():
                    feats[kind].append(read(y).float().cpu())
                for i in ids:
                    for f, v in spec_labels(bank.specs[i]).items():
                        labels[f].extend([v] * images)
                    groups.extend([offset + i] * images)
            say(f"read {n} models x {images} images at {size} px")
        offset += n
    return {k: torch.cat(v) for k, v in feats.items()}, labels, groups
