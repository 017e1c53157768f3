"""The bad-input table of SPEC.md section 4: clear errors, nothing silently wrong.

Message conventions checked (substrings only): the argument's name, the first
bad index as ``name[i]`` (1-D) or ``name[i, j]`` (N-d, in the argument's own
shape) and the value as ``str()`` of the Python value; both shapes for
broadcast errors; the dtype for type errors.  Every failing call must leave the
caller's arrays unchanged.
"""

import math
import re
import warnings

import numpy as np
import pytest

import fastbce
from conftest import FLOAT_DTYPES, assert_unchanged, dtype_id, snapshot

FUNCTIONS = ["bce", "bce_grad", "bce_and_grad"]
DTYPES = pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
ARGS = ("y_true", "y_pred", "sample_weight", "pos_weight")


def _mentions_value(message, value):
    """`value` (a str) appears as a whole number in message: "2" is not "2.0" or "12"."""
    return re.search(r"(?<![\w.])" + re.escape(value) + r"(?!\.?\d)", message) is not None


def check_raises(exc, fragments, fn, args, value=None):
    """Call fastbce.<fn>(**args); expect exc with all fragments (and the value) in its message,
    and every array argument unchanged afterwards."""
    arrays = {k: v for k, v in args.items() if k in ARGS and v is not None}
    before = snapshot(*arrays.values())
    keywords = {k: v for k, v in args.items() if k not in ("y_true", "y_pred")}
    with pytest.raises(exc) as info:
        getattr(fastbce, fn)(args["y_true"], args["y_pred"], **keywords)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if value is not None:
        rest = message
        for fragment in fragments:
            rest = rest.replace(fragment, " ")
        assert _mentions_value(rest, value), f"value {value!r} not in {message!r}"
    assert_unchanged(before, *arrays.values())
    return message


def _good(n, dtype, from_logits=False, seed=0):
    rng = np.random.default_rng(seed)
    y = np.round(rng.random(n)).astype(dtype)
    p = (rng.normal(0, 3, n) if from_logits else rng.random(n)).astype(dtype)
    w = rng.random(n).astype(dtype)
    pw = rng.uniform(0.5, 2, n).astype(dtype)
    return dict(y_true=y, y_pred=p, sample_weight=w, pos_weight=pw, from_logits=from_logits)


# -- bad element values -------------------------------------------------------

BAD_VALUES = [  # (argument, bad value, from_logits)
    ("y_pred", 1.5, False), ("y_pred", -0.5, False), ("y_pred", math.nan, False),
    ("y_pred", math.inf, False), ("y_pred", math.nan, True),
    ("y_true", 1.5, False), ("y_true", -0.5, True), ("y_true", math.nan, False),
    ("y_true", math.nan, True),
    ("sample_weight", -1.0, False), ("sample_weight", math.nan, True),
    ("pos_weight", 0.0, False), ("pos_weight", -2.0, True), ("pos_weight", math.nan, False),
]
BIG = 1_000_000
POSITIONS = {"first": [0], "middle": [BIG // 2], "last": [BIG - 1],
             "several": [700_001, 300_003, BIG - 1, 650_000]}


def _bad_id(case):
    arg, value, from_logits = case
    return f"{arg}={value}-{'logits' if from_logits else 'proba'}"


@DTYPES
@pytest.mark.parametrize("case", BAD_VALUES, ids=_bad_id)
@pytest.mark.parametrize("position", list(POSITIONS))
def test_bad_value_in_large_array_reports_first_index(dtype, case, position):
    arg, value, from_logits = case
    args = _good(BIG, dtype, from_logits)
    bad = POSITIONS[position]
    args[arg][bad] = value
    first = min(bad)
    check_raises(ValueError, [f"{arg}[{first}]"], "bce", dict(args, num_threads=4),
                 value=str(args[arg][first].item()))


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", BAD_VALUES, ids=_bad_id)
def test_bad_value_is_an_error_in_every_function_and_reduction(fn, reduction, case):
    arg, value, from_logits = case
    args = _good(1000, np.float64, from_logits)
    args[arg][617] = value
    check_raises(ValueError, [f"{arg}[617]"], fn, dict(args, reduction=reduction),
                 value=str(float(value)))


INTEGER_LABELS = [(t, 2) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                    np.uint32, np.uint64)] + [
                  (t, -1) for t in (np.int8, np.int16, np.int32, np.int64)]


