"""Train the fingerprint extractor on a synthetic bank. One entry point, any world size.

    fpx train --preset cpu --out runs/cpu                      # one process
    torchrun --nproc_per_node=2 -m core.extractor.train --preset tiny --out runs/t   # DDP
    fpx train --preset cpu --out runs/cpu --resume              # continue where it stopped

Each step draws ``models_per_batch`` bank models and ``images_per_model`` real crops for
each, runs the crops through their models, and trains on cross-entropy over the bank's
models plus a batch-hard triplet loss. Rank 0 alone logs (a progress bar and
``metrics.jsonl``) and writes ``checkpoint.pt`` every ``checkpoint_every`` steps
(atomically), so an interrupted run loses at most that many steps; Ctrl-C (or SIGTERM)
finishes the step and writes a checkpoint first. ``--resume`` restores model, optimiser,
scheduler, sampler state and step. At the end rank 0 exports ``extractor/`` (weights +
config) for ``fpx embed``. The run folder, guard, metrics, progress and checkpoint cadence
are :mod:`core.harness`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from core.checkpoints import checkpoint_step, require, require_finite, restoring
from core.data import bundled_crops
from core.errors import FpxError, InvalidInputError, check_int, check_real
from core.extractor.augment import Augmentations
from core.extractor.augment import augment as augment_batch
from core.extractor.checkpoint import CHECKPOINT_FORMAT, export_extractor
from core.extractor.model import Extractor, ExtractorConfig, batch_hard_triplet
from core.extractor.monitor import MonitorConfig, evaluate, held_sets
from core.extractor.sizes import training_view
from core.harness import Dist, Run
from core.synthetic import BankConfig, SyntheticBank, fit_bank


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run is made of; stored in every checkpoint and in ``config.json``."""

    bank: BankConfig = field(default_factory=BankConfig)
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    steps: int = 1000
    models_per_batch: int = 16
    images_per_model: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 50
    triplet_margin: float = 0.3
    triplet_weight: float = 1.0
    checkpoint_every: int = 100
    real_crops: int = 1024
    seed: int = 0
    sizes: tuple[int, ...] = ()
    augment: bool = False
    # What is evaluated every few steps; it never changes the weights, so a checkpoint
    # resumes under another monitor (it takes no part in ==).
    monitor: MonitorConfig = field(default_factory=MonitorConfig, compare=False)

    def __post_init__(self):
        check_int("models per batch", self.models_per_batch, 2, 4096)
        check_int("seed", self.seed, 0, 2**32 - 1)
        sizes = tuple(self.sizes)
        for s in sizes:
            check_int("training size", s, 16, 1024)
        object.__setattr__(self, "sizes", sizes)

    @property
    def step_sizes(self) -> tuple[int, ...]:
        """Output sizes a step draws from (one per step): ``sizes``, else the crop size."""
        return self.sizes or (self.extractor.crop_size,)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        monitor = d.pop("monitor", None)  # absent from runs older than the monitor
        return cls(bank=BankConfig(**d.pop("bank")),
                   extractor=ExtractorConfig(**d.pop("extractor")),
                   monitor=MonitorConfig(**monitor) if monitor else MonitorConfig(), **d)


