"""The hybrid fingerprint: an extractor's embedding beside the spectrum it reads.

The extractor is trained to say which *design* made an image, so its embedding forgets
details that tell apart two generators of one design (two seeds, two samplers of one
DDPM). Its input, the blur-residual log spectrum, keeps them. The hybrid feature puts
the two side by side, each made unit length, so that cosine similarity weighs them
equally: it is the mean of the two halves' cosines::

    f = [unit(embedding), unit(spectrum)] / sqrt(2)     # (N, D + 3 * GRID * GRID), |f| = 1

No label of any model takes part: it is as zero-shot as the embedding. The Attribute tab
compares images on it, and ``fpx bench transfer --hybrid`` measures it beside the
embedding alone and beside the spectrum alone (``docs/results.md``).

The spectrum is the extractor's own input (:func:`core.extractor.inputs.extractor_input`,
``spectrum`` of the ``blur`` residual: per channel, dB / 10, minus the image's mean
level) on the frequency grid of a :data:`GRID`-px image whatever the image's size, read
as the size policy (:mod:`core.extractor.sizes`) reads images: a non-square image is cut
to its largest centred square; a larger one into ``GRID``-px tiles whose spectra are
averaged; a smaller one has its spectrum resampled onto the grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.errors import InvalidInputError
from core.extractor.whitening import unit

GRID = 32  # px: the spectrum's frequency grid (the zoo's size; larger images are tiled)


@torch.no_grad()
def input_spectrum(x: torch.Tensor, grid: int = GRID) -> torch.Tensor:
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


def hybrid(embeddings: np.ndarray, spectra: np.ndarray | None) -> np.ndarray:
    """``[unit(embedding), unit(spectrum)] / sqrt(2)`` per row (unit rows), float32; the
    unit embedding alone when ``spectra`` is ``None``."""
    if spectra is None:
        return unit(embeddings).astype(np.float32)
    if len(spectra) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(spectra)} spectra")
    return (np.hstack([unit(embeddings), unit(spectra)]) / np.sqrt(2)).astype(np.float32)


def _load(path: str) -> torch.Tensor:
    from core.data.images import ImageReadError, load_rgb
    from core.data.transforms import to_signed, to_tensor

    try:
        return to_signed(to_tensor(load_rgb(path)))
    except (ImageReadError, OSError) as err:
        raise InvalidInputError(f"{path}: cannot read the image for its spectrum "
                                f"({str(err).splitlines()[0][:120]})") from None


def spectra_of(paths: Sequence[str], batch: int = 64, grid: int = GRID) -> np.ndarray:
    """``(N, 3 * grid * grid)`` float32 input spectra of the image files, in order (read
    ``batch`` files at a time, one call per image shape among them).

    Raises:
        InvalidInputError: a file cannot be read (gone, damaged), naming it.
    """
    out = np.zeros((len(paths), 3 * grid * grid), dtype=np.float32)
    for start in range(0, len(paths), batch):
        groups: dict[tuple, tuple[list, list]] = {}
        for i in range(start, min(start + batch, len(paths))):
            image = _load(paths[i])
            rows, images = groups.setdefault(tuple(image.shape), ([], []))
            rows.append(i)
            images.append(image)
        for rows, images in groups.values():
            out[rows] = input_spectrum(torch.stack(images), grid).numpy()
    return out


def hybrid_set(data, metric=None):
    """An :class:`~core.extractor.EmbeddingSet` whose rows are the hybrid features of its
    images (their spectra read from ``data.paths``, which must still be on disk), through
    ``metric`` (a :class:`core.extractor.metric.HybridMetric`) when given."""
    from dataclasses import replace

    features = hybrid(data.embeddings, spectra_of(data.paths))
    return replace(data, embeddings=metric(features) if metric is not None else features)
