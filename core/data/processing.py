"""Everyday processing an image meets after a generator made it: JPEG, resizing, blur,
noise, a shift. Batched functions on ``(B, C, H, W)`` images in ``[-1, 1]``, and the
registry :data:`PROCESSING` of named, parametrised steps that robustness sweeps and
augmentations draw from.

Each step is deterministic given its parameters and ``seed`` (noise and random shifts
draw from their own generator), and keeps the images' range. Sizes change only through
``resize``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.data.transforms import resize as _resize
from core.errors import InvalidInputError, check_int, check_real
from core.registry import file_under, lookup


def _jpeg_one(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as back:
        return np.asarray(back.convert("RGB"), dtype=np.float32)


def jpeg(x: torch.Tensor, quality: int | Sequence[int]) -> torch.Tensor:
    """Save each image as JPEG at ``quality`` (one for all, or one per image; Pillow's
    encoder, 4:2:0 chroma) and read it back: ``(B, 3, H, W) -> (B, 3, H, W)``, quantised
    to 8 bits on the way. The batch crosses to the CPU once; the result is contiguous."""
    qs = list(quality) if isinstance(quality, (list, tuple)) else [quality] * len(x)
    if len(qs) != len(x):
        raise InvalidInputError(f"{len(qs)} JPEG qualities for {len(x)} images")
    qs = [check_int("JPEG quality", q, 1, 100) for q in qs]
    if not len(x):
        return x.clone()
    arrs = ((x.detach().cpu().permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255) \
        .byte().numpy()
    decoded = [_jpeg_one(a, q) for a, q in zip(arrs, qs)]
    # contiguous: a permuted (channels-last) result crashed DDP's backward on the CPU
    y = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).contiguous()
    return y.to(x) / 127.5 - 1


def rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Resize by ``factor`` (bicubic, antialiased when shrinking): ``(B, C, H, W) ->
    (B, C, round(H f), round(W f))``."""
    factor = check_real("resize factor", factor, 0.05, 16.0)
    h, w = x.shape[-2:]
    return _resize(x, (max(1, round(h * factor)), max(1, round(w * factor)))).clamp(-1, 1)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (kernel ``+-3 sigma``,
    reflected borders); the size is kept."""
    sigma = check_real("blur sigma", sigma, 0.05, 20.0)
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def add_noise(x: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """Add white Gaussian noise of ``std`` (in ``[0, 1]`` intensity units, so ``2 std`` in
    ``[-1, 1]``), clipped to the range."""
    std = check_real("noise std", std, 0.0, 1.0)
    g = torch.Generator(device=x.device).manual_seed(int(seed))  # drawn where x lives
    noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    return (x + 2 * std * noise).clamp(-1, 1)


def shift(x: torch.Tensor, pixels: int, *, random: bool = False, seed: int = 0
          ) -> torch.Tensor:
    """Translate by ``pixels`` right and down (the vacated border reflects the image).

    With ``random``, each image gets its own offset in ``0 .. pixels`` along each axis:
    the images no longer share their alignment to the pixel grid.
    """
    pixels = check_int("shift", pixels, 0, 64)
    b, _, h, w = x.shape
    if pixels == 0:
        return x.clone()
    padded = F.pad(x, (pixels, 0, pixels, 0), mode="reflect")
    if not random:
        return padded[..., :h, :w]
    g = torch.Generator().manual_seed(int(seed))
    dy, dx = torch.randint(0, pixels + 1, (2, b), generator=g).tolist()
    return torch.stack([padded[i, :, pixels - dy[i]:pixels - dy[i] + h,
                               pixels - dx[i]:pixels - dx[i] + w] for i in range(b)])


@dataclass(frozen=True)
class Processing:
    """A named step of processing with its parameter.

    Attributes:
        name: registry key, e.g. ``jpeg90``.
        label: for tables, e.g. ``JPEG q90``.
        apply: ``(images, seed) -> images``.
        scale: how the step rescales the image (a lattice of period ``P`` moves to
            ``P * scale``); 1 for all but resizing.
        jpeg: whether the result carries a JPEG block grid.
    """

    name: str
    label: str
    apply: Callable[[torch.Tensor, int], torch.Tensor]
    scale: float = 1.0
    jpeg: bool = False


PROCESSING: dict[str, Processing] = {}


def register_processing(step: Processing) -> Processing:
    return file_under(PROCESSING, step.name, step, kind="processing")


def processing(name: str) -> Processing:
    return lookup(PROCESSING, name, kind="processing")


register_processing(Processing("none", "none", lambda x, seed: x))
for _q in (95, 90, 75, 50):
    register_processing(Processing(f"jpeg{_q}", f"JPEG q{_q}",
                                   lambda x, seed, q=_q: jpeg(x, q), jpeg=True))
for _f in (0.5, 0.75, 1.25, 1.5):
    register_processing(Processing(f"resize{_f:g}", f"resize x{_f:g}",
                                   lambda x, seed, f=_f: rescale(x, f), scale=_f))
for _s in (0.5, 1.0):
    register_processing(Processing(f"blur{_s:g}", f"blur sigma {_s:g} px",
                                   lambda x, seed, s=_s: blur(x, s)))
for _n in (0.01, 0.03):
    register_processing(Processing(f"noise{_n:g}", f"noise std {_n:g}",
                                   lambda x, seed, n=_n: add_noise(x, n, seed)))
register_processing(Processing("shift1", "shift 1 px (all images)",
                               lambda x, seed: shift(x, 1)))
register_processing(Processing("shift_random", "shift 0-1 px (each image its own)",
                               lambda x, seed: shift(x, 1, random=True, seed=seed)))
