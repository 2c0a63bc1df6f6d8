"""Grid peaks in a spectrum and the upsampling period that explains them.

Upsampling by ``s`` leaves spectral peaks on the grid ``(a / s, b / s)`` cycles/pixel
(``core.theory`` says which grid points a given design lights up). Here we find
isolated peaks in a centred log spectrum and ask which period ``s`` they reveal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.errors import InvalidInputError, check_int
from core.spectrum.transforms import frequencies

DEFAULT_CANDIDATES = (2, 3, 4, 5, 6, 8)


@dataclass(frozen=True)
class GridPeaks:
    """Isolated peaks of a centred spectrum, strongest first.

    Attributes:
        fy, fx: ``(P,)`` peak frequencies in cycles/pixel, in ``[-0.5, 0.5)``.
        prominence_db: ``(P,)`` height above the local background, in dB.
        shape: ``(H, W)`` of the spectrum they were found in (sets the bin width).
        noise_db: robust spread of the spectrum around its background (dB); the detection
            threshold was ``max(min_prominence_db, z * noise_db)``.
    """

    fy: torch.Tensor
    fx: torch.Tensor
    prominence_db: torch.Tensor
    shape: tuple[int, int]
    noise_db: float

    def __len__(self) -> int:
        return int(self.fy.numel())

    def to_list(self) -> list[dict[str, float]]:
        """``[{fy, fx, prominence_db}, ...]`` with plain floats (for JSON)."""
        rows = zip(self.fy.tolist(), self.fx.tolist(), self.prominence_db.tolist())
        return [{"fy": round(y, 6), "fx": round(x, 6), "prominence_db": round(p, 3)}
                for y, x, p in rows]


def _as_2d(spectrum: torch.Tensor) -> torch.Tensor:
    if not isinstance(spectrum, torch.Tensor) or spectrum.ndim not in (2, 3):
        raise InvalidInputError("spectrum must be a centred (H, W) or (C, H, W) tensor")
    s = spectrum.float()
    if s.ndim == 3:
        s = s.mean(0)
    if min(s.shape) < 8:
        raise InvalidInputError(f"spectrum of shape {tuple(s.shape)} is too small for peaks (< 8)")
    if not bool(torch.isfinite(s).all()):
        raise InvalidInputError("spectrum contains NaN or Inf values")
    return s


def _background(s: torch.Tensor, radius: int, guard: int) -> torch.Tensor:
    """Local background of each bin, ``(H, W) -> (H, W)``.

    The largest of three medians taken around each bin, beyond ``guard`` bins of it and
    within ``radius``: over the square ring, along the row, along the column. Rows and
    columns matter because image borders paint bright lines through DC (and through
    every replica); a bin on such a line is judged against the line, so only bins that
    stand out in every direction count as peaks. The spectrum is periodic, so
    neighbourhoods wrap around.
    """
    h, w = s.shape
    p = F.pad(s[None, None], (radius,) * 4, mode="circular")[0, 0]
    offsets = range(-radius, radius + 1)
    ring = [p[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
            for dy in offsets for dx in offsets if max(abs(dy), abs(dx)) > guard]
    row = [p[radius:radius + h, radius + d:radius + d + w] for d in offsets if abs(d) > guard]
    col = [p[radius + d:radius + d + h, radius:radius + w] for d in offsets if abs(d) > guard]
    meds = [torch.stack(group).median(0).values for group in (ring, row, col)]
    return torch.maximum(torch.maximum(meds[0], meds[1]), meds[2])


def find_grid_peaks(spectrum: torch.Tensor, *, min_prominence_db: float = 3.0, z: float = 6.0,
                    radius: int = 4, guard: int = 1, min_frequency: float = 0.04,
                    max_peaks: int = 64) -> GridPeaks:
    """Isolated peaks of a centred log spectrum (dB), with their prominence.

    A bin is a peak when it is the maximum of its 3x3 neighbourhood, lies at least
    ``min_frequency`` cycles/pixel from DC, and exceeds the background (see
    :func:`_background`) by ``max(min_prominence_db, z * noise)``, where ``noise`` is
    1.4826 times the median absolute deviation of the spectrum from its background: a
    threshold that adapts to how many images were averaged.

    Args:
        spectrum: ``(H, W)`` or ``(C, H, W)`` centred dB spectrum (channels are averaged),
            typically a :func:`mean_spectrum`.
        radius, guard: the background is read between ``guard`` and ``radius`` bins away;
            a guard of 1 leaves the peak's own 3x3 out (use 2 for windowed spectra, whose
            peaks are wider).
        max_peaks: keep at most this many, strongest first.
    """
    s = _as_2d(spectrum)
    if not 0 <= guard < radius:
        raise InvalidInputError(f"need 0 <= guard < radius, got guard={guard}, radius={radius}")
    h, w = s.shape
    bg = _background(s, radius, guard)
    excess = s - bg
    noise = float(1.4826 * excess.abs().median())
    threshold = max(min_prominence_db, z * noise)
    local_max = s >= F.max_pool2d(F.pad(s[None, None], (1, 1, 1, 1), mode="circular"), 3, 1)[0, 0]
    fy, fx = frequencies(h, device=s.device), frequencies(w, device=s.device)
    far = (fy[:, None] ** 2 + fx[None, :] ** 2) >= min_frequency**2
    keep = local_max & far & (excess >= threshold)
    iy, ix = torch.nonzero(keep, as_tuple=True)
    prom = excess[iy, ix]
    order = torch.argsort(prom, descending=True)[:max_peaks]
    iy, ix, prom = iy[order], ix[order], prom[order]
    return GridPeaks(fy[iy].cpu(), fx[ix].cpu(), prom.cpu(), (h, w), noise)


def grid_points(factor: int) -> list[tuple[float, float]]:
    """Grid points ``(a / s, b / s)`` that belong to period ``s`` and to no shorter one.

    These are the frequencies (cycles/pixel, wrapped to ``[-0.5, 0.5)``) where upsampling
    by exactly ``s`` puts peaks that upsampling by a divisor of ``s`` cannot: ``(a, b)``
    with ``gcd(a, b, s) == 1``. For ``s = 2``: ``(0, -.5), (-.5, 0), (-.5, -.5)``.
    """
    check_int("factor", factor, 2)

    def wrap(k: int) -> float:
        f = k / factor
        return f - 1.0 if f >= 0.5 else f

    return [(wrap(a), wrap(b)) for a in range(factor) for b in range(factor)
            if math.gcd(math.gcd(a, b), factor) == 1]


def _circular_gap(a: torch.Tensor, b: float) -> torch.Tensor:
    d = (a - b).abs() % 1.0
    return torch.minimum(d, 1.0 - d)


def grid_score(peaks: GridPeaks, factor: int, *,
               tolerance_bins: float = 1.0) -> tuple[float, float]:
    """How well period ``factor`` explains the peaks.

    Returns:
        ``(fraction, prominence_db)``: the fraction of :func:`grid_points` that hold a
        peak (within ``tolerance_bins`` bins, plus half a bin where ``k / s`` falls
        between bins), and the mean prominence of the peaks found there (0 if none).
    """
    h, w = peaks.shape
    tol_y, tol_x = (tolerance_bins + 0.5) / h, (tolerance_bins + 0.5) / w
    hit_prom = []
    points = grid_points(factor)
    for gy, gx in points:
        near = (_circular_gap(peaks.fy, gy) <= tol_y) & (_circular_gap(peaks.fx, gx) <= tol_x)
        if bool(near.any()):
            hit_prom.append(float(peaks.prominence_db[near].max()))
    if not hit_prom:
        return 0.0, 0.0
    return len(hit_prom) / len(points), sum(hit_prom) / len(hit_prom)


def estimate_upsampling_factor(peaks, *, candidates=DEFAULT_CANDIDATES,
                               min_fraction: float = 0.5, **find_options) -> int | None:
    """The upsampling period ``s`` that explains the grid peaks, or ``None``.

    Candidates are tried from the largest down; the first whose own grid points (those of
    no shorter period, :func:`grid_points`) hold peaks at ``min_fraction`` of them or
    more wins. Peaks off every grid (periodic textures in a photo) do not vote. A
    candidate period must fit at least twice in the spectrum's shorter side.

    Args:
        peaks: :class:`GridPeaks`, or a centred dB spectrum ``(H, W)`` / ``(C, H, W)``
            handed to :func:`find_grid_peaks` with ``find_options``.
    """
    if isinstance(peaks, torch.Tensor):
        peaks = find_grid_peaks(peaks, **find_options)
    elif find_options:
        raise InvalidInputError("find_options only apply when a spectrum is given")
    if not isinstance(peaks, GridPeaks):
        raise InvalidInputError("peaks must be GridPeaks or a spectrum tensor")
    if len(peaks) == 0:
        return None
    for s in sorted(set(candidates), reverse=True):
        if s < 2 or 2 * s > min(peaks.shape):
            continue
        fraction, _ = grid_score(peaks, s)
        if fraction >= min_fraction:
            return int(s)
    return None
