"""The dashboard: state as plain Python, boundaries, and the served app over HTTP."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from explorer.state import RealSpectrumState

ROOT = Path(__file__).resolve().parent.parent


def test_state_recomputes_when_the_residual_changes():
    state = RealSpectrumState(crops=8, crop_size=64)
    first = state.report
    assert first.images == 8 and first.spectrum.shape == (64, 64)
    state.residual = "blur"
    assert state.report.residual == "blur"
    assert not torch.allclose(state.report.spectrum, first.spectrum)
    state.residual = "none"
    assert state.report is first  # cached: the real photos are analysed once per setting


def test_real_photos_show_no_grid_in_the_dashboard_state():
    state = RealSpectrumState()
    assert state.report.upsampling_factor is None
    assert 1.5 < float(state.report.power_law.exponent) < 4.0


def test_import_boundaries():
    code = (
        "import sys, importlib, pkgutil, core, explorer.state\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in ('panel', 'holoviews', 'bokeh') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_app_answers_with_its_page(tmp_path):
    port = _free_port()
    log = tmp_path / "panel.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--port", str(port),
             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
        )
    try:
        deadline, page = time.time() + 90, None
        while time.time() < deadline and page is None:
            if proc.poll() is not None:
                pytest.fail(f"panel serve exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=60) as r:
                    assert r.status == 200
                    page = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, f"no answer within 90 s:\n{log.read_text()}"
        assert "generative-model fingerprints in the frequency domain" in page
        text = log.read_text()
        assert "Traceback" not in text and "ERROR" not in text, text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
