"""The registries describe their blocks: every behaviour that depends on what an upsampler
or a zoo family is comes from its record, so a new one is accepted everywhere from its
registration alone.

Tolerances: the toy interpolating upsampler's predicted gains are the same float64
computation as nearest's, so they are compared exactly.
"""

import pytest
import torch
from torch import nn

from core.blocks import (
    UPSAMPLING,
    InterpolateUp,
    TransposedUp,
    Upsampler,
    get_upsampling,
    register_upsampler,
    upsampler,
)
from core.errors import SpecError
from core.specs import BlockSpec, GeneratorSpec
from core.synthetic import SYNTHETIC_SPACE, architectures, build_generator, sample_spec
from core.theory import INTERPOLATORS, predict_peaks
from core.zoo import FAMILIES, PRESET_NAMES, ZooEntry, ZooModel, ZooSettings, build_model
from core.zoo.base import register_family, up_options
from core.zoo.train import settings_for
from explorer.state import LabState, upsampling_choices

UPS = list(UPSAMPLING)


# --- every registered upsampler -----------------------------------------------------------


@pytest.mark.parametrize("name", UPS)
def test_upsampler_record_is_consistent(name):
    up = upsampler(name)
    assert isinstance(up, Upsampler) and up.name == name and up.label and up.doc
    assert up.interpolation is None or up.interpolation in INTERPOLATORS
    for factor in (2, 3, 4):
        kernel = up.kernel_for(factor)
        assert up.allows_kernel(kernel)
        block = BlockSpec(name, factor)  # the spec's default kernel is the record's
        assert block.kernel == kernel
        assert block.uneven_overlap == up.uneven_overlap(kernel, factor)
        x = torch.randn(1, 2, 5, 5)
        assert get_upsampling(name, 2, 3, factor).eval()(x).shape == (1, 3, 5 * factor,
                                                                       5 * factor)
    if up.kernels == "odd":
        with pytest.raises(SpecError, match="odd"):
            BlockSpec(name, 2, 4)


@pytest.mark.parametrize("name", UPS)
def test_fixed_interpolators_null_the_replicas_learned_ones_keep_them(name):
    """A block alone, no activation: its predicted replica lines are those at k/2 that
    its fixed filter lets through (none for an interpolator), all three for a learned
    resampling."""
    peaks = predict_peaks(BlockSpec(name, 2, activation="none"))
    replicas = [p for p in peaks if p.origin == "replica"]
    assert len(replicas) == (0 if upsampler(name).interpolation else 3)


def test_the_lab_lists_every_registered_upsampler_by_its_label():
    choices = dict(LabState.param.upsampling.names)
    assert choices == {u.label: n for n, u in UPSAMPLING.items()} == upsampling_choices()
    assert list(LabState.param.upsampling.objects) == UPS


# --- a toy upsampler, added through the registry alone ------------------------------------


@pytest.fixture
def toy_upsamplers():
    """Two new upsamplers: one with a fixed (nearest) filter, one learned with a kernel
    tied to its stride; removed again afterwards."""
    register_upsampler("toy_resize", label="Toy resize", interpolation="nearest",
                       doc="Toy: nearest resize then a conv.")(
        lambda i, o, s, **kw: InterpolateUp(i, o, s, "nearest", **kw))
    register_upsampler("toy_tconv", label="Toy transposed", kernels="any",
                       default_kernel=None, checkerboard=True,
                       doc="Toy: a transposed conv.")(TransposedUp)
    yield
    for name in ("toy_resize", "toy_tconv"):
        UPSAMPLING.pop(name, None)
    LabState.param.upsampling.objects = upsampling_choices()


def test_a_toy_upsampler_reaches_specs_and_theory(toy_upsamplers):
    assert BlockSpec("toy_tconv", 2).kernel == 2  # tied to the factor
    assert BlockSpec("toy_tconv", 2, 3).uneven_overlap
    assert not BlockSpec("toy_resize", 2).uneven_overlap
    with pytest.raises(SpecError, match="'toy_tconv'"):
        BlockSpec("toy_resize", 2, 4)  # the message names every upsampler taking even kernels
    toy = predict_peaks(GeneratorSpec(up=(BlockSpec("toy_resize", 2),) * 2, down=2))
    ref = predict_peaks(GeneratorSpec(up=(BlockSpec("nearest", 2),) * 2, down=2))
    assert toy == ref


