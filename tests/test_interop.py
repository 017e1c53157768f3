"""Inputs of other libraries (SPEC.md section 3): PyTorch, pandas, PyArrow, JAX, DLPack.

Each kind must give the results of the equal NumPy array, and be read in place:
``fastbce._interop.as_array`` (what every entry point converts its inputs with)
must return a view of the caller's memory, checked by data pointer or
``np.shares_memory``. Missing values and data on a GPU are refused with clear
errors. Each library's tests skip when it is not installed.
"""

import gc
import os
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastbce
from fastbce import _api, _interop
from conftest import make_data

N = 5_000


def _results(y, p, **kw):
    """Every entry point and reduction on one input: (mean, sum, none, grad, (loss, grad))."""
    return (fastbce.bce(y, p, **kw), fastbce.bce(y, p, reduction="sum", **kw),
            fastbce.bce(y, p, reduction="none", **kw), fastbce.bce_grad(y, p, **kw),
            fastbce.bce_and_grad(y, p, reduction="sum", **kw))


def _assert_identical(actual, expected):
    """Bit-identical results: the kernel read the same values in the same layout."""
    for a, e in zip(actual, expected):
        if isinstance(e, tuple):
            _assert_identical(a, e)
        elif isinstance(e, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == e.dtype and a.shape == e.shape
            assert np.array_equal(a, e)
        else:
            assert type(a) is float and a == e


def _pointer(array):
    return array.__array_interface__["data"][0]


def _converted(x, name="y_pred"):
    """What the entry points hand the kernel for x (after the dtype check)."""
    array = _api._as_numeric_array(x, name)
    assert type(array) is np.ndarray
    return array


def _data(dtype=np.float64, from_logits=False, n=N):
    """Writable copies of make_data's arrays (torch.from_numpy wants writable memory)."""
    return {k: np.array(v) for k, v in make_data(n, dtype, from_logits).items()}


def test_importing_fastbce_imports_no_other_library():
    code = ("import sys, fastbce; fastbce.bce([1, 0], [0.5, 0.5]); "
            "print(sorted(m for m in ('torch', 'pandas', 'pyarrow', 'jax') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_plain_ndarray_passes_straight_through():
    a = np.arange(4.0)
    assert _interop.as_array(a, "y") is a
    assert _api._as_numeric_array(a, "y") is a


# -- PyTorch ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
def test_torch_tensors_match_numpy_and_are_read_in_place(dtype, from_logits):
    torch = pytest.importorskip("torch")
    d = _data(getattr(np, dtype), from_logits)
    labels = (d["y_true"] > 0.5).astype(np.uint8)
    t = {k: torch.from_numpy(v) for k, v in d.items()}
    kw = dict(from_logits=from_logits)
    got = _results(torch.from_numpy(labels), t["y_pred"], sample_weight=t["sample_weight"],
                   pos_weight=t["pos_weight"], **kw)
    want = _results(labels, d["y_pred"], sample_weight=d["sample_weight"],
                    pos_weight=d["pos_weight"], **kw)
    _assert_identical(got, want)
    assert got[2].dtype == np.dtype(dtype)
    for tensor in t.values():
        assert _pointer(_converted(tensor)) == tensor.data_ptr()


@pytest.mark.parametrize("label_dtype", ["bool", "uint8", "int64", "float32"])
def test_torch_labels_of_each_dtype(label_dtype):
    torch = pytest.importorskip("torch")
    d = _data()
    labels = np.round(d["y_true"]).astype(label_dtype)
    t = torch.from_numpy(labels)
    _assert_identical(_results(t, d["y_pred"]), _results(labels, d["y_pred"]))
    assert _pointer(_converted(t, "y_true")) == t.data_ptr()


def test_torch_requires_grad_tensors_are_read_in_place_and_left_unchanged():
    torch = pytest.importorskip("torch")
    d = _data(from_logits=True)
    x = torch.tensor(d["y_pred"], requires_grad=True)
    w = torch.nn.Parameter(torch.tensor(d["sample_weight"]))
    before = x.detach().clone()
    with pytest.raises(RuntimeError):
        np.asarray(x)  # what a plain np.asarray does with it
    got = _results(d["y_true"], x, from_logits=True, sample_weight=w)
    _assert_identical(got, _results(d["y_true"], d["y_pred"], from_logits=True,
                                    sample_weight=d["sample_weight"]))
    assert _pointer(_converted(x)) == x.data_ptr()
    assert _pointer(_converted(w, "sample_weight")) == w.data_ptr()
    # unchanged: values, autograd flags, no gradient, and its graph still works
    assert x.requires_grad and w.requires_grad and x.grad is None and x.grad_fn is None
    assert torch.equal(x.detach(), before)
    (x * 2).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2.0))


