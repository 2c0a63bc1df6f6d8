"""core.harness: the run folder, resume guard, metrics, stop on signal, stop_after; and one
contract every trainer keeps (interrupt, resume, the same weights, each step logged once)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest
import torch

from core.checkpoints import load_checkpoint
from core.errors import InvalidInputError
from core.harness import Dist, Run, trim_metrics

TAG = "fpx.toy_checkpoint/1"
GUARD = "exists: pass --resume to continue it, or choose another --out"


def toy_train(folder, *, steps=6, every=3, stop_after=None, resume=False, on_step=None,
              quiet=True, log=None):
    """A random walk written like every fpx trainer: the harness's loop, nothing else."""
    run = Run(folder, steps=steps, checkpoint_every=every, format=TAG, what="fpx toy",
              stop_after=stop_after, quiet=quiet, desc="toy", log=log)
    state = run.load(resume)
    run.write_json("config.json", {"steps": steps})
    g = torch.Generator().manual_seed(0)
    w, step = torch.zeros(3), 0
    if state is not None:
        w, step = state["w"], state["step"]
        g.set_state(state["g"])
    with run.loop(step):
        while run.more(step):
            w = w + torch.randn(3, generator=g)
            step += 1
            run.log({"step": step, "loss": float(w.norm())})
            if on_step is not None:
                on_step(step)
            if run.checkpoint_due(step):
                run.save({"step": step, "w": w, "g": g.get_state()})
    return run, step, w


def metric_steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def checkpoint(folder: Path) -> dict:
    return load_checkpoint(folder / "checkpoint.pt", format=TAG)


# --- the harness ------------------------------------------------------------------------


def test_trim_metrics_keeps_steps_up_to_the_checkpoint_and_drops_cut_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6))
                    + '{"step": 6, "lo')  # the line the interruption cut short
    trim_metrics(path, 3)
    assert metric_steps(path) == [1, 2, 3]
    trim_metrics(path, 0)
    assert path.read_text() == ""
    trim_metrics(tmp_path / "missing.jsonl", 3)  # nothing to trim: no file appears
    assert not (tmp_path / "missing.jsonl").exists()


def test_a_whole_run_writes_config_metrics_and_checkpoints_on_cadence(tmp_path):
    saved = []
    run, step, _ = toy_train(tmp_path / "run", steps=7, every=3,
                             on_step=lambda s: saved.append(s))
    assert step == 7 and not run.stopped
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"steps": 7}
    assert metric_steps(tmp_path / "run" / "metrics.jsonl") == list(range(1, 8))
    state = checkpoint(tmp_path / "run")
    assert state["step"] == 7 and state["code_version"] == run.version


def test_guard_refuses_to_overwrite_and_resume_needs_a_checkpoint(tmp_path):
    toy_train(tmp_path / "run")
    with pytest.raises(InvalidInputError, match=GUARD):
        toy_train(tmp_path / "run")
    with pytest.raises(InvalidInputError, match="no such checkpoint"):
        toy_train(tmp_path / "fresh", resume=True)
    with pytest.raises(InvalidInputError, match="not an fpx other checkpoint"):
        Run(tmp_path / "run", steps=6, checkpoint_every=3, format="fpx.other/1",
            what="fpx other").load(True)


def test_stop_after_stops_without_a_checkpoint_and_resume_trims_the_metrics(tmp_path):
    _, whole_step, whole = toy_train(tmp_path / "whole", steps=8, every=3)
    run, step, _ = toy_train(tmp_path / "cut", steps=8, every=3, stop_after=5)
    assert step == 5 and not run.stopped
    assert checkpoint(tmp_path / "cut")["step"] == 3  # as if killed after step 5
    assert metric_steps(tmp_path / "cut" / "metrics.jsonl") == [1, 2, 3, 4, 5]
    _, step, w = toy_train(tmp_path / "cut", steps=8, every=3, resume=True)
    assert step == whole_step == 8 and torch.equal(w, whole)
    assert metric_steps(tmp_path / "cut" / "metrics.jsonl") == list(range(1, 9))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_finishes_the_step_writes_a_checkpoint_and_returns(tmp_path, signum):
    _, _, whole = toy_train(tmp_path / "whole", steps=8, every=5)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    said = []

    def interrupt(step):
        if step == 2:
            signal.raise_signal(signum)

    run, step, _ = toy_train(tmp_path / "cut", steps=8, every=5, on_step=interrupt,
                             log=said.append)
    assert run.stopped and step == 2
    assert checkpoint(tmp_path / "cut")["step"] == 2  # off the cadence: written for the stop
    assert {s: signal.getsignal(s) for s in before} == before  # handlers given back
    assert any("--resume" in line for line in said)
    _, step, w = toy_train(tmp_path / "cut", steps=8, every=5, resume=True, log=said.append)
    assert step == 8 and torch.equal(w, whole)
    assert "resumed" in said[-1]
    assert metric_steps(tmp_path / "cut" / "metrics.jsonl") == list(range(1, 9))


