"""The size policy: how an extractor trained on ``crop_size`` pixels embeds an image of
any size, one unit embedding per image.

The extractor sees a residual's log power spectrum, and its frequency axis is in cycles
per pixel: bin ``k`` of an ``S``-pixel image is frequency ``k / S``. Upsampling lattices
(the fingerprint) sit at fixed frequencies (``1/2``, ``1/4``, ...), so they land on
different bins at different sizes. The policy keeps the frequency axis the network was
trained on and never resamples the *image* (resampling paints its own lattice):

* ``S == crop_size``: the image as it is.
* ``S > crop_size`` (**tiles**): the image is cut into ``crop_size`` tiles on a regular
  grid (at most ``max_tiles``, evenly spread, edges included) and their embeddings are
  averaged and renormalised. Every pixel's evidence is used (a centre crop of a 256-px
  image keeps 1/16 of it) and each tile's spectrum has the trained frequency axis.
* ``S < crop_size`` (**spectrum**): the image's own log spectrum is resampled onto the
  ``crop_size`` frequency grid (bilinear, DC on DC, ``k/S`` on ``k/S``), so a lattice at
  ``1/4`` cycle per pixel reaches the network where it learnt to look for it. The image
  is not padded or upsampled; the frequencies it cannot hold are interpolated from the
  ones it has.
* Non-square images: tiled over their whole area when both sides reach ``crop_size``,
  else their largest centred square is read as above. Images under :data:`MIN_SIDE`
  pixels are refused (``fpx embed`` skips them by name, and a folder with no usable image
  is an error unless ``--skip-unusable``).
* Training (:func:`training_view`) feeds the network the same way: one random tile of a
  larger batch, the resampled spectrum of a smaller one.

Measured on the shipped zoo (32 px) and on held-out synthetic models at 32 to 256 px
against the residual-spectrum baseline: ``benchmarks/extractor_sizes.py``, results in
``docs/results.md`` ("Extractor input size"). Tiles beat one centre crop and the whole
image at 128 and 256 px on verification and identification (256 px: AUC 0.966 against
0.922 and 0.828); the resampled spectrum beats the image fed as it is at 32 px on held-out
synthetic models (both metrics) and on zoo identification, but loses zoo verification
AUC (0.881 against 0.923): a judgement call, kept open by ``small="native"``.

    e = embed_any(model, x)      # x (B, 3, S, S) in [-1, 1], any S >= MIN_SIDE
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.errors import InvalidInputError

MIN_SIDE = 16  # under 16 px a residual spectrum holds too few bins to say anything
MAX_TILES = 16  # tiles averaged per image (a 4 x 4 grid at most); evenly spread beyond
SMALL_POLICIES = ("spectrum", "native")
LARGE_POLICIES = ("tiles", "center", "native")


def tile_origins(side: int, crop: int, per_axis: int) -> list[int]:
    """``per_axis`` tile starts along a side of ``side`` pixels, evenly spread from 0 to
    ``side - crop`` (the first and last tile touch the edges)."""
    if side < crop:
        raise InvalidInputError(f"a {side}-px side holds no {crop}-px tile")
    n = max(1, min(per_axis, side // crop if side % crop == 0 else side // crop + 1))
    if n == 1:
        return [(side - crop) // 2]
    return [round(i * (side - crop) / (n - 1)) for i in range(n)]


def tiles(x: torch.Tensor, crop: int, max_tiles: int = MAX_TILES) -> torch.Tensor:
    """``(B, 3, H, W)`` with ``H, W >= crop`` -> ``(B, T, 3, crop, crop)`` tiles on a
    regular grid, at most ``max_tiles`` per image."""
    h, w = x.shape[-2:]
    per_axis = max(1, int(max_tiles ** 0.5))
    rows, cols = tile_origins(h, crop, per_axis), tile_origins(w, crop, per_axis)
    out = [x[..., r:r + crop, c:c + crop] for r in rows for c in cols]
    return torch.stack(out, 1)


def resample_spectrum(spec: torch.Tensor, size: int) -> torch.Tensor:
    """A centred spectrum ``(B, C, S, S)`` (DC at ``S // 2``) -> ``(B, C, size, size)`` on
    the frequency grid of a ``size``-pixel image: output bin ``j`` reads frequency
    ``(j - size // 2) / size`` of the input, bilinearly (clamped at the edges)."""
    s = spec.shape[-1]
    j = torch.arange(size, dtype=spec.dtype, device=spec.device)
    u = s // 2 + (j - size // 2) * s / size  # input bin holding the same frequency
    g = 2 * u / max(1, s - 1) - 1  # grid_sample's [-1, 1] with align_corners=True
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1)
    grid = grid.expand(spec.shape[0], size, size, 2)
    return F.grid_sample(spec, grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


@torch.no_grad()
def embed_any(model, x: torch.Tensor, *, small: str = "spectrum", large: str = "tiles",
              max_tiles: int = MAX_TILES) -> torch.Tensor:
    """Unit embeddings ``(B, D)`` of images ``(B, 3, H, W)`` whose shorter side is at
    least :data:`MIN_SIDE`, by the policy in the module docstring (``small`` and ``large``
    choose another, for measurement: ``native`` feeds the image as it is, ``center``
    takes one centre crop)."""
    if small not in SMALL_POLICIES or large not in LARGE_POLICIES:
        raise InvalidInputError(f"size policy: small in {SMALL_POLICIES}, large in "
                                f"{LARGE_POLICIES}; got {small!r}, {large!r}")
    if x.ndim != 4:
        raise InvalidInputError(f"embed_any takes images (B, 3, H, W), got {tuple(x.shape)}")
    crop = model.config.crop_size
    if x.shape[-1] != x.shape[-2] and not (min(x.shape[-2:]) >= crop and large == "tiles"):
        x = square(x)
    s = min(x.shape[-2:])
    if s < MIN_SIDE:
        raise InvalidInputError(f"images of {s} px are under the {MIN_SIDE}-px minimum")
    as_is = (s < crop and small == "native") or (s > crop and large == "native")
    if x.shape[-2:] == (crop, crop) or as_is:
        return model(x)
    if s < crop:
        return model(x, spectrum_size=crop)  # (a raw-pixel ablation reads x as it is)
    if large == "center":
        o = (s - crop) // 2
        return model(x[..., o:o + crop, o:o + crop])
    t = tiles(x, crop, max_tiles)
    b, n = t.shape[:2]
    e = model(t.reshape(b * n, *t.shape[2:])).view(b, n, -1)
    return F.normalize(e.mean(1), dim=-1)


def square(x: torch.Tensor) -> torch.Tensor:
    """The largest centred square of ``(..., H, W)``."""
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return x[..., top:top + s, left:left + s]


def training_view(x: torch.Tensor, crop: int, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, int | None]:
    """What training feeds the network for a batch of one size, matching the policy:
    above ``crop``, one random ``crop``-px tile per batch (inference averages them all);
    below, the images as they are with ``spectrum_size = crop`` (the forward resamples
    their spectrum). Returns ``(x, spectrum_size)`` for ``model(x, spectrum_size=...)``."""
    h, w = x.shape[-2:]
    if min(h, w) < crop:
        return square(x), crop
    if (h, w) == (crop, crop):
        return x, None
    top = int(torch.randint(h - crop + 1, (1,), generator=generator))
    left = int(torch.randint(w - crop + 1, (1,), generator=generator))
    return x[..., top:top + crop, left:left + crop], None
