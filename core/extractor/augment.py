"""Training augmentations: the everyday processing a generated image meets before anyone
asks where it came from (JPEG, resizing, blur, noise), drawn at random per batch, so the
extractor learns fingerprints that survive them. The processing itself is
:mod:`core.data.processing`'s (the robustness sweep applies the same functions).

    x = augment(x, Augmentations(), generator)   # (B, 3, S, S) -> (B, 3, S', S')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.data.processing import add_noise, blur, jpeg, rescale
from core.errors import InvalidInputError


@dataclass(frozen=True)
class Augmentations:
    """Each step is applied to a batch with probability ``p``.

    Attributes:
        p: probability of each step, independently.
        jpeg: quality range (per image, uniform integers).
        resize: factor range (one factor per batch: a batch keeps one size).
        blur: Gaussian sigma range in pixels (one per batch).
        noise: standard deviation range of Gaussian noise, in ``[0, 1]`` intensity units
            (as :func:`core.data.processing.add_noise` takes it).
        min_side: a resize never takes the batch under this side.
    """

    p: float = 0.5
    jpeg: tuple[int, int] = (60, 100)
    resize: tuple[float, float] = (0.5, 1.5)
    blur: tuple[float, float] = (0.3, 1.2)
    noise: tuple[float, float] = (0.005, 0.03)
    min_side: int = 16

    def __post_init__(self):
        if not 0 <= self.p <= 1:
            raise InvalidInputError(f"augmentation p = {self.p!r} must lie in [0, 1]")
        for name in ("jpeg", "resize", "blur", "noise"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InvalidInputError(f"augmentation {name} range {lo}..{hi} is empty")


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def augment(x: torch.Tensor, aug: Augmentations = Augmentations(),
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Random processing of a batch ``(B, 3, S, S)`` in ``[-1, 1]``, in the order an image
    meets it (resize, blur, noise, then JPEG on saving); the result may have another
    size (a resize), never under ``aug.min_side``."""
    def chance() -> bool:
        return float(torch.rand((), generator=generator)) < aug.p

    if chance():
        factor = _uniform(*aug.resize, generator)
        factor = max(factor, aug.min_side / min(x.shape[-2:]))
        x = rescale(x, factor)
    if chance():
        x = blur(x, _uniform(*aug.blur, generator))
    if chance():
        seed = int(torch.randint(2**31, (1,), generator=generator))
        x = add_noise(x, _uniform(*aug.noise, generator), seed=seed)
    if chance():
        lo, hi = aug.jpeg
        q = torch.randint(lo, hi + 1, (len(x),), generator=generator)
        x = jpeg(x, q.tolist())
    return x
