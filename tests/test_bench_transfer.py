"""``fpx bench transfer``: metrics on constructed cases with known answers, thresholds
that never see test labels, the run end to end on tiny settings, and bad input."""

import json

import numpy as np
import pytest
import torch

from core.bench import Protocol, baseline_methods, run_transfer
from core.bench import metrics as m
from core.bench.protocol import calibrate, check_set, evaluate
from core.bench.sets import TestSet, folder_set, zoo_set
from core.bench.transfer import features
from core.data import write_pngs
from core.errors import InvalidInputError
from core.extractor import DEFAULT_EXTRACTOR
from core.extractor.evaluate import identify
from tests.test_cli import run


def separable(models=4, per=12, dim=8):
    """Each model's rows are one basis vector: every same-model pair scores 1, every
    other pair 0."""
    labels = np.repeat(np.arange(models), per)
    return np.eye(dim)[labels], labels


def test_separable_embeddings_score_one_everywhere():
    e, labels = separable()
    rng = np.random.default_rng(0)
    ver = m.verification(e, labels, pairs=1000, threshold=0.5, rng=rng)
    assert ver["auc"] == 1.0 and ver["tar"] == 1.0 and ver["far"] == 0.0
    assert m.identification(e, labels, shots=3, rng=rng) == {"accuracy": 1.0,
                                                             "macro_f1": 1.0}
    assert m.open_set(e, labels, shots=3, fraction=0.25, rng=rng) == {
        "folds": 4, "auroc": 1.0, "oscr": 1.0}


def test_identical_embeddings_are_at_chance():
    labels = np.repeat(np.arange(4), 12)
    e = np.ones((len(labels), 5)) / np.sqrt(5)
    rng = np.random.default_rng(0)
    assert m.verification(e, labels, pairs=1000, threshold=None, rng=rng)["auc"] == 0.5
    assert m.open_set(e, labels, shots=3, fraction=0.25, rng=rng)["auroc"] == 0.5


def test_pairs_are_half_same_model_and_never_an_image_with_itself():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 30 + [3])  # unequal, one singleton
    idx, same = m.draw_pairs(labels, 2001, np.random.default_rng(1))
    assert same.sum() == 1000 and len(same) == 2001
    assert (labels[idx[same, 0]] == labels[idx[same, 1]]).all()
    assert (labels[idx[~same, 0]] != labels[idx[~same, 1]]).all()
    assert (idx[:, 0] != idx[:, 1]).all()
    assert 37 not in idx[same]  # the singleton has no same-model partner
    assert set(labels[idx[~same]].ravel()) == {0, 1, 2, 3}


def test_auc_matches_scikit_learn_and_threshold_meets_its_far():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    scores, positive = rng.normal(size=500).round(1), rng.random(500) < 0.3
    assert m.roc_auc(scores, positive) == pytest.approx(roc_auc_score(positive, scores))
    neg = np.arange(100) / 100  # 0.00 .. 0.99
    t = m.threshold_at_far(neg, 0.01)
    assert t == 0.98 and (neg > t).sum() == 1
    assert (neg > m.threshold_at_far(neg, 0.05)).mean() <= 0.05


def test_oscr_on_a_hand_case():
    # Known queries score 0.9 (right), 0.7 (wrong), 0.5 (right); unknown 0.8 and 0.1.
    # CCR climbs 1/3 before any false positive, then 1/3 more by FPR 1/2: area 1/2.
    scores = np.array([0.9, 0.8, 0.7, 0.5, 0.1])
    correct = np.array([True, False, False, True, False])
    known = np.array([True, False, True, True, False])
    assert m.oscr(scores, correct, known) == pytest.approx(0.5 * (1 / 3) + 0.5 * (2 / 3))


def test_open_folds_leave_every_model_out_once():
    folds = m.open_folds(12, 1 / 3, np.random.default_rng(0))
    assert [len(f) for f in folds] == [4, 4, 4]
    assert sorted(np.concatenate(folds).tolist()) == list(range(12))
    with pytest.raises(InvalidInputError, match="at least 3 models"):
        m.open_folds(2, 0.5, np.random.default_rng(0))


def tiny_set(name, models=3, per=12, size=16, seed=0) -> TestSet:
    g = torch.Generator().manual_seed(seed)
    # Each model adds its own fixed pattern to noise: separable by design.
    patterns = torch.rand(models, 3, size, size, generator=g) * 2 - 1
    x = (0.5 * patterns.repeat_interleave(per, 0)
         + 0.3 * torch.randn(models * per, 3, size, size, generator=g)).clamp(-1, 1)
    labels = torch.arange(models).repeat_interleave(per)
    return TestSet(name, x, labels, tuple(f"m{i}" for i in range(models)), {}, "test")


