"""Train tab state: start, watch, cancel, resume and delete training runs. ``param`` only,
never panel, so a notebook or a test drives the very same object.

A run is a separate OS process running the CLI command a user would type
(:mod:`explorer.runs`); this object only writes the run's folder, starts the process and
reads back what it writes: the runs list from the runs directory, the watched run's
``metrics.jsonl`` incrementally (:class:`MetricsTail`) and its per-checkpoint snapshots
(:mod:`core.zoo.snapshots`). :meth:`TrainState.refresh` is cheap (a few small files) and
is what the dashboard calls periodically; nothing here trains.

What can be trained: a default zoo entry, a generator designed in the Spectrum Lab
(:mod:`explorer.designs`: it becomes a zoo entry recorded as JSON in the run folder) or
the fingerprint extractor (preset ``tiny`` / ``cpu`` / ``gpu``).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from concurrent.futures import Future
from pathlib import Path

import param

from core.errors import FpxError, InvalidInputError, check_int
from core.zoo import DEFAULT_ZOO, get_entry
from core.zoo.snapshots import FOLDER as SNAPSHOTS
from core.zoo.snapshots import Snapshot, read_record, read_snapshot, snapshot_steps
from explorer import runs as R
from explorer.designs import DESIGN_KEYS, DESIGN_PRESETS, LIVE, PAIR, design_entry, lab_design
from explorer.runs import finished_extractors, finished_generators, finished_runs
from explorer.tail import MetricsTail
from explorer.zoo_runs import use_generator

KINDS = {"Zoo entry": "zoo", "Spectrum Lab design": "design",
         "Fingerprint extractor": "extractor"}
MAX_STEPS = 10**6
MAX_BATCH = 1024
MAX_RUNNING_ENV = "FPX_MAX_RUNS"
THREADS_ENV = "FPX_TRAIN_THREADS"


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _shown(arg: str) -> str:
    """An argument as a user in the working directory would type it: a path under it
    relative (the process itself gets the absolute one)."""
    if not arg.startswith(os.sep):
        return arg
    try:
        return str(Path(arg).relative_to(Path.cwd()))
    except ValueError:
        return arg


class TrainState(param.Parameterized):
    """What to train and how, the runs in the runs directory and the one being watched."""

    kind = param.Selector(default="zoo", objects=KINDS, label="What to train",
                          doc="A default zoo generator, the generator designed in the "
                              "Spectrum Lab (as a zoo GAN or VAE), or the fingerprint "
                              "extractor")
    entry = param.Selector(default=DEFAULT_ZOO[0].name, objects=[e.name for e in DEFAULT_ZOO],
                           label="Zoo entry", doc="One of the default zoo's generators")
    family = param.Selector(default="gan", objects=["gan", "vae"], label="Family",
                            doc="The lab design becomes this zoo family's generator "
                                "(a VAE's decoder)")
    design_preset = param.Selector(default="Lab defaults", objects=list(DESIGN_PRESETS),
                                   label="Lab design",
                                   doc="The design set now in this session's Spectrum Lab, "
                                       "or one of the lab's presets")
    design_values = param.Dict(default={}, doc="The lab design's choices (upsampling, "
                                               "factor, kernel, norm, activation)")
    extractor_preset = param.Selector(default="tiny", objects=["tiny", "cpu", "decoder",
                                                               "gpu"],
                                      label="Extractor preset",
                                      doc="tiny: seconds; cpu: under an hour on 2 cores; "
                                          "decoder: like cpu, on decoder-like generators "
                                          "at 32 and 64 px with augmentations; gpu: one GPU")
    device = param.Selector(default="auto", objects=["auto", "cpu", "cuda"], label="Device",
                            doc="auto: CUDA when present, else the CPU")
    steps = param.String(default="", label="Steps", doc="Training steps (the preset's "
                                                       "when empty)")
    batch = param.String(default="", label="Batch size",
                         doc="Images per step of a generator; bank models per step of the "
                             "extractor (each brings its preset's images per model). The "
                             "preset's when empty")
    seed = param.String(default="", label="Seed", doc="Seeds weights and data order "
                                                     "(the entry's when empty)")
    checkpoints = param.Integer(default=6, bounds=(1, 100), label="Checkpoints",
                                doc="Checkpoints (and snapshots) over the run")
    run = param.Selector(default=None, objects=[], allow_None=True, label="Run",
                         doc="The run being watched")
    checkpoint = param.Integer(default=0, bounds=(0, None), label="Checkpoint",
                               doc="Index into the watched run's snapshots (time slider)")
    message = param.String(default="", doc="The last problem, one line (empty if none)")
    runs = param.List(default=[], doc="RunInfo of every run, newest first")
    snapshot = param.Parameter(default=None, doc="The snapshot under the time slider")
    history = param.List(default=[], doc="Every snapshot's record of the watched run")
    ticks = param.Integer(default=0, doc="Bumped when the watched run's data changed")

    def __init__(self, root: str | Path | None = None, max_running: int | None = None,
                 threads: int | None = None, **params):
        super().__init__(**params)
        self.root = Path(root).absolute() if root is not None else R.runs_dir()
        env_max = os.environ.get(MAX_RUNNING_ENV)
        self.max_running = max_running or (int(env_max) if env_max and env_max.isdigit()
                                           and int(env_max) > 0 else 1)
        env_threads = os.environ.get(THREADS_ENV)
        self.threads = threads or (int(env_threads) if env_threads and env_threads.isdigit()
                                   and int(env_threads) > 0 else 1)
        self.design_values = dict(DESIGN_PRESETS["Lab defaults"])
        self.lab = None  # this session's Spectrum Lab state, once set_lab is called
        self._procs: dict[str, object] = {}
        self._using: dict[str, Future] = {}  # runs whose Zoo entry is being written
        self.queue: list[dict] = []  # plans waiting for a free slot (the preset pair)
        self.tail: MetricsTail | None = None
        self._snap_steps: list[int] = []
        self.refresh()

    # --- what to train ---------------------------------------------------------------

    def defaults(self) -> dict:
        """The preset's steps, batch and seed for the current choice."""
        if self.kind == "extractor":
            from core.extractor.train import PRESETS

            c = PRESETS[self.extractor_preset]
            return {"steps": c.steps, "batch": c.models_per_batch, "seed": c.seed}
        from core.zoo.train import PRESETS

        entry = self._entry()
        s = PRESETS["quick"][entry.family]
        return {"steps": s.steps, "batch": s.batch, "seed": entry.seed}

    def set_design(self, values: dict) -> None:
        """Use these lab design choices (upsampling, factor, kernel, norm, activation),
        e.g. :func:`explorer.designs.lab_design` of a ``LabState``."""
        self.design_values = dict(values)
        self.kind = "design"

    def set_lab(self, lab) -> None:
        """Offer the design set *now* in ``lab`` (an ``explorer.state.LabState``, read
        only) as :data:`LIVE`, followed as it changes; it becomes the default design."""
        self.lab = lab
        self.param.design_preset.objects = [LIVE, *DESIGN_PRESETS]
        lab.param.watch(self._lab_changed, list(DESIGN_KEYS))
        self.design_preset = LIVE
        self._design_preset()

    def _lab_changed(self, *events) -> None:
        if self.design_preset == LIVE:
            self.design_values = lab_design(self.lab)

    def _entry(self):
        if self.kind == "design":
            return design_entry(self.design_values, self.family)
        return get_entry(self.entry)

    @param.depends("design_preset", watch=True)
    def _design_preset(self) -> None:
        self.design_values = lab_design(self.lab) if self.design_preset == LIVE \
            else dict(DESIGN_PRESETS[self.design_preset])

    def _number(self, name: str, text: str, default: int, lo: int, hi: int) -> int:
        if str(text).strip() == "":
            return default
        try:
            value = int(str(text).strip())
        except ValueError:
            raise InvalidInputError(f"{name} must be a whole number, got {text!r}") from None
        return check_int(name, value, lo, hi)

    def plan(self) -> dict:
        """The run :meth:`start` would make: kind, target, settings, argv, the command a
        user would type, the trainer's folder and files to write; bad input raises an
        :class:`FpxError` with one line."""
        d = self.defaults()
        steps = self._number("steps", self.steps, d["steps"], 1, MAX_STEPS)
        extractor = self.kind == "extractor"  # a batch of bank models: two at least
        batch = self._number("batch size", self.batch, d["batch"], 1 + extractor, MAX_BATCH)
        seed = self._number("seed", self.seed, d["seed"], 0, 2**32 - 1)
        device = self.device
        if device == "cuda" and _cuda_count() == 0:
            raise InvalidInputError("no CUDA device here: choose auto or cpu")
        every = max(1, math.ceil(steps / self.checkpoints))
        settings = {"steps": steps, "batch": batch, "seed": seed, "device": device,
                    "checkpoint_every": every}
        files = {}
        if self.kind == "extractor":
            from core.extractor.train import PRESETS

            target = self.extractor_preset
            args = ["train", "--preset", target, "--steps", str(steps)]
            args += ["--batch", str(batch)] if batch != d["batch"] else []
            args += ["--seed", str(seed)] if seed != d["seed"] else []
            args += ["--device", device]
            settings["images_per_step"] = batch * PRESETS[target].images_per_model
            name, train_dir = R.new_name(f"extractor_{target}"), "train"
        else:
            entry = self._entry()
            target = entry.name
            name, train_dir = R.new_name(entry.name), entry.name
            source = entry.name
            if self.kind == "design":
                files["entry.json"] = json.dumps(entry.to_dict(), indent=2)
                source = str(self.root / name / "entry.json")
            args = ["zoo", "train", source, "--preset", "quick", "--steps", str(steps),
                    "--batch", str(batch), "--seed", str(seed), "--checkpoint-every",
                    str(every), "--device", device, "--snapshots"]
        out = self.root / name / (train_dir if self.kind == "extractor" else "")
        args += ["--out", str(out).rstrip("/")]
        gpus = _cuda_count() if device != "cpu" else 0
        if self.kind == "extractor" and gpus > 1:
            torchrun = Path(sys.executable).parent / "torchrun"
            head = [str(torchrun) if torchrun.exists() else "torchrun",
                    f"--nproc_per_node={gpus}", "-m", "core.extractor.train"]
            argv, shown = head + args[1:], shlex.join(["torchrun", *head[1:],
                                                       *map(_shown, args[1:])])
        else:
            argv, shown = R.fpx_command() + args, shlex.join(["fpx", *map(_shown, args)])
        return {"name": name, "kind": self.kind, "target": target, "settings": settings,
                "argv": argv, "command_text": shown, "train_dir": train_dir, "files": files,
                "gpus": gpus}

    def command_text(self) -> str:
        """The command the current choices would run (or the problem with them)."""
        try:
            return self.plan()["command_text"]
        except FpxError as err:
            return f"# {err}"

    # --- runs ------------------------------------------------------------------------

    def _env(self, settings: dict, gpus: int) -> dict[str, str]:
        if settings["device"] == "cpu" or gpus == 0:  # leave the server its cores
            n = str(self.threads)
            return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}
        return {}

    def _running(self) -> list[R.RunInfo]:
        return [r for r in self.runs if r.state == "running"]

    def _check_limit(self) -> None:
        if len(self._running()) >= self.max_running:
            names = ", ".join(r.name for r in self._running())
            raise InvalidInputError(f"{self.max_running} training run(s) at most at a time "
                                    f"on this machine ({names} running): wait or cancel it")

    def _act(self, action, *args):
        try:
            result = action(*args)
        except FpxError as err:
            self.message = str(err).splitlines()[0]
            return None
        self.message = ""
        return result

    def start(self) -> R.RunInfo | None:
        """Write the run's folder and start its process; ``None`` with :attr:`message` set
        when the input or the limit refuses it."""
        return self._act(self._start)

    def _start(self) -> R.RunInfo:
        self.refresh()
        return self._start_plan(self.plan())

    def start_pair(self) -> R.RunInfo | None:
        """The teaching pair: the lab's DCGAN-like transposed conv and its nearest
        resize-conv twin, one seed, one family; the second waits for a free slot when the
        limit allows only one run at a time."""

        def go():
            plans = []
            for preset in PAIR:
                self.kind, self.design_preset = "design", preset
                plans.append(self.plan())
            self.queue.extend(plans[1:])  # started by refresh once a slot is free
            return self._start_plan(plans[0])

        result = self._act(go)
        self.refresh()
        return result

    def _start_plan(self, plan: dict) -> R.RunInfo:
        self._check_limit()
        folder = R.create_run(self.root, plan["name"], kind=plan["kind"],
                              target=plan["target"], settings=plan["settings"],
                              train_dir=plan["train_dir"], args=plan["argv"],
                              shown=plan["command_text"], files=plan["files"],
                              extra={"threads": self.threads, "gpus": plan["gpus"]})
        self._procs[folder.name] = R.launch(folder, plan["argv"],
                                            self._env(plan["settings"], plan["gpus"]))
        self.refresh()
        self.run = folder.name
        return self.get(folder.name)

    def get(self, name: str) -> R.RunInfo:
        for r in self.runs:
            if r.name == name:
                return r
        raise InvalidInputError(f"no run named {name!r} in {self.root}")

    def cancel(self, name: str | None = None) -> bool:
        """SIGTERM to the run: it checkpoints the current step and stops (resumable)."""
        return self._act(lambda: R.cancel(self.get(name or self.run)) or True) is not None

    def resume(self, name: str | None = None) -> R.RunInfo | None:
        """Start the run's command again with ``--resume`` (from the start when it never
        reached a checkpoint)."""
        return self._act(self._resume, name or self.run)

    def _resume(self, name: str) -> R.RunInfo:
        self.refresh()
        run = self.get(name)
        if run.state in ("running", "finished"):
            raise InvalidInputError(f"{name} is {run.state}: nothing to resume")
        self._check_limit()
        argv = list(run.record["args"]) + (["--resume"] if run.checkpoint.exists() else [])
        self._procs[name] = R.launch(run.folder, argv,
                                     self._env(run.record["settings"],
                                               int(run.record.get("gpus", 0))))
        self.refresh()
        return self.get(name)

    def delete(self, name: str | None = None) -> bool:
        """Remove a run that is not running (the view asks first)."""
        name = name or self.run

        def go():
            if name in self._using:
                raise InvalidInputError(f"{name}: its Zoo entry is being made; delete it "
                                        "once that is done")
            R.delete(self.get(name), self.root)
            self.tail = None
            return True

        done = self._act(go) is not None
        self.refresh()
        return done

    def use(self, name: str | None = None) -> bool:
        """Mark a finished run as used: an extractor joins the list of
        :func:`finished_extractors` at once; a generator joins the Zoo tab's entries once
        its sample set is written into its folder (:func:`explorer.zoo_runs.write_run_set`,
        seconds, on a worker thread: :meth:`refresh` reports the end)."""

        def go():
            run = self.get(name or self.run)
            if run.state != "finished":
                raise InvalidInputError(f"{run.name} is {run.state}: only a finished run "
                                        "can be used")
            if run.kind == "extractor":
                R.write_record(run.folder, {**run.record, "used": True})
            elif run.name in self._using:
                raise InvalidInputError(f"{run.name}: its Zoo entry is being made")
            else:
                self._using[run.name] = use_generator(run)
            return True

        done = self._act(go) is not None
        self.refresh()
        return done

    def using(self, name: str | None = None) -> bool:
        """Whether the Zoo entry of run ``name`` (default: the watched one) is being made."""
        return (name or self.run) in self._using

    # --- watching --------------------------------------------------------------------

    def refresh(self) -> None:
        """Reap ended processes and finished Zoo entries, read the runs list back, tail
        the watched run. Cheap."""
        for name, job in list(self._using.items()):
            if job.done():
                del self._using[name]
                err = job.exception()
                if err is not None:
                    self.message = f"cannot use {name}: {str(err).splitlines()[0]}"
        for name, proc in list(self._procs.items()):
            code = proc.poll()
            if code is not None:
                R.ended(self.root / name, code)
                del self._procs[name]
        self.runs = R.list_runs(self.root)
        if self.queue and len(self._running()) < self.max_running:
            plan = self.queue.pop(0)
            try:
                self._start_plan(plan)
            except FpxError as err:
                self.message = str(err).splitlines()[0]
            return
        names = [r.name for r in self.runs]
        self.param.run.objects = names
        if self.run not in names:
            self.run = names[0] if names else None
        else:
            self._watch()

    @param.depends("run", watch=True)
    def _new_run(self) -> None:
        self.tail = None
        self._snap_steps = []
        self.history = []
        self.snapshot = None
        self._watch()

    def _watch(self) -> None:
        if self.run is None:
            return
        try:
            run = self.get(self.run)
        except FpxError:
            return
        if self.tail is None or self.tail.path != run.train_dir / "metrics.jsonl":
            self.tail = MetricsTail(run.train_dir / "metrics.jsonl")
        changed = self.tail.poll() > 0
        steps = snapshot_steps(run.train_dir / SNAPSHOTS)
        if steps != self._snap_steps:
            at_end = self.checkpoint >= len(self._snap_steps) - 1
            self._snap_steps = steps
            try:
                self.history = [read_record(run.train_dir / SNAPSHOTS, s) for s in steps]
            except FpxError as err:
                self.message = str(err)
            self.param.checkpoint.bounds = (0, max(0, len(steps) - 1))
            if at_end or self.checkpoint >= len(steps):  # follow the newest one
                with param.discard_events(self):
                    self.checkpoint = max(0, len(steps) - 1)
            self._load_snapshot()
            changed = True
        if changed:
            self.ticks += 1

    @param.depends("checkpoint", watch=True)
    def _load_snapshot(self) -> None:
        if not self._snap_steps or self.run is None:
            self.snapshot = None
            return
        run = self.get(self.run)
        step = self._snap_steps[min(self.checkpoint, len(self._snap_steps) - 1)]
        try:
            self.snapshot = read_snapshot(run.train_dir / SNAPSHOTS, step)
        except FpxError as err:
            self.message = str(err).splitlines()[0]

    @property
    def snapshot_steps(self) -> list[int]:
        return list(self._snap_steps)

    def progress(self) -> dict:
        """The watched run's state, step, total, steps/s and ETA (seconds, or None)."""
        if self.run is None:
            return {}
        run = self.get(self.run)
        step = self.tail.step if self.tail else 0
        rate = self.tail.rate() if self.tail else None
        if rate is None and self.tail and self.tail.rows:
            ips = self.tail.rows[-1].get("images_per_s")
            settings = run.record["settings"]
            batch = settings.get("images_per_step", settings.get("batch"))
            rate = ips / batch if ips and batch else None
        eta = (run.steps - step) / rate if rate and run.state == "running" else None
        return {"name": run.name, "state": run.state, "step": step, "steps": run.steps,
                "rate": rate, "eta": eta, "message": run.message,
                "command": run.command_text, "used": bool(run.record.get("used")),
                "using": run.name in self._using,
                "resumable": run.resumable, "kind": run.kind}

    def real_profile(self) -> dict | None:
        from core.zoo.snapshots import read_real

        if self.run is None:
            return None
        return read_real(self.get(self.run).train_dir / SNAPSHOTS)


__all__ = ["KINDS", "MetricsTail", "Snapshot", "TrainState", "finished_extractors",
           "finished_generators", "finished_runs"]
