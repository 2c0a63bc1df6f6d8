"""Bokeh figures that update in place: each holds its data sources, and ``update`` only
replaces arrays in them, so a control change costs milliseconds of drawing, not a
rebuild of the plot. (Drawing only; the numbers come from ``explorer.state``.)
"""

from __future__ import annotations

import numpy as np
import torch
from bokeh.core.properties import value
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    HoverTool,
    Legend,
    LinearColorMapper,
    Range1d,
)
from bokeh.palettes import Magma256, RdBu11
from bokeh.plotting import figure

from core.figures.axes import (
    DETECTED_COLOR,
    DETECTED_LABEL,
    DIFFERENCE_LABEL,
    PREDICTED_COLOR,
    PREDICTED_LABEL,
    color_limits,
    role_color,
    spectrum_extent,
)
from core.spectrum import GridPeaks, RadialProfile

# The readouts' tables keep their cell borders however often they are rewritten (the
# Markdown pane's own table style is not re-applied after an update).
TABLE_CSS = """
table { border-collapse: collapse; }
th, td { border: 1px solid #c8c8c8; padding: 3px 8px; }
"""
SPECTRUM_SIZE = 250  # plot frame, px: square, and two spectra side by side fit 1024 px
CROP_SIZE = 150
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


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

    def __init__(self, title: str, *, diverging: bool = False, colorbar_title: str = ""):
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
                     tools=TOOLS, toolbar_location="above")
        img = fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image,
                        color_mapper=self.mapper)
        fig.add_tools(HoverTool(renderers=[img], tooltips=[("fx", "$x{0.000}"),
                                                           ("fy", "$y{0.000}"),
                                                           ("dB", "@image{0.0}")]))
        self.legend = None
        if not diverging:
            det = fig.scatter("fx", "fy", source=self.detected, marker="circle", size=14,
                              fill_alpha=0, line_color=DETECTED_COLOR, line_width=2)
            fig.scatter("fx", "fy", source=self.predicted, marker="x", size=12,
                        line_color=PREDICTED_COLOR, line_width=2)
            fig.add_tools(HoverTool(renderers=[det], tooltips=[("peak", "(@fx, @fy)"),
                                                               ("prominence", "@db{0.0} dB")]))
            # Below the plot, outside the data; on magma's black so the markers read as
            # they do on the spectrum. The keys are drawn by renderers of their own (one
            # point off the plot): a legend item of an empty source shows no marker, and
            # the real images' spectrum mostly has none.
            keys = [fig.scatter(x=[np.nan], y=[np.nan], marker=marker, size=size,
                                fill_alpha=0, line_color=color, line_width=2)
                    for marker, size, color in (("circle", 12, DETECTED_COLOR),
                                                ("x", 10, PREDICTED_COLOR))]
            self.legend = Legend(items=[(DETECTED_LABEL, [keys[0]]),
                                        (PREDICTED_LABEL, [keys[1]])],
                                 orientation="horizontal", label_text_font_size="8pt",
                                 label_text_color="white", background_fill_color="#303030",
                                 background_fill_alpha=1, padding=4, spacing=8, margin=4)
            fig.add_layout(self.legend, "below")
        self.colorbar = ColorBar(
            color_mapper=self.mapper, width=12, title_text_font_size="8pt",
            title=colorbar_title or (DIFFERENCE_LABEL if diverging else "dB"))
        fig.add_layout(self.colorbar, "right")
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
    """Radial profiles (dB) on one cycles/pixel axis, one line per label, DC left out.

    ``roles`` maps a label to the role whose colour it wears (``real``, ``generated``,
    ``A``, ``B``: :data:`core.figures.axes.ROLE_COLORS`); a label that is a role needs no
    entry. The legend sits below the plot.
    """

    def __init__(self, title: str, labels: list[str], roles: dict[str, str] | None = None):
        roles = roles or {}
        # Explicit ranges: an empty DataRange1d makes BokehJS warn "could not set initial
        # ranges" for every figure drawn before its data arrives.
        fig = figure(title=title, frame_width=SPECTRUM_SIZE, frame_height=SPECTRUM_SIZE,
                     x_range=Range1d(0, 0.5), y_range=Range1d(-40, 10),
                     x_axis_label="frequency (cycles/pixel)", y_axis_label="mean power (dB)",
                     tools=TOOLS, toolbar_location="above")
        self.sources, self.lines, items = {}, {}, []
        for label in labels:
            src = ColumnDataSource(dict(f=[], db=[]))
            line = fig.line("f", "db", source=src, line_width=2,
                            color=role_color(roles.get(label, label)) or "grey")
            self.sources[label], self.lines[label] = src, line
            items.append((label, [line]))
        fig.add_tools(HoverTool(tooltips=[("f", "@f{0.000} c/px"), ("power", "@db{0.0} dB")]))
        self.legend = Legend(items=items, orientation="horizontal",
                             label_text_font_size="8pt", padding=4, spacing=8, margin=4)
        fig.add_layout(self.legend, "below")
        self.figure = fig

    def set_role(self, label: str, role: str, name: str | None = None) -> None:
        """Colour ``label``'s line as ``role`` and call it ``name`` in the legend."""
        self.lines[label].glyph.line_color = role_color(role)
        if name is not None:
            for item in self.legend.items:
                if item.renderers[0] is self.lines[label]:
                    item.label = value(name)  # a plain string would name a column

    def update(self, profiles: dict[str, RadialProfile]) -> None:
        lo, hi = np.inf, -np.inf
        for label, prof in profiles.items():
            db = _array(prof.power)[1:]
            self.sources[label].data = dict(f=_array(prof.frequency)[1:], db=db)
            lo, hi = min(lo, float(db.min())), max(hi, float(db.max()))
        if np.isfinite(lo):
            pad = 0.05 * max(hi - lo, 1.0)
            self.figure.y_range.update(start=lo - pad, end=hi + pad, reset_start=lo - pad,
                                       reset_end=hi + pad)


class CropFigure:
    """An RGB crop ``(3, H, W)`` in ``[-1, 1]``."""

    def __init__(self, title: str, size: int = CROP_SIZE):
        self.source = ColumnDataSource(dict(image=[np.zeros((2, 2), np.uint32)], dw=[2],
                                            dh=[2]))
        fig = figure(title=title, frame_width=size, frame_height=size,
                     toolbar_location=None, x_range=Range1d(0, 2), y_range=Range1d(0, 2))
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
