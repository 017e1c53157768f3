"""fastbce.metrics.log_loss: scikit-learn's log_loss for binary problems.

Two kinds of checks:
- against ``sklearn.metrics.log_loss`` (generated inputs, misuses and their
  exception types, warnings); these skip when scikit-learn is not installed;
- hand-computed values, chunk boundaries, error messages, memory and the
  deliberate deviations, which need only NumPy.

Tolerance against scikit-learn: 1e-12 relative in float64 (as the rest of the
suite), plus a floor of one unit in the last place of 1 per sample: for 1-D
probabilities scikit-learn rounds ``1 - p`` to the float type before its log,
fastbce does not (a documented difference, at most ~1.1e-16 per sample).
float32 inputs are summed in float32 by scikit-learn and in float64 here:
agreement to float32 precision.
"""

import inspect
import math
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastbce
from fastbce.metrics import CHUNK, InvalidParameterError, log_loss

RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5, np.dtype(np.float16): 2e-2}
FLOOR = {np.dtype(np.float64): 2.0 ** -52, np.dtype(np.float32): 2.0 ** -22,
         np.dtype(np.float16): 2.0 ** -9}

# (negative class, positive class) pairs of every kind of label; the positive
# class is the greater one whatever the order the labels come in
LABEL_PAIRS = {
    "int01": (np.int64(0), np.int64(1)),
    "int-1/1": (np.int64(-1), np.int64(1)),
    "int1/2": (np.int64(1), np.int64(2)),
    "uint8_01": (np.uint8(0), np.uint8(1)),
    "bool": (np.False_, np.True_),
    "float01": (np.float64(0.0), np.float64(1.0)),
    "float2/5": (np.float64(2.0), np.float64(5.0)),
    "float32_01": (np.float32(0.0), np.float32(1.0)),
    "str": ("ham", "spam"),
}


@pytest.fixture(scope="module")
def sk_log_loss():
    metrics = pytest.importorskip("sklearn.metrics")
    return metrics.log_loss


def make_labels(kind, positive_mask):
    negative, positive = LABEL_PAIRS[kind]
    if kind == "str":
        return np.where(positive_mask, positive, negative)
    return np.where(positive_mask, positive, negative).astype(np.asarray(negative).dtype)


def expected_loss(positive_mask, p, *, weights=None, normalize=True, eps=None, p0=None):
    """Straight from the definition, in Python floats: clip, log, exactly rounded sum.
    p0: the column-0 probabilities of a two-column y_pred (used for the negatives)."""
    p = np.asarray(p, dtype=np.float64)
    if eps is None:
        eps = float(np.finfo(np.float64).eps)
    terms = []
    for i, positive in enumerate(np.asarray(positive_mask).tolist()):
        if positive:
            term = -math.log(min(max(p[i], eps), 1 - eps))
        elif p0 is not None:
            term = -math.log(min(max(float(p0[i]), eps), 1 - eps))
        else:
            term = -math.log1p(-min(max(p[i], eps), 1 - eps))
        terms.append(term * (1.0 if weights is None else float(weights[i])))
    total = math.fsum(terms)
    if not normalize:
        return total
    return total / (len(terms) if weights is None else math.fsum(map(float, weights)))


def assert_agrees(ours, theirs, dtype, weights=None, normalize=True, n=None):
    dtype = np.dtype(dtype)
    assert type(ours) is float, type(ours)
    scale = 1.0 if normalize else (n if weights is None else float(np.sum(weights)))
    tolerance = RTOL[dtype] * abs(theirs) + FLOOR[dtype] * scale
    assert abs(ours - theirs) <= tolerance, (ours, theirs, ours - theirs, tolerance)


def both(sk_log_loss, *args, **kwargs):
    """(fastbce's, scikit-learn's) results and the messages of their UserWarnings."""
    results, caught = [], []
    for function in (log_loss, sk_log_loss):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            results.append(function(*args, **kwargs))
        caught.append(sorted(str(r.message)[:40] for r in records
                             if issubclass(r.category, UserWarning)
                             and not issubclass(r.category, FutureWarning)))
    return results, caught


# -- hand-computed values (no scikit-learn needed) ------------------------------

def test_hand_computed_value():
    y = [0, 1, 1, 0]
    p = [0.1, 0.8, 0.7, 0.4]
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.7) + math.log(0.6)) / 4
    assert log_loss(y, p) == pytest.approx(expected, rel=1e-15, abs=0)
    assert log_loss(y, p, normalize=False) == pytest.approx(4 * expected, rel=1e-15, abs=0)
    w = [1.0, 2.0, 0.0, 0.5]
    weighted = -(math.log(0.9) + 2 * math.log(0.8) + 0.5 * math.log(0.6))
    assert log_loss(y, p, sample_weight=w, normalize=False) == pytest.approx(weighted, rel=1e-15)
    assert log_loss(y, p, sample_weight=w) == pytest.approx(weighted / 3.5, rel=1e-15)


def test_docstring_example():
    # the example of scikit-learn's documentation (0.21616 there as well)
    value = log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
    assert round(value, 5) == 0.21616


