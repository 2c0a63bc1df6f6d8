"""Figures without pyplot, and their PNG bytes or files.

Figures are made as plain :class:`matplotlib.figure.Figure` objects, not through pyplot:
no backend is chosen or forced, nothing global keeps them alive, and two threads (the
dashboard's sessions) can draw at once. A figure that pyplot did make (a notebook's) is
closed once it has been written, so pyplot lets go of it too.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from core.runtime import atomic_path

DPI = 110  # figures written to files; the dashboard's and notebooks' bytes choose their own


def new_figure(figsize: tuple[float, float]) -> Figure:
    """An empty figure ``figsize`` inches wide and high (no pyplot, no display)."""
    return Figure(figsize=figsize)


def _release(fig: Figure) -> None:
    # pyplot holds every figure it made until it is closed; ours it never saw.
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


def figure_bytes(fig: Figure, *, dpi: int = DPI, tight: bool = True) -> bytes:
    """``fig`` as PNG bytes (``tight``: cropped to what is drawn); the figure is done with."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    finally:
        _release(fig)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, *, dpi: int = DPI, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically; returns ``path``."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    finally:
        _release(fig)
    return Path(path)
