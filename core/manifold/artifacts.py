"""Artifacts (ManiFPT): a generated sample minus its nearest real sample.

For a generated image ``x_g`` and a reference set of real images ``R``, in a space ``e``
(:mod:`core.manifold.embeddings`)::

    nn(x_g)    = argmin_{r in R} ||e(x_g) - e(r)||_2        (exact, core.manifold.neighbors)
    artifact   = e(x_g) - e(nn(x_g))                       (in the space, (D,))
    image art. = x_g - nn(x_g)                             (in pixels, (3, H, W), display)

A model's fingerprint is the set of its artifacts. Every artifact keeps the index (and
file path) of its real neighbour, so it can be traced back. A held-out part of the real
images can be measured the same way against the rest (label ``real``): the real class of
attribution, whose artifacts are what the real manifold's own spacing looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.errors import InvalidInputError, check_int
from core.manifold.embeddings import (
    check_space,
    default_extractor,
    embed,
    has_default_extractor,
    image_shaped,
)
from core.manifold.neighbors import nearest
from core.runtime import atomic_path
from core.spectrum.transforms import check_images, require_finite

FORMAT = "fpx.artifacts/1"
REAL = "real"


@dataclass
class ArtifactSet:
    """Artifacts of several models' samples (and of held-out real images) in one space.

    Arrays (``N`` samples, ``M`` reference images, ``D`` dims, ``k`` neighbours):
    ``artifacts (N, D)`` float32; ``image_artifacts (N, 3, H, W)`` float32 in pixel units
    of ``[-1, 1]`` images; ``images (N, 3, H, W)`` uint8 samples; ``neighbors (N, k)``
    int64 indices into the reference set; ``distances (N, k)`` float32 in the space;
    ``labels (N,)`` model names (``real`` for held-out real images); ``paths (N,)``;
    ``real_paths (M,)``.
    """

    space: str
    artifacts: np.ndarray
    image_artifacts: np.ndarray
    images: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    real_paths: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Label names in first-appearance order."""
        return list(dict.fromkeys(self.labels.tolist()))

    def of(self, label: str) -> np.ndarray:
        """Row mask of one model's samples."""
        return self.labels == label

    def image_tensor(self) -> torch.Tensor:
        """The samples as ``(N, 3, H, W)`` float in ``[-1, 1]``."""
        return torch.from_numpy(self.images).float() / 127.5 - 1

    def classifier_input(self) -> torch.Tensor:
        """The artifacts as a classifier's input: ``(N, 3, H, W)`` in the image-shaped
        spaces (rgb, freq), where a convolution can use the layout; ``(N, D)`` otherwise."""
        x = torch.from_numpy(self.artifacts)
        if image_shaped(self.space):
            x = x.reshape(len(x), *self.images.shape[1:])
        return x

    def model_summary(self) -> dict[str, dict]:
        """Per model (first-appearance order): ``samples``, mean ``nn_distance`` to the
        nearest real image (in the space's units), mean ``artifact_abs`` (``|artifact|``
        per dimension) and ``unique_neighbors`` (distinct nearest real images: few means
        the samples crowd near a few real images)."""
        rows = {}
        for name in self.models:
            mask = self.of(name)
            rows[name] = {"samples": int(mask.sum()),
                          "nn_distance": float(self.distances[mask, 0].mean()),
                          "artifact_abs": float(abs(self.artifacts[mask]).mean()),
                          "unique_neighbors": int(len(set(self.neighbors[mask, 0].tolist())))}
        return rows

    def save(self, path: str | Path) -> Path:
        """One ``.npz`` (no pickled objects; strings as unicode arrays)."""
        import json

        arrays = {k: getattr(self, k) for k in _ARRAYS}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, format=np.array(FORMAT), space=np.array(self.space),
                         meta=np.array(json.dumps(self.meta)), **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ArtifactSet:
        """Read a file written by :meth:`save` (or the ``artifacts.npz`` of a folder);
        member headers are checked before any array is read, and the arrays are checked
        against each other (shapes, dtypes, finite artifacts) before use."""
        import json

        from core.limits import read_npz

        path = Path(path)
        if path.is_dir():
            path = path / "artifacts.npz"
        if not path.exists():
            raise InvalidInputError(f"{path}: no such artifact file (make one with fpx "
                                    "artifacts)")
        z = read_npz(path, "fpx artifact file")
        if "format" not in z or z["format"].dtype.kind != "U" or str(z["format"]) != FORMAT:
            raise InvalidInputError(f"{path}: not an fpx artifact file (format {FORMAT!r} "
                                    "expected)")
        missing = [k for k in (*_ARRAYS, "space", "meta") if k not in z]
        if missing:
            raise InvalidInputError(f"{path}: incomplete artifact file (no "
                                    f"{', '.join(missing)})")
        try:
            meta = json.loads(str(z["meta"]))
        except (ValueError, RecursionError):
            meta = None
        if not isinstance(meta, dict):
            raise InvalidInputError(f"{path}: corrupt artifact file (meta is not a JSON "
                                    "object)")
        result = cls(space=str(z["space"]), meta=meta, **{k: z[k] for k in _ARRAYS})
        result.check(path)
        return result

    def check(self, path) -> None:
        """Refuse arrays that do not fit together (one line naming ``path``)."""
        def refuse(why: str) -> InvalidInputError:
            return InvalidInputError(f"{path}: corrupt artifact file ({why})")

        try:
            check_space(self.space)
        except InvalidInputError as err:
            raise refuse(str(err)) from None
        a = self.artifacts
        if a.ndim != 2 or a.dtype.kind != "f" or len(a) == 0:
            raise refuse(f"artifacts must be a non-empty (N, D) float array, got "
                         f"{a.dtype} {a.shape}")
        n = len(a)
        shapes = {"image_artifacts": (4, "f"), "images": (4, "u"), "neighbors": (2, "i"),
                  "distances": (2, "f"), "labels": (1, "U"), "paths": (1, "U"),
                  "real_paths": (1, "U")}
        for name, (ndim, kind) in shapes.items():
            x = getattr(self, name)
            if x.ndim != ndim or x.dtype.kind != kind or (name != "real_paths"
                                                         and len(x) != n):
                raise refuse(f"{name} is {x.dtype} {x.shape}, not {ndim}-D of {n} rows")
        if self.images.shape != self.image_artifacts.shape or self.images.shape[1] != 3:
            raise refuse(f"images {self.images.shape} and image artifacts "
                         f"{self.image_artifacts.shape} must both be (N, 3, H, W)")
        if self.neighbors.shape[1] == 0 or self.neighbors.shape != self.distances.shape:
            raise refuse("neighbours and distances must both be (N, k), k >= 1")
        if self.neighbors.size and (self.neighbors.min() < 0
                                    or self.neighbors.max() >= len(self.real_paths)):
            raise refuse("neighbour indices outside the real images")
        for name in ("artifacts", "image_artifacts", "distances"):
            if not np.isfinite(getattr(self, name)).all():
                raise refuse(f"{name} hold NaN or Inf")
        if image_shaped(self.space) and a.shape[1] != int(np.prod(self.images.shape[1:])):
            raise refuse(f"{self.space} artifacts of {a.shape[1]} values do not match "
                         f"images of {self.images.shape[1:]}")


