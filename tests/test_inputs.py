"""Inputs of SPEC.md section 3: array-likes, layouts, broadcasting, label dtypes, memory."""

import array
import gc
import tracemalloc

import numpy as np
import pytest

import fastbce
from conftest import FLOAT_DTYPES, assert_close, assert_matches_reference, dtype_id, make_data

DTYPES = pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
KINDS = pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
RTOL = 1e-12  # the same implementation on the same values, float64, another layout


def _all_results(y, p, **kw):
    """(mean, sum, none, grad) of one input, for comparing layouts."""
    return (fastbce.bce(y, p, **kw), fastbce.bce(y, p, reduction="sum", **kw),
            fastbce.bce(y, p, reduction="none", **kw), fastbce.bce_grad(y, p, **kw))


def _assert_same_results(actual, expected, exact=False):
    for a, e in zip(actual, expected):
        assert type(a) is type(e)
        if isinstance(e, np.ndarray):
            assert a.dtype == e.dtype and a.shape == e.shape
        if not exact:
            assert_close(a, e, RTOL, 1e-300)
        elif isinstance(e, float):
            assert a == e
        else:
            assert np.array_equal(a, e)


def test_python_lists_equal_float64_arrays():
    y, p = [1, 0, 1, 0, 1], [0.9, 0.2, 0.8, 0.4, 0.0]
    _assert_same_results(_all_results(y, p),
                         _all_results(np.array(y, float), np.array(p)), exact=True)
    nested = fastbce.bce([[1, 0], [1, 0]], [[0.9, 0.2], [0.8, 0.4]], reduction="none")
    assert nested.shape == (2, 2) and nested.dtype == np.float64
    assert round(fastbce.bce([[1, 0], [1, 0]], [[0.9, 0.2], [0.8, 0.4]]), 4) == 0.2656


@DTYPES
@KINDS
def test_read_only_inputs(dtype, from_logits):
    data = make_data(10_000, dtype, from_logits)
    writable = {k: v.copy() for k, v in data.items()}
    read_only = {k: v.view() for k, v in writable.items()}
    for v in read_only.values():
        v.flags.writeable = False
    kw = lambda d: dict(from_logits=from_logits, sample_weight=d["sample_weight"],  # noqa: E731
                        pos_weight=d["pos_weight"])
    _assert_same_results(_all_results(read_only["y_true"], read_only["y_pred"], **kw(read_only)),
                         _all_results(writable["y_true"], writable["y_pred"], **kw(writable)),
                         exact=True)


@DTYPES
def test_memory_mapped_inputs(dtype, tmp_path):
    data = make_data(50_000, dtype)
    for name in ("y_true", "y_pred", "sample_weight"):
        np.save(tmp_path / f"{name}.npy", data[name])
    y, p, w = (np.load(tmp_path / f"{name}.npy", mmap_mode="r")
               for name in ("y_true", "y_pred", "sample_weight"))
    assert isinstance(p, np.memmap) and not p.flags.writeable
    got = _all_results(y, p, sample_weight=w)
    assert_matches_reference(got[0], y, p, sample_weight=w)
    _assert_same_results(got, _all_results(data["y_true"], data["y_pred"],
                                           sample_weight=data["sample_weight"]), exact=True)


def _strided_like(values, view):
    """`values` copied into a fresh non-contiguous 1-D view of the given kind."""
    n = values.shape[0]
    if view == "column":            # proba[:, 1] of an (n, 2) array
        base = np.zeros((n, 2), dtype=values.dtype)
        base[:, 1] = values
        strided = base[:, 1]
    else:
        step = {"step3": 3, "reversed": -1, "reversed_step2": -2}[view]
        base = np.zeros(abs(step) * n, dtype=values.dtype)
        base[::step] = values
        strided = base[::step]
    assert not strided.flags.c_contiguous and np.array_equal(strided, values)
    return strided


@KINDS
@pytest.mark.parametrize("view", ["column", "step3", "reversed", "reversed_step2"])
@pytest.mark.parametrize("which", ["y_pred", "y_true", "all"])
def test_strided_views(from_logits, view, which):
    data = make_data(40_001, np.float64, from_logits)
    y, p, w = data["y_true"], data["y_pred"], data["sample_weight"]
    if which in ("y_true", "all"):
        y = _strided_like(y, view)
    if which in ("y_pred", "all"):
        p = _strided_like(p, view)
    if which == "all":
        w = _strided_like(w, view)
    kw = dict(from_logits=from_logits, sample_weight=w)
    got = _all_results(y, p, **kw)
    _assert_same_results(got, _all_results(data["y_true"], data["y_pred"], from_logits=from_logits,
                                           sample_weight=data["sample_weight"]))
    assert_matches_reference(got[1], y, p, reduction="sum", **kw)


