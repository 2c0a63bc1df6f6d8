"""Embeddings tab state: zoo embeddings are ``fpx embed``'s bit for bit; map, similarity,
ROC and confusion come from one computation; the disk cache; bad input is a message."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import FpxError
from core.extractor import DEFAULT_EXTRACTOR, EmbeddingSet, embed_folders, load_extractor
from core.extractor.evaluate import identify, relate, split_gallery
from core.parsing.data import extractor_identity
from core.zoo.shipped import SHIPPED_ZOO
from explorer import embedding_maps as maps
from explorer.embedding_cache import load_views
from explorer.embeddings import EmbeddingsState, derive
from explorer.image_sets import SHIPPED, gallery_folder

SIZE = 64  # the shipped extractor's crop size: these folders embed under any size policy


def write_models(root: Path, models: int = 3, images: int = 12, seed: int = 0) -> Path:
    """``root/m{i}/NNN.png``: noise, with rows (m0) or columns (m1) repeated in pairs
    (a period-2 lattice along one axis), m2 plain noise."""
    rng = np.random.default_rng(seed)
    for m in range(models):
        folder = root / f"m{m}"
        folder.mkdir(parents=True)
        for i in range(images):
            x = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            if m % 3 == 0:
                x[1::2] = x[::2]
            elif m % 3 == 1:
                x[:, 1::2] = x[:, ::2]
            Image.fromarray(x).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("FPX_DATA_ROOTS", str(tmp_path))
    return tmp_path


def folder_state(roots: Path, **params) -> EmbeddingsState:
    s = EmbeddingsState(runs=roots / "runs", autostart=False, entries=[], real=False, **params)
    s.start()
    s.wait()
    return s


def test_folder_of_models_gives_every_view_from_one_embedding(roots, shipped_dim):
    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    assert s.message == ""
    r = s.result
    assert r.data.embeddings.shape == (36, shipped_dim) and r.data.models == ("m0", "m1", "m2")
    # The same embeddings as fpx embed on the folder.
    direct = embed_folders(load_extractor(DEFAULT_EXTRACTOR), [roots / "set"])
    assert np.array_equal(r.data.embeddings, direct.embeddings)
    # Every view is a function of r.data, and only of it.
    assert np.allclose(r.points, maps.project(r.data.embeddings, "pca"))
    rel = relate(r.data.embeddings, r.data.labels)
    order = [rel["models"].index(m) for m in r.similarity.models]
    assert np.allclose(r.similarity.matrix, np.asarray(rel["similarity"])[np.ix_(order, order)])
    g, gl, q, ql = split_gallery(r.data.embeddings, list(r.data.labels), s.shots)
    assert r.confusion.accuracy == pytest.approx(identify(g, gl, q, ql, shots=s.shots)["accuracy"])
    assert r.confusion.matrix.sum() == 36 - 3 * s.shots
    lab = np.asarray(r.data.labels)
    i, j = np.triu_indices(36, 1)
    from sklearn.metrics import roc_auc_score

    sim = (r.data.embeddings[i] * r.data.embeddings[j]).sum(1)
    assert r.roc.auc == pytest.approx(roc_auc_score(lab[i] == lab[j], sim))
    assert r.roc.pairs == len(i) and r.roc.fpr[0] == 0 and r.roc.tpr[-1] == 1
    # Per-model points: one per model, at the model's mean embedding.
    s.level = "models"
    s.wait()
    assert s.result.points.shape == (3, 2) and s.result.data is r.data or np.array_equal(
        s.result.data.embeddings, r.data.embeddings)


def test_similarity_is_in_dendrogram_order():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 16))
    centres[1] = centres[0] + 0.05 * rng.normal(size=16)  # a and b alike, far from c, d
    e = np.concatenate([c + 0.01 * rng.normal(size=(5, 16)) for c in centres])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = [n for n in "acbd" for _ in range(5)]  # b is third in label order
    sim = maps.similarity(e.astype(np.float32), labels)
    pos = {m: k for k, m in enumerate(sim.models)}
    assert abs(pos["a"] - pos["c"]) == 1  # label 'c' holds centre 1, the twin of 'a'


def test_cache_reopens_without_embedding_and_a_changed_file_is_a_new_key(roots):
    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    cached = list((roots / "runs" / "embeddings").glob("*.npz"))
    assert len(cached) == 1
    t0 = time.perf_counter()
    again = folder_state(roots, folder=str(roots / "set"))
    assert time.perf_counter() - t0 < 10
    assert again.result.data == s.result.data
    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(roots / "set" / "m2" / "000.png")
    folder_state(roots, folder=str(roots / "set"))
    assert len(list((roots / "runs" / "embeddings").glob("*.npz"))) == 2



def same_views(a, b) -> bool:
    return (np.array_equal(a.points, b.points) and a.point_labels == b.point_labels
            and a.point_rows == b.point_rows and np.array_equal(a.means, b.means)
            and a.similarity.models == b.similarity.models
            and np.array_equal(a.similarity.matrix, b.similarity.matrix)
            and np.array_equal(a.roc.fpr, b.roc.fpr) and a.roc.auc == b.roc.auc
            and np.array_equal(a.confusion.matrix, b.confusion.matrix)
            and a.confusion.accuracy == b.confusion.accuracy and a.notes == b.notes)


def test_views_are_read_back_for_the_same_images_and_settings_only(roots):
    write_models(roots / "set")
    first = folder_state(roots, folder=str(roots / "set"))
    views = roots / "runs" / "embeddings" / "views"
    assert not first.result.cached and len(list(views.glob("*.npz"))) == 1
    again = folder_state(roots, folder=str(roots / "set"))
    assert again.result.cached and same_views(again.result, first.result)
    assert again.result.data == first.result.data
    # Another setting is another computation; going back reads the first one again.
    again.shots = 5
    again.wait()
    assert not again.result.cached and again.result.confusion.shots == 5
    assert len(list(views.glob("*.npz"))) == 2
    again.shots = 10
    again.wait()
    assert again.result.cached and same_views(again.result, first.result)
    # Changed image bytes: new embeddings, so new views.
    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(roots / "set" / "m1" / "000.png")
    changed = folder_state(roots, folder=str(roots / "set"))
    assert not changed.result.cached and len(list(views.glob("*.npz"))) == 3


def small_set(models: int = 3, per: int = 6, seed: int = 0) -> EmbeddingSet:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(models * per, 8)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = [f"m{i}" for i in range(models) for _ in range(per)]
    return EmbeddingSet(e, [f"{i}.png" for i in range(len(e))], labels)


def test_the_views_cache_keeps_the_newest_files_and_deletes_nothing_else(tmp_path):
    from explorer.embedding_cache import save_views, views_key, views_path

    runs = tmp_path / "runs"
    views = derive(small_set()).views()
    folder = views_path(runs, "0" * 32).parent
    folder.mkdir(parents=True)
    # Neighbours that are not this cache's files: a note, a file named like a key in
    # capitals, a sub-folder and a link named like keys, the link's target outside,
    # and an embeddings cache file (named like a views key) in the folder above.
    outside = tmp_path / "precious.npz"
    outside.write_bytes(b"keep me")
    others = [folder / "notes.npz", folder / ("A" * 32 + ".npz"), folder / ("b" * 32 + ".npz"),
              folder / ("c" * 32 + ".npz"), folder.parent / ("d" * 32 + ".npz"), outside]
    others[0].write_bytes(b"x")
    others[1].write_bytes(b"x")
    others[2].mkdir()
    others[3].symlink_to(outside)
    others[4].write_bytes(b"x")
    base = time.time_ns() - 10**12  # explicit ages: the file system's clock may tie
    paths = []
    for i in range(7):
        path = views_path(runs, views_key([("set", "k", ())], "images", "pca", i + 1, 0))
        save_views(path, views, keep=4)
        os.utime(path, ns=(base + i * 10**9,) * 2)
        paths.append(path)
    assert [p.exists() for p in paths] == [False] * 3 + [True] * 4
    assert all(p.exists() or p.is_symlink() for p in others)
    assert outside.read_bytes() == b"keep me"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in paths[3:]] + [p.name for p in others[:4]])


def test_a_views_file_read_again_counts_as_newest(tmp_path, monkeypatch):
    from explorer import embedding_cache
    from explorer.embeddings import derive_cached

    monkeypatch.setattr(embedding_cache, "MAX_VIEWS", 2)
    data, parts, runs = small_set(), [("set", "k", ())], tmp_path / "runs"
    base = time.time_ns() - 10**12
    files = {}
    for i, shots in enumerate((1, 2)):
        derive_cached(data, parts, runs, shots=shots)
        files[shots] = embedding_cache.views_path(
            runs, embedding_cache.views_key(parts, "images", "pca", shots, 0))
        os.utime(files[shots], ns=(base + i * 10**9,) * 2)
    assert derive_cached(data, parts, runs, shots=1).cached  # the older one, used again
    derive_cached(data, parts, runs, shots=3)  # a third: one must go, the unused one
    assert files[1].exists() and not files[2].exists()
    assert len(list(files[1].parent.glob("*.npz"))) == 2
    assert not derive_cached(data, parts, runs, shots=2).cached  # computed again


@pytest.mark.parametrize("damage", ["garbage", "pickled", "other rows"])
def test_a_damaged_views_file_is_computed_again(roots, damage):
    write_models(roots / "set")
    first = folder_state(roots, folder=str(roots / "set"))
    (path,) = (roots / "runs" / "embeddings" / "views").glob("*.npz")
    if damage == "garbage":
        path.write_bytes(b"PK\3\4 not a zip")
    elif damage == "pickled":  # an object array would need allow_pickle: refused unread
        arrays = dict(np.load(path))
        arrays["point_labels"] = np.array(list(arrays["point_labels"]), dtype=object)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    else:  # views of other embeddings: points' labels are not their rows' labels
        arrays = dict(np.load(path))
        arrays["point_labels"] = arrays["point_labels"][::-1].copy()
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    with pytest.raises(FpxError):
        load_views(path, first.result.data.labels)
    again = folder_state(roots, folder=str(roots / "set"))
    assert again.message == "" and not again.result.cached
    assert same_views(again.result, first.result)
    assert load_views(path, first.result.data.labels)["point_labels"] == first.result.point_labels


def test_colouring_changes_only_the_colours(roots):
    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    before = s.result
    s.color_by = "upsampling"
    assert s.result is before and s.colours() == ["unrecorded"] * 36
    s.color_by = "model"
    assert s.colours()[:12] == ["m0"] * 12


def test_clicked_point_shows_its_image_spectrum_and_nearest_models(roots):
    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    s.selected = 13  # m1's second image
    d = s.detail
    assert d.model == "m1" and d.image.shape == (3, SIZE, SIZE)
    assert d.report.spectrum.shape == (SIZE, SIZE) and len(d.nearest) == 3
    assert d.nearest[0][0] == "m1"
    assert d.model_report.images == 12


def test_uploads_become_a_model_and_can_join_the_gallery(roots):
    write_models(roots / "set")
    files = [(f"x{i}.png", (roots / "set" / "m0" / f"{i:03d}.png").read_bytes())
             for i in range(4)]
    s = folder_state(roots, folder=str(roots / "set"))
    s.add_uploads(files)
    s.wait()
    assert s.message == "" and "upload" in s.result.models
    assert s.add_to_gallery() == ["m0", "m1", "m2", "upload"]
    saved = EmbeddingSet.load(gallery_folder(roots / "runs", DEFAULT_EXTRACTOR) / "upload.npz")
    assert saved.labels == ("upload",) * 4
    # the files record the extractor, as fpx embed's do (fpx verify --features auto)
    assert saved.extractor == s.result.data.extractor == extractor_identity(DEFAULT_EXTRACTOR)


def test_hybrid_features_are_what_fpx_verify_hybrid_compares_and_switch_without_embedding(
        roots, monkeypatch, shipped_dim):
    from core.extractor.hybrid import hybrid_set
    from core.extractor.metric import find_metric

    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    plain = s.result
    calls = []
    monkeypatch.setattr(s, "_embed", lambda gen: calls.append(gen))  # must not be called
    s.features = "hybrid"
    s.wait()
    r = s.result
    assert s.message == "" and calls == []
    # the shipped extractor's hybrid through its synthetic metric, as the command does
    want = hybrid_set(plain.data, find_metric(DEFAULT_EXTRACTOR))
    assert r.data.embeddings.shape == want.embeddings.shape == (36, 100)
    assert np.allclose(r.data.embeddings, want.embeddings, atol=1e-5)
    assert r.data.paths == plain.data.paths and r.data.labels == plain.data.labels
    assert not same_views(r, plain)  # its own views (and cache key)
    assert list(r.similarity.models) and r.roc.pairs == plain.roc.pairs
    assert r.features == "hybrid" and plain.features == "embedding"
    assert r.source.embeddings.shape == (36, shipped_dim)
    # the gallery still gets the embeddings, not the hybrid features, from the result
    # on screen even while another computation has begun, into the gallery of the
    # extractor that made them
    assert Path(r.extractor).resolve() == Path(DEFAULT_EXTRACTOR).resolve()
    snapshot, s._embedded = s._embedded, None
    assert s.add_to_gallery() == ["m0", "m1", "m2"]
    s._embedded = snapshot
    saved = EmbeddingSet.load(gallery_folder(roots / "runs", DEFAULT_EXTRACTOR) / "m1.npz")
    assert saved.embeddings.shape == (12, shipped_dim)
    assert np.array_equal(saved.embeddings, plain.data.embeddings[12:24])
    s.features = "embedding"
    s.wait()
    assert s.result.cached and same_views(s.result, plain)


def test_spectra_are_made_when_the_runs_folder_cannot_be_written(roots, monkeypatch):
    from explorer import attribution_features as af

    write_models(roots / "set", models=2, images=3)
    paths = sorted(str(p) for p in (roots / "set").rglob("*.png"))

    def refuse(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(af.np, "save", refuse)
    got = af.cached_spectra(paths, roots / "runs")
    assert got.shape == (6, 3 * af.GRID ** 2) and np.isfinite(got).all()
    assert not list((roots / "runs").rglob("*.tmp"))


@pytest.mark.parametrize("case", ["one model", "outside roots", "missing", "not an image",
                                  "unfinished run", "corrupt run", "two points"])
def test_bad_input_is_a_message(roots, case, monkeypatch):
    write_models(roots / "set", models=2 if case == "two points" else 3)
    params = {"folder": str(roots / "set")}
    if case == "one model":
        write_models(roots / "one", models=1)
        params["folder"] = str(roots / "one")
    elif case == "outside roots":
        params["folder"] = "/"
    elif case == "missing":
        params["folder"] = str(roots / "nowhere")
    s = EmbeddingsState(runs=roots / "runs", autostart=False, entries=[], real=False,
                        **params)
    if case == "not an image":
        s.uploads = [("notes.png", b"these are not pixels")]
    if case in ("unfinished run", "corrupt run"):
        run = roots / "runs" / "train" / "ext"
        run.mkdir(parents=True)
        if case == "corrupt run":
            (run / "extractor.json").write_text("{not json")
            (run / "extractor.safetensors").write_bytes(b"\0" * 64)
        else:
            (run / "extractor.json").write_text(json.dumps({"format": "fpx.extractor/1"}))
        s.extractors = {**s.extractors, "my run": run}
        s.param.extractor.objects = list(s.extractors)
        s.extractor = "my run"
    if case == "two points":
        s.level = "models"
    s.start()
    s.wait()
    expected = {"one model": "holds 1 model folder", "outside roots": "outside the folders",
                "missing": "no such folder", "not an image": "notes.png: not a usable image",
                "unfinished run": "unfinished or damaged extractor run",
                "corrupt run": "is corrupt", "two points": "at least 3 points"}[case]
    assert expected in s.message and "\n" not in s.message
    assert not s.busy


class FakeUMAP:
    """Stands in for ``umap.UMAP`` (umap-learn is not a dependency): a fixed linear
    projection onto two axes, recording how it was made."""

    made: list[dict] = []

    def __init__(self, **kwargs):
        FakeUMAP.made.append(kwargs)

    def fit_transform(self, x):
        return fake_projection(x)


def fake_projection(x: np.ndarray) -> np.ndarray:
    axes = np.random.default_rng(7).normal(size=(x.shape[1], 2))
    return np.asarray(x) @ axes + 100.0  # offset: no other method's output


def fake_umap_module(monkeypatch):
    import types

    module = types.ModuleType("umap")
    module.UMAP = FakeUMAP
    FakeUMAP.made.clear()
    monkeypatch.setitem(sys.modules, "umap", module)
    return module


def test_the_map_uses_umap_when_the_package_is_there(roots, monkeypatch):
    fake_umap_module(monkeypatch)
    assert maps.available_methods() == ["pca", "tsne", "umap"]
    data = small_set(models=3, per=6)
    xy = maps.project(data.embeddings, "umap", seed=3)
    assert np.array_equal(xy, fake_projection(data.embeddings.astype(np.float64)))
    assert FakeUMAP.made[0] == {"n_neighbors": 15, "random_state": 3}
    # The tab offers it and draws with it (and its views are cached under their own key).
    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    assert "umap" in s.param.method.objects
    pca = s.result.points
    s.method = "umap"
    s.wait()
    assert s.message == "" and s.result.method == "umap" and not s.result.cached
    expected = fake_projection(s.result.data.embeddings.astype(np.float64))
    assert np.allclose(s.result.points, expected) and not np.allclose(s.result.points, pca)
    assert FakeUMAP.made[1] == {"n_neighbors": 15, "random_state": 0}  # 36 points
    s.method = "pca"
    s.wait()
    s.method = "umap"
    s.wait()
    assert s.result.cached and np.allclose(s.result.points, expected)
    assert len(FakeUMAP.made) == 2  # read back, not projected again


def test_without_umap_the_option_is_absent_and_asking_for_it_is_a_message(roots,
                                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    assert maps.available_methods() == ["pca", "tsne"]
    with pytest.raises(FpxError, match="UMAP needs the umap-learn package"):
        maps.project(small_set().embeddings, "umap")
    write_models(roots / "set")
    s = folder_state(roots, folder=str(roots / "set"))
    assert "umap" not in s.param.method.objects
    with pytest.raises(ValueError):
        s.method = "umap"  # the selector refuses a method it does not offer
    assert s.result.method == "pca"


def test_derive_needs_two_models_for_the_tasks_but_still_maps():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(6, 8)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    r = derive(EmbeddingSet(e, [f"{i}.png" for i in range(6)], ["a"] * 6))
    assert r.points.shape == (6, 2) and r.similarity is None and r.roc is None
    assert any("at least 2 models" in n for n in r.notes)


# --- the shipped zoo -----------------------------------------------------------------

def zoo_embeddable(tmp: Path) -> str | None:
    """Why fpx embed (the shipped extractor and core's size policy) cannot embed the
    shipped 32-px zoo, or None when it can."""
    folder = tmp / "probe"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.png").write_bytes((SHIPPED_ZOO / "real" / f"{i:05d}.png").read_bytes())
    try:
        embed_folders(load_extractor(DEFAULT_EXTRACTOR), [folder], notify=lambda p, r: None)
    except FpxError as err:
        return f"fpx embed refuses the zoo's 32-px images: {str(err).splitlines()[0]}"
    return None


def shared_runs(tmp_path_factory) -> Path:
    """One runs folder for the whole test session: the zoo is embedded (and cached) once
    for the state, Attribute and browser tests."""
    return tmp_path_factory.getbasetemp() / "fpx-zoo-runs"


@pytest.mark.slow
def test_zoo_embeddings_reproduce_fpx_embed(tmp_path, tmp_path_factory):
    why = zoo_embeddable(tmp_path)
    if why:
        pytest.skip(why)
    from core.cli import main

    out = tmp_path / "zoo.npz"
    assert main(["embed", str(SHIPPED_ZOO / "samples"), "--out", str(out)]) == 0
    cli = EmbeddingSet.load(out)
    s = EmbeddingsState(runs=shared_runs(tmp_path_factory), autostart=False, real=False)
    assert s.extractor == SHIPPED
    s.start()
    s.wait()
    assert s.message == ""
    assert np.array_equal(s.result.data.embeddings, cli.embeddings)
    assert s.result.data.labels == cli.labels
    assert len(s.result.models) == 12 and s.result.roc.auc > 0.5
    s.color_by = "upsampling"
    assert set(s.colours()) >= {"transposed", "nearest", "bilinear"}


def test_the_tab_computes_when_first_shown_not_when_the_session_is_built():
    import panel as pn

    from explorer.views.embeddings import when_shown

    calls = []
    tabs = pn.Tabs(("lab", pn.pane.HTML("x")),
                   ("embeddings", pn.Column(when_shown(lambda: calls.append(1)))),
                   dynamic=True)
    tabs.get_root()
    assert calls == []  # built and rendered, the tab not opened
    tabs.active = 1
    assert calls == [1]
    tabs.active = 0
    tabs.active = 1
    assert calls == [1]  # once
