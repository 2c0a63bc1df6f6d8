"""Hostile cases of what fpx reads back: extractor folders, checkpoints and resumes,
artifact sets, CIFAR-10 batches and archives (filed in casebook.CASES)."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from tests.hostile import tamper
from tests.hostile.casebook import CASES, CPU, case, cases

# --- extractor folders ------------------------------------------------------------------


def _ext_case(command, **changes):
    def build(w, o, c):
        folder = tamper.extractor(w.extractor, o.parent / "ext", **changes)
        base = {"embed": ["embed", w.gen, "--out", o / "e.npz"],
                "verify": ["verify", w.gen],
                "artifacts": ["artifacts", "--real", w.real, "--generated", w.gen,
                              "--space", "learned", "--out", o]}[command]
        return [*base, "--extractor", folder, *CPU]
    return build


def _config(key, value):
    def change(record):
        record["config"][key] = value
    return change


def _first_float(tensors) -> str:
    return next(k for k, v in tensors.items() if v.is_floating_point())


def _nan_weights(tensors):
    name = _first_float(tensors)
    tensors[name] = torch.full_like(tensors[name], float("nan"))


def _drop_weight(tensors):
    tensors.pop(next(iter(tensors)))


def _reshape_weight(tensors):
    tensors[_first_float(tensors)] = torch.zeros(3)


def _double_weight(tensors):
    name = _first_float(tensors)
    tensors[name] = tensors[name].double()


EXTRACTOR_DAMAGE = {
    "width-huge": dict(record=_config("width", 10**6)),
    "width-negative": dict(record=_config("width", -4)),
    "width-text": dict(record=_config("width", "wide")),
    "crop-huge": dict(record=_config("crop_size", 10**7)),
    "unknown-field": dict(record=_config("depth", 3)),
    "no-config": dict(record=lambda r: r.pop("config")),
    "wrong-format": dict(record=lambda r: r.update(format="other/1")),
    "json-binary": dict(json_text="\x00\x01garbage"),
    "json-nested": dict(json_text="[" * 100000 + "]" * 100000),
    "json-list": dict(json_text="[1]"),
    "weights-garbage": dict(weights_bytes=b"\x00" * 64),
    "weights-empty": dict(weights_bytes=b""),
    "weights-header-huge": dict(weights_bytes=(2**62).to_bytes(8, "little") + b"{}"),
    "weights-nan": dict(weights=_nan_weights),
    "weights-missing-key": dict(weights=_drop_weight),
    "weights-wrong-shape": dict(weights=_reshape_weight),
    "weights-float64": dict(weights=_double_weight),
}

for _damage, _changes in EXTRACTOR_DAMAGE.items():
    for _cmd in ("embed", "verify"):
        CASES.append((f"extractor-{_cmd}-{_damage}", _ext_case(_cmd, **_changes)))
for _damage in ("width-huge", "weights-nan", "weights-missing-key"):
    CASES.append((f"extractor-artifacts-{_damage}",
                  _ext_case("artifacts", **EXTRACTOR_DAMAGE[_damage])))


def _ext_folder(where):
    return lambda w, o, c: ["embed", w.gen, "--out", o / "e.npz", "--extractor", where(w, o),
                            *CPU]


def _json_is_a_dir(w, o):
    folder = o.parent / "ext"
    shutil.copytree(w.extractor, folder)
    (folder / "extractor.json").unlink()
    (folder / "extractor.json").mkdir()
    return folder


def _weights_missing(w, o):
    folder = o.parent / "ext"
    shutil.copytree(w.extractor, folder)
    (folder / "extractor.safetensors").unlink()
    return folder


cases("extractor", {
    "missing": _ext_folder(lambda w, o: w.bad / "nope"),
    "a-file": _ext_folder(lambda w, o: w.bad / "file.txt"),
    "empty": _ext_folder(lambda w, o: w.bad / "empty"),
    "json-is-a-folder": _ext_folder(_json_is_a_dir),
    "weights-missing": _ext_folder(_weights_missing),
})

# --- checkpoints and resume -------------------------------------------------------------


def _planted(name):
    def build(w, o, c):
        o.mkdir(parents=True)
        shutil.copy(w.bad / name, o / "checkpoint.pt")
        return ["train", "--resume", "--steps", 3, "--out", o, *CPU]
    return build


def _zoo_planted(name):
    def build(w, o, c):
        (o / "gan_tconv").mkdir(parents=True)
        shutil.copy(w.bad / name, o / "gan_tconv" / "checkpoint.pt")
        return ["zoo", "train", "gan_tconv", "--steps", 2, "--batch", 4, "--resume",
                "--out", o, *CPU]
    return build


def _zoo_sample_planted(name):
    def build(w, o, c):
        runs = o.parent / "runs"
        _zoo_planted(name)(w, runs, c)
        return ["zoo", "sample", "gan_tconv", "--runs", runs, "--out", o, *CPU]
    return build


for _name in ("random.pt", "empty.pt", "foreign.pt", "list.pt"):
    CASES.append((f"resume-train-{_name}", _planted(_name)))
    CASES.append((f"resume-zoo-{_name}", _zoo_planted(_name)))
    CASES.append((f"zoo-sample-{_name}", _zoo_sample_planted(_name)))


def _resume_train(change):
    def build(w, o, c):
        tamper.checkpoint(w.extractor_run(c), o, change)
        return ["train", "--resume", "--steps", 3, "--out", o, *CPU]
    return build


def _resume_zoo(change, command="train"):
    def build(w, o, c):
        tamper.checkpoint(w.zoo_run(c) / "gan_tconv", o / "gan_tconv", change)
        if command == "sample":
            return ["zoo", "sample", "gan_tconv", "--runs", o, "--out", o / "samples", *CPU]
        return ["zoo", "train", "gan_tconv", "--steps", 2, "--batch", 4, "--resume",
                "--out", o, *CPU]
    return build


def _sampler_bad(record):
    record["sampler"] = [torch.zeros(3, dtype=torch.uint8)]


def _zoo_sampler_bad(record):
    record["sampler"] = torch.zeros(3, dtype=torch.uint8)


def _entry(key, value):
    def change(record):
        record["entry"][key] = value
    return change


def _settings(key, value):
    def change(record):
        record["settings"][key] = value
    return change


TRAIN_DAMAGE = {
    "no-config": tamper.drop("config"),
    "no-model": tamper.drop("model"),
    "no-sampler": tamper.drop("sampler"),
    "no-step": tamper.drop("step"),
    "no-optimizer": tamper.drop("optimizer"),
    "step-negative": tamper.put("step", -1),
    "step-huge": tamper.put("step", 10**9),
    "step-text": tamper.put("step", "three"),
    "step-float": tamper.put("step", 2.5),
    "config-not-json": tamper.put("config", "{not json"),
    "config-list": tamper.put("config", "[1, 2]"),
    "world-size-2": tamper.put("world_size", 2),
    "sampler-bad": _sampler_bad,
    "weight-shape": tamper.first_weight(shape=(2, 2)),
    "weight-nan": tamper.first_weight(scale=float("nan")),
    "optimizer-bad": tamper.put("optimizer", {"state": {}, "param_groups": []}),
}
for _damage, _change in TRAIN_DAMAGE.items():
    CASES.append((f"resume-train-{_damage}", _resume_train(_change)))

ZOO_DAMAGE = {
    "no-model": tamper.drop("model"),
    "no-sampler": tamper.drop("sampler"),
    "no-step": tamper.drop("step"),
    "no-optimizers": tamper.drop("optimizers"),
    "no-rng": tamper.drop("torch_rng"),
    "step-negative": tamper.put("step", -1),
    "step-huge": tamper.put("step", 10**9),
    "step-text": tamper.put("step", "two"),
    "sampler-bad": _zoo_sampler_bad,
    "rng-bad": tamper.put("torch_rng", torch.zeros(5, dtype=torch.uint8)),
    "weight-shape": tamper.first_weight(shape=(2, 2)),
    "weight-nan": tamper.first_weight(scale=float("nan")),
    "optimizers-bad": tamper.put("optimizers", {"g": {"state": {}, "param_groups": []}}),
}
for _damage, _change in ZOO_DAMAGE.items():
    CASES.append((f"resume-zoo-{_damage}", _resume_zoo(_change)))

ZOO_SAMPLE_DAMAGE = {
    "no-model": tamper.drop("model"),
    "no-entry": tamper.drop("entry"),
    "no-settings": tamper.drop("settings"),
    "entry-width-huge": _entry("width", 10**6),
    "entry-latent-huge": _entry("latent", 10**8),
    "entry-family-bad": _entry("family", "transformer"),
    "entry-list": tamper.put("entry", [1, 2]),
    "settings-size-huge": _settings("size", 10**5),
    "settings-bad-key": _settings("colour", "red"),
    "weight-shape": tamper.first_weight(shape=(2, 2)),
    "weight-nan": tamper.first_weight(scale=float("nan")),
    "step-negative": tamper.put("step", -1),
}
for _damage, _change in ZOO_SAMPLE_DAMAGE.items():
    CASES.append((f"zoo-sample-{_damage}", _resume_zoo(_change, "sample")))


def _bank_damage(change):
    def build(w, o, c):
        shutil.copytree(w.extractor_run(c), o)
        change(o / "bank")
        return ["train", "--resume", "--steps", 3, "--out", o, *CPU]
    return build


cases("resume-train-bank", {
    "json-garbage": _bank_damage(lambda b: (b / "bank.json").write_text("{oops")),
    "json-list": _bank_damage(lambda b: (b / "bank.json").write_text("[1]")),
    "weights-garbage": _bank_damage(lambda b: (b / "bank.safetensors").write_bytes(b"xx")),
    "weights-missing": _bank_damage(lambda b: (b / "bank.safetensors").unlink()),
})


@case("resume-train-nothing-to-resume")
def _nothing(w, o, c):
    return ["train", "--resume", "--steps", 3, "--out", o, *CPU]


@case("resume-train-other-preset-steps")
def _other_steps(w, o, c):
    shutil.copytree(w.extractor_run(c), o)
    return ["train", "--resume", "--steps", 5, "--out", o, *CPU]


@case("resume-zoo-other-steps")
def _zoo_other(w, o, c):
    shutil.copytree(w.zoo_run(c), o)
    return ["zoo", "train", "gan_tconv", "--steps", 9, "--batch", 4, "--resume", "--out", o,
            *CPU]


@case("zoo-train-fresh-over-a-checkpoint")
def _zoo_fresh(w, o, c):
    shutil.copytree(w.zoo_run(c), o)
    return ["zoo", "train", "gan_tconv", "--steps", 2, "--batch", 4, "--out", o, *CPU]


@case("zoo-sample-not-trained")
def _not_trained(w, o, c):
    return ["zoo", "sample", "vae_tconv", "--runs", w.zoo_run(c), "--out", o, *CPU]


@case("zoo-ship-untrained-entries")
def _ship(w, o, c):
    return ["zoo", "ship", "--runs", w.zoo_run(c), "-n", 2, "--out", o, *CPU]


@case("zoo-train-data-cifar-missing")
def _cifar_missing(w, o, c):
    return ["zoo", "train", "gan_tconv", "--data", f"cifar10:{w.bad / 'nope'}", "--steps", 1,
            "--out", o, *CPU]


@case("zoo-train-data-cifar-no-path")
def _cifar_no_path(w, o, c):
    return ["zoo", "train", "gan_tconv", "--data", "cifar10:", "--steps", 1, "--out", o, *CPU]


@case("zoo-train-data-cifar-random")
def _cifar_random(w, o, c):
    return ["zoo", "train", "gan_tconv", "--data", f"cifar10:{w.bad / 'random.npz'}",
            "--steps", 1, "--out", o, *CPU]


# --- artifact sets (attribute, structure) -----------------------------------------------


def _art_case(command, change=None, path=None):
    def build(w, o, c):
        if path is not None:
            target = path(w)
        else:
            target = tamper.artifact_set(w.artifacts(c), o.parent / "set", change)
        if command == "attribute":
            return ["attribute", target, "--epochs", 1, "--seeds", "0", *CPU]
        return ["structure", target]
    return build


def _art_put(key, value):
    def change(arrays):
        arrays[key] = value(arrays) if callable(value) else value
    return change


def _art_nan(arrays):
    arrays["artifacts"] = arrays["artifacts"].copy()
    arrays["artifacts"][0, 0] = np.nan


ARTIFACT_DAMAGE = {
    "missing": dict(path=lambda w: w.bad / "nope.npz"),
    "empty-file": dict(path=lambda w: w.bad / "empty.npz"),
    "random-file": dict(path=lambda w: w.bad / "random.npz"),
    "bare-array": dict(path=lambda w: w.bad / "bare.npz"),
    "empty-folder": dict(path=lambda w: w.bad / "empty"),
    "embeddings-file": dict(path=lambda w: w.bad / "mismatch.npz"),
    "claims-huge": dict(path=lambda w: w.bad / "claims_huge.npz"),
    "nan-artifacts": dict(change=_art_nan),
    "labels-short": dict(change=_art_put("labels", lambda a: a["labels"][:3])),
    "no-labels": dict(change=lambda a: a.pop("labels")),
    "meta-not-json": dict(change=_art_put("meta", np.array("{oops"))),
    "meta-list": dict(change=_art_put("meta", np.array("[1]"))),
    "space-unknown": dict(change=_art_put("space", np.array("astral"))),
    "images-wrong-shape": dict(change=_art_put("images", np.zeros((2, 2), np.uint8))),
    "artifacts-1d": dict(change=_art_put("artifacts", lambda a: a["artifacts"].ravel())),
}
for _damage, _kw in ARTIFACT_DAMAGE.items():
    for _cmd in ("attribute", "structure"):
        CASES.append((f"{_cmd}-{_damage}", _art_case(_cmd, **_kw)))


@case("structure-no-designs")
def _no_designs(w, o, c):
    return ["structure", w.artifacts(c)]


# --- CIFAR archives and batches ---------------------------------------------------------


def _cifar_dir(make):
    def build(w, o, c):
        root = o.parent / "cifar" / "cifar-10-batches-py"
        root.mkdir(parents=True)
        make(root)
        return ["zoo", "train", "gan_tconv", "--data", f"cifar10:{root.parent}", "--steps", 1,
                "--batch", 4, "--out", o, *CPU]
    return build


def _pickle_batches(payload):
    import pickle

    def make(root):
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (root / name).write_bytes(pickle.dumps(payload, protocol=2))
    return make


class _HugeArray:
    """Pickles as NumPy's array reconstruction with the state of a 2**40-byte array
    that carries 3072 bytes: what a batch would send to make the reader allocate 1 TiB."""

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(1, np.uint8))[0], (np.ndarray, (0,), b"b"),
                (1, (2**40,), np.dtype(np.uint8), False, b"\0" * 3072))


def _huge_array_pickle(root):
    _pickle_batches({b"data": _HugeArray(), b"labels": [0]})(root)


cases("cifar", {
    "not-a-dict": _cifar_dir(_pickle_batches([1, 2, 3])),
    "wrong-shape": _cifar_dir(_pickle_batches({b"data": np.zeros((2, 5), np.uint8),
                                               b"labels": [0, 1]})),
    "labels-out-of-range": _cifar_dir(_pickle_batches({b"data": np.zeros((2, 3072), np.uint8),
                                                       b"labels": [0, 99]})),
    "huge-array": _cifar_dir(_huge_array_pickle),
    "truncated": _cifar_dir(lambda root: [(root / n).write_bytes(b"\x80\x02}q")
                                          for n in ["test_batch"] + [f"data_batch_{i}"
                                                                     for i in range(1, 6)]]),
})


@case("cifar-binary-ragged")
def _cifar_bin(w, o, c):
    root = o.parent / "cifar" / "cifar-10-batches-bin"
    root.mkdir(parents=True)
    for name in ["test_batch.bin"] + [f"data_batch_{i}.bin" for i in range(1, 6)]:
        (root / name).write_bytes(b"\x00" * 3000)
    return ["zoo", "train", "gan_tconv", "--data", f"cifar10:{root.parent}", "--steps", 1,
            "--out", o, *CPU]


@case("cifar-tar-inflates")
def _cifar_tar(w, o, c):
    """A batch member of 60 MB of zeros (a few hundred KB compressed): past any real
    batch, refused on its header before it is read."""
    import io
    import tarfile

    root = o.parent / "cifar"
    root.mkdir(parents=True)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz", compresslevel=1) as tar:
        for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            data = b"\x80\x02" + b"\x00" * (60 * 2**20 if name == "data_batch_1" else 10)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return ["zoo", "train", "gan_tconv", "--data", f"cifar10:{root}", "--steps", 1,
            "--out", o, *CPU]