@KINDS
def test_fortran_order_2d(from_logits):
    data = make_data(60_000, np.float64, from_logits)
    c = {k: v.reshape(200, 300) for k, v in data.items()}
    f = {k: np.asfortranarray(v) for k, v in c.items()}
    assert f["y_pred"].flags.f_contiguous and not f["y_pred"].flags.c_contiguous
    kw = lambda d: dict(from_logits=from_logits, sample_weight=d["sample_weight"],  # noqa: E731
                        pos_weight=d["pos_weight"])
    got = _all_results(f["y_true"], f["y_pred"], **kw(f))
    assert got[2].shape == (200, 300) and got[3].shape == (200, 300)
    _assert_same_results(got, _all_results(c["y_true"], c["y_pred"], **kw(c)))


@KINDS
def test_mixed_layouts_2d(from_logits):
    """C-order labels, Fortran predictions and a transposed weight view together."""
    data = make_data(60_000, np.float64, from_logits)
    y = data["y_true"].reshape(200, 300)
    p = np.asfortranarray(data["y_pred"].reshape(200, 300))
    w = np.ascontiguousarray(data["sample_weight"].reshape(200, 300).T).T
    kw = dict(from_logits=from_logits, sample_weight=w)
    got = _all_results(y, p, **kw)
    _assert_same_results(got, _all_results(y, np.ascontiguousarray(p), from_logits=from_logits,
                                           sample_weight=np.ascontiguousarray(w)))


@KINDS
def test_three_dimensional_arrays(from_logits):
    data = make_data(24_000, np.float64, from_logits)
    shape = (20, 30, 40)
    nd = {k: v.reshape(shape) for k, v in data.items()}
    kw = dict(from_logits=from_logits, sample_weight=nd["sample_weight"])
    got = _all_results(nd["y_true"], nd["y_pred"], **kw)
    flat = _all_results(data["y_true"], data["y_pred"], from_logits=from_logits,
                        sample_weight=data["sample_weight"])
    assert got[2].shape == shape and got[3].shape == shape
    _assert_same_results(got, (flat[0], flat[1], flat[2].reshape(shape), flat[3].reshape(shape)))
    # a 3-D strided view (every other plane, reversed rows)
    view = {k: v[::2, ::-1, :] for k, v in nd.items()}
    got = _all_results(view["y_true"], view["y_pred"], from_logits=from_logits)
    dense = _all_results(*(np.ascontiguousarray(view[k]) for k in ("y_true", "y_pred")),
                         from_logits=from_logits)
    _assert_same_results(got, dense)


BROADCASTS = {
    # name: (y_true shape or scalar, y_pred shape, sample_weight shape, pos_weight shape)
    "column_vs_row": ((50, 1), (1, 40), None, None),
    "weights_per_column": ((50, 40), (50, 40), (40,), None),
    "pos_weight_per_column": ((50, 40), (50, 40), None, (40,)),
    "scalar_label": ((), (50, 40), (50, 1), None),
    "all_broadcast": ((50, 1), (40,), (1, 40), (50, 1)),
    "prediction_broadcast": ((50, 40), (40,), None, None),
}


@KINDS
@pytest.mark.parametrize("case", list(BROADCASTS))
def test_broadcasting(from_logits, case, rng):
    y_shape, p_shape, w_shape, pw_shape = BROADCASTS[case]
    y = np.round(rng.random(y_shape)) if y_shape else 1.0
    p = rng.normal(0, 3, p_shape) if from_logits else rng.random(p_shape)
    w = None if w_shape is None else rng.random(w_shape) * 2
    pw = None if pw_shape is None else rng.uniform(0.5, 3, pw_shape)
    kw = dict(from_logits=from_logits, sample_weight=w, pos_weight=pw)
    got = _all_results(y, p, **kw)
    assert got[2].shape == (50, 40) and got[3].shape == (50, 40)
    expanded = [None if a is None else np.ascontiguousarray(np.broadcast_to(a, (50, 40)))
                for a in (y, p, w, pw)]
    want = _all_results(expanded[0], expanded[1], from_logits=from_logits,
                        sample_weight=expanded[2], pos_weight=expanded[3])
    _assert_same_results(got, want)
    for result, grad, reduction in ((got[0], False, "mean"), (got[1], False, "sum"),
                                    (got[2], False, "none"), (got[3], True, "mean")):
        assert_matches_reference(result, y, p, grad=grad, reduction=reduction, **kw)


LABEL_DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16,
                np.uint32, np.uint64, np.float16, np.float32, np.float64]


@DTYPES
@KINDS
@pytest.mark.parametrize("label_dtype", LABEL_DTYPES, ids=dtype_id)
def test_label_dtypes_give_same_result_as_float64(dtype, from_logits, label_dtype):
    data = make_data(30_001, dtype, from_logits)
    y64 = np.round(data["y_true"]).astype(np.float64)
    y = y64.astype(label_dtype)
    kw = dict(from_logits=from_logits, sample_weight=data["sample_weight"], pos_weight=1.5,
              label_smoothing=0.05)
    _assert_same_results(_all_results(y, data["y_pred"], **kw),
                         _all_results(y64, data["y_pred"], **kw), exact=True)


def test_soft_labels_in_float16_and_float32_are_read_exactly():
    y16 = np.array([0.25, 0.5, 0.75, 0.1], dtype=np.float16)
    p = np.array([0.3, 0.6, 0.9, 0.2])
    for y in (y16, y16.astype(np.float32)):
        assert fastbce.bce(y, p) == fastbce.bce(y.astype(np.float64), p)


