"""The hostile-input workspace: small good inputs (real and generated folders, an
extractor, embeddings, a trained zoo run, an extractor run, artifact sets) and a shelf
of bad ones (broken images, huge headers, damaged archives, tampered checkpoints), built
once per session in a temporary folder, and :func:`fpx` to run a command in-process."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.cli import main

SIZE = 32


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: list[str]
    error: BaseException | None  # an exception main() let through: a traceback


def fpx(capsys, *argv) -> Outcome:
    """``core.cli.main(argv)`` in this process; an exception other than argparse's
    ``SystemExit`` is what a user would see as a traceback."""
    error = None
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:
        status = stop.code
    except BaseException as err:  # noqa: BLE001 - the point is to catch everything
        status, error = None, err
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err.splitlines(), error)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def noise_pngs(folder: Path, count: int, size: int = SIZE, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i:05d}.png")
    return folder


def huge_tiff(path: Path, side: int = 16000) -> Path:
    """A deflated all-zero ``side`` x ``side`` grey TIFF: under a megabyte on disk, 256
    million pixels once decoded. Written tile by tile, never whole in memory."""
    import tifffile

    tile = 800
    zeros = np.zeros((tile, tile), np.uint8)
    tifffile.imwrite(path, (zeros for _ in range((side // tile) ** 2)), shape=(side, side),
                     dtype=np.uint8, compression="zlib", tile=(tile, tile))
    return path


def png_bomb(path: Path, side: int = 30000) -> Path:
    """A valid PNG header claiming ``side`` x ``side`` pixels, with one tiny IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    return path


class Marker:
    """A pickle payload that, if ever unpickled, creates ``path`` (it must not be)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npy_header_claiming(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """An .npy member whose header claims ``shape`` but which carries 16 data bytes."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16


def zip_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


