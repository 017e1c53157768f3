"""scikit-learn-compatible metrics computed by fastbce's kernels.

:func:`log_loss` is a drop-in replacement for ``sklearn.metrics.log_loss``
(scikit-learn 1.9's signature and behaviour), binary and multi-class: same
labels handling, same clipping, same result (to rounding), the same warnings
and exception types, many times faster and without full-size temporaries.
scikit-learn's own log_loss tests pass with it
(tests/test_sklearn_log_loss_suite.py). scikit-learn is not needed to use it.
"""
import math
import numbers
import sys
import warnings

import numpy as np

from . import _kernels
from ._api import bce

__all__ = ["log_loss", "InvalidParameterError"]

# Rows handled per step. Numeric labels are checked a chunk at a time (min and
# max, in cache, no temporary). Then 0/1 labels with 1-D float32/float64
# probabilities go to fastbce's kernel in one call, read in place; anything
# else (labels mapped to 0/1, two-column probabilities gathered, dtypes
# converted) goes a chunk at a time, so that the temporaries stay this small.
# 2^16 rows of int64 labels plus float64 probabilities are 1 MiB (within L2);
# 2^16 is not below fastbce's SERIAL_BELOW, so every chunk can use all threads.
CHUNK = 1 << 16

# The labels of the two-column path: every gathered probability is the one of
# the true class, so its label is 1.
_ONES = np.ones(CHUNK, dtype=np.uint8)
_ONES.flags.writeable = False



class InvalidParameterError(ValueError, TypeError):
    """An argument of the wrong kind (a scalar where an array is expected, a
    non-bool ``normalize``...). Like scikit-learn's ``InvalidParameterError``
    it is both a ``ValueError`` and a ``TypeError``, so that code catching
    either for scikit-learn keeps working."""


