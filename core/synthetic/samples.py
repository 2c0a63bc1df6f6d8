"""Folders of a synthetic bank's images, one per model (what ``fpx bank sample`` writes).

Layout, read back by :mod:`core.extractor.evaluate` (labels are the model folders)::

    OUT/bank.json                                   config, counts, what made it
    OUT/m000-1xtransposed-batch-relu-conv_first/    one folder per model:
        00000.png, 00001.png, ...                   lossless 8-bit PNGs (atomic writes)
        spec.json                                   the model's GeneratorSpec

The images are held-out real photos (the bundled test split, never seen while fitting
the bank or training the extractor) put through each model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from core.data import bundled_crops, clear_pngs, write_pngs
from core.errors import InvalidInputError, check_int
from core.runtime import atomic_write, code_version
from core.specs import GeneratorSpec
from core.synthetic.bank import BankConfig, SyntheticBank

HELDOUT = ("none", "seeds", "architectures")
WEIGHT_SEED_OFFSET = 10_000  # held-out seeds: far from any seed a bank draws its weights from
REAL_SEED = 1  # positions of the held-out real crops
PICK_SEED = 7  # which of those crops each model is run on


def heldout_config(config: BankConfig, heldout: str, *, name: str = "the bank") -> BankConfig:
    """The bank ``config`` (``heldout="none"``), or a variant the first never saw.

    ``"seeds"``: the same architectures with unseen weights; ``"architectures"``: the
    next ``config.architectures`` architectures of the same seeded order.

    Raises:
        InvalidInputError: an unknown ``heldout``, or ``"architectures"`` when ``config``
            holds every architecture (``name`` names the config in that message).
    """
    if heldout not in HELDOUT:
        raise InvalidInputError(f"heldout must be one of {', '.join(HELDOUT)}; got {heldout!r}")
    if heldout == "seeds":
        return dataclasses.replace(config, weight_seed=config.seed + WEIGHT_SEED_OFFSET)
    if heldout == "architectures":
        if config.architectures == 0:
            raise InvalidInputError(f"{name} holds every architecture")
        return dataclasses.replace(config, skip_architectures=config.skip_architectures
                                   + config.architectures)
    return config


def fit_bank(config: BankConfig, device: torch.device | str = "cpu", *,
             models: int | None = None, progress=None) -> SyntheticBank:
    """Build the bank of ``config`` the way training builds it: fitted on 256 crops of
    the bundled train split drawn with ``config.seed``.

    Args:
        models: fit only the bank's first ``models`` models (identical to the whole
            bank's first ``models``); the rest are never built.
        progress: called with the number of models just fitted (see
            :meth:`SyntheticBank.build`).
    """
    crops = bundled_crops(config.crop_size, 256, seed=config.seed, split="train")
    return SyntheticBank.build(config, crops.to(device), progress=progress, models=models)


def model_folder_name(index: int, spec: GeneratorSpec) -> str:
    """``m{index:03d}-{up blocks}x{upsampling}-{norm}-{activation}-{order}`` (first up-block):
    sorted listings keep bank order and show the design at a glance."""
    b = spec.up[0]
    return f"m{index:03d}-{len(spec.up)}x{b.upsampling}-{b.norm}-{b.activation}-{b.order}"


def write_bank_samples(bank: SyntheticBank, out: str | Path, *, images: int = 50,
                       models: int | None = None, made_by: dict | None = None,
                       device: torch.device | str = "cpu", progress=None) -> list[Path]:
    """Write ``images`` images of each of the first ``models`` models of ``bank`` (all by
    default) to ``out/NAME/00000.png ...`` with ``out/NAME/spec.json``, and
    ``out/bank.json`` (``made_by``'s keys first, then the config and counts).

    Each model runs on its own draw of ``images`` crops (``bank.config.crop_size``
    pixels) from ``4 * images`` held-out real crops; the same bank and arguments give the
    same files. A model folder's earlier PNGs are replaced. Returns the model folders.
    ``progress``, when given, is called with 1 after each model's folder is written.

    Raises:
        InvalidInputError: ``images`` or ``models`` is not a positive integer.
    """
    for label, value in (("images", images), ("models", models)):
        if value is not None:
            check_int(label, value)

    out = Path(out)
    config = bank.config
    ids = list(range(len(bank)))[:models or len(bank)]
    real = bundled_crops(config.crop_size, images * 4, seed=REAL_SEED, split="test").to(device)
    g = torch.Generator().manual_seed(PICK_SEED)
    folders = []
    for i in ids:
        spec = bank.specs[i]
        folder = out / model_folder_name(i, spec)
        pick = torch.randperm(len(real), generator=g)[:images].to(device)
        y = bank.generate([i], real[pick][None])[0]  # (images, 3, S, S) in [-1, 1]
        clear_pngs(folder)  # a re-run replaces the set (earlier names included)
        write_pngs(y, folder)
        atomic_write(folder / "spec.json", spec.to_json())
        folders.append(folder)
        if progress is not None:
            progress(1)
    atomic_write(out / "bank.json", json.dumps({
        **(made_by or {}), "config": dataclasses.asdict(config), "models": len(ids),
        "images_per_model": images, "code_version": code_version(),
    }, indent=2))
    return folders