@pytest.mark.parametrize("kind", list(LABEL_PAIRS))
@pytest.mark.parametrize("reverse", [False, True], ids=["", "reversed"])
def test_label_kinds_map_greater_class_to_positive(kind, reverse):
    rng = np.random.default_rng(7)
    mask = rng.random(50) < 0.4
    p = rng.random(50)
    y = make_labels(kind, mask)
    if reverse:  # the order the classes appear in does not matter
        y, mask, p = y[::-1], mask[::-1], p[::-1]
    assert_agrees(log_loss(y, p), expected_loss(mask, p), np.float64)
    assert_agrees(log_loss(list(y.tolist()), p.tolist()), expected_loss(mask, p), np.float64)


def test_string_labels_sorted_not_by_appearance():
    # "spam" > "ham": spam is the positive class even though "spam" comes first
    assert_agrees(log_loss(["spam", "ham"], [0.9, 0.2]), expected_loss([1, 0], [0.9, 0.2]),
                  np.float64)
    assert_agrees(log_loss(["b", "a"], [0.9, 0.2]), expected_loss([1, 0], [0.9, 0.2]),
                  np.float64)


def test_two_columns_use_column_zero_for_negatives():
    # rows that do not sum to one: not renormalised, negatives read column 0
    P = np.array([[0.5, 0.3], [0.2, 0.9], [0.7, 0.3]])
    with pytest.warns(UserWarning, match="do not sum to one"):
        value = log_loss([0, 1, 0], P)
    assert value == pytest.approx(-(math.log(0.5) + math.log(0.9) + math.log(0.7)) / 3, rel=1e-15)
    # a column vector is the positive class's probability
    assert log_loss([0, 1, 0], P[:, 1:]) == pytest.approx(
        -(math.log1p(-0.3) + math.log(0.9) + math.log1p(-0.3)) / 3, rel=1e-15)


