"""fastbce.torch against torch.nn.functional with pytest-benchmark, at equal threads.

    pytest benchmarks/test_torch_speed.py                    # sizes 1e3, 1e5, 1e7
    pytest benchmarks/test_torch_speed.py -k "n=1e+07 and float32" --benchmark-group-by=group

Each case is the loss a training step computes: forward (loss), and forward
plus backward (the gradient with respect to the input, as ``loss.backward()``
writes it into ``.grad``), on the same tensors for both implementations.
Both run on the same number of threads: ``torch.set_num_threads`` (which
fastbce.torch passes on to fastbce's kernels). Below
``fastbce.torch._MIN_FAST_SIZE`` elements fastbce.torch hands calls to
PyTorch, so the smallest size compares PyTorch with itself plus the wrapper's
cost. Skips without PyTorch.
"""
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastbce.torch as ft  # noqa: E402
from fastbce import _kernels  # noqa: E402
from _timing import record_throughput

THREADS = sorted({1, _kernels.max_threads()})
FUNCTIONS = {
    ("fastbce", "logits"): ft.binary_cross_entropy_with_logits,
    ("torch", "logits"): F.binary_cross_entropy_with_logits,
    ("fastbce", "probabilities"): ft.binary_cross_entropy,
    ("torch", "probabilities"): F.binary_cross_entropy,
}


@pytest.fixture(scope="module")
def data_cache():
    return {}


def make_data(n, dtype, kind):
    """Logits ~ N(0, 3^2) or their sigmoid in [0.01, 0.99] (on the fast path), 0/1 targets."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=g, dtype=dtype) * 3
    if kind == "probabilities":
        x = torch.sigmoid(x) * 0.98 + 0.01
    target = (torch.rand(n, generator=g) < 0.5).to(dtype)
    return x, target


@pytest.fixture
def threads_set():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["logits", "probabilities"])
@pytest.mark.parametrize("op", ["forward", "forward+backward"])
@pytest.mark.parametrize("impl", ["fastbce", "torch"])
def test_torch_speed(benchmark, data_cache, threads_set, impl, op, kind, dtype, n, threads):
    key = (n, dtype, kind)
    if key not in data_cache:
        data_cache.clear()  # one size at a time in memory
        data_cache[key] = make_data(n, getattr(torch, dtype), kind)
    x, target = data_cache[key]
    loss_fn = FUNCTIONS[impl, kind]
    threads_set(threads)

    if op == "forward":
        def run():
            with torch.no_grad():
                return loss_fn(x, target)
    else:
        def run():
            inp = x.detach().requires_grad_(True)
            loss_fn(inp, target).backward()
            return inp.grad

    benchmark.group = f"{op} {kind} {dtype} n={n:.0e} threads={threads}"
    benchmark(run)
    record_throughput(benchmark, n)