def log_loss(y_true, y_proba=None, *, normalize=True, sample_weight=None, labels=None,
             y_pred="deprecated"):
    """Log loss (cross-entropy) of class labels: a drop-in for scikit-learn
    1.9's ``sklearn.metrics.log_loss``, binary and multi-class, computed by
    fastbce's kernels.

    The mean over the samples of ``-log(p[i, class of sample i])``, each
    probability clipped to ``[eps, 1 - eps]``, ``eps =
    numpy.finfo(y_proba.dtype).eps``, as scikit-learn does: rows are not
    renormalised (a ``UserWarning`` says when they do not sum to one). With
    two classes and 1-D probabilities (of the positive class) that is
    ``-mean(y * log(p) + (1 - y) * log(1 - p))``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_classes)
        Class labels of any kind scikit-learn accepts (strings, integers,
        bools, integral floats), sorted to give the classes (the columns of
        ``y_proba``), as scikit-learn's ``LabelBinarizer``; or a
        label-indicator matrix (0/1, one column per class). 0/1 labels (bool,
        integer or float) with 1-D probabilities are read in place; other
        binary labels are mapped chunk by chunk; multi-class integer labels
        ``0..k-1`` in int64 are read in place, other labels are turned into
        int64 class codes first.
    y_proba : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_classes)
        Predicted probabilities, as ``predict_proba`` returns them (classes
        in sorted order), or 1-D (or one column) the probability of the
        positive class of a binary problem. float64, float32 and float16 set
        ``eps``; other dtypes are read as float64. Positional, as in
        scikit-learn 1.9 (the second argument).
    normalize : bool, default=True
        Return the (weighted) mean loss per sample; otherwise their (weighted)
        sum.
    sample_weight : array-like of shape (n_samples,), optional
        Sample weights (``>= 0``). The mean is ``sum(w * loss) / sum(w)``.
    labels : array-like, optional
        All the classes, when ``y_true`` may not hold every one of them (or to
        check that it holds no other). A ``UserWarning`` is given when they
        are not in sorted order, as in scikit-learn (the columns of
        ``y_proba`` follow the sorted order, whatever the order given).
    y_pred : array-like, deprecated
        scikit-learn 1.9 renamed it ``y_proba``: as there, ``y_pred=`` is
        still accepted with a ``FutureWarning`` ("`y_pred` was renamed to
        `y_proba` in version 1.9 and will be removed in 1.11..."), and
        passing both is an error.

    Returns
    -------
    float
        Accumulated in float64 whatever the input dtypes.

    Raises
    ------
    ValueError
        As scikit-learn does, with its messages (fastbce adds where the first
        invalid element is): NaN ("Input contains NaN.") or infinite ("Input
        contains infinity or a value too large for dtype('float64').")
        probabilities, probabilities outside [0, 1], inconsistent lengths,
        empty input, one class only ("y_true contains only one label..."),
        labels not in ``labels``, a number of classes that differs from the
        number of columns, non-integral float labels ("Unknown label type:
        continuous"), NaN or infinite sample weights, all-zero sample
        weights, complex or non-numeric probabilities, both ``y_pred`` and
        ``y_proba``.
    InvalidParameterError
        (A ``ValueError`` and a ``TypeError``, as scikit-learn's.) A scalar or
        ``None`` where an array is expected, a non-bool ``normalize``, or both
        ``y_pred`` and ``y_proba``.
    TypeError
        As scikit-learn: labels given as bytes, and object arrays of labels
        that mix strings with other types.

    Notes
    -----
    Differences from scikit-learn (1.9), all deliberate:

    - Negative sample weights raise ``ValueError`` naming the first one
      (scikit-learn uses them as given, which makes no sense for a metric).
    - 1-D probabilities: the loss of a negative sample is ``-log(1 - p)``
      computed accurately from ``p``; scikit-learn first rounds ``1 - p`` to
      the float type. The two differ by at most about one unit in the last
      place of 1 per sample (``~1e-16`` absolute in float64, ``~6e-8`` in
      float32): visible only in relative terms when the loss is tiny.
    - float32 predictions are summed in float64 (scikit-learn sums in
      float32), and the logarithm of the multi-class path is taken in
      float64; float16 ones are computed in float64 (or float32) with
      float16's ``eps`` (scikit-learn computes in float16, whose sum
      overflows to ``inf`` past 65504). The results agree to the precision
      of the input type, and fastbce's are the more accurate.
    - When several things are wrong, the one reported may differ; the
      exception type is scikit-learn's for each.
    - Arrays of other libraries (PyTorch, array API) are read through NumPy
      (``numpy.asarray``); the result is a Python float, as scikit-learn's.

    Cost: binary problems, as before: numeric labels are checked in one cheap
    pass (their min and max, chunk by chunk); then 0/1 labels with 1-D
    float32/float64 probabilities take one call of fastbce's kernel, reading
    everything in place, and other inputs go through it in chunks of 65,536
    rows. Multi-class problems: the classes of integer labels are found by
    counting (``numpy.bincount``; by sorting for strings and other labels,
    as scikit-learn), then one pass of fastbce's multiclass kernel over the
    (n, k) probabilities (any strides) computes the loss, the row sums'
    check and the validity checks, with no one-hot matrix: about 17x
    scikit-learn's speed at n = 1e6, k = 10 on one thread
    (benchmarks/multiclass_log_loss.py).

    Examples
    --------
    >>> from fastbce.metrics import log_loss
    >>> round(log_loss(["spam", "ham", "ham", "spam"],
    ...                [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]), 5)
    0.21616
    >>> round(log_loss([-1, 1, 1], [0.1, 0.8, 0.7]), 5)
    0.22839
    >>> round(log_loss([1, 0, 2], [[.2, .7, .1], [.6, .2, .2], [.6, .1, .3]]), 5)
    0.69049
    """
    if not (isinstance(y_pred, str) and y_pred == "deprecated"):
        # scikit-learn 1.9's deprecation of the keyword y_pred, as it does it
        if y_proba is not None:
            raise InvalidParameterError(
                "Cannot use both `y_pred` and `y_proba`. `y_pred` is deprecated, use "
                "`y_proba` instead.")
        warnings.warn(
            "`y_pred` was renamed to `y_proba` in version 1.9 and will be removed in 1.11. "
            "Use `y_proba` instead.", FutureWarning, stacklevel=2)
        y_proba = y_pred
    if y_proba is None:
        raise InvalidParameterError("log_loss() needs the predicted probabilities y_proba")
    if not isinstance(normalize, (bool, np.bool_)):
        raise InvalidParameterError(
            f"The 'normalize' parameter of log_loss must be an instance of 'bool' or "
            f"'numpy.bool_'. Got {normalize!r} instead.")
    try:
        return _binary_log_loss(y_true, y_proba, normalize, sample_weight, labels)
    except _NotBinary:
        return _multiclass_log_loss(y_true, y_proba, normalize, sample_weight, labels)


class _NotBinary(Exception):
    """Raised by the binary path for input that is not binary: more than two
    classes, more than two columns, label-indicator y_true. The multi-class
    path then takes the call from the start (and gives scikit-learn's errors
    where the input is wrong)."""


