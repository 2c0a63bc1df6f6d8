"""Attribute tab state: nearest known generator, "unknown" under a threshold calibrated on
held-out models, evidence, JSON export, bad input as a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import param
import pytest

from core.extractor import whitening as wh
from explorer import attribution_features as af
from explorer import attribution_gallery as ag
from explorer.attribute import AttributeState
from explorer.image_sets import ImageSet
from tests.test_explorer_embeddings import SIZE, write_models


def clusters(models: int = 6, per: int = 40, spread: float = 0.3, seed: int = 0):
    """Unit vectors around ``models`` random centres in 32-d, labels ``m0 ...``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(models, 32))
    e = np.concatenate([c + spread * rng.normal(size=(per, 32)) for c in centres])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return e.astype(np.float32), [f"m{i}" for i in range(models) for _ in range(per)]


def test_gallery_holds_the_first_shots_and_holds_back_the_rest():
    e, labels = clusters()
    g = ag.build_gallery(e, labels, shots=10, leave_out=["m5"], shrinkages=())
    assert g.names == ("m0", "m1", "m2", "m3", "m4") and g.centroids.shape == (5, 32)
    assert len(g.held) == 5 * 30 and "m5" not in g.held_labels
    assert g.transform.matrix is None  # no whitening asked: plain cosine
    ref = e[:10].mean(0)
    assert np.allclose(g.centroids[0], ref / np.linalg.norm(ref), atol=1e-6)
    w = ag.build_gallery(e, labels, shots=10, leave_out=["m5"])
    assert w.transform.dims == min(wh.MAX_DIMS, 32) and len(w.transform.scores) == 4
    assert np.allclose(w.centroids[0], wh.unit(w.project(e[:10]).mean(0)), atol=1e-5)
    assert np.allclose(np.linalg.norm(w.held, axis=1), 1, atol=1e-5)


def anisotropic_classes(models: int = 8, per: int = 60, dim: int = 40, seed: int = 0):
    """Gaussian classes sharing one within-class covariance that is large along a few
    directions (content) and small along the rest, where the class means differ."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    scale = np.where(np.arange(dim) < 6, 3.0, 0.15)  # 6 loud nuisance directions
    means = (rng.normal(size=(models, dim)) * np.where(np.arange(dim) < 6, 0.3, 0.25)) @ basis.T
    x = np.concatenate([m + (rng.normal(size=(per, dim)) * scale) @ basis.T for m in means])
    return x + 4 * basis[:, 10], np.repeat([f"m{i}" for i in range(models)], per)


def test_within_class_whitening_beats_plain_cosine_on_anisotropic_classes():
    x, labels = anisotropic_classes()
    acc = {}
    for how, shrink in (("plain", ()), ("whitened", wh.SHRINKAGES)):
        g = ag.build_gallery(x, labels, shots=10, shrinkages=shrink)
        acc[how] = ag.calibrate(g).correct
    assert acc["whitened"] > acc["plain"] + 0.2, acc
    w = ag.build_gallery(x, labels, shots=10).transform
    assert w.shrinkage < 1 and w.scores and max(s for _, s in w.scores) > 0.8, w.scores


def test_the_shrinkage_is_chosen_from_the_references_alone():
    """Held-back rows relabelled at random (and changed) leave the whitening as it was."""
    x, labels = anisotropic_classes(seed=1)
    refs = np.concatenate([np.flatnonzero(labels == m)[:10] for m in np.unique(labels)])
    held = np.setdiff1d(np.arange(len(labels)), refs)
    x, labels = x[np.r_[refs, held]], labels[np.r_[refs, held]]  # references first
    held = np.arange(len(refs), len(labels))
    g = ag.build_gallery(x, labels, shots=10)
    shuffled = labels.copy()
    shuffled[held] = np.random.default_rng(5).permutation(labels[held])
    moved = x.copy()
    moved[held] += np.random.default_rng(6).normal(size=moved[held].shape)
    for other in (ag.build_gallery(x, shuffled, shots=10),
                  ag.build_gallery(moved, labels, shots=10)):
        assert other.transform.shrinkage == g.transform.shrinkage
        assert other.transform.scores == g.transform.scores
        assert np.allclose(other.transform.matrix, g.transform.matrix)
        assert np.allclose(other.centroids, g.centroids)
    # ... while the references' own labels do count.
    assert wh.choose_whitening(x[:0], labels[:0]).matrix is None  # nothing to learn from


def test_threshold_gives_the_asked_false_accept_rate_on_held_out_models():
    e, labels = clusters(models=8, per=60)
    g = ag.build_gallery(e, labels)
    for far in (0.01, 0.05, 0.2):
        c = ag.calibrate(g, far)
        imp = ag.impostor_scores(g)
        assert c.far == pytest.approx((imp >= c.threshold).mean())
        # 'higher' quantile: at most the asked share, within one impostor of it.
        assert far - 1 / len(imp) <= c.far <= far + 1 / len(imp)
    assert c.correct > 0.95


def test_a_model_left_out_is_unknown_at_the_calibrated_rate():
    """Cross-validated: calibrate without model X, then ask about X's images."""
    e, labels = clusters(models=10, per=50, spread=0.45, seed=3)
    accepted, total, target = 0, 0, 0.05
    for left in sorted(set(labels)):
        g = ag.build_gallery(e, labels, leave_out=[left])
        c = ag.calibrate(g, target)
        rows = np.asarray(labels) == left
        found = ag.verdicts(e[rows], [left] * rows.sum(), g, c.threshold)
        accepted += sum(v.answer != ag.UNKNOWN for v in found)
        total += len(found)
    rate = accepted / total
    # Binomial spread of 500 draws at 5 %: sd 1 %; 4 sd plus the models' own spread.
    assert rate < target + 0.06, rate


