"""core.synthetic: a spec becomes the network it describes."""

import pytest
import torch

from core.specs import BlockSpec, GeneratorSpec
from core.synthetic import build_generator


@pytest.mark.parametrize("upsampling", ["transposed", "nearest", "bilinear", "bicubic",
                                        "pixelshuffle", "zero"])
@pytest.mark.parametrize("order", ["post", "pre"])
def test_output_has_the_input_size_when_down_matches_up(upsampling, order):
    spec = GeneratorSpec(up=(BlockSpec(upsampling, 2, order=order, convs=2),) * 2, down=2,
                         channels=8)
    y = build_generator(spec)(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and torch.isfinite(y).all()


def test_factor_four_and_no_down_blocks():
    spec = GeneratorSpec(up=(BlockSpec("nearest", 4),), down=0, channels=4)
    assert build_generator(spec)(torch.randn(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_weights_come_from_the_spec_seed_and_leave_global_rng_alone():
    spec = GeneratorSpec(seed=5, channels=8)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = build_generator(spec)
    assert torch.equal(torch.rand(3), before)  # global stream untouched
    b = build_generator(spec)
    c = build_generator(GeneratorSpec(seed=6, channels=8))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_every_block_is_built_from_the_registries():
    spec = GeneratorSpec(up=(BlockSpec("pixelshuffle", 2, norm="group", activation="silu",
                                       order="pre"),), down=1, channels=16)
    net = build_generator(spec)
    block = net.up[0]
    assert type(block.norm).__name__ == "GroupNorm" and block.norm.num_channels == 16
    assert type(block.act).__name__ == "SiLU"
    assert type(block.up).__name__ == "PixelShuffleUp"
    loss = net(torch.randn(2, 3, 16, 16)).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_the_design_space_has_every_combination_once():
    from core.synthetic import architectures

    specs = architectures()
    assert len(specs) == 5 * 3 * 4 * 2 * 2 * 2 == 480
    assert len(set(specs)) == 480
    assert all(s.total_factor == 2 ** s.down for s in specs)


def test_sampled_specs_are_deterministic_and_in_the_space():
    from core.synthetic import SYNTHETIC_SPACE, sample_spec

    a = [sample_spec(rng) for rng in range(20)]
    assert a == [sample_spec(rng) for rng in range(20)]
    assert len({s.up[0].upsampling for s in a}) > 2
    for s in a:
        assert s.up[0].upsampling in SYNTHETIC_SPACE["upsampling"]
        assert build_generator(s)(torch.randn(1, 3, 16, 16)).shape == (1, 3, 16, 16)


# --- the bank ---------------------------------------------------------------------------

from core.data import bundled_crops  # noqa: E402
from core.errors import InvalidInputError  # noqa: E402
from core.synthetic import (  # noqa: E402
    BankConfig,
    SyntheticBank,
    fit_one,
    fit_stacked,
)

SMALL = BankConfig(architectures=3, seeds=2, fit_steps=3, crop_size=32, batch=4, channels=4)


@pytest.fixture(scope="module")
def crops():
    return bundled_crops(32, 16, seed=4)


def test_bank_specs_are_deterministic_and_disjoint_when_skipped():
    assert SMALL.specs() == SMALL.specs()
    other = BankConfig(**{**SMALL.__dict__, "skip_architectures": 3})
    arch = {s.up for s in SMALL.specs()}
    assert not arch & {s.up for s in other.specs()} or all(
        len(s.up) != len(t.up) for s in SMALL.specs() for t in other.specs() if s.up == t.up)
    assert len(SMALL.specs()) == 6 and len({s.seed for s in SMALL.specs()}) == 6


def test_bank_builds_deterministically(crops):
    a, b = SyntheticBank.build(SMALL, crops), SyntheticBank.build(SMALL, crops)
    for sa, sb in zip(a.states, b.states):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(loss == loss for loss in a.losses)  # fitted: finite losses
    stacked = SyntheticBank.build(SMALL, crops, strategy="stacked")
    assert stacked.losses == pytest.approx(a.losses, rel=1e-3)
    with pytest.raises(InvalidInputError, match="strategy"):
        SyntheticBank.build(SMALL, crops, strategy="parallel")


def test_a_bank_runs_on_the_device_of_its_inputs_and_keeps_its_states_on_the_cpu(crops):
    bank = SyntheticBank.build(SMALL, crops)
    x = crops[:4].view(2, 2, *crops.shape[1:])
    assert bank._states_on(torch.device("cpu")) is bank.states  # no copy on the CPU
    assert all(t.device.type == "cpu" for s in bank.states for t in s.values())
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the GPU half of this test needs one")
    on_gpu = SyntheticBank.build(SMALL, crops.cuda())  # stacked fits, on the GPU
    assert all(t.device.type == "cpu" for s in on_gpu.states for t in s.values())
    assert on_gpu.losses == pytest.approx(bank.losses, rel=1e-2)
    y = bank.generate([0, 3], x)
    y_gpu = bank.generate([0, 3], x.cuda())
    assert y_gpu.device.type == "cuda" and torch.allclose(y_gpu.cpu(), y, atol=1e-3)
    assert bank._states_on(x.cuda().device) is bank._states_on(x.cuda().device)  # copied once


@pytest.mark.parametrize("arch", ["transposed", "pixelshuffle", "bilinear"])
def test_batched_fitting_gives_the_same_models_as_one_at_a_time(crops, arch):
    import dataclasses

    arch = GeneratorSpec(up=(BlockSpec(arch, 2, 2 if arch == "transposed" else 3, "instance",
                                       "tanh", "pre", 2),), down=1, channels=4)
    specs = [dataclasses.replace(arch, seed=s) for s in (1, 2, 3)]
    from core.synthetic import batch_statistics_only

    states, losses = fit_stacked(specs, crops, steps=5, lr=2e-3, batch=4, seed=7)
    for spec, state, loss in zip(specs, states, losses):
        alone, alone_loss = fit_one(spec, crops, steps=5, lr=2e-3, batch=4, seed=7)
        # Compare the fitted *models*, not raw parameters: a conv bias in front of a batch
        # norm has a zero gradient in exact arithmetic, so Adam turns float noise into
        # steps of either sign there, which the norm then cancels.
        a, b = (batch_statistics_only(build_generator(spec)) for _ in range(2))
        a.load_state_dict(state)
        b.load_state_dict(alone)
        with torch.no_grad():
            torch.testing.assert_close(a(crops), b(crops), rtol=1e-3, atol=1e-4)
        assert loss == pytest.approx(alone_loss, rel=1e-4)


def test_generate_runs_each_model_on_its_own_images(crops):
    from core.synthetic import batch_statistics_only, match_statistics

    bank = SyntheticBank.build(SMALL, crops)
    ids = [0, 3, 1, 5]
    x = crops[:12].view(4, 3, 3, 32, 32)
    y = bank.generate(ids, x)
    assert y.shape == x.shape
    for pos, i in enumerate(ids):
        model = batch_statistics_only(build_generator(bank.specs[i]))
        model.load_state_dict(bank.states[i])
        with torch.no_grad():
            expect = match_statistics(model(x[pos]), x[pos])
        torch.testing.assert_close(y[pos], expect, rtol=1e-4, atol=1e-4)


def test_bank_round_trips_on_disk_and_refuses_foreign_files(crops, tmp_path):
    bank = SyntheticBank.build(SMALL, crops)
    bank.save(tmp_path / "bank")
    back = SyntheticBank.load(tmp_path / "bank")
    assert back.specs == bank.specs and back.config == bank.config
    assert all(torch.equal(back.states[i][k], bank.states[i][k])
               for i in range(len(bank)) for k in bank.states[i])
    with pytest.raises(InvalidInputError, match="no bank.json"):
        SyntheticBank.load(tmp_path)
    (tmp_path / "bank" / "bank.safetensors").write_bytes(b"garbage")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        SyntheticBank.load(tmp_path / "bank")
    (tmp_path / "bank" / "bank.json").write_text("{")
    with pytest.raises(InvalidInputError, match="corrupt"):
        SyntheticBank.load(tmp_path / "bank")


def test_bank_rejects_bad_config_and_inputs(crops):
    with pytest.raises(InvalidInputError, match="seeds"):
        BankConfig(seeds=0)
    with pytest.raises(InvalidInputError, match="crops must be"):
        SyntheticBank.build(SMALL, crops[:, :, :16, :16])