def _binary_log_loss(y_true, y_pred, normalize, sample_weight, labels):
    """1-D, one-column or two-column probabilities of two classes: fastbce's
    binary kernel (fastbce.bce), in place or a chunk at a time."""
    proba, eps, sum_dtype, column = _as_probabilities(y_pred)
    try:
        y, weights, classes = _binary_classes(y_true, proba, sample_weight, labels)
    except (ValueError, TypeError):
        # scikit-learn checks the probabilities first: their error comes first
        problem = _probability_problem(proba, sum_dtype, column)
        if problem is not None:
            raise problem from None
        raise
    sums = _Sums(proba, weights, eps, sum_dtype, column)
    if y.dtype.kind in "biuf" and _is_zero_one(classes):
        # 0/1 labels (bool, integer or float): read in place by the kernel
        if sums.fused and _in_place_labels(y):
            return sums.fused_result(y, normalize)
        for start in range(0, y.shape[0], CHUNK):
            sums.add(start, y[start:start + CHUNK])
    else:
        # other labels: mapped to a bool chunk (positive class -> True)
        positive = classes[1]
        for start in range(0, y.shape[0], CHUNK):
            sums.add(start, y[start:start + CHUNK] == positive)
    return sums.result(normalize)


def _binary_classes(y_true, proba, sample_weight, labels):
    """(labels as 1-D array, weights, the two classes sorted): scikit-learn's checks."""
    y = _as_labels(y_true)
    weights = _as_weights(sample_weight)
    _check_lengths(proba, y, weights)
    declared = None if labels is None else _declared_classes(labels)

    if y.dtype.kind in "biuf":
        # checked a chunk at a time (min and max, in cache): no temporaries
        seen = []
        for start in range(0, y.shape[0], CHUNK):
            _merge_classes(seen, _chunk_classes(y[start:start + CHUNK], start), declared)
        classes = declared if declared is not None else _found_classes(seen)
    else:
        found = _string_classes(y)
        classes = found.tolist()
        if declared is not None:
            undeclared = [c for c in classes if not _contains(declared, c)]
            if undeclared:
                raise _undeclared_error(undeclared, labels)
            classes = declared
        elif len(classes) > 2:
            raise _NotBinary()
        else:
            classes = _found_classes(found)

    return y, weights, classes


