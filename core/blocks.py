"""Registries of interchangeable generator blocks: upsampling, normalization, activation.

Every network fpx builds (synthetic models, zoo generators) gets these blocks from here,
so there is one way to make a block. Lookups by an unknown name raise an error that lists
the valid names::

    up = get_upsampling("transposed", in_ch=32, out_ch=32, factor=2, kernel=3)
    norm = get_norm("instance", channels=32)
    act = get_activation("leaky_relu")

All upsampling blocks map ``(B, in_ch, H, W)`` to ``(B, out_ch, factor*H, factor*W)``.

Each upsampler is filed as an :class:`Upsampler` record that says what the block *is*
(allowed and default kernels, its fixed interpolation filter if any, whether uneven
overlap prints a checkerboard, a display label), so specs, theory, the synthetic space,
the zoo and the dashboard derive their behaviour from the record, never from the name.
Adding an upsampler is one :func:`register_upsampler` call.

Every factory also takes ``copies`` (default 1): that many independent blocks side by
side in the channel axis, ``(B, copies*in_ch, H, W) -> (B, copies*out_ch, ...)``, built
with grouped convolutions and per-copy normalization. Each parameter of the stacked block
is its copies' parameters concatenated along axis 0, which is how ``core.synthetic`` runs
and fits many synthetic models in one call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InvalidInputError, check_int
from core.registry import file_under, lookup

KERNELS = ("odd", "any")


@dataclass(frozen=True)
class Upsampler:
    """What an upsampling block is: how to build it and what it does to a spectrum.

    Attributes:
        name: the registry key (``transposed``, ``nearest``, ...).
        factory: ``(in_ch, out_ch, factor, *, kernel=..., bias=True, copies=1)`` ->
            ``nn.Module`` mapping ``(B, in_ch, H, W)`` to ``(B, out_ch, sH, sW)``.
        label: display name (dashboard, notebooks).
        kernels: ``any`` when the kernel is the block's own learned resampling filter and
            may be even (a transposed convolution); ``odd`` when it is a 'same'
            convolution beside a fixed resampling (interpolation, zero insertion, pixel
            shuffle).
        default_kernel: the kernel when none is given; ``None`` means "the factor" (a
            transposed convolution whose kernel equals its stride: no overlap).
        interpolation: the fixed filter the block resamples with, a name in
            :data:`core.theory.INTERPOLATORS`, or ``None`` when every tap is learned.
            A fixed interpolator nulls the DC replicas at ``k / s`` (``core.theory``).
        checkerboard: True when taps overlap unevenly for ``kernel % factor != 0`` and
            so print a checkerboard of period ``factor`` (Odena et al.).
        doc: one sentence for help texts.
    """

    name: str
    factory: Callable[..., nn.Module]
    label: str
    kernels: str = "odd"
    default_kernel: int | None = 3
    interpolation: str | None = None
    checkerboard: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kernels not in KERNELS:
            raise ValueError(f"upsampler '{self.name}': kernels must be one of {KERNELS}")
        if self.default_kernel is None and self.kernels != "any":
            raise ValueError(f"upsampler '{self.name}': a kernel tied to the factor can be "
                             "even, so it needs kernels='any'")

    def __call__(self, in_ch: int, out_ch: int, factor: int, **options) -> nn.Module:
        return self.factory(in_ch, out_ch, factor, **options)

    def kernel_for(self, factor: int) -> int:
        """The default kernel at upsampling factor ``factor``."""
        return factor if self.default_kernel is None else self.default_kernel

    def allows_kernel(self, kernel: int) -> bool:
        """Whether a kernel size fits the block (positive; odd unless ``kernels='any'``)."""
        return kernel >= 1 and (self.kernels == "any" or kernel % 2 == 1)

    def uneven_overlap(self, kernel: int, factor: int) -> bool:
        """True when the block's taps cover output phases unevenly: a checkerboard."""
        return self.checkerboard and kernel % factor != 0


UPSAMPLING: dict[str, Upsampler] = {}
NORMALIZATION: dict[str, Callable[..., nn.Module]] = {}
ACTIVATION: dict[str, Callable[..., nn.Module]] = {}


def register(registry: dict[str, Callable[..., nn.Module]], name: str):
    """Decorator: file a block factory under ``name`` in ``registry``."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        file_under(registry, name, factory, kind="block")
        return factory

    return add


def register_upsampler(name: str, *, label: str, kernels: str = "odd",
                       default_kernel: int | None = 3, interpolation: str | None = None,
                       checkerboard: bool = False, doc: str = ""):
    """Decorator: file a block factory in :data:`UPSAMPLING` as an :class:`Upsampler`
    record with these properties (see its attributes)."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        register(UPSAMPLING, name)(Upsampler(name, factory, label, kernels, default_kernel,
                                             interpolation, checkerboard, doc))
        return factory

    return add


def _lookup(registry: dict, kind: str, name: str) -> Callable[..., nn.Module]:
    return lookup(registry, name, kind=kind, sort=True)


def upsampler(name: str) -> Upsampler:
    """The record of the upsampler ``name``; a miss lists the valid names."""
    return _lookup(UPSAMPLING, "upsampling", name)


def get_upsampling(name: str, in_ch: int, out_ch: int, factor: int, **options) -> nn.Module:
    """Build the upsampling block ``name``; ``options`` go to its factory (e.g. ``kernel``)."""
    factory = upsampler(name)
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
    check_int(field, value)


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


register_upsampler(
    "transposed", label="Transposed conv", kernels="any", default_kernel=None,
    checkerboard=True,
    doc="A learned transposed convolution with stride s; uneven overlap (k % s != 0) "
        "prints a checkerboard.")(TransposedUp)


def _interpolating(mode: str) -> Callable[..., nn.Module]:
    def factory(in_ch: int, out_ch: int, factor: int, **options) -> nn.Module:
        return InterpolateUp(in_ch, out_ch, factor, mode, **options)

    return factory


for _mode, _label in (("nearest", "Nearest"), ("bilinear", "Bilinear"),
                      ("bicubic", "Bicubic")):
    register_upsampler(
        _mode, label=_label, interpolation=_mode,
        doc=f"Fixed {_mode} interpolation, then a learned 3x3 convolution "
            "(resize-convolution).")(_interpolating(_mode))
register_upsampler(
    "pixelshuffle", label="Pixel shuffle",
    doc="A convolution to s*s times the channels, rearranged into an s-times larger "
        "image (sub-pixel convolution).")(PixelShuffleUp)
register_upsampler(
    "zero", label="Zero insertion",
    doc="The textbook upsampler: s-1 zeros between samples, then a learned "
        "convolution.")(ZeroInsertUp)


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
