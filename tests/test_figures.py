"""core.figures: one axis convention for every spectrum (matplotlib and the dashboard's
Bokeh figure), and the PNG writers.

The convention is checked on a known answer: a pure sinusoid of frequency ``(fy, fx)``
puts its power in the bins ``(fy, fx)`` and ``(-fy, -fx)``, so a figure that draws it
must show bright pixels at those axis coordinates and dark ones at the mirror images
``(-fy, fx)`` (fy drawn downwards) and ``(fy, -fx)`` (fx reversed).
"""

import io
import math

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from core.errors import InvalidInputError
from core.figures import (
    ROLE_COLORS,
    artifact_grid,
    color_limits,
    confusion_png,
    contact_sheet,
    dendrogram_png,
    draw_spectrum,
    figure_bytes,
    new_figure,
    profile_png,
    scatter_png,
    shared_color_limits,
    spectrum_extent,
    spectrum_png,
)
from core.figures.grids import HEADER
from core.spectrum import frequencies, power_spectrum, radial_profile

SIZES = [(32, 32), (33, 33), (24, 31)]  # even, odd, and unequal sides


def sinusoid_spectrum(h: int, w: int, ky: int, kx: int) -> tuple[torch.Tensor, float, float]:
    """dB spectrum ``(h, w)`` of ``cos(2 pi (fy y + fx x))`` at ``fy = ky / h``,
    ``fx = kx / w`` (exact bins: no leakage), with ``(fy, fx)``."""
    y = torch.arange(h, dtype=torch.float64)[:, None]
    x = torch.arange(w, dtype=torch.float64)[None, :]
    fy, fx = ky / h, kx / w
    img = torch.cos(2 * math.pi * (fy * y + fx * x))
    return power_spectrum(img[None, None])[0, 0], fy, fx


# --- the convention ------------------------------------------------------------------------

@pytest.mark.parametrize(("h", "w"), SIZES)
def test_extent_puts_each_bin_centre_on_its_frequency(h, w):
    left, right, bottom, top = spectrum_extent(h, w)
    assert right - left == pytest.approx(1.0) and top - bottom == pytest.approx(1.0)
    # Cell j spans [left + j / w, left + (j + 1) / w]: its centre is frequencies(w)[j].
    centres_x = left + (np.arange(w) + 0.5) / w
    centres_y = bottom + (np.arange(h) + 0.5) / h
    assert np.allclose(centres_x, frequencies(w).numpy(), atol=1e-12)
    assert np.allclose(centres_y, frequencies(h).numpy(), atol=1e-12)


def test_extent_known_values():
    assert spectrum_extent(4, 4) == (-0.625, 0.375, -0.625, 0.375)
    assert spectrum_extent(5, 5) == pytest.approx((-0.5, 0.5, -0.5, 0.5))
    with pytest.raises(InvalidInputError, match="spectrum width must be a positive integer"):
        spectrum_extent(4, 0)


def test_sinusoid_lands_on_its_own_bin():
    spec, fy, fx = sinusoid_spectrum(32, 32, 5, -3)
    i, j = np.unravel_index(int(spec.argmax()), spec.shape)
    assert {(float(frequencies(32)[i]), float(frequencies(32)[j]))} <= {(fy, fx), (-fy, -fx)}


