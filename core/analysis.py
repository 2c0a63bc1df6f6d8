"""One spectral analysis of a set of images, shared by the CLI and the dashboard.

``analyse_batches`` turns batches of images into a :class:`SpectrumReport`: the mean
log spectrum, its radial profile, grid peaks, the estimated upsampling factor and the
power-law tail. ``analyse_paths`` does the same for files and folders, with named skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from core.data.folder import Skipped, iter_image_batches, scan_images
from core.errors import NoImagesError
from core.spectrum import (
    GridPeaks,
    PowerLaw,
    RadialProfile,
    estimate_upsampling_factor,
    find_grid_peaks,
    grid_score,
    mean_spectrum,
    power_law_fit,
    radial_profile,
)


@dataclass
class SpectrumReport:
    """Everything fpx says about the spectrum of one set of images.

    Attributes:
        images: number of images averaged.
        size: image width in pixels (fpx analyses square ``size x size`` crops).
        residual, window: the settings used.
        spectrum: ``(H, W)`` centred mean log spectrum in dB, averaged over channels.
        profile: its radial profile (cycles/pixel, dB).
        peaks: isolated peaks of ``spectrum``.
        upsampling_factor: the period that explains the peaks, or ``None``.
        grid_prominence_db: mean prominence of the peaks on that period's grid (0 if none).
        power_law: fit of the profile's high-frequency tail.
        skipped: files left out, ``{path, reason}`` each.
    """

    images: int
    size: int
    residual: str
    window: str | None
    spectrum: torch.Tensor
    profile: RadialProfile
    peaks: GridPeaks
    upsampling_factor: int | None
    grid_prominence_db: float
    power_law: PowerLaw
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        """Plain-JSON summary (the ``fpx spectrum --json`` object)."""
        fit = self.power_law
        return {
            "images": self.images,
            "size": self.size,
            "residual": self.residual,
            "window": self.window,
            "skipped": list(self.skipped),
            "radial_profile": {
                "frequency": [round(float(f), 6) for f in self.profile.frequency.tolist()],
                "power_db": [round(float(p), 4) for p in self.profile.power.tolist()],
            },
            "peaks": self.peaks.to_list(),
            "upsampling_factor": self.upsampling_factor,
            "grid_prominence_db": round(self.grid_prominence_db, 3),
            "power_law": {
                "exponent": round(float(fit.exponent), 4),
                "level_db": round(float(fit.level_db), 4),
                "nyquist_db": round(float(fit.nyquist_db), 4),
                "rms_db": round(float(fit.rms_db), 4),
                "min_frequency": POWER_LAW_BAND[0],
                "max_frequency": POWER_LAW_BAND[1],
            },
        }


POWER_LAW_BAND = (0.125, 0.5)  # cycles/pixel: the upper three quarters of the band


def summarise(spectrum: torch.Tensor, *, images: int, residual: str = "none",
              window: str | None = None) -> SpectrumReport:
    """Report on a centred mean dB spectrum ``(C, H, W)`` or ``(H, W)``."""
    spec = spectrum.float().cpu()
    if spec.ndim == 3:
        spec = spec.mean(0)
    peaks = find_grid_peaks(spec, guard=2 if window not in (None, "none") else 1)
    factor = estimate_upsampling_factor(peaks)
    prominence = grid_score(peaks, factor)[1] if factor else 0.0
    profile = radial_profile(spec)
    return SpectrumReport(
        images=images, size=spec.shape[-1], residual=residual, window=window,
        spectrum=spec, profile=profile, peaks=peaks, upsampling_factor=factor,
        grid_prominence_db=prominence,
        power_law=power_law_fit(profile, min_frequency=POWER_LAW_BAND[0],
                                max_frequency=POWER_LAW_BAND[1]),
    )


def analyse_batches(batches: Iterable[torch.Tensor], *, residual: str = "none",
                    window: str | None = None,
                    device: torch.device | str = "cpu") -> SpectrumReport:
    """Analyse an iterable of ``(B, C, H, W)`` batches (square images of one size)."""
    count = 0

    def counted():
        nonlocal count
        for batch in batches:
            count += batch.shape[0]
            yield batch.to(device, non_blocking=True)

    mean = mean_spectrum(counted(), residual_kind=residual, window=window)
    return summarise(mean, images=count, residual=residual, window=window)


def analyse_paths(paths: Iterable[str], *, size: int = 128, residual: str = "none",
                  window: str | None = None, batch_size: int = 64,
                  device: torch.device | str = "cpu",
                  notify: Callable[[str, str], None] | None = None,
                  progress: Callable[[int], None] | None = None,
                  on_files: Callable[[int], None] | None = None) -> SpectrumReport:
    """Analyse the centre ``size`` crops of image files and folders.

    Unusable files are skipped (``notify(path, reason)`` for each; listed in the
    report). Raises :class:`NoImagesError` (an ``InvalidInputError``) when no file is
    usable, saying why where it can (none found, or all smaller than ``size``).

    Args:
        on_files: called once with the number of files found, before loading.
        progress: called with the number of files processed after each batch.
    """
    skipped = Skipped(notify=notify)
    files = scan_images(paths, skipped)
    if on_files is not None:
        on_files(len(files))
    batches = iter_image_batches(files, size, batch_size, skipped=skipped, progress=progress)
    try:
        report = analyse_batches(batches, residual=residual, window=window, device=device)
    except NoImagesError:
        if not files:
            raise NoImagesError("no image files found in the given paths") from None
        small = sum(r["reason"].startswith("too small") for r in skipped.items)
        hint = f" ({small} smaller than {size}x{size}; try a smaller --size)" if small else ""
        raise NoImagesError(f"none of the {len(files)} image files is usable{hint}") from None
    report.skipped = skipped.items
    return report