def test_torch_non_leaf_tensor_in_a_graph():
    torch = pytest.importorskip("torch")
    d = _data(from_logits=True)
    leaf = torch.tensor(d["y_pred"], requires_grad=True)
    x = leaf * 1.0  # has a grad_fn
    assert fastbce.bce(d["y_true"], x, from_logits=True) == fastbce.bce(
        d["y_true"], d["y_pred"], from_logits=True)
    assert x.grad_fn is not None and leaf.grad is None


@pytest.mark.parametrize("view", ["column", "step", "transpose", "expand", "2d_slice"])
def test_torch_non_contiguous_tensors_are_read_in_place(view):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    base_p = rng.random((300, 40))
    base_y = (rng.random((300, 40)) < 0.5).astype(np.float64)
    views = {
        "column": lambda a: a[:, 7],
        "step": lambda a: a.reshape(-1)[::3],
        "transpose": lambda a: a.T,
        "expand": lambda a: (a[:1].expand(300, 40) if torch.is_tensor(a)
                             else np.broadcast_to(a[:1], (300, 40))),
        "2d_slice": lambda a: a[10:200:2, 3:30:4],
    }
    make = views[view]
    tp, ty = make(torch.from_numpy(base_p)), make(torch.from_numpy(base_y))
    assert not tp.is_contiguous()
    _assert_identical(_results(ty, tp), _results(make(base_y), make(base_p)))
    array = _converted(tp)
    assert _pointer(array) == tp.data_ptr()
    assert array.strides == tuple(s * tp.element_size() for s in tp.stride())
    assert np.shares_memory(array, base_p)


def test_torch_bfloat16_is_converted_to_float64_exactly():
    torch = pytest.importorskip("torch")
    d = _data(from_logits=True)
    x = torch.tensor(d["y_pred"]).to(torch.bfloat16)
    exact = x.to(torch.float64).numpy()
    assert fastbce.bce(d["y_true"], x, from_logits=True) == fastbce.bce(d["y_true"], exact, from_logits=True)
    assert fastbce.bce(d["y_true"], x, from_logits=True, reduction="none").dtype == np.float64


def test_torch_lazily_negated_view():
    torch = pytest.importorskip("torch")
    neg_view = getattr(torch, "_neg_view", None)
    if neg_view is None:
        pytest.skip("no torch._neg_view")
    d = _data(from_logits=True)
    x = neg_view(torch.from_numpy(d["y_pred"]))
    assert x.is_neg()
    assert fastbce.bce(d["y_true"], x, from_logits=True) == fastbce.bce(
        d["y_true"], -d["y_pred"], from_logits=True)


def test_torch_tensor_off_the_cpu_is_refused():
    torch = pytest.importorskip("torch")
    x = torch.empty(10, device="meta")  # no GPU needed: any non-CPU device
    with pytest.raises(TypeError, match=r"y_pred is on a non-CPU device \(meta\).*computes on the CPU"):
        fastbce.bce(np.zeros(10), x)


# -- pandas -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "uint8", "bool"])
def test_pandas_series_of_numpy_dtypes_are_read_in_place(dtype):
    pd = pytest.importorskip("pandas")
    d = _data()
    labels = np.round(d["y_true"]).astype(dtype)
    p = d["y_pred"].astype(dtype) if dtype.startswith("float") else d["y_pred"]
    sy, sp = pd.Series(labels, copy=False), pd.Series(p, copy=False, name="p")
    _assert_identical(_results(sy, sp), _results(labels, p))
    assert np.shares_memory(_converted(sy, "y_true"), labels)
    assert np.shares_memory(_converted(sp), p)


