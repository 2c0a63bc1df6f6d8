"""The Train tab's state as plain Python: real training processes in a temporary runs
directory (``FPX_RUNS``), their metrics, checkpoints and snapshots read back."""

from __future__ import annotations

import json
import time

import pytest
import torch

from core.errors import InvalidInputError
from core.zoo import ZooEntry
from explorer import runs as R
from explorer.designs import DESIGN_PRESETS, design_entry, lab_design
from explorer.training import MetricsTail, TrainState, finished_extractors, finished_generators


def wait(state: TrainState, name: str, until, timeout: float = 240) -> R.RunInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state.refresh()
        run = state.get(name)
        if until(run):
            return run
        time.sleep(0.3)
    raise AssertionError(f"{name}: still {state.get(name).state} after {timeout} s:\n"
                         + (state.get(name).folder / R.LOG).read_text()[-2000:])


def metric_steps(run: R.RunInfo) -> list[int]:
    return [json.loads(line)["step"]
            for line in (run.train_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv(R.RUNS_ENV, str(tmp_path / "runs"))
    s = TrainState()
    yield s
    for run in s.runs:  # nothing left running after a failed test
        if run.state == "running":
            s.cancel(run.name)


def test_runs_directory_comes_from_fpx_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(R.RUNS_ENV, str(tmp_path / "elsewhere"))
    assert TrainState().root == tmp_path / "elsewhere"
    monkeypatch.delenv(R.RUNS_ENV)
    monkeypatch.chdir(tmp_path)
    assert R.runs_dir() == tmp_path / "runs"
    a, b = R.new_name("gan_tconv"), R.new_name("../etc")
    assert a.startswith("gan_tconv-") and a != R.new_name("gan_tconv")
    assert "/" not in b and "." not in b


def test_metrics_are_tailed_incrementally(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.poll() == 0
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert tail.poll() == 1 and tail.step == 1
    offset = tail.offset
    with open(path, "a") as fh:
        fh.write('ss": 1.5}\n')
    assert tail.poll() == 1 and tail.step == 2 and tail.offset > offset
    assert tail.series() == {"step": [1, 2], "loss": [2.0, 1.5]}
    path.write_text('{"step": 1, "loss": 2.0}\n')  # trimmed on resume: read again
    assert tail.poll() == 1 and tail.series()["step"] == [1]


def test_bad_input_is_a_message(state):
    for text, why in (("abc", "whole number"), ("0", "in [1,"), ("10000000", "in [1,"),
                      ("2.5", "whole number")):
        state.steps = text
        assert state.start() is None and why in state.message
    state.steps, state.batch = "2", "-3"
    assert state.start() is None and "batch size" in state.message
    state.batch, state.kind = "", "extractor"
    for field, text, why in (("seed", "x", "whole number"), ("seed", "-1", "seed"),
                             ("seed", str(2**32), "seed"), ("batch", "1", "batch size"),
                             ("batch", "4.5", "whole number")):
        setattr(state, field, text)
        assert state.start() is None and why in state.message, (field, text)
        setattr(state, field, "")
    state.kind = "design"
    state.set_design({**DESIGN_PRESETS["Lab defaults"], "factor": 4})
    assert state.start() is None and "factor 4" in state.message
    assert state.runs == [] and not state.root.exists()  # nothing written
    assert state.cancel("nothing") is False and "no run named" in state.message


def test_the_extractor_runs_under_torchrun_on_several_gpus(state, monkeypatch):
    import explorer.training as T

    state.kind, state.steps = "extractor", "8"
    plan = state.plan()
    assert plan["command_text"].startswith("fpx train --preset tiny --steps 8 --device auto")
    state.batch, state.seed = "3", "7"  # the extractor's bank models per step, its seed
    plan = state.plan()
    assert plan["command_text"].startswith("fpx train --preset tiny --steps 8 --batch 3 "
                                           "--seed 7 --device auto")
    assert plan["settings"]["images_per_step"] == 6  # 3 models x the preset's 2 images
    state.batch = state.seed = ""
    assert plan["train_dir"] == "train" and plan["argv"][:len(R.fpx_command())] == \
        R.fpx_command()
    monkeypatch.setattr(T, "_cuda_count", lambda: 2)
    plan = state.plan()
    assert plan["command_text"].startswith(
        "torchrun --nproc_per_node=2 -m core.extractor.train --preset tiny --steps 8")
    assert plan["argv"][1:4] == ["--nproc_per_node=2", "-m", "core.extractor.train"]
    state.kind = "zoo"  # generators train in one process
    assert state.plan()["command_text"].startswith("fpx zoo train gan_tconv")


def test_the_live_lab_design_is_offered_and_followed(state):
    from explorer.designs import LIVE
    from explorer.state import LabState

    assert LIVE not in state.param.design_preset.objects  # no lab in this session yet
    lab = LabState()
    lab.upsampling, lab.kernel, lab.norm, lab.activation = "transposed", 5, "instance", "gelu"
    state.set_lab(lab)
    state.kind, state.family = "design", "gan"
    assert state.design_preset == LIVE and state.param.design_preset.objects[0] == LIVE
    assert state.plan()["target"] == "lab_gan_transposed_k5_instance_gelu"
    assert json.loads(state.plan()["files"]["entry.json"])["options"] == {"kernel": 5}
    lab.upsampling = "nearest"  # followed as the lab changes
    assert state.plan()["target"] == "lab_gan_nearest_instance_gelu"
    lab.factor = 4  # a design the zoo cannot train: refused with the reason, in the page
    assert state.start() is None and "factor 4" in state.message
    lab.factor = 2
    state.design_preset = "Resize-conv (nearest)"  # a preset: the lab is not followed
    lab.upsampling = "transposed"
    assert state.plan()["target"].startswith("lab_gan_nearest")
    assert not state.root.exists()


def test_a_lab_design_becomes_a_zoo_entry():
    from explorer.state import LabState

    lab = LabState()
    lab.preset = "Checkerboard k3 s2"
    entry = design_entry(lab_design(lab), "vae")
    assert entry.name == "lab_vae_transposed_k3_none_relu"
    assert entry.options == {"kernel": 3} and entry.loss == "elbo"
    assert ZooEntry.from_dict(json.loads(entry.to_json())) == entry
    nearest = design_entry(DESIGN_PRESETS["Resize-conv (nearest)"])
    assert nearest.options == {} and nearest.upsampling == "nearest"
    with pytest.raises(InvalidInputError, match="upsampling must be one of"):
        design_entry({**DESIGN_PRESETS["Lab defaults"], "upsampling": "magic"})


@pytest.mark.slow
def test_run_cancel_resume_corrupt_checkpoint_use_delete(state):
    state.steps, state.batch, state.checkpoints = "12", "4", 6
    run = state.start()
    assert run is not None and run.state == "running", state.message
    assert R.fpx_command()[0] in run.record["args"][0]
    assert run.command_text.startswith("fpx zoo train gan_tconv ")
    assert state.start() is None and "at most" in state.message  # the limit: 1 on a CPU
    # the first checkpoint (step 2) is there: cancel, the harness checkpoints and stops
    wait(state, run.name, lambda r: 2 in state.snapshot_steps)
    assert state.cancel() and state.message == ""
    run = wait(state, run.name, lambda r: r.state != "running")
    assert run.state == "interrupted" and run.resumable, run
    assert state.cancel() is False and "interrupted, not running" in state.message
    assert state.tail.step < 12 and state.history[0]["step"] == 0
    # a corrupt checkpoint: the resumed process refuses it, the page says why, nothing lost
    good = run.checkpoint.read_bytes()
    run.checkpoint.write_bytes(good[:100])
    metrics = (run.train_dir / "metrics.jsonl").read_text()
    assert state.resume() is not None
    run = wait(state, run.name, lambda r: r.state != "running")
    assert run.state == "failed" and "checkpoint" in run.message, run
    assert (run.train_dir / "metrics.jsonl").read_text() == metrics
    run.checkpoint.write_bytes(good)
    assert state.resume() is not None, state.message
    run = wait(state, run.name, lambda r: r.state != "running")
    assert run.state == "finished", (run.folder / R.LOG).read_text()[-2000:]
    assert metric_steps(run) == list(range(1, 13))  # every step once, resumed exactly
    # every checkpoint's snapshot, and the one of the step the cancel checkpointed
    extra = set(state.snapshot_steps) - set(range(0, 13, 2))
    assert set(range(0, 13, 2)) <= set(state.snapshot_steps) and len(extra) <= 1
    state.checkpoint = 0
    assert state.snapshot.step == 0 and state.snapshot.samples.shape == (16, 3, 32, 32)
    assert state.progress()["step"] == 12 and state.progress()["state"] == "finished"
    assert state.cancel() is False and "finished, not running" in state.message
    assert state.resume() is None and "nothing to resume" in state.message
    # read back by a new state (a server restart, a browser reload)
    again = TrainState()
    assert [r.name for r in again.runs] == [run.name] and again.runs[0].state == "finished"
    assert finished_generators() == {}
    # "Use this run": its sample set is written into its folder (a worker thread), then
    # it joins the Zoo tab's entries, labelled as the user's run
    before = {p for p in state.root.rglob("*")}
    assert state.use() and state.using()
    assert state.use() is False and "being made" in state.message
    assert state.delete() is False and "being made" in state.message and run.folder.exists()
    run = wait(state, run.name, lambda r: r.record.get("used") and not state.using())
    assert "cannot use" not in state.message
    assert finished_generators() == {run.name: run.train_dir}
    assert finished_extractors() == {}
    added = {p for p in state.root.rglob("*")} - before
    assert added and all(p.is_relative_to(run.folder / "zoo") for p in added)
    from explorer.zoo import REAL, ZooState
    from explorer.zoo_runs import LABEL

    zoo = ZooState()
    label = LABEL + run.name
    assert zoo.param.entry.objects[-1] == label and label in zoo.param.reference.objects
    zoo.entry = label
    r = zoo.result
    assert r.entry == label and r.info.entry.name == "gan_tconv" and r.info.train_steps == 12
    assert r.report.images == 200 and r.ref_report.images == 1000 and r.reference == REAL
    assert r.info.quality.spectral_distance_db > 0
    zoo.reference = "gan_tconv"  # against the shipped entry of the same design
    assert zoo.result.ref_report.images == 200
    assert state.delete() and state.runs == [] and not run.folder.exists()
    assert zoo.refresh_entries() and label not in zoo.param.entry.objects
    assert zoo.entry in zoo.param.entry.objects and zoo.result.entry == zoo.entry


@pytest.mark.slow
def test_a_lab_design_trains_from_the_state(state):
    from core.zoo.train import load_trained

    state.kind, state.family = "design", "vae"
    state.design_preset = "Checkerboard k3 s2"
    state.steps, state.batch, state.checkpoints = "2", "4", 1
    run = state.start()
    assert run is not None, state.message
    run = wait(state, run.name, lambda r: r.state != "running")
    assert run.state == "finished", (run.folder / R.LOG).read_text()[-2000:]
    entry = ZooEntry.from_dict(json.loads((run.folder / "entry.json").read_text()))
    assert entry.name == "lab_vae_transposed_k3_none_relu" and entry.options == {"kernel": 3}
    model, record = load_trained(run.train_dir)
    assert record["step"] == 2
    convs = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert convs and all(m.kernel_size == (3, 3) for m in convs)
    assert state.snapshot_steps == [0, 2]


def test_an_extractor_run_plots_its_scores_apart_from_its_losses(state):
    from explorer.views.train import TrainView

    name = R.new_name("extractor_tiny")
    folder = R.create_run(state.root, name, kind="extractor", target="tiny",
                          settings={"steps": 6, "batch": 4, "seed": 0, "device": "cpu"},
                          train_dir="train", args=[], shown="fpx train --preset tiny")
    rows = [{"step": i, "loss": 3.0 - i / 3, "lr": 1e-3, "images_per_s": 50.0}
            | ({"bank_accuracy": i / 10, "heldout_auc": 0.5 + i / 20} if i % 3 == 0 else {})
            for i in range(1, 7)]
    (folder / "train").mkdir()
    (folder / "train" / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    view = TrainView(state=state)
    state.refresh()
    state.run = name
    view._draw()
    assert view.scores.visible and not view.trend.visible
    assert view.scores_src["heldout_auc"].data == {"step": [3, 6], "value": [0.65, 0.8]}
    assert view.scores_src["bank_accuracy"].data["value"] == [0.3, 0.6]
    assert set(view._loss_lines) == {"loss"}  # scores have their own figure
    auc = state.tail.series()["heldout_auc"]
    assert all(v != v for v in auc[:2]) and auc[2] == 0.65  # NaN where not logged


def test_a_run_process_yields_the_cpu_to_the_server(tmp_path):
    """launch() starts the run at BACKGROUND_NICE, and its session's autogroup too where
    the kernel has them (what keeps the Spectrum Lab responsive while it trains)."""
    import os
    import sys
    from pathlib import Path

    folder = R.create_run(tmp_path, "r-nice", kind="zoo", target="gan_tconv", settings={},
                          train_dir="train", args=[], shown="sleep")
    proc = R.launch(folder, [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == R.BACKGROUND_NICE
        group = Path(f"/proc/{proc.pid}/autogroup")
        if group.exists():
            assert group.read_text().split()[-1] == str(R.BACKGROUND_NICE)
    finally:
        proc.kill()
        proc.wait()
