"""core.manifold.neighbors against a float64 brute force (direct differences, stable sort).

Integer-valued data makes every distance exact in float64, so planted ties are real ties
and results must match the brute force bit for bit; on continuous data the indices must
match exactly and the distances to float32 rounding.
"""

import sys

import numpy as np
import pytest
import torch

import core.manifold.neighbors as nb
from core.errors import InvalidInputError
from core.manifold.neighbors import Neighbors, nearest

BACKENDS = ["torch", "faiss"]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def brute(queries, refs, k):
    """float64 distances by direct differences; ties to the lower index (stable sort)."""
    d = torch.cdist(torch.as_tensor(queries).double(), torch.as_tensor(refs).double(),
                    compute_mode="donot_use_mm_for_euclid_dist")
    order = d.argsort(dim=1, stable=True)[:, :k]
    return d.gather(1, order), order


def backend_param(name):
    if name == "faiss":
        pytest.importorskip("faiss")
    return name


def assert_equals_brute(result, queries, refs, k, exact=False):
    dist, idx = brute(queries, refs, k)
    assert isinstance(result, Neighbors)
    assert result.distances.dtype == torch.float32 and result.indices.dtype == torch.int64
    assert result.distances.shape == result.indices.shape == (len(queries), k)
    assert torch.equal(result.indices, idx)
    if exact:
        assert torch.equal(result.distances, dist.float())
    else:
        torch.testing.assert_close(result.distances, dist.float(), rtol=1e-6, atol=1e-6)
    assert bool((result.distances.diff(dim=1) >= 0).all())


def integer_data(n, m, d, low=-3, high=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(low, high, (n, d), generator=g).float(),
            torch.randint(low, high, (m, d), generator=g).float())


# --- exactness ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 5])
def test_random_data_equals_brute_force(backend, k):
    backend = backend_param(backend)
    queries, refs = torch.randn(200, 96), torch.randn(1500, 96)
    assert_equals_brute(nearest(queries, refs, k, backend), queries, refs, k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_sized_rows_with_offset_equal_brute_force(backend):
    # 3x32x32 rows in [0, 255]: large norms, where an uncentred float32 expansion loses
    # most of its digits to cancellation.
    backend = backend_param(backend)
    refs = torch.rand(1200, 3072) * 255
    queries = refs[:40] + torch.randn(40, 3072)
    assert_equals_brute(nearest(queries, refs, 3, backend), queries, refs, 3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 3, 12])
def test_planted_ties_go_to_the_lower_index(backend, k):
    backend = backend_param(backend)
    queries, refs = integer_data(120, 600, 5)
    refs[300:320] = refs[7]  # 21 equal rows: more than k + 8 candidates tie
    refs[450] = refs[20]
    # Queries equidistant from two references, far from the rest: the midpoint of
    # r_a = q + e and r_b = q - e.
    e = torch.tensor([1.0, 0, -1, 0, 1])
    queries[0], queries[1] = torch.full((5,), 50.0), torch.full((5,), -50.0)
    refs[100], refs[50] = queries[0] + e, queries[0] - e
    refs[200], refs[400] = queries[1] + 2 * e, queries[1] - 2 * e
    queries[2] = refs[7]
    result = nearest(queries, refs, k, backend)
    assert_equals_brute(result, queries, refs, k, exact=True)
    assert result.indices[0, 0] == 50 and result.distances[0, 0] == e.norm()
    assert result.indices[1, 0] == 200
    assert result.indices[2].tolist() == ([7] + list(range(300, 320)))[:k]


