"""The flow family: a multi-scale Glow/RealNVP normalizing flow for small RGB images.

A normalizing flow is a bijection ``f`` from an image ``x`` to latents ``z`` whose Jacobian
determinant is cheap. With a standard normal density on ``z`` the change of variables gives
the exact log-likelihood

    log p(x) = log N(f(x); 0, I) + log |det df/dx|,

and sampling is ``x = f^-1(z)``, ``z ~ N(0, T^2 I)`` (a temperature ``T < 1`` trades
diversity for cleaner samples). ``f`` is a composition of simple bijections; their
log-determinants add:

* squeeze: space-to-depth x2, ``(C, H, W) -> (4C, H/2, W/2)``; a permutation, log-det 0.
* ActNorm: ``y = (x + b) * exp(s)`` per channel, log-det ``H W sum(s)``; ``b`` and ``s``
  are set on the first training batch so that ``y`` has zero mean and unit variance per
  channel (data-dependent initialisation).
* invertible 1x1 convolution: ``y = W x`` at every pixel with
  ``W = P L (U + diag(sign * exp(log_s)))`` (LU form: ``P`` a fixed permutation, ``L``
  unit lower-, ``U`` strictly upper-triangular), log-det ``H W sum(log_s)``; ``W`` starts
  as a random rotation.
* affine coupling: split the channels ``x = (a, b)``; ``(t, r) = NN(a)``;
  ``y = (a, (b + t) * sigmoid(r + 2))``. The Jacobian is block-triangular with log-det
  ``sum log sigmoid(r + 2)``. NN's last layer starts at zero, so every coupling starts as
  a fixed contraction by ``sigmoid(2) ~ 0.88``; the sigmoid keeps scales in ``(0, 1)``.
* split (Glow's multi-scale architecture): after every level but the last, half the
  channels ``z`` leave as a latent with a learned Gaussian conditioned on the kept half
  ``h``: ``z = mu(h) + exp(log_sigma(h)) * eps``. The flow outputs the standardised
  ``eps``, so ``x -> (eps_1, ..., eps_L)`` is itself a bijection (log-det
  ``-sum log_sigma``) and every latent is standard normal under the model.

A level squeezes, runs ``depth`` steps ``[ActNorm -> 1x1 conv -> coupling]``, then splits.

Likelihood of 8-bit images: data are ``x = k / 127.5 - 1``, ``k in {0..255}``. Uniform
dequantisation ``x~ = x + (u - 1/2) / 127.5``, ``u ~ U[0, 1)``, gives a continuous input
whose expected log-density lower-bounds the discrete log-probability. In the pixel scale
``k`` (bins of width 1) the density is ``p(x~) / 127.5^D``, so
``bits/dim = (-log p(x~) / D + log 127.5) / log 2``, the standard figure.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.blocks import conv2d, get_activation
from core.errors import InvalidInputError, check_int, check_real
from core.zoo.base import ZooModel, presets, register_family
from core.zoo.entries import ZooEntry

PIXEL_SCALE = 127.5  # x in [-1, 1] is k / 127.5 - 1 for 8-bit k
LOG_SCALE_MIN = -8.0  # floor of coupling and split log-scales: inverses stay finite
LOG_SCALE_MAX = 8.0  # ceiling of split log-sigmas (coupling scales are below 1 anyway)
GRAD_CLIP = 50.0  # max global gradient norm of one train step
ACTNORM_EPS = 1e-6


# --- pure functions ---------------------------------------------------------------------


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Space-to-depth x2: ``(B, C, H, W) -> (B, 4C, H/2, W/2)``, ``H`` and ``W`` even.

    Output channel ``4c + 2i + j`` at ``(h, w)`` holds ``x[:, c, 2h + i, 2w + j]``.
    """
    if x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
        raise InvalidInputError(f"squeeze needs (B, C, H, W) with even H, W, got "
                                f"{tuple(x.shape)}")
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """Depth-to-space x2, the exact inverse of :func:`squeeze`:
    ``(B, 4C, H, W) -> (B, C, 2H, 2W)``."""
    if x.ndim != 4 or x.shape[1] % 4:
        raise InvalidInputError(f"unsqueeze needs (B, 4C, H, W), got {tuple(x.shape)}")
    b, c, h, w = x.shape
    x = x.reshape(b, c // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, 2 * h, 2 * w)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``sum log N(z; 0, 1)`` over all but the batch axis: ``(B, ...) -> (B,)``."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).flatten(1).sum(1)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """8-bit data in ``[-1, 1]`` plus uniform noise over its bin, width ``1 / 127.5``,
    centred on the pixel: ``(B, C, H, W) -> (B, C, H, W)``."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + (u - 0.5) / PIXEL_SCALE


def bits_per_dim_of(log_prob: torch.Tensor, dims: int) -> torch.Tensor:
    """Bits per dimension in the 8-bit pixel scale from log-densities (nats) of
    dequantised ``[-1, 1]`` data with ``dims`` values each: ``(B,) -> (B,)``."""
    return (-log_prob / dims + math.log(PIXEL_SCALE)) / math.log(2)


def zero_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    """A 3x3 'same' convolution whose weights and bias start at zero."""
    conv = conv2d(in_ch, out_ch, 3)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _per_sample(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar log-det broadcast to ``(B,)`` for the batch ``x``."""
    return value.expand(x.shape[0])


# --- invertible layers: forward(x) -> (y, logdet (B,)), inverse(y) -> x ----------------


class ActNorm(nn.Module):
    """Per-channel affine ``y = (x + loc) * exp(log_scale)`` on ``(B, C, H, W)``.

    The first batch seen in training mode sets ``loc`` and ``log_scale`` so that its output
    has zero mean and unit variance per channel; the ``initialized`` buffer records that
    (and travels with ``state_dict``, so a loaded checkpoint is not re-initialised).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + ACTNORM_EPS))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + self.loc) * self.log_scale.exp()
        return y, _per_sample(self.log_scale.sum() * (x.shape[2] * x.shape[3]), x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.loc


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution ``(B, C, H, W) -> (B, C, H, W)``, LU-parametrised.

    ``W = P (L + I) (U + diag(sign * exp(log_s)))`` with ``L`` strictly lower and ``U``
    strictly upper triangular (only those parts of the parameters are used); ``P`` and
    ``sign`` are fixed buffers. Initialised from a random rotation drawn from torch's
    global RNG (seeded by ``build_model``).
    """

    def __init__(self, channels: int):
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
        perm, lower, upper = torch.linalg.lu(rotation)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", perm)
        self.register_buffer("sign", torch.sign(diag))
        self.lower = nn.Parameter(torch.tril(lower, -1))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diag.abs()))

    def weight(self) -> torch.Tensor:
        """The ``(C, C)`` matrix ``W``."""
        eye = torch.eye(self.log_s.shape[0], dtype=self.log_s.dtype, device=self.log_s.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * self.log_s.exp())
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.conv2d(x, self.weight()[:, :, None, None])
        return y, _per_sample(self.log_s.sum() * (x.shape[2] * x.shape[3]), x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv2d(y, torch.linalg.inv(self.weight())[:, :, None, None])


class AffineCoupling(nn.Module):
    """Glow's affine coupling on ``(B, C, H, W)``: the first ``C // 2`` channels ``a`` pass
    unchanged and set shift ``t`` and log-scale ``log sigmoid(r + 2)`` of the rest.

    NN: conv3x3 -> activation -> conv1x1 -> activation -> zero-initialised conv3x3, hidden
    width ``width``, activations from ``core.blocks``.
    """

    def __init__(self, channels: int, width: int, activation: str):
        super().__init__()
        self.keep = channels // 2
        out = channels - self.keep
        self.net = nn.Sequential(
            conv2d(self.keep, width, 3), get_activation(activation),
            conv2d(width, width, 1), get_activation(activation),
            zero_conv(width, 2 * out),
        )

    def shift_log_scale(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, keep, H, W) -> (t, log_scale)``, each ``(B, C - keep, H, W)``."""
        h = self.net(a)
        shift, raw = h[:, 0::2], h[:, 1::2]
        return shift, F.logsigmoid(raw + 2.0).clamp(min=LOG_SCALE_MIN)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, :self.keep], x[:, self.keep:]
        shift, log_scale = self.shift_log_scale(a)
        y = torch.cat([a, (b + shift) * log_scale.exp()], 1)
        return y, log_scale.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = y[:, :self.keep], y[:, self.keep:]
        shift, log_scale = self.shift_log_scale(a)
        return torch.cat([a, b * torch.exp(-log_scale) - shift], 1)


