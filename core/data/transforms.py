"""The few image transforms fpx needs (no torchvision).

Tensors are ``(C, H, W)`` or ``(B, C, H, W)`` floats; "signed" images live in ``[-1, 1]``,
the range every fpx network and spectrum function expects.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InvalidInputError, check_int


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` array in ``[0, 1]`` (or uint8) -> ``(C, H, W)`` float32 in ``[0, 1]``."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise InvalidInputError(f"expected an (H, W, C) image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1] -> [-1, 1]``."""
    return x * 2.0 - 1.0


def from_signed(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1] -> [0, 1]`` (clamped)."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def _check_size(x: torch.Tensor, size: int) -> tuple[int, int]:
    check_int("crop size", size)
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise InvalidInputError(f"image of {w}x{h} is smaller than the crop size {size}")
    return h, w


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Central ``size x size`` crop of ``(..., H, W)``; odd margins leave the extra pixel
    at the bottom/right."""
    h, w = _check_size(x, size)
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def random_crop(x: torch.Tensor, size: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniformly placed ``size x size`` crop of ``(..., H, W)`` (one place for the batch)."""
    h, w = _check_size(x, size)
    top = int(torch.randint(h - size + 1, (1,), generator=generator))
    left = int(torch.randint(w - size + 1, (1,), generator=generator))
    return x[..., top:top + size, left:left + size]


def resize(x: torch.Tensor, size: int | tuple[int, int], *, mode: str = "bicubic") -> torch.Tensor:
    """Antialiased resize of ``(C, H, W)`` or ``(B, C, H, W)`` to ``size`` (int = square).

    Downscaling low-pass filters first (``antialias=True``), so no aliasing enters the
    spectrum; note that any resampling leaves its own spectral trace, which is why the
    spectrum tools crop rather than resize.
    """
    if mode not in ("bilinear", "bicubic"):
        raise InvalidInputError(f"resize mode must be bilinear or bicubic, got {mode!r}")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or min(hw) < 1:
        raise InvalidInputError(f"bad resize target {size!r}")
    single = x.ndim == 3
    y = F.interpolate(x[None] if single else x, size=hw, mode=mode, align_corners=False,
                      antialias=True)
    return y[0] if single else y
