"""The lab's view as one static PNG for download (matplotlib through ``core.figures``,
on the spectrum axes every fpx figure shares; no panel)."""

from __future__ import annotations

from core.blocks import upsampler
from core.figures import (
    draw_images,
    draw_profiles,
    draw_spectrum,
    figure_bytes,
    new_figure,
    shared_color_limits,
)
from explorer.readout import lab_text
from explorer.state import LabResult

SHARED = "dB (one scale for generated and real)"
READOUT_GID = "fpx-readout"  # the readout block's Text artist, for tests


def block_text(block) -> str:
    """``transposed conv, kernel 4, s2``: the upsampler, its kernel where the kernel is
    its own (a fixed upsampler's 3x3 conv is not a setting), the factor."""
    up = upsampler(block.upsampling)
    kernel = f", kernel {block.kernel}" if up.kernels == "any" else ""
    return f"{up.label.lower()}{kernel}, factor {block.factor}"


def lab_title(result: LabResult) -> str:
    """Every setting that shaped the figure: the design (blocks, upsampling, kernel,
    factor, normalization, activation, order, seed), then the analysis (residual,
    window, crop size) and the real images."""
    spec, block = result.spec, result.spec.up[0]
    real = result.real
    return (f"fpx Spectrum Lab: {len(spec.up)} x ({block_text(block)}), norm {block.norm}, "
            f"activation {block.activation}, order {block.order}, seed {spec.seed}, "
            f"random weights\nresidual {real.residual}, window {real.window or 'none'}, "
            f"crop {real.size} px; real images: {result.source}")


def lab_figure(result: LabResult | None):
    """The lab's current view as a matplotlib figure: crops; generated and real spectra
    on one colour scale (detected and predicted peaks); their difference; radial profiles;
    and the readout as a block of lines."""
    fig = new_figure((16, 10))
    fig.set_layout_engine("constrained")  # room for every colour bar, legend and label
    if result is None:
        fig.text(0.5, 0.5, "no result", ha="center")
        return fig
    axes = fig.subplots(2, 3)
    draw_images(axes[0, 0], [result.input_crop, result.output_crop],
                "input crop | generated output (random weights)")
    clim = shared_color_limits([result.generated.spectrum, result.real.spectrum])
    draw_spectrum(axes[0, 1], result.generated.spectrum, peaks=result.generated.peaks,
                  predicted=[(p.fx, p.fy) for p in result.predicted], vmin=clim[0],
                  vmax=clim[1], colorbar_label=SHARED, title="generated: mean log spectrum")
    draw_spectrum(axes[0, 2], result.real.spectrum, peaks=result.real.peaks, vmin=clim[0],
                  vmax=clim[1], colorbar_label=SHARED, title="real: mean log spectrum")
    draw_spectrum(axes[1, 0], result.difference, diverging=True,
                  title="difference: generated - real")
    draw_profiles(axes[1, 1], {"real": result.real.profile,
                               "generated": result.generated.profile},
                  title="radial profiles")
    block = axes[1, 2]
    block.axis("off")
    block.set_title("readout", fontsize=10)
    block.text(0, 1, "\n".join(lab_text(result)), va="top", ha="left", family="monospace",
               fontsize=8, transform=block.transAxes, gid=READOUT_GID,
               bbox=dict(boxstyle="round,pad=0.6", facecolor="#f4f4f4", edgecolor="#bbbbbb"))
    fig.suptitle(lab_title(result), fontsize=11)
    return fig


def lab_png(result: LabResult | None) -> bytes:
    """:func:`lab_figure` as PNG bytes."""
    return figure_bytes(lab_figure(result), dpi=90)
