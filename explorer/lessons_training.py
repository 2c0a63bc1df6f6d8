"""Lesson 8 (``notebooks/08_fingerprint_forming.ipynb``): a fingerprint forming while a
generator trains.

Short runs of two zoo GANs that differ only in their upsampling (:data:`PAIR`, the
default zoo's controlled pair) are started exactly as the dashboard's Train tab starts
them (:class:`explorer.training.TrainState`: a run folder in the runs directory, the
``fpx zoo train ... --snapshots`` process, one thread each), so they show up in the Train
tab too, and a run started there shows up here. At step 0 and every checkpoint the
trainer keeps a snapshot (:mod:`core.zoo.snapshots`): samples from fixed noise, their
mean spectrum, the detected lattice (period, grid prominence, false alarm) and the
spectral distance of their radial profile to the real crops'. The lesson reads them
back with the same functions the Train tab uses and scrubs through training. No panel
import here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import param
import torch

from core.errors import FpxError, InvalidInputError
from core.figures import ROLE_COLORS, draw_images, draw_profiles, draw_spectrum, new_figure
from core.spectrum import RadialProfile
from core.zoo.design import design_of
from core.zoo.entries import ZooEntry
from core.zoo.snapshots import FOLDER as SNAPSHOTS
from core.zoo.snapshots import (
    Snapshot,
    lattice_frequencies,
    read_real,
    read_record,
    read_snapshot,
    snapshot_steps,
)
from explorer.lessons import OTHER_COLORS, _digest, _png, param_widgets
from explorer.runs import RunInfo
from explorer.training import TrainState
from explorer.zoo import tile

PAIR = ("gan_tconv", "gan_nearest")  # one seed, one family; only the upsampler differs
STEPS = 150  # a short run: about 20 s per GAN on one idle CPU thread
CHECKPOINTS = 6  # snapshots after step 0: every 25 steps
WAIT_S = 1800  # give up waiting for the runs after this long


class _Lattice:
    """Lattice points to circle (what ``draw_spectrum`` takes as ``peaks``)."""

    def __init__(self, period):
        self.fx, self.fy = lattice_frequencies(period)

    def __len__(self) -> int:
        return len(self.fx)


def _profile(d: dict) -> RadialProfile:
    return RadialProfile(torch.tensor(d["frequency"]), torch.tensor(d["power_db"]))


def predicted_period(run: RunInfo, size: int) -> int | None:
    """The lattice period the run's recorded entry predicts at ``size`` px
    (:func:`core.zoo.design.design_of`), or ``None`` when unknown or absent."""
    try:
        record = json.loads((run.train_dir / "entry.json").read_text())
        return design_of(ZooEntry.from_dict(record["entry"]), size).period
    except (OSError, ValueError, KeyError, TypeError, FpxError):
        return None


class TrainingLesson(param.Parameterized):
    """Lesson 8: scrub through a zoo run's snapshots: samples, spectrum, lattice score
    and spectral distance against step.

    Args:
        root: the runs directory (default: the dashboard's, ``$FPX_RUNS`` or ``runs``
            in the working directory).
    """

    run = param.Selector(default=None, objects=[], allow_None=True, label="Run",
                         doc="A finished generator run with snapshots, in the runs "
                             "directory")
    checkpoint = param.Integer(default=0, bounds=(0, CHECKPOINTS), label="Checkpoint",
                               doc="Which snapshot: step 0, then each checkpoint")
    shown = param.String(default="", doc="Digest of the last figure's data")

    def __init__(self, root: str | Path | None = None, **params):
        super().__init__(**params)
        self.state = TrainState(root=root, max_running=len(PAIR), threads=1)
        self._cache: dict[tuple[str, int], Snapshot] = {}
        self.update_runs()

    # --- runs ------------------------------------------------------------------------

    def runs(self) -> dict[str, RunInfo]:
        """Finished zoo / design runs holding at least two snapshots, newest first."""
        self.state.refresh()
        return {r.name: r for r in self.state.runs
                if r.kind in ("zoo", "design") and r.state == "finished"
                and len(snapshot_steps(r.train_dir / SNAPSHOTS)) >= 2}

    def update_runs(self) -> None:
        """Offer every run of :meth:`runs`; the slider reaches the longest's last
        snapshot."""
        runs = self.runs()
        self.param.run.objects = sorted(runs)  # by name: each entry's runs together
        most = max((len(snapshot_steps(r.train_dir / SNAPSHOTS)) for r in runs.values()),
                   default=1)
        self.param.checkpoint.bounds = (0, max(1, most - 1))
        if self.run not in runs:  # the first entry of the pair's newest run, else any
            first = [n for n, r in runs.items() if r.record.get("target") == PAIR[0]]
            self.run = (first or list(runs) or [None])[0]
        self.checkpoint = min(self.checkpoint, self.param.checkpoint.bounds[1])

    def train(self, entries=PAIR, steps: int = STEPS, checkpoints: int = CHECKPOINTS,
              device: str = "auto", say=print) -> list[str]:
        """A short run of each entry in ``entries`` that has no finished (or running) run
        yet, started as the Train tab starts one, all at once; wait for them; return
        the runs' names. A failed run raises :class:`InvalidInputError` with its
        message."""
        s = self.state
        s.refresh()
        names, started = [], []
        for entry in entries:
            have = [r for r in s.runs if r.kind == "zoo" and r.record.get("target") == entry
                    and r.state in ("finished", "running")]
            if have:
                names.append(have[0].name)
                continue
            s.param.update(kind="zoo", entry=entry, steps=str(steps), batch="", seed="",
                           checkpoints=checkpoints, device=device)
            info = s.start()
            if info is None:
                raise InvalidInputError(s.message)
            say(f"started {info.name}: {info.command_text}")
            names.append(info.name)
            started.append(info.name)
        t0 = time.monotonic()
        while True:
            s.refresh()
            states = {n: s.get(n).state for n in names}
            if "running" not in states.values():
                break
            if time.monotonic() - t0 > WAIT_S:
                raise InvalidInputError(f"the runs {names} did not finish in {WAIT_S} s")
            time.sleep(1.0)
        for n, state in states.items():
            if state != "finished":
                raise InvalidInputError(f"run {n} {state}: {s.get(n).message or 'see its log'}")
        if started:
            say(f"trained {', '.join(started)} in {time.monotonic() - t0:.0f} s")
        self.update_runs()
        return names

    # --- reading ---------------------------------------------------------------------

    def _info(self, name: str | None = None) -> RunInfo:
        name = name or self.run
        if name is None:
            raise InvalidInputError("no finished run with snapshots: train one first "
                                    "(lesson.train())")
        return self.state.get(name)

    def steps(self, name: str | None = None) -> list[int]:
        return snapshot_steps(self._info(name).train_dir / SNAPSHOTS)

    def history(self, name: str | None = None) -> list[dict]:
        """Every snapshot's record of the run (step, period, grid prominence, false
        alarm, spectral distance), in step order."""
        folder = self._info(name).train_dir / SNAPSHOTS
        return [read_record(folder, s) for s in snapshot_steps(folder)]

    def design(self, name: str | None = None) -> int | None:
        """The lattice period the run's design predicts at its snapshots' size."""
        hist = self.history(name)
        return predicted_period(self._info(name), hist[0]["size"]) if hist else None

    def snapshot(self) -> Snapshot:
        """The snapshot under the slider (the run's last when it has fewer)."""
        steps = self.steps()
        step = steps[min(self.checkpoint, len(steps) - 1)]
        key = (self.run, step)
        if key not in self._cache:
            self._cache[key] = read_snapshot(self._info().train_dir / SNAPSHOTS, step)
        return self._cache[key]

    def controls(self) -> dict:
        return param_widgets(self, ["run", "checkpoint"])

    def figure(self):
        info = self._info()
        snap = self.snapshot()
        r = snap.record
        design = predicted_period(info, r["size"])
        fig = new_figure((14, 8.6))
        grid = fig.add_gridspec(2, 3, height_ratios=[1.15, 1])
        samples = torch.from_numpy(snap.samples.astype(np.float32) / 127.5 - 1)
        ax = fig.add_subplot(grid[0, 0])
        draw_images(ax, [tile(samples, 4)])
        ax.set_title(f"{info.record.get('target', info.name)} at step {snap.step}: "
                     f"{len(samples)} samples (fixed noise)", fontsize=10)
        found = (f"period {r['period']:g}, false alarm {r['false_alarm']:g}" if r["period"]
                 else f"no lattice (false alarm {r['false_alarm']:g})")
        fx, fy = lattice_frequencies(design)
        draw_spectrum(fig.add_subplot(grid[0, 1]), snap.spectrum, peaks=_Lattice(r["period"]),
                      predicted=list(zip(fx.tolist(), fy.tolist())),
                      title=f"mean spectrum: {found}\n(the design predicts "
                            f"{f'period {design}' if design else 'none'})")
        profiles = {"generated": _profile(r["profile"])}
        real = read_real(info.train_dir / SNAPSHOTS)
        if real:
            profiles["real"] = _profile(real["profile"])
        draw_profiles(fig.add_subplot(grid[0, 2]), profiles,
                      title=f"radial profile: spectral distance "
                            f"{r['spectral_distance_db']:.1f} dB")
        curves = {name: self.history(name) for name in self.param.run.objects if name}
        panels = (("grid_prominence_db", "lattice score: grid prominence (dB)"),
                  ("period", "detected lattice period (0: none)"),
                  ("spectral_distance_db", "spectral distance to real (dB)"))
        for col, (key, label) in enumerate(panels):
            ax = fig.add_subplot(grid[1, col])
            for i, (name, hist) in enumerate(curves.items()):
                mine = name == self.run
                target = self._info(name).record.get("target", name)
                ax.plot([h["step"] for h in hist], [h[key] or 0 for h in hist], "o-",
                        ms=4 if mine else 2.5, lw=2 if mine else 1, alpha=1 if mine else 0.6,
                        color=OTHER_COLORS[i % len(OTHER_COLORS)],
                        label=f"{target}{' (shown)' if mine else ''}")
            ax.axvline(snap.step, color="black", lw=0.8, ls="--")
            if key == "period" and design:
                ax.axhline(design, color=ROLE_COLORS["predicted"], lw=1, ls=":",
                           label=f"design of the shown run: {design}")
            ax.set_xlabel("training step")
            ax.set_title(label, fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        self.shown = _digest(snap.spectrum, snap.samples,
                             [snap.step, r["grid_prominence_db"], r["spectral_distance_db"]])
        return fig

    def render(self, **values) -> bytes:
        self.param.update(**values)
        return _png(self.figure())


__all__ = ["CHECKPOINTS", "PAIR", "STEPS", "TrainingLesson", "predicted_period"]
