"""core.data.cifar: the four official CIFAR-10 forms agree, and pickles cannot run code.

The fake releases are laid out like the official ones, with a few records per batch:

* binary: ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``, records
  of one label byte then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major);
* python: ``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch``, protocol-2
  pickles written as Python 2's cPickle wrote them (byte strings as ``str`` opcodes, the
  array rebuilt by ``numpy.core.multiarray._reconstruct``) of dicts with byte-string keys;
* ``cifar-10-binary.tar.gz`` and ``cifar-10-python.tar.gz`` holding those folders.
"""

import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from core.data.cifar import CIFAR10_CLASSES, load_cifar10, restricted_unpickle
from core.errors import InvalidInputError

TRAIN_RECORDS = 3  # per data batch, 5 batches
TEST_RECORDS = 4
FORMS = ["bin-folder", "bin-inner-folder", "py-folder", "py-inner-folder", "bin-archive",
         "bin-archive-file", "py-archive", "py-archive-file"]


class Py2Pickler(pickle._Pickler):
    """Pickles ``bytes`` and ``str`` as Python 2 ``str`` (SHORT_BINSTRING / BINSTRING), as
    cPickle did for the official files; Python 3 would call ``_codecs.encode`` instead."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        head = (pickle.SHORT_BINSTRING + bytes([n]) if n < 256
                else pickle.BINSTRING + struct.pack("<i", n))
        self.write(head + obj)
        self.memoize(obj)

    def save_text(self, obj):
        self.save_py2_str(obj.encode("latin1"))

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_text


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # NumPy 2 names its private module; the official files name the public one.
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def fake_split(rng, n_batches: int, per_batch: int):
    """Per batch: ``(pixels (N, 3072) uint8, labels (N,) int64)``."""
    return [(rng.integers(0, 256, (per_batch, 3072), np.uint8),
             rng.integers(0, 10, per_batch).astype(np.int64)) for _ in range(n_batches)]


def bin_bytes(pixels: np.ndarray, labels: np.ndarray) -> bytes:
    return np.concatenate([labels.astype(np.uint8)[:, None], pixels], axis=1).tobytes()


def py_bytes(pixels: np.ndarray, labels: np.ndarray, name: str = "batch") -> bytes:
    return py2_pickle({
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": pixels,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    })


def write_release(folder, train, test, kind: str) -> None:
    folder.mkdir(parents=True)
    suffix = ".bin" if kind == "bin" else ""
    encode = bin_bytes if kind == "bin" else py_bytes
    for i, (pixels, labels) in enumerate(train, 1):
        (folder / f"data_batch_{i}{suffix}").write_bytes(encode(pixels, labels))
    (folder / f"test_batch{suffix}").write_bytes(encode(*test[0]))
    if kind == "bin":
        (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
    else:
        (folder / "batches.meta").write_bytes(py2_pickle(
            {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}))


def tar_folder(folder, archive) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """The four forms under separate roots, plus the expected arrays per split."""
    rng = np.random.default_rng(0)
    train = fake_split(rng, 5, TRAIN_RECORDS)
    test = fake_split(rng, 1, TEST_RECORDS)
    train[0][0][0, 1] = 200  # record 0, red channel, row 0, column 1
    train[0][0][0, 1024 + 32] = 77  # record 0, green channel, row 1, column 0
    train[0][1][0] = 9
    base = tmp_path_factory.mktemp("cifar")
    roots = {}
    for kind, name, archive in (("bin", "cifar-10-batches-bin", "cifar-10-binary.tar.gz"),
                                ("py", "cifar-10-batches-py", "cifar-10-python.tar.gz")):
        write_release(base / f"{kind}-folder" / name, train, test, kind)
        roots[f"{kind}-folder"] = base / f"{kind}-folder"
        roots[f"{kind}-inner-folder"] = base / f"{kind}-folder" / name
        (base / f"{kind}-archive").mkdir()
        tar_folder(base / f"{kind}-folder" / name, base / f"{kind}-archive" / archive)
        roots[f"{kind}-archive"] = base / f"{kind}-archive"
        roots[f"{kind}-archive-file"] = base / f"{kind}-archive" / archive
    expected = {
        split: (np.concatenate([p for p, _ in parts]).reshape(-1, 3, 32, 32),
                np.concatenate([lab for _, lab in parts]))
        for split, parts in (("train", train), ("test", test))
    }
    return {"roots": roots, "expected": expected, "train": train, "test": test}


# --- the four forms agree ------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("form", FORMS)
def test_every_form_gives_the_same_images_and_labels(cifar, form, split):
    images, labels = load_cifar10(cifar["roots"][form], split)
    want_images, want_labels = cifar["expected"][split]
    n = 5 * TRAIN_RECORDS if split == "train" else TEST_RECORDS
    assert images.shape == (n, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert torch.equal(images, torch.from_numpy(want_images))
    assert torch.equal(labels, torch.from_numpy(want_labels))


def test_pixel_layout_is_channel_then_row_then_column(cifar):
    images, labels = load_cifar10(cifar["roots"]["bin-folder"])
    assert int(images[0, 0, 0, 1]) == 200
    assert int(images[0, 1, 1, 0]) == 77
    assert int(labels[0]) == 9


def test_default_split_is_train(cifar):
    images, _ = load_cifar10(cifar["roots"]["py-folder"])
    assert len(images) == 5 * TRAIN_RECORDS


def test_returned_images_are_writable_copies(cifar):
    images, _ = load_cifar10(cifar["roots"]["bin-folder"], "test")
    images[0, 0, 0, 0] = 0  # would fail (or warn) on a read-only buffer
    again, _ = load_cifar10(cifar["roots"]["bin-folder"], "test")
    assert torch.equal(again[1:], images[1:])


def test_class_names():
    assert len(CIFAR10_CLASSES) == 10
    assert CIFAR10_CLASSES[0] == "airplane" and CIFAR10_CLASSES[9] == "truck"


# --- pickles cannot run code -------------------------------------------------------------

class OpenFile:
    """Unpickling calls ``open(marker, 'w')``: creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class Exec:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


