"""Image sets the Embeddings and Attribute tabs embed, and the on-disk cache of their
embeddings. ``param``-free, panel-free: plain functions over folders.

A set is a folder that :func:`core.extractor.embed_folders` reads (as ``fpx embed``
does, so its embeddings are the CLI's bit for bit): the shipped zoo's samples (one
sub-folder per entry), its real crops, a server folder whose sub-folders are models
(confined to the data roots like the Spectrum Lab's folder source), or uploaded images,
which are written unchanged under the runs directory first (the dashboard writes nowhere
else). Embeddings are cached in ``RUNS/embeddings/KEY.npz`` (:meth:`EmbeddingSet.save`),
``KEY`` hashing the extractor's files and the set's file names and bytes, so a set seen
before opens at once, in any session.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.data import IMAGE_SUFFIXES, Skipped, decode_rgb, scan_images
from core.errors import FpxError, InvalidInputError
from core.extractor import DEFAULT_EXTRACTOR, EmbeddingSet, embed_folders, load_extractor
from core.parsing.data import extractor_identity
from core.zoo.shipped import SHIPPED_ZOO
from explorer.sources import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, confined_folder
from explorer.training import finished_extractors

SHIPPED = "shipped extractor"
MAX_UPLOADS = 64
MAX_SET_IMAGES = 20_000  # a server folder larger than this is refused, not walked for minutes
_CHUNK = 1 << 20


def runs_dir() -> Path:
    """Where the dashboard writes: ``FPX_RUNS``, else ``runs`` in the working folder."""
    return Path(os.environ.get("FPX_RUNS", "runs")).expanduser()


def extractor_choices(runs: Path | None = None) -> dict[str, Path]:
    """Extractors to choose from: the shipped one and every finished extractor run of
    the Train tab in ``runs`` (default: the runs directory) (label -> exported folder)."""
    found = {SHIPPED: DEFAULT_EXTRACTOR}
    try:
        found.update({str(name): Path(folder)
                      for name, folder in finished_extractors(runs).items()})
    except (FpxError, OSError, ValueError):
        pass  # a broken runs folder must not take the tab down
    return found


@dataclass(frozen=True)
class ImageSet:
    """A folder to embed and what to call it (``zoo``, ``real``, ``folder NAME`` ...)."""

    label: str
    folder: Path


def zoo_set() -> ImageSet:
    return ImageSet("shipped zoo", SHIPPED_ZOO / "samples")


def real_set() -> ImageSet:
    return ImageSet("real photos", SHIPPED_ZOO / "real")


BANK_HELDOUT = ("seeds", "architectures")
BANK_MODELS = 12  # models of a held-out bank set (the bank's first ones)
BANK_IMAGES = 50  # images per model


def bank_preset(extractor: Path) -> str:
    """The training preset whose synthetic bank taught ``extractor`` (its
    ``extractor.json``'s ``made_by.preset``), ``cpu`` when it does not say."""
    from core.extractor.train import PRESETS

    try:
        preset = json.loads((Path(extractor) / "extractor.json").read_text())["made_by"]["preset"]
    except (OSError, ValueError, KeyError, TypeError):
        return "cpu"
    return preset if preset in PRESETS else "cpu"


def bank_set(extractor: Path, heldout: str, runs: Path | None = None,
             models: int | None = None, images: int | None = None,
             status: Callable[[str], None] | None = None) -> ImageSet:
    """Samples of synthetic models the extractor never saw (``fpx bank sample --preset
    P --heldout H --models N --images K``, ``P`` the extractor's :func:`bank_preset`):
    ``heldout="seeds"``, its bank's architectures with unseen weights; ``"architectures"``,
    architectures its bank does not hold; ``models`` and ``images`` default to
    :data:`BANK_MODELS` and :data:`BANK_IMAGES`. Made once (seconds per model on a CPU, with
    ``status``) under ``RUNS/bank_samples/``, built in a scratch folder and renamed into
    place when whole, then found there by any session."""
    from core.extractor.train import PRESETS
    from core.synthetic import fit_bank, heldout_config, write_bank_samples

    if heldout not in BANK_HELDOUT:
        raise InvalidInputError(f"held-out bank set: {heldout!r}; valid: "
                                f"{', '.join(BANK_HELDOUT)}")
    say = status or (lambda text: None)
    models, images = models or BANK_MODELS, images or BANK_IMAGES
    preset = bank_preset(extractor)
    label = f"bank {preset}, held-out {heldout}"
    folder = (runs or runs_dir()) / "bank_samples" / f"{preset}-{heldout}-{models}x{images}"
    with key_lock(str(folder)):
        if (folder / "bank.json").is_file():
            return ImageSet(label, folder)
        config = heldout_config(PRESETS[preset].bank, heldout, name=f"preset {preset}'s bank")
        n = min(models, len(config.specs()))
        done = [0]

        def step(what: str):
            def tick(count: int) -> None:
                done[0] += count
                say(f"{label}: {what} ({done[0]} of {2 * n} steps)")
            return tick

        say(f"{label}: fitting {n} models")
        bank = fit_bank(config, "cpu", models=n, progress=step("fitting models"))
        scratch = folder.with_name(f"{folder.name}.part-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        write_bank_samples(bank, scratch, images=images, models=n, progress=step("sampling"),
                           made_by={"preset": preset, "heldout": heldout,
                                    "command": f"fpx bank sample --preset {preset} --heldout "
                                               f"{heldout} --models {n} --images {images}"})
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete one (no bank.json)
        os.replace(scratch, folder)
    return ImageSet(label, folder)


def bank_designs(folder: Path) -> dict[str, dict]:
    """Model folder -> the design of its first up-block, read from its ``spec.json``
    (as :func:`core.synthetic.write_bank_samples` writes it): ``upsampling``,
    ``normalization``, ``activation``; family ``bank``."""
    found = {}
    for spec in sorted(Path(folder).glob("*/spec.json")):
        try:
            block = json.loads(spec.read_text())["up"][0]
            found[spec.parent.name] = {"family": "bank",
                                       "upsampling": str(block["upsampling"]),
                                       "normalization": str(block["norm"]),
                                       "activation": str(block["activation"])}
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            continue
    return found


def server_set(path: str) -> ImageSet:
    """A folder on the server whose sub-folders are models; it must lie under the data
    roots (``FPX_DATA_ROOTS``), and whether a path outside them exists is not told."""
    text = (path or "").strip()
    root = confined_folder(text, "type the path of a folder on the server whose "
                                 "sub-folders are models")
    models = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.is_symlink()]
    if len(models) < 2:
        raise InvalidInputError(f"{text}: holds {len(models)} model folder(s); give a folder "
                                "whose sub-folders (at least 2) are models")
    return ImageSet(f"folder {root.name}", root)


