"""Synthetic bank fitting: models fitted per minute, stacked (one grouped network per
architecture) against one model after another, on the same crops and steps.

Run: ``python benchmarks/bank_build.py [--architectures 4] [--seeds 8] [--steps 20]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from core.data import bundled_crops
from core.synthetic import BankConfig, SyntheticBank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--architectures", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    args = parser.parse_args()
    config = BankConfig(architectures=args.architectures, seeds=args.seeds,
                        fit_steps=args.steps, crop_size=args.crop, channels=args.channels)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    crops = bundled_crops(args.crop, 256, seed=0).to(device)
    n = len(config.specs())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {n} models "
          f"({args.architectures} architectures x {args.seeds} seeds), {args.steps} Adam "
          f"steps each, batch {config.batch} crops of {args.crop} px, {args.channels} "
          "channels\n")
    t0 = time.perf_counter()
    SyntheticBank.build(config, crops, strategy="stacked")
    stacked = time.perf_counter() - t0
    t0 = time.perf_counter()
    SyntheticBank.build(config, crops, strategy="sequential")
    sequential = time.perf_counter() - t0
    for name, t in (("stacked per architecture", stacked), ("one model at a time", sequential)):
        print(f"{name:26s} {t:7.1f} s   {60 * n / t:7.1f} models/min")
    print(f"\nstacked fitting runs at {sequential / stacked:.2f}x the sequential rate "
          f"on {'CUDA' if crops.is_cuda else 'this CPU'}")


if __name__ == "__main__":
    main()