class FlowStep(nn.Module):
    """One step ActNorm -> invertible 1x1 conv -> affine coupling, ``(B, C, H, W)``."""

    def __init__(self, channels: int, width: int, activation: str):
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(channels), InvConv1x1(channels),
                                     AffineCoupling(channels, width, activation)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class SplitPrior(nn.Module):
    """Glow's split with a learned conditional prior, as a bijection
    ``(B, C, H, W) -> (h (B, C//2, H, W), eps (B, C - C//2, H, W))``:
    ``eps = (z - mu(h)) * exp(-log_sigma(h))``, log-det ``-sum log_sigma``.
    ``mu`` and ``log_sigma`` come from a zero-initialised conv3x3 (a standard normal at
    first)."""

    def __init__(self, channels: int):
        super().__init__()
        self.keep = channels // 2
        self.conv = zero_conv(self.keep, 2 * (channels - self.keep))

    def mean_log_sigma(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(h)
        return out[:, 0::2], out[:, 1::2].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, z = x[:, :self.keep], x[:, self.keep:]
        mean, log_sigma = self.mean_log_sigma(h)
        return h, (z - mean) * torch.exp(-log_sigma), -log_sigma.flatten(1).sum(1)

    def inverse(self, h: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        mean, log_sigma = self.mean_log_sigma(h)
        return torch.cat([h, mean + log_sigma.exp() * eps], 1)


# --- the family -------------------------------------------------------------------------


def _positive_int_option(entry: ZooEntry, key: str, default: int) -> int:
    return check_int(f"{entry.name}: option {key}", entry.option(key, default))


def _temperature(value, name: str) -> float:
    return check_real(f"{name}: temperature", value, 0)


# Flows do not upsample features: their only resolution change is the (un)squeeze, a
# lossless space-to-depth reshuffle; they normalise with actnorm.
@register_family("flow", losses=("nll",), upsampling=("squeeze",), normalization=("actnorm",),
                 presets=presets(quick=(500, 64, 1e-3), full=(30000, 64, 5e-4)))
class Flow(ZooModel):
    """Multi-scale Glow for ``(B, 3, size, size)`` images in ``[-1, 1]``.

    Options: ``levels`` (3) squeeze levels, ``depth`` (4) steps per level, ``temperature``
    (0.7) of :meth:`sample`; ``entry.width`` is the coupling networks' hidden width.
    ``size`` must be divisible by ``2 ** levels``.
    """

    def __init__(self, entry: ZooEntry, size: int):
        super().__init__(entry, size)
        levels = _positive_int_option(entry, "levels", 3)
        depth = _positive_int_option(entry, "depth", 4)
        self.temperature = _temperature(entry.option("temperature", 0.7), entry.name)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1 \
                or size % 2 ** levels:
            raise InvalidInputError(f"{entry.name}: size must be a positive multiple of "
                                    f"2**levels = {2 ** levels}, got {size!r}")
        channels, side = 3, size
        self.steps = nn.ModuleList()
        self.priors = nn.ModuleList()
        self.latent_shapes: list[tuple[int, int, int]] = []
        for level in range(levels):
            channels, side = 4 * channels, side // 2
            self.steps.append(nn.ModuleList(
                FlowStep(channels, entry.width, entry.activation) for _ in range(depth)))
            if level < levels - 1:
                prior = SplitPrior(channels)
                self.priors.append(prior)
                self.latent_shapes.append((channels - prior.keep, side, side))
                channels = prior.keep
            else:
                self.latent_shapes.append((channels, side, side))

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 \
                or tuple(x.shape[1:]) != (3, self.size, self.size):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InvalidInputError(f"flow input must be (B, 3, {self.size}, {self.size}), "
                                    f"got {shape}")
        if not torch.isfinite(x).all():
            raise InvalidInputError("flow input contains NaN or infinite values")

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``x (B, 3, S, S) -> (zs, logdet (B,))``: one standard-normal latent per level,
        ``zs[l]`` of shape ``(B, *latent_shapes[l])``, and ``log |det d(zs)/dx|``."""
        self._check_input(x)
        logdet = x.new_zeros(x.shape[0])
        zs = []
        h = x
        for level, steps in enumerate(self.steps):
            h = squeeze(h)
            for step in steps:
                h, ld = step(h)
                logdet = logdet + ld
            if level < len(self.priors):
                h, eps, ld = self.priors[level](h)
                zs.append(eps)
                logdet = logdet + ld
        zs.append(h)
        return zs, logdet

    def decode(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """The inverse of :meth:`encode`: latents as it returns them -> ``(B, 3, S, S)``."""
        if len(zs) != len(self.latent_shapes) or any(
                tuple(z.shape[1:]) != shape for z, shape in zip(zs, self.latent_shapes)):
            got = [tuple(z.shape) for z in zs]
            raise InvalidInputError(f"flow latents must be (B, *shape) for shapes "
                                    f"{self.latent_shapes}, got {got}")
        h = zs[-1]
        for level in reversed(range(len(self.steps))):
            if level < len(self.priors):
                h = self.priors[level].inverse(h, zs[level])
            for step in reversed(self.steps[level]):
                h = step.inverse(h)
            h = unsqueeze(h)
        return h

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density (nats) of continuous ``x (B, 3, S, S)``: ``(B,)``."""
        zs, logdet = self.encode(x)
        return sum(standard_normal_log_prob(z) for z in zs) + logdet

    def bits_per_dim(self, x: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits/dim of 8-bit data ``x (B, 3, S, S)`` in ``[-1, 1]`` under uniform
        dequantisation (noise drawn with ``generator``), in the standard ``[0, 256)`` pixel
        scale: ``(B,)``. An upper bound on the discrete model's code length."""
        self._check_input(x)
        return bits_per_dim_of(self.log_prob(dequantize(x, generator)), x[0].numel())

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr)}

    def train_step(self, x: torch.Tensor,
                   optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One Adam step on mean bits/dim (gradient norm clipped to ``GRAD_CLIP``); the
        first call also initialises every ActNorm from ``x``."""
        self.train()
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss = self.bits_per_dim(x).mean()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.parameters(), GRAD_CLIP)
        opt.step()
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm)}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float | None = None) -> torch.Tensor:
        """``(n, 3, S, S)`` in ``[-1, 1]``: decoded ``N(0, T^2)`` latents, all drawn with
        ``generator``; ``T`` defaults to the entry's ``temperature`` option (0.7)."""
        check_int("n", n)
        t = self.temperature if temperature is None else _temperature(temperature, "sample")
        param = next(self.parameters())
        zs = [torch.randn((n, *shape), generator=generator, device=param.device,
                          dtype=param.dtype) * t for shape in self.latent_shapes]
        x = self.decode(zs)
        return x.clamp(-1.0, 1.0)  # NaN stays NaN: sample_to_folder refuses it by name