def test_threshold_is_chosen_without_test_labels():
    """The thresholds of a run, and the TAR/FAR pairs they give, do not move when the
    test set's labels are shuffled: only validation models reach the threshold."""
    protocol = Protocol(pairs=400, shots=(1, 3), episodes=1, open_shots=3)
    methods = baseline_methods(["raw", "spectrum"], DEFAULT_EXTRACTOR, 0)
    val = {16: tiny_set("validation", models=4, seed=9)}
    test = tiny_set("test")
    shuffled = TestSet("test", test.images, test.labels[torch.randperm(
        len(test.labels), generator=torch.Generator().manual_seed(3))], test.models, {},
        "test")
    a = run_transfer(methods, [test], val, protocol, with_probe=False)
    b = run_transfer(methods, [shuffled], val, protocol, with_probe=False)
    assert a.thresholds == b.thresholds and len(a.thresholds) == 2
    for ra, rb in zip(a.rows, b.rows):
        assert ra["scores"]["verification"]["threshold"] == \
            rb["scores"]["verification"]["threshold"]
    # ... it is calibrate() on the validation features and labels alone.
    e = features(methods[0], val[16].images)
    assert calibrate(e, val[16].labels.numpy(), protocol) == a.thresholds["raw@16"]


def test_every_method_meets_the_same_draws():
    protocol = Protocol(pairs=200, shots=(2,), episodes=2, open_shots=2)
    e, labels = separable(models=3, per=6)
    one = evaluate(e, labels, protocol, threshold=None)
    two = evaluate(e.copy(), labels, protocol, threshold=None)
    assert one == two


def test_probe_and_report_tables_end_to_end():
    protocol = Protocol(pairs=300, shots=(1, 3), episodes=1, open_shots=3)
    methods = baseline_methods(["raw", "spectrum", "radial"], DEFAULT_EXTRACTOR, 0)
    report = run_transfer(methods, [tiny_set("t", models=4)],
                          {16: tiny_set("v", models=4, seed=5)}, protocol,
                          processings=("none", "jpeg90"))
    assert {r["method"] for r in report.rows} == {"raw", "spectrum", "radial", "probe"}
    assert {r["processing"] for r in report.rows} == {"none", "jpeg90"}
    raw = report.select(processing="none")[0]["scores"]
    assert raw["verification"]["auc"] > 0.9  # fixed per-model patterns
    md = report.markdown()
    assert "| t | linear probe on the residual spectrum (supervised reference) |" in md
    assert "TAR@1% FAR" in report.text()
    json.dumps(report.to_dict())


@pytest.mark.slow  # builds 3 synthetic validation models: about 30 s on 2 cores
def test_cli_runs_end_to_end_on_tiny_settings(capsys, tmp_path):
    folders = tmp_path / "models"
    test = tiny_set("t", models=3, per=6, size=32)
    for i, name in enumerate(test.models):
        write_pngs(test.images[test.labels == i], folders / name)
    status, stdout, err = run(
        capsys, "bench", "transfer", folders, "--device", "cpu", "--pairs", 200,
        "--shots", 1, 2, "--open-shots", 2, "--episodes", 1, "--validation-models", 3,
        "--validation-images", 4, "--baselines", "raw", "spectrum", "input-spectrum",
        "--hybrid", "--json", "--out", tmp_path / "out")
    assert status == 0, err
    report = json.loads(stdout)
    # the shipped extractor's folder holds its synthetic metric: both hybrid rows
    methods = {"shipped", "shipped+spectrum", "shipped+spectrum+metric", "raw", "spectrum",
               "input-spectrum"}
    assert {r["method"] for r in report["rows"]} == methods | {"probe"}
    assert report["methods"]["shipped+spectrum"] == {
        "label": "extractor shipped + its input spectrum", "kind": "extractor"}
    assert report["methods"]["shipped+spectrum+metric"]["label"].endswith(
        "+ its input spectrum, synthetic metric")
    assert report["sets"][0]["models"] == 3 and report["sets"][0]["size"] == 32
    assert set(report["thresholds"]) == {f"{m}@32" for m in methods}
    assert (tmp_path / "out" / "report.json").is_file()
    assert (tmp_path / "out" / "transfer_models.png").is_file()