def test_two_columns_that_sum_to_one_do_not_warn():
    rng = np.random.default_rng(3)
    P = rng.dirichlet([1.0, 1.0], 1000)
    y = rng.random(1000) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = log_loss(y, P)
    assert_agrees(value, expected_loss(y, P[:, 1], p0=P[:, 0]), np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("two_columns", [False, True], ids=["1-D", "2-col"])
def test_clipping_uses_the_prediction_dtype_eps(dtype, two_columns):
    eps = float(np.finfo(dtype).eps)
    p = np.array([0.0, 1.0], dtype=dtype)  # both completely wrong
    y_pred = np.column_stack([1 - p, p]) if two_columns else p
    assert log_loss([1, 0], y_pred) == pytest.approx(-math.log(eps), rel=1e-6)
    # completely right: clipped to 1 - eps
    assert log_loss([0, 1], y_pred) == pytest.approx(-math.log1p(-eps), rel=1e-6)


@pytest.mark.parametrize("y_pred", [[0, 1, 1, 0], [False, True, True, False]], ids=["int", "bool"])
def test_integer_and_bool_predictions_are_float64(y_pred):
    eps = float(np.finfo(np.float64).eps)
    assert log_loss([0, 1, 0, 1], y_pred) == pytest.approx(
        (-2 * math.log1p(-eps) - 2 * math.log(eps)) / 4, rel=1e-12)


def test_one_class_with_labels():
    p = np.array([0.2, 0.7, 0.9])
    assert_agrees(log_loss([1, 1, 1], p, labels=[0, 1]), expected_loss([1, 1, 1], p), np.float64)
    assert_agrees(log_loss([0, 0, 0], p, labels=[0, 1]), expected_loss([0, 0, 0], p), np.float64)
    # with labels [1, 2], 1 is the negative class
    assert_agrees(log_loss([1, 1, 1], p, labels=[1, 2]), expected_loss([0, 0, 0], p), np.float64)
    assert_agrees(log_loss(["b", "b"], p[:2], labels=["a", "b"]), expected_loss([1, 1], p[:2]),
                  np.float64)
    with pytest.warns(UserWarning, match="Labels passed were"):
        assert_agrees(log_loss([1, 1, 1], p, labels=[1, 0]), expected_loss([1, 1, 1], p),
                      np.float64)


def test_y_proba_and_the_deprecated_y_pred_keyword():
    # scikit-learn 1.9: the second argument is y_proba; y_pred= still works, with a
    # FutureWarning, and not together with y_proba
    assert log_loss([0, 1], y_proba=[0.3, 0.6]) == log_loss([0, 1], [0.3, 0.6])
    assert log_loss([[0], [1]], [0.3, 0.6]) == log_loss([0, 1], [0.3, 0.6])
    with pytest.warns(FutureWarning, match=r"`y_pred` was renamed to `y_proba` in version 1\.9"):
        assert log_loss([0, 1], y_pred=[0.3, 0.6]) == log_loss([0, 1], [0.3, 0.6])
    with pytest.raises(InvalidParameterError, match="Cannot use both `y_pred` and `y_proba`"):
        log_loss([0, 1], y_pred=[0.3, 0.6], y_proba=[0.3, 0.6])
    with pytest.raises(TypeError):
        log_loss([0, 1])


def test_read_only_and_strided_inputs():
    rng = np.random.default_rng(5)
    P = rng.dirichlet([1.0, 1.0], 3000)
    y = np.where(rng.random(3000) < 0.5, -1, 1)
    w = rng.random(3000)
    for array in (P, y, w):
        array.flags.writeable = False
    expected = expected_loss(y == 1, P[:, 1], weights=w, p0=P[:, 0])
    assert_agrees(log_loss(y, P, sample_weight=w), expected, np.float64)
    assert_agrees(log_loss(y, np.asfortranarray(P), sample_weight=w), expected, np.float64)
    assert_agrees(log_loss(y[::2], P[::2, 1], sample_weight=w[::2]),
                  expected_loss(y[::2] == 1, P[::2, 1], weights=w[::2]), np.float64)


# -- chunks: labels are checked and mapped a chunk at a time ----------------------

N_CHUNKED = 2 * CHUNK + 37


def _chunked_labels(case, rng):
    """Labels whose classes become clear only after the first chunk."""
    n = N_CHUNKED
    mixed = rng.random(n - CHUNK) < 0.5
    if case == "ones_then_01":   # first chunk all 1: still 0/1 labels
        return np.r_[np.ones(CHUNK, int), mixed.astype(int)], np.r_[np.ones(CHUNK, bool), mixed]
    if case == "ones_then_2":    # first chunk all 1, then 2: 1 is the *negative* class
        return (np.r_[np.ones(CHUNK, int), np.where(mixed, 2, 1)],
                np.r_[np.zeros(CHUNK, bool), mixed])
    if case == "zeros_then_-1":  # 0 is the positive class of {-1, 0}
        return (np.r_[np.zeros(CHUNK), np.where(mixed, 0.0, -1.0)],
                np.r_[np.ones(CHUNK, bool), mixed])
    mask = rng.random(n) < 0.5
    if case == "-1/1":
        return np.where(mask, 1, -1).astype(np.int8), mask
    return np.where(mask, "yes", "no"), mask


@pytest.mark.parametrize("case", ["ones_then_01", "ones_then_2", "zeros_then_-1", "-1/1", "str"])
@pytest.mark.parametrize("form", ["1-D", "2-col"])
def test_chunked_labels(case, form):
    rng = np.random.default_rng(11)
    y, mask = _chunked_labels(case, rng)
    p = rng.random(N_CHUNKED)
    w = rng.random(N_CHUNKED)
    if form == "2-col":
        P = np.column_stack([1 - p, p])
        P[::3, 0] = rng.random(P[::3].shape[0])  # rows that do not sum to one
        with pytest.warns(UserWarning, match="do not sum to one"):
            value = log_loss(y, P, sample_weight=w, normalize=False)
        expected = expected_loss(mask, p, weights=w, normalize=False, p0=P[:, 0])
    else:
        value = log_loss(y, p, sample_weight=w, normalize=False)
        expected = expected_loss(mask, p, weights=w, normalize=False)
    assert_agrees(value, expected, np.float64, weights=w, normalize=False)


def test_third_class_found_in_a_later_chunk():
    # the binary path hands the call over to the multi-class one, which counts the classes
    y = np.r_[np.zeros(CHUNK, int), [1, 2, 1]]
    with pytest.raises(ValueError, match="different number of classes: 3 vs 2"):
        log_loss(y, np.full(y.shape, 0.5))


@pytest.mark.parametrize("labels", ["01", "-1/1"])
@pytest.mark.parametrize("form", ["1-D", "2-col", "column"])
def test_errors_name_the_index_in_the_callers_array(labels, form):
    n = CHUNK + 100
    bad = CHUNK + 5
    y = np.tile([0, 1], n // 2) if labels == "01" else np.tile([-1, 1], n // 2)
    p = np.full(n, 0.25)
    y_pred = {"1-D": p, "2-col": np.column_stack([1 - p, p]), "column": p[:, None]}[form]
    index = {"1-D": f"y_pred[{bad}]", "2-col": f"y_pred[{bad}, 1]", "column": f"y_pred[{bad}, 0]"}
    for value, fragment in ((np.nan, "NaN"), (1.5, "greater than 1"), (-0.5, "lower than 0")):
        broken = y_pred.copy()
        broken[(bad, 1) if form == "2-col" else (bad, 0) if form == "column" else bad] = value
        with pytest.raises(ValueError, match=fragment) as info:
            log_loss(y, broken)
        assert index[form] in str(info.value), str(info.value)
    w = np.ones(n)
    w[bad] = -2.0
    with pytest.raises(ValueError, match=rf"sample_weight\[{bad}\] = -2\.0"):
        log_loss(y, y_pred, sample_weight=w)
    w[bad] = np.nan
    with pytest.raises(ValueError, match=rf"NaN: sample_weight\[{bad}\]"):
        log_loss(y, y_pred, sample_weight=w)
    w[bad] = np.inf
    with pytest.raises(ValueError, match=rf"infinity: sample_weight\[{bad}\]"):
        log_loss(y, y_pred, sample_weight=w)


def test_no_full_size_temporaries():
    n = 64 * CHUNK  # a full-size bool temporary would be 64 * CHUNK bytes
    rng = np.random.default_rng(2)
    p = rng.random(n)
    P = np.column_stack([1 - p, p])
    mask = rng.random(n) < 0.5
    y_pm = np.where(mask, 1, -1).astype(np.int8)
    w = rng.random(n)
    for args, kwargs in [((mask, p), {}), ((mask.astype(np.int64), p), {}),
                         ((mask.astype(np.float64), p), {}), ((y_pm, p), {}),
                         ((y_pm, P), {"sample_weight": w}), ((mask, P), {}),
                         ((y_pm, p.astype(np.float32)), {"sample_weight": np.ones(n, np.int64)})]:
        tracemalloc.start()
        try:
            log_loss(*args, **kwargs)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= 48 * CHUNK, (args[0].dtype, args[1].shape, kwargs.keys(), peak)


# -- errors and the deliberate differences ----------------------------------------------

def test_class_count_errors():
    # scikit-learn's errors when the classes and the columns do not match
    with pytest.raises(ValueError, match="different number of classes: 3 vs 2"):
        log_loss([0, 1, 2], [0.2, 0.5, 0.7])
    with pytest.raises(ValueError, match="different number of classes: 2 vs 3"):
        log_loss([0, 1, 1], [[0.2, 0.3, 0.5]] * 3)
    with pytest.raises(ValueError, match="number of classes in labels is different"):
        log_loss([0, 1], [0.2, 0.5], labels=[0, 1, 2])
    with pytest.raises(ValueError, match="different number of classes: 3 vs 2"):
        log_loss(["a", "b", "c"], [0.2, 0.5, 0.7])
    # a label-indicator y_true, as scikit-learn
    assert log_loss(np.eye(2, dtype=int), [0.2, 0.5]) == pytest.approx(
        -(math.log(0.8) + math.log(0.5)) / 2, rel=1e-15)


def test_negative_sample_weight_is_an_error():
    with pytest.raises(ValueError, match=r"sample_weight\[1\] = -2"):
        log_loss([0, 1, 1], [0.1, 0.8, 0.7], sample_weight=[1, -2, 3])


def test_soft_labels_are_refused():
    with pytest.raises(ValueError, match="continuous"):
        log_loss([0.0, 0.5, 1.0], [0.1, 0.8, 0.7])


def test_invalid_parameter_error_is_value_and_type_error():
    for call in (lambda: log_loss([0, 1], 0.5), lambda: log_loss(1, [0.5]),
                 lambda: log_loss([0, 1], [0.2, 0.4], normalize=1),
                 lambda: log_loss([0, 1], [0.2, 0.4], sample_weight=2.0)):
        with pytest.raises(InvalidParameterError) as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


# -- against scikit-learn -------------------------------------------------------------

FORMS = ["1-D", "column", "2-col", "2-col-free"]


def _predictions(form, p, rng):
    if form == "1-D":
        return p
    if form == "column":
        return p[:, None]
    if form == "2-col":
        return np.column_stack([1 - p, p])
    # independent columns: rows that sum to one only roughly (or not at all)
    P = rng.dirichlet([0.5, 0.5], p.shape[0]).astype(p.dtype)
    P[::7, 0] *= 0.5
    return P


@pytest.mark.parametrize("kind", list(LABEL_PAIRS))
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_sklearn(sk_log_loss, kind, form, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{kind} {form}".encode()))
    n = 3001
    mask = rng.random(n) < 0.3
    y = make_labels(kind, mask)
    p = rng.beta(0.3, 0.3, n).astype(dtype)
    p[:20] = [0, 1] * 10  # clipped
    y_pred = _predictions(form, p, rng)
    w = rng.random(n) * 3
    w[::5] = 0
    for weights in (None, w):
        for normalize in (True, False):
            (ours, theirs), (our_warnings, their_warnings) = both(
                sk_log_loss, y, y_pred, sample_weight=weights, normalize=normalize)
            assert_agrees(ours, theirs, dtype, weights, normalize, n)
            assert our_warnings == their_warnings


@pytest.mark.parametrize("kind", ["int01", "int-1/1", "bool", "str"])
@pytest.mark.parametrize("form", ["1-D", "2-col-free"])
def test_matches_sklearn_across_chunks(sk_log_loss, kind, form):
    rng = np.random.default_rng(17)
    n = 2 * CHUNK + 123
    mask = rng.random(n) < 0.5
    y = make_labels(kind, mask)
    y_pred = _predictions(form, rng.random(n), rng)
    w = rng.random(n)
    (ours, theirs), (our_warnings, their_warnings) = both(sk_log_loss, y, y_pred, sample_weight=w)
    assert_agrees(ours, theirs, np.float64)
    assert our_warnings == their_warnings


def test_matches_sklearn_float16(sk_log_loss):
    # scikit-learn computes float16 in float16: agreement to float16 precision,
    # but the clipping (float16's eps) must be the same
    p = np.array([0.0, 1.0, 0.25, 0.5, 0.875], dtype=np.float16)
    y = [1, 0, 1, 0, 1]
    assert_agrees(log_loss(y, p), sk_log_loss(y, p), np.float16)


def test_matches_sklearn_labels(sk_log_loss):
    p = np.array([0.2, 0.7, 0.9])
    for y, labels in (([1, 1, 1], [0, 1]), ([0, 0, 0], [0, 1]), ([1, 1, 1], [1, 2]),
                      (["b", "b", "b"], ["a", "b"]), ([1, 1, 1], [1, 0]),
                      (["x", "y", "x"], ["y", "x"]),
                      ([True, True, True], [False, True]), ([2.0, 2.0, 2.0], [2, 3])):
        (ours, theirs), (our_warnings, their_warnings) = both(sk_log_loss, y, p, labels=labels)
        assert_agrees(ours, theirs, np.float64)
        assert our_warnings == their_warnings, (y, labels)


PAIRS = st.sampled_from(sorted(LABEL_PAIRS))
PROBABILITIES = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 1.0, 1e-300, 1e-17, 2e-16, 0.5, 1 - 1e-16, 1 - 2e-16, 1 - 1e-10]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=PAIRS, form=st.sampled_from(FORMS), normalize=st.booleans(),
       weighted=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]))
