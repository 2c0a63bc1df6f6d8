"""Manifold tab state: a generator's artifact (ManiFPT), and attribution from artifacts.
``param`` only, never panel.

For the chosen zoo entries (or a server folder whose sub-folders are models) and space
(rgb, freq, learned), :func:`core.manifold.artifacts.compute_artifacts` computes, as
``fpx artifacts`` does (``k = 1``, 200 real crops held out, seed 0), each sample's
nearest real image and artifact (sample minus that neighbour). The tab shows one
triple, sample | nearest real | amplified artifact, and the mean spectrum of the
model's artifacts with its lattice. On request it trains the ``fpx attribute``
classifiers (artifacts against raw images, :func:`core.manifold.attribution.attribute`)
and shows the accuracy table and confusion. Both are cached under ``RUNS/manifold``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import param
import torch

from core.analysis import SpectrumReport, analyse_batches
from core.data import read_folder
from core.errors import FpxError, InvalidInputError
from core.manifold.artifacts import REAL, ArtifactSet, compute_artifacts
from core.manifold.attribution import AttributionConfig, attribute, fisher_ratio
from core.manifold.embeddings import SPACES
from core.runtime import atomic_write
from core.zoo.shipped import SHIPPED_ZOO, read_manifest
from explorer.background import BackgroundState
from explorer.image_sets import file_digest, runs_dir, server_set

HOLDOUT_REAL = 200  # fpx artifacts' default
ATTRIBUTION_EPOCHS = 5  # the dashboard's classifiers: 1 seed, 5 epochs (fpx attribute: 3, 20)


def gain(image_artifacts: np.ndarray) -> float:
    """One amplification for a whole set (as :func:`core.figures.artifact_grid`): the
    99th percentile of ``|artifact|`` maps to full scale."""
    return float(np.percentile(np.abs(image_artifacts), 99)) or 1.0


@dataclass(frozen=True, eq=False)
class ArtifactView:
    """One sample's triple and its model's artifact spectrum.

    Attributes:
        model, index: which sample (``index`` among the model's); path: its file.
        sample, neighbour, artifact: ``(3, S, S)`` in ``[-1, 1]``; the artifact amplified
            by ``gain`` (mid-grey = 0).
        distance: sample-to-neighbour distance in the space.
        spectrum: the mean spectrum of the model's image artifacts, with its lattice.
    """

    model: str
    index: int
    path: str
    sample: torch.Tensor
    neighbour: torch.Tensor
    artifact: torch.Tensor
    gain: float
    distance: float
    spectrum: SpectrumReport


def triple(s: ArtifactSet, model: str, index: int) -> ArtifactView:
    rows = np.flatnonzero(s.of(model))
    if len(rows) == 0:
        raise InvalidInputError(f"no samples of {model}")
    i = int(rows[min(max(index, 0), len(rows) - 1)])
    sample = torch.from_numpy(s.images[i]).float() / 127.5 - 1
    art = torch.from_numpy(s.image_artifacts[i])
    g = gain(s.image_artifacts)
    return ArtifactView(model, int(np.searchsorted(rows, i)), str(s.paths[i]), sample,
                        (sample - art).clamp(-1, 1), (art / g).clamp(-1, 1), g,
                        float(s.distances[i, 0]),
                        _artifact_spectrum(id(s), s, model))


_spectra: dict[tuple[int, str], SpectrumReport] = {}


def _artifact_spectrum(key: int, s: ArtifactSet, model: str) -> SpectrumReport:
    if (key, model) not in _spectra:
        x = torch.from_numpy(s.image_artifacts[s.of(model)])
        _spectra[(key, model)] = analyse_batches([x])
    return _spectra[(key, model)]


@functools.lru_cache(maxsize=16)
def _folder_digest(folder: str, stamp: int) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + file_digest(path))
    return h.hexdigest()


def digest(folder: Path) -> str:
    return _folder_digest(str(folder), Path(folder).stat().st_mtime_ns)


class ManifoldState(BackgroundState):
    """Which models, which space, which sample; the artifacts and the attribution."""

    space = param.Selector(default="rgb", objects=list(SPACES), label="Space",
                           doc="Where the nearest real image is found: pixels (rgb), log "
                               "spectra (freq) or the extractor's embedding (learned)")
    entries = param.ListSelector(default=[], objects=[], label="Zoo entries")
    folder = param.String(default="", label="Server folder (models as sub-folders)")
    model = param.Selector(default=None, objects=[], label="Model")
    index = param.Integer(default=0, bounds=(0, 10_000), label="Sample")
    artifacts = param.ClassSelector(class_=ArtifactSet, allow_None=True, default=None)
    view = param.ClassSelector(class_=ArtifactView, allow_None=True, default=None)
    attribution = param.Dict(default=None, allow_None=True,
                             doc="fpx attribute's report: artifacts and raw images")
    too_much = "choose fewer models"

    def __init__(self, runs: str | Path | None = None, **params):
        self.manifest = read_manifest(SHIPPED_ZOO)  # the real photos: the tab's reference
        super().__init__(**params)
        self.runs = Path(runs) if runs is not None else runs_dir()
        names = list(self.manifest.entries)
        self.param.entries.objects = names
        with param.discard_events(self):
            if "entries" not in params:
                self.entries = names[:4]

    # -- the artifacts ---------------------------------------------------------------
    def folders(self) -> dict[str, Path]:
        """Model name -> folder of samples."""
        found = {n: SHIPPED_ZOO / self.manifest.entries[n].folder for n in self.entries}
        if self.folder.strip():
            root = server_set(self.folder).folder
            found.update({p.name: p for p in sorted(root.iterdir()) if p.is_dir()})
        if not found:
            raise InvalidInputError("choose zoo entries or a server folder of models")
        if REAL in found:
            raise InvalidInputError(f"'{REAL}' is reserved for the held-out real photos; "
                                    "rename that model's folder")
        return found

    def key(self, folders: dict[str, Path]) -> str:
        h = hashlib.sha256(f"{self.space}|{HOLDOUT_REAL}|k1|seed0".encode())
        for name, folder in sorted(folders.items()):
            h.update(f"{name}:{digest(folder)}".encode())
        h.update(digest(SHIPPED_ZOO / self.manifest.real.folder).encode())
        return h.hexdigest()[:32]

    @param.depends("space", "entries", "folder", watch=True)
    def compute(self) -> None:
        """Artifacts of the chosen models in the chosen space (cached), off this thread."""
        self.run(self._compute, "fpx-manifold")

    def _compute(self, gen: int) -> None:
        folders = self.folders()
        path = self.runs / "manifold" / f"{self.key(folders)}.npz"
        if path.exists():
            self.say(gen, status="artifacts read from cache", progress=0.5)
            found = ArtifactSet.load(path)
        else:
            size = self.manifest.size
            self.say(gen, status="reading images", progress=0.1)
            real, real_paths = read_folder(SHIPPED_ZOO / self.manifest.real.folder, size)
            generated, paths = {}, {}
            for name, folder in folders.items():
                generated[name], p = read_folder(folder, size)
                paths[name] = [str(q) for q in p]
            self.say(gen, status=f"nearest real images in {self.space} space", progress=0.3)
            found = compute_artifacts(generated, real, self.space, holdout_real=HOLDOUT_REAL,
                                      generated_paths=paths,
                                      real_paths=[str(q) for q in real_paths])
            path.parent.mkdir(parents=True, exist_ok=True)
            found.save(path)
        models = found.models
        model = self.model if self.model in models else next(m for m in models if m != REAL)
        shown = (found, self._cached_attribution(path), model, triple(found, model, self.index))
        self.later(gen, functools.partial(self._land, *shown))

    def _land(self, found: ArtifactSet, attribution: dict | None, model: str,
              view: ArtifactView) -> None:
        """Land a computation's artifacts, the model shown and its first view."""
        self.param.model.objects = found.models
        self.param.update(artifacts=found, attribution=attribution,
                          status=f"{len(found.labels)} artifacts of {len(found.models)} "
                                 f"models ({self.space})", progress=1.0)
        with param.discard_events(self):
            self.model = model
        self.view = view

    @param.depends("model", "index", watch=True)
    def show(self) -> None:
        if self.artifacts is None or self.model is None:
            return
        try:
            self.view = triple(self.artifacts, self.model, self.index)
        except FpxError as err:
            self.message = str(err).splitlines()[0]

    # -- attribution -----------------------------------------------------------------
    def _attribution_path(self, npz: Path) -> Path:
        return npz.with_name(f"{npz.stem}_attribution_e{ATTRIBUTION_EPOCHS}.json")

    def _cached_attribution(self, npz: Path) -> dict | None:
        path = self._attribution_path(npz)
        try:
            return json.loads(path.read_text()) if path.exists() else None
        except (OSError, ValueError):
            return None

    def run_attribution(self) -> None:
        """Train the attribution classifiers (artifacts, raw images), off this thread."""
        if self.artifacts is None:
            self.message = "compute the artifacts first"
            return
        self.run(self._attribute, "fpx-manifold")

    def _attribute(self, gen: int) -> None:
        s = self.artifacts
        npz = self.runs / "manifold" / f"{self.key(self.folders())}.npz"
        names = s.models
        labels = torch.tensor([names.index(v) for v in s.labels.tolist()])
        config = AttributionConfig(epochs=ATTRIBUTION_EPOCHS, seeds=(0,))
        report = {"space": s.space, "epochs": ATTRIBUTION_EPOCHS, "seeds": [0]}
        for step, (kind, x) in enumerate((("artifacts", s.classifier_input()),
                                          ("raw images", s.image_tensor()))):
            self.say(gen, status=f"training the {kind} classifier", progress=0.1 + 0.45 * step)
            result = attribute(x, labels, names, config)
            report[kind] = {**result.to_dict(), "fisher_ratio": fisher_ratio(x, labels)}
        atomic_write(self._attribution_path(npz), json.dumps(report))
        self.say(gen, attribution=report, progress=1.0,
                 status=f"attribution: artifacts {report['artifacts']['accuracy_mean']:.3f}, "
                        f"raw images {report['raw images']['accuracy_mean']:.3f}")
