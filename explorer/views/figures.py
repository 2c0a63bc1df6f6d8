"""Bokeh figures that update in place: each holds its data sources, and ``update`` only
replaces arrays in them, so a control change costs milliseconds of drawing, not a
rebuild of the plot. (Drawing only; the numbers come from ``explorer.state``.)
"""

from __future__ import annotations

import numpy as np
import torch
from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper, Range1d
from bokeh.palettes import Magma256, RdBu11
from bokeh.plotting import figure

from core.figures.axes import (
    DETECTED_COLOR,
    DETECTED_LABEL,
    PREDICTED_COLOR,
    PREDICTED_LABEL,
    color_limits,
    spectrum_extent,
)
from core.spectrum import GridPeaks, RadialProfile

SPECTRUM_SIZE = 270
CROP_SIZE = 170
LINE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


class SpectrumFigure:
    """A centred dB spectrum on cycles/pixel axes, with detected peaks (circles) and,
    optionally, predicted peaks (crosses).

    The axis convention is the one of every fpx spectrum figure
    (:mod:`core.figures.axes`): fy upwards (Bokeh draws an image's row 0 at the bottom,
    and row 0 is the most negative fy), each bin centred on its frequency, the image and
    the axes spanning :func:`~core.figures.axes.spectrum_extent`.
    """

    def __init__(self, title: str, *, diverging: bool = False):
        self.diverging = diverging
        palette = list(RdBu11) if diverging else Magma256  # RdBu11 runs blue -> red
        self.mapper = LinearColorMapper(palette=palette, low=-1, high=1)
        self.image = ColumnDataSource(dict(image=[np.zeros((2, 2))], x=[-0.5], y=[-0.5],
                                           dw=[1.0], dh=[1.0]))
        self.detected = ColumnDataSource(dict(fx=[], fy=[], db=[]))
        self.predicted = ColumnDataSource(dict(fx=[], fy=[]))
        fig = figure(title=title, frame_width=SPECTRUM_SIZE, frame_height=SPECTRUM_SIZE,
                     x_range=Range1d(-0.5, 0.5), y_range=Range1d(-0.5, 0.5),
                     x_axis_label="fx (cycles/pixel)", y_axis_label="fy (cycles/pixel)",
                     tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above")
        img = fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image,
                        color_mapper=self.mapper)
        fig.add_tools(HoverTool(renderers=[img], tooltips=[("fx", "$x{0.000}"),
                                                           ("fy", "$y{0.000}"),
                                                           ("dB", "@image{0.0}")]))
        if not diverging:
            det = fig.scatter("fx", "fy", source=self.detected, marker="circle", size=14,
                              fill_alpha=0, line_color=DETECTED_COLOR, line_width=2,
                              legend_label=DETECTED_LABEL)
            fig.scatter("fx", "fy", source=self.predicted, marker="x", size=12,
                        line_color=PREDICTED_COLOR, line_width=2,
                        legend_label=PREDICTED_LABEL)
            fig.add_tools(HoverTool(renderers=[det], tooltips=[("peak", "(@fx, @fy)"),
                                                               ("prominence", "@db{0.0} dB")]))
            fig.legend.location = "bottom_left"
            fig.legend.label_text_font_size = "8pt"
            fig.legend.background_fill_alpha = 0.6
        fig.add_layout(ColorBar(color_mapper=self.mapper, width=12, title="dB"), "right")
        self.figure = fig
        self.extent: tuple[float, float, float, float] | None = None

    def update(self, spectrum: torch.Tensor, peaks: GridPeaks | None = None,
               predicted: list[tuple[float, float]] | None = None,
               clim: tuple[float, float] | None = None) -> None:
        spec = _array(spectrum)
        if clim is None:
            clim = color_limits(spec, self.diverging)
        self.mapper.update(low=clim[0], high=clim[1])
        left, right, bottom, top = spectrum_extent(*spec.shape)
        self.image.data = dict(image=[spec], x=[left], y=[bottom], dw=[right - left],
                               dh=[top - bottom])
        self._fit_ranges((left, right, bottom, top))
        if peaks is not None:
            self.detected.data = dict(fx=peaks.fx.tolist(), fy=peaks.fy.tolist(),
                                      db=peaks.prominence_db.tolist())
        pts = predicted or []
        self.predicted.data = dict(fx=[p[0] for p in pts], fy=[p[1] for p in pts])
        if not self.diverging:  # a legend only when there is something to name
            self.figure.legend.visible = bool(pts) or bool(len(self.detected.data["fx"]))


    def _fit_ranges(self, extent: tuple[float, float, float, float]) -> None:
        """Axes exactly over the image, as matplotlib's ``imshow`` sets them; only when the
        size changes, so a zoom survives updates of the same size (and reset returns to
        the image)."""
        if extent == self.extent:
            return
        self.extent = extent
        for rng, (lo, hi) in ((self.figure.x_range, extent[:2]),
                              (self.figure.y_range, extent[2:])):
            rng.update(start=lo, end=hi, reset_start=lo, reset_end=hi)


class ProfileFigure:
    """Radial profiles (dB) on one cycles/pixel axis, one line per label, DC left out."""

    def __init__(self, title: str, labels: list[str]):
        fig = figure(title=title, frame_width=SPECTRUM_SIZE, frame_height=SPECTRUM_SIZE,
                     x_range=Range1d(0, 0.5), x_axis_label="frequency (cycles/pixel)",
                     y_axis_label="mean power (dB)", tools="pan,wheel_zoom,box_zoom,reset,save",
                     toolbar_location="above")
        self.sources = {}
        for label, color in zip(labels, LINE_COLORS):
            src = ColumnDataSource(dict(f=[], db=[]))
            fig.line("f", "db", source=src, line_width=2, color=color, legend_label=label)
            self.sources[label] = src
        fig.add_tools(HoverTool(tooltips=[("f", "@f{0.000} c/px"), ("power", "@db{0.0} dB")]))
        fig.legend.location = "top_right"
        self.figure = fig

    def update(self, profiles: dict[str, RadialProfile]) -> None:
        for label, prof in profiles.items():
            self.sources[label].data = dict(f=_array(prof.frequency)[1:],
                                            db=_array(prof.power)[1:])


class CropFigure:
    """An RGB crop ``(3, H, W)`` in ``[-1, 1]``."""

    def __init__(self, title: str):
        self.source = ColumnDataSource(dict(image=[np.zeros((2, 2), np.uint32)], dw=[2],
                                            dh=[2]))
        fig = figure(title=title, frame_width=CROP_SIZE, frame_height=CROP_SIZE,
                     toolbar_location=None, match_aspect=True)
        fig.image_rgba(image="image", x=0, y=0, dw="dw", dh="dh", source=self.source)
        fig.axis.visible = False
        fig.grid.visible = False
        self.figure = fig

    def update(self, crop: torch.Tensor) -> None:
        rgb = ((crop.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
        h, w = rgb.shape[-2:]
        rgba = torch.cat([rgb, torch.full((1, h, w), 255, dtype=torch.uint8)])
        # Bokeh draws row 0 at the bottom: flip so the crop stands upright.
        packed = rgba.permute(1, 2, 0).flip(0).contiguous().numpy().view(np.uint32)[..., 0]
        self.source.data = dict(image=[packed], dw=[w], dh=[h])
        self.figure.x_range.end, self.figure.y_range.end = w, h
