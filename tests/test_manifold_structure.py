"""core.manifold.structure: planted design structure is found (NMI, leave-one-model-out),
an independent factor is not; singletons are skipped; t-SNE PNG; refusals."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import InvalidInputError
from core.manifold.structure import (
    DESIGN_FACTORS,
    FactorScores,
    LeaveOneOut,
    Prediction,
    StructureReport,
    cluster,
    design_nmi,
    fingerprint_vectors,
    leave_one_model_out,
    structure_report,
    tsne_png,
)

UPSAMPLINGS = ("nearest", "bilinear", "transposed")
LOSSES = ("ns", "hinge")


def planted_zoo(n_samples=20, shape=(3, 8, 8), seed=0, extra_upsampling=()):
    """12 models, upsampling x loss x 2 seeds fully crossed (plus one model per
    ``extra_upsampling``). A model's artifacts are its upsampling's fixed pattern (std 1
    per element) + a small per-model offset (std 0.2) + per-sample noise (std 1); the
    loss changes nothing. Returns ``(artifacts, designs)``."""
    rng = np.random.default_rng(seed)
    ups = list(UPSAMPLINGS) + list(extra_upsampling)
    pattern = {u: rng.standard_normal(shape) for u in ups}
    artifacts, designs = {}, {}
    models = [(u, loss, s) for u in UPSAMPLINGS for loss in LOSSES for s in range(2)]
    models += [(u, "ns", 0) for u in extra_upsampling]
    for u, loss, s in models:
        name = f"gan-{u}-{loss}-s{s}"
        offset = 0.2 * rng.standard_normal(shape)
        artifacts[name] = (pattern[u] + offset
                           + rng.standard_normal((n_samples, *shape))).astype(np.float32)
        designs[name] = {"family": "gan", "upsampling": u, "normalization": "batch",
                         "activation": "relu", "loss": loss}
    return artifacts, designs


def test_fingerprint_vectors_are_mean_and_mean_abs():
    arts = {"a": np.array([[1.0, -2.0], [3.0, 2.0]]),
            "b": torch.tensor([[[[-1.0]], [[0.0]]]])}  # (1, 2, 1, 1) -> (1, 2)
    names, v = fingerprint_vectors(arts)
    assert names == ["a", "b"]
    np.testing.assert_allclose(v, [[2.0, 0.0, 2.0, 2.0], [-1.0, 0.0, 1.0, 0.0]])


def test_planted_upsampling_is_found_and_the_independent_loss_is_not():
    artifacts, designs = planted_zoo()
    names, vectors = fingerprint_vectors(artifacts)
    ups = [designs[n]["upsampling"] for n in names]
    for method in ("kmeans", "agglomerative"):
        labels = cluster(vectors, 3, method, seed=0)
        nmi = design_nmi(names, labels, designs)
        assert nmi["upsampling"] == pytest.approx(1.0)
        # Loss is crossed with upsampling in equal numbers, so any union of upsampling
        # groups carries exactly no information about it.
        assert nmi["loss"] == pytest.approx(0.0, abs=1e-9)
        assert nmi["family"] is None  # one value: nothing to explain
        assert len(set(zip(ups, labels.tolist()))) == 3

    report = structure_report(artifacts, designs, seed=0)
    json.dumps(report.to_dict())
    assert list(report.models) == names and report.dim == 2 * 3 * 8 * 8
    table = report.nmi
    assert table["family"].to_dict() == {"n_values": 1}
    for method in ("kmeans", "agglomerative"):
        assert table["upsampling"].nmi[method] > 0.95
        assert table["upsampling"].ami[method] > 0.9
        # Two loss clusters from three upsampling groups: NMI 0 up to noise.
        assert table["loss"].nmi[method] < 0.1
        assert table["loss"].ami[method] < 0.1
    loo = report.leave_one_out
    assert loo.factor == "upsampling" and loo.n_predicted == 12 and not loo.skipped
    assert loo.accuracy == 1.0
    assert loo.chance == pytest.approx(4 / 11)  # 4 of the 11 others share the majority


def test_leave_one_out_skips_singletons_and_sees_no_independent_factor():
    artifacts, designs = planted_zoo(extra_upsampling=("pixelshuffle",))
    names, vectors = fingerprint_vectors(artifacts)
    loo = leave_one_model_out(names, vectors, designs, "upsampling")
    assert list(loo.skipped) == ["gan-pixelshuffle-ns-s0"]
    assert loo.n_predicted == 12 and loo.accuracy == 1.0
    assert "gan-pixelshuffle-ns-s0" not in loo.predictions
    loss = leave_one_model_out(names, vectors, designs, "loss")
    assert loss.n_predicted == 13 and loss.accuracy <= 0.7
    lonely = leave_one_model_out(names[:2], vectors[:2],
                                 {n: {"upsampling": u} for n, u in zip(names[:2], "ab")})
    assert lonely.accuracy is None and list(lonely.skipped) == names[:2]


def test_tsne_png_writes_a_readable_image(tmp_path):
    artifacts, _ = planted_zoo(n_samples=15)
    picked = list(artifacts)[:4]
    x = np.concatenate([artifacts[n] for n in picked])
    labels = [n for n in picked for _ in range(15)]
    path = tsne_png(x, labels, tmp_path / "figs" / "tsne.png", per_model=12)
    assert path == tmp_path / "figs" / "tsne.png"
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200
    assert [p.name for p in path.parent.iterdir()] == ["tsne.png"]  # no temp file left


def test_bad_inputs_are_refused():
    artifacts, designs = planted_zoo(n_samples=3)
    names, vectors = fingerprint_vectors(artifacts)
    with pytest.raises(InvalidInputError, match="at least 2 models"):
        fingerprint_vectors({"only": np.zeros((3, 4))})
    with pytest.raises(InvalidInputError, match="same"):
        fingerprint_vectors({"a": np.zeros((3, 4)), "b": np.zeros((3, 5))})
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        fingerprint_vectors({"a": np.zeros((3, 4)), "b": np.full((3, 4), np.inf)})
    with pytest.raises(InvalidInputError, match="N > 0"):
        fingerprint_vectors({"a": np.zeros((3, 4)), "b": np.zeros((0, 4))})
    partial = {n: d for n, d in designs.items() if n != names[5]}
    with pytest.raises(InvalidInputError, match=f"no design given for model '{names[5]}'"):
        structure_report(artifacts, partial)
    with pytest.raises(InvalidInputError, match="factor 'skip' unknown"):
        leave_one_model_out(names, vectors, designs, "skip")
    with pytest.raises(InvalidInputError, match="factor 'skip' unknown"):
        design_nmi(names, np.zeros(len(names), int), designs, factors=("skip",))
    with pytest.raises(InvalidInputError, match="one per model"):
        design_nmi(names, np.zeros(3, int), designs)
    with pytest.raises(InvalidInputError, match="names for"):
        leave_one_model_out(names[:3], vectors, designs)
    with pytest.raises(InvalidInputError, match="n_clusters"):
        cluster(vectors, len(names) + 1)
    with pytest.raises(InvalidInputError, match="unknown clustering method 'dbscan'"):
        cluster(vectors, 2, "dbscan")
    with pytest.raises(InvalidInputError, match="M >= 2"):
        cluster(vectors[:1], 1)
    with pytest.raises(InvalidInputError, match="one per artifact"):
        tsne_png(np.zeros((6, 4)), ["a", "b"], "unused.png")
    with pytest.raises(InvalidInputError, match="at least 2 models"):
        tsne_png(np.zeros((6, 4)), ["a"] * 6, "unused.png")


def test_structure_report_round_trips_and_keeps_the_printed_keys():
    artifacts, designs = planted_zoo(n_samples=5, extra_upsampling=("pixelshuffle",))
    report = structure_report(artifacts, designs, seed=0)
    d = json.loads(json.dumps(report.to_dict()))
    # fpx structure --json prints these keys, in this order
    assert list(d) == ["models", "fingerprint", "dim", "seed", "nmi", "leave_one_out"]
    assert list(d["nmi"]) == list(DESIGN_FACTORS)
    assert list(d["nmi"]["upsampling"]) == ["n_values", "nmi", "ami", "clusters"]
    assert list(d["leave_one_out"]) == ["factor", "accuracy", "chance", "n_predicted",
                                        "predictions", "skipped"]
    assert d["leave_one_out"]["skipped"] == ["gan-pixelshuffle-ns-s0"]
    first = next(iter(d["leave_one_out"]["predictions"].values()))
    assert first == {"true": first["true"], "predicted": first["predicted"]}
    back = StructureReport.from_dict(d)
    assert back == report and back.to_dict() == report.to_dict()
    assert isinstance(back.nmi["loss"], FactorScores) and back.nmi["family"].nmi is None
    assert all(isinstance(p, Prediction) for p in back.leave_one_out.predictions.values())
    lonely = leave_one_model_out(["a", "b"], np.eye(2), {"a": {"upsampling": "x"},
                                                        "b": {"upsampling": "y"}})
    assert LeaveOneOut.from_dict(json.loads(json.dumps(lonely.to_dict()))) == lonely


def test_structure_records_refuse_inconsistent_values_in_one_line():
    artifacts, designs = planted_zoo(n_samples=3)
    report = structure_report(artifacts, designs, seed=0)
    loo = report.leave_one_out
    cases = [
        (lambda: FactorScores(n_values=0), "n_values must be a positive integer, got 0"),
        (lambda: FactorScores(n_values=1, nmi={"kmeans": 0.5}), "one value has no nmi"),
        (lambda: FactorScores(n_values=2, nmi={"kmeans": 0.5}, ami={"kmeans": 0.1}),
         "needs nmi, ami and clusters for the same clustering methods"),
        (lambda: FactorScores(n_values=2, nmi={"kmeans": 1.5}, ami={"kmeans": 0.1},
                              clusters={"kmeans": {"a": 0}}),
         r"nmi\['kmeans'\] must be a finite number in \[0, 1\], got 1.5"),
        (lambda: FactorScores(n_values=2, nmi={"kmeans": 0.5}, ami={"kmeans": float("nan")},
                              clusters={"kmeans": {"a": 0}}),
         r"ami\['kmeans'\] must be a finite number <= 1, got nan"),
        (lambda: FactorScores(n_values=2, nmi={"kmeans": 0.5}, ami={"kmeans": 0.1},
                              clusters={"kmeans": {"a": -1}}),
         r"clusters\['kmeans'\]\['a'\] must be an integer >= 0, got -1"),
        (lambda: dataclasses.replace(loo, n_predicted=3), "n_predicted is 3 but 12 predictions"),
        (lambda: dataclasses.replace(loo, accuracy=None), "accuracy must be a finite number"),
        (lambda: LeaveOneOut("upsampling", 0.5, None, 0, {}, ()),
         "accuracy must be None when no model is predicted, got 0.5"),
        (lambda: dataclasses.replace(loo, skipped=(next(iter(loo.predictions)),)),
         "both predicted and skipped"),
        (lambda: dataclasses.replace(report, models=report.models[:1]),
         "at least 2 distinct models"),
        (lambda: dataclasses.replace(report, models=report.models[:-1] + ("ghost",)),
         "leave_one_out must predict or skip every model"),
        (lambda: dataclasses.replace(report, seed=-1), "seed must be an integer >= 0, got -1"),
        (lambda: dataclasses.replace(report, nmi={"loss": {"n_values": 1}}),
         "nmi must map design factors to FactorScores"),
        (lambda: StructureReport.from_dict({**report.to_dict(), "extra": 1}),
         r"a structure report has the fields .*unknown \['extra'\]"),
        (lambda: FactorScores.from_dict({"n_values": 1, "nmi_typo": {}}),
         "a factor's scores are n_values"),
        (lambda: LeaveOneOut.from_dict({**loo.to_dict(), "predictions": {"a": {"true": "x"}}}),
         r"a prediction has the fields true, predicted; missing \['predicted'\]"),
        (lambda: Prediction("", "x"), "true must be a non-empty string"),
    ]
    for make, message in cases:
        with pytest.raises(InvalidInputError, match=message) as err:
            make()
        assert "\n" not in str(err.value)
