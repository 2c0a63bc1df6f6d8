"""Train a zoo entry: one loop for every family, with checkpoints and exact resume.

    fpx zoo train gan_tconv --preset quick                 # 32 px, bundled photos, CPU
    fpx zoo train ddpm_nearest --preset full --size 64 --data cifar10:~/cifar
    fpx zoo train gan_tconv --resume                       # continue where it stopped

Each step draws a minibatch of real images (random horizontal flips) and calls the
family's ``train_step``. ``OUT/NAME/checkpoint.pt`` is written atomically every
``checkpoint_every`` steps and at the end; it holds the entry, the settings, the data
string, model and optimiser states, the step and every random state, so ``--resume``
continues exactly and an interrupted run loses at most ``checkpoint_every`` steps (none
on Ctrl-C or SIGTERM: the step finishes and is checkpointed). ``metrics.jsonl`` gets one
line per step. The run folder, guard, metrics, progress and checkpoint cadence are
:mod:`core.harness`'s.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

from core.checkpoints import (
    checkpoint_step,
    load_checkpoint,
    require,
    require_finite,
    restoring,
)
from core.errors import FpxError, InvalidInputError, check_int
from core.harness import Run
from core.runtime import resolve_device, seed_everything
from core.zoo.base import (
    FAMILIES,
    PRESET_NAMES,
    RESOLUTIONS,
    ZooModel,
    ZooSettings,
    build_model,
    get_family,
)
from core.zoo.data import training_images
from core.zoo.entries import ZooEntry
from core.zoo.snapshots import FOLDER as SNAPSHOTS
from core.zoo.snapshots import Snapshots

CHECKPOINT_FORMAT = "fpx.zoo_checkpoint/1"


class TrainingDivergedError(FpxError):
    """The loss became NaN or infinite; the last checkpoint is kept."""


# Per preset and family, from the family registry (each family defines its presets).
PRESETS: dict[str, dict[str, ZooSettings]] = {
    preset: {name: family.presets[preset] for name, family in FAMILIES.items()}
    for preset in PRESET_NAMES
}


def settings_for(preset: str, family: str, *, steps: int | None = None,
                 size: int | None = None, batch: int | None = None,
                 checkpoint_every: int | None = None) -> ZooSettings:
    """The preset's settings for ``family``, with command-line overrides checked."""
    if preset not in PRESET_NAMES:
        raise InvalidInputError(f"unknown preset '{preset}'; valid: {', '.join(PRESET_NAMES)}")
    s = get_family(family).presets[preset]
    for name, value in (("steps", steps), ("batch", batch),
                        ("checkpoint-every", checkpoint_every)):
        if value is not None:
            check_int(f"--{name}", value)
    if size is not None and size not in RESOLUTIONS:
        raise InvalidInputError(f"--size must be one of {RESOLUTIONS}, got {size!r}")
    return dataclasses.replace(s, steps=steps or s.steps, size=size or s.size,
                               batch=batch or s.batch,
                               checkpoint_every=checkpoint_every
                               or min(s.checkpoint_every, steps or s.steps))


