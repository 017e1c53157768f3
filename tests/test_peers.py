"""Same numbers as the peers a user replaces: a NumPy formula, scikit-learn, PyTorch.

Peers that are not installed are skipped.  PyTorch's "mean" divides by n, not
by sum(w): weighted results are compared with reduction "sum" or "none".
"""

import numpy as np
import pytest

import fastbce
from conftest import FLOAT_DTYPES, assert_close, dtype_id, make_data, term_scale

DTYPES = pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
# A peer computing in float32 has its own rounding: compare float32 more loosely.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _hard_label_data(n, dtype, seed=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = rng.random(n).astype(dtype)
    p[:3] = [0.0, 1.0, 0.5]            # clipped by everyone at finfo(dtype).eps
    w = (rng.random(n) * 3).astype(dtype)
    return y, p, w


@DTYPES
def test_matches_numpy_formula(dtype):
    y, p, w = _hard_label_data(50_000, dtype)
    eps = np.finfo(dtype).eps
    q = np.clip(p.astype(np.float64), eps, 1 - eps)
    losses = -(y * np.log(q) + (1 - y) * np.log1p(-q))
    assert fastbce.bce(y, p) == pytest.approx(losses.mean(), rel=RTOL[np.dtype(dtype)])
    assert fastbce.bce(y, p, sample_weight=w) == pytest.approx(
        np.average(losses, weights=w.astype(np.float64)), rel=RTOL[np.dtype(dtype)])


@DTYPES
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_matches_sklearn_log_loss(dtype, weighted):
    metrics = pytest.importorskip("sklearn.metrics")
    y, p, w = _hard_label_data(50_000, dtype)
    w = w if weighted else None
    expected = metrics.log_loss(y, p, sample_weight=w)
    assert fastbce.bce(y, p, sample_weight=w) == pytest.approx(expected, rel=RTOL[np.dtype(dtype)])
    expected_sum = metrics.log_loss(y, p, sample_weight=w, normalize=False)
    assert fastbce.bce(y, p, sample_weight=w, reduction="sum") == pytest.approx(
        expected_sum, rel=RTOL[np.dtype(dtype)])


def _torch_case(torch, dtype, seed=6):
    """(n, m) logits, soft labels, (n, m) weights and a per-column (m,) pos_weight."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 6, (400, 25)).astype(dtype)
    x[0, :4] = [40.0, -40.0, 80.0, -80.0]
    y = rng.random((400, 25)).astype(dtype)
    y[1] = np.round(y[1])
    w = (rng.random((400, 25)) * 2).astype(dtype)
    pw = rng.uniform(0.3, 5, 25).astype(dtype)
    return (x, y, w, pw), tuple(torch.from_numpy(a) for a in (x, y, w, pw))


@DTYPES
def test_matches_torch_bce_with_logits(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    (x, y, w, pw), (tx, ty, tw, tpw) = _torch_case(torch, dtype)
    rtol = RTOL[np.dtype(dtype)]
    eps = np.finfo(dtype).eps
    # unweighted mean (n in both)
    assert fastbce.bce(y, x, from_logits=True) == pytest.approx(
        F.binary_cross_entropy_with_logits(tx, ty).item(), rel=rtol)
    # weights and pos_weight: sum and element-wise
    kw = dict(from_logits=True, sample_weight=w, pos_weight=pw)
    torch_kw = dict(weight=tw, pos_weight=tpw)
    assert fastbce.bce(y, x, reduction="sum", **kw) == pytest.approx(
        F.binary_cross_entropy_with_logits(tx, ty, reduction="sum", **torch_kw).item(), rel=rtol)
    expected = F.binary_cross_entropy_with_logits(tx, ty, reduction="none", **torch_kw).numpy()
    scale = term_scale(y, x, reduction="none", **kw)
    assert_close(fastbce.bce(y, x, reduction="none", **kw), expected, rtol, 16 * eps * scale)
    # PyTorch's weighted mean divides by n; fastbce's by sum(w)
    torch_mean = F.binary_cross_entropy_with_logits(tx, ty, **torch_kw).item()
    assert fastbce.bce(y, x, **kw) == pytest.approx(
        torch_mean * x.size / w.astype(np.float64).sum(), rel=rtol)


@DTYPES
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_grad_matches_torch_autograd(dtype, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    (x, y, w, pw), (tx, ty, tw, tpw) = _torch_case(torch, dtype, seed=8)
    tx = tx.clone().requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(tx, ty, weight=tw, pos_weight=tpw, reduction="sum")
    if reduction == "mean":
        loss = loss / tw.sum()
    loss.backward()
    grad = fastbce.bce_grad(y, x, from_logits=True, reduction=reduction, sample_weight=w,
                            pos_weight=pw)
    scale = term_scale(y, x, from_logits=True, grad=True, reduction=reduction,
                       sample_weight=w, pos_weight=pw)
    eps = np.finfo(dtype).eps
    assert_close(grad, tx.grad.numpy(), RTOL[np.dtype(dtype)], 16 * eps * scale)


def test_matches_torch_bce_on_probabilities():
    """Away from the clip region (PyTorch clamps the logs at -100 instead)."""
    torch = pytest.importorskip("torch")
    data = make_data(20_000, np.float64)
    y, w = np.array(data["y_true"]), np.array(data["sample_weight"])  # writable for torch
    p = np.clip(data["y_pred"], 0.01, 0.99)
    expected = torch.nn.functional.binary_cross_entropy(
        torch.from_numpy(p), torch.from_numpy(y), weight=torch.from_numpy(w), reduction="sum")
    assert fastbce.bce(y, p, sample_weight=w, reduction="sum") == pytest.approx(
        expected.item(), rel=1e-12)
