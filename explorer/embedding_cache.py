"""The Embeddings tab's views of one embedding set, on disk: map coordinates, the
similarity matrix in dendrogram order, the ROC and the k-shot confusion. Plain Python
and numpy, no param, no panel.

A reopen with the same extractor, images and map settings reads them back instead of
computing them again (PCA or t-SNE, the linkage, the sort of a million image pairs).
They live in ``RUNS/embeddings/views/KEY.npz`` beside the embeddings' own cache
(:mod:`explorer.image_sets`): plain arrays only (unicode strings and numbers, written
atomically), read with :func:`core.limits.read_npz`, which refuses pickled objects
before reading a byte of them. ``KEY`` hashes the embeddings' cache keys (extractor and
image bytes), which of their rows were kept, and every setting the views depend on, so
any change is a new file; a file that does not match its embeddings is ignored and
written again.

The folder is bounded: it keeps the :data:`MAX_VIEWS` most recently used files (a read
refreshes a file's modification time, :func:`mark_used`) and each write removes the
rest (:func:`prune_views`). Only files named as this cache names them (``KEY.npz``,
``KEY`` 32 hex digits) directly in that folder are ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import InvalidInputError
from explorer import embedding_maps as maps

FORMAT = 1  # bump when a view's computation changes: old files become misses
# Views files kept. The whole zoo's (3400 points) is about 0.5 MB, so the folder stays
# under a few tens of MB; each choice of sets, map and shots is one file.
MAX_VIEWS = 64
_NAME = re.compile(r"[0-9a-f]{32}\.npz")  # what views_key names: nothing else is deleted


def views_key(parts: Sequence[tuple[str, str, Sequence[str]]], level: str, method: str,
              shots: int, seed: int) -> str:
    """Key of the views of the embeddings made of ``parts``, each ``(set label, its
    embeddings' cache key, the models kept or () for all)``, for these settings."""
    text = json.dumps({"format": FORMAT, "parts": [[a, b, sorted(c)] for a, b, c in parts],
                       "level": level, "method": method, "shots": int(shots),
                       "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def views_path(runs: Path, key: str) -> Path:
    return Path(runs) / "embeddings" / "views" / f"{key}.npz"


def _text(values) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=str).reshape(-1)


def mark_used(path: Path) -> None:
    """Refresh ``path``'s modification time: :func:`prune_views` keeps the most
    recently used files (a read-only runs folder just forgets the use)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune_views(folder: Path, keep: int | None = None, spare: Path | None = None
                ) -> list[Path]:
    """Delete all but the ``keep`` (default :data:`MAX_VIEWS`) most recently used views
    files in ``folder``, never ``spare`` (the file just written); returns those deleted.

    Only regular files directly in ``folder`` named ``KEY.npz`` (``KEY`` as
    :func:`views_key` makes it) are candidates; other files, links and sub-folders are
    left alone. A file another session removed meanwhile is skipped."""
    keep = MAX_VIEWS if keep is None else int(keep)
    found = []
    for entry in os.scandir(folder):
        if not _NAME.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
        except OSError:
            continue
    found.sort(reverse=True)  # newest first; ties by name, so the order is repeatable
    spared = Path(spare).name if spare is not None else None
    kept = 1 if spared in {n for _, n in found} else 0
    deleted = []
    for _, name in found:
        if name == spared:
            continue
        if kept < keep:
            kept += 1
            continue
        try:
            (Path(folder) / name).unlink()
            deleted.append(Path(folder) / name)
        except FileNotFoundError:
            continue
    return deleted


def save_views(path: Path, views: dict, keep: int | None = None) -> Path:
    """Write ``views`` (:class:`~explorer.embeddings.EmbeddingsResult`'s fields other
    than ``data``, ``level``, ``method`` and ``compute_ms``) as one ``.npz``, then
    :func:`prune_views` its folder down to ``keep`` files (this one among them)."""
    from core.runtime import atomic_path

    arrays = {"format": np.int64(FORMAT), "points": np.asarray(views["points"], np.float64),
              "point_labels": _text(views["point_labels"]),
              "point_rows": np.asarray(views["point_rows"], np.int64),
              "means": np.asarray(views["means"], np.float32),
              "models": _text(views["models"]), "notes": _text(views["notes"])}
    if (sim := views["similarity"]) is not None:
        arrays.update(sim_models=_text(sim.models), sim_matrix=np.asarray(sim.matrix))
    if (roc := views["roc"]) is not None:
        arrays.update(roc_fpr=np.asarray(roc.fpr, np.float64),
                      roc_tpr=np.asarray(roc.tpr, np.float64),
                      roc_auc=np.float64(roc.auc), roc_pairs=np.int64(roc.pairs))
    if (conf := views["confusion"]) is not None:
        arrays.update(conf_models=_text(conf.models), conf_matrix=np.asarray(conf.matrix),
                      conf_shots=np.int64(conf.shots), conf_accuracy=np.float64(conf.accuracy))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    prune_views(path.parent, keep, spare=path)
    return path


def load_views(path: Path, labels: Sequence[str]) -> dict:
    """The views saved in ``path`` for the embeddings whose row labels are ``labels``.

    Raises:
        InvalidInputError: not such a file, another format, or views of other rows
            (each point's row must exist and carry that point's label).
    """
    from core.limits import read_npz

    a = read_npz(path, "fpx embedding views file")

    def refuse(why: str) -> InvalidInputError:
        return InvalidInputError(f"{path}: not usable views ({why})")

    try:
        if int(a["format"]) != FORMAT:
            raise refuse(f"format {int(a['format'])}, not {FORMAT}")
        points, rows = a["points"], a["point_rows"]
        point_labels = tuple(a["point_labels"].tolist())
        if points.ndim != 2 or points.shape[1] != 2 or len(rows) != len(points) \
                or len(point_labels) != len(points):
            raise refuse("points, rows and labels disagree")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(labels)):
            raise refuse("a point's row is not in the embeddings")
        if any(labels[r] != lab for r, lab in zip(rows.tolist(), point_labels)):
            raise refuse("the points' labels are not their rows' labels")
        views = {"points": points, "point_labels": point_labels,
                 "point_rows": tuple(rows.tolist()), "means": a["means"],
                 "models": tuple(a["models"].tolist()), "notes": tuple(a["notes"].tolist()),
                 "similarity": None, "roc": None, "confusion": None}
        if "sim_matrix" in a:
            views["similarity"] = maps.Similarity(tuple(a["sim_models"].tolist()),
                                                  a["sim_matrix"])
        if "roc_fpr" in a:
            views["roc"] = maps.Roc(a["roc_fpr"], a["roc_tpr"], float(a["roc_auc"]),
                                    int(a["roc_pairs"]))
        if "conf_matrix" in a:
            views["confusion"] = maps.Confusion(tuple(a["conf_models"].tolist()),
                                                a["conf_matrix"], int(a["conf_shots"]),
                                                float(a["conf_accuracy"]))
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise refuse(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                     ) from None
    return views
