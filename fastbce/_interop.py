"""Array-likes of other libraries as NumPy arrays, without copying where their memory allows.

One entry point, :func:`as_array`, used by ``_api._as_numeric_array`` for
everything that is not exactly a ``numpy.ndarray`` (that common case never
reaches this module). It imports nothing: a type's top-level package name
picks the reader, and a library is looked up in ``sys.modules`` only (an
object cannot be an instance of a type whose module was never imported), so
``import fastbce`` stays free of PyTorch, pandas, PyArrow and JAX.

Read in place (the kernel reads the caller's memory, no copy):

- PyTorch CPU tensors, contiguous or strided views (any strides), including
  tensors with ``requires_grad=True``: read through ``.detach()``, which
  shares the data and leaves the tensor and its autograd graph untouched;
- pandas Series, Index and DataFrame columns of NumPy dtypes; nullable
  ``Int*``/``UInt*``/``Float*``/``boolean`` columns without missing values
  (their value buffer; their 1-byte mask is read once to find missing
  values); ``[pyarrow]`` columns without nulls held in one chunk; a DataFrame
  held in one NumPy block;
- PyArrow ``Array`` and single-chunk ``ChunkedArray`` of integers or floats
  without nulls (sliced arrays at their offset);
- JAX CPU arrays, and any object with ``__dlpack__`` on a host device;
- any object exporting the Arrow PyCapsule interface (``__arrow_c_array__``
  or ``__arrow_c_stream__``: a Polars Series, nanoarrow arrays, ...),
  imported through pyarrow's C Data Interface (no copy) and then read as a
  PyArrow array above; a stream of record batches (a Polars DataFrame) is read
  as a 2-D table, one column per field (assembled: a copy). Without pyarrow
  (or with a pyarrow older than 14) such an object is read through its
  ``__array__``, where Polars turns nulls into NaN.

Copied, because no single NumPy view of the memory exists:

- a ``ChunkedArray`` (or ``[pyarrow]`` column) of several chunks is
  concatenated (``combine_chunks()`` once, yourself, to pay that only once);
- Arrow booleans are bit-packed: unpacked to one byte per element;
- a DataFrame whose columns do not share one NumPy block is assembled;
- tensors of dtypes NumPy lacks (``torch.bfloat16``, float8) become float64,
  exactly (``_api`` does the same for ``ml_dtypes`` floats, JAX's bfloat16);
- sparse and lazily negated PyTorch tensors are materialized.

Refused with a clear error:

- missing values (pandas ``NA``, Arrow nulls, Polars nulls): ``ValueError``
  naming the argument, the Series or column name and the first missing row
  (position and, for pandas, index label). NaN in a NumPy float array is a value: the kernel reports it,
  as for any array;
- data on a GPU or other non-host device (CUDA, ROCm, MPS, ...): ``TypeError``
  saying to move it to the CPU first (nothing is copied off the device behind
  the caller's back);
- non-numeric Arrow and pandas dtypes: ``TypeError`` naming the dtype.
"""
import sys

import numpy as np

__all__ = ["as_array"]

# DLPack device types whose memory the CPU reads directly: kDLCPU,
# kDLCUDAHost (pinned), kDLROCMHost (pinned), kDLCUDAManaged (unified).
_HOST_DLPACK_DEVICES = frozenset({1, 3, 11, 13})
_DLPACK_DEVICE_NAMES = {
    2: "CUDA", 4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm",
    12: "an extension device", 14: "oneAPI", 15: "WebGPU", 16: "Hexagon", 17: "MAIA",
}
# built-in types np.asarray converts as well as anything here could
_PLAIN = frozenset({list, tuple, float, int, bool})
_NUMERIC_KINDS = "biuf"


def as_array(x, name):
    """``x`` as a NumPy array, a view of its memory where one exists.

    ``name`` is the argument's name, for error messages. The result may have
    any dtype: the caller checks it (so that every error about dtypes reads
    the same). Raises ``ValueError`` for missing values and ``TypeError`` for
    data on a non-host device.
    """
    cls = type(x)
    if cls is np.ndarray:
        return x
    if cls in _PLAIN or isinstance(x, np.ndarray):  # ndarray subclasses (memmap, ...): a view
        return np.asarray(x)
    module = cls.__module__
    library = _LIBRARIES.get(module.partition(".")[0] if isinstance(module, str) else None)
    if library is not None:  # a type of the library itself: one check
        array = _convert(x, name, library)
        if array is not None:
            return array
    else:  # an unknown type: may still subclass one of theirs
        for library in _EACH_LIBRARY:
            array = _convert(x, name, library)
            if array is not None:
                return array
    return _from_other(x, name)


