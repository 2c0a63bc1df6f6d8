"""core.data.processing (what images meet after generation), core.robustness (the lattice
after each step) and ``fpx robustness``; and ``fpx spectrum``'s automatic size and
``grid`` object on the shipped zoo."""

import json
from pathlib import Path

import pytest
import torch

from core.cli import EXIT_INPUT, EXIT_USAGE, main
from core.data import bundled_crops
from core.data.pngs import write_pngs
from core.data.processing import (
    PROCESSING,
    add_noise,
    blur,
    jpeg,
    processing,
    rescale,
    shift,
)
from core.errors import InvalidInputError, UnknownNameError
from core.robustness import markdown_table, robustness_sweep

ZOO = Path(__file__).resolve().parents[1] / "core" / "assets" / "zoo"


def patterned(count=48, size=64, period=8, seed=0):
    """Real crops times a fixed random pattern of ``period``: a known lattice."""
    g = torch.Generator().manual_seed(seed)
    cell = torch.rand(period, period, generator=g) * 2 - 1
    m = (cell - cell.mean()).repeat(size // period, size // period)
    x = bundled_crops(size, count, seed=seed + 1)
    return ((x + 1) * (1 + 0.2 * m) - 1).clamp(-1, 1)


def test_processing_steps_keep_range_and_size():
    x = bundled_crops(32, 4, seed=0)
    for name, step in PROCESSING.items():
        y = step.apply(x, 0)
        side = round(32 * step.scale)
        assert y.shape == (4, 3, side, side), name
        assert float(y.min()) >= -1 and float(y.max()) <= 1, name
    assert torch.equal(processing("none").apply(x, 0), x)


def test_processing_known_values():
    flat = torch.full((2, 3, 16, 16), 0.2)
    assert torch.allclose(blur(flat, 1.0), flat, atol=1e-6)  # a blur keeps a constant
    assert torch.allclose(jpeg(flat, 90), flat, atol=2 / 255)  # JPEG keeps a flat patch
    ramp = torch.arange(16.0).expand(1, 3, 16, 16) / 16 - 0.5
    moved = shift(ramp, 1)
    assert torch.equal(moved[..., 1:], ramp[..., :-1])  # one pixel right
    assert torch.equal(add_noise(flat, 0.03, seed=4), add_noise(flat, 0.03, seed=4))
    assert float((add_noise(flat, 0.03, seed=4) - flat).std()) == pytest.approx(0.06, rel=0.1)
    assert rescale(ramp, 1.5).shape[-1] == 24 and rescale(ramp, 0.5).shape[-1] == 8
    r = shift(torch.rand(6, 3, 16, 16), 1, random=True, seed=1)
    assert r.shape == (6, 3, 16, 16)


def test_jpeg_codes_each_image_at_its_own_quality_as_one_at_a_time_would():
    x = bundled_crops(32, 6, seed=3)
    qs = [60, 70, 80, 90, 95, 100]
    batch = jpeg(x, qs)
    assert torch.equal(batch, torch.cat([jpeg(x[i:i + 1], q) for i, q in enumerate(qs)]))
    assert batch.is_contiguous()  # a channels-last result crashed DDP's backward on a CPU
    assert not torch.equal(batch[0], jpeg(x[:1], 100)[0])  # the quality is used
    assert jpeg(x[:0], 90).shape == (0, 3, 32, 32)


@pytest.mark.parametrize("call, match", [
    (lambda x: jpeg(x, [90, 90]), "2 JPEG qualities for 1 images"),
    (lambda x: jpeg(x, 0), "JPEG quality"), (lambda x: rescale(x, 0), "resize factor"),
    (lambda x: blur(x, -1), "blur sigma"), (lambda x: add_noise(x, float("nan")), "noise std"),
    (lambda x: shift(x, -1), "shift"),
])
def test_processing_refuses_bad_parameters(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call(bundled_crops(16, 1, seed=0))


def test_unknown_step_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="jpeg90"):
        processing("gif")


def test_sweep_follows_the_lattice_through_processing():
    rows = robustness_sweep(patterned(), real=bundled_crops(64, 48, seed=9),
                            steps=("jpeg90", "resize1.5", "blur0.5", "shift1"))
    by = {r.step: r for r in rows}
    assert [r.step for r in rows] == ["none", "jpeg90", "resize1.5", "blur0.5", "shift1"]
    assert by["none"].period == 8 and by["none"].survives
    assert by["resize1.5"].expected == 12 and by["resize1.5"].size == 96
    assert by["shift1"].survives and by["blur0.5"].survives
    assert by["none"].real_period is None
    table = markdown_table(rows, real=True)
    assert table.count("\n") == len(rows) + 1 and "| resize x1.5 | 96 | 12 |" in table


def test_fpx_robustness_cli(capsys, tmp_path):
    write_pngs(patterned(count=32), tmp_path / "gen")
    status = main(["robustness", str(tmp_path / "gen"), "--steps", "jpeg95", "noise0.01",
                   "--json"])
    out, err = capsys.readouterr()
    assert status == 0
    data = json.loads(out)
    assert data["images"] == 32 and data["size"] == 64
    assert [r["step"] for r in data["rows"]] == ["none", "jpeg95", "noise0.01"]
    assert data["rows"][0]["period"] == 8
    assert "32 images at 64 px (the images' own size)" in err
    status = main(["robustness", str(tmp_path / "gen"), "--steps", "none", "--markdown"])
    assert status == 0 and capsys.readouterr().out.startswith("| processing |")


def test_fpx_robustness_bad_input(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["robustness", str(tmp_path), "--steps", "gif"])
    assert stop.value.code == EXIT_USAGE
    capsys.readouterr()
    assert main(["robustness", str(tmp_path / "nowhere")]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "fpx: error: no image files found in the given paths"


def test_fpx_spectrum_on_a_shipped_zoo_entry_uses_its_size_and_finds_its_period(capsys):
    status = main(["spectrum", str(ZOO / "samples" / "gan_tconv"), "--json"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    s = json.loads(out)
    assert s["size"] == 32 and s["size_choice"] == {
        "size": 32, "auto": True, "sizes": {"32x32": 200}, "cropped": 0, "smaller": 0}
    grid = s["grid"]
    assert grid["period"] == 8 == s["upsampling_factor"]
    assert set(grid) >= {"period", "lattice", "score_db", "false_alarm", "predicted_by"}
    assert grid["false_alarm"] <= 0.01 and grid["score_db"] > 6
    assert all(abs(p["fy"] * 8 - round(p["fy"] * 8)) < 1e-6 for p in grid["lattice"])
    assert grid["explanation"].startswith("period 8: consistent with three x2")


def test_fpx_spectrum_on_the_shipped_real_crops_finds_no_period(capsys):
    status = main(["spectrum", str(ZOO / "real"), "--json"])
    s = json.loads(capsys.readouterr().out)
    assert status == 0 and s["images"] == 1000 and s["grid"]["period"] is None
