"""The diffusion family: a DDPM (Ho et al. 2020) with a small U-Net, sampled with DDIM.

Forward process. A variance schedule ``beta_0 .. beta_{T-1}`` (linear, or Nichol &
Dhariwal's cosine) defines ``alpha_bar_t = prod_{i <= t} (1 - beta_i)`` and the noised
image at step ``t`` (``t = 0 .. T-1``; ``alpha_bar_{-1} = 1`` is the clean image)::

    x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * eps,    eps ~ N(0, I)

Training ("eps-mse"). The U-Net ``eps_theta(x_t, t)`` predicts the noise; the loss is
``mean |eps_theta(x_t, t) - eps|^2`` with ``t`` uniform on ``0 .. T-1``. An exponential
moving average (EMA) of the weights is what samples.

Sampling (DDIM, Song et al. 2021). On a decreasing subsequence ``tau_1 > ... > tau_K``
of the steps, each update predicts the clean image and re-noises it to the previous
step's level::

    x0_hat = (x_t - sqrt(1 - ab_t) * eps) / sqrt(ab_t)
    sigma  = eta * sqrt((1 - ab_prev) / (1 - ab_t)) * sqrt(1 - ab_t / ab_prev)
    x_prev = sqrt(ab_prev) * x0_hat + sqrt(1 - ab_prev - sigma^2) * eps + sigma * z

``eta = 0`` is deterministic given ``x_T``; ``eta = 1`` is DDPM's ancestral sampler on
the subsequence. The last update uses ``ab_prev = 1`` and returns ``x0_hat``.

Entry options (all optional): ``timesteps`` (T, 1000), ``schedule`` (``linear`` |
``cosine``), ``ema`` (decay, 0.999), ``sample_steps`` (K, 50), ``mults`` (channel
multipliers per resolution level as a string such as ``"1,2,2"``; default ``1,2,2`` at
32 px and ``1,2,2,2`` at 64 px), ``clip_x0`` (clamp ``x0_hat`` to ``[-1, 1]`` while
sampling, True). The upsampling, normalization and activation of the U-Net come from
the entry through :mod:`core.blocks`.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from core.blocks import conv2d, get_activation, get_norm, get_upsampling
from core.errors import InvalidInputError, check_int
from core.zoo.base import ZooModel, presets, register_family, up_options
from core.zoo.entries import ZooEntry

SCHEDULES = ("linear", "cosine")
# Images denoised together by ``Diffusion.sample``; larger requests run in chunks.
SAMPLE_CHUNK = 256


# --- schedules and the forward / reverse maths -------------------------------------------


def linear_betas(T: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """Ho et al.'s schedule: ``beta_t = start + (end - start) * t / (T - 1)``, ``(T,)``
    float64."""
    _check_steps("T", T)
    return torch.linspace(start, end, T, dtype=torch.float64)


def cosine_alpha_bar(t: torch.Tensor, T: int, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's closed form ``alpha_bar(t) = f(t) / f(0)`` with
    ``f(t) = cos(((t / T) + s) / (1 + s) * pi / 2)^2``, for continuous ``t`` in
    ``[0, T]`` (same shape as ``t``, float64)."""
    t = torch.as_tensor(t, dtype=torch.float64)

    def f(u):
        return torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2

    return f(t) / f(torch.zeros((), dtype=torch.float64))


