"""Training throughput of the extractor: images/s of full training steps (bank models
generate the batch, extractor forward + backward + AdamW), beside the extractor's own
forward + backward on a ready batch (what generation costs is the difference).

Also the new training step against the old one: the same preset trained on several
output sizes (``--sizes``, one drawn per step) with the robustness augmentations, on the
same bank (built once), images/s side by side.

Run: ``python benchmarks/train_throughput.py [--preset cpu] [--steps 40] [--sizes 32 64
128]``; on a CUDA machine the same run uses the GPU (bf16 autocast, channels_last).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from core.extractor.model import Extractor, batch_hard_triplet
from core.extractor.train import PRESETS, train
from core.runtime import resolve_device


def _steady(run: Path) -> float:
    rates = [json.loads(line)["images_per_s"]
             for line in (run / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(rates[5:] or rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    args = parser.parse_args()
    config = PRESETS[args.preset]
    device = resolve_device("auto")
    batch = config.models_per_batch * config.images_per_model
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU "
          f"threads; preset {args.preset}: batch {batch} images of "
          f"{config.extractor.crop_size} px, extractor width {config.extractor.width}\n")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(args.preset, Path(tmp) / "run", stop_after=args.steps, quiet=True)
        total = time.perf_counter() - t0
        steady = _steady(Path(tmp) / "run")
        # the new step, on the same bank
        shutil.copytree(Path(tmp) / "run" / "bank", Path(tmp) / "new" / "bank")
        train(args.preset, Path(tmp) / "new", stop_after=args.steps, quiet=True,
              sizes=tuple(args.sizes), augment=True)
        new = _steady(Path(tmp) / "new")

    model = Extractor(config.extractor, num_classes=100).to(device)
    opt = torch.optim.AdamW(model.parameters())
    s = config.extractor.crop_size
    x = torch.rand(batch, 3, s, s, device=device) * 2 - 1
    y = torch.arange(batch, device=device) // config.images_per_model
    times = []
    for i in range(args.steps):
        t1 = time.perf_counter()
        e, logits = model(x, with_logits=True)
        loss = F.cross_entropy(logits, y) + batch_hard_triplet(e, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t1)
    alone = batch / statistics.median(times)
    print(f"full training step (generate + train)   {steady:8.1f} images/s")
    print(f"new step: sizes {args.sizes} + augment  {new:8.1f} images/s "
          f"({new / steady:.2f}x the old step)")
    print(f"extractor forward+backward alone        {alone:8.1f} images/s")
    print(f"=> generating the batch takes {100 * (1 - steady / alone):.0f}% of a step; "
          f"{args.steps} steps plus the bank build took {total:.0f} s")


if __name__ == "__main__":
    main()
