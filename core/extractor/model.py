"""The fingerprint extractor: a small ResNet trained from scratch, an L2-normalised
embedding head and a classification head over the bank's models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InvalidInputError, check_int
from core.extractor.inputs import INPUT_KINDS, extractor_input
from core.resnet import resnet_stages, resnet_stem


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
        # Bounded so that a hand-edited record cannot ask for a network of gigabytes:
        # width 128 with 4 blocks per stage (about 100 M weights) is twice the gpu preset.
        for name, lo, hi in (("width", 1, 128), ("blocks", 1, 4), ("embed_dim", 1, 4096),
                             ("crop_size", 8, 8192)):
            check_int(f"extractor {name}", getattr(self, name), lo, hi)
        if self.input_kind not in INPUT_KINDS:
            raise InvalidInputError(f"extractor input_kind = {self.input_kind!r}; valid: "
                                    f"{', '.join(INPUT_KINDS)}")
        from core.spectrum import RESIDUALS

        if self.residual not in RESIDUALS:
            raise InvalidInputError(f"extractor residual = {self.residual!r}; valid: "
                                    f"{', '.join(RESIDUALS)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Extractor(nn.Module):
    """``(B, 3, S, S)`` images in ``[-1, 1]`` -> ``(B, embed_dim)`` unit embeddings (and,
    with ``with_logits``, logits over ``num_classes`` training models)."""

    def __init__(self, config: ExtractorConfig, num_classes: int = 0):
        super().__init__()
        self.config, w = config, config.width
        self.stem = resnet_stem(3, w)
        self.body, ch = resnet_stages(w, 4, config.blocks)
        self.embed = nn.Linear(ch, config.embed_dim)
        # Cosine classifier: weights only (a bias would get no gradient).
        self.classify = (nn.Linear(config.embed_dim, num_classes, bias=False)
                         if num_classes else None)

    def features(self, x: torch.Tensor, spectrum_size: int | None = None) -> torch.Tensor:
        z = extractor_input(x, self.config.input_kind, self.config.residual)
        if spectrum_size is not None and self.config.input_kind == "spectrum" \
                and z.shape[-2:] != (spectrum_size, spectrum_size):
            from core.extractor.sizes import resample_spectrum

            z = resample_spectrum(z, spectrum_size)
        z = self.body(self.stem(z))
        return F.normalize(self.embed(z.mean((-2, -1))), dim=-1)

    def forward(self, x: torch.Tensor, with_logits: bool = False,
                spectrum_size: int | None = None):
        """Unit embeddings ``(B, D)``; with ``with_logits`` also ``(B, classes)`` logits
        (one call, so DistributedDataParallel sees every parameter used).

        ``spectrum_size``: resample the input spectrum onto that size's frequency grid
        first (the size policy for images under ``crop_size``, :mod:`core.extractor.sizes`);
        by default the input is read at its own size."""
        e = self.features(x, spectrum_size)
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
