"""Shared data, tolerances and comparison helpers for the fastbce tests.

Tolerances (SPEC.md section 1, checked against fastbce._reference):
- reduced values: 1e-12 relative in float64, 1e-6 relative in float32;
- element-wise values: 1e-12 relative in float64, 2e-6 relative in float32;
- with an absolute floor proportional to the magnitude of the terms that the
  formula adds up (``term_scale``): 16 ulps of it element-wise, 1 ulp of its
  sum or mean for reduced values (rounding errors average out).  An
  implementation may evaluate an algebraically equal form (e.g.
  ``max(x, 0) - x * y + log1p(exp(-|x|))``) that cancels and loses a rounding
  error of that size; it matters only where the result is much smaller than
  its terms.
"""

import functools
import os
import sys

import numpy as np
import pytest

from fastbce._reference import bce_grad_reference, bce_reference

# pytest runs with --import-mode=importlib (pyproject.toml), which does not put
# tests/ on sys.path: add it so that test modules can `from conftest import ...`.
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FLOAT_DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
RTOL_REDUCED = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}
RTOL_ELEMENT = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-12}
FLOOR_ULPS_ELEMENT = 16

# The keyword combinations of spec section 1, one at a time and all together.
KEYWORD_CASES = ["plain", "sample_weight", "pos_weight_scalar", "pos_weight_array",
                 "label_smoothing", "eps", "combined"]


def dtype_id(dtype):
    return np.dtype(dtype).name


def compute_dtype(y_pred):
    """The float type the spec computes y_pred in: its own if float32/64, else float64."""
    dtype = np.asarray(y_pred).dtype
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


@functools.lru_cache(maxsize=None)
def make_data(n, dtype=np.float64, from_logits=False, seed=0):
    """Random inputs of length n in `dtype` (cached: do not modify them).

    Labels: a third exactly 0, a third exactly 1, the rest soft.  Probabilities
    pile up near 0 and 1 (beta(0.3, 0.3)) and include exact 0 and 1, so that
    clipping matters.  Logits: normal, sd 5.  Weights in [0, 2) with some
    zeros; pos_weight in [0.25, 4).
    """
    rng = np.random.default_rng(seed)
    y = rng.random(n)
    kind = rng.integers(0, 3, n)
    y[kind == 0] = 0.0
    y[kind == 1] = 1.0
    if from_logits:
        pred = rng.normal(0.0, 5.0, n)
    else:
        pred = rng.beta(0.3, 0.3, n)
        pred[rng.integers(0, n, max(n // 100, 1))] = 0.0
        pred[rng.integers(0, n, max(n // 100, 1))] = 1.0
    w = rng.random(n) * 2.0
    w[rng.random(n) < 0.05] = 0.0
    pw = rng.uniform(0.25, 4.0, n)
    data = dict(y_true=y, y_pred=pred, sample_weight=w, pos_weight=pw)
    data = {k: v.astype(dtype) for k, v in data.items()}
    for value in data.values():
        value.flags.writeable = False
    return data


# A power of two, so that eps and 1 - eps are exact in float32 too: a float32
# computation clips at float32(1 - 1e-3), whose distance to 1 is 1e-3 * (1 + 1e-5).
EPS = 2.0 ** -10


def keyword_case(name, data):
    """Keywords for one of KEYWORD_CASES, arrays taken from make_data()."""
    return {
        "plain": {},
        "sample_weight": {"sample_weight": data["sample_weight"]},
        "pos_weight_scalar": {"pos_weight": 2.5},
        "pos_weight_array": {"pos_weight": data["pos_weight"]},
        "label_smoothing": {"label_smoothing": 0.1},
        "eps": {"eps": EPS},
        "combined": {"sample_weight": data["sample_weight"], "pos_weight": data["pos_weight"],
                     "label_smoothing": 0.2, "eps": EPS / 8},
    }[name]


def term_scale(y_true, y_pred, *, from_logits=False, grad=False, reduction="none",
               sample_weight=None, pos_weight=None, label_smoothing=0.0, eps=None):
    """Size of the terms the loss (or gradient) formula adds, in float64.

    Element-wise for "none" and for gradients, reduced like the result otherwise.
    """
    if eps is None:
        eps = np.finfo(compute_dtype(y_pred)).eps
    w = 1.0 if sample_weight is None else sample_weight
    pw = 1.0 if pos_weight is None else pos_weight
    y, x, w, pw = (np.asarray(a, dtype=np.float64)
                   for a in np.broadcast_arrays(y_true, y_pred, w, pw))
    y = y * (1.0 - label_smoothing) + label_smoothing / 2.0
    with np.errstate(all="ignore"):
        if from_logits and grad:
            scale = w * (1.0 + 2.0 * pw)
        elif from_logits:  # |x| (0 for infinite x, whose loss is exactly 0 or inf)
            size = np.where(np.isinf(x), 0.0, np.abs(x))
            scale = w * np.maximum(pw, 1.0) * (1.0 + size)
        elif grad:
            p = np.clip(x, eps, 1.0 - eps)
            scale = w * (pw * y / p + (1.0 - y) / (1.0 - p))
        else:
            scale = w * (1.0 + pw)
    denom = w.sum() if reduction == "mean" else 1.0
    if grad or reduction == "none":
        return scale / denom
    return float(scale.sum() / denom)


def assert_close(actual, expected, rtol, atol=0.0):
    """|actual - expected| <= rtol * |expected| + atol, element-wise; infinities must match."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert not np.isnan(actual).any(), f"NaN at {np.argwhere(np.isnan(actual))[:5].tolist()}"
    inf = np.isinf(expected)
    with np.errstate(all="ignore"):
        ok = np.where(inf, actual == expected,
                      np.abs(actual - expected) <= rtol * np.abs(expected) + atol)
    if not ok.all():
        bad = np.argwhere(~ok)[:5]
        rows = [f"  at {tuple(i)}: actual {actual[tuple(i)]!r} expected {expected[tuple(i)]!r}"
                for i in bad]
        raise AssertionError(f"{(~ok).sum()} of {ok.size} differ beyond rtol={rtol}:\n"
                             + "\n".join(rows))


def assert_matches_reference(actual, y_true, y_pred, *, grad=False, reduction="mean", **kw):
    """Check a loss or gradient result of fastbce against the float64 reference."""
    dtype = compute_dtype(y_pred)
    ref = bce_grad_reference if grad else bce_reference
    expected = ref(y_true, y_pred, reduction=reduction, **kw)
    ulp_of_terms = np.finfo(dtype).eps * term_scale(
        y_true, y_pred, grad=grad, reduction=reduction, **kw)
    if grad or reduction == "none":
        assert isinstance(actual, np.ndarray) and actual.dtype == dtype, (type(actual), dtype)
        assert_close(actual, expected, RTOL_ELEMENT[dtype], FLOOR_ULPS_ELEMENT * ulp_of_terms)
    else:
        assert type(actual) is float, type(actual)
        assert_close(actual, expected, RTOL_REDUCED[dtype], ulp_of_terms)


def snapshot(*values):
    """Copies of the array-like arguments, to check later that a call left them unchanged."""
    return [np.array(v, copy=True) if v is not None else None for v in values]


def assert_unchanged(before, *values):
    for old, new in zip(before, values):
        if old is None:
            assert new is None
            continue
        new = np.asarray(new)
        assert old.dtype == new.dtype and old.shape == new.shape
        if old.dtype.kind in "fc":
            assert np.array_equal(old, new, equal_nan=True)
        else:
            assert old.tolist() == new.tolist()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
