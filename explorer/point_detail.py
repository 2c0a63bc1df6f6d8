"""What the Embeddings tab shows for a clicked point: the image, its spectrum, the
lattice detected in its model's images, and its nearest models. ``param``-free.
"""

from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass

import torch

from core.analysis import SpectrumReport, analyse_paths
from core.data import iter_image_batches, to_uint8
from core.errors import FpxError, InvalidInputError

MAX_MODEL_IMAGES = 200  # the lattice of a model is tested on at most this many images


@dataclass(frozen=True, eq=False)
class PointDetail:
    """One image of the map.

    Attributes:
        row: its row in the embeddings; path, model: where it came from.
        image: ``(3, S, S)`` in ``[-1, 1]`` (the image's own size).
        report: its own spectrum analysis (residual ``blur``).
        model_report: the analysis of its model's images (the lattice is a property of
            a set: one image rarely shows it significantly); ``None`` if unreadable.
        nearest: the 5 nearest models ``(name, cosine)`` to its embedding.
    """

    row: int
    path: str
    model: str
    image: torch.Tensor
    report: SpectrumReport
    model_report: SpectrumReport | None
    nearest: tuple[tuple[str, float], ...]


@functools.lru_cache(maxsize=8)
def model_analysis(paths: tuple[str, ...]) -> SpectrumReport:
    return analyse_paths(list(paths[:MAX_MODEL_IMAGES]), residual="blur")


@functools.lru_cache(maxsize=64)
def image_analysis(path: str) -> tuple[torch.Tensor, SpectrumReport]:
    report = analyse_paths([path], residual="blur")
    image = next(iter_image_batches([path], report.size, 1))[0]
    return image, report


def point_detail(paths, labels, row: int, nearest) -> PointDetail:
    """The detail of image ``row`` of a set with ``paths`` and ``labels``."""
    if not 0 <= row < len(paths):
        raise InvalidInputError(f"no point {row}: the map has {len(paths)} images")
    path, model = paths[row], labels[row]
    image, report = image_analysis(path)
    mine = tuple(p for p, lab in zip(paths, labels) if lab == model)
    try:
        model_report = model_analysis(mine)
    except FpxError:
        model_report = None
    return PointDetail(row, path, model, image, report, model_report, tuple(nearest))


@functools.lru_cache(maxsize=8192)
def thumbnail(path: str, size: int = 32) -> str:
    """A PNG data URL of the image's centre ``size`` crop (hover tooltips), "" if
    unreadable."""
    from PIL import Image

    try:
        x = next(iter_image_batches([path], size, 1))
    except (StopIteration, FpxError, OSError):
        return ""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(x)[0]).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
