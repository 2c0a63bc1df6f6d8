"""Draw samples from a trained zoo entry into a folder of lossless PNGs
(:func:`core.data.write_pngs`), all or nothing: the set is written aside and takes the
old one's place only once every sample is written."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.data.pngs import write_pngs
from core.errors import FpxError, InvalidInputError, check_int
from core.runtime import atomic_write, code_version, replaced_folder
from core.zoo.base import ZooModel
from core.zoo.entries import ZooEntry


def sample_to_folder(model: ZooModel, n: int, folder: str | Path, *, seed: int,
                     made_by: dict, batch: int = 250, overwrite: bool = False,
                     progress=None) -> Path:
    """Write ``n`` samples of ``model`` to ``folder`` plus ``samples.json`` (entry, seed,
    what made them). Sampling noise comes from a generator seeded with ``seed``, so the
    same checkpoint and seed give the same files.

    The samples are written into a new folder beside ``folder``, which replaces it only
    when all ``n`` are written: a failure (NaN samples, a full disk, Ctrl-C) leaves the
    old set as it was. Files other than PNGs and ``samples.json`` in an old folder stay.

    Raises:
        InvalidInputError: ``n < 1``, ``folder`` already holds PNGs and not ``overwrite``,
            or the model produced non-finite samples (its old set is kept).
    """
    check_int("-n", n)
    check_int("seed", seed, 0, 2**64 - 1)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} exists and is not a folder")
    old = len(list(folder.glob("*.png"))) if folder.is_dir() else 0
    if old and not overwrite:
        raise InvalidInputError(f"{folder} already holds {old} PNG(s); pass --overwrite "
                                "or choose another --out")
    generator = torch.Generator(device=model.device).manual_seed(seed)
    kept = "the old samples are kept" if old else "nothing was written"

    def theirs(name: str) -> bool:  # not part of a sample set: carried into the new one
        return not name.endswith(".png") and name != "samples.json"

    with replaced_folder(folder, carry=theirs) as new:
        done = 0
        while done < n:
            k = min(batch, n - done)
            images = model.sample(k, generator=generator)
            if not bool(torch.isfinite(images).all()):
                raise InvalidInputError(f"{model.entry.name}: the model produced NaN or "
                                        f"infinite samples (damaged weights?); {kept}")
            write_pngs(images, new, start=done)
            done += k
            if progress is not None:
                progress(k)
        atomic_write(new / "samples.json", json.dumps(
            {"entry": model.entry.to_dict(), "count": n, "seed": seed, "size": model.size,
             "code_version": code_version(), **made_by}, indent=2))
    return folder


def read_design(folder: str | Path) -> dict | None:
    """The design choices of the entry recorded in ``folder/samples.json`` (as
    :func:`sample_to_folder` writes it), or ``None``: a folder without one, or with a
    foreign ``samples.json``, simply has no known design."""
    try:
        entry = json.loads((Path(folder) / "samples.json").read_text())["entry"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        return ZooEntry.from_dict(entry).design()
    except FpxError:
        return None