def test_matches_sklearn_generated(sk_log_loss, data, kind, form, normalize, weighted, dtype):
    n = data.draw(st.integers(1, 40), label="n")
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="mask"))
    p = np.array(data.draw(st.lists(PROBABILITIES, min_size=n, max_size=n), label="p"), dtype=dtype)
    if form == "2-col-free":
        other = np.array(data.draw(st.lists(PROBABILITIES, min_size=n, max_size=n)), dtype=dtype)
        y_pred = np.column_stack([other, p])
    else:
        y_pred = _predictions(form, p, None)
    weights = None
    if weighted:
        # weights are multiplied in the prediction's float type (README): a
        # float64 weight below float32's smallest normal beside float32
        # predictions underflows, so those are drawn only for float64
        weight = st.one_of(st.just(0.0), st.floats(float(np.finfo(dtype).tiny), 10.0))
        weights = np.array(data.draw(st.lists(weight, min_size=n, max_size=n), label="weights"))
        if not weights.any():
            weights[0] = 1.0
    y = make_labels(kind, mask)
    labels = None
    if mask.all() or not mask.any():
        labels = list(LABEL_PAIRS[kind])
    (ours, theirs), (our_warnings, their_warnings) = both(
        sk_log_loss, y, y_pred, normalize=normalize, sample_weight=weights, labels=labels)
    assert_agrees(ours, theirs, dtype, weights, normalize, n)
    assert our_warnings == their_warnings


