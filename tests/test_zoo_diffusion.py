"""core.zoo.diffusion: schedules, the DDPM/DDIM formulas on known numbers, the U-Net's
shape contract, training, EMA and repeatable sampling.

Tolerances: the schedule and formula checks run in float64 and compare against the same
formulas written out by hand, so 1e-12; float32 model checks use 1e-6.
"""

import math

import pytest
import torch

from core.blocks import InterpolateUp, TransposedUp
from core.errors import InvalidInputError
from core.zoo import diffusion as dz
from core.zoo.base import build_model
from core.zoo.entries import ZooEntry


def entry(up="nearest", **options):
    return ZooEntry("t_ddpm", "diffusion", up, "group", "silu", "eps-mse", width=8,
                    options=options)


@pytest.fixture(scope="module")
def tiny():
    return build_model(entry(timesteps=100, sample_steps=4), 32)


# --- schedules ---------------------------------------------------------------------------


def test_linear_schedule_and_alpha_bars():
    b = dz.linear_betas(1000)
    assert b.shape == (1000,) and b.dtype == torch.float64
    assert b[0].item() == pytest.approx(1e-4, abs=1e-15)
    assert b[-1].item() == pytest.approx(0.02, abs=1e-15)
    assert torch.allclose(b.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64),
                          atol=1e-12)
    ab = dz.alpha_bars(b)
    b0, b1, b2 = b[:3].tolist()
    by_hand = [1 - b0, (1 - b0) * (1 - b1), (1 - b0) * (1 - b1) * (1 - b2)]
    assert ab[:3].tolist() == pytest.approx(by_hand, abs=1e-12)
    assert (ab.diff() < 0).all()


def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    b = dz.cosine_betas(T, s)
    assert ((b > 0) & (b <= 0.999)).all()
    assert b.max().item() == pytest.approx(0.999)  # the clip bites at the very end
    ab = dz.alpha_bars(b)

    def f(t):
        return math.cos(((t / T) + s) / (1 + s) * math.pi / 2) ** 2

    for t in (1, 10, 250, 500, 900):
        assert ab[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-12, abs=1e-15)


def test_schedule_refuses_bad_input():
    with pytest.raises(InvalidInputError, match="schedule must be one of linear, cosine"):
        build_model(entry(schedule="quadratic"), 32)
    with pytest.raises(InvalidInputError):
        dz.linear_betas(0)
    with pytest.raises(InvalidInputError, match="steps must be <="):
        dz.ddim_timesteps(10, 11)


def test_cosine_model_builds(tiny):
    m = build_model(entry(schedule="cosine", timesteps=100), 32)
    assert torch.allclose(m.alpha_bars.double(), dz.alpha_bars(dz.cosine_betas(100)), atol=1e-6)
    assert not torch.equal(m.alpha_bars, tiny.alpha_bars)


# --- forward / reverse formulas ----------------------------------------------------------


def test_q_sample_and_predict_x0():
    x0 = torch.tensor([0.5, -1.0, 0.25, 0.0], dtype=torch.float64).view(2, 2, 1, 1)
    noise = torch.tensor([1.0, 2.0, -0.5, 3.0], dtype=torch.float64).view(2, 2, 1, 1)
    ab = torch.tensor([0.64, 0.36], dtype=torch.float64)
    xt = dz.q_sample(x0, ab, noise)
    # sample 0: 0.8 x0 + 0.6 n; sample 1: 0.6 x0 + 0.8 n
    expect = [0.8 * 0.5 + 0.6 * 1.0, 0.8 * -1.0 + 0.6 * 2.0,
              0.6 * 0.25 + 0.8 * -0.5, 0.6 * 0.0 + 0.8 * 3.0]
    assert xt.flatten().tolist() == pytest.approx(expect, abs=1e-12)
    assert torch.allclose(dz.predict_x0(xt, noise, ab), x0, atol=1e-12)
    scalar = dz.q_sample(x0, 0.64, noise)  # one level for all samples
    assert torch.allclose(scalar[0], xt[0], atol=1e-12)
    with pytest.raises(InvalidInputError, match="one per sample"):
        dz.q_sample(x0, torch.ones(3), noise)


