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