def _safe_name(name: str, index: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "").name)[:80].lstrip(".")
    suffix = Path(stem).suffix.lower()
    return f"{index:03d}_{stem}" if suffix in IMAGE_SUFFIXES else f"{index:03d}_{stem}.img.png"


def upload_set(files: list[tuple[str, bytes]], runs: Path | None = None,
               label: str = "upload") -> ImageSet:
    """Write uploaded images, bytes unchanged, to ``RUNS/uploads/DIGEST/LABEL/``.

    Each file is decoded first (format sniffed from the bytes): a file that is not an
    image, empty or too large is refused by name and nothing is written.
    """
    if not files:
        raise InvalidInputError("no image uploaded yet: drop image files on the upload area")
    if len(files) > MAX_UPLOADS:
        raise InvalidInputError(f"{len(files)} files: at most {MAX_UPLOADS} at once")
    digest = hashlib.sha256()
    for name, data in files:
        if not data:
            raise InvalidInputError(f"{name}: the uploaded file is empty (0 bytes)")
        if len(data) > MAX_UPLOAD_BYTES:
            raise InvalidInputError(f"{name}: larger than the {MAX_UPLOAD_BYTES // 2**20} MB "
                                    "upload limit")
        try:
            decode_rgb(bytes(data), name, max_pixels=MAX_UPLOAD_PIXELS)
        except FpxError as err:
            raise InvalidInputError(f"{name}: not a usable image "
                                    f"({str(err).splitlines()[0][:120]})") from None
        digest.update(hashlib.sha256(data).digest())
    label = re.sub(r"[^A-Za-z0-9._-]", "_", label) or "upload"
    folder = (runs or runs_dir()) / "uploads" / digest.hexdigest()[:16] / label
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, data) in enumerate(files):
        target = folder / _safe_name(name, i)
        if not target.exists():
            from core.runtime import atomic_write

            atomic_write(target, bytes(data))
    return ImageSet(f"upload ({len(files)} image{'s' * (len(files) != 1)})", folder)


def gallery_folder(runs: Path, extractor: Path) -> Path:
    """Where models added to the Attribute gallery from the Embeddings tab are kept:
    ``RUNS/gallery/H/MODEL.npz``, ``H`` the first 16 hex digits of the extractor's
    :func:`extractor_hash` (embeddings of one extractor are never set against another's,
    even of the same dimension)."""
    return Path(runs) / "gallery" / extractor_hash(extractor)[:16]