def load_trained(path: str | Path, device: torch.device | str = "cpu"
                 ) -> tuple[ZooModel, dict]:
    """The model in a zoo checkpoint (or a run folder holding ``checkpoint.pt``) and the
    checkpoint's record; a foreign or corrupt file is refused."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    record = load_checkpoint(path, format=CHECKPOINT_FORMAT, what="fpx zoo")
    entry, settings = _identity(record, path)
    checkpoint_step(record, path, settings.steps)
    require(record, path, model=dict)
    require_finite(record["model"], path)
    model = build_model(entry, settings.size)  # bounded by the checks on entry, settings
    with restoring(path):
        model.load_state_dict(record["model"])
    return model.to(device).eval(), record


def _identity(record: dict, path: Path) -> tuple[ZooEntry, ZooSettings]:
    """The entry and settings a zoo checkpoint records, checked (sizes bounded)."""
    from core.records import exact_fields

    require(record, path, entry=dict, settings=dict)
    try:
        entry = ZooEntry.from_dict(record["entry"])
        settings = ZooSettings(**exact_fields(ZooSettings, record["settings"], "settings"))
    except FpxError as err:
        raise InvalidInputError(f"{path}: damaged checkpoint ({err})") from None
    return entry, settings


def train_entry(entry: ZooEntry, out: str | Path = "runs/zoo", *, preset: str = "quick",
                data: str | None = None, size: int | None = None, steps: int | None = None,
                batch: int | None = None, checkpoint_every: int | None = None,
                resume: bool = False, device: str = "auto", snapshots: bool = False,
                stop_after: int | None = None, quiet: bool = False) -> dict:
    """Train (or resume) ``entry``; write ``OUT/NAME/checkpoint.pt``; return a summary.

    A run that ends before its last step (a stop signal, or ``stop_after``) says
    ``"interrupted": True`` in its summary; ``resume=True`` continues it.

    Args:
        data: training data (default: the entry's own, usually ``bundled``).
        snapshots: also keep, at step 0 and at every checkpoint, the samples and their
            spectrum analysis in ``OUT/NAME/snapshots/`` (:mod:`core.zoo.snapshots`).
        stop_after: stop once this step is reached, as if the process had been killed
            there: no checkpoint beyond the regular ones (for tests).
    """
    settings = settings_for(preset, entry.family, steps=steps,
                            size=entry.resolution if size is None else size, batch=batch,
                            checkpoint_every=checkpoint_every)
    data = entry.data if data is None else data
    dev = resolve_device(device)
    log = (lambda msg: None) if quiet else (
        lambda msg: print(f"fpx zoo train: {msg}", file=sys.stderr, flush=True))
    run = Run(Path(out) / entry.name, steps=settings.steps,
              checkpoint_every=settings.checkpoint_every, format=CHECKPOINT_FORMAT,
              what="fpx zoo", stop_after=stop_after, quiet=quiet, desc=entry.name, log=log)
    ckpt_path = run.checkpoint_path
    state = run.load(resume)
    if state is not None:  # checked whole before anything is built or read
        _identity(state, ckpt_path)
        saved = (state.get("entry"), state.get("settings"), state.get("data"))
        if saved != (entry.to_dict(), settings.to_dict(), data):
            raise InvalidInputError(f"{ckpt_path} was trained with other settings; resume "
                                    "with the same entry, --preset, --size, --steps, "
                                    "--batch and --data")
        require(state, ckpt_path, model=dict, optimizers=dict, sampler=torch.Tensor,
                torch_rng=torch.Tensor, step=int)
        checkpoint_step(state, ckpt_path, settings.steps)
        require_finite(state["model"], ckpt_path)
    seed_everything(entry.seed)
    images = training_images(data, settings.size, settings.images, entry.seed).to(dev)
    model = build_model(entry, settings.size).to(dev)
    opts = model.optimizers(settings.lr)
    sampler = torch.Generator().manual_seed(entry.seed + 1)
    step, seconds = 0, 0.0
    if state is not None:
        with restoring(ckpt_path):
            model.load_state_dict(state["model"])
            if set(state["optimizers"]) != set(opts):
                raise KeyError(f"optimizers {sorted(state['optimizers'])}, not {sorted(opts)}")
            for name, opt in opts.items():
                opt.load_state_dict(state["optimizers"][name])
            sampler.set_state(state["sampler"])
            torch.set_rng_state(state["torch_rng"])
            if dev.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            step, seconds = int(state["step"]), float(state.get("seconds", 0.0))
    run.write_json("entry.json", {"entry": entry.to_dict(), "settings": settings.to_dict(),
                                  "data": data, "preset": preset,
                                  "code_version": run.version})
    snaps = Snapshots(run.folder / SNAPSHOTS, images) if snapshots else None
    if snaps is not None and step == 0:
        snaps.take(model, 0)
    record: dict = {}
    with run.loop(step):
        while run.more(step):
            t0 = time.perf_counter()
            idx = torch.randint(len(images), (settings.batch,), generator=sampler)
            mirror = torch.rand(settings.batch, generator=sampler) < 0.5
            x = images[idx.to(dev)]
            x = torch.where(mirror.to(dev)[:, None, None, None], x.flip(-1), x)
            losses = model.train_step(x, opts)
            if not all(math.isfinite(v) for v in losses.values()):
                raise TrainingDivergedError(
                    f"{entry.name}: loss is not finite at step {step + 1} ({losses}); "
                    f"{ckpt_path} keeps the last good state (try a lower learning rate)")
            step += 1
            dt = time.perf_counter() - t0
            seconds += dt
            record = {"step": step, **{k: round(v, 5) for k, v in losses.items()},
                      "images_per_s": round(settings.batch / dt, 1)}
            run.log(record)
            if run.checkpoint_due(step):
                # every random state too: --resume continues the same stream of batches
                run.save({
                    "entry": entry.to_dict(), "settings": settings.to_dict(), "data": data,
                    "preset": preset, "step": step, "seconds": seconds,
                    "model": model.state_dict(),
                    "optimizers": {k: o.state_dict() for k, o in opts.items()},
                    "sampler": sampler.get_state(), "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                })
                if snaps is not None:
                    snaps.take(model, step)
    if step == settings.steps:
        log(f"{entry.name}: {step} steps in {seconds:.0f} s of training -> {ckpt_path}")
    summary = {"entry": entry.name, "step": step, "seconds": round(seconds, 1),
               "checkpoint": str(ckpt_path), **record}
    if step < settings.steps:
        summary["interrupted"] = True
    return summary
