"""The training harness shared by every fpx trainer (extractor, zoo, self-supervised encoder).

A trainer keeps its data, model, optimiser and loop body in one function that reads top
to bottom; :class:`Run` holds what is the same for all of them:

* the run folder, its config record (written by rank 0, atomically) and the code version
  taken once at the start (the code that runs, even if the checkout moves meanwhile);
* the resume guard: a fresh run refuses a folder that holds a checkpoint, ``--resume``
  reads it through :mod:`core.checkpoints` (``weights_only``; never unpickles user data;
  the trainer checks its keys and step with ``require`` / ``checkpoint_step``); either
  way the temporary files of a checkpoint write cut short by ``kill -9`` are removed;
* ``metrics.jsonl``, one JSON line per step, trimmed on resume to the checkpoint's step so
  that it holds every step exactly once;
* a tqdm progress bar on stderr (none when quiet), checkpoints every ``checkpoint_every``
  steps and at the end (atomic writes);
* a clean stop: SIGINT / SIGTERM during the loop let the current step finish, then a
  checkpoint is written and the loop ends (the same signal twice aborts at once); the
  previous handlers come back afterwards. Handlers go in only from the main thread;
* ``stop_after`` leaves the loop once a step is done *without* a final checkpoint, as if
  the process had been killed there: the last regular checkpoint survives (for tests);
* under torchrun (:class:`Dist`) rank 0 alone logs and writes; the ranks agree on a stop.

With ``folder=None`` the harness keeps only the loop bookkeeping (no files, no checkpoint,
no signal handlers), for trainers that run in memory. The loop every trainer writes::

    run = Run(out, steps=..., checkpoint_every=..., format=TAG, log=log)
    state = run.load(resume)            # None for a fresh run; check its config, restore
    run.write_json("config.json", config)
    ...                                 # data, model, optimiser; step = state's step or 0
    with run.loop(step):
        while run.more(step):
            ...                         # one training step
            step += 1
            run.log({"step": step, "loss": loss})
            if run.checkpoint_due(step):
                run.save({"step": step, "model": model.state_dict(), ...})
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist

from core.checkpoints import load_checkpoint, remove_orphans, save_checkpoint
from core.errors import InvalidInputError, check_int
from core.runtime import atomic_write, code_version, resolve_device

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Dist:
    """Rank, world size and device, from torchrun's environment (or a single process).

    ``RANK`` and ``WORLD_SIZE`` set mean DDP: the process group is joined here (NCCL on
    CUDA, gloo on the CPU) and left on :meth:`close` (or at the end of a ``with`` block).
    """

    def __init__(self, device: str = "auto"):
        self.enabled = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        self.rank = int(os.environ.get("RANK", 0)) if self.enabled else 0
        self.world = int(os.environ.get("WORLD_SIZE", 1)) if self.enabled else 1
        local = int(os.environ.get("LOCAL_RANK", 0)) if self.enabled else 0
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", local % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        if self.enabled:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (a list of one in a single process)."""
        if not self.enabled:
            return [obj]
        objs = [None] * self.world
        dist.all_gather_object(objs, obj)
        return objs

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one (a collective)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def close(self) -> None:
        if self.enabled:
            dist.destroy_process_group()

    def __enter__(self) -> Dist:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def trim_metrics(path: str | os.PathLike, step: int) -> None:
    """Keep the lines of a ``metrics.jsonl`` whose ``step`` is at most ``step``.

    Lines past the checkpoint a run resumes from were written by steps that will run
    again; a line cut short by the interruption (or otherwise unreadable) goes too.
    """
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write(path, "".join(line + "\n" for line in kept))


