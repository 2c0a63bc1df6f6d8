"""What a parsing head reads: one fixed-length feature row per image, whatever its size.

Two kinds (:data:`FEATURES`):
  * ``extractor``: an exported extractor's unit embedding ``(D,)``, by its size policy
    (:func:`core.extractor.sizes.embed_any`): any size in, one row out.
  * ``spectrum``: the baseline. The 3x3 median residual's log power (dB), averaged over
    the colour channels, on the frequency grid of a :data:`GRID`-px image: larger images
    are cut into ``GRID``-px tiles whose spectra are averaged (the extractor's tiles),
    smaller ones have their spectrum resampled onto the grid; each row minus its own
    mean (its level says nothing of the design). ``GRID * GRID`` values.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.errors import InvalidInputError

FEATURES = ("extractor", "spectrum")
GRID = 32  # side of the frequency grid of the spectrum features (cycles/pixel k/32)


def spectrum_grid(x: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """``(N, 3, S, S)`` in ``[-1, 1]`` -> ``(N, grid * grid)``: the residual log
    spectrum on the ``grid``-px frequency grid, each row centred on its mean."""
    from core.extractor.sizes import resample_spectrum, tiles
    from core.spectrum import power_spectrum, residual

    x = x.float()
    s = x.shape[-1]
    if s > grid:
        t = tiles(x, grid)  # (N, T, 3, grid, grid)
        n, k = t.shape[:2]
        p = power_spectrum(residual(t.reshape(n * k, *t.shape[2:]), "median")).mean(1)
        p = p.view(n, k, grid, grid).mean(1)
    else:
        p = power_spectrum(residual(x, "median")).mean(1)
        if s < grid:
            p = resample_spectrum(p[:, None], grid)[:, 0]
    p = p.reshape(len(x), -1)
    return p - p.mean(1, keepdim=True)


def feature_fn(kind: str, model=None, batch: int = 128
               ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Images ``(N, 3, S, S)`` -> features ``(N, D)`` of ``kind`` (``model``: the
    extractor, for ``extractor``)."""
    if kind not in FEATURES:
        raise InvalidInputError(f"features {kind!r}; valid: {', '.join(FEATURES)}")
    if kind == "extractor":
        if model is None:
            raise InvalidInputError("extractor features need an extractor")
        from core.extractor.sizes import embed_any

        model.eval()

        def one(x: torch.Tensor) -> torch.Tensor:
            device = next(model.parameters()).device
            with torch.no_grad():
                return embed_any(model, x.to(device)).float().cpu()
    else:
        one = spectrum_grid

    def run(x: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            raise InvalidInputError("no image to read features from")
        return torch.cat([one(x[i:i + batch]) for i in range(0, len(x), batch)])
    return run