class System:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


TROJANS = {"open": (OpenFile, r"\.open'"), "exec": (Exec, r"\.exec'"),
           "system": (System, r"\.system'")}


def trojan_batch(payload) -> dict:
    return {b"data": payload, b"labels": [0]}


@pytest.mark.parametrize("name", ["open", "exec"])
def test_the_trojans_do_run_under_plain_pickle(tmp_path, name):
    # Guard for the test below: the payloads really act when unpickled naively.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(trojan_batch(TROJANS[name][0](marker)), protocol=4))
    assert marker.exists()


@pytest.mark.parametrize("writer", [py2_pickle, lambda obj: pickle.dumps(obj, protocol=4)],
                         ids=["py2-protocol-2", "protocol-4"])
@pytest.mark.parametrize("name", list(TROJANS))
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, name, writer):
    cls, refused = TROJANS[name]
    marker = tmp_path / "ran"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(writer(trojan_batch(cls(marker))))
    with pytest.raises(InvalidInputError, match=f"test_batch: unsafe or corrupt pickle: "
                                                f"refused to load '\\w+{refused}") as err:
        load_cifar10(tmp_path, "test")
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_malicious_pickle_inside_an_archive_is_refused(tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "src" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "test_batch").write_bytes(py2_pickle(trojan_batch(OpenFile(marker))))
    tar_folder(folder, tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(InvalidInputError, match="refused to load"):
        load_cifar10(tmp_path / "cifar-10-python.tar.gz", "test")
    assert not marker.exists()


def test_restricted_unpickle_keeps_plain_containers_and_arrays():
    value = {"k": [1, 2.5, "s", b"b", None, True, (3, 4)], "arr": np.arange(3, dtype=np.int64)}
    out = restricted_unpickle(pickle.dumps(value, protocol=4))
    assert out["k"] == value["k"]
    assert out["arr"].dtype == np.int64 and np.array_equal(out["arr"], np.arange(3))
    # Python 2 strings come back as bytes, as with pickle.load(..., encoding="bytes").
    old = restricted_unpickle(py2_pickle(value))
    assert old[b"k"][2:4] == [b"s", b"b"]
    assert np.array_equal(old[b"arr"], np.arange(3))


def test_restricted_unpickle_refuses_garbage():
    with pytest.raises(InvalidInputError, match="corrupt pickle"):
        restricted_unpickle(b"\x80\x02}q\x00(U")


# --- bad files and arguments -----------------------------------------------------------------

def copy_release(cifar, tmp_path, kind: str):
    folder = tmp_path / f"cifar-10-batches-{kind}"
    write_release(folder, cifar["train"], cifar["test"], kind)
    return folder


def test_truncated_binary_batch_is_refused(cifar, tmp_path):
    folder = copy_release(cifar, tmp_path, "bin")
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1])
    size = TRAIN_RECORDS * 3073 - 1
    with pytest.raises(InvalidInputError, match=f"data_batch_3.bin: {size} bytes is not a "
                                                "whole number of 3073-byte CIFAR-10 records"):
        load_cifar10(tmp_path, "train")


