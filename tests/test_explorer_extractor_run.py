"""A real extractor run of the Train tab (``fpx train --preset tiny`` as its own process,
in the runs folder the Train tab writes) becomes choosable in the Embeddings tab once it
has finished, and embeds the shipped zoo exactly as ``fpx embed --extractor`` does."""

from __future__ import annotations

import json
import time

import numpy as np
import panel as pn
import pytest

from core.cli import main
from core.extractor import DEFAULT_EXTRACTOR, EmbeddingSet
from core.zoo.shipped import SHIPPED_ZOO
from explorer import runs as R
from explorer.embeddings import EmbeddingsState
from explorer.image_sets import SHIPPED
from explorer.training import TrainState
from explorer.views.embeddings import EmbeddingsView


def extractor_options(runs) -> list[str]:
    """The options of the Embeddings tab's extractor list, as a new session shows it."""
    view = EmbeddingsView(state=EmbeddingsState(runs=runs, autostart=False))
    select = [w for w in view.controls.objects
              if isinstance(w, pn.widgets.Select) and w.label == "Extractor"]
    assert len(select) == 1
    return list(select[0].options)


@pytest.mark.slow
def test_a_finished_tiny_extractor_run_is_listed_and_embeds_the_zoo(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv(R.RUNS_ENV, str(runs))
    train = TrainState(root=runs)
    train.kind, train.extractor_preset, train.device = "extractor", "tiny", "cpu"
    run = train.start()
    assert run is not None, train.message
    assert run.state == "running"
    # While it runs it is no extractor to choose (unless it ended meanwhile).
    assert run.name not in extractor_options(runs) or R.read_run(run.folder).state != "running"
    deadline = time.monotonic() + 300
    while (info := R.read_run(run.folder)).state == "running":
        assert time.monotonic() < deadline, (run.folder / R.LOG).read_text()[-2000:]
        time.sleep(0.5)
    assert info.state == "finished", (run.folder / R.LOG).read_text()[-2000:]
    folder = info.train_dir / "extractor"
    assert (folder / "extractor.safetensors").is_file()

    assert extractor_options(runs) == [SHIPPED, run.name]
    s = EmbeddingsState(runs=runs, autostart=False, real=False)
    assert s.extractors[run.name] == folder
    s.extractor = run.name
    s.start()
    s.wait()
    assert s.message == "", s.message
    r = s.result
    assert r.data.embeddings.shape == (2400, 16)  # the tiny preset's 16-d embedding
    assert len(r.models) == 12 and r.similarity is not None and r.confusion is not None

    # The same embeddings as the CLI with that run's extractor.
    out = tmp_path / "zoo.npz"
    assert main(["embed", str(SHIPPED_ZOO / "samples"), "--extractor", str(folder),
                 "--device", "cpu", "--out", str(out)]) == 0
    cli = EmbeddingSet.load(out)
    assert np.array_equal(r.data.embeddings, cli.embeddings) and r.data.labels == cli.labels
    assert len(list((runs / "embeddings").glob("*.npz"))) == 1  # cached under its runs



@pytest.mark.slow
def test_held_out_bank_samples_are_made_once_and_coloured_by_their_design(tmp_path,
                                                                          monkeypatch,
                                                                          shipped_dim):
    from explorer import image_sets

    monkeypatch.setattr(image_sets, "BANK_MODELS", 3)
    monkeypatch.setattr(image_sets, "BANK_IMAGES", 8)
    preset = image_sets.bank_preset(DEFAULT_EXTRACTOR)  # the shipped extractor's
    runs = tmp_path / "runs"
    heard = []
    s = EmbeddingsState(runs=runs, autostart=False, entries=[], real=False, bank="seeds")
    s.param.watch(lambda e: heard.append(e.new), "status")
    s.start()
    s.wait()
    assert s.message == "", s.message
    folder = runs / "bank_samples" / f"{preset}-seeds-3x8"
    record = json.loads((folder / "bank.json").read_text())
    assert record["heldout"] == "seeds" and record["models"] == 3
    assert record["images_per_model"] == 8
    assert s.result.data.embeddings.shape == (24, shipped_dim) and len(s.result.models) == 3
    # the gallery names come with the result they name (not from a newer computation)
    assert dict(s.result.gallery_names) == {m: f"bank-seeds-{m}" for m in s.result.models}
    assert any("fitting models" in h for h in heard) and any("sampling" in h for h in heard)
    assert not list(folder.parent.glob("*.part-*"))  # built aside, renamed when whole
    s.color_by = "upsampling"
    specs = {p.parent.name: json.loads(p.read_text())["up"][0]["upsampling"]
             for p in folder.glob("*/spec.json")}
    assert s.colours() == [specs[m] for m in s.result.point_labels]
    # Reopened: the samples are not made again, the views are read back.
    stamp = (folder / "bank.json").stat().st_mtime_ns
    again = EmbeddingsState(runs=runs, autostart=False, entries=[], real=False, bank="seeds")
    again.start()
    again.wait()
    assert again.result.cached and (folder / "bank.json").stat().st_mtime_ns == stamp
    assert again.result.data == s.result.data