def _warn(message):
    """A UserWarning shown at the line that called log_loss (the first frame
    outside this module), however deep in it the warning is found."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


# -- inputs -------------------------------------------------------------------

def _as_array(x, name):
    """x as an ndarray; InvalidParameterError for scalars and None (not array-like)."""
    if x is None or isinstance(x, (str, bytes, numbers.Number)):
        raise InvalidParameterError(f"{name} must be an array-like, got {x!r}")
    if isinstance(x, np.ndarray):
        array = x
    else:
        from . import _interop  # imports nothing but NumPy
        try:
            array = _interop.as_array(x, name)  # pandas/Arrow/Polars nulls: a ValueError naming the row
        except TypeError:  # a dtype the kernels do not read (string labels, ...)
            array = np.asarray(x)
    if array.ndim == 0:
        raise InvalidParameterError(f"{name} must be an array-like, got {x!r}")
    return array


def _as_probabilities(y_pred):
    """(probabilities as a 1-D or (n, 2) view, eps, dtype of the row-sum check,
    whether a (n, 1) column was given)."""
    proba = _as_numbers(y_pred, "y_pred", "probabilities")
    # scikit-learn computes float64, float32 and float16 in their own type and
    # converts the others to float64; eps is that type's machine epsilon.
    kept = proba.dtype.kind == "f" and proba.dtype.itemsize in (2, 4, 8)
    dtype = np.dtype(proba.dtype.char) if kept else np.dtype(np.float64)
    eps = float(np.finfo(dtype).eps)
    if proba.ndim > 2:
        raise ValueError(
            f"Found array with dim {proba.ndim}, while dim <= 2 is required: y_pred must "
            f"have shape (n_samples,), (n_samples, 1) or (n_samples, 2), got {proba.shape}")
    column = False
    if proba.ndim == 2:
        if proba.shape[1] == 1:
            proba, column = proba[:, 0], True
        elif proba.shape[1] != 2:
            raise _NotBinary()
    return proba, eps, dtype, column


def _as_labels(y_true):
    y = _as_array(y_true, "y_true")
    _check_not_mixed(y_true, y, "y_true")
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise _NotBinary()  # a label-indicator matrix
    _check_label_dtype(y, "y_true")
    return y


def _check_label_dtype(array, name):
    kind = array.dtype.kind
    if kind == "S":
        raise TypeError(
            f"Support for labels represented as bytes is not supported ({name} has dtype "
            f"{array.dtype}). Convert the labels to a string or integer format.")
    if kind not in "biufOUMm":
        raise ValueError(f"Unknown label type: {name} has dtype {array.dtype}")


def _check_not_mixed(given, array, name):
    """NumPy turns a list of strings and numbers into strings: refuse it, as scikit-learn."""
    if array.dtype.kind in "US" and isinstance(given, (list, tuple)):
        values = np.asarray(given, dtype=object).ravel().tolist()
        kinds = {isinstance(v, (str, bytes)) for v in values}
        if len(kinds) > 1:
            raise ValueError(f"Mix of label input types (string and number) in {name}")


def _as_weights(sample_weight):
    if sample_weight is None:
        return None
    return _as_numbers(sample_weight, "sample_weight", "numbers")


def _as_numbers(x, name, what):
    """x as a numeric array, scikit-learn's way: strings of numbers
    converted to float64, a ValueError (its type) for complex and the rest."""
    array = _as_array(x, name)
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}")
    if kind in "OUS":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must hold {what}: {error}") from None
    if kind not in "biuf":
        raise ValueError(f"{name} has unsupported dtype {array.dtype}: expected {what}")
    return array


def _check_lengths(proba, y, weights):
    lengths = [proba.shape[0], y.shape[0]] + ([] if weights is None else [weights.shape[0]])
    if len(set(lengths)) > 1:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: {lengths}")
    if weights is not None and weights.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {weights.ndim}D array. "
            f"Expected either a scalar value or a 1D array of length {lengths[0]}.")
    if lengths[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={proba.shape}) while a minimum of 1 is "
            f"required.")


# -- classes ------------------------------------------------------------------

def _is_zero_one(classes):
    """The (sorted) classes are exactly {0, 1}: the kernel reads such labels in place."""
    return (len(classes) == 2 and not isinstance(classes[0], str)
            and classes[0] == 0 and classes[1] == 1)


def _contains(classes, value):
    return any(value == c and isinstance(value, str) == isinstance(c, str) for c in classes)


def _undeclared_error(values, labels):
    return ValueError(
        f"y_true contains values {set(values)} not belonging to the passed labels {labels}.")


def _continuous_error(value, name):
    return ValueError(
        f"Unknown label type: continuous. {name} must hold class labels, but holds the "
        f"non-integral value {value!r} (for soft labels use fastbce.bce)")


def _chunk_classes(chunk, start):
    """The distinct values of a numeric chunk of y_true (Python scalars, sorted) when there
    are at most two; a ValueError for NaN, infinite or non-integral float labels. More
    than two: all of them (the caller reports a multiclass error)."""
    kind = chunk.dtype.kind
    if kind == "b":
        ones = int(np.count_nonzero(chunk))
        return [False] if ones == 0 else [True] if ones == chunk.size else [False, True]
    low, high = chunk.min().item(), chunk.max().item()
    if kind == "f" and not (math.isfinite(low) and math.isfinite(high)):
        bad = int(np.argmax(~np.isfinite(chunk)))
        value = chunk[bad].item()
        what = "NaN" if math.isnan(value) else "infinity"
        raise ValueError(
            f"Input y_true contains {what}: y_true[{start + bad}] = {value!r} is the first")
    if low == high:
        values = [low]
    elif kind in "iu" and high - low == 1:
        values = [low, high]
    elif np.count_nonzero(chunk == low) + np.count_nonzero(chunk == high) == chunk.size:
        values = [low, high]
    else:
        values = np.unique(chunk).tolist()
    if kind == "f":
        for value in values:
            if not float(value).is_integer():
                raise _continuous_error(value, "y_true")
    return values


def _merge_classes(seen, values, declared):
    if declared is not None:
        undeclared = [v for v in values if not _contains(declared, v)]
        if undeclared:
            raise _undeclared_error(undeclared, declared)
    for value in values:
        if not any(value == s for s in seen):
            seen.append(value)
    if len(seen) > 2:
        raise _NotBinary()
    seen.sort()


def _found_classes(found):
    """The classes found in y_true when labels= is not given: exactly two."""
    if len(found) == 1:
        raise ValueError(
            f"y_true contains only one label ({found[0]}). Please provide the list of all "
            f"expected class labels explicitly through the labels argument.")
    return found


def _string_classes(y, name="y_true"):
    """Sorted distinct labels of a non-numeric (string, object, datetime) array, an ndarray."""
    if y.dtype.kind != "O":
        return np.unique(y)
    try:
        classes = np.unique(y)
    except TypeError:
        raise TypeError(f"Mix of label input types (string and number) in {name}") from None
    for value in classes.tolist():
        if not isinstance(value, str):
            raise ValueError(
                f"Unknown label type: {name} is an object array holding "
                f"{type(value).__name__} values (object arrays must hold strings)")
    return classes


def _declared_classes(labels):
    """The two classes given by labels=, sorted (warns, as scikit-learn, when they were not)."""
    given, classes = _sorted_labels(labels)
    if len(classes) > 2:
        raise _NotBinary()
    _warn_if_unsorted(labels, given, classes)
    return classes


# -- the computation ------------------------------------------------------------

def _in_place_float(array):
    """float32 or float64 in native byte order: what fastbce's kernels read in place."""
    return array.dtype.char in "fd" and array.dtype.isnative


