"""PNG files of one spectrum or of radial profiles (what ``fpx spectrum`` writes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from core.figures.axes import draw_profiles, draw_spectrum
from core.figures.canvas import new_figure, save_figure


def spectrum_png(spectrum, path: str | Path, *, peaks=None,
                 predicted: Sequence[tuple[float, float]] = (), diverging: bool = False,
                 title: str = "Mean log spectrum") -> Path:
    """Write a centred dB spectrum ``(H, W)`` to ``path`` (PNG, atomically) on
    cycles/pixel axes, fy upwards, bins centred on their frequencies
    (:mod:`core.figures.axes`); circles mark ``peaks`` (``GridPeaks``), crosses the
    ``predicted`` ``(fx, fy)`` pairs. Returns ``path``."""
    fig = new_figure((5.2, 4.6))
    draw_spectrum(fig.subplots(), spectrum, peaks=peaks, predicted=predicted,
                  diverging=diverging, title=title)
    return save_figure(fig, path)


def profile_png(profiles: Mapping, path: str | Path, *, title: str = "Radial profile") -> Path:
    """Write radial profiles (label -> ``RadialProfile``, dB over cycles/pixel) to
    ``path`` (PNG, atomically); a legend when there is more than one. Returns ``path``."""
    fig = new_figure((5.6, 3.8))
    draw_profiles(fig.subplots(), profiles, title=title, legend=len(profiles) > 1,
                  legend_size=8)
    return save_figure(fig, path)
