"""What an extractor run logs besides its loss: accuracy on a held batch of the bank and
a verification AUC on a few held-out synthetic models, every few steps.

Both sets are made once, when the run starts (the held-out models are fitted once and
kept in ``OUT/heldout``, so a resumed run reads them back), from their own seeds: the
training's random streams are untouched and ``--resume`` stays exact. Evaluating is a
forward pass under ``torch.no_grad`` in eval mode, on rank 0 only.

* ``bank_accuracy``: top-1 accuracy of the classification head on ``bank_models`` of the
  bank's models, each run on ``bank_images`` crops of the *test* photos (content the
  training never saw; the models are the ones it trains on).
* ``heldout_auc``: :func:`core.extractor.evaluate.verify` on ``heldout_models`` models
  the bank does not hold (:func:`core.synthetic.heldout_config`: unseen architectures, or
  unseen weights where the bank holds every architecture), ``heldout_images`` each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import check_int
from core.extractor.sizes import training_view

HELD_SEED = 3  # crops of the test photos and the held batch's draw: fixed across runs


@dataclass(frozen=True)
class MonitorConfig:
    """How often and on what an extractor run is evaluated (``heldout_models=0`` and
    ``bank_models=0``: never). Not part of what a checkpoint must match: evaluating never
    changes the weights."""

    every: int = 0  # steps between evaluations; 0: at every checkpoint
    bank_models: int = 64
    bank_images: int = 2
    heldout_models: int = 4
    heldout_images: int = 16
    pairs: int = 2000

    def __post_init__(self):
        for name in ("every", "bank_models", "heldout_models"):
            check_int(f"monitor {name}", getattr(self, name), 0, 10**6)
        for name in ("bank_images", "heldout_images", "pairs"):
            check_int(f"monitor {name}", getattr(self, name), 2, 10**6)

    @property
    def enabled(self) -> bool:
        return self.bank_models > 0 or self.heldout_models > 0


@dataclass
class HeldSets:
    """The fixed evaluation inputs: ``(N, 3, S, S)`` images with their labels, and the
    ``spectrum_size`` the extractor reads them at (``None``: their own)."""

    bank_x: torch.Tensor | None
    bank_labels: torch.Tensor | None
    heldout_x: torch.Tensor | None
    heldout_labels: list[str]
    spectrum_size: int | None
    pairs: int


def _heldout_bank(bank_config, n: int, folder: Path, log, device="cpu"):
    from core.synthetic import SyntheticBank, fit_bank, heldout_config

    kind = "architectures" if bank_config.architectures else "seeds"
    config = heldout_config(bank_config, kind)
    if (folder / "bank.json").exists():
        try:
            held = SyntheticBank.load(folder)
            if held.config == config and len(held) == n:
                return held
        except Exception:  # noqa: BLE001 - a damaged cache is simply fitted again
            pass
    t0 = time.perf_counter()
    held = fit_bank(config, device, models=n)
    held.save(folder)
    log(f"fitted {n} held-out models (unseen {kind}) in {time.perf_counter() - t0:.0f} s")
    return held


def held_sets(monitor: MonitorConfig, bank, bank_config, sizes: tuple[int, ...],
              crop_size: int, out: Path, device: torch.device, log) -> HeldSets | None:
    """Build the held batch of ``bank`` and the held-out models' images (rank 0, once)."""
    from core.data import bundled_crops

    if not monitor.enabled:
        return None
    size = max(sizes)
    g = torch.Generator().manual_seed(HELD_SEED)
    bank_x = bank_labels = heldout_x = None
    labels: list[str] = []
    if monitor.bank_models:
        n = min(monitor.bank_models, len(bank))
        ids = torch.randperm(len(bank), generator=g)[:n].sort().values
        crops = bundled_crops(size, n * monitor.bank_images, seed=HELD_SEED, split="test")
        x = bank.generate(ids.tolist(), crops.view(n, monitor.bank_images, 3, size, size))
        bank_x = x.reshape(-1, 3, size, size)
        bank_labels = ids.repeat_interleave(monitor.bank_images)
    if monitor.heldout_models:
        held = _heldout_bank(bank_config, monitor.heldout_models, out / "heldout", log,
                             device)
        unit = max(2 ** spec.down for spec in held.specs)
        if size % unit:
            log(f"no held-out AUC: size {size} is not a multiple of {unit}")
        else:
            k = monitor.heldout_images
            crops = bundled_crops(size, len(held) * k, seed=HELD_SEED + 1, split="test")
            x = held.generate(list(range(len(held))), crops.view(len(held), k, 3, size, size))
            heldout_x = x.reshape(-1, 3, size, size)
            labels = [f"heldout{i:02d}" for i in range(len(held)) for _ in range(k)]
    spectrum_size = None
    if bank_x is not None:
        bank_x, spectrum_size = training_view(bank_x, crop_size, g)
    if heldout_x is not None:
        heldout_x, spectrum_size = training_view(heldout_x, crop_size, g)
    bank_x, bank_labels, heldout_x = (None if t is None else t.to(device)
                                      for t in (bank_x, bank_labels, heldout_x))
    return HeldSets(bank_x, bank_labels, heldout_x, labels, spectrum_size, monitor.pairs)


@torch.no_grad()
def evaluate(model, held: HeldSets, chunk: int = 256) -> dict:
    """``bank_accuracy`` and ``heldout_auc`` of ``model`` (the raw ``Extractor``) on
    ``held``; the model's train/eval mode is restored."""
    from core.extractor.evaluate import verify

    was = model.training
    model.eval()
    out = {}
    try:
        if held.bank_x is not None:
            right = 0
            for i in range(0, len(held.bank_x), chunk):
                _, logits = model(held.bank_x[i:i + chunk], with_logits=True,
                                  spectrum_size=held.spectrum_size)
                right += int((logits.argmax(1) == held.bank_labels[i:i + chunk]).sum())
            out["bank_accuracy"] = round(right / len(held.bank_x), 4)
        if held.heldout_x is not None:
            emb = torch.cat([model(held.heldout_x[i:i + chunk],
                                   spectrum_size=held.spectrum_size).float().cpu()
                             for i in range(0, len(held.heldout_x), chunk)])
            result = verify(emb.numpy(), held.heldout_labels, pairs=held.pairs, seed=0)
            out["heldout_auc"] = round(result["auc"], 4)
    finally:
        model.train(was)
    return out
