"""``kill -9`` at a random moment of each trainer (``fpx train``, ``fpx zoo train``), and
in the middle of a checkpoint write, never leaves a checkpoint that loads wrongly: after
``--resume`` (as many times as it takes) the final weights are those of a run never
interrupted, ``metrics.jsonl`` holds every step exactly once, and no temporary file of
the cut write is left behind.

The kill points are drawn at random (the seed is printed, so a failure can be replayed
with FPX_KILL_SEED)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("FPX_KILL_SEED", random.SystemRandom().randrange(10**6)))

TRAINERS = {
    # argv after ``fpx``, the run folder below OUT, the steps, the final weights
    # enough steps that a kill in the first third, however fast the machine, lands before
    # the end (8 steps once finished inside the kill's delay, and the test had no cut left)
    "extractor": (["train", "--preset", "tiny", "--steps", "30", "--device", "cpu"], ".", 30),
    "zoo": (["zoo", "train", "gan_tconv", "--steps", "30", "--batch", "4",
             "--checkpoint-every", "2", "--device", "cpu"], "gan_tconv", 30),
}

# Runs fpx in a child whose checkpoint writes can be cut: with FPX_TEST_CUT_WRITE=N the
# N-th checkpoint write kills the process (SIGKILL, no clean-up) half-way through.
CHILD = """
import os, signal, sys
cut = int(os.environ.get("FPX_TEST_CUT_WRITE", "0"))
if cut:
    import torch
    import core.checkpoints as checkpoints
    real_save, calls = torch.save, [0]
    def save(obj, f, *a, **k):
        calls[0] += 1
        if calls[0] == cut:
            with open(f, "wb") as fh:
                fh.write(b"PK\\x03\\x04 half a checkpoint")
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *a, **k)
    checkpoints.torch.save = save
from core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def launch(argv, out: Path, cut: int = 0) -> subprocess.Popen:
    env = {**os.environ, "FPX_TEST_CUT_WRITE": str(cut), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, *argv, "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def steps_logged(run: Path) -> int:
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


def kill_after(proc: subprocess.Popen, run: Path, steps: int, delay: float) -> None:
    """SIGKILL ``proc`` once ``steps`` steps are logged, ``delay`` seconds later (or let it
    end if it gets there first)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if steps_logged(run) >= steps:
            time.sleep(delay)
            break
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


def finish(argv, out: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, *argv, "--resume", "--out", str(out)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def check_run(run: Path, steps: int, reference: dict) -> None:
    weights = final_weights(run)
    assert weights.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(weights[name], value), name
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text()
              .splitlines()]
    assert logged == list(range(1, steps + 1))
    assert not list(run.glob(".checkpoint.pt.*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_kill_9_at_random_points_then_resume_reaches_the_same_weights(trainer, tmp_path):
    argv, sub, steps = TRAINERS[trainer]
    rng = random.Random(SEED)
    print(f"FPX_KILL_SEED={SEED}")
    whole = tmp_path / "whole"
    done = subprocess.run([sys.executable, "-c", CHILD, *argv, "--out", str(whole)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = final_weights(whole / sub)

    cut = tmp_path / "cut"
    run = cut / sub
    # 1. killed at a random step, a random moment after its metrics line
    kill_after(launch(argv, cut), run, rng.randrange(1, steps // 3), rng.uniform(0, 0.05))
    assert steps_logged(run) < steps, "the first kill came after the run's end; more steps"
    # 2. killed again by SIGKILL in the middle of a checkpoint write, on resume
    if (run / "checkpoint.pt").exists():
        proc = launch([*argv, "--resume"], cut, cut=1)
    else:
        proc = launch(argv, cut, cut=1)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert list(run.glob(".checkpoint.pt.*.tmp")), "the cut write left its temporary file"
    # 3. resume to the end
    if (run / "checkpoint.pt").exists():
        finish(argv, cut)
    else:  # killed before its first checkpoint: nothing to resume, start again
        (run / "metrics.jsonl").unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", CHILD, *argv, "--out", str(cut)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    check_run(run, steps, reference)