def test_verdict_is_unknown_under_the_threshold():
    e, labels = clusters(models=3)
    g = ag.build_gallery(e, labels)
    far = -e[0]  # opposite to m0: far from every centroid
    found = ag.verdicts(np.stack([e[15], far]), ["a", "b"], g, threshold=0.5)
    assert found[0].answer == "m0" and found[1].answer == ag.UNKNOWN
    assert len(found[0].nearest) == 3 and found[0].nearest[0][0] == "m0"
    assert ag.summary(found).endswith("(1 of 2 images)")


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A gallery of 3 synthetic 64-px models (30 images each) and a runs folder."""
    monkeypatch.setenv("FPX_DATA_ROOTS", str(tmp_path))
    write_models(tmp_path / "gallery", models=3, images=30)
    return tmp_path


def attribute_state(world: Path, **params) -> AttributeState:
    return AttributeState(runs=world / "runs", gallery=ImageSet("test", world / "gallery"),
                          **params)


def test_an_uploaded_image_gets_its_generator_and_the_answer_exports(world):
    s = attribute_state(world)
    data = (world / "gallery" / "m1" / "025.png").read_bytes()
    s.set_uploads([("query.png", data)])
    s.wait()
    assert s.message == ""
    r = s.result
    assert r.verdicts[0].nearest[0][0] == "m1"
    assert r.calibration.far <= s.target_far + 0.05
    d = json.loads(r.to_json())
    assert d["format"] == "fpx.attribution/1" and d["verdicts"][0]["image"].endswith("query.png")
    assert d["evidence"]["spectral_distance_to_real_db"] > 0
    assert d["lattice"]["images"] == 1
    assert d["method"]["features"] == af.BOTH and d["method"]["features_note"] == ""
    assert d["method"]["transform"]["shrinkage"] in (None, *wh.SHRINKAGES)
    assert r.method().startswith("Features: extractor embedding + blur-residual log spectrum")
    from explorer.views.attribute import verdict_markdown

    assert f"- *{r.method()}*" in verdict_markdown(r).splitlines()  # one line on the page
    assert r.shown.size == 32 and r.report.size == SIZE  # evidence at the zoo's size
    # the shipped extractor has design heads: their upsampling guess, shown and exported
    up = d["design"]["upsampling"]
    assert set(d["design"]) == {"upsampling"} and sum(up.values()) == pytest.approx(1, abs=1e-3)
    assert list(up.values()) == sorted(up.values(), reverse=True)
    best = next(iter(up))
    assert any(line.startswith(f"- Design guess: upsampling **{best}** {up[best]:.2f}")
               for line in verdict_markdown(r).splitlines())


def test_the_design_guess_needs_heads_fitted_on_that_extractor(tmp_path, shipped_dim):
    import shutil

    from core.extractor import DEFAULT_EXTRACTOR
    from explorer.attribute import design_guess

    rows = np.random.default_rng(0).normal(size=(4, shipped_dim)).astype(np.float32)
    assert design_guess(DEFAULT_EXTRACTOR, rows)["upsampling"]
    other = shutil.copytree(DEFAULT_EXTRACTOR, tmp_path / "other")
    weights = other / "extractor.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")  # other weights, other identity
    assert design_guess(other, rows) is None


def test_a_server_folder_of_images_is_attributed_and_leaving_its_model_out_says_unknown(world):
    q = world / "query"
    q.mkdir()
    for i in range(20, 30):
        (q / f"{i}.png").write_bytes((world / "gallery" / "m0" / f"{i:03d}.png").read_bytes())
    s = attribute_state(world, folder=str(q))
    s.compute()
    s.wait()
    assert s.result.summary.startswith("m0")
    assert s.result.report.grid.images == 10
    s.removed = ["m0"]
    s.wait()
    unknown = sum(v.answer == ag.UNKNOWN for v in s.result.verdicts)
    assert s.result.removed == ("m0",) and "m0" not in s.result.gallery
    assert unknown >= 8, [v.nearest[0] for v in s.result.verdicts]


def test_a_gallery_file_whose_images_are_gone_falls_back_to_the_embeddings(world):
    """A model added from the Embeddings tab keeps only its images' paths: once they are
    deleted its spectra cannot be read, and the whole gallery is compared on the
    embeddings alone, said in the answer's method line."""
    from core.extractor import EmbeddingSet
    from explorer.image_sets import cached_embeddings, gallery_folder

    s = attribute_state(world)
    extractor = s.extractors[s.extractor]
    kept = cached_embeddings(ImageSet("m2", world / "gallery" / "m2"), extractor, s.runs)
    gone = [str(world / "deleted" / f"{i}.png") for i in range(len(kept.paths))]
    folder = gallery_folder(s.runs, extractor)
    folder.mkdir(parents=True)
    EmbeddingSet(kept.embeddings, gone, ("added",) * len(gone)).save(folder / "added.npz")
    s.set_uploads([("q.png", (world / "gallery" / "m1" / "025.png").read_bytes())])
    s.wait()
    assert s.message == "", s.message
    r = s.result
    assert "added" in r.gallery and r.features == af.EMBEDDING
    assert "no longer on disk" in r.why and "Spectra left out" in r.method()
    assert r.verdicts[0].nearest[0][0] == "m1"