def cosine_betas(T: int, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule, ``(T,)`` float64:
    ``beta_t = min(1 - alpha_bar(t + 1) / alpha_bar(t), 0.999)`` so that
    ``alpha_bars(betas)[t] = alpha_bar(t + 1)`` until the clip (near ``t = T``)."""
    _check_steps("T", T)
    ab = cosine_alpha_bar(torch.arange(T + 1, dtype=torch.float64), T, s)
    return (1 - ab[1:] / ab[:-1]).clamp(max=0.999)


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """``alpha_bar_t = prod_{i <= t} (1 - beta_i)``: ``(T,) -> (T,)``."""
    return torch.cumprod(1 - betas, dim=0)


def _per_sample(ab, x: torch.Tensor) -> torch.Tensor:
    """``ab`` (a number, a 0-d tensor or ``(B,)``) shaped to broadcast over ``x``
    ``(B, ...)``: ``(B,) -> (B, 1, ..., 1)``, in ``x``'s dtype and device."""
    ab = torch.as_tensor(ab, dtype=x.dtype, device=x.device)
    if ab.ndim == 0:
        return ab
    if ab.shape == (x.shape[0],) + (1,) * (x.ndim - 1):  # already shaped
        return ab
    if ab.ndim != 1 or ab.shape[0] != x.shape[0]:
        raise InvalidInputError(f"alpha_bar must be a number or one per sample "
                                f"({x.shape[0]},), got shape {tuple(ab.shape)}")
    return ab.view(-1, *([1] * (x.ndim - 1)))


def q_sample(x0: torch.Tensor, alpha_bar_t, noise: torch.Tensor) -> torch.Tensor:
    """The noised image ``x_t = sqrt(ab) * x0 + sqrt(1 - ab) * noise``.

    ``x0``, ``noise``: ``(B, C, H, W)``; ``alpha_bar_t``: a number or ``(B,)`` (one per
    sample). Returns ``(B, C, H, W)``.
    """
    ab = _per_sample(alpha_bar_t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, ab) -> torch.Tensor:
    """Invert :func:`q_sample` given the noise: ``x0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab)``.

    ``x_t``, ``eps``: ``(B, C, H, W)``; ``ab``: a number or ``(B,)``.
    """
    ab = _per_sample(ab, x_t)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, ab_t, ab_prev, eta: float = 0.0,
              noise: torch.Tensor | None = None, *, clip_x0: bool = False) -> torch.Tensor:
    """One DDIM update from level ``ab_t`` to the earlier level ``ab_prev`` (``>= ab_t``).

    ``x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)``,
    ``sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t)) * sqrt(1 - ab_t / ab_prev)``,
    ``x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + sigma * noise``.

    Args:
        x_t, eps: ``(B, C, H, W)``, the current sample and the predicted noise.
        ab_t, ab_prev: numbers or ``(B,)``; ``ab_prev = 1`` returns ``x0``.
        eta: 0 (deterministic DDIM) .. 1 (DDPM-like); ``noise`` ``(B, C, H, W)`` is
            required when ``eta > 0``.
        clip_x0: clamp ``x0`` to ``[-1, 1]`` and use the noise consistent with it,
            ``eps = (x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t)`` (a sampling aid; off for
            the exact formula).
    """
    if eta < 0:
        raise InvalidInputError(f"eta must be >= 0, got {eta!r}")
    if eta > 0 and noise is None:
        raise InvalidInputError("ddim_step with eta > 0 needs noise")
    ab_t, ab_prev = _per_sample(ab_t, x_t), _per_sample(ab_prev, x_t)
    x0 = predict_x0(x_t, eps, ab_t)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = (x_t - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
    sigma = eta * ((1 - ab_prev) / (1 - ab_t)).sqrt() * (1 - ab_t / ab_prev).clamp(min=0).sqrt()
    x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).clamp(min=0).sqrt() * eps
    if eta > 0:
        x_prev = x_prev + sigma * noise
    return x_prev


def ddim_timesteps(T: int, steps: int) -> torch.Tensor:
    """``steps`` evenly spaced steps from ``T - 1`` down to 0 (rounded, distinct), ``(steps,)``
    int64; one step is ``[T - 1]``."""
    _check_steps("T", T)
    _check_steps("steps", steps)
    if steps > T:
        raise InvalidInputError(f"steps must be <= timesteps ({T}), got {steps}")
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long()


def _check_steps(name: str, value) -> None:
    check_int(name, value)


