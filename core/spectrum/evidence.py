"""Evidence for a lattice at chosen frequencies: how far each frequency of the averaged
map of a set of images rises above its surroundings, observed and under the null
hypothesis that nothing is locked to the pixel grid. The machinery of
:func:`core.spectrum.lattice.detect_lattice` (read its module docstring first).

Frequencies are in cycles/pixel; powers are of the Hann-windowed, mean-free maps.
"""

from __future__ import annotations

import math

import torch

BACKGROUND_BINS = 2.5  # the background of a point: median of 8 points this many bins away
#                        (outside the Hann main lobe of +-2 bins; lattice points of
#                        P <= side / 4 are >= 4 bins apart, so it falls between them)
RING_SHARE = 7 / 8  # the ring mean carries 1/8 of a point's noise power; the fresh
#                    noise of a null draw brings the rest
PHASE_ROWS = 128  # rows of the table of random phases (the most points one call scores)


def oversample(h: int) -> int:
    """Zero-padding factor of the FFT for a map of side ``h``: 4 below 48 px (lattice
    points off the bin grid land within 1/8 bin of a padded bin), else 2 (1/4 bin; Hann
    loses under 0.5 dB there, and the FFT is 4 times cheaper)."""
    return 4 if h < 48 else 2


def group_spectra(means: torch.Tensor) -> torch.Tensor:
    """``(G, C, h, w)`` maps -> ``(G, C, k h, k w // 2 + 1)`` half-plane FFT (``rfft2``)
    of each mean-free, Hann-windowed map, zero-padded by ``k =`` :func:`oversample`."""
    h, w = means.shape[-2:]
    k = oversample(min(h, w))
    win = (torch.hann_window(h, periodic=False, device=means.device)[:, None]
           * torch.hann_window(w, periodic=False, device=means.device))
    m = means.float() - means.float().mean((-2, -1), keepdim=True)
    return torch.fft.rfft2(m * win, s=(k * h, k * w))


def ring(freqs: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(n, 2)`` frequencies -> ``(9, n, 2)``: each point, then its 8 background points
    :data:`BACKGROUND_BINS` bins away (axes and diagonals)."""
    steps = torch.tensor([(sy * BACKGROUND_BINS / h, sx * BACKGROUND_BINS / w)
                          for sy in (-1, 0, 1) for sx in (-1, 0, 1)], dtype=freqs.dtype)
    steps = steps[[4, 0, 1, 2, 3, 5, 6, 7, 8]]  # the point itself first
    return freqs[None] + steps[:, None]


class Evidence:
    """Log ratios, lattice point over local background, observed and under the null.

    Background of a point: the median power of the observed mean map at its 8 ring
    points (:func:`ring`). Null draw of a point: the complex mean of the observed values
    on its ring (the smooth, non-periodic structure every image shares, such as borders,
    interpolated to the point) plus fresh noise, divided by the same background.

    The fresh noise is what the average of the groups would hold if each group sat at
    its own random offset (no shared alignment): the groups' deviations from their mean,
    each turned by a random phase (a translation by ``d`` turns frequency ``f`` by
    ``exp(-2 pi i f . d)``) and summed, scaled by ``sqrt(G / (G - 1))`` and by
    :data:`RING_SHARE` (the ring mean brings the rest). It is the data's own scatter,
    heavy tails included (a Gaussian with the same covariance called 2.5 times too many
    false alarms on sets of single images), at ``4 C G`` operations per point and draw;
    :func:`core.spectrum.lattice.detect_lattice` needs 16 groups for it.
    """

    def __init__(self, spectra: torch.Tensor, weights: torch.Tensor, draws: int,
                 generator: torch.Generator, side: tuple[int, int]):
        self.spectra = spectra  # (G, C, Nh, Nw // 2 + 1)
        self.weights = (weights / weights.sum()).to(spectra.device, torch.float32)
        self.draws = draws
        self.generator = generator
        self.groups = spectra.shape[0]
        self.h, self.w = side
        self.nh, self.nw = spectra.shape[-2], self.w * oversample(min(side))
        self._table: torch.Tensor | None = None
        self.mean = (spectra * self.weights[:, None, None, None]).sum(0)  # (C, Nh, Nw')

    def _values(self, spectra: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        """Values ``(..., n)`` of half-plane ``spectra (..., Nh, Nw // 2 + 1)`` at the
        nearest padded bins of ``(n, 2)`` frequencies (the other half-plane through
        conjugate symmetry)."""
        iy = torch.round(freqs[:, 0] * self.nh).long() % self.nh
        ix = torch.round(freqs[:, 1] * self.nw).long() % self.nw
        flip = ix > self.nw // 2
        iy = torch.where(flip, (-iy) % self.nh, iy).to(spectra.device)
        ix = torch.where(flip, (-ix) % self.nw, ix).to(spectra.device)
        values = spectra[..., iy, ix]
        return torch.where(flip.to(values.device), values.conj(), values)

    def _phases(self, n: int) -> torch.Tensor:
        """``(n, 2G, draws)``: ``cos theta`` over ``sin theta`` of a random phase per
        point, group and draw, the first ``n`` rows of one fixed table (every candidate's
        null uses the same draws, so their maxima compare like for like)."""
        if self._table is None or self._table.shape[0] < n:
            rows = max(n, PHASE_ROWS)
            theta = 2 * math.pi * torch.rand((rows, self.groups, self.draws),
                                             generator=self.generator)
            self._table = torch.cat([theta.cos(), theta.sin()], 1).to(self.spectra.device)
        return self._table[:n]

    def log_ratios(self, freqs: torch.Tensor, *, observed_only: bool = False) -> torch.Tensor:
        """``(n, 2)`` frequencies (cycles/pixel) -> ``(1 + draws, C, n)`` natural-log
        ratios: the observed mean map first, then each null draw (only the first with
        ``observed_only``)."""
        n = freqs.shape[0]
        around = self._values(self.mean, ring(freqs, self.h, self.w).reshape(-1, 2))
        mean = around.reshape(around.shape[0], 9, n)  # (C, 9, n); the point first
        power = mean.abs().square()
        background = power[:, 1:].median(1).values  # (C, n)
        tiny = power.mean() * 1e-9 + 1e-30
        observed = torch.log((power[:, 0] + tiny) / (background + tiny))
        if observed_only or self.draws == 0:
            return observed[None]
        base = mean[:, 1:].mean(1)  # (C, n): the ring's smooth part at the point
        c, g = mean.shape[0], self.groups
        values = self._values(self.spectra, freqs)  # (G, C, n)
        dev = (values - mean[None, :, 0]) * self.weights[:, None, None]
        dev = dev.permute(2, 1, 0) * math.sqrt(g / (g - 1) * RING_SHARE)  # (n, C, G)
        # sum_g dev_g exp(i theta_g) in real arithmetic ([[Re, -Im], [Im, Re]] blocks times
        # [cos; sin]): a real batched product is some 20 times faster than a complex one.
        blocks = torch.cat([torch.cat([dev.real, -dev.imag], 2),
                            torch.cat([dev.imag, dev.real], 2)], 1)  # (n, 2C, 2G)
        noise = torch.bmm(blocks, self._phases(n))  # (n, 2C, R): real parts, then imag
        re = noise[:, :c] + base.real.T[:, :, None]
        im = noise[:, c:] + base.imag.T[:, :, None]
        null = (re.square() + im.square()).permute(2, 1, 0)  # (R, C, n)
        return torch.cat([observed[None], torch.log((null + tiny) / (background + tiny))])
