"""What the extractor sees: a noise residual's log spectrum (or the raw image, for
ablations), as a normalised ``(B, 3, H, W)`` tensor."""

from __future__ import annotations

import torch

from core.errors import InvalidInputError
from core.spectrum import power_spectrum, residual

INPUT_KINDS = ("spectrum", "raw")


def extractor_input(x: torch.Tensor, kind: str = "spectrum",
                    residual_kind: str = "blur") -> torch.Tensor:
    """``(B, 3, H, W)`` images in ``[-1, 1]`` -> the extractor's input, same shape.

    ``spectrum``: the centred log power spectrum (dB / 10, so about unit scale) of the
    ``residual_kind`` residual, minus each image's mean level: the fingerprint lives in
    the spectrum's shape, not in how bright the image is. ``raw``: the image itself.
    """
    if kind not in INPUT_KINDS:
        raise InvalidInputError(f"unknown input kind '{kind}'; valid: {', '.join(INPUT_KINDS)}")
    if kind == "raw":
        return x
    spec = power_spectrum(residual(x, residual_kind)).div_(10.0)
    return spec - spec.mean(dim=(-3, -2, -1), keepdim=True)