@pytest.mark.parametrize("dtype", ["Int64", "Int8", "UInt8", "Float64", "Float32", "boolean"])
def test_pandas_nullable_series_without_missing_values_are_read_in_place(dtype):
    pd = pytest.importorskip("pandas")
    d = _data()
    numpy_dtype = pd.Series([], dtype=dtype).dtype.numpy_dtype
    labels = np.round(d["y_true"]).astype(numpy_dtype)
    array_type = {"I": pd.arrays.IntegerArray, "U": pd.arrays.IntegerArray,
                  "F": pd.arrays.FloatingArray, "b": pd.arrays.BooleanArray}[dtype[0]]
    s = pd.Series(array_type(labels, np.zeros(N, bool)), copy=False, name="label")
    assert s.dtype == dtype
    _assert_identical(_results(s, d["y_pred"]), _results(labels, d["y_pred"]))
    assert np.shares_memory(_converted(s, "y_true"), labels)


def test_pandas_nullable_predictions_and_weights():
    pd = pytest.importorskip("pandas")
    d = _data(np.float32)
    p = pd.Series(d["y_pred"], dtype="Float32")
    w = pd.Series(d["sample_weight"], dtype="Float32")
    _assert_identical(_results(d["y_true"], p, sample_weight=w),
                      _results(d["y_true"], d["y_pred"], sample_weight=d["sample_weight"]))


@pytest.mark.parametrize("dtype", ["float64[pyarrow]", "float32[pyarrow]", "int8[pyarrow]",
                                   "uint8[pyarrow]", "bool[pyarrow]"])
def test_pandas_pyarrow_backed_series(dtype):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    d = _data()
    values = d["y_true"].astype(np.float32) if dtype.startswith("float32") else d["y_true"]
    if not dtype.startswith("float"):
        values = np.round(values).astype(dtype.split("[")[0])
    s = pd.Series(values, dtype=dtype)
    _assert_identical(_results(s, d["y_pred"]), _results(values, d["y_pred"]))
    if dtype != "bool[pyarrow]":  # booleans are bit-packed in Arrow: unpacked (a copy)
        chunk = s.array.__arrow_array__().chunk(0)
        assert _pointer(_converted(s, "y_true")) == chunk.buffers()[1].address


def test_pandas_dataframe_columns_and_frames():
    pd = pytest.importorskip("pandas")
    d = _data()
    block = np.column_stack([d["y_pred"], d["y_pred"][::-1]])
    frame = pd.DataFrame({"p": d["y_pred"], "y": d["y_true"],
                          "w": pd.array(d["sample_weight"], dtype="Float64")})
    _assert_identical(_results(frame["y"], frame["p"], sample_weight=frame["w"]),
                      _results(d["y_true"], d["y_pred"], sample_weight=d["sample_weight"]))
    for column in ("p", "y", "w"):
        assert np.shares_memory(_converted(frame[column]), frame[column].to_numpy())
    # a whole frame of one NumPy block: a 2-D view of that block
    wide = pd.DataFrame(block, copy=False)
    assert np.shares_memory(_converted(wide), block)
    labels = np.round(np.column_stack([d["y_true"], d["y_true"][::-1]]))
    _assert_identical(_results(labels, wide), _results(labels, block))
    # columns in separate buffers (a nullable one among them): assembled, same values
    mixed = pd.DataFrame({"a": block[:, 0], "b": pd.array(block[:, 1], dtype="Float64")})
    _assert_identical(_results(labels, mixed), _results(labels, block))


def test_pandas_index():
    pd = pytest.importorskip("pandas")
    d = _data()
    index = pd.Index(d["y_pred"])
    _assert_identical(_results(d["y_true"], index), _results(d["y_true"], d["y_pred"]))