def _convert(x, name, library):
    """x converted by `library`'s reader if x is one of its types, else None."""
    module_name, types_of, reader = library
    module = sys.modules.get(module_name)
    if module is None:  # never imported: x cannot be one of its types
        return None
    types = _TYPES.get(module_name)
    if types is None:
        try:
            types = _TYPES[module_name] = types_of(module)
        except AttributeError:  # a module still being imported
            return None
    return reader(x, name, module) if isinstance(x, types) else None


# -- errors -------------------------------------------------------------------

def _device_error(name, where):
    return TypeError(
        f"{name} is on {where}: fastbce computes on the CPU, so move it to host memory "
        f"first (e.g. tensor.cpu(), cupy.asnumpy(x), jax.device_get(x))"
    )


_PANDAS_FIX = "series.dropna() or series.fillna(0)"
_ARROW_FIX = "pyarrow.compute.drop_null(a) or pyarrow.compute.fill_null(a, 0)"
_POLARS_FIX = "series.drop_nulls() or series.fill_null(0)"


def _missing_error(what, position, count, index, fix):
    """ValueError for `count` missing values, the first at row `position`."""
    position = int(position)
    row = f"row {position}"
    if index is not None:
        label = index[position]
        if isinstance(label, np.generic):  # 20, not np.int64(20)
            label = label.item()
        row += f" (index label {label!r})"
    several = f" (the first of {count})" if count > 1 else ""
    return ValueError(
        f"{what} has a missing value (NA/null) at {row}{several}: fastbce does not skip "
        f"missing values; drop or fill them first (e.g. {fix})"
    )


def _unsupported_dtype(what, dtype):
    return TypeError(
        f"{what} has unsupported dtype {dtype}: expected bool, integer or floating-point values"
    )


# -- PyTorch ------------------------------------------------------------------

def _from_torch(x, name, torch):
    # detach(): the same memory outside autograd; the tensor and its graph are left as they are
    tensor = x.detach() if x.requires_grad else x
    try:
        # a view with the tensor's strides; numpy() never copies: it refuses
        # (with an error meant for other callers) every case handled below
        return tensor.numpy()
    except (RuntimeError, TypeError):
        pass
    if not tensor.is_cpu:
        kind = "a GPU" if x.device.type in ("cuda", "mps", "xpu") else "a non-CPU"
        raise _device_error(name, f"{kind} device ({x.device})")
    if tensor.layout != torch.strided:  # sparse: no strided view exists
        tensor = tensor.to_dense()
    if tensor.is_neg():  # a lazily negated view: materialize it
        tensor = tensor.resolve_neg()
    if tensor.is_conj():
        tensor = tensor.resolve_conj()
    try:
        return tensor.numpy()  # a view with the tensor's strides
    except TypeError:
        if tensor.is_floating_point():  # bfloat16, float8: exact in float64
            return tensor.to(torch.float64).numpy()
        raise _unsupported_dtype(name, x.dtype) from None


# -- pandas -------------------------------------------------------------------

def _describe(name, kind, label):
    return name if label is None else f"{name} ({kind} {label!r})"


def _from_pandas(x, name, pd):
    if isinstance(x, pd.DataFrame):
        return _from_dataframe(x, name, pd)
    if isinstance(x, pd.Series):
        return _from_pandas_values(x.array, _describe(name, "Series", x.name), x.index, pd)
    if isinstance(x, pd.Index):
        return _from_pandas_values(x.array, _describe(name, "Index", x.name), None, pd)
    return _from_pandas_values(x, name, None, pd)  # an ExtensionArray itself


def _pandas_array_types(pd):
    """(the nullable arrays: a NumPy value buffer and a mask, the [pyarrow] array)."""
    types = _TYPES.get("pandas arrays")
    if types is None:
        arrays = pd.arrays
        types = _TYPES["pandas arrays"] = (
            (arrays.IntegerArray, arrays.FloatingArray, arrays.BooleanArray), arrays.ArrowExtensionArray)
    return types


