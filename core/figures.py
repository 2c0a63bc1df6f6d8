"""PNG figures of spectra and radial profiles (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from core.runtime import atomic_path  # noqa: E402
from core.spectrum import GridPeaks, RadialProfile, frequencies  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def spectrum_png(spectrum, path: str | Path, *, peaks: GridPeaks | None = None,
                 title: str = "Mean log spectrum") -> Path:
    """Save a centred dB spectrum ``(H, W)`` with axes in cycles/pixel; circles mark peaks."""
    spec = spectrum.detach().float().cpu()
    h, w = spec.shape
    fy, fx = frequencies(h), frequencies(w)
    dy, dx = 1.0 / h, 1.0 / w
    extent = (float(fx[0]) - dx / 2, float(fx[-1]) + dx / 2, float(fy[-1]) + dy / 2,
              float(fy[0]) - dy / 2)
    lo, hi = spec.quantile(0.01).item(), spec.quantile(0.999).item()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(spec.numpy(), cmap="magma", vmin=lo, vmax=hi, extent=extent)
    if peaks is not None and len(peaks):
        ax.scatter(peaks.fx.numpy(), peaks.fy.numpy(), s=90, facecolors="none",
                   edgecolors="cyan", linewidths=1.2, label="detected peaks")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("fx (cycles/pixel)")
    ax.set_ylabel("fy (cycles/pixel)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="power (dB)")
    return _save(fig, path)


def profile_png(profiles: dict[str, RadialProfile], path: str | Path, *,
                title: str = "Radial profile") -> Path:
    """Save one or more radial profiles (label -> profile) on a cycles/pixel axis."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for label, prof in profiles.items():
        ax.plot(prof.frequency.cpu().numpy()[1:], prof.power.detach().cpu().numpy()[1:],
                label=label)
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.set_ylabel("mean power (dB)")
    ax.set_xlim(0, 0.5)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if len(profiles) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_png(matrix, class_names: list[str], path: str | Path, *,
                  title: str = "Confusion matrix") -> Path:
    """Save a confusion matrix (rows: true class, columns: predicted), each row
    normalised to fractions, counts printed in the cells."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.42 * n, 0.8 + 0.42 * n))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the row")
    return _save(fig, path)
