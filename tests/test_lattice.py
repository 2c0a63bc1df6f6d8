"""core.spectrum.lattice: the upsampling lattice of a set of images.

Analytical cases: a fixed periodic pattern multiplied into real crops is a lattice of
exactly that period; a cascade of ``L`` random-weight x2 blocks has period ``2^L``;
photos, grey textures and JPEG-saved photos have none; and the false-alarm figure is
honest on many draws of real crops.
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.analysis import analyse_paths
from core.data import bundled_crops
from core.errors import InvalidInputError
from core.specs import BlockSpec, GeneratorSpec
from core.spectrum import (
    LatticeAccumulator,
    describe_period,
    detect_lattice,
    detect_lattice_in_images,
    folded_maps,
    lattice_points,
)
from core.synthetic.model import build_generator


def modulated(crops: torch.Tensor, period: int, depth: float = 0.15, seed: int = 0):
    """Real crops times ``1 + depth * m``, ``m`` a fixed random zero-mean ``period x
    period`` pattern tiled from the top-left pixel: a lattice of exactly ``period``."""
    g = torch.Generator().manual_seed(seed)
    cell = torch.rand(period, period, generator=g) * 2 - 1
    cell -= cell.mean()
    side = crops.shape[-1]
    reps = -(-side // period)
    m = cell.repeat(reps, reps)[:side, :side]
    return ((crops + 1) * (1 + depth * m) - 1).clamp(-1, 1)


def grey_texture_crops(name: str, size: int, count: int, seed: int) -> torch.Tensor:
    import skimage.data

    img = torch.from_numpy(getattr(skimage.data, name)().astype(np.float32) / 127.5 - 1)
    rng = np.random.default_rng(seed)
    out = torch.empty(count, 3, size, size)
    for i in range(count):
        top, left = (int(v) for v in rng.integers(0, img.shape[0] - size, 2))
        out[i] = img[top:top + size, left:left + size]
    return out


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    out = torch.empty_like(x)
    for i, img in enumerate(x):
        arr = ((img.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=quality)
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        out[i] = torch.from_numpy(back.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1
    return out


# --- the pieces -----------------------------------------------------------------------

def test_folded_maps_shape_and_normalisation():
    x = bundled_crops(32, 4, seed=0)
    m = folded_maps(x)
    assert m.shape == (4, 4, 31, 31)
    assert torch.allclose(m.mean((-2, -1)), torch.ones(4, 4), atol=1e-4)
    flat = folded_maps(torch.zeros(2, 3, 16, 16))
    assert torch.isfinite(flat).all() and (flat == 0).all()


def test_nearest_upsampling_is_seen_by_first_differences():
    # Nearest x2 repeats each pixel: |dx| is zero inside a pair and not across pairs,
    # the statistic a Laplacian (mirror-symmetric phases) would miss.
    small = bundled_crops(16, 8, seed=0)
    x = small.repeat_interleave(2, -1).repeat_interleave(2, -2)
    m = folded_maps(x)[:, 0].mean(0)  # |dx|
    assert float(m[:, 0::2].mean()) < 1e-6 < float(m[:, 1::2].mean())


def test_lattice_points_own_points_exclude_shorter_periods():
    own = {tuple(p) for p in lattice_points(4, own=True).tolist()}
    assert (2, 0) not in own and (2, 2) not in own and (1, 2) in own and (0, 1) in own
    assert len(lattice_points(4)) == 15 and len(own) == 12


def test_describe_period():
    assert describe_period(None) == "no upsampling period detected"
    assert describe_period(16) == ("period 16: consistent with four x2 upsampling stages "
                                   "(or one x16)")
    assert "one x2 upsampling stage" in describe_period(2)
    assert "multiply to 12" in describe_period(12)
    assert "not an integer" in describe_period(10.5)


def test_accumulator_deals_images_round_robin_and_checks_sizes():
    acc = LatticeAccumulator(groups=4)
    acc.add(bundled_crops(16, 6, seed=0))
    acc.add(bundled_crops(16, 3, seed=1))
    means, counts = acc.group_means()
    assert counts.tolist() == [3, 2, 2, 2] and means.shape == (4, 4, 15, 15)
    with pytest.raises(InvalidInputError, match="after images of 16x16"):
        acc.add(bundled_crops(32, 2, seed=0))
    with pytest.raises(InvalidInputError, match="no images"):
        LatticeAccumulator().group_means()


@pytest.mark.parametrize("bad, match", [
    (dict(draws=5), "draws"), (dict(alpha=1.5), "alpha"), (dict(exclude_period=1), "exclude"),
    (dict(candidates=[1]), "candidate period"),
])
def test_bad_options_are_refused(bad, match):
    x = bundled_crops(32, 8, seed=0)
    with pytest.raises(InvalidInputError, match=match):
        detect_lattice_in_images(x, **bad)


def test_bad_inputs_are_refused():
    with pytest.raises(InvalidInputError, match="too small"):
        folded_maps(torch.zeros(2, 3, 6, 6))
    with pytest.raises(InvalidInputError, match="NaN"):
        folded_maps(torch.full((2, 3, 16, 16), float("nan")))
    with pytest.raises(InvalidInputError, match="group_means"):
        detect_lattice(torch.zeros(4, 15, 15))
    with pytest.raises(InvalidInputError, match="NaN"):
        detect_lattice(torch.full((16, 4, 15, 15), float("nan")))


def test_deterministic_given_seed():
    x = modulated(bundled_crops(32, 32, seed=3), 4)
    a, b = detect_lattice_in_images(x, seed=5), detect_lattice_in_images(x, seed=5)
    assert a == b


# --- analytical cases ------------------------------------------------------------------

@pytest.mark.parametrize("period, size", [(3, 64), (8, 64), (16, 64), (24, 128)])
def test_known_period_multiplied_into_real_crops_is_found(period, size):
    x = modulated(bundled_crops(size, 48, seed=11), period)
    d = detect_lattice_in_images(x)
    assert d.period == period, d.candidates
    assert d.false_alarm <= 0.01 and d.score_db > 3
    assert d.lattice and all(abs(p.fy * period - round(p.fy * period)) < 1e-6
                             for p in d.lattice)


@pytest.mark.parametrize("stages, upsampling", [(2, "transposed"), (3, "transposed"),
                                                (4, "transposed"), (3, "nearest")])
def test_cascade_of_random_x2_blocks_has_period_two_to_the_l(stages, upsampling):
    spec = GeneratorSpec(up=(BlockSpec(upsampling, 2),) * stages, down=stages, seed=1)
    x = bundled_crops(64, 32, seed=2)
    with torch.no_grad():
        y = build_generator(spec).train()(x)
    d = detect_lattice_in_images(y)
    assert d.period == 2 ** stages, d.candidates


@pytest.mark.parametrize("make", [
    lambda: bundled_crops(32, 200, seed=21),
    lambda: bundled_crops(64, 64, seed=22),
    lambda: bundled_crops(128, 32, seed=23),
    lambda: grey_texture_crops("brick", 64, 64, seed=1),
    lambda: grey_texture_crops("grass", 64, 64, seed=2),
    lambda: grey_texture_crops("gravel", 32, 128, seed=3),
], ids=["photos32", "photos64", "photos128", "brick", "grass", "gravel"])
def test_photos_and_textures_have_no_period(make):
    d = detect_lattice_in_images(make())
    assert d.period is None, d.candidates
    assert d.false_alarm > 0.01


def test_jpeg_blocks_are_not_an_upsampling_period():
    x = jpeg_roundtrip(bundled_crops(64, 64, seed=31), 75)
    d = detect_lattice_in_images(x, exclude_period=8)
    assert d.period is None and d.excluded_period == 8  # not an upsampling period
    assert any("JPEG" in n for n in d.notes)


def test_period_16_survives_jpeg_q90():
    x = modulated(bundled_crops(64, 64, seed=32), 16)
    d = detect_lattice_in_images(jpeg_roundtrip(x, 90), exclude_period=8)
    assert d.period == 16, d.candidates


def test_resized_lattice_moves_to_the_resized_period():
    from core.data.transforms import resize

    x = modulated(bundled_crops(96, 64, seed=33), 8, depth=0.3)
    y = resize(x, 132, mode="bicubic")  # period 8 * 1.375 = 11
    d = detect_lattice_in_images(y)
    assert d.period is not None and abs(d.period - 11) <= 0.5, d.candidates
    z = resize(x, 126, mode="bicubic")  # period 8 * 1.3125 = 10.5: pixels repeat every 21
    d = detect_lattice_in_images(z)
    assert d.period in (10.5, 21), d.candidates


def test_a_single_image_is_cut_into_tiles_and_says_the_evidence_is_weak():
    x = modulated(bundled_crops(128, 1, seed=34), 4, depth=0.5)
    d = detect_lattice_in_images(x)
    assert d.images == 1 and d.groups == 16 and d.period == 4
    assert d.evidence.startswith("weak: 1 image(s) cut into 16 tiles of 32 px")
    small = detect_lattice_in_images(modulated(bundled_crops(32, 3, seed=35), 4))
    assert small.period is None and small.evidence.startswith("too few: 3 image(s) of 32 px")


def test_detect_lattice_needs_enough_groups():
    with pytest.raises(InvalidInputError, match="at least 16 groups"):
        detect_lattice(torch.rand(8, 4, 31, 31))


@pytest.mark.slow
def test_false_alarm_is_honest_on_many_draws_of_real_crops():
    """200 independent sets of 32 real crops: a detector at ``alpha`` may fire on about
    ``alpha`` of them (at most), and the figure it states is not optimistic: the share
    of sets whose stated false alarm is <= q stays <= q (plus sampling slack). Sets of
    32 images are the hard case: every group holds one image."""
    stated = []
    fired = 0
    for i in range(200):
        d = detect_lattice_in_images(bundled_crops(32, 32, seed=1000 + i), draws=99, seed=i)
        stated.append(d.false_alarm)
        fired += d.period is not None
    stated = torch.tensor(stated)
    shares = {q: float((stated <= q).float().mean()) for q in (0.01, 0.05, 0.1, 0.25, 0.5)}
    print(f"fired {fired}/200; share of sets with false alarm <= q: {shares}")
    assert fired <= 6  # alpha = 0.01: 2 expected; 6 is beyond 3 sigma
    for q in (0.05, 0.1, 0.25, 0.5):  # the figure it states is not optimistic
        assert shares[q] <= q + 3 * (q * (1 - q) / 200) ** 0.5, (q, shares)
    assert shares[0.5] >= 0.1  # and the test is not blind either


# --- through analyse_paths --------------------------------------------------------------

def write_pngs(folder, x: torch.Tensor, suffix=".png", **save):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(x):
        arr = ((img.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        Image.fromarray(arr).save(folder / f"{i:04d}{suffix}", **save)


def test_auto_size_uses_the_most_common_size_and_reports_it(tmp_path):
    write_pngs(tmp_path / "a", modulated(bundled_crops(32, 40, seed=41), 8))
    write_pngs(tmp_path / "b", bundled_crops(64, 3, seed=42))  # larger: centre-cropped
    write_pngs(tmp_path / "c", bundled_crops(16, 2, seed=43))  # smaller: skipped by name
    seen = []
    r = analyse_paths([tmp_path], notify=lambda path, reason: seen.append(reason))
    assert r.size == 32 and r.images == 43 and r.size_choice.auto
    assert r.size_choice.sizes == {"32x32": 40, "64x64": 3, "16x16": 2}
    assert r.size_choice.cropped == 3 and r.size_choice.smaller == 2
    assert seen == ["too small: 16x16 < 32x32"] * 2
    assert "the most common size, 40 of 45 files; 3 larger centre-cropped, 2 smaller " \
           "skipped" in r.size_choice.describe()
    assert r.upsampling_factor == 8 and r.to_json_dict()["grid"]["period"] == 8


def test_jpeg_files_are_named_and_their_blocks_left_out(tmp_path):
    write_pngs(tmp_path, bundled_crops(64, 48, seed=44), suffix=".jpg", quality=75)
    r = analyse_paths([tmp_path])
    assert r.jpeg == 48 and r.grid.excluded_period == 8 and r.upsampling_factor is None
    assert r.to_json_dict()["jpeg_files"] == 48


def test_a_single_small_image_is_analysed_and_says_why_there_is_no_test(tmp_path):
    write_pngs(tmp_path, bundled_crops(16, 1, seed=45))
    r = analyse_paths([tmp_path])  # one 16-px image: analysed at its own size
    assert r.images == 1 and r.size == 16 and r.upsampling_factor is None
    assert r.grid.evidence.startswith("too few: 1 image(s) of 16 px")


def test_jpeg_at_32_px_leaves_no_period_to_test_and_says_so():
    x = jpeg_roundtrip(modulated(bundled_crops(32, 40, seed=36), 8), 90)
    d = detect_lattice_in_images(x, exclude_period=8)
    assert d.period is None and d.candidates == ()
    assert d.evidence.startswith("none: at this size every candidate's frequencies lie "
                                 "within 2 bins of the excluded 1/8 lattice")
