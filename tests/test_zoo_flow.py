"""core.zoo.flow: the Glow family inverts exactly, its log-determinant is the true one,
ActNorm initialises from data, training lowers bits/dim and sampling is repeatable.

Tolerances: inversion in float32 through a dozen layers loses a few ulps per layer, so
1e-4 absolute on values of order 1; the brute-force Jacobian check runs in float64 and
compares log-determinants of order 10 to 1e-8.
"""

import math

import pytest
import torch

import core.zoo.flow  # noqa: F401  (registers the family)
from core.errors import InvalidInputError
from core.zoo.base import FAMILIES, build_model
from core.zoo.entries import ZooEntry
from core.zoo.flow import ActNorm, Flow, squeeze, unsqueeze


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: one thread is as fast and, on a busy machine, avoids the
    stalls of oversubscribed worker threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_entry(levels: int = 2, depth: int = 1, width: int = 8, **options) -> ZooEntry:
    return ZooEntry("t_flow", "flow", "squeeze", "actnorm", "relu", "nll", width=width,
                    options={"levels": levels, "depth": depth, **options})


def batch(n: int = 4, size: int = 32, seed: int = 1) -> torch.Tensor:
    """8-bit-grid images in [-1, 1] with some spatial structure (a smooth ramp + noise)."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(-0.6, 0.6, size).view(1, 1, 1, size)
    x = (ramp + 0.3 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)
    return torch.round((x + 1) * 127.5) / 127.5 - 1


def perturb_zero_convs(model: Flow, scale: float = 0.05) -> None:
    """Give the zero-initialised output convs (couplings and split priors) random weights,
    so couplings and priors are not constant maps."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("net.4.weight") or name.endswith("net.4.bias") \
                    or ".conv." in name:
                p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_registered():
    family = FAMILIES["flow"]
    assert family.model is Flow
    assert family.upsampling == ("squeeze",) and family.normalization == ("actnorm",)
    assert family.losses == ("nll",)


def test_squeeze_moves_pixels_and_inverts():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    y = squeeze(x)
    assert y.shape == (2, 12, 2, 3)
    # channel 4c + 2i + j at (h, w) holds x[c, 2h + i, 2w + j]
    c, i, j, h, w = 2, 1, 0, 1, 2
    assert y[1, 4 * c + 2 * i + j, h, w] == x[1, c, 2 * h + i, 2 * w + j]
    assert torch.equal(unsqueeze(y), x)
    z = torch.randn(2, 8, 3, 5)
    assert torch.equal(squeeze(unsqueeze(z)), z)
    with pytest.raises(InvalidInputError):
        squeeze(torch.zeros(1, 3, 5, 4))


def test_actnorm_initialises_from_first_batch_and_persists():
    norm = ActNorm(5)
    x = 3.0 + 2.0 * torch.randn(16, 5, 4, 4)
    y, _ = norm(x)
    assert bool(norm.initialized)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(5),
                               atol=1e-4, rtol=0)
    # a second batch does not re-initialise
    before = norm.loc.detach().clone()
    norm(torch.randn(16, 5, 4, 4))
    assert torch.equal(norm.loc, before)
    # the flag travels with state_dict
    state = norm.state_dict()
    assert "initialized" in state
    fresh = ActNorm(5)
    assert not bool(fresh.initialized)
    fresh.load_state_dict(state)
    assert bool(fresh.initialized)
    fresh(torch.randn(16, 5, 4, 4))
    assert torch.equal(fresh.loc, before)


def test_forward_backward_finite_gradients():
    model = build_model(tiny_entry(), 32)
    loss = -model.log_prob(batch()).mean()
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_flow_inverts_exactly_after_training():
    model = build_model(tiny_entry(levels=3, depth=1), 32)
    opt = model.optimizers(1e-3)
    x = batch(4)
    for _ in range(3):
        model.train_step(x, opt)
    with torch.no_grad():
        zs, logdet = model.encode(x)
    assert [tuple(z.shape[1:]) for z in zs] == model.latent_shapes
    assert sum(z[0].numel() for z in zs) == 3 * 32 * 32
    assert logdet.shape == (4,)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(zs), x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("levels,depth", [(1, 2), (2, 1)])
