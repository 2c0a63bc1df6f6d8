"""core.extractor training on several output sizes with robustness augmentations: the
training view matches the size policy, augmentations keep a batch usable, and a mixed-size
run works in one process and under torchrun with 2 CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import InvalidInputError
from core.extractor import Extractor, ExtractorConfig, load_checkpoint, load_extractor
from core.extractor.augment import Augmentations, augment
from core.extractor.sizes import training_view
from core.extractor.train import PRESETS, CosineSchedule, TrainConfig, steps_in_time, train

ROOT = Path(__file__).resolve().parent.parent


def test_training_view_follows_the_size_policy():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 64, 64)
    v, size = training_view(x, 32, g)  # larger: one random tile of the crop size
    assert v.shape == (4, 3, 32, 32) and size is None
    hits = [(x[..., i:i + 32, j:j + 32] == v).all() for i in range(33) for j in range(33)]
    assert any(hits)
    v, size = training_view(x[..., :16, :16], 32, g)  # smaller: spectrum resampled to 32
    assert v.shape == (4, 3, 16, 16) and size == 32
    v, size = training_view(x[..., :32, :32], 32, g)
    assert v.shape == (4, 3, 32, 32) and size is None
    model = Extractor(ExtractorConfig(width=4, embed_dim=8, crop_size=32), num_classes=3)
    e, logits = model(x[..., :16, :16], with_logits=True, spectrum_size=32)
    assert e.shape == (4, 8) and logits.shape == (4, 3)


def test_augmentations_are_seeded_stay_in_range_and_change_the_batch():
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    every = Augmentations(p=1.0)
    a = augment(x, every, torch.Generator().manual_seed(1))
    b = augment(x, every, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.abs().max() <= 1
    assert 16 <= a.shape[-1] <= 48 and a.shape[-1] == a.shape[-2]  # resized x0.5..1.5
    assert augment(x, Augmentations(p=0.0)) is x
    small = augment(torch.zeros(2, 3, 16, 16), Augmentations(p=1.0, resize=(0.5, 0.5)))
    assert small.shape[-1] == 16  # never under min_side
    with pytest.raises(InvalidInputError, match="range"):
        Augmentations(jpeg=(90, 60))
    with pytest.raises(InvalidInputError, match="p = "):
        Augmentations(p=2)


def test_train_config_sizes_round_trip_and_validate():
    config = TrainConfig(sizes=[32, 64, 128], augment=True)
    assert config.sizes == (32, 64, 128) and config.step_sizes == (32, 64, 128)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert PRESETS["cpu"].step_sizes == (64,)
    with pytest.raises(InvalidInputError, match="training size"):
        TrainConfig(sizes=(8,))


def test_steps_in_time_and_a_schedule_whose_total_moves():
    assert steps_in_time(20, 0.5, 10.0, 1000) == 40
    assert steps_in_time(20, 0.5, -3.0, 1000) == 20  # out of time: the run ends now
    assert steps_in_time(20, 0.001, 1e6, 300) == 300  # never beyond the cap
    s = CosineSchedule(warmup=10, total=100)
    assert s(0) == pytest.approx(0.1) and s(10) == 1.0 and s(100) == 0.0
    s.total = 50  # a timed run's decision: the cosine now ends at 50
    assert s(30) == pytest.approx(0.5) and s(50) == 0.0


@pytest.mark.slow
def test_a_timed_run_sets_its_total_from_its_pace(tmp_path):
    # all the time in the world: the cap (here --steps), annealed to 0 at its end
    record = train("tiny", tmp_path / "long", steps=24, minutes=1000, quiet=True)
    assert record["step"] == 24 and record["lr"] == 0.0
    # no time left once the pace is known (the bank alone outlasts 0.6 s): the run ends
    # at the decision step, 20, and records it so that --steps 20 reproduces it
    record = train("tiny", tmp_path / "short", steps=60, minutes=0.01, quiet=True)
    assert record["step"] == 20 and not record.get("interrupted")
    config = json.loads((tmp_path / "short" / "config.json").read_text())
    assert config["steps"] == 20 and config["minutes"] == 0.01
    made = json.loads((tmp_path / "short" / "extractor" / "extractor.json").read_text())
    assert made["made_by"]["command"].endswith("--steps 20") and made["made_by"]["steps"] == 20
    assert load_checkpoint(tmp_path / "short" / "checkpoint.pt")["step"] == 20
    with pytest.raises(InvalidInputError, match="^--minutes starts a run"):
        train("tiny", tmp_path / "short", resume=True, minutes=5, quiet=True)
    with pytest.raises(InvalidInputError, match="--minutes"):
        train("tiny", tmp_path / "bad", minutes=float("nan"), quiet=True)


@pytest.mark.slow
def test_mixed_sizes_with_augmentation_train_in_one_process(tmp_path):
    record = train("tiny", tmp_path / "run", steps=6, sizes=(16, 32, 64), augment=True,
                   quiet=True)
    assert record["step"] == 6
    rows = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    assert {r["size"] for r in rows} <= {16, 32, 64} and len({r["size"] for r in rows}) > 1
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert json.loads(state["config"])["sizes"] == [16, 32, 64]
    assert load_extractor(tmp_path / "run" / "extractor").config.crop_size == 32
    with pytest.raises(InvalidInputError, match="multiples of"):
        train("tiny", tmp_path / "bad", steps=2, sizes=(18,), quiet=True)
    # the decoder preset's deepest model halves 4 times: 16 px would leave it a 1x1 map
    # (instance norm cannot train on one pixel); refused before any bank is fitted
    with pytest.raises(InvalidInputError, match=r"multiples of 16 and at least 32 \(the "
                       r"bank's deepest model halves them 4 times\)"):
        train("decoder", tmp_path / "bad", steps=2, sizes=(16, 64), quiet=True)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_mixed_size_training_under_torchrun_with_two_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--standalone", "-m", "core.extractor.train", "--preset", "tiny",
         "--steps", "8", "--sizes", "16", "32", "64", "--augment", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["world_size"] == 2 and state["step"] == 8
    config = json.loads(state["config"])
    assert config["sizes"] == [16, 32, 64] and config["augment"] is True
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and len({r["size"] for r in rows}) > 1
    assert (out / "extractor" / "extractor.json").is_file()


class _Oracle(torch.nn.Module):
    """Reads the label off the image's mean: perfect logits and embeddings."""

    def forward(self, x, with_logits=False, spectrum_size=None):
        label = x.mean(dim=(1, 2, 3)).round().long()
        e = torch.nn.functional.one_hot(label, 5).float()
        return (e, e * 10) if with_logits else e


