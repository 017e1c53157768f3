"""fastbce.metrics.log_loss vs sklearn.metrics.log_loss on multi-class input:
n = 1e6 rows, k = 10 classes, float64 probabilities (rows sum to one), int64
labels 0..9, on ONE thread (threadpoolctl limits OpenMP, which fastbce's
kernels use, and the BLAS; scikit-learn's log_loss is single-threaded NumPy
anyway). Best of several runs each; also checks that the two agree.

    python benchmarks/multiclass_log_loss.py [--n N] [--k K] [--repeat R]

Needs scikit-learn and threadpoolctl.
"""
import argparse

import numpy as np
import sklearn
import sklearn.metrics
from threadpoolctl import threadpool_limits

import fastbce
import fastbce.metrics
from _timing import best_time as best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    proba = rng.random((args.n, args.k))
    proba /= proba.sum(axis=1, keepdims=True)
    y = rng.integers(0, args.k, args.n)  # int64
    weights = rng.random(args.n)
    print(f"n = {args.n:.0e}, k = {args.k}, float64 probabilities, int64 labels, 1 thread; "
          f"fastbce {fastbce.__version__} (kernel target {fastbce._kernels.TARGET}), "
          f"scikit-learn {sklearn.__version__}; best of {args.repeat}")
    with threadpool_limits(limits=1):
        for name, kwargs in (("unweighted", {}), ("sample_weight", {"sample_weight": weights})):
            ours = fastbce.metrics.log_loss(y, proba, **kwargs)
            theirs = sklearn.metrics.log_loss(y, proba, **kwargs)
            assert abs(ours - theirs) <= 1e-12 * abs(theirs), (ours, theirs)
            t_ours = best(lambda: fastbce.metrics.log_loss(y, proba, **kwargs), args.repeat)
            t_theirs = best(lambda: sklearn.metrics.log_loss(y, proba, **kwargs),
                            max(2, args.repeat // 2))
            print(f"{name:14s} fastbce {t_ours * 1e3:8.1f} ms   scikit-learn {t_theirs * 1e3:8.1f} ms"
                  f"   ratio {t_theirs / t_ours:6.1f}x   (results differ by "
                  f"{abs(ours - theirs) / abs(theirs):.1e} relative)")


if __name__ == "__main__":
    main()
