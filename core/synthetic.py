"""Synthetic generators: a :class:`~core.specs.GeneratorSpec` made into a network.

The architecture follows Yang et al.'s synthetic models: a shallow image-to-image
autoencoder applied to real images. A 3x3 stem lifts the image to ``channels`` feature
maps; each down-block halves the resolution (average pool x2, conv, batch norm, ReLU,
conv, batch norm); the up-blocks of the spec bring it back up, every block built from
the registries in :mod:`core.blocks`; a 1x1 head maps back to image channels. The head
is linear: any non-linearity that shapes the spectrum is a design choice in the spec.
"""

from __future__ import annotations

import torch
from torch import nn

from core.blocks import get_activation, get_norm, get_upsampling
from core.specs import BlockSpec, GeneratorSpec


def _conv3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1)


class DownBlock(nn.Module):
    """Average pool x2, conv, batch norm, ReLU, conv, batch norm: ``(B, C, H, W) ->
    (B, C, H/2, W/2)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.AvgPool2d(2), _conv3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU(),
            _conv3(channels, channels), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpBlock(nn.Module):
    """One :class:`BlockSpec`: ``post`` = up, convs, norm, act; ``pre`` = norm, act, up,
    convs. ``(B, in_ch, H, W) -> (B, out_ch, s*H, s*W)``."""

    def __init__(self, block: BlockSpec, in_ch: int, out_ch: int):
        super().__init__()
        self.order = block.order
        norm_ch = out_ch if block.order == "post" else in_ch
        self.up = get_upsampling(block.upsampling, in_ch, out_ch, block.factor,
                                 kernel=block.kernel)
        self.convs = nn.Sequential(*(_conv3(out_ch, out_ch) for _ in range(block.convs - 1)))
        self.norm = get_norm(block.norm, norm_ch)
        self.act = get_activation(block.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "pre":
            return self.convs(self.up(self.act(self.norm(x))))
        return self.act(self.norm(self.convs(self.up(x))))


class SyntheticGenerator(nn.Module):
    """The network a :class:`GeneratorSpec` describes: ``(B, in, H, W) -> (B, out,
    H * total_factor / 2**down, ...)`` (the input's size when ``2**down`` equals the
    total factor)."""

    def __init__(self, spec: GeneratorSpec):
        super().__init__()
        c = spec.channels
        self.spec = spec
        self.stem = _conv3(spec.in_channels, c)
        self.down = nn.Sequential(*(DownBlock(c) for _ in range(spec.down)))
        self.up = nn.Sequential(*(UpBlock(b, c, c) for b in spec.up))
        self.head = nn.Conv2d(c, spec.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.down(self.stem(x))))


def build_generator(spec: GeneratorSpec) -> SyntheticGenerator:
    """Build the network of ``spec`` with weights drawn from ``spec.seed``.

    The global random state is left untouched, so the same spec always gives the same
    weights, whatever ran before.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return SyntheticGenerator(spec)


# --- the space of synthetic models ------------------------------------------------------

# Yang et al.'s design space (their code), plus our pixel shuffle and bicubic upsamplers:
# every up-block doubles the size; 1 or 2 up-blocks; 32 channels.
SYNTHETIC_SPACE = {
    "upsampling": ("bilinear", "nearest", "transposed", "pixelshuffle", "bicubic"),
    "norm": ("none", "batch", "instance"),
    "activation": ("none", "relu", "sigmoid", "tanh"),
    "order": ("post", "pre"),
    "convs": (1, 2),
    "blocks": (1, 2),
}


def architectures(space: dict = SYNTHETIC_SPACE, channels: int = 32) -> list[GeneratorSpec]:
    """Every architecture of ``space`` (seed 0), in a fixed order: 480 for the default."""
    from itertools import product

    keys = ("upsampling", "norm", "activation", "order", "convs", "blocks")
    specs = []
    for up, norm, act, order, convs, blocks in product(*(space[k] for k in keys)):
        kernel = 2 if up == "transposed" else 3  # the paper's transposed conv is k2 s2
        block = BlockSpec(up, 2, kernel, norm, act, order, convs)
        specs.append(GeneratorSpec(up=(block,) * blocks, down=blocks, channels=channels))
    return specs


def sample_spec(rng, space: dict = SYNTHETIC_SPACE, channels: int = 32) -> GeneratorSpec:
    """One architecture drawn uniformly from ``space`` with a drawn seed.

    Args:
        rng: a ``random.Random`` (or an int seed for one).
    """
    import random

    rng = random.Random(rng) if isinstance(rng, int) else rng
    up = rng.choice(space["upsampling"])
    block = BlockSpec(up, 2, 2 if up == "transposed" else 3, rng.choice(space["norm"]),
                      rng.choice(space["activation"]), rng.choice(space["order"]),
                      rng.choice(space["convs"]))
    blocks = rng.choice(space["blocks"])
    return GeneratorSpec(up=(block,) * blocks, down=blocks, channels=channels,
                         seed=rng.randrange(2**31))
