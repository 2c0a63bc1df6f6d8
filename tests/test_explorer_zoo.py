"""The Zoo tab's state and view over the shipped zoo samples."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from core.zoo.shipped import read_manifest
from explorer.zoo import REAL, ZooState, tile


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return ZooState(runs=tmp_path_factory.mktemp("no_runs"))


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
    empty = ZooState(folder=tmp_path, runs=tmp_path / "runs")
    assert empty.result is None and "no zoo samples" in empty.message
    (tmp_path / "manifest.json").write_text("{not json")
    assert "corrupt" in ZooState(folder=tmp_path, runs=tmp_path / "runs").message
    # a complete manifest (the shipped one's first entry, renamed) whose samples are absent
    shipped = read_manifest()
    first = next(iter(shipped.entries.values()))
    ghost_entry = dataclasses.replace(first, entry=dataclasses.replace(first.entry,
                                                                       name="ghost"),
                                      folder="samples/ghost")
    manifest = dataclasses.replace(shipped, entries={"ghost": ghost_entry})
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    ghost = ZooState(folder=tmp_path, runs=tmp_path / "runs")
    assert ghost.result is None and "cannot show ghost" in ghost.message
    # an incomplete one is refused as a whole, naming what is missing
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"format": "fpx.zoo_samples/1", "size": 32, "real": {"folder": "real"},
         "entries": {"ghost": {"folder": "samples/ghost"}}}))
    partial = ZooState(folder=tmp_path, runs=tmp_path / "runs")
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


def _used_run(root, name: str, entry: str, used: bool = True):
    """A finished generator run folder as the Train tab leaves it after "Use this run",
    its sample set made from the shipped one's ``entry`` (no training here)."""
    import shutil
    import time

    from core.zoo.shipped import SHIPPED_ZOO
    from explorer import runs as R

    shipped = read_manifest()
    folder = root / name
    (folder / "zoo" / "samples").mkdir(parents=True)
    shutil.copytree(SHIPPED_ZOO / shipped.entries[entry].folder,
                    folder / "zoo" / "samples" / entry)
    shutil.copytree(SHIPPED_ZOO / shipped.real.folder, folder / "zoo" / "real")
    one = dataclasses.replace(shipped, entries={entry: shipped.entries[entry]})
    (folder / "zoo" / "manifest.json").write_text(one.to_json())
    R.write_record(folder, {"name": name, "kind": "zoo", "target": entry,
                            "settings": {"steps": 10}, "train_dir": entry, "args": [],
                            "command_text": f"fpx zoo train {entry}", "created": time.time(),
                            "used": used})
    (folder / R.SUMMARY).write_text(json.dumps({"step": 10}))
    return folder


def test_used_runs_join_the_entries_labelled_and_leave_when_gone(tmp_path):
    import shutil

    from explorer.zoo_runs import LABEL

    runs = tmp_path / "runs"
    a = _used_run(runs, "gan_nearest-20260101-000000-abcd", "gan_nearest")
    _used_run(runs, "gan_tconv-20260101-000001-abcd", "gan_tconv", used=False)
    broken = _used_run(runs, "vae_tconv-20260101-000002-abcd", "vae_tconv")
    (broken / "zoo" / "manifest.json").write_text("{")
    s = ZooState(runs=runs)
    label = LABEL + a.name
    shipped = list(read_manifest().entries)
    assert s.param.entry.objects == [*shipped, label]  # not the unused, nor the broken
    s.entry = label
    r = s.result
    assert r.entry == label and r.info.entry.name == "gan_nearest" and s.message == ""
    assert r.report.images == 200 and r.ref_report.images == 1000
    s.reference = "gan_nearest"  # the very same samples: no difference
    assert s.result.distance_db == pytest.approx(0, abs=1e-6)
    assert s.refresh_entries() is False  # nothing changed: no event
    s.entry, s.reference = "gan_tconv", label
    assert s.result.ref_report.images == 200
    shutil.rmtree(a)  # deleted in the Train tab: gone from both lists
    assert s.refresh_entries() and s.param.entry.objects == shipped
    assert s.entry == "gan_tconv" and s.reference == REAL and s.result.reference == REAL
    s.entry = label  # a stale choice (a page not yet refreshed) computes nothing
    assert s.result.entry == "gan_tconv"