def test_the_same_signal_twice_aborts_at_once(tmp_path):
    def interrupt_twice(step):
        if step == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        toy_train(tmp_path / "run", steps=8, every=5, on_step=interrupt_twice)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_after_sigint_still_stops_cleanly(tmp_path):
    # Ctrl-C under torchrun: the terminal's SIGINT, then the agent's SIGTERM.
    def interrupt(step):
        if step == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)

    run, step, _ = toy_train(tmp_path / "run", steps=8, every=5, on_step=interrupt)
    assert run.stopped and step == 2 and checkpoint(tmp_path / "run")["step"] == 2


def test_handlers_go_in_only_from_the_main_thread(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    seen, errors = [], []

    def train_in_thread():
        try:
            seen.append(toy_train(tmp_path / "run", on_step=lambda s: seen.append(
                signal.getsignal(signal.SIGINT)))[1])
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=train_in_thread)
    thread.start()
    thread.join()
    assert not errors and seen[-1] == 6
    assert all(h is before for h in seen[:-1])


def test_in_memory_runs_write_nothing_and_cannot_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = Run(None, steps=3, checkpoint_every=1, format=TAG)
    assert run.load(False) is None
    with run.loop(0):
        step = 0
        while run.more(step):
            step += 1
            run.log({"step": step})
            assert not run.checkpoint_due(step)
    assert step == 3 and list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidInputError, match="cannot resume"):
        run.load(True)


def test_progress_bar_on_stderr_unless_quiet(tmp_path, capsys):
    toy_train(tmp_path / "loud", quiet=False)
    err = capsys.readouterr().err
    assert "toy" in err and "6/6" in err and "loss=" in err
    toy_train(tmp_path / "quiet", quiet=True)
    assert capsys.readouterr().err == ""


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="steps must be a positive integer"):
        Run(tmp_path, steps=0, checkpoint_every=1, format=TAG)
    with pytest.raises(InvalidInputError, match="checkpoint_every"):
        Run(tmp_path, steps=3, checkpoint_every=0, format=TAG)
    with pytest.raises(InvalidInputError, match="needs checkpoint_every and a format"):
        Run(tmp_path, steps=3)


def test_one_process_dist_is_rank_zero_of_one():
    env = Dist("cpu")
    assert (env.enabled, env.rank, env.world, env.main) == (False, 0, 1, True)
    assert env.gather("state") == ["state"] and env.any(True) and not env.any(False)
    env.barrier()
    env.close()


# --- the contract every trainer keeps ---------------------------------------------------


class Extractor:
    """The tiny preset, 6 steps, checkpoints at 3 and 6."""

    steps, cut, kept, signal_at = 6, 5, 3, 2

    def train(self, out, **kw):
        from core.extractor.train import train

        return train("tiny", out, steps=self.steps, quiet=True, **kw)

    def weights(self, out):
        from core.extractor import load_checkpoint as load

        return load(out / "checkpoint.pt")["model"]

    def metrics(self, out):
        return out / "metrics.jsonl"


class Zoo:
    """One tiny entry of a family, 4 steps of batch 4, checkpoints at 2 and 4."""

    steps, cut, kept, signal_at = 4, 3, 2, 1

    def __init__(self, family):
        from tests.test_zoo import tiny

        self.entry = tiny(family)

    def train(self, out, **kw):
        from core.zoo.train import train_entry

        return train_entry(self.entry, out, steps=self.steps, batch=4, checkpoint_every=2,
                           device="cpu", quiet=True, **kw)

    def weights(self, out):
        from core.zoo.train import load_trained

        return load_trained(out / self.entry.name)[0].state_dict()

    def metrics(self, out):
        return out / self.entry.name / "metrics.jsonl"