def _in_place_labels(y):
    """Labels fastbce's kernels read in place (long double and byte-swapped ones are copied)."""
    return y.dtype.isnative and y.dtype.char != "g"


class _Sums:
    """Accumulates sum(w * loss) and sum(w) over chunks, through fastbce.bce."""

    def __init__(self, proba, weights, eps, sum_dtype, column):
        self.proba, self.weights, self.eps, self.column = proba, weights, eps, column
        self.dtype = sum_dtype
        self.loss = 0.0
        self.weight = 0.0
        self.two_columns = proba.ndim == 2
        # one kernel call over the whole arrays, nothing converted or gathered
        self.fused = (not self.two_columns and _in_place_float(proba)
                      and (weights is None or _in_place_float(weights)))
        if self.two_columns:
            rows = min(proba.shape[0], CHUNK)
            self.row_sums = np.empty(rows, dtype=sum_dtype)
            # gathering by flat index: row i, column j of a C-contiguous chunk is at 2 i + j
            self.flat_rows = np.arange(0, 2 * rows, 2, dtype=np.intp)
            self.flat_index = np.empty(rows, dtype=np.intp)
            self.gathered = np.empty(rows, dtype=proba.dtype)
            self.tolerance = 1e-8 + math.sqrt(eps)
            self.warned = False
        self.warning = None

    def add(self, start, labels):
        stop = start + labels.shape[0]
        proba = self.proba[start:stop]
        weights = None if self.weights is None else self.weights[start:stop]
        if self.two_columns:
            self._check_two_columns(proba, start)
            # as scikit-learn: the probability of the true class, column 1 for
            # positives and column 0 for negatives, clipped; its loss is -log(q)
            proba = self._gather(proba, labels)
            labels = _ONES[:proba.shape[0]]
        try:
            self.loss += bce(labels, proba, reduction="sum", sample_weight=weights, eps=self.eps)
        except ValueError:
            error = self._diagnose(proba, weights, start)
            if error is None:
                raise
            raise error from None
        if weights is not None:
            self.weight += float(np.add.reduce(weights, dtype=np.float64))

    def _gather(self, proba, labels):
        """proba[i, labels[i]] for each row i of a chunk (labels 0/1)."""
        rows = proba.shape[0]
        if not proba.flags.c_contiguous:
            return np.where(labels, proba[:, 1], proba[:, 0])
        index = self.flat_index[:rows]
        np.add(self.flat_rows[:rows], labels, out=index, casting="unsafe")
        return proba.reshape(-1).take(index, out=self.gathered[:rows], mode="clip")

    def fused_result(self, labels, normalize):
        """The result from one kernel call over the whole arrays (labels 0/1, checked)."""
        weights = self.weights
        if weights is not None and not weights[0] > 0 and not weights.any():
            # (weights[0] > 0 says at once that they are not all zero)
            raise ValueError("Sample weights must contain at least one non-zero number.")
        try:
            loss = bce(labels, self.proba, reduction="mean" if normalize else "sum",
                       sample_weight=weights, eps=self.eps)
        except ValueError:
            error = self._diagnose(self.proba, weights, 0)
            if error is None:
                raise
            raise error from None
        if weights is not None and not math.isfinite(loss):
            self._check_finite_weights()
        return loss

    def _check_finite_weights(self):
        infinite = np.isinf(self.weights)
        if infinite.any():
            i = int(np.argmax(infinite))
            raise ValueError(
                f"Input sample_weight contains infinity: sample_weight[{i}] = "
                f"{self.weights[i].item()!r} is the first")

    def _check_two_columns(self, proba, start):
        low, high = proba.min(), proba.max()
        if not (low >= 0 and high <= 1):  # NaN fails both
            # the first problem of the whole array, in scikit-learn's order
            raise _probability_problem(self.proba, self.dtype)
        if self.warned:
            return
        sums = self.row_sums[:proba.shape[0]]
        np.add(proba[:, 0], proba[:, 1], out=sums, dtype=sums.dtype)
        if sums.min() < 1 - self.tolerance or sums.max() > 1 + self.tolerance:
            row = int(np.argmax(np.abs(sums.astype(np.float64) - 1) > self.tolerance))
            self.warned = True
            self.warning = (
                f"The y_prob values do not sum to one. Make sure to pass probabilities. "
                f"(The first row that does not: y_pred[{start + row}] sums to "
                f"{sums[row].item()!r}.)")

    def _diagnose(self, proba, weights, start):
        """The error for the first invalid element of a chunk the kernel rejected (with its
        index in the caller's array), or None."""
        bad = ~((proba >= 0) & (proba <= 1))
        if bad.any():
            if self.two_columns:  # proba: the gathered chunk
                return _probability_problem(self.proba, self.dtype)
            return _probability_problem(self.proba, self.dtype, self.column)
        if weights is not None:
            bad = ~(weights >= 0)
            if bad.any():
                i = int(np.argmax(bad))
                value = weights[i].item()
                if math.isnan(value):
                    return ValueError(
                        f"Input sample_weight contains NaN: sample_weight[{start + i}] is the "
                        f"first")
                return ValueError(
                    f"sample_weight[{start + i}] = {value!r}: fastbce.metrics.log_loss needs "
                    f"sample weights >= 0 (scikit-learn accepts negative ones); this is the "
                    f"first negative one")
        return None

    def result(self, normalize):
        if self.warning is not None:
            _warn(self.warning)
        n = self.proba.shape[0]
        if self.weights is None:
            return self.loss / n if normalize else self.loss
        if not (math.isfinite(self.loss) and math.isfinite(self.weight)):
            self._check_finite_weights()
        if self.weight == 0:
            # the weights are >= 0 (the kernel checked): all of them are zero
            raise ValueError("Sample weights must contain at least one non-zero number.")
        return self.loss / self.weight if normalize else self.loss


