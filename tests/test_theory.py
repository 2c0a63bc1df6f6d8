"""core.theory: closed forms against torch's own operators and against DSP identities."""

import math

import pytest
import torch
import torch.nn.functional as F

from core.blocks import get_upsampling, zero_insert
from core.errors import InvalidInputError, UnknownNameError
from core.specs import BlockSpec, GeneratorSpec
from core.spectrum import frequencies, power_spectrum
from core.theory import (
    INTERPOLATORS,
    checkerboard,
    interpolation_response,
    interpolation_taps,
    overlap_counts,
    predict_peaks,
    predicted_factor,
    replica_frequencies,
)


def measured_taps(mode, s):
    """Impulse response of F.interpolate away from the borders."""
    x = torch.zeros(1, 1, 1, 41, dtype=torch.float64)
    x[..., 20] = 1
    y = F.interpolate(x, scale_factor=(1, s), mode=mode,
                      align_corners=None if mode == "nearest" else False)[0, 0, 0]
    nz = torch.nonzero(y.abs() > 1e-12).flatten()
    return y[nz.min(): nz.max() + 1]


@pytest.mark.parametrize("mode", INTERPOLATORS)
@pytest.mark.parametrize("s", [2, 3, 4, 5])
def test_taps_are_what_torch_interpolate_does(mode, s):
    taps = interpolation_taps(mode, s)
    torch.testing.assert_close(taps, measured_taps(mode, s), rtol=0, atol=1e-12)
    assert float(taps.sum()) == pytest.approx(s)  # DC gain of an interpolator
    for p in range(s):  # partition of unity: every output phase sums to 1
        assert float(taps[p::s].sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", INTERPOLATORS)
@pytest.mark.parametrize("s", [2, 3, 4])
def test_closed_form_response_matches_the_taps_dtft(mode, s):
    f = torch.linspace(-0.5, 0.5, 257, dtype=torch.float64)
    taps = measured_taps(mode, s)
    m = torch.arange(taps.numel(), dtype=torch.float64)
    dtft = (taps * torch.exp(-2j * math.pi * f[:, None] * m)).sum(-1).abs() / s
    torch.testing.assert_close(interpolation_response(mode, s, f), dtft, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", INTERPOLATORS)
@pytest.mark.parametrize("s", [2, 3, 4])
def test_interpolators_null_the_dc_replicas(mode, s):
    r = interpolation_response(mode, s, [k / s for k in range(1, s)])
    assert torch.all(r < 1e-12)
    assert float(interpolation_response(mode, s, 0.0)) == pytest.approx(1.0)


def test_bilinear_suppresses_replicas_more_than_nearest():
    # Box * box is the square: away from DC bilinear never passes more than nearest.
    f = torch.linspace(0.05, 0.5, 100, dtype=torch.float64)
    for s in (2, 4):
        assert torch.all(interpolation_response("bilinear", s, f)
                         <= interpolation_response("nearest", s, f) + 1e-12)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("s", [2, 4])
def test_measured_2d_response_of_interpolation_matches_theory(mode, s):
    # White noise upsampled: output power = input power (flat) x |H(fy)|^2 |H(fx)|^2 / s^2
    # per bin, on average. The measured response is the ratio, along the fx axis.
    torch.manual_seed(0)
    n = 32
    x = torch.randn(256, 1, n, n, dtype=torch.float64)
    y = F.interpolate(x, scale_factor=s, mode=mode,
                      align_corners=None if mode == "nearest" else False)
    p = power_spectrum(y, log=False).mean((0, 1))  # (s n, s n)
    fx = frequencies(s * n)
    row = p.mean(0)  # average over fy: |H(fx)|^2 x mean_fy |H(fy)|^2 x level
    theory = interpolation_response(mode, s, fx).square()
    scale = row[s * n // 2] / theory[s * n // 2]
    measured = row / scale
    # 256 x 32 x s n noise samples per column: ~1% sampling error; borders add ~1%.
    assert torch.allclose(measured, theory, atol=0.03)
    nulls = [round((k / s) * s * n) % (s * n) for k in range(1, s)]
    centred = [(i + s * n // 2) % (s * n) for i in nulls]
    assert torch.all(measured[centred] < 0.01)


def test_zero_insertion_puts_replicas_at_k_over_s():
    torch.manual_seed(1)
    n = 32
    i = torch.arange(n, dtype=torch.float64)
    x = torch.cos(2 * math.pi * 3 * i / n)[None, None, None, :].expand(1, 1, n, n)
    for s in (2, 4):
        y = zero_insert(x, s)
        p = power_spectrum(y, log=False)[0, 0, (s * n) // 2]  # the fy = 0 row
        f = frequencies(s * n)
        lit = {round(float(v) * s * n) for v in f[p > 1e-9 * p.max()]}
        # The tone at +-3/(s n) and its copies around every k/s.
        expect = {(k * n + sign * 3 + s * n // 2) % (s * n) - s * n // 2
                  for k in range(s) for sign in (1, -1)}
        assert lit == expect
        # Replicas of DC (a constant image) sit exactly at k/s.
        c = zero_insert(torch.ones(1, 1, n, n, dtype=torch.float64), s)
        pc = power_spectrum(c, log=False)[0, 0]
        lit = torch.nonzero(pc > 1e-9 * pc.max()).tolist()
        got = {(round(float(f[a]) * s), round(float(f[b]) * s)) for a, b in lit}
        assert got == {(a, b) for a in range(-(s // 2), (s + 1) // 2)
                       for b in range(-(s // 2), (s + 1) // 2)}


def test_replica_frequencies():
    assert replica_frequencies(2) == [-0.5]
    assert replica_frequencies(4) == [-0.5, -0.25, 0.25]
    assert replica_frequencies(3) == pytest.approx([-1 / 3, 1 / 3])


@pytest.mark.parametrize("kernel,stride,expect", [
    (3, 2, [2, 1]), (4, 2, [2, 2]), (2, 2, [1, 1]), (5, 4, [2, 1, 1, 1]), (1, 2, [1, 0]),
])
def test_overlap_counts(kernel, stride, expect):
    assert overlap_counts(kernel, stride).tolist() == expect
    assert checkerboard(kernel, stride) == (len(set(expect)) > 1)


def _uniform_transposed_output(kernel, stride):
    up = get_upsampling("transposed", 1, 1, stride, kernel=kernel)
    with torch.no_grad():
        up.conv.weight.fill_(1.0)
        up.conv.bias.zero_()
        return up(torch.ones(1, 1, 12, 12))[0, 0, 4:-4, 4:-4]  # interior


def test_checkerboard_k3_s2_and_none_for_k4_s2():
    y3 = _uniform_transposed_output(3, 2)
    assert float(y3.max() - y3.min()) > 0.5  # counts 2x2, 2x1, 1x2, 1x1: 4, 2, 2, 1
    assert sorted({float(v) for v in y3.flatten()}) == [1.0, 2.0, 4.0]
    y4 = _uniform_transposed_output(4, 2)
    assert float(y4.max() - y4.min()) == 0.0
    # The checkerboard's energy sits at k/s: for s = 2 on the Nyquist edges and corner.
    p = power_spectrum(y3[None, None].double() - y3.mean(), log=False)[0, 0]
    n = p.shape[0]
    lit = {(a - n // 2, b - n // 2) for a, b in torch.nonzero(p > 1e-9 * p.max()).tolist()}
    assert lit <= {(-n // 2, 0), (0, -n // 2), (-n // 2, -n // 2)}
    assert not checkerboard(4, 2) and checkerboard(3, 2)


def test_predict_peaks_single_blocks():
    learned = predict_peaks(BlockSpec("transposed", 2, activation="none"))
    assert {(p.fy, p.fx) for p in learned} == {(-0.5, 0.0), (0.0, -0.5), (-0.5, -0.5)}
    assert all(p.origin == "replica" for p in learned)
    assert predict_peaks(BlockSpec("bilinear", 2, activation="none")) == []
    weak = predict_peaks(BlockSpec("bilinear", 2, activation="relu"))
    assert {p.origin for p in weak} == {"nonlinearity"} and len(weak) == 3
    # Normalization is affine: it adds no line.
    assert predict_peaks(BlockSpec("nearest", 4, norm="instance", activation="none")) == []


def test_predict_peaks_compose_over_cascaded_blocks():
    two = GeneratorSpec(up=(BlockSpec("transposed", 2, activation="none"),) * 2, down=2)
    assert predicted_factor(two) == 4
    assert len(predict_peaks(two)) == 15  # every non-DC point of the 4x4 grid
    # Transposed then nearest: the k/2 replicas land on the nearest filter's nulls and
    # vanish, the k/4 ones survive, weighted by the box response.
    mixed = GeneratorSpec(up=(BlockSpec("transposed", 2, activation="none"),
                              BlockSpec("nearest", 2, activation="none")), down=2)
    pts = {(p.fy, p.fx): p.fixed_gain for p in predict_peaks(mixed)}
    assert (-0.5, 0.0) not in pts and (0.25, 0.0) in pts
    assert pts[(0.25, 0.0)] == pytest.approx(math.cos(math.pi / 4))
    assert predicted_factor(mixed) == 4
    assert predicted_factor(GeneratorSpec(up=(BlockSpec("bicubic", 2, activation="none"),))) \
        is None


def test_theory_rejects_bad_arguments():
    with pytest.raises(UnknownNameError, match="bilinear"):
        interpolation_taps("lanczos", 2)
    with pytest.raises(InvalidInputError):
        interpolation_response("nearest", 0, 0.1)
    with pytest.raises(InvalidInputError):
        overlap_counts(0, 2)