class Encoder:
    """The self-supervised encoder in a run folder, 6 steps, checkpoints at 3 and 6."""

    steps, cut, kept, signal_at = 6, 5, 3, 2

    def __init__(self):
        from core.data import bundled_crops
        from core.manifold.ssl import SSLConfig

        self.real = bundled_crops(16, 24, seed=0, split="train")
        self.config = SSLConfig(steps=self.steps, batch=16, width=4, dim=8)

    def train(self, out, **kw):
        from core.manifold.ssl import train_encoder

        return train_encoder(self.real, self.config, out=out, checkpoint_every=3, **kw)

    def weights(self, out):
        from core.manifold.ssl import CHECKPOINT_FORMAT

        return load_checkpoint(out / "checkpoint.pt", format=CHECKPOINT_FORMAT)["model"]

    def metrics(self, out):
        return out / "metrics.jsonl"


TRAINERS = {"extractor": Extractor, "zoo_gan": lambda: Zoo("gan"),
            "zoo_vae": lambda: Zoo("vae"), "zoo_flow": lambda: Zoo("flow"),
            "zoo_diffusion": lambda: Zoo("diffusion"), "ssl_encoder": Encoder}


@pytest.fixture(scope="module")
def whole_runs(tmp_path_factory):
    """Each trainer run once to the end, shared by both ways of interrupting it."""
    cache = {}

    def get(name):
        if name not in cache:
            trainer = TRAINERS[name]()
            out = tmp_path_factory.mktemp(name) / "whole"
            trainer.train(out)
            cache[name] = (trainer, out)
        return cache[name]

    return get


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("how", ["stop_after", "signal"])
@pytest.mark.parametrize("name", list(TRAINERS))
def test_every_trainer_resumes_to_the_same_weights_and_logs_each_step_once(
        name, how, whole_runs, tmp_path, monkeypatch):
    trainer, whole = whole_runs(name)
    cut = tmp_path / "cut"
    if how == "stop_after":
        result = trainer.train(cut, stop_after=trainer.cut)
        kept = trainer.kept  # as if killed: the regular checkpoint before the cut survives
    else:
        log = Run.log

        def log_then_signal(self, record):
            log(self, record)
            if record["step"] == trainer.signal_at:  # off the checkpoint cadence
                signal.raise_signal(signal.SIGINT)

        monkeypatch.setattr(Run, "log", log_then_signal)
        result = trainer.train(cut)
        monkeypatch.setattr(Run, "log", log)
        kept = trainer.signal_at  # the step the signal came in, finished and checkpointed
    if isinstance(result, dict):
        assert result["interrupted"] is True
    assert torch.load(trainer.metrics(cut).parent / "checkpoint.pt",
                      weights_only=True)["step"] == kept
    with pytest.raises(InvalidInputError, match=GUARD):
        trainer.train(cut)
    result = trainer.train(cut, resume=True)
    if isinstance(result, dict):
        assert "interrupted" not in result
    assert _same(trainer.weights(whole), trainer.weights(cut))
    steps = list(range(1, trainer.steps + 1))
    assert metric_steps(trainer.metrics(whole)) == steps
    assert metric_steps(trainer.metrics(cut)) == steps  # each step exactly once


def test_the_encoder_learns_the_same_weights_in_memory_and_in_a_folder(whole_runs):
    from core.manifold.ssl import train_encoder

    trainer, whole = whole_runs("ssl_encoder")
    in_memory = train_encoder(trainer.real, trainer.config).state_dict()
    assert _same(in_memory, trainer.weights(whole))


def test_orphan_checkpoint_writes_are_removed_and_damaged_checkpoints_named(tmp_path):
    from core.checkpoints import checkpoint_step, require, save_checkpoint

    toy_train(tmp_path / "run")
    orphan = tmp_path / "run" / ".checkpoint.pt.0123456789ab.tmp"  # a write cut by kill -9
    orphan.write_bytes(b"PK half a checkpoint")
    said = []
    run = Run(tmp_path / "run", steps=6, checkpoint_every=3, format=TAG, log=said.append)
    state = run.load(True)
    assert not orphan.exists() and any(orphan.name in line for line in said)
    assert checkpoint_step(state, "ckpt", 6) == 6
    for bad in (0, 7, -1, 2.0, "3", True):
        with pytest.raises(InvalidInputError, match=r"ckpt: damaged checkpoint \(step"):
            checkpoint_step({"step": bad}, "ckpt", 6)
    with pytest.raises(InvalidInputError, match=r"ckpt: damaged checkpoint \(no 'model'\)"):
        require({}, "ckpt", model=dict)
    with pytest.raises(InvalidInputError, match=r"\('model' is a list\)"):
        require({"model": []}, "ckpt", model=dict)
    save_checkpoint(tmp_path / "x.pt", {"step": 1}, format="fpx.toy/1")
    assert not list(tmp_path.glob(".x.pt.*.tmp"))
