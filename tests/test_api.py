"""The public API of SPEC.md section 2: signatures, result types, out=, the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastbce
from conftest import FLOAT_DTYPES, assert_matches_reference, dtype_id, make_data

DTYPES = pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
KINDS = pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])


def test_public_names_and_version():
    for name in ("bce", "bce_grad", "bce_and_grad"):
        assert callable(getattr(fastbce, name))
    assert isinstance(fastbce.__version__, str) and fastbce.__version__[:1].isdigit()


@pytest.mark.parametrize("fn", [fastbce.bce, fastbce.bce_grad, fastbce.bce_and_grad])
def test_options_are_keyword_only(fn):
    with pytest.raises(TypeError):
        fn([1, 0], [0.9, 0.2], False)


def test_default_reduction_is_mean():
    data = make_data(1000)
    y, p = data["y_true"], data["y_pred"]
    assert fastbce.bce(y, p) == fastbce.bce(y, p, reduction="mean")
    assert np.array_equal(fastbce.bce_grad(y, p), fastbce.bce_grad(y, p, reduction="mean"))


@DTYPES
@KINDS
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_loss_is_python_float(dtype, from_logits, reduction):
    data = make_data(1000, dtype, from_logits)
    kw = dict(from_logits=from_logits, reduction=reduction, sample_weight=data["sample_weight"])
    loss = fastbce.bce(data["y_true"], data["y_pred"], **kw)
    assert type(loss) is float
    loss2, grad = fastbce.bce_and_grad(data["y_true"], data["y_pred"], **kw)
    assert type(loss2) is float
    assert grad.dtype == dtype and grad.shape == (1000,)


@DTYPES
@pytest.mark.parametrize("fn", ["bce", "bce_grad", "bce_and_grad"])
def test_elementwise_outputs_have_prediction_dtype_and_broadcast_shape(dtype, fn):
    y = np.array([[1], [0], [1]], dtype=np.uint8)          # (3, 1)
    p = np.array([[0.1, 0.5, 0.9, 0.7]], dtype=dtype)      # (1, 4)
    w = np.array([1.0, 2.0, 0.5, 1.0])                     # (4,), float64 whatever p is
    result = getattr(fastbce, fn)(y, p, reduction="none", sample_weight=w)
    for array in (result if fn == "bce_and_grad" else [result]):
        assert isinstance(array, np.ndarray)
        assert array.dtype == dtype and array.shape == (3, 4)


@pytest.mark.parametrize("pred_dtype", [np.float16, np.int64, np.uint8, np.bool_], ids=dtype_id)
def test_other_prediction_dtypes_are_computed_in_float64(pred_dtype):
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([1, 0, 0, 1, 1, 0]).astype(pred_dtype)   # hard 0/1 "probabilities": clipped
    if pred_dtype == np.float16:
        p = np.array([0.9, 0.2, 0.8, 0.4, 0.0, 1.0], dtype=np.float16)
    p64 = p.astype(np.float64)
    assert fastbce.bce(y, p) == fastbce.bce(y, p64)       # float64 eps, float64 math
    loss, grad = fastbce.bce_and_grad(y, p, reduction="none")
    assert loss.dtype == np.float64 and grad.dtype == np.float64
    assert np.array_equal(loss, fastbce.bce(y, p64, reduction="none"))
    assert_matches_reference(fastbce.bce(y, p), y, p)


@pytest.mark.parametrize("pred_dtype", [np.float16, np.int32], ids=dtype_id)
def test_other_logit_dtypes_are_computed_in_float64(pred_dtype):
    y = np.array([1, 0, 1, 0])
    x = np.array([3, -2, -40, 7]).astype(pred_dtype)
    loss = fastbce.bce(y, x, from_logits=True, reduction="none")
    assert loss.dtype == np.float64
    assert np.array_equal(loss, fastbce.bce(y, x.astype(np.float64), from_logits=True,
                                            reduction="none"))


@DTYPES
@KINDS
@pytest.mark.parametrize("fn, reduction", [("bce", "none")] + [
    (fn, r) for fn in ("bce_grad", "bce_and_grad") for r in ("none", "mean", "sum")])
def test_out_is_written_and_returned(dtype, from_logits, fn, reduction):
    data = make_data(5000, dtype, from_logits)
    y, p = data["y_true"].reshape(50, 100), data["y_pred"].reshape(50, 100)
    kw = dict(from_logits=from_logits, reduction=reduction, pos_weight=2.0)
    out = np.full((50, 100), np.nan, dtype=dtype)
    result = getattr(fastbce, fn)(y, p, out=out, **kw)
    expected = getattr(fastbce, fn)(y, p, **kw)
    if fn == "bce_and_grad":
        assert result[1] is out
        if reduction == "none":
            assert result[0].tobytes() == expected[0].tobytes()
        else:
            assert result[0] == expected[0]
        expected = expected[1]
    else:
        assert result is out
    assert out.tobytes() == expected.tobytes()


def test_out_can_be_a_strided_view():
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.9, 0.2, 0.8, 0.4, 0.5])
    buffer = np.zeros(10)
    out = buffer[::2]
    assert fastbce.bce(y, p, reduction="none", out=out) is out
    assert np.array_equal(buffer[::2], fastbce.bce(y, p, reduction="none"))
    assert (buffer[1::2] == 0).all()


@KINDS
@pytest.mark.parametrize("num_threads", [None, 1, 2])
def test_small_calls_work(from_logits, num_threads):
    """Smoke test of the small-input path (no timing here: see benchmarks/)."""
    data = make_data(1000, np.float64, from_logits, seed=11)
    kw = dict(from_logits=from_logits, sample_weight=data["sample_weight"])
    y, p = data["y_true"], data["y_pred"]
    first = fastbce.bce(y, p, num_threads=num_threads, **kw)
    for _ in range(200):
        assert fastbce.bce(y, p, num_threads=num_threads, **kw) == first
    assert_matches_reference(first, y, p, **kw)
    loss, grad = fastbce.bce_and_grad(y, p, num_threads=num_threads, **kw)
    assert loss == first
    assert_matches_reference(grad, y, p, grad=True, **kw)


def test_single_element_and_zero_dimensional_inputs():
    assert fastbce.bce(1, 0.9) == pytest.approx(-np.log(0.9), rel=1e-12)
    loss = fastbce.bce(np.float64(0.0), np.float64(0.2), reduction="none")
    assert np.shape(loss) == () and float(loss) == pytest.approx(-np.log(0.8), rel=1e-12)


def test_module_entry_point_prints_version_openmp_and_self_check(tmp_path):
    # run where the imported fastbce lives (installed or built in place), from
    # a neutral directory so that no uncompiled source tree shadows it
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    env = dict(os.environ, PYTHONPATH=where + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "fastbce"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert fastbce.__version__ in text
    assert "openmp" in text.lower()
    assert "thread" in text.lower()
    assert "0.2656" in text
