"""What the lab shows and exports reads right: compared panels share one colour scale, the
exported PNG carries its readout as a block of lines and a title naming every setting,
and the readout explains what a reader would otherwise stop at."""

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from core.figures import shared_color_limits
from explorer.export import READOUT_GID, lab_figure, lab_png, lab_title
from explorer.readout import HELP, RANDOM_WEIGHTS, lab_markdown, lab_notes, lab_text
from explorer.state import LabState
from explorer.views.spectrum_lab import SpectrumLab


@pytest.fixture(scope="module")
def lab():
    return LabState()


def spectrum_images(fig):
    """The spectra's AxesImages by axes title."""
    return {ax.get_title(): ax.images[0] for ax in fig.axes
            if ax.images and "spectrum" in ax.get_title()}


def test_compared_spectra_share_one_colour_scale_in_the_export(lab):
    images = spectrum_images(lab_figure(lab.result))
    gen = images["generated: mean log spectrum"].get_clim()
    real = images["real: mean log spectrum"].get_clim()
    assert gen == real
    assert gen == pytest.approx(shared_color_limits([lab.result.generated.spectrum,
                                                     lab.result.real.spectrum]))


def test_compared_spectra_share_one_colour_scale_in_the_dashboard(lab):
    view = SpectrumLab(state=lab)
    gen, real = view.fig["generated"].mapper, view.fig["real"].mapper
    assert (gen.low, gen.high) == (real.low, real.high)
    assert "one scale" in view.fig["generated"].colorbar.title
    lab.pin()
    lab.seed = 1
    try:
        a, b = view.compare_fig["A"].mapper, view.compare_fig["B"].mapper
        assert (a.low, a.high) == (b.low, b.high)
        assert (a.low, a.high) == pytest.approx(shared_color_limits(
            [lab.pinned.generated.spectrum, lab.result.generated.spectrum]))
    finally:
        lab.unpin()
        lab.seed = 0


def test_exported_readout_is_a_block_of_lines(lab):
    fig = lab_figure(lab.result)
    FigureCanvasAgg(fig).draw()
    block = next(t for t in fig.findobj() if getattr(t, "get_gid", lambda: None)() == READOUT_GID)
    text = block.get_text()
    assert "\\n" not in text and len(text.splitlines()) >= 8
    assert text.splitlines() == lab_text(lab.result)
    # drawn as lines: the block is many text lines tall
    height = block.get_window_extent().height
    assert height > 8 * block.get_fontsize()
    assert any("Estimated upsampling factor" in line for line in text.splitlines())


def test_exported_title_names_every_setting(lab):
    title = lab_title(lab.result)
    for word in ("transposed conv", "kernel 4", "factor 2", "norm batch", "activation relu",
                 "order post", "seed 0", "residual none", "window none", "crop 128 px",
                 "bundled photos", "random weights"):
        assert word in title, word


def test_exported_png_has_no_empty_right_third(lab):
    png = np.asarray(Image.open(io.BytesIO(lab_png(lab.result))).convert("L"))
    right = png[png.shape[0] // 2:, 2 * png.shape[1] // 3:]  # lower right: the readout
    assert (right < 200).mean() > 0.01  # text and its box, not a blank


def test_readout_explains_random_weights_nulls_and_periods():
    s = LabState()
    s.preset = "Resize-conv (nearest)"
    notes = " ".join(lab_notes(s.result))
    assert RANDOM_WEIGHTS in notes
    assert "nulled" in notes  # a fixed filter removes the replicas
    assert "predicted lines (crosses) have no detected peak" in notes
    md = lab_markdown(s.result)
    for key in ("factor", "prominence", "distance", "exponent", "peaks"):
        assert 'title="' in md and HELP[key].split("(")[0][:30] in md.replace("&#x27;", "'")


def test_every_lab_and_zoo_control_has_a_help(lab):
    from explorer.zoo import ZooState

    shown = ["preset", "upsampling", "factor", "kernel", "blocks", "norm", "activation",
             "order", "seed", "residual", "window", "source", "folder", "crop_size",
             "show_predicted"]
    for name in shown:
        assert lab.param[name].doc, name
    for name in ("entry", "reference", "residual"):
        assert ZooState.param[name].doc, name
