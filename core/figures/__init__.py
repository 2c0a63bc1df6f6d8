"""Every figure fpx draws, on one axis convention.

* :mod:`core.figures.axes`: the convention (cycles/pixel, fy upwards, bins centred on
  their frequencies: :func:`spectrum_extent`) and the drawing helpers on a matplotlib
  ``Axes``: :func:`draw_spectrum`, :func:`draw_profiles`, :func:`draw_images`;
* :mod:`core.figures.canvas`: figures without pyplot, PNG bytes, atomic PNG files;
* :mod:`core.figures.spectra`: :func:`spectrum_png`, :func:`profile_png`;
* :mod:`core.figures.groups`: :func:`confusion_png`, :func:`dendrogram_png`,
  :func:`scatter_png`;
* :mod:`core.figures.grids`: :func:`contact_sheet`, :func:`artifact_grid` (Pillow).

The dashboard's Bokeh spectrum (``explorer.views.figures``) and the lab's PNG export
(``explorer.export``) draw with the same extent, colour limits and markers, and every
figure colours a role (real, generated, A, B, detected, predicted) with
:data:`~core.figures.axes.ROLE_COLORS`; compared panels share one colour range
(:func:`~core.figures.axes.shared_color_limits`).
"""

from core.figures.axes import (
    ROLE_COLORS,
    color_limits,
    draw_images,
    draw_profiles,
    draw_spectrum,
    role_color,
    shared_color_limits,
    spectrum_extent,
)
from core.figures.canvas import figure_bytes, new_figure, save_figure
from core.figures.grids import artifact_grid, contact_sheet, write_contact_sheet
from core.figures.groups import confusion_png, dendrogram_png, scatter_png
from core.figures.spectra import profile_png, spectrum_png

__all__ = [
    "ROLE_COLORS", "artifact_grid", "color_limits", "confusion_png", "contact_sheet",
    "dendrogram_png",
    "draw_images", "draw_profiles", "draw_spectrum", "figure_bytes", "new_figure",
    "profile_png", "role_color", "save_figure", "scatter_png", "shared_color_limits",
    "spectrum_extent", "spectrum_png",
    "write_contact_sheet",
]
