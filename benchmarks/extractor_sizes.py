"""Which input path lets an extractor trained on 64-px crops read images of any size:
verification AUC and 10-shot identification accuracy of each size policy
(:mod:`core.extractor.sizes`) beside the residual-spectrum baseline, in one run.

Test sets: the shipped zoo (12 real generators, 32 px) and held-out synthetic models (the
``cpu`` preset's first architectures with unseen weights, fitted at 64 px) run on real
crops of 32, 64, 128 and 256 px (the same models at every size).

Run: ``python benchmarks/extractor_sizes.py [--models 12] [--images 40]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.data import bundled_crops, read_folder
from core.extractor import DEFAULT_EXTRACTOR, load_extractor
from core.extractor.evaluate import identify, split_gallery, verify
from core.extractor.sizes import embed_any
from core.spectrum import power_spectrum, residual
from core.synthetic import SyntheticBank
from core.synthetic.samples import WEIGHT_SEED_OFFSET

ZOO = Path(__file__).resolve().parents[1] / "core" / "assets" / "zoo" / "samples"
POLICIES = {"native": dict(small="native", large="native"),
            "spectrum (small)": dict(small="spectrum"),
            "center crop (large)": dict(large="center"),
            "tiles (large)": dict(large="tiles")}


def spectrum_baseline(x: torch.Tensor) -> torch.Tensor:
    """3x3 median residual, log power spectrum averaged over colour, mean removed, unit."""
    s = power_spectrum(residual(x, "median")).mean(1).flatten(1)
    return F.normalize(s - s.mean(1, keepdim=True), dim=1)


def scores(e: torch.Tensor, labels: list[str]) -> tuple[float, float]:
    e = e.numpy()
    auc = verify(e, labels, pairs=10_000, seed=0)["auc"]
    g, gl, q, ql = split_gallery(e, labels, 10)
    return auc, identify(g, gl, q, ql, shots=10)["accuracy"]


def zoo_set() -> tuple[torch.Tensor, list[str]]:
    xs, labels = [], []
    for folder in sorted(p for p in ZOO.iterdir() if p.is_dir()):
        x, _ = read_folder(folder, 32)
        xs.append(x)
        labels += [folder.name] * len(x)
    return torch.cat(xs), labels


def synthetic_sets(models: int, images: int, sizes: list[int]):
    from core.extractor.train import PRESETS

    config = dataclasses.replace(PRESETS["cpu"].bank, architectures=models, seeds=1,
                                 weight_seed=WEIGHT_SEED_OFFSET)
    t0 = time.perf_counter()
    bank = SyntheticBank.build(config, bundled_crops(64, 256, seed=0, split="train"))
    print(f"fitted {len(bank)} held-out synthetic models in {time.perf_counter() - t0:.0f} s")
    g = torch.Generator().manual_seed(7)
    for size in sizes:
        real = bundled_crops(size, images * 4, seed=1, split="all")
        xs = []
        for i in range(len(bank)):
            pick = torch.randperm(len(real), generator=g)[:images]
            xs.append(bank.generate([i], real[pick][None])[0])
        # 8-bit, as the PNGs a user would embed
        x = torch.cat(xs).add(1).mul(127.5).round().div(127.5).sub(1)
        yield size, x, [f"m{i}" for i in range(len(bank)) for _ in range(images)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=12)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_extractor(DEFAULT_EXTRACTOR, "cpu").eval()
    print(f"shipped extractor (trained on {model.config.crop_size}-px crops); torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads\n")
    sets = [("zoo", 32, *zoo_set())]
    sets += [("synthetic held-out", s, x, lab)
             for s, x, lab in synthetic_sets(args.models, args.images, args.sizes)]
    print(f"\n{'set':20s} {'px':>4s}  {'method':22s} {'AUC':>6s} {'10-shot':>8s} {'s':>6s}")
    for name, size, x, labels in sets:
        rows = [("residual spectrum", lambda x: spectrum_baseline(x))]
        for policy, kw in POLICIES.items():
            small = size < model.config.crop_size
            if ("small" in policy and not small) or ("large" in policy and
                                                     size <= model.config.crop_size):
                continue
            rows.append((policy, lambda x, kw=kw: torch.cat(
                [embed_any(model, x[i:i + 64], **kw) for i in range(0, len(x), 64)])))
        for method, fn in rows:
            t0 = time.perf_counter()
            auc, acc = scores(fn(x), labels)
            print(f"{name:20s} {size:4d}  {method:22s} {auc:6.3f} {acc:8.3f} "
                  f"{time.perf_counter() - t0:6.1f}", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
