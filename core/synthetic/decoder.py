"""Synthetic models that emulate real decoders: reduce a real image to a small map, grow
it back through several upsampling stages.

Today's synthetic models (:mod:`core.synthetic.model`) are shallow autoencoders with one
or two up-blocks. Real generators (GAN, VAE and flow decoders, diffusion U-Nets) grow an
image from 4x4 to 16x16 through 2 to 5 upsampling stages. A :class:`DecoderSpec`
describes such a decoder, driven by a real image so it can be fitted like the others:

* **reduce**: the ``S``-px image is average-pooled by ``2**stages`` to a ``S / 2**stages``
  map (4x4 to 16x16 at the bank's crop size) and lifted to ``channels`` by a 3x3 conv;
* **stages**: each up-block of ``up`` (any registered upsampler, kernel, norm,
  activation, order and conv count, from :mod:`core.blocks`) doubles the size; widths
  stay at ``channels`` (``constant``) or halve each stage down to 4 (``halving``);
* **skip**: ``none``; ``residual`` (each stage adds its input, nearest-upsampled through
  a 1x1 conv: a ResNet up-block's shortcut); ``image`` (each stage adds a 1x1 conv of
  the real image pooled to its size: a U-Net's encoder skip);
* **output**: a ``output_kernel`` conv (1 or 3) to RGB, then ``output_activation``
  (``none``, ``tanh``, ``sigmoid``: an output layer's squashing).

:data:`DECODER_SPACE` lists the choices, :func:`space_size` counts the architectures
(:func:`decoder_architectures` draws distinct ones), :func:`sample_decoder` draws one.
Every block takes ``copies`` (grouped convolutions), so the bank fits and runs many
decoders of one architecture as one network, as it does the autoencoders.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING, conv2d, get_activation, upsampler
from core.errors import SpecError, check_int
from core.specs import ORDERS, BlockSpec

DECODER_FORMAT = "fpx.decoder_spec/1"
SKIPS = ("none", "residual", "image")
WIDTHS = ("constant", "halving")
OUTPUT_ACTIVATIONS = ("none", "tanh", "sigmoid")
MIN_LATENT, MAX_LATENT = 4, 16  # side of the map the image is reduced to
MIN_STAGES, MAX_STAGES = 2, 5
MIN_WIDTH = 4

# Every registered block (read when the space is used, so later registrations count).
DECODER_SPACE = {
    "upsampling": None,  # all of core.blocks.UPSAMPLING
    "kernel": ("default", "large"),  # the upsampler's default, or the next allowed size
    "norm": None,  # all of core.blocks.NORMALIZATION
    "activation": None,  # all of core.blocks.ACTIVATION
    "order": ORDERS,
    "convs": (1, 2),
    "stages": tuple(range(MIN_STAGES, MAX_STAGES + 1)),
    "widths": WIDTHS,
    "skip": SKIPS,
    "output_kernel": (1, 3),
    "output_activation": OUTPUT_ACTIVATIONS,
}
_REGISTRIES = {"upsampling": UPSAMPLING, "norm": NORMALIZATION, "activation": ACTIVATION}


def choices(space: dict = DECODER_SPACE) -> dict[str, tuple]:
    """``space`` with each ``None`` replaced by every name of its registry."""
    return {k: tuple(_REGISTRIES[k]) if v is None else tuple(v) for k, v in space.items()}


def stages_for(size: int, space: dict = DECODER_SPACE) -> tuple[int, ...]:
    """Stage counts whose reduced map is 4x4 to 16x16 for ``size``-px images."""
    return tuple(n for n in choices(space)["stages"]
                 if size % 2**n == 0 and MIN_LATENT <= size // 2**n <= MAX_LATENT)


def space_size(space: dict = DECODER_SPACE, size: int = 64) -> int:
    """Number of distinct architectures of ``space`` at ``size`` px: 181,440 for the
    default at 64 px with today's registries (6 upsamplers x 2 kernels x 5 norms x 7
    activations x 2 orders x 2 convs x 3 stage counts x 2 widths x 3 skips x 2 output
    kernels x 3 output activations)."""
    c = choices(space)
    return math.prod(len(v) for k, v in c.items() if k != "stages") * len(stages_for(size, space))


def _kernel(up: str, which: str) -> int:
    record = upsampler(up)
    k = record.kernel_for(2)
    if which == "large":
        k += 1
        while not record.allows_kernel(k):
            k += 1
    return k


@dataclass(frozen=True)
class DecoderSpec:
    """A decoder driven by a real image (see the module docstring).

    Attributes:
        up: the up-blocks (2 to 5, each of factor 2), applied in order.
        channels: width of the reduced map and of the first stage.
        widths: ``constant`` or ``halving`` (each stage half the last, at least 4).
        skip: ``none``, ``residual`` or ``image``.
        output_kernel: kernel of the output conv (1 or 3).
        output_activation: ``none``, ``tanh`` or ``sigmoid``.
        in_channels, out_channels: image channels; seed: initialisation; name: a label.
    """

    # what core.specs.spec_distance compares beside the up-blocks
    DESIGN_CHOICES: ClassVar[tuple[str, ...]] = (
        "channels", "widths", "skip", "output_kernel", "output_activation")

    up: tuple[BlockSpec, ...] = field(default_factory=lambda: (BlockSpec(),) * 3)
    channels: int = 32
    widths: str = "constant"
    skip: str = "none"
    output_kernel: int = 3
    output_activation: str = "none"
    in_channels: int = 3
    out_channels: int = 3
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        up = self.up
        if not isinstance(up, (tuple, list)) or not MIN_STAGES <= len(up) <= MAX_STAGES:
            raise SpecError(f"decoder.up must list {MIN_STAGES} to {MAX_STAGES} blocks, got "
                            f"{up!r}"[:200])
        up = tuple(b if isinstance(b, BlockSpec) else BlockSpec.from_dict(b) for b in up)
        if any(b.factor != 2 for b in up):
            raise SpecError("decoder.up: every stage doubles the size (factor 2)")
        object.__setattr__(self, "up", up)
        for name, allowed in (("widths", WIDTHS), ("skip", SKIPS),
                              ("output_activation", OUTPUT_ACTIVATIONS)):
            if getattr(self, name) not in allowed:
                raise SpecError(f"decoder.{name} = {getattr(self, name)!r} is not allowed; "
                                f"choose from {', '.join(allowed)}")
        if self.output_kernel not in (1, 3):
            raise SpecError(f"decoder.output_kernel = {self.output_kernel!r}; choose 1 or 3")
        for name, lo, hi in (("channels", 1, 1024), ("in_channels", 1, 4),
                             ("out_channels", 1, 4), ("seed", 0, 2**63 - 1)):
            check_int(f"decoder.{name}", getattr(self, name), lo, hi, error=SpecError)
        if not isinstance(self.name, str):
            raise SpecError(f"decoder.name must be a string, got {self.name!r}")

    @property
    def down(self) -> int:
        """How many times the image is halved before the stages (= the stage count)."""
        return len(self.up)

    @property
    def total_factor(self) -> int:
        return 2 ** len(self.up)

    def width(self, stage: int) -> int:
        """Channels entering stage ``stage`` (``stage = len(up)``: leaving the last)."""
        if self.widths == "constant":
            return self.channels
        return max(MIN_WIDTH, self.channels // 2**stage)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["up"] = [b.to_dict() for b in self.up]
        return {"format": DECODER_FORMAT, **data}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> DecoderSpec:
        if not isinstance(data, dict) or data.get("format") != DECODER_FORMAT:
            raise SpecError(f"not a decoder spec (format {DECODER_FORMAT!r})")
        values = {k: v for k, v in data.items() if k != "format"}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise SpecError(f"decoder spec has unknown field(s) {', '.join(unknown)}")
        return cls(**values)


def sample_decoder(rng, size: int = 64, space: dict = DECODER_SPACE,
                   channels: int = 32) -> DecoderSpec:
    """One architecture drawn uniformly from ``space`` for ``size``-px images (its stage
    count keeps the reduced map 4x4 to 16x16), with a drawn seed.

    Args:
        rng: a ``random.Random`` (or an int seed for one).
    """
    rng = random.Random(rng) if isinstance(rng, int) else rng
    c = choices(space)
    stages = stages_for(size, space)
    if not stages:
        raise SpecError(f"no stage count of {c['stages']} reduces {size}-px images to "
                        f"{MIN_LATENT}x{MIN_LATENT} .. {MAX_LATENT}x{MAX_LATENT}")
    up = rng.choice(c["upsampling"])
    block = BlockSpec(up, 2, _kernel(up, rng.choice(c["kernel"])), rng.choice(c["norm"]),
                      rng.choice(c["activation"]), rng.choice(c["order"]),
                      rng.choice(c["convs"]))
    return DecoderSpec(up=(block,) * rng.choice(stages), channels=channels,
                       widths=rng.choice(c["widths"]), skip=rng.choice(c["skip"]),
                       output_kernel=rng.choice(c["output_kernel"]),
                       output_activation=rng.choice(c["output_activation"]),
                       seed=rng.randrange(2**31))


def decoder_architectures(count: int, seed: int, *, size: int = 64, channels: int = 32,
                          skip: int = 0, space: dict = DECODER_SPACE) -> list[DecoderSpec]:
    """``count`` distinct architectures (seed 0) in a seeded order, after passing over the
    first ``skip`` of that order (so a second bank can hold architectures the first
    never saw)."""
    check_int("count", count, 1)
    total = space_size(space, size)
    if skip + count > total:
        raise SpecError(f"the decoder space holds {total} architectures at {size} px; "
                        f"asked for {skip} + {count}")
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < skip + count:
        spec = dataclasses.replace(sample_decoder(rng, size, space, channels), seed=0)
        key = spec.to_json(indent=None)
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out[skip:]


class DecoderGenerator(nn.Module):
    """The network of a :class:`DecoderSpec`: ``(B, copies*in, S, S) -> (B,
    copies*out, S, S)`` for ``S`` divisible by ``2**stages`` (``copies`` independent
    decoders side by side, as :class:`~core.synthetic.model.SyntheticGenerator`)."""

    def __init__(self, spec: DecoderSpec, copies: int = 1):
        from core.synthetic.model import UpBlock

        super().__init__()
        self.spec, self.copies = spec, copies
        n = len(spec.up)
        self.stem = conv2d(spec.in_channels, spec.width(0), copies=copies)
        self.up = nn.ModuleList(UpBlock(b, spec.width(i), spec.width(i + 1), copies)
                                for i, b in enumerate(spec.up))
        if spec.skip == "residual":
            self.skips = nn.ModuleList(conv2d(spec.width(i), spec.width(i + 1), 1,
                                              copies=copies) for i in range(n))
        elif spec.skip == "image":
            self.skips = nn.ModuleList(conv2d(spec.in_channels, spec.width(i + 1), 1,
                                              copies=copies) for i in range(n))
        else:
            self.skips = None
        self.head = conv2d(spec.width(n), spec.out_channels, spec.output_kernel,
                           copies=copies)
        self.out_act = get_activation(spec.output_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.spec.up)
        side = x.shape[-1]
        if x.shape[-2] % 2**n or side % 2**n:
            raise SpecError(f"a decoder of {n} stages needs sides divisible by {2**n}, got "
                            f"{tuple(x.shape[-2:])}")
        h = self.stem(F.avg_pool2d(x, 2**n))
        for i, block in enumerate(self.up):
            y = block(h)
            if self.spec.skip == "residual":
                y = y + F.interpolate(self.skips[i](h), scale_factor=2, mode="nearest")
            elif self.spec.skip == "image":
                y = y + self.skips[i](F.avg_pool2d(x, 2 ** (n - i - 1)))
            h = y
        return self.out_act(self.head(h))
