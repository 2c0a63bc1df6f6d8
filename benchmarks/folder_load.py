"""Does one session's folder of large images stall another session's lab?

A folder of images just under the pixel limit (``FPX_MAX_PIXELS``, default 2**25: about
5792 x 5792; PNGs and TIFFs, which fpx accepts) is typed into the lab's **Folder path**
by one browser session while a second session toggles **Upsampling**. Prints, in one
run, with Playwright driving Debian's Chromium against ``panel serve explorer/app.py``:

  * session 2's update latency (change -> changed spectrum image on screen), idle;
  * the same while session 1's folder is being read (the lab reads it on a background
    thread, with progress in session 1's page);
  * the reference: how long reading that folder takes on the calling thread
    (``explorer.sources.folder``), which is how long every session waited for each of
    its updates when the folder was read on the request thread (before issue 19).

Run: ``python benchmarks/folder_load.py [--images 4] [--toggles 10]``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from explorer_latency import CHANGE_AND_WAIT, OPTIONS, free_port, summary  # noqa: E402


def large_images(folder: Path, count: int) -> int:
    """``count`` images of just under the pixel limit, PNG and TIFF in turn; their side."""
    from core.limits import max_pixels

    folder.mkdir(parents=True, exist_ok=True)
    side = math.isqrt(max_pixels()) - 1
    image = np.zeros((side, side, 3), np.uint8)
    image[::7] = 200
    image[:, ::5, 1] = 90
    for i in range(count):
        Image.fromarray(np.roll(image, i, axis=0)).save(
            folder / f"{i}.{'png' if i % 2 == 0 else 'tif'}", compression=None
            if i % 2 == 0 else "tiff_deflate")
    return side


def synchronous_seconds(folder: Path) -> float:
    """Reading the folder on the calling thread, in a fresh interpreter (nothing cached)."""
    code = ("import time; from explorer import sources; t = time.perf_counter(); "
            f"r = sources.folder({str(folder)!r}, 128); "
            "print(time.perf_counter() - t, len(r.crops))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "FPX_DATA_ROOTS": str(folder)})
    return float(done.stdout.split()[0])


def toggle(page, i: int) -> float:
    ms = page.evaluate(CHANGE_AND_WAIT, {"label": "Upsampling", "option": OPTIONS[i % 6]})
    if ms < 0:
        raise RuntimeError("the spectrum image did not change within 20 s")
    return ms


def served(folder: Path, toggles: int) -> tuple[list[float], list[float], float, list[str]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found (install the Debian package 'chromium')")
    port = free_port()
    log = open(Path(tempfile.mkdtemp()) / "panel.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--port", str(port),
         "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "FPX_DATA_ROOTS": str(folder)})
    url = f"http://127.0.0.1:{port}/app"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=60).read()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync"])
            one, two = (browser.new_page(viewport={"width": 1400, "height": 1300})
                        for _ in range(2))
            for page in (one, two):
                page.goto(url, wait_until="networkidle", timeout=120_000)
                page.locator(".fpx-generated canvas").first.wait_for(timeout=60_000)
            toggle(two, 0)
            toggle(two, 1)  # warm-up
            idle = [toggle(two, i) for i in range(2, toggles + 2)]
            one.get_by_label("Image source", exact=True).select_option(
                label="Folder on server")
            box = one.get_by_label("Folder path", exact=True)
            box.fill(str(folder), timeout=60_000)
            t0 = time.perf_counter()
            box.press("Enter")
            progress, during = [], []
            # The panes' text sits in shadow roots: get_by_text and the readout's stamp
            # (<small>: "... vs SOURCE; computed in N ms") reach it.
            loading = one.get_by_text(re.compile(r"^reading "))
            stamp = one.locator(".fpx-readout small").first
            i = 0
            while time.perf_counter() - t0 < 300:
                text = loading.first.inner_text() if loading.count() else ""
                if text and (not progress or progress[-1] != text):
                    progress.append(text)
                if f"{folder.name}/" in stamp.inner_text():
                    break
                during.append(toggle(two, i))
                i += 1
            loaded = time.perf_counter() - t0
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a decode in flight finishes first; no need
            proc.kill()
            proc.wait(timeout=20)
    return idle, during, loaded, progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--toggles", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "large"
        side = large_images(folder, args.images)
        print(f"folder: {args.images} images of {side}x{side} (PNG and TIFF, just under "
              "FPX_MAX_PIXELS); crops of 128\n")
        sync = synchronous_seconds(folder)
        idle, during, loaded, progress = served(folder, args.toggles)
    print(f"reference: reading the folder on the request thread blocks the server "
          f"{sync * 1000:8.0f} ms")
    print(f"session 2, idle:                      {summary(idle)}")
    if during:
        print(f"session 2, while session 1 loads:     {summary(during)}")
    else:
        print("session 2, while session 1 loads:     (the load ended before a toggle)")
    print(f"session 1: folder shown {loaded:.1f} s after Enter; progress seen: "
          f"{len(progress)} steps, e.g. {progress[len(progress) // 2]!r}" if progress else
          f"session 1: folder shown {loaded:.1f} s after Enter; no progress line seen")


if __name__ == "__main__":
    main()
