"""VAE family: a convolutional encoder and a DCGAN-shaped decoder.

Encoder: stride-2 4x4 convolutions (normalization and activation from the entry) down to
``(C, 4, 4)``, then a linear map to the posterior's mean and log-variance. Decoder: the
same shape as the GAN generator, its upsampling, normalization and activation from
``core.blocks`` through the entry, the last up-block straight to RGB, then ``tanh``.

Loss (``elbo``), per image, for ``x`` in ``[-1, 1]`` and a Gaussian decoder of fixed
standard deviation ``sigma`` (option, default 0.1)::

    L = ||x - D(z)||^2 / (2 sigma^2) + beta * KL(N(mu, diag(exp(logvar))) || N(0, I))
    KL = -1/2 * sum(1 + logvar - mu^2 - exp(logvar))

with ``z = mu + exp(logvar / 2) * eps`` (reparameterisation). ``beta`` (option, default
1) trades reconstruction for a smoother latent space. The reported ``loss`` is ``L`` per
pixel value (divided by ``3 * S * S``). Samples decode ``z ~ N(0, I)``.
"""

from __future__ import annotations

import torch
from torch import nn

from core.blocks import get_activation, get_norm
from core.errors import InvalidInputError
from core.zoo.base import LatentDecoder, ZooModel, presets, register_family, ups_for


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` summed over the last axis: ``(B, D) -> (B,)``."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)


class Encoder(nn.Module):
    """``(B, 3, S, S) -> (mu, logvar)``, each ``(B, latent)``."""

    def __init__(self, entry, size: int):
        super().__init__()
        steps = ups_for(size)
        chans = [3] + [entry.width * 2 ** i for i in range(steps)]
        layers: list[nn.Module] = []
        for i in range(steps):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1),
                       get_norm(entry.normalization, chans[i + 1]) if i > 0 else nn.Identity(),
                       get_activation(entry.activation)]
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 16, 2 * entry.latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.net(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)


@register_family("vae", losses=("elbo",),
                 presets=presets(quick=(1000, 64, 1e-3), full=(30000, 128, 5e-4)))
class VAE(ZooModel):
    """Convolutional VAE with a Gaussian decoder (beta-weighted ELBO)."""

    def __init__(self, entry, size: int):
        super().__init__(entry, size)
        self.beta = float(entry.option("beta", 1.0))
        self.sigma = float(entry.option("sigma", 0.1))
        if not self.beta >= 0 or not self.sigma > 0:
            raise InvalidInputError(f"{entry.name}: beta must be >= 0 and sigma > 0, "
                                    f"got beta={self.beta}, sigma={self.sigma}")
        self.encoder = Encoder(entry, size)
        self.decoder = LatentDecoder(entry, size)

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr)}

    def loss(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Negative ELBO terms per pixel value, averaged over the batch (``eps``: the
        reparameterisation noise, drawn when not given)."""
        mu, logvar = self.encoder(x)
        eps = torch.randn_like(mu) if eps is None else eps
        recon = self.decoder(mu + (0.5 * logvar).exp() * eps)
        dims = x[0].numel()
        rec = (x - recon).pow(2).flatten(1).sum(1) / (2 * self.sigma ** 2)
        kl = kl_divergence(mu, logvar)
        return {"loss": (rec + self.beta * kl).mean() / dims, "recon": rec.mean() / dims,
                "kl": kl.mean() / dims}

    def train_step(self, x, optimizers):
        self.train()
        terms = self.loss(x)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        nn.utils.clip_grad_norm_(self.parameters(), 10.0)
        opt.step()
        return {k: v.item() for k, v in terms.items()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.eval()
        z = torch.randn(n, self.entry.latent, device=self.device, generator=generator)
        return self.decoder(z).clamp(-1, 1)