def _from_pandas_values(values, what, index, pd):
    """A pandas ExtensionArray (what a Series holds) as an ndarray."""
    masked, arrow = _pandas_array_types(pd)
    if isinstance(values, masked):
        # nullable dtypes: a NumPy value buffer and a boolean mask
        mask = getattr(values, "_mask", None)
        if mask is None:
            mask = np.asarray(values.isna())
        if mask.any():
            raise _missing_error(what, mask.argmax(), np.count_nonzero(mask), index, _PANDAS_FIX)
        data = getattr(values, "_data", None)
        if isinstance(data, np.ndarray):
            return data
        return values.to_numpy(dtype=values.dtype.numpy_dtype)  # a view when there is no NA
    if isinstance(values, arrow):
        return _from_arrow(values.__arrow_array__(), what, sys.modules["pyarrow"], index, values.dtype)
    array = np.asarray(values)  # NumpyExtensionArray: a view; categorical, sparse: a copy
    if array.dtype.kind not in _NUMERIC_KINDS and array.dtype.kind not in "mM":
        raise _unsupported_dtype(what, values.dtype)  # e.g. str, category of strings
    return array


def _from_dataframe(frame, name, pd):
    columns = [frame.iloc[:, j] for j in range(frame.shape[1])]
    converted = [
        _from_pandas_values(column.array, _describe(name, "DataFrame column", label), frame.index, pd)
        for label, column in zip(frame.columns, columns)
    ]
    if all(isinstance(column.dtype, np.dtype) for column in columns):
        return np.asarray(frame)  # one NumPy block: a view
    if not converted:
        return np.empty(frame.shape)
    return np.stack(converted, axis=1)  # columns in separate buffers: a copy


# -- PyArrow ------------------------------------------------------------------

_ARROW_NUMERIC_IDS = None  # Arrow type ids read here, known once pyarrow is imported


