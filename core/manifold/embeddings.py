"""The spaces in which artifacts are measured (ManiFPT): ``rgb``, ``freq``, ``learned``.

Every space maps images ``(N, 3, H, W)`` in ``[-1, 1]`` to vectors ``(N, D)`` float32:

* ``rgb``: the pixels in ``[0, 1]``, flattened (``D = 3 H W``).
* ``freq``: per-channel log FFT magnitude, ``log10 |FFT_ortho(x)|`` (centred layout),
  flattened (``D = 3 H W``). Upsampling grids and spectral tilts are additive here.
* ``learned``: a network's unit features: the fingerprint extractor's embedding (the
  one shipped in ``core/assets/extractor`` unless another is given; images of any size
  are read by its size policy, :mod:`core.extractor.sizes`, as ``fpx embed`` reads
  them) or, when no
  extractor is installed or on request, a self-supervised encoder trained by our own
  code on the real images (:mod:`core.manifold.ssl`).

``rgb`` and ``freq`` vectors reshape to ``(3, H, W)`` (:func:`image_shaped`), so an
attribution network can treat their artifacts as images.
"""

from __future__ import annotations

import torch

from core.errors import InvalidInputError
from core.extractor.model import Extractor
from core.extractor.sizes import embed_any
from core.spectrum import power_spectrum
from core.spectrum.transforms import check_images

SPACES = ("rgb", "freq", "learned")


def check_space(space: str) -> str:
    if space not in SPACES:
        raise InvalidInputError(f"unknown space '{space}'; valid: {', '.join(SPACES)}")
    return space


def image_shaped(space: str) -> bool:
    """Whether vectors of ``space`` are images ``(3, H, W)`` flattened."""
    return check_space(space) in ("rgb", "freq")


def has_default_extractor() -> bool:
    from core.extractor import DEFAULT_EXTRACTOR

    return (DEFAULT_EXTRACTOR / "extractor.json").exists()


def default_extractor(device: torch.device | str = "cpu"):
    """The extractor shipped with fpx (``core/assets/extractor``)."""
    from core.extractor import DEFAULT_EXTRACTOR, load_extractor

    if not has_default_extractor():
        raise InvalidInputError("the learned space needs an extractor and none is installed; "
                                "pass one made by fpx train, or use the self-supervised "
                                "encoder")
    return load_extractor(DEFAULT_EXTRACTOR, device)


@torch.no_grad()
def embed(images: torch.Tensor, space: str, *, extractor=None, batch: int = 256,
          device: torch.device | str | None = None) -> torch.Tensor:
    """``(N, 3, H, W)`` in ``[-1, 1]`` -> ``(N, D)`` float32 vectors of ``space`` (on
    ``device``, default the images' device), computed ``batch`` images at a time."""
    check_space(space)
    images = check_images(images, "images")
    if images.shape[1] != 3:
        raise InvalidInputError(f"images must have 3 channels, got {images.shape[1]}")
    device = torch.device(device) if device is not None else images.device
    if space == "learned" and extractor is None:
        extractor = default_extractor(device)
    if extractor is not None:
        extractor = extractor.to(device).eval()
    out = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch].to(device, torch.float32)
        if space == "rgb":
            v = (x + 1) / 2
        elif space == "freq":
            v = power_spectrum(x, log=True) / 20.0  # dB of power / 20 = log10 |X|
        elif isinstance(extractor, Extractor):  # any size, by the extractor's policy
            v = embed_any(extractor, x).float()
        else:
            v = extractor(x).float()
        out.append(v.flatten(1))
    return torch.cat(out) if out else torch.zeros(0, 0, device=device)
