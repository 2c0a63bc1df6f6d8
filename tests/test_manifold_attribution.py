"""core.manifold.attribution: artifacts beat raw images on planted fingerprints; the
Fisher ratio by hand; the MLP for vectors; confusion bookkeeping; refusals."""

import json

import numpy as np
import pytest
import torch

from core.errors import InvalidInputError
from core.manifold.attribution import (
    MLP,
    AttributionConfig,
    SmallResNet,
    attribute,
    build_classifier,
    fisher_ratio,
    stratified_split,
)

# Grating frequencies (cycles/pixel) of the planted fingerprints, one per fake model:
# all at or near Nyquist, where the low-pass "real" content has almost no energy.
GRATINGS = [(0.5, 0.5), (0.5, 0.0), (0.0, 0.5), (0.25, 0.5)]
CLASSES = ["real"] + [f"model{i}" for i in range(len(GRATINGS))]


def planted_toy(n_per_class=32, size=16, amplitude=0.1, noise=0.05, seed=0):
    """Real-like images and their known nearest real samples, one class per model.

    Content: white noise low-passed by a Gaussian (std 0.06 cycles/pixel), each image
    scaled to unit std, different per sample. A fake model adds its fixed grating of
    the given amplitude (variance ``amplitude**2 / 2`` = 0.005, 200 times below the
    content's 1); every class, "real" included, adds iid noise of std ``noise``. The
    artifact is the sample minus its clean image, here known exactly.
    Returns ``(raw, artifacts, labels)``, float32 ``(N, 3, size, size)`` and ``(N,)``.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    white = rng.standard_normal((len(labels), 3, size, size))
    f = np.fft.fftfreq(size)
    low_pass = np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.06 ** 2))
    clean = np.fft.ifft2(np.fft.fft2(white) * low_pass).real
    clean /= clean.std(axis=(1, 2, 3), keepdims=True)
    yy, xx = np.mgrid[:size, :size]
    patterns = np.zeros((len(CLASSES), 3, size, size))
    for k, (fy, fx) in enumerate(GRATINGS, start=1):
        patterns[k] = amplitude * np.cos(2 * np.pi * (fy * yy + fx * xx))
    raw = clean + patterns[labels] + noise * rng.standard_normal(clean.shape)
    return raw.astype(np.float32), (raw - clean).astype(np.float32), labels


SMALL = AttributionConfig(epochs=5, batch=32, width=8, seeds=(0, 1, 2))


def test_artifacts_attribute_planted_fingerprints_far_better_than_raw_images():
    raw, artifacts, labels = planted_toy()
    on_artifacts = attribute(artifacts, labels, CLASSES, SMALL)
    on_raw = attribute(raw, labels, CLASSES, SMALL)
    assert on_artifacts.network == on_raw.network == "resnet"
    # Measured: artifacts 1.00 for every seed; raw 0.30-0.44 over data seeds 0-3 (chance
    # 0.2). The same network learns the raw task too given more epochs (0.72-0.80 at 8),
    # so the margin is about the budget, as in the paper's comparison.
    assert on_artifacts.accuracy_mean >= 0.95
    assert on_raw.accuracy_mean <= on_artifacts.accuracy_mean - 0.2
    assert on_artifacts.macro_f1_mean >= 0.95
    # The content (variance 1) swamps the pattern in raw pixels; subtracting it does not.
    assert fisher_ratio(artifacts, labels) > 20 * fisher_ratio(raw, labels)


def test_result_is_deterministic_json_and_confusion_adds_up():
    raw, artifacts, labels = planted_toy(n_per_class=10)
    config = AttributionConfig(epochs=2, batch=16, width=4, val_fraction=0.3, seeds=(3, 4))
    a = attribute(torch.from_numpy(artifacts), torch.from_numpy(labels), CLASSES, config)
    b = attribute(artifacts, labels, CLASSES, config)
    assert a.accuracies == b.accuracies and np.array_equal(a.confusion, b.confusion)
    assert a.confusion.dtype.kind == "i" and a.confusion.shape == (5, 5)
    # 3 of 10 per class held out, for each of the 2 seeds; rows are the true class.
    assert a.n_test == 15 and a.n_train == 35
    assert a.confusion.sum() == a.n_test * len(config.seeds)
    assert (a.confusion.sum(1) == 3 * 2).all()
    assert a.accuracy_mean == pytest.approx(np.trace(a.confusion) / a.confusion.sum())
    assert a.accuracy_std == pytest.approx(np.std(a.accuracies, ddof=1))
    d = json.loads(json.dumps(a.to_dict()))
    assert d["class_names"] == CLASSES and d["config"]["seeds"] == [3, 4]
    assert np.array_equal(np.asarray(d["confusion"]), a.confusion)


def test_vectors_use_the_mlp_and_learn_separable_classes():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 20)) * 2
    labels = np.repeat(np.arange(3), 30)
    x = centres[labels] + rng.standard_normal((90, 20))
    assert isinstance(build_classifier((20,), 3, 4), MLP)
    assert isinstance(build_classifier((3, 16, 16), 3, 4), SmallResNet)
    result = attribute(x, labels, ["a", "b", "c"],
                       AttributionConfig(epochs=30, batch=32, width=4, seeds=(0,)))
    assert result.network == "mlp"
    assert result.accuracy_mean >= 0.95 and result.accuracy_std == 0.0


def test_attribution_leaves_the_global_rng_alone():
    _, artifacts, labels = planted_toy(n_per_class=4, size=8)
    state = torch.random.get_rng_state()
    attribute(artifacts, labels, CLASSES, AttributionConfig(epochs=1, width=2, seeds=(0,)))
    assert torch.equal(state, torch.random.get_rng_state())


def test_stratified_split_keeps_each_class_on_both_sides():
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2])
    train, test = stratified_split(labels, 0.25, seed=0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(13))
    assert np.bincount(labels[test]).tolist() == [1, 2, 1]  # round(.25 n), in [1, n-1]
    assert np.array_equal(stratified_split(labels, 0.25, 0)[1], test)


def test_fisher_ratio_by_hand():
    # Class a: (0,0), (2,0) -> mean (1,0); class b: (4,2), (4,4) -> mean (4,3).
    # Overall mean (2.5, 1.5). tr S_B = 2*(1.5^2+1.5^2) + 2*(1.5^2+1.5^2) = 18.
    # tr S_W = (1 + 1) + (1 + 1) = 4. J = 4.5.
    x = np.array([[0, 0], [2, 0], [4, 2], [4, 4]], dtype=float)
    assert fisher_ratio(x, ["a", "a", "b", "b"]) == pytest.approx(4.5)
    assert fisher_ratio(3 * x + 7, np.array([0, 0, 1, 1])) == pytest.approx(4.5)
    # (N, C, H, W) is flattened: the same four points as (4, 2, 1, 1).
    assert fisher_ratio(torch.tensor(x).view(4, 2, 1, 1), [0, 0, 1, 1]) == pytest.approx(4.5)
    # Pulling the classes apart raises it.
    far = x.copy()
    far[2:] += 10
    assert fisher_ratio(far, [0, 0, 1, 1]) > fisher_ratio(x, [0, 0, 1, 1])
    assert fisher_ratio(np.array([[0.0], [0.0], [1.0]]), [0, 0, 1]) == float("inf")


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"), ({"batch": 2.5}, "batch"), ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"), ({"weight_decay": -1.0}, "weight_decay"),
    ({"width": True}, "width"), ({"val_fraction": 1.0}, "val_fraction"),
    ({"seeds": ()}, "seeds"), ({"seeds": (1, 1)}, "seeds"), ({"seeds": "0"}, "seeds"),
])
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        AttributionConfig(**kwargs)


def test_bad_inputs_are_refused():
    x = np.zeros((6, 4), dtype=np.float32)
    y = np.array([0, 0, 1, 1, 2, 2])
    cfg = AttributionConfig(epochs=1, seeds=(0,))
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        attribute(x, np.zeros(6, dtype=int), ["only"], cfg)
    with pytest.raises(InvalidInputError, match="class 'c' has 1 sample"):
        attribute(x, np.array([0, 0, 1, 1, 1, 2]), ["a", "b", "c"], cfg)
    with pytest.raises(InvalidInputError, match="class 'c' has 0 sample"):
        attribute(x, np.array([0, 0, 0, 1, 1, 1]), ["a", "b", "c"], cfg)
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        attribute(bad, y, ["a", "b", "c"], cfg)
    with pytest.raises(InvalidInputError, match="one per sample"):
        attribute(x, y[:5], ["a", "b", "c"], cfg)
    with pytest.raises(InvalidInputError, match="integer class indices"):
        attribute(x, y.astype(float), ["a", "b", "c"], cfg)
    with pytest.raises(InvalidInputError, match=r"\(N, C, H, W\) or \(N, D\)"):
        attribute(np.zeros((6, 2, 2)), y, ["a", "b", "c"], cfg)
    with pytest.raises(InvalidInputError, match="one per sample"):
        fisher_ratio(x, y[:4])
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        fisher_ratio(bad, y)
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        fisher_ratio(x, np.zeros(6))
    with pytest.raises(InvalidInputError, match="identical"):
        fisher_ratio(x, y)
