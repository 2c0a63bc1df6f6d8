"""The zoo's entries, GAN and VAE families, trainer, sampling, quality and CLI.

Flow and diffusion have their own files (test_zoo_flow.py, test_zoo_diffusion.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from core.blocks import InterpolateUp, PixelShuffleUp, TransposedUp
from core.cli import main
from core.errors import InvalidInputError, SpecError, UnknownNameError
from core.zoo import DEFAULT_ZOO, FAMILY_NAMES, ZooEntry, build_model, get_entry
from core.zoo.gan import d_loss, g_loss, gradient_penalty
from core.zoo.quality import assess, kernel_mmd
from core.zoo.shipped import sample_seed
from core.zoo.train import TrainingDivergedError, load_trained, train_entry
from core.zoo.vae import kl_divergence


def tiny(family: str, upsampling: str = "transposed", **kw) -> ZooEntry:
    if family == "flow":
        return ZooEntry("t_flow", "flow", "squeeze", "actnorm", "relu", "nll", width=8,
                        options={"levels": 2, "depth": 1}, **kw)
    if family == "diffusion":
        return ZooEntry("t_diffusion", "diffusion", upsampling, "group", "silu", "eps-mse",
                        width=8, options={"mults": "1,2", "sample_steps": 3}, **kw)
    base = {"gan": ("batch", "relu", "ns"), "vae": ("batch", "leaky_relu", "elbo")}[family]
    norm, act, loss = kw.pop("norm", base[0]), kw.pop("act", base[1]), kw.pop("loss", base[2])
    return ZooEntry(f"t_{family}", family, upsampling, norm, act, loss, width=4, latent=8, **kw)


# --- entries ----------------------------------------------------------------------------


def _differences(a: ZooEntry, b: ZooEntry) -> set[str]:
    da, db = a.to_dict(), b.to_dict()
    return {k for k in da if k != "name" and da[k] != db[k]}


def test_default_zoo_spans_families_upsamplings_and_controlled_pairs():
    assert len(DEFAULT_ZOO) >= 12
    assert {e.family for e in DEFAULT_ZOO} == set(FAMILY_NAMES)
    registry_ups = {e.upsampling for e in DEFAULT_ZOO if e.family != "flow"}
    assert len(registry_ups) >= 4
    assert len({e.name for e in DEFAULT_ZOO}) == len(DEFAULT_ZOO)
    pairs = [_differences(a, b) for i, a in enumerate(DEFAULT_ZOO) for b in DEFAULT_ZOO[i + 1:]]
    assert {"seed"} in pairs
    assert {"upsampling"} in pairs


def test_entry_round_trips_and_validates():
    e = get_entry("gan_bilinear_hinge")
    assert ZooEntry.from_dict(json.loads(e.to_json())) == e
    assert e.design() == {"family": "gan", "upsampling": "bilinear", "normalization": "batch",
                          "activation": "relu", "loss": "hinge"}
    with pytest.raises(SpecError, match="upsampling must be one of"):
        dataclasses.replace(e, upsampling="magic")
    with pytest.raises(SpecError, match="loss must be one of"):
        dataclasses.replace(e, loss="elbo")
    with pytest.raises(SpecError, match="resolution"):
        dataclasses.replace(e, resolution=48)
    with pytest.raises(SpecError, match="unknown zoo entry field"):
        ZooEntry.from_dict({**e.to_dict(), "colour": "red"})
    with pytest.raises(SpecError, match="JSON scalars"):
        dataclasses.replace(e, options={"beta": [1, 2]})
    with pytest.raises(UnknownNameError, match="valid: gan_tconv"):
        get_entry("stylegan9")


# --- GAN --------------------------------------------------------------------------------


def test_gan_losses_match_their_formulas():
    r, f = torch.zeros(4), torch.zeros(4)
    assert d_loss("ns", r, f).item() == pytest.approx(2 * math.log(2))
    assert g_loss("ns", f).item() == pytest.approx(math.log(2))
    assert d_loss("hinge", torch.ones(4), -torch.ones(4)).item() == 0
    assert d_loss("hinge", r, f).item() == pytest.approx(2.0)
    assert d_loss("lsgan", torch.ones(4), f).item() == 0
    assert g_loss("lsgan", f).item() == pytest.approx(0.5)
    assert d_loss("wgan-gp", torch.full((4,), 3.0), torch.ones(4)).item() == -2
    assert g_loss("hinge", torch.full((4,), 2.0)).item() == -2
    with pytest.raises(InvalidInputError, match="valid: ns"):
        d_loss("minimax", r, f)


def test_gradient_penalty_of_a_linear_critic_is_exact():
    w = torch.randn(3 * 8 * 8)

    def critic(x):
        return x.flatten(1) @ w

    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


@pytest.mark.parametrize("loss", ["ns", "hinge", "lsgan", "wgan-gp"])
def test_gan_forward_backward_each_loss(loss):
    norm = "layer" if loss == "wgan-gp" else "batch"
    model = build_model(tiny("gan", loss=loss, norm=norm, options={"n_critic": 1}), 32)
    opts = model.optimizers(1e-3)
    before = {k: v.clone() for k, v in model.named_parameters()}
    out = model.train_step(torch.rand(6, 3, 32, 32) * 2 - 1, opts)
    assert set(out) == {"loss", "d_loss", "g_loss"} and all(map(math.isfinite, out.values()))
    for net in ("generator.", "discriminator."):  # both networks stepped
        moved = [not torch.equal(before[k], v) for k, v in model.named_parameters()
                 if k.startswith(net)]
        assert sum(moved) >= len(moved) - 1  # a hinge bias may see an exactly zero gradient


def test_gan_upsampling_comes_from_the_registry_and_reaches_rgb():
    for ups, cls in (("transposed", TransposedUp), ("nearest", InterpolateUp),
                     ("pixelshuffle", PixelShuffleUp)):
        g = build_model(tiny("gan", ups), 32).generator
        found = [m for m in g.modules() if isinstance(m, cls)]
        assert len(found) == 3  # 4 -> 8 -> 16 -> 32
        assert g.blocks[-1] is found[-1]  # the last up-block writes the RGB image
    assert build_model(tiny("gan"), 64).generator(torch.randn(2, 8)).shape == (2, 3, 64, 64)


def test_gan_options_spectral_norm_and_critic_norm():
    sn = build_model(tiny("gan", options={"spectral_norm": True}), 32)
    convs = [m for m in sn.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    with pytest.raises(InvalidInputError, match="without batch norm"):
        build_model(tiny("gan", loss="wgan-gp", options={"d_norm": "batch"}), 32)


def test_discriminator_steps_lower_its_loss_on_a_fixed_batch():
    model = build_model(tiny("gan"), 32)
    opt = model.optimizers(2e-3)["discriminator"]
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    losses = []
    for _ in range(15):
        torch.manual_seed(0)  # the same fakes every step
        losses.append(model.discriminator_step(real, opt))
    assert losses[-1] < 0.5 * losses[0]


def test_gan_samples_shape_range_and_repeatability():
    model = build_model(tiny("gan"), 32)
    a = model.sample(5, torch.Generator().manual_seed(3))
    b = model.sample(5, torch.Generator().manual_seed(3))
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


def test_build_model_is_seeded_by_the_entry():
    a = build_model(tiny("gan"), 32).state_dict()
    b = build_model(tiny("gan"), 32).state_dict()
    c = build_model(tiny("gan", seed=1), 32).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# --- VAE --------------------------------------------------------------------------------


def test_kl_divergence_known_values():
    assert kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5)).tolist() == [0.0, 0.0]
    assert kl_divergence(torch.ones(1, 4), torch.zeros(1, 4)).item() == pytest.approx(2.0)
    # logvar = log 2, mu = 0: -1/2 (1 + log 2 - 2) per dimension
    value = kl_divergence(torch.zeros(1, 1), torch.full((1, 1), math.log(2))).item()
    assert value == pytest.approx(-0.5 * (1 + math.log(2) - 2))


def test_vae_training_lowers_the_loss_and_samples():
    from core.data import bundled_crops

    model = build_model(tiny("vae", "bilinear"), 32)
    opts = model.optimizers(3e-3)
    x = bundled_crops(32, 8, seed=0, split="train")
    eps = torch.randn(8, 8)
    first = model.loss(x, eps)["loss"].item()
    for _ in range(25):
        model.train_step(x, opts)
    model.train()
    assert model.loss(x, eps)["loss"].item() < 0.7 * first
    s = model.sample(4, torch.Generator().manual_seed(0))
    assert s.shape == (4, 3, 32, 32) and s.abs().max() <= 1
    with pytest.raises(InvalidInputError, match="beta"):
        build_model(tiny("vae", options={"beta": -1}), 32)


# --- trainer ----------------------------------------------------------------------------


def _same_weights(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_interrupted_training_resumes_exactly(family, tmp_path):
    entry = tiny(family)
    kw = {"steps": 4, "batch": 4, "checkpoint_every": 2, "device": "cpu", "quiet": True}
    train_entry(entry, tmp_path / "whole", **kw)
    cut = train_entry(entry, tmp_path / "cut", stop_after=3, **kw)
    assert cut["step"] == 3
    with pytest.raises(InvalidInputError, match="pass --resume"):
        train_entry(entry, tmp_path / "cut", **kw)
    with pytest.raises(InvalidInputError, match="other settings"):
        train_entry(entry, tmp_path / "cut", resume=True, **{**kw, "batch": 8})
    done = train_entry(entry, tmp_path / "cut", resume=True, **kw)
    assert done["step"] == 4
    a, ra = load_trained(tmp_path / "whole" / entry.name)
    b, rb = load_trained(tmp_path / "cut" / entry.name)
    assert ra["step"] == rb["step"] == 4
    assert _same_weights(a.state_dict(), b.state_dict())  # incl. ActNorm flags, EMA
    g = torch.Generator().manual_seed(5)
    assert torch.equal(a.sample(2, g), b.sample(2, torch.Generator().manual_seed(5)))
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "cut" / entry.name / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the step lost to the interruption is not listed twice


def test_snapshots_at_every_checkpoint_leave_resume_exact(tmp_path):
    """--snapshots: step 0 and every checkpoint get samples, spectrum and lattice record;
    the snapshots draw their own noise, so a cut run resumed still equals a whole one."""
    from core.zoo.snapshots import KEPT, read_real, read_snapshot, snapshot_steps

    entry = tiny("gan")
    kw = {"steps": 4, "batch": 4, "checkpoint_every": 2, "device": "cpu", "quiet": True}
    train_entry(entry, tmp_path / "plain", **kw)
    train_entry(entry, tmp_path / "cut", stop_after=3, snapshots=True, **kw)
    snaps = tmp_path / "cut" / entry.name / "snapshots"
    assert snapshot_steps(snaps) == [0, 2]
    train_entry(entry, tmp_path / "cut", resume=True, snapshots=True, **kw)
    assert snapshot_steps(snaps) == [0, 2, 4]
    a, _ = load_trained(tmp_path / "plain" / entry.name)
    b, _ = load_trained(tmp_path / "cut" / entry.name)
    assert _same_weights(a.state_dict(), b.state_dict())
    snap = read_snapshot(snaps, 4)
    assert snap.samples.shape == (KEPT, 3, 32, 32) and snap.samples.dtype == np.uint8
    assert snap.spectrum.shape == (32, 32) and np.isfinite(snap.spectrum).all()
    rec = snap.record
    assert rec["step"] == 4 and rec["spectral_distance_db"] > 0
    assert rec["grid_prominence_db"] >= 0 and len(rec["profile"]["power_db"]) == 17
    # the step-0 snapshot is the untrained generator: other samples than at step 4
    assert not np.array_equal(read_snapshot(snaps, 0).samples, snap.samples)
    assert len(read_real(snaps)["profile"]["frequency"]) == 17
    from core.figures.training import checkpoints_figure, pick_steps

    assert pick_steps([0, 2, 4, 6, 8, 10, 12]) == [0, 4, 8, 12]
    fig = checkpoints_figure(snaps)  # steps 0, 2, 4 and the curves
    assert len(fig.axes) == 4 and fig.axes[0].get_title().startswith("step 0")
    with pytest.raises(InvalidInputError, match="no snapshot of step"):
        checkpoints_figure(snaps, [0, 7])
    (snaps / "step_00000002.json").write_text("{broken")
    with pytest.raises(InvalidInputError, match="unreadable snapshot"):
        read_snapshot(snaps, 2)


def test_cli_trains_an_entry_recorded_as_json_with_its_seed(tmp_path, capsys):
    entry = tiny("vae", upsampling="nearest")
    path = tmp_path / "design.json"
    path.write_text(entry.to_json())
    assert main(["zoo", "train", str(path), "--steps", "2", "--batch", "4", "--seed", "7",
                 "--device", "cpu", "--out", str(tmp_path / "runs"), "--snapshots"]) == 0
    record = json.loads((tmp_path / "runs" / "t_vae" / "entry.json").read_text())
    assert record["entry"] == {**entry.to_dict(), "seed": 7}
    assert (tmp_path / "runs" / "t_vae" / "snapshots" / "step_00000002.json").exists()
    path.write_text(json.dumps({**entry.to_dict(), "upsampling": "magic"}))
    assert main(["zoo", "train", str(path), "--out", str(tmp_path / "runs2")]) == 1
    assert "upsampling must be one of" in capsys.readouterr().err
    path.write_text("not json")
    assert main(["zoo", "train", str(path), "--out", str(tmp_path / "runs2")]) == 1
    assert "not a JSON zoo entry" in capsys.readouterr().err


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    junk = tmp_path / "junk" / "checkpoint.pt"
    junk.parent.mkdir()
    junk.write_bytes(os.urandom(300))
    with pytest.raises(InvalidInputError, match="not a readable fpx checkpoint"):
        load_trained(junk.parent)
    from core.extractor.checkpoint import save_checkpoint

    foreign = tmp_path / "foreign.pt"
    save_checkpoint(foreign, {"step": 1})
    with pytest.raises(InvalidInputError, match="not an fpx zoo checkpoint"):
        load_trained(foreign)
    with pytest.raises(InvalidInputError, match="no such checkpoint"):
        load_trained(tmp_path / "nothing")


def test_diverging_training_stops_with_a_clear_error(tmp_path, monkeypatch):
    from core.zoo.gan import GAN

    monkeypatch.setattr(GAN, "train_step", lambda self, x, opts: {"loss": float("nan")})
    with pytest.raises(TrainingDivergedError, match="not finite at step 1"):
        train_entry(tiny("gan"), tmp_path, steps=2, batch=4, device="cpu", quiet=True)


def test_training_data_from_a_folder_skips_bad_files(tmp_path, capsys):
    from core.zoo.data import training_images

    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    images = training_images(str(tmp_path), 32, 100, seed=0)
    assert images.shape == (20, 3, 32, 32) and images.abs().max() <= 1
    assert "broken.png" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="at least 16"):
        training_images(str(tmp_path), 32, 10, seed=0)
    with pytest.raises(InvalidInputError, match="neither"):
        training_images(str(tmp_path / "missing"), 32, 10, seed=0)


# --- quality ----------------------------------------------------------------------------


def test_kernel_mmd_is_unbiased_and_separates_distributions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 10, generator=g), torch.randn(300, 10, generator=g)
    assert abs(kernel_mmd(a, b)) < 0.05
    assert kernel_mmd(a, b + 1.0) > 10 * abs(kernel_mmd(a, b))
    with pytest.raises(InvalidInputError, match="at least 2"):
        kernel_mmd(a[:1], b)


def test_assess_passes_real_crops_and_fails_noise():
    from core.data import bundled_crops

    real = bundled_crops(32, 300, seed=1, split="train")
    other = bundled_crops(32, 200, seed=2, split="train")
    good = assess(other, real)
    assert good.passed and good.spectral_distance_db < 1.0
    bad = assess(torch.rand(200, 3, 32, 32) * 2 - 1, real)
    assert not bad.passed and bad.kernel_mmd > 10 * good.kernel_mmd
    with pytest.raises(InvalidInputError, match="differ in shape"):
        assess(torch.zeros(4, 3, 16, 16), real)


# --- CLI --------------------------------------------------------------------------------


def test_cli_list_and_unknown_names(capsys):
    assert main(["zoo", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["entries"]
    assert [r["name"] for r in rows] == [e.name for e in DEFAULT_ZOO]
    assert main(["zoo", "train", "biggan"]) == 1
    assert "valid: gan_tconv" in capsys.readouterr().err


def test_cli_train_stops_at_an_interrupted_entry(tmp_path, capsys, monkeypatch):
    """A run stopped by a signal is checkpointed by the harness and returns; the CLI then
    reports it, starts no further entry and exits 130."""
    import core.zoo.train as zoo_train
    from core.cli import EXIT_INTERRUPTED

    started = []

    def fake(entry, out, **kwargs):
        started.append(entry.name)
        return {"entry": entry.name, "step": 3, "interrupted": True}

    monkeypatch.setattr(zoo_train, "train_entry", fake)
    assert main(["zoo", "train", "all", "--out", tmp_path]) == EXIT_INTERRUPTED
    assert started == [DEFAULT_ZOO[0].name]
    assert json.loads(capsys.readouterr().out)["interrupted"] is True


def test_cli_sample_needs_a_trained_entry(tmp_path, capsys):
    assert main(["zoo", "sample", "vae_tconv", "--runs", str(tmp_path),
                 "--out", str(tmp_path / "s")]) == 1
    assert "not trained" in capsys.readouterr().err


def test_read_design_of_a_sample_folder(tmp_path):
    from core.zoo.sample import read_design

    entry = DEFAULT_ZOO[0]
    records = {"ok": {"entry": entry.to_dict(), "count": 3},
               "unknown_family": {"entry": {**entry.to_dict(), "family": "biggan"}},
               "not_an_entry": {"entry": 3}, "no_entry": {"count": 3}, "a_list": [1]}
    for name, record in records.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "samples.json").write_text(json.dumps(record))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "samples.json").write_text("{")
    assert read_design(tmp_path / "ok") == entry.design()
    assert entry.design()["upsampling"] == entry.upsampling
    # Folders without a zoo record have no design; that is not an error.
    for name in [*records, "corrupt", "missing"]:
        if name != "ok":
            assert read_design(tmp_path / name) is None, name


@pytest.mark.parametrize("name", ["gan_tconv", "vae_bilinear", "flow_glow", "ddpm_nearest"])
def test_quick_preset_trains_and_samples_each_family_end_to_end(name, tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "samples"
    assert main(["zoo", "train", name, "--preset", "quick", "--steps", "2", "--batch", "4",
                 "--out", str(runs), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == 2
    assert main(["zoo", "sample", name, "-n", "3", "--runs", str(runs), "--out", str(out),
                 "--device", "cpu"]) == 0
    files = sorted((out / name).glob("*.png"))
    assert [f.name for f in files] == ["00000.png", "00001.png", "00002.png"]
    assert Image.open(files[0]).size == (32, 32)
    made = json.loads((out / name / "samples.json").read_text())
    assert made["entry"]["name"] == name and made["checkpoint_step"] == 2
    # by default the seed its shipped samples were drawn with (the DDPM pair: its own noise)
    assert made["seed"] == sample_seed(get_entry(name))
    assert main(["zoo", "sample", name, "-n", "3", "--runs", str(runs), "--out",
                 str(out)]) == 1  # refuses to mix with existing samples
    assert "--overwrite" in capsys.readouterr().err


def test_ship_writes_samples_real_crops_sheets_and_manifest(tmp_path, capsys):
    from core.zoo.shipped import read_manifest, ship, shipped_entries

    entries = (tiny("gan"), dataclasses.replace(tiny("vae"), name="t_vae"))
    runs = tmp_path / "runs"
    for e in entries:
        train_entry(e, runs, steps=2, batch=4, device="cpu", quiet=True)
    manifest = ship(runs, tmp_path / "zoo", count=5, real_count=20, sheets=tmp_path / "sheets",
                    entries=entries, command="fpx zoo ship (test)", log=lambda m: None)
    assert manifest == read_manifest(tmp_path / "zoo")
    assert set(shipped_entries(tmp_path / "zoo")) == {"t_gan", "t_vae"}
    assert len(list((tmp_path / "zoo" / "real").glob("*.png"))) == 20
    for e in entries:
        info = manifest.entries[e.name]
        assert len(list((tmp_path / "zoo" / info.folder).glob("*.png"))) == 5
        assert info.train_steps == 2 and info.train_seconds > 0
        assert set(info.quality.to_dict()) >= {"spectral_distance_db", "kernel_mmd", "passed"}
        assert (tmp_path / "sheets" / f"{e.name}.png").exists()
    assert main(["zoo", "quality", str(tmp_path / "zoo" / "samples" / "t_gan"), "--real",
                 str(tmp_path / "zoo" / "real"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["folders"]["t_gan"]["samples"] == 5
    # an unfinished run is refused, naming the fix
    train_entry(entries[0], tmp_path / "cut", steps=4, batch=4, checkpoint_every=2,
                stop_after=2, device="cpu", quiet=True)
    with pytest.raises(InvalidInputError, match="--resume"):
        ship(tmp_path / "cut", tmp_path / "zoo2", entries=entries[:1], log=lambda m: None)
    with pytest.raises(InvalidInputError, match="no trained checkpoint"):
        ship(tmp_path / "nothing", tmp_path / "zoo3", entries=entries, log=lambda m: None)


# --- the shipped sample set -------------------------------------------------------------


def test_shipped_zoo_samples_match_their_manifest():
    from core.zoo.shipped import SHIPPED_ZOO, read_manifest, shipped_entries

    manifest = read_manifest()
    assert set(shipped_entries()) == {e.name for e in DEFAULT_ZOO}
    assert shipped_entries() == {e.name: e for e in DEFAULT_ZOO}  # the code's entries
    assert manifest.count >= 200
    total = sum(p.stat().st_size for p in SHIPPED_ZOO.rglob("*") if p.is_file())
    assert total < 25 * 2 ** 20
    real = sorted((SHIPPED_ZOO / "real").glob("*.png"))
    assert len(real) == manifest.real.count
    size = manifest.size
    for name, info in manifest.entries.items():
        files = sorted((SHIPPED_ZOO / info.folder).glob("*.png"))
        assert len(files) == manifest.count, name
        with Image.open(files[0]) as im:
            assert im.size == (size, size) and im.mode == "RGB"
        q = info.quality
        assert q.samples == manifest.count and q.real == len(real)
        assert q.passed, f"{name} samples are closer to noise than to the real crops"
        assert info.train_steps == info.settings.steps
    assert any("fpx zoo ship" in c for c in manifest.commands)


def test_training_data_from_cifar10_binary_release(tmp_path):
    from core.data import CIFAR10_CLASSES
    from core.zoo.data import training_images

    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 3072), np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    record = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(record)
    (folder / "test_batch.bin").write_bytes(record)
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
    images = training_images(f"cifar10:{tmp_path}", 32, 100, seed=0)
    assert images.shape == (100, 3, 32, 32)
    first = torch.from_numpy(pixels[0].reshape(3, 32, 32)).float() / 127.5 - 1
    assert any(torch.equal(img, first) for img in images)  # pixels arrive unchanged
    assert training_images(f"cifar10:{tmp_path}", 64, 20, seed=0).shape == (20, 3, 64, 64)
    with pytest.raises(InvalidInputError):
        training_images(f"cifar10:{tmp_path / 'none'}", 32, 10, seed=0)