class _ArrayLike:
    """An object known to NumPy only through __array__."""

    def __init__(self, values):
        self._values = np.asarray(values)

    def __array__(self, dtype=None, copy=None):
        return self._values if dtype is None else self._values.astype(dtype)


ARRAY_LIKES = {
    "array.array": lambda a: array.array("d", a.tolist()),
    "memoryview": lambda a: memoryview(a),
    "__array__": _ArrayLike,
}


@pytest.mark.parametrize("kind", list(ARRAY_LIKES))
def test_buffer_protocol_and_array_interface_objects(kind):
    data = make_data(5_000)
    y, p = (ARRAY_LIKES[kind](np.ascontiguousarray(data[k])) for k in ("y_true", "y_pred"))
    _assert_same_results(_all_results(y, p), _all_results(data["y_true"], data["y_pred"]),
                         exact=True)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_cpu_tensors(dtype_name):
    torch = pytest.importorskip("torch")
    data = make_data(5_000, getattr(np, dtype_name), True)
    y, x = (torch.from_numpy(np.array(data[k])) for k in ("y_true", "y_pred"))
    got = _all_results(y, x, from_logits=True)
    _assert_same_results(got, _all_results(data["y_true"], data["y_pred"], from_logits=True),
                         exact=True)
    assert got[2].dtype == getattr(np, dtype_name)


def test_pandas_series():
    pd = pytest.importorskip("pandas")
    data = make_data(5_000)
    y = pd.Series(np.round(data["y_true"]).astype(np.int64))
    p = pd.Series(data["y_pred"])
    w = pd.Series(data["sample_weight"])
    got = _all_results(y, p, sample_weight=w)
    _assert_same_results(got, _all_results(y.to_numpy(), p.to_numpy(),
                                           sample_weight=w.to_numpy()), exact=True)


# -- memory: a reduced call makes no full-size temporary ----------------------

BIG = 20_000_000            # 80 MB of float32 predictions
MAX_EXTRA = 4 * 2**20       # bytes
MEDIUM = 4_000_000          # labels widened to 4 bytes would take 16 MB


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(99)
    data = dict(y=rng.integers(0, 2, BIG, dtype=np.uint8),
                p=rng.random(BIG, dtype=np.float32),
                w=rng.random(BIG, dtype=np.float32))
    yield data
    data.clear()
    gc.collect()


def _peak_traced_bytes(call):
    call()  # warm-up: imports, caches, thread pool
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert type(result) is float and np.isfinite(result)
    return peak


@pytest.fixture(scope="module")
def medium_predictions():
    return np.random.default_rng(98).random(MEDIUM, dtype=np.float32)


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES, ids=dtype_id)
def test_labels_of_every_dtype_are_read_without_a_copy(medium_predictions, label_dtype):
    """Spec section 3: labels are read as they are, without converting the whole array."""
    y = np.random.default_rng(97).integers(0, 2, MEDIUM).astype(label_dtype)
    peak = _peak_traced_bytes(lambda: fastbce.bce(y, medium_predictions))
    assert peak < MAX_EXTRA, (f"peak extra memory {peak / 2**20:.1f} MiB "
                              f"for {y.nbytes / 2**20:.0f} MiB of {y.dtype} labels")


@pytest.mark.parametrize("case", ["uint8_labels_float32_proba", "strided_proba",
                                  "logits_with_sample_weight"])
def test_reduced_call_allocates_no_full_size_temporary(big, case):
    y, p, w = big["y"], big["p"], big["w"]
    if case == "uint8_labels_float32_proba":
        call = lambda: fastbce.bce(y, p)  # noqa: E731
    elif case == "strided_proba":
        call = lambda: fastbce.bce(y[1::2], p[::2])  # noqa: E731
    else:
        call = lambda: fastbce.bce(y, p, from_logits=True, sample_weight=w)  # noqa: E731
    peak = _peak_traced_bytes(call)
    assert peak < MAX_EXTRA, (f"peak extra memory {peak / 2**20:.1f} MiB "
                              f"for {p.nbytes / 2**20:.0f} MiB of predictions")


@pytest.mark.parametrize("weight_dtype", [np.float32, np.float64], ids=dtype_id)
@DTYPES
def test_float_weights_of_another_dtype_are_read_without_a_copy(dtype, weight_dtype):
    """float64 weights beside float32 predictions (and the reverse) are read in place."""
    n = MEDIUM
    y = np.random.default_rng(3).integers(0, 2, n).astype(np.uint8)
    p = np.full(n, 0.25, dtype=dtype)
    w = np.random.default_rng(4).random(n).astype(weight_dtype)
    peak = _peak_traced_bytes(lambda: fastbce.bce(y, p, sample_weight=w))
    assert peak < MAX_EXTRA, f"peak extra memory {peak / 2**20:.1f} MiB"
    assert fastbce.bce(y, p, sample_weight=w) == fastbce.bce(y, p, sample_weight=w.astype(dtype))
