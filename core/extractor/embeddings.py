"""Embeddings of images by the extractor, and the record that carries them.

:func:`embed_folders` turns folders of model outputs into an :class:`EmbeddingSet`: one
unit embedding per usable image, with the image's path and its model's label. ``fpx
embed`` saves the set as an ``.npz`` of plain arrays (no pickles) that ``fpx verify |
relate --embeddings`` read back with :meth:`EmbeddingSet.load`::

    result = embed_folders(model, ["out/gan", "out/vae"])
    result.embeddings.shape, result.models       # (N, D), ('gan', 'vae')
    result.save("e.npz"); EmbeddingSet.load("e.npz") == result
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data import Skipped, scan_images
from core.errors import InvalidInputError
from core.extractor.model import Extractor

_ARRAYS = ("embeddings", "paths", "labels")  # what every embeddings file holds
_IDENTITY = re.compile(r"[0-9a-f]{0,64}")  # an extractor's identity; "" when unknown


@dataclass(frozen=True, eq=False)
class EmbeddingSet:
    """Embeddings of ``N`` images, one row each, with where each image came from.

    Attributes:
        embeddings: ``(N, D)`` float32, finite; rows are unit vectors when made by
            :func:`embed_folders` (cosine similarity is their dot product).
        paths: ``N`` image paths, as given when embedding.
        labels: ``N`` model names (the image's top folder, see :func:`labelled_files`).
        skipped: files left out while embedding, as ``(path, reason)`` pairs.
        extractor: identity of the extractor that embedded them
            (:func:`core.parsing.data.extractor_identity`), ``""`` when unknown (a file
            saved before it was recorded): what ties them to that extractor's metric.

    Lists are accepted and stored as tuples; ``N >= 1``. Two sets are equal when their
    arrays are equal element by element and everything else matches.
    """

    embeddings: np.ndarray
    paths: tuple[str, ...]
    labels: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    extractor: str = ""

    def __post_init__(self) -> None:
        e = self.embeddings
        if not isinstance(e, np.ndarray) or e.dtype == bool or \
                not np.issubdtype(e.dtype, np.number) or np.iscomplexobj(e):
            kind = e.dtype if isinstance(e, np.ndarray) else type(e).__name__
            raise InvalidInputError(f"embeddings must be a real-valued array, got {kind}")
        if e.ndim != 2 or e.shape[0] == 0 or e.shape[1] == 0:
            raise InvalidInputError(f"embeddings must be (N, D) with N, D >= 1, got shape "
                                    f"{e.shape}")
        e = e.astype(np.float32, copy=False)
        if not np.isfinite(e).all():
            raise InvalidInputError("embeddings contain NaN or Inf")
        object.__setattr__(self, "embeddings", e)
        for name in ("paths", "labels"):
            values = _strings(getattr(self, name), name)
            if len(values) != len(e):
                raise InvalidInputError(f"{len(values)} {name} for {len(e)} embeddings; "
                                        "one per row")
            object.__setattr__(self, name, values)
        pairs = self.skipped
        if isinstance(pairs, (str, bytes)) or not all(
                isinstance(p, (tuple, list)) and len(p) == 2
                and all(isinstance(s, str) for s in p) for p in pairs):
            raise InvalidInputError("skipped must be (path, reason) pairs of strings")
        object.__setattr__(self, "skipped", tuple(tuple(p) for p in pairs))
        if not isinstance(self.extractor, str) or not _IDENTITY.fullmatch(self.extractor):
            raise InvalidInputError("extractor must be an identity: up to 64 lowercase hex "
                                    "digits, or empty when unknown")

    def __eq__(self, other) -> bool:
        if not isinstance(other, EmbeddingSet):
            return NotImplemented
        return (np.array_equal(self.embeddings, other.embeddings)
                and (self.paths, self.labels, self.skipped, self.extractor)
                == (other.paths, other.labels, other.skipped, other.extractor))

    __hash__ = None  # equal sets must hash alike, and an array has no hash

    @property
    def models(self) -> tuple[str, ...]:
        """The distinct labels, in order of first appearance."""
        return tuple(dict.fromkeys(self.labels))

    @property
    def dim(self) -> int:
        """``D``, the embedding size."""
        return int(self.embeddings.shape[1])

    def to_dict(self) -> dict:
        """JSON-able: embeddings as nested lists of floats (float32 values are exact as
        doubles, so :meth:`from_dict` gives back the same bits); skips as
        ``{"path", "reason"}`` objects, as the CLI prints them."""
        return {"embeddings": self.embeddings.tolist(), "paths": list(self.paths),
                "labels": list(self.labels), "skipped": self.skipped_records(),
                "extractor": self.extractor}

    def skipped_records(self) -> list[dict[str, str]]:
        return [{"path": p, "reason": r} for p, r in self.skipped]

    @classmethod
    def from_dict(cls, d: dict) -> EmbeddingSet:
        if not isinstance(d, dict):
            raise InvalidInputError(f"an embedding set must be a JSON object, got "
                                    f"{type(d).__name__}")
        extra = sorted(set(d) - {*_ARRAYS, "skipped", "extractor"})
        missing = [k for k in _ARRAYS if k not in d]
        if extra or missing:
            raise InvalidInputError(f"an embedding set has the fields embeddings, paths, "
                                    f"labels, skipped, extractor; missing {missing}, "
                                    f"unknown {extra}")
        skipped = d.get("skipped", [])
        if not isinstance(skipped, list) or not all(
                isinstance(s, dict) and set(s) == {"path", "reason"} for s in skipped):
            raise InvalidInputError("skipped must be a list of {path, reason} objects")
        try:
            e = np.asarray(d["embeddings"], dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidInputError("embeddings must be a list of equal-length lists of "
                                    "numbers") from None
        return cls(e, d["paths"], d["labels"], [(s["path"], s["reason"]) for s in skipped],
                   d.get("extractor", ""))

    def save(self, path: str | Path) -> Path:
        """One ``.npz`` of plain arrays, written atomically: ``embeddings (N, D)`` float32;
        ``paths``, ``labels`` ``(N,)``, ``skipped_paths``, ``skipped_reasons`` and
        ``extractor`` ``(1,)`` unicode (nothing needs ``allow_pickle``)."""
        from core.runtime import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, embeddings=self.embeddings, paths=_unicode(self.paths),
                         labels=_unicode(self.labels),
                         skipped_paths=_unicode(p for p, _ in self.skipped),
                         skipped_reasons=_unicode(r for _, r in self.skipped),
                         extractor=_unicode([self.extractor]))
        return path

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSet:
        """Read a file written by :meth:`save` (``fpx embed``); anything else is refused
        with one line naming the file. Files without the ``skipped_*`` arrays or the
        ``extractor`` (written before they were saved) load with no skips and an unknown
        extractor."""
        from core.limits import read_npz

        def refuse(why: str) -> InvalidInputError:
            return InvalidInputError(f"{path}: not an fpx embeddings file ({why})")

        if not Path(path).exists():
            raise InvalidInputError(f"{path}: no such embeddings file (make one with fpx "
                                    "embed)")
        # Headers are checked before any array is read; object arrays are refused.
        arrays = read_npz(path, "fpx embeddings file")
        missing = [k for k in _ARRAYS if k not in arrays]
        if missing:
            raise refuse(f"no {', '.join(missing)}")
        try:  # validation raises here too
            skipped_paths = _listed(arrays.get("skipped_paths"))
            reasons = _listed(arrays.get("skipped_reasons"))
            if len(skipped_paths) != len(reasons):
                raise ValueError(f"{len(skipped_paths)} skipped paths but {len(reasons)} "
                                 "reasons")
            extractor = _listed(arrays.get("extractor")) or [""]
            if len(extractor) != 1:
                raise ValueError(f"{len(extractor)} extractor identities, not one")
            return cls(arrays["embeddings"], _listed(arrays["paths"]),
                       _listed(arrays["labels"]), list(zip(skipped_paths, reasons)),
                       extractor[0])
        except ValueError as err:
            raise refuse(str(err).splitlines()[0]) from None


def _strings(values, name: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes, np.ndarray)) or not all(
            isinstance(v, str) for v in values):
        raise InvalidInputError(f"{name} must be a sequence of strings")
    return tuple(values)


def _unicode(values) -> np.ndarray:
    """Strings as a unicode array (``<U1`` when empty, never an object array)."""
    return np.asarray(list(values), dtype=str)


def _listed(a: np.ndarray | None) -> list:
    if a is None:
        return []
    if a.ndim != 1 or a.dtype.kind != "U":
        raise ValueError(f"expected a 1-D array of strings, got {a.dtype} of shape {a.shape}")
    return a.tolist()


def labelled_files(folders: list[str | Path], skipped: Skipped | None
                   ) -> tuple[list[Path], list[str]]:
    """Image files under each folder, labelled by their top folder below it (or by the
    folder's own name for files at its top)."""
    files, labels = [], []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            what = "no such folder" if not os.path.lexists(root) else "not a folder"
            raise InvalidInputError(f"{root}: {what}")
        if not os.access(root, os.R_OK | os.X_OK):
            raise InvalidInputError(f"{root}: permission denied (cannot list the folder)")
        for path in scan_images([root], skipped):
            rel = path.relative_to(root)
            files.append(path)
            labels.append(rel.parts[0] if len(rel.parts) > 1 else root.name)
    return files, labels


@torch.no_grad()
def embed_images(model: Extractor, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """``(N, 3, H, W)`` images in [-1, 1] -> ``(N, D)`` unit embeddings (float32), any
    size by the size policy (:mod:`core.extractor.sizes`: tiles above the extractor's
    ``crop_size``, its spectrum resampled below)."""
    from core.extractor.sizes import embed_any

    model.eval()
    device = next(model.parameters()).device
    out = [embed_any(model, x[i:i + batch].to(device)).float().cpu()
           for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros(0, model.config.embed_dim)


def _load(path: Path) -> torch.Tensor | str:
    """A file as ``(3, H, W)`` in [-1, 1] (the largest centred square when its shorter
    side is under ``crop`` pixels is taken later, by the policy), or why it is unusable."""
    from core.data.images import ImageReadError, load_rgb
    from core.data.transforms import to_signed, to_tensor
    from core.extractor.sizes import MIN_SIDE

    try:
        image = to_tensor(load_rgb(path))
    except ImageReadError as err:
        return str(err).removeprefix(f"{path}: ")
    h, w = image.shape[-2:]
    if min(h, w) < MIN_SIDE:
        return f"too small: {w}x{h} < {MIN_SIDE}x{MIN_SIDE}"
    return to_signed(image)


def _image_batches(files: list[Path], batch: int, skipped: Skipped, crop: int):
    """``(images, paths)`` batches of equal-shape images (a batch per shape met within
    each chunk of ``batch`` files); a non-square image shorter than ``crop`` on one side
    becomes its largest centred square, as the policy embeds it."""
    from concurrent.futures import ThreadPoolExecutor

    from core.extractor.sizes import square

    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(files), batch):
            chunk = files[start:start + batch]
            groups: dict[tuple[int, int], tuple[list, list]] = {}
            for path, item in zip(chunk, pool.map(_load, chunk)):
                if isinstance(item, str):
                    skipped.add(path, item)
                    continue
                if item.shape[-1] != item.shape[-2] and min(item.shape[-2:]) < crop:
                    item = square(item)
                images, paths = groups.setdefault(tuple(item.shape[-2:]), ([], []))
                images.append(item)
                paths.append(path)
            for images, paths in groups.values():
                yield torch.stack(images), paths


@torch.no_grad()
def embed_folders(model: Extractor, folders: list[str | Path], *, batch: int = 64,
                  notify: Callable[[str, str], None] | None = None,
                  skip_unusable: bool = False) -> EmbeddingSet:
    """Embed every usable image under ``folders``, at any size by the size policy
    (:mod:`core.extractor.sizes`); unreadable files and images under
    :data:`~core.extractor.sizes.MIN_SIDE` pixels are skipped and recorded.

    Raises:
        InvalidInputError: a named folder holds no usable image (unless
            ``skip_unusable``: then it is skipped by name, and only all of them failing is
            an error); the extractor produced NaN or infinite embeddings (damaged
            weights), naming the first such image.
    """
    from core.extractor.sizes import MIN_SIDE

    skipped = Skipped(notify=notify)
    embs, kept, kept_labels, rank = [], [], [], []
    index_of: dict[str, int] = {}  # file order over all folders
    for folder in folders:
        files, labels = labelled_files([folder], skipped)
        label_of = dict(zip(map(str, files), labels))
        index_of = {str(p): len(index_of) + i for i, p in enumerate(files)} | index_of
        before = len(kept)
        for x, paths in _image_batches(files, batch, skipped, model.config.crop_size):
            e = embed_images(model, x)
            bad = (~torch.isfinite(e).all(1)).nonzero()
            if len(bad):
                raise InvalidInputError(f"the extractor produced NaN or infinite embeddings "
                                        f"(first for {paths[int(bad[0])]}); its weights are "
                                        "damaged")
            embs.append(e)
            rank.extend(index_of[str(p)] for p in paths)
            kept.extend(map(str, paths))
            kept_labels.extend(label_of[str(p)] for p in paths)
        # A named folder, or a model folder inside it, none of whose images is usable
        # would silently drop out of the results: it is an error unless asked for.
        usable = set(kept_labels[before:])
        where = {label: path.parent if path.parent == Path(folder) else
                 Path(folder) / path.relative_to(folder).parts[0]
                 for path, label in zip(files, labels)}
        lost = [Path(folder)] if len(kept) == before else [
            where[label] for label in where if label not in usable]
        for gone in lost:
            why = f"no usable image (readable, at least {MIN_SIDE}x{MIN_SIDE})"
            if not skip_unusable:
                raise InvalidInputError(f"{gone}: {why}; pass --skip-unusable to go on "
                                        "without it")
            skipped.add(gone, f"{why}; left out")
    if not embs:
        raise InvalidInputError(f"no usable image (readable, at least {MIN_SIDE}x{MIN_SIDE}) "
                                "in the given folders")
    # Images were batched by shape within each chunk: put them back in file order.
    order = sorted(range(len(kept)), key=rank.__getitem__)
    return EmbeddingSet(torch.cat(embs)[order].numpy(), tuple(kept[i] for i in order),
                        tuple(kept_labels[i] for i in order),
                        tuple((s["path"], s["reason"]) for s in skipped.items))
