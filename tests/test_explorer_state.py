"""The Spectrum Lab's state as plain Python: no panel, no browser."""

import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.specs import GeneratorSpec
from explorer import sources
from explorer.export import lab_png
from explorer.state import CUSTOM, PRESETS, LabState

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab():
    return LabState()


def png_bytes(h=160, w=200, seed=0):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_default_lab_computes_one_result():
    s = LabState()
    r = s.result
    assert s.message == ""
    assert r.input_crop.shape == r.output_crop.shape == (3, 128, 128)
    assert r.generated.images == 8 and r.real.images == 64  # at least 8 crops of 128x128
    assert r.generated.spectrum.shape == r.real.spectrum.shape == r.difference.shape
    assert torch.allclose(r.difference, r.generated.spectrum - r.real.spectrum)
    assert r.real.upsampling_factor is None  # photos have no grid
    assert r.spec.total_factor == 4 and r.generated.upsampling_factor == 4


@pytest.mark.parametrize("name,value", [
    ("upsampling", "nearest"), ("factor", 4), ("kernel", 3), ("blocks", 1),
    ("norm", "instance"), ("activation", "tanh"), ("order", "pre"), ("seed", 7),
    ("residual", "blur"), ("window", "hann"),
])
def test_changing_a_parameter_changes_the_generated_spectrum(name, value):
    s = LabState()
    before = s.result.generated.spectrum
    setattr(s, name, value)
    assert s.message == ""
    assert not torch.allclose(s.result.generated.spectrum, before)


def test_crop_size_changes_the_spectrum_size():
    s = LabState(crop_size=64, blocks=1)
    assert s.result.generated.spectrum.shape == (64, 64)
    s.crop_size = 256
    assert s.result.generated.spectrum.shape == (256, 256)


def test_same_design_same_result():
    a, b = LabState(seed=3), LabState(seed=3)
    assert torch.equal(a.result.generated.spectrum, b.result.generated.spectrum)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_set_the_expected_specs(name):
    s = LabState()
    s.preset = name
    want = PRESETS[name]
    block = s.result.spec.up[0]
    assert len(s.result.spec.up) == want["blocks"]
    for field in ("upsampling", "factor", "norm", "activation", "order"):
        assert getattr(block, field) == want[field]
    if "kernel" in want:
        assert block.kernel == want["kernel"]
    assert s.result.spec.name == name and s.preset == name


def test_checkerboard_preset_is_detected_as_factor_2():
    s = LabState()
    s.preset = "Checkerboard k3 s2"
    assert s.result.spec.up[0].uneven_overlap
    assert s.result.generated.upsampling_factor == 2


def test_editing_a_control_after_a_preset_marks_the_design_custom():
    s = LabState()
    s.preset = "Pixel shuffle"
    s.seed = 5
    assert s.preset == CUSTOM and s.result.spec.seed == 5
    assert s.result.spec.up[0].upsampling == "pixelshuffle"


def test_spec_exported_and_loaded_gives_the_same_view():
    a = LabState(upsampling="bicubic", factor=4, blocks=1, norm="group", activation="silu",
                 order="pre", seed=11)
    text = a.spec_json()
    b = LabState()
    b.load_spec_json(text)
    assert b.message == ""
    assert b.spec == a.spec
    assert torch.equal(b.result.generated.spectrum, a.result.generated.spectrum)
    assert torch.equal(b.result.output_crop, a.result.output_crop)


@pytest.mark.parametrize("text,reason", [
    ("{not json", "not valid JSON"),
    (json.dumps({"up": [{"upsampling": "warp"}]}), "upsampling"),
    (GeneratorSpec(up=({"upsampling": "nearest"}, {"upsampling": "bilinear"}), down=2)
     .to_json(), "equal up-blocks"),
    (GeneratorSpec(up=({"upsampling": "nearest"},), down=0).to_json(), "down-blocks"),
    (GeneratorSpec(up=({"upsampling": "nearest", "factor": 3},), down=1).to_json(),
     "factor 2 or 4"),
    (GeneratorSpec(up=({"upsampling": "transposed", "kernel": 11},), down=1).to_json(),
     "outside the lab's range"),
])
def test_unloadable_specs_leave_a_message_and_change_nothing(text, reason):
    s = LabState()
    before = s.result
    s.load_spec_json(text)
    assert reason in s.message and s.message.startswith("cannot load spec")
    assert s.result is before and s.upsampling == "transposed"


