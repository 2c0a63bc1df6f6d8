"""core.extractor.sizes: the size policy that lets an extractor trained on one crop size
embed images of any size (tiles above, the spectrum resampled below), and its use by
``embed_folders``, ``fpx embed`` and the manifold's learned space."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.errors import InvalidInputError
from core.extractor import Extractor, ExtractorConfig
from core.extractor.checkpoint import export_extractor
from core.extractor.embeddings import embed_folders
from core.extractor.inputs import extractor_input
from core.extractor.sizes import (
    MIN_SIDE,
    embed_any,
    resample_spectrum,
    square,
    tile_origins,
    tiles,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Extractor(ExtractorConfig(width=4, embed_dim=8, crop_size=32)).eval()


def test_tiles_cover_the_image_on_a_regular_grid():
    assert tile_origins(32, 32, 4) == [0]
    assert tile_origins(64, 32, 4) == [0, 32]
    assert tile_origins(100, 32, 4) == [0, 23, 45, 68]  # 4 tiles, edges touched
    assert tile_origins(1000, 32, 4) == [0, 323, 645, 968]  # at most 4 a side
    assert tile_origins(40, 32, 4) == [0, 8]
    with pytest.raises(InvalidInputError, match="holds no 32-px tile"):
        tile_origins(20, 32, 4)
    x = torch.arange(2 * 3 * 64 * 96, dtype=torch.float32).view(2, 3, 64, 96)
    t = tiles(x, 32)
    assert t.shape == (2, 6, 3, 32, 32)  # 2 rows x 3 columns
    assert torch.equal(t[:, 0], x[..., :32, :32]) and torch.equal(t[:, -1], x[..., 32:, 64:])
    assert tiles(torch.zeros(1, 3, 1024, 1024), 32).shape[1] == 16  # MAX_TILES


def test_resample_spectrum_keeps_frequencies_in_cycles_per_pixel():
    # A pattern of period 4 (and 8): its peaks sit at 1/4 and 1/8 cycle per pixel, which
    # is bin 8 (4) from DC at 32 px and bin 16 (8) at 64 px.
    def pattern(s):
        i = torch.arange(s, dtype=torch.float32)
        row = torch.cos(2 * torch.pi * i / 4) + 0.5 * torch.cos(2 * torch.pi * i / 8)
        return row.expand(1, 3, s, s) * 0.5  # varies along the columns only

    small = extractor_input(pattern(32), "spectrum", "none")
    big = extractor_input(pattern(64), "spectrum", "none")
    up = resample_spectrum(small, 64)
    assert up.shape == (1, 3, 64, 64)
    assert torch.allclose(resample_spectrum(small, 32), small, atol=1e-5)  # identity
    # on the DC row, the resampled peaks are the 64-px image's: 1/4 cycle per pixel (bins
    # 32 +- 16) strongest, then 1/8 (32 +- 8)
    for spec in (up, big):
        order = spec[0, 0, 32].argsort(descending=True).tolist()
        assert set(order[:2]) == {16, 48} and set(order[2:4]) == {24, 40}, order[:4]


def test_embed_any_at_every_size(model):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(embed_any(model, x), model(x))  # the trained size: as it is
    # larger: tiles, averaged; four copies of one tile embed as that tile
    big = x.repeat(1, 1, 2, 2)
    assert torch.allclose(embed_any(model, big), model(x), atol=1e-5)
    assert torch.allclose(embed_any(model, big, large="center"), model(big[..., 16:48, 16:48]))
    # smaller: the network reads the spectrum resampled to 32, not a padded image
    small = x[..., :16, :16]
    e = embed_any(model, small)
    z = resample_spectrum(extractor_input(small, "spectrum", "blur"), 32)
    ref = torch.nn.functional.normalize(
        model.embed(model.body(model.stem(z)).mean((-2, -1))), dim=-1)
    assert torch.allclose(e, ref) and not torch.allclose(e, model(small))
    assert torch.allclose(embed_any(model, small, small="native"), model(small))
    # any shape: a wide image is tiled over its whole width; a narrow one squared
    wide = torch.rand(1, 3, 40, 100) * 2 - 1
    assert torch.allclose(embed_any(model, wide),
                          torch.nn.functional.normalize(model(tiles(wide, 32)[0]).mean(0),
                                                        dim=0)[None], atol=1e-5)
    narrow = torch.rand(1, 3, 20, 50) * 2 - 1
    assert torch.allclose(embed_any(model, narrow), embed_any(model, square(narrow)))
    for u in (embed_any(model, big), e, embed_any(model, wide)):
        assert torch.allclose(u.norm(dim=1), torch.ones(len(u)), atol=1e-5)
    with pytest.raises(InvalidInputError, match=f"under the {MIN_SIDE}-px minimum"):
        embed_any(model, torch.zeros(1, 3, 12, 12))
    with pytest.raises(InvalidInputError, match="size policy"):
        embed_any(model, x, large="resize")


def _write(folder, sizes, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / f"{i:05d}.png")


def test_embed_folders_reads_every_size_in_file_order(model, tmp_path):
    sizes = [(16, 16), (96, 96), (32, 32), (20, 64), (96, 96), (16, 16)]
    _write(tmp_path / "m" / "a", sizes)
    s = embed_folders(model, [tmp_path / "m"], batch=4)
    assert s.paths == tuple(str(tmp_path / "m" / "a" / f"{i:05d}.png") for i in range(6))
    assert s.skipped == ()
    # each row is the policy's embedding of that file alone
    from core.data import load_rgb, to_signed, to_tensor

    for path, row in zip(s.paths, s.embeddings):
        x = to_signed(to_tensor(load_rgb(path)))[None]
        assert np.allclose(row, embed_any(model, x)[0].numpy(), atol=1e-5), path


def test_manifold_learned_space_uses_the_policy(model):
    from core.manifold.embeddings import embed

    x = torch.rand(3, 3, 16, 16) * 2 - 1  # under the extractor's 32 px
    assert torch.allclose(embed(x, "learned", extractor=model), embed_any(model, x))


def test_fpx_embed_reads_small_and_large_images_and_refuses_an_unusable_folder(
        model, tmp_path, capsys):
    ex = export_extractor(model, tmp_path / "ex", {"command": "test"})
    _write(tmp_path / "small" / "g1", [(16, 16)] * 3, 1)
    _write(tmp_path / "small" / "g2", [(16, 16)] * 3, 2)
    _write(tmp_path / "large", [(128, 128)] * 3, 3)
    _write(tmp_path / "unusable", [(8, 8)] * 2, 4)
    common = ["--extractor", str(ex), "--device", "cpu", "--json"]
    status = main(["embed", str(tmp_path / "small"), str(tmp_path / "large"), "--out",
                   str(tmp_path / "e.npz"), *common])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["images"] == 9 and out["models"] == 3 and out["skipped"] == []
    status = main(["verify", str(tmp_path / "small"), str(tmp_path / "unusable"),
                   "--pairs", "10", *common])
    err = capsys.readouterr().err
    assert status != 0 and "unusable: no usable image" in err and "--skip-unusable" in err
    status = main(["verify", str(tmp_path / "small"), str(tmp_path / "unusable"),
                   "--pairs", "10", "--skip-unusable", *common])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["models"] == 2 and out["images"] == 6
