"""The hybrid fingerprint (:mod:`core.extractor.hybrid`): the extractor's input spectrum on
its grid at any size, the two halves' weights, files read in order with one-line errors,
and ``--hybrid`` in the embedding commands."""

import numpy as np
import pytest
import torch

from core.bench.metrics import unit_rows, verification
from core.data import write_pngs
from core.errors import InvalidInputError
from core.extractor import load_extractor
from core.extractor.hybrid import GRID, hybrid, input_spectrum, spectra_of


def images(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_input_spectrum_is_the_extractor_input_on_its_grid():
    """At the grid's size the feature is the extractor's input itself; larger images are
    averaged over tiles on a regular grid, smaller ones resampled, non-square ones
    squared: same length."""
    from core.extractor.inputs import extractor_input

    x = images((4, 3, GRID, GRID))
    assert np.allclose(input_spectrum(x).numpy(),
                       extractor_input(x, "spectrum", "blur").flatten(1).numpy(), atol=1e-5)
    for side, starts in ((2 * GRID, (0, GRID)), (GRID + GRID // 2, (0, GRID // 2))):
        big = images((2, 3, side, side))
        tiles = [big[..., r:r + GRID, c:c + GRID] for r in starts for c in starts]
        mean = np.mean([input_spectrum(t).numpy() for t in tiles], 0)
        assert np.allclose(input_spectrum(big).numpy(), mean, atol=1e-5)
    for shape in ((2, 3, 20, 20), (2, 3, 40, 56), (2, 3, 24, 40)):
        assert input_spectrum(images(shape)).shape == (2, 3 * GRID ** 2)


def test_hybrid_keeps_what_the_embedding_cannot_tell_apart():
    """Two 'models' whose embeddings are identical but whose spectra differ: the
    embedding alone is at chance, the hybrid separates them."""

    labels = np.repeat(np.arange(2), 20)
    rng = np.random.default_rng(0)
    emb = np.ones((40, 4))
    spectra = rng.normal(size=(40, 30)) * 0.1 + np.eye(30)[labels]
    auc = {name: verification(unit_rows(f), labels, pairs=400, threshold=None,
                                rng=np.random.default_rng(1))["auc"]
           for name, f in (("embedding", hybrid(emb, None)), ("hybrid", hybrid(emb, spectra)))}
    assert auc["embedding"] == 0.5 and auc["hybrid"] > 0.99
    with pytest.raises(ValueError, match="4 embeddings but 3 spectra"):
        hybrid(emb[:4], spectra[:3])


def test_spectra_of_files_in_order_at_mixed_sizes_and_a_bad_file(tmp_path):
    small, big = images((3, 3, 32, 32), 1), images((2, 3, 64, 64), 2)
    a = write_pngs(small, tmp_path / "a")
    b = write_pngs(big, tmp_path / "b")
    paths = [str(p) for p in (a[0], b[0], a[1], b[1], a[2])]
    got = spectra_of(paths, batch=2)
    from core.data.images import load_rgb
    from core.data.transforms import to_signed, to_tensor

    want = [input_spectrum(to_signed(to_tensor(load_rgb(p)))[None])[0].numpy() for p in paths]
    assert got.shape == (5, 3 * GRID ** 2)
    assert np.abs(got - np.stack(want)).max() < 1e-3  # batched FFTs: float32 rounding
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InvalidInputError, match="bad.png: cannot read the image"):
        spectra_of([paths[0], str(tmp_path / "bad.png")])


def test_embedding_commands_compare_the_hybrid_fingerprint(capsys, tmp_path, shipped_dim):
    """``verify | identify | relate --hybrid`` end to end on two spectrally distinct
    'models' (white noise, and noise upsampled x2 by pixel repetition), from folders and
    from a saved embeddings file; an image gone from disk is one line naming it."""
    from core.cli import EXIT_INPUT
    from core.extractor import Extractor, ExtractorConfig, export_extractor
    from core.parsing.data import extractor_identity
    from tests.test_cli import run

    torch.manual_seed(0)
    extractor = export_extractor(Extractor(ExtractorConfig(width=4, embed_dim=16,
                                                           crop_size=32)),
                                 tmp_path / "extractor", {"command": "test"})
    data = tmp_path / "models"
    write_pngs(images((12, 3, 32, 32), 1), data / "noise")
    write_pngs(images((12, 3, 16, 16), 2).repeat_interleave(2, -1).repeat_interleave(2, -2),
               data / "nearest")
    common = ["--extractor", extractor, "--device", "cpu", "--json"]
    import json

    status, out, err = run(capsys, "verify", data, "--pairs", 200, "--hybrid", *common)
    assert status == 0, err
    assert json.loads(out)["auc"] > 0.99
    status, out, err = run(capsys, "identify", "--gallery", data, "--query", data,
                           "--shots", 4, "--hybrid", *common)
    assert status == 0, err
    assert json.loads(out)["accuracy"] == 1.0
    status, out, err = run(capsys, "relate", data, "--hybrid", *common)
    assert status == 0 and json.loads(out)["models"] == ["nearest", "noise"]
    status, out, err = run(capsys, "embed", data, "--out", tmp_path / "e.npz",
                           "--extractor", extractor, "--device", "cpu")
    assert status == 0, err
    saved = ["verify", "--embeddings", tmp_path / "e.npz", "--hybrid"]
    status, out, err = run(capsys, *saved, "--extractor", extractor, "--pairs", 200, "--json")
    assert status == 0 and json.loads(out)["auc"] > 0.99
    # without --extractor the shipped extractor's metric is used: not for these embeddings,
    # which record the extractor that made them
    status, out, err = run(capsys, *saved)
    assert status == EXIT_INPUT and len(err) == 1
    assert f"the embeddings were made by extractor {extractor_identity(extractor)}" in err[0]
    assert "pass the --extractor that made them" in err[0]
    # a file that does not record it (saved before it was) meets the metric's size check
    from core.extractor.embeddings import EmbeddingSet

    old = EmbeddingSet.load(tmp_path / "e.npz")
    EmbeddingSet(old.embeddings, old.paths, old.labels).save(tmp_path / "old.npz")
    status, out, err = run(capsys, "verify", "--embeddings", tmp_path / "old.npz", "--hybrid")
    assert status == EXIT_INPUT and len(err) == 1
    own = load_extractor(extractor).config.embed_dim
    assert (f"the hybrid metric takes {shipped_dim + 3 * GRID * GRID} features, got "
            f"{own + 3 * GRID * GRID} (another extractor's?)") in err[0]
    (data / "noise" / "00003.png").unlink()
    status, out, err = run(capsys, *saved, "--extractor", extractor)
    assert status == EXIT_INPUT and len(err) == 1 and "00003.png" in err[0], err


# --- the synthetic metric (core.extractor.metric) ------------------------------------


@pytest.fixture(scope="module")
def tiny_extractor(tmp_path_factory):
    """An untrained extractor whose record names the tiny preset (its bank: 4
    architectures x 2 seeds, 32 px), so synthetic models of its bank can be drawn."""
    from core.extractor import Extractor, ExtractorConfig, export_extractor

    torch.manual_seed(0)
    model = Extractor(ExtractorConfig(width=4, embed_dim=16, crop_size=32))
    return export_extractor(model, tmp_path_factory.mktemp("tiny"),
                            {"command": "test", "preset": "tiny"})


def test_metric_is_fitted_on_synthetic_models_of_its_own_seeds_and_read_back(
        tiny_extractor, tmp_path):
    import shutil

    from core.bench.sets import synthetic_set
    from core.extractor.metric import HybridMetric, find_metric, fit_metric
    from core.parsing.data import extractor_identity

    assert find_metric(tiny_extractor) is None  # none stored yet
    # the metric's models are not the validation models thresholds are fixed on
    a = synthetic_set(tiny_extractor, "metric", models=2, images=2, size=32)
    b = synthetic_set(tiny_extractor, "validation", models=2, images=2, size=32)
    assert not torch.allclose(a.images, b.images)

    metric = fit_metric(tiny_extractor, models=4, images=6, sizes=(32,))
    d_in = 16 + 3 * GRID * GRID
    assert metric.in_dims == d_in and 0 < metric.whitening.dims <= 24
    assert metric.whitening.shrinkage in (0.03, 0.1, 0.3, 1.0)
    assert metric.made_by["extractor"] == extractor_identity(tiny_extractor)
    assert metric.made_by["models"] == 4 and metric.made_by["sizes"] == [32]
    folder = tmp_path / "copy"
    shutil.copytree(tiny_extractor, folder)
    metric.save(folder)
    back = find_metric(folder)
    assert isinstance(back, HybridMetric) and back.made_by == metric.made_by
    assert np.array_equal(back.whitening.matrix, metric.whitening.matrix)
    f = hybrid(np.random.default_rng(0).normal(size=(5, 16)),
               np.random.default_rng(1).normal(size=(5, 3 * GRID * GRID)))
    z = back(f)
    assert z.shape == (5, metric.whitening.dims)
    assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    with pytest.raises(InvalidInputError, match="takes 3088 features, got 3"):
        back(np.ones((2, 3)))


def _crossed_groups(seed: int = 0):
    """4 groups of 3 models x 20 rows. Even groups scatter within class along dims 0-9 and
    differ between models along 10-19; odd groups the other way round."""
    rng = np.random.default_rng(seed)
    rows, labels, groups = [], [], []
    for g in range(4):
        noisy, means = (slice(0, 10), slice(10, 20)) if g % 2 == 0 else \
            (slice(10, 20), slice(0, 10))
        for m in range(3):
            mean = np.zeros(30)
            mean[means], mean[20:] = rng.normal(size=10), 3
            x = mean + 0.05 * rng.normal(size=(20, 30))
            x[:, noisy] += rng.normal(size=(20, 10))
            rows.append(x)
            labels += [f"g{g}m{m}"] * 20
            groups += [g] * 20
    return np.concatenate(rows), labels, groups


def test_the_transfer_criterion_scores_a_whitening_on_groups_it_did_not_see():
    from core.extractor.whitening import (
        SHRINKAGES,
        TRANSFER,
        WITHIN,
        choose_transfer_whitening,
        fit_whitening,
    )

    x, labels, groups = _crossed_groups()
    chosen = choose_transfer_whitening(x, labels, groups)
    assert chosen.criterion == TRANSFER and [a for a, _ in chosen.scores] == list(SHRINKAGES)
    auc = dict(chosen.scores)
    # Learnt on even groups, a light shrinkage divides out dims 0-9, where odd groups'
    # models differ: near chance there. No whitening (a = 1) keeps them apart.
    assert auc[0.03] < 0.65 and auc[1.0] > 0.9 and chosen.shrinkage == 1.0, auc
    assert list(auc.values()) == sorted(auc.values())
    # Learnt on the very models it is scored on (what the criterion avoids), the same
    # light shrinkage looks best.
    lab, odd = np.asarray(labels), np.asarray(groups) % 2 == 1
    w = fit_whitening(x[odd], lab[odd], 0.03)
    own = verification(w(x[odd]).astype(np.float64), np.unique(lab[odd], return_inverse=True)[1],
                       pairs=2000, threshold=None, rng=np.random.default_rng(0))["auc"]
    assert own > 0.99 > auc[1.0], (own, auc)
    with pytest.raises(ValueError, match="model g0m0 is in more than one group"):
        choose_transfer_whitening(x, labels, [1] + groups[1:])  # its first row elsewhere
    # One group: no unseen group to score on; within-model halves instead.
    assert choose_transfer_whitening(x, labels, [0] * len(x)).criterion == WITHIN
    with pytest.raises(ValueError, match="240 labels but 2 groups"):
        choose_transfer_whitening(x, labels, [0, 1])


def test_the_metric_is_scored_on_designs_it_was_not_learnt_on(tiny_extractor, monkeypatch):
    import json

    from core.extractor import metric as m

    seen = {}
    real = m.choose_transfer_whitening

    def spy(x, labels, groups):
        seen.update(labels=list(labels), groups=list(groups))
        return real(x, labels, groups)
    monkeypatch.setattr(m, "choose_transfer_whitening", spy)
    m.fit_metric(tiny_extractor, models=4, images=3, sizes=(32,))
    labels, groups = seen["labels"], seen["groups"]
    assert len(labels) == len(groups) == 12
    for label, group in zip(labels, groups):  # "32:m000-2xnearest-batch-relu-pre"
        d = json.loads(group)
        assert label.split("-", 1)[1] == (f"{d['up_blocks']}x{d['upsampling']}-"
                                          f"{d['normalization']}-{d['activation']}-{d['order']}")


def test_a_metric_record_of_before_the_transfer_criterion_loads(tiny_extractor, tmp_path):
    import json
    import shutil

    from core.extractor.metric import RECORD, HybridMetric, fit_metric
    from core.extractor.whitening import WITHIN

    folder = tmp_path / "mine"
    shutil.copytree(tiny_extractor, folder)
    fit_metric(tiny_extractor, models=4, images=4, sizes=(32,)).save(folder)
    record = json.loads((folder / RECORD).read_text())
    del record["criterion"]
    record["cross_validation"] = [{"shrinkage": 0.03, "accuracy": 0.8},
                                  {"shrinkage": 1.0, "accuracy": 0.6}]
    (folder / RECORD).write_text(json.dumps(record))
    old = HybridMetric.load(folder)
    assert old.whitening.criterion == WITHIN
    assert old.whitening.scores == ((0.03, 0.8), (1.0, 0.6))


def test_metric_refuses_another_extractor_and_damaged_files(tiny_extractor, tmp_path):
    import shutil

    from core.extractor import Extractor, ExtractorConfig, export_extractor
    from core.extractor.metric import RECORD, WEIGHTS, find_metric, fit_metric

    metric = fit_metric(tiny_extractor, models=2, images=4, sizes=(32,))
    torch.manual_seed(1)
    other = export_extractor(Extractor(ExtractorConfig(width=4, embed_dim=16, crop_size=32)),
                             tmp_path / "other", {"command": "test", "preset": "tiny"})
    metric.save(other)
    with pytest.raises(InvalidInputError, match="fitted on extractor .*, not on this one"):
        find_metric(other)
    folder = tmp_path / "mine"
    shutil.copytree(tiny_extractor, folder)
    metric.save(folder)
    (folder / WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(InvalidInputError, match=f"{WEIGHTS}: unreadable"):
        find_metric(folder)
    metric.save(folder)
    (folder / RECORD).write_text("{not json")
    with pytest.raises(InvalidInputError, match=f"{RECORD}: not JSON"):
        find_metric(folder)
    metric.save(folder)
    from safetensors.torch import save_file

    bad = torch.from_numpy(metric.whitening.matrix.copy())
    bad[0, 0] = float("nan")
    save_file({"matrix": bad}, str(folder / WEIGHTS))
    with pytest.raises(InvalidInputError, match="damaged"):
        find_metric(folder)
    metric.save(folder)
    good = (folder / RECORD).read_text()
    import json

    record = json.loads(good)
    for damaged in ([1, 2], {**record, "shrinkage": True},
                    {**record, "cross_validation": [{"shrinkage": "x", "accuracy": 1}]},
                    {**record, "cross_validation": 5}):
        (folder / RECORD).write_text(json.dumps(damaged))
        with pytest.raises(InvalidInputError, match=f"{RECORD}: (not a hybrid metric record"
                                                    "|damaged cross_validation)"):
            find_metric(folder)
    (folder / RECORD).unlink()
    with pytest.raises(InvalidInputError, match=f"{RECORD}: no such file"):
        find_metric(folder)


def test_metric_fit_command_then_verify_hybrid_uses_it(capsys, tiny_extractor, tmp_path):
    import json
    import shutil

    from tests.test_cli import run

    folder = tmp_path / "extractor"
    shutil.copytree(tiny_extractor, folder)
    status, out, err = run(capsys, "metric", "fit", "--extractor", folder, "--models", 4,
                           "--images", 4, "--sizes", 32, "--device", "cpu", "--json")
    assert status == 0, err
    summary = json.loads(out)
    assert summary["out"] == str(folder) and summary["dims"] > 0
    assert len(summary["cross_validation"]) == 4
    assert summary["criterion"].startswith("verification AUC on the models of unseen groups")
    data = tmp_path / "models"
    write_pngs(images((8, 3, 32, 32), 1), data / "noise")
    write_pngs(images((8, 3, 16, 16), 2).repeat_interleave(2, -1).repeat_interleave(2, -2),
               data / "nearest")
    status, out, err = run(capsys, "verify", data, "--pairs", 100, "--hybrid", "--extractor",
                           folder, "--device", "cpu", "--json")
    assert status == 0, err
    assert "whitened within class on 4 synthetic models" in json.loads(out)["features"]
    hybrid_auc = json.loads(out)["auc"]
    # --features auto (the default): the hybrid, as the extractor now has a metric ...
    common = ["--pairs", 100, "--device", "cpu", "--json"]
    status, out, err = run(capsys, "verify", data, "--extractor", folder, *common)
    assert status == 0, err
    assert json.loads(out)["features"].startswith("hybrid (embedding + input spectrum), "
                                                  "whitened within class on 4 synthetic")
    assert json.loads(out)["auc"] == hybrid_auc
    status, out, err = run(capsys, "metric", "fit", "--extractor", folder, "--models", 1)
    assert status == 2 and "--models" in err[-1]
    # never into the shipped extractor's folder by default: --extractor is required
    status, out, err = run(capsys, "metric", "fit")
    assert status == 2 and "--extractor" in err[-1]


def test_features_auto_keeps_the_embedding_where_the_hybrid_cannot_be_had(
        capsys, tiny_extractor, tmp_path):
    """``--features auto``: the embedding, saying why, for an extractor without a metric,
    embeddings of another extractor or of an unrecorded one, a damaged metric, an image
    gone; the hybrid otherwise, with the shipped extractor by default; the text output
    names the features too."""
    import json
    import shutil

    from core.cli import EXIT_INPUT
    from core.extractor import Extractor, ExtractorConfig, export_extractor
    from core.extractor.embeddings import EmbeddingSet
    from core.extractor.metric import WEIGHTS, fit_metric
    from core.parsing.data import extractor_identity
    from tests.test_cli import run

    folder = tmp_path / "extractor"
    shutil.copytree(tiny_extractor, folder)
    fit_metric(folder, models=4, images=4, sizes=(32,)).save(folder)
    data = tmp_path / "models"
    write_pngs(images((8, 3, 32, 32), 1), data / "noise")
    write_pngs(images((8, 3, 16, 16), 2).repeat_interleave(2, -1).repeat_interleave(2, -2),
               data / "nearest")

    def verify(*args) -> dict:
        status, out, err = run(capsys, "verify", *args, "--pairs", 100, "--device", "cpu",
                               "--json")
        assert status == 0, err
        return json.loads(out)

    emb = verify(data, "--extractor", folder, "--features", "embedding")
    assert emb["features"] == "embedding (--features embedding)"
    assert verify(data, "--extractor", folder)["features"].startswith("hybrid")
    no_metric = verify(data, "--extractor", tiny_extractor)  # the same weights, no metric
    assert no_metric["features"] == ("embedding (the extractor has no synthetic metric; "
                                     "fpx metric fit makes one)")
    assert no_metric["auc"] == emb["auc"]

    torch.manual_seed(1)
    other = export_extractor(Extractor(ExtractorConfig(width=4, embed_dim=16, crop_size=32)),
                             tmp_path / "other", {"command": "test", "preset": "tiny"})
    for extractor, name in ((other, "other.npz"), (folder, "mine.npz")):
        status, out, err = run(capsys, "embed", data, "--out", tmp_path / name,
                               "--extractor", extractor, "--device", "cpu")
        assert status == 0, err
        assert EmbeddingSet.load(tmp_path / name).extractor == extractor_identity(extractor)
    assert verify("--embeddings", tmp_path / "other.npz", "--extractor", folder)[
        "features"] == (f"embedding (embedded by extractor {extractor_identity(other)}, not "
                        "the one its synthetic metric was fitted on; pass the --extractor "
                        "that made them)")
    mine = EmbeddingSet.load(tmp_path / "mine.npz")
    EmbeddingSet(mine.embeddings, mine.paths, mine.labels).save(tmp_path / "old.npz")
    old = verify("--embeddings", tmp_path / "old.npz", "--extractor", folder)
    assert old["features"].startswith("embedding (the embeddings file records no extractor")
    assert old["auc"] == emb["auc"]

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / WEIGHTS).write_bytes(b"garbage")
    damaged = verify(data, "--extractor", broken)
    assert damaged["features"].startswith("embedding (its synthetic metric cannot be used: ")
    assert WEIGHTS in damaged["features"] and damaged["auc"] == emb["auc"]
    status, out, err = run(capsys, "verify", data, "--extractor", broken, "--hybrid")
    assert status == EXIT_INPUT and len(err) == 1 and f"{WEIGHTS}: unreadable" in err[0]

    # the shipped extractor and its metric by default; the text output says so
    assert verify(data)["features"].startswith(
        "hybrid (embedding + input spectrum), whitened within class on 48 synthetic models")
    query = tmp_path / "query"
    shutil.copytree(data, query)
    status, out, err = run(capsys, "identify", "--gallery", data, "--query", query,
                           "--shots", 3, "--extractor", folder, "--device", "cpu")
    assert status == 0 and any(line.startswith("features") and "hybrid" in line
                               for line in out.splitlines()), out
    status, out, err = run(capsys, "relate", data, "--extractor", folder, "--out",
                           tmp_path / "figs")
    assert status == 0 and out.startswith("features: hybrid"), out

    (data / "noise" / "00002.png").unlink()
    status, out, err = run(capsys, "relate", "--embeddings", tmp_path / "mine.npz",
                           "--extractor", folder, "--json")
    assert status == 0 and json.loads(out)["features"] == (
        f"embedding ({data / 'noise' / '00002.png'} is gone; the hybrid reads each "
        "image's spectrum)"), out
