"""GAN family: a DCGAN-style generator and discriminator with four objectives.

Generator: ``z (latent) -> linear -> (C0, 4, 4) -> x2 up-blocks -> (3, S, S)``; every
upsampling, normalization and activation comes from ``core.blocks`` through the entry,
and the last up-block goes straight to RGB (then ``tanh``), as in DCGAN, so its
upsampling leaves its trace in the final image. Discriminator: stride-2 4x4
convolutions with leaky ReLU, down to ``(C, 4, 4)``, then a 4x4 convolution to one logit.

Objectives (``entry.loss``), with ``r = D(x)`` on real and ``f = D(G(z))`` on generated
images, ``sp`` the softplus:

=========  ================================  ===================
loss       discriminator                     generator
=========  ================================  ===================
ns         ``sp(-r) + sp(f)``                ``sp(-f)``
hinge      ``relu(1 - r) + relu(1 + f)``     ``-f``
lsgan      ``((r - 1)^2 + f^2) / 2``         ``(f - 1)^2 / 2``
wgan-gp    ``f - r + 10 * GP``               ``-f``
=========  ================================  ===================

GP is the gradient penalty ``(||grad_x D(x_hat)||_2 - 1)^2`` on random interpolates.
Options: ``spectral_norm`` (bool, on every discriminator layer), ``d_norm``
(discriminator normalization; default ``batch``, ``layer`` for wgan-gp, ``none`` with
spectral norm), ``n_critic`` (discriminator steps per generator step; 5 for wgan-gp).
The critic steps of one training step share its real minibatch (fresh generated images
each time); the trainer draws a new real minibatch every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.blocks import get_activation, get_norm
from core.errors import InvalidInputError
from core.zoo.base import LatentDecoder, ZooModel, presets, register_family, ups_for

GP_WEIGHT = 10.0


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss (without the gradient penalty) from logits ``(B,)`` each."""
    if kind == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    raise InvalidInputError(f"unknown GAN loss '{kind}'; valid: ns, hinge, lsgan, wgan-gp")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss from the discriminator's logits ``(B,)`` on generated images."""
    if kind == "ns":
        return F.softplus(-fake).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    raise InvalidInputError(f"unknown GAN loss '{kind}'; valid: ns, hinge, lsgan, wgan-gp")


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``mean((||grad D(x_hat)||_2 - 1)^2)`` at ``x_hat = a*real + (1-a)*fake``, ``a ~ U(0,1)``
    per sample (Gulrajani et al. 2017)."""
    a = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class Discriminator(nn.Module):
    """``(B, 3, size, size) -> (B,)`` logits."""

    def __init__(self, entry, size: int, norm: str, spectral: bool):
        super().__init__()
        steps = ups_for(size)
        chans = [3] + [entry.width * 2 ** i for i in range(steps)]  # 3, w, 2w, 4w
        wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = []
        for i in range(steps):
            layers.append(wrap(nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1)))
            if i > 0:
                layers.append(get_norm(norm, chans[i + 1]))
            layers.append(get_activation("leaky_relu"))
        layers.append(wrap(nn.Conv2d(chans[-1], 1, 4)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


@register_family("gan", losses=("ns", "hinge", "lsgan", "wgan-gp"),
                 presets=presets(quick=(1200, 32, 2e-4), full=(30000, 128, 2e-4)))
class GAN(ZooModel):
    """DCGAN generator and discriminator; ns, hinge, lsgan or wgan-gp objective."""

    def __init__(self, entry, size: int):
        super().__init__(entry, size)
        spectral = bool(entry.option("spectral_norm", False))
        default_norm = "none" if spectral else ("layer" if entry.loss == "wgan-gp" else "batch")
        d_norm = entry.option("d_norm", default_norm)
        if entry.loss == "wgan-gp" and d_norm == "batch":
            raise InvalidInputError(f"{entry.name}: wgan-gp needs a discriminator without "
                                    "batch norm (the penalty is per sample)")
        self.n_critic = int(entry.option("n_critic", 5 if entry.loss == "wgan-gp" else 1))
        if self.n_critic < 1:
            raise InvalidInputError(f"{entry.name}: n_critic must be >= 1")
        self.generator = LatentDecoder(entry, size)
        self.discriminator = Discriminator(entry, size, d_norm, spectral)
        self.apply(_dcgan_init)

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        betas = (0.0, 0.9) if self.entry.loss == "wgan-gp" else (0.5, 0.999)
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr, betas=betas),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr,
                                                  betas=betas)}

    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.entry.latent, device=self.device, generator=generator)

    def discriminator_step(self, real: torch.Tensor, opt: torch.optim.Optimizer) -> float:
        with torch.no_grad():
            fake = self.generator(self.latents(real.shape[0]))
        loss = d_loss(self.entry.loss, self.discriminator(real), self.discriminator(fake))
        if self.entry.loss == "wgan-gp":
            loss = loss + GP_WEIGHT * gradient_penalty(self.discriminator, real, fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    def generator_step(self, n: int, opt: torch.optim.Optimizer) -> float:
        fake = self.generator(self.latents(n))
        loss = g_loss(self.entry.loss, self.discriminator(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # D's gradients are dropped by its own zero_grad before its step
        opt.step()
        return loss.item()

    def train_step(self, x, optimizers):
        self.train()
        d = sum(self.discriminator_step(x, optimizers["discriminator"])
                for _ in range(self.n_critic)) / self.n_critic
        g = self.generator_step(x.shape[0], optimizers["generator"])
        return {"loss": d + g, "d_loss": d, "g_loss": g}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.eval()
        return self.generator(self.latents(n, generator)).clamp(-1, 1)


def _dcgan_init(m: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) weights, norm scales N(1, 0.02), zero biases."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        weight = getattr(m, "parametrizations", None)
        target = m.parametrizations.weight.original if weight is not None else m.weight
        nn.init.normal_(target, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
