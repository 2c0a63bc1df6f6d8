"""Embeddings tab state: where generators sit in the extractor's embedding space.
``param`` only, never panel.

One computation, :class:`EmbeddingsResult`, feeds every view: the embeddings of the
chosen image sets (:mod:`explorer.image_sets`: zoo entries, real photos, held-out
synthetic bank samples, a server folder, uploads; cached on disk) and, from them, the 2-D
map, the model-by-model similarity in dendrogram order, the verification ROC and the
identification confusion for ``shots`` (:mod:`explorer.embedding_maps`; cached on disk
too, :mod:`explorer.embedding_cache`, so a reopen reads them back). Work runs on a
background thread with ``progress`` and ``status``; :meth:`EmbeddingsState.wait` joins
it (tests, notebooks). Colouring the map by a design field changes no number, only the
colours the view reads from :meth:`EmbeddingsState.colours`.

``features`` chooses what the views compare: the extractor's embeddings, or the hybrid
fingerprint (:mod:`core.extractor.hybrid`: each embedding beside its image's input
spectrum, through the extractor's synthetic metric when its folder has one), whose
spectra are read from the images and cached (:func:`explorer.attribution_features.
cached_spectra`). Switching re-derives the views without embedding again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import param

from core.errors import FpxError
from core.extractor import EmbeddingSet
from core.zoo.sample import read_design
from core.zoo.shipped import SHIPPED_ZOO, read_manifest
from explorer import embedding_maps as maps
from explorer.background import BackgroundState
from explorer.embedding_cache import load_views, mark_used, save_views, views_key, views_path
from explorer.image_sets import (
    BANK_HELDOUT,
    ImageSet,
    bank_designs,
    bank_set,
    cached_embeddings,
    extractor_choices,
    gallery_folder,
    key_lock,
    real_set,
    runs_dir,
    server_set,
    set_key,
    upload_set,
    zoo_set,
)
from explorer.point_detail import PointDetail, point_detail

DESIGN_FIELDS = ("model", "family", "upsampling", "normalization", "activation", "loss")
FEATURES = ("embedding", "hybrid")
REAL_LABEL = "real"
UNKNOWN = "unrecorded"


def zoo_designs() -> dict[str, dict]:
    """Zoo entry name -> its recorded design fields (``core/assets/zoo/manifest.json``)."""
    try:
        manifest = read_manifest(SHIPPED_ZOO)
    except FpxError:
        return {}
    return {name: {f: getattr(e.entry, f, UNKNOWN) for f in DESIGN_FIELDS[1:]}
            for name, e in manifest.entries.items()}


def combine(sets: list[EmbeddingSet]) -> EmbeddingSet:
    """One set of the rows of several (same extractor: same ``D``); it records their
    extractor when they all record the same one, else none."""
    if len(sets) == 1:
        return sets[0]
    identities = {s.extractor for s in sets}
    return EmbeddingSet(np.concatenate([s.embeddings for s in sets]),
                        tuple(p for s in sets for p in s.paths),
                        tuple(lab for s in sets for lab in s.labels),
                        tuple(k for s in sets for k in s.skipped),
                        identities.pop() if len(identities) == 1 else "")


def subset(data: EmbeddingSet, keep: np.ndarray) -> EmbeddingSet:
    """The rows ``keep`` (a boolean mask) of ``data``, which record its extractor."""
    return EmbeddingSet(data.embeddings[keep], tuple(np.asarray(data.paths)[keep].tolist()),
                        tuple(np.asarray(data.labels)[keep].tolist()), data.skipped,
                        data.extractor)


@dataclass(frozen=True, eq=False)
class EmbeddingsResult:
    """One computation of the tab.

    Attributes:
        data: the embeddings, one row per image, labels = models.
        level: ``images`` or ``models``; method: the map's method.
        points: ``(P, 2)`` map coordinates; point_labels: ``P`` model names;
            point_rows: for each point its first row in ``data``.
        means, models: ``(M, D)`` unit mean embedding per model and their names.
        similarity, roc, confusion: see :mod:`explorer.embedding_maps` (``None`` with
            a note in ``notes`` when the data cannot give one, e.g. a single model).
        compute_ms: wall time of the derivation (not of the embedding), or of reading
            it back; cached: whether it was read back (:mod:`explorer.embedding_cache`).
        features: what ``data`` holds (:data:`FEATURES`); source: the embeddings it was
            made from (the same rows; ``None``: ``data`` itself), what the gallery gets;
            gallery_names: ``(model, name)`` pairs, the gallery names of its held-out bank
            models (``bank-HELDOUT-FOLDER``); extractor: the folder of the extractor that
            embedded it (whose gallery it joins), both from the same computation.
    """

    data: EmbeddingSet
    level: str
    method: str
    points: np.ndarray
    point_labels: tuple[str, ...]
    point_rows: tuple[int, ...]
    means: np.ndarray
    models: tuple[str, ...]
    similarity: maps.Similarity | None
    roc: maps.Roc | None
    confusion: maps.Confusion | None
    notes: tuple[str, ...]
    compute_ms: float
    cached: bool = False
    features: str = "embedding"
    source: EmbeddingSet | None = None
    gallery_names: tuple[tuple[str, str], ...] = ()
    extractor: Path | None = None

    def views(self) -> dict:
        """Every field but the data, the settings and the timing (what is cached)."""
        return {k: getattr(self, k) for k in ("points", "point_labels", "point_rows",
                                              "means", "models", "similarity", "roc",
                                              "confusion", "notes")}


def derive(data: EmbeddingSet, level: str = "images", method: str = "pca", shots: int = 10,
           seed: int = 0) -> EmbeddingsResult:
    """Every view of one embedding set (raises ``FpxError`` when no map can be drawn)."""
    t0 = time.perf_counter()
    means, models = maps.model_means(data.embeddings, data.labels)
    if level == "models":
        points, labels = means, tuple(models)
        first = {lab: i for i, lab in reversed(list(enumerate(data.labels)))}
        rows = tuple(first[m] for m in models)
    else:
        points, labels, rows = data.embeddings, data.labels, tuple(range(len(data.labels)))
    xy = maps.project(points, method, seed)
    notes, parts = [], {}
    for name, fn in (("similarity", lambda: maps.similarity(data.embeddings, data.labels)),
                     ("roc", lambda: maps.roc(data.embeddings, data.labels, seed)),
                     ("confusion", lambda: maps.confusion(data.embeddings, data.labels, shots))):
        try:
            parts[name] = fn()
        except FpxError as err:
            parts[name] = None
            notes.append(f"{name}: {str(err).splitlines()[0]}")
    return EmbeddingsResult(data, level, method, xy, tuple(labels), rows, means.astype(np.float32),
                            tuple(models), parts["similarity"], parts["roc"], parts["confusion"],
                            tuple(notes), (time.perf_counter() - t0) * 1000)


def derive_cached(data: EmbeddingSet, parts: list, runs: Path, level: str = "images",
                  method: str = "pca", shots: int = 10, seed: int = 0) -> EmbeddingsResult:
    """:func:`derive`, read from ``RUNS/embeddings/views/`` when these embeddings
    (``parts``: see :func:`explorer.embedding_cache.views_key`) were seen with these
    settings, else computed and written there. Sessions asking at once wait for one."""
    key = views_key(parts, level, method, shots, seed)
    path = views_path(runs, key)
    with key_lock(f"views-{key}"):
        if path.exists():
            t0 = time.perf_counter()
            try:
                views = load_views(path, data.labels)
            except (FpxError, OSError):
                views = None  # damaged, stale or just pruned: made again below
            if views is not None:
                mark_used(path)
                return EmbeddingsResult(data, level, method, **views, cached=True,
                                        compute_ms=(time.perf_counter() - t0) * 1000)
        result = derive(data, level, method, shots, seed)
        try:
            save_views(path, result.views())
        except OSError:
            pass  # a read-only or full runs folder costs the next reopen, not this one
        return result


class _Embedded(NamedTuple):
    """One embedding of the chosen sets: the combined set, one set per image set, the
    views' cache key parts, the bank models' gallery names and the extractor's folder."""

    data: EmbeddingSet
    pieces: list[EmbeddingSet]
    keys: list
    gallery_names: dict[str, str]
    extractor: Path


