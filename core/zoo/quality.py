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

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.errors import InvalidInputError, check_int, check_real
from core.records import exact_fields
from core.spectrum import power_spectrum, radial_profile, spectral_distance
from core.spectrum.profiles import RadialProfile
from core.spectrum.transforms import check_images


@dataclass(frozen=True)
class QualityReport:
    """The quality figures of one set of samples against real crops (see the module).

    Attributes:
        spectral_distance_db: samples vs real crops, dB (3 decimals); 0 = same spectrum.
        spectral_distance_noise_db: uniform noise vs the same crops, dB: failure's scale.
        kernel_mmd: samples vs real crops, unbiased MMD^2 (4 decimals; may dip below 0).
        kernel_mmd_noise: uniform noise vs the real crops.
        kernel_mmd_to_noise: samples vs that noise.
        passed: ``kernel_mmd < kernel_mmd_to_noise``: closer to real crops than to noise.
        samples, real: how many images of each were compared (at least 2).

    :meth:`to_dict` keeps this field order, which the zoo manifest stores.
    """

    spectral_distance_db: float
    spectral_distance_noise_db: float
    kernel_mmd: float
    kernel_mmd_noise: float
    kernel_mmd_to_noise: float
    passed: bool
    samples: int
    real: int

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self)[:5]:
            object.__setattr__(self, f.name, check_real(f"quality report: {f.name}",
                                                        getattr(self, f.name)))
        if not isinstance(self.passed, bool):
            raise InvalidInputError(f"quality report: passed must be true or false, got "
                                    f"{self.passed!r}")
        for name in ("samples", "real"):
            check_int(f"quality report: {name}", getattr(self, name), 2)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> QualityReport:
        return cls(**exact_fields(cls, d, "a quality report"))


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


def assess(samples: torch.Tensor, real: torch.Tensor, *, seed: int = 0) -> QualityReport:
    """Quality figures of ``samples`` against ``real`` (both ``(N, 3, S, S)`` in [-1, 1]);
    ``seed`` draws the uniform noise images that set the scale of failure."""
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
    return QualityReport(
        spectral_distance_db=round(float(spectral_distance(_profile(samples),
                                                           _profile(real))), 3),
        spectral_distance_noise_db=round(float(spectral_distance(_profile(noise),
                                                                 _profile(real))), 3),
        kernel_mmd=round(mmd, 4),
        kernel_mmd_noise=round(mmd_noise, 4),
        kernel_mmd_to_noise=round(to_noise, 4),
        passed=bool(mmd < to_noise),
        samples=len(samples), real=len(real),
    )

