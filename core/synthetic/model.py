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

from core.blocks import conv2d, get_activation, get_norm, get_upsampling
from core.runtime import cpu_seeded
from core.specs import BlockSpec, GeneratorSpec


class DownBlock(nn.Module):
    """Average pool x2, conv, batch norm, ReLU, conv, batch norm: ``(B, C, H, W) ->
    (B, C, H/2, W/2)``."""

    def __init__(self, channels: int, copies: int = 1):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.AvgPool2d(2), conv2d(c, c, copies=copies), get_norm("batch", c, copies=copies),
            nn.ReLU(), conv2d(c, c, copies=copies), get_norm("batch", c, copies=copies),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpBlock(nn.Module):
    """One :class:`BlockSpec`: ``post`` = up, convs, norm, act; ``pre`` = norm, act, up,
    convs. ``(B, in_ch, H, W) -> (B, out_ch, s*H, s*W)``."""

    def __init__(self, block: BlockSpec, in_ch: int, out_ch: int, copies: int = 1):
        super().__init__()
        self.order = block.order
        norm_ch = out_ch if block.order == "post" else in_ch
        self.up = get_upsampling(block.upsampling, in_ch, out_ch, block.factor,
                                 kernel=block.kernel, copies=copies)
        self.convs = nn.Sequential(*(conv2d(out_ch, out_ch, copies=copies)
                                     for _ in range(block.convs - 1)))
        self.norm = get_norm(block.norm, norm_ch, copies=copies)
        self.act = get_activation(block.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "pre":
            return self.convs(self.up(self.act(self.norm(x))))
        return self.act(self.norm(self.convs(self.up(x))))


class SyntheticGenerator(nn.Module):
    """The network a :class:`GeneratorSpec` describes: ``(B, in, H, W) -> (B, out,
    H * total_factor / 2**down, ...)`` (the input's size when ``2**down`` equals the
    total factor).

    With ``copies = M`` it is M independent networks of that architecture side by side:
    ``(B, M*in, H, W) -> (B, M*out, ...)``, copy ``m`` reading and writing its own channel
    block, every parameter the concatenation of the copies' along axis 0
    (:func:`stack_states`).
    """

    def __init__(self, spec: GeneratorSpec, copies: int = 1):
        super().__init__()
        c = spec.channels
        self.spec, self.copies = spec, copies
        self.stem = conv2d(spec.in_channels, c, copies=copies)
        self.down = nn.Sequential(*(DownBlock(c, copies) for _ in range(spec.down)))
        self.up = nn.Sequential(*(UpBlock(b, c, c, copies) for b in spec.up))
        self.head = conv2d(c, spec.out_channels, 1, copies=copies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.down(self.stem(x))))


def network(spec, copies: int = 1) -> nn.Module:
    """The network of a spec of either space: a :class:`GeneratorSpec` (autoencoder) or a
    :class:`~core.synthetic.decoder.DecoderSpec` (decoder), ``copies`` side by side."""
    from core.synthetic.decoder import DecoderGenerator, DecoderSpec

    if isinstance(spec, DecoderSpec):
        return DecoderGenerator(spec, copies)
    return SyntheticGenerator(spec, copies)


def spec_from_dict(data) -> GeneratorSpec:
    """A spec of either space from its dict (told apart by its ``format``)."""
    from core.synthetic.decoder import DECODER_FORMAT, DecoderSpec

    if isinstance(data, dict) and data.get("format") == DECODER_FORMAT:
        return DecoderSpec.from_dict(data)
    return GeneratorSpec.from_dict(data)


def build_generator(spec: GeneratorSpec) -> nn.Module:
    """Build the network of ``spec`` (either space) with weights drawn from ``spec.seed``.

    The global random state is left untouched, so the same spec always gives the same
    weights, whatever ran before.
    """
    with cpu_seeded(spec.seed):
        return network(spec)


def batch_statistics_only(model: nn.Module) -> nn.Module:
    """Make every batch norm use the statistics of the batch at hand, always (no running
    averages): synthetic models are generators run on batches, never in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return model


def stack_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """State of a ``copies = len(states)`` generator from its copies' states."""
    return {k: torch.cat([s[k] for s in states]) for k in states[0]}


def unstack_state(state: dict[str, torch.Tensor], copies: int) -> list[dict[str, torch.Tensor]]:
    """The copies' states of a stacked generator's state (views, not copies)."""
    parts = {k: v.chunk(copies) for k, v in state.items()}
    return [{k: parts[k][m] for k in state} for m in range(copies)]
