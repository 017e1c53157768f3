"""axis=: the loss reduced over some axes only (one value per remaining index),
checked against the float64 reference reduced with NumPy."""
import warnings

import numpy as np
import pytest

import fastbce
from fastbce._reference import bce_grad_reference, bce_reference


def data(shape, dtype=np.float64, from_logits=False, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(shape) < 0.4).astype(np.float64)
    y[rng.random(shape) < 0.2] = 0.3  # some soft labels
    pred = rng.normal(0, 3, shape) if from_logits else rng.uniform(0.001, 0.999, shape)
    w = rng.random(shape) * 2
    return y.astype(dtype), pred.astype(dtype), w.astype(dtype)


def reference_over_axes(y, pred, axis, reduction="mean", sample_weight=None, **kw):
    """Element-wise reference loss (times w), reduced over `axis` in float64."""
    shape = np.broadcast_shapes(y.shape, pred.shape, *(() if sample_weight is None else (np.shape(sample_weight),)))
    elementwise = bce_reference(np.broadcast_to(y, shape), np.broadcast_to(pred, shape), reduction="none",
                                sample_weight=None if sample_weight is None else np.broadcast_to(sample_weight, shape),
                                **kw)
    total = elementwise.sum(axis=axis)
    if reduction == "sum":
        return total
    w = np.ones(shape) if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, np.float64), shape)
    return total / w.sum(axis=axis)


RTOL = {np.float32: 2e-6, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_rows_of_a_multilabel_output(dtype, from_logits, reduction, weighted):
    y, pred, w = data((300, 7), dtype, from_logits)
    kw = dict(from_logits=from_logits, reduction=reduction, sample_weight=w if weighted else None)
    result = fastbce.bce(y, pred, axis=-1, **kw)
    assert result.shape == (300,) and result.dtype == dtype
    expected = reference_over_axes(y, pred, -1, **kw)
    np.testing.assert_allclose(result, expected, rtol=RTOL[dtype], atol=1e-300)
    # axis=1 is the same axis
    np.testing.assert_array_equal(fastbce.bce(y, pred, axis=1, **kw), result)


@pytest.mark.parametrize("axis", [0, 1, 2, (0, 2), (1, 2), (0, 1), (0, 1, 2), (-1, 0)])
def test_any_axes_of_a_3d_input(axis):
    y, pred, w = data((6, 5, 40))
    kw = dict(sample_weight=w, pos_weight=2.5)
    result = fastbce.bce(y, pred, axis=axis, **kw)
    expected = reference_over_axes(y, pred, axis, **kw)
    assert result.shape == np.shape(expected)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_all_axes_equal_the_full_reduction():
    y, pred, w = data((30, 20))
    assert fastbce.bce(y, pred, axis=(0, 1), sample_weight=w)[()] == pytest.approx(
        fastbce.bce(y, pred, sample_weight=w), rel=1e-13)


def test_broadcast_weights_and_pos_weight():
    y, pred, _ = data((200, 5))
    column_weights = np.array([1.0, 0.5, 2.0, 0.0, 3.0])
    row_weights = np.linspace(0.1, 2, 200)[:, None]
    pos_weight = np.array([1.0, 2.0, 0.5, 4.0, 1.5])
    for w in (column_weights, row_weights):
        result = fastbce.bce(y, pred, axis=-1, sample_weight=w, pos_weight=pos_weight)
        expected = reference_over_axes(y, pred, -1, sample_weight=w, pos_weight=pos_weight)
        np.testing.assert_allclose(result, expected, rtol=1e-12)
    # labels broadcast too (one label row for every sample)
    result = fastbce.bce(y[0], pred, axis=0)
    np.testing.assert_allclose(result, reference_over_axes(y[0], pred, 0), rtol=1e-12)


@pytest.mark.parametrize("layout", ["strided", "fortran", "transposed", "reversed"])
def test_layouts_read_in_place_or_copied_give_the_same(layout):
    y, pred, w = data((80, 60))
    view = {
        "strided": lambda a: a[::2, 1::3],
        "fortran": np.asfortranarray,
        "transposed": lambda a: a.T,
        "reversed": lambda a: a[::-1, ::-1],
    }[layout]
    yv, pv, wv = view(y), view(pred), view(w)
    for axis in (0, 1):
        result = fastbce.bce(yv, pv, axis=axis, sample_weight=wv)
        expected = reference_over_axes(np.ascontiguousarray(yv), np.ascontiguousarray(pv), axis,
                                       sample_weight=np.ascontiguousarray(wv))
        np.testing.assert_allclose(result, expected, rtol=1e-12)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_over_an_axis(from_logits, weighted, reduction):
    y, pred, w = data((50, 9), from_logits=from_logits)
    kw = dict(from_logits=from_logits, sample_weight=w if weighted else None)
    grad = fastbce.bce_grad(y, pred, axis=-1, reduction=reduction, **kw)
    elementwise = bce_grad_reference(y, pred, reduction="none", **kw)
    divisor = (w if weighted else np.ones_like(w)).sum(axis=-1, keepdims=True)
    expected = elementwise / divisor if reduction == "mean" else elementwise
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-300)
    loss, grad_too = fastbce.bce_and_grad(y, pred, axis=-1, reduction=reduction, **kw)
    np.testing.assert_array_equal(grad_too, grad)
    np.testing.assert_array_equal(loss, fastbce.bce(y, pred, axis=-1, reduction=reduction, **kw))


