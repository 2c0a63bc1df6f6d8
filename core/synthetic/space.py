"""The space of synthetic models and a sampler over it (Yang et al.'s design space)."""

from __future__ import annotations

import random
from itertools import product

from core.blocks import upsampler
from core.specs import BlockSpec, GeneratorSpec

# Yang et al.'s design space (their code), plus our pixel shuffle and bicubic upsamplers:
# every up-block doubles the size; 1 or 2 up-blocks; 32 channels. Each upsampler takes its
# registry's default kernel at factor 2 (the paper's transposed conv is k2 s2, the others
# a 3x3 conv).
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
    keys = ("upsampling", "norm", "activation", "order", "convs", "blocks")
    specs = []
    for up, norm, act, order, convs, blocks in product(*(space[k] for k in keys)):
        block = BlockSpec(up, 2, upsampler(up).kernel_for(2), norm, act, order, convs)
        specs.append(GeneratorSpec(up=(block,) * blocks, down=blocks, channels=channels))
    return specs


def sample_spec(rng, space: dict = SYNTHETIC_SPACE, channels: int = 32) -> GeneratorSpec:
    """One architecture drawn uniformly from ``space`` with a drawn seed.

    Args:
        rng: a ``random.Random`` (or an int seed for one).
    """
    rng = random.Random(rng) if isinstance(rng, int) else rng
    up = rng.choice(space["upsampling"])
    block = BlockSpec(up, 2, upsampler(up).kernel_for(2), rng.choice(space["norm"]),
                      rng.choice(space["activation"]), rng.choice(space["order"]),
                      rng.choice(space["convs"]))
    blocks = rng.choice(space["blocks"])
    return GeneratorSpec(up=(block,) * blocks, down=blocks, channels=channels,
                         seed=rng.randrange(2**31))
