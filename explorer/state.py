"""Dashboard state: ``param`` classes over ``core``; no panel import (notebooks reuse it)."""

from __future__ import annotations

import functools

import param

from core.analysis import SpectrumReport, analyse_batches
from core.data import bundled_crops
from core.spectrum import RESIDUALS, WINDOWS


@functools.lru_cache(maxsize=16)
def real_report(residual: str, window: str, size: int, count: int, seed: int) -> SpectrumReport:
    """Spectrum report of ``count`` bundled crops of ``size`` pixels (cached: the real
    images never change, so each setting is computed once per process)."""
    crops = bundled_crops(size, count, seed=seed)
    return analyse_batches([crops], residual=residual,
                           window=None if window == "none" else window)


class RealSpectrumState(param.Parameterized):
    """The mean spectrum of the bundled real photos under one analysis setting."""

    residual = param.Selector(default="none", objects=list(RESIDUALS),
                              doc="High-pass residual taken before the FFT")
    window = param.Selector(default="none", objects=["none", *WINDOWS],
                            doc="Apodisation window applied before the FFT")
    crop_size = param.Selector(default=128, objects=[64, 128, 256],
                               doc="Crop size in pixels")
    crops = param.Integer(default=64, bounds=(8, 512), doc="Number of crops averaged")
    seed = param.Integer(default=0, bounds=(0, None), doc="Seed of the crop positions")
    report = param.ClassSelector(class_=SpectrumReport, allow_None=True, default=None,
                                 doc="The current analysis (read-only output)")

    def __init__(self, **params):
        super().__init__(**params)
        self._update()

    @param.depends("residual", "window", "crop_size", "crops", "seed", watch=True)
    def _update(self) -> None:
        self.report = real_report(self.residual, self.window, self.crop_size, self.crops,
                                  self.seed)