def test_a_toy_upsampler_reaches_the_synthetic_space(toy_upsamplers):
    space = {**SYNTHETIC_SPACE, "upsampling": ("toy_resize", "toy_tconv")}
    specs = architectures(space, channels=4)
    assert len(specs) == 2 * 3 * 4 * 2 * 2 * 2
    assert {s.up[0].kernel for s in specs if s.up[0].upsampling == "toy_tconv"} == {2}
    spec = sample_spec(3, space, channels=4)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        y = build_generator(spec)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_a_toy_upsampler_reaches_the_zoo(toy_upsamplers):
    entry = ZooEntry("gan_toy", "gan", "toy_tconv", "batch", "relu", "ns", width=8)
    assert up_options(entry) == {"kernel": 4}  # checkerboard-prone: DCGAN's even overlap
    model = build_model(entry)
    x = model.sample(2, torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()
    resize = ZooEntry("vae_toy", "vae", "toy_resize", "batch", "relu", "elbo", width=8)
    assert up_options(resize) == {}
    assert build_model(resize).sample(1, torch.Generator().manual_seed(0)).shape[-1] == 32


def test_a_toy_upsampler_reaches_the_lab(toy_upsamplers):
    lab = LabState(upsampling="toy_tconv", kernel=3, blocks=1, crop_size=64, batch=2)
    assert LabState.param.upsampling.names["Toy transposed"] == "toy_tconv"
    assert lab.kernel_applies and lab.spec.up[0].kernel == 3
    assert lab.result is not None and lab.result.spec.up[0].upsampling == "toy_tconv"
    lab.upsampling = "toy_resize"
    assert not lab.kernel_applies and lab.spec.up[0].kernel == 3
    assert lab.result.spec.up[0].upsampling == "toy_resize" and lab.message == ""


def test_upsampler_records_refuse_contradictions():
    with pytest.raises(ValueError, match="kernels"):
        Upsampler("x", TransposedUp, "X", kernels="even")
    with pytest.raises(ValueError, match="tied"):
        Upsampler("x", TransposedUp, "X", default_kernel=None)  # an even kernel, odd-only
    with pytest.raises(ValueError, match="twice"):
        register_upsampler("nearest", label="again")(TransposedUp)


# --- zoo families -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_record_is_consistent(name):
    family = FAMILIES[name]
    assert issubclass(family.model, ZooModel) and family.model.family == name
    assert set(family.presets) == set(PRESET_NAMES) and family.losses and family.doc
    for preset in PRESET_NAMES:
        assert settings_for(preset, name) == family.presets[preset]


class _Toy(ZooModel):
    """A toy family: a learned constant image."""

    def __init__(self, entry, size):
        super().__init__(entry, size)
        self.image = nn.Parameter(torch.zeros(3, size, size))

    def optimizers(self, lr):
        return {"toy": torch.optim.SGD(self.parameters(), lr=lr)}

    def train_step(self, x, optimizers):
        loss = (x - self.image).square().mean()
        optimizers["toy"].zero_grad()
        loss.backward()
        optimizers["toy"].step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def sample(self, n, generator=None):
        return self.image.clamp(-1, 1).expand(n, -1, -1, -1).clone()


@pytest.fixture
def toy_family():
    settings = ZooSettings(steps=3, batch=2, lr=0.1, images=16, checkpoint_every=2)
    register_family("toy", losses=("mse",), presets={"quick": settings, "full": settings},
                    upsampling=("none",))(_Toy)
    yield
    FAMILIES.pop("toy", None)


def test_a_toy_family_is_accepted_from_its_registration_alone(toy_family, tmp_path):
    from core.zoo.train import train_entry

    entry = ZooEntry("toy_one", "toy", "none", "batch", "relu", "mse")
    with pytest.raises(SpecError, match="loss must be one of mse"):
        ZooEntry("toy_two", "toy", "none", "batch", "relu", "ns")
    with pytest.raises(SpecError, match="upsampling must be one of none"):
        ZooEntry("toy_three", "toy", "nearest", "batch", "relu", "mse")
    assert isinstance(build_model(entry), _Toy)
    summary = train_entry(entry, tmp_path, quiet=True, device="cpu")
    assert summary["step"] == 3 and (tmp_path / "toy_one" / "checkpoint.pt").is_file()
