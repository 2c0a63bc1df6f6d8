"""Analytical predictions of spectral traces from a generator's design.

The model (standard multirate DSP; every claim here is checked against measurement in
``tests/test_theory.py`` and ``tests/test_theory_vs_observation.py``):

* Upsampling by ``s`` is zero insertion followed by a filter ``h``. Zero insertion tiles
  the spectrum ``s`` times per axis: the signal's content at ``f`` reappears at
  ``(f + k) / s`` cycles/pixel of the output. Natural images concentrate their energy at
  DC, so the replicas of DC sit at ``k / s``: the grid.
* The filter weighs each replica by ``|H(f)|``. ``torch``'s interpolators (nearest,
  bilinear, bicubic with ``align_corners=False``) are such filters, with closed-form
  taps (:func:`interpolation_taps`). Each of them is a partition of unity (every output
  phase's taps sum to one), so ``H(k / s) = 0``: they null the DC replicas exactly.
  A convolution after them cannot undo a null. Learned upsamplers (transposed conv, zero
  insertion + conv, pixel shuffle) have no such constraint: their gains at ``k / s``
  depend on the weights and are non-zero in general, so they show the grid.
* Every upsampler makes the signal's statistics periodic with period ``s``
  (cyclostationary). A point-wise non-linearity (any activation but ``none``) turns
  periodic statistics into spectral lines at all ``k / P``, where ``P`` is the product
  of the factors so far: weaker peaks, even behind an interpolator. Normalization is
  affine per channel and image, so it adds none.
* A transposed convolution with kernel ``k`` and stride ``s`` covers output phases
  unevenly when ``k % s != 0`` (:func:`overlap_counts`): even uniform weights then print
  a checkerboard of period ``s`` (Odena et al.).

Frequencies are in cycles/pixel of the generator's output, wrapped to ``[-0.5, 0.5)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch

from core.blocks import upsampler
from core.errors import check_int
from core.registry import file_under, lookup
from core.specs import BlockSpec, GeneratorSpec

BICUBIC_A = -0.75  # the Keys parameter torch uses for mode="bicubic"


@dataclass(frozen=True)
class Interpolator:
    """A fixed interpolation filter, as ``F.interpolate(mode=name, align_corners=False)``
    applies it.

    Attributes:
        name: torch's mode name.
        kernel: the continuous kernel ``K(t)``, ``t`` in input pixels (tensor in, tensor
            out, same shape).
        support: ``K(t) = 0`` for ``|t| > support`` (input pixels).
        response: optional closed form ``(f, s) -> |H(f)| / s`` (float64 tensors); without
            one :func:`interpolation_response` sums the taps' cosine series, which is
            exact for any symmetric tap set.
    """

    name: str
    kernel: Callable[[torch.Tensor], torch.Tensor]
    support: float
    response: Callable[[torch.Tensor, int], torch.Tensor] | None = None


# The interpolators fpx knows; an upsampler's record (core.blocks.Upsampler.interpolation)
# names one of them.
INTERPOLATORS: dict[str, Interpolator] = {}


def register_interpolator(interpolator: Interpolator) -> Interpolator:
    """File ``interpolator`` under its name (refusing a second one of the same name)."""
    return file_under(INTERPOLATORS, interpolator.name, interpolator, kind="interpolator")


def interpolator(mode: str) -> Interpolator:
    """The interpolator called ``mode``; a miss lists the valid names."""
    return lookup(INTERPOLATORS, mode, kind="interpolation")


def _check_factor(factor) -> int:
    return check_int("factor", factor)


def _keys_cubic(t: torch.Tensor) -> torch.Tensor:
    a, A = t.abs(), BICUBIC_A
    near = ((A + 2) * a - (A + 3)) * a * a + 1
    far = ((A * a - 5 * A) * a + 8 * A) * a - 4 * A
    return torch.where(a <= 1, near, torch.where(a < 2, far, torch.zeros_like(a)))


register_interpolator(Interpolator(
    "nearest", lambda t: (t.abs() < 0.5).to(t.dtype), 0.5,
    response=lambda f, s: _box(f, s).abs()))
register_interpolator(Interpolator(
    "bilinear", lambda t: (1 - t.abs()).clamp(min=0), 1.0,
    # Odd s: D_s^2; even s: D_s^2 |cos(pi f)| (the triangle sampled at half-pixel offsets
    # is box * box * [1, 1] / 2s).
    response=lambda f, s: _box(f, s).square() * (1 if s % 2 else torch.cos(torch.pi * f).abs())))
register_interpolator(Interpolator("bicubic", _keys_cubic, 2.0))


def interpolation_taps(mode: str, factor: int) -> torch.Tensor:
    """Taps of the filter that, after zero insertion by ``factor``, equals
    ``F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)`` away from
    the borders, shape ``(L,)``, float64.

    Output sample ``n`` reads input position ``u = (n + 1/2) / s - 1/2``, so with zero
    insertion the taps are ``h[m] = K((m - (s - 1) / 2) / s)``, where ``K`` is the
    continuous kernel: box, triangle, or Keys' cubic with ``a = -0.75``. Their sum is
    ``s`` (DC gain of an interpolator).
    """
    s = _check_factor(factor)
    interp = interpolator(mode)
    half = math.ceil(interp.support * s + (s - 1) / 2) + 1
    m = torch.arange(-half, half + 1, dtype=torch.float64)
    taps = interp.kernel((m - (s - 1) / 2) / s)
    nz = torch.nonzero(taps.abs() > 1e-15).flatten()
    return taps[nz.min(): nz.max() + 1]


def interpolation_response(mode: str, factor: int, f) -> torch.Tensor:
    """Magnitude response ``|H(f)| / s`` of an interpolator, 1 at DC.

    Closed forms, with ``D_s(f) = sin(pi f s) / (s sin(pi f))`` (the length-``s`` box, 1
    at ``f = 0``):

    * nearest: ``|D_s(f)|``;
    * bilinear, odd ``s``: ``D_s(f)^2``; even ``s``: ``D_s(f)^2 |cos(pi f)|`` (the
      triangle sampled at half-pixel offsets is box * box * [1, 1] / 2s);
    * bicubic (and any interpolator without a closed form): ``|sum_m h[m] cos(2 pi f
      (m - c))| / s`` over the taps of :func:`interpolation_taps`, centred at
      ``c = (L - 1) / 2`` (a finite cosine series).

    All vanish at ``f = k / s`` for ``k`` not a multiple of ``s``: the DC replicas.

    Args:
        f: frequencies in cycles/pixel of the upsampled signal, any shape.
    Returns:
        float64 tensor of ``f``'s shape.
    """
    s = _check_factor(factor)
    interp = interpolator(mode)
    f = torch.as_tensor(f, dtype=torch.float64)
    if interp.response is not None:
        return interp.response(f, s)
    taps = interpolation_taps(mode, s)
    c = (taps.numel() - 1) / 2
    m = torch.arange(taps.numel(), dtype=torch.float64) - c
    return (taps * torch.cos(2 * torch.pi * f[..., None] * m)).sum(-1).abs() / s


def _box(f: torch.Tensor, s: int) -> torch.Tensor:
    """``sin(pi f s) / (s sin(pi f))`` with its limit ``(-1)^(k (s-1))`` at integer ``f = k``."""
    num = torch.sin(torch.pi * f * s)
    den = s * torch.sin(torch.pi * f)
    at_integer = torch.isclose(den, torch.zeros_like(den), atol=1e-12)
    limit = torch.where(torch.remainder(torch.round(f) * (s - 1), 2) == 0, 1.0, -1.0)
    return torch.where(at_integer, limit.to(f.dtype), num / torch.where(at_integer, 1.0, den))


def replica_frequencies(factor: int) -> list[float]:
    """``k / s`` for ``k = 1 .. s-1``, wrapped to ``[-0.5, 0.5)`` and sorted (cycles/pixel)."""
    s = _check_factor(factor)
    return sorted(_wrap(Fraction(k, s)) for k in range(1, s))


def overlap_counts(kernel: int, stride: int) -> torch.Tensor:
    """How many kernel taps of a 1-D transposed convolution land on each output phase.

    Phase ``p`` (``0 <= p < stride``) receives taps ``m = p, p + s, ...`` below ``kernel``:
    ``ceil((kernel - p) / stride)`` of them. A constant input through uniform weights
    gives an output proportional to these counts (per axis; the 2-D pattern is their
    outer product), so unequal counts are the checkerboard.
    """
    _check_factor(kernel)
    _check_factor(stride)
    return torch.tensor([max(0, -(-(kernel - p) // stride)) for p in range(stride)])


def checkerboard(kernel: int, stride: int) -> bool:
    """True when a transposed conv overlaps unevenly: ``kernel % stride != 0``."""
    _check_factor(kernel)
    _check_factor(stride)
    return kernel % stride != 0


@dataclass(frozen=True)
class PredictedPeak:
    """A spectral line the design predicts in the generator's output.

    Attributes:
        fy, fx: frequency in cycles/pixel, in ``[-0.5, 0.5)``.
        origin: ``replica`` (a copy of DC through the upsampling filters: strong) or
            ``nonlinearity`` (periodic statistics through an activation: weaker).
        fixed_gain: product of the fixed interpolation filters' responses along the way
            (1.0 when only learned filters act; the learned part depends on weights).
    """

    fy: float
    fx: float
    origin: str
    fixed_gain: float


def _wrap(f: Fraction) -> float:
    f = f - math.floor(f)
    return float(f - 1 if f >= Fraction(1, 2) else f)


def _block_gain(block: BlockSpec, fy: Fraction, fx: Fraction) -> float:
    mode = upsampler(block.upsampling).interpolation
    if mode is None:  # every tap learned: the gain depends on the weights
        return 1.0
    r = interpolation_response(mode, block.factor, [float(fy), float(fx)])
    return float(r[0] * r[1])


def predict_peaks(spec: GeneratorSpec | BlockSpec, *, tol: float = 1e-9) -> list[PredictedPeak]:
    """Spectral lines predicted in the output of ``spec`` (or of one block alone).

    Lines are propagated through the up-blocks in order, starting from DC at the
    bottleneck: each block replicates every line ``(fy, fx)`` to ``((fy + a) / s,
    (fx + b) / s)`` and weighs it by its interpolation filter (lines that land on a null
    vanish); an activation before (``pre``) or after (``post``) the upsampling adds lines
    at every ``(a / P, b / P)`` of the current period ``P``. Down-blocks only reduce
    resolution and leave no grid. DC itself is not listed.
    """
    blocks = (spec,) if isinstance(spec, BlockSpec) else spec.up
    lines: dict[tuple[Fraction, Fraction], tuple[str, float]] = {
        (Fraction(0), Fraction(0)): ("replica", 1.0)
    }
    period = 1
    for block in blocks:
        if block.order == "pre" and block.activation != "none":
            _add_nonlinear_lines(lines, period)
        s = block.factor
        moved: dict[tuple[Fraction, Fraction], tuple[str, float]] = {}
        for (fy, fx), (origin, gain) in lines.items():
            for a in range(s):
                for b in range(s):
                    key = (_fold((fy + a) / s), _fold((fx + b) / s))
                    g = gain * _block_gain(block, *key)
                    if g > tol and (key not in moved or moved[key][1] < g
                                    or (moved[key][1] == g and origin == "replica")):
                        moved[key] = (origin, g)
        lines = moved
        period *= s
        if block.order == "post" and block.activation != "none":
            _add_nonlinear_lines(lines, period)
    return sorted(
        (PredictedPeak(_wrap(fy), _wrap(fx), origin, gain)
         for (fy, fx), (origin, gain) in lines.items() if (fy, fx) != (0, 0)),
        key=lambda p: (p.fy, p.fx),
    )


def _fold(f: Fraction) -> Fraction:
    return f - math.floor(f)


def _add_nonlinear_lines(lines: dict, period: int) -> None:
    for a in range(period):
        for b in range(period):
            key = (Fraction(a, period), Fraction(b, period))
            lines.setdefault(key, ("nonlinearity", 1.0))


def predicted_factor(spec: GeneratorSpec | BlockSpec, *, origin: str | None = None) -> int | None:
    """Smallest period ``P`` whose grid ``(a / P, b / P)`` holds every predicted line
    (optionally only lines of one ``origin``), or ``None`` when no line is predicted."""
    peaks = [p for p in predict_peaks(spec) if origin is None or p.origin == origin]
    if not peaks:
        return None
    period = 1
    for p in peaks:
        for f in (p.fy, p.fx):
            period = math.lcm(period, Fraction(f).limit_denominator(1 << 12).denominator)
    return period