def test_a_too_deep_design_for_the_crop_says_so():
    s = LabState()
    before = s.result
    s.param.update(factor=4, blocks=3)
    assert "total factor 64" in s.message
    assert s.result is before


def test_uploaded_image_becomes_the_real_source():
    s = LabState(crop_size=64)
    s.set_upload(png_bytes(), "noise.png")
    assert s.source == "upload" and s.message == ""
    assert s.result.source.startswith("noise.png (6 tiles)")  # 160x200 holds 2x3 tiles of 64


@pytest.mark.parametrize("data,reason", [
    (b"this is not an image", "not a recognised image"),
    (png_bytes()[:200], "noise.png"),
    (b"", "the uploaded file is empty"),  # a 0-byte file, not a missing upload
])
def test_bad_uploads_are_refused_and_the_lab_keeps_working(data, reason):
    s = LabState()
    before = s.result
    s.set_upload(data, "noise.png")
    assert reason in s.message and s.message.startswith("upload refused")
    assert s.result is before and s.source == "bundled"
    s.seed = 1  # the lab keeps working on its current images
    assert s.message == "" and s.result is not before


def test_a_bad_upload_keeps_the_previous_good_upload():
    s = LabState(crop_size=64)
    s.set_upload(png_bytes(), "good.png")
    s.set_upload(b"junk", "bad.png")
    assert "upload refused" in s.message
    s.seed = 2
    assert s.result.source.startswith("good.png") and s.message == ""


def test_choosing_upload_before_uploading_keeps_the_photos():
    s = LabState()
    s.source = "upload"
    assert "no image uploaded yet" in s.message
    assert s.result.source.startswith("bundled photos")


def test_upload_smaller_than_the_crop_and_too_large_uploads(monkeypatch):
    s = LabState()
    s.set_upload(png_bytes(40, 40), "tiny.png")
    assert "smaller than the crop size 128" in s.message
    monkeypatch.setattr(sources, "MAX_UPLOAD_BYTES", 100)
    s.set_upload(png_bytes(), "big.png")
    assert "upload limit" in s.message


def test_folder_source_reads_images_only(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png_bytes(140, 140, seed=i))
    (tmp_path / "notes.txt").write_text("secret")
    (tmp_path / "fake.png").write_text("secret text, not an image")
    s = LabState(source="folder", folder=str(tmp_path))
    s.settle()
    assert s.result.source == f"{tmp_path.name}/ (3 images)"
    assert "secret" not in s.message and "fake.png" in s.message  # named skip, no content


@pytest.mark.parametrize("make,reason", [
    (lambda p: str(p / "missing"), "no such folder"),
    (lambda p: str(p), "holds no image files"),
    (lambda p: "", "type the path"),
    (lambda p: str(Path(__file__)), "no such folder"),  # a file is not a folder
])
def test_bad_folders_give_a_message_and_the_lab_keeps_its_images(tmp_path, make, reason):
    s = LabState()
    before = s.result
    s.param.update(source="folder", folder=make(tmp_path))
    s.settle()
    assert reason in s.message and "(showing bundled photos" in s.message
    s.upsampling = "bicubic"  # still working, on the last good images
    assert s.result.source == before.source and s.result.spec.up[0].upsampling == "bicubic"


def test_folder_scan_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_SCANNED_ENTRIES", 50)
    for i in range(200):
        (tmp_path / f"dir{i:03d}").mkdir()
    (tmp_path / "dir199" / "late.png").write_bytes(png_bytes())
    assert sources.first_images(tmp_path) == []  # gave up after 50 entries: no full walk
    monkeypatch.setattr(sources, "MAX_SCANNED_ENTRIES", 1000)
    assert [p.name for p in sources.first_images(tmp_path)] == ["late.png"]