def test_pandas_missing_values_name_argument_series_row_and_label():
    pd = pytest.importorskip("pandas")
    y = pd.Series([1, 0, 1, None, 0, None], dtype="Int64", name="label", index=list("abcdef"))
    p = np.full(6, 0.5)
    for call in (fastbce.bce, fastbce.bce_grad, fastbce.bce_and_grad):
        with pytest.raises(ValueError, match=re.escape(
                "y_true (Series 'label') has a missing value (NA/null) at row 3 "
                "(index label 'd') (the first of 2)")):
            call(y, p)
    p_na = pd.Series([0.5, 0.2, None], dtype="Float64")
    with pytest.raises(ValueError, match=r"^y_pred has a missing value \(NA/null\) at row 2 "
                                         r"\(index label 2\): .*dropna"):
        fastbce.bce([1, 0, 1], p_na)
    w = pd.Series([1.0, None, 1.0], dtype="float64[pyarrow]", name="w", index=[10, 20, 30])
    with pytest.raises(ValueError, match=r"sample_weight \(Series 'w'\) .* at row 1 \(index label 20\)"):
        fastbce.bce([1, 0, 1], [0.5, 0.5, 0.5], sample_weight=w)
    frame = pd.DataFrame({"a": [0.5, 0.5], "b": pd.array([0.5, None], dtype="Float64")}, index=["x", "y"])
    with pytest.raises(ValueError, match=r"y_pred \(DataFrame column 'b'\) .* at row 1 \(index label 'y'\)"):
        fastbce.bce(np.ones((2, 2)), frame)


def test_pandas_non_numeric_series_name_their_dtype():
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match=r"y_true .*unsupported dtype (str|string|object)"):
        fastbce.bce(pd.Series(["1", "0"]), [0.5, 0.5])
    with pytest.raises(TypeError, match=r"unsupported dtype datetime64"):
        fastbce.bce([1, 0], pd.Series(pd.to_datetime(["2020-01-01", "2020-01-02"])))


def test_large_nullable_series_is_not_copied():
    """A copy of the 16 MB value buffer (or of its 4 MB mask) would show in tracemalloc."""
    pd = pytest.importorskip("pandas")
    n = 4_000_000
    rng = np.random.default_rng(5)
    p = pd.Series(pd.arrays.FloatingArray(rng.random(n, dtype=np.float32), np.zeros(n, bool)),
                  copy=False)
    y = rng.integers(0, 2, n, dtype=np.uint8)
    fastbce.bce(y, p)  # warm-up
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        loss = fastbce.bce(y, p)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert np.isfinite(loss)
    assert peak < 1 << 20, f"{peak:,} bytes allocated"


# -- PyArrow ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32", "int8", "uint8", "int64", "bool"])
def test_arrow_arrays_match_numpy_and_are_read_in_place(dtype):
    pa = pytest.importorskip("pyarrow")
    d = _data()
    labels = np.round(d["y_true"]).astype(dtype)
    a = pa.array(labels)
    _assert_identical(_results(a, pa.array(d["y_pred"])), _results(labels, d["y_pred"]))
    if dtype != "bool":  # bit-packed booleans are unpacked (a copy)
        assert _pointer(_converted(a, "y_true")) == a.buffers()[1].address


def test_arrow_sliced_array_is_read_at_its_offset():
    pa = pytest.importorskip("pyarrow")
    d = _data()
    a = pa.array(d["y_pred"]).slice(100, 1000)
    array = _converted(a)
    assert _pointer(array) == a.buffers()[1].address + 100 * 8
    _assert_identical(_results(d["y_true"][100:1100], a),
                      _results(d["y_true"][100:1100], d["y_pred"][100:1100]))


def test_arrow_chunked_arrays():
    pa = pytest.importorskip("pyarrow")
    d = _data()
    one = pa.chunked_array([pa.array(d["y_pred"])])
    assert _pointer(_converted(one)) == one.chunk(0).buffers()[1].address
    # several chunks: concatenated (a copy), same values
    several = pa.chunked_array([d["y_pred"][:1000], d["y_pred"][1000:3000], d["y_pred"][3000:]])
    _assert_identical(_results(d["y_true"], several), _results(d["y_true"], d["y_pred"]))
    empty = pa.chunked_array([], type=pa.float64())
    assert fastbce.bce(np.zeros(0), empty, reduction="sum") == 0.0