def _misuses():
    p = [0.1, 0.8, 0.7]
    return {
        "multiclass": (([0, 1, 2], p), {}),
        "multiclass_str": ((["a", "b", "c"], p), {}),
        "three_columns": (([0, 1, 1], [[0.2, 0.3, 0.5]] * 3), {}),
        "zero_columns": (([0, 1, 1], np.empty((3, 0))), {}),
        "y_pred_3d": (([0, 1, 1], np.full((3, 2, 1), 0.5)), {}),
        "lengths": (([0, 1, 1], [0.1, 0.8]), {}),
        "weight_length": (([0, 1, 1], p), {"sample_weight": [1.0, 2.0]}),
        "weight_2d": (([0, 1, 1], p), {"sample_weight": [[1.0], [2.0], [3.0]]}),
        "one_class": (([1, 1, 1], p), {}),
        "one_class_str": ((["a", "a", "a"], p), {}),
        "one_class_2col": (([0, 0, 0], [[0.3, 0.7]] * 3), {}),
        "labels_not_matching": (([1, 2, 1], p), {"labels": [0, 1]}),
        "labels_other_type": ((["a", "b", "a"], p), {"labels": [0, 1]}),
        "labels_one_class": (([1, 1, 1], p), {"labels": [1]}),
        "labels_three_classes": (([0, 1, 1], p), {"labels": [0, 1, 2]}),
        "labels_set": (([0, 1, 1], p), {"labels": {0, 1}}),
        "greater_than_1": (([0, 1, 1], [0.1, 1.8, 0.7]), {}),
        "lower_than_0": (([0, 1, 1], [0.1, -0.8, 0.7]), {}),
        "nan": (([0, 1, 1], [0.1, np.nan, 0.7]), {}),
        "inf": (([0, 1, 1], [0.1, np.inf, 0.7]), {}),
        "2col_greater_than_1": (([0, 1, 1], [[0.5, 0.5], [1.5, -0.5], [0.5, 0.5]]), {}),
        "2col_nan_other_column": (([0, 1, 1], [[0.5, 0.5], [np.nan, 0.5], [0.5, 0.5]]), {}),
        "complex": (([0, 1, 1], np.array(p) + 0j), {}),
        "strings": (([0, 1, 1], ["a", "b", "c"]), {}),
        "y_true_nan": (([0, 1, np.nan], p), {}),
        "y_true_inf": (([0, 1, np.inf], p), {}),
        "y_true_continuous": (([0.0, 0.5, 1.0], p), {}),
        "y_true_mixed": ((["a", 1, 1], p), {}),
        "y_true_object_ints": ((np.array([0, 1, 1], dtype=object), p), {}),
        "y_true_bytes": ((np.array([b"a", b"b", b"a"]), p), {}),
        "weight_nan": (([0, 1, 1], p), {"sample_weight": [1.0, np.nan, 1.0]}),
        "weight_inf": (([0, 1, 1], p), {"sample_weight": [1.0, np.inf, 1.0]}),
        "weights_all_zero": (([0, 1, 1], p), {"sample_weight": [0.0, 0.0, 0.0]}),
        "weights_all_zero_sum": (([0, 1, 1], p), {"sample_weight": [0, 0, 0], "normalize": False}),
        "empty": (([], []), {}),
        "scalar_y_pred": (([0, 1, 1], 0.5), {}),
        "scalar_y_true": ((1, [0.5]), {}),
        "scalar_weight": (([0, 1, 1], p), {"sample_weight": 2.0}),
        "normalize_int": (([0, 1, 1], p), {"normalize": 1}),
        "normalize_str": (([0, 1, 1], p), {"normalize": "yes"}),
        "both_y_pred_and_y_proba": (([0, 1, 1],), {"y_pred": p, "y_proba": p}),
    }