def _probability_problem(proba, dtype, column=False):
    """The error scikit-learn raises for invalid probabilities, for the first
    problem in its order over the whole array (NaN, infinity, values greater
    than 1, lower than 0), naming the first such element; None if there is none."""
    where = lambda flat: (
        f"y_pred[{np.unravel_index(flat, proba.shape)[0]}, "
        f"{np.unravel_index(flat, proba.shape)[1]}]" if proba.ndim == 2
        else f"y_pred[{flat}, 0]" if column else f"y_pred[{flat}]")
    values = proba.reshape(-1) if proba.flags.c_contiguous else proba.ravel()
    nan = np.isnan(values)
    if nan.any():
        return ValueError(
            f"Input contains NaN. (Input y_pred contains NaN: {where(int(np.argmax(nan)))} "
            f"is the first)")
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.argmax(infinite))
        return ValueError(
            f"Input contains infinity or a value too large for {np.dtype(dtype)!r}. "
            f"({where(first)} = {values[first].item()!r} is the first)")
    for bad, side in ((values > 1, "greater than 1"), (values < 0, "lower than 0")):
        if bad.any():
            first = int(np.argmax(bad))
            return ValueError(
                f"y_prob contains values {side}: {where(first)} = {values[first].item()!r} "
                f"is the first; log_loss needs probabilities in [0, 1]")
    return None


# -- multi-class ------------------------------------------------------------------

# integer labels in [0, _COUNTED_BELOW) find their classes by counting
# (np.bincount, one pass) instead of sorting; larger or negative ones by np.unique
_COUNTED_BELOW = 1 << 22


def _multiclass_log_loss(y_true, y_proba, normalize, sample_weight, labels):
    """scikit-learn's log loss for k classes: -log(clip(p[i, class of row i]))
    averaged (weighted) over the rows, in one pass of fastbce's multiclass
    kernel over the (n, k) probabilities, from an int64 class code per row.
    scikit-learn clips in the probabilities' dtype and does not renormalize
    rows (it only warns when they do not sum to one); so does this."""
    proba, dtype = _multiclass_probabilities(y_proba)
    try:
        y = _as_array(y_true, "y_true")
        _check_not_mixed(y_true, y, "y_true")
        weights = _as_weights(sample_weight)
        _check_lengths(proba, y, weights)
        if weights is not None:
            weights = _multiclass_weights(weights)
        if y.ndim == 2 and y.shape[1] > 1:
            return _indicator_log_loss(y, proba, dtype, normalize, weights, labels)
        if y.ndim == 2:
            y = y[:, 0]
        _check_label_dtype(y, "y_true")
        codes, classes = _class_codes(y, labels)
        columns = 2 if proba.ndim == 1 or proba.shape[1] == 1 else proba.shape[1]
        if len(classes) != columns:
            _warn_unless_rows_sum_to_one(proba, dtype)
            shown = np.asarray(classes)
            if labels is None:
                raise ValueError(
                    f"y_true and y_prob contain different number of classes: {len(classes)} "
                    f"vs {columns}. Please provide the true labels explicitly through the "
                    f"labels argument. Classes found in y_true: {shown}")
            raise ValueError(
                f"The number of classes in labels is different from that in y_prob. Classes "
                f"found in labels: {shown}")
    except (ValueError, TypeError):
        # scikit-learn checks the probabilities first: their error comes first
        problem = _probability_problem(proba, dtype)
        if problem is not None:
            raise problem from None
        raise
    # (n, k >= 3) probabilities here: <= 2 columns with 2 classes are binary
    eps = np.finfo(dtype).eps
    high = float(np.asarray(1, dtype=dtype) - eps)
    tolerance = 1e-8 + math.sqrt(eps)
    if proba.dtype == np.float16:
        proba = proba.astype(np.float32)  # clipped to float16's [eps, 1 - eps] all the same
    if _kernels.multiclass_kernel is None:
        raise RuntimeError(
            "fastbce's compiled kernels predate the multi-class log loss: rebuild them "
            "(`pip install .`, or `python setup.py build_ext --inplace` in a checkout)")
    sums = _kernels.multiclass_kernel(codes, proba, weights, float(eps), high, tolerance,
                                      _kernels.max_threads())
    if sums["bad_probability"]:
        raise _probability_problem(proba, dtype)
    if sums["bad_code"]:
        raise RuntimeError("fastbce: a class code outside [0, k) reached the multiclass kernel")
    if sums["not_one"]:
        _warn_not_one()
    if sums["bad_weight"]:
        bad = int(np.argmax(~(weights >= 0)))
        raise ValueError(
            f"sample_weight[{bad}] = {weights[bad].item()!r}: fastbce.metrics.log_loss needs "
            f"sample weights >= 0 (scikit-learn accepts negative ones); this is the first "
            f"negative one")
    if weights is not None and sums["weight"] == 0:
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return float(sums["loss"] / sums["weight"] if normalize else sums["loss"])


