"""Huge images cost nothing: a 16000 x 16000 deflated TIFF (a few hundred KB on disk,
256 megapixels decoded) and a PNG whose header claims 30000 x 30000 are refused on their
headers, in every command that reads images and in the dashboard's folder source. The
peak memory (VmHWM, the resident high-water mark of a fresh process running the command)
is measured and bounded;
before the header checks, ``fpx spectrum`` on one such TIFF took 6.8 GB."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from core.data.images import ImageReadError, load_rgb
from tests.hostile.workspace import huge_tiff, noise_pngs, png_bomb

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MB = 2048  # the bound for any input
# Runs one fpx command in a fresh interpreter and prints its own peak RSS in MB.
CHILD = """
import sys
from core.cli import main
status = main(sys.argv[1:])
# VmHWM: this process's own resident high-water mark (ru_maxrss would also count the
# parent's resident size at the fork, which Linux carries across exec).
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(f"peak_mb={int(hwm) / 1024:.0f}", file=sys.stderr)
sys.exit(status)
"""


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="peak memory is read from /proc/self/status (Linux)")


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("huge")
    huge_tiff(folder / "a.tif")
    huge_tiff(folder / "b.tif")
    png_bomb(folder / "c.png")
    return folder


def test_a_huge_tiff_is_refused_on_its_header_without_allocating(huge):
    tracemalloc.start()
    try:
        for name in ("a.tif", "c.png"):
            with pytest.raises(ImageReadError, match="too large"):
                load_rgb(huge / name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert os.path.getsize(huge / "a.tif") < 1_000_000
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB traced while refusing"


def peak_mb(argv: list, cwd: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, argv)], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    line = [s for s in done.stderr.splitlines() if s.startswith("peak_mb=")][-1]
    return int(line.removeprefix("peak_mb=")), done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["spectrum", "embed", "zoo-quality", "artifacts"])
def test_commands_on_huge_images_stay_small(command, huge, tmp_path):
    from core.extractor import Extractor, ExtractorConfig, export_extractor

    good = noise_pngs(tmp_path / "good", 4)
    argv = {
        "spectrum": ["spectrum", huge, "--size", 32, "--device", "cpu"],
        "zoo-quality": ["zoo", "quality", huge, good, "--real", good, "--skip-unusable"],
        "artifacts": ["artifacts", "--real", huge, "--generated", good, "--size", 32,
                      "--out", tmp_path / "arts", "--device", "cpu"],
    }.get(command)
    if command == "embed":
        ext = export_extractor(Extractor(ExtractorConfig(width=4, embed_dim=8, crop_size=32)),
                               tmp_path / "ext", {"command": "test"})
        argv = ["embed", huge, "--out", tmp_path / "e.npz", "--extractor", ext,
                "--device", "cpu"]
    peak, stderr = peak_mb(argv, tmp_path)
    print(f"{command}: peak {peak} MB")
    assert "too large" in stderr  # named: skipped, or the error that nothing is usable
    assert ("fpx: error:" in stderr) == (command != "zoo-quality")  # it skips the folder
    assert peak < LIMIT_MB // 2, f"{command} peaked at {peak} MB"


@pytest.mark.slow
def test_the_dashboard_folder_source_on_huge_images_stays_small(huge, tmp_path):
    code = (
        "import sys\n"
        "from explorer import sources\n"
        "from core.errors import InvalidInputError\n"
        "try:\n"
        f"    sources.folder({str(huge)!r}, 64)\n"
        "except InvalidInputError as err:\n"
        "    print('refused:', err)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(f'peak_mb={int(hwm.split()[1]) / 1024:.0f}')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "FPX_DATA_ROOTS": str(huge)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused:" in done.stdout and "none of 3 image files is usable" in done.stdout
    peak = int(done.stdout.split("peak_mb=")[1])
    print(f"dashboard folder source: peak {peak} MB")
    assert peak < LIMIT_MB // 2