def test_pin_keeps_configuration_a():
    s = LabState()
    s.pin()
    a = s.pinned
    assert s.compare_distance_db() == 0.0
    s.upsampling = "bilinear"
    assert s.pinned is a and s.result is not a
    assert s.compare_distance_db() > 1.0  # dB: a different upsampler, a different profile
    s.unpin()
    assert s.compare_distance_db() is None
    assert s.pinned is None


def test_exported_figure_is_a_png(lab):
    data = lab_png(lab.result)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(data)).size[0] > 800


def test_state_never_imports_panel():
    code = "import sys, explorer.state, explorer.export; assert 'panel' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- a folder is read off the request thread -------------------------------------------

@pytest.fixture
def gated(monkeypatch):
    """Folder loads wait for ``gate`` and record the thread they ran on."""
    gate, threads = threading.Event(), []
    real_load = sources.load_folder

    def load(target, progress=None, cancelled=None):
        threads.append(threading.current_thread())
        assert gate.wait(60)
        return real_load(target, progress, cancelled)

    monkeypatch.setattr(sources, "load_folder", load)
    sources.clear_folder_cache()
    return gate, threads


def photo_folder(path, count=3, seed=0):
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (path / f"{i}.png").write_bytes(png_bytes(140, 140, seed=seed + i))
    return path


def test_a_folder_loads_off_thread_while_the_lab_keeps_working(tmp_path, gated):
    gate, threads = gated
    folder = photo_folder(tmp_path / "photos")
    s = LabState()
    said = []
    s.param.watch(lambda e: said.append(e.new), "loading")
    s.param.update(source="folder", folder=str(folder))
    assert threads and threads[0] is not threading.main_thread()  # not this thread
    assert s.loading.startswith(f"reading {folder}") and s.message == ""
    assert s.result.source.startswith("bundled photos")  # shown meanwhile
    before = s.result
    s.seed = 5  # usable meanwhile: a change recomputes at once on the shown images
    assert s.result is not before and s.result.spec.seed == 5
    gate.set()
    s.settle()
    assert s.result.source == "photos/ (3 images)" and s.result.spec.seed == 5
    assert s.loading == "" and s.message == ""
    assert any("3 of 3 images" in text for text in said)  # progress, file by file


def test_a_loaded_folder_lands_through_the_sessions_dispatch(tmp_path):
    folder = photo_folder(tmp_path / "photos")
    sources.clear_folder_cache()
    s = LabState()
    ticks = []
    s.dispatch = ticks.append  # as a served session's next tick: queued, not run
    s.param.update(source="folder", folder=str(folder))
    s.settle()
    assert s.result.source.startswith("bundled photos") and ticks
    for tick in ticks:
        tick()
    assert s.result.source == "photos/ (3 images)" and s.loading == ""


def test_typing_another_folder_replaces_the_load(tmp_path, gated):
    gate, threads = gated
    first = photo_folder(tmp_path / "first")
    second = photo_folder(tmp_path / "second", count=2, seed=7)
    s = LabState()
    s.param.update(source="folder", folder=str(first))
    load = s._load
    s.folder = str(second)
    assert load.cancelled and s.loading.startswith(f"reading {second}")
    gate.set()
    s.settle()
    load.thread.join(60)
    assert s.result.source == "second/ (2 images)"
    assert sources.cached_folder(load.target) is None  # the cancelled load stopped early
    s.source = "bundled"  # and leaving the folder source gives up a load in flight
    assert s._load is None and s.loading == ""


def test_a_failed_folder_load_is_said_once_not_retried(tmp_path, gated):
    gate, threads = gated
    gate.set()
    (tmp_path / "empty").mkdir()
    s = LabState()
    s.param.update(source="folder", folder=str(tmp_path / "empty"))
    s.settle()
    assert "holds no image files" in s.message and s.loading == ""
    s.seed = 4
    assert len(threads) == 1 and "holds no image files" in s.message
