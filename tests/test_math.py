"""The formulas of SPEC.md section 1, checked against the float64 reference."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbce
from conftest import (EPS, FLOAT_DTYPES, KEYWORD_CASES, REDUCTIONS, assert_close,
                      assert_matches_reference, dtype_id, keyword_case, make_data, term_scale)
from fastbce._reference import bce_grad_reference, bce_reference

N = 20_000
KINDS = pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
DTYPES = pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
RTOL = {np.float32: 1e-6, np.float64: 1e-12}


def test_worked_example():
    loss = fastbce.bce([1, 0, 1, 0], [0.9, 0.2, 0.8, 0.4])
    assert round(loss, 4) == 0.2656
    assert loss == pytest.approx(bce_reference([1, 0, 1, 0], [0.9, 0.2, 0.8, 0.4]), rel=1e-12)


def test_reference_worked_example_by_hand():
    """The oracle itself against the textbook formula, term by term."""
    y, p = [1, 0, 1, 0], [0.9, 0.2, 0.8, 0.4]
    by_hand = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.8)) / 4
    assert bce_reference(y, p) == pytest.approx(by_hand, rel=1e-15)
    assert round(by_hand, 4) == 0.2656


@DTYPES
@KINDS
@pytest.mark.parametrize("case", KEYWORD_CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_matches_reference(dtype, from_logits, case, reduction):
    data = make_data(N, dtype, from_logits)
    kw = dict(keyword_case(case, data), from_logits=from_logits)
    loss = fastbce.bce(data["y_true"], data["y_pred"], reduction=reduction, **kw)
    assert_matches_reference(loss, data["y_true"], data["y_pred"], reduction=reduction, **kw)


@DTYPES
@KINDS
@pytest.mark.parametrize("case", KEYWORD_CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_grad_matches_reference(dtype, from_logits, case, reduction):
    data = make_data(N, dtype, from_logits)
    kw = dict(keyword_case(case, data), from_logits=from_logits)
    grad = fastbce.bce_grad(data["y_true"], data["y_pred"], reduction=reduction, **kw)
    assert_matches_reference(grad, data["y_true"], data["y_pred"], grad=True,
                             reduction=reduction, **kw)


def test_default_eps_is_machine_epsilon_of_prediction_dtype():
    for dtype in FLOAT_DTYPES:
        eps = float(np.finfo(dtype).eps)
        p = np.array([0.0, 1.0], dtype=dtype)
        assert fastbce.bce([1, 0], p, reduction="sum") == pytest.approx(
            -2 * math.log(eps), rel=RTOL[dtype])


EXTREME_LOGITS = {np.float64: [1e3, -1e3, 1e30, -1e30, math.inf, -math.inf],
                  np.float32: [80.0, -80.0, 1e30, -1e30, math.inf, -math.inf]}


@DTYPES
@pytest.mark.parametrize("pos_weight", [None, 3.0])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_extreme_logits_give_exact_values_or_limits(dtype, pos_weight, label_smoothing):
    y = np.array([[0.0], [0.5], [1.0]], dtype=dtype)
    x = np.array(EXTREME_LOGITS[dtype], dtype=dtype)
    kw = dict(from_logits=True, pos_weight=pos_weight, label_smoothing=label_smoothing)
    loss = fastbce.bce(y, x, reduction="none", **kw)
    assert loss.shape == (3, 6)
    assert not np.isnan(loss).any()
    assert_matches_reference(loss, y, x, reduction="none", **kw)
    expected = bce_reference(y, x, reduction="none", **kw)
    assert np.array_equal(np.isinf(loss), np.isinf(expected))
    assert (loss >= 0).all()
    finite = np.isfinite(x)
    assert fastbce.bce(y, x[finite], reduction="sum", **kw) == pytest.approx(
        bce_reference(y, x[finite], reduction="sum", **kw), rel=RTOL[dtype])
    assert fastbce.bce(y, x, reduction="sum", **kw) == math.inf


@DTYPES
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_extreme_logits_give_finite_gradients(dtype, pos_weight):
    y = np.array([[0.0], [0.5], [1.0]], dtype=dtype)
    x = np.array(EXTREME_LOGITS[dtype], dtype=dtype)
    kw = dict(from_logits=True, pos_weight=pos_weight)
    grad = fastbce.bce_grad(y, x, reduction="sum", **kw)
    assert np.isfinite(grad).all()
    assert_matches_reference(grad, y, x, grad=True, reduction="sum", **kw)


@DTYPES
@pytest.mark.parametrize("eps", [None, EPS])
def test_probabilities_zero_and_one_are_clipped(dtype, eps):
    y = np.array([[0.0], [0.5], [1.0]], dtype=dtype)
    p = np.array([0.0, 1.0, 0.5], dtype=dtype)
    loss = fastbce.bce(y, p, reduction="none", eps=eps)
    grad = fastbce.bce_grad(y, p, reduction="sum", eps=eps)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert_matches_reference(loss, y, p, reduction="none", eps=eps)
    assert_matches_reference(grad, y, p, grad=True, reduction="sum", eps=eps)


def test_eps_does_not_clip_logits():
    y = np.array([0.0, 1.0, 1.0, 0.0])
    x = np.array([-40.0, 40.0, -40.0, 40.0])
    loss = fastbce.bce(y, x, from_logits=True, reduction="none", eps=0.1)
    assert_matches_reference(loss, y, x, from_logits=True, reduction="none")
    assert loss[2] == pytest.approx(40.0, rel=1e-12)


def _finite_difference(fn, x, h):
    """Central differences of the scalar fn at every element of x (float64)."""
    fd = np.empty_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up.flat[i] += h
        down.flat[i] -= h
        fd.flat[i] = (fn(up) - fn(down)) / (up.flat[i] - down.flat[i])
    return fd


@KINDS
@pytest.mark.parametrize("case", ["plain", "combined"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_grad_matches_finite_differences(from_logits, case, reduction):
    rng = np.random.default_rng(7)
    n = 24
    data = make_data(n, np.float64, from_logits, seed=3)
    kw = dict(keyword_case(case, data), from_logits=from_logits, reduction=reduction)
    # logits anywhere; probabilities away from the clip region
    x = rng.normal(0.0, 4.0, n) if from_logits else rng.uniform(0.05, 0.95, n)
    y = data["y_true"]
    grad = fastbce.bce_grad(y, x, **kw)
    fd = _finite_difference(lambda v: fastbce.bce(y, v, **kw), x, 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


@DTYPES
@KINDS
@pytest.mark.parametrize("case", ["plain", "combined"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_and_grad_equals_separate_calls(dtype, from_logits, case, reduction):
    data = make_data(N, dtype, from_logits)
    kw = dict(keyword_case(case, data), from_logits=from_logits, reduction=reduction)
    y, p = data["y_true"], data["y_pred"]
    loss, grad = fastbce.bce_and_grad(y, p, **kw)
    loss_alone, grad_alone = fastbce.bce(y, p, **kw), fastbce.bce_grad(y, p, **kw)
    assert grad.dtype == grad_alone.dtype and grad.shape == grad_alone.shape
    assert grad.tobytes() == grad_alone.tobytes()
    if reduction == "none":
        assert loss.dtype == loss_alone.dtype and loss.tobytes() == loss_alone.tobytes()
    else:
        assert type(loss) is float and loss == loss_alone


@DTYPES
@KINDS
@pytest.mark.parametrize("labels", ["binary", "soft"])
def test_unweighted_path_equals_unit_weights_bit_for_bit(dtype, from_logits, labels):
    """Without weights the kernel takes loops that read no weights: the same values."""
    rng = np.random.default_rng(5)
    special = [0.0, -0.0, np.inf, -np.inf, 1e-30, -1e-30, 88.0, -88.0, 104.5, -104.5, 800.0, -800.0]
    if from_logits:
        p = np.concatenate([special, rng.normal(0.0, 8.0, 5000)]).astype(dtype)
    else:
        p = np.concatenate([[0.0, 1.0, 1e-30, 0.5, 1 - 1e-7], rng.random(5000)]).astype(dtype)
    y = rng.integers(0, 2, p.size).astype(dtype)
    if labels == "soft":
        y = rng.random(p.size).astype(dtype)
    unit = dict(sample_weight=np.ones(p.size, dtype), pos_weight=np.ones(p.size, dtype))
    for reduction in ("none", "sum"):
        kw = dict(from_logits=from_logits, reduction=reduction)
        loss, grad = fastbce.bce_and_grad(y, p, **kw)
        loss_unit, grad_unit = fastbce.bce_and_grad(y, p, **kw, **unit)
        assert grad.tobytes() == grad_unit.tobytes()
        assert np.asarray(loss).tobytes() == np.asarray(loss_unit).tobytes()
        assert fastbce.bce_grad(y, p, **kw).tobytes() == grad.tobytes()


# -- properties (hypothesis) --------------------------------------------------

def _arrays(draw, n, lo, hi):
    return draw(hnp.arrays(np.float64, n, elements=st.floats(lo, hi)))


@st.composite
def _problems(draw):
    n = draw(st.integers(1, 40))
    from_logits = draw(st.booleans())
    y = _arrays(draw, n, 0.0, 1.0)
    p = _arrays(draw, n, -60.0, 60.0) if from_logits else _arrays(draw, n, 0.0, 1.0)
    kw = dict(from_logits=from_logits, reduction=draw(st.sampled_from(REDUCTIONS)))
    if draw(st.booleans()):
        kw["sample_weight"] = _arrays(draw, n, 0.0, 10.0)
        kw["sample_weight"][0] += 0.5  # keep sum(w) > 0 for "mean"
    if draw(st.booleans()):
        kw["pos_weight"] = draw(st.floats(0.1, 10.0))
    if draw(st.booleans()):
        kw["label_smoothing"] = draw(st.floats(0.0, 0.5))
    return y, p, kw


@settings(max_examples=50, deadline=None)
@given(_problems())
def test_property_loss_and_grad_match_reference(problem):
    y, p, kw = problem
    loss, grad = fastbce.bce_and_grad(y, p, **kw)
    assert_matches_reference(loss, y, p, **kw)
    assert_matches_reference(grad, y, p, grad=True, **kw)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)),
    hnp.arrays(np.float64, n, elements=st.floats(-700.0, 700.0)),
    st.sampled_from(["mean", "sum"]))))
def test_property_logit_symmetry(problem):
    """bce(y, x) == bce(1 - y, -x) for logits without pos_weight."""
    y, x, reduction = problem
    kw = dict(from_logits=True, reduction=reduction)
    floor = 2 * np.finfo(np.float64).eps * term_scale(y, x, **kw)  # 1 ulp each side
    assert_close(fastbce.bce(y, x, **kw), fastbce.bce(1.0 - y, -x, **kw), 1e-12, floor)


def test_reference_grad_matches_its_own_finite_differences():
    """Guards the oracle: its gradient is the derivative of its loss."""
    data = make_data(12, np.float64, True, seed=5)
    kw = dict(keyword_case("combined", data), from_logits=True, reduction="sum")
    y, x = data["y_true"], np.array(data["y_pred"])
    fd = _finite_difference(lambda v: bce_reference(y, v, **kw), x, 1e-6)
    np.testing.assert_allclose(bce_grad_reference(y, x, **kw), fd, rtol=1e-6, atol=1e-7)


@DTYPES
def test_probabilities_with_0_1_labels_match_the_reference_element_wise(dtype):
    """Chunks whose labels are all 0 or 1 take a one-log path: it must be as accurate."""
    rng = np.random.default_rng(11)
    n = 50_000
    y = rng.integers(0, 2, n).astype(np.uint8)
    # log-uniform from 1e-30 to 1, dense just below 1/2 (where log(1 - p) needs
    # its rounding correction most) and near 1
    p = np.concatenate([10.0 ** rng.uniform(-30, 0, n // 2),
                        0.5 - 10.0 ** rng.uniform(-17, -1, n // 4),
                        1 - 10.0 ** rng.uniform(-16, -1, n - n // 2 - n // 4)]).astype(dtype)
    w = rng.random(n).astype(dtype)
    kw = dict(sample_weight=w, pos_weight=1.75)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    loss = fastbce.bce(y, p, reduction="none", **kw)
    expected = bce_reference(y, p, reduction="none", **kw)
    assert_close(loss, expected, rtol, atol=0.0)
    grad = fastbce.bce_grad(y, p, reduction="none", **kw)
    assert_close(grad, bce_grad_reference(y, p, reduction="none", **kw), rtol, atol=0.0)
    # soft labels in the same array take the two-log path: the same values within rounding
    soft = y.astype(dtype)
    soft[0] = 0.5
    assert_close(fastbce.bce(soft, p, reduction="none", **kw)[1:], loss[1:], 4 * np.finfo(dtype).eps)
