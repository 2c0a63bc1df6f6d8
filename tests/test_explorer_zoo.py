"""The Zoo tab's state and view over the shipped zoo samples."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from core.zoo.shipped import read_manifest
from explorer.zoo import REAL, ZooState, tile


@pytest.fixture(scope="module")
def state():
    return ZooState()


def test_entries_are_the_shipped_ones_and_the_first_is_shown(state):
    from core.zoo import DEFAULT_ZOO

    assert state.param.entry.objects == [e.name for e in DEFAULT_ZOO]
    assert state.param.reference.objects[0] == REAL
    r = state.result
    assert r.entry == DEFAULT_ZOO[0].name and r.reference == REAL
    assert r.report.images == 200 and r.ref_report.images == 1000
    assert r.report.spectrum.shape == (32, 32) and r.samples.shape == (3, 128, 128)
    assert torch.allclose(r.difference, r.report.spectrum - r.ref_report.spectrum)
    # the tab's distance is the one the manifest recorded (same samples, same real crops,
    # channel-averaged here, so close rather than equal)
    assert abs(r.distance_db - r.info.quality.spectral_distance_db) < 0.5


def test_choices_recompute_and_the_flow_shows_its_squeeze_grid(state):
    state.entry = "flow_glow"
    assert state.result.entry == "flow_glow"
    # three (un)squeeze levels from 4x4: the lattice test finds the design's period 8
    assert state.result.report.upsampling_factor == 8
    assert state.result.ref_report.upsampling_factor is None  # the photos show no grid
    state.reference = "gan_tconv"
    assert state.result.reference == "gan_tconv" and state.result.ref_report.images == 200
    state.residual = "blur"
    assert state.result.report.residual == "blur"
    state.reference, state.residual = REAL, "none"


def test_a_missing_or_corrupt_sample_set_gives_a_message(tmp_path):
    empty = ZooState(folder=tmp_path)
    assert empty.result is None and "no zoo samples" in empty.message
    (tmp_path / "manifest.json").write_text("{not json")
    assert "corrupt" in ZooState(folder=tmp_path).message
    # a complete manifest (the shipped one's first entry, renamed) whose samples are absent
    shipped = read_manifest()
    first = next(iter(shipped.entries.values()))
    ghost_entry = dataclasses.replace(first, entry=dataclasses.replace(first.entry,
                                                                       name="ghost"),
                                      folder="samples/ghost")
    manifest = dataclasses.replace(shipped, entries={"ghost": ghost_entry})
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    ghost = ZooState(folder=tmp_path)
    assert ghost.result is None and "cannot show ghost" in ghost.message
    # an incomplete one is refused as a whole, naming what is missing
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"format": "fpx.zoo_samples/1", "size": 32, "real": {"folder": "real"},
         "entries": {"ghost": {"folder": "samples/ghost"}}}))
    partial = ZooState(folder=tmp_path)
    assert partial.result is None and "no zoo samples" in partial.message
    assert "missing ['code_version', 'commands', 'count', 'quality']" in partial.message


def test_tile_lays_out_row_by_row_and_pads():
    images = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    grid = tile(images, grid=2)
    assert grid.shape == (3, 4, 4)
    assert grid[0, 0, 0] == 0 and grid[0, 0, 2] == 1 and grid[0, 2, 0] == 2
    assert grid[0, 2, 2] == 0  # padding


def test_view_draws_the_result_into_its_figures():
    from explorer.readout import zoo_markdown as zoo_readout
    from explorer.views.zoo import ZooView

    view = ZooView()
    view.state.entry = "gan_nearest"
    image = view.fig["entry"].image.data["image"][0]
    assert image.shape == (32, 32)
    assert torch.allclose(torch.as_tensor(image), view.state.result.report.spectrum)
    text = zoo_readout(view.state.result)
    assert "gan_nearest" in text and "nearest upsampling" in text
    assert zoo_readout(None) == "No zoo samples to show."
