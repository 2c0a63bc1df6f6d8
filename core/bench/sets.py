"""The transfer benchmark's test sets: images labelled by the model that made them, and
each model's recorded design when it is known.

  * :func:`zoo_set`: the shipped zoo (``core/assets/zoo``): real GANs, VAEs, a flow and
    DDPMs; designs from the manifest's entries (:meth:`ZooEntry.design` plus the period
    :func:`core.zoo.design.design_of` predicts);
  * :func:`synthetic_set`: models of the shipped extractor's own synthetic bank that it
    never saw: unseen weight seeds of its architectures, or unseen architectures, built
    through :mod:`core.synthetic`'s public API (and written the way ``fpx bank sample``
    writes them); designs from each model's spec. :func:`validation_set` is the same
    kind of set with other weight seeds, where thresholds are chosen;
  * :func:`folder_set`: any folder of model folders (sub-folders = models), with the
    designs of a zoo ``samples.json`` or a bank ``spec.json`` when they hold one.

All images of a set share one square size; a set of mixed sizes is refused by name.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import InvalidInputError

WEIGHT_SEED_OFFSETS = {"seeds": 10_000, "validation": 20_000,  # beside the bank's seed
                       "metric": 30_000}


@dataclass(frozen=True, eq=False)
class TestSet:
    """Images of several models.

    Attributes:
        name: how tables name the set.
        images: ``(N, 3, S, S)`` in ``[-1, 1]``.
        labels: ``(N,)`` int64, index into ``models``.
        models: model names.
        designs: model name -> ``{field: value}`` (empty when unknown).
        source: one line on what the set is and how it was made.
    """

    __test__ = False  # a name pytest would otherwise collect

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    models: tuple[str, ...]
    designs: Mapping[str, Mapping[str, str]]
    source: str

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def counts(self) -> dict[str, int]:
        n = torch.bincount(self.labels, minlength=len(self.models)).tolist()
        return dict(zip(self.models, n))

    def summary(self) -> dict:
        return {"name": self.name, "models": len(self.models), "images": len(self.labels),
                "size": self.size, "source": self.source}


def _one_size(folder: Path, files: list[Path]) -> int:
    from core.data.folder import header_sizes

    sizes = header_sizes(files)
    if not sizes:
        raise InvalidInputError(f"{folder}: no readable image")
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}: {n}" for (w, h), n in sizes.most_common(4))
        raise InvalidInputError(f"{folder}: images of mixed sizes ({shown}); the benchmark "
                                "compares models at one size: give folders of one size")
    (w, h), = sizes
    return min(w, h)


def folder_set(path: str | Path, name: str | None = None, *, notify=None) -> TestSet:
    """A folder of model folders as a test set (see :func:`core.data.model_folders`)."""
    from core.data import read_folder, scan_images
    from core.data.folder import Skipped, model_folders
    from core.zoo.sample import read_design

    path = Path(path)
    folders = model_folders([path])
    quiet = Skipped(notify=lambda p, r: None)  # named when the pixels are read
    files = scan_images(folders, quiet)
    if not files:
        raise InvalidInputError(f"{path}: no image found")
    size = _one_size(path, files)
    images, labels, designs = [], [], {}
    for i, folder in enumerate(folders):
        x, _ = read_folder(folder, size, notify=notify)
        images.append(x)
        labels.append(torch.full((len(x),), i, dtype=torch.int64))
        design = read_design(folder) or _spec_design(folder)
        if design:
            designs[folder.name] = design
    if len(folders) < 2:
        raise InvalidInputError(f"{path}: one model ({folders[0].name}); the benchmark "
                                "needs folders of at least 2 models (sub-folders = models)")
    if len(designs) != len(folders):
        designs = {}  # a field compared over some models only would mislead
    return TestSet(name or path.name, torch.cat(images), torch.cat(labels),
                   tuple(f.name for f in folders), designs, f"folder {path.name}")


def _spec_design(folder: Path) -> dict | None:
    if not (folder / "spec.json").exists():
        return None
    from core.extractor.evaluate import read_spec

    return spec_design(read_spec(folder / "spec.json"))


def spec_design(spec) -> dict[str, str]:
    """A synthetic model's design fields: its first up-block's upsampling, norm,
    activation and order, and how many up-blocks it has."""
    b = spec.up[0]
    return {"upsampling": b.upsampling, "normalization": b.norm,
            "activation": b.activation, "order": b.order, "up_blocks": str(len(spec.up))}


def zoo_set(folder: str | Path | None = None, *, notify=None) -> TestSet:
    """The shipped zoo's samples (or another set ``fpx zoo ship`` wrote)."""
    from core.data import read_folder
    from core.zoo.design import design_of
    from core.zoo.shipped import SHIPPED_ZOO, read_manifest

    root = Path(folder or SHIPPED_ZOO)
    manifest = read_manifest(root)
    images, labels, designs = [], [], {}
    for i, (name, info) in enumerate(manifest.entries.items()):
        x, _ = read_folder(root / info.folder, manifest.size, notify=notify)
        images.append(x)
        labels.append(torch.full((len(x),), i, dtype=torch.int64))
        period = design_of(info.entry, manifest.size).period
        designs[name] = {**info.entry.design(), "period": str(period)}
    return TestSet("zoo", torch.cat(images), torch.cat(labels), tuple(manifest.entries),
                   designs, f"shipped zoo, {len(manifest.entries)} entries x "
                            f"{manifest.count} samples, {manifest.size} px")


