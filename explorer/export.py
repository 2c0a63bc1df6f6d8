"""Static figures of the lab for download (matplotlib; no panel)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from explorer.state import LabResult  # noqa: E402


def _spectrum(ax, spectrum, title, *, diverging=False, peaks=None, predicted=()):
    spec = spectrum.float().cpu().numpy()
    h, w = spec.shape
    extent = (-(w // 2) / w - 0.5 / w, (w - 1 - w // 2) / w + 0.5 / w,
              -(h // 2) / h - 0.5 / h, (h - 1 - h // 2) / h + 0.5 / h)
    if diverging:
        top = float(np.quantile(np.abs(spec), 0.995)) or 1.0
        kw = dict(cmap="RdBu_r", vmin=-top, vmax=top)
    else:
        lo, hi = np.quantile(spec, [0.01, 0.999])
        kw = dict(cmap="magma", vmin=lo, vmax=hi)
    im = ax.imshow(np.flipud(spec), extent=extent, **kw)
    if peaks is not None and len(peaks):
        ax.scatter(peaks.fx.numpy(), peaks.fy.numpy(), s=70, facecolors="none",
                   edgecolors="cyan", linewidths=1.2, label="detected")
    if predicted:
        ax.scatter([p.fx for p in predicted], [p.fy for p in predicted], marker="x", s=40,
                   color="#39ff14", linewidths=1.2, label="predicted")
    if (peaks is not None and len(peaks)) or predicted:
        ax.legend(loc="lower left", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("fx (cycles/pixel)")
    ax.set_ylabel("fy (cycles/pixel)")
    plt.colorbar(im, ax=ax, fraction=0.046, label="dB")


def lab_png(result: LabResult | None) -> bytes:
    """The lab's current view as one PNG: crops, spectra (with detected and predicted
    peaks), difference and radial profiles, titled with the design."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.5))
    if result is None:
        fig.text(0.5, 0.5, "no result", ha="center")
    else:
        crops = [result.input_crop, result.output_crop]
        axes[0, 0].axis("off")
        axes[0, 0].imshow(np.concatenate([((c.float() + 1) / 2).clamp(0, 1).permute(1, 2, 0)
                                          .numpy() for c in crops], axis=1))
        axes[0, 0].set_title("input crop | generated output", fontsize=10)
        _spectrum(axes[0, 1], result.generated.spectrum, "generated: mean log spectrum",
                  peaks=result.generated.peaks, predicted=result.predicted)
        _spectrum(axes[1, 0], result.real.spectrum, "real: mean log spectrum",
                  peaks=result.real.peaks)
        _spectrum(axes[1, 1], result.difference, "difference: generated - real",
                  diverging=True)
        ax = axes[0, 2]
        for label, prof in (("real", result.real.profile),
                            ("generated", result.generated.profile)):
            ax.plot(prof.frequency.numpy()[1:], prof.power.numpy()[1:], label=label)
        ax.set_xlabel("frequency (cycles/pixel)")
        ax.set_ylabel("mean power (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title("radial profiles", fontsize=10)
        axes[1, 2].axis("off")
        gen = result.generated
        axes[1, 2].text(0, 1, "\\n".join([
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
