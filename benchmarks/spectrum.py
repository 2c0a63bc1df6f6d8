"""Throughput of the spectral core: ``power_spectrum`` + ``radial_profile`` on a batch.

Compares, on the same batch of random images (float32):
  * fpx: ``radial_profile(power_spectrum(x))`` (log dB, centred, full spectrum returned);
  * numpy loop: one image at a time, ``np.fft.fft2``, ``log10 |X|^2``, ``fftshift`` and a
    ring average by ``np.bincount`` over a precomputed ring index (the usual script);
  * bare fft2: ``torch.fft.fft2`` over the batch, computing nothing else (the floor).

Then the parts of ``fpx spectrum`` on ``--lattice-images`` real crops of
``--lattice-size`` px (default 1000 of 64 px), each timed alone: decoding the PNG files,
the mean spectrum, the isolated-peak finder, and the lattice detector (folded maps and
the test); the detector must not be the slow part.

Run: ``python benchmarks/spectrum.py [--batch 256] [--sizes 128 256] [--repeats 5]``.
Prints images/s and time ratios; on a CUDA machine it repeats the torch rows on the GPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from core.spectrum import (
    LatticeAccumulator,
    estimate_upsampling_factor,
    find_grid_peaks,
    mean_spectrum,
    power_spectrum,
    radial_profile,
)


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


def run_parts(count: int, size: int, repeats: int) -> None:
    """Time each part of ``fpx spectrum`` on ``count`` bundled crops of ``size`` px."""
    import tempfile
    from pathlib import Path

    from core.data import bundled_crops
    from core.data.folder import iter_image_batches, scan_images
    from core.data.pngs import write_pngs

    x = bundled_crops(size, count, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        write_pngs(x, Path(tmp))
        files = scan_images([tmp])

        def decode():
            return list(iter_image_batches(files, size, 64))

        def lattice():
            acc = LatticeAccumulator()
            for i in range(0, count, 64):
                acc.add(x[i:i + 64])
            return acc.detect()

        mean = mean_spectrum([x]).mean(0)
        fns = {
            "decode PNG files": decode,
            "mean spectrum": lambda: mean_spectrum(x[i:i + 64] for i in range(0, count, 64)),
            "peak finder + factor": lambda: estimate_upsampling_factor(find_grid_peaks(mean)),
            "lattice detector": lattice,
        }
        times = timed(fns, repeats)
    total = sum(times.values())
    print(f"parts of fpx spectrum on {count} real crops of {size} px "
          f"(median of {repeats} runs)\n")
    print(f"{'part':<24} {'seconds':>8} {'share':>7}")
    print("-" * 41)
    for name, t in times.items():
        print(f"{name:<24} {t:>8.3f} {t / total:>7.0%}")
    slowest = max(times, key=times.get)
    print(f"=> the lattice detector takes {times['lattice detector']:.2f} s, "
          f"{times['lattice detector'] / times['peak finder + factor']:.0f}x the peak finder; "
          f"the slowest part is: {slowest}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--lattice-images", type=int, default=1000)
    parser.add_argument("--lattice-size", type=int, default=64)
    args = parser.parse_args()
    run(args.batch, args.sizes, args.repeats)
    run_parts(args.lattice_images, args.lattice_size, max(3, args.repeats // 3))
