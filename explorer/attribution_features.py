"""What the Attribute tab compares: the extractor's embedding beside the image's residual
log spectrum, each made unit length, concatenated.

The spectrum is the extractor's own input (:func:`core.extractor.inputs.extractor_input`,
``spectrum`` of the ``blur`` residual: per channel, dB / 10, minus the image's mean
level) on the frequency grid of a :data:`GRID`-px image, whatever the image's size, as
the extractor's size policy reads it: a non-square image is cut to its largest centred
square; a larger one into ``GRID``-px tiles whose spectra are averaged; a smaller one has
its spectrum resampled onto the grid. ``3 * GRID * GRID`` values. The embedding says
which design made an image; the spectrum keeps details of one model's fingerprint that
the embedding was trained to forget (seeds of one design, two samplers of one DDPM).

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
import torch

from core.errors import FpxError, InvalidInputError
from core.extractor import EmbeddingSet
from explorer.whitening import unit

GRID = 32
BOTH = "embedding+spectrum"
EMBEDDING = "embedding"
DESCRIPTIONS = {
    BOTH: "extractor embedding + blur-residual log spectrum (each unit length)",
    EMBEDDING: "extractor embedding",
}


def residual_spectrum(x: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """Images ``(N, 3, H, W)`` in ``[-1, 1]`` (one shape) -> ``(N, 3 * grid * grid)``
    blur-residual log spectra on the ``grid``-px frequency grid (module docstring)."""
    from core.extractor.inputs import extractor_input
    from core.extractor.sizes import resample_spectrum, square, tiles

    x = x.float()
    if x.shape[-1] != x.shape[-2]:
        x = square(x)
    s = x.shape[-1]
    if s > grid:
        t = tiles(x, grid)  # (N, T, 3, grid, grid)
        n, k = t.shape[:2]
        spec = extractor_input(t.reshape(n * k, *t.shape[2:]), "spectrum", "blur")
        spec = spec.view(n, k, *spec.shape[1:]).mean(1)
    else:
        spec = extractor_input(x, "spectrum", "blur")
        if s < grid:
            spec = resample_spectrum(spec, grid)
    return spec.flatten(1)


def _load(path: str) -> torch.Tensor:
    from core.data.images import ImageReadError, load_rgb
    from core.data.transforms import to_signed, to_tensor

    try:
        return to_signed(to_tensor(load_rgb(path)))
    except (ImageReadError, OSError) as err:
        raise InvalidInputError(f"{path}: cannot read the image for its spectrum "
                                f"({str(err).splitlines()[0][:120]})") from None


def spectra_of(paths: Sequence[str], batch: int = 256) -> np.ndarray:
    """``(N, 3 * GRID * GRID)`` float32 spectra of the image files, in order."""
    out = np.zeros((len(paths), 3 * GRID * GRID), dtype=np.float32)
    for start in range(0, len(paths), batch):
        chunk = list(range(start, min(start + batch, len(paths))))
        groups: dict[tuple, tuple[list, list]] = {}
        for i in chunk:
            image = _load(paths[i])
            rows, images = groups.setdefault(tuple(image.shape), ([], []))
            rows.append(i)
            images.append(image)
        for rows, images in groups.values():
            with torch.no_grad():
                out[rows] = residual_spectrum(torch.stack(images)).numpy()
    return out


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, found, allow_pickle=False)
        os.replace(tmp, path)
    with _guard:
        if len(_memo) > 64:
            _memo.clear()
        _memo[key] = found
    return found


def combine(embeddings: np.ndarray, spectra: np.ndarray | None) -> np.ndarray:
    """``[unit(embedding), unit(spectrum)]`` per row; the unit embedding alone without
    spectra."""
    if spectra is None:
        return unit(embeddings).astype(np.float32)
    return np.hstack([unit(embeddings), unit(spectra)]).astype(np.float32)


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
