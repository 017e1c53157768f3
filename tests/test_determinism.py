"""SPEC.md section 5: reduced results are bit-identical for every num_threads and every run."""

import numpy as np
import pytest

import fastbce
from conftest import FLOAT_DTYPES, dtype_id, make_data

N = 1_000_007          # prime-ish: not a multiple of any block size
THREADS = [1, 2, 3, 4]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_loss_is_bitwise_identical_across_threads_and_runs(dtype, from_logits, reduction):
    data = make_data(N, dtype, from_logits, seed=1)
    kw = dict(from_logits=from_logits, reduction=reduction, sample_weight=data["sample_weight"],
              pos_weight=data["pos_weight"], label_smoothing=0.05)
    y, p = data["y_true"], data["y_pred"]
    first = fastbce.bce(y, p, num_threads=1, **kw)
    assert type(first) is float and np.isfinite(first)
    results = {(t, run): fastbce.bce(y, p, num_threads=t, **kw)
               for t in THREADS for run in range(3)}
    results[(None, 0)] = fastbce.bce(y, p, **kw)
    for t in THREADS:
        results[("and_grad", t)] = fastbce.bce_and_grad(y, p, num_threads=t, **kw)[0]
    differing = {k: v for k, v in results.items() if v.hex() != first.hex()}
    assert not differing, f"num_threads=1 gave {first.hex()}; others: {differing}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
def test_elementwise_results_are_identical_across_threads(dtype, from_logits):
    data = make_data(N, dtype, from_logits, seed=1)
    kw = dict(from_logits=from_logits, sample_weight=data["sample_weight"])
    y, p = data["y_true"], data["y_pred"]
    loss1, grad1 = fastbce.bce_and_grad(y, p, reduction="none", num_threads=1, **kw)
    mean_grad1 = fastbce.bce_grad(y, p, num_threads=1, **kw)
    for t in THREADS[1:]:
        loss, grad = fastbce.bce_and_grad(y, p, reduction="none", num_threads=t, **kw)
        assert loss.tobytes() == loss1.tobytes() and grad.tobytes() == grad1.tobytes()
        assert fastbce.bce_grad(y, p, num_threads=t, **kw).tobytes() == mean_grad1.tobytes()


@pytest.mark.parametrize("layout", ["reversed_1d", "fortran_2d", "column_broadcast"])
def test_non_contiguous_inputs_are_deterministic_too(layout):
    data = make_data(N, np.float32, False, seed=2)
    y, p = data["y_true"], data["y_pred"]
    if layout == "reversed_1d":
        y, p = y[::-1], p[::-1]
    elif layout == "fortran_2d":
        y = np.asfortranarray(y[: 1009 * 991].reshape(1009, 991))
        p = np.asfortranarray(p[: 1009 * 991].reshape(1009, 991))
    else:
        y, p = np.round(y[:1009, None]), p[: 1009 * 991].reshape(1009, 991)
    first = fastbce.bce(y, p, num_threads=1)
    for t in THREADS[1:] + [None]:
        assert fastbce.bce(y, p, num_threads=t).hex() == first.hex()
