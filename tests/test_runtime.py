"""core.runtime: device choice, seeding, atomic writes and the code version."""

import os
import random
import stat
import sys

import numpy as np
import pytest
import torch

import core
from core.errors import InvalidInputError
from core.runtime import atomic_path, atomic_write, code_version, resolve_device, seed_everything

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# --- resolve_device ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu ", "Cpu"])
def test_cpu_by_any_spelling(name):
    assert resolve_device(name) == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("name", ["auto", "AUTO", " auto"])
def test_auto_is_cpu_without_gpu(name):
    assert resolve_device(name) == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


@needs_cuda
def test_auto_is_cuda_with_gpu():
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")


@needs_cuda
def test_missing_gpu_index():
    with pytest.raises(InvalidInputError, match="GPU"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "CUDA", "cuda:0", "cuda:3"])
def test_cuda_without_gpu_is_an_error(name):
    with pytest.raises(InvalidInputError) as info:
        resolve_device(name)
    message = str(info.value)
    assert name in message and "no CUDA GPU" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["gpu", "", "mps0", "tpu", "cpu:0", "cuda0"])
def test_bad_device_names(name):
    with pytest.raises(InvalidInputError, match="auto, cpu, cuda"):
        resolve_device(name)


@pytest.mark.parametrize("name", [None, 0, torch.device("cpu"), ["cpu"]])
def test_device_must_be_a_string(name):
    with pytest.raises(InvalidInputError, match="string"):
        resolve_device(name)


# --- seed_everything --------------------------------------------------------------------


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 + 7, 2**63 - 1, 2**64 - 1])
def test_seed_everything_is_reproducible(seed):
    gen = seed_everything(seed)
    first = draws(), torch.rand(2, generator=gen).tolist()
    gen = seed_everything(seed)
    second = draws(), torch.rand(2, generator=gen).tolist()
    assert first == second
    assert isinstance(gen, torch.Generator)
    assert gen.initial_seed() == seed


def test_different_seeds_differ():
    seed_everything(1)
    a = draws()
    seed_everything(2)
    b = draws()
    assert all(x != y for x, y in zip(a, b))


@pytest.mark.parametrize("seed", [-1, True, False, 1.0, "3", None, 2**64, 10**30])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(InvalidInputError, match="seed"):
        seed_everything(seed)


# --- atomic writes ----------------------------------------------------------------------


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_bytes_and_text(tmp_path):
    target = tmp_path / "out.bin"
    assert atomic_write(target, b"\x00\xff data") == target
    assert target.read_bytes() == b"\x00\xff data"
    text_target = tmp_path / "out.txt"
    atomic_write(str(text_target), "héllo ✓\n")
    assert text_target.read_bytes() == "héllo ✓\n".encode()
    assert leftovers(tmp_path) == []