PRESETS = {
    # Seconds: for tests and for checking an installation.
    "tiny": TrainConfig(
        bank=BankConfig(architectures=4, seeds=2, fit_steps=2, crop_size=32, batch=4,
                        channels=4),
        extractor=ExtractorConfig(width=4, embed_dim=16, crop_size=32),
        steps=6, models_per_batch=4, images_per_model=2, warmup=1, checkpoint_every=3,
        real_crops=64, monitor=MonitorConfig(bank_models=8, bank_images=2, heldout_models=3,
                                             heldout_images=4, pairs=200)),
    # A useful extractor on 2 CPU cores in well under an hour.
    "cpu": TrainConfig(
        bank=BankConfig(architectures=64, seeds=3, fit_steps=20, crop_size=64, batch=16,
                        channels=16),
        extractor=ExtractorConfig(width=16, embed_dim=128, crop_size=64),
        steps=4000, models_per_batch=16, images_per_model=4, lr=2e-3, warmup=200,
        checkpoint_every=200, real_crops=2048),
    # Like ``cpu``, on decoders that grow images from 4x4-16x16 through 2-5 stages
    # (:mod:`core.synthetic.decoder`), at 32 and 64 px, with JPEG/resize/blur/noise.
    "decoder": TrainConfig(
        bank=BankConfig(architectures=96, seeds=2, fit_steps=20, crop_size=64, batch=16,
                        channels=16, space="decoder"),
        extractor=ExtractorConfig(width=16, embed_dim=128, crop_size=64),
        steps=4000, models_per_batch=16, images_per_model=4, lr=2e-3, warmup=200,
        checkpoint_every=200, real_crops=2048, sizes=(32, 64), augment=True),
    # One GPU: 512 decoders (2-4 stages, 32 channels), trained at 32, 64 and 128 px with
    # the augmentations, 64 models a step. On one H100 the bank fits in about 1 minute and
    # a step takes 0.2-0.26 s (12000 steps: 40-50 minutes). The shipped extractor is a
    # 1804-step run (``--minutes 7.6``); docs/results.md has it and a 1000-step one.
    "gpu": TrainConfig(
        bank=BankConfig(architectures=256, seeds=2, fit_steps=30, crop_size=64, batch=16,
                        channels=32, space="decoder"),
        extractor=ExtractorConfig(width=32, blocks=2, embed_dim=256, crop_size=64),
        steps=12000, models_per_batch=64, images_per_model=4, lr=2e-3, warmup=500,
        checkpoint_every=500, real_crops=4096, sizes=(32, 64, 128), augment=True,
        monitor=MonitorConfig(bank_models=256, heldout_models=8)),
}