MISUSES = _misuses()


def _builtin_bases(exception_type):
    return [base for base in exception_type.__mro__
            if base.__module__ == "builtins" and base not in (object, BaseException, Exception)]


@pytest.mark.parametrize("name", list(MISUSES))
def test_misuse_raises_sklearns_exception_type(sk_log_loss, name):
    args, kwargs = MISUSES[name]
    sk_args, sk_kwargs = args, kwargs
    if "y_proba" in kwargs and "y_proba" not in inspect.signature(sk_log_loss).parameters:
        pytest.skip("scikit-learn < 1.9 has no y_proba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as theirs:
            sk_log_loss(*sk_args, **sk_kwargs)
        with pytest.raises(Exception) as ours:
            log_loss(*args, **kwargs)
    bases = _builtin_bases(type(theirs.value))
    assert bases, type(theirs.value)
    for base in bases:
        assert isinstance(ours.value, base), (type(ours.value), type(theirs.value), str(ours.value))


def test_misuse_messages():
    checks = {
        "multiclass": "different number of classes: 3 vs 2",
        "three_columns": "different number of classes: 2 vs 3",
        "lengths": "inconsistent numbers of samples: [2, 3]",
        "one_class": "only one label (1)", "labels_not_matching": "{2} not belonging",
        "labels_one_class": "at least two labels", "greater_than_1": "y_pred[1] = 1.8",
        "lower_than_0": "y_pred[1] = -0.8", "nan": "NaN: y_pred[1]", "inf": "y_pred[1] = inf",
        "2col_greater_than_1": "y_pred[1, 0] = 1.5", "2col_nan_other_column": "NaN: y_pred[1, 0]",
        "y_true_nan": "y_true[2]", "weight_nan": "sample_weight[1]",
        "weight_inf": "sample_weight[1] = inf", "weights_all_zero": "at least one non-zero",
        "weights_all_zero_sum": "at least one non-zero", "empty": "0 sample(s)",
        "y_true_continuous": "continuous",
    }
    for name, fragment in checks.items():
        args, kwargs = MISUSES[name]
        with pytest.raises(ValueError) as info:
            log_loss(*args, **kwargs)
        assert fragment in str(info.value), (name, str(info.value))


def test_same_result_as_fastbce_bce():
    # the 0/1-label, 1-D path is one fastbce.bce call
    rng = np.random.default_rng(9)
    y = rng.random(10_000) < 0.5
    p = rng.random(10_000).astype(np.float32)
    w = rng.random(10_000).astype(np.float32)
    assert log_loss(y, p, sample_weight=w) == fastbce.bce(y, p, sample_weight=w)
    assert log_loss(y, p, normalize=False) == fastbce.bce(y, p, reduction="sum")


# -- multi-class (fastbce's multiclass kernel) ---------------------------------------

MC_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5, np.dtype(np.float16): 5e-3}


def multiclass_data(n, k, seed=0, dtype=np.float64, sums_to_one=True):
    rng = np.random.default_rng(seed)
    proba = rng.random((n, k))
    proba[rng.random((n, k)) < 0.05] = 0.0  # some clipped at eps
    proba[:, 0] += 1e-3
    if sums_to_one:
        proba /= proba.sum(axis=1, keepdims=True)
    return rng.integers(0, k, n), proba.astype(dtype), rng.random(n)


def expected_multiclass(codes, proba, weights=None, normalize=True):
    """-log(clip(p[i, code_i])) in float64 with math.fsum, the clip in the dtype."""
    eps = np.finfo(proba.dtype).eps
    chosen = np.clip(proba[np.arange(len(codes)), codes], eps, np.asarray(1, proba.dtype) - eps)
    terms = [-math.log(float(q)) * (1.0 if weights is None else float(w))
             for q, w in zip(chosen, weights if weights is not None else codes)]
    total = math.fsum(terms)
    if not normalize:
        return total
    return total / (len(codes) if weights is None else math.fsum(map(float, weights)))


def test_multiclass_hand_computed():
    y = [1, 0, 2]
    p = [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]]
    expected = -(math.log(0.7) + math.log(0.6) + math.log(0.3)) / 3
    assert log_loss(y, p) == pytest.approx(expected, rel=1e-15, abs=0)
    assert log_loss(y, p, normalize=False) == pytest.approx(3 * expected, rel=1e-15, abs=0)
    # rows are clipped, not renormalised (scikit-learn >= 1.5), with a warning
    with pytest.warns(UserWarning, match="do not sum to one"):
        value = log_loss(y, [[0.2, 0.35, 0.1], [0.3, 0.1, 0.1], [0.3, 0.05, 0.15]])
    assert value == pytest.approx(-(math.log(0.35) + math.log(0.3) + math.log(0.15)) / 3,
                                  rel=1e-15, abs=0)
    # a zero probability of the true class: -log(eps)
    assert log_loss([0, 1, 2], np.eye(3)[[1, 1, 2]]) == pytest.approx(
        -math.log(np.finfo(np.float64).eps) / 3, rel=1e-15)