def test_gradient_over_axis_0_and_into_out():
    y, pred, w = data((40, 30))
    expected = bce_grad_reference(y, pred, reduction="none", sample_weight=w) / w.sum(axis=0)
    np.testing.assert_allclose(fastbce.bce_grad(y, pred, axis=0, sample_weight=w), expected, rtol=1e-12)
    for out in (np.empty((40, 30)), np.empty((40, 30), order="F"), np.empty((40, 60))[:, ::2]):
        result = fastbce.bce_grad(y, pred, axis=0, sample_weight=w, out=out)
        assert result is out
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_rows_longer_than_a_block():
    # rows of more than 16,384 elements take one kernel call per row
    y, pred, w = data((3, 40_000), np.float32)
    result = fastbce.bce(y, pred, axis=-1, sample_weight=w)
    np.testing.assert_allclose(result, reference_over_axes(y, pred, -1, sample_weight=w), rtol=2e-6)
    loss, grad = fastbce.bce_and_grad(y, pred, axis=1, sample_weight=w)
    np.testing.assert_array_equal(loss, result)
    # float32 gradients of soft labels cancel: compared with fastbce's own
    # element-wise gradient (checked against the reference elsewhere), scaled
    elementwise = fastbce.bce_grad(y, pred, reduction="none", sample_weight=w).astype(np.float64)
    expected = elementwise / w.astype(np.float64).sum(1, keepdims=True)
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_the_same_for_every_thread_count():
    y, pred, w = data((20_000, 13), np.float32, from_logits=True)
    results = [fastbce.bce_and_grad(y, pred, axis=-1, sample_weight=w, from_logits=True, num_threads=t)
               for t in (1, 2, 3)]
    for loss, grad in results[1:]:
        np.testing.assert_array_equal(loss, results[0][0])
        np.testing.assert_array_equal(grad, results[0][1])


def test_errors_name_the_callers_index():
    y, pred, _ = data((10, 8))
    pred[7, 3] = 1.5
    with pytest.raises(ValueError, match=r"y_pred\[7, 3\] = 1\.5"):
        fastbce.bce(y, pred, axis=0)
    with pytest.raises(ValueError, match=r"y_pred\[3, 7\] = 1\.5"):
        fastbce.bce_grad(y.T, pred.T, axis=(1,))  # the index in the caller's (transposed) array
    with pytest.raises(ValueError, match="reduction"):
        fastbce.bce(y, pred, reduction="none", axis=0)
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError):
        fastbce.bce(y, pred, axis=2)
    with pytest.raises(ValueError):
        fastbce.bce(y, pred, axis=(0, 0))


def test_empty_and_zero_weight_rows_give_nan_with_a_warning():
    y, pred, w = data((4, 6))
    w[2] = 0
    with pytest.warns(RuntimeWarning, match="sum to zero"):
        result = fastbce.bce(y, pred, axis=1, sample_weight=w)
    assert np.isnan(result[2]) and np.isfinite(result[[0, 1, 3]]).all()
    with pytest.warns(RuntimeWarning, match="empty"):
        result = fastbce.bce(np.zeros((3, 0)), np.zeros((3, 0)), axis=1)
    assert result.shape == (3,) and np.isnan(result).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fastbce.bce(np.zeros((3, 0)), np.zeros((3, 0)), axis=1, reduction="sum").tolist() == [0, 0, 0]
        assert fastbce.bce(np.zeros((0, 5)), np.zeros((0, 5)), axis=1).shape == (0,)


def test_evaluate_over_an_axis_is_one_report_per_remaining_index():
    rng = np.random.default_rng(3)
    y = (rng.random((500, 4)) < 0.3).astype(np.uint8)
    p = rng.random((500, 4))
    w = rng.random(500)[:, None]
    ev = fastbce.evaluate(y, p, axis=0, sample_weight=w)
    assert list(ev.groups) == [0, 1, 2, 3]
    for column in range(4):
        alone = fastbce.evaluate(y[:, column], p[:, column], sample_weight=w[:, 0])
        assert ev.groups[column].log_loss == pytest.approx(alone.log_loss, rel=1e-13)
        assert ev.groups[column].tp == pytest.approx(alone.tp, rel=1e-13)
    assert ev.log_loss == pytest.approx(fastbce.bce(y, p, sample_weight=w), rel=1e-13)
    per_row = fastbce.evaluate(y, p, axis=-1)
    assert len(per_row.groups) == 500
    np.testing.assert_allclose([per_row.groups[i].log_loss for i in range(500)],
                               fastbce.bce(y, p, axis=-1), rtol=1e-12)
    with pytest.raises(ValueError, match="not both"):
        fastbce.evaluate(y, p, axis=0, groups=np.zeros((500, 4)))
