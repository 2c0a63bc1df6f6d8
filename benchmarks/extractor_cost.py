"""What the shipped extractor costs to embed on this machine, beside the `cpu` preset's
network (the extractor shipped before it), in one run.

Both embed the shipped zoo (12 entries x 200 images, 32 px) exactly as ``fpx embed
core/assets/zoo/samples`` does (:func:`core.extractor.embed_folders`, the size policy).
The reference is the ``cpu`` preset's network with its initial weights: the time of a
forward pass depends on the architecture alone, so it stands for the earlier shipped
extractor without shipping its weights. Each is timed ``--repeats`` times after one
warm-up pass; the median wall time and images/s are printed, with the weights' size.

Run: ``python benchmarks/extractor_cost.py [--repeats 3] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.extractor import DEFAULT_EXTRACTOR, Extractor, embed_folders, load_extractor  # noqa: E402
from core.extractor.train import PRESETS  # noqa: E402

ZOO = ROOT / "core" / "assets" / "zoo" / "samples"


def timed(model: Extractor, repeats: int) -> tuple[float, int]:
    """Median seconds of ``embed_folders`` on the zoo, and the images embedded."""
    images = len(embed_folders(model, [ZOO]).paths)  # warm-up (file cache, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed_folders(model, [ZOO])
        times.append(time.perf_counter() - t0)
    return statistics.median(times), images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = [("shipped extractor", load_extractor(DEFAULT_EXTRACTOR, args.device)),
            ("cpu preset's network (reference)",
             Extractor(PRESETS["cpu"].extractor).to(args.device).eval())]
    print(f"device {args.device}, {torch.get_num_threads()} threads, median of "
          f"{args.repeats}")
    print(f"{'extractor':34s} {'weights MB':>10s} {'seconds':>8s} {'images/s':>9s}")
    base = None
    for name, model in rows:
        seconds, images = timed(model, args.repeats)
        mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
        print(f"{name:34s} {mb:10.1f} {seconds:8.1f} {images / seconds:9.1f}")
        base = seconds if base is None else base
    print(f"shipped / reference time: {base / seconds:.2f}x")


if __name__ == "__main__":
    main()