def test_empty_binary_batch_is_refused(cifar, tmp_path):
    folder = copy_release(cifar, tmp_path, "bin")
    (folder / "test_batch.bin").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="0 bytes is not a whole number"):
        load_cifar10(tmp_path, "test")


@pytest.mark.parametrize("kind", ["bin", "py"])
@pytest.mark.parametrize("label", [10, 255])
def test_label_above_9_is_refused(cifar, tmp_path, kind, label):
    folder = copy_release(cifar, tmp_path, kind)
    pixels, labels = cifar["test"][0]
    labels = labels.copy()
    labels[1] = label
    encode = bin_bytes if kind == "bin" else py_bytes
    (folder / ("test_batch.bin" if kind == "bin" else "test_batch")).write_bytes(
        encode(pixels, labels))
    with pytest.raises(InvalidInputError, match="labels outside 0..9"):
        load_cifar10(tmp_path, "test")


def test_negative_label_in_python_batch_is_refused(cifar, tmp_path):
    folder = copy_release(cifar, tmp_path, "py")
    pixels, labels = cifar["test"][0]
    (folder / "test_batch").write_bytes(py_bytes(pixels, np.r_[-1, labels[1:]]))
    with pytest.raises(InvalidInputError, match="labels outside 0..9"):
        load_cifar10(tmp_path, "test")


@pytest.mark.parametrize(("batch", "message"), [
    ([1, 2, 3], "expected a dict batch, got list"),
    ({b"data": np.zeros((2, 3072), np.int64), b"labels": [0, 1]},
     r"'data' must be a uint8 array of shape \(N, 3072\)"),
    ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, "shape"),
    ({b"data": [[0] * 3072], b"labels": [0]}, "'data' must be a uint8 array"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "0 labels for 2 images"),
])
def test_malformed_python_batch_is_refused(tmp_path, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(py2_pickle(batch))
    with pytest.raises(InvalidInputError, match=message):
        load_cifar10(tmp_path, "test")


@pytest.mark.parametrize("protocol", [2, 4])
def test_python_batch_with_str_keys_is_accepted(tmp_path, protocol):
    # A user's own re-pickle (Python 3) has str keys; at protocol 2 its bytes go through
    # _codecs.encode(str, 'latin1'), at protocol 4 through BINBYTES. Both are still data.
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    pixels = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": pixels, "labels": [3, 4]},
                                                     protocol=protocol))
    images, labels = load_cifar10(tmp_path, "test")
    assert torch.equal(images, torch.from_numpy(pixels.reshape(2, 3, 32, 32)))
    assert labels.tolist() == [3, 4]


def test_missing_batch_file_is_named(cifar, tmp_path):
    folder = copy_release(cifar, tmp_path, "bin")
    (folder / "data_batch_4.bin").unlink()
    with pytest.raises(InvalidInputError, match="data_batch_4.bin: missing CIFAR-10 batch file"):
        load_cifar10(tmp_path, "train")
    assert load_cifar10(tmp_path, "test")[0].shape[0] == TEST_RECORDS


def test_archive_lacking_a_batch_is_named(cifar, tmp_path):
    folder = copy_release(cifar, tmp_path / "src", "py")
    (folder / "data_batch_2").unlink()
    tar_folder(folder, tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(InvalidInputError, match="archive lacks data_batch_2"):
        load_cifar10(tmp_path / "cifar-10-python.tar.gz", "train")


def test_missing_root_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="nowhere: no such file or folder"):
        load_cifar10(tmp_path / "nowhere")


def test_folder_without_a_release_is_refused(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * 3073)  # no test batch: no release
    with pytest.raises(InvalidInputError, match="no CIFAR-10 release found"):
        load_cifar10(tmp_path)


def test_non_archive_file_is_refused(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"not a tar file at all")
    with pytest.raises(InvalidInputError, match="no CIFAR-10 release found"):
        load_cifar10(path)


@pytest.mark.parametrize("split", ["valid", "all", "TRAIN", ""])
def test_unknown_split_is_refused(cifar, split):
    with pytest.raises(InvalidInputError, match=f"unknown CIFAR-10 split '{split}'; "
                                                "valid: train, test"):
        load_cifar10(cifar["roots"]["bin-folder"], split)


def test_codecs_encode_is_honoured_only_for_latin1_bytes():
    # GLOBAL _codecs.encode, then call it with ('x', 'rot13'): refused.
    payload = b"c_codecs\nencode\n(X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13tR."
    with pytest.raises(InvalidInputError, match="latin1"):
        restricted_unpickle(payload)
