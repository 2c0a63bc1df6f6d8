"""HoloViews elements for spectra, profiles, peaks and crops (no maths, only drawing)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import torch

from core.spectrum import GridPeaks, RadialProfile

SPECTRUM_SIZE = 270
CROP_SIZE = 170
PREDICTED_COLOR = "#39ff14"
DETECTED_COLOR = "cyan"


def _bounds(h: int, w: int) -> tuple[float, float, float, float]:
    # Bin centres run from -(n//2)/n to (n-1-n//2)/n; the image covers +- half a bin.
    dy, dx = 1.0 / h, 1.0 / w
    fy0, fx0 = -(h // 2) * dy, -(w // 2) * dx
    return (fx0 - dx / 2, fy0 - dy / 2, fx0 + (w - 0.5) * dx, fy0 + (h - 0.5) * dy)


def spectrum_image(spectrum: torch.Tensor, title: str, *, diverging: bool = False,
                   clim: tuple[float, float] | None = None) -> hv.Image:
    """A centred dB spectrum ``(H, W)`` on cycles/pixel axes, fy increasing upwards."""
    spec = spectrum.detach().float().cpu().numpy()
    h, w = spec.shape
    if clim is None:
        if diverging:
            top = float(np.quantile(np.abs(spec), 0.995)) or 1.0
            clim = (-top, top)
        else:
            clim = tuple(float(v) for v in np.quantile(spec, [0.01, 0.999]))
    return hv.Image(np.flipud(spec), bounds=_bounds(h, w), kdims=["fx", "fy"],
                    vdims=["dB"]).opts(
        cmap="RdBu_r" if diverging else "magma", colorbar=True, clim=clim, title=title,
        xlabel="fx (cycles/pixel)", ylabel="fy (cycles/pixel)",
        frame_width=SPECTRUM_SIZE, frame_height=SPECTRUM_SIZE, tools=["hover"],
        framewise=True, toolbar="above",
    )


def peak_points(peaks: GridPeaks, label: str = "detected peaks") -> hv.Points:
    data = {"fx": peaks.fx.numpy(), "fy": peaks.fy.numpy(), "dB": peaks.prominence_db.numpy()}
    return hv.Points(data, kdims=["fx", "fy"], vdims=["dB"], label=label).opts(
        marker="circle", fill_alpha=0, line_color=DETECTED_COLOR, line_width=2, size=14,
        tools=["hover"], show_legend=len(peaks) > 0,
    )


def predicted_points(points: list[tuple[float, float]], visible: bool = True) -> hv.Points:
    data = points if visible else []
    return hv.Points(data, kdims=["fx", "fy"], label="predicted (theory)").opts(
        marker="x", color=PREDICTED_COLOR, size=12, line_width=2, show_legend=bool(data),
    )


def profile_curves(profiles: dict[str, RadialProfile],
                   title: str = "Radial profiles") -> hv.Overlay:
    """Radial profiles on one cycles/pixel axis (DC left out)."""
    curves = [
        hv.Curve((p.frequency.numpy()[1:], p.power.detach().cpu().numpy()[1:]),
                 kdims=["frequency"], vdims=["dB"], label=label)
        for label, p in profiles.items()
    ]
    return hv.Overlay(curves).opts(
        hv.opts.Curve(tools=["hover"], line_width=2),
        hv.opts.Overlay(title=title, xlabel="frequency (cycles/pixel)",
                        ylabel="mean power (dB)", frame_width=SPECTRUM_SIZE,
                        frame_height=SPECTRUM_SIZE, show_grid=True,
                        legend_position="top_right",
                        framewise=True, toolbar="above"),
    )


def crop_rgb(crop: torch.Tensor, title: str) -> hv.RGB:
    """A ``(3, H, W)`` image in ``[-1, 1]``."""
    img = ((crop.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    h, w = img.shape[:2]
    return hv.RGB(img, bounds=(0, 0, w, h)).opts(
        title=title, frame_width=CROP_SIZE, frame_height=CROP_SIZE, xaxis=None, yaxis=None,
        toolbar=None,
    )
