"""Summaries of spectra: streaming means, radial profiles, distances and power-law fits."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

import torch

from core.errors import InvalidInputError, NoImagesError
from core.spectrum.transforms import check_images, power_spectrum, residual


class RadialProfile(NamedTuple):
    """An azimuthally averaged spectrum with its frequency axis.

    Attributes:
        frequency: ``(R,)`` ring radii in cycles/pixel, ``k / min(H, W)`` for ``k = 0..R-1``.
        power: ``(..., R)`` mean of the spectrum over each ring (dB if the spectrum was).
    """

    frequency: torch.Tensor
    power: torch.Tensor


class PowerLaw(NamedTuple):
    """Fit ``power_db(f) = level_db - 10 * exponent * log10(f / f_min)`` over the tail.

    Attributes (each ``(...)``, one per profile):
        exponent: decay exponent ``alpha`` of ``power ~ f**-alpha`` (natural images: ~2).
        level_db: fitted level at the tail's lowest frequency ``f_min``.
        nyquist_db: fitted level at the tail's highest frequency (Nyquist by default).
        rms_db: root-mean-square residual of the fit, in dB.
    """

    exponent: torch.Tensor
    level_db: torch.Tensor
    nyquist_db: torch.Tensor
    rms_db: torch.Tensor


def mean_spectrum(batches: Iterable[torch.Tensor], *, residual_kind: str = "none",
                  log: bool = True, window=None) -> torch.Tensor:
    """Streaming mean of per-image spectra over an iterable of batches.

    Args:
        batches: iterable of ``(B, C, H, W)`` tensors of one shape ``(C, H, W)``; consumed
            once, one batch in memory at a time.
        residual_kind: residual applied first (see :func:`residual`).
        log, window: as in :func:`power_spectrum`. With ``log`` the mean is over dB
            spectra (robust to a few very bright images).

    Returns:
        ``(C, H, W)`` centred mean spectrum (float32). The running sum is float64, so the
        result does not depend on how the images were batched beyond float32 rounding.
    """
    total, count, shape = None, 0, None
    for batch in batches:
        check_images(batch, "batch")
        if shape is None:
            shape = batch.shape[1:]
        elif batch.shape[1:] != shape:
            raise InvalidInputError(
                f"batch of shape {tuple(batch.shape[1:])} differs from the first {tuple(shape)}"
            )
        spec = power_spectrum(residual(batch, residual_kind), log=log, window=window)
        part = spec.sum(0, dtype=torch.float64)
        total = part if total is None else total.add_(part)
        count += batch.shape[0]
    if count == 0:
        raise NoImagesError("mean_spectrum got no images")
    return (total / count).float()


@functools.lru_cache(maxsize=32)
def _ring_index(h: int, w: int, device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Ring number of each pixel of a centred ``(h, w)`` spectrum, its counts, and R.

    Ring ``k`` holds the pixels whose radius ``sqrt(fy^2 + fx^2)`` (cycles/pixel) rounds
    to ``k / n`` with ``n = min(h, w)``; rings run to Nyquist, ``k = 0 .. n // 2``. Pixels
    beyond (the corners) go to a spare ring ``R`` that the caller drops.
    """
    n = min(h, w)
    fy = torch.fft.fftshift(torch.fft.fftfreq(h, dtype=torch.float64))
    fx = torch.fft.fftshift(torch.fft.fftfreq(w, dtype=torch.float64))
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * n
    ring = torch.floor(radius + 0.5).long().reshape(-1)
    r_count = n // 2 + 1
    ring[ring >= r_count] = r_count
    counts = torch.bincount(ring, minlength=r_count + 1)[:r_count]
    return ring.to(device), counts.to(device), r_count


def radial_profile(spectrum: torch.Tensor) -> RadialProfile:
    """Azimuthal mean of centred spectra, ``(..., H, W) -> RadialProfile((R,), (..., R))``.

    Works for any ``H, W >= 1``, even or odd, square or not: the ring width is
    ``1 / min(H, W)`` cycles/pixel and ``R = min(H, W) // 2 + 1``. Every ring is
    non-empty (it holds at least its points on the shorter axis).
    """
    if not isinstance(spectrum, torch.Tensor) or spectrum.ndim < 2:
        raise InvalidInputError("spectrum must be a tensor of shape (..., H, W)")
    h, w = spectrum.shape[-2:]
    ring, counts, r_count = _ring_index(h, w, str(spectrum.device))
    lead = spectrum.shape[:-2]
    flat = spectrum.reshape(-1, h * w)
    dtype = flat.dtype if flat.is_floating_point() else torch.float32
    sums = torch.zeros(flat.shape[0], r_count + 1, dtype=dtype, device=flat.device)
    sums.index_add_(1, ring, flat.to(dtype))
    power = (sums[:, :r_count] / counts.to(dtype)).reshape(*lead, r_count)
    frequency = torch.arange(r_count, dtype=torch.float32, device=flat.device) / min(h, w)
    return RadialProfile(frequency, power)