def rendered_brightness(ax, fig, points):
    """Grey level (0-255) of the drawn figure at each data point ``(fx, fy)``."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    out = []
    for fx, fy in points:
        px, py = ax.transData.transform((fx, fy))
        row, col = int(round(rgba.shape[0] - py)), int(round(px))
        out.append(float(rgba[row, col, :3].mean()))
    return out


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_matplotlib_draws_a_sinusoid_where_its_frequency_is(h, w):
    spec, fy, fx = sinusoid_spectrum(h, w, 5, -3)
    fig = new_figure((4, 4))
    ax = fig.subplots()
    im = draw_spectrum(ax, spec, colorbar=False, vmin=float(spec.min()), vmax=float(spec.max()))
    assert im.get_extent() == list(spectrum_extent(h, w))
    assert (ax.get_xlim(), ax.get_ylim()) == (spectrum_extent(h, w)[:2],
                                             spectrum_extent(h, w)[2:])
    peak, twin, fy_flipped, fx_flipped = rendered_brightness(
        ax, fig, [(fx, fy), (-fx, -fy), (fx, -fy), (-fx, fy)])
    assert peak > 200 and twin > 200  # magma's top is pale yellow
    assert fy_flipped < 30 and fx_flipped < 30  # and its bottom black


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_bokeh_figure_agrees_with_the_matplotlib_extent(h, w):
    from explorer.views.figures import SpectrumFigure

    spec, fy, fx = sinusoid_spectrum(h, w, 5, -3)
    fig = SpectrumFigure("test")
    fig.update(spec)
    data = fig.image.data
    left, right, bottom, top = spectrum_extent(h, w)
    assert (data["x"][0], data["y"][0]) == (left, bottom)
    assert (data["dw"][0], data["dh"][0]) == pytest.approx((right - left, top - bottom))
    assert (fig.figure.x_range.start, fig.figure.x_range.end) == (left, right)
    assert (fig.figure.y_range.start, fig.figure.y_range.end) == (bottom, top)
    # Bokeh draws image row 0 at the bottom (y) and column 0 at the left (x): the
    # brightest cell's centre must sit at the sinusoid's frequency.
    image = np.asarray(data["image"][0])
    i, j = np.unravel_index(int(image.argmax()), image.shape)
    centre = (data["x"][0] + (j + 0.5) * data["dw"][0] / w,
              data["y"][0] + (i + 0.5) * data["dh"][0] / h)
    assert any(centre == pytest.approx(p) for p in [(fx, fy), (-fx, -fy)])
    assert (fig.mapper.low, fig.mapper.high) == pytest.approx(color_limits(spec))


def test_bokeh_ranges_follow_a_new_size_only():
    from explorer.views.figures import SpectrumFigure

    fig = SpectrumFigure("test")
    fig.update(torch.zeros(8, 8))
    fig.figure.x_range.start = -0.1  # a user's zoom survives an update of the same size
    fig.update(torch.ones(8, 8))
    assert fig.figure.x_range.start == -0.1
    fig.update(torch.zeros(9, 9))
    assert fig.figure.x_range.start == spectrum_extent(9, 9)[0]
    assert fig.figure.x_range.reset_start == spectrum_extent(9, 9)[0]


def test_color_limits():
    x = torch.arange(1001, dtype=torch.float32)
    assert color_limits(x) == pytest.approx((10.0, 999.0))
    # |x - 500| holds 0 once and 1..500 twice each: its 99.5th percentile is 498.
    assert color_limits(x - 500, diverging=True) == pytest.approx((-498.0, 498.0))
    assert color_limits(torch.zeros(4, 4), diverging=True) == (-1.0, 1.0)


def test_draw_spectrum_refuses_a_batch():
    with pytest.raises(InvalidInputError, match=r"must be \(H, W\)"):
        draw_spectrum(new_figure((2, 2)).subplots(), torch.zeros(1, 4, 4))


# --- PNG writers ---------------------------------------------------------------------------

def png_size(path_or_bytes):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


def test_spectrum_and_profile_pngs_are_written_atomically(tmp_path):
    spec, fy, fx = sinusoid_spectrum(32, 32, 8, 8)
    peaks = type("Peaks", (), {"fx": torch.tensor([fx]), "fy": torch.tensor([fy]),
                               "__len__": lambda self: 1})()
    out = spectrum_png(spec, tmp_path / "figs" / "spectrum.png", peaks=peaks,
                       predicted=[(fx, fy)])
    assert out == tmp_path / "figs" / "spectrum.png" and png_size(out)[0] > 300
    prof = radial_profile(spec)
    profile_png({"a": prof, "b": prof._replace(power=prof.power - 3)}, tmp_path / "figs" / "p.png")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["p.png", "spectrum.png"]


def test_group_figures(tmp_path):
    assert png_size(confusion_png([[3, 1], [0, 4]], ["a", "b"], tmp_path / "c.png"))[0] > 100
    relation = {"models": ["a", "b", "c"],
                "similarity": [[1, 0.9, 0.1], [0.9, 1, 0.2], [0.1, 0.2, 1]]}
    assert png_size(dendrogram_png(relation, tmp_path / "d.png"))[0] > 300
    xy = np.random.default_rng(0).normal(size=(6, 2))
    assert png_size(scatter_png(xy, list("aabbcc"), tmp_path / "s.png"))[0] > 200
    with pytest.raises(InvalidInputError, match="N labels"):
        scatter_png(xy, list("ab"), tmp_path / "bad.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "d.png", "s.png"]


def test_figure_bytes_releases_a_pyplot_figure():
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2))
    assert figure_bytes(fig)[:4] == b"\x89PNG"
    assert fig.number not in plt.get_fignums()


def test_contact_sheet_layout():
    png = contact_sheet(torch.zeros(20, 3, 32, 32), columns=8, scale=2, border=1)
    sheet = Image.open(io.BytesIO(png))
    assert sheet.size == (8 * 65 + 1, 3 * 65 + 1)


def test_contact_sheet_tiles_are_enlarged_pixels():
    x = torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(2, 3, 2, 2).contiguous()
    sheet = np.asarray(Image.open(io.BytesIO(contact_sheet(x, columns=2, scale=3,
                                                           border=1))))
    assert sheet.shape == (1 + 7, 1 + 2 * 7, 3)
    assert (sheet[1:7, 1:4] == 0).all() and (sheet[1:7, 4:7] == 255).all()
    assert (sheet[0] == 255).all() and (sheet[:, 7] == 255).all()  # white borders


def test_artifact_grid_has_a_row_per_model():
    from core.manifold.artifacts import ArtifactSet

    n, rng = 6, np.random.default_rng(0)
    s = ArtifactSet(space="rgb", artifacts=np.zeros((n, 4), np.float32),
                    image_artifacts=rng.normal(0, 0.1, (n, 3, 8, 8)).astype(np.float32),
                    images=rng.integers(0, 256, (n, 3, 8, 8)).astype(np.uint8),
                    neighbors=np.zeros((n, 1), np.int64), distances=np.zeros((n, 1), np.float32),
                    labels=np.array(["a", "a", "a", "b", "b", "real"]), paths=np.array(["p"] * n),
                    real_paths=np.array(["r"]))
    width, height = png_size(artifact_grid(s, per_model=2, scale=2))
    label = 8 + 7 * len("real")
    assert (width, height) == (label + 6 * (16 + 2) + 2, HEADER + 3 * (16 + 2) + 2)


# --- issue 17: figures read right at a glance ---------------------------------------------

def test_shared_color_limits_are_one_range_for_all_panels():
    a, b = torch.arange(100.0), torch.arange(100.0) - 60
    lo, hi = shared_color_limits([a, b])
    assert (lo, hi) == pytest.approx(color_limits(torch.cat([a, b])))  # all values at once
    assert lo < color_limits(a)[0] and hi > color_limits(b)[1]  # spans both panels


def test_every_role_has_its_own_colour_but_b_is_the_current_generator():
    roles = ["real", "generated", "A", "detected", "predicted"]
    assert len({ROLE_COLORS[r] for r in roles}) == len(roles)
    assert ROLE_COLORS["B"] == ROLE_COLORS["generated"]


def test_neighbouring_groups_never_share_a_hue():
    from core.figures.groups import group_style

    styles = [group_style(i) for i in range(20)]
    for (c1, _), (c2, _) in zip(styles, styles[1:]):
        assert c1 != c2
    assert len({(c, m) for c, m in styles}) == 20


def test_dendrogram_grows_with_the_models_and_keeps_long_names(tmp_path):
    names = [f"m{i:03d}-2xtransposed-batch-leaky_relu-post" for i in range(12)]
    sim = np.eye(12) * 0.5 + 0.5
    width, height = png_size(dendrogram_png({"models": names, "similarity": sim},
                                            tmp_path / "d.png"))
    assert height > 12 * 30  # ~0.32 inch a leaf: never squashed
    assert width > 600


def test_edge_markers_are_drawn_whole_and_the_legend_sits_below():
    spec, fy, fx = sinusoid_spectrum(32, 32, 16, 0)
    fig = new_figure((4, 4))
    ax = fig.subplots()
    draw_spectrum(ax, spec, predicted=[(-0.5, 0.0)])
    assert all(not c.get_clip_on() for c in ax.collections)
    FigureCanvasAgg(fig).draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 < ax.get_window_extent().y0  # below the axes: off the data
