"""The zoo sample set shipped in the repository (``core/assets/zoo``), and the command
that makes it (``fpx zoo ship``).

Layout::

    core/assets/zoo/manifest.json        commands, seeds, code version, per-entry figures
    core/assets/zoo/samples/NAME/*.png   samples of each default entry (lossless)
    core/assets/zoo/real/*.png           held-out real crops of the training photos

The real crops come from the same photos the zoo trained on (the bundled train split)
at positions drawn with another seed, so they are the matching real distribution.

The manifest is a :class:`ZooManifest` (a :class:`ShippedEntry` per entry, the
:class:`RealCrops`); :func:`read_manifest` returns one and ``ship`` writes one, and
``ZooManifest.from_json(text).to_json() == text`` holds byte for byte::

    manifest = read_manifest()
    manifest.entries["gan_tconv"].quality.kernel_mmd, manifest.real.folder
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data import bundled_crops, read_folder, write_pngs
from core.errors import FpxError, InvalidInputError, check_int, check_real
from core.figures import write_contact_sheet
from core.records import check_text, exact_fields, plain
from core.runtime import atomic_write, code_version, replaced_folder
from core.zoo.base import ZooSettings
from core.zoo.default import DEFAULT_ZOO, OWN_NOISE
from core.zoo.entries import ZooEntry
from core.zoo.quality import QualityReport, assess
from core.zoo.sample import sample_to_folder
from core.zoo.train import load_trained

SHIPPED_ZOO = Path(__file__).resolve().parent.parent / "assets" / "zoo"
MANIFEST_FORMAT = "fpx.zoo_samples/1"
REAL_SEED = 7919  # positions of the held-out real crops (training used the entry seeds)
SAMPLE_SEED = 1000  # added to each entry's seed for the shipped samples (see sample_seed)
REAL_DATA = ("bundled photos, train split (the zoo's training photos), crops at positions "
             "drawn with this seed")
QUALITY_NOTE = ("spectral distance (dB) of mean radial spectra and KID-style kernel MMD in "
                "fixed features, against the real crops; noise figures are uniform noise "
                "against the same crops; kernel_mmd_to_noise is the samples' MMD to that "
                "noise; passed = the samples are closer to the real crops than to noise")


@dataclass(frozen=True)
class RealCrops:
    """The held-out real crops beside the samples: ``count`` PNGs in ``folder`` (relative
    to the manifest), cut at positions drawn with ``seed`` from what ``data`` says."""

    folder: str
    count: int
    seed: int
    data: str

    def __post_init__(self) -> None:
        check_text(self, "folder", "data")
        check_int("real crops: count", self.count)
        check_int("real crops: seed", self.seed, 0)

    def to_dict(self) -> dict:
        return plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> RealCrops:
        return cls(**exact_fields(cls, d, "the real crops' record"))


@dataclass(frozen=True)
class ShippedEntry:
    """One entry of the shipped sample set: what it is, where its samples lie, how it
    was trained, and how good its samples are.

    Attributes:
        entry: the zoo entry (design choices and seed).
        folder: its samples, relative to the manifest (``samples/NAME``).
        sample_seed: the seed that drew them (:func:`sample_seed`).
        preset: the training preset, ``None`` if the checkpoint did not record one.
        settings: the training settings its checkpoint recorded.
        data: the training data (``bundled`` ...).
        train_steps: steps trained (equal to ``settings.steps`` for a finished run).
        train_seconds: training wall time in seconds (3 decimals).
        trained_by: the code version that trained it, ``None`` if unrecorded.
        quality: its samples against the real crops.
    """

    entry: ZooEntry
    folder: str
    sample_seed: int
    preset: str | None
    settings: ZooSettings
    data: str
    train_steps: int
    train_seconds: float
    trained_by: str | None
    quality: QualityReport

    def __post_init__(self) -> None:
        for name, kind in (("entry", ZooEntry), ("settings", ZooSettings),
                           ("quality", QualityReport)):
            if not isinstance(getattr(self, name), kind):
                raise InvalidInputError(f"{name} must be a {kind.__name__}, got "
                                        f"{type(getattr(self, name)).__name__}")
        check_text(self, "folder", "data")
        for name in ("preset", "trained_by"):
            if getattr(self, name) is not None:
                check_text(self, name)
        check_int("sample_seed", self.sample_seed, 0)
        check_int("train_steps", self.train_steps, 0)
        object.__setattr__(self, "train_seconds", check_real("train_seconds",
                                                             self.train_seconds, 0))

    def to_dict(self) -> dict:
        return plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> ShippedEntry:
        d = dict(exact_fields(cls, d, "a shipped entry"))
        settings = exact_fields(ZooSettings, d["settings"], "settings")
        d.update(entry=ZooEntry.from_dict(d["entry"]), settings=ZooSettings(**settings),
                 quality=QualityReport.from_dict(d["quality"]))
        return cls(**d)


@dataclass(frozen=True)
class ZooManifest:
    """``manifest.json`` of a zoo sample set: what made it and what it holds.

    Attributes:
        format: :data:`MANIFEST_FORMAT`.
        code_version: the code that wrote it.
        commands: the commands that made it, in order (runs named ``RUNS``).
        size: image side in pixels, of samples and real crops alike.
        count: samples per entry.
        real: the held-out real crops.
        quality: what the quality figures mean (for a reader of the JSON).
        entries: entry name -> :class:`ShippedEntry`, in the order shipped.

    :meth:`to_json` writes the file ``fpx zoo ship`` writes (this field order,
    ``indent=2``), so ``ZooManifest.from_json(text).to_json() == text``.
    """

    format: str
    code_version: str
    commands: tuple[str, ...]
    size: int
    count: int
    real: RealCrops
    quality: str
    entries: Mapping[str, ShippedEntry]

    def __post_init__(self) -> None:
        if self.format != MANIFEST_FORMAT:
            raise InvalidInputError(f"format must be {MANIFEST_FORMAT!r}, got {self.format!r}")
        check_text(self, "code_version", "quality")
        if isinstance(self.commands, str) or not all(isinstance(c, str)
                                                     for c in self.commands):
            raise InvalidInputError("commands must be a list of strings")
        object.__setattr__(self, "commands", tuple(self.commands))
        check_int("size", self.size)
        check_int("count", self.count)
        if not isinstance(self.real, RealCrops):
            raise InvalidInputError(f"real must be a RealCrops, got {type(self.real).__name__}")
        if not isinstance(self.entries, Mapping):
            raise InvalidInputError(f"entries must map names to shipped entries, got "
                                    f"{type(self.entries).__name__}")
        for name, info in self.entries.items():
            if not isinstance(info, ShippedEntry) or info.entry.name != name:
                got = info.entry.name if isinstance(info, ShippedEntry) else type(info).__name__
                raise InvalidInputError(f"entries['{name}'] must be the ShippedEntry of "
                                        f"'{name}', got {got}")
        object.__setattr__(self, "entries", dict(self.entries))

    def to_dict(self) -> dict:
        return plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> ZooManifest:
        d = dict(exact_fields(cls, d, "a zoo sample manifest"))
        if not isinstance(d["entries"], dict):
            raise InvalidInputError("entries must be a JSON object of shipped entries")
        entries = {}
        for name, info in d["entries"].items():
            try:
                entries[name] = ShippedEntry.from_dict(info)
            except InvalidInputError as err:
                raise InvalidInputError(f"entry '{name}': {err}") from None
        d.update(real=RealCrops.from_dict(d["real"]), entries=entries)
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> ZooManifest:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"corrupt JSON: {err}") from None
        return cls.from_dict(record)


def read_manifest(folder: str | Path = SHIPPED_ZOO) -> ZooManifest:
    """The manifest of the sample set in ``folder``; a missing, corrupt, foreign or
    incomplete file is refused with one line naming it."""
    path = Path(folder) / "manifest.json"
    try:
        text = path.read_text()
        record = json.loads(text)
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no zoo sample manifest (make one with fpx zoo "
                                "ship)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path} is corrupt: {err}") from None
    if not isinstance(record, dict) or record.get("format") != MANIFEST_FORMAT:
        raise InvalidInputError(f"{path} is not an fpx zoo sample manifest")
    try:
        return ZooManifest.from_dict(record)
    except InvalidInputError as err:
        raise InvalidInputError(f"{path}: {err}") from None


def sample_seed(entry: ZooEntry) -> int:
    """The seed an entry's shipped samples are drawn with: ``SAMPLE_SEED`` plus the
    entry's seed, plus, for the entries of :data:`core.zoo.default.OWN_NOISE`, a number
    derived from the name (CRC-32 modulo 10**6), so that no two of them share their
    sampling noise."""
    import zlib

    own = zlib.crc32(entry.name.encode()) % 10**6 if entry.name in OWN_NOISE else 0
    return SAMPLE_SEED + entry.seed + own


def shipped_entries(folder: str | Path = SHIPPED_ZOO) -> dict[str, ZooEntry]:
    """The entries whose samples the folder holds, by name."""
    return {name: info.entry for name, info in read_manifest(folder).entries.items()}


def _load_runs(runs: Path, entries, device) -> dict:
    """Every entry's finished run under ``runs``, checked before anything is sampled."""
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
        if model.entry != e:
            raise InvalidInputError(f"{runs / e.name}: holds entry {model.entry.name!r} "
                                    f"trained with other choices than {e.name!r}")
        models[e.name] = (model, record)
    return models


