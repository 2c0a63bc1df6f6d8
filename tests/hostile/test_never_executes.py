"""Nothing a user hands fpx is ever executed: a pickle planted as a checkpoint, an
``.npz`` holding an object array, a CIFAR-10 batch (or archive) whose pickle carries a
code-running ``__reduce__``; each is refused with one line, and the marker file the
payload would create stays absent."""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch

from core.errors import InvalidInputError
from tests.hostile.workspace import Marker, fpx

CPU = ("--device", "cpu")


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "EXECUTED"
    yield path
    assert not path.exists(), "a planted payload ran"


def refused(capsys, *argv) -> str:
    out = fpx(capsys, *argv)
    assert out.error is None, repr(out.error)
    errors = [line for line in out.stderr if ": error:" in line]
    assert out.status == 1 and len(errors) == 1, out
    return errors[0]


def _plant_checkpoints(tmp_path, marker) -> dict[str, bytes]:
    buf = io.BytesIO()
    torch.save({"format": "fpx.zoo_checkpoint/1", "model": Marker(marker)}, buf)
    return {"torch-zip": buf.getvalue(),
            "legacy-pickle": pickle.dumps({"format": "x", "payload": Marker(marker)}),
            "bare-pickle": pickle.dumps(Marker(marker), protocol=2)}


@pytest.mark.parametrize("kind", ["torch-zip", "legacy-pickle", "bare-pickle"])
def test_a_pickle_planted_as_a_checkpoint_never_runs(kind, tmp_path, marker, capsys, ws):
    data = _plant_checkpoints(tmp_path, marker)[kind]
    runs = tmp_path / "runs"
    (runs / "gan_tconv").mkdir(parents=True)
    (runs / "gan_tconv" / "checkpoint.pt").write_bytes(data)
    (tmp_path / "xrun").mkdir()
    (tmp_path / "xrun" / "checkpoint.pt").write_bytes(data)
    lines = [
        refused(capsys, "zoo", "train", "gan_tconv", "--resume", "--steps", 2, "--out", runs,
                *CPU),
        refused(capsys, "zoo", "sample", "gan_tconv", "--runs", runs, "--out",
                tmp_path / "samples", *CPU),
        refused(capsys, "train", "--resume", "--steps", 3, "--out", tmp_path / "xrun", *CPU),
    ]
    for line in lines:
        assert "checkpoint.pt" in line and len(line) < 400, line
    from core.checkpoints import load_checkpoint

    with pytest.raises(InvalidInputError, match="not a readable fpx checkpoint"):
        load_checkpoint(runs / "gan_tconv" / "checkpoint.pt", format="fpx.zoo_checkpoint/1")


def test_an_npz_with_object_arrays_never_runs(tmp_path, marker, capsys, ws):
    payload = np.array([Marker(marker)] * 4, dtype=object)
    with open(tmp_path / "e.npz", "wb") as fh:
        np.savez(fh, embeddings=payload, paths=np.array(list("abcd")),
                 labels=np.array(list("abab")))
    line = refused(capsys, "verify", "--embeddings", tmp_path / "e.npz")
    assert "holds Python objects" in line
    shutil.copytree(ws.artifacts(capsys), tmp_path / "set")
    with np.load(tmp_path / "set" / "artifacts.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.array([Marker(marker)], dtype=object)
    with open(tmp_path / "set" / "artifacts.npz", "wb") as fh:
        np.savez(fh, **arrays)
    for command in ("attribute", "structure"):
        assert "holds Python objects" in refused(capsys, command, tmp_path / "set")


def _batches(payload) -> dict[str, bytes]:
    names = ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]
    return {name: pickle.dumps(payload, protocol=2) for name in names}


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_a_cifar_batch_with_a_code_running_reduce_never_runs(layout, tmp_path, marker,
                                                              capsys):
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1],
             b"extra": Marker(marker)}
    root = tmp_path / "cifar"
    if layout == "folder":
        (root / "cifar-10-batches-py").mkdir(parents=True)
        for name, data in _batches(batch).items():
            (root / "cifar-10-batches-py" / name).write_bytes(data)
    else:
        root.mkdir()
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, data in _batches(batch).items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    line = refused(capsys, "zoo", "train", "gan_tconv", "--data", f"cifar10:{root}",
                   "--steps", 1, "--out", tmp_path / "runs", *CPU)
    assert "refused to load 'posix.system'" in line
    from core.data import load_cifar10

    with pytest.raises(InvalidInputError, match="unsafe or corrupt pickle"):
        load_cifar10(root)