def test_logdet_matches_brute_force_jacobian(levels, depth):
    torch.manual_seed(3)
    model = Flow(tiny_entry(levels=levels, depth=depth, width=4), 4).double()
    # ActNorm data init on narrow data: its scales then expand, log-det far from 0
    model.encode(0.2 * torch.randn(8, 3, 4, 4, dtype=torch.float64))
    perturb_zero_convs(model, 0.3)
    model.eval()
    x = 0.2 * torch.randn(2, 3, 4, 4, dtype=torch.float64)

    def flat(v):
        zs, _ = model.encode(v.view(1, 3, 4, 4))
        return torch.cat([z.flatten() for z in zs])

    with torch.no_grad():
        _, logdet = model.encode(x)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(flat, x[i].flatten())
        assert jac.shape == (48, 48)
        sign, expected = torch.linalg.slogdet(jac)
        assert sign != 0
        assert math.isclose(float(logdet[i]), float(expected), rel_tol=0, abs_tol=1e-8)
    # not trivial: far from volume-preserving, and the couplings make it depend on x
    assert abs(float(logdet[0])) > 5.0
    assert abs(float(logdet[0] - logdet[1])) > 1e-3


def test_training_lowers_bits_per_dim():
    model = build_model(tiny_entry(), 32)
    opt = model.optimizers(1e-2)
    x = batch(8)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.encode(x)  # initialise ActNorm so the "before" figure is the real start
        before = float(model.bits_per_dim(x, generator=g).mean())
    losses = [model.train_step(x, opt)["loss"] for _ in range(20)]
    assert all(math.isfinite(v) for v in losses)
    with torch.no_grad():
        after = float(model.bits_per_dim(x, generator=g.manual_seed(0)).mean())
    assert after < before - 0.2
    assert 0 < after < 16


def test_bits_per_dim_scale():
    """bits/dim is -log p of the dequantised input per dimension, shifted by log 127.5
    (the [-1, 1] -> [0, 256) scale change), in bits."""
    model = build_model(tiny_entry(), 32)
    x = batch(2)
    g = torch.Generator().manual_seed(5)
    bpd = model.bits_per_dim(x, generator=g)
    assert bpd.shape == (2,)
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    lp = model.log_prob(x + (u - 0.5) / 127.5)
    expected = (-lp / x[0].numel() + math.log(127.5)) / math.log(2)
    torch.testing.assert_close(bpd, expected)


def test_samples_shape_range_and_repeatable():
    model = build_model(tiny_entry(), 32)
    opt = model.optimizers(1e-3)
    model.train_step(batch(4), opt)
    a = model.sample(3, torch.Generator().manual_seed(11))
    b = model.sample(3, torch.Generator().manual_seed(11))
    c = model.sample(3, torch.Generator().manual_seed(12))
    assert a.shape == (3, 3, 32, 32)
    assert torch.isfinite(a).all()
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    hot = model.sample(2, torch.Generator().manual_seed(1), temperature=50.0)
    assert torch.isfinite(hot).all()
    assert model.sample(2, torch.Generator().manual_seed(1), temperature=0.0).abs().max() <= 1


def test_build_is_seeded():
    a = build_model(tiny_entry(), 32).state_dict()
    b = build_model(tiny_entry(), 32).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_size_and_input_raise():
    with pytest.raises(InvalidInputError, match="2\\*\\*levels"):
        Flow(tiny_entry(levels=3), 36)
    with pytest.raises(InvalidInputError):
        Flow(tiny_entry(levels=6), 32)
    model = build_model(tiny_entry(), 32)
    with pytest.raises(InvalidInputError):
        model.encode(torch.zeros(1, 3, 16, 16))
    with pytest.raises(InvalidInputError):
        model.encode(torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(InvalidInputError):
        build_model(tiny_entry(depth=0), 32)
