"""The cost of a small evaluation call: best-of-N times of fastbce.evaluate
and Evaluator.update/result on 1,000 elements (uint8 labels, float32
probabilities), beside fastbce.bce on the same data, and of grouped reports.

    python benchmarks/evaluate_small_calls.py [--big]   # --big: also n = 1e7
"""
import sys

import numpy as np

import fastbce
from fastbce import Evaluator, evaluate
from _timing import best_time


def best(fn, repeat):
    fn()  # (a first call outside the timing)
    return best_time(fn, repeat)


def main():
    rng = np.random.default_rng(0)
    n = 1000
    y = (rng.random(n) < 0.3).astype(np.uint8)
    p = rng.random(n).astype(np.float32)
    ev = Evaluator()
    ev_b = Evaluator(bins=100)
    rows = [
        ("bce 1e3", lambda: fastbce.bce(y, p), 2000),
        ("evaluate 1e3", lambda: evaluate(y, p), 2000),
        ("evaluate 1e3 bins=100", lambda: evaluate(y, p, bins=100), 2000),
        ("Evaluator.update 1e3", lambda: ev.update(y, p), 2000),
        ("Evaluator.update 1e3 bins=100", lambda: ev_b.update(y, p), 2000),
        ("Evaluator.result (no bins)", lambda: ev.result(), 2000),
        ("Evaluator.result bins=100", lambda: ev_b.result(), 2000),
    ]
    ng = 100_000
    yg = (rng.random(ng) < 0.3).astype(np.uint8)
    pg = rng.random(ng).astype(np.float32)
    g = rng.integers(0, 1000, ng)
    rows += [
        ("evaluate 1e5 groups=1000", lambda: evaluate(yg, pg, groups=g), 50),
        ("evaluate 1e5 groups=1000 bins=10", lambda: evaluate(yg, pg, groups=g, bins=10), 50),
        ("  + to_dict()", lambda: evaluate(yg, pg, groups=g, bins=10).to_dict(), 20),
        ("evaluate 1e3 bins=100 + roc_auc", lambda: evaluate(y, p, bins=100).roc_auc, 2000),
        ("evaluate 1e3 bins=100 + to_dict", lambda: evaluate(y, p, bins=100).to_dict(), 1000),
    ]
    if "--big" in sys.argv:
        big = 10_000_000
        yb = (rng.random(big) < 0.3).astype(np.uint8)
        pb = rng.random(big).astype(np.float32)
        rows += [("evaluate 1e7", lambda: evaluate(yb, pb), 20),
                 ("evaluate 1e7 bins=100", lambda: evaluate(yb, pb, bins=100), 20)]
    for name, fn, repeat in rows:
        print(f"{name:32s} {best(fn, repeat) * 1e6:10.1f} us")


if __name__ == "__main__":
    main()
