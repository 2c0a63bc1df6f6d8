"""Latency of the Embeddings and Attribute tabs, server side (state and views, no browser).

Prints, in one run, each beside its target:
  * Embeddings tab, first open on the shipped zoo (12 entries x 200 samples + 1000 real
    crops, 32 px): cold (nothing cached: every image embedded by the shipped extractor,
    as ``fpx embed``) and cached (a new session, the embeddings read back from the runs
    folder), each until the map, similarity matrix, ROC and confusion are ready;
  * the same map by t-SNE (cached embeddings);
  * Attribute tab, verdict for one uploaded image: the first (gallery calibration and the
    real photos' spectrum computed) and then cached (another image: the query embedded,
    its lattice tested, the verdict), median of ``--repeats``. Target: under 1 s cached.
The load average before and after says whether others loaded the machine meanwhile.

Run: ``python benchmarks/explorer_tabs.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ATTRIBUTE_TARGET_S = 1.0


def embeddings_open(runs: Path, method: str = "pca") -> tuple[float, object]:
    from explorer.embeddings import EmbeddingsState

    t0 = time.perf_counter()
    s = EmbeddingsState(runs=runs, autostart=False, method=method)
    s.start()
    s.wait()
    if s.message:
        raise SystemExit(f"Embeddings tab: {s.message}")
    return time.perf_counter() - t0, s.result


def attribute_once(runs: Path, image: Path) -> tuple[float, object]:
    from explorer.attribute import AttributeState

    s = AttributeState(runs=runs)
    t0 = time.perf_counter()
    s.uploads = [(image.name, image.read_bytes())]
    result = s.attribute()
    return time.perf_counter() - t0, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    from core.zoo.shipped import SHIPPED_ZOO

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        cold, r = embeddings_open(runs)
        cached, _ = embeddings_open(runs)
        tsne, _ = embeddings_open(runs, "tsne")
        print(f"Embeddings tab, first open on the shipped zoo ({len(r.data.labels)} images, "
              f"{len(r.models)} models): cold {cold:.1f} s, cached {cached:.2f} s "
              f"(views {r.compute_ms:.0f} ms of it); t-SNE map, cached: {tsne:.1f} s")
        images = sorted((SHIPPED_ZOO / "samples" / "gan_nearest").glob("*.png"))
        first, res = attribute_once(runs, images[-1])
        times = [attribute_once(runs, img)[0] for img in images[-1 - args.repeats:-1]]
        med = statistics.median(times)
        print(f"Attribute tab, verdict for one 32-px image: first {first:.2f} s "
              f"(gallery calibrated, real photos analysed); cached median {med:.2f} s, "
              f"max {max(times):.2f} s over {len(times)} images (target under "
              f"{ATTRIBUTE_TARGET_S:.0f} s: {'met' if med < ATTRIBUTE_TARGET_S else 'MISSED'})"
              f"; answer for {images[-1].name}: {res.summary}")
    load1 = os.getloadavg()
    print(f"load average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
