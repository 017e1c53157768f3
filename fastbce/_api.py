"""The thin Python layer: validate, broadcast, allocate and dispatch.

No math here: the per-element formulas live in _math.pxd and the loops in
_kernels.pyx. This module turns array-likes into strided 2-D views of one
broadcast shape (without copying contiguous or strided inputs), checks the
scalar arguments, and turns the kernel's report of the first invalid element
into an error that names the argument, its index and its value.
"""
import math
import warnings

import numpy as np

from . import _kernels

__all__ = ["bce", "bce_grad", "bce_and_grad", "grad_hess", "sigmoid", "log_sigmoid", "softplus"]

REDUCTIONS = ("mean", "sum", "none")

# Inputs smaller than this run on the calling thread. Measured with
# benchmarks/serial_threshold.py (2-core AVX-512 machine, float32 logits): 2
# threads vs 1 is 1.00x at 2^14 elements (one 16,384-element block: nothing
# to share), 1.57x at 2^15, 1.81x at 2^16.
SERIAL_BELOW = 1 << 15

# Labels of these dtypes are read in place, in their own type: the kernel
# converts each chunk to the compute type as it reads it (unsigned integers
# and bool as the signed type of their width: 0 and 1 stay 0 and 1, every
# other value stays invalid; errors show the value as given). Other label
# dtypes (long double, byte-swapped data) are converted to float64 first.
_LABEL_DTYPES = frozenset(np.dtype(t) for t in (
    np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
    np.float16, np.float32, np.float64))
# default eps by prediction dtype char: numpy.finfo(dtype).eps
_DEFAULT_EPS = {char: float(np.finfo(char).eps) for char in "fd"}
# rows up to this long are summed per row inside one kernel call (axis=)
_MAX_ROW_SUM_LENGTH = _kernels.MAX_ROW_SUM_LENGTH

_REASONS = {
    "y_true": "labels must be in [0, 1]",
    "y_pred": "probabilities must be in [0, 1] (pass from_logits=True for logits)",
    "y_pred_logits": "logits must not be NaN",
    "sample_weight": "sample weights must be >= 0 (and not NaN)",
    "pos_weight": "pos_weight must be > 0 (and not NaN)",
}


def _as_numeric_array(x, name):
    """x as an ndarray without copying where its memory allows; TypeError for non-numbers.

    Anything but an ndarray (tensors, Series, Arrow and DLPack arrays, lists)
    goes through _interop.as_array: see there what is read in place, what is
    copied and what is refused.
    """
    if type(x) is np.ndarray:
        array = x
    elif type(x) in (float, int, list, tuple):  # a scalar pos_weight, lists: nothing to look up
        array = np.asarray(x)
    else:
        from . import _interop  # imports nothing but NumPy (this form costs ~0.5 us)
        array = _interop.as_array(x, name)
    if array.dtype.kind not in "biuf":
        from . import _interop
        widened = _interop.widen_extended_float(array)  # bfloat16, float8 (ml_dtypes): float64, exactly
        if widened is not None:
            return widened
        raise TypeError(
            f"{name} has unsupported dtype {array.dtype}: expected bool, integer or "
            f"floating-point values"
        )
    return array


def _as_labels(y_true):
    """(as given, as the kernel reads it)."""
    labels = _as_numeric_array(y_true, "y_true")
    if labels.dtype in _LABEL_DTYPES:
        return labels, labels
    return labels, labels.astype(np.float64)


def _is_kernel_float(dtype):
    """float32 or float64 in native byte order: what the kernels read in place."""
    return dtype.char in "fd" and dtype.isnative


def _as_predictions(y_pred, name="y_pred"):
    predictions = _as_numeric_array(y_pred, name)
    if _is_kernel_float(predictions.dtype):
        return predictions, predictions
    return predictions, predictions.astype(np.float64)


def _as_weights(weights, name, dtype):
    """(as given, in the compute dtype); another dtype is converted (a copy)."""
    array = _as_numeric_array(weights, name)
    return array, (array if array.dtype == dtype else array.astype(dtype))