def file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.digest()


@functools.lru_cache(maxsize=16)
def _extractor_hash(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for name in ("extractor.json", "extractor.safetensors"):
        h.update(file_digest(Path(folder) / name))
    return h.hexdigest()


def extractor_hash(folder: Path) -> str:
    """SHA-256 of the exported extractor's record and weights."""
    files = [Path(folder) / n for n in ("extractor.json", "extractor.safetensors")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InvalidInputError(f"{folder}: no {', '.join(missing)} (an unfinished or "
                                "damaged extractor run: export it with fpx train)")
    stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _extractor_hash(str(folder), stamp)


_keys: dict[tuple[str, str], tuple[tuple, str]] = {}  # (folder, extractor) -> (stamp, key)
_keys_guard = threading.Lock()


def set_key(image_set: ImageSet, extractor: Path) -> str:
    """Cache key: the extractor's hash, the folder as given, and every image file's
    relative path and bytes (a renamed, added or changed file is a new key).

    Within one process the key is remembered with every file's name, size and
    modification time: a set asked for again is only listed and stat'ed (tens of ms for
    the zoo's 3400 files, against about a second of hashing on a loaded 2-core CPU),
    and hashed again when any of those changed."""
    files = scan_images([image_set.folder], Skipped())
    if len(files) > MAX_SET_IMAGES:
        raise InvalidInputError(f"{image_set.folder}: {len(files)} images; at most "
                                f"{MAX_SET_IMAGES} in one set")
    ext = extractor_hash(extractor)
    stamp = tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in files)
    memo = (str(image_set.folder), ext)
    with _keys_guard:
        known = _keys.get(memo)
    if known is not None and known[0] == stamp:
        return known[1]
    h = hashlib.sha256(ext.encode())
    h.update(str(image_set.folder).encode())
    for path in files:
        h.update(str(path.relative_to(image_set.folder)).encode() + b"\0")
        h.update(file_digest(path))
    key = h.hexdigest()[:32]
    with _keys_guard:
        _keys[memo] = (stamp, key)
    return key


def forget_keys() -> None:
    """Drop the remembered keys (as a new server process starts without them)."""
    with _keys_guard:
        _keys.clear()


@functools.lru_cache(maxsize=4)
def _model(folder: str, digest: str):
    return load_extractor(folder)


def extractor_model(folder: Path):
    """The exported extractor in ``folder`` on the CPU, loaded once per process."""
    return _model(str(folder), extractor_hash(folder))


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def key_lock(key: str) -> threading.Lock:
    """One lock per cache key: sessions asking for the same result wait for one
    computation."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@functools.lru_cache(maxsize=16)
def _identity_of(folder: str, stamp: tuple) -> str:
    return extractor_identity(folder)


def _identity(extractor: Path) -> str:
    """The extractor's identity (its weights hashed once per version of the file, as
    :func:`extractor_hash`), ``""`` when they cannot be read (then embedding says why)."""
    try:
        st = (Path(extractor) / "extractor.safetensors").stat()
        return _identity_of(str(extractor), (st.st_mtime_ns, st.st_size))
    except OSError:
        return ""


def cached_embeddings(image_set: ImageSet, extractor: Path, runs: Path | None = None,
                      status: Callable[[str], None] | None = None,
                      key: str | None = None) -> EmbeddingSet:
    """The set's embeddings: read from the cache, or made by
    :func:`core.extractor.embed_folders` (``fpx embed``) and cached. Sessions asking
    for the same set at once wait for one computation. ``key``: the set's
    :func:`set_key` when the caller has it already. The set records the extractor's
    identity (``EmbeddingSet.extractor``, as ``fpx embed`` writes it; the key already
    names the extractor, so a file cached before it was recorded gets it on reading)."""
    say = status or (lambda text: None)
    if key is None:
        say(f"{image_set.label}: hashing images")
        key = set_key(image_set, extractor)
    path = (runs or runs_dir()) / "embeddings" / f"{key}.npz"
    identity = _identity(extractor)
    with key_lock(key):
        if path.exists():
            try:
                say(f"{image_set.label}: read from cache")
                return replace(EmbeddingSet.load(path), extractor=identity)
            except FpxError:
                pass  # a damaged cache file is made again
        say(f"{image_set.label}: embedding images")
        model = extractor_model(extractor)
        result = embed_folders(model, [image_set.folder], notify=lambda path, why: None)
        result = replace(result, extractor=identity)
        path.parent.mkdir(parents=True, exist_ok=True)
        result.save(path)
        return result