class Run:
    """One training run: its folder, checkpoint, metrics, progress bar and stop signal.

    Args:
        folder: the run folder, or ``None`` for an in-memory run (no files, no checkpoint,
            no signal handlers).
        steps: the total number of steps (>= 1).
        checkpoint_every: steps between checkpoints (>= 1); one is also written at the end.
        format: the checkpoint's format tag (see :mod:`core.checkpoints`).
        what: names the expected kind of checkpoint in errors ("fpx zoo").
        stop_after: leave the loop once this step is done, with no extra checkpoint.
        quiet: no progress bar.
        desc: the progress bar's label.
        dist: the process group; rank 0 alone logs and writes (default: one process).
        log: takes one-line messages (resumed, stopping); default: none.
    """

    def __init__(self, folder: str | os.PathLike | None, *, steps: int,
                 checkpoint_every: int | None = None, format: str = "",
                 what: str = "fpx", stop_after: int | None = None, quiet: bool = False,
                 desc: str = "train", dist: Dist | None = None,
                 log: Callable[[str], None] | None = None):
        for name, value, low in (("steps", steps, 1), ("checkpoint_every", checkpoint_every, 1),
                                 ("stop_after", stop_after, 0)):
            if value is not None:
                check_int(name, value, low)
        if folder is not None and (checkpoint_every is None or not format):
            raise InvalidInputError("a run with a folder needs checkpoint_every and a format")
        self.folder = None if folder is None else Path(folder)
        self.steps, self.checkpoint_every = steps, checkpoint_every
        self.format, self.what, self.stop_after = format, what, stop_after
        self.quiet, self.desc, self.dist = quiet, desc, dist
        self._log = log or (lambda msg: None)
        # git is asked once, at the start: every record of this run names the same code.
        self.version = code_version() if self.folder is not None else ""
        self.stopped = False  # the loop ended on a stop signal (a checkpoint was written)
        self._requested = False
        self._signal: int | None = None  # the signal that asked for the stop
        self._step = 0
        self._bar = None
        self._metrics = None

    @property
    def main(self) -> bool:
        """Whether this process logs and writes (rank 0, or the only process)."""
        return self.dist is None or self.dist.main

    @property
    def checkpoint_path(self) -> Path:
        if self.folder is None:
            raise InvalidInputError("an in-memory run has no checkpoint")
        return self.folder / CHECKPOINT_NAME

    def load(self, resume: bool) -> dict | None:
        """The checkpoint to resume from, or ``None`` for a fresh run.

        A fresh run refuses a folder that already holds a checkpoint; ``resume`` refuses a
        missing, foreign or corrupt one. The caller checks the config it records.
        """
        if self.folder is None:
            if resume:
                raise InvalidInputError("an in-memory run cannot resume; give it a folder")
            return None
        path = self.checkpoint_path
        if self.main:  # a kill -9 during a checkpoint write leaves its temporary file
            for orphan in remove_orphans(path):
                self._log(f"removed {orphan.name}, left by an interrupted checkpoint write")
        if resume:
            return load_checkpoint(path, format=self.format, what=self.what)
        if path.exists():
            raise InvalidInputError(f"{path} exists: pass --resume to continue it, or "
                                    "choose another --out")
        return None

    def write_json(self, name: str, record: dict) -> None:
        """Rank 0 writes ``record`` to ``folder/name`` (indented JSON, atomically)."""
        if self.folder is not None and self.main:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.folder / name, json.dumps(record, indent=2))

    @contextlib.contextmanager
    def loop(self, start: int) -> Iterator[Run]:
        """The training loop's surroundings, from step ``start`` (0, or the checkpoint's).

        On entry: metrics trimmed to ``start`` and opened for appending, the progress bar,
        the stop-signal handlers. On exit (however the loop ends) all three are undone.
        """
        self._step = start
        if start > 0 and self.folder is not None:
            self._log(f"resumed {self.checkpoint_path} at step {start}")
        with contextlib.ExitStack() as stack:
            if self.folder is not None and self.main:
                self.folder.mkdir(parents=True, exist_ok=True)
                trim_metrics(self.folder / METRICS_NAME, start)
                # Line-buffered: each step's line is on disk before the next step starts.
                self._metrics = stack.enter_context(
                    open(self.folder / METRICS_NAME, "a", buffering=1))
            if self.main and not self.quiet:
                from tqdm import tqdm

                self._bar = stack.enter_context(
                    tqdm(total=self.steps, initial=start, desc=self.desc, unit="step",
                         file=sys.stderr, dynamic_ncols=True))
            if self.folder is not None:
                stack.enter_context(self._stop_signals())
            try:
                yield self
            finally:
                self._metrics = self._bar = None
        if self.stopped:
            self._log(f"stopped at step {self._step}; {self.checkpoint_path} holds it: "
                      "continue with --resume")

    def more(self, step: int) -> bool:
        """Whether to run another step after ``step`` steps."""
        return (step < self.steps and not self.stopped
                and (self.stop_after is None or step < self.stop_after))

    def set_steps(self, steps: int) -> None:
        """Change the run's length while it runs (a timed run knows it once it has measured
        its pace); the progress bar follows."""
        self.steps = steps
        if self._bar is not None:
            self._bar.total = steps
            self._bar.refresh()

    def log(self, record: dict) -> None:
        """Rank 0: one line of ``metrics.jsonl`` and a tick of the progress bar.

        ``record`` carries ``step``; its ``loss`` and ``images_per_s`` show on the bar.
        """
        if not self.main:
            return
        if self._metrics is not None:
            self._metrics.write(json.dumps(record) + "\n")
        if self._bar is not None:
            shown = {}
            if "loss" in record:
                shown["loss"] = f"{record['loss']:.3f}"
            if "images_per_s" in record:
                shown["img_s"] = record["images_per_s"]
            if shown:
                self._bar.set_postfix(**shown)
            self._bar.update(1)

    def checkpoint_due(self, step: int) -> bool:
        """Whether to write a checkpoint after ``step``: every ``checkpoint_every`` steps,
        at the last step, and when a stop signal came (which also ends the loop).

        Called by every rank after every step: under DDP the ranks agree here on a stop
        that reached only some of them.
        """
        self._step = step
        if self.folder is None:
            return False
        requested = self.dist.any(self._requested) if self.dist is not None \
            else self._requested
        if requested and not self.stopped:
            self.stopped = True
            self._say(f"stop requested: checkpoint at step {step}, then stop")
        return self.stopped or step % self.checkpoint_every == 0 or step == self.steps

    def save(self, payload: dict) -> None:
        """Rank 0 writes ``payload`` as the run's checkpoint (atomically, tagged); every
        rank waits for it."""
        if self.main:
            save_checkpoint(self.checkpoint_path, payload, format=self.format,
                            version=self.version)
        if self.dist is not None:
            self.dist.barrier()

    def request_stop(self, signum: int | None = None, frame=None) -> None:
        """Ask the loop to stop after the current step (the signal handler). The same
        signal again aborts at once with :class:`KeyboardInterrupt` (the last checkpoint
        survives); another one does not: on Ctrl-C torchrun's agent forwards a SIGTERM
        to ranks that already have the terminal's SIGINT."""
        if self._requested and signum is not None and signum == self._signal:
            raise KeyboardInterrupt
        # No printing here: the handler may interrupt a write to stderr (tqdm's, say),
        # and a re-entrant write raises. checkpoint_due reports the stop.
        if not self._requested:
            self._requested, self._signal = True, signum

    def _say(self, msg: str) -> None:
        """Log ``msg`` without tearing the progress bar."""
        if self._bar is None:
            self._log(msg)
            return
        with self._bar.external_write_mode(file=sys.stderr):
            self._log(msg)

    @contextlib.contextmanager
    def _stop_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal.signal works in the main thread only
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self.request_stop)
        try:
            yield
        finally:
            for s, handler in previous.items():
                # None: installed from outside Python and not restorable; the default then.
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
