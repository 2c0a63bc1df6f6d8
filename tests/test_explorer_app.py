"""The dashboard's Panel layer without a browser: widgets, template, served page."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import panel as pn
import pytest

from explorer.state import LabState
from explorer.views.spectrum_lab import SpectrumLab

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["Upsampling", "Scale factor", "Kernel size", "Up-blocks", "Normalization",
          "Activation", "Order", "Seed", "Residual", "Window", "Image source", "Crop size",
          "Presets"]


def widgets(viewable):
    return [w for w in viewable.select(pn.widgets.Widget)]


@pytest.fixture(scope="module")
def lab():
    return SpectrumLab(state=LabState())


def test_every_control_carries_its_exact_label(lab):
    names = [w.label for w in widgets(lab.controls)]
    for label in LABELS:
        assert names.count(label) == 1, f"{label!r} missing or repeated in {names}"


def test_upsampling_and_source_choices_read_as_documented(lab):
    by_name = {w.label: w for w in widgets(lab.controls)}
    assert list(by_name["Upsampling"].options) == [
        "Transposed conv", "Nearest", "Bilinear", "Bicubic", "Pixel shuffle", "Zero insertion"]
    assert list(by_name["Image source"].options) == [
        "Bundled photos", "Uploaded image", "Folder on server"]
    assert list(by_name["Scale factor"].options.values()) == [2, 4]
    assert list(by_name["Order"].options) == ["post", "pre"]
    presets = list(by_name["Presets"].options)
    for name in ("DCGAN-like transposed conv", "Checkerboard k3 s2", "Resize-conv (nearest)",
                 "Bilinear StyleGAN-like", "Pixel shuffle"):
        assert name in presets


def test_kernel_size_is_enabled_for_transposed_conv_only(lab):
    kernel = next(w for w in widgets(lab.controls) if w.label == "Kernel size")
    assert not kernel.disabled
    lab.state.upsampling = "nearest"
    assert kernel.disabled
    lab.state.upsampling = "transposed"
    assert not kernel.disabled


def test_widgets_drive_the_state(lab):
    upsampling = next(w for w in widgets(lab.controls) if w.label == "Upsampling")
    before = lab.state.result
    upsampling.value = "bilinear"
    assert lab.state.upsampling == "bilinear" and lab.state.result is not before
    upsampling.value = "transposed"


def test_app_module_builds_nothing_at_import_and_a_template_on_demand():
    code = ("import time, explorer.app as a; t = time.perf_counter(); "
            "assert a.pn.state.served is False; print(type(a.create_app()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "BootstrapTemplate"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, log: Path, app: str = "explorer/app.py", **env: str) -> subprocess.Popen:
    """``panel serve APP`` (a path from the repository's root) with ``env`` added."""
    out = open(log, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", app, "--port", str(port),
         "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
    )


def stop(proc: subprocess.Popen, grace: float = 60) -> None:
    """End a served app: SIGTERM, then SIGKILL if it has not exited within ``grace`` s (a
    loaded machine can take its time; the test is about the page, not the shutdown)."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def wait_for_page(proc, port: int, log: Path, timeout: float = 120, path: str = "app") -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"panel serve exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=60) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"no answer within {timeout} s:\n{log.read_text()}")


def test_served_app_answers_with_its_page(tmp_path):
    port, log = free_port(), tmp_path / "panel.log"
    proc = serve(port, log)
    try:
        page = wait_for_page(proc, port, log)
        assert "generative-model fingerprints in the frequency domain" in page
        text = log.read_text()
        assert "Traceback" not in text and "ERROR" not in text, text
    finally:
        stop(proc)
