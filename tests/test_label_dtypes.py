"""Labels of every dtype: the same numbers, the same errors (docs/kernels.md).

The kernels read labels in their own dtype and narrow each chunk to int8
when all of its labels are 0 or 1 (the fast loops), or read them in the
compute type when not (soft labels, or an invalid value, which the math then
flags). These tests pin down that every path gives the same result and that
no invalid value slips through a narrowing (256 as int16 truncates to 0).
"""
import numpy as np
import pytest

import fastbce
from fastbce._reference import bce_reference

LABEL_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                "float16", "float32", "float64"]
N = 5 * 1024 + 37  # several chunks and a remainder


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    x = rng.normal(0, 3, N)
    y = rng.random(N) < 1 / (1 + np.exp(-x))
    return y, x


def _calls(y, x, pred_dtype, layout):
    xs = x.astype(pred_dtype)
    p = (1 / (1 + np.exp(-x))).astype(pred_dtype)
    if layout == "strided":
        y, xs, p = (np.repeat(a, 2)[::2] for a in (y, xs, p))
        assert not y.flags.c_contiguous or y.size <= 1
    w = np.linspace(0.5, 2.0, y.size)
    return {
        "logits mean": fastbce.bce(y, xs, from_logits=True),
        "probabilities mean": fastbce.bce(y, p),
        "probabilities weighted sum": fastbce.bce(y, p, sample_weight=w, reduction="sum"),
        "logits none": fastbce.bce(y, xs, from_logits=True, reduction="none").tobytes(),
        "and_grad logits": (lambda r: (r[0], r[1].tobytes()))(fastbce.bce_and_grad(y, xs, from_logits=True)),
        "and_grad probabilities": (lambda r: (r[0], r[1].tobytes()))(fastbce.bce_and_grad(y, p, pos_weight=2.0)),
        # without weights (labels of the predictions' dtype read in place on AVX-512)
        "and_grad probabilities plain": (lambda r: (r[0], r[1].tobytes()))(fastbce.bce_and_grad(y, p)),
        "grad probabilities": fastbce.bce_grad(y, p).tobytes(),
        "probabilities none": fastbce.bce(y, p, reduction="none").tobytes(),
        "smoothed": fastbce.bce(y, xs, from_logits=True, label_smoothing=0.1),
        "grad_hess": tuple(a.tobytes() for a in fastbce.grad_hess(y, xs)),
        "evaluate": (lambda e: (e.log_loss, e.brier, e.tp, e.fp, e.roc_auc))(fastbce.evaluate(y, p, bins=20)),
    }


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("pred_dtype", ["float32", "float64"])
def test_every_label_dtype_gives_the_same_bits(data, pred_dtype, layout):
    y, x = data
    expected = _calls(y.astype(pred_dtype), x, pred_dtype, layout)
    for dtype in LABEL_DTYPES:
        assert _calls(y.astype(dtype), x, pred_dtype, layout) == expected, dtype


def test_the_integer_path_agrees_with_the_reference(data):
    y, x = data
    for dtype in ("uint8", "int64", "float32"):
        got = fastbce.bce(y.astype(dtype), x, from_logits=True, reduction="sum")
        assert got == pytest.approx(bce_reference(y, x, from_logits=True, reduction="sum"), rel=1e-12)


@pytest.mark.parametrize("pred_dtype", ["float32", "float64"])
def test_soft_labels_beside_binary_chunks(data, pred_dtype):
    """A chunk of soft labels among 0/1 chunks takes the float loops; the
    result is the reference's, and the same for every float label dtype."""
    y, x = data
    soft = y.astype(np.float64)
    soft[2048:3072] = np.linspace(0, 1, 1024)      # one whole chunk soft
    soft[4100] = 0.25                               # one soft label in another
    soft[1024] = 0.5                                # a chunk whose first label alone is soft
    soft = soft.astype(np.float16).astype(np.float64)  # exactly representable in every float dtype
    xs = x.astype(pred_dtype)
    rtol = 1e-6 if pred_dtype == "float32" else 1e-12
    expected = bce_reference(soft, xs.astype(np.float64), from_logits=True, reduction="sum")
    results = {dtype: fastbce.bce(soft.astype(dtype), xs, from_logits=True, reduction="sum")
               for dtype in ("float16", "float32", "float64")}
    for dtype, value in results.items():
        assert value == pytest.approx(expected, rel=rtol), dtype
    assert len(set(results.values())) == 1
    p = (1 / (1 + np.exp(-x))).astype(pred_dtype)
    assert fastbce.bce(soft.astype(np.float32), p) == pytest.approx(
        bce_reference(soft, p.astype(np.float64), eps=float(np.finfo(pred_dtype).eps)), rel=rtol * 10)


# values that are not labels but narrow to 0 or 1 in a lower width
TRUNCATING = [("int16", 256), ("uint16", 257), ("int32", 1 << 16), ("uint32", (1 << 32) - 1),
              ("int32", -(1 << 31)), ("int64", 1 << 32), ("int64", (1 << 32) + 1), ("int64", -(1 << 32)),
              ("uint64", 1 << 63), ("uint64", (1 << 64) - 1), ("uint8", 255), ("int8", -1),
              ("float16", np.inf), ("float16", np.nan), ("float16", -np.inf), ("float32", 1.0000001),
              ("float64", np.nan), ("float32", -1e-30)]


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype,value", TRUNCATING, ids=[f"{d}-{v}" for d, v in TRUNCATING])
def test_an_invalid_label_is_named_whatever_its_dtype(data, dtype, value, layout):
    y, x = data
    labels = y.astype(dtype)
    labels[4321] = value
    if layout == "strided":
        labels, x = np.repeat(labels, 3)[::3], np.repeat(x, 3)[::3]
    shown = repr(labels[4321].item())
    for call in (lambda: fastbce.bce(labels, x, from_logits=True),
                 lambda: fastbce.bce_and_grad(labels, (1 / (1 + np.exp(-x))).astype(np.float32)),
                 lambda: fastbce.evaluate(labels, 1 / (1 + np.exp(-x)))):
        with pytest.raises(ValueError) as error:
            call()
        assert f"y_true[4321] = {shown}" in str(error.value)


def test_negative_zero_labels_are_zero(data):
    y, x = data
    labels = np.where(y, 1.0, -0.0)
    p = 1 / (1 + np.exp(-x))
    for dtype in ("float16", "float32", "float64"):
        assert fastbce.bce(labels.astype(dtype), x, from_logits=True) == fastbce.bce(y, x, from_logits=True)
        for pred_dtype in ("float32", "float64"):
            ours = fastbce.bce_and_grad(labels.astype(dtype), p.astype(pred_dtype))
            expected = fastbce.bce_and_grad(y, p.astype(pred_dtype))
            assert ours[0] == expected[0] and ours[1].tobytes() == expected[1].tobytes()


def test_float64_labels_beside_float32_predictions_are_read_as_float32(data):
    """(documented: labels are computed in the predictions' float type) a
    float64 label within float32 rounding of 1 counts as 1."""
    y, x = data
    labels = y.astype(np.float64)
    labels[labels == 1] = 1 + 1e-12
    x32 = x.astype(np.float32)
    assert fastbce.bce(labels, x32, from_logits=True) == fastbce.bce(y, x32, from_logits=True)
    with pytest.raises(ValueError, match="y_true"):
        fastbce.bce(labels, x, from_logits=True)  # float64 predictions: 1 + 1e-12 is above 1
