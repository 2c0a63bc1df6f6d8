"""Decode one image file into an RGB float array, whatever its mode or bit depth.

Only pixel data is decoded: Pillow (and tifffile for TIFF) read the formats listed in
:data:`IMAGE_SUFFIXES`; nothing is unpickled or executed. Grey, palette, RGBA (alpha
dropped: the colour channels are what a generator wrote), CMYK and 16-bit images all come
out as ``(H, W, 3)`` float32 in ``[0, 1]``. Precision: 16-bit grey PNGs and 16-bit TIFFs
are exact (``value / 65535``); 16-bit colour or grey-with-alpha PNGs are decoded by Pillow
at 8 bits (the high byte of each sample, ``(value >> 8) / 255``).

Every format's header is read before its pixels: an image of more than
:func:`core.limits.max_pixels` pixels (``FPX_MAX_PIXELS``) is refused undecoded, so a
small file that claims a huge image (a 16000 x 16000 deflated TIFF of a few hundred KB)
costs nothing. A FIFO, a device or a folder is not a file to decode.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core import limits
from core.errors import InvalidInputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


class ImageReadError(InvalidInputError):
    """A file could not be decoded as an image; the message says why."""


def _scale(arr: np.ndarray) -> np.ndarray:
    """Integer or float pixels to float32 in [0, 1] by their dtype's range."""
    if arr.dtype in (np.uint8, np.uint16):  # in place: one float copy of a large image
        out = arr.astype(np.float32)
        out /= 255.0 if arr.dtype == np.uint8 else 65535.0
        return out
    if arr.dtype in (np.int32, np.uint32, np.int64):
        # Pillow's "I" mode holds 16-bit PNGs and TIFFs widened to int32.
        top = 65535.0 if arr.max(initial=0) <= 65535 else float(np.iinfo(arr.dtype).max)
        return np.clip(arr.astype(np.float64) / top, 0, 1).astype(np.float32)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageReadError("holds NaN or Inf pixels")
        return np.clip(arr, 0, 1).astype(np.float32)
    raise ImageReadError(f"unsupported pixel type {arr.dtype}")


def _to_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] in (1, 2):  # grey, grey + alpha
        return np.repeat(arr[:, :, :1], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] >= 3:  # RGB, RGBA (alpha dropped)
        return arr[:, :, :3]
    raise ImageReadError(f"unsupported array shape {arr.shape}")


def _read_tiff(source, max_pixels: int) -> np.ndarray | None:
    """TIFF through tifffile, which keeps 16-bit colour exact (Pillow does not).

    The first page's header is checked against ``max_pixels`` before it is decoded. Only
    black-is-zero grey and RGB pages are taken as stored; palette, CMYK, YCbCr and
    white-is-zero pages need a colour conversion, so they (and anything tifffile cannot
    decode) return None and go to Pillow (which checks the size on its header too).
    """
    try:
        import tifffile
    except ImportError:
        return None
    try:
        with tifffile.TiffFile(source) as tif:
            page = tif.pages[0]
            _check_pixels(int(page.imagewidth), int(page.imagelength), max_pixels)
            if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK,
                                        tifffile.PHOTOMETRIC.RGB):
                return None
            arr = page.asarray()
            planar = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    except ImageReadError:
        raise
    except Exception:  # e.g. a compression tifffile cannot decode: let Pillow try
        return None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
    if planar and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, 2)  # (samples, H, W) -> (H, W, samples)
    return arr


def _check_pixels(w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise ImageReadError(f"is too large ({w}x{h} > {max_pixels} pixels; set "
                             "FPX_MAX_PIXELS to raise the limit)")


def _read_pillow(source, max_pixels: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as img:
            _check_pixels(*img.size, max_pixels)  # on the header, before decoding
            img.load()
            # Modes numpy can take as they are (high bit depths stay exact); everything
            # else (palette, alpha, CMYK, YCbCr, ...) goes through Pillow's RGB conversion.
            if img.mode in ("RGB", "L", "1", "I", "F") or img.mode.startswith("I;16"):
                arr = np.asarray(img)
            else:
                arr = np.asarray(img.convert("RGB"))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _decode(source, name: str, is_tiff: bool, max_pixels: int) -> np.ndarray:
    try:
        arr = _read_tiff(source, max_pixels) if is_tiff else None
        if arr is None:
            arr = _read_pillow(source, max_pixels)
        if arr.size == 0:
            raise ImageReadError("is empty")
        _check_pixels(arr.shape[1], arr.shape[0], max_pixels)
        return np.ascontiguousarray(_scale(_to_rgb(arr)))
    except ImageReadError as err:
        raise ImageReadError(f"{name}: {err}") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageReadError(f"{name}: is too large (decompression bomb guard; set "
                             "FPX_MAX_PIXELS to raise the limit)") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image (unknown format or corrupt "
                             "header)") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, MemoryError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageReadError(f"{name}: cannot decode ({reason})") from None


def load_rgb(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``path`` into an ``(H, W, 3)`` float32 array in ``[0, 1]``.

    Args:
        max_pixels: refuse images of more pixels (default :func:`core.limits.max_pixels`).

    Raises:
        ImageReadError: the file is missing, not a regular file (a FIFO, a device),
            unreadable, not an image, truncated, too large, or holds pixels that cannot
            be made RGB. The message is one line.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
        raise ImageReadError(f"{path}: not a regular file ({kind})")
    if info.st_size > limits.max_bytes():
        raise ImageReadError(f"{path}: is too large ({info.st_size} bytes; set "
                             "FPX_MAX_BYTES to raise the limit)")
    if not os.access(path, os.R_OK):
        raise ImageReadError(f"{path}: permission denied")
    limit = max_pixels if max_pixels is not None else limits.max_pixels()
    return _decode(path, str(path), path.suffix.lower() in (".tif", ".tiff"), limit)


def decode_rgb(data: bytes, name: str = "upload", *,
               max_pixels: int | None = None) -> np.ndarray:
    """Decode image bytes (an upload) like :func:`load_rgb`; ``name`` labels errors.

    The format is sniffed from the bytes, never trusted from a file name.
    """
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ImageReadError(f"{name}: is empty")
    is_tiff = bytes(data[:4]) in (b"II*\x00", b"MM\x00*")
    limit = max_pixels if max_pixels is not None else limits.max_pixels()
    return _decode(io.BytesIO(data), name, is_tiff, limit)
