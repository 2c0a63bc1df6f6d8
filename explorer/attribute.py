"""Attribute tab state: who made these images? ``param`` only, never panel.

The images (an upload or a server folder) are embedded like any set
(:mod:`explorer.image_sets`, so the current extractor and its size policy are used),
their residual spectra read beside (:mod:`explorer.attribution_features`), and set
against the gallery: the shipped zoo entries (``SHOTS`` reference images each) plus
any models the user added from the Embeddings tab with the same extractor (a folder's,
uploads, held-out bank samples: :func:`explorer.image_sets.gallery_folder`). Each image
gets its nearest models and a verdict, "unknown" under a threshold calibrated on
held-out models (:mod:`explorer.attribution_gallery`), in a within-class whitened
space learnt from the gallery's reference images (:mod:`core.extractor.whitening`). The
evidence is spectral: the images' mean spectrum and detected upsampling lattice
(:func:`core.analysis.analyse_paths`, as ``fpx spectrum``) against the nearest
generator's and the real photos'.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import param

from core.analysis import SpectrumReport, analyse_paths
from core.errors import FpxError, InvalidInputError
from core.extractor import EmbeddingSet
from core.extractor.whitening import Whitening
from core.spectrum import spectral_distance
from core.spectrum.lattice import describe_period
from core.zoo.shipped import SHIPPED_ZOO, read_manifest
from explorer import attribution_features as af
from explorer import attribution_gallery as ag
from explorer.background import BackgroundState
from explorer.embeddings import combine
from explorer.image_sets import (
    ImageSet,
    cached_embeddings,
    extractor_choices,
    extractor_hash,
    gallery_folder,
    runs_dir,
    upload_set,
    zoo_set,
)
from explorer.sources import within_roots

FORMAT = "fpx.attribution/1"


def query_folder(path: str) -> ImageSet:
    """A server folder of images to attribute (under the data roots)."""
    text = (path or "").strip()
    if not text:
        raise InvalidInputError("drop images on the upload area or type a server folder")
    root = Path(text).expanduser()
    root = root if root.is_absolute() else Path.cwd() / root
    if not within_roots(root):
        raise InvalidInputError(f"{text}: outside the folders this server may read (its "
                                "data roots, FPX_DATA_ROOTS)")
    if not root.is_dir():
        raise InvalidInputError(f"{text}: no such folder")
    return ImageSet(f"folder {root.name}", root)


def user_gallery(runs: Path, extractor: Path) -> list[EmbeddingSet]:
    """Models added from the Embeddings tab with ``extractor``
    (:func:`~explorer.image_sets.gallery_folder`); a damaged file is left out."""
    found = []
    for path in sorted(gallery_folder(runs, extractor).glob("*.npz")):
        try:
            found.append(EmbeddingSet.load(path))
        except FpxError:
            continue
    return found


@functools.lru_cache(maxsize=32)
def _analysis(paths: tuple[str, ...], size: int | None) -> SpectrumReport:
    return analyse_paths(list(paths), size=size, residual="blur")


@dataclass(frozen=True, eq=False)
class AttributeResult:
    """One answer.

    Attributes:
        verdicts: one per image; summary: the set's most frequent answer.
        calibration: the threshold and its measured rates.
        features: what was compared (:data:`explorer.attribution_features.BOTH`, or
            the embedding alone when the gallery's images are gone: ``why``);
        transform: the whitening the cosines were taken in.
        gallery: the known models; removed: those left out of it.
        report: the images' spectrum analysis at their own size (lattice), residual
            ``blur``; shown: the same at the evidence's size (the zoo's, or smaller).
        nearest_report: the nearest generator's (over the set), or ``None`` when it is
            not a zoo entry; real_report: the zoo's real photos'.
        distance_nearest_db, distance_real_db: spectral distances of radial profiles.
        compute_ms: wall time.
        design: the shipped design heads' guess for the set (field -> value ->
            probability, :data:`DESIGN_FIELDS`), or ``None`` when no heads were fitted
            on this extractor (:func:`design_guess`).
    """

    verdicts: tuple[ag.Verdict, ...]
    summary: str
    calibration: ag.Calibration
    features: str
    why: str
    transform: Whitening
    gallery: tuple[str, ...]
    removed: tuple[str, ...]
    nearest_model: str
    report: SpectrumReport
    shown: SpectrumReport
    nearest_report: SpectrumReport | None
    real_report: SpectrumReport
    distance_nearest_db: float | None
    distance_real_db: float
    compute_ms: float
    design: dict | None = None

    def method(self) -> str:
        """One line: the features and the transform the answer used."""
        line = f"Features: {af.DESCRIPTIONS[self.features]}; {self.transform.describe()}."
        return line + (f" (Spectra left out: {self.why}.)" if self.why else "")

    def to_dict(self) -> dict:
        grid = self.report.grid
        return {
            "format": FORMAT, "summary": self.summary,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "calibration": self.calibration.to_dict(),
            "method": {"features": self.features, "features_note": self.why,
                       "transform": self.transform.to_dict()},
            "gallery": list(self.gallery), "removed_from_gallery": list(self.removed),
            "lattice": {"period": grid.period, "false_alarm": round(grid.false_alarm, 4),
                        "explanation": describe_period(grid.period), "images": grid.images},
            "evidence": {"nearest_model": self.nearest_model,
                         "spectral_distance_to_nearest_db": self.distance_nearest_db,
                         "spectral_distance_to_real_db": round(self.distance_real_db, 3),
                         "residual": self.report.residual},
            "design": self.design,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class AttributeState(BackgroundState):
    """The images asked about, the gallery and the threshold; the answer."""

    extractor = param.Selector(default=None, objects=[], label="Extractor")
    folder = param.String(default="", label="Server folder",
                          doc="A folder of images on the server (under FPX_DATA_ROOTS)")
    target_far = param.Number(default=ag.TARGET_FAR, bounds=(0.005, 0.5), step=0.005,
                              label="False-accept rate",
                              doc="Share of images of generators not in the gallery that "
                                  "may still be attributed to one (sets the threshold)")
    removed = param.ListSelector(default=[], objects=[], label="Left out of the gallery",
                                 doc="Known models to pretend unknown (test the verdict)")
    result = param.ClassSelector(class_=AttributeResult, allow_None=True, default=None)
    too_much = "attribute fewer images"

    def __init__(self, runs: str | Path | None = None, gallery: ImageSet | None = None,
                 **params):
        self.runs = Path(runs) if runs is not None else runs_dir()
        self.extractors = extractor_choices(self.runs)
        self.gallery = gallery or zoo_set()  # known models: sub-folders of one folder
        super().__init__(**params)
        self.param.extractor.objects = list(self.extractors)
        with param.discard_events(self):
            if self.extractor is None:
                self.extractor = next(iter(self.extractors))
            self.refresh_gallery()
        self.uploads: list[tuple[str, bytes]] = []

    def known_models(self) -> list[str]:
        """The gallery's models: the known folder's (the shipped zoo's entries), then
        those added from the Embeddings tab with the current extractor."""
        if self.gallery.folder == zoo_set().folder:
            try:
                names = list(read_manifest(SHIPPED_ZOO).entries)
            except FpxError:
                names = []
        else:
            names = sorted(p.name for p in self.gallery.folder.iterdir() if p.is_dir())
        folder = self.extractors.get(self.extractor)
        if folder is not None:
            try:
                added = gallery_folder(self.runs, folder).glob("*.npz")
                names += sorted(p.stem for p in added if p.stem not in names)
            except (FpxError, OSError):
                pass  # an unfinished extractor: said when attributing
        return names

    def refresh_gallery(self) -> None:
        """Offer the gallery's models (models added meanwhile included) to leave out."""
        names = self.known_models()
        if names != self.param.removed.objects:
            self.param.removed.objects = names
        if any(m not in names for m in self.removed):  # its file was deleted
            self.removed = [m for m in self.removed if m in names]

    def set_uploads(self, files: list[tuple[str, bytes]]) -> None:
        """The dropped images (``(name, bytes)``); none left (all removed) clears the
        answer, or goes back to the server folder when one is typed."""
        self.uploads = list(files)
        if not self.uploads and not self.folder.strip():
            self.supersede()  # a computation still running is not shown
            self.param.update(result=None, message="", status="", busy=False)
            return
        self.compute()

    @param.depends("extractor", "folder", "target_far", "removed", watch=True)
    def compute(self) -> None:
        """Attribute the current images, off this thread."""
        if not self.uploads and not self.folder.strip():
            return
        self.refresh_gallery()
        self.run(self._work, "fpx-attribute")

    def failed(self) -> dict:
        return {"result": None}

    def _work(self, gen: int) -> None:
        result = self.attribute(gen)
        self.say(gen, result=result, progress=1.0,
                 status=f"answered in {result.compute_ms / 1000:.1f} s")

    def query(self) -> ImageSet:
        if self.uploads:
            return upload_set(self.uploads, self.runs, label="query")
        return query_folder(self.folder)

    def gallery_sets(self, gen: int | None = None) -> list[EmbeddingSet]:
        """Zoo embeddings and the user's gallery files, cached like the Embeddings tab's."""
        folder = self.extractors[self.extractor]
        zoo = cached_embeddings(self.gallery, folder, self.runs,
                                status=lambda t: gen is None or self.say(gen, status=t))
        return [zoo, *[s for s in user_gallery(self.runs, folder) if s.dim == zoo.dim]]

    def gallery_data(self, gen: int | None = None) -> EmbeddingSet:
        """:meth:`gallery_sets` as one set."""
        return combine(self.gallery_sets(gen))

    def attribute(self, gen: int | None = None) -> AttributeResult:
        """The whole answer for the current images (runs on the calling thread)."""
        t0 = time.perf_counter()
        say = (lambda **v: self.say(gen, **v)) if gen is not None else (lambda **v: None)
        folder = self.extractors.get(self.extractor)
        if folder is None:
            raise InvalidInputError("choose an extractor")
        query = self.query()
        say(progress=0.1, status="gallery")
        gallery, cal, kind, why = _calibrated(self, folder)
        say(progress=0.4, status="embedding the images")
        found = cached_embeddings(query, folder, self.runs)
        names = tuple(Path(p).name for p in found.paths)
        features = af.query_features(found, kind, self.runs)
        verdicts = ag.verdicts(features, names, gallery, cal.threshold)
        say(progress=0.6, status="spectra and lattice")
        report = _analysis(tuple(found.paths), None)
        best = ag.verdicts(features.mean(0, keepdims=True), ["set"], gallery,
                           cal.threshold)[0].nearest[0][0]
        # The evidence sets spectra side by side at one size: the zoo's (32 px) or the
        # images' own when smaller; larger images are centre-cropped for it.
        manifest = read_manifest(SHIPPED_ZOO)
        size = min(report.size, manifest.size)
        shown = report if size == report.size else _analysis(tuple(found.paths), size)
        real = _analysis((str(SHIPPED_ZOO / manifest.real.folder),), size)
        near_report, d_near = None, None
        if best in manifest.entries:
            near_report = _analysis((str(SHIPPED_ZOO / manifest.entries[best].folder),), size)
            d_near = round(float(spectral_distance(shown.profile, near_report.profile)), 3)
        return AttributeResult(
            tuple(verdicts), ag.summary(verdicts), cal, kind, why, gallery.transform,
            gallery.names, tuple(self.removed),
            best, report, shown, near_report, real,
            d_near, float(spectral_distance(shown.profile, real.profile)),
            (time.perf_counter() - t0) * 1000, design_guess(folder, found.embeddings))


# What the heads are shown for: on the zoo their upsampling beats the majority guess, their
# period and normalization do not (docs/results.md, "Design-choice heads").
DESIGN_FIELDS = ("upsampling",)


@functools.lru_cache(maxsize=1)
def _extractor_heads():
    from core.parsing import load_heads
    from core.parsing.fit import DEFAULT_HEADS

    return load_heads(DEFAULT_HEADS).get("extractor")


def design_guess(extractor: Path, embeddings) -> dict | None:
    """What the shipped design heads say of a set of images (the mean per-image
    probabilities of :data:`DESIGN_FIELDS`), when they were fitted on ``extractor``'s
    embeddings; ``None`` for any other extractor, or when the heads cannot be read."""
    import numpy as np
    import torch

    from core.parsing import check_extractor

    try:
        heads = _extractor_heads()
        if heads is None:
            return None
        check_extractor(heads, extractor)
        guess = heads.predict_set(torch.as_tensor(np.asarray(embeddings)))
    except (FpxError, OSError):
        return None
    return {f: guess[f] for f in DESIGN_FIELDS if f in guess}


_calibrations: dict[tuple, tuple[ag.Gallery, ag.Calibration, str, str]] = {}


def _calibrated(state: AttributeState, folder: Path
                ) -> tuple[ag.Gallery, ag.Calibration, str, str]:
    """The gallery, its threshold and its features' kind (and why the spectra are left
    out, if they are), kept per extractor, gallery files, removed models and target rate
    (whitening and calibration cost a few matrix products, the embedding far more)."""
    files = tuple(sorted((p.name, p.stat().st_mtime_ns)
                         for p in gallery_folder(state.runs, folder).glob("*.npz")))
    key = (extractor_hash(folder), str(state.runs), str(state.gallery.folder), files,
           tuple(sorted(state.removed)),
           round(state.target_far, 6))
    if key not in _calibrations:
        sets = state.gallery_sets()
        features, kind, why = af.gallery_features(sets, state.runs)
        labels = [lab for s in sets for lab in s.labels]
        gallery = ag.build_gallery(features, labels, ag.SHOTS, state.removed)
        _calibrations[key] = (gallery, ag.calibrate(gallery, state.target_far), kind, why)
    return _calibrations[key]