def test_ddim_step_formula():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64)
    z = torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64)
    ab_t, ab_prev = 0.3, 0.7
    xt = dz.q_sample(x0, ab_t, eps)
    # eta = 0 with the true noise: the deterministic jump to level ab_prev
    out = dz.ddim_step(xt, eps, ab_t, ab_prev)
    assert torch.allclose(out, math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps,
                          atol=1e-12)
    # eta = 1 on known numbers: sigma = sqrt(0.3/0.7) * sqrt(1 - 3/7) = sqrt(12/49)
    sigma = math.sqrt(12 / 49)
    assert math.sqrt((1 - ab_prev) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_prev) == \
        pytest.approx(sigma)
    out = dz.ddim_step(xt, eps, ab_t, ab_prev, eta=1.0, noise=z)
    expect = (math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev - sigma ** 2) * eps
              + sigma * z)
    assert torch.allclose(out, expect, atol=1e-12)
    # the last step (ab_prev = 1) returns the predicted x0, whatever eta
    assert torch.allclose(dz.ddim_step(xt, eps, ab_t, 1.0), x0, atol=1e-12)
    assert torch.allclose(dz.ddim_step(xt, eps, ab_t, 1.0, eta=1.0, noise=z), x0, atol=1e-12)
    # per-sample levels
    abs_t = torch.tensor([0.3, 0.5, 0.9], dtype=torch.float64)
    out = dz.ddim_step(dz.q_sample(x0, abs_t, eps), eps, abs_t, torch.ones(3))
    assert torch.allclose(out, x0, atol=1e-12)
    with pytest.raises(InvalidInputError, match="needs noise"):
        dz.ddim_step(xt, eps, ab_t, ab_prev, eta=0.5)


def test_ddim_timesteps():
    assert dz.ddim_timesteps(1000, 1).tolist() == [999]
    ts = dz.ddim_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0 and (ts.diff() < 0).all()
    assert dz.ddim_timesteps(10, 10).tolist() == list(range(9, -1, -1))


# --- the network -------------------------------------------------------------------------


