"""What every zoo family provides, the family registry, and the shared up-block.

A family is an ``nn.Module`` subclass of :class:`ZooModel` built from a
:class:`~core.zoo.entries.ZooEntry` and an image size. The trainer (``core.zoo.train``)
knows nothing else about it:

* ``optimizers(lr)`` returns named optimisers (their states go into checkpoints);
* ``train_step(x, optimizers)`` takes a batch ``(B, 3, S, S)`` in ``[-1, 1]``, makes one
  optimisation step and returns named floats, always including ``loss``;
* ``sample(n, generator)`` returns ``(n, 3, S, S)`` in ``[-1, 1]`` (clamped), drawn with
  ``generator`` (a ``torch.Generator`` on the model's device) so sampling is repeatable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from core.blocks import get_activation, get_norm, get_upsampling
from core.errors import InvalidInputError, UnknownNameError
from core.runtime import cpu_seeded
from core.zoo.entries import RESOLUTIONS, ZooEntry

FAMILIES: dict[str, type[ZooModel]] = {}


def register_family(name: str) -> Callable[[type], type]:
    """Class decorator: file a :class:`ZooModel` subclass under its family name."""

    def add(cls: type) -> type:
        if name in FAMILIES:
            raise ValueError(f"family '{name}' is registered twice")
        FAMILIES[name] = cls
        cls.family = name
        return cls

    return add


def build_model(entry: ZooEntry, size: int | None = None) -> ZooModel:
    """The untrained network of ``entry`` at ``size`` pixels (default: its resolution),
    its initial weights seeded by ``entry.seed``."""
    size = entry.resolution if size is None else size
    if size not in RESOLUTIONS:
        raise InvalidInputError(f"size must be one of {RESOLUTIONS}, got {size!r}")
    try:
        cls = FAMILIES[entry.family]
    except KeyError:
        raise UnknownNameError(f"unknown family '{entry.family}'; valid: "
                               f"{', '.join(FAMILIES)}") from None
    with cpu_seeded(entry.seed):
        return cls(entry, size)


class ZooModel(nn.Module):
    """Base class of the four families (see the module docstring for the contract)."""

    family: str = ""

    def __init__(self, entry: ZooEntry, size: int):
        super().__init__()
        self.entry, self.size = entry, size

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor,
                   optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def up_options(entry: ZooEntry) -> dict:
    """Options of the entry's x2 upsampling block: kernel 4 for transposed convolutions
    (DCGAN's, even overlap), the registry's default 3x3 otherwise."""
    return {"kernel": 4} if entry.upsampling == "transposed" else {}


def up_block(entry: ZooEntry, in_ch: int, out_ch: int, *, norm: bool = True,
             act: bool = True) -> nn.Sequential:
    """x2 upsampling by ``entry.upsampling``, then its normalization and activation, all
    from ``core.blocks``: ``(B, in_ch, H, W) -> (B, out_ch, 2H, 2W)``.

    Transposed convolutions use DCGAN's kernel 4 (stride 2, even overlap); the others a
    3x3 convolution after the fixed resampling (:func:`up_options`).
    """
    layers = [get_upsampling(entry.upsampling, in_ch, out_ch, 2, **up_options(entry))]
    if norm:
        layers.append(get_norm(entry.normalization, out_ch))
    if act:
        layers.append(get_activation(entry.activation))
    return nn.Sequential(*layers)


def ups_for(size: int, start: int = 4) -> int:
    """How many x2 steps take ``start`` pixels to ``size`` (``size / start`` a power of 2)."""
    steps = (size // start).bit_length() - 1
    if start * 2 ** steps != size:
        raise InvalidInputError(f"size {size} is not {start} times a power of two")
    return steps


class LatentDecoder(nn.Module):
    """DCGAN-shaped decoder, the GAN's generator and the VAE's decoder:
    ``(B, latent) -> linear -> (C0, 4, 4) -> x2 up-blocks -> (B, 3, size, size)`` in
    ``(-1, 1)``. Channels halve per block from ``width * 2^(steps-1)``; the last block
    upsamples straight to RGB (then ``tanh``), so its upsampling marks the image.
    """

    def __init__(self, entry: ZooEntry, size: int):
        super().__init__()
        steps = ups_for(size)
        chans = [entry.width * 2 ** (steps - 1 - i) for i in range(steps)]  # e.g. 4w, 2w, w
        self.c0 = chans[0]
        self.project = nn.Linear(entry.latent, chans[0] * 16)
        self.stem = nn.Sequential(get_norm(entry.normalization, chans[0]),
                                  get_activation(entry.activation))
        blocks = [up_block(entry, chans[i], chans[i + 1]) for i in range(steps - 1)]
        blocks.append(get_upsampling(entry.upsampling, chans[-1], 3, 2, **up_options(entry)))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.blocks(self.stem(self.project(z).view(-1, self.c0, 4, 4))))
