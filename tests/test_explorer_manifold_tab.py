"""Manifold tab state: fpx artifacts' triples and artifact spectrum, cached; fpx
attribute's classifiers on request, cached; bad input as a message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import read_folder
from core.zoo.shipped import SHIPPED_ZOO
from explorer import manifold_view_state as mvs
from explorer.manifold_view_state import ManifoldState

ENTRIES = ["gan_nearest", "vae_tconv"]


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("FPX_DATA_ROOTS", str(tmp_path))
    s = ManifoldState(runs=tmp_path / "runs", entries=ENTRIES)
    s.compute()
    s.wait()
    return s


def test_triple_is_a_sample_its_nearest_real_crop_and_their_difference(state):
    assert state.message == "" and state.artifacts.models == ["real", *ENTRIES]
    v = state.view
    assert v.model == "gan_nearest" and v.index == 0
    sample = read_folder(SHIPPED_ZOO / "samples" / "gan_nearest", 32)[0][0]
    assert torch.allclose(v.sample, sample, atol=1 / 127.5)
    # The neighbour is a real crop of the zoo, the nearest in pixels of all reference crops.
    real = read_folder(SHIPPED_ZOO / "real", 32)[0]
    d = ((real - v.sample).flatten(1) ** 2).sum(1)
    assert torch.allclose(v.neighbour, real[d.argmin()], atol=2 / 127.5)
    # rgb space holds pixels in [0, 1]: half the [-1, 1] distance.
    assert v.distance == pytest.approx(float(d.min().sqrt()) / 2, rel=1e-3)
    assert v.artifact.abs().max() <= 1 and v.gain > 0
    assert v.spectrum.images == 200 and v.spectrum.spectrum.shape == (32, 32)


def test_choosing_a_sample_redraws_and_reopening_reads_the_cache(state, tmp_path):
    state.model, state.index = "vae_tconv", 7
    assert state.view.model == "vae_tconv" and state.view.index == 7
    assert len(list((tmp_path / "runs" / "manifold").glob("*.npz"))) == 1
    again = ManifoldState(runs=tmp_path / "runs", entries=ENTRIES)
    again.compute()
    again.wait()
    assert "read from cache" not in again.message
    assert np.array_equal(again.artifacts.image_artifacts, state.artifacts.image_artifacts)


def test_bad_input_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FPX_DATA_ROOTS", str(tmp_path))
    (tmp_path / "models" / "real").mkdir(parents=True)
    (tmp_path / "models" / "other").mkdir()
    s = ManifoldState(runs=tmp_path / "runs", entries=[])
    for folder, expected in (("", "choose zoo entries"), ("/", "outside the folders"),
                             (str(tmp_path / "models"), "'real' is reserved")):
        s.folder = folder
        s.compute()  # setting the same folder again is no event
        s.wait()
        assert expected in s.message, (folder, s.message)
        assert not s.busy
    s.run_attribution()
    assert "compute the artifacts first" in s.message


@pytest.mark.slow
def test_attribution_is_trained_on_request_and_cached(state, tmp_path, monkeypatch):
    monkeypatch.setattr(mvs, "ATTRIBUTION_EPOCHS", 1)
    state.run_attribution()
    state.wait()
    r = state.attribution
    assert state.message == "" and set(r) >= {"artifacts", "raw images"}
    for kind in ("artifacts", "raw images"):
        conf = np.asarray(r[kind]["confusion"])
        assert conf.shape == (3, 3) and conf.sum() == r[kind]["n_test"]
        assert 0 <= r[kind]["accuracy_mean"] <= 1
    again = ManifoldState(runs=tmp_path / "runs", entries=ENTRIES)
    again.compute()
    again.wait()
    assert again.attribution == r
