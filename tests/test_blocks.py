"""core.blocks: every registered block builds, keeps its shape contract and trains.

Tolerances: the checkerboard test compares float64 sums of at most 121 ones, exact up to
rounding, so 1e-9 relative.
"""

import pytest
import torch
from torch import nn

from core.blocks import (
    ACTIVATION,
    NORMALIZATION,
    UPSAMPLING,
    get_activation,
    get_norm,
    get_upsampling,
    register,
    transposed_padding,
    zero_insert,
)
from core.errors import InvalidInputError, UnknownNameError
from core.theory import overlap_counts

UPS = sorted(UPSAMPLING)
NORMS = sorted(NORMALIZATION)
ACTS = sorted(ACTIVATION)
# Odd and even sizes. A 1x1 input is left to the shape test: there some taps of a 3x3
# conv only ever read padding, so their gradient is rightly zero.
SPATIAL = [(5, 7), (6, 4)]


def check_gradients(module: nn.Module, out: torch.Tensor) -> None:
    """Every parameter gets a finite, non-zero gradient from a random linear loss."""
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    params = list(module.named_parameters())
    for name, p in params:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


# --- upsampling -------------------------------------------------------------------------


def upsampling_cases():
    for name in UPS:
        for factor in (2, 3, 4):
            yield pytest.param(name, factor, {}, id=f"{name}-x{factor}")
    for factor in (2, 4):
        for kernel in range(1, 7):
            yield pytest.param("transposed", factor, {"kernel": kernel},
                               id=f"transposed-x{factor}-k{kernel}")
    for name in ("pixelshuffle", "zero", "nearest", "bilinear", "bicubic"):
        yield pytest.param(name, 2, {"kernel": 5}, id=f"{name}-x2-k5")
        yield pytest.param(name, 3, {"kernel": 1}, id=f"{name}-x3-k1")


@pytest.mark.parametrize("name,factor,options", list(upsampling_cases()))
@pytest.mark.parametrize("h,w", SPATIAL)
def test_upsampling_shape_finite_and_gradients(name, factor, options, h, w):
    torch.manual_seed(0)
    block = get_upsampling(name, in_ch=4, out_ch=3, factor=factor, **options)
    assert isinstance(block, nn.Module)
    x = torch.randn(2, 4, h, w, requires_grad=True)
    out = block(x)
    assert out.shape == (2, 3, factor * h, factor * w)
    assert torch.isfinite(out).all()
    check_gradients(block, out)
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", UPS)
@pytest.mark.parametrize("factor", [2, 3])
def test_upsampling_of_a_single_pixel(name, factor):
    out = get_upsampling(name, 2, 5, factor)(torch.randn(3, 2, 1, 1))
    assert out.shape == (3, 5, factor, factor)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", UPS)
def test_upsampling_without_bias_has_no_bias(name):
    block = get_upsampling(name, 2, 2, 2, bias=False)
    assert all(not n.endswith("bias") for n, _ in block.named_parameters())


@pytest.mark.parametrize("kernel", range(1, 12))
@pytest.mark.parametrize("factor", range(2, 9))
def test_transposed_padding_gives_exact_size(kernel, factor):
    padding, output_padding = transposed_padding(kernel, factor)
    assert padding >= 0
    assert 0 <= output_padding < factor  # ConvTranspose2d requires output_padding < stride
    for h in (1, 2, 5, 8):
        assert (h - 1) * factor - 2 * padding + kernel + output_padding == factor * h
    conv = nn.ConvTranspose2d(1, 1, kernel, stride=factor, padding=padding,
                              output_padding=output_padding)
    assert conv(torch.zeros(1, 1, 3, 4)).shape[-2:] == (3 * factor, 4 * factor)


