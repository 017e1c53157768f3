"""fastbce's evaluation report against the scikit-learn calls giving the same
figures and against fastbce.bce alone, with pytest-benchmark, on the same data.

    pytest benchmarks/test_evaluate_speed.py                         # 1e5 and 1e7, float32
    pytest benchmarks/test_evaluate_speed.py -k "n=1e+07" --benchmark-group-by=group

- ``evaluate``: ``fastbce.evaluate`` (log loss, Brier score, confusion counts,
  accuracy, precision, recall, F1, balanced accuracy in one pass), plain,
  with ``bins=100`` (ROC AUC, average precision, calibration) and with
  ``groups=`` (10 integer groups: every figure per group too);
- ``sklearn``: ``log_loss + brier_score_loss + accuracy_score +
  precision_recall_fscore_support(average="binary")``, the hard predictions
  ``y_pred >= threshold`` made by NumPy within the timed call; one thread,
  and at 1e7 only a few rounds (seconds a call);
- ``bce``: ``fastbce.bce`` alone on the same data, the reference point of the
  report's cost (target: evaluate at most 2x bce's time).

Tests are grouped by case (size, threads) so that pytest-benchmark's table
compares the implementations side by side. The implementations are those of
``fastbce bench`` (fastbce/bench.py, its ``evaluate`` task); labels are uint8
for fastbce and float32 for scikit-learn, as there. Without scikit-learn its
cases skip.
"""
import numpy as np
import pytest

from fastbce import _kernels, bench
from _timing import record_throughput

THREADS = sorted({1, _kernels.max_threads()})
SIZES = [100_000, 10_000_000]
N_GROUPS = 10
VARIANTS = ("evaluate", "evaluate-bins=100", "evaluate-groups=10")  # fastbce.evaluate: plain, bins=, groups=
SKLEARN_ROUNDS_ABOVE_1E6 = 3


@pytest.fixture(scope="module")
def data_cache():
    return {}


def _data(cache, size, dtype):
    """bench.make_data's probabilities and uint8 labels, float labels for the
    peers and N_GROUPS integer groups."""
    key = (size, dtype)
    if key not in cache:
        cache.clear()  # one size at a time in memory
        labels, y_pred = bench.make_data(size, dtype, "probabilities")
        groups = np.random.default_rng(1).integers(0, N_GROUPS, size)
        cache[key] = labels, y_pred, labels.astype(dtype), groups
    return cache[key]


def _evaluate_options(variant, groups):
    """fastbce.evaluate's further keyword arguments in a variant."""
    return {"evaluate": {}, "evaluate-bins=100": {"bins": 100}, "evaluate-groups=10": {"groups": groups}}[variant]


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("dtype", ["float32"])
@pytest.mark.parametrize("impl", VARIANTS + ("sklearn", "bce"))
def test_evaluate_speed(benchmark, data_cache, impl, dtype, size, threads):
    if impl == "sklearn":
        pytest.importorskip(bench.PEER_MODULES[impl])
        if threads != 1:
            pytest.skip(f"{impl} runs on one thread")
    labels, y_pred, float_labels, groups = _data(data_cache, size, np.dtype(dtype))
    if impl in VARIANTS:
        fn = bench.fastbce_impl("evaluate", "probabilities", labels, y_pred, threads, float_labels=False,
                                **_evaluate_options(impl, groups))
    elif impl == "bce":
        fn = bench.fastbce_impl("bce", "probabilities", labels, y_pred, threads, float_labels=False)
    else:
        fn = bench.PEER_IMPLS[impl]("evaluate", "probabilities", float_labels, y_pred, threads)
    benchmark.group = f"evaluate probabilities {dtype} n={size:.0e} threads={threads}"
    if impl == "sklearn" and size > 1_000_000:
        result = benchmark.pedantic(fn, rounds=SKLEARN_ROUNDS_ABOVE_1E6, iterations=1, warmup_rounds=0)
    else:
        result = benchmark(fn)
    if impl != "bce":
        assert 0 < result.log_loss < 1 and 0 < result.f1 < 1
    if impl == "evaluate-groups=10":
        assert len(result.groups) == N_GROUPS
    if benchmark.stats is not None:  # None under --benchmark-disable
        record_throughput(benchmark, size)
