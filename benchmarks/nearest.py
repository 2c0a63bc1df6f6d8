"""Nearest real sample (k = 1): a per-query loop against batched exact search.

Data: seeded uniform float32 rows in [-1, 1] (images of 3x32x32 = 3072 values by
default), 10,000 queries against 50,000 references. Methods:
  * loop: what the original ManiFPT code does, one query at a time: the distances to all
    references in one vector op (``vector_norm(refs - q, dim=1)``), then ``argmin``.
    Timed on the first ``--loop-queries`` queries only (it is slow) and scaled as
    queries/s;
  * fpx torch: ``core.manifold.neighbors.nearest(..., backend="torch")``, all queries;
  * fpx faiss: ``nearest(..., backend="faiss")``: FAISS ``IndexFlatL2`` candidates plus
    fpx's float64 re-ranking and certificate, index built inside the timed call;
  * faiss flat: bare ``faiss.IndexFlatL2`` (``add`` + ``search``, float32, no re-ranking),
    index build included;
  * fpx torch cuda: the torch backend on the GPU when CUDA is available (data moved to the
    GPU before timing; one warm-up call).
The batched methods are checked against the loop on the loop's queries.

Each method runs in a fresh subprocess so its memory is measured alone: the peak extra
memory is the process's resident high-water mark (``getrusage(RUSAGE_SELF).ru_maxrss``)
after the method minus the same mark right after the data were made, i.e. the most
memory the method ever held beyond its inputs. On CUDA the GPU's peak allocation above
the inputs (``torch.cuda.max_memory_allocated``) is reported instead.

Run: ``python benchmarks/nearest.py [--queries 10000] [--refs 50000] [--dim 3072]
[--loop-queries 200] [--threads N]``. Prints a table: method, queries/s, speed-up over the
loop, peak extra memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time

import torch

METHODS = ("loop", "fpx torch", "fpx faiss", "faiss flat", "fpx torch cuda")


def make_data(n: int, m: int, d: int):
    g = torch.Generator().manual_seed(0)
    refs = torch.rand(m, d, generator=g).mul_(2).sub_(1)
    queries = torch.rand(n, d, generator=g).mul_(2).sub_(1)
    return queries, refs


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(method: str, args) -> dict:
    """Run one method on fresh data; return timing, memory and the loop subset's answer."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if "faiss" in method:
        import faiss
        if args.threads:
            faiss.omp_set_num_threads(args.threads)
    from core.manifold.neighbors import nearest

    queries, refs = make_data(args.queries, args.refs, args.dim)
    subset = min(args.loop_queries, args.queries)
    cuda = method.endswith("cuda")
    if cuda:
        queries, refs = queries.cuda(), refs.cuda()
        nearest(queries[:8], refs[:1000], 1, "torch")  # CUDA context, cuBLAS handles
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated()
    gc.collect()
    base = maxrss_mb()
    t0 = time.perf_counter()
    if method == "loop":
        nearest_idx = torch.empty(subset, dtype=torch.int64)
        for i in range(subset):
            nearest_idx[i] = torch.linalg.vector_norm(refs - queries[i], dim=1).argmin()
        done = subset
    elif method == "faiss flat":
        index = faiss.IndexFlatL2(args.dim)
        index.add(refs.numpy())
        _, found = index.search(queries.numpy(), 1)
        nearest_idx, done = torch.from_numpy(found[:subset, 0]), args.queries
    else:
        backend = "faiss" if "faiss" in method else "torch"
        result = nearest(queries, refs, 1, backend)
        if cuda:
            torch.cuda.synchronize()
        nearest_idx, done = result.indices[:subset, 0].cpu(), args.queries
    seconds = time.perf_counter() - t0
    peak = ((torch.cuda.max_memory_allocated() - base_gpu) / 2**20 if cuda
            else maxrss_mb() - base)
    return {"method": method, "queries": done, "seconds": seconds, "peak_mb": peak,
            "subset": nearest_idx.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--refs", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=3 * 32 * 32)
    parser.add_argument("--loop-queries", type=int, default=200,
                        help="queries the per-query loop is timed on")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch and FAISS CPU threads (0: their defaults)")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return

    try:
        import faiss
        faiss_version = faiss.__version__
    except ImportError:
        faiss_version = None
    methods = [m for m in METHODS
               if ("faiss" not in m or faiss_version) and
               (not m.endswith("cuda") or torch.cuda.is_available())]
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, faiss {faiss_version or 'not installed'}, "
          f"{threads} CPU thread(s); {args.queries} queries x {args.refs} references of "
          f"D={args.dim}, uniform float32 in [-1, 1] (seed 0), k=1\n")
    forwarded = [f"--queries={args.queries}", f"--refs={args.refs}", f"--dim={args.dim}",
                 f"--loop-queries={args.loop_queries}", f"--threads={args.threads}"]
    rows = []
    for method in methods:
        out = subprocess.run([sys.executable, __file__, "--worker", method, *forwarded],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"  ran {method:15s} {r['seconds']:7.1f} s for {r['queries']} queries",
              flush=True)

    loop = rows[0]
    loop_qps = loop["queries"] / loop["seconds"]
    header = (f"\n{'method':16s} {'queries/s':>10} {'vs loop':>8} {'peak extra MB':>14}  "
              f"agrees with loop")
    print(header)
    print("-" * len(header.strip()))
    for r in rows:
        qps = r["queries"] / r["seconds"]
        agree = sum(a == b for a, b in zip(r["subset"], loop["subset"]))
        mem = f"{r['peak_mb']:.0f}" + (" (GPU)" if r["method"].endswith("cuda") else "")
        note = "(reference)" if r is loop else f"{agree}/{len(loop['subset'])}"
        print(f"{r['method']:16s} {qps:10.1f} {qps / loop_qps:7.1f}x {mem:>14}  {note}")
    print(f"\nloop: timed on the first {loop['queries']} queries only, reported as queries/s."
          "\npeak extra MB: resident high-water mark after the method minus that right "
          "after the data\nwere made, each method in a fresh process (GPU: peak CUDA "
          "allocation above the inputs).\nfaiss flat and fpx faiss include building the "
          "index (a float32 copy of the references).")


if __name__ == "__main__":
    main()
