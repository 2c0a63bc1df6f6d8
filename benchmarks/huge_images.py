"""Peak memory of fpx's image readers on huge images: hostile ones (refused on their
headers) and the largest they accept.

Inputs, made in a temporary folder:
  * hostile: two 16000 x 16000 deflated all-zero TIFFs (a few hundred KB each on disk,
    256 megapixels each decoded) and a PNG whose header claims 30000 x 30000;
  * largest accepted: two PNGs of just under ``FPX_MAX_PIXELS`` (default 2**25, about
    5792 x 5792), decoded at once by the loaders' two threads.
Each command runs in a fresh interpreter and reports its own resident high-water mark
(``VmHWM`` of ``/proc/self/status``, Linux), which includes the interpreter and torch
(about 240 MB on their own).

Run: ``python benchmarks/huge_images.py``. Prints a table: input, command, exit status,
peak MB.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def peak(argv: list) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    mb = [line for line in done.stderr.splitlines() if line.startswith("peak_mb=")][-1]
    return done.returncode, int(mb.removeprefix("peak_mb="))


def main() -> None:
    from core.limits import max_pixels
    from tests.hostile.workspace import huge_tiff, noise_pngs, png_bomb

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hostile = tmp / "hostile"
        hostile.mkdir()
        huge_tiff(hostile / "a.tif")
        huge_tiff(hostile / "b.tif")
        png_bomb(hostile / "c.png")
        largest = tmp / "largest"
        largest.mkdir()
        side = math.isqrt(max_pixels())
        image = np.zeros((side, side, 3), np.uint8)
        image[::7] = 200
        for i in range(2):
            Image.fromarray(image).save(largest / f"{i}.png")
        good = noise_pngs(tmp / "good", 4)
        rows = []
        for label, folder in (("hostile (16000^2 TIFF x2, PNG bomb)", hostile),
                              (f"largest accepted ({side}^2 PNG x2)", largest)):
            for name, argv in (
                    ("spectrum", ["spectrum", folder, "--size", 64, "--device", "cpu"]),
                    ("zoo quality", ["zoo", "quality", folder, "--real", good,
                                     "--skip-unusable"]),
                    ("artifacts", ["artifacts", "--real", folder, "--generated", good,
                                   "--size", 32, "--out", tmp / "arts", "--device", "cpu",
                                   "--holdout-real", 0])):
                status, mb = peak(argv)
                rows.append((label, name, status, mb))
    print(f"{'input':<40} {'command':<12} {'exit':>4} {'peak MB':>8}")
    for label, name, status, mb in rows:
        print(f"{label:<40} {name:<12} {status:>4} {mb:>8}")


if __name__ == "__main__":
    main()