def _sample_entry(model, record, folder: Path, *, count: int, size: int,
                  real: torch.Tensor, command: str, log) -> tuple[ShippedEntry, torch.Tensor]:
    """Sample one entry into ``folder`` (replaced whole once written) with its
    :func:`sample_seed`, assess it against ``real``; its record and first 64 samples."""
    name = model.entry.name
    t0 = time.perf_counter()
    seed = sample_seed(model.entry)
    folder = sample_to_folder(model, count, folder, seed=seed, overwrite=True,
                              made_by={"command": command, "checkpoint_step": record["step"]})
    samples, _ = read_folder(folder, size)
    figures = assess(samples, real)
    log(f"{name}: {count} samples in {time.perf_counter() - t0:.1f} s; "
        f"spectral distance {figures.spectral_distance_db:.2f} dB, kernel MMD "
        f"{figures.kernel_mmd:.3f} (noise {figures.kernel_mmd_noise:.3f})"
        f"{'' if figures.passed else '  FAILED: samples are closer to noise'}")
    return ShippedEntry(
        entry=model.entry, folder=f"samples/{name}", sample_seed=seed,
        preset=record.get("preset"), settings=ZooSettings(**record["settings"]),
        data=record["data"], train_steps=record["step"],
        train_seconds=round(float(record.get("seconds", 0.0)), 3),
        trained_by=record.get("code_version"), quality=figures), samples[:64]