@pytest.mark.parametrize("size,up", [(32, "nearest"), (64, "transposed")])
def test_unet_shapes_and_gradients(size, up):
    m = build_model(entry(up, timesteps=100), size)
    assert m.mults == ((1, 2, 2) if size == 32 else (1, 2, 2, 2))
    x = torch.randn(2, 3, size, size)
    out = m.unet(x, torch.tensor([0, 99]))
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # zero-initialised output conv
    m.loss(x, torch.tensor([3, 50]), torch.randn_like(x)).backward()
    grads = [p.grad for p in m.unet.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert m.unet.out[-1].weight.grad.abs().sum() > 0


def test_upsampling_comes_from_registry():
    near = build_model(entry("nearest"), 32)
    tconv = build_model(entry("transposed"), 32)
    assert sum(isinstance(mod, InterpolateUp) for mod in near.unet.modules()) == 2
    assert not any(isinstance(mod, TransposedUp) for mod in near.unet.modules())
    ups = [mod for mod in tconv.unet.modules() if isinstance(mod, TransposedUp)]
    assert len(ups) == 2 and all(u.conv.kernel_size == (4, 4) for u in ups)
    assert not any(isinstance(mod, InterpolateUp) for mod in tconv.unet.modules())


def test_mults_option():
    m = build_model(entry(mults="1,2"), 32)
    assert m.mults == (1, 2)
    assert m.unet(torch.randn(1, 3, 32, 32), torch.tensor([5])).shape == (1, 3, 32, 32)
    with pytest.raises(InvalidInputError, match="mults"):
        build_model(entry(mults="1,x"), 32)
    with pytest.raises(InvalidInputError, match="mults"):
        build_model(entry(mults="1,1,1,1,1"), 32)


def test_build_is_seeded():
    a, b = build_model(entry(), 32), build_model(entry(), 32)
    for (_, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb)
    assert any(k.startswith("ema.") for k in a.state_dict())


# --- training, EMA, sampling -------------------------------------------------------------


def test_fixed_batch_loss_decreases():
    m = build_model(entry(timesteps=100), 32)
    g = torch.Generator().manual_seed(1)
    # a smooth image, so the noise is identifiable from x_t
    x = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(2, 3, 32, 32).contiguous()
    t = torch.tensor([20, 80])
    noise = torch.randn(x.shape, generator=g)
    opt = torch.optim.Adam(m.unet.parameters(), 5e-3)
    losses = []
    for _ in range(6):
        loss = m.loss(x, t, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(noise.pow(2).mean().item(), rel=1e-5)  # eps_theta = 0
    assert losses[-1] < 0.9 * losses[0]


def test_train_step_and_ema():
    m = build_model(entry(timesteps=100), 32)
    opts = m.optimizers(1e-3)
    assert set(opts) == {"model"}
    ema0 = {k: v.clone() for k, v in m.ema.state_dict().items()}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    live = []
    for _ in range(2):
        out = m.train_step(x, opts)
        live.append({k: v.clone() for k, v in m.unet.state_dict().items()})
    assert set(out) == {"loss"} and isinstance(out["loss"], float) and math.isfinite(out["loss"])
    assert int(m.ema_updates) == 2
    ema = m.ema.state_dict()
    assert any(not torch.equal(v, ema0[k]) for k, v in ema.items())
    assert any(not torch.equal(v, live[1][k]) for k, v in ema.items())
    assert all(not p.requires_grad for p in m.ema.parameters())
    # warm-up decay d = (1 + n) / (10 + n): 1/10, then 2/11
    for k, v in ema.items():
        ema1 = 0.1 * ema0[k] + 0.9 * live[0][k]
        assert torch.allclose(v, 2 / 11 * ema1 + 9 / 11 * live[1][k], atol=1e-6), k


def test_samples(tiny):
    s = tiny.sample(3, torch.Generator().manual_seed(0))
    assert s.shape == (3, 3, 32, 32) and torch.isfinite(s).all()
    assert s.min() >= -1 and s.max() <= 1
    again = tiny.sample(3, torch.Generator().manual_seed(0))
    assert torch.equal(s, again)
    other = tiny.sample(1, torch.Generator().manual_seed(1))
    assert not torch.equal(s[:1], other)
    two = tiny.sample(2, torch.Generator().manual_seed(0), steps=2)
    assert two.shape == (2, 3, 32, 32) and not torch.equal(two, s[:2])
    eta = tiny.sample(1, torch.Generator().manual_seed(0), steps=2, eta=1.0)
    assert torch.equal(eta, tiny.sample(1, torch.Generator().manual_seed(0), steps=2, eta=1.0))


def test_sample_counts_steps(tiny, monkeypatch):
    calls = []
    real = tiny.ema.forward
    monkeypatch.setattr(tiny.ema, "forward", lambda x, t: calls.append(int(t[0])) or real(x, t))
    tiny.sample(1, torch.Generator().manual_seed(0))
    assert calls == dz.ddim_timesteps(100, 4).tolist()
    calls.clear()
    tiny.sample(1, torch.Generator().manual_seed(0), steps=3)
    assert calls == [99, 50, 0]


def test_linear_schedule_ends_near_pure_noise_for_any_number_of_steps():
    for steps in (50, 100, 1000):
        entry = ZooEntry("t_ddpm", "diffusion", "nearest", "group", "silu", "eps-mse",
                         width=8, options={"timesteps": steps, "sample_steps": 10,
                                           "mults": "1,2"})
        model = build_model(entry, 32)
        assert float(model.alpha_bars[-1]) < 1e-3, steps  # x_T carries < 3 % of the signal
        assert float(model.betas.max()) <= 0.999
