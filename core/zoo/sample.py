"""Draw samples from a trained zoo entry into a folder of lossless PNGs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.errors import FpxError, InvalidInputError
from core.runtime import atomic_write, code_version
from core.zoo.base import ZooModel
from core.zoo.entries import ZooEntry


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` in ``[-1, 1]`` -> ``(B, H, W, 3)`` uint8, rounding to nearest."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_pngs(images: torch.Tensor, folder: str | Path, start: int = 0) -> list[Path]:
    """Write ``images`` as ``folder/{start + i:05d}.png`` (atomically, lossless)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(to_uint8(images)):
        paths.append(atomic_write(folder / f"{start + i:05d}.png", png_bytes(image)))
    return paths


def sample_to_folder(model: ZooModel, n: int, folder: str | Path, *, seed: int,
                     made_by: dict, batch: int = 250, overwrite: bool = False,
                     progress=None) -> Path:
    """Write ``n`` samples of ``model`` to ``folder`` plus ``samples.json`` (entry, seed,
    what made them). Sampling noise comes from a generator seeded with ``seed``, so the
    same checkpoint and seed give the same files.

    Raises:
        InvalidInputError: ``n < 1``, or ``folder`` already holds PNGs and not ``overwrite``.
    """
    if not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"-n must be a positive integer, got {n!r}")
    folder = Path(folder)
    old = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if old and not overwrite:
        raise InvalidInputError(f"{folder} already holds {len(old)} PNG(s); pass --overwrite "
                                "or choose another --out")
    for path in old:
        path.unlink()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    done = 0
    while done < n:
        k = min(batch, n - done)
        images = model.sample(k, generator=generator)
        if not bool(torch.isfinite(images).all()):
            raise InvalidInputError(f"{model.entry.name}: the model produced NaN samples")
        write_pngs(images, folder, start=done)
        done += k
        if progress is not None:
            progress(k)
    atomic_write(folder / "samples.json", json.dumps(
        {"entry": model.entry.to_dict(), "count": n, "seed": seed, "size": model.size,
         "code_version": code_version(), **made_by}, indent=2))
    return folder


def read_design(folder: str | Path) -> dict | None:
    """The design choices of the entry recorded in ``folder/samples.json`` (as
    :func:`sample_to_folder` writes it), or ``None``: a folder without one, or with a
    foreign ``samples.json``, simply has no known design."""
    try:
        entry = json.loads((Path(folder) / "samples.json").read_text())["entry"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        return ZooEntry.from_dict(entry).design()
    except FpxError:
        return None
