"""fastbce.evaluate's time over fastbce.bce's on the same data.

    python benchmarks/evaluate_vs_bce.py [--n 1e7] [--threads 1,2]

Imbalanced 0/1 labels (uint8, 30% positives) with float32 probabilities
(and their logits): the report plain, with bins=100, with sample weights and
with 10 groups; each case's time over bce's on the same predictions (logits
cases over bce's on the logits). Interleaved rounds, best of 7.
"""
import time

import numpy as np

import fastbce
from _timing import size_and_threads


def main():
    n, thread_counts = size_and_threads(__doc__.splitlines()[0])
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.3).astype(np.uint8)
    p = np.clip(rng.beta(2, 5, n) + 0.3 * y, 0.001, 0.999).astype(np.float32)
    x = np.log(p / (1 - p)).astype(np.float32)
    w = rng.random(n).astype(np.float32)
    groups = rng.integers(0, 10, n)
    print(f"n = {n:,}, float32, kernels: {fastbce._kernels.TARGET}; time over bce's (best of 7)")
    for threads in thread_counts:
        cases = {
            "bce probabilities": lambda: fastbce.bce(y, p, num_threads=threads),
            "bce logits": lambda: fastbce.bce(y, x, from_logits=True, num_threads=threads),
            "evaluate probabilities": lambda: fastbce.evaluate(y, p, num_threads=threads),
            "evaluate logits": lambda: fastbce.evaluate(y, x, from_logits=True, num_threads=threads),
            "evaluate probabilities bins=100": lambda: fastbce.evaluate(y, p, bins=100, num_threads=threads),
            "evaluate logits bins=100": lambda: fastbce.evaluate(y, x, from_logits=True, bins=100,
                                                                 num_threads=threads),
            "evaluate probabilities weighted": lambda: fastbce.evaluate(y, p, sample_weight=w,
                                                                        num_threads=threads),
            "evaluate probabilities groups=10": lambda: fastbce.evaluate(y, p, groups=groups,
                                                                         num_threads=threads),
        }
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(7):
            for name, fn in cases.items():
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
        for name, seconds in best.items():
            reference = best["bce logits" if "logits" in name else "bce probabilities"]
            print(f"threads={threads} {name:34s} {seconds * 1e3:7.2f} ms  {seconds / reference:5.2f}x bce")


if __name__ == "__main__":
    main()
