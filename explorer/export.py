"""The lab's view as one static PNG for download (matplotlib through ``core.figures``,
on the spectrum axes every fpx figure shares; no panel)."""

from __future__ import annotations

from core.figures import draw_images, draw_profiles, draw_spectrum, figure_bytes, new_figure
from explorer.state import LabResult


def lab_png(result: LabResult | None) -> bytes:
    """The lab's current view as one PNG: crops, spectra (with detected and predicted
    peaks), difference and radial profiles, titled with the design."""
    fig = new_figure((15, 9.5))
    # Room between columns for each colour bar's label and the next panel's y label.
    axes = fig.subplots(2, 3, gridspec_kw={"wspace": 0.45})
    if result is None:
        fig.text(0.5, 0.5, "no result", ha="center")
    else:
        draw_images(axes[0, 0], [result.input_crop, result.output_crop],
                    "input crop | generated output")
        draw_spectrum(axes[0, 1], result.generated.spectrum, peaks=result.generated.peaks,
                      predicted=[(p.fx, p.fy) for p in result.predicted],
                      title="generated: mean log spectrum")
        draw_spectrum(axes[1, 0], result.real.spectrum, peaks=result.real.peaks,
                      title="real: mean log spectrum")
        draw_spectrum(axes[1, 1], result.difference, diverging=True,
                      title="difference: generated - real")
        draw_profiles(axes[0, 2], {"real": result.real.profile,
                                   "generated": result.generated.profile},
                      title="radial profiles")
        axes[1, 2].axis("off")
        gen = result.generated
        axes[1, 2].text(0, 1, "\n".join([
            f"estimated factor: {gen.upsampling_factor or 'none'} "
            f"(design {result.spec.total_factor})",
            f"grid prominence: {gen.grid_prominence_db:.1f} dB",
            f"spectral distance: {result.distance_db:.2f} dB",
            f"power-law exponent: {float(gen.power_law.exponent):.2f} "
            f"(real {float(result.real.power_law.exponent):.2f})",
            f"real images: {result.source}",
        ]), va="top", family="monospace", fontsize=10)
        block = result.spec.up[0]
        fig.suptitle(f"fpx Spectrum Lab: {len(result.spec.up)} x {block.upsampling} "
                     f"(k{block.kernel}, s{block.factor}), {block.norm}, {block.activation}, "
                     f"{block.order}, seed {result.spec.seed}")
    return figure_bytes(fig, dpi=90)