@pytest.mark.parametrize("case", ["not an image", "empty", "outside roots", "no folder"])
def test_bad_input_is_a_message(world, case):
    s = attribute_state(world)
    if case == "not an image":
        s.set_uploads([("photo.jpg", b"GIF89a but not really")])
    elif case == "empty":
        s.set_uploads([("photo.png", b"")])
    elif case == "outside roots":
        s.folder = "/"
    else:
        s.folder = str(world / "absent")
    s.wait()
    expected = {"not an image": "photo.jpg: not a usable image", "empty": "empty (0 bytes)",
                "outside roots": "outside the folders", "no folder": "no such folder"}[case]
    assert expected in s.message and s.result is None and not s.busy


def test_nothing_is_computed_without_images(world):
    s = attribute_state(world)
    s.compute()
    assert s._thread is None and s.result is None


def test_removing_every_dropped_image_clears_the_answer_or_returns_to_the_folder(world):
    q = world / "query"
    q.mkdir()
    (q / "a.png").write_bytes((world / "gallery" / "m2" / "020.png").read_bytes())
    s = attribute_state(world)
    s.set_uploads([("x.png", (world / "gallery" / "m1" / "025.png").read_bytes())])
    s.wait()
    assert s.result.verdicts[0].name.endswith("x.png")
    s.set_uploads([])  # the drop area emptied
    assert s.result is None and s.message == "" and not s.busy
    with param.discard_events(s):
        s.folder = str(q)
    s.set_uploads([("x.png", (world / "gallery" / "m1" / "025.png").read_bytes())])
    s.wait()
    assert s.result.verdicts[0].name.endswith("x.png")  # uploads win over the folder
    s.set_uploads([])
    s.wait()
    assert [v.name for v in s.result.verdicts] == ["a.png"]


# --- the shipped zoo ---------------------------------------------------------------------

def residual_spectrum_features(folder: Path, size: int) -> np.ndarray:
    """The baseline: each image's blur-residual log spectrum (the extractor's own input,
    before any network), flattened and made unit length."""
    import torch

    from core.data import read_folder
    from core.extractor.inputs import extractor_input

    x = read_folder(folder, size)[0]
    f = extractor_input(x, "spectrum", "blur").flatten(1)
    return torch.nn.functional.normalize(f, dim=1).numpy()


