"""Training images for zoo entries: the bundled photos, a folder, or CIFAR-10.

``data`` strings, as typed on the command line and stored in entries and checkpoints:

* ``bundled``: crops of the photos inside scikit-image / scikit-learn (train split);
* ``cifar10:PATH``: the CIFAR-10 training set at PATH (folder or official archive);
* any other string: a folder of images (centre crops; unreadable files are skipped).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from core.data import bundled_crops, iter_image_batches, load_cifar10, resize, scan_images
from core.data.folder import Skipped
from core.errors import InvalidInputError


def training_images(data: str, size: int, count: int, seed: int) -> torch.Tensor:
    """Up to ``count`` images ``(N, 3, size, size)`` in ``[-1, 1]`` (exactly ``count`` for
    ``bundled``), chosen with ``seed``; fewer than 16 usable images is an error."""
    if not isinstance(data, str) or not data:
        raise InvalidInputError("data must be 'bundled', a folder or 'cifar10:PATH'")
    rng = torch.Generator().manual_seed(seed)
    if data == "bundled":
        images = bundled_crops(size, count, seed=seed, split="train")
    elif data.startswith("cifar10:"):
        if not data.removeprefix("cifar10:").strip():
            raise InvalidInputError("data 'cifar10:' names no path; write cifar10:PATH")
        raw, _ = load_cifar10(data.removeprefix("cifar10:"), "train")
        raw = raw[torch.randperm(len(raw), generator=rng)[:count]]
        images = raw.float() / 127.5 - 1
        if size != images.shape[-1]:
            images = resize(images, size).clamp(-1, 1)
    else:
        folder = Path(data)
        if not folder.is_dir():
            raise InvalidInputError(f"data '{data}' is neither 'bundled', 'cifar10:PATH' "
                                    "nor an existing folder")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise InvalidInputError(f"data '{data}': permission denied (cannot list the "
                                    "folder)")
        skipped = Skipped(notify=lambda path, why: print(f"fpx: skipped {path}: {why}",
                                                         file=sys.stderr, flush=True))
        files = scan_images([folder], skipped)
        files = [files[i] for i in torch.randperm(len(files), generator=rng)[:count]]
        batches = list(iter_image_batches(files, size, 256, skipped=skipped))
        images = torch.cat(batches) if batches else torch.empty(0, 3, size, size)
    if len(images) < 16:
        raise InvalidInputError(f"data '{data}' gave {len(images)} usable images of "
                                f"{size}x{size}; at least 16 are needed")
    if not bool(torch.isfinite(images).all()):
        raise InvalidInputError(f"data '{data}' holds NaN or infinite pixel values")
    return images.contiguous()
