"""core.data.transforms: crops by known index, antialiased resize, signed range.

Crops are slices, so they are compared exactly. Resize tolerances: the
antialiasing kernel's output is a weighted sum of at most a dozen float32 taps per axis,
so known values hold to 1e-6; border pixels, where the kernel is cut and renormalised,
get the bound stated beside each test.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.data.transforms import center_crop, from_signed, random_crop, resize, to_signed, to_tensor
from core.errors import InvalidInputError


def ramp(h: int, w: int, channels: int = 1) -> torch.Tensor:
    """``(C, H, W)`` float tensor whose value is ``c*H*W + row*W + col``: each pixel names
    its own place."""
    return torch.arange(channels * h * w, dtype=torch.float32).reshape(channels, h, w)


def checkerboard(n: int) -> torch.Tensor:
    """``(1, n, n)`` of 0/1 alternating every pixel (period 2, the Nyquist frequency)."""
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return ((x + y) % 2).float()[None]


# --- to_tensor ------------------------------------------------------------------------

def test_to_tensor_moves_channels_first():
    image = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    out = to_tensor(image)
    assert out.shape == (3, 4, 5)
    assert out.dtype == torch.float32
    assert torch.equal(out[2], torch.from_numpy(image[..., 2]))


def test_to_tensor_scales_uint8_to_unit_range():
    image = np.array([[[0, 128, 255]]], np.uint8)
    assert torch.equal(to_tensor(image)[:, 0, 0], torch.tensor([0, 128, 255]) / 255.0)


def test_to_tensor_converts_float64_to_float32():
    assert to_tensor(np.zeros((2, 2, 3))).dtype == torch.float32


@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4, 3)])
def test_to_tensor_refuses_other_ranks(shape):
    with pytest.raises(InvalidInputError, match=r"\(H, W, C\)"):
        to_tensor(np.zeros(shape))


# --- signed range ----------------------------------------------------------------------

def test_to_signed_known_values():
    assert torch.equal(to_signed(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([-1.0, 0.0, 1.0]))


def test_from_signed_known_values_and_clamp():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])
    assert torch.equal(from_signed(x), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))


def test_signed_round_trip():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(from_signed(to_signed(x)), x, rtol=0, atol=1e-7)


# --- center_crop -----------------------------------------------------------------------

def test_center_crop_even_margins():
    x = ramp(6, 6)
    assert torch.equal(center_crop(x, 2), x[:, 2:4, 2:4])


def test_center_crop_odd_margins_leave_extra_pixel_bottom_right():
    # 5x7 -> 2x2: margins 3 and 5; top/left get 1 and 2, bottom/right get 2 and 3.
    x = ramp(5, 7)
    out = center_crop(x, 2)
    assert torch.equal(out, torch.tensor([[[9.0, 10.0], [16.0, 17.0]]]))


def test_center_crop_keeps_leading_dims():
    x = torch.rand(2, 3, 9, 10)
    out = center_crop(x, 4)
    assert out.shape == (2, 3, 4, 4)
    assert torch.equal(out, x[..., 2:6, 3:7])


def test_center_crop_full_size_is_identity():
    x = ramp(4, 4, 3)
    assert torch.equal(center_crop(x, 4), x)


@pytest.mark.parametrize("crop", [center_crop, random_crop])
def test_crop_larger_than_image_raises(crop):
    with pytest.raises(InvalidInputError, match="4x3 is smaller than the crop size 5"):
        crop(torch.zeros(1, 3, 4), 5)


@pytest.mark.parametrize("crop", [center_crop, random_crop])
def test_crop_taller_than_image_raises(crop):
    with pytest.raises(InvalidInputError, match="smaller than the crop size"):
        crop(torch.zeros(1, 3, 10), 4)


@pytest.mark.parametrize("size", [0, -1, 2.0, "2"])
@pytest.mark.parametrize("crop", [center_crop, random_crop])
def test_crop_size_must_be_a_positive_integer(crop, size):
    with pytest.raises(InvalidInputError, match="positive integer"):
        crop(torch.zeros(1, 4, 4), size)


# --- random_crop -----------------------------------------------------------------------

def test_random_crop_is_deterministic_with_a_seeded_generator():
    x = ramp(20, 30, 3)
    a = [random_crop(x, 7, torch.Generator().manual_seed(123)) for _ in range(2)]
    assert torch.equal(a[0], a[1])


def test_random_crop_is_a_contiguous_window_within_bounds():
    h, w, size = 9, 11, 4
    x = ramp(h, w, 2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        out = random_crop(x, size, gen)
        assert out.shape == (2, size, size)
        top, left = divmod(int(out[0, 0, 0]), w)  # the ramp names the top-left pixel
        assert 0 <= top <= h - size and 0 <= left <= w - size
        assert torch.equal(out, x[:, top:top + size, left:left + size])


def test_random_crop_reaches_every_position():
    # 5x4 image, crop 3: 3 x 2 = 6 placements; 200 draws miss one with p < 6 (5/6)^200.
    x = ramp(5, 4)
    gen = torch.Generator().manual_seed(1)
    seen = {int(random_crop(x, 3, gen)[0, 0, 0]) for _ in range(200)}
    assert seen == {r * 4 + c for r in range(3) for c in range(2)}


def test_random_crop_uses_one_place_for_the_whole_batch():
    x = ramp(8, 8)[None].repeat(4, 3, 1, 1)
    out = random_crop(x, 3, torch.Generator().manual_seed(2))
    assert torch.equal(out, out[:1].expand_as(out))


def test_random_crop_full_size_is_identity():
    x = ramp(5, 5)
    assert torch.equal(random_crop(x, 5, torch.Generator().manual_seed(0)), x)


# --- resize ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_resize_by_two_turns_a_nyquist_checkerboard_grey(mode):
    out = resize(checkerboard(64), 32, mode=mode)
    assert out.shape == (1, 32, 32)
    inner = out[:, 2:-2, 2:-2]
    torch.testing.assert_close(inner, torch.full_like(inner, 0.5), rtol=0, atol=1e-6)
    # Border pixels see a cut, renormalised kernel: measured 0.011 off, 0.02 allowed.
    assert float((out - 0.5).abs().max()) < 0.02


def test_resize_by_three_low_passes_where_plain_sampling_aliases():
    # By 3, each output centre falls on an input pixel centre, so sampling without the
    # low-pass filter reads 0 or 1 (the checkerboard aliases to a flat colour or worse).
    # The antialiased bilinear kernel is a triangle of half-width 3: taps 1, 2/3, 1/3 at
    # offsets 0, +-1, +-2 (sum 3), alternating sum 1/3, so each axis keeps 1/9 of the
    # board's contrast and the 2-D board keeps (1/9)^2: away from the one-pixel border
    # (where the kernel is cut), every pixel is 0.5 +- 1/162.
    x = checkerboard(63)
    plain = F.interpolate(x[None], size=(21, 21), mode="bilinear", align_corners=False)
    assert torch.all((plain - 0.5).abs() == 0.5)
    out = resize(x, 21, mode="bilinear")
    inner = out[:, 1:-1, 1:-1]
    torch.testing.assert_close((inner - 0.5).abs(), torch.full_like(inner, 1 / 162),
                               rtol=0, atol=1e-6)
    assert float((out - 0.5).abs().max()) < 2 / 162 + 1e-6
    assert float((resize(x, 21, mode="bicubic") - 0.5).abs().max()) < 1 / 162


def test_resize_keeps_a_constant_image():
    x = torch.full((3, 20, 30), 0.3)
    torch.testing.assert_close(resize(x, 8), torch.full((3, 8, 8), 0.3), rtol=0, atol=1e-6)


def test_resize_shapes():
    assert resize(torch.rand(3, 10, 10), 4).shape == (3, 4, 4)
    assert resize(torch.rand(2, 3, 10, 10), (5, 7)).shape == (2, 3, 5, 7)
    assert resize(torch.rand(1, 4, 4), 12).shape == (1, 12, 12)


def test_resize_same_size_is_identity():
    x = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(resize(x, 6, mode="bilinear"), x, rtol=0, atol=1e-6)


def test_resize_refuses_unknown_mode():
    with pytest.raises(InvalidInputError, match="bilinear or bicubic, got 'nearest'"):
        resize(torch.zeros(1, 4, 4), 2, mode="nearest")


@pytest.mark.parametrize("size", [0, (0, 4), (4, 4, 4)])
def test_resize_refuses_bad_target(size):
    with pytest.raises(InvalidInputError, match="bad resize target"):
        resize(torch.zeros(1, 4, 4), size)
