"""fastbce against its peers with pytest-benchmark, on the same data.

    pytest benchmarks                       # sizes 1e3, 1e5, 1e7
    pytest benchmarks --big                 # and 1e8
    pytest benchmarks -k "logits and float32" --benchmark-group-by=param:n

Tests are grouped by case (operation, input, dtype, size, threads) so that
pytest-benchmark's table compares the implementations side by side. Peers
that are not installed skip. The compiler peers (jax, optax, torch_compile)
compile when their implementation is made, before the timing; JAX runs here
on the thread pool it started with (all cores), so it is timed at the largest
thread count only (``fastbce bench`` times it at 1 thread in a subprocess).
The implementations are those of ``fastbce bench`` (fastbce/bench.py): one
definition for both.
"""
import pytest

import numpy as np

from fastbce import _kernels, bench
from _timing import record_throughput

THREADS = sorted({1, _kernels.max_threads()})
IMPLS = ("fastbce",) + bench.PEERS


@pytest.fixture(scope="module")
def data_cache():
    return {}


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op,kind", bench.CASES, ids=[f"{op}-{kind}" for op, kind in bench.CASES])
@pytest.mark.parametrize("impl", IMPLS)
def test_speed(benchmark, data_cache, impl, op, kind, dtype, n, threads):
    if impl != "fastbce":
        pytest.importorskip(bench.PEER_MODULES[impl])
    if impl in ("numpy", "sklearn") and threads != 1:
        pytest.skip(f"{impl} runs on one thread")
    if impl in bench.SUBPROCESS_PEERS and threads != max(THREADS):
        pytest.skip(f"{impl}: XLA's threads are fixed when JAX starts (fastbce bench: 1 thread in a subprocess)")
    if impl == "sklearn" and n > 10_000_000:
        pytest.skip("scikit-learn's log_loss takes minutes at this size")
    key = (n, dtype, kind)
    if key not in data_cache:
        data_cache.clear()  # one size at a time in memory
        data_cache[key] = bench.make_data(n, np.dtype(dtype), kind)
    labels, y_pred = data_cache[key]
    if impl == "fastbce":
        fn = bench.fastbce_impl(op, kind, labels, y_pred, threads, float_labels=False)
    else:
        try:
            fn = bench.PEER_IMPLS[impl](op, kind, labels.astype(y_pred.dtype), y_pred, threads)
        except bench.PeerUnavailable as error:
            pytest.skip(str(error))
        if fn is None:
            pytest.skip(f"{impl} has no {op} for {kind}")
    benchmark.group = f"{op} {kind} {dtype} n={n:.0e} threads={threads}"
    benchmark(fn)
    record_throughput(benchmark, n)