def _failed(name: str, err: FpxError, what: str) -> InvalidInputError:
    message = str(err) if str(err).startswith(name) else f"{name}: {err}"
    return InvalidInputError(f"{message}; {what}")


def ship(runs: str | Path, out: str | Path = SHIPPED_ZOO, *, count: int = 200,
         real_count: int = 1000, sheets: str | Path | None = None,
         entries: tuple[ZooEntry, ...] = DEFAULT_ZOO, device: str | torch.device = "cpu",
         command: str = "fpx zoo ship", log=print) -> ZooManifest:
    """Sample ``count`` images of every trained entry under ``runs`` into ``out``, write
    ``real_count`` held-out real crops, assess each entry and write the manifest (and a
    contact sheet per entry into ``sheets``).

    All or nothing: every checkpoint is loaded and checked first, the whole set is
    written into a new folder beside ``out``, and that folder takes the place of ``out``
    only when all of it is written (files of an old ``out`` that a set does not hold
    stay). A failure names the entry at fault and leaves ``out`` as it was.
    """
    check_int("count", count, 1, 10**6)
    check_int("real_count", real_count, 1, 10**6)
    runs, out = Path(runs), Path(out)
    models = _load_runs(runs, entries, device)
    sizes = {m.size for m, _ in models.values()}
    if len(sizes) != 1:
        raise InvalidInputError(f"entries were trained at different sizes {sorted(sizes)}")
    size = sizes.pop()
    real = bundled_crops(size, real_count, seed=REAL_SEED, split="train")
    real_crops = RealCrops(folder="real", count=real_count, seed=REAL_SEED, data=REAL_DATA)
    shipped, contact = {}, {}
    with replaced_folder(out, carry=lambda name: name not in _SET_PARTS) as new:
        write_pngs(real, new / "real")
        for name, (model, record) in models.items():
            try:
                shipped[name], contact[name] = _sample_entry(
                    model, record, new / "samples" / name, count=count, size=size,
                    real=real, command=command, log=log)
            except FpxError as err:
                raise _failed(name, err, f"{out} is left as it was") from None
        manifest = ZooManifest(
            format=MANIFEST_FORMAT, code_version=code_version(),
            commands=("fpx zoo train all --preset quick --out RUNS", command),
            size=size, count=count, real=real_crops, quality=QUALITY_NOTE, entries=shipped)
        atomic_write(new / "manifest.json", manifest.to_json())
    if sheets is not None:  # beside the set, written once the set is in place
        for name, images in contact.items():
            write_contact_sheet(images, Path(sheets) / f"{name}.png")
    return manifest


