"""What a zoo generator makes at each checkpoint, kept so the fingerprint can be watched
forming (``fpx zoo train --snapshots``, the dashboard's Train tab).

At step 0 (a fresh run) and at every checkpoint the trainer calls :meth:`Snapshots.take`:
the model draws :data:`COUNT` samples from the *same* noise every time (its own seeded
``torch.Generator``, so the training's random streams are untouched and ``--resume``
stays exact), they are analysed at once (:func:`core.analysis.analyse_batches`: mean
spectrum, lattice, radial profile) and compared with the real crops the run trains on
(:func:`core.spectrum.spectral_distance`). Per step, in ``RUN/snapshots/``:

* ``step_00000250.npz``: ``samples`` (the first :data:`KEPT`, uint8 ``(N, 3, S, S)``) and
  ``spectrum`` (float32 dB, centred), no pickles;
* ``step_00000250.json``: step, detected period, grid prominence, false alarm, spectral
  distance, radial profile; written last, so a JSON file means a complete snapshot.

``real.json`` holds the real crops' radial profile once. A snapshot costs well under a
second at 32 px on a CPU: small beside a checkpoint interval of hundreds of steps.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import FpxError, InvalidInputError
from core.runtime import atomic_write

FOLDER = "snapshots"
COUNT = 128  # samples analysed per snapshot
KEPT = 16  # samples stored (a 4 x 4 grid)
SEED = 12345  # the fixed noise every snapshot draws from
_NAME = re.compile(r"^step_(\d{8})\.json$")


def _profile(profile) -> dict:
    return {"frequency": [round(float(f), 5) for f in profile.frequency],
            "power_db": [round(float(p), 3) for p in profile.power]}


class Snapshots:
    """Writes one snapshot per call into ``folder`` (the run folder's ``snapshots/``).

    Args:
        folder: where the snapshots go.
        real: real training crops ``(N, 3, S, S)`` in ``[-1, 1]`` (the first ``COUNT`` are
            the reference of the spectral distance).
    """

    def __init__(self, folder: str | Path, real: torch.Tensor):
        from core.analysis import analyse_batches

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.real = analyse_batches([real[:COUNT].float().cpu()])
        atomic_write(self.folder / "real.json",
                     json.dumps({"images": self.real.images, "size": self.real.size,
                                 "profile": _profile(self.real.profile)}))

    def take(self, model, step: int) -> dict:
        """Sample, analyse and write the snapshot of ``step``; return its JSON record."""
        from core.analysis import analyse_batches
        from core.spectrum import spectral_distance

        was_training = model.training
        gen = torch.Generator(device=model.device).manual_seed(SEED)
        try:
            images = model.sample(COUNT, gen).float().cpu()
        finally:
            model.train(was_training)
        report = analyse_batches([images])
        grid = report.grid
        record = {"step": int(step), "images": report.images, "size": report.size,
                  "period": grid.period, "grid_prominence_db": round(float(grid.score_db), 3),
                  "false_alarm": round(float(grid.false_alarm), 4),
                  "spectral_distance_db": round(float(spectral_distance(
                      report.profile, self.real.profile)), 3),
                  "profile": _profile(report.profile)}
        kept = ((images[:KEPT].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        buf = io.BytesIO()
        np.savez_compressed(buf, samples=kept,
                            spectrum=report.spectrum.float().cpu().numpy())
        atomic_write(self.folder / f"step_{step:08d}.npz", buf.getvalue())
        atomic_write(self.folder / f"step_{step:08d}.json", json.dumps(record))
        return record


@dataclass(frozen=True)
class Snapshot:
    """One snapshot read back: its JSON record, samples ``(N, 3, S, S)`` uint8 and the
    centred mean spectrum (dB)."""

    record: dict
    samples: np.ndarray
    spectrum: np.ndarray

    @property
    def step(self) -> int:
        return int(self.record["step"])


def snapshot_steps(folder: str | Path) -> list[int]:
    """The steps with a complete snapshot in ``folder``, ascending."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name)))


def read_record(folder: str | Path, step: int) -> dict:
    """The JSON record of ``step``'s snapshot (a damaged one is an :class:`FpxError`)."""
    path = Path(folder) / f"step_{step:08d}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"{path}: unreadable snapshot ({err})") from None
    if not isinstance(record, dict) or record.get("step") != step:
        raise InvalidInputError(f"{path}: not the snapshot of step {step}")
    return record


def read_snapshot(folder: str | Path, step: int) -> Snapshot:
    """``step``'s snapshot: record, samples and spectrum (npz read without pickles)."""
    from core.limits import read_npz

    record = read_record(folder, step)
    arrays = read_npz(Path(folder) / f"step_{step:08d}.npz", "snapshot")
    try:
        return Snapshot(record, arrays["samples"], arrays["spectrum"])
    except KeyError as err:
        raise InvalidInputError(f"snapshot of step {step} lacks {err}") from None


def read_real(folder: str | Path) -> dict | None:
    """The real crops' record (``profile``), or ``None`` when absent or unreadable."""
    try:
        return json.loads((Path(folder) / "real.json").read_text())
    except (OSError, ValueError, FpxError):
        return None


def lattice_frequencies(period: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(fx, fy)`` of the lattice of ``period`` pixels: every ``(a, b) / period`` inside
    ``[-0.5, 0.5)`` but DC (empty without a period), for drawing the detected grid."""
    if not period:
        return np.array([]), np.array([])
    k = np.arange(-math.ceil(period), math.ceil(period) + 1)
    f = k / float(period)
    f = f[(f >= -0.5) & (f < 0.5)]
    fx, fy = np.meshgrid(f, f)
    keep = (fx != 0) | (fy != 0)
    return fx[keep], fy[keep]
