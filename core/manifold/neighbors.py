"""Exact nearest real samples of generated samples.

ManiFPT defines a generated sample's *artifact* as the sample minus its nearest real
sample, so every manifold fingerprint starts with a nearest-neighbour search: for each
query row ``q`` (a generated sample, flattened) find the ``k`` reference rows ``r`` (real
samples) with the smallest Euclidean distance ``||q - r||_2``.

Conventions:
  * samples are rows: queries ``(N, D)``, references ``(M, D)``, any floating dtype, as
    torch tensors (CPU or CUDA) or NumPy arrays. Nothing is flattened here: images
    ``(B, C, H, W)`` are rejected, the caller writes ``x.reshape(len(x), -1)``;
  * distances are plain Euclidean (L2, not squared), in the units of the data (images in
    [-1, 1] of 3x32x32 = 3072 values are at most ``2 * sqrt(3072) = 110.9`` apart);
  * the exact answer equals a float64 brute force (all M distances by direct differences,
    then a stable sort), **ties included: among equal distances the lower reference index
    comes first**, in both backends.

How the exact search runs at float32 matrix-product speed:
  1. *Centre.* The references' mean ``mu`` is subtracted from both sets (distances do not
     change under a shift); the float32 error below scales with the norms, which this
     shrinks, e.g. for data in [0, 255]. Data already centred to within a quarter of its
     spread (``||mu|| <= 0.25 * rms ||r - mu||``, e.g. images in [-1, 1]) is used as it is
     (``mu = 0``): no copies, and the bound grows by about 1.6x for typical rows.
  2. *Select (float32).* ``||q - r||^2 = ||q||^2 - 2 q.r + ||r||^2``, so a chunk of queries
     against a chunk of references is one matrix product. ``||q||^2`` is constant per query
     and is left out of the ranking; a running top-K (``K = k + 8``) of ``||r||^2 - 2 q.r``
     is merged across reference chunks. Memory: one query chunk, one reference chunk and
     their distance block, never ``N x M``. (The FAISS backend's ``IndexFlatL2`` does this
     step with the same expansion.)
  3. *Re-rank (float64).* The K candidates' squared distances are recomputed from the
     original values by direct differences ``sum((q - r)^2)`` and sorted on
     ``(distance, index)``.
  4. *Certify.* Rounding moves an approximate squared distance ``s~`` by at most
     ``E = 2 (g_D(u_mm) + 4u) (||q - mu|| + max_r ||r - mu||)^2``, where
     ``g_n(u) = n u / (1 - n u)`` is the classic error bound of an n-term dot product,
     ``u = 2^-24`` and ``u_mm`` the unit roundoff of the float32 matrix product (``2^-24``
     at torch's "highest" float32 matmul precision, ``2^-11`` with TF32, ``2^-8`` with
     bfloat16); the factor 2 covers the second-order terms. A reference that was not a
     candidate has ``s~`` at least the K-th candidate's ``s~_K``, hence an exact squared
     distance of at least ``s~_K - E``. When ``s~_K - E > s_k`` (the k-th exact squared
     distance among the candidates), no other reference can enter the top k or tie with
     it, so the re-ranked candidates are the exact answer.
  5. *Widen.* A query that fails the test (near-ties, duplicated references, exact ties
     across the k boundary) is searched again: every reference with ``s~ <= s_k + E`` is a
     candidate. That set provably holds the true k nearest and everything tied with them;
     all of it is re-ranked in float64 (sorted on ``(distance, index)``, chunk by chunk).
     On continuous data almost every query is certified in step 4.

``approximate=True`` (FAISS IVF or HNSW) re-ranks and tie-breaks the index's candidates
the same way, but a true neighbour the index never returned is missed: no certificate.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from core.errors import InvalidInputError, check_int
from core.runtime import resolve_device

BACKENDS = ("auto", "torch", "faiss")
APPROXIMATE_INDEXES = ("ivf", "hnsw")
DEFAULT_MEMORY_BUDGET = 2 << 30  # bytes of float32 references the torch backend takes on
# Candidates kept beyond k in the float32 selection. A few spares make the certificate
# (step 4) pass for nearly every query on continuous data; exact ties beyond them are
# caught by the certificate and resolved in step 5.
_EXTRA = 8
# Elements (float32) in one query chunk, one reference chunk and one distance block:
# 32 MB each on the CPU, 256 MB on a GPU.
_CHUNK_ELEMENTS = {"cpu": 1 << 23, "cuda": 1 << 26}
_U32 = 2.0 ** -24  # unit roundoff of float32
_HNSW_M = 32  # graph degree of the HNSW index


class Neighbors(NamedTuple):
    """The k nearest references of each query, nearest first.

    Attributes:
        distances: ``(N, k)`` float32 Euclidean distances (not squared), ascending per row.
        indices: ``(N, k)`` int64 row indices into the references; equal distances are
            ordered by index (the lower index first).
    """

    distances: torch.Tensor
    indices: torch.Tensor


class _Refs(NamedTuple):
    """Reference statistics shared by every step: the centring shift and the norms."""

    x: torch.Tensor  # (M, D) the references as given, on the compute device
    mu: torch.Tensor | None  # (D,) shift (the mean), working dtype; None: no shift
    norms: torch.Tensor  # (M,) float32 ||fl32(r - mu)||^2
    max_norm: float  # max_r ||fl32(r - mu)||, for the error bound


# --- validation ---------------------------------------------------------------------------


def _as_matrix(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise InvalidInputError(f"{name} must hold floating values, got dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise InvalidInputError(
            f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    x = x.detach()
    if x.ndim != 2:
        raise InvalidInputError(
            f"{name} must be 2-D (samples, features), got shape {tuple(x.shape)}; "
            f"flatten samples first, e.g. x.reshape(len(x), -1)")
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must be a floating tensor, got {x.dtype}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InvalidInputError(f"{name} is empty: shape {tuple(x.shape)}")
    # One reduction finds a NaN or Inf; a sum that overflowed on finite values is told
    # apart by the elementwise test.
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise InvalidInputError(f"{name} contains NaN or Inf values")
    return x


def _check_k(k, m: int) -> int:
    k = check_int("k", k)
    if k > m:
        raise InvalidInputError(f"the reference set holds {m} samples, fewer than k={k}")
    return int(k)


def _check_positive_int(value, name: str) -> int | None:
    return None if value is None else check_int(name, value)


def _resolve(device, fallback: torch.device) -> torch.device:
    if device is None:
        return fallback
    return resolve_device(str(device))


# --- shared maths ----------------------------------------------------------------------


def _matmul_roundoff(device: torch.device) -> float:
    """Unit roundoff of a float32 matrix product under the current torch settings."""
    precision = torch.get_float32_matmul_precision()
    if precision == "medium":
        return 2.0 ** -8  # bfloat16 products allowed
    if precision == "high" or (device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32):
        return 2.0 ** -11  # TF32 (or bfloat16x3)
    return _U32


def _error_bound(query_norms: torch.Tensor, max_ref_norm: float, d: int,
                 u_mm: float) -> torch.Tensor:
    """Bound ``E`` (module docstring, step 4) on float32 squared-distance error, ``(n,)``."""
    if d * u_mm >= 0.5:  # the dot-product bound is void: certify nothing
        return torch.full_like(query_norms, math.inf)
    gamma = d * u_mm / (1 - d * u_mm)
    return 2 * (gamma + 4 * _U32) * (query_norms + max_ref_norm).square()


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _centred32(x: torch.Tensor, mu: torch.Tensor | None) -> torch.Tensor:
    """``fl32(x - mu)``: the subtraction in the working dtype, then one rounding (no copy
    for float32 ``x`` and no shift)."""
    if mu is None:
        return x.to(torch.float32)
    return (x.to(mu.dtype) - mu).to(torch.float32)


def _prepare_refs(refs: torch.Tensor, chunk: int) -> _Refs:
    m, d = refs.shape
    dtype = _work_dtype(refs)
    chunk = max(1, min(chunk, _CHUNK_ELEMENTS["cpu"] // (4 * d)))  # float64 copies in _norms
    # Any shift leaves distances unchanged, so the mean need not be accurate: chunk sums
    # in the working dtype, accumulated in float64.
    total = torch.zeros(d, dtype=torch.float64, device=refs.device)
    norms = torch.empty(m, dtype=torch.float64, device=refs.device)
    for s in range(0, m, chunk):
        total += refs[s:s + chunk].to(dtype).sum(0)
        norms[s:s + chunk] = _norms(_centred32(refs[s:s + chunk], None))
    mean = total / m
    offset = float(mean.square().sum())  # ||mu||^2; mean ||r - mu||^2 = mean ||r||^2 - this
    if offset <= 0.25 ** 2 * max(0.0, float(norms.square().mean()) - offset):
        return _Refs(refs, None, norms.square().float(), float(norms.max()))
    mu = mean.to(dtype)
    for s in range(0, m, chunk):
        norms[s:s + chunk] = _norms(_centred32(refs[s:s + chunk], mu))
    return _Refs(refs, mu, norms.square().float(), float(norms.max()))


def _norms(x32: torch.Tensor) -> torch.Tensor:
    """Row norms of a float32 matrix, accumulated in float64, ``(n,)`` float64."""
    return torch.linalg.vector_norm(x32, dim=1, dtype=torch.float64)


def _exact_sq(queries: torch.Tensor, refs: torch.Tensor, rows: torch.Tensor,
              cols: torch.Tensor) -> torch.Tensor:
    """float64 ``||queries[rows] - refs[cols]||^2`` by direct differences, any shape of
    ``rows`` / ``cols`` (equal). Negative ``cols`` (no candidate) give ``inf``."""
    shape = cols.shape
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    out = torch.full(rows.shape, math.inf, dtype=torch.float64, device=cols.device)
    valid = (cols >= 0).nonzero().squeeze(1)
    step = max(1, _CHUNK_ELEMENTS["cpu"] // (8 * refs.shape[1]))  # 8 MB float64 buffers
    for s in range(0, len(valid), step):
        v = valid[s:s + step]
        diff = refs[cols[v]].double() - queries[rows[v]].double()
        out[v] = diff.square().sum(1)
    return out.view(shape)


def _sort_candidates(sq: torch.Tensor, idx: torch.Tensor):
    """Sort each row of ``(n, c)`` candidates on (squared distance, index)."""
    order = idx.argsort(dim=1)
    sq, idx = sq.gather(1, order), idx.gather(1, order)
    order = sq.argsort(dim=1, stable=True)
    return sq.gather(1, order), idx.gather(1, order)


def _scores(q32: torch.Tensor, refs: _Refs, start: int, stop: int) -> torch.Tensor:
    """``||r||^2 - 2 q.r`` (float32, ``(n, stop - start)``) of centred queries against
    references [start, stop)."""
    r32 = _centred32(refs.x[start:stop], refs.mu)
    # Computed as (references x queries) and returned transposed: measured 20 % faster
    # than the other orientation for 3072-dim rows on a CPU (MKL).
    return torch.addmm(refs.norms[start:stop, None], r32, q32.T, alpha=-2).T


def _select(q32: torch.Tensor, refs: _Refs, kk: int, ref_chunk: int):
    """Running top-``kk`` of ``||r||^2 - 2 q.r`` over reference chunks (float32, unsorted)."""
    best_v = best_i = None
    for s in range(0, refs.x.shape[0], ref_chunk):
        block = _scores(q32, refs, s, s + ref_chunk)
        v, i = block.topk(min(kk, block.shape[1]), dim=1, largest=False, sorted=False)
        i = i + s
        if best_v is not None:
            v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
            v, sel = v.topk(min(kk, v.shape[1]), dim=1, largest=False, sorted=False)
            i = i.gather(1, sel)
        best_v, best_i = v, i
    return best_v, best_i


def _merge(best_sq, best_i, new_sq, new_i, k: int):
    """Keep the first k of two (distance, index)-sorted candidate lists per row, where
    every index in ``best`` is lower than every index in ``new`` (a stable sort then
    keeps ties in index order)."""
    sq, idx = torch.cat([best_sq, new_sq], 1), torch.cat([best_i, new_i], 1)
    order = sq.argsort(dim=1, stable=True)[:, :k]
    return sq.gather(1, order), idx.gather(1, order)


def _widen(queries: torch.Tensor, refs: _Refs, rows: torch.Tensor, threshold: torch.Tensor,
           k: int, ref_chunk: int):
    """Step 5 for queries ``rows``: every reference with ``s~ <= threshold`` (squared,
    float64, per query) is re-ranked exactly; returns the first k on (distance, index)."""
    n, dev = len(rows), refs.x.device
    best_sq = torch.full((n, k), math.inf, dtype=torch.float64, device=dev)
    best_i = torch.full((n, k), -1, dtype=torch.int64, device=dev)
    q32 = _centred32(queries[rows], refs.mu)
    qn = _norms(q32).square()
    # Compare in float32 against the threshold rounded up, so nothing within it is lost.
    limit = torch.nextafter((threshold - qn).float(), torch.tensor(math.inf, device=dev))
    for s in range(0, refs.x.shape[0], ref_chunk):
        hit_q, hit_r = (_scores(q32, refs, s, s + ref_chunk) <= limit[:, None]).nonzero(
            as_tuple=True)
        if len(hit_q) == 0:
            continue
        hit_r = hit_r + s
        sq = _exact_sq(queries, refs.x, rows[hit_q], hit_r)
        # nonzero() lists hits by (query, index); two stable sorts make it
        # (query, distance, index), then each query's first k go into a padded block.
        order = sq.argsort(stable=True)
        order = order[hit_q[order].argsort(stable=True)]
        hit_q, hit_r, sq = hit_q[order], hit_r[order], sq[order]
        counts = torch.bincount(hit_q, minlength=n)
        rank = torch.arange(len(hit_q), device=dev) - (counts.cumsum(0) - counts)[hit_q]
        keep = rank < k
        new_sq = torch.full((n, k), math.inf, dtype=torch.float64, device=dev)
        new_i = torch.full((n, k), -1, dtype=torch.int64, device=dev)
        new_sq[hit_q[keep], rank[keep]] = sq[keep]
        new_i[hit_q[keep], rank[keep]] = hit_r[keep]
        best_sq, best_i = _merge(best_sq, best_i, new_sq, new_i, k)
    return best_sq, best_i


def _finish(queries: torch.Tensor, refs: _Refs, cand_i: torch.Tensor,
            kth_approx: torch.Tensor | None, q_norms: torch.Tensor, k: int,
            ref_chunk: int, u_mm: float):
    """Steps 3-5 for one chunk of queries.

    Args:
        queries: the query chunk ``(n, D)`` as given.
        cand_i: ``(n, K)`` candidate indices (``-1``: none).
        kth_approx: ``(n,)`` float64 approximate squared distance of the K-th candidate
            (``None``: no certificate, as for approximate indexes).
        q_norms: ``(n,)`` float64 ``||fl32(q - mu)||``.

    Returns float64 squared distances and indices, ``(n, k)`` each, and the rows that
    could not be answered (missing candidates in approximate mode; empty otherwise).
    """
    rows = torch.arange(len(queries), device=cand_i.device)
    sq = _exact_sq(queries, refs.x, rows[:, None].expand_as(cand_i), cand_i)
    sq, idx = _sort_candidates(sq, cand_i)
    sq, idx = sq[:, :k].contiguous(), idx[:, :k].contiguous()
    if kth_approx is None:
        return sq, idx, (idx < 0).any(1).nonzero().squeeze(1)
    bound = _error_bound(q_norms, refs.max_norm, refs.x.shape[1], u_mm)
    certified = (kth_approx - bound > sq[:, -1]) | (cand_i.shape[1] == refs.x.shape[0])
    todo = (~certified).nonzero().squeeze(1)
    if len(todo):
        sq[todo], idx[todo] = _widen(queries, refs, todo, sq[todo, -1] + bound[todo], k,
                                     ref_chunk)
    return sq, idx, todo[:0]


# --- backends --------------------------------------------------------------------------


def _chunks(n: int, m: int, d: int, device: torch.device, query_chunk, ref_chunk):
    budget = _CHUNK_ELEMENTS["cuda" if device.type == "cuda" else "cpu"]
    qc = query_chunk or max(1, min(n, 1024 if device.type == "cpu" else 4096, budget // d))
    rc = ref_chunk or max(1, min(m, budget // d, budget // qc))
    return qc, rc


def _torch_search(queries, refs: _Refs, k: int, qc: int, rc: int, rows=None):
    """Exact search (steps 2-5) of ``queries[rows]`` (all rows by default)."""
    n, dev = queries.shape[0], refs.x.device
    rows = torch.arange(n, device=dev) if rows is None else rows
    kk = min(k + _EXTRA, refs.x.shape[0])
    u_mm = _matmul_roundoff(dev)
    out_sq = torch.empty((len(rows), k), dtype=torch.float64, device=dev)
    out_i = torch.empty((len(rows), k), dtype=torch.int64, device=dev)
    for s in range(0, len(rows), qc):
        q = queries[rows[s:s + qc]]
        q32 = _centred32(q, refs.mu)
        qn = _norms(q32)
        v, i = _select(q32, refs, kk, rc)
        kth = v.max(1).values.double() + qn.square()
        out_sq[s:s + qc], out_i[s:s + qc], _ = _finish(q, refs, i, kth, qn, k, rc, u_mm)
    return out_sq, out_i


def _faiss_search(queries, refs: _Refs, k: int, qc: int, rc: int, approximate: bool,
                  index_kind: str, nprobe):
    try:
        import faiss
    except ImportError:
        raise InvalidInputError("backend 'faiss' needs the faiss-cpu package "
                                "(pip install faiss-cpu), or use backend='torch'") from None
    m, d = refs.x.shape
    kk = min(k + _EXTRA, m)
    centred = lambda x: np.ascontiguousarray(_centred32(x, refs.mu).numpy())  # noqa: E731
    if not approximate:
        index = faiss.IndexFlatL2(d)
    elif index_kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, _HNSW_M)
        index.hnsw.efSearch = max(64, 4 * kk)
    else:
        # nlist ~ sqrt(M), with at least 39 training points per list (FAISS's minimum).
        nlist = max(1, min(round(math.sqrt(m)), m // 39))
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist)
        index.nprobe = min(nlist, nprobe or max(1, round(math.sqrt(nlist))))
        # FAISS's k-means samples 256 points per list itself; take them here, seeded,
        # so that no centred copy of all references is needed.
        pick = np.random.default_rng(0).permutation(m)[:256 * nlist]
        index.train(centred(refs.x[torch.from_numpy(np.sort(pick))]))
    if refs.mu is None and refs.x.dtype == torch.float32 and refs.x.is_contiguous():
        index.add(refs.x.numpy())  # FAISS copies once; chunked adds would regrow its buffer
    else:
        for s in range(0, m, rc):
            index.add(centred(refs.x[s:s + rc]))
    n = queries.shape[0]
    out_sq = torch.empty((n, k), dtype=torch.float64)
    out_i = torch.empty((n, k), dtype=torch.int64)
    missing = []
    for s in range(0, n, qc):
        q = queries[s:s + qc]
        q32 = _centred32(q, refs.mu)
        approx_sq, cand = index.search(np.ascontiguousarray(q32.numpy()), kk)
        cand = torch.from_numpy(cand)
        kth = None if approximate else torch.from_numpy(approx_sq[:, -1]).double()
        qn = _norms(q32)
        out_sq[s:s + qc], out_i[s:s + qc], lost = _finish(q, refs, cand, kth, qn, k, rc,
                                                          _U32)
        missing.append(lost + s)
    missing = torch.cat(missing)
    if len(missing):  # the approximate index returned fewer than k: answer those exactly
        out_sq[missing], out_i[missing] = _torch_search(queries, refs, k, qc, rc, missing)
    return out_sq, out_i


# --- public --------------------------------------------------------------------------------


def nearest(queries, refs, k: int = 1, backend: str = "auto", *, approximate: bool = False,
            device=None, memory_budget: int = DEFAULT_MEMORY_BUDGET, index: str = "ivf",
            nprobe: int | None = None, query_chunk: int | None = None,
            ref_chunk: int | None = None) -> Neighbors:
    """The ``k`` nearest references of every query in Euclidean distance.

    Args:
        queries: ``(N, D)`` floating tensor (CPU or CUDA) or NumPy array, e.g. generated
            samples flattened with ``x.reshape(len(x), -1)``; must be 2-D.
        refs: ``(M, D)`` the same, e.g. real samples; ``M >= k``.
        k: neighbours per query.
        backend: ``torch`` (exact, batched on CPU or CUDA), ``faiss`` (FAISS on the CPU;
            exact ``IndexFlatL2`` unless ``approximate``) or ``auto``: torch when the
            references fit ``memory_budget`` as float32 (``M * D * 4`` bytes) and the
            search is exact, else faiss (torch if faiss is not installed and the search
            is exact).
        approximate: use an approximate FAISS index (``index``): faster on large sets,
            candidates re-ranked exactly, but a true neighbour may be missed.
        device: where the torch backend computes (``cpu``, ``cuda``, ``cuda:N``); default
            the device of ``queries`` (CPU for NumPy). Results are returned there, for
            either backend.
        memory_budget: bytes of float32 references up to which ``auto`` picks torch.
        index: approximate index, ``ivf`` (``IndexIVFFlat``, ``nlist ~ sqrt(M)`` lists)
            or ``hnsw`` (``IndexHNSWFlat``, 32 links, ``efSearch = max(64, 4 (k + 8))``).
        nprobe: IVF lists visited per query (default ``sqrt(nlist)``).
        query_chunk, ref_chunk: rows per chunk (default: 32 MB of float32 per chunk and per
            distance block on the CPU, 256 MB on a GPU). The result does not depend on them.

    Returns:
        :class:`Neighbors` ``(distances, indices)``, each ``(N, k)``: float32 distances in
        data units, ascending, and int64 indices into ``refs``. Ties go to the lower
        index. The exact modes equal a float64 brute force (module docstring: float32
        selection, float64 re-ranking, a certificate, a widened search where it fails).

    Raises:
        InvalidInputError: non-2-D, empty, non-floating or non-finite inputs, different
            feature counts, ``k < 1`` or ``k > M``, an unknown backend or index.
    """
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if approximate and backend == "torch":
        raise InvalidInputError("approximate search needs backend 'faiss' or 'auto'; "
                                "backend 'torch' is exact only")
    if index not in APPROXIMATE_INDEXES:
        raise InvalidInputError(
            f"unknown index {index!r}; valid: {', '.join(APPROXIMATE_INDEXES)}")
    nprobe = _check_positive_int(nprobe, "nprobe")
    query_chunk = _check_positive_int(query_chunk, "query_chunk")
    ref_chunk = _check_positive_int(ref_chunk, "ref_chunk")
    if not isinstance(memory_budget, (int, float)) or not memory_budget > 0:
        raise InvalidInputError(f"memory_budget must be a positive byte count, got "
                                f"{memory_budget!r}")
    target = _resolve(device, queries.device if isinstance(queries, torch.Tensor)
                      else torch.device("cpu"))
    queries = _as_matrix(queries, "queries")
    refs = _as_matrix(refs, "refs")
    (n, d), (m, d_ref) = queries.shape, refs.shape
    if d != d_ref:
        raise InvalidInputError(f"queries have D={d} features but refs have D={d_ref}")
    k = _check_k(k, m)

    if backend == "auto":
        exact_fits = not approximate and m * d * 4 <= memory_budget
        backend = "torch" if exact_fits or (not approximate and not _has_faiss()) else "faiss"
    compute = target if backend == "torch" else torch.device("cpu")
    queries, refs = queries.to(compute), refs.to(compute)
    qc, rc = _chunks(n, m, d, compute, query_chunk, ref_chunk)
    prepared = _prepare_refs(refs, rc)
    if backend == "torch":
        sq, idx = _torch_search(queries, prepared, k, qc, rc)
    else:
        sq, idx = _faiss_search(queries, prepared, k, qc, rc, approximate, index, nprobe)
    return Neighbors(sq.sqrt().float().to(target), idx.to(target))


def _has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True
