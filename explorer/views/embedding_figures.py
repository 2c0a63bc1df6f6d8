"""Bokeh figures of the Embeddings, Attribute and Manifold tabs that update in place:
a 2-D map coloured by a category, a labelled matrix, an ROC curve. Drawing only; the
numbers come from ``explorer.embeddings`` and ``explorer.attribute``.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import (
    BasicTicker,
    ColorBar,
    ColumnDataSource,
    FactorRange,
    HoverTool,
    LinearColorMapper,
    Range1d,
    TapTool,
)
from bokeh.palettes import Category10_10, Category20_20, Viridis256
from bokeh.plotting import figure

MAP_SIZE = 420
MATRIX_SIZE = 360
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
THUMB_TOOLTIP = """
<div><img src="@thumb" width="64" height="64" style="image-rendering: pixelated;"
 onerror="this.style.display='none'"><br><b>@model</b> <span>@colour</span></div>
"""


def palette(n: int) -> list[str]:
    """``n`` distinguishable colours (cycled past 20)."""
    base = Category10_10 if n <= 10 else Category20_20
    return [base[i % len(base)] for i in range(n)]


class MapFigure:
    """Points ``(x, y)`` coloured by a category, a legend of the categories, a tooltip
    with the point's thumbnail when one is given, and a tap (click) selection."""

    def __init__(self, title: str):
        self.source = ColumnDataSource(dict(x=[], y=[], model=[], colour=[], fill=[], row=[],
                                            thumb=[]))
        fig = figure(title=title, frame_width=MAP_SIZE, frame_height=MAP_SIZE,
                     x_range=Range1d(-1, 1), y_range=Range1d(-1, 1), tools=TOOLS,
                     toolbar_location="above")
        self.renderer = fig.scatter("x", "y", source=self.source, size=7, fill_color="fill",
                                    line_color="fill", fill_alpha=0.7, legend_field="colour",
                                    nonselection_fill_alpha=0.25, selection_line_color="black")
        fig.add_tools(TapTool(renderers=[self.renderer]),
                      HoverTool(renderers=[self.renderer], tooltips=THUMB_TOOLTIP))
        fig.legend.label_text_font_size = "8pt"
        fig.legend.click_policy = "hide"
        fig.add_layout(fig.legend[0], "right")
        self.figure = fig

    def update(self, xy: np.ndarray, models, colours, rows, thumbs=None) -> None:
        names = list(dict.fromkeys(sorted(colours)))
        lookup = dict(zip(names, palette(len(names))))
        n = len(xy)
        self.source.selected.indices = []
        self.source.data = dict(x=xy[:, 0].tolist(), y=xy[:, 1].tolist(), model=list(models),
                                colour=list(colours), fill=[lookup[c] for c in colours],
                                row=list(rows), thumb=list(thumbs or [""] * n))
        if n:
            lo, hi = xy.min(0), xy.max(0)
            pad = 0.05 * np.maximum(hi - lo, 1e-6)
            self.figure.x_range.update(start=lo[0] - pad[0], end=hi[0] + pad[0])
            self.figure.y_range.update(start=lo[1] - pad[1], end=hi[1] + pad[1])


class MatrixFigure:
    """A labelled ``(M, M)`` matrix (rows from top), the value in each cell's tooltip."""

    def __init__(self, title: str, low: float | None = None, high: float | None = None,
                 x_label: str = "", y_label: str = ""):
        self.source = ColumnDataSource(dict(row=[], col=[], value=[], text=[]))
        self.mapper = LinearColorMapper(palette=Viridis256, low=low or 0, high=high or 1)
        self.fixed = (low, high)
        fig = figure(title=title, frame_width=MATRIX_SIZE, frame_height=MATRIX_SIZE,
                     x_range=FactorRange(factors=["-"]), y_range=FactorRange(factors=["-"]),
                     tools="save,reset", toolbar_location="above", x_axis_label=x_label,
                     y_axis_label=y_label)
        fig.rect("col", "row", 1, 1, source=self.source, line_color=None,
                 fill_color={"field": "value", "transform": self.mapper})
        fig.xaxis.major_label_orientation = 1.0
        fig.axis.major_label_text_font_size = "7pt"
        fig.add_tools(HoverTool(tooltips=[("row", "@row"), ("column", "@col"),
                                          ("value", "@text")]))
        fig.add_layout(ColorBar(color_mapper=self.mapper, ticker=BasicTicker(), width=8),
                       "right")
        self.figure = fig

    def update(self, names, matrix: np.ndarray, fmt: str = "{:.3f}") -> None:
        names = [str(n) for n in names]
        m = np.asarray(matrix, dtype=np.float64)
        rows, cols = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
        self.source.data = dict(row=[names[i] for i in rows.ravel()],
                                col=[names[j] for j in cols.ravel()],
                                value=m.ravel().tolist(),
                                text=[fmt.format(v) for v in m.ravel()])
        self.figure.x_range.factors = names
        self.figure.y_range.factors = names[::-1]
        low, high = self.fixed
        self.mapper.update(low=float(m.min()) if low is None else low,
                           high=float(m.max()) if high is None else high)


class CurveFigure:
    """One curve on ``[0, 1]`` axes (an ROC) with the chance diagonal."""

    def __init__(self, title: str, x_label: str, y_label: str):
        self.source = ColumnDataSource(dict(x=[], y=[]))
        fig = figure(title=title, frame_width=MATRIX_SIZE, frame_height=MATRIX_SIZE,
                     x_range=Range1d(0, 1), y_range=Range1d(0, 1), tools=TOOLS,
                     toolbar_location="above", x_axis_label=x_label, y_axis_label=y_label)
        fig.line([0, 1], [0, 1], color="grey", line_dash="dashed")
        fig.line("x", "y", source=self.source, line_width=2, color="#1f77b4")
        self.figure = fig

    def update(self, x, y, title: str | None = None) -> None:
        self.source.data = dict(x=np.asarray(x).tolist(), y=np.asarray(y).tolist())
        if title is not None:
            self.figure.title.text = title
