"""core.data.images.load_rgb: every mode and format becomes (H, W, 3) float32 in [0, 1].

Known values: lossless formats must give back the written pixels bit for bit (the
expected array is computed the same way, ``uint8 / 255`` in float32). JPEG is lossy: at
quality 95 without chroma subsampling, on the smooth ramps used here, it moves a sample
by at most 4 codes (measured), so it gets ``JPEG_TOL = 6 / 255``.
"""

import os
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data.images import ImageReadError, decode_rgb, load_rgb
from core.errors import InvalidInputError

JPEG_TOL = 6 / 255
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
SAVE_OPTIONS = {
    "PNG": {},
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True, "exact": True},  # exact: keep colour under alpha
    "BMP": {},
    "TIFF": {},
}
LOSSLESS = [
    ("PNG", "RGB"), ("PNG", "L"), ("PNG", "RGBA"), ("PNG", "P"), ("PNG", "LA"), ("PNG", "1"),
    ("WEBP", "RGB"), ("WEBP", "L"), ("WEBP", "RGBA"), ("WEBP", "P"), ("WEBP", "LA"),
    ("BMP", "RGB"), ("BMP", "L"), ("BMP", "RGBA"), ("BMP", "P"), ("BMP", "1"),
    ("TIFF", "RGB"), ("TIFF", "L"), ("TIFF", "RGBA"), ("TIFF", "P"), ("TIFF", "LA"),
    ("TIFF", "CMYK"), ("TIFF", "1"), ("TIFF", "YCbCr"),
]
LOSSY = [("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK")]


def source_image(mode: str) -> Image.Image:
    """A 16x16 image of smooth ramps in ``mode`` (alpha stays >= 64 so WEBP keeps colour)."""
    y, x = np.mgrid[0:16, 0:16]
    rgba = np.stack([x * 16, y * 16, 255 - x * 8 - y * 4, 64 + x * 6 + y * 6], -1)
    image = Image.fromarray(rgba.astype(np.uint8), "RGBA")
    # Modes without alpha start from RGB, so palettes carry no transparency entry.
    return image.convert(mode) if mode in ("RGBA", "LA") else image.convert("RGB").convert(mode)


def save(image: Image.Image, folder, fmt: str, name: str = "image"):
    path = folder / f"{name}{SUFFIX[fmt]}"
    image.save(path, fmt, **SAVE_OPTIONS[fmt])
    return path


def expected_rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.float32) / 255.0


