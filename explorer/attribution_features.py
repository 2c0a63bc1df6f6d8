"""What the Attribute tab compares: the hybrid fingerprint of
:mod:`core.extractor.hybrid`, the extractor's embedding beside the blur-residual log
spectrum it reads (on a :data:`GRID`-px frequency grid), each made unit length.

Spectra are read from the images' files (an :class:`~core.extractor.EmbeddingSet` keeps
their paths, so gallery files saved from the Embeddings tab need nothing more) and
cached under ``RUNS/embeddings/spectra/KEY.npy``, ``KEY`` hashing every file's path,
size and modification time. When a set's images are no longer on disk its spectra
cannot be made: :func:`gallery_features` then falls back to the embeddings alone and
says why.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import FpxError, InvalidInputError
from core.extractor import EmbeddingSet
from core.extractor.hybrid import GRID, hybrid, spectra_of

BOTH = "embedding+spectrum"
EMBEDDING = "embedding"
DESCRIPTIONS = {
    BOTH: "extractor embedding + blur-residual log spectrum (each unit length)",
    EMBEDDING: "extractor embedding",
}


_memo: dict[str, np.ndarray] = {}
_guard = threading.Lock()


def spectra_key(paths: Sequence[str]) -> str:
    h = hashlib.sha256(f"spectrum-blur-{GRID}".encode())
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            raise InvalidInputError(f"{p}: the image is no longer on disk (its spectrum "
                                    "cannot be read)") from None
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:32]


def cached_spectra(paths: Sequence[str], runs: Path) -> np.ndarray:
    """:func:`spectra_of`, kept in memory and under ``RUNS/embeddings/spectra``."""
    key = spectra_key(paths)
    with _guard:
        if key in _memo:
            return _memo[key]
    path = Path(runs) / "embeddings" / "spectra" / f"{key}.npy"
    found = None
    if path.is_file():
        try:
            found = np.load(path, allow_pickle=False)
            if found.shape != (len(paths), 3 * GRID * GRID) or not np.isfinite(found).all():
                found = None
        except (OSError, ValueError):
            found = None  # a damaged cache file is made again
    if found is None:
        found = spectra_of(paths)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.save(fh, found, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:  # a read-only or full runs folder costs the next read, not this one
            tmp.unlink(missing_ok=True)
    with _guard:
        if len(_memo) > 64:
            _memo.clear()
        _memo[key] = found
    return found


def combine(embeddings: np.ndarray, spectra: np.ndarray | None) -> np.ndarray:
    """``[unit(embedding), unit(spectrum)] / sqrt(2)`` per row
    (:func:`core.extractor.hybrid.hybrid`); the unit embedding alone without spectra."""
    return hybrid(embeddings, spectra)


def gallery_features(sets: Sequence[EmbeddingSet], runs: Path
                     ) -> tuple[np.ndarray, str, str]:
    """Features of the rows of ``sets`` (concatenated), their kind (:data:`BOTH`, or
    :data:`EMBEDDING` when a set's images cannot be read: the reason comes third)."""
    emb = np.concatenate([s.embeddings for s in sets])
    try:
        spectra = np.concatenate([cached_spectra(s.paths, runs) for s in sets])
    except FpxError as err:
        return combine(emb, None), EMBEDDING, str(err).splitlines()[0]
    return combine(emb, spectra), BOTH, ""


def query_features(data: EmbeddingSet, kind: str, runs: Path) -> np.ndarray:
    """The images' features of the gallery's ``kind``."""
    if kind == EMBEDDING:
        return combine(data.embeddings, None)
    return combine(data.embeddings, cached_spectra(data.paths, runs))
