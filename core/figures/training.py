"""A generator's fingerprint forming during training: its mean spectrum at a few
checkpoints with the detected lattice, beside the grid prominence and the spectral
distance to real crops at every checkpoint (from ``fpx zoo train --snapshots``)::

    python -m core.figures.training RUN/NAME/snapshots out.png [--steps 0 50 300 600]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matplotlib.figure import Figure

from core.errors import FpxError, InvalidInputError
from core.figures.axes import (
    DETECTED_COLOR,
    draw_spectrum,
    role_color,
)
from core.figures.canvas import new_figure, save_figure
from core.zoo.snapshots import lattice_frequencies, read_record, read_snapshot, snapshot_steps


class Marks:
    """Lattice points to circle (what ``draw_spectrum`` takes as ``peaks``)."""

    def __init__(self, period):
        self.fx, self.fy = lattice_frequencies(period)

    def __len__(self) -> int:
        return len(self.fx)


def _design_period(folder: Path, size: int) -> int | None:
    """The period the run's recorded entry (``OUT/NAME/entry.json``) predicts, if any."""
    import json

    from core.zoo.design import design_of
    from core.zoo.entries import ZooEntry

    try:
        entry = ZooEntry.from_dict(json.loads((folder.parent / "entry.json").read_text())
                                   ["entry"])
    except (OSError, ValueError, KeyError, TypeError, FpxError):
        return None
    return design_of(entry, size).period


def pick_steps(steps: list[int], count: int = 4) -> list[int]:
    """``count`` steps spread over ``steps``: the first, the last and evenly between."""
    if len(steps) <= count:
        return list(steps)
    idx = [round(i * (len(steps) - 1) / (count - 1)) for i in range(count)]
    return [steps[i] for i in idx]


def checkpoints_figure(folder: str | Path, steps: list[int] | None = None) -> Figure:
    """Spectra at ``steps`` (default: step 0, early, middle, end), each on its own colour
    scale, detected lattice circled, and the grid prominence / spectral distance curves."""
    available = snapshot_steps(folder)
    if not available:
        raise InvalidInputError(f"{folder}: no snapshots (train with --snapshots)")
    steps = pick_steps(available) if steps is None else steps
    missing = sorted(set(steps) - set(available))
    if missing:
        raise InvalidInputError(f"{folder}: no snapshot of step(s) {missing}; "
                                f"available: {available}")
    snaps = [read_snapshot(folder, s) for s in steps]
    history = [read_record(folder, s) for s in available]
    fig = new_figure((3.0 * len(snaps) + 4.6, 3.9))
    grid = fig.add_gridspec(1, len(snaps) + 1, width_ratios=[1] * len(snaps) + [1.6],
                            wspace=0.35)
    for i, snap in enumerate(snaps):
        ax = fig.add_subplot(grid[0, i])
        r = snap.record
        found = f"period {r['period']:g}" if r["period"] else "no lattice"
        # each panel its own colour scale: an untrained generator's power is far below
        draw_spectrum(ax, snap.spectrum, colorbar=False, legend=False,
                      title=f"step {snap.step}: {found}\n"
                            f"grid {r['grid_prominence_db']:.1f} dB")
        marks = Marks(r["period"])
        ax.scatter(marks.fx, marks.fy, s=22, facecolors="none", edgecolors=DETECTED_COLOR,
                   linewidths=0.7, clip_on=False, zorder=3,
                   label="detected lattice" if i == 0 else None)
        if i > 0:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(0, -0.2), fontsize=7,
                      facecolor="#303030", labelcolor="white", framealpha=1)
    design = _design_period(Path(folder), snaps[0].record["size"])
    if design:
        fig.suptitle(f"{Path(folder).parent.name}: its design predicts period {design}",
                     fontsize=10, y=1.02)
    ax = fig.add_subplot(grid[0, -1])
    x = [h["step"] for h in history]
    ax.plot(x, [h["grid_prominence_db"] for h in history], "o-", ms=3,
            color=role_color("detected") or "C3", label="grid prominence (dB)")
    ax.plot(x, [h["spectral_distance_db"] for h in history], "s-", ms=3,
            color=role_color("real") or "C0", label="spectral distance to real (dB)")
    for s in steps:
        ax.axvline(s, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("training step")
    ax.set_ylabel("dB")
    ax.set_title("at every checkpoint")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, frameon=False)
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("snapshots", type=Path, help="RUN/NAME/snapshots")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--steps", type=int, nargs="+", help="default: 0, early, middle, end")
    args = p.parse_args(argv)
    try:
        save_figure(checkpoints_figure(args.snapshots, args.steps), args.out)
    except FpxError as err:
        print(f"fpx: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