def held_back_accuracy(features: np.ndarray, labels, far: float, shrinkages=()) -> dict:
    """Nearest centroid over the held-back images; ``shrinkages=()``: plain cosine."""
    g = ag.build_gallery(features, labels, shrinkages=shrinkages)
    c = ag.calibrate(g, far)
    lab = np.asarray(g.held_labels)
    nearest = np.asarray(g.names)[(g.held @ g.centroids.T).argmax(1)]
    per = {m: float((nearest[lab == m] == m).mean()) for m in g.names}
    return {"accuracy": float((nearest == lab).mean()), "per_entry": per, "calibration": c,
            "gallery": g}


def unknown_rates(features: np.ndarray, labels, real: np.ndarray, far: float,
                  shrinkages=()) -> dict:
    """Real photos said unknown against the full gallery, and each entry's images
    accepted (not unknown) when it is left out of the gallery (its whitening too)."""
    g = ag.build_gallery(features, labels, shrinkages=shrinkages)
    c = ag.calibrate(g, far)
    real_unknown = float(((g.project(real) @ g.centroids.T).max(1) < c.threshold).mean())
    lab, accepted = np.asarray(labels), []
    for left in dict.fromkeys(labels):
        gl = ag.build_gallery(features, labels, leave_out=[left], shrinkages=shrinkages)
        cl = ag.calibrate(gl, far)
        sim = gl.project(features[lab == left]) @ gl.centroids.T
        accepted.append(float((sim.max(1) >= cl.threshold).mean()))
    return {"real_unknown": real_unknown, "left_accepted": float(np.mean(accepted)),
            "far": c.far, "accept": c.accept}


def set_accuracy(g: ag.Gallery, size: int = 10) -> float:
    """Held-back images attributed ``size`` at a time (the unit mean of their
    features in the gallery's space), as when several images of one source are dropped
    together."""
    lab = np.asarray(g.held_labels)
    right = []
    for m in g.names:
        rows = g.held[lab == m]
        for k in range(0, len(rows) - size + 1, size):
            v = rows[k:k + size].mean(0)
            right.append(g.names[int((g.centroids @ v).argmax())] == m)
    return float(np.mean(right))


@pytest.fixture(scope="module")
def zoo_measured(tmp_path_factory):
    """The zoo embedded once (cached), its gallery at 10 shots, on one split: the
    Attribute tab's method (embedding + residual spectrum, whitened), the plain-centroid
    extractor embedding (the tab's method before) and the residual-spectrum baseline;
    real photos and left-out entries against the threshold, for the tab's method and the
    plain extractor."""
    from tests.test_explorer_embeddings import shared_runs, zoo_embeddable

    tmp = tmp_path_factory.mktemp("zoo")
    why = zoo_embeddable(tmp)
    if why:
        pytest.skip(why)
    from core.zoo.shipped import SHIPPED_ZOO, read_manifest
    from explorer.image_sets import cached_embeddings, real_set

    s = AttributeState(runs=shared_runs(tmp_path_factory))
    sets = s.gallery_sets()
    labels = [lab for x in sets for lab in x.labels]
    features, kind, note = af.gallery_features(sets, s.runs)
    assert kind == af.BOTH, note
    emb = np.concatenate([x.embeddings for x in sets])
    far = s.target_far
    ours = held_back_accuracy(features, labels, far, wh.SHRINKAGES)
    plain = held_back_accuracy(emb, labels, far)
    manifest = read_manifest(SHIPPED_ZOO)
    feats, labs = [], []
    for name, entry in manifest.entries.items():
        f = residual_spectrum_features(SHIPPED_ZOO / entry.folder, manifest.size)
        feats.append(f)
        labs += [name] * len(f)
    base = held_back_accuracy(np.concatenate(feats), labs, far)
    real = cached_embeddings(real_set(), s.extractors[s.extractor], s.runs)
    rates = unknown_rates(features, labels, af.query_features(real, kind, s.runs), far,
                          wh.SHRINKAGES)
    before = unknown_rates(emb, labels, real.embeddings, far)
    t = ours["gallery"].transform
    out = {"ours": ours["accuracy"], "plain_extractor": plain["accuracy"],
           "baseline": base["accuracy"], "ours_sets": set_accuracy(ours["gallery"]),
           "plain_sets": set_accuracy(plain["gallery"]),
           "base_sets": set_accuracy(base["gallery"]), "shrinkage": t.shrinkage,
           "target": far, **rates, **{f"plain_{k}": v for k, v in before.items()}}
    print("\nzoo attribution, 10 shots:", {k: (round(v, 3) if isinstance(v, float) else v)
                                           for k, v in out.items()})
    print("whitening:", t.describe(), t.scores)
    print("per entry:", {k: round(v, 3) for k, v in ours["per_entry"].items()})
    return out