def _as_profile(p, name: str) -> RadialProfile:
    if isinstance(p, RadialProfile):
        return p
    if isinstance(p, tuple) and len(p) == 2:
        return RadialProfile(*p)
    raise InvalidInputError(f"{name} must be a RadialProfile (frequency, power)")


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(xp)`` at ``x`` along the last axis (``xp`` ascending)."""
    idx = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    t = ((x - x0) / (x1 - x0)).clamp(0, 1)
    return fp[..., idx - 1] * (1 - t) + fp[..., idx] * t


def spectral_distance(a, b, *, min_frequency: float = 0.0,
                      max_frequency: float = 0.5) -> torch.Tensor:
    """Root-mean-square difference, in dB, between radial profiles.

    Args:
        a, b: :class:`RadialProfile` in dB, powers ``(..., R)`` broadcastable. Profiles
            from different image sizes are compared on ``a``'s frequency axis, ``b``
            interpolated linearly (both are in cycles/pixel).
        min_frequency, max_frequency: band compared; DC is always left out (it measures
            mean brightness, not texture).

    Returns:
        ``(...)`` distances: ``sqrt(mean_f (a(f) - b(f))^2)`` over the band, in dB.
    """
    a, b = _as_profile(a, "a"), _as_profile(b, "b")
    fa, fb = a.frequency.to(a.power.device), b.frequency.to(a.power.device)
    pb = b.power.to(a.power.device)
    if fa.shape != fb.shape or not torch.allclose(fa, fb):
        if fa.max() > fb.max() + 1e-6:
            raise InvalidInputError("b's profile does not reach a's highest frequency")
        pb = _interp(fa, fb, pb)
    band = (fa > 0) & (fa >= min_frequency) & (fa <= max_frequency + 1e-9)
    if not bool(band.any()):
        raise InvalidInputError(f"no profile frequency in [{min_frequency}, {max_frequency}]")
    diff = a.power[..., band] - pb[..., band]
    if not bool(torch.isfinite(diff).all()):
        raise InvalidInputError("profiles contain NaN or Inf values")
    return diff.square().mean(-1).sqrt()


def power_law_fit(profile, *, min_frequency: float = 0.125,
                  max_frequency: float = 0.5) -> PowerLaw:
    """Least-squares power law through the high-frequency tail of dB radial profiles.

    In log-log coordinates ``power_db = c - 10 * alpha * log10(f)`` is a line; it is fit
    by closed-form least squares (vectorised over the leading axes) on the rings with
    ``min_frequency <= f <= max_frequency`` cycles/pixel. Dzanic et al. separate real from
    generated images with these few numbers.
    """
    p = _as_profile(profile, "profile")
    f = p.frequency.to(p.power.device, torch.float64)
    band = (f > 0) & (f >= min_frequency) & (f <= max_frequency + 1e-9)
    if int(band.sum()) < 3:
        raise InvalidInputError(
            f"power_law_fit needs at least 3 rings in [{min_frequency}, {max_frequency}] "
            f"cycles/pixel; this profile has {int(band.sum())} (images too small?)"
        )
    y = p.power[..., band].to(torch.float64)
    if not bool(torch.isfinite(y).all()):
        raise InvalidInputError("profile contains NaN or Inf values")
    u = torch.log10(f[band])
    u_mean, y_mean = u.mean(), y.mean(-1, keepdim=True)
    du = u - u_mean
    slope = ((y - y_mean) * du).sum(-1) / du.square().sum()
    intercept = y_mean.squeeze(-1) - slope * u_mean
    fitted = intercept[..., None] + slope[..., None] * u
    rms = (y - fitted).square().mean(-1).sqrt()
    level = intercept + slope * u[0]
    top = intercept + slope * u[-1]
    return PowerLaw(*(t.float() for t in (-slope / 10.0, level, top, rms)))