def _arrow_is_numeric(pa, arrow_type):
    """Integers, floats (half included) and booleans."""
    global _ARROW_NUMERIC_IDS
    ids = _ARROW_NUMERIC_IDS
    if ids is None:  # built whole, then published: other threads never see half of it
        ids = _ARROW_NUMERIC_IDS = frozenset(pa.type_for_alias(alias).id for alias in (
            "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "halffloat", "float", "double"))
    return arrow_type.id in ids


def _from_arrow(x, what, pa, index=None, pandas_dtype=None, fix=None):
    """An Arrow Array or ChunkedArray (or the data of a [pyarrow] pandas column) as an ndarray."""
    if not _arrow_is_numeric(pa, x.type):
        raise _unsupported_dtype(what, f"{x.type} (Arrow)" if pandas_dtype is None else pandas_dtype)
    if fix is None:
        fix = _ARROW_FIX if pandas_dtype is None else _PANDAS_FIX
    chunks = x.chunks if isinstance(x, pa.ChunkedArray) else [x]
    if x.null_count:
        start = 0
        for chunk in chunks:
            if chunk.null_count:
                first = chunk.is_null().to_numpy(zero_copy_only=False).argmax()
                raise _missing_error(what, start + first, x.null_count, index, fix)
            start += len(chunk)
    if len(chunks) == 1:
        chunk = chunks[0]
        if pa.types.is_boolean(chunk.type):
            return chunk.to_numpy(zero_copy_only=False)  # bit-packed: unpacked to bytes (a copy)
        return chunk.to_numpy(zero_copy_only=True)  # a read-only view of the Arrow buffer
    # no single buffer holds several chunks: concatenated (a copy), as documented
    return x.to_numpy()


# -- JAX, DLPack and everything else -------------------------------------------

def _from_jax(x, name, jax):
    # np.asarray of a JAX CPU array is a read-only view of its buffer, and far
    # cheaper than a DLPack round trip; on a GPU it would copy to the host
    for device in x.devices():
        if device.platform != "cpu":
            kind = "a GPU" if device.platform in ("gpu", "cuda", "rocm", "METAL") else "a non-CPU"
            raise _device_error(name, f"{kind} device ({device})")
    return np.asarray(x)


def _from_other(x, name):
    dlpack_device = getattr(x, "__dlpack_device__", None)
    if dlpack_device is not None:
        device_type, device_id = dlpack_device()
        device_type = int(device_type)
        if device_type not in _HOST_DLPACK_DEVICES:
            device = _DLPACK_DEVICE_NAMES.get(device_type, f"DLPack device type {device_type}")
            kind = "a GPU" if device_type in (2, 8, 10) else "a non-CPU"
            raise _device_error(name, f"{kind} device ({device} device {device_id})")
        if hasattr(x, "__dlpack__"):
            try:
                return np.from_dlpack(x)  # the producer's memory, by the protocol
            except (BufferError, TypeError, ValueError, RuntimeError):
                pass  # e.g. a dtype DLPack cannot carry (bfloat16): try __array__ below
    cls = type(x)
    if hasattr(cls, "__arrow_c_array__") or hasattr(cls, "__arrow_c_stream__"):
        array = _from_arrow_capsule(x, name)
        if array is not None:
            return array
    try:
        array = np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        if not hasattr(x, "__dlpack__"):
            raise
        return np.from_dlpack(x)
    if array.dtype.kind == "O" and hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return array


def _pyarrow_with_capsules():
    """pyarrow if it is installed and imports the Arrow PyCapsule interface (14+), else None."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        try:
            import pyarrow as pa
        except ImportError:
            return None
    return pa if hasattr(pa.Array, "_import_from_c_capsule") else None


def _from_arrow_capsule(x, name):
    """An object exporting the Arrow PyCapsule interface as an ndarray, imported
    through pyarrow (no copy); None without pyarrow (the caller reads __array__).

    ``__arrow_c_array__`` is one array (or a record batch: a struct array);
    ``__arrow_c_stream__`` a stream of arrays (a Polars Series: a chunked
    array) or of record batches (a DataFrame: a 2-D table, one column per
    field, like a pandas DataFrame).
    """
    pa = _pyarrow_with_capsules()
    if pa is None:
        if hasattr(x, "__array__"):
            return None
        raise TypeError(f"{name} ({type(x).__name__}) exports the Arrow PyCapsule interface: "
                        f"reading it needs pyarrow 14 or newer (pip install pyarrow)")
    if hasattr(type(x), "__arrow_c_array__"):
        imported = pa.array(x)
    else:
        imported = pa.chunked_array(x)
    fix = _POLARS_FIX if type(x).__module__.partition(".")[0] == "polars" else None
    if pa.types.is_struct(imported.type):  # a table: one column per field
        if imported.null_count:  # a null row of the struct itself
            first = np.asarray(imported.is_null()).argmax()
            raise _missing_error(name, first, imported.null_count, None, fix or _ARROW_FIX)
        if isinstance(imported, pa.ChunkedArray):
            fields = imported.flatten()
        else:
            fields = [imported.field(i) for i in range(imported.type.num_fields)]
        columns = [_from_arrow(column, _describe(name, "DataFrame column", imported.type.field(i).name),
                               pa, fix=fix)
                   for i, column in enumerate(fields)]
        if not columns:
            return np.empty((len(imported), 0))
        return np.stack(columns, axis=1)  # columns in separate buffers: a copy
    label = getattr(x, "name", None)
    what = _describe(name, "Series", label) if isinstance(label, str) and label else name
    return _from_arrow(imported, what, pa, fix=fix)


def widen_extended_float(array):
    """`array` as float64 if its dtype is a float NumPy knows only through
    ml_dtypes (bfloat16, float8...: JAX's, exactly representable), else None."""
    dtype = array.dtype
    if dtype.kind == "V" and dtype.type.__module__.startswith("ml_dtypes") and "float" in dtype.name:
        return array.astype(np.float64)
    return None


# What as_array reads, by the top-level package of a type's module:
# (the module to find in sys.modules, its types, the reader).
_LIBRARIES = {
    "torch": ("torch", lambda torch: torch.Tensor, _from_torch),
    "pandas": ("pandas", lambda pd: (pd.Series, pd.Index, pd.DataFrame, pd.api.extensions.ExtensionArray),
               _from_pandas),
    "pyarrow": ("pyarrow", lambda pa: (pa.Array, pa.ChunkedArray), _from_arrow),
    "jax": ("jax", lambda jax: jax.Array, _from_jax),
}
_EACH_LIBRARY = tuple(_LIBRARIES.values())
_LIBRARIES["jaxlib"] = _LIBRARIES["jax"]  # jax.Array's concrete type lives in jaxlib
_TYPES = {}  # module name -> its types, looked up once (the module is imported by then)
