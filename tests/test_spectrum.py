"""core.spectrum against analytical results.

Tolerances (float64 inputs unless stated): transforms are exact up to FFT rounding, so
1e-9 relative; float32 paths get 1e-4 (about 100 ulps of a sum over 16k bins).
"""

import math

import numpy as np
import pytest
import torch

from core.errors import InvalidInputError, UnknownNameError
from core.spectrum import (
    GridPeaks,
    RadialProfile,
    dct2,
    dct_spectrum,
    estimate_upsampling_factor,
    find_grid_peaks,
    frequencies,
    grid_points,
    mean_spectrum,
    power_law_fit,
    power_spectrum,
    radial_profile,
    residual,
    spectral_distance,
)

TOL = {torch.float64: 1e-9, torch.float32: 1e-4}
SIZES = [(16, 16), (15, 15), (16, 15), (15, 16), (2, 3), (1, 8), (64, 32)]


def reference_spectrum(x, center=True):
    p = torch.fft.fft2(x, norm="ortho").abs().square()
    return torch.fft.fftshift(p, dim=(-2, -1)) if center else p


# --- frequencies ------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7, 8, 128])
def test_frequencies_are_cycles_per_pixel_with_dc_at_centre(n):
    f = frequencies(n)
    assert f.shape == (n,)
    assert f[n // 2] == 0
    assert torch.all(f >= -0.5) and torch.all(f < 0.5)
    assert torch.allclose(torch.diff(f), torch.full((n - 1,), 1.0 / n)) if n > 1 else True
    assert torch.equal(frequencies(n, center=False), torch.fft.fftfreq(n))


def test_frequencies_rejects_bad_n():
    with pytest.raises(InvalidInputError):
        frequencies(0)


# --- power spectrum ---------------------------------------------------------------------

@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("center", [True, False])
def test_power_spectrum_equals_full_fft(h, w, center):
    x = torch.randn(9, 2, h, w, dtype=torch.float64)
    got = power_spectrum(x, log=False, center=center)
    assert torch.allclose(got, reference_spectrum(x, center), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_parseval(dtype):
    x = torch.randn(4, 3, 33, 40, dtype=dtype)
    p = power_spectrum(x, log=False)
    assert p.dtype == dtype
    torch.testing.assert_close(p.sum((-2, -1)), x.square().sum((-2, -1)), rtol=TOL[dtype],
                               atol=0)


@pytest.mark.parametrize("n", [32, 31])
def test_sinusoid_peaks_at_its_bin(n):
    ky, kx = 3, 5  # cycles per image
    i = torch.arange(n, dtype=torch.float64)
    x = torch.cos(2 * math.pi * (ky * i[:, None] + kx * i[None, :]) / n)[None, None]
    p = power_spectrum(x, log=False)[0, 0]
    f = frequencies(n)
    peaks = torch.nonzero(p > 1e-6 * p.max())
    got = {(round(float(f[a]) * n), round(float(f[b]) * n)) for a, b in peaks}
    assert got == {(ky, kx), (-ky, -kx)}
    # All the energy (n*n/2 for a unit cosine) sits in those two bins, half each.
    assert torch.allclose(p[p > 1e-6 * p.max()], torch.tensor(n * n / 4, dtype=torch.float64))


def test_constant_image_is_pure_dc():
    x = torch.full((2, 3, 20, 24), 0.7, dtype=torch.float64)
    p = power_spectrum(x, log=False)
    dc = p[..., 10, 12]
    assert torch.allclose(dc, torch.tensor(0.49 * 20 * 24, dtype=torch.float64))
    p[..., 10, 12] = 0
    assert p.abs().max() < 1e-20


def test_log_spectrum_is_db_of_power():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    lin = power_spectrum(x, log=False)
    db = power_spectrum(x)
    assert torch.allclose(db, 10 * torch.log10(lin + 1e-10))


def test_window_keeps_white_noise_level():
    # Named windows are scaled to unit mean square, so white noise keeps ~0 dB per bin.
    x = torch.randn(64, 1, 64, 64, dtype=torch.float64)
    plain = power_spectrum(x, log=False).mean()
    hann = power_spectrum(x, log=False, window="hann").mean()
    assert abs(float(hann / plain) - 1) < 0.02  # 64*4096 samples: sampling error ~0.5%


def test_window_reduces_leakage_of_off_bin_tone():
    n = 64
    i = torch.arange(n, dtype=torch.float64)
    x = torch.cos(2 * math.pi * 10.5 * i / n)[None, None, None, :].expand(1, 1, n, n)
    far = frequencies(n).abs() > 0.35  # far from the 10.5/64 = 0.164 cycles/pixel tone
    plain = power_spectrum(x)[0, 0, n // 2, far].max()
    hann = power_spectrum(x, window="hann")[0, 0, n // 2, far].max()
    assert hann < plain - 30  # dB: the Hann sidelobes fall far faster than the box's


def test_power_spectrum_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="NaN"):
        power_spectrum(torch.tensor([[[[0.0, float("nan")], [1.0, 2.0]]]]))
    with pytest.raises(InvalidInputError, match="NaN"):
        power_spectrum(torch.full((9, 1, 4, 4), float("inf")))
    with pytest.raises(InvalidInputError, match=r"\(B, C, H, W\)"):
        power_spectrum(torch.zeros(3, 8, 8))
    with pytest.raises(InvalidInputError, match="floating"):
        power_spectrum(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(UnknownNameError, match="hann"):
        power_spectrum(torch.zeros(1, 1, 8, 8), window="kaiser")
    with pytest.raises(InvalidInputError, match="window"):
        power_spectrum(torch.zeros(1, 1, 8, 8), window=torch.ones(4, 4))


def test_power_spectrum_on_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.randn(5, 3, 32, 31)
    torch.testing.assert_close(power_spectrum(x.cuda()).cpu(), power_spectrum(x),
                               rtol=1e-4, atol=1e-3)


# --- residuals --------------------------------------------------------------------------

def test_residual_none_is_identity_and_others_remove_constants():
    x = torch.randn(2, 3, 17, 19)
    assert residual(x, "none") is x
    c = torch.full((1, 3, 16, 16), 0.3)
    for kind in ("blur", "median"):
        assert residual(c, kind).abs().max() < 1e-6


def test_median_residual_matches_brute_force():
    x = torch.randn(3, 2, 9, 11, dtype=torch.float64)
    pad = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    windows = pad.unfold(2, 3, 1).unfold(3, 3, 1).reshape(3, 2, 9, 11, 9)
    expect = x - windows.median(-1).values
    assert torch.equal(residual(x, "median"), expect)


def test_blur_residual_follows_its_transfer_function():
    # x - G*x with a Gaussian of sigma = 1 px has power gain (1 - exp(-2 pi^2 f^2))^2.
    x = torch.randn(64, 1, 64, 64, dtype=torch.float64)
    ratio = (radial_profile(power_spectrum(residual(x, "blur"), log=False).mean((0, 1))).power
             / radial_profile(power_spectrum(x, log=False).mean((0, 1))).power)
    f = torch.arange(33, dtype=torch.float64) / 64
    expect = (1 - torch.exp(-2 * math.pi**2 * f**2)).square()
    # Borders are reflected, not periodic, and the kernel is cut at 3 sigma: a few
    # percent of deviation (about 1% even at the lowest ring, where theory gives 2e-5);
    # 64 x 4096 noise samples per ring add about 1%.
    assert torch.allclose(ratio[2:], expect[2:], atol=0.05)
    assert ratio[1] < 0.03


def test_residual_rejects_bad_input():
    with pytest.raises(UnknownNameError, match="median"):
        residual(torch.zeros(1, 1, 8, 8), "wavelet")
    with pytest.raises(InvalidInputError, match="NaN"):
        residual(torch.full((1, 1, 8, 8), float("nan")), "blur")
    with pytest.raises(InvalidInputError, match="at least 2x2"):
        residual(torch.zeros(1, 1, 1, 8), "median")


# --- DCT --------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(8, 8), (7, 12)])
def test_dct2_matches_scipy_and_is_orthonormal(h, w):
    scipy_fft = pytest.importorskip("scipy.fft")
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    got = dct2(x)
    expect = scipy_fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.square().sum(), x.square().sum())
    torch.testing.assert_close(dct_spectrum(x, log=False), got.square())


def test_dct_of_constant_is_dc_only():
    x = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    c = dct2(x)[0, 0]
    assert abs(float(c[0, 0]) - 8.0) < 1e-12  # sqrt(64) * 1
    c[0, 0] = 0
    assert c.abs().max() < 1e-12


# --- radial profile ---------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(32, 32), (33, 33), (32, 48), (17, 12)])
def test_radial_profile_matches_brute_force_ring_average(h, w):
    spec = torch.randn(2, 3, h, w, dtype=torch.float64)
    prof = radial_profile(spec)
    n = min(h, w)
    assert prof.frequency.shape == (n // 2 + 1,)
    assert prof.power.shape == (2, 3, n // 2 + 1)
    assert torch.allclose(prof.frequency, torch.arange(n // 2 + 1) / n)
    fy, fx = frequencies(h).double(), frequencies(w).double()
    ring = torch.round(torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * n)
    for k in range(n // 2 + 1):
        expect = spec[..., ring == k].mean(-1)
        assert torch.allclose(prof.power[..., k], expect, atol=1e-12)


def test_radial_profile_of_isotropic_gaussian_follows_its_formula():
    # A Gaussian blob of width sigma pixels has power |G(f)|^2 ~ exp(-4 pi^2 sigma^2 f^2):
    # in dB, linear in f^2 with slope -10 log10(e) 4 pi^2 sigma^2.
    n, sigma = 128, 3.0
    i = torch.arange(n, dtype=torch.float64) - n // 2
    x = torch.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / (2 * sigma**2))[None, None]
    prof = radial_profile(power_spectrum(x, log=False)[0, 0])
    f = prof.frequency.double()
    band = (f > 0) & (f < 0.12)  # stay where the power is far above float rounding
    db = 10 * torch.log10(prof.power[band])
    slope = np.polyfit((f[band] ** 2).numpy(), db.numpy(), 1)[0]
    expect = -10 * math.log10(math.e) * 4 * math.pi**2 * sigma**2
    # Ring averaging over radii +-half a bin bends the line slightly: 2% is that effect.
    assert slope == pytest.approx(expect, rel=0.02)


def test_radial_profile_rejects_bad_input():
    with pytest.raises(InvalidInputError):
        radial_profile(torch.zeros(5))


# --- mean spectrum ----------------------------------------------------------------------

def test_mean_spectrum_streams_and_equals_batch_mean():
    x = torch.randn(20, 3, 16, 16)
    whole = power_spectrum(residual(x, "blur")).mean(0)
    streamed = mean_spectrum((x[i:i + 7] for i in range(0, 20, 7)), residual_kind="blur")
    torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-4)


def test_mean_spectrum_errors():
    with pytest.raises(InvalidInputError, match="no images"):
        mean_spectrum(iter([]))
    with pytest.raises(InvalidInputError, match="differs"):
        mean_spectrum([torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9)])


# --- distances and power law ------------------------------------------------------------

def test_spectral_distance_known_values():
    f = torch.arange(17) / 32
    a = RadialProfile(f, torch.zeros(17))
    b = RadialProfile(f, torch.full((17,), 3.0))
    assert float(spectral_distance(a, b)) == pytest.approx(3.0)
    assert float(spectral_distance(a, a)) == 0.0
    # DC is ignored: a difference only at f = 0 costs nothing.
    c = RadialProfile(f, torch.cat([torch.tensor([50.0]), torch.zeros(16)]))
    assert float(spectral_distance(a, c)) == 0.0


def test_spectral_distance_across_sizes_interpolates_on_cycles_per_pixel():
    fa, fb = torch.arange(17) / 32, torch.arange(33) / 64
    a = RadialProfile(fa, 10 * fa)
    b = RadialProfile(fb, 10 * fb)  # the same line sampled twice as finely
    assert float(spectral_distance(a, b)) == pytest.approx(0.0, abs=1e-6)


def test_power_law_fit_recovers_exponent():
    f = torch.arange(65) / 128
    f[0] = 1.0  # DC is excluded from the fit; any value
    for alpha in (1.0, 2.0, 3.5):
        power = 20.0 - 10 * alpha * torch.log10(f)
        fit = power_law_fit(RadialProfile(torch.arange(65) / 128, power))
        assert float(fit.exponent) == pytest.approx(alpha, abs=1e-5)
        assert float(fit.rms_db) < 1e-4
        assert float(fit.level_db) == pytest.approx(20 - 10 * alpha * math.log10(0.125), abs=1e-4)
        assert float(fit.nyquist_db) == pytest.approx(20 - 10 * alpha * math.log10(0.5), abs=1e-4)


def test_power_law_fit_is_batched_and_validates():
    f = torch.arange(33) / 64
    power = torch.stack([-10 * a * torch.log10(f.clamp(min=1e-3)) for a in (1.0, 2.0)])
    fit = power_law_fit(RadialProfile(f, power))
    assert fit.exponent.shape == (2,)
    with pytest.raises(InvalidInputError, match="at least 3 rings"):
        power_law_fit(RadialProfile(torch.arange(3) / 4, torch.zeros(3)))


def test_natural_image_spectrum_decays_like_a_power_law():
    from core.data import bundled_crops

    prof = radial_profile(mean_spectrum([bundled_crops(128, 16)]).mean(0))
    fit = power_law_fit(prof)
    # Natural images: power ~ 1/f^alpha with alpha around 2 (Field 1987; van der Schaaf).
    assert 1.5 < float(fit.exponent) < 4.0


# --- grid peaks -------------------------------------------------------------------------

def _spectrum_with_peaks(n, points, height=20.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = frequencies(n)
    r = (f[:, None] ** 2 + f[None, :] ** 2).sqrt().clamp(min=1 / n)
    spec = -20 * torch.log10(r) + torch.randn(n, n, generator=g)  # 1/f^2 + 1 dB noise
    for fy, fx in points:
        spec[round(fy * n) + n // 2, round(fx * n) + n // 2] += height
    return spec


def test_grid_points_are_the_new_points_of_each_period():
    assert sorted(grid_points(2)) == [(-0.5, -0.5), (-0.5, 0.0), (0.0, -0.5)]
    assert len(grid_points(4)) == 12
    assert len(grid_points(3)) == 8
    assert all(p not in grid_points(4) for p in grid_points(2))


def test_find_grid_peaks_finds_planted_peaks_with_their_prominence():
    pts = [(-0.5, 0.0), (0.0, -0.5), (-0.5, -0.5), (0.25, 0.125)]
    peaks = find_grid_peaks(_spectrum_with_peaks(64, pts))
    found = {(float(y), float(x)) for y, x in zip(peaks.fy, peaks.fx)}
    assert found == set(pts)
    assert torch.all((peaks.prominence_db > 15) & (peaks.prominence_db < 25))
    assert torch.all(peaks.prominence_db[:-1] >= peaks.prominence_db[1:])  # sorted
    assert peaks.to_list()[0].keys() == {"fy", "fx", "prominence_db"}


def test_no_peaks_in_a_smooth_noisy_spectrum():
    peaks = find_grid_peaks(_spectrum_with_peaks(64, []))
    assert len(peaks) == 0
    assert estimate_upsampling_factor(peaks) is None


def test_a_bright_line_is_not_a_peak():
    # Image borders paint lines through DC; bins on such a line must not count as peaks.
    spec = _spectrum_with_peaks(64, [])
    spec[32, :] += 15.0
    spec[:, 32] += 15.0
    assert len(find_grid_peaks(spec)) == 0


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_estimate_factor_from_planted_grid(factor):
    n = 96 if factor == 3 else 64
    pts = [(y, x) for s in range(2, factor + 1) if factor % s == 0 for y, x in grid_points(s)]
    spec = _spectrum_with_peaks(n, pts)
    assert estimate_upsampling_factor(spec) == factor


def test_estimate_factor_ignores_off_grid_peaks():
    spec = _spectrum_with_peaks(64, [(0.203125, 0.078125), (-0.140625, 0.3125)])
    assert estimate_upsampling_factor(spec) is None


def test_estimate_factor_validates():
    with pytest.raises(InvalidInputError):
        estimate_upsampling_factor("peaks")
    with pytest.raises(InvalidInputError):
        find_grid_peaks(torch.zeros(4, 4))
    with pytest.raises(InvalidInputError, match="NaN"):
        find_grid_peaks(torch.full((16, 16), float("nan")))
    empty = GridPeaks(torch.zeros(0), torch.zeros(0), torch.zeros(0), (32, 32), 1.0)
    assert estimate_upsampling_factor(empty) is None


def test_power_spectrum_chunking_is_invisible(monkeypatch):
    from core.spectrum import transforms

    x = torch.randn(7, 3, 12, 10, dtype=torch.float64)
    whole = power_spectrum(x)
    monkeypatch.setattr(transforms, "_CHUNK_PIXELS", 400)  # one image per chunk
    assert torch.equal(power_spectrum(x), whole)
