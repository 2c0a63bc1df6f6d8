"""Spectral analysis: pure, batched functions on ``(B, C, H, W)`` tensors (CPU or CUDA).

Frequencies are in cycles/pixel (Nyquist = 0.5) everywhere; log power is in dB.
"""

from core.spectrum.lattice import (
    GridDetection,
    LatticeAccumulator,
    LatticePoint,
    describe_period,
    detect_lattice,
    detect_lattice_in_images,
    folded_maps,
)
from core.spectrum.lattice_points import lattice_points, periods_near
from core.spectrum.peaks import (
    GridPeaks,
    estimate_upsampling_factor,
    find_grid_peaks,
    grid_points,
    grid_score,
)
from core.spectrum.profiles import (
    PowerLaw,
    RadialProfile,
    mean_spectrum,
    power_law_fit,
    radial_profile,
    spectral_distance,
)
from core.spectrum.transforms import (
    RESIDUALS,
    WINDOWS,
    dct2,
    dct_spectrum,
    frequencies,
    power_spectrum,
    residual,
    window_2d,
)

__all__ = [
    "RESIDUALS", "WINDOWS", "GridDetection", "GridPeaks", "LatticeAccumulator", "LatticePoint",
    "describe_period", "detect_lattice", "detect_lattice_in_images", "folded_maps",
    "lattice_points", "periods_near", "PowerLaw", "RadialProfile", "dct2", "dct_spectrum",
    "estimate_upsampling_factor", "find_grid_peaks", "frequencies", "grid_points", "grid_score",
    "mean_spectrum", "power_law_fit", "power_spectrum", "radial_profile", "residual",
    "spectral_distance", "window_2d",
]
