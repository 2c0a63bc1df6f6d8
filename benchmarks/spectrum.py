"""Throughput of the spectral core: ``power_spectrum`` + ``radial_profile`` on a batch.

Compares, on the same batch of random images (float32):
  * fpx: ``radial_profile(power_spectrum(x))`` (log dB, centred, full spectrum returned);
  * numpy loop: one image at a time, ``np.fft.fft2``, ``log10 |X|^2``, ``fftshift`` and a
    ring average by ``np.bincount`` over a precomputed ring index (the usual script);
  * bare fft2: ``torch.fft.fft2`` over the batch, computing nothing else (the floor).

Run: ``python benchmarks/spectrum.py [--batch 256] [--sizes 128 256] [--repeats 5]``.
Prints images/s and time ratios; on a CUDA machine it repeats the torch rows on the GPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from core.spectrum import power_spectrum, radial_profile


def timed(fns: dict, repeats: int, sync=lambda: None) -> dict[str, float]:
    """Median wall time in seconds of each function over ``repeats`` rounds.

    The functions run round-robin (one call each per round, after one warm-up call), so a
    change in machine load during the run hits every method alike.
    """
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    sync()
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def numpy_loop(images: np.ndarray) -> np.ndarray:
    b, c, h, w = images.shape
    fy = np.fft.fftshift(np.fft.fftfreq(h))
    fx = np.fft.fftshift(np.fft.fftfreq(w))
    ring = np.rint(np.hypot(fy[:, None], fx[None, :]) * min(h, w)).astype(int).ravel()
    keep = ring <= min(h, w) // 2
    ring, counts = ring[keep], np.bincount(ring[keep])
    out = np.empty((b, c, counts.size))
    for i in range(b):
        spec = np.fft.fftshift(10 * np.log10(np.abs(np.fft.fft2(images[i])) ** 2 + 1e-10),
                               axes=(-2, -1))
        flat = spec.reshape(c, -1)[:, keep]
        for ch in range(c):
            out[i, ch] = np.bincount(ring, weights=flat[ch]) / counts
    return out


def run(batch: int, sizes: list[int], repeats: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"batch {batch} images of 3xNxN, float32; median of {repeats} runs\n")
    header = f"{'device':6} {'N':>4}  {'method':<28} {'images/s':>10} {'ms/batch':>10}  vs fpx"
    print(header)
    print("-" * len(header))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for n in sizes:
            x = torch.randn(batch, 3, n, n, device=device)
            fns = {"fpx power_spectrum+profile": lambda x=x: radial_profile(power_spectrum(x)),
                   "bare torch.fft.fft2 (floor)": lambda x=x: torch.fft.fft2(x)}
            if device == "cpu":
                arr = x.numpy()
                fns["numpy per-image loop"] = lambda a=arr: numpy_loop(a)
            rows = list(timed(fns, repeats, sync).items())
            ours = rows[0][1]
            for name, t in rows:
                print(f"{device:6} {n:>4}  {name:<28} {batch / t:>10.0f} {1000 * t:>10.1f}"
                      f"  {t / ours:5.2f}x")
            floor = rows[1][1]
            line = f"{device:6} {n:>4}  => fpx costs {ours / floor:.2f}x a bare fft2"
            if device == "cpu":
                line += f", runs {rows[2][1] / ours:.1f}x faster than the numpy loop"
            print(line + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    run(args.batch, args.sizes, args.repeats)
