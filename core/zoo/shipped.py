"""The zoo sample set shipped in the repository (``core/assets/zoo``), and the command
that makes it (``fpx zoo ship``).

Layout::

    core/assets/zoo/manifest.json        commands, seeds, code version, per-entry figures
    core/assets/zoo/samples/NAME/*.png   samples of each default entry (lossless)
    core/assets/zoo/real/*.png           held-out real crops of the training photos

The real crops come from the same photos the zoo trained on (the bundled train split)
at positions drawn with another seed, so they are the matching real distribution.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from core.data import bundled_crops, read_folder, write_pngs
from core.errors import InvalidInputError
from core.figures import write_contact_sheet
from core.runtime import atomic_write, code_version
from core.zoo.default import DEFAULT_ZOO
from core.zoo.entries import ZooEntry
from core.zoo.quality import assess
from core.zoo.sample import sample_to_folder
from core.zoo.train import load_trained

SHIPPED_ZOO = Path(__file__).resolve().parent.parent / "assets" / "zoo"
MANIFEST_FORMAT = "fpx.zoo_samples/1"
REAL_SEED = 7919  # positions of the held-out real crops (training used the entry seeds)
SAMPLE_SEED = 1000  # added to each entry's seed for the shipped samples


def read_manifest(folder: str | Path = SHIPPED_ZOO) -> dict:
    path = Path(folder) / "manifest.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no zoo sample manifest (make one with fpx zoo "
                                "ship)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path} is corrupt: {err}") from None
    if not isinstance(record, dict) or record.get("format") != MANIFEST_FORMAT:
        raise InvalidInputError(f"{path} is not an fpx zoo sample manifest")
    return record


def shipped_entries(folder: str | Path = SHIPPED_ZOO) -> dict[str, ZooEntry]:
    """The entries whose samples the folder holds, by name."""
    return {name: ZooEntry.from_dict(info["entry"])
            for name, info in read_manifest(folder)["entries"].items()}


def ship(runs: str | Path, out: str | Path = SHIPPED_ZOO, *, count: int = 200,
         real_count: int = 1000, sheets: str | Path | None = None,
         entries: tuple[ZooEntry, ...] = DEFAULT_ZOO, device: str | torch.device = "cpu",
         command: str = "fpx zoo ship", log=print) -> dict:
    """Sample ``count`` images of every trained entry under ``runs`` into ``out``, write
    ``real_count`` held-out real crops, assess each entry and write the manifest (and a
    contact sheet per entry into ``sheets``)."""
    runs, out = Path(runs), Path(out)
    missing = [e.name for e in entries if not (runs / e.name / "checkpoint.pt").exists()]
    if missing:
        raise InvalidInputError(f"no trained checkpoint under {runs} for: {', '.join(missing)} "
                                f"(train them with fpx zoo train NAME --out {runs})")
    models = {}
    for e in entries:
        model, record = load_trained(runs / e.name, device)
        if record["step"] != record["settings"]["steps"]:
            raise InvalidInputError(f"{e.name}: training stopped at step {record['step']} of "
                                    f"{record['settings']['steps']}; finish it with --resume")
        models[e.name] = (model, record)
    sizes = {m.size for m, _ in models.values()}
    if len(sizes) != 1:
        raise InvalidInputError(f"entries were trained at different sizes {sorted(sizes)}")
    size = sizes.pop()
    real = bundled_crops(size, real_count, seed=REAL_SEED, split="train")
    for old in (out / "real").glob("*.png") if (out / "real").is_dir() else []:
        old.unlink()
    write_pngs(real, out / "real")
    manifest = {
        "format": MANIFEST_FORMAT, "code_version": code_version(),
        "commands": ["fpx zoo train all --preset quick --out RUNS",
                     command],
        "size": size, "count": count,
        "real": {"folder": "real", "count": real_count, "seed": REAL_SEED,
                 "data": "bundled photos, train split (the zoo's training photos), crops at "
                         "positions drawn with this seed"},
        "quality": "spectral distance (dB) of mean radial spectra and KID-style kernel MMD "
                   "in fixed features, against the real crops; noise figures are uniform "
                   "noise against the same crops; kernel_mmd_to_noise is the samples' MMD to that "
                   "noise; passed = the samples are closer to the real crops than to noise",
        "entries": {},
    }
    for name, (model, record) in models.items():
        t0 = time.perf_counter()
        seed = model.entry.seed + SAMPLE_SEED
        folder = sample_to_folder(model, count, out / "samples" / name, seed=seed,
                                  overwrite=True, made_by={"command": command,
                                                           "checkpoint_step": record["step"]})
        samples, _ = read_folder(folder, size)
        figures = assess(samples, real)
        if sheets is not None:
            write_contact_sheet(samples[:64], Path(sheets) / f"{name}.png")
        manifest["entries"][name] = {
            "entry": model.entry.to_dict(), "folder": f"samples/{name}", "sample_seed": seed,
            "preset": record.get("preset"), "settings": record["settings"],
            "data": record["data"], "train_steps": record["step"],
            "train_seconds": round(float(record.get("seconds", 0.0)), 3),
            "trained_by": record.get("code_version"), "quality": figures,
        }
        log(f"{name}: {count} samples in {time.perf_counter() - t0:.1f} s; "
            f"spectral distance {figures['spectral_distance_db']:.2f} dB, kernel MMD "
            f"{figures['kernel_mmd']:.3f} (noise {figures['kernel_mmd_noise']:.3f})"
            f"{'' if figures['passed'] else '  FAILED: samples are closer to noise'}")
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2))
    return manifest
