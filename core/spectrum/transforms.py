"""Batched transforms from images to spectra.

Conventions used by every function here:
  * images are ``(B, C, H, W)`` float tensors, CPU or CUDA, any value range;
  * frequencies are in **cycles/pixel**, in ``[-0.5, 0.5)``; Nyquist is 0.5;
  * a *centred* spectrum has DC at index ``(H // 2, W // 2)`` (``fftshift`` layout), so row
    ``i`` holds frequency ``frequencies(H)[i]``;
  * power is normalised so that Parseval holds: ``spectrum.sum((-2, -1)) == (x**2).sum((-2, -1))``
    for ``log=False`` and no window; log spectra are ``10 * log10(power + eps)`` in dB.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from core.errors import InvalidInputError, UnknownNameError, check_int

EPS = 1e-10  # power floor before the log: -100 dB, far below float32 image noise
RESIDUALS = ("none", "blur", "median")
WINDOWS = ("hann", "hamming", "blackman")
# Pixels per FFT chunk (8 MB of float32): small enough that a chunk's half spectrum stays
# in cache while it is squared, logged and mirrored, large enough to amortise the FFT
# plan (measured best of 2**18 .. 2**22 for 128 and 256 px images, benchmarks/spectrum.py).
_CHUNK_PIXELS = 1 << 21


def check_images(x, name: str = "x") -> torch.Tensor:
    """Validate a ``(B, C, H, W)`` floating tensor (shape and dtype only; cheap)."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise InvalidInputError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must be a floating tensor, got {x.dtype}")
    if min(x.shape) < 1:
        raise InvalidInputError(f"{name} is empty: shape {tuple(x.shape)}")
    return x


def require_finite(x: torch.Tensor, name: str = "x") -> None:
    """Raise if ``x`` holds NaN or Inf. One reduction: a NaN or Inf anywhere makes the sum
    non-finite."""
    if not bool(torch.isfinite(x.sum())):
        raise InvalidInputError(f"{name} contains NaN or Inf values")


def frequencies(n: int, *, center: bool = True, device=None) -> torch.Tensor:
    """Sample frequencies of an ``n``-point DFT in cycles/pixel, shape ``(n,)``.

    ``center=True`` gives the ``fftshift`` order (ascending, DC at index ``n // 2``);
    ``center=False`` the raw FFT order (DC at 0).
    """
    check_int("n", n)
    f = torch.fft.fftfreq(n, device=device)
    return torch.fft.fftshift(f) if center else f


