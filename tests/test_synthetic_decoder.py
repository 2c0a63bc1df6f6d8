"""core.synthetic.decoder: the decoder space (real images reduced to 4x4..16x16 and grown
back through 2 to 5 stages), its size and sampler, and decoder banks."""

import dataclasses
import random

import pytest
import torch

from core.blocks import ACTIVATION, NORMALIZATION, UPSAMPLING
from core.data import bundled_crops
from core.errors import InvalidInputError, SpecError
from core.specs import BlockSpec
from core.synthetic import BankConfig, SyntheticBank, fit_bank
from core.synthetic.bank import fit_one, fit_stacked
from core.synthetic.decoder import (
    DECODER_SPACE,
    DecoderGenerator,
    DecoderSpec,
    choices,
    decoder_architectures,
    sample_decoder,
    space_size,
    stages_for,
)
from core.synthetic.model import batch_statistics_only, build_generator, spec_from_dict


def _spec(up="transposed", norm="batch", act="relu", stages=3, **kw):
    block = BlockSpec(up, 2, None, norm, act)
    return DecoderSpec(up=(block,) * stages, channels=8, **kw)


@pytest.mark.parametrize("up", sorted(UPSAMPLING))
def test_every_upsampler_builds_and_runs_with_both_kernels(up):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for stages, kernel in ((2, "default"), (3, "large")):  # maps of 8 and 4 px
        spec = sample_decoder(random.Random(stages), 32,
                              {**DECODER_SPACE, "upsampling": (up,), "kernel": (kernel,),
                               "stages": (stages,)}, channels=8)
        assert spec.up[0].upsampling == up and len(spec.up) == stages
        y = batch_statistics_only(build_generator(spec))(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("kind,names", [("norm", sorted(NORMALIZATION)),
                                        ("act", sorted(ACTIVATION))])
def test_every_norm_and_activation_skip_width_and_output_runs(kind, names):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for i, name in enumerate(names):
        spec = _spec(**{kind: name}, stages=2 + i % 2, skip=("none", "residual", "image")[i % 3],
                     widths=("constant", "halving")[i % 2], output_kernel=(1, 3)[i % 2],
                     output_activation=("none", "tanh", "sigmoid")[i % 3])
        y = batch_statistics_only(build_generator(spec))(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), spec
        if spec.output_activation == "sigmoid":
            assert y.min() >= 0 and y.max() <= 1


def test_the_image_is_reduced_to_a_small_map_and_grown_back():
    spec = _spec(stages=4, widths="halving")
    net = batch_statistics_only(build_generator(spec))
    sizes = []
    for block in net.up:
        block.register_forward_hook(lambda m, i, o: sizes.append((i[0].shape[-1],
                                                                 o.shape[1])))
    net(torch.zeros(1, 3, 64, 64))
    assert [s for s, _ in sizes] == [4, 8, 16, 32]  # from 4x4, four x2 stages
    assert [c for _, c in sizes] == [4, 4, 4, 4]  # 8 halving to at least 4
    assert spec.width(0) == 8 and spec.down == 4 and spec.total_factor == 16
    with pytest.raises(SpecError, match="divisible by 16"):
        net(torch.zeros(1, 3, 40, 40))


def test_space_size_sampler_and_distinct_architectures():
    c = choices()
    assert c["upsampling"] == tuple(UPSAMPLING) and c["norm"] == tuple(NORMALIZATION)
    assert stages_for(32) == (2, 3) and stages_for(64) == (2, 3, 4)
    assert stages_for(128) == (3, 4, 5)
    per_stage = space_size() // 3
    assert space_size(size=128) == space_size() and space_size(size=32) == 2 * per_stage
    assert space_size() == (len(UPSAMPLING) * 2 * len(NORMALIZATION) * len(ACTIVATION)
                            * 2 * 2 * 3 * 2 * 3 * 2 * 3)
    a = decoder_architectures(20, seed=0, channels=8)
    assert len({s.to_json() for s in a}) == 20 and all(s.seed == 0 for s in a)
    assert decoder_architectures(20, seed=0, channels=8) == a  # seeded
    assert decoder_architectures(5, seed=0, channels=8, skip=15) == a[15:]
    drawn = [sample_decoder(random.Random(i), 128) for i in range(200)]
    assert {len(s.up) for s in drawn} == {3, 4, 5}  # maps of 16, 8 and 4 px
    assert {s.up[0].upsampling for s in drawn} == set(UPSAMPLING)
    with pytest.raises(SpecError, match="reduces 8-px images"):
        sample_decoder(0, 8)


def test_spec_round_trip_and_validation():
    spec = dataclasses.replace(decoder_architectures(1, seed=3)[0], seed=7, name="d")
    assert spec_from_dict(spec.to_dict()) == spec
    assert DecoderSpec.from_dict(spec.to_dict()) == spec
    for bad, match in ((dict(up=(BlockSpec(),)), "2 to 5"), (dict(skip="dense"), "skip"),
                       (dict(output_kernel=5), "output_kernel"),
                       (dict(up=(BlockSpec(factor=4),) * 2), "factor 2")):
        with pytest.raises(SpecError, match=match):
            dataclasses.replace(spec, **bad)


@pytest.mark.slow
def test_decoder_bank_fits_stacked_as_sequential_runs_and_round_trips(tmp_path):
    config = BankConfig(architectures=3, seeds=2, fit_steps=2, crop_size=32, batch=4,
                        channels=4, space="decoder")
    specs = config.specs()
    assert all(isinstance(s, DecoderSpec) for s in specs) and len(specs) == 6
    crops = bundled_crops(32, 16, seed=0)
    stacked, _ = fit_stacked(specs[:2], crops, steps=2, lr=1e-3, batch=4, seed=0)
    alone = fit_one(specs[0], crops, steps=2, lr=1e-3, batch=4, seed=0)[0]
    assert all(torch.allclose(stacked[0][k], alone[k], atol=1e-5) for k in alone)
    bank = fit_bank(config)
    x = crops[:4][None].repeat(3, 1, 1, 1, 1)
    y = bank.generate([0, 1, 5], x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    loaded = SyntheticBank.load(bank.save(tmp_path / "bank"))
    assert loaded.specs == bank.specs and torch.allclose(loaded.generate([0, 1, 5], x), y)
    # held-out architectures are others of the same space
    other = dataclasses.replace(config, skip_architectures=3).specs()
    assert not {s.to_json() for s in other} & {s.to_json() for s in specs}
    with pytest.raises(InvalidInputError, match="space"):
        BankConfig(space="diffusion")
    with pytest.raises(InvalidInputError, match="architectures >= 1"):
        BankConfig(space="decoder", architectures=0)


def test_decoder_generator_copies_keep_models_apart():
    spec = _spec(stages=2, skip="image")
    a, b = (batch_statistics_only(build_generator(dataclasses.replace(spec, seed=s)))
            for s in (1, 2))
    both = batch_statistics_only(DecoderGenerator(spec, copies=2))
    from core.synthetic.model import stack_states

    both.load_state_dict(stack_states([a.state_dict(), b.state_dict()]))
    x = torch.rand(2, 3, 16, 16)
    y = both(torch.cat([x, x], 1))
    assert torch.allclose(y[:, :3], a(x), atol=1e-5) and torch.allclose(y[:, 3:], b(x), atol=1e-5)
