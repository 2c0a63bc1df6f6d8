"""One spectral analysis of a set of images, shared by the CLI and the dashboard.

``analyse_batches`` turns batches of images into a :class:`SpectrumReport`: the mean
log spectrum, its radial profile, isolated peaks, the upsampling lattice
(:func:`core.spectrum.detect_lattice`, whose period is the reported upsampling factor)
and the power-law tail. ``analyse_paths`` does the same for files and folders, with
named skips, the images' own size unless one is given, and JPEG files named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from core.data.folder import (
    SizeChoice,
    Skipped,
    choose_crop_size,
    is_jpeg,
    iter_image_batches,
    scan_images,
)
from core.errors import NoImagesError
from core.spectrum import (
    GridDetection,
    GridPeaks,
    LatticeAccumulator,
    PowerLaw,
    RadialProfile,
    find_grid_peaks,
    mean_spectrum,
    power_law_fit,
    radial_profile,
)

JPEG_BLOCK = 8  # pixels: the JPEG block grid, left out of the lattice evidence for JPEGs


@dataclass
class SpectrumReport:
    """Everything fpx says about the spectrum of one set of images.

    Attributes:
        images: number of images averaged.
        size: image width in pixels (fpx analyses square ``size x size`` crops).
        residual, window: the settings used.
        spectrum: ``(H, W)`` centred mean log spectrum in dB, averaged over channels.
        profile: its radial profile (cycles/pixel, dB).
        peaks: isolated peaks of ``spectrum`` (drawn on figures; the lattice decides).
        grid: the upsampling lattice found in the images (:class:`GridDetection`).
        power_law: fit of the profile's high-frequency tail.
        skipped: files left out, ``{path, reason}`` each.
        size_choice: how the crop size was chosen (files only), or ``None``.
        jpeg: number of JPEG files analysed (their 8x8 block grid is left out).
    """

    images: int
    size: int
    residual: str
    window: str | None
    spectrum: torch.Tensor
    profile: RadialProfile
    peaks: GridPeaks
    grid: GridDetection
    power_law: PowerLaw
    skipped: list[dict[str, str]] = field(default_factory=list)
    size_choice: SizeChoice | None = None
    jpeg: int = 0

    @property
    def upsampling_factor(self) -> int | float | None:
        """The lattice's period in pixels (the upsampling factor), or ``None``."""
        return self.grid.period

    @property
    def grid_prominence_db(self) -> float:
        """Mean power of the lattice above its local background (dB; 0 if none)."""
        return self.grid.score_db

    def to_json_dict(self) -> dict:
        """Plain-JSON summary (the ``fpx spectrum --json`` object)."""
        fit = self.power_law
        return {
            "images": self.images,
            "size": self.size,
            "size_choice": self.size_choice.to_json_dict() if self.size_choice else None,
            "jpeg_files": self.jpeg,
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
            "grid": self.grid.to_json_dict(),
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


def summarise(spectrum: torch.Tensor, grid: GridDetection, *, images: int,
              residual: str = "none", window: str | None = None) -> SpectrumReport:
    """Report on a centred mean dB spectrum ``(C, H, W)`` or ``(H, W)`` and the lattice
    found in the same images."""
    spec = spectrum.float().cpu()
    if spec.ndim == 3:
        spec = spec.mean(0)
    peaks = find_grid_peaks(spec, guard=2 if window not in (None, "none") else 1)
    profile = radial_profile(spec)
    return SpectrumReport(
        images=images, size=spec.shape[-1], residual=residual, window=window,
        spectrum=spec, profile=profile, peaks=peaks, grid=grid,
        power_law=power_law_fit(profile, min_frequency=POWER_LAW_BAND[0],
                                max_frequency=POWER_LAW_BAND[1]),
    )


def analyse_batches(batches: Iterable[torch.Tensor], *, residual: str = "none",
                    window: str | None = None, device: torch.device | str = "cpu",
                    exclude_period: int | None = None, draws: int = 199,
                    candidates=None, fractional: bool = True) -> SpectrumReport:
    """Analyse an iterable of ``(B, C, H, W)`` batches (square images of one size), in one
    pass: the mean spectrum and the lattice's group maps are accumulated together.

    Args:
        exclude_period: a period whose lattice is not evidence (8 for JPEG files).
        draws, candidates, fractional: options of the lattice test
            (:func:`core.spectrum.detect_lattice`); fewer draws and candidates are faster
            (the dashboard's lab tests the periods its design makes likely).
    """
    lattice = LatticeAccumulator()

    def counted():
        for batch in batches:
            batch = batch.to(device, non_blocking=True)
            lattice.add(batch)
            yield batch

    mean = mean_spectrum(counted(), residual_kind=residual, window=window)
    grid = lattice.detect(exclude_period=exclude_period, draws=draws, candidates=candidates,
                          fractional=fractional)
    return summarise(mean, grid, images=lattice.seen, residual=residual, window=window)


def analyse_paths(paths: Iterable[str], *, size: int | None = None, residual: str = "none",
                  window: str | None = None, batch_size: int = 64,
                  device: torch.device | str = "cpu",
                  notify: Callable[[str, str], None] | None = None,
                  progress: Callable[[int], None] | None = None,
                  on_files: Callable[[int], None] | None = None) -> SpectrumReport:
    """Analyse the centre ``size`` crops of image files and folders.

    ``size=None`` uses the images' own size: the shorter side of the most common size
    among the files (read from their headers); larger images are centre-cropped, smaller
    ones skipped by name (:func:`core.data.folder.choose_crop_size`). Unusable files are
    skipped (``notify(path, reason)`` for each; listed in the report). When any file used
    is a JPEG, the 8x8 block lattice is left out of the upsampling evidence.

    Raises :class:`NoImagesError` (an ``InvalidInputError``) when no file is usable,
    saying why where it can (none found, or all smaller than ``size``).

    Args:
        on_files: called once with the number of files found, before loading.
        progress: called with the number of files processed after each batch.
    """
    skipped = Skipped(notify=notify)
    files = scan_images(paths, skipped)
    if on_files is not None:
        on_files(len(files))
    choice = choose_crop_size(files, size)
    used: list = []

    def batches():
        for x, kept in iter_image_batches(files, choice.size, batch_size, skipped=skipped,
                                          progress=progress, with_paths=True):
            used.extend(kept)
            yield x

    jpegs = {f for f in files if is_jpeg(f)}
    try:
        report = analyse_batches(batches(), residual=residual, window=window, device=device,
                                 exclude_period=JPEG_BLOCK if jpegs else None)
    except NoImagesError:
        if not files:
            raise NoImagesError("no image files found in the given paths") from None
        small = sum(r["reason"].startswith("too small") for r in skipped.items)
        hint = ""
        if small:
            hint = f" ({small} smaller than {choice.size}x{choice.size}"
            hint += "; try a smaller --size)" if not choice.auto else ")"
        raise NoImagesError(f"none of the {len(files)} image files is usable{hint}") from None
    report.skipped = skipped.items
    report.size_choice = choice
    report.jpeg = sum(p in jpegs for p in used)
    return report
