"""Grids of images as PNG bytes: a contact sheet of samples, and the artifact grid
(sample | nearest real | artifact, one row per model).

Tiles are enlarged by pixel repetition (nearest neighbour), never resampled: a blur
would hide exactly the pixel-level patterns these grids are for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.data.pngs import png_bytes, to_uint8
from core.errors import check_int
from core.runtime import atomic_write

if TYPE_CHECKING:
    from core.manifold.artifacts import ArtifactSet


HEADER = 16  # pixels above the tiles for column headers


def _sheet(rows: list[list[np.ndarray]], size: int, gap: int,
           names: list[str] | None = None, headers: list[str] | None = None) -> bytes:
    """Rows of ``(h, w, 3)`` uint8 tiles, each enlarged to ``size x size``, ``gap``
    pixels apart and around, on white; ``names`` (one per row) written in a left margin,
    ``headers`` (one per column, cycled) in a band above the first row."""
    label = 0 if names is None else 8 + 7 * max(len(n) for n in names)
    head = 0 if headers is None else HEADER
    step = size + gap
    cols = max((len(r) for r in rows), default=1)
    sheet = Image.new("RGB", (label + cols * step + gap, head + len(rows) * step + gap),
                      "white")
    draw = ImageDraw.Draw(sheet)
    if headers is not None:
        for c in range(cols):
            text = headers[c % len(headers)]
            width = draw.textlength(text)
            left = label + gap + c * step + max(0, (size - width) / 2)
            draw.text((left, 3), text, fill="black")
    for r, tiles in enumerate(rows):
        top = head + gap + r * step
        if names is not None:
            draw.text((4, top + size // 2 - 5), names[r], fill="black")
        for c, tile in enumerate(tiles):
            big = Image.fromarray(tile).resize((size, size), Image.NEAREST)
            sheet.paste(big, (label + gap + c * step, top))
    return png_bytes(sheet)


def contact_sheet(images: torch.Tensor, *, columns: int = 16, scale: int = 2,
                  border: int = 1) -> bytes:
    """A PNG grid of ``images`` ``(B, 3, S, S)`` in ``[-1, 1]``, ``columns`` to a row,
    each enlarged ``scale`` times, ``border`` white pixels apart:
    ``(columns * (S * scale + border) + border)`` pixels wide."""
    columns, scale = check_int("columns", columns), check_int("scale", scale)
    border = check_int("border", border, 0)
    tiles = to_uint8(images)
    columns = max(1, min(columns, len(tiles)))
    rows = [list(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    return _sheet(rows, tiles.shape[1] * scale, border)


def write_contact_sheet(images: torch.Tensor, path: str | Path, **options) -> Path:
    """:func:`contact_sheet` written to ``path`` atomically; returns ``path``."""
    return atomic_write(path, contact_sheet(images, **options))


ARTIFACT_COLUMNS = ["sample", "nearest real", "artifact"]


def artifact_grid(artifacts: ArtifactSet, *, per_model: int = 4, scale: int = 3) -> bytes:
    """PNG: one row per model (named on the left), its first ``per_model`` triples
    (sample | nearest real | image artifact, each column headed so), each tile enlarged
    ``scale`` times. The artifacts are amplified by one gain for the whole grid (their
    99th percentile of ``|x|`` maps to full scale), mid-grey = 0, so rows compare."""
    per_model, scale = check_int("per_model", per_model), check_int("scale", scale)
    refs = artifacts.images.astype(np.float32) - artifacts.image_artifacts * 127.5
    gain = float(np.percentile(np.abs(artifacts.image_artifacts), 99)) or 1.0
    rows = []
    for name in artifacts.models:
        tiles = []
        for i in np.flatnonzero(artifacts.of(name))[:per_model]:
            sample = artifacts.images[i].transpose(1, 2, 0)
            neighbour = np.clip(refs[i].round(), 0, 255).astype(np.uint8).transpose(1, 2, 0)
            art = torch.from_numpy(artifacts.image_artifacts[i][None] / gain).clamp(-1, 1)
            tiles += [sample, neighbour, to_uint8(art)[0]]
        rows.append(tiles)
    return _sheet(rows, artifacts.images.shape[-1] * scale, 2, names=artifacts.models,
                  headers=ARTIFACT_COLUMNS)
