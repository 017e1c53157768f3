"""Threads: num_threads validation, OpenMP's defaults honoured, the GIL released."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastbce
from fastbce import _kernels


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_num_threads_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="num_threads"):
        fastbce.bce([1, 0], [0.5, 0.5], num_threads=bad)


def test_num_threads_above_the_core_count_is_accepted():
    y = np.arange(100_000) % 2
    p = np.linspace(0.01, 0.99, y.size)
    assert fastbce.bce(y, p, num_threads=64) == fastbce.bce(y, p, num_threads=1)


def test_omp_num_threads_sets_the_default():
    code = "from fastbce import _kernels; print(_kernels.max_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(fastbce.__file__)))
    expected = "3" if _kernels.openmp_enabled() else "1"
    assert out.stdout.strip() == expected


def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _kernels.openmp_enabled():
        pytest.skip("serial build")
    before = _kernels.max_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _kernels.max_threads() == 1
    assert _kernels.max_threads() == before


def test_the_gil_is_released_while_a_kernel_runs():
    """Another Python thread makes progress while a long kernel call runs."""
    n = 20_000_000
    y = np.zeros(n, dtype=np.uint8)
    x = np.full(n, 0.5, dtype=np.float64)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        for _ in range(3):  # the longest of a few calls, so a slow machine still sees it
            start = time.perf_counter()
            fastbce.bce_and_grad(y, x, from_logits=True, reduction="sum", num_threads=1)
            end = time.perf_counter()
            inside = [t for t in ticks if start < t < end]
            if end - start > 0.02 and len(inside) >= 2:
                break
    finally:
        stop.set()
        counter.join()
    assert end - start > 0.02, "the call was too short to tell"
    assert len(inside) >= 2, "no other thread ran during the kernel: the GIL was held"
