"""core.theory's predictions against spectra measured on real photos.

Random-weight upsampling blocks run on bundled crops (a batch of 16 makes the mean
spectrum's noise about 1 dB, so the detector's adaptive threshold sits near 6 dB while
replica peaks stand 15-25 dB tall). Every prediction is checked both ways: predicted
peaks are found, and where theory predicts none (the interpolators' nulls), none is.
"""

import pytest
import torch
from torch import nn

from core.blocks import UPSAMPLING, get_upsampling
from core.data import bundled_crops
from core.specs import BlockSpec, GeneratorSpec
from core.spectrum import (
    estimate_upsampling_factor,
    find_grid_peaks,
    grid_points,
    grid_score,
    mean_spectrum,
)
from core.theory import predict_peaks, predicted_factor

OUT = 128  # output size: crops of OUT / factor go in
TOLERANCE = 1.5 / OUT  # a peak within a bin and a half of a predicted frequency matches


def observe(modules: nn.Module, factor: int, seed: int):
    torch.manual_seed(seed)
    x = bundled_crops(OUT // factor, 16, seed=1)
    with torch.no_grad():
        y = modules(x)
    return find_grid_peaks(mean_spectrum([y]))


def gap(a, b):
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def found_at(peaks, fy, fx):
    return any(gap(fy, float(y)) <= TOLERANCE and gap(fx, float(x)) <= TOLERANCE
               for y, x in zip(peaks.fy, peaks.fx))


def build(spec: GeneratorSpec) -> nn.Module:
    """The linear chain of the spec's upsampling layers (3 -> 3 channels)."""
    return nn.Sequential(*(get_upsampling(b.upsampling, 3, 3, b.factor, kernel=b.kernel)
                           for b in spec.up))


@pytest.mark.parametrize("name", sorted(UPSAMPLING))
@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_single_block_peaks_are_where_theory_puts_them(name, factor, seed):
    spec = GeneratorSpec(up=(BlockSpec(name, factor, activation="none"),), down=0)
    predicted = predict_peaks(spec)
    peaks = observe(build(spec), factor, seed)
    if predicted:  # learned upsamplers: the full k/s grid, and the factor recovered
        missing = [(p.fy, p.fx) for p in predicted if not found_at(peaks, p.fy, p.fx)]
        assert not missing, f"predicted peaks not observed: {missing}"
        assert estimate_upsampling_factor(peaks) == factor == predicted_factor(spec)
        assert grid_score(peaks, factor)[1] > 10.0  # dB: a strong grid
    else:  # interpolators: nulls at k/s, so no grid at all
        for s in (2, 4):
            on_grid = [pt for pt in grid_points(s) if found_at(peaks, *pt)]
            assert not on_grid, f"theory predicts nulls, observed peaks at {on_grid}"
        assert estimate_upsampling_factor(peaks) is None


@pytest.mark.parametrize("kernel", [3, 4])
def test_transposed_kernel_variants_show_the_grid(kernel):
    spec = GeneratorSpec(up=(BlockSpec("transposed", 2, kernel=kernel, activation="none"),),
                         down=0)
    peaks = observe(build(spec), 2, 0)
    assert estimate_upsampling_factor(peaks) == 2


def test_cascade_of_two_learned_blocks_is_a_period_4_grid():
    spec = GeneratorSpec(up=(BlockSpec("pixelshuffle", 2, activation="none"),
                             BlockSpec("transposed", 2, activation="none")), down=0)
    peaks = observe(build(spec), 4, 0)
    assert all(found_at(peaks, p.fy, p.fx) for p in predict_peaks(spec))
    assert estimate_upsampling_factor(peaks) == 4 == predicted_factor(spec)


def test_interpolator_after_a_learned_block_keeps_only_the_k_over_4_lines():
    # Theory: the nearest filter nulls the k/2 replicas but passes the k/4 ones.
    spec = GeneratorSpec(up=(BlockSpec("transposed", 2, activation="none"),
                             BlockSpec("nearest", 2, activation="none")), down=0)
    peaks = observe(build(spec), 4, 0)
    predicted = predict_peaks(spec)
    assert all(found_at(peaks, p.fy, p.fx) for p in predicted)
    assert not any(found_at(peaks, *pt) for pt in grid_points(2))
    assert estimate_upsampling_factor(peaks) == 4


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("size", [64, 128])
def test_no_grid_in_real_photos(split, size):
    crops = bundled_crops(size, 32, seed=5, split=split)
    for window, residual in ((None, "none"), ("hann", "blur"), (None, "median")):
        spec = mean_spectrum([crops], residual_kind=residual, window=window)
        peaks = find_grid_peaks(spec, guard=2 if window else 1)
        assert estimate_upsampling_factor(peaks) is None, (window, residual, peaks.to_list())
