"""fastbce.grad_hess (gradient and hessian in logit space) and the boosting
objectives of fastbce.boosting.

grad_hess is checked against finite differences of bce / bce_grad, against
the closed form at 50-digit precision (mpmath), at extreme logits, and for
the inputs and errors it shares with bce. The objectives are checked for
their four calling conventions and, where XGBoost / LightGBM are installed,
by training: the same model as the built-in binary objective.
"""
import copy
import inspect
import math
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastbce
import fastbce.boosting as boosting
from conftest import FLOAT_DTYPES, dtype_id, keyword_case, make_data

DTYPES = pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
N = 5_000

# the keyword cases of conftest.KEYWORD_CASES that apply to logits
CASES = ["plain", "sample_weight", "pos_weight_scalar", "pos_weight_array", "label_smoothing",
         "combined"]


def case_keywords(name, data):
    """conftest.keyword_case without eps (grad_hess takes logits only)."""
    keywords = keyword_case(name, data)
    keywords.pop("eps", None)
    return keywords


def closed_form(y, x, sample_weight=None, pos_weight=None, label_smoothing=0.0):
    """(grad, hess, scale) in float64 NumPy; scale = w * (1 + 2 pw), the size of
    the gradient's terms (its rounding errors are relative to that)."""
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    w = 1.0 if sample_weight is None else np.asarray(sample_weight, np.float64)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    y = y * (1 - label_smoothing) + label_smoothing / 2
    c = 1 + (pw - 1) * y
    e = np.exp(-np.abs(x))  # never overflows
    s = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    # s * (1 - s) = e / (1 + e)^2: no cancellation on either side
    return w * (c * s - pw * y), w * c * e / (1 + e) ** 2, w * (1 + 2 * pw)


# --- against finite differences ------------------------------------------------------------