@pytest.mark.parametrize("backend", BACKENDS)
def test_differences_below_float32_resolution_are_resolved(backend):
    # 16 float64 references per query, 1e-9 apart, are one point in float32: more than the
    # k + 8 candidates, so the certificate fails and the widened search decides in float64.
    backend = backend_param(backend)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(300, 16, dtype=torch.float64, generator=g)
    near = base[:20].repeat(15, 1)
    refs = torch.cat([base, near + 1e-9 * torch.randn(near.shape, dtype=torch.float64,
                                                        generator=g)])
    queries = base[:20] + 1e-7 * torch.randn(20, 16, dtype=torch.float64, generator=g)
    assert_equals_brute(nearest(queries, refs, 2, backend), queries, refs, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_query_equal_to_a_reference_has_distance_zero(backend):
    backend = backend_param(backend)
    refs = torch.rand(500, 64) * 100 + 1000
    queries = refs[[17, 0, 499]]
    result = nearest(queries, refs, 2, backend)
    assert result.indices[:, 0].tolist() == [17, 0, 499]
    assert result.distances[:, 0].tolist() == [0.0, 0.0, 0.0]
    assert bool((result.distances[:, 1] > 0).all())


def test_tiny_chunks_equal_one_big_chunk():
    queries, refs = integer_data(60, 250, 4)
    refs[100:110] = refs[3]
    big = nearest(queries, refs, 4, "torch", query_chunk=60, ref_chunk=250)
    for qc, rc in [(1, 1), (7, 3), (3, 50)]:
        small = nearest(queries, refs, 4, "torch", query_chunk=qc, ref_chunk=rc)
        assert torch.equal(small.indices, big.indices)
        assert torch.equal(small.distances, big.distances)
    assert_equals_brute(big, queries, refs, 4, exact=True)


def test_k_equal_to_m_sorts_everything():
    queries, refs = integer_data(10, 6, 3)
    assert_equals_brute(nearest(queries, refs, 6, "torch"), queries, refs, 6, exact=True)


def test_exact_under_reduced_matmul_precision():
    # With bfloat16 products allowed the bound certifies nothing; the answer stays exact.
    queries, refs = torch.randn(30, 300), torch.randn(400, 300)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        result = nearest(queries, refs, 2, "torch")
    finally:
        torch.set_float32_matmul_precision(previous)
    assert_equals_brute(result, queries, refs, 2)


# --- inputs, devices, backends --------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_input(backend):
    backend = backend_param(backend)
    rng = np.random.default_rng(0)
    queries, refs = rng.standard_normal((50, 20)), rng.standard_normal((300, 20)).astype("f4")
    result = nearest(queries, refs, 3, backend)
    assert result.indices.device.type == "cpu"
    assert_equals_brute(result, queries, refs, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_precision_and_grad_tracking_inputs(backend):
    backend = backend_param(backend)
    queries = torch.randn(40, 24, requires_grad=True)
    refs = torch.randn(200, 24).half()
    result = nearest(queries, refs, 2, backend)
    assert_equals_brute(result, queries.detach(), refs, 2)


def test_auto_picks_torch_within_the_budget_and_faiss_beyond(monkeypatch):
    pytest.importorskip("faiss")
    used = []
    for name in ("_torch_search", "_faiss_search"):
        real = getattr(nb, name)
        monkeypatch.setattr(nb, name, lambda *a, _n=name, _r=real: used.append(_n) or _r(*a))
    queries, refs = torch.randn(20, 8), torch.randn(100, 8)
    a = nearest(queries, refs, 2)
    b = nearest(queries, refs, 2, memory_budget=100 * 8 * 4 - 1)
    assert used == ["_torch_search", "_faiss_search"]
    assert torch.equal(a.indices, b.indices)


def test_missing_faiss_is_a_readable_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(InvalidInputError, match="backend 'faiss' needs the faiss-cpu package"):
        nearest(torch.randn(3, 4), torch.randn(5, 4), backend="faiss")
    # auto falls back to the exact torch backend for an exact search
    result = nearest(torch.randn(3, 4), torch.randn(5, 4), memory_budget=1)
    assert result.indices.shape == (3, 1)


@needs_cuda
def test_cuda_equals_cpu():
    queries, refs = integer_data(300, 2000, 32)
    refs[1000:1020] = refs[5]
    on_gpu = nearest(queries.cuda(), refs, 3, "torch")
    assert on_gpu.indices.device.type == "cuda"
    assert_equals_brute(Neighbors(*(t.cpu() for t in on_gpu)), queries, refs, 3, exact=True)
    assert nearest(queries, refs, 1, device="cuda").indices.device.type == "cuda"


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_finds_most_true_neighbours_on_clustered_data(index):
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(40, 32, generator=g) * 5
    refs = centres[torch.randint(0, 40, (4000,), generator=g)] + torch.randn(4000, 32,
                                                                              generator=g)
    queries = centres[torch.randint(0, 40, (300,), generator=g)] + torch.randn(300, 32,
                                                                              generator=g)
    result = nearest(queries, refs, 1, approximate=True, index=index)
    _, truth = brute(queries, refs, 1)
    assert (result.indices == truth).float().mean() > 0.9
    # whatever it found is measured exactly
    found = refs[result.indices[:, 0]]
    torch.testing.assert_close(result.distances[:, 0], (queries - found).norm(dim=1))


# --- bad input ---------------------------------------------------------------------------


Q, R = torch.randn(4, 3), torch.randn(6, 3)
NAN, INF = Q.clone(), R.clone()
NAN[1, 2], INF[0, 0] = float("nan"), float("inf")


@pytest.mark.parametrize("args,kwargs,message", [
    ((torch.empty(0, 3), R), {}, r"queries is empty: shape \(0, 3\)"),
    ((Q, torch.empty(0, 3)), {}, r"refs is empty"),
    ((torch.empty(4, 0), torch.empty(6, 0)), {}, r"queries is empty"),
    ((Q, torch.randn(6, 5)), {}, r"queries have D=3 features but refs have D=5"),
    ((NAN, R), {}, r"queries contains NaN or Inf"),
    ((Q, INF), {}, r"refs contains NaN or Inf"),
    ((Q, R, 0), {}, r"k must be a positive integer, got 0"),
    ((Q, R, 2.0), {}, r"k must be a positive integer"),
    ((Q, R, 7), {}, r"the reference set holds 6 samples, fewer than k=7"),
    ((Q, R), {"backend": "annoy"}, r"unknown backend 'annoy'; valid: auto, torch, faiss"),
    ((Q, R), {"backend": "torch", "approximate": True}, r"backend 'torch' is exact only"),
    ((Q, R), {"index": "lsh"}, r"unknown index 'lsh'; valid: ivf, hnsw"),
    ((Q, R), {"nprobe": 0}, r"nprobe must be a positive integer"),
    ((Q, R), {"ref_chunk": -1}, r"ref_chunk must be a positive integer"),
    ((Q, R), {"memory_budget": 0}, r"memory_budget must be a positive byte count"),
    ((torch.randn(4, 3, 8, 8), R), {}, r"queries must be 2-D .* got shape \(4, 3, 8, 8\); "
                                       r"flatten samples first"),
    ((Q, torch.randn(6)), {}, r"refs must be 2-D"),
    ((Q.long(), R), {}, r"queries must be a floating tensor, got torch.int64"),
    ((Q.tolist(), R), {}, r"queries must be a torch.Tensor or numpy.ndarray, got list"),
    ((np.ones((4, 3), dtype=np.uint8), R), {}, r"queries must hold floating values"),
])
def test_bad_input_is_one_readable_line(args, kwargs, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        nearest(*args, **kwargs)
    assert "\n" not in str(err.value)
