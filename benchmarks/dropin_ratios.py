"""Quick ratios of the drop-ins against what they replace, on 1e7 elements (best of 5):
fastbce.metrics.log_loss vs scikit-learn, sigmoid/log_sigmoid vs SciPy, softplus vs
np.logaddexp, grad_hess vs the NumPy formula.  python benchmarks/dropin_ratios.py
(needs scikit-learn and SciPy)."""
import time, numpy as np, fastbce, fastbce.metrics, scipy.special, sklearn.metrics
def best(f, r=5):
    t = []
    for _ in range(r):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    return min(t)
rng = np.random.default_rng(0); n = 10_000_000
p = rng.random(n); y = (rng.random(n) < p).astype(np.int64)
ts = best(lambda: sklearn.metrics.log_loss(y, p), 2); tf = best(lambda: fastbce.metrics.log_loss(y, p))
print(f"metrics.log_loss 1e7 float64 int64 labels, 2 threads: {tf*1e3:.1f} ms vs sklearn {ts*1e3:.0f} ms: {ts/tf:.0f}x")
x = rng.normal(0, 5, n).astype(np.float32)
for name, ours, theirs in (("sigmoid", fastbce.sigmoid, scipy.special.expit), ("log_sigmoid", fastbce.log_sigmoid, scipy.special.log_expit)):
    for thr in (1, 2):
        to = best(lambda: ours(x, num_threads=thr)); tt = best(lambda: theirs(x))
        print(f"{name} 1e7 float32, {thr} thread(s): {to*1e3:.1f} ms vs scipy {tt*1e3:.1f} ms: {tt/to:.1f}x")
to = best(lambda: fastbce.softplus(x, num_threads=2)); tt = best(lambda: np.logaddexp(0, x))
print(f"softplus 1e7 float32, 2 threads: {to*1e3:.1f} ms vs np.logaddexp(0, x) {tt*1e3:.1f} ms: {tt/to:.1f}x")
yy = (rng.random(n) < 0.5).astype(np.float32)
def numpy_grad_hess():
    s = 1 / (1 + np.exp(-x)); return s - yy, s * (1 - s)
to = best(lambda: fastbce.grad_hess(yy, x, num_threads=2)); tt = best(numpy_grad_hess)
print(f"grad_hess 1e7 float32, 2 threads: {to*1e3:.1f} ms vs NumPy formula {tt*1e3:.1f} ms: {tt/to:.1f}x")