@pytest.mark.parametrize("label_dtype, label", INTEGER_LABELS,
                         ids=[f"{np.dtype(t).name}={v}" for t, v in INTEGER_LABELS])
def test_integer_label_out_of_range(label_dtype, label):
    y = np.array([0, 1, 1, 0, 1, label, 0, label], dtype=label_dtype)
    p = np.full(8, 0.5)
    check_raises(ValueError, ["y_true[5]"], "bce", dict(y_true=y, y_pred=p), value=str(label))


@pytest.mark.parametrize("arg, value", [("pos_weight", 0.0), ("pos_weight", -1.0),
                                        ("pos_weight", math.nan), ("sample_weight", -1.0),
                                        ("sample_weight", math.nan)])
def test_bad_scalar_weight(arg, value):
    args = dict(y_true=[1, 0, 1], y_pred=[0.9, 0.1, 0.8])
    args[arg] = value
    check_raises(ValueError, [arg], "bce", args, value=str(value))


def _full(shape, value=0.5, order="C"):
    return np.full(shape, value, order=order)


def _index_case(name):
    """(fresh args, argument to corrupt, index in its own shape, expected index text)."""
    y34, p34 = _full((3, 4), 1.0), _full((3, 4))
    return {
        "2d": (dict(y_true=y34, y_pred=p34), "y_pred", (1, 2), "y_pred[1, 2]"),
        "3d": (dict(y_true=_full((2, 3, 4), 0.0), y_pred=_full((2, 3, 4))), "y_pred", (1, 2, 3),
               "y_pred[1, 2, 3]"),
        "fortran": (dict(y_true=y34, y_pred=_full((3, 4), order="F")), "y_pred", (2, 1),
                    "y_pred[2, 1]"),
        "reversed": (dict(y_true=_full(6, 1.0), y_pred=_full(6)[::-1]), "y_pred", (1,),
                     "y_pred[1]"),
        "strided_column": (dict(y_true=_full(6, 1.0), y_pred=_full((6, 2))[:, 1]), "y_pred", (4,),
                           "y_pred[4]"),
        "labels_broadcast": (dict(y_true=_full((3, 1), 1.0), y_pred=p34), "y_true", (2, 0),
                             "y_true[2, 0]"),
        "pred_broadcast": (dict(y_true=y34, y_pred=_full(4)), "y_pred", (2,), "y_pred[2]"),
        "weights_broadcast": (dict(y_true=y34, y_pred=p34, sample_weight=_full(4, 1.0)),
                              "sample_weight", (3,), "sample_weight[3]"),
        "pos_weight_broadcast": (dict(y_true=y34, y_pred=p34, pos_weight=_full((3, 1), 1.0)),
                                 "pos_weight", (1, 0), "pos_weight[1, 0]"),
    }[name]


INDEX_CASES = ["2d", "3d", "fortran", "reversed", "strided_column", "labels_broadcast",
               "pred_broadcast", "weights_broadcast", "pos_weight_broadcast"]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("case", INDEX_CASES)
def test_bad_index_is_given_in_the_arguments_own_shape(fn, case):
    args, arg, index, text = _index_case(case)
    args[arg][index] = -3.0
    check_raises(ValueError, [text], fn, dict(args, reduction="none"), value="-3.0")


def test_infinite_logits_are_not_an_error():
    loss = fastbce.bce([1, 0, 1, 0], [math.inf, -math.inf, -math.inf, math.inf],
                       from_logits=True, reduction="none")
    assert loss.tolist() == [0.0, 0.0, math.inf, math.inf]


# -- shapes and dtypes ----------------------------------------------------------

SHAPE_CASES = {
    "labels_vs_predictions": (dict(y_true=np.ones(3), y_pred=np.full(4, 0.5)), ["(3,)", "(4,)"]),
    "2d": (dict(y_true=np.ones((3, 4)), y_pred=np.full((4, 3), 0.5)), ["(3, 4)", "(4, 3)"]),
    "sample_weight": (dict(y_true=np.ones(3), y_pred=np.full(3, 0.5), sample_weight=np.ones(5)),
                      ["(3,)", "(5,)"]),
    "pos_weight": (dict(y_true=np.ones((3, 4)), y_pred=np.full((3, 4), 0.5),
                        pos_weight=np.ones(3)), ["(3, 4)", "(3,)"]),
}


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_shapes_that_do_not_broadcast(fn, case):
    args, shapes = SHAPE_CASES[case]
    check_raises(ValueError, shapes, fn, args)