@DTYPES
@pytest.mark.parametrize("case", CASES)
def test_grad_and_hess_are_derivatives(dtype, case):
    """grad = d loss / dx and hess = d grad / dx, by central differences in
    float64 (bce and bce_grad at x +- h), on normal logits (sd 5).

    float64: h = 1e-5 * (1 + |x|); truncation ~h^2 * |f'''| and rounding
    ~1e-16 * loss / h are both below 1e-9 of the terms' scale; asserted 1e-7.
    float32 inputs: the result is float32 (relative error ~1e-7 of the terms'
    scale, from exp), the differences are taken on the float64 copy; asserted 1e-5.
    """
    data = make_data(N, dtype, from_logits=True)
    kw = case_keywords(case, data)
    y, x = data["y_true"], data["y_pred"]
    grad, hess = fastbce.grad_hess(y, x, **kw)
    assert grad.dtype == hess.dtype == dtype and grad.shape == hess.shape == x.shape

    kw64 = {k: (np.asarray(v, np.float64) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    h = 1e-5 * (1 + np.abs(x64))
    loss = lambda z: fastbce.bce(y64, z, from_logits=True, reduction="none", **kw64)
    dloss = lambda z: fastbce.bce_grad(y64, z, from_logits=True, reduction="none", **kw64)
    fd_grad = (loss(x64 + h) - loss(x64 - h)) / (2 * h)
    fd_hess = (dloss(x64 + h) - dloss(x64 - h)) / (2 * h)
    *_, scale = closed_form(y64, x64, **kw64)
    tol = (1e-7 if dtype == np.float64 else 1e-5) * scale
    assert np.all(np.abs(grad - fd_grad) <= tol)
    assert np.all(np.abs(hess - fd_hess) <= tol)


@DTYPES
@pytest.mark.parametrize("case", CASES)
def test_grad_is_bce_grad_bit_for_bit(dtype, case):
    """The gradient is bce_grad(..., from_logits=True, reduction="none"), exactly."""
    data = make_data(N, dtype, from_logits=True)
    kw = case_keywords(case, data)
    grad, _ = fastbce.grad_hess(data["y_true"], data["y_pred"], **kw)
    expected = fastbce.bce_grad(data["y_true"], data["y_pred"], from_logits=True,
                                reduction="none", **kw)
    assert np.array_equal(grad, expected)


@DTYPES
@pytest.mark.parametrize("case", CASES)
def test_closed_form(dtype, case):
    """Against w * (c*s - pw*y) and w*c*s*(1-s) in float64 (logits with sd 5):
    the hessian (a product, no cancellation) to 8 ulp of itself, the gradient
    to 8 ulp of its terms' scale."""
    data = make_data(N, dtype, from_logits=True)
    kw = case_keywords(case, data)
    y, x = data["y_true"], data["y_pred"]
    grad, hess = fastbce.grad_hess(y, x, **kw)
    g, hs, scale = closed_form(y, x, **kw)
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(grad - g) <= 8 * eps * scale)
    assert np.all(np.abs(hess - hs) <= 8 * eps * hs + np.finfo(dtype).tiny)


# --- against a 50-digit reference ----------------------------------------------------------

def _mp_grad_hess(mpmath, y, x, w, pw):
    # s and 1 - s each computed directly (1 - s from s would cancel even at
    # 50 digits: s = 1 - 4e-44 at x = 100); c*s - pw*y = (1-y)*s - pw*y*(1-s)
    y, x, w, pw = (mpmath.mpf(v) for v in (y, x, w, pw))
    s, t = 1 / (1 + mpmath.exp(-x)), 1 / (1 + mpmath.exp(x))
    c = 1 + (pw - 1) * y
    return w * ((1 - y) * s - pw * y * t), w * c * s * t


MP_LOGITS = [-745.0, -700.0, -100.0, -40.0, -20.0, -3.5, -1.0, -1e-3, -1e-300, 0.0, 5e-324,
             1e-8, 0.5, 2.0, 17.0, 36.0, 40.0, 100.0, 700.0, 709.0]


@pytest.mark.parametrize("pw,w", [(1.0, 1.0), (2.5, 0.7), (0.25, 3.0)])
def test_mpmath_reference_float64(pw, w):
    """0/1 labels: grad = w*s (y = 0) or -w*pw*sigmoid(-x) (y = 1) and the
    hessian involve no cancellation: each within 4 ulp of the 50-digit value,
    relative, down to sigmoid(-745) (subnormal: within 4 of its spacing).
    Soft labels: the gradient within 4 ulp of its terms' scale."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    eps, tiny = np.finfo(np.float64).eps, np.finfo(np.float64).smallest_subnormal
    for y in (0.0, 1.0, 0.3):
        grad, hess = fastbce.grad_hess(np.full(len(MP_LOGITS), y), np.array(MP_LOGITS),
                                       sample_weight=w, pos_weight=pw)
        for x, g, h in zip(MP_LOGITS, grad.tolist(), hess.tolist()):
            eg, eh = _mp_grad_hess(mpmath, y, x, w, pw)
            scale = abs(eg) if y in (0.0, 1.0) else w * (1 + 2 * pw)
            assert abs(g - eg) <= 4 * eps * scale + 4 * tiny, (y, x, g, eg)
            assert abs(h - eh) <= 4 * eps * eh + 4 * tiny, (y, x, h, eh)


def test_mpmath_reference_float32():
    """float32: 0/1 labels within 4 ulp (float32) of the 50-digit value, to sigmoid(-103)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    logits = np.array([-103.0, -80.0, -30.0, -9.0, -1.0, 0.0, 1e-5, 1.5, 9.0, 17.0, 30.0, 80.0],
                      np.float32)
    eps, tiny = np.finfo(np.float32).eps, np.finfo(np.float32).smallest_subnormal
    for y in (0.0, 1.0):
        grad, hess = fastbce.grad_hess(np.full(logits.size, y, np.float32), logits, pos_weight=2.0)
        assert grad.dtype == hess.dtype == np.float32
        for x, g, h in zip(logits.tolist(), grad.tolist(), hess.tolist()):
            eg, eh = _mp_grad_hess(mpmath, y, x, 1.0, 2.0)
            assert abs(g - eg) <= 4 * eps * abs(eg) + 4 * tiny, (y, x, g, eg)
            assert abs(h - eh) <= 4 * eps * eh + 4 * tiny, (y, x, h, eh)


# --- extreme logits ------------------------------------------------------------------------

@DTYPES
def test_extreme_logits(dtype):
    """+-1e3, +-inf, the float range: finite gradient, finite hessian >= 0, no
    NaN; at +-inf the limits w*(1-y) / -w*pw*y and a zero hessian."""
    big = float(np.finfo(dtype).max)
    x = np.array([-np.inf, -big, -1e3, -800.0, -104.0, -40.0, 0.0, 40.0, 104.0, 800.0, 1e3, big,
                  np.inf], dtype)
    for y in (0.0, 1.0, 0.25):
        for kw in ({}, {"sample_weight": 0.5, "pos_weight": 3.0}, {"label_smoothing": 0.1}):
            grad, hess = fastbce.grad_hess(np.full(x.size, y, dtype), x, **kw)
            assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
            assert np.all(hess >= 0)
            w, pw, a = kw.get("sample_weight", 1.0), kw.get("pos_weight", 1.0), kw.get("label_smoothing", 0.0)
            ys = y * (1 - a) + a / 2
            limit_pos, limit_neg = w * (1 - ys), -w * pw * ys
            rtol = float(4 * np.finfo(dtype).eps)
            assert grad[-1] == pytest.approx(limit_pos, rel=rtol, abs=1e-300)
            assert grad[0] == pytest.approx(limit_neg, rel=rtol, abs=1e-300)
            assert hess[0] == hess[-1] == 0
            # the hessian is even in x: sigmoid(x) * (1 - sigmoid(x))
            assert np.array_equal(hess, hess[::-1])


def test_hessian_tiny_but_positive_where_representable():
    """No cancellation in s * (1 - s): at x = +-700 the hessian is ~exp(-700), not 0."""
    _, hess = fastbce.grad_hess([0.0, 1.0], [700.0, -700.0])
    assert np.all(hess > 0)
    assert hess[0] == pytest.approx(math.exp(-700.0), rel=1e-14)
    _, hess = fastbce.grad_hess(np.zeros(2, np.float32), np.array([80.0, -80.0], np.float32))
    assert np.all(hess > 0) and hess[0] == pytest.approx(math.exp(-80.0), rel=1e-6)


# --- inputs --------------------------------------------------------------------------------

def test_broadcasting(rng):
    y = (rng.random(7) < 0.5).astype(np.uint8)
    x = rng.normal(0, 3, (4, 7))
    w = rng.random((4, 1))
    pw = rng.uniform(0.5, 2, 7)
    grad, hess = fastbce.grad_hess(y, x, sample_weight=w, pos_weight=pw)
    assert grad.shape == hess.shape == (4, 7)
    yb, wb, pwb = (np.ascontiguousarray(np.broadcast_to(a, (4, 7))) for a in (y, w, pw))
    g2, h2 = fastbce.grad_hess(yb, x, sample_weight=wb, pos_weight=pwb)
    assert np.array_equal(grad, g2) and np.array_equal(hess, h2)
    # labels broadcast against the logits too (one label row for many score rows)
    g3, h3 = fastbce.grad_hess(y[None, :], x, sample_weight=w, pos_weight=pw)
    assert np.array_equal(grad, g3) and np.array_equal(hess, h3)
    with pytest.raises(ValueError, match="broadcast"):
        fastbce.grad_hess(np.zeros(3), np.zeros(4))


def test_input_kinds(rng):
    """Lists, ints, bool/uint8 labels, strided logits, 0-d and empty inputs."""
    x = rng.normal(0, 3, 20)
    y = (rng.random(20) < 0.4)
    grad, hess = fastbce.grad_hess(y.astype(np.float64), x)
    for labels in (y, y.astype(np.uint8), y.astype(np.int64), y.tolist()):
        g, h = fastbce.grad_hess(labels, x)
        assert np.array_equal(g, grad) and np.array_equal(h, hess)
    g, h = fastbce.grad_hess(y, x.tolist())
    assert g.dtype == np.float64 and np.array_equal(g, grad)
    g, h = fastbce.grad_hess([1, 0], [2, -3])  # int logits: float64
    assert g.dtype == h.dtype == np.float64
    assert np.array_equal(g, fastbce.grad_hess([1.0, 0.0], [2.0, -3.0])[0])
    wide = np.empty((20, 3))
    wide[:, 1] = x
    g, h = fastbce.grad_hess(y, wide[:, 1])
    assert np.array_equal(g, grad) and np.array_equal(h, hess)
    g, h = fastbce.grad_hess(1.0, 0.0)
    assert g.shape == h.shape == () and float(g) == -0.5 and float(h) == 0.25
    g, h = fastbce.grad_hess(np.zeros(0), np.zeros(0, np.float32))
    assert g.shape == h.shape == (0,) and g.dtype == h.dtype == np.float32


def test_threads_bit_identical(rng):
    n = 1_000_000
    y = (rng.random(n) < 0.3).astype(np.uint8)
    x = rng.normal(0, 4, n)
    w = rng.random(n)
    g1, h1 = fastbce.grad_hess(y, x, sample_weight=w, pos_weight=2.0, num_threads=1)
    g2, h2 = fastbce.grad_hess(y, x, sample_weight=w, pos_weight=2.0, num_threads=2)
    assert np.array_equal(g1, g2) and np.array_equal(h1, h2)


# --- errors: those of bce ------------------------------------------------------------------

BAD_CALLS = {
    "nan_logit": (([0.0, 1.0, 1.0], [0.5, np.nan, 1.0]), {}),
    "label_above_1": (([0.0, 1.5, 1.0], [0.5, 0.1, 1.0]), {}),
    "label_negative": (([0.0, -1.0, 1.0], [0.5, 0.1, 1.0]), {}),
    "label_nan": (([0.0, 1.0, np.nan], [0.5, 0.1, 1.0]), {}),
    "negative_weight": (([0.0, 1.0, 1.0], [0.5, 0.1, 1.0]), {"sample_weight": [1.0, 1.0, -0.5]}),
    "nan_weight": (([0.0, 1.0, 1.0], [0.5, 0.1, 1.0]), {"sample_weight": [np.nan, 1.0, 1.0]}),
    "zero_pos_weight": (([0.0, 1.0], [0.5, 0.1]), {"pos_weight": 0.0}),
    "bad_pos_weight_array": (([0.0, 1.0], [0.5, 0.1]), {"pos_weight": [1.0, -2.0]}),
    "label_smoothing_1": (([0.0, 1.0], [0.5, 0.1]), {"label_smoothing": 1.0}),
    "label_smoothing_negative": (([0.0, 1.0], [0.5, 0.1]), {"label_smoothing": -0.1}),
    "shapes": (([0.0, 1.0, 1.0], [0.5, 0.1]), {}),
    "num_threads": (([0.0, 1.0], [0.5, 0.1]), {"num_threads": 0}),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_errors_as_bce(name):
    """Each bad input raises the error bce(..., from_logits=True) raises, same
    message (the logits may be named after grad_hess's own argument, raw_score)."""
    (y, x), kw = BAD_CALLS[name]
    with pytest.raises(ValueError) as expected:
        fastbce.bce(y, x, from_logits=True, reduction="none", **kw)
    with pytest.raises(ValueError) as got:
        fastbce.grad_hess(y, x, **kw)
    assert str(got.value).replace("raw_score", "y_pred") == str(expected.value)


def test_error_messages_name_the_element():
    with pytest.raises(ValueError, match=r"\[1\] = nan: logits must not be NaN"):
        fastbce.grad_hess([0, 1, 1], [0.5, np.nan, 1.0])
    with pytest.raises(ValueError, match=r"y_true\[2\] = 2"):
        fastbce.grad_hess([0, 1, 2], [0.5, 0.1, 1.0])
    with pytest.raises(ValueError, match=r"sample_weight\[0\] = -1.0"):
        fastbce.grad_hess([0, 1], [0.5, 0.1], sample_weight=[-1.0, 1.0])
    with pytest.raises(TypeError, match="complex"):
        fastbce.grad_hess([0, 1], np.array([0.5, 0.1], complex))


def test_failed_call_leaves_inputs_unchanged():
    x = np.array([0.5, 1.0, np.nan])
    before = x.copy()
    with pytest.raises(ValueError):
        fastbce.grad_hess([0, 1, 1], x)
    assert np.array_equal(x, before, equal_nan=True)


# --- the objectives, without the libraries ------------------------------------------------

class FakeDataset:
    """What the objectives use of a DMatrix / lightgbm.Dataset."""

    def __init__(self, label, weight):
        self.label, self.weight = label, weight

    def get_label(self):
        return self.label

    def get_weight(self):
        return self.weight


def test_objective_calling_conventions(rng):
    y = (rng.random(50) < 0.4).astype(np.float32)
    x = rng.normal(0, 2, 50).astype(np.float32)
    w = rng.random(50).astype(np.float32)
    obj = boosting.xgboost_objective(pos_weight=2.0, label_smoothing=0.1)
    expected = fastbce.grad_hess(y, x, sample_weight=w, pos_weight=2.0, label_smoothing=0.1)
    unweighted = fastbce.grad_hess(y, x, pos_weight=2.0, label_smoothing=0.1)
    for got, want in [
        (obj(x, FakeDataset(y, w)), expected),                    # xgb.train / lgb.train
        (obj(x, FakeDataset(y, np.empty(0, np.float32))), unweighted),  # DMatrix: no weights
        (obj(x, FakeDataset(y, None)), unweighted),               # Dataset: no weights
        (obj(y, x, sample_weight=w), expected),                   # XGBClassifier
        (obj(y, x), unweighted),                                  # XGBClassifier, no weights
        (obj(y, x, w), expected),                                 # LGBMClassifier
        (obj(y, x, None), unweighted),                            # LGBMClassifier, no weights
    ]:
        assert got[0].dtype == np.float32
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(TypeError, match="sample_weight"):
        obj(x, FakeDataset(y, None), w)


def test_objective_signature_fits_the_wrappers():
    """LightGBM's scikit-learn wrapper counts 3 parameters to pass the weights;
    XGBoost's looks for one named sample_weight."""
    parameters = inspect.signature(boosting.lightgbm_objective()).parameters
    assert len(parameters) == 3 and "sample_weight" in parameters


def test_objective_column_scores(rng):
    """Scores of shape (n, 1) with flat labels and weights (multi-output layouts)."""
    y = (rng.random(10) < 0.5).astype(np.float32)
    x = rng.normal(0, 2, (10, 1))
    w = rng.random(10)
    grad, hess = boosting.xgboost_objective()(x, FakeDataset(y, w))
    assert grad.shape == hess.shape == (10, 1)
    g, h = fastbce.grad_hess(y, x[:, 0], sample_weight=w)
    assert np.array_equal(grad[:, 0], g) and np.array_equal(hess[:, 0], h)


def test_objective_pos_weight_per_row(rng):
    y = (rng.random(30) < 0.5).astype(np.float64)
    x = rng.normal(0, 2, 30)
    pw = rng.uniform(0.5, 3, 30)
    got = boosting.lightgbm_objective(pos_weight=pw)(y, x)
    want = fastbce.grad_hess(y, x, pos_weight=pw)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert "array of shape (30,)" in repr(boosting.lightgbm_objective(pos_weight=pw))


def test_objective_checks_its_settings_early():
    with pytest.raises(ValueError, match="pos_weight"):
        boosting.xgboost_objective(pos_weight=0.0)
    with pytest.raises(ValueError, match=r"pos_weight\[1\] = -1.0"):
        boosting.xgboost_objective(pos_weight=[1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="label_smoothing"):
        boosting.lightgbm_objective(label_smoothing=1.0)
    with pytest.raises(ValueError, match="num_threads"):
        boosting.lightgbm_objective(num_threads=0)
    with pytest.raises(ValueError, match="y_true"):
        boosting.xgboost_objective()(np.zeros(2), FakeDataset(np.array([0.0, 2.0]), None))


def test_objective_pickles_and_copies():
    obj = boosting.xgboost_objective(pos_weight=1.5, label_smoothing=0.05, num_threads=1)
    for other in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
        assert isinstance(other, boosting.BCEObjective)
        assert (other.pos_weight, other.label_smoothing, other.num_threads) == (1.5, 0.05, 1)
        assert repr(other) == repr(obj)


def test_importing_boosting_imports_no_booster():
    code = ("import sys, fastbce, fastbce.boosting; "
            "assert 'xgboost' not in sys.modules and 'lightgbm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


def _repo_root():
    import pathlib
    return pathlib.Path(fastbce.__file__).resolve().parent.parent


# --- prior_logit ---------------------------------------------------------------------------

def test_prior_logit(rng):
    y = (rng.random(200) < 0.3).astype(np.float64)
    w = rng.random(200)
    p = y.mean()
    assert boosting.prior_logit(y) == pytest.approx(math.log(p / (1 - p)), rel=1e-14)
    p = np.average(y, weights=w)
    assert boosting.prior_logit(y, w) == pytest.approx(math.log(p / (1 - p)), rel=1e-14)
    assert boosting.prior_logit(y.astype(bool).tolist()) == boosting.prior_logit(y)
    # one class only: LightGBM's clip to [1e-15, 1 - 1e-15]
    assert boosting.prior_logit(np.zeros(5)) == pytest.approx(math.log(1e-15), rel=1e-12)
    assert boosting.prior_logit(np.ones(5)) == pytest.approx(-math.log(1e-15), rel=1e-3)


@pytest.mark.parametrize("kw", [{}, {"pos_weight": 3.0}, {"label_smoothing": 0.2},
                                {"pos_weight": "array", "label_smoothing": 0.1}])
def test_prior_logit_minimizes_the_objective(rng, kw):
    """The gradient of the summed loss at the constant prior_logit is zero."""
    y = rng.random(300)
    y[rng.random(300) < 0.5] = 1.0
    w = rng.random(300)
    if kw.get("pos_weight") == "array":
        kw = dict(kw, pos_weight=rng.uniform(0.5, 3, 300))
    b = boosting.prior_logit(y, w, **kw)
    total = fastbce.bce_grad(y, np.full(300, b), from_logits=True, reduction="sum",
                             sample_weight=w, **kw).sum()
    assert abs(total) <= 1e-12 * w.sum()


def test_prior_logit_errors():
    with pytest.raises(ValueError, match="labels"):
        boosting.prior_logit([0.0, 1.5])
    with pytest.raises(ValueError, match="sample weights"):
        boosting.prior_logit([0.0, 1.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="pos_weight"):
        boosting.prior_logit([0.0, 1.0], pos_weight=0.0)
    with pytest.raises(ValueError, match="zero"):
        boosting.prior_logit([0.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        boosting.prior_logit([])


# --- training: the same model as the built-in objective -----------------------------------

@pytest.fixture(scope="module")
def classification():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = sklearn_datasets.make_classification(500, 5, random_state=0)
    w = np.random.default_rng(0).uniform(0.2, 2.0, 500)
    return X, y.astype(np.float64), w


WEIGHTS = pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
XGB_PARAMS = {"nthread": 1, "max_depth": 3, "eta": 0.3, "seed": 0, "tree_method": "hist"}
# XGBoost computes in float32: margins (of order 1-5) agree to a few float32 ulps
XGB_TOL = dict(rtol=1e-6, atol=1e-6)


@WEIGHTS
@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
def test_xgboost_train_same_model(classification, weighted, pos_weight):
    xgb = pytest.importorskip("xgboost")
    X, y, w = classification
    w = w if weighted else None
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    base_score = float(np.average(y, weights=w))
    # base_score set in both: with scale_pos_weight the built-in estimates its
    # own intercept by a Newton step, which is not what is compared here
    builtin = xgb.train({**XGB_PARAMS, "objective": "binary:logistic", "base_score": base_score,
                         "scale_pos_weight": pos_weight}, dtrain, 10)
    custom = xgb.train({**XGB_PARAMS, "objective": "binary:logistic", "base_score": base_score},
                       dtrain, 10, obj=boosting.xgboost_objective(pos_weight=pos_weight))
    expected = builtin.predict(dtrain, output_margin=True)
    np.testing.assert_allclose(custom.predict(dtrain, output_margin=True), expected, **XGB_TOL)
    np.testing.assert_allclose(custom.predict(dtrain), builtin.predict(dtrain), **XGB_TOL)
    # without "objective": margins throughout, base_score a margin
    raw = xgb.train({**XGB_PARAMS, "base_score": boosting.prior_logit(y, w)}, dtrain, 10,
                    obj=boosting.xgboost_objective(pos_weight=pos_weight))
    margins = raw.predict(dtrain)
    np.testing.assert_allclose(margins, expected, **XGB_TOL)
    np.testing.assert_allclose(fastbce.sigmoid(margins), builtin.predict(dtrain), **XGB_TOL)


def test_xgboost_default_intercept_matches_prior(classification):
    """The documented recipe: base_score = the weighted mean label, as the
    built-in estimates it (no base_score given to the built-in)."""
    xgb = pytest.importorskip("xgboost")
    X, y, w = classification
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    builtin = xgb.train({**XGB_PARAMS, "objective": "binary:logistic"}, dtrain, 10)
    custom = xgb.train({**XGB_PARAMS, "objective": "binary:logistic",
                        "base_score": np.average(y, weights=w)}, dtrain, 10,
                       obj=boosting.xgboost_objective())
    np.testing.assert_allclose(custom.predict(dtrain), builtin.predict(dtrain), **XGB_TOL)


def test_xgboost_label_smoothing_is_smoothed_labels(classification):
    """label_smoothing=a on 0/1 labels is the built-in on labels y(1-a) + a/2."""
    xgb = pytest.importorskip("xgboost")
    X, y, _ = classification
    smoothed = y * 0.9 + 0.05
    base_score = float(smoothed.mean())
    builtin = xgb.train({**XGB_PARAMS, "objective": "binary:logistic", "base_score": base_score},
                        xgb.DMatrix(X, label=smoothed), 10)
    custom = xgb.train({**XGB_PARAMS, "objective": "binary:logistic", "base_score": base_score},
                       xgb.DMatrix(X, label=y), 10,
                       obj=boosting.xgboost_objective(label_smoothing=0.1))
    dtest = xgb.DMatrix(X)
    np.testing.assert_allclose(custom.predict(dtest), builtin.predict(dtest), **XGB_TOL)


@WEIGHTS
def test_xgboost_sklearn_same_model(classification, weighted):
    xgb = pytest.importorskip("xgboost")
    clone = pytest.importorskip("sklearn.base").clone
    X, y, w = classification
    w = w if weighted else None
    kw = dict(n_estimators=10, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=0,
              tree_method="hist")
    builtin = xgb.XGBClassifier(**kw).fit(X, y, sample_weight=w)
    custom = clone(xgb.XGBClassifier(**kw, objective=boosting.xgboost_objective(),
                                     base_score=float(np.average(y, weights=w))))
    custom.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(custom.predict_proba(X), builtin.predict_proba(X), **XGB_TOL)
    restored = pickle.loads(pickle.dumps(custom))
    assert np.array_equal(restored.predict_proba(X), custom.predict_proba(X))


LGB_PARAMS = {"num_threads": 1, "deterministic": True, "force_row_wise": True, "verbose": -1,
              "seed": 0, "num_leaves": 8}
# LightGBM computes in float64 and keeps float32 gradients: the models agree
# to float64 rounding (weights: ~1e-9, LightGBM's float32 copy of them in its
# own initial score)
LGB_TOL = dict(rtol=1e-6, atol=1e-6)


@WEIGHTS
@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
def test_lightgbm_train_same_model(classification, weighted, pos_weight):
    lgb = pytest.importorskip("lightgbm")
    X, y, w = classification
    w = w if weighted else None
    builtin = lgb.train({**LGB_PARAMS, "objective": "binary", "scale_pos_weight": pos_weight},
                        lgb.Dataset(X, y, weight=w), 10)
    init = boosting.prior_logit(y, w)  # LightGBM ignores scale_pos_weight here
    custom = lgb.train({**LGB_PARAMS, "objective": boosting.lightgbm_objective(pos_weight=pos_weight)},
                       lgb.Dataset(X, y, weight=w, init_score=np.full(len(y), init)), 10)
    expected = builtin.predict(X, raw_score=True)
    raw = custom.predict(X, raw_score=True) + init
    np.testing.assert_allclose(raw, expected, **LGB_TOL)
    np.testing.assert_allclose(fastbce.sigmoid(raw), builtin.predict(X), **LGB_TOL)


def test_lightgbm_without_boost_from_average(classification):
    lgb = pytest.importorskip("lightgbm")
    X, y, w = classification
    builtin = lgb.train({**LGB_PARAMS, "objective": "binary", "boost_from_average": False},
                        lgb.Dataset(X, y, weight=w), 10)
    custom = lgb.train({**LGB_PARAMS, "objective": boosting.lightgbm_objective()},
                       lgb.Dataset(X, y, weight=w), 10)
    np.testing.assert_allclose(custom.predict(X, raw_score=True), builtin.predict(X, raw_score=True),
                               **LGB_TOL)


@WEIGHTS
def test_lightgbm_sklearn_same_model(classification, weighted):
    lgb = pytest.importorskip("lightgbm")
    clone = pytest.importorskip("sklearn.base").clone
    X, y, w = classification
    w = w if weighted else None
    kw = dict(n_estimators=10, num_leaves=8, n_jobs=1, random_state=0, deterministic=True,
              force_row_wise=True, verbose=-1)
    builtin = lgb.LGBMClassifier(**kw).fit(X, y, sample_weight=w)
    init = boosting.prior_logit(y, w)
    custom = clone(lgb.LGBMClassifier(**kw, objective=boosting.lightgbm_objective()))
    custom.fit(X, y, sample_weight=w, init_score=np.full(len(y), init))
    raw = custom.predict(X, raw_score=True)
    np.testing.assert_allclose(fastbce.sigmoid(raw + init), builtin.predict_proba(X)[:, 1], **LGB_TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Returning raw scores instead"
        assert np.array_equal(custom.predict_proba(X), raw)


def test_errors_name_raw_score():
    with pytest.raises(ValueError, match=r"raw_score\[1\] = nan: logits must not be NaN"):
        fastbce.grad_hess([0, 1], [0.5, np.nan])
    with pytest.raises(ValueError, match=r"raw_score \(2,\)"):
        fastbce.grad_hess([0, 1, 1], [0.5, 0.1])
    with pytest.raises(TypeError, match="raw_score"):
        fastbce.grad_hess([0, 1], ["a", "b"])
