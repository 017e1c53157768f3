"""fastbce's element-wise functions and grad_hess against SciPy and NumPy,
with pytest-benchmark, on the same data.

    pytest benchmarks/test_elementwise_speed.py                          # 1e6 and 1e7
    pytest benchmarks/test_elementwise_speed.py -k "sigmoid and float32" --benchmark-group-by=group

- ``sigmoid``: ``scipy.special.expit`` and the NumPy formula ``1 / (1 + exp(-x))``;
- ``log_sigmoid``: ``scipy.special.log_expit`` and ``-numpy.logaddexp(0, -x)``;
- ``softplus``: ``numpy.logaddexp(0, x)`` (SciPy has none);
- ``grad_hess`` (a boosting objective's gradient and hessian, 0/1 labels,
  with and without sample weights): the NumPy formulas ``s = 1 / (1 +
  exp(-x)); grad = w * (s - y); hess = w * s * (1 - s)``.

Every implementation allocates its result, as a caller would use it. Tests
are grouped by case (function, dtype, size, threads) so that the table
compares implementations side by side; SciPy and NumPy run on one thread and
skip other thread counts. Without SciPy its cases skip.
"""
import numpy as np
import pytest

import fastbce
from fastbce import _kernels
from _timing import record_throughput

THREADS = sorted({1, _kernels.max_threads()})
SIZES = [1_000_000, 10_000_000]
FUNCTIONS = ("sigmoid", "log_sigmoid", "softplus")
GRAD_HESS_CASES = ("plain", "weighted")


def _numpy_sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88 / -709: 1 / inf = 0
        return 1 / (1 + np.exp(-x))


def _peer(impl, name):
    """The peer's function, or None where it has none; skips if not installed."""
    if impl == "numpy":
        return {"sigmoid": _numpy_sigmoid,
                "log_sigmoid": lambda x: -np.logaddexp(0, -x),
                "softplus": lambda x: np.logaddexp(0, x)}[name]
    special = pytest.importorskip("scipy.special")
    return {"sigmoid": special.expit, "log_sigmoid": special.log_expit}.get(name)


def _numpy_grad_hess(y, x, w=None):
    s = _numpy_sigmoid(x)
    grad = s - y
    hess = s * (1 - s)
    if w is not None:
        grad *= w
        hess *= w
    return grad, hess


@pytest.fixture(scope="module")
def data_cache():
    return {}


def _data(cache, size, dtype):
    """Logits ~ N(0, 5^2), 0/1 labels drawn from them (uint8, and in the float
    dtype for NumPy), weights in [0, 2)."""
    key = (size, dtype)
    if key not in cache:
        cache.clear()  # one size at a time in memory
        rng = np.random.default_rng(0)
        x = rng.normal(0.0, 5.0, size).astype(dtype)
        labels = (rng.random(size) < fastbce.sigmoid(x)).astype(np.uint8)
        weights = (rng.random(size) * 2).astype(dtype)
        cache[key] = x, labels, labels.astype(dtype), weights
    return cache[key]


def _skip_peer_threads(impl, threads):
    if impl != "fastbce" and threads != 1:
        pytest.skip(f"{impl} runs on one thread")


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("impl", ["fastbce", "scipy", "numpy"])
def test_elementwise_speed(benchmark, data_cache, impl, name, dtype, size, threads):
    _skip_peer_threads(impl, threads)
    x = _data(data_cache, size, np.dtype(dtype))[0]
    if impl == "fastbce":
        function = getattr(fastbce, name)
        fn = lambda: function(x, num_threads=threads)  # noqa: E731
    else:
        function = _peer(impl, name)
        if function is None:
            pytest.skip(f"{impl} has no {name}")
        fn = lambda: function(x)  # noqa: E731
    benchmark.group = f"{name} {dtype} n={size:.0e} threads={threads}"
    result = benchmark(fn)
    assert result.dtype == x.dtype
    record_throughput(benchmark, size)


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GRAD_HESS_CASES)
@pytest.mark.parametrize("impl", ["fastbce", "numpy"])
def test_grad_hess_speed(benchmark, data_cache, impl, case, dtype, size, threads):
    _skip_peer_threads(impl, threads)
    x, labels, float_labels, weights = _data(data_cache, size, np.dtype(dtype))
    w = weights if case == "weighted" else None
    if impl == "fastbce":
        fn = lambda: fastbce.grad_hess(labels, x, sample_weight=w, num_threads=threads)  # noqa: E731
    else:
        fn = lambda: _numpy_grad_hess(float_labels, x, w)  # noqa: E731
    benchmark.group = f"grad_hess {case} {dtype} n={size:.0e} threads={threads}"
    grad, hess = benchmark(fn)
    assert grad.dtype == hess.dtype == x.dtype
    record_throughput(benchmark, size)
