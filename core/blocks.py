"""Registries of interchangeable generator blocks: upsampling, normalization, activation.

Every network fpx builds (synthetic models, zoo generators) gets these blocks from here,
so there is one way to make a block. Lookups by an unknown name raise an error that lists
the valid names::

    up = get_upsampling("transposed", in_ch=32, out_ch=32, factor=2, kernel=3)
    norm = get_norm("instance", channels=32)
    act = get_activation("leaky_relu")

All upsampling blocks map ``(B, in_ch, H, W)`` to ``(B, out_ch, factor*H, factor*W)``.

Every factory also takes ``copies`` (default 1): that many independent blocks side by
side in the channel axis, ``(B, copies*in_ch, H, W) -> (B, copies*out_ch, ...)``, built
with grouped convolutions and per-copy normalization. Each parameter of the stacked block
is its copies' parameters concatenated along axis 0, which is how ``core.synthetic`` runs
and fits many synthetic models in one call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InvalidInputError, UnknownNameError

UPSAMPLING: dict[str, Callable[..., nn.Module]] = {}
NORMALIZATION: dict[str, Callable[..., nn.Module]] = {}
ACTIVATION: dict[str, Callable[..., nn.Module]] = {}


def register(registry: dict[str, Callable[..., nn.Module]], name: str):
    """Decorator: file a block factory under ``name`` in ``registry``."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in registry:
            raise ValueError(f"block '{name}' is registered twice")
        registry[name] = factory
        return factory

    return add


def _lookup(registry: dict, kind: str, name: str) -> Callable[..., nn.Module]:
    try:
        return registry[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(registry))
        raise UnknownNameError(f"unknown {kind} '{name}'; valid: {valid}") from None


def get_upsampling(name: str, in_ch: int, out_ch: int, factor: int, **options) -> nn.Module:
    """Build the upsampling block ``name``; ``options`` go to its factory (e.g. ``kernel``)."""
    factory = _lookup(UPSAMPLING, "upsampling", name)
    _check_positive_int("in_ch", in_ch)
    _check_positive_int("out_ch", out_ch)
    _check_positive_int("factor", factor)
    if factor < 2:
        raise InvalidInputError(f"factor must be >= 2, got {factor}")
    return factory(in_ch, out_ch, factor, **options)


def get_norm(name: str, channels: int, **options) -> nn.Module:
    """Build the normalization layer ``name`` for ``channels`` feature maps (per copy)."""
    factory = _lookup(NORMALIZATION, "normalization", name)
    _check_positive_int("channels", channels)
    _check_positive_int("copies", options.get("copies", 1))
    return factory(channels, **options)


def get_activation(name: str, **options) -> nn.Module:
    """Build the activation ``name``."""
    return _lookup(ACTIVATION, "activation", name)(**options)