class Workspace:
    """Good and bad inputs under ``root`` (see the module docstring)."""

    def __init__(self, root: Path):
        from core.extractor import Extractor, ExtractorConfig, export_extractor

        self.root = root
        self.real = noise_pngs(root / "real", 24, seed=1)
        self.gen = root / "gen"
        noise_pngs(self.gen / "a", 10, seed=2)
        noise_pngs(self.gen / "b", 10, seed=3)
        torch.manual_seed(0)
        self.extractor = export_extractor(
            Extractor(ExtractorConfig(width=4, embed_dim=16, crop_size=SIZE)),
            root / "extractor", {"command": "test"})
        self.bad = root / "bad"
        self.bad.mkdir()
        self._bad_inputs()

    # --- made lazily by the tests that need them (each costs seconds) ---------------

    def embeddings(self, capsys) -> Path:
        path = self.root / "e.npz"
        if not path.exists():
            out = fpx(capsys, "embed", self.gen, "--out", path, "--extractor", self.extractor,
                      "--device", "cpu")
            assert out.status == 0, out
        return path

    def zoo_run(self, capsys) -> Path:
        runs = self.root / "runs"
        if not (runs / "gan_tconv" / "checkpoint.pt").exists():
            out = fpx(capsys, "zoo", "train", "gan_tconv", "--steps", 2, "--batch", 4,
                      "--out", runs, "--device", "cpu")
            assert out.status == 0, out
        return runs

    def extractor_run(self, capsys) -> Path:
        run = self.root / "xrun"
        if not (run / "checkpoint.pt").exists():
            out = fpx(capsys, "train", "--preset", "tiny", "--steps", 3, "--out", run,
                      "--device", "cpu")
            assert out.status == 0, out
        return run

    def artifacts(self, capsys) -> Path:
        out_dir = self.root / "arts"
        if not (out_dir / "artifacts.npz").exists():
            out = fpx(capsys, "artifacts", "--real", self.real, "--generated", self.gen,
                      "--out", out_dir, "--holdout-real", 4, "--device", "cpu")
            assert out.status == 0, out
        return out_dir

    def copy(self, src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    # --- the shelf of bad inputs ------------------------------------------------------

    def _bad_inputs(self) -> None:
        b = self.bad
        (b / "empty").mkdir()
        (b / "text").mkdir()
        (b / "text" / "notes.txt").write_text("not an image")
        junk = b / "junk"
        junk.mkdir()
        (junk / "zero.png").write_bytes(b"")
        (junk / "garbage.png").write_bytes(os.urandom(500))
        (junk / "truncated.png").write_bytes(_png(np.zeros((40, 40, 3), np.uint8))[:60])
        (junk / "fake.jpg").write_bytes(b"GIF89a" + os.urandom(50))
        small = b / "small"
        small.mkdir()
        Image.new("RGB", (8, 8)).save(small / "tiny.png")
        huge = b / "huge"
        huge.mkdir()
        huge_tiff(huge / "big.tif")
        png_bomb(huge / "bomb.png")
        nan = b / "nan"
        nan.mkdir()
        import tifffile

        arr = np.full((SIZE, SIZE), np.nan, np.float32)
        tifffile.imwrite(nan / "nan.tif", arr)
        fifo_dir = b / "fifo"
        fifo_dir.mkdir()
        os.mkfifo(fifo_dir / "pipe.png")
        (b / "devzero").mkdir()
        os.symlink("/dev/zero", b / "devzero" / "zero.png")
        (b / "loop").mkdir()
        os.symlink("../loop", b / "loop" / "again")
        noise_pngs(b / "loop", 2)
        (b / "file.txt").write_text("a file, not a folder")
        # files standing for npz / json / checkpoints
        (b / "empty.npz").write_bytes(b"")
        (b / "random.npz").write_bytes(os.urandom(1000))
        np.save(b / "bare.npy", np.zeros(3))
        shutil.copy(b / "bare.npy", b / "bare.npz")
        (b / "wrongkeys.npz").write_bytes(npz_bytes(x=np.zeros(3)))
        (b / "one_d.npz").write_bytes(npz_bytes(embeddings=np.zeros(4, np.float32),
                                                paths=np.array(["a"] * 4),
                                                labels=np.array(["a"] * 4)))
        (b / "mismatch.npz").write_bytes(npz_bytes(embeddings=np.zeros((4, 3), np.float32),
                                                   paths=np.array(["a"] * 3),
                                                   labels=np.array(["a", "b", "a", "b"])))
        e = np.ones((4, 3), np.float32)
        e[1, 1] = np.nan
        (b / "nan.npz").write_bytes(npz_bytes(embeddings=e, paths=np.array(list("abcd")),
                                              labels=np.array(["a", "b", "a", "b"])))
        e = np.ones((4, 3), np.float32)
        e[2, 0] = np.inf
        (b / "inf.npz").write_bytes(npz_bytes(embeddings=e, paths=np.array(list("abcd")),
                                              labels=np.array(["a", "b", "a", "b"])))
        (b / "strings.npz").write_bytes(npz_bytes(embeddings=np.array([["x"]] * 4),
                                                  paths=np.array(list("abcd")),
                                                  labels=np.array(list("abab"))))
        (b / "onemodel.npz").write_bytes(npz_bytes(embeddings=np.eye(4, dtype=np.float32),
                                                   paths=np.array(list("abcd")),
                                                   labels=np.array(["a"] * 4)))
        (b / "singletons.npz").write_bytes(npz_bytes(embeddings=np.eye(2, dtype=np.float32),
                                                     paths=np.array(list("ab")),
                                                     labels=np.array(list("ab"))))
        zip_members(b / "claims_huge.npz", {
            "embeddings.npy": npy_header_claiming((10**6, 10**6)),
            "paths.npy": npy_header_claiming((4,), "<U1"),
            "labels.npy": npy_header_claiming((4,), "<U1")})
        zip_members(b / "inflates.npz", {"embeddings.npy": npy_header_claiming((10**8, 4))
                                         + b"\0" * (4 * 10**8 * 4 // 64)})
        (b / "object.npz").write_bytes(npz_bytes(embeddings=np.array([None] * 4, dtype=object),
                                                 paths=np.array(list("abcd")),
                                                 labels=np.array(list("abab"))))
        (b / "binary.json").write_bytes(b"\xff\xfe\x00\x81" * 50)
        (b / "nested.json").write_text("[" * 100000 + "]" * 100000)
        (b / "bigint.json").write_text('{"seed": ' + "9" * 5000 + "}")
        (b / "empty.json").write_text("")
        (b / "list.json").write_text("[1, 2, 3]")
        (b / "random.pt").write_bytes(os.urandom(400))
        (b / "empty.pt").write_bytes(b"")
        torch.save({"format": "something else"}, b / "foreign.pt")
        torch.save([1, 2, 3], b / "list.pt")


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