def _multiclass_probabilities(y_proba):
    """(probabilities as float16/32/64 in native order, 1-D or 2-D; their dtype)."""
    proba = _as_numbers(y_proba, "y_pred", "probabilities")
    if proba.ndim > 2:
        raise ValueError(f"Found array with dim {proba.ndim}. None expected <= 2.")
    kept = proba.dtype.kind == "f" and proba.dtype.itemsize in (2, 4, 8)
    dtype = np.dtype(proba.dtype.char) if kept else np.dtype(np.float64)
    if proba.dtype != dtype:  # other types, and byte-swapped floats
        proba = proba.astype(dtype)
    if proba.ndim == 2 and proba.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={proba.shape}) while a minimum of 1 is "
            f"required.")
    return proba, dtype


def _multiclass_weights(weights):
    """Sample weights as contiguous float64 (what the kernel reads), finite."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    # (a finite sum says that all are finite, without a temporary)
    if not math.isfinite(float(np.add.reduce(weights))) and not np.isfinite(weights).all():
        nan = np.isnan(weights)
        if nan.any():
            raise ValueError(
                f"Input sample_weight contains NaN: sample_weight[{int(np.argmax(nan))}] is "
                f"the first")
        i = int(np.argmax(np.isinf(weights)))
        raise ValueError(
            f"Input sample_weight contains infinity: sample_weight[{i}] = "
            f"{weights[i].item()!r} is the first")
    return weights


def _warn_not_one():
    _warn("The y_prob values do not sum to one. Make sure to pass probabilities.")


def _warn_unless_rows_sum_to_one(proba, dtype):
    """scikit-learn's warning, on the way to an error (NumPy: not the fast path)."""
    full = np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba
    if full.shape[1] == 1:
        full = np.column_stack([1 - full[:, 0], full[:, 0]])
    eps = np.finfo(dtype).eps
    if (np.abs(full.sum(axis=1, dtype=np.float64) - 1) > 1e-8 + math.sqrt(eps)).any():
        _warn_not_one()


def _class_codes(y, labels):
    """(int64 code of each label: its class's position among the sorted classes,
    the sorted classes as a list), with scikit-learn's checks and errors."""
    declared = None
    if labels is not None:
        declared = _multiclass_declared(labels)
    kind = y.dtype.kind
    if kind == "b":
        y = y.view(np.int8)
        kind = "i"
    if kind == "f":
        finite = np.isfinite(y)
        if not finite.all():
            bad = int(np.argmax(~finite))
            value = y[bad].item()
            what = "NaN" if math.isnan(value) else "infinity"
            raise ValueError(
                f"Input y_true contains {what}: y_true[{bad}] = {value!r} is the first")
        if not (np.floor(y) == y).all():
            bad = int(np.argmax(np.floor(y) != y))
            raise _continuous_error(y[bad].item(), "y_true")
    if kind in "iu" and y.size and y.min() >= 0 and y.max() < _COUNTED_BELOW:
        # counting: present classes in one pass; codes by a lookup table
        present = np.flatnonzero(np.bincount(y.astype(np.intp, copy=False)))
        values = present.tolist()
        if declared is None and values == list(range(len(values))):
            # labels 0..k-1 are their own codes: read in place when int64
            codes = np.ascontiguousarray(y, dtype=np.int64)
            return codes, _one_class_check(values, None)
        classes = _merged_classes(values, declared, labels)
        table = np.zeros(int(present[-1]) + 1, dtype=np.int64)
        table[present] = _positions(classes, values)
        return table[y], classes
    if kind in "iuf":
        present, inverse = np.unique(y, return_inverse=True)
    else:
        present = _string_classes(y)
        inverse = np.searchsorted(present, y)
    values = present.tolist()
    classes = _merged_classes(values, declared, labels)
    positions = np.asarray(_positions(classes, values), dtype=np.int64)
    return positions[inverse.reshape(-1)], classes


