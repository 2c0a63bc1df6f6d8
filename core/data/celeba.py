"""CelebA from its aligned-and-cropped release (``img_align_celeba/``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

from core.data.images import ImageReadError, load_rgb
from core.data.transforms import center_crop, resize, to_signed, to_tensor
from core.errors import InvalidInputError, check_int

SPLITS = {"all": None, "train": 0, "valid": 1, "test": 2}


class CelebA(Dataset):
    """Faces from ``img_align_celeba`` (178x218 JPEGs), as ``(image, 0)`` items.

    Each face is centre-cropped to ``crop`` pixels (140 keeps the face, the convention of
    DCGAN-style CelebA models) and resized, antialiased, to ``size``; images in ``[-1, 1]``.

    Args:
        root: the ``img_align_celeba`` folder or its parent. The split file
            ``list_eval_partition.txt`` is looked for beside the folder and inside it;
            without it only ``split="all"`` works.
        split: ``all``, ``train``, ``valid`` or ``test``.

    A file that fails to decode when read is skipped with a warning naming it (and listed
    in :attr:`skipped`); the next file takes its place, so a long training run survives a
    damaged image.
    """

    def __init__(self, root: str | Path, split: str = "all", size: int = 64, crop: int = 140):
        if split not in SPLITS:
            raise InvalidInputError(f"unknown CelebA split '{split}'; valid: {', '.join(SPLITS)}")
        root = Path(root)
        folder = root if root.name == "img_align_celeba" else root / "img_align_celeba"
        if not folder.is_dir():
            raise InvalidInputError(f"{root}: no img_align_celeba folder")
        for name, value in (("size", size), ("crop", crop)):
            check_int(name, value, 8)
        self.folder, self.size, self.crop = folder, size, crop
        names = self._names(split)
        if not names:
            raise InvalidInputError(f"{folder}: no images for split '{split}'")
        self.files = [folder / n for n in names]
        self.skipped: list[dict[str, str]] = []

    def _names(self, split: str) -> list[str]:
        wanted = SPLITS[split]
        partition = next((p for p in (self.folder.parent / "list_eval_partition.txt",
                                      self.folder / "list_eval_partition.txt") if p.is_file()),
                         None)
        if partition is None:
            if wanted is not None:
                raise InvalidInputError(
                    f"{self.folder}: split '{split}' needs list_eval_partition.txt"
                )
            return sorted(p.name for p in self.folder.glob("*.jpg"))
        names = []
        for n, line in enumerate(partition.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise InvalidInputError(f"{partition}:{n}: expected '<file> <0|1|2>', got {line!r}")
            if wanted is None or int(parts[1]) == wanted:
                names.append(parts[0])
        missing = [n for n in names if not (self.folder / n).is_file()]
        if missing:
            raise InvalidInputError(f"{partition} lists {len(missing)} file(s) missing from "
                                    f"{self.folder}, e.g. {missing[0]}")
        return names

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path) -> torch.Tensor:
        image = to_tensor(load_rgb(path))
        side = min(self.crop, *image.shape[-2:])
        return to_signed(resize(center_crop(image, side), self.size).clamp(0, 1))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        for k in range(len(self.files)):
            path = self.files[(i + k) % len(self.files)]
            try:
                return self._load(path), 0
            except ImageReadError as err:
                if not any(s["path"] == str(path) for s in self.skipped):
                    reason = str(err).removeprefix(f"{path}: ")  # as folder.Skipped
                    self.skipped.append({"path": str(path), "reason": reason})
                    warnings.warn(f"skipped {err}", stacklevel=2)
        raise InvalidInputError(f"{self.folder}: no readable image")
