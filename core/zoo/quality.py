"""Quality of a zoo entry's samples against real crops: spectral distance and kernel MMD
(their contact sheets: :func:`core.figures.write_contact_sheet`).

* **Spectral distance** (dB): RMS difference between the radial profiles of the mean
  log power spectra of samples and real crops (``core.spectrum.spectral_distance``);
  0 means the same average spectrum.
* **Kernel MMD** (KID-style): the unbiased estimate of the squared maximum mean
  discrepancy with the cubic polynomial kernel ``k(a, b) = (a.b / d + 1)^3`` in a fixed,
  hand-made feature space (no downloaded network): an 8x8 area-average of the image
  (layout and colour, 192 values), per-channel mean and standard deviation (6), and the
  radial log power profile of the grey image (``S/2 + 1`` values). Features are
  standardised with the real crops' mean and standard deviation, so every block counts
  on one scale. 0 means indistinguishable in this space; the figure for uniform noise
  is reported beside it as the scale of failure.

An entry **fails** when its samples are noise: closer, by this MMD, to uniform noise
images than to the real crops. Blurry samples (an under-trained VAE) are far from real
crops in spectrum but still much closer to them than to noise, and pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.errors import InvalidInputError
from core.spectrum import power_spectrum, radial_profile, spectral_distance
from core.spectrum.profiles import RadialProfile
from core.spectrum.transforms import check_images


def quality_features(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` in ``[-1, 1]`` -> ``(B, 198 + S // 2 + 1)`` features (see module)."""
    x = check_images(x, "images")
    pooled = F.adaptive_avg_pool2d(x, 8).flatten(1)
    stats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
    grey = x.mean(dim=1, keepdim=True)
    profile = radial_profile(power_spectrum(grey, log=True)).power[:, 0]
    return torch.cat([pooled, stats, profile], dim=1).double()


def kernel_mmd(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased MMD^2 between feature sets ``(N, D)`` and ``(M, D)`` (N, M >= 2) with the
    kernel ``(a.b / D + 1)^3``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InvalidInputError(f"feature sets must be (N, D) and (M, D), got "
                                f"{tuple(a.shape)} and {tuple(b.shape)}")
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise InvalidInputError("kernel MMD needs at least 2 samples in each set")
    d = a.shape[1]

    def k(u, v):
        return (u @ v.T / d + 1) ** 3

    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    within_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
    within_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return float(within_a + within_b - 2 * kab.mean())


def _profile(x: torch.Tensor) -> RadialProfile:
    return radial_profile(power_spectrum(x, log=True).mean(dim=(0, 1)))


def assess(samples: torch.Tensor, real: torch.Tensor, *, seed: int = 0) -> dict:
    """Quality figures of ``samples`` against ``real`` (both ``(N, 3, S, S)`` in [-1, 1])."""
    samples, real = check_images(samples, "samples"), check_images(real, "real")
    if samples.shape[1:] != real.shape[1:]:
        raise InvalidInputError(f"samples {tuple(samples.shape[1:])} and real crops "
                                f"{tuple(real.shape[1:])} differ in shape")
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    fr = quality_features(real)
    mean, std = fr.mean(0), fr.std(0).clamp_min(1e-6)

    def z(x):
        return (quality_features(x) - mean) / std

    zr = (fr - mean) / std
    zs, zn = z(samples), z(noise)
    mmd, mmd_noise = kernel_mmd(zs, zr), kernel_mmd(zn, zr)
    to_noise = kernel_mmd(zs, zn)
    return {
        "spectral_distance_db": round(float(spectral_distance(_profile(samples),
                                                              _profile(real))), 3),
        "spectral_distance_noise_db": round(float(spectral_distance(_profile(noise),
                                                                    _profile(real))), 3),
        "kernel_mmd": round(mmd, 4),
        "kernel_mmd_noise": round(mmd_noise, 4),
        "kernel_mmd_to_noise": round(to_noise, 4),
        "passed": bool(mmd < to_noise),
        "samples": len(samples), "real": len(real),
    }

