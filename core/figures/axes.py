"""The one axis convention of every spectrum fpx draws, and the helpers that draw on it.

A centred spectrum ``(H, W)`` (``fftshift`` order, as :func:`core.spectrum.power_spectrum`
returns it: row ``i`` holds ``fy = frequencies(H)[i]``, column ``j`` holds
``fx = frequencies(W)[j]``) is drawn

* on axes in cycles/pixel (Nyquist = 0.5), fx to the right and fy **upwards**: row 0,
  the most negative fy, at the bottom, as in a plot of any function of (fx, fy);
* with each bin a cell *centred* on its frequency, so the image reaches half a bin
  beyond the first and last centres (:func:`spectrum_extent`). For even ``n`` an axis
  runs from ``-0.5 - 0.5/n`` to ``0.5 - 0.5/n``; for odd ``n`` from ``-0.5`` to ``0.5``.

Peaks (``GridPeaks``) and predicted lines are then plotted at their ``(fx, fy)`` and land
on their bins. The dashboard's Bokeh spectrum (``explorer.views.figures``) takes its
extent and colour limits from here, so both renderers agree.

The helpers draw on a matplotlib ``Axes`` someone else made; they never create, show or
save a figure (:mod:`core.figures.canvas` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.errors import InvalidInputError, check_int

SPECTRUM_CMAP = "magma"
DIVERGING_CMAP = "RdBu_r"  # blue below zero, red above: red = the generated side has more

# One colour per role, in every figure fpx draws (matplotlib here, Bokeh in the dashboard,
# the notebooks): the real images blue, the current generator red (so a difference map's
# red, "generated higher", is the generator's colour too), a pinned or other compared
# generator A purple; B, the current configuration beside A, *is* the current generator
# and keeps its red. Peaks on a spectrum: detected cyan circles, predicted green crosses
# (bright on magma's dark background).
ROLE_COLORS = {
    "real": "#1f77b4",
    "generated": "#d62728",
    "A": "#9467bd",
    "B": "#d62728",
    "detected": "#00e5ff",
    "predicted": "#39ff14",
}
DETECTED_COLOR = ROLE_COLORS["detected"]
PREDICTED_COLOR = ROLE_COLORS["predicted"]
DETECTED_LABEL = "detected peaks"
PREDICTED_LABEL = "predicted (theory)"
DIFFERENCE_LABEL = "dB (red: generated higher)"


def as_array(x) -> np.ndarray:
    """A tensor (any device, with or without grad) or array-like as a NumPy array."""
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def spectrum_extent(h: int, w: int) -> tuple[float, float, float, float]:
    """``(left, right, bottom, top)`` in cycles/pixel of a centred ``(h, w)`` spectrum
    drawn with fy upwards and bins centred on their frequencies: the first and last bin
    centres ``-(n // 2) / n`` and ``(n - 1 - n // 2) / n``, each widened by half a bin
    ``0.5 / n``. (matplotlib: ``imshow(..., origin="lower", extent=...)``; Bokeh:
    ``x=left, y=bottom, dw=right - left, dh=top - bottom``.)"""
    h, w = check_int("spectrum height", h), check_int("spectrum width", w)

    def edges(n: int) -> tuple[float, float]:
        return -(n // 2) / n - 0.5 / n, (n - 1 - n // 2) / n + 0.5 / n

    left, right = edges(w)
    bottom, top = edges(h)
    return left, right, bottom, top


def color_limits(spectrum_db, diverging: bool = False) -> tuple[float, float]:
    """Colour range of a dB spectrum: its 1st to 99.9th percentile (a few bright peaks and
    the DC bin do not wash out the rest); ``diverging``: symmetric about 0, out to the
    99.5th percentile of ``|x|`` (1 dB when that is 0)."""
    spec = as_array(spectrum_db)
    if diverging:
        top = float(np.quantile(np.abs(spec), 0.995)) or 1.0
        return -top, top
    lo, hi = np.quantile(spec, [0.01, 0.999])
    return float(lo), float(hi)


def shared_color_limits(spectra_db, diverging: bool = False) -> tuple[float, float]:
    """One colour range for spectra that are compared side by side (:func:`color_limits`
    of all their values together), so one colour means one power in every panel."""
    arrays = [as_array(s).ravel() for s in spectra_db]
    if not arrays:
        raise InvalidInputError("shared colour limits need at least one spectrum")
    return color_limits(np.concatenate(arrays), diverging)


def role_color(label: str) -> str | None:
    """The colour of a role (``real``, ``generated``, ``A``, ``B``, ``detected``,
    ``predicted``), or ``None`` for a label that names no role."""
    return ROLE_COLORS.get(label)


def draw_spectrum(ax, spectrum_db, *, peaks=None,
                  predicted: Sequence[tuple[float, float]] = (), diverging: bool = False,
                  vmin: float | None = None, vmax: float | None = None,
                  title: str | None = None, colorbar: bool = True,
                  colorbar_label: str | None = None, legend: bool = True):
    """Draw a centred dB spectrum ``(H, W)`` on ``ax`` in the convention of this module.

    Args:
        spectrum_db: ``(H, W)`` tensor or array, dB.
        peaks: detected peaks (anything with ``fx``, ``fy`` of shape ``(P,)`` in
            cycles/pixel, such as ``GridPeaks``), drawn as circles.
        predicted: ``(fx, fy)`` pairs in cycles/pixel, drawn as crosses.
        diverging: a signed difference (blue-white-red around 0) instead of magma.
        vmin, vmax: colour range in dB; default :func:`color_limits`. Panels that are
            compared take one range (:func:`shared_color_limits`) and say so in
            ``colorbar_label``.
        colorbar: add a colour bar beside ``ax``, labelled ``colorbar_label`` (default
            ``dB``; a difference: :data:`DIFFERENCE_LABEL`).
        legend: name the markers in a legend *below* the axes (never over the data).

    Returns:
        The ``AxesImage``.
    """
    spec = as_array(spectrum_db)
    if spec.ndim != 2:
        raise InvalidInputError(f"a spectrum to draw must be (H, W), got shape {spec.shape}")
    lo, hi = color_limits(spec, diverging)
    extent = spectrum_extent(*spec.shape)
    im = ax.imshow(spec, origin="lower", extent=extent,
                   cmap=DIVERGING_CMAP if diverging else SPECTRUM_CMAP,
                   vmin=lo if vmin is None else vmin, vmax=hi if vmax is None else vmax)
    shown = False
    # Markers are not clipped: a peak at +-0.5 cycles/pixel sits on the edge of the image
    # and must be drawn whole.
    if peaks is not None and len(peaks):
        ax.scatter(as_array(peaks.fx), as_array(peaks.fy), s=80, facecolors="none",
                   edgecolors=DETECTED_COLOR, linewidths=1.2, label=DETECTED_LABEL,
                   clip_on=False, zorder=3)
        shown = True
    if len(predicted):
        ax.scatter([p[0] for p in predicted], [p[1] for p in predicted], marker="x", s=40,
                   color=PREDICTED_COLOR, linewidths=1.2, label=PREDICTED_LABEL,
                   clip_on=False, zorder=4)
        shown = True
    # Markers on the edge bins must not widen the axes past the image.
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("fx (cycles/pixel)")
    ax.set_ylabel("fy (cycles/pixel)")
    if title is not None:
        ax.set_title(title, fontsize=10)
    if shown and legend:
        # Below the x label, outside the data; a dark face so the cyan and green markers
        # read as they do on the spectrum.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7,
                  facecolor="#303030", labelcolor="white", framealpha=1,
                  borderaxespad=0, handletextpad=0.3, columnspacing=1.0)
    if colorbar:
        label = colorbar_label or (DIFFERENCE_LABEL if diverging else "dB")
        cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cbar.set_label(label, fontsize=8)
        cbar.ax.tick_params(labelsize=7)
    return im


def draw_profiles(ax, profiles: Mapping, *, styles: Mapping[str, dict] | None = None,
                  title: str | None = None, ylabel: str = "mean power (dB)",
                  legend: bool = True, legend_size: float | None = None) -> None:
    """Radial profiles (label -> ``RadialProfile``: ``frequency (R,)`` in cycles/pixel,
    ``power (R,)`` in dB) as lines on one 0-0.5 cycles/pixel axis, DC left out (its
    power is the image mean, off any useful scale). A label that names a role
    (``real``, ``generated``, ``A``, ``B``) is drawn in that role's colour; ``styles``
    give matplotlib line options per label (say ``{"real": {"color": "k", "lw": 2}}``)
    and win over the role's."""
    styles = styles or {}
    for label, prof in profiles.items():
        style = dict(styles.get(label, {}))
        if role_color(label) is not None:
            style.setdefault("color", role_color(label))
        ax.plot(as_array(prof.frequency)[1:], as_array(prof.power)[1:], label=label, **style)
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title, fontsize=10)
    if legend and profiles:  # below the axes, outside the lines
        ax.legend(fontsize=legend_size or 8, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(3, len(profiles)), frameon=False)


def draw_images(ax, images: Sequence, title: str | None = None) -> None:
    """RGB images ``(3, H, W)`` in ``[-1, 1]`` (one ``H`` for all) side by side, no axes."""
    tiles = [((as_array(x).astype(np.float32) + 1) / 2).clip(0, 1).transpose(1, 2, 0)
             for x in images]
    ax.imshow(np.concatenate(tiles, axis=1))
    ax.axis("off")
    if title is not None:
        ax.set_title(title, fontsize=10)
