"""Synthetic bank fitting: models fitted per minute, stacked (one grouped network per
architecture) against one model after another, on the same crops and steps; and
``fpx bank sample --models N``'s fit of only the sampled models against the whole bank
it used to fit first (``--sample N``).

Run: ``python benchmarks/bank_build.py [--architectures 4] [--seeds 8] [--steps 20]``
or ``python benchmarks/bank_build.py --sample 6 --architectures 16 --seeds 3``.
"""

from __future__ import annotations

import argparse
import time

import torch

from core.data import bundled_crops
from core.synthetic import BankConfig, SyntheticBank, fit_bank, heldout_config


def sample_only(config: BankConfig, models: int) -> None:
    """Fit the held-out-seeds bank whole (what ``fpx bank sample`` did) and only its first
    ``models`` (what it does now), and check the models are the same."""
    config = heldout_config(config, "seeds")
    n = len(config.specs())
    t0 = time.perf_counter()
    whole = fit_bank(config)
    t_whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    part = fit_bank(config, models=models)
    t_part = time.perf_counter() - t0
    same = all(torch.equal(a[k], b[k]) for a, b in zip(whole.states, part.states) for k in a)
    print(f"fit the whole bank ({n} models, before)   {t_whole:7.1f} s")
    print(f"fit only the {models} sampled models (now)    {t_part:7.1f} s")
    print(f"speed-up {t_whole / t_part:.1f}x; the {models} models are identical: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--architectures", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--sample", type=int, metavar="N",
                        help="time fitting only the first N models against the whole bank")
    args = parser.parse_args()
    config = BankConfig(architectures=args.architectures, seeds=args.seeds,
                        fit_steps=args.steps, crop_size=args.crop, channels=args.channels)
    if args.sample:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
              f"{args.steps} Adam steps per model, {args.crop} px, {args.channels} channels")
        return sample_only(config, args.sample)
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
