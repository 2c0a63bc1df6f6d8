"""A self-supervised encoder for the ``learned`` space when no extractor is at hand.

SimCLR (Chen et al. 2020) in miniature, trained by our own code on the real crops only:
two random views of each crop (crop-and-resize, horizontal flip, brightness / contrast /
saturation jitter, Gaussian noise), a small convolutional encoder, a projection head,
and the NT-Xent loss::

    l(i, j) = -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) ),   s = cosine

over the ``2B`` views of a batch (the positive of view ``i`` is the other view of its
crop). Features for artifacts are the encoder's unit-normalised output before the head.
No downloaded weights, deterministic given the seed (on the CPU). The loop runs on
:mod:`core.harness` (in memory, or in a run folder that can be resumed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.checkpoints import checkpoint_step, require, require_finite, restoring
from core.errors import InvalidInputError, check_int
from core.harness import Run
from core.runtime import cpu_seeded
from core.spectrum.transforms import check_images

CHECKPOINT_FORMAT = "fpx.ssl_checkpoint/1"


@dataclass(frozen=True)
class SSLConfig:
    steps: int = 300
    batch: int = 128
    lr: float = 2e-3
    width: int = 32
    dim: int = 128
    temperature: float = 0.2
    seed: int = 0

    def __post_init__(self):
        for name, hi in (("steps", 10**6), ("batch", 4096), ("width", 256), ("dim", 4096)):
            check_int(f"SSL {name}", getattr(self, name), 1, hi)
        check_int("SSL seed", self.seed, 0, 2**63 - 1)
        if not self.lr > 0 or not self.temperature > 0:
            raise InvalidInputError("SSL lr and temperature must be positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Encoder(nn.Module):
    """``(B, 3, S, S)`` in ``[-1, 1]`` -> ``(B, dim)`` unit features (any ``S >= 8``)."""

    def __init__(self, width: int = 32, dim: int = 128):
        super().__init__()
        layers, ch = [], 3
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(ch, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.Conv2d(out, out, 3, 1, 1), nn.BatchNorm2d(out), nn.ReLU()]
            ch = out
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(ch, dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.out(self.body(x).mean((-2, -1))), dim=-1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.forward(x)), dim=-1)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random view per image, same shape: crop 60-100 % of the side and resize back
    (bilinear), flip half, jitter brightness / contrast / saturation by up to 30 %, add
    Gaussian noise of standard deviation up to 0.05."""
    b, _, s, _ = x.shape
    dev = x.device

    def u(*shape):
        return torch.rand(*shape, generator=generator).to(dev)

    side = (0.6 + 0.4 * u(b)) * 2  # in [-1, 1] units of the grid
    centre = (u(b, 2) * 2 - 1) * (2 - side[:, None]) / 2
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = side / 2
    theta[:, :, 2] = centre
    flip = u(b) < 0.5
    theta[flip, 0, 0] *= -1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                      align_corners=False)
    mean = v.mean(dim=(1, 2, 3), keepdim=True)
    grey = v.mean(dim=1, keepdim=True)
    v = grey + (v - grey) * (0.7 + 0.6 * u(b, 1, 1, 1))  # saturation
    v = mean + (v - mean) * (0.7 + 0.6 * u(b, 1, 1, 1))  # contrast
    v = v + (u(b, 1, 1, 1) - 0.5) * 0.6  # brightness
    noise = torch.randn(v.shape, generator=generator).to(dev) * 0.05 * u(b, 1, 1, 1)
    return (v + noise).clamp(-1, 1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over unit projections ``(B, D)`` of two views (mean over the 2B views)."""
    z = torch.cat([z1, z2])
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    b = len(z1)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(sim, target)


def train_encoder(real: torch.Tensor, config: SSLConfig = SSLConfig(), *,
                  device: torch.device | str = "cpu", log=None,
                  out: str | Path | None = None, resume: bool = False,
                  checkpoint_every: int = 100, stop_after: int | None = None,
                  quiet: bool = True) -> Encoder:
    """Train an :class:`Encoder` on ``real`` ``(N, 3, S, S)`` in [-1, 1] (N >= 2).

    In memory by default. With ``out`` the run gets a folder like the other trainers'
    (``config.json``, ``metrics.jsonl``, ``checkpoint.pt`` every ``checkpoint_every``
    steps and on Ctrl-C / SIGTERM) and ``resume=True`` continues it exactly; the weights
    are the same either way. ``stop_after`` stops once that step is done, as if the
    process had been killed there (for tests). ``log`` takes a line every 50 steps.
    """
    real = check_images(real, "real images")
    if len(real) < 2:
        raise InvalidInputError("the self-supervised encoder needs at least 2 real images")
    run = Run(out, steps=config.steps, checkpoint_every=checkpoint_every,
              format=CHECKPOINT_FORMAT, what="fpx self-supervised encoder",
              stop_after=stop_after, quiet=quiet, desc="ssl", log=log)
    state = run.load(resume)
    images = list(real.shape)
    if state is not None and (state.get("config"), state.get("images")) != (config.to_dict(),
                                                                             images):
        raise InvalidInputError(f"{run.checkpoint_path} was trained with another config or "
                                "other images; resume with the same ones")
    if state is not None:  # checked whole before anything is restored
        require(state, run.checkpoint_path, step=int, model=dict, optimizer=dict,
                scheduler=dict, generator=torch.Tensor)
        checkpoint_step(state, run.checkpoint_path, config.steps)
        require_finite(state["model"], run.checkpoint_path)
    run.write_json("config.json", {"config": config.to_dict(), "images": images,
                                   "code_version": run.version})
    with cpu_seeded(config.seed):
        model = Encoder(config.width, config.dim).to(device)
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    step = 0
    if state is not None:
        with restoring(run.checkpoint_path):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            g.set_state(state["generator"])
        step = int(state["step"])
    real = real.to(device)
    batch = min(config.batch, len(real))
    model.train()
    with run.loop(step):
        while run.more(step):
            x = real[torch.randperm(len(real), generator=g)[:batch].to(device)]
            loss = nt_xent(model.project(augment(x, g)), model.project(augment(x, g)),
                           config.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run.log({"step": step, "loss": round(loss.item(), 5)})
            if log is not None and step % 50 == 0:
                log(f"self-supervised encoder: step {step}/{config.steps}, loss "
                    f"{loss.item():.3f}")
            if run.checkpoint_due(step):
                run.save({"config": config.to_dict(), "images": images, "step": step,
                          "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "generator": g.get_state()})
    return model.eval()
