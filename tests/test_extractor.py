"""core.extractor: training (one process and torchrun), resume, checkpoints, evaluation."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import InvalidInputError
from core.extractor import (
    DEFAULT_EXTRACTOR,
    Extractor,
    ExtractorConfig,
    batch_hard_triplet,
    load_checkpoint,
    load_extractor,
)
from core.extractor.evaluate import identify, relate, split_gallery, verify
from core.extractor.train import train

ROOT = Path(__file__).resolve().parent.parent


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    train("tiny", out, quiet=True)
    return out


def test_tiny_run_trains_checkpoints_and_exports(tiny_run):
    assert (tiny_run / "checkpoint.pt").is_file() and (tiny_run / "bank" / "bank.json").is_file()
    state = load_checkpoint(tiny_run / "checkpoint.pt")
    assert state["step"] == 6 and state["world_size"] == 1
    model = load_extractor(tiny_run / "extractor")
    e = model(torch.rand(3, 3, 32, 32) * 2 - 1)
    assert e.shape == (3, 16) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    made_by = json.loads((tiny_run / "extractor" / "extractor.json").read_text())["made_by"]
    assert made_by["command"].startswith("fpx train --preset tiny")


def test_loss_falls(tmp_path):
    out = tmp_path / "run"
    train("tiny", out, steps=30, quiet=True)
    values = losses(out)
    assert np.mean(values[-5:]) < np.mean(values[:5])


def test_interrupted_run_resumes_to_the_same_step_and_weights(tmp_path):
    train("tiny", tmp_path / "whole", steps=9, quiet=True)
    # Interrupted after step 5: the checkpoint of step 3 survives, steps 4-5 are lost.
    train("tiny", tmp_path / "cut", steps=9, stop_after=5, quiet=True)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 3
    train("tiny", tmp_path / "cut", steps=9, resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert a["step"] == b["step"] == 9
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][k]["exp_avg"],
                           b["optimizer"]["state"][k]["exp_avg"])


def test_resume_and_restart_are_guarded(tmp_path, tiny_run):
    with pytest.raises(InvalidInputError, match="pass --resume"):
        train("tiny", tiny_run, quiet=True)
    with pytest.raises(InvalidInputError, match="no such checkpoint"):
        train("tiny", tmp_path / "fresh", resume=True, quiet=True)
    with pytest.raises(InvalidInputError, match="another config"):
        train("tiny", tiny_run, resume=True, steps=50, quiet=True)
    with pytest.raises(InvalidInputError, match="unknown preset"):
        train("huge", tmp_path / "x", quiet=True)


@pytest.mark.slow
def test_two_process_torchrun_run(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--standalone", "-m", "core.extractor.train", "--preset", "tiny",
         "--steps", "12", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.pt")) == ["checkpoint.pt"]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["world_size"] == 2 and state["step"] == 12 and len(state["sampler"]) == 2
    values = losses(out)
    assert len(values) == 12  # rank 0 alone logs
    assert np.mean(values[-4:]) < np.mean(values[:4])


class _Trojan:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_or_corrupt_checkpoints_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(512))
    with pytest.raises(InvalidInputError, match="not a readable fpx checkpoint"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(InvalidInputError, match="format tag"):
        load_checkpoint(foreign)
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"format": "fpx.extractor_checkpoint/1", "x": _Trojan(marker)}, fh)
    with pytest.raises(InvalidInputError):
        load_checkpoint(evil)
    assert not marker.exists()  # never unpickled blindly


def test_foreign_extractor_folders_are_refused(tmp_path, tiny_run):
    with pytest.raises(InvalidInputError, match="no extractor.json"):
        load_extractor(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "extractor.json").write_text(
        (tiny_run / "extractor" / "extractor.json").read_text())
    (bad / "extractor.safetensors").write_bytes(b"nope")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        load_extractor(bad)


def test_batch_hard_triplet_known_values():
    e = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert float(batch_hard_triplet(e, labels, margin=0.3)) == 0.0  # d+ 0, d- sqrt 2
    swapped = torch.tensor([0, 1, 0, 1])
    # d+ = sqrt 2, d- = 0: loss sqrt 2 + 0.3 for every anchor.
    assert float(batch_hard_triplet(e, swapped, 0.3)) == pytest.approx(2**0.5 + 0.3)
    assert float(batch_hard_triplet(e, torch.arange(4))) == 0.0  # no positives


def planted(n_models=5, per=20, dim=8, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(n_models, dim, generator=g), dim=1)
    e = centres.repeat_interleave(per, 0) + noise * torch.randn(n_models * per, dim, generator=g)
    labels = [f"m{i}" for i in range(n_models) for _ in range(per)]
    return torch.nn.functional.normalize(e, dim=1).numpy(), labels


def test_verify_and_identify_on_separable_embeddings():
    e, labels = planted()
    v = verify(e, labels, pairs=2000)
    assert v["auc"] > 0.99 and v["best_threshold_accuracy"] > 0.97
    gallery = [i % 20 < 10 for i in range(len(labels))]
    g = np.asarray(gallery)
    r = identify(e[g], [lab for lab, k in zip(labels, g) if k], e[~g],
                 [lab for lab, k in zip(labels, g) if not k], shots=5)
    assert r["accuracy"] == 1.0 and r["macro_f1"] == 1.0 and "open_set_auroc" not in r


def test_identify_open_set_and_chance_level():
    e, labels = planted(n_models=6)
    known = np.asarray([lab not in ("m4", "m5") for lab in labels])
    r = identify(e[known], [lab for lab, k in zip(labels, known) if k], e, labels, shots=10)
    assert r["open_set_auroc"] > 0.95 and r["unknown_models"] == ["m4", "m5"]
    noise = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    lab = [f"m{i % 4}" for i in range(200)]
    assert 0.35 < verify(noise, lab, pairs=4000)["auc"] < 0.65  # no signal: chance


def test_split_gallery_takes_the_first_shots_of_each_model():
    e = np.arange(14, dtype=np.float32).reshape(7, 2)
    labels = ["a", "b", "a", "a", "b", "c", "a"]
    g_e, g_l, q_e, q_l = split_gallery(e, labels, 2)
    assert g_l == ["a", "b", "a", "b", "c"] and q_l == ["a", "a"]
    assert np.array_equal(g_e, e[[0, 1, 2, 4, 5]]) and np.array_equal(q_e, e[[3, 6]])
    g_e, g_l, q_e, q_l = split_gallery(e, labels, 10)  # every image in the gallery
    assert g_l == labels and q_l == [] and q_e.shape == (0, 2)
    with pytest.raises(InvalidInputError, match="shots must be a positive integer"):
        split_gallery(e, labels, 0)
    with pytest.raises(InvalidInputError, match="6 labels for 7 embeddings"):
        split_gallery(e, labels[:6], 2)


def test_evaluation_errors_are_clear():
    e, labels = planted(n_models=1)
    with pytest.raises(InvalidInputError, match="at least 2 models"):
        identify(e, labels, e, labels)
    with pytest.raises(InvalidInputError, match="at least 2 models"):
        verify(e, labels)
    with pytest.raises(InvalidInputError, match="query images"):
        identify(*planted(), np.zeros((0, 8), np.float32), [])


def test_relate_correlates_with_design_distance():
    from core.specs import BlockSpec, GeneratorSpec

    specs = {f"m{i}": GeneratorSpec(up=(BlockSpec(u, 2, norm=n),), down=1)
             for i, (u, n) in enumerate([("nearest", "none"), ("nearest", "batch"),
                                         ("bilinear", "batch"), ("transposed", "instance")])}
    base = np.eye(4, dtype=np.float32)
    # Embeddings placed so that distance grows with design distance.
    e = np.stack([base[0], 0.9 * base[0] + 0.1 * base[1], 0.6 * base[0] + 0.4 * base[2],
                  base[3]])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    r = relate(np.repeat(e, 3, 0), [f"m{i}" for i in range(4) for _ in range(3)], specs)
    assert np.allclose(np.diag(r["similarity"]), 1, atol=1e-4)
    assert r["spearman_embedding_vs_spec_distance"] > 0.5


def test_extractor_config_validation():
    with pytest.raises(InvalidInputError, match="input_kind"):
        ExtractorConfig(input_kind="wavelet")
    raw = Extractor(ExtractorConfig(width=4, embed_dim=8, input_kind="raw"))
    assert raw(torch.zeros(2, 3, 16, 16)).shape == (2, 8)


def test_default_extractor_manifest_command_really_trains(tmp_path):
    manifest = DEFAULT_EXTRACTOR / "extractor.json"
    if not manifest.exists():
        pytest.skip("no default extractor shipped in this checkout")
    made_by = json.loads(manifest.read_text())["made_by"]
    words = made_by["command"].split()
    assert words[:2] == ["fpx", "train"]
    words[words.index("--preset") + 1] = "tiny"  # the same command, on the tiny preset
    words[words.index("--out") + 1] = str(tmp_path / "run")
    dropped = ("--steps", "--init")  # the tiny preset's own length; INIT is a placeholder
    words = [w for i, w in enumerate(words) if w not in dropped and
             (i == 0 or words[i - 1] not in dropped)]
    from core.cli import main

    assert main(words[1:]) == 0
    assert load_extractor(tmp_path / "run" / "extractor").config.crop_size == 32
    assert load_extractor(DEFAULT_EXTRACTOR).config.crop_size == made_by.get("crop_size", 64)


def test_shipped_assets_match_their_manifest():
    import hashlib

    manifest = json.loads((ROOT / "core" / "assets" / "manifest.json").read_text())
    entry = manifest["extractor"]
    assert entry["command"].startswith("fpx train --preset gpu")
    for name, digest in entry["files"].items():
        data = (ROOT / "core" / "assets" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    model = load_extractor(DEFAULT_EXTRACTOR)
    assert sum(p.numel() for p in model.parameters()) * 4 < 12 * 2**20  # about 11 MB


def test_shipped_hybrid_metric_matches_its_manifest_and_the_shipped_extractor():
    import hashlib

    from core.extractor.hybrid import GRID
    from core.extractor.metric import find_metric

    entry = json.loads((ROOT / "core" / "assets" / "manifest.json").read_text())[
        "hybrid_metric"]
    assert entry["command"].startswith("fpx metric fit --extractor core/assets/extractor")
    for name, digest in entry["files"].items():
        data = (ROOT / "core" / "assets" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    metric = find_metric(DEFAULT_EXTRACTOR)  # refuses a metric of another extractor
    assert metric is not None and metric.made_by["command"] == entry["command"]
    dim = load_extractor(DEFAULT_EXTRACTOR).config.embed_dim
    assert metric.in_dims == dim + 3 * GRID * GRID and metric.whitening.dims <= 100
