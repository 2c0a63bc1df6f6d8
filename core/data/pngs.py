"""Images out: ``[-1, 1]`` tensors as 8-bit pixels and lossless PNG files.

Every folder of images fpx writes (zoo samples, synthetic bank samples, held-out real
crops) goes through :func:`write_pngs`, so they share one naming scheme (5-digit
indices), one rounding (to nearest) and one encoder setting. The shipped zoo samples
were written so: changing any of the three would change their bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.runtime import atomic_write


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` in ``[-1, 1]`` -> ``(B, H, W, 3)`` uint8, rounding to nearest
    (values outside ``[-1, 1]`` are clamped)."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    """One ``(H, W, 3)`` uint8 image (or a Pillow image) as lossless PNG bytes."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def clear_pngs(folder: str | Path) -> int:
    """Remove the PNGs directly in ``folder`` (a set about to be written again, whose old
    names must not mix with the new ones); returns how many there were."""
    folder = Path(folder)
    old = sorted(folder.glob("*.png")) if folder.is_dir() else []
    for path in old:
        path.unlink()
    return len(old)


def write_pngs(images: torch.Tensor, folder: str | Path, start: int = 0) -> list[Path]:
    """Write ``images`` ``(B, 3, H, W)`` in ``[-1, 1]`` as ``folder/{start + i:05d}.png``
    (each atomically, lossless); returns the paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(to_uint8(images)):
        paths.append(atomic_write(folder / f"{start + i:05d}.png", png_bytes(image)))
    return paths