@pytest.mark.parametrize("kernel", range(1, 10))
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_transposed_checkerboard_matches_overlap_counts(kernel, factor):
    block = get_upsampling("transposed", 2, 1, factor, kernel=kernel).double()
    with torch.no_grad():
        block.conv.weight.fill_(1.0)
        block.conv.bias.zero_()
        out = block(torch.ones(1, 2, 12, 12, dtype=torch.float64))[0, 0]
    # Away from the borders every output receives all the taps of its phase.
    margin = kernel + factor
    interior = out[margin:-margin, margin:-margin]
    assert interior.numel() > 0
    uneven = kernel % factor != 0
    assert bool(interior.max() > interior.min()) is uneven

    counts = overlap_counts(kernel, factor).double()
    period = 2.0 * torch.outer(counts, counts)  # 2 input channels of ones
    tiles = -(-interior.shape[0] // factor) + 1
    tiled = period.repeat(tiles, tiles)
    size = interior.shape[0]
    matches = [
        torch.allclose(interior, tiled[dy:dy + size, dx:dx + size], rtol=1e-9, atol=0)
        for dy in range(factor) for dx in range(factor)
    ]
    assert any(matches)


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_zero_insert_places_samples_on_the_grid(factor):
    x = torch.arange(1, 2 * 3 * 4 * 5 + 1, dtype=torch.float32).reshape(2, 3, 4, 5)
    y = zero_insert(x, factor)
    assert y.shape == (2, 3, 4 * factor, 5 * factor)
    assert torch.equal(y[..., ::factor, ::factor], x)
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[..., ::factor, ::factor] = False
    assert (y[mask] == 0).all()
    assert y.sum() == x.sum()


def test_zero_insert_gradient_is_the_subsample():
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    g = torch.randn(1, 2, 6, 6)
    zero_insert(x, 2).backward(g)
    assert torch.equal(x.grad, g[..., ::2, ::2])


def test_nearest_upsampling_repeats_pixels_before_its_conv():
    block = get_upsampling("nearest", 1, 1, 2, kernel=1)
    with torch.no_grad():
        block.conv.weight.fill_(1.0)
        block.conv.bias.zero_()
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    assert torch.equal(block(x), expected)


# --- normalization and activation -------------------------------------------------------


@pytest.mark.parametrize("name", NORMS)
@pytest.mark.parametrize("channels", [8, 12, 7, 1])
def test_every_norm_runs_and_trains(name, channels):
    torch.manual_seed(0)
    norm = get_norm(name, channels)
    x = torch.randn(2, channels, 5, 7, requires_grad=True)
    out = norm(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    check_gradients(norm, out)


@pytest.mark.parametrize("channels,groups", [(8, 8), (12, 6), (7, 7), (10, 5), (9, 3),
                                             (16, 8), (1, 1), (3, 3)])
def test_group_norm_picks_a_dividing_group_count(channels, groups):
    norm = get_norm("group", channels)
    assert isinstance(norm, nn.GroupNorm)
    assert norm.num_groups == groups
    assert channels % norm.num_groups == 0
    assert get_norm("group", channels, groups=2).num_groups == (2 if channels % 2 == 0 else 1)


def test_layer_norm_is_per_sample():
    norm = get_norm("layer", 4)
    x = torch.randn(3, 4, 5, 7) * 5 + 2
    out = norm(x)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out[1:2], norm(x[1:2]))


@pytest.mark.parametrize("name", ACTS)
def test_every_activation_runs_and_passes_gradients(name):
    act = get_activation(name)
    x = torch.randn(2, 8, 5, 7, requires_grad=True)
    out = act(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    check_gradients(act, out)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_leaky_relu_slope_option():
    act = get_activation("leaky_relu", negative_slope=0.5)
    assert act(torch.tensor([-2.0, 3.0])).tolist() == [-1.0, 3.0]
    assert get_activation("leaky_relu")(torch.tensor([-1.0])).item() == pytest.approx(-0.2)


# --- errors and registry ----------------------------------------------------------------


@pytest.mark.parametrize("lookup,registry,kind", [
    (lambda n: get_upsampling(n, 1, 1, 2), UPSAMPLING, "upsampling"),
    (lambda n: get_norm(n, 4), NORMALIZATION, "normalization"),
    (get_activation, ACTIVATION, "activation"),
])
@pytest.mark.parametrize("bad", ["nope", "", "Transposed", None, ["relu"]])
def test_unknown_names_list_valid_names(lookup, registry, kind, bad):
    with pytest.raises(UnknownNameError) as info:
        lookup(bad)
    message = str(info.value)
    assert kind in message
    assert message.endswith(", ".join(sorted(registry)))
    assert isinstance(info.value, KeyError)
    assert not message.startswith("'")  # KeyError would have quoted it


@pytest.mark.parametrize("field,kwargs", [
    ("in_ch", {"in_ch": 0}), ("in_ch", {"in_ch": 2.0}), ("in_ch", {"in_ch": True}),
    ("out_ch", {"out_ch": -1}), ("out_ch", {"out_ch": "3"}),
    ("factor", {"factor": 1}), ("factor", {"factor": 0}), ("factor", {"factor": 2.0}),
])
@pytest.mark.parametrize("name", UPS)
def test_bad_upsampling_arguments(name, field, kwargs):
    args = {"in_ch": 2, "out_ch": 2, "factor": 2, **kwargs}
    with pytest.raises(InvalidInputError, match=field):
        get_upsampling(name, **args)


@pytest.mark.parametrize("name", [u for u in UPS if u != "transposed"])
@pytest.mark.parametrize("kernel", [2, 0, -1, 3.0])
def test_bad_conv_kernel(name, kernel):
    with pytest.raises(InvalidInputError, match="kernel"):
        get_upsampling(name, 2, 2, 2, kernel=kernel)


@pytest.mark.parametrize("kernel", [0, -3, 2.0])
def test_bad_transposed_kernel(kernel):
    with pytest.raises(InvalidInputError, match="kernel"):
        get_upsampling("transposed", 2, 2, 2, kernel=kernel)


@pytest.mark.parametrize("channels", [0, -1, 1.5, None])
def test_bad_norm_channels(channels):
    with pytest.raises(InvalidInputError, match="channels"):
        get_norm("batch", channels)


def test_register_refuses_duplicates_and_leaves_registry_alone():
    before = dict(ACTIVATION)
    with pytest.raises(ValueError, match="relu"):
        register(ACTIVATION, "relu")(nn.Identity)
    assert ACTIVATION == before


def test_register_files_a_new_factory():
    registry = {}
    factory = register(registry, "mine")(nn.Identity)
    assert factory is nn.Identity
    assert registry == {"mine": nn.Identity}
    with pytest.raises(ValueError):
        register(registry, "mine")(nn.ReLU)
    assert registry == {"mine": nn.Identity}
