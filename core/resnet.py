"""The small residual network fpx trains from scratch: the fingerprint extractor's body
(``core.extractor.model``) and the attribution classifier's (``core.manifold.attribution``).

Both are a 3x3 stem then stages of :class:`BasicBlock` whose channels double, stride 2 at
the first block of every stage but the first (He et al.'s CIFAR ResNet, without its
pooling stem, so a 32-px input keeps its finest frequencies in the first stage).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a skip: ``(B, in_ch, H, W) -> (B, out_ch, H/s, W/s)``;
    the skip is a strided 1x1 conv-BN when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.skip = nn.Identity() if stride == 1 and in_ch == out_ch else nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


def resnet_stem(in_channels: int, width: int) -> nn.Sequential:
    """3x3 conv (no bias), BN, ReLU: ``(B, in_channels, H, W) -> (B, width, H, W)``."""
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(width), nn.ReLU())


def resnet_stages(width: int, stages: int, blocks: int) -> tuple[nn.Sequential, int]:
    """``stages`` stages of ``blocks`` blocks, ``width * 2**i`` channels in stage ``i``:
    ``(B, width, H, W) -> (B, C, H / 2**(stages-1), ...)``; returns the body and ``C``."""
    layers, ch = [], width
    for i in range(stages):
        out = width * 2 ** i
        for j in range(blocks):
            layers.append(BasicBlock(ch, out, 2 if (j == 0 and i > 0) else 1))
            ch = out
    return nn.Sequential(*layers), ch