MC_LABELS = {
    "int64_0k": lambda codes: codes,
    "int32_0k": lambda codes: codes.astype(np.int32),
    "uint8_0k": lambda codes: codes.astype(np.uint8),
    "shifted": lambda codes: codes + 3,
    "negative": lambda codes: codes * 7 - 20,
    "big": lambda codes: codes + (1 << 40),
    "float": lambda codes: codes.astype(np.float64) * 2,
    "str": lambda codes: np.array([f"class-{c:02d}" for c in range(10)])[codes],
    "object_str": lambda codes: np.array([f"c{c:02d}" for c in range(10)], dtype=object)[codes],
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("kind", list(MC_LABELS))
def test_multiclass_matches_sklearn(sk_log_loss, kind, dtype):
    n, k = 20_000, 10  # several of the kernel's blocks
    codes, proba, w = multiclass_data(n, k, dtype=dtype)
    y = MC_LABELS[kind](codes)
    rtol = MC_RTOL[np.dtype(dtype)]
    for kwargs in ({}, {"normalize": False}, {"sample_weight": w},
                   {"sample_weight": w, "normalize": False}):
        if dtype == np.float16 and kwargs.get("normalize") is False:
            continue  # scikit-learn's float16 sum overflows to inf; fastbce sums in float64
        (ours, theirs), (our_warnings, their_warnings) = both(sk_log_loss, y, proba, **kwargs)
        assert type(ours) is float
        assert ours == pytest.approx(theirs, rel=rtol, abs=0), kwargs
        assert our_warnings == their_warnings
    if dtype == np.float64:
        # and to the exact sum: scikit-learn's float64 sum is within 1e-12 of it
        expected = expected_multiclass(codes, proba, w)
        assert log_loss(y, proba, sample_weight=w) == pytest.approx(expected, rel=1e-13, abs=0)


@pytest.mark.parametrize("layout", ["fortran", "strided", "byteswapped", "int_probabilities",
                                    "not_summing_to_one", "column_labels", "lists"])
def test_multiclass_layouts_match_sklearn(sk_log_loss, layout):
    codes, proba, w = multiclass_data(2000, 5, seed=3, sums_to_one=layout != "not_summing_to_one")
    y = codes
    if layout == "fortran":
        proba = np.asfortranarray(proba)
    elif layout == "strided":
        wide = np.zeros((2000, 15))
        wide[:, ::3] = proba
        proba = wide[:, ::3]
    elif layout == "byteswapped":
        proba = proba.astype(proba.dtype.newbyteorder())
    elif layout == "int_probabilities":
        proba = np.eye(5, dtype=np.int64)[(codes + (codes % 2)) % 5]
    elif layout == "column_labels":
        y = codes[:, None]
    elif layout == "lists":
        y, proba = codes.tolist(), proba.tolist()
    (ours, theirs), (our_warnings, their_warnings) = both(sk_log_loss, y, proba, sample_weight=w)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)
    assert our_warnings == their_warnings


def test_multiclass_labels_argument(sk_log_loss):
    codes, proba, w = multiclass_data(1000, 4, seed=5)
    y = np.array(["b", "d", "f", "h"])[codes]
    # classes absent from y_true, given by labels (unsorted: a warning, as scikit-learn)
    y_few = np.where(y == "d", "b", y)
    for labels in (["b", "d", "f", "h"], ["h", "b", "d", "f"], np.array(["b", "d", "f", "h"])):
        (ours, theirs), (our_warnings, their_warnings) = both(sk_log_loss, y_few, proba,
                                                              labels=labels)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=0)
        assert our_warnings == their_warnings
    # integer labels with a class that never occurs
    y_int = np.array([1, 3, 3, 1, 1])
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25],
                  [0.6, 0.2, 0.2]])
    (ours, theirs), _ = both(sk_log_loss, y_int, p, labels=[1, 2, 3])
    assert ours == pytest.approx(theirs, rel=1e-14, abs=0)


def test_multiclass_label_indicator_y_true(sk_log_loss):
    rng = np.random.default_rng(8)
    y = (rng.random((300, 4)) < 0.4).astype(int)
    _, proba, w = multiclass_data(300, 4, seed=8)
    (ours, theirs), _ = both(sk_log_loss, y, proba, sample_weight=w)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)


def test_multiclass_the_same_bits_for_any_thread_count():
    from fastbce import _kernels
    codes, proba, w = multiclass_data(200_000, 7, seed=11)
    eps = float(np.finfo(np.float64).eps)
    results = {threads: _kernels.multiclass_kernel(codes, proba, w, eps, 1 - eps, 1e-8, threads)
               for threads in (1, 2, 3, 8)}
    assert len({tuple(r.values()) for r in results.values()}) == 1, results
    assert results[1]["loss"] == pytest.approx(
        expected_multiclass(codes, proba, w, normalize=False), rel=1e-13, abs=0)


def test_multiclass_kernel_flags():
    from fastbce import _kernels
    codes = np.array([0, 1, 2, 5, -1], dtype=np.int64)
    proba = np.full((5, 3), 1 / 3)
    proba[1, 2] = np.nan
    proba[2] = [0.5, 0.5, 0.5]
    w = np.array([1.0, 2.0, -1.0, 1.0, 1.0])
    sums = _kernels.multiclass_kernel(codes, proba, w, 1e-16, 1 - 1e-16, 1e-8, 1)
    assert sums["bad_probability"] == 1 and sums["bad_code"] == 2
    assert sums["bad_weight"] == 1 and sums["not_one"] == 1  # (the NaN row compares false)
    with pytest.raises(ValueError, match="contiguous 1-D"):
        _kernels.multiclass_kernel(codes[::2], proba[::2], None, 1e-16, 1 - 1e-16, 1e-8, 1)
    with pytest.raises(TypeError):
        _kernels.multiclass_kernel(codes.astype(np.int32), proba, None, 1e-16, 1 - 1e-16, 1e-8, 1)