def _check_eps(eps, dtype):
    """eps as a float: the default of `dtype` for None; ValueError outside (0, 0.5)."""
    if eps is None:
        return _DEFAULT_EPS[dtype.char]
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    return float(eps)


def _check_num_threads(num_threads):
    """num_threads as an int: OpenMP's default for None; ValueError unless a positive integer."""
    if num_threads is None:
        return _kernels.max_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    return int(num_threads)


def _check_scalars(reduction, label_smoothing, eps, num_threads, dtype):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    return _check_eps(eps, dtype), _check_num_threads(num_threads)


def _check_out(out, shape, dtype, what):
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a NumPy array of shape {shape} and dtype {dtype} for {what}, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(
            f"out must have shape {shape} and dtype {dtype} for {what}, "
            f"got shape {out.shape} and dtype {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _coalesced_views(shape, arrays):
    """Views of `arrays` (None allowed), broadcast to `shape`, with adjacent
    dimensions merged wherever every array's strides allow; at least 2-D."""
    if len(shape) == 1:
        # the common case, and the cheap one: one row, read in place
        return [None if a is None else (a if a.shape == shape else np.broadcast_to(a, shape))[None]
                for a in arrays]
    present = [np.broadcast_to(a, shape) if a.shape != shape else a for a in arrays if a is not None]
    sizes, strides = [], [[] for _ in present]
    for axis, size in enumerate(shape):
        if size == 1:
            continue
        if sizes and all(s[-1] == a.strides[axis] * size for s, a in zip(strides, present)):
            sizes[-1] *= size
            for s, a in zip(strides, present):
                s[-1] = a.strides[axis]
        else:
            sizes.append(size)
            for s, a in zip(strides, present):
                s.append(a.strides[axis])
    while len(sizes) < 2:
        sizes.insert(0, 1)
        for s in strides:
            s.insert(0, 0)
    views = iter(
        np.lib.stride_tricks.as_strided(a, sizes, s, writeable=a.flags.writeable)
        for a, s in zip(present, strides)
    )
    return [None if a is None else next(views) for a in arrays]


def _slices_2d(operands):
    """Coalesced operands (the first present, others may be None) as 2-D
    pieces for the kernels: all of them at once, or, where leading dimensions
    did not merge, one 2-D slice per leading index (in C order)."""
    if operands[0].ndim == 2:
        return [operands]
    leading = operands[0].shape[:-2]
    return [[None if a is None else a[index] for a in operands] for index in np.ndindex(*leading)]


def _broadcast_shape(**arrays):
    shapes = {name: a.shape for name, a in arrays.items() if a is not None}
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes do not broadcast together: {listed}") from None


def _operand_index(array, shape, flat_index):
    """Index into `array` (as the caller gave it) of the broadcast element at flat_index."""
    position = np.unravel_index(flat_index, shape)[len(shape) - array.ndim:]
    return tuple(0 if n == 1 else int(i) for n, i in zip(array.shape, position))


def _invalid_value_error(name, array, shape, flat_index, from_logits, shown_name=None):
    """The ValueError for operand `name`'s invalid element (called `shown_name` in the message)."""
    index = _operand_index(array, shape, flat_index)
    value = array[index].item()
    shown_name = shown_name or name
    where = f"{shown_name}[{', '.join(map(str, index))}]" if index else shown_name
    reason = _REASONS["y_pred_logits" if name == "y_pred" and from_logits else name]
    return ValueError(f"{where} = {value!r}: {reason}; this is the first invalid element")


def _run(y_true, y_pred, from_logits, reduction, sample_weight, pos_weight,
         label_smoothing, eps, out, num_threads, want_loss, want_grad, want_hess=False, axis=None,
         prediction_name="y_pred", limits=None):
    """Validate, then one fused kernel pass. Returns (loss, grad), or
    (grad, hess) with want_hess (logits, reduction "none"). Errors call the
    predictions `prediction_name`. ``limits`` = (low, high, weight_high),
    values exact in the predictions' dtype, narrows the valid predictions to
    [low, high] and weights to at most weight_high (a ValueError otherwise;
    fastbce.torch's fast path, see docs/kernels.md)."""
    labels_given, labels = _as_labels(y_true)
    predictions_given, predictions = _as_predictions(y_pred, prediction_name)
    dtype = predictions.dtype
    eps, num_threads = _check_scalars(reduction, label_smoothing, eps, num_threads, dtype)

    weights_given = weights = None
    if sample_weight is not None:
        weights_given = weights = _as_numeric_array(sample_weight, "sample_weight")
        if not _is_kernel_float(weights.dtype):
            weights = weights.astype(dtype)
    pos_weights_given = pos_weights = None
    pos_weight_value = 1.0
    if pos_weight is not None:
        pos_weights_given, pos_weights = _as_weights(pos_weight, "pos_weight", dtype)
        if pos_weights.ndim == 0:
            pos_weight_value = float(pos_weights)
            if not (pos_weight_value > 0 and (limits is None or pos_weight_value <= limits[2])):
                raise ValueError(f"pos_weight = {pos_weights_given.item()!r}: {_REASONS['pos_weight']}")
            pos_weights = None

    shape, size = predictions.shape, predictions.size
    if labels.shape != shape or weights is not None or pos_weights is not None:
        shape = _broadcast_shape(**{"y_true": labels, prediction_name: predictions,
                                    "sample_weight": weights, "pos_weight": pos_weights})
        size = math.prod(shape)

    reduced = reduction != "none"
    if axis is not None:
        if not reduced:
            raise ValueError('axis= needs reduction="mean" or "sum" (reduction="none" is element-wise)')
        return _run_over_axes(
            _normalize_axes(axis, len(shape)), shape, dtype, from_logits, reduction,
            {"y_true": (labels_given, labels), "y_pred": (predictions_given, predictions),
             "sample_weight": (weights_given, weights), "pos_weight": (pos_weights_given, pos_weights)},
            pos_weight_value, label_smoothing, eps, out, num_threads, want_loss, want_grad)
    loss_out = grad_out = None
    if want_loss and not reduced:
        loss_out = (_check_out(out, shape, dtype, "the element-wise loss")
                    if out is not None and not want_grad else np.empty(shape, dtype))
    if want_grad:
        grad_out = _check_out(out, shape, dtype, "the gradient") if out is not None else np.empty(shape, dtype)
    hess_out = np.empty(shape, dtype) if want_hess else None

    mean = reduction == "mean"
    # with weights, the mean's divisor sum(w) comes out of the same pass, so
    # the gradient is scaled afterwards; without, it is n and known now
    grad_scale = 1.0 / size if (mean and weights is None and size) else 1.0
    loss_sum = weight_sum = 0.0
    if size:
        threads = 1 if size < SERIAL_BELOW else num_threads
        if len(shape) == 1 and labels.shape == shape and weights is None and pos_weights is None:
            # the common small call: two 1-D arrays, viewed as one row (no coalescing to do)
            operands = [labels[None], predictions[None], None, None,
                        None if loss_out is None else loss_out[None],
                        None if grad_out is None else grad_out[None],
                        None if hess_out is None else hess_out[None]]
        else:
            operands = _coalesced_views(shape, [labels, predictions, weights, pos_weights, loss_out, grad_out,
                                                hess_out])
        rows, cols = operands[1].shape[-2:]
        for slice_number, pieces in enumerate(_slices_2d(operands)):
            piece_loss, piece_weight, bad_index, bad_operand = _kernels.bce_kernel(
                *pieces, from_logits, want_loss, pos_weight_value, eps, label_smoothing, grad_scale, threads,
                limits=limits)
            if bad_index >= 0:
                given = {"y_true": labels_given, "y_pred": predictions_given,
                         "sample_weight": weights_given, "pos_weight": pos_weights_given}[bad_operand]
                flat_index = slice_number * rows * cols + bad_index
                raise _invalid_value_error(bad_operand, given, shape, flat_index, from_logits,
                                           prediction_name if bad_operand == "y_pred" else None)
            loss_sum += piece_loss
            weight_sum += piece_weight

    divisor = weight_sum if weights is not None else float(size)
    if mean and (divisor == 0 or not size):
        what = "empty input" if not size else "sum of sample_weight is zero"
        warnings.warn(f"mean of {what}: the result is nan", RuntimeWarning, stacklevel=3)
    if want_grad and mean and weights is not None and size:
        with np.errstate(divide="ignore", invalid="ignore"):
            np.multiply(grad_out, 1.0 / divisor if divisor else math.nan, out=grad_out)

    if want_hess:
        return grad_out, hess_out
    loss = None
    if want_loss:
        if reduction == "sum":
            loss = loss_sum
        elif mean:
            loss = loss_sum / divisor if divisor else math.nan
        else:
            loss = loss_out
    return loss, grad_out


def _normalize_axes(axis, ndim):
    """axis (int or tuple) as a sorted tuple of non-negative axes; numpy's AxisError if out of range."""
    try:
        from numpy.lib.array_utils import normalize_axis_tuple
    except ImportError:  # NumPy < 2
        from numpy.core.numeric import normalize_axis_tuple
    return tuple(sorted(normalize_axis_tuple(axis, ndim, "axis")))


def _merged_stride(sizes, strides):
    """Stride of these dimensions merged into one (C order), or None where they do not merge."""
    base = total = None
    for size, stride in zip(reversed(sizes), reversed(strides)):
        if size == 1:
            continue
        if base is None:
            base, total = stride, size
        elif stride != base * total:
            return None
        else:
            total *= size
    return 0 if base is None else base


def _as_rows(array, shape, order, n_kept):
    """`array` broadcast to `shape`, axes in `order` (kept, then reduced), as a
    2-D (kept, reduced) view; a copy only where the strides do not merge."""
    view = (array if array.shape == shape else np.broadcast_to(array, shape)).transpose(order)
    rows, cols = math.prod(view.shape[:n_kept]), math.prod(view.shape[n_kept:])
    row_stride = _merged_stride(view.shape[:n_kept], view.strides[:n_kept])
    col_stride = _merged_stride(view.shape[n_kept:], view.strides[n_kept:])
    if row_stride is None or col_stride is None:
        return np.ascontiguousarray(view).reshape(rows, cols)
    return np.lib.stride_tricks.as_strided(view, (rows, cols), (row_stride, col_stride),
                                           writeable=view.flags.writeable)


def _run_over_axes(axes, shape, dtype, from_logits, reduction, operands,
                   pos_weight_value, label_smoothing, eps, out, num_threads, want_loss, want_grad):
    """_run with axis=: the loss reduced over `axes` only, one value per
    remaining index. The operands are viewed as 2-D (kept, reduced) and the
    kernel sums each row in element order (each row within one block), so
    the result is the same for every thread count."""
    kept = tuple(a for a in range(len(shape)) if a not in axes)
    order = kept + axes
    kept_shape = tuple(shape[a] for a in kept)
    transposed_shape = tuple(shape[a] for a in order)
    rows, cols = math.prod(kept_shape), math.prod(shape[a] for a in axes)
    mean = reduction == "mean"
    weighted = operands["sample_weight"][1] is not None

    grad_out = grad_rows = None
    if want_grad:
        if out is not None:
            grad_out = _check_out(out, shape, dtype, "the gradient")
        else:
            # laid out so that its (kept, reduced) view is contiguous
            grad_out = np.empty(transposed_shape, dtype).transpose(np.argsort(order))
        grad_rows = _as_rows(grad_out, shape, order, len(kept))
    names = ("y_true", "y_pred", "sample_weight", "pos_weight")
    views = [None if operands[name][1] is None else _as_rows(operands[name][1], shape, order, len(kept))
             for name in names]
    row_loss = np.zeros(rows)
    row_weight = np.zeros(rows) if weighted else None
    grad_scale = 1.0 / cols if (mean and not weighted and cols) else 1.0
    threads = 1 if rows * cols < SERIAL_BELOW else num_threads
    # rows longer than a block: one kernel call per row, its full sum
    call_per_row = cols > _MAX_ROW_SUM_LENGTH
    pieces = [] if not rows * cols else [(r, r + 1) for r in range(rows)] if call_per_row else [(0, rows)]
    for first, last in pieces:
        span = slice(first, last)
        arguments = [None if v is None else v[span] for v in views] + [
            None, None if grad_rows is None else grad_rows[span], None]
        row_sums = {} if call_per_row else {
            "row_loss": row_loss[span], "row_weight": None if row_weight is None else row_weight[span]}
        loss_sum, weight_sum, bad_index, bad_operand = _kernels.bce_kernel(
            *arguments, from_logits, True, pos_weight_value, eps, label_smoothing, grad_scale, threads,
            **row_sums)
        if bad_index >= 0:
            position = np.unravel_index(first * cols + bad_index, transposed_shape)
            index = [0] * len(shape)
            for axis, i in zip(order, position):
                index[axis] = i
            flat_index = int(np.ravel_multi_index(index, shape))
            raise _invalid_value_error(bad_operand, operands[bad_operand][0], shape, flat_index, from_logits)
        if call_per_row:
            row_loss[first] = loss_sum
            if weighted:
                row_weight[first] = weight_sum

    divisor = row_weight if weighted else np.full(rows, float(cols))
    if mean and not (divisor > 0).all():
        warnings.warn(f"mean over axis {axes if len(axes) > 1 else axes[0]} of "
                      f"{'empty rows' if not cols else 'rows whose sample weights sum to zero'}: "
                      f"those results are nan", RuntimeWarning, stacklevel=4)
    with np.errstate(divide="ignore", invalid="ignore"):
        if want_grad and mean and weighted and rows * cols:
            np.multiply(grad_rows, (1.0 / divisor)[:, None], out=grad_rows)
        loss = (row_loss / divisor if mean else row_loss).astype(dtype).reshape(kept_shape) if want_loss else None
    if want_grad and not np.shares_memory(grad_rows, grad_out):
        # a caller's out whose layout has no 2-D view was computed in a copy
        np.copyto(grad_out, grad_rows.reshape(transposed_shape).transpose(np.argsort(order)))
    return loss, grad_out


_KEYWORDS_DOC = """
    Parameters
    ----------
    y_true : array-like
        Labels in [0, 1] (bool, integer or float; soft labels allowed). Read
        in place in their own dtype: bool/uint8 labels cut memory traffic.
    y_pred : array-like
        Probabilities in [0, 1], or logits with ``from_logits=True``.
        float32 and float64 are computed in their own type; other dtypes are
        converted to float64.
    from_logits : bool
        Treat ``y_pred`` as logits ``x`` with ``p = sigmoid(x)``, using the
        stable form ``w * ((1 - y) * x + (1 + (pw - 1) * y) * softplus(-x))``:
        exact for every finite logit, never clipped; +-inf give the limit.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` (default) is ``sum(w * loss) / sum(w)`` (``sum(loss) / n``
        without weights), the weighted mean of ``numpy.average`` and
        scikit-learn's ``log_loss``. ``"sum"`` is ``sum(w * loss)``;
        ``"none"`` returns the element-wise array.
    sample_weight : array-like, optional
        Non-negative weights ``w``, broadcast against the inputs. float32 and
        float64 weights are read in place; other dtypes are converted to
        ``y_pred``'s float dtype (a copy).
    pos_weight : float or array-like, optional
        Positive-class weight ``pw > 0`` multiplying the ``y * log(p)`` term
        (PyTorch's ``pos_weight``); broadcast against the inputs.
    label_smoothing : float in [0, 1)
        ``y <- y * (1 - a) + a / 2``, as Keras.
    eps : float in (0, 0.5), optional
        Probabilities are clipped to ``[eps, 1 - eps]``; default
        ``numpy.finfo(dtype).eps`` of ``y_pred``'s float type, as
        scikit-learn's ``log_loss(eps="auto")``. Ignored for logits.
    out : ndarray, optional
        Array of the broadcast shape and ``y_pred``'s float dtype to write the
        element-wise result into (and return).
    axis : int or tuple of ints, optional
        Reduce over these axes only (``"mean"`` or ``"sum"``): one loss per
        remaining index, an array in ``y_pred``'s float dtype, e.g.
        ``axis=-1`` on (n, k) multi-label outputs gives n per-row losses
        (Keras's convention). The mean divides by each row's ``sum(w)`` (or
        its length), the gradient likewise. Summed in float64 in element
        order: the same for every thread count. Default None: all axes, a
        Python float.
    num_threads : int, optional
        OpenMP threads; default all (honours ``OMP_NUM_THREADS`` and
        ``threadpoolctl``). Inputs below {serial_below} elements run on one
        thread. Results are bit-identical for every thread count.

    Raises
    ------
    ValueError
        For a label or probability outside [0, 1], a NaN logit, a negative
        sample weight or non-positive pos_weight (naming the argument, the
        first invalid index and its value), for shapes that do not
        broadcast, and for a bad ``reduction``, ``label_smoothing``, ``eps``
        or ``out``. A failed call leaves its inputs unchanged.
    TypeError
        For complex, object, string or datetime inputs.
""".replace("{serial_below}", f"{SERIAL_BELOW:,}")


def bce(y_true, y_pred, *, from_logits=False, reduction="mean", sample_weight=None,
        pos_weight=None, label_smoothing=0.0, eps=None, out=None, num_threads=None,
        axis=None):
    """Binary cross-entropy (log loss) in one fused, numerically stable pass.

    ``loss = -w * (pw * y * log(p) + (1 - y) * log(1 - p))`` per element.
    Returns a Python float (accumulated in float64) for ``"mean"`` and
    ``"sum"``, or an array of the broadcast shape in ``y_pred``'s float dtype
    for ``"none"``. The mean of an empty input is nan, with a RuntimeWarning.
    """
    if out is not None and reduction != "none":
        raise ValueError('out is only for reduction="none" (a reduced loss is a float)')
    loss, _ = _run(y_true, y_pred, from_logits, reduction, sample_weight, pos_weight,
                   label_smoothing, eps, out, num_threads, want_loss=True, want_grad=False, axis=axis)
    return loss


def bce_grad(y_true, y_pred, *, from_logits=False, reduction="mean", sample_weight=None,
             pos_weight=None, label_smoothing=0.0, eps=None, out=None, num_threads=None,
        axis=None):
    """Gradient of :func:`bce` with respect to ``y_pred`` (the probabilities or logits given).

    Logits: ``w * ((1 + (pw - 1) * y) * sigmoid(x) - pw * y)``; probabilities:
    ``w * (-pw * y / p + (1 - y) / (1 - p))`` with ``p`` clipped. With
    ``reduction="mean"`` it is divided by ``sum(w)`` (or ``n``); ``"sum"``
    and ``"none"`` give the element-wise gradient. Returns an array of the
    broadcast shape in ``y_pred``'s float dtype (``out`` if given).
    """
    _, grad = _run(y_true, y_pred, from_logits, reduction, sample_weight, pos_weight,
                   label_smoothing, eps, out, num_threads, want_loss=False, want_grad=True, axis=axis)
    return grad


def bce_and_grad(y_true, y_pred, *, from_logits=False, reduction="mean", sample_weight=None,
                 pos_weight=None, label_smoothing=0.0, eps=None, out=None, num_threads=None,
        axis=None):
    """:func:`bce` and :func:`bce_grad` from one pass over the data: ``(loss, grad)``.

    ``out`` is the gradient's buffer. The results equal the two separate calls.
    """
    return _run(y_true, y_pred, from_logits, reduction, sample_weight, pos_weight,
                label_smoothing, eps, out, num_threads, want_loss=True, want_grad=True, axis=axis)


for _function in (bce, bce_grad, bce_and_grad):
    _function.__doc__ += _KEYWORDS_DOC


def grad_hess(y_true, raw_score, *, sample_weight=None, pos_weight=None, label_smoothing=0.0,
              num_threads=None):
    """Gradient and hessian of the element-wise BCE loss in logit space, in one pass.

    What a gradient-boosting custom objective returns (see
    :mod:`fastbce.boosting` for XGBoost and LightGBM): with ``s =
    sigmoid(raw_score)`` and ``c = 1 + (pw - 1) * y``,

        grad = w * (c * s - pw * y)           (as ``bce_grad(..., from_logits=True, reduction="none")``)
        hess = w * c * s * (1 - s)            (computed as s' * (1 - s') with s' = sigmoid(-|x|): no cancellation)

    Labels, weights, ``pos_weight`` and ``label_smoothing`` are read, broadcast
    and validated as in :func:`bce` (``raw_score`` as logits). Returns
    ``(grad, hess)``, two arrays of the broadcast shape in ``raw_score``'s
    float dtype (float32/float64; other dtypes are converted to float64).
    """
    return _run(y_true, raw_score, True, "none", sample_weight, pos_weight, label_smoothing,
                None, None, num_threads, want_loss=False, want_grad=True, want_hess=True,
                prediction_name="raw_score")


def _elementwise(name, x, out, num_threads):
    values = _as_numeric_array(x, "x")
    if not _is_kernel_float(values.dtype):
        values = values.astype(np.float64)
    num_threads = _check_num_threads(num_threads)
    if out is None:
        out = np.empty(values.shape, values.dtype)
    else:
        _check_out(out, values.shape, values.dtype, f"{name}({values.dtype} input)")
    if values.size:
        threads = 1 if values.size < SERIAL_BELOW else num_threads
        operands = _coalesced_views(values.shape, [values, out])
        for source, destination in _slices_2d(operands):
            _kernels.elementwise_kernel(name, source, destination, threads)
    return out if values.ndim else out[()]


_ELEMENTWISE_DOC = """
    Element-wise over any array-like (float32 and float64 in their own type,
    other dtypes converted to float64), with the same vectorized exp/log1p as
    the BCE kernels, multithreaded above {serial_below} elements. NaN gives
    NaN. ``out``: an array of the input's shape and float dtype to write into
    (it may be the input itself). Returns an array (a NumPy scalar for a
    0-d input).
""".replace("{serial_below}", f"{SERIAL_BELOW:,}")


def sigmoid(x, *, out=None, num_threads=None):
    """The logistic function ``1 / (1 + exp(-x))`` (``scipy.special.expit``),
    computed from ``exp(-|x|)``: no overflow, full relative precision on both
    sides (``sigmoid(-800)`` is a tiny positive number or 0, never NaN)."""
    return _elementwise("sigmoid", x, out, num_threads)


def log_sigmoid(x, *, out=None, num_threads=None):
    """``log(sigmoid(x)) = -softplus(-x)`` (``scipy.special.log_expit``,
    ``torch.nn.functional.logsigmoid``), stable for every ``x``: ``-x`` for
    very negative ``x``, ``-exp(-x)`` for large ``x``, 0 at ``+inf``."""
    return _elementwise("log_sigmoid", x, out, num_threads)


def softplus(x, *, out=None, num_threads=None):
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))`` (``numpy.logaddexp(0,
    x)``, ``torch.nn.functional.softplus``), stable for every ``x``."""
    return _elementwise("softplus", x, out, num_threads)


for _function in (sigmoid, log_sigmoid, softplus):
    _function.__doc__ += _ELEMENTWISE_DOC