def test_hybrid_method_is_the_unit_embedding_beside_the_unit_input_spectrum():
    from core.bench import extractor_method, hybrid_method
    from core.extractor import load_extractor
    from core.extractor.hybrid import GRID, input_spectrum

    model = load_extractor(DEFAULT_EXTRACTOR)
    x = torch.rand(5, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for small in ("spectrum", "native"):
        method = hybrid_method(model, "e", small)
        assert method.name == ("e+spectrum" if small == "spectrum" else "e_native+spectrum")
        f = method.features(x).numpy()
        d = model.config.embed_dim
        assert f.shape == (5, d + 3 * GRID * GRID)
        e = extractor_method(model, "e", small).features(x).numpy()
        s = input_spectrum(x).numpy()
        half = np.sqrt(0.5)  # each half unit length, the whole too
        assert np.allclose(f[:, :d], half * e / np.linalg.norm(e, axis=1, keepdims=True),
                           atol=1e-5)
        assert np.allclose(f[:, d:], half * s / np.linalg.norm(s, axis=1, keepdims=True),
                           atol=1e-5)
        assert np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)


def test_zoo_set_has_every_entry_and_its_design():
    s = zoo_set()
    assert len(s.models) == 12 and s.size == 32 and len(s.labels) == 12 * 200
    assert s.designs["ddpm_tconv"]["upsampling"] == "transposed"
    assert s.designs["gan_tconv"]["period"] == "8"


# --- bad input: one line each ----------------------------------------------------------


def test_too_few_images_per_model(capsys, tmp_path):
    test = tiny_set("t", models=3, per=4, size=32)
    for i, name in enumerate(test.models):
        write_pngs(test.images[test.labels == i], tmp_path / name)
    status, _, err = run(capsys, "bench", "transfer", tmp_path, "--device", "cpu")
    assert status == 1 and len(err) == 1
    assert "3 model(s) have fewer than 11 images (k+1 for k = 10 shots)" in err[0]


def test_single_model_and_mixed_sizes(capsys, tmp_path):
    write_pngs(torch.zeros(12, 3, 32, 32), tmp_path / "one" / "a")
    status, _, err = run(capsys, "bench", "transfer", tmp_path / "one")
    assert status == 1 and err[-1].endswith("the benchmark needs folders of at least 2 "
                                            "models (sub-folders = models)")
    write_pngs(torch.zeros(12, 3, 32, 32), tmp_path / "mixed" / "a")
    write_pngs(torch.zeros(12, 3, 64, 64), tmp_path / "mixed" / "b")
    status, _, err = run(capsys, "bench", "transfer", tmp_path / "mixed")
    assert status == 1 and len(err) == 1
    assert "images of mixed sizes (32x32: 12, 64x64: 12)" in err[0]
    with pytest.raises(InvalidInputError, match="one model"):
        check_set("s", np.zeros(20, int), ("a",), Protocol())


def test_gallery_and_query_with_no_model_in_common():
    e, labels = separable(models=4, per=5)
    names = [f"m{i}" for i in labels]
    with pytest.raises(InvalidInputError, match=r"no model in common \(gallery: m0, m1; "
                                                r"query: m2, m3\)"):
        identify(e[:10], names[:10], e[10:], names[10:], shots=2)


def test_folder_set_reads_designs_of_bank_samples(tmp_path):
    from core.specs import BlockSpec, GeneratorSpec

    for i, up in enumerate(("nearest", "transposed")):
        folder = tmp_path / f"m{i}"
        write_pngs(torch.zeros(3, 3, 16, 16), folder)
        (folder / "spec.json").write_text(GeneratorSpec(up=(BlockSpec(up, 2),)).to_json())
    s = folder_set(tmp_path)
    assert s.designs["m1"]["upsampling"] == "transposed" and s.designs["m0"]["up_blocks"] == "1"


def test_extractor_under_the_size_policy_and_fed_natively(shipped_dim):
    from core.bench import load_method

    policy = load_method(DEFAULT_EXTRACTOR, "shipped")
    native = load_method(DEFAULT_EXTRACTOR, "shipped", small="native")
    assert (policy.name, native.name) == ("shipped", "shipped_native")
    x = tiny_set("t", models=2, per=2, size=32).images
    a, b = policy.features(x), native.features(x)
    assert a.shape == b.shape == (4, shipped_dim)
    assert torch.allclose(a.norm(dim=1), torch.ones(4), atol=1e-5)
    assert not torch.allclose(a, b, atol=1e-3)  # 32 px < 64: the two paths differ
    big = tiny_set("t", models=2, per=2, size=64).images  # the crop size: one path
    assert torch.allclose(policy.features(big), native.features(big), atol=1e-6)


def test_relationship_skips_fields_with_one_model_per_value():
    from core.bench.protocol import relationship

    e, labels = separable(models=4, per=3)
    designs = {"a": {"up": "x", "own": "1"}, "b": {"up": "x", "own": "2"},
               "c": {"up": "y", "own": "3"}, "d": {"up": "y", "own": "4"}}
    out = relationship(e, labels, ("a", "b", "c", "d"), designs)
    assert set(out) == {"up"} and out["up"]["values"] == 2 and out["up"]["lomo_models"] == 4
