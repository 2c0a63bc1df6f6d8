"""A finished generator run chosen with "Use this run" as a Zoo tab entry: plain Python,
no panel, no param.

Using a run writes, inside the run's own folder, the sample set ``fpx zoo ship`` writes
for the default zoo, for this one entry (:mod:`core.zoo.shipped`'s format)::

    RUN/zoo/manifest.json          the entry's design, training record and quality
    RUN/zoo/samples/NAME/*.png     COUNT samples of the final checkpoint (its sample seed)
    RUN/zoo/real/*.png             the held-out real crops the shipped set compares with

drawn and assessed as the shipped entries are (:func:`core.zoo.shipped.sample_seed`,
:func:`core.zoo.quality.assess`), so the Zoo tab reads both alike. Nothing is written
outside the run's folder; the set is written whole or not at all.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.errors import FpxError, InvalidInputError
from explorer import runs as R

FOLDER = "zoo"
COUNT = 200  # samples, as the shipped zoo
REAL_COUNT = 1000  # real crops, as the shipped zoo
LABEL = "your run: "  # how a run's entry is named in the Zoo tab


@dataclass(frozen=True)
class RunEntry:
    """A used run's sample set: its ``label`` in the Zoo tab, its ``folder``
    (``RUN/zoo``) and the manifest read from it."""

    label: str
    run: str
    folder: Path
    manifest: object  # core.zoo.shipped.ZooManifest


def write_run_set(run: R.RunInfo, device: str = "cpu") -> Path:
    """Sample and assess ``run``'s final checkpoint into ``RUN/zoo`` (replacing an old
    set whole); return that folder. Seconds on a CPU at 32 px."""
    import torch

    from core.data import bundled_crops, read_folder, write_pngs
    from core.runtime import atomic_write, code_version, replaced_folder
    from core.zoo.base import ZooSettings
    from core.zoo.quality import assess
    from core.zoo.sample import sample_to_folder
    from core.zoo.shipped import (
        MANIFEST_FORMAT,
        QUALITY_NOTE,
        REAL_DATA,
        REAL_SEED,
        RealCrops,
        ShippedEntry,
        ZooManifest,
        sample_seed,
    )
    from core.zoo.train import load_trained

    if run.kind not in ("zoo", "design"):
        raise InvalidInputError(f"{run.name} trained {run.kind}, not a generator")
    if run.state != "finished":
        raise InvalidInputError(f"{run.name} is {run.state}: only a finished run can be used")
    model, record = load_trained(run.train_dir, device)
    name, size = model.entry.name, model.size
    real = bundled_crops(size, REAL_COUNT, seed=REAL_SEED, split="train")
    seed = sample_seed(model.entry)
    with replaced_folder(run.folder / FOLDER) as new:
        write_pngs(real, new / "real")
        folder = sample_to_folder(model, COUNT, new / "samples" / name, seed=seed,
                                  made_by={"command": run.command_text,
                                           "checkpoint_step": record["step"]})
        samples, _ = read_folder(folder, size)
        with torch.no_grad():
            quality = assess(samples, real)
        info = ShippedEntry(
            entry=model.entry, folder=f"samples/{name}", sample_seed=seed,
            preset=record.get("preset"), settings=ZooSettings(**record["settings"]),
            data=record["data"], train_steps=record["step"],
            train_seconds=round(float(record.get("seconds", 0.0)), 3),
            trained_by=record.get("code_version"), quality=quality)
        manifest = ZooManifest(
            format=MANIFEST_FORMAT, code_version=code_version(),
            commands=(run.command_text,), size=size, count=COUNT,
            real=RealCrops(folder="real", count=REAL_COUNT, seed=REAL_SEED, data=REAL_DATA),
            quality=QUALITY_NOTE, entries={name: info})
        atomic_write(new / "manifest.json", manifest.to_json())
    return run.folder / FOLDER


_WORKER: ThreadPoolExecutor | None = None


def use_generator(run: R.RunInfo) -> Future:
    """On a worker thread (one per server, one set at a time): write ``run``'s sample set,
    then mark the run used (its record read afresh). The future holds any error."""
    global _WORKER
    if _WORKER is None:
        _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fpx-use-run")

    def job():
        write_run_set(run)
        record = json.loads((run.folder / R.RECORD).read_text())
        R.write_record(run.folder, {**record, "used": True})

    return _WORKER.submit(job)


def run_entries(root: Path | None = None) -> list[RunEntry]:
    """The sample sets of the used generator runs under ``root`` (default: the runs
    directory), newest first; a run whose set is missing or damaged is left out."""
    from core.zoo.shipped import read_manifest

    found = []
    for run in R.list_runs(root):
        if run.state != "finished" or run.kind not in ("zoo", "design") \
                or not run.record.get("used"):
            continue
        try:
            manifest = read_manifest(run.folder / FOLDER)
        except FpxError:
            continue
        if len(manifest.entries) == 1:
            found.append(RunEntry(LABEL + run.name, run.name, run.folder / FOLDER, manifest))
    return found