def png_bytes(pixels: np.ndarray, colour_type: int, bit_depth: int = 16,
              declared: tuple[int, int] | None = None) -> bytes:
    """A minimal PNG (signature, IHDR, one IDAT, IEND) written by hand.

    Args:
        pixels: ``(H, W, C)`` big-endian samples, C matching ``colour_type``.
        declared: ``(W, H)`` to write in IHDR instead of the true size.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    h, w = pixels.shape[:2]
    w_hdr, h_hdr = declared or (w, h)
    rows = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))  # filter 0 per row
    header = struct.pack(">IIBBBBB", w_hdr, h_hdr, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


# --- every mode and format -------------------------------------------------------------

def written_and_read(tmp_path, fmt, mode):
    """An image of ``mode`` saved as ``fmt`` and read back: ``(image, (16, 16, 3) float32)``."""
    image = source_image(mode)
    out = load_rgb(save(image, tmp_path, fmt))
    assert out.shape == (16, 16, 3)
    assert out.dtype == np.float32
    return image, out


@pytest.mark.parametrize(("fmt", "mode"), LOSSLESS, ids=[f"{f}-{m}" for f, m in LOSSLESS])
def test_lossless_formats_give_back_the_written_pixels(tmp_path, fmt, mode):
    image, out = written_and_read(tmp_path, fmt, mode)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected_rgb(image))


@pytest.mark.parametrize(("fmt", "mode"), LOSSY, ids=[f"{f}-{m}" for f, m in LOSSY])
def test_jpeg_modes_are_close_to_the_written_pixels(tmp_path, fmt, mode):
    image, out = written_and_read(tmp_path, fmt, mode)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out, expected_rgb(image), rtol=0, atol=JPEG_TOL)


def test_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 0  # fully transparent: compositing on black would give zeros
    path = tmp_path / "clear.png"
    Image.fromarray(rgba, "RGBA").save(path)
    np.testing.assert_array_equal(load_rgb(path)[0, 0], np.float32([200, 100, 50]) / 255)


def test_palette_entries_become_their_colours(tmp_path):
    image = Image.new("P", (3, 2))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.putdata([0, 1, 2, 2, 1, 0])
    path = tmp_path / "palette.png"
    image.save(path)
    out = load_rgb(path)
    np.testing.assert_array_equal(out[0], np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(out[1], np.eye(3, dtype=np.float32)[::-1])


def test_grey_repeats_into_three_equal_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "grey.png"
    Image.fromarray(grey, "L").save(path)
    out = load_rgb(path)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey.astype(np.float32) / 255)


def test_uppercase_suffix_is_read(tmp_path):
    path = tmp_path / "SHOUT.PNG"
    Image.new("RGB", (2, 2), (255, 0, 0)).save(path, "PNG")
    np.testing.assert_array_equal(load_rgb(path)[1, 1], [1, 0, 0])


def test_accepts_str_paths(tmp_path):
    path = tmp_path / "a.png"
    Image.new("L", (2, 2), 255).save(path)
    assert load_rgb(str(path)).shape == (2, 2, 3)


# --- bit depth ---------------------------------------------------------------------------

def test_16_bit_grey_png_is_exact(tmp_path):
    grey = np.array([[0, 1, 255, 256], [32767, 32768, 65534, 65535]], np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    out = load_rgb(path)
    np.testing.assert_array_equal(out[..., 0], grey.astype(np.float32) / 65535)
    assert out[0, 1, 0] > 0  # 1/65535 is not lost to 8-bit rounding


def test_16_bit_rgb_tiff_is_exact(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, pixels, photometric="rgb")
    np.testing.assert_array_equal(load_rgb(path), pixels.astype(np.float32) / 65535)


def test_16_bit_planar_rgb_tiff_is_exact(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(pixels, 2, 0), photometric="rgb",
                     planarconfig="separate")
    np.testing.assert_array_equal(load_rgb(path), pixels.astype(np.float32) / 65535)


def test_grey_alpha_tiff_with_three_rows_keeps_its_layout(tmp_path):
    # (3, W, 2) looks like planar (samples, H, W) to a shape guess; the page header decides.
    la = np.random.default_rng(2).integers(0, 256, (3, 7, 2)).astype(np.uint8)
    path = tmp_path / "la.tif"
    tifffile.imwrite(path, la, photometric="minisblack", extrasamples=["unassalpha"])
    out = load_rgb(path)
    assert out.shape == (3, 7, 3)
    np.testing.assert_array_equal(out[..., 1], la[..., 0].astype(np.float32) / 255)


def test_white_is_zero_tiff_is_inverted(tmp_path):
    stored = np.array([[0, 95, 255]], np.uint8)
    path = tmp_path / "miniswhite.tif"
    tifffile.imwrite(path, stored, photometric="miniswhite")
    np.testing.assert_array_equal(load_rgb(path)[..., 0],
                                  (255 - stored).astype(np.float32) / 255)


def test_cmyk_tiff_is_converted_not_read_as_ink(tmp_path):
    path = tmp_path / "cmyk.tif"
    Image.new("RGB", (2, 2), (10, 200, 30)).convert("CMYK").save(path)
    np.testing.assert_array_equal(load_rgb(path)[0, 0], np.float32([10, 200, 30]) / 255)


@pytest.mark.parametrize(("colour_type", "channels"), [(2, 3), (6, 4), (4, 2)],
                         ids=["rgb48", "rgba64", "grey-alpha32"])
def test_16_bit_colour_png_is_read_at_8_bits_by_pillow(tmp_path, colour_type, channels):
    # Pillow decodes 16-bit colour PNGs to 8-bit modes keeping the high byte of each
    # sample; this pins that known loss (documented in core.data.images).
    pixels = np.random.default_rng(3).integers(0, 65536, (3, 5, channels)).astype(">u2")
    path = tmp_path / "deep.png"
    path.write_bytes(png_bytes(pixels, colour_type))
    high = (pixels >> 8).astype(np.float32) / 255
    expected = high[..., :3] if channels >= 3 else np.repeat(high[..., :1], 3, axis=2)
    np.testing.assert_array_equal(load_rgb(path), expected)


def test_hand_written_16_bit_grey_png_is_exact(tmp_path):
    pixels = np.random.default_rng(4).integers(0, 65536, (3, 5, 1)).astype(">u2")
    path = tmp_path / "grey16.png"
    path.write_bytes(png_bytes(pixels, colour_type=0))
    np.testing.assert_array_equal(load_rgb(path)[..., 0],
                                  pixels[..., 0].astype(np.float32) / 65535)


def test_float_tiff_in_range_is_kept_and_out_of_range_clipped(tmp_path):
    values = np.array([[-0.5, 0.0, 0.25, 1.0, 3.0]], np.float32)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, values)
    np.testing.assert_array_equal(load_rgb(path)[..., 2], np.clip(values, 0, 1))


# --- errors ------------------------------------------------------------------------------

def assert_one_line_naming(err: pytest.ExceptionInfo, path) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_error_type_is_an_invalid_input_error():
    assert issubclass(ImageReadError, InvalidInputError)


def test_missing_file_raises_naming_the_path(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError) as err:
        load_rgb(path)
    assert "no such file" in assert_one_line_naming(err, path)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"not a regular file \(a folder\)"):
        load_rgb(tmp_path)
    with pytest.raises(ImageReadError, match="no such file"):
        load_rgb(tmp_path / "missing.png")


def test_fifo_and_device_are_not_files(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "zero.png")
    for name in ("pipe.png", "zero.png"):
        with pytest.raises(ImageReadError, match="FIFO, socket or device"):
            load_rgb(tmp_path / name)  # returns at once: nothing is opened


def test_huge_headers_are_refused_before_decoding(tmp_path, monkeypatch):
    from tests.hostile.workspace import huge_tiff, png_bomb

    for path in (huge_tiff(tmp_path / "big.tif"), png_bomb(tmp_path / "bomb.png")):
        with pytest.raises(ImageReadError, match="FPX_MAX_PIXELS"):
            load_rgb(path)
        with pytest.raises(ImageReadError, match="FPX_MAX_PIXELS"):
            decode_rgb(path.read_bytes(), path.name)
    monkeypatch.setenv("FPX_MAX_PIXELS", "100")
    Image.new("RGB", (20, 20)).save(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match=r"20x20 > 100 pixels"):
        load_rgb(tmp_path / "small.png")
    Image.new("L", (20, 20)).save(tmp_path / "small.tif")
    with pytest.raises(ImageReadError, match=r"20x20 > 100 pixels"):
        load_rgb(tmp_path / "small.tif")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tif"])
def test_random_bytes_raise_naming_the_path(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 500, np.uint8).tobytes())
    with pytest.raises(ImageReadError) as err:
        load_rgb(path)
    assert "not a recognised image" in assert_one_line_naming(err, path)


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as err:
        load_rgb(path)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_raises_naming_the_path(tmp_path, fmt):
    noise = np.random.default_rng(6).integers(0, 256, (64, 64, 3), np.uint8)
    whole = save(Image.fromarray(noise), tmp_path, fmt, "whole")
    path = tmp_path / f"cut{SUFFIX[fmt]}"
    data = whole.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageReadError) as err:
        load_rgb(path)
    assert "truncated" in assert_one_line_naming(err, path)


def test_float_tiff_holding_nan_raises(tmp_path):
    values = np.zeros((4, 4), np.float32)
    values[2, 1] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, values)
    with pytest.raises(ImageReadError) as err:
        load_rgb(path)
    assert "NaN" in assert_one_line_naming(err, path)


def test_float_tiff_holding_inf_raises(tmp_path):
    path = tmp_path / "inf.tif"
    tifffile.imwrite(path, np.full((2, 2), np.inf, np.float32))
    with pytest.raises(ImageReadError, match="NaN or Inf"):
        load_rgb(path)


def test_decompression_bomb_header_raises_without_decoding(tmp_path):
    # 20000x20000 declared with no pixel data: refused from the header alone.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(np.zeros((1, 1, 3), ">u1"), colour_type=2, bit_depth=8,
                               declared=(20000, 20000)))
    with pytest.raises(ImageReadError) as err:
        load_rgb(path)
    assert "too large" in assert_one_line_naming(err, path)

