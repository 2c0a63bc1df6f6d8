"""The geometry of upsampling lattices: which frequencies ``(a / P, b / P)`` cycles/pixel
belong to a period ``P``, which of them no shorter period explains, and which lie near
another lattice (a JPEG block grid). Used by :mod:`core.spectrum.lattice`.
"""

from __future__ import annotations

import math

import torch

from core.errors import check_int

EXCLUDE_BINS = 2.0  # points this close to an excluded (JPEG) lattice point are left out (the
#                    Hann main lobe: a strong JPEG peak leaks that far)
MAX_POINTS = 128  # own points per candidate period scored at most (one of each +-f pair;
#                  P > 16 has more): a mean over 128 points has a standard error under a
#                  tenth of one point's spread, and large periods stay cheap
def periods_near(period: int, side: int) -> tuple[int, ...]:
    """Candidate periods for testing a design of ``period`` on images of ``side`` px: its
    divisors above 1, and twice it, up to a quarter of the side (a quick test of what the
    design makes likely, rather than of every period)."""
    check_int("period", period, 1)
    near = {d for d in range(2, period + 1) if period % d == 0} | {2 * period}
    return tuple(sorted(p for p in near if 4 * p <= side))


def lattice_points(period: int, *, own: bool = False) -> torch.Tensor:
    """Integer pairs ``(a, b)``, ``0 <= a, b < period``, not both 0, as ``(n, 2)``; with
    ``own``, only those of no shorter period (``gcd(a, b, period) == 1``). Their
    frequencies are ``(a / period, b / period)`` wrapped to ``[-0.5, 0.5)``."""
    check_int("period", period, 2)
    pairs = [(a, b) for a in range(period) for b in range(period)
             if (a or b) and (not own or math.gcd(math.gcd(a, b), period) == 1)]
    return torch.tensor(pairs, dtype=torch.long)


def wrap(f: torch.Tensor) -> torch.Tensor:
    """Frequencies (cycles/pixel) wrapped to ``[-0.5, 0.5)``."""
    return f - torch.floor(f + 0.5)


def half_plane(f: torch.Tensor) -> torch.Tensor:
    """One of each pair ``f, -f`` of ``(n, 2)`` wrapped frequencies (a real map's spectrum
    is conjugate-symmetric, so the other carries nothing new)."""
    neg = wrap(-f)
    keep = (f[:, 0] > neg[:, 0]) | ((f[:, 0] == neg[:, 0]) & (f[:, 1] >= neg[:, 1]))
    return f[keep]



def candidate_points(period: float, exclude_period: int | None, h: int, w: int
                      ) -> torch.Tensor:
    """The frequencies ``(n, 2)`` that hold ``period``'s own evidence.

    Integer ``P``: ``(a / P, b / P)`` with ``gcd(a, b, P) = 1`` (no shorter period has
    them). Non-integer ``T`` (a resized lattice): ``(a / T, b / T)`` below Nyquist with
    ``gcd(a, b) = 1``. Points within :data:`EXCLUDE_BINS` bins of ``exclude_period``'s
    lattice are left out (its peaks leak that far); at most :data:`MAX_POINTS`, a fixed
    spread subset.
    """
    if float(period).is_integer():
        f = wrap(lattice_points(int(period), own=True).double() / int(period))
    else:
        k = int(period / 2)
        pairs = [(a, b) for a in range(-k, k + 1) for b in range(-k, k + 1)
                 if (a or b) and math.gcd(a, b) == 1 and max(abs(a), abs(b)) < period / 2]
        f = torch.tensor(pairs, dtype=torch.float64) / period
    f = half_plane(f)
    if exclude_period is not None:
        f = f[~near(f, all_points(exclude_period, None), h, w, EXCLUDE_BINS)]
    if len(f) > MAX_POINTS:
        pick = torch.randperm(len(f), generator=torch.Generator().manual_seed(len(f)))
        f = f[pick[:MAX_POINTS]]
    return f


def all_points(period: int, exclude_period: int | None, h: int = 0, w: int = 0
                ) -> torch.Tensor:
    """Every lattice point of ``period`` (one of each +-f pair), less those near
    ``exclude_period``'s lattice."""
    f = half_plane(wrap(lattice_points(period).double() / period))
    if exclude_period is not None:
        f = f[~near(f, all_points(exclude_period, None), h, w, EXCLUDE_BINS)]
    return f


def near(f: torch.Tensor, lattice: torch.Tensor, h: int, w: int, bins: float) -> torch.Tensor:
    """Which of ``f (n, 2)`` lie within ``bins`` bins of a point of ``lattice (m, 2)``."""
    both = torch.cat([lattice, wrap(-lattice)])  # the +-f pairs were halved
    dy = wrap(f[:, None, 0] - both[None, :, 0]).abs() * h
    dx = wrap(f[:, None, 1] - both[None, :, 1]).abs() * w
    return ((dy <= bins) & (dx <= bins)).any(1)