_ARRAYS = ("artifacts", "image_artifacts", "images", "neighbors", "distances", "labels",
           "paths", "real_paths")


def load_artifact_sets(paths: list[str | Path]) -> list[tuple[str, ArtifactSet]]:
    """Artifact sets (folders or ``.npz`` files) with a display name each: the space, or
    ``space:folder`` where two sets share a space (the learned space of the extractor and
    of the self-supervised encoder, say)."""
    from collections import Counter

    sets = [ArtifactSet.load(path) for path in paths]
    count = Counter(s.space for s in sets)
    return [(s.space if count[s.space] == 1 else f"{s.space}:{Path(path).name}", s)
            for path, s in zip(paths, sets)]


def compute_artifacts(generated: dict[str, torch.Tensor], real: torch.Tensor, space: str, *,
                      k: int = 1, holdout_real: int = 0, seed: int = 0,
                      backend: str = "auto", extractor=None, learned: str = "extractor",
                      ssl_config=None,
                      generated_paths: dict[str, list[str]] | None = None,
                      real_paths: list[str] | None = None,
                      device: torch.device | str | None = None) -> ArtifactSet:
    """Artifacts of every model's samples against their nearest real images.

    Args:
        generated: model name -> samples ``(N_i, 3, H, W)`` in ``[-1, 1]``.
        real: real images ``(M, 3, H, W)`` in ``[-1, 1]``, same ``H, W``.
        k: neighbours kept per sample (the artifact uses the nearest).
        holdout_real: this many real images (drawn with ``seed``) leave the reference set
            and get artifacts of their own, labelled ``real``.
        extractor, learned: the network of the ``learned`` space: ``extractor`` when
            given; else ``learned="extractor"`` takes the shipped extractor (or, if none
            is installed, falls back to) and ``learned="ssl"`` always trains a
            self-supervised encoder (``ssl_config``) on the real reference images.
    """
    if learned not in ("extractor", "ssl"):
        raise InvalidInputError(f"learned must be 'extractor' or 'ssl', got {learned!r}")
    check_space(space)
    if not generated:
        raise InvalidInputError("no generated images: give at least one folder of samples")
    real = check_images(real, "real images")
    require_finite(real, "real images")
    if REAL in generated:
        raise InvalidInputError(f"'{REAL}' is reserved for held-out real images; rename "
                                "that model's folder")
    shape = tuple(real.shape[1:])
    for name, x in generated.items():
        x = check_images(x, f"samples of {name}")  # refuses empty sets
        require_finite(x, f"samples of {name}")
        if tuple(x.shape[1:]) != shape:
            raise InvalidInputError(f"{name}: samples are {tuple(x.shape[1:])} but real images "
                                    f"are {shape}; use one size for both")
    check_int("holdout_real", holdout_real, 0)
    real_paths = list(real_paths) if real_paths is not None else [
        f"real[{i}]" for i in range(len(real))]
    queries, labels, paths = [], [], []
    if holdout_real:
        if holdout_real >= len(real):
            raise InvalidInputError(f"cannot hold out {holdout_real} of {len(real)} real "
                                    "images and keep a reference set")
        order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
        held, kept = order[:holdout_real].sort().values, order[holdout_real:].sort().values
        queries.append(real[held])
        labels += [REAL] * holdout_real
        paths += [real_paths[i] for i in held.tolist()]
        real, real_paths = real[kept], [real_paths[i] for i in kept.tolist()]
    if len(real) < k:
        raise InvalidInputError(f"the real reference set holds {len(real)} images, fewer than "
                                f"k={k}")
    for name, x in generated.items():
        queries.append(x)
        labels += [name] * len(x)
        names = (generated_paths or {}).get(name) or [f"{name}[{i}]" for i in range(len(x))]
        paths += list(names)
    queries = torch.cat(queries)
    network = "given extractor" if extractor is not None else None
    if space == "learned" and extractor is None:
        if learned == "extractor" and has_default_extractor():
            extractor, network = default_extractor(device or "cpu"), "shipped extractor"
        else:
            from core.manifold.ssl import SSLConfig, train_encoder

            ssl_config = ssl_config or SSLConfig(seed=seed)
            extractor = train_encoder(real, ssl_config, device=device or "cpu")
            network = f"self-supervised encoder {ssl_config.to_dict()}"
    e_real = embed(real, space, extractor=extractor, device=device)
    e_query = embed(queries, space, extractor=extractor, device=device)
    found = nearest(e_query, e_real, k=k, backend=backend)
    idx = torch.as_tensor(found.indices)[:, 0].to(e_real.device)
    artifacts = e_query - e_real[idx]
    image_artifacts = queries - real[idx.cpu()]
    images = ((queries.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return ArtifactSet(
        space=space, artifacts=artifacts.float().cpu().numpy(),
        image_artifacts=image_artifacts.float().cpu().numpy(), images=images.numpy(),
        neighbors=np.asarray(torch.as_tensor(found.indices).cpu(), dtype=np.int64),
        distances=np.asarray(torch.as_tensor(found.distances).cpu(), dtype=np.float32),
        labels=np.array(labels), paths=np.array(paths), real_paths=np.array(real_paths),
        meta={"k": k, "holdout_real": holdout_real, "seed": seed, "backend": backend,
              "size": shape[-1], "network": network})

