"""What every zoo family provides, the family registry, and the shared up-block.

A family is an ``nn.Module`` subclass of :class:`ZooModel` built from a
:class:`~core.zoo.entries.ZooEntry` and an image size, registered with what it is
(:class:`Family`: its losses, its training presets, any fixed design choice). The
trainer (``core.zoo.train``) knows nothing else about it:

* ``optimizers(lr)`` returns named optimisers (their states go into checkpoints);
* ``train_step(x, optimizers)`` takes a batch ``(B, 3, S, S)`` in ``[-1, 1]``, makes one
  optimisation step and returns named floats, always including ``loss``;
* ``sample(n, generator)`` returns ``(n, 3, S, S)`` in ``[-1, 1]`` (clamped), drawn with
  ``generator`` (a ``torch.Generator`` on the model's device) so sampling is repeatable.

Adding a family is one module that defines the model class under
:func:`register_family`, imported by ``core/zoo/__init__.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from core.blocks import get_activation, get_norm, get_upsampling, upsampler
from core.errors import InvalidInputError, check_int, check_real
from core.registry import file_under, lookup
from core.runtime import cpu_seeded

if TYPE_CHECKING:
    from core.zoo.entries import ZooEntry

RESOLUTIONS = (32, 64)
# Every family defines these training presets. "quick": each entry in a few minutes on 2
# CPU cores at 32 px on the bundled photos; "full": a GPU, longer and on more images (add
# --size 64 for 64 px).
PRESET_NAMES = ("quick", "full")


@dataclass(frozen=True)
class ZooSettings:
    """How an entry is trained (stored in its checkpoint)."""

    steps: int
    batch: int
    lr: float
    size: int = 32  # the entry's resolution unless --size says otherwise
    images: int = 4096
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        # Bounded: these come back from checkpoints, which a user may hand-edit.
        for name, hi in (("steps", 10**8), ("batch", 4096), ("images", 10**6),
                         ("checkpoint_every", 10**8)):
            check_int(f"settings {name}", getattr(self, name), 1, hi)
        if self.size not in RESOLUTIONS:
            raise InvalidInputError(f"settings size must be one of {RESOLUTIONS}, got "
                                    f"{self.size!r}")
        check_real("settings lr", self.lr, 0, 1)
        if not self.lr > 0:
            raise InvalidInputError(f"settings lr must be positive, got {self.lr!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def presets(quick: tuple[int, int, float], full: tuple[int, int, float]
            ) -> dict[str, ZooSettings]:
    """A family's presets from ``(steps, batch, lr)`` each: ``quick`` on 4096 images with a
    checkpoint every 250 steps, ``full`` on 20000 images with one every 1000."""
    return {"quick": ZooSettings(*quick),
            "full": ZooSettings(*full, images=20000, checkpoint_every=1000)}


@dataclass(frozen=True)
class Family:
    """What a zoo family is.

    Attributes:
        name: the registry key (``gan``, ``vae``, ...), stored in entries.
        model: the :class:`ZooModel` subclass, built as ``model(entry, size)``.
        losses: the objectives an entry of this family may name (``entry.loss``).
        presets: training settings per name in :data:`PRESET_NAMES`.
        upsampling, normalization: the only values an entry may name when the family
            fixes them (flows: ``squeeze``, ``actnorm``); ``None``: any registered block.
        doc: one sentence for help texts.
    """

    name: str
    model: type[ZooModel]
    losses: tuple[str, ...]
    presets: Mapping[str, ZooSettings]
    upsampling: tuple[str, ...] | None = None
    normalization: tuple[str, ...] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.losses:
            raise ValueError(f"family '{self.name}' names no loss")
        if set(self.presets) != set(PRESET_NAMES):
            raise ValueError(f"family '{self.name}' must define the presets {PRESET_NAMES}")
        object.__setattr__(self, "presets", dict(self.presets))


FAMILIES: dict[str, Family] = {}


def register_family(name: str, *, losses: tuple[str, ...], presets: Mapping[str, ZooSettings],
                    upsampling: tuple[str, ...] | None = None,
                    normalization: tuple[str, ...] | None = None,
                    doc: str = "") -> Callable[[type], type]:
    """Class decorator: file a :class:`ZooModel` subclass as the family ``name`` (see
    :class:`Family` for the other arguments)."""

    def add(cls: type) -> type:
        file_under(FAMILIES, name, Family(name, cls, tuple(losses), presets, upsampling,
                                          normalization,
                                          doc or (cls.__doc__ or "").strip().split("\n")[0]),
                   kind="family")
        cls.family = name
        return cls

    return add


def get_family(name: str) -> Family:
    """The family called ``name``; a miss lists the valid names."""
    return lookup(FAMILIES, name, kind="family")


def build_model(entry: ZooEntry, size: int | None = None) -> ZooModel:
    """The untrained network of ``entry`` at ``size`` pixels (default: its resolution),
    its initial weights seeded by ``entry.seed``."""
    size = entry.resolution if size is None else size
    if size not in RESOLUTIONS:
        raise InvalidInputError(f"size must be one of {RESOLUTIONS}, got {size!r}")
    cls = get_family(entry.family).model
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
    """Options of the entry's x2 upsampling block: an upsampler that can checkerboard gets
    kernel 4 (DCGAN's transposed conv k4 s2: twice the stride, even overlap); the others
    keep their registry default (a 3x3 conv). An entry's ``kernel`` option (1..8) overrides
    both (the dashboard's lab designs)."""
    if "kernel" in entry.options:
        return {"kernel": check_int("option kernel", entry.options["kernel"], 1, 8)}
    return {"kernel": 4} if upsampler(entry.upsampling).checkerboard else {}


def up_block(entry: ZooEntry, in_ch: int, out_ch: int, *, norm: bool = True,
             act: bool = True) -> nn.Sequential:
    """x2 upsampling by ``entry.upsampling``, then its normalization and activation, all
    from ``core.blocks``: ``(B, in_ch, H, W) -> (B, out_ch, 2H, 2W)``.

    Kernels as :func:`up_options` says: DCGAN's k4 for transposed convolutions, a 3x3
    convolution beside the fixed resampling otherwise.
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