def test_monitor_scores_a_perfect_and_a_blind_model():
    from core.extractor.monitor import HeldSets, evaluate

    labels = torch.arange(5).repeat_interleave(4)
    x = labels.float().view(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone()
    held = HeldSets(x, labels, x, [f"m{i}" for i in labels.tolist()], None, pairs=200)
    model = _Oracle()
    model.train()
    assert evaluate(model, held, chunk=7) == {"bank_accuracy": 1.0, "heldout_auc": 1.0}
    assert model.training  # mode restored
    blind = HeldSets(x, (labels + 1) % 5, torch.zeros_like(x), held.heldout_labels, None, 200)
    r = evaluate(model, blind)
    assert r["bank_accuracy"] == 0.0 and r["heldout_auc"] == 0.5  # all similarities tie


@pytest.mark.slow
def test_batch_seed_and_monitor_are_recorded_and_leave_the_weights_alone(tmp_path,
                                                                         monkeypatch):
    import dataclasses

    import core.extractor.train as T
    from core.extractor.monitor import MonitorConfig

    train("tiny", tmp_path / "on", steps=6, batch=3, seed=5, quiet=True)
    rows = [json.loads(s) for s in (tmp_path / "on" / "metrics.jsonl").read_text()
            .splitlines()]
    scored = [r for r in rows if "heldout_auc" in r]
    assert [r["step"] for r in scored] == [3, 6]  # at each checkpoint
    assert all(0 <= r["bank_accuracy"] <= 1 and 0 <= r["heldout_auc"] <= 1 for r in scored)
    assert (tmp_path / "on" / "heldout" / "bank.json").is_file()
    config = json.loads((tmp_path / "on" / "config.json").read_text())
    assert config["models_per_batch"] == 3 and config["seed"] == 5
    assert config["monitor"]["heldout_models"] == 3
    made_by = json.loads((tmp_path / "on" / "extractor" / "extractor.json").read_text())
    assert made_by["made_by"]["command"] == "fpx train --preset tiny --out DIR --batch 3 " \
                                            "--seed 5"
    assert made_by["made_by"]["seed"] == 5
    # the same run unmonitored: the very same weights (evaluating draws no random numbers
    # of the training's), and its checkpoint resumes under the monitor
    off = dataclasses.replace(PRESETS["tiny"], monitor=MonitorConfig(bank_models=0,
                                                                     heldout_models=0))
    monkeypatch.setitem(T.PRESETS, "tiny", off)
    train("tiny", tmp_path / "off", steps=6, batch=3, seed=5, stop_after=4, quiet=True)
    assert "bank_accuracy" not in (tmp_path / "off" / "metrics.jsonl").read_text()
    monkeypatch.undo()
    train("tiny", tmp_path / "off", steps=6, batch=3, seed=5, resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "on" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "off" / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # another batch or seed is another config: resuming across it is refused
    with pytest.raises(InvalidInputError, match="another config"):
        train("tiny", tmp_path / "on", steps=6, batch=4, seed=5, resume=True, quiet=True)
    with pytest.raises(InvalidInputError, match="models per batch"):
        train("tiny", tmp_path / "x", batch=1, quiet=True)


def test_init_starts_from_an_exported_extractor_and_is_recorded(tmp_path, capsys):
    from core.cli import main
    from core.extractor.checkpoint import export_extractor
    from core.parsing.data import extractor_identity

    train("tiny", tmp_path / "a", steps=6, seed=1, quiet=True)  # other initial weights
    first = tmp_path / "a" / "extractor"
    a = dict(load_extractor(first).named_parameters())  # the weights (not the BN counters)
    # one step from A's weights stays next to them; a fresh run (seed 0) does not
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "b"), "--steps", "1",
                 "--init", str(first)]) == 0
    b = dict(load_extractor(tmp_path / "b" / "extractor").named_parameters())
    train("tiny", tmp_path / "c", steps=1, quiet=True)
    c = dict(load_extractor(tmp_path / "c" / "extractor").named_parameters())
    moved = max((b[k] - a[k]).abs().max().item() for k in a)
    fresh = max((c[k] - a[k]).abs().max().item() for k in a)
    assert moved < 0.01 < fresh, (moved, fresh)
    made_by = json.loads((tmp_path / "b" / "extractor" / "extractor.json").read_text())[
        "made_by"]
    assert made_by["command"] == "fpx train --preset tiny --out DIR --steps 1 --init INIT"
    assert made_by["init"]["extractor"] == extractor_identity(first)
    assert made_by["init"]["made_by"]["steps"] == 6
    # interrupted and resumed, the run still records where its weights began
    train("tiny", tmp_path / "d", steps=6, init=first, stop_after=3, quiet=True)
    train("tiny", tmp_path / "d", steps=6, resume=True, quiet=True)
    resumed = json.loads((tmp_path / "d" / "extractor" / "extractor.json").read_text())
    assert resumed["made_by"]["init"]["extractor"] == extractor_identity(first)
    # refused in one line: another network, with --resume, not an extractor
    other = export_extractor(Extractor(ExtractorConfig(width=8, embed_dim=16, crop_size=32)),
                             tmp_path / "other", {"command": "test"})
    capsys.readouterr()
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "e"),
                 "--init", str(other)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the preset's network: width 8 (preset: 4)" in err[0], err
    with pytest.raises(InvalidInputError, match="give one of them"):
        train("tiny", tmp_path / "d", resume=True, init=first, quiet=True)
    with pytest.raises(InvalidInputError, match="no such folder"):
        train("tiny", tmp_path / "f", init=tmp_path / "missing", quiet=True)