def test_atomic_write_replaces_and_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write(target, "old")
    atomic_write(target, "new, and longer than before")
    assert target.read_text() == "new, and longer than before"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_atomic_write_empty(tmp_path):
    target = tmp_path / "empty"
    atomic_write(target, b"")
    assert target.read_bytes() == b""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_atomic_write_gets_ordinary_permissions(tmp_path):
    # A file written atomically must be as readable as one written with open(): the
    # temporary file must not keep mkstemp's owner-only mode.
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    target = tmp_path / "atomic"
    atomic_write(target, b"x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_atomic_path_failure_keeps_original(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("original")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp != target
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert target.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_path_failure_before_writing_creates_nothing(tmp_path):
    target = tmp_path / "never.txt"
    with pytest.raises(KeyError):
        with atomic_path(target):
            raise KeyError("x")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_when_body_removes_temp(tmp_path):
    target = tmp_path / "gone.txt"
    target.write_text("original")
    with pytest.raises(FileNotFoundError):
        with atomic_path(target) as tmp:
            tmp.unlink()
    assert target.read_text() == "original"
    assert leftovers(tmp_path) == []


def test_atomic_path_success(tmp_path):
    target = tmp_path / "ok.txt"
    with atomic_path(target) as tmp:
        assert tmp.exists()  # the temp file is reserved before the body runs
        assert tmp.name.startswith(".ok.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert leftovers(tmp_path) == []


def test_atomic_write_into_a_file_path_fails_cleanly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        atomic_write(blocker / "child.txt", "x")
    assert blocker.read_text() == "not a folder"


# --- code_version -----------------------------------------------------------------------


def test_code_version():
    version = code_version()
    assert isinstance(version, str)
    assert version.startswith(core.__version__)
    rest = version[len(core.__version__):]
    assert rest == "" or rest.startswith("+g")
    assert "\n" not in version and " " not in version


def test_code_version_without_git(monkeypatch):
    def no_git(*args, **kwargs):
        raise OSError("git not installed")

    monkeypatch.setattr("core.runtime.subprocess.run", no_git)
    assert code_version() == core.__version__


def test_runtime_never_changes_cwd(tmp_path):
    cwd = os.getcwd()
    atomic_write(tmp_path / "x", "y")
    code_version()
    assert os.getcwd() == cwd


def test_cpu_seeded_repeats_draws_and_restores_the_global_state():
    from core.runtime import cpu_seeded

    torch.manual_seed(123)
    before = torch.get_rng_state()
    with cpu_seeded(7):
        a = torch.rand(3)
    with cpu_seeded(7):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("args,message", [
    (("steps", 0), "steps must be a positive integer, got 0"),
    (("steps", 2.0), "steps must be a positive integer, got 2.0"),
    (("steps", True), "steps must be a positive integer, got True"),
    (("steps", "3"), "steps must be a positive integer, got '3'"),
    (("seed", -1, 0), "seed must be an integer >= 0, got -1"),
    (("kernel", 12, 1, 11), "kernel must be an integer in [1, 11], got 12"),
    (("kernel", None, 1, 11), "kernel must be an integer in [1, 11], got None"),
])
def test_check_int_names_the_value_and_the_range(args, message):
    from core.errors import check_int

    with pytest.raises(InvalidInputError) as info:
        check_int(*args)
    assert str(info.value) == message


def test_check_int_returns_plain_ints_and_raises_the_given_error():
    from core.errors import SpecError, check_int

    assert check_int("n", 3) == 3 and type(check_int("n", np.int64(5))) is int
    assert check_int("n", 0, 0) == 0 and check_int("n", 11, 1, 11) == 11
    with pytest.raises(SpecError):
        check_int("spec.down", 9, 0, 6, error=SpecError)


@pytest.mark.parametrize("args,kwargs,message", [
    (("kernel_mmd", float("nan")), {}, "kernel_mmd must be a finite number, got nan"),
    (("lr", "0.1"), {}, "lr must be a finite number, got '0.1'"),
    (("lr", True), {}, "lr must be a finite number, got True"),
    (("train_seconds", -1.0, 0), {}, "train_seconds must be a finite number >= 0, got -1.0"),
    (("nmi", 1.5, 0, 1), {}, "nmi must be a finite number in [0, 1], got 1.5"),
    (("ami", float("inf"), float("-inf"), 1), {}, "ami must be a finite number <= 1, got inf"),
])
def test_check_real_names_the_value_and_the_range(args, kwargs, message):
    from core.errors import check_real

    with pytest.raises(InvalidInputError) as info:
        check_real(*args, **kwargs)
    assert str(info.value) == message


def test_check_real_returns_floats_and_allows_the_slack():
    from core.errors import check_real

    assert check_real("x", 3) == 3.0 and type(check_real("x", 3)) is float
    assert check_real("nmi", 1 + 1e-12, 0, 1, slack=1e-9) == 1 + 1e-12


def test_replaced_folder_is_all_or_nothing(tmp_path):
    from core.runtime import replaced_folder

    target = tmp_path / "set"
    target.mkdir()
    (target / "old.png").write_bytes(b"old")
    (target / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with replaced_folder(target) as new:
            (new / "new.png").write_bytes(b"new")
            raise RuntimeError("failed half-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # nothing left beside
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt", "old.png"]
    (tmp_path / ".set.abc.new").mkdir()  # left by a process killed mid-way
    with replaced_folder(target, carry=lambda name: not name.endswith(".png")) as new:
        (new / "new.png").write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    assert sorted(p.name for p in target.iterdir()) == ["new.png", "notes.txt"]
    assert stat.S_IMODE(target.stat().st_mode) & 0o055  # not mkdtemp's private 0o700
