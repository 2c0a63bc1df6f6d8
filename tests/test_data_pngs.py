"""core.data.pngs: [-1, 1] tensors to 8-bit pixels and lossless PNG folders.

The shipped zoo samples were written by :func:`write_pngs`; writing their pixels again
must give the same bytes, or ``fpx zoo ship`` would no longer reproduce them.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import png_bytes, to_uint8, write_pngs

SHIPPED = Path(__file__).resolve().parent.parent / "core" / "assets" / "zoo" / "samples"


def test_to_uint8_rounds_to_nearest_and_clamps():
    x = torch.tensor([-2.0, -1.0, -1 + 0.6 / 127.5, 0.0, 1.0, 3.0]).view(1, 1, 1, 6)
    out = to_uint8(x.expand(1, 3, 1, 6))
    assert out.shape == (1, 1, 6, 3) and out.dtype == np.uint8
    # 0 maps to 127.5, which torch rounds half to even: 128.
    assert out[0, 0, :, 0].tolist() == [0, 0, 1, 128, 255, 255]


def test_write_pngs_names_five_digits_from_start_and_round_trips(tmp_path):
    pixels = torch.randint(0, 256, (3, 3, 5, 7), dtype=torch.uint8)
    paths = write_pngs(pixels.float() / 127.5 - 1, tmp_path / "out", start=12)
    assert [p.name for p in paths] == ["00012.png", "00013.png", "00014.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]
    for path, px in zip(paths, pixels):
        assert np.array_equal(np.asarray(Image.open(path)), px.permute(1, 2, 0).numpy())


@pytest.mark.parametrize("entry", ["gan_tconv", "flow_glow"])
def test_shipped_zoo_samples_are_rewritten_byte_for_byte(tmp_path, entry):
    shipped = sorted((SHIPPED / entry).glob("*.png"))[:3]
    assert shipped, f"no shipped samples for {entry}"
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in shipped])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
    written = write_pngs(x, tmp_path)
    for old, new in zip(shipped, written):
        assert new.read_bytes() == old.read_bytes(), old.name
    assert png_bytes(pixels[0]) == shipped[0].read_bytes()


def test_clear_pngs_removes_only_the_pngs_on_top(tmp_path):
    from core.data import clear_pngs

    write_pngs(torch.zeros(3, 3, 4, 4), tmp_path)
    (tmp_path / "samples.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    write_pngs(torch.zeros(1, 3, 4, 4), tmp_path / "sub")
    assert clear_pngs(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.json", "sub"]
    assert clear_pngs(tmp_path / "missing") == 0