# --- the U-Net ---------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style sinusoids of the step: ``(B,) -> (B, dim)``,
    ``[cos(t w_k), sin(t w_k)]`` with ``w_k = max_period^(-k / (dim/2))``,
    ``k = 0 .. dim/2 - 1`` (a zero column pads odd ``dim``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def channel_mults(size: int, spec: str | None = None) -> tuple[int, ...]:
    """Channel multiplier per resolution level, one downsampling between levels.

    Default ``(1, 2, 2)`` at 32 px (32 -> 16 -> 8) and ``(1, 2, 2, 2)`` at 64 px; ``spec``
    such as ``"1,2"`` overrides (``len - 1`` halvings must leave at least 4 px).
    """
    if spec is None:
        return (1, 2, 2) if size <= 32 else (1, 2, 2, 2)
    try:
        mults = tuple(int(m) for m in str(spec).split(","))
    except ValueError:
        raise InvalidInputError(f"mults must be comma-separated integers such as '1,2,2', "
                                f"got {spec!r}") from None
    if not mults or min(mults) < 1 or size >> (len(mults) - 1) < 4:
        raise InvalidInputError(f"mults must be 1 to {(size // 4).bit_length()} positive "
                                f"integers at {size} px, got {spec!r}")
    return mults


class ResBlock(nn.Module):
    """``h = conv(act(norm(x))) + proj(act(emb))``; ``out = skip(x) + conv(act(norm(h)))``.

    ``(B, in_ch, H, W), (B, emb_dim) -> (B, out_ch, H, W)``; ``skip`` is a 1x1 conv when
    the channel count changes, else the identity.
    """

    def __init__(self, entry: ZooEntry, in_ch: int, out_ch: int, emb_dim: int):
        super().__init__()
        self.norm1 = get_norm(entry.normalization, in_ch)
        self.act1 = get_activation(entry.activation)
        self.conv1 = conv2d(in_ch, out_ch)
        self.emb = nn.Sequential(get_activation(entry.activation), nn.Linear(emb_dim, out_ch))
        self.norm2 = get_norm(entry.normalization, out_ch)
        self.act2 = get_activation(entry.activation)
        self.conv2 = conv2d(out_ch, out_ch)
        self.skip = nn.Identity() if in_ch == out_ch else conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act1(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(self.act2(self.norm2(h)))


class UNet(nn.Module):
    """The noise predictor ``eps_theta``: ``(B, 3, S, S), (B,) -> (B, 3, S, S)``.

    Stem 3x3 conv to ``width`` channels; per level ``i`` a :class:`ResBlock` to
    ``width * mults[i]`` channels whose output is kept as a skip, then a stride-2 3x3
    conv (all but the last level); two ResBlocks in the middle; going up, per level the
    skip is concatenated, a ResBlock restores ``width * mults[i]`` channels and (all but
    the top level) the entry's x2 upsampling block follows; norm, act and a
    zero-initialised 3x3 conv give the noise (so ``eps_theta = 0`` at initialisation).
    The step enters through sinusoids of dimension ``width`` and an MLP to ``4 * width``.
    """

    def __init__(self, entry: ZooEntry, mults: tuple[int, ...]):
        super().__init__()
        w, emb_dim = entry.width, 4 * entry.width
        self.width = w
        self.time_mlp = nn.Sequential(nn.Linear(w, emb_dim), get_activation(entry.activation),
                                      nn.Linear(emb_dim, emb_dim))
        self.stem = conv2d(3, w)
        chans = [w * m for m in mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = w
        for i, ch in enumerate(chans):
            self.down.append(ResBlock(entry, prev, ch, emb_dim))
            if i < len(chans) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        self.mid = nn.ModuleList([ResBlock(entry, prev, prev, emb_dim) for _ in range(2)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(chans))):
            ch = chans[i]
            self.up.append(ResBlock(entry, prev + ch, ch, emb_dim))
            if i > 0:
                self.upsample.append(get_upsampling(entry.upsampling, ch, ch, 2,
                                                    **up_options(entry)))
            prev = ch
        self.out = nn.Sequential(get_norm(entry.normalization, prev),
                                 get_activation(entry.activation), conv2d(prev, 3))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.width))
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        for block in self.mid:
            h = block(h, emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.out(h)


# --- the family --------------------------------------------------------------------------


@register_family("diffusion", losses=("eps-mse",),
                 presets=presets(quick=(1000, 32, 1e-3), full=(60000, 128, 2e-4)))
class Diffusion(ZooModel):
    """DDPM trained on the noise-prediction loss, sampled by DDIM with the EMA U-Net.

    ``unet`` is trained; ``ema`` (same architecture, no gradients) follows it with decay
    ``min(ema, (1 + n) / (10 + n))`` after ``n`` updates, so short runs already have a
    usable average. ``betas`` and ``alpha_bars`` are ``(T,)`` float32 buffers.
    """

    def __init__(self, entry: ZooEntry, size: int):
        super().__init__(entry, size)
        self.T = entry.option("timesteps", 1000)
        _check_steps("timesteps", self.T)
        self.schedule = entry.option("schedule", "linear")
        if self.schedule not in SCHEDULES:
            raise InvalidInputError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                                    f"got {self.schedule!r}")
        self.ema_decay = float(entry.option("ema", 0.999))
        if not 0 <= self.ema_decay < 1:
            raise InvalidInputError(f"ema must be in [0, 1), got {self.ema_decay!r}")
        self.sample_steps = entry.option("sample_steps", 50)
        ddim_timesteps(self.T, self.sample_steps)  # validates
        self.clip_x0 = bool(entry.option("clip_x0", True))
        # Ho et al.'s endpoints are for T = 1000; scaled by 1000 / T (Nichol & Dhariwal) so
        # that any T ends near pure noise (alpha_bar_{T-1} ~ 4e-5).
        scale = 1000 / self.T
        betas = (linear_betas(self.T, 1e-4 * scale, min(0.02 * scale, 0.999))
                 if self.schedule == "linear" else cosine_betas(self.T))
        self.register_buffer("betas", betas.float())
        self.register_buffer("alpha_bars", alpha_bars(betas).float())
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self.mults = channel_mults(size, entry.option("mults", None))
        self.unet = UNet(entry, self.mults)
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.unet.parameters(), lr)}

    def loss(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``mean |unet(q_sample(x, alpha_bars[t], noise), t) - noise|^2`` for ``x``,
        ``noise`` ``(B, 3, S, S)`` and integer steps ``t`` ``(B,)``."""
        x_t = q_sample(x, self.alpha_bars[t], noise)
        return F.mse_loss(self.unet(x_t, t), noise)

    def train_step(self, x: torch.Tensor,
                   optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """Uniform ``t``, Gaussian noise (global RNG), one Adam step with the gradient
        norm clipped at 1, then the EMA update."""
        self.unet.train()
        t = torch.randint(0, self.T, (x.shape[0],), device=x.device)
        noise = torch.randn_like(x)
        loss = self.loss(x, t, noise)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        opt.step()
        self.update_ema()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema <- d * ema + (1 - d) * unet`` with ``d = min(decay, (1 + n) / (10 + n))``
        after ``n`` earlier updates; buffers are copied."""
        n = int(self.ema_updates)
        d = min(self.ema_decay, (1 + n) / (10 + n))
        for e, p in zip(self.ema.parameters(), self.unet.parameters()):
            e.lerp_(p, 1 - d)
        for e, b in zip(self.ema.buffers(), self.unet.buffers()):
            e.copy_(b)
        self.ema_updates += 1

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               steps: int | None = None, eta: float = 0.0) -> torch.Tensor:
        """``n`` DDIM samples of the EMA U-Net, ``(n, 3, S, S)`` clamped to ``[-1, 1]``.

        ``steps`` (default the entry's ``sample_steps``) evenly spaced steps from
        ``T - 1`` to 0; every random draw (``x_T``, and the ``eta > 0`` noise) comes from
        ``generator``, chunk after chunk of :data:`SAMPLE_CHUNK` images.
        """
        _check_steps("n", n)
        ts = ddim_timesteps(self.T, self.sample_steps if steps is None else steps)
        was_training = self.ema.training
        self.ema.eval()
        chunks = [self._sample_chunk(min(SAMPLE_CHUNK, n - i), ts, generator, eta)
                  for i in range(0, n, SAMPLE_CHUNK)]
        self.ema.train(was_training)
        return torch.cat(chunks).clamp(-1, 1)

    def _sample_chunk(self, n: int, ts: torch.Tensor, generator: torch.Generator | None,
                      eta: float) -> torch.Tensor:
        dev, s = self.device, self.size
        x = torch.randn(n, 3, s, s, generator=generator, device=dev)
        ab = self.alpha_bars
        for k, t in enumerate(ts.tolist()):
            ab_prev = ab[ts[k + 1]] if k + 1 < len(ts) else ab.new_ones(())
            eps = self.ema(x, torch.full((n,), t, device=dev, dtype=torch.long))
            noise = (torch.randn(x.shape, generator=generator, device=dev)
                     if eta > 0 else None)
            x = ddim_step(x, eps, ab[t], ab_prev, eta, noise, clip_x0=self.clip_x0)
        return x