class EmbeddingsState(BackgroundState):
    """Which images, which extractor, which map; the result and the clicked point."""

    extractor = param.Selector(default=None, objects=[], label="Extractor",
                               doc="The shipped extractor, or a finished extractor run")
    entries = param.ListSelector(default=[], objects=[], label="Zoo entries",
                                 doc="Shipped zoo entries to embed (200 samples each)")
    real = param.Boolean(default=True, label="Real photos",
                         doc="Add the zoo's real crops (1000 bundled-photo crops) as a model")
    bank = param.Selector(default="none", objects=["none", *BANK_HELDOUT],
                          label="Held-out bank samples",
                          doc="Synthetic models the extractor never saw (its training "
                              "bank's architectures with new seeds, or new architectures), "
                              "made once on request (fpx bank sample --heldout)")
    folder = param.String(default="", label="Server folder",
                          doc="A folder on the server whose sub-folders are models "
                              "(under the data roots, FPX_DATA_ROOTS)")
    features = param.Selector(default="embedding", objects=list(FEATURES), label="Features",
                              doc="The extractor's embeddings, or the hybrid fingerprint: "
                                  "each embedding beside its image's input spectrum (through "
                                  "the extractor's synthetic metric when it has one)")
    level = param.Selector(default="images", objects=["images", "models"], label="Points",
                           doc="One point per image, or per model (its mean embedding)")
    method = param.Selector(default="pca", objects=maps.available_methods(), label="Map",
                            doc="PCA (fast, linear), t-SNE (neighbourhoods), UMAP if installed")
    color_by = param.Selector(default="model", objects=list(DESIGN_FIELDS), label="Colour by",
                              doc="Colour points by a recorded design field")
    shots = param.Integer(default=10, bounds=(1, 100), label="Shots (identification)",
                          doc="Gallery images per model for the identification confusion")
    selected = param.Integer(default=-1, doc="The clicked point's row in the embeddings")
    result = param.ClassSelector(class_=EmbeddingsResult, allow_None=True, default=None)
    detail = param.ClassSelector(class_=PointDetail, allow_None=True, default=None,
                                 doc="The clicked image: its picture, spectrum, nearest models")

    def __init__(self, runs: str | Path | None = None, autostart: bool = True, **params):
        self.runs = Path(runs) if runs is not None else runs_dir()
        choices = extractor_choices(self.runs)
        self.extractors = choices
        self.designs = zoo_designs()
        super().__init__(**params)
        self.param.extractor.objects = list(choices)
        # asked per session, not at import: umap-learn installed later is offered
        self.param.method.objects = maps.available_methods()
        names = list(self.designs)
        self.param.entries.objects = names
        with param.discard_events(self):
            if self.extractor is None:
                self.extractor = next(iter(choices))
            if "entries" not in params:
                self.entries = names
        self.uploads: list[tuple[str, bytes]] = []
        # The embeddings of the chosen sets, replaced as one; None until embedded.
        self._embedded: _Embedded | None = None
        self._bank_designs: dict[str, dict] = {}
        self._started = False  # nothing is computed before start() (the tab is shown)
        if autostart:
            self.start()

    def start(self) -> None:
        """Allow computing, and compute (the view calls it when the tab is first shown)."""
        if not self._started:
            self._started = True
            self.compute()

    # -- the image sets --------------------------------------------------------------
    def sets(self, status=None) -> list[ImageSet]:
        """The sets chosen now (raises ``FpxError`` for a bad folder or upload). A
        held-out bank set is made here the first time (slow: call off the request thread;
        ``status`` hears its progress)."""
        out = []
        if self.entries:
            out.append(zoo_set())
        if self.real:
            out.append(real_set())
        if self.bank != "none" and self.extractor in self.extractors:
            made = bank_set(self.extractors[self.extractor], self.bank, self.runs,
                            status=status)
            self._bank_designs = bank_designs(made.folder)
            out.append(made)
        if self.folder.strip():
            out.append(server_set(self.folder))
        if self.uploads:
            out.append(upload_set(self.uploads, self.runs))
        return out

    def add_uploads(self, files: list[tuple[str, bytes]]) -> None:
        """Uploaded images become one model, ``upload``; recomputes."""
        self.uploads = list(files)
        self.compute()

    def design(self, model: str) -> dict:
        """The model's design fields: the zoo's record, ``samples.json`` of a folder's
        model, ``real`` for the real photos, else ``unrecorded``."""
        if model in self.designs:
            return {"model": model, **self.designs[model]}
        if model in self._bank_designs:
            return {"model": model, "loss": UNKNOWN, **self._bank_designs[model]}
        if model == REAL_LABEL or model == "real photos":
            return {"model": model, **{f: REAL_LABEL for f in DESIGN_FIELDS[1:]}}
        found = None
        if self.folder.strip():
            try:
                found = read_design(server_set(self.folder).folder / model)
            except FpxError:
                found = None
        fields = {f: (found or {}).get(f, UNKNOWN) for f in DESIGN_FIELDS[1:]}
        return {"model": model, **{k: str(v) for k, v in fields.items()}}

    def colours(self) -> list[str]:
        """The value of :attr:`color_by` for every point of the result."""
        r = self.result
        if r is None:
            return []
        cache = {m: self.design(m)[self.color_by] for m in set(r.point_labels)}
        return [cache[m] for m in r.point_labels]

    # -- computing -------------------------------------------------------------------
    @param.depends("extractor", "entries", "real", "bank", "folder", watch=True)
    def compute(self) -> None:
        """Embed the chosen sets (cached) and derive the views, off this thread."""
        self._start(embed=True)

    @param.depends("level", "method", "shots", "features", watch=True)
    def _rederive(self) -> None:
        self._start(embed=self._embedded is None)

    def _start(self, embed: bool) -> None:
        if not self._started:
            return
        self.run(partial(self._work, embed=embed), "fpx-embeddings")

    def failed(self) -> dict:
        return {"result": None}

    def _work(self, gen: int, embed: bool) -> None:
        features = self.features  # as asked when this computation began
        if embed:
            self._embedded = None
            made = self._embed(gen)
            if made is None:
                return
            self._embedded = made
        snapshot = self._embedded  # this thread's data, whatever a newer one sets
        if snapshot is None:
            return
        data, key = self._featured(gen, snapshot, features)
        if not self.current(gen):
            return
        self.say(gen, status=f"drawing the {self.method} map", progress=0.9)
        result = derive_cached(data, key, self.runs, self.level, self.method, self.shots)
        result = replace(result, features=features, source=snapshot.data,
                         gallery_names=tuple(sorted(snapshot.gallery_names.items())),
                         extractor=snapshot.extractor)
        self.say(gen, result=result, selected=-1, progress=1.0,
                 status=f"{len(result.data.labels)} images of {len(result.models)} models")

    def _embed(self, gen: int) -> _Embedded | None:
        folder = self.extractors.get(self.extractor)
        if folder is None:
            self.say(gen, message="choose an extractor")
            return None
        sets = self.sets(status=lambda text: self.say(gen, status=text))
        if not sets:
            self.say(gen, message="choose zoo entries, real photos, bank samples, a folder "
                                  "or uploads")
            return None
        parts, keys, names = [], [], {}
        for i, image_set in enumerate(sets):
            self.say(gen, progress=0.85 * i / len(sets), status=f"{image_set.label}: "
                     "hashing images")
            key = set_key(image_set, folder)
            found = cached_embeddings(image_set, folder, self.runs, key=key,
                                      status=lambda text: self.say(gen, status=text))
            kept = ()
            if image_set.label == "shipped zoo" and set(self.entries) != set(found.models):
                found = subset(found, np.isin(found.labels, list(self.entries)))
                kept = tuple(self.entries)
            if image_set.folder.parent == self.runs / "bank_samples":
                names.update({m: f"bank-{self.bank}-{m}" for m in found.models})
            if image_set.label == "real photos":
                found = replace(found, labels=(REAL_LABEL,) * len(found.paths))
            parts.append(found)
            keys.append((image_set.label, key, kept))
        if not self.current(gen):
            return None
        return _Embedded(combine(parts), parts, keys, names, folder)

    def _featured(self, gen: int, snapshot: _Embedded, features: str
                  ) -> tuple[EmbeddingSet, list]:
        """The ``snapshot``'s data as ``features`` (:data:`FEATURES`) says, and its views'
        cache key (the hybrid's names the metric by its digest: a refitted metric is a
        new key)."""
        data, pieces, parts = snapshot.data, snapshot.pieces, snapshot.keys
        if features == "embedding":
            return data, parts
        from core.extractor.hybrid import hybrid
        from core.extractor.metric import find_metric
        from explorer.attribution_features import cached_spectra

        metric = find_metric(snapshot.extractor)
        rows = []
        for i, piece in enumerate(pieces):
            self.say(gen, status=f"input spectra of {len(piece.paths)} images "
                                 f"({i + 1} of {len(pieces)} sets)")
            rows.append(hybrid(piece.embeddings, cached_spectra(piece.paths, self.runs)))
        features = np.concatenate(rows)
        if metric is not None:
            features = metric(features)
        metric_id = () if metric is None else (metric.digest,)
        key = [*parts, ("features", "hybrid", metric_id)]
        return EmbeddingSet(features, data.paths, data.labels, data.skipped), key

    # -- a clicked point -------------------------------------------------------------
    @param.depends("selected", watch=True)
    def _select(self) -> None:
        """The clicked image's detail (reads files: the view sets :attr:`selected` off
        the request thread; the detail lands through :attr:`dispatch`)."""
        r = self.result
        if r is None or self.selected < 0:
            self.dispatch(partial(self.param.update, detail=None))
            return
        try:
            found = point_detail(r.data.paths, r.data.labels, self.selected,
                                 self.nearest(self.selected))
            self.dispatch(partial(self.param.update, detail=found))
        except FpxError as err:
            self.dispatch(partial(self.param.update, message="cannot show that image: "
                                                             f"{str(err).splitlines()[0]}"))

    def nearest(self, row: int, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` models nearest to image ``row`` (cosine to their mean embedding)."""
        r = self.result
        return maps.nearest_models(r.data.embeddings[row], r.means, r.models, k)

    def add_to_gallery(self) -> list[str]:
        """Save the embeddings of the models that are not zoo entries or real photos (a
        folder's, the uploads, held-out bank samples) to :func:`gallery_folder` of the
        extractor, ``MODEL.npz``, where the Attribute tab finds them; returns their
        gallery names. Bank models are named ``bank-HELDOUT-FOLDER`` (the seeds' and the
        architectures' sets number their models alike)."""
        r = self.result
        folder = None if r is None else r.extractor  # the one that embedded it
        if r is None or folder is None:
            return []
        # the embeddings, whatever the views compare (the same rows)
        data = r.data if r.source is None else r.source
        target_dir = gallery_folder(self.runs, folder)
        added = []
        for model in r.models:
            if model in self.designs or model == REAL_LABEL:
                continue
            name = dict(r.gallery_names).get(model, model)
            keep = np.asarray(data.labels) == model
            part = subset(data, keep)
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80]
            target_dir.mkdir(parents=True, exist_ok=True)
            EmbeddingSet(part.embeddings, part.paths, (safe,) * len(part.paths),
                         extractor=part.extractor).save(target_dir / f"{safe}.npz")
            added.append(safe)
        self.status = (f"added {', '.join(added)} to the Attribute gallery" if added else
                       "nothing to add: only zoo entries and real photos are embedded")
        return added