@pytest.mark.slow
def test_zoo_real_photos_and_left_out_entries_are_unknown_at_the_calibrated_rate(zoo_measured):
    m = zoo_measured
    assert m["real_unknown"] >= 1 - m["target"] - 0.02
    # Leave-one-entry-out over 12 entries: the rate scatters around the target by the
    # entries' own spread (measured 0.089 plain, 0.077 whitened, at a 0.05 target).
    assert m["left_accepted"] <= m["target"] + 0.06


@pytest.mark.slow
def test_zoo_attribution_beats_the_plain_extractor_and_the_residual_spectrum_baseline(
        zoo_measured):
    """Measured on one split: embedding + spectrum whitened 0.904, plain-centroid
    extractor 0.812, residual-spectrum baseline 0.828 per image; sets of 10 higher."""
    m = zoo_measured
    assert m["ours"] >= m["baseline"] + 0.04 and m["ours"] >= m["plain_extractor"] + 0.04
    assert m["ours_sets"] >= m["ours"]


@pytest.mark.slow
def test_zoo_held_back_images_are_attributed_in_90_percent_of_cases(zoo_measured):
    assert zoo_measured["ours"] >= 0.90


# --- models added from the Embeddings tab ------------------------------------------------

@pytest.mark.slow
def test_held_out_bank_models_join_the_gallery_of_their_extractor_only(world, monkeypatch):
    """Both held-out bank sets (3 models of 20 images each, made on request) added from
    the Embeddings tab: six distinct gallery models, offered to leave out, and a held-back
    bank image is attributed to its own set's design; a gallery file of another extractor
    is never read."""
    from core.extractor import DEFAULT_EXTRACTOR, EmbeddingSet
    from explorer import image_sets
    from explorer.embeddings import EmbeddingsState

    monkeypatch.setattr(image_sets, "BANK_MODELS", 3)
    monkeypatch.setattr(image_sets, "BANK_IMAGES", 20)
    runs = world / "runs"
    emb = EmbeddingsState(runs=runs, autostart=False, entries=[], real=False, bank="seeds")
    emb.start()
    emb.wait()
    assert emb.message == "", emb.message
    seeds = emb.add_to_gallery()
    emb.bank = "architectures"
    emb.wait()
    assert emb.message == "", emb.message
    archs = emb.add_to_gallery()
    folder = image_sets.gallery_folder(runs, DEFAULT_EXTRACTOR)
    preset = image_sets.bank_preset(DEFAULT_EXTRACTOR)
    bank = runs / "bank_samples" / f"{preset}-seeds-3x20"
    models = sorted(p.name for p in bank.iterdir() if p.is_dir())
    assert seeds == [f"bank-seeds-{m}" for m in models]
    assert len(archs) == 3 and all(a.startswith("bank-architectures-m00") for a in archs)
    assert sorted(p.stem for p in folder.glob("*.npz")) == sorted(seeds + archs)
    assert EmbeddingSet.load(folder / f"{seeds[1]}.npz").labels == (seeds[1],) * 20
    # Another extractor's gallery (same dimension) stays out of this one's.
    stray = EmbeddingSet.load(folder / f"{seeds[0]}.npz")
    (runs / "gallery" / ("0" * 16)).mkdir()
    EmbeddingSet(stray.embeddings, stray.paths, ("other-extractor",) * 20).save(
        runs / "gallery" / ("0" * 16) / "other-extractor.npz")

    s = attribute_state(world)
    assert s.param.removed.objects == ["m0", "m1", "m2", *sorted(seeds + archs)]
    # Held-back images (not references) of each set. The bank's first 3 models are the
    # seeds of its first architectures (in each set): the extractor tells the design, not
    # the seed, so an image's nearest model is one of its set's.
    arch_bank = runs / "bank_samples" / f"{preset}-architectures-3x20"
    queries = [("seeds.png", sorted((bank / models[1]).glob("*.png"))[15]),
               ("archs.png", sorted(next(arch_bank.glob("m001-*")).glob("*.png"))[15])]
    s.set_uploads([(name, path.read_bytes()) for name, path in queries])
    s.wait()
    assert s.message == "", s.message
    r = s.result
    assert set(r.gallery) == {"m0", "m1", "m2", *seeds, *archs}
    assert r.verdicts[0].nearest[0][0] in seeds, r.verdicts[0].nearest
    assert r.verdicts[1].nearest[0][0] in archs, r.verdicts[1].nearest
    s.removed = seeds
    s.wait()
    assert not set(seeds) & set(s.result.gallery)
    assert s.result.verdicts[0].nearest[0][0] not in seeds