def reship(runs: str | Path, names: tuple[str, ...], out: str | Path = SHIPPED_ZOO, *,
           sheets: str | Path | None = None, device: str | torch.device = "cpu",
           commands: tuple[str, ...] = (), log=print) -> ZooManifest:
    """Sample again the entries ``names`` of the set in ``out`` from their runs under
    ``runs`` (the set's count and size, each entry's :func:`sample_seed`), assess them
    against the set's real crops and rewrite their records in the manifest; every other
    entry and the real crops stay as they are. ``commands`` (what trained the runs and
    this call) are added to the manifest's commands.

    Each entry's folder is replaced whole once written, and the manifest is rewritten
    after each entry, so that it always describes the samples on disk.
    """
    out = Path(out)
    manifest = read_manifest(out)
    unknown = [n for n in names if n not in manifest.entries]
    if unknown or not names:
        raise InvalidInputError(f"{out} holds no entry {unknown or '(none named)'}; it "
                                f"holds: {', '.join(manifest.entries)}")
    entries = tuple(manifest.entries[n].entry for n in names)
    models = _load_runs(Path(runs), entries, device)
    wrong = [n for n, (m, _) in models.items() if m.size != manifest.size]
    if wrong:
        raise InvalidInputError(f"{', '.join(wrong)}: trained at another size than the "
                                f"set's {manifest.size} px")
    real = bundled_crops(manifest.size, manifest.real.count, seed=manifest.real.seed,
                         split="train")
    shipped = dict(manifest.entries)
    manifest = dataclasses.replace(manifest, code_version=code_version(),
                                   commands=(*manifest.commands, *commands))
    for name, (model, record) in models.items():
        try:
            shipped[name], contact = _sample_entry(
                model, record, out / manifest.entries[name].folder, count=manifest.count,
                size=manifest.size, real=real, command=commands[-1] if commands else
                "core.zoo.shipped.reship", log=log)
        except FpxError as err:
            raise _failed(name, err, "its old samples are kept") from None
        manifest = dataclasses.replace(manifest, entries=dict(shipped))
        atomic_write(out / "manifest.json", manifest.to_json())
        if sheets is not None:
            write_contact_sheet(contact, Path(sheets) / f"{name}.png")
    return manifest


_SET_PARTS = ("real", "samples", "manifest.json")  # what ship writes into its folder


def main(argv: list[str] | None = None) -> int:
    """``python -m core.zoo.shipped NAME... --runs RUNS [--sheets DIR]``: :func:`reship`
    the named entries of the shipped set."""
    import argparse
    import shlex
    import sys

    p = argparse.ArgumentParser(prog="python -m core.zoo.shipped",
                                description="Sample named entries of the shipped zoo again.")
    p.add_argument("names", nargs="+")
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--sheets", type=Path)
    p.add_argument("--train-command", action="append", default=[],
                   help="the command that trained the runs (recorded; repeatable)")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    words = ["RUNS" if w == str(args.runs) else w for w in argv]
    skip = {i + 1 for i, w in enumerate(words) if w == "--train-command"}
    words = [w for i, w in enumerate(words) if w != "--train-command" and i not in skip]
    command = shlex.join(["python", "-m", "core.zoo.shipped", *words])
    try:
        reship(args.runs, tuple(args.names), sheets=args.sheets,
               commands=(*args.train_command, command),
               log=lambda m: print(m, file=sys.stderr, flush=True))
    except FpxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
