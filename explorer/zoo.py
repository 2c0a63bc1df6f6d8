"""Zoo tab state: the shipped zoo samples (``core/assets/zoo``) and the generator runs
a user chose with "Use this run" in the Train tab (:mod:`explorer.zoo_runs`), one entry
at a time, against the matching real crops or another entry. ``param`` only, never panel.

Choosing an entry (or what to compare it with, or the residual) runs one computation,
:class:`ZooResult`: the entry's mean spectrum with its grid peaks, the reference's, their
difference and radial profiles, and the entry's recorded design, training and quality.
Sample sets are read once per process and their analyses cached, so a change costs one
spectrum of 200 small images at most.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import param
import torch

from core.analysis import SpectrumReport, analyse_batches
from core.data import read_folder
from core.errors import FpxError
from core.spectrum import RESIDUALS, spectral_distance
from core.zoo.shipped import SHIPPED_ZOO, ShippedEntry, ZooManifest, read_manifest

REAL = "Real crops"
GRID = 4  # samples shown: GRID x GRID


@dataclass(frozen=True)
class ZooResult:
    """One computation of the zoo tab.

    Attributes:
        entry: the entry's name; info: its manifest record (design, training, quality).
        reference: ``Real crops`` or another entry's name.
        samples: ``(3, GRID*S, GRID*S)`` tiled first samples in ``[-1, 1]``.
        report, ref_report: analyses of the entry's samples and of the reference.
        difference: ``(S, S)`` entry minus reference mean log spectrum, dB.
        distance_db: spectral distance between the two radial profiles.
        compute_ms: wall time.
    """

    entry: str
    info: ShippedEntry
    reference: str
    samples: torch.Tensor
    report: SpectrumReport
    ref_report: SpectrumReport
    difference: torch.Tensor
    distance_db: float
    compute_ms: float


@functools.lru_cache(maxsize=32)
def _images(folder: str, size: int) -> torch.Tensor:
    return read_folder(folder, size)[0]


@functools.lru_cache(maxsize=64)
def _analysis(folder: str, size: int, residual: str) -> SpectrumReport:
    return analyse_batches([_images(folder, size)], residual=residual)


def tile(images: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """The first ``grid * grid`` images ``(N, 3, S, S)`` as one ``(3, grid*S, grid*S)``."""
    n, c, s, _ = images.shape
    picked = images[:grid * grid]
    if len(picked) < grid * grid:  # pad with mid-grey
        pad = torch.zeros(grid * grid - len(picked), c, s, s)
        picked = torch.cat([picked, pad])
    return picked.view(grid, grid, c, s, s).permute(2, 0, 3, 1, 4).reshape(c, grid * s,
                                                                        grid * s)


@dataclass(frozen=True)
class _Source:
    """Where an entry's samples and its real crops lie, and at what size."""

    info: ShippedEntry
    samples: Path
    real: Path
    size: int


def _sources(folder: Path, manifest: ZooManifest, label=lambda name: name) -> dict:
    return {label(name): _Source(info, folder / info.folder, folder / manifest.real.folder,
                                 manifest.size)
            for name, info in manifest.entries.items()}


class ZooState(param.Parameterized):
    """Which zoo entry to look at, against what, with which residual: the shipped ones,
    then the finished generator runs marked "Use this run" in the Train tab
    (:mod:`explorer.zoo_runs`, labelled ``your run: RUN``)."""

    entry = param.Selector(default=None, objects=[], label="Zoo entry",
                           doc="A small trained generator shipped with fpx (its samples "
                               "in core/assets/zoo; the name says family and upsampling), "
                               "or one of your runs chosen in the Train tab")
    reference = param.Selector(default=REAL, objects=[REAL], label="Compare with",
                               doc="What the entry's spectrum is set against: the real "
                                   "crops it was trained on, or another entry")
    residual = param.Selector(default="none", objects=list(RESIDUALS), label="Residual",
                              doc="Analyse the images minus a 3x3 blur or median of them "
                                  "(the fine detail where fingerprints live), or as they are")
    message = param.String(default="", doc="The last problem, one line (empty if none)")
    result = param.ClassSelector(class_=ZooResult, allow_None=True, default=None)

    def __init__(self, folder: str | Path = SHIPPED_ZOO, runs: str | Path | None = None,
                 **params):
        super().__init__(**params)
        self.folder = Path(folder)
        self.runs = Path(runs) if runs is not None else None  # None: the runs directory
        self.manifest: ZooManifest | None = None
        self.sources: dict[str, _Source] = {}
        try:
            self.manifest = read_manifest(self.folder)
            self.sources = _sources(self.folder, self.manifest)
        except FpxError as err:
            self.message = f"no zoo samples to show: {err}"
        self.refresh_entries()  # the first entry is shown

    def refresh_entries(self) -> bool:
        """Read the used runs back (a few small files); update the entry lists if they
        changed. Returns whether they did."""
        from explorer.zoo_runs import LABEL, run_entries

        shipped = {k: v for k, v in self.sources.items() if not k.startswith(LABEL)}
        sources = dict(shipped)
        for r in run_entries(self.runs):
            sources.update(_sources(r.folder, r.manifest, lambda name, r=r: r.label))
        names = list(sources)
        if names == list(self.param.entry.objects) and sources.keys() == self.sources.keys():
            return False
        self.sources = sources
        self.param.entry.objects = names
        self.param.reference.objects = [REAL, *names]
        if self.reference not in self.param.reference.objects:
            self.reference = REAL
        if self.entry not in names:
            self.entry = names[0] if names else None
        return True

    @param.depends("entry", "reference", "residual", watch=True)
    def recompute(self) -> None:
        if self.entry is None or self.entry not in self.sources:
            return
        t0 = time.perf_counter()
        src = self.sources[self.entry]
        size, info = src.size, src.info
        try:
            folder = str(src.samples)
            ref_folder = str(src.real if self.reference == REAL
                             else self.sources[self.reference].samples)
            report = _analysis(folder, size, self.residual)
            ref = _analysis(ref_folder, size, self.residual)
            samples = tile(_images(folder, size))
        except (FpxError, KeyError, OSError) as err:
            self.message = f"cannot show {self.entry}: {str(err).splitlines()[0]}"
            return
        self.message = ""
        self.result = ZooResult(
            entry=self.entry, info=info, reference=self.reference, samples=samples,
            report=report, ref_report=ref, difference=report.spectrum - ref.spectrum,
            distance_db=float(spectral_distance(report.profile, ref.profile)),
            compute_ms=(time.perf_counter() - t0) * 1000)