def test_arrow_nulls_name_argument_and_first_row():
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(ValueError, match=r"^y_true has a missing value \(NA/null\) at row 2 "
                                         r"\(the first of 2\):.*fill_null"):
        fastbce.bce(pa.array([1, 0, None, 1, None]), np.full(5, 0.5))
    chunked = pa.chunked_array([[0.5, 0.5], [0.5, None, 0.5]])  # the null is row 3 overall
    with pytest.raises(ValueError, match=r"^y_pred has a missing value \(NA/null\) at row 3:"):
        fastbce.bce_grad(np.ones(5), chunked)


def test_arrow_non_numeric_types_are_refused():
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(TypeError, match=r"y_true has unsupported dtype string \(Arrow\)"):
        fastbce.bce(pa.array(["1", "0"]), [0.5, 0.5])
    with pytest.raises(TypeError, match=r"unsupported dtype timestamp"):
        fastbce.bce([1, 0], pa.array(np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[s]")))


# -- JAX and DLPack -----------------------------------------------------------

def test_jax_cpu_arrays_are_read_in_place():
    jnp = pytest.importorskip("jax.numpy")
    d = _data(np.float32)
    y, p, w = (jnp.asarray(d[k]) for k in ("y_true", "y_pred", "sample_weight"))
    _assert_identical(_results(y, p, sample_weight=w),
                      _results(d["y_true"], d["y_pred"], sample_weight=d["sample_weight"]))
    for x in (y, p, w):
        assert _pointer(_converted(x)) == x.unsafe_buffer_pointer()


def test_jax_bfloat16_is_converted_to_float64_exactly():
    jnp = pytest.importorskip("jax.numpy")
    d = _data(from_logits=True)
    x = jnp.asarray(d["y_pred"], dtype=jnp.bfloat16)
    exact = np.asarray(x).astype(np.float64)
    assert fastbce.bce(d["y_true"], x, from_logits=True) == fastbce.bce(d["y_true"], exact, from_logits=True)


class _DLPackOnly:
    """A producer with only the DLPack protocol (no __array__, no buffer)."""

    def __init__(self, array, device=(1, 0)):
        self._array, self._device = array, device

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._device


def test_dlpack_only_objects_are_read_in_place():
    d = _data()
    x = _DLPackOnly(d["y_pred"])
    _assert_identical(_results(d["y_true"], x), _results(d["y_true"], d["y_pred"]))
    assert _pointer(_converted(x)) == _pointer(d["y_pred"])


class _FakeCudaArray:
    """What CuPy shows: DLPack on a CUDA device, and an __array__ that refuses."""

    def __dlpack__(self, **kwargs):
        raise BufferError("the data is on the GPU")

    def __dlpack_device__(self):
        return (2, 1)  # (kDLCUDA, device 1)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed")

    def __len__(self):
        return 4


@pytest.mark.parametrize("argument", ["y_true", "y_pred", "sample_weight", "pos_weight"])
def test_gpu_dlpack_objects_are_refused_with_a_clear_error(argument):
    args = dict(y_true=np.ones(4), y_pred=np.full(4, 0.5))
    if argument in args:
        args[argument] = _FakeCudaArray()
        kw = {}
    else:
        kw = {argument: _FakeCudaArray()}
    for call in (fastbce.bce, fastbce.bce_grad, fastbce.bce_and_grad):
        with pytest.raises(TypeError, match=rf"^{argument} is on a GPU device \(CUDA device 1\): fastbce "
                                            r"computes on the CPU, so move it to host memory first"):
            call(args["y_true"], args["y_pred"], **kw)


def test_other_non_host_dlpack_devices_are_refused():
    with pytest.raises(TypeError, match=r"y_pred is on a non-CPU device \(oneAPI device 0\)"):
        fastbce.bce(np.ones(4), _DLPackOnly(np.ones(4), device=(14, 0)))


def test_ml_dtypes_bfloat16_numpy_arrays():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    p = np.array([0.25, 0.5, 0.75], dtype=ml_dtypes.bfloat16)
    assert fastbce.bce([1, 0, 1], p) == fastbce.bce([1, 0, 1], p.astype(np.float64))