BAD_DTYPES = {
    "complex128": lambda: np.array([1, 0, 1], dtype=np.complex128) * 0.5,
    "complex64": lambda: np.array([1, 0, 1], dtype=np.complex64) * 0.5,
    "object": lambda: np.array([1, 0, 1], dtype=object),
    "str": lambda: np.array(["1", "0", "1"]),
    "bytes": lambda: np.array([b"1", b"0", b"1"]),
    "datetime64": lambda: np.array(["2024-01-01", "2024-01-02", "2024-01-03"],
                                   dtype="datetime64[D]"),
    "timedelta64": lambda: np.array([1, 0, 1], dtype="timedelta64[s]"),
}


@pytest.mark.parametrize("arg", ARGS)
@pytest.mark.parametrize("kind", list(BAD_DTYPES))
def test_unsupported_dtype_is_a_type_error(arg, kind):
    args = dict(y_true=np.array([1.0, 0.0, 1.0]), y_pred=np.array([0.9, 0.2, 0.6]))
    args[arg] = bad = BAD_DTYPES[kind]()
    message = check_raises(TypeError, [], "bce", args)
    assert str(bad.dtype) in message or bad.dtype.name in message, message


# -- keyword arguments ----------------------------------------------------------

KEYWORD_CASES = [("reduction", "avg"), ("reduction", "MEAN"), ("reduction", None),
                 ("label_smoothing", -0.1), ("label_smoothing", 1.0), ("label_smoothing", 1.5),
                 ("label_smoothing", math.nan),
                 ("eps", 0.0), ("eps", -1e-7), ("eps", 0.5), ("eps", 0.7), ("eps", math.nan)]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("keyword, value", KEYWORD_CASES)
def test_bad_keyword_value(fn, keyword, value):
    args = _good(100, np.float64)
    check_raises(ValueError, [keyword], fn, dict(args, **{keyword: value}))


def _out_cases():
    read_only = np.empty((4, 5))
    read_only.flags.writeable = False
    return {"wrong_shape": np.empty((5, 4)), "too_long": np.empty(21), "flat": np.empty(20),
            "wrong_dtype": np.empty((4, 5), np.float32), "integer": np.empty((4, 5), np.int64),
            "read_only": read_only}


@pytest.mark.parametrize("fn, reduction", [("bce", "none"), ("bce_grad", "mean"),
                                           ("bce_grad", "none"), ("bce_and_grad", "sum")])
@pytest.mark.parametrize("case", list(_out_cases()))
def test_bad_out(fn, reduction, case):
    args = {k: (v.reshape(4, 5) if isinstance(v, np.ndarray) else v)
            for k, v in _good(20, np.float64).items()}
    check_raises(ValueError, ["out"], fn, dict(args, reduction=reduction, out=_out_cases()[case]))


# -- empty input ------------------------------------------------------------------

@DTYPES
@pytest.mark.parametrize("shape", [(0,), (0, 3)], ids=str)
def test_empty_input(dtype, shape):
    y, p = np.zeros(shape, dtype=np.uint8), np.zeros(shape, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # sum and none must not warn
        total = fastbce.bce(y, p, reduction="sum")
        none = fastbce.bce(y, p, reduction="none")
    assert type(total) is float and total == 0.0
    assert isinstance(none, np.ndarray) and none.shape == shape and none.dtype == dtype
    with pytest.warns(RuntimeWarning):
        mean = fastbce.bce(y, p)
    assert type(mean) is float and math.isnan(mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reduction in ("mean", "sum", "none"):
            grad = fastbce.bce_grad(y, p, reduction=reduction)
            assert grad.shape == shape and grad.dtype == dtype
            loss, grad = fastbce.bce_and_grad(y, p, reduction=reduction)
            assert grad.shape == shape and grad.dtype == dtype


def test_failed_call_with_out_leaves_inputs_unchanged():
    args = _good(1000, np.float32)
    args["y_pred"][999] = 2.0
    out = np.zeros(1000, dtype=np.float32)
    check_raises(ValueError, ["y_pred[999]"], "bce_grad", dict(args, out=out), value="2.0")
