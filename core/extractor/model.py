"""The fingerprint extractor: a small ResNet trained from scratch, an L2-normalised
embedding head and a classification head over the bank's models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InvalidInputError
from core.extractor.inputs import INPUT_KINDS, extractor_input


@dataclass(frozen=True)
class ExtractorConfig:
    """Architecture of the extractor.

    Attributes:
        width: channels of the first stage (doubled at each of the 4 stages).
        blocks: residual blocks per stage.
        embed_dim: size of the L2-normalised embedding.
        input_kind: ``spectrum`` (residual log spectrum) or ``raw`` (ablation).
        residual: residual taken before the spectrum.
        crop_size: image size it is trained on (inputs are centre-cropped to it).
    """

    width: int = 32
    blocks: int = 1
    embed_dim: int = 128
    input_kind: str = "spectrum"
    residual: str = "blur"
    crop_size: int = 64

    def __post_init__(self):
        for name in ("width", "blocks", "embed_dim", "crop_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"extractor {name} = {value!r} must be a positive int")
        if self.input_kind not in INPUT_KINDS:
            raise InvalidInputError(f"extractor input_kind = {self.input_kind!r}; valid: "
                                    f"{', '.join(INPUT_KINDS)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class BasicBlock(nn.Module):
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


class Extractor(nn.Module):
    """``(B, 3, S, S)`` images in ``[-1, 1]`` -> ``(B, embed_dim)`` unit embeddings (and,
    with ``with_logits``, logits over ``num_classes`` training models)."""

    def __init__(self, config: ExtractorConfig, num_classes: int = 0):
        super().__init__()
        self.config, w = config, config.width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU())
        stages, ch = [], w
        for i, out in enumerate((w, 2 * w, 4 * w, 8 * w)):
            for j in range(config.blocks):
                stages.append(BasicBlock(ch, out, 2 if (j == 0 and i > 0) else 1))
                ch = out
        self.body = nn.Sequential(*stages)
        self.embed = nn.Linear(ch, config.embed_dim)
        # Cosine classifier: weights only (a bias would get no gradient).
        self.classify = (nn.Linear(config.embed_dim, num_classes, bias=False)
                         if num_classes else None)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = extractor_input(x, self.config.input_kind, self.config.residual)
        z = self.body(self.stem(z))
        return F.normalize(self.embed(z.mean((-2, -1))), dim=-1)

    def forward(self, x: torch.Tensor, with_logits: bool = False):
        """Unit embeddings ``(B, D)``; with ``with_logits`` also ``(B, classes)`` logits
        (one call, so DistributedDataParallel sees every parameter used)."""
        e = self.features(x)
        if not with_logits:
            return e
        if self.classify is None:
            raise InvalidInputError("this extractor has no classification head")
        # Cosine classifier on the unit sphere, temperature 16: logits in [-16, 16].
        w = F.normalize(self.classify.weight, dim=-1)
        return e, 16.0 * e @ w.T


def batch_hard_triplet(embeddings: torch.Tensor, labels: torch.Tensor,
                       margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al.) on unit embeddings ``(B, D)``.

    For each anchor: its farthest positive and nearest negative in the batch, by
    Euclidean distance; anchors without a positive or negative are left out.
    """
    d = torch.cdist(embeddings, embeddings).clamp(min=0)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    hardest_pos = torch.where(pos, d, torch.zeros_like(d)).max(1).values
    hardest_neg = torch.where(~same, d, torch.full_like(d, float("inf"))).min(1).values
    valid = pos.any(1) & (~same).any(1)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()