@functools.lru_cache(maxsize=32)
def _window(kind: str, h: int, w: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    make = {"hann": torch.hann_window, "hamming": torch.hamming_window,
            "blackman": torch.blackman_window}[kind]
    wy = make(h, periodic=False, dtype=torch.float64)
    wx = make(w, periodic=False, dtype=torch.float64)
    win = wy[:, None] * wx[None, :]
    # Unit mean square: a windowed white noise keeps its power level in dB.
    win = win / win.square().mean().sqrt()
    return win.to(device=device, dtype=dtype)


def window_2d(kind: str, h: int, w: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Separable 2-D window ``(h, w)`` scaled to unit mean square (power-preserving)."""
    if kind not in WINDOWS:
        raise UnknownNameError(f"unknown window '{kind}'; valid: none, {', '.join(WINDOWS)}")
    return _window(kind, h, w, str(torch.device(device or "cpu")), dtype)


@functools.lru_cache(maxsize=16)
def _gaussian_kernel(sigma: float, device: str, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    b, c, h, w = x.shape
    k = _gaussian_kernel(sigma, str(x.device), x.dtype)
    r = k.numel() // 2
    y = F.pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y.view(b, c, h, w)


def _median3(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    p = F.pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="reflect")[:, 0]
    # The nine shifted views of each pixel's 3x3 neighbourhood, stacked on a new last
    # axis; the memory cost is 9x one chunk, so large batches go through in chunks.
    out = torch.empty_like(x).view(b * c, h, w)
    step = max(1, (1 << 24) // (9 * h * w))
    for s in range(0, b * c, step):
        q = p[s:s + step]
        stack = torch.stack([q[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], -1)
        out[s:s + step] = stack.median(dim=-1).values
    return out.view(b, c, h, w)


def residual(x: torch.Tensor, kind: str = "blur", *, sigma: float = 1.0) -> torch.Tensor:
    """High-pass noise residual of images, ``(B, C, H, W) -> (B, C, H, W)``.

    Args:
        x: images ``(B, C, H, W)``.
        kind: ``none`` returns ``x``; ``blur`` is ``x - gaussian_blur(x, sigma)`` (a smooth
            high-pass whose gain rises from 0 at DC to about 1 above ``1 / (2 pi sigma)``
            cycles/pixel); ``median`` is ``x - median3x3(x)`` (an edge-preserving denoiser's
            residual, as used for camera and GAN fingerprints). Borders are reflected.
        sigma: standard deviation in pixels of the ``blur`` kernel.
    """
    check_images(x)
    if kind not in RESIDUALS:
        raise UnknownNameError(f"unknown residual '{kind}'; valid: {', '.join(RESIDUALS)}")
    if kind == "none":
        return x
    require_finite(x)
    if min(x.shape[-2:]) < 2:
        raise InvalidInputError(f"residual '{kind}' needs images of at least 2x2, got "
                                f"{tuple(x.shape[-2:])}")
    if kind == "blur":
        if not sigma > 0:
            raise InvalidInputError(f"sigma must be > 0, got {sigma}")
        if 3 * sigma >= min(x.shape[-2:]):
            raise InvalidInputError(f"sigma {sigma} is too large for {tuple(x.shape[-2:])} images")
        return x - _blur(x, float(sigma))
    return x - _median3(x)


def _apply_window(x: torch.Tensor, window) -> torch.Tensor:
    if window is None or window == "none":
        return x
    h, w = x.shape[-2:]
    if isinstance(window, torch.Tensor):
        if window.shape != (h, w):
            raise InvalidInputError(f"window has shape {tuple(window.shape)}, expected {(h, w)}")
        return x * window.to(device=x.device, dtype=x.dtype)
    return x * window_2d(window, h, w, device=x.device, dtype=x.dtype)


def power_spectrum(x: torch.Tensor, *, log: bool = True, window=None,
                   center: bool = True) -> torch.Tensor:
    """Per-channel power spectrum, ``(B, C, H, W) -> (B, C, H, W)``.

    Args:
        x: images ``(B, C, H, W)``, float32 or float64.
        log: return ``10 * log10(|X|^2 + 1e-10)`` in dB instead of linear power.
        window: ``None``, a name in :data:`WINDOWS` or an ``(H, W)`` tensor; named
            windows are scaled to unit mean square so levels stay comparable.
        center: ``fftshift`` layout (DC at ``(H // 2, W // 2)``); else raw FFT order.

    Returns:
        ``|FFT_ortho(x)|^2`` (Parseval: it sums to ``sum(x**2)`` per channel), at index
        ``[i, j]`` the frequency ``(frequencies(H)[i], frequencies(W)[j])``.

    The real-input FFT computes half the spectrum; the other half is its mirror
    ``P(-fy, -fx) = P(fy, fx)`` and is written by slicing, in cache-sized chunks.
    """
    check_images(x)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    x = _apply_window(x, window)
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    wh = w // 2 + 1  # columns of the half spectrum: kx = 0 .. w // 2
    h2, w2 = (h // 2, w // 2) if center else (0, 0)
    chunk = max(1, _CHUNK_PIXELS // (c * h * w))
    for s in range(0, b, chunk):
        spec = torch.fft.rfft2(x[s:s + chunk], norm="ortho")
        parts = torch.view_as_real(spec)
        p = parts[..., 0].square()
        p.addcmul_(parts[..., 1], parts[..., 1])
        if log:
            p.add_(EPS).log10_().mul_(10.0)
        _mirror_into(out[s:s + chunk], p, h2, w2, wh)
    # A NaN or Inf anywhere in an image reaches its DC term: a nearly free check.
    if not bool(torch.isfinite(out[..., h2, w2]).all()):
        raise InvalidInputError("x contains NaN or Inf values")
    return out


def _mirror_into(out: torch.Tensor, half: torch.Tensor, h2: int, w2: int, wh: int) -> None:
    """Write the full spectrum, rolled by ``(h2, w2)``, from its half ``(..., H, W//2+1)``.

    Output ``[i, j]`` holds ``(ky, kx) = ((i - h2) mod H, (j - w2) mod W)``. Columns with
    ``kx < wh`` come from ``half[ky, kx]``; the rest from the Hermitian mirror
    ``half[(-ky) mod H, W - kx]``, which is ``half`` flipped on both axes and rolled by
    one more row. Everything moves as at most four rectangular block copies per part.
    """
    h, w = out.shape[-2:]
    _place(out, half, h2, 0, w2)
    if w > wh:
        _place(out, half[..., 1:w - wh + 1].flip(-2, -1), h2 + 1, wh, w2)


def _runs(start: int, length: int, period: int) -> list[tuple[int, int, int]]:
    """Split ``dst = (start + t) mod period`` for ``t < length`` into contiguous runs
    ``(dst0, t0, n)``."""
    start %= period
    first = min(length, period - start)
    runs = [(start, 0, first)]
    if first < length:
        runs.append((0, first, length - first))
    return runs


def _place(out: torch.Tensor, src: torch.Tensor, row_shift: int, kx0: int, w2: int) -> None:
    """``out[..., (r + row_shift) mod H, (kx0 + c + w2) mod W] = src[..., r, c]``."""
    h, w = out.shape[-2:]
    for r_dst, r_src, nr in _runs(row_shift, src.shape[-2], h):
        for c_dst, c_src, nc in _runs(kx0 + w2, src.shape[-1], w):
            out[..., r_dst:r_dst + nr, c_dst:c_dst + nc].copy_(
                src[..., r_src:r_src + nr, c_src:c_src + nc])


@functools.lru_cache(maxsize=16)
def _dct_matrix(n: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    # Orthonormal DCT-II: D[k, m] = a_k cos(pi (m + 1/2) k / n), a_0 = sqrt(1/n), else sqrt(2/n).
    m = torch.arange(n, dtype=torch.float64)
    d = torch.cos(torch.pi * (m[None, :] + 0.5) * m[:, None] / n) * (2.0 / n) ** 0.5
    d[0] /= 2**0.5
    return d.to(device=device, dtype=dtype)


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two axes, ``(B, C, H, W) -> (B, C, H, W)``.

    Coefficient ``[u, v]`` is the cosine of ``u / (2H)`` cycles/pixel vertically and
    ``v / (2W)`` horizontally. Orthonormal: ``(dct2(x)**2).sum() == (x**2).sum()``; equal
    to ``scipy.fft.dctn(x, type=2, norm='ortho', axes=(-2, -1))``.
    """
    check_images(x)
    require_finite(x)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    h, w = x.shape[-2:]
    dh = _dct_matrix(h, str(x.device), x.dtype)
    dw = _dct_matrix(w, str(x.device), x.dtype)
    return dh @ x @ dw.T


def dct_spectrum(x: torch.Tensor, *, log: bool = True) -> torch.Tensor:
    """Power of the orthonormal 2-D DCT-II coefficients, ``(B, C, H, W) -> (B, C, H, W)``.

    ``10 * log10(dct2(x)**2 + 1e-10)`` in dB when ``log`` (Frank et al.'s view, in which
    upsampling grids show as regular dots), else the squared coefficients.
    """
    power = dct2(x).square_()
    return power.add_(EPS).log10_().mul_(10.0) if log else power