def test_multiclass_no_one_hot_matrix():
    n, k = 200_000, 10
    codes, proba, w = multiclass_data(n, k, seed=4)
    for y, bound in ((codes, 64 * 1024), (codes.astype(np.int32), 8 * n + 64 * 1024)):
        tracemalloc.start()
        try:
            log_loss(y, proba, sample_weight=w)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # a one-hot matrix would be 8 n k bytes
        assert peak <= bound, (y.dtype, peak)


MC_MISUSES = {
    "nan_and_class_mismatch": (([0, 1, 2], [[0.2, np.nan], [0.5, 0.5], [0.5, 0.5]]), {}),
    "inf_multiclass": (([0, 1, 2], [[0.2, 0.3, np.inf]] * 3), {}),
    "nan_multiclass": (([0, 1, 2], [[0.2, 0.3, np.nan]] * 3), {}),
    "greater_than_1_and_lengths": (([0, 1, 2, 1], [[0.2, 0.3, 1.5]] * 3), {}),
    "lower_than_0": (([0, 1, 2], [[0.2, -0.3, 0.5]] * 3), {}),
    "lengths": (([0, 1, 2, 1], [[0.2, 0.3, 0.5]] * 3), {}),
    "one_class": (([2, 2, 2], [[0.2, 0.3, 0.5]] * 3), {}),
    "labels_one_class": (([2, 2, 2], [[0.2, 0.3, 0.5]] * 3), {"labels": [2]}),
    "labels_missing_one": ((["a", "b", "c"], [[0.2, 0.3, 0.5]] * 3), {"labels": ["a", "c", "d"]}),
    "labels_more_classes": (([0, 1, 2], [[0.2, 0.3, 0.5]] * 3), {"labels": [0, 1, 2, 3]}),
    "more_columns": (([0, 1, 1], [[0.2, 0.3, 0.5]] * 3), {}),
    "fewer_columns": (([0, 1, 2, 3], [[0.2, 0.3, 0.5]] * 4), {}),
    "weight_nan": (([0, 1, 2], [[0.2, 0.3, 0.5]] * 3), {"sample_weight": [1, np.nan, 1]}),
    "weights_all_zero": (([0, 1, 2], [[0.2, 0.3, 0.5]] * 3), {"sample_weight": [0, 0, 0]}),
    "y_true_continuous": (([0, 1.5, 2], [[0.2, 0.3, 0.5]] * 3), {}),
    "y_pred_3d": (([0, 1, 2], np.full((3, 3, 1), 1 / 3)), {}),
    # the binary path reports in scikit-learn's order too
    "binary_nan_and_one_class": (([1, 1, 1], [0.2, np.nan, 0.3]), {}),
    "binary_inf_and_lengths": (([1, 0], [0.2, np.inf, 0.3]), {}),
    "binary_2col_nan_and_undeclared": (([1, 0, 5], [[0.2, 0.8], [0.5, np.nan], [1, 0]]),
                                       {"labels": [0, 1]}),
}


@pytest.mark.parametrize("name", list(MC_MISUSES))
def test_multiclass_misuse_raises_sklearns_exception(sk_log_loss, name):
    args, kwargs = MC_MISUSES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as theirs:
            sk_log_loss(*args, **kwargs)
        with pytest.raises(Exception) as ours:
            log_loss(*args, **kwargs)
    for base in _builtin_bases(type(theirs.value)):
        assert isinstance(ours.value, base), (type(ours.value), str(theirs.value), str(ours.value))
    # scikit-learn's message starts ours (fastbce adds where) unless it names a value
    # fastbce names differently
    theirs_text, ours_text = str(theirs.value), str(ours.value)
    if name not in ("greater_than_1_and_lengths", "lower_than_0", "y_true_continuous",
                    "y_pred_3d", "weight_nan"):
        assert ours_text.startswith(theirs_text.rstrip(".")), (theirs_text, ours_text)


def test_multiclass_deliberate_difference_negative_weights():
    with pytest.raises(ValueError, match=r"sample_weight\[1\] = -1\.0"):
        log_loss([0, 1, 2], [[0.2, 0.3, 0.5]] * 3, sample_weight=[1.0, -1.0, 1.0])


def test_warnings_point_at_the_caller():
    calls = [
        lambda: log_loss([0, 1], [[0.2, 0.5], [0.5, 0.6]]),
        lambda: log_loss([0, 1, 2], [[0.2, 0.5, 0.1]] * 3),
        lambda: log_loss([0, 1, 2], [[0.2, 0.5, 0.3]] * 3, labels=[2, 1, 0]),
        lambda: log_loss([0, 1], [[0.2, 0.8]] * 2, labels=[1, 0]),
        lambda: log_loss(np.eye(3), [[0.2, 0.5, 0.1]] * 3),
        lambda: log_loss([0, 1], y_pred=[0.2, 0.8]),
    ]
    for call in calls:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            call()
        assert [r.filename for r in records] == [__file__], [str(r.message) for r in records]