def bank_config(reference: str | Path):
    """The synthetic bank the extractor in ``reference`` was trained on: its preset's
    :class:`BankConfig` (the record names the preset)."""
    import json

    from core.extractor.train import PRESETS

    record = json.loads((Path(reference) / "extractor.json").read_text())
    preset = (record.get("made_by") or {}).get("preset")
    if preset not in PRESETS:
        raise InvalidInputError(f"{reference}: the extractor's record names no known "
                                f"preset ({preset!r}); its training bank is unknown")
    return PRESETS[preset].bank


def synthetic_set(reference: str | Path, heldout: str, *, models: int, images: int,
                  size: int | None = None, device: str | torch.device = "cpu",
                  progress=None) -> TestSet:
    """``models`` synthetic models the extractor in ``reference`` never saw, ``images``
    each, at ``size`` px (default the bank's).

    ``heldout``: ``seeds`` (its bank's first architectures with unseen weight seeds),
    ``architectures`` (the architectures after its bank's in the same seeded order),
    ``validation`` (like ``seeds`` with yet other weight seeds: where thresholds are
    fixed), or ``metric`` (others again: where the hybrid's metric is learnt,
    :mod:`core.extractor.metric`). Only the models drawn are built.
    """
    from core.synthetic import fit_bank, heldout_config, write_bank_samples

    base = bank_config(reference)
    per = base.seeds
    n_arch = -(-models // per)
    if heldout in ("validation", "metric"):
        config = dataclasses.replace(base, weight_seed=base.seed
                                     + WEIGHT_SEED_OFFSETS[heldout])
    else:
        config = heldout_config(base, heldout, name="the extractor's bank")
    if config.architectures:
        n_arch = min(n_arch, config.architectures)
    config = dataclasses.replace(config, architectures=n_arch,
                                 crop_size=size or base.crop_size)
    if progress:
        progress(f"building {n_arch * per} held-out synthetic models ({heldout})")
    bank = fit_bank(config, device)
    with tempfile.TemporaryDirectory(prefix="fpx-bench-") as tmp:
        write_bank_samples(bank, tmp, images=images, models=models, device=device,
                           made_by={"command": "fpx bench transfer"})
        found = folder_set(tmp, name=f"synthetic {heldout}")
    return dataclasses.replace(found, source=(
        f"{len(found.models)} synthetic models ({heldout}) x {images} images, "
        f"{config.crop_size} px, of the extractor's bank config"))