def _one_class_check(found, declared):
    if declared is None and len(found) == 1:
        raise ValueError(
            f"y_true contains only one label ({found[0]}). Please provide the list of all "
            f"expected class labels explicitly through the labels argument.")
    return found


def _merged_classes(found, declared, labels):
    """The classes: labels= when given (each found label must be one), else those found."""
    if declared is None:
        return _one_class_check(found, None)
    undeclared = [v for v in found if not _contains(declared, v)]
    if undeclared:
        raise _undeclared_error(undeclared, labels)
    return declared


def _positions(classes, values):
    """The position in `classes` (sorted) of each of `values` (all in classes)."""
    index = {(isinstance(c, str), c): i for i, c in enumerate(classes)}
    return [index[(isinstance(v, str), v)] for v in values]


def _sorted_labels(labels):
    """(labels= as an array, its distinct classes sorted); scikit-learn's
    errors for bad labels and for fewer than two classes."""
    given = _as_array(labels, "labels")
    _check_not_mixed(labels, given, "labels")
    if given.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {given.shape}")
    _check_label_dtype(given, "labels")
    if given.dtype.kind in "biuf":
        if given.dtype.kind == "f":
            if not np.isfinite(given).all():
                raise ValueError(f"Input labels contains NaN or infinity: {labels}")
            for value in given.tolist():
                if not float(value).is_integer():
                    raise _continuous_error(value, "labels")
        classes = np.unique(given).tolist()
    else:
        classes = _string_classes(given, "labels").tolist()
    if len(classes) < 2:
        raise ValueError(
            f"The labels array needs to contain at least two labels, got {np.asarray(classes)}.")
    return given, classes


def _warn_if_unsorted(labels, given, classes):
    if given.tolist() != classes:
        _warn(
            f"Labels passed were {labels}. But this function assumes labels are ordered "
            f"lexicographically. Pass the ordered labels={classes} and ensure that the "
            f"columns of y_prob correspond to this ordering.")


def _multiclass_declared(labels):
    """The classes given by labels= (any number), sorted; scikit-learn's warning
    when they were not given sorted, its error for fewer than two."""
    given, classes = _sorted_labels(labels)
    _warn_if_unsorted(labels, given, classes)
    return classes


def _indicator_log_loss(y, proba, dtype, normalize, weights, labels):
    """A label-indicator y_true (n, k): -sum_j y[i, j] log(clip(p[i, j])) per row,
    as scikit-learn (NumPy; not the fast path)."""
    if labels is not None and len(_multiclass_declared(labels)) != y.shape[1]:
        raise ValueError(
            f"The number of classes in labels is different from that in y_prob. Classes "
            f"found in labels: {np.asarray(labels)}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("Unknown label type: y_true is 2-D but not a label-indicator matrix")
    problem = _probability_problem(proba, dtype)
    if problem is not None:
        raise problem
    if proba.ndim == 1 or proba.shape[1] == 1:
        # the probability of the second class, as for binary labels
        positive = proba.reshape(-1)
        proba = np.column_stack([np.asarray(1, dtype=dtype) - positive, positive])
    if proba.shape[1] != y.shape[1]:
        columns = proba.shape[1]
        raise ValueError(
            f"y_true and y_prob contain different number of classes: {y.shape[1]} vs "
            f"{columns}. Please provide the true labels explicitly through the labels "
            f"argument. Classes found in y_true: {np.arange(y.shape[1])}")
    _warn_unless_rows_sum_to_one(proba, dtype)
    eps = np.finfo(dtype).eps
    clipped = np.clip(proba, eps, 1 - eps)
    loss = -(y * np.log(clipped)).sum(axis=1, dtype=np.float64)
    if weights is None:
        return float(loss.mean() if normalize else loss.sum())
    if (weights < 0).any():
        bad = int(np.argmax(weights < 0))
        raise ValueError(
            f"sample_weight[{bad}] = {weights[bad].item()!r}: fastbce.metrics.log_loss needs "
            f"sample weights >= 0 (scikit-learn accepts negative ones); this is the first "
            f"negative one")
    if not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    total = float(np.dot(weights, loss))
    return total / float(weights.sum()) if normalize else total