def _sub_crop(crops: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """``(..., R, R)`` real crops -> ``(..., size, size)`` at one random offset."""
    r = crops.shape[-1]
    if size == r:
        return crops
    top, left = (int(v) for v in torch.randint(r - size + 1, (2,), generator=g))
    return crops[..., top:top + size, left:left + size]


class CosineSchedule:
    """Learning-rate factor: linear warmup over ``warmup`` steps, then a cosine to 0 at
    ``total``. A callable object, so that LambdaLR saves its fields in checkpoints and a
    timed run (``minutes``) can set ``total`` once it knows its pace."""

    def __init__(self, warmup: int, total: int):
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / max(1, self.warmup)
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def steps_in_time(step: int, seconds_per_step: float, seconds_left: float, cap: int) -> int:
    """The total steps of a run now at ``step`` whose remaining steps, at
    ``seconds_per_step`` each, fit in ``seconds_left``: never under ``step`` (a run out of
    time ends now), never over ``cap``."""
    more = cap if seconds_per_step <= 0 else int(max(0.0, seconds_left) / seconds_per_step)
    return max(step, min(cap, step + more))


def _bank(config: TrainConfig, out: Path, env: Dist, log) -> SyntheticBank:
    """Rank 0 builds the bank (or finds it from an earlier run); the others load it. The
    bank is fitted as ``fpx bank sample`` fits it (:func:`core.synthetic.fit_bank`, on
    crops drawn with the bank's own seed, on the training device), so that command's
    samples come from the very models the extractor trained on."""
    folder = out / "bank"
    if env.main and not (folder / "bank.json").exists():
        t0 = time.perf_counter()
        total, done = len(config.bank.specs()), [0]

        def progress(n: int) -> None:  # a line every tenth of the bank
            before, done[0] = done[0], done[0] + n
            if done[0] * 10 // total > before * 10 // total:
                log(f"fitting the bank: {done[0]}/{total} models, "
                    f"{time.perf_counter() - t0:.0f} s")

        bank = fit_bank(config.bank, env.device, progress=progress)
        bank.save(folder)
        log(f"built a bank of {len(bank)} synthetic models in {time.perf_counter() - t0:.0f} s")
    env.barrier()
    bank = SyntheticBank.load(folder)
    if bank.config != config.bank:
        raise InvalidInputError(f"{folder} holds a bank of another config; use a new --out")
    return bank


def _check_resumable(state: dict, config: TrainConfig, env: Dist, path: Path) -> None:
    """Refuse a damaged checkpoint (keys, types, step range, non-finite weights) and one
    of another config or world size (resuming it would not be exact)."""
    require(state, path, config=str, step=int, world_size=int, model=dict, optimizer=dict,
            scheduler=dict, sampler=list)
    try:
        saved = TrainConfig.from_dict(json.loads(state["config"]))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise InvalidInputError(f"{path}: damaged checkpoint (its config cannot be read: "
                                f"{str(err).splitlines()[0][:120]})") from None
    except FpxError as err:
        raise InvalidInputError(f"{path}: damaged checkpoint ({err})") from None
    if saved != config:
        raise InvalidInputError(f"{path} was trained with another config "
                                f"(preset {state.get('preset')!r}); resume with the same "
                                "--preset, --steps, --batch, --seed, --sizes, --augment")
    if state["world_size"] != env.world:
        raise InvalidInputError(f"{path} was written by {state['world_size']} "
                                f"process(es); resume with the same number")
    checkpoint_step(state, path, config.steps)
    if len(state["sampler"]) != env.world or not all(
            isinstance(s, torch.Tensor) for s in state["sampler"]):
        raise InvalidInputError(f"{path}: damaged checkpoint (sampler states do not match "
                                f"{env.world} process(es))")
    require_finite(state["model"], path)


def _initial_weights(init: str | Path, config: TrainConfig, resume: bool
                     ) -> tuple[dict, dict]:
    """The weights of the exported extractor in folder ``init`` (checked as
    :func:`load_extractor` checks them) and what to record of it; refused, in one line,
    with ``--resume`` or when its network is not the preset's."""
    from core.extractor.checkpoint import load_extractor
    from core.parsing.data import extractor_identity

    if resume:
        raise InvalidInputError("--init starts a run from an exported extractor; --resume "
                                "continues a checkpoint (give one of them)")
    source = load_extractor(init)
    if source.config != config.extractor:
        theirs, ours = source.config.to_dict(), config.extractor.to_dict()
        diff = ", ".join(f"{k} {theirs[k]} (preset: {ours[k]})" for k in ours
                         if theirs.get(k) != ours[k])
        raise InvalidInputError(f"--init {init}: not the preset's network: {diff}")
    record = json.loads((Path(init) / "extractor.json").read_text())
    return source.state_dict(), {"extractor": extractor_identity(init),
                                 "made_by": record.get("made_by", {})}


def _recorded_init(out: Path, state: dict | None) -> dict | None:
    """The ``--init`` record of the run being resumed (its ``config.json``), if any."""
    if state is None:
        return None
    try:
        return json.loads((out / "config.json").read_text()).get("init")
    except (OSError, ValueError, AttributeError):
        return None


def _overrides(config: TrainConfig, preset: TrainConfig) -> str:
    """The options that turn ``preset`` into ``config`` (for the exported command)."""
    out = ""
    for option, name in (("--steps", "steps"), ("--batch", "models_per_batch"),
                         ("--seed", "seed")):
        if getattr(config, name) != getattr(preset, name):
            out += f" {option} {getattr(config, name)}"
    if config.sizes != preset.sizes:
        out += " --sizes " + " ".join(map(str, config.sizes))
    if config.augment and not preset.augment:
        out += " --augment"
    return out


def train(preset: str = "tiny", out: str | Path = "runs/fpx", *, resume: bool = False,
          device: str = "auto", steps: int | None = None, stop_after: int | None = None,
          quiet: bool = False, sizes: tuple[int, ...] | None = None,
          augment: bool | None = None, batch: int | None = None,
          seed: int | None = None, minutes: float | None = None,
          init: str | Path | None = None) -> dict:
    """Run (or resume) training; return the last metrics record (rank 0; ``{}`` elsewhere).

    A run that ends before its last step (a stop signal, or ``stop_after``) returns its
    record with ``"interrupted": True``; ``resume=True`` continues it.

    Args:
        steps: override the preset's total steps (the cosine schedule follows it).
        sizes: output sizes to train on (each step draws one): the bank's models run on
            real crops of that size, and the extractor reads the result by its size
            policy (:func:`core.extractor.sizes.training_view`). Default: the preset's
            (its crop size alone).
        augment: random JPEG / resize / blur / noise on every batch
            (:mod:`core.extractor.augment`); default: the preset's (off).
        batch: override the preset's bank models per step (``models_per_batch``; each
            brings ``images_per_model`` images).
        seed: override the preset's seed (initial weights, data order; the bank keeps its
            own seed, so runs that differ only here share one bank).
        minutes: end the whole run (bank included) within this time: once the warmup
            (at least 20 steps) has shown the pace, the total steps are set to what fits,
            at most the preset's (or ``steps``); the cosine schedule follows the new
            total, ``config.json`` and the exported command record it (``--steps N``
            reproduces the run). No checkpoint is written before that decision.
        init: an exported extractor (``fpx embed``'s kind) whose weights start the
            network instead of random ones; its config must be the preset's. The
            classification head starts afresh (the export has none), and so do the
            optimiser and the schedule: training goes on across sessions from the
            shipped extractor, or any run's export, in runs of what fits (``--minutes``).
            Its identity and command are recorded in the export's ``made_by``.
        stop_after: stop once this step is reached, as if the process had been killed
            there: no checkpoint beyond the regular ones (for tests).
    """
    if preset not in PRESETS:
        raise InvalidInputError(f"unknown preset '{preset}'; valid: {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if steps is not None:
        config = dataclasses.replace(config, steps=check_int("--steps", steps))
    if sizes is not None:
        config = dataclasses.replace(config, sizes=tuple(sizes))
    if augment is not None:
        config = dataclasses.replace(config, augment=bool(augment))
    if batch is not None:
        config = dataclasses.replace(config, models_per_batch=batch)
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    started = time.perf_counter()
    if minutes is not None:
        minutes = check_real("--minutes", minutes, 0.01, 100_000)
        if resume:
            raise InvalidInputError("--minutes starts a run; continue a timed run with "
                                    "--resume --steps N (N from its config.json)")
    start = _initial_weights(init, config, resume) if init is not None else None
    unit = max(2 ** spec.down for spec in config.bank.specs())  # before any work
    if any(s % unit or s < 2 * unit for s in config.step_sizes):
        raise InvalidInputError(f"training sizes {list(config.step_sizes)} must be multiples "
                                f"of {unit} and at least {2 * unit} (the bank's deepest "
                                f"model halves them {unit.bit_length() - 1} times)")
    out = Path(out)
    with Dist(device) as env:
        log = (lambda msg: print(f"fpx train: {msg}", file=sys.stderr, flush=True)) \
            if env.main and not quiet else (lambda msg: None)
        run = Run(out, steps=config.steps, checkpoint_every=config.checkpoint_every,
                  format=CHECKPOINT_FORMAT, what="fpx extractor", stop_after=stop_after,
                  quiet=quiet, desc="train", dist=env, log=log)
        state = run.load(resume)
        if state is not None:
            _check_resumable(state, config, env, run.checkpoint_path)
        timed = {"minutes": minutes} if minutes is not None else {}
        began = start[1] if start is not None else _recorded_init(out, state)
        if began is not None:
            timed["init"] = began  # kept by a resumed run, for its export
        run.write_json("config.json", {"preset": preset, **timed, **config.to_dict()})

        # data: a bank of synthetic generators, and the real crops they are fed
        bank = _bank(config, out, env, log)
        sizes = config.step_sizes
        real = bundled_crops(max(sizes), config.real_crops, seed=config.seed + 1,
                             split="train").to(env.device)
        held = held_sets(config.monitor, bank, config.bank, sizes,
                         config.extractor.crop_size, out, env.device, log) \
            if env.main else None
        every = config.monitor.every or config.checkpoint_every

        # model and optimiser
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        model = Extractor(config.extractor, num_classes=len(bank)).to(env.device)
        cuda = env.device.type == "cuda"
        if start is not None:
            model.load_state_dict(start[0], strict=False)  # the head stays as drawn
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        net = DistributedDataParallel(model, device_ids=[env.device] if cuda else None) \
            if env.enabled else model
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                weight_decay=config.weight_decay)
        schedule = CosineSchedule(config.warmup, config.steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        sampler = torch.Generator().manual_seed(config.seed * 1000 + env.rank)
        step = 0
        if state is not None:
            with restoring(run.checkpoint_path):
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                sampler.set_state(state["sampler"][env.rank])
            step = int(state["step"])

        # the loop
        p, k = min(config.models_per_batch, len(bank)), config.images_per_model
        record: dict = {}
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda
                    else contextlib.nullcontext())
        # a timed run sets its total once the warmup has shown the pace
        decide_at = min(config.steps, max(config.warmup, 20)) if minutes is not None else None
        pace_from = (step, time.perf_counter())
        with run.loop(step):
            while run.more(step):
                t0 = time.perf_counter()
                ids = torch.randperm(len(bank), generator=sampler)[:p]
                crops = real[torch.randint(len(real), (p, k), generator=sampler)
                             .to(env.device)]
                size = sizes[int(torch.randint(len(sizes), (1,), generator=sampler))] \
                    if len(sizes) > 1 else sizes[0]
                crops = _sub_crop(crops, size, sampler)
                x = bank.generate(ids.tolist(), crops).reshape(p * k, *crops.shape[2:])
                if config.augment:
                    x = augment_batch(x, Augmentations(), sampler)
                x, spectrum_size = training_view(x, config.extractor.crop_size, sampler)
                labels = ids.repeat_interleave(k).to(env.device)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                model.train()
                with autocast:
                    emb, logits = net(x, with_logits=True, spectrum_size=spectrum_size)
                    ce = F.cross_entropy(logits.float(), labels)
                    triplet = batch_hard_triplet(emb.float(), labels, config.triplet_margin)
                    loss = ce + config.triplet_weight * triplet
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                step += 1
                seconds = time.perf_counter() - t0
                if env.main:
                    record = {"step": step, "loss": round(loss.item(), 5),
                              "ce": round(ce.item(), 5), "triplet": round(triplet.item(), 5),
                              "lr": sched.get_last_lr()[0], "size": size,
                              "images_per_s": round(p * k * env.world / seconds, 1)}
                    if held is not None and (step % every == 0 or step == config.steps):
                        record.update(evaluate(model, held))
                    run.log(record)

                if decide_at is not None:
                    now = time.perf_counter()
                    if step == min(5, decide_at - 1):  # first steps (allocations) left out
                        pace_from = (step, now)
                    elif step >= decide_at:
                        per_step = (now - pace_from[1]) / max(1, step - pace_from[0])
                        left = started + 60 * minutes - now - 10  # 10 s: export
                        total = env.gather(steps_in_time(step, 1.03 * per_step, left,
                                                         config.steps))[0]
                        config = dataclasses.replace(config, steps=total)
                        schedule.total = total
                        run.set_steps(total)
                        run.write_json("config.json", {"preset": preset, **timed,
                                                       **config.to_dict()})
                        log(f"timed run: {per_step * 1000:.0f} ms a step, {total} steps "
                            f"end within {minutes:g} min")
                        decide_at = None

                # checkpoint: every rank's sampler state, so that --resume is exact
                if run.checkpoint_due(step) and (decide_at is None or run.stopped):
                    samplers = env.gather(sampler.get_state())
                    run.save({"preset": preset, "config": json.dumps(config.to_dict()),
                              "step": step, "world_size": env.world,
                              "model": model.state_dict(), "optimizer": opt.state_dict(),
                              "scheduler": sched.state_dict(), "sampler": samplers})

        # export (rank 0, a finished run): the embedding network for fpx embed
        if env.main and step == config.steps:
            command = f"fpx train --preset {preset} --out DIR" + _overrides(config,
                                                                           PRESETS[preset])
            made_by = {
                "command": command + (" --init INIT" if began is not None else ""),
                "preset": preset, "steps": step, "seed": config.seed,
                "world_size": env.world, "data": "bundled photos (train split), synthetic "
                f"bank of {len(bank)} models ({config.bank.architectures or 'all'} "
                f"architectures x {config.bank.seeds} seeds)", "code_version": run.version,
            }
            if began is not None:
                made_by["init"] = began  # INIT: the extractor the weights began as
            export_extractor(model, out / "extractor", made_by)
            log(f"exported {out / 'extractor'}")
        elif env.main:
            record = {**record, "interrupted": True}
    return record


if __name__ == "__main__":
    # ``torchrun ... -m core.extractor.train ARGS`` is ``fpx train ARGS`` on every rank.
    from core.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