def _check_positive_int(field: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(f"{field} must be a positive integer, got {value!r}")


def _check_conv_kernel(kernel) -> int:
    _check_positive_int("kernel", kernel)
    if kernel % 2 == 0:
        raise InvalidInputError(f"kernel must be odd for a 'same' convolution, got {kernel}")
    return kernel


def transposed_padding(kernel: int, factor: int) -> tuple[int, int]:
    """``(padding, output_padding)`` so that ``ConvTranspose2d(kernel, stride=factor)``
    maps ``H`` to exactly ``factor * H``.

    The output size is ``(H - 1) * s - 2p + k + op``; ``p = ceil((k - s) / 2)`` and
    ``op = s - k + 2p`` (which lies in ``[0, s)``) solve ``... = s * H``.
    """
    padding = max(0, math.ceil((kernel - factor) / 2))
    return padding, factor - kernel + 2 * padding


def conv2d(in_ch: int, out_ch: int, kernel: int = 3, *, bias: bool = True,
           copies: int = 1) -> nn.Conv2d:
    """A 'same' convolution (odd kernel), ``copies`` of it side by side (grouped)."""
    return nn.Conv2d(in_ch * copies, out_ch * copies, kernel, padding=kernel // 2, bias=bias,
                     groups=copies)


# --- upsampling -------------------------------------------------------------------------


class TransposedUp(nn.Module):
    """Transposed convolution, stride ``factor``; overlaps unevenly when ``kernel % factor``."""

    def __init__(self, in_ch: int, out_ch: int, factor: int, kernel: int | None = None,
                 bias: bool = True, copies: int = 1):
        super().__init__()
        kernel = factor if kernel is None else kernel
        _check_positive_int("kernel", kernel)
        padding, output_padding = transposed_padding(kernel, factor)
        self.conv = nn.ConvTranspose2d(in_ch * copies, out_ch * copies, kernel, stride=factor,
                                       padding=padding, output_padding=output_padding,
                                       bias=bias, groups=copies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class InterpolateUp(nn.Module):
    """Fixed interpolation (``nearest``, ``bilinear``, ``bicubic``) followed by a conv."""

    def __init__(self, in_ch: int, out_ch: int, factor: int, mode: str, kernel: int = 3,
                 bias: bool = True, copies: int = 1):
        super().__init__()
        kernel = _check_conv_kernel(kernel)
        self.factor, self.mode = factor, mode
        self.conv = conv2d(in_ch, out_ch, kernel, bias=bias, copies=copies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        align = None if self.mode == "nearest" else False
        x = F.interpolate(x, scale_factor=self.factor, mode=self.mode, align_corners=align)
        return self.conv(x)


class PixelShuffleUp(nn.Module):
    """Sub-pixel convolution: conv to ``out_ch * s * s`` channels, then pixel shuffle."""

    def __init__(self, in_ch: int, out_ch: int, factor: int, kernel: int = 3, bias: bool = True,
                 copies: int = 1):
        super().__init__()
        kernel = _check_conv_kernel(kernel)
        # Each copy's out_ch * s * s channels are contiguous, so the shuffle keeps copies apart.
        self.conv = conv2d(in_ch, out_ch * factor * factor, kernel, bias=bias, copies=copies)
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def zero_insert(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Insert ``factor - 1`` zeros between samples along H and W.

    ``(B, C, H, W) -> (B, C, s*H, s*W)`` with ``y[..., s*i, s*j] = x[..., i, j]``: the
    spectrum of ``y`` is that of ``x`` tiled ``s`` times per axis (replicas at ``k/s``
    cycles/pixel).
    """
    b, c, h, w = x.shape
    y = x.new_zeros(b, c, h, factor, w, factor)
    y[:, :, :, 0, :, 0] = x
    return y.view(b, c, h * factor, w * factor)


class ZeroInsertUp(nn.Module):
    """The textbook upsampler: zero insertion, then a (learned) convolution filter."""

    def __init__(self, in_ch: int, out_ch: int, factor: int, kernel: int = 3, bias: bool = True,
                 copies: int = 1):
        super().__init__()
        kernel = _check_conv_kernel(kernel)
        self.factor = factor
        self.conv = conv2d(in_ch, out_ch, kernel, bias=bias, copies=copies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(zero_insert(x, self.factor))


register(UPSAMPLING, "transposed")(TransposedUp)
register(UPSAMPLING, "pixelshuffle")(PixelShuffleUp)
register(UPSAMPLING, "zero")(ZeroInsertUp)
for _mode in ("nearest", "bilinear", "bicubic"):
    register(UPSAMPLING, _mode)(
        lambda in_ch, out_ch, factor, _m=_mode, **kw: InterpolateUp(in_ch, out_ch, factor, _m, **kw)
    )


# --- normalization ----------------------------------------------------------------------


@register(NORMALIZATION, "none")
def _no_norm(channels: int, copies: int = 1) -> nn.Module:
    return nn.Identity()


@register(NORMALIZATION, "batch")
def _batch_norm(channels: int, copies: int = 1) -> nn.Module:
    return nn.BatchNorm2d(channels * copies)


@register(NORMALIZATION, "instance")
def _instance_norm(channels: int, copies: int = 1) -> nn.Module:
    return nn.InstanceNorm2d(channels * copies, affine=True)


@register(NORMALIZATION, "layer")
def _layer_norm(channels: int, copies: int = 1) -> nn.Module:
    # LayerNorm over (C, H, W) whatever the spatial size: GroupNorm with one group (per copy).
    return nn.GroupNorm(copies, channels * copies)


@register(NORMALIZATION, "group")
def _group_norm(channels: int, groups: int = 8, copies: int = 1) -> nn.Module:
    # The largest group count <= ``groups`` that divides ``channels``.
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return nn.GroupNorm(g * copies, channels * copies)


# --- activation -------------------------------------------------------------------------

register(ACTIVATION, "none")(nn.Identity)
register(ACTIVATION, "relu")(nn.ReLU)
register(ACTIVATION, "tanh")(nn.Tanh)
register(ACTIVATION, "sigmoid")(nn.Sigmoid)
register(ACTIVATION, "gelu")(nn.GELU)
register(ACTIVATION, "silu")(nn.SiLU)


@register(ACTIVATION, "leaky_relu")
def _leaky_relu(negative_slope: float = 0.2) -> nn.Module:
    return nn.LeakyReLU(negative_slope)
