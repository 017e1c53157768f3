"""The two figures of the core's closing note, measured here:

1. extra memory of a reduced call on 1e8 float32 predictions (uint8 labels):
   peak resident memory above the inputs (Linux: VmHWM after resetting it
   through /proc/self/clear_refs) and NumPy's traced allocations;
2. the time of a call on 1,000 elements next to the NumPy formula's.

    python benchmarks/footprint.py [N]
"""
import sys
import timeit
import tracemalloc

import numpy as np

import fastbce
from fastbce import _kernels


def resident_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def extra_memory(n):
    rng = np.random.default_rng(0)
    x = rng.normal(size=n).astype(np.float32)
    y = (x > 0).astype(np.uint8)
    fastbce.bce(y[:1000], x[:1000], from_logits=True)  # load the kernels first
    p = np.abs(np.tanh(x[::2]))  # an input of the second case, made before measuring
    rows = []
    for name, call in [
        ("bce logits mean", lambda: fastbce.bce(y, x, from_logits=True)),
        ("bce probabilities sum, strided labels", lambda: fastbce.bce(y[::2], p, reduction="sum")),
    ]:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current resident size
        before = resident_kib("VmRSS")
        tracemalloc.start()
        call()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        peak = resident_kib("VmHWM")
        rows.append((name, (peak - before) / 1024, traced / 2**20))
    return rows


def small_call_ratio(n=1000):
    rng = np.random.default_rng(0)
    x = rng.normal(size=n).astype(np.float32)
    y = (x > 0).astype(np.float32)
    y8 = y.astype(np.uint8)

    def numpy_formula():
        return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))

    times = {}
    for name, call in [("numpy formula", numpy_formula),
                       ("fastbce, float32 labels", lambda: fastbce.bce(y, x, from_logits=True)),
                       ("fastbce, uint8 labels", lambda: fastbce.bce(y8, x, from_logits=True))]:
        times[name] = min(timeit.repeat(call, number=2000, repeat=9)) / 2000
    return times


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 100_000_000
    print(f"fastbce {fastbce.__version__}, kernels: {_kernels.TARGET}, {_kernels.max_threads()} threads")
    print(f"extra memory of a reduced call, n = {n:,} float32 predictions + uint8 labels "
          f"({n * 5 / 2**20:,.0f} MiB of inputs):")
    for name, rss, traced in extra_memory(n):
        print(f"  {name:<40} peak RSS +{rss:8.2f} MiB   NumPy-traced +{traced:8.3f} MiB")
    times = small_call_ratio()
    base = times["numpy formula"]
    print("a call on 1,000 float32 logits (mean):")
    for name, t in times.items():
        print(f"  {name:<40} {t * 1e6:7.2f} us   numpy / this = {base / t:.2f}")


if __name__ == "__main__":
    main()
