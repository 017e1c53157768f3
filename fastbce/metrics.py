"""scikit-learn-compatible metrics computed by fastbce's kernels.

:func:`log_loss` is a drop-in replacement for ``sklearn.metrics.log_loss`` on
binary problems: same signature, same labels handling, same clipping, same
result (to rounding) and the same exception types, many times faster and
without full-size temporaries. scikit-learn is not needed to use it.
"""
import math
import numbers
import warnings

import numpy as np

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

_BINARY_ONLY = "fastbce.metrics.log_loss is binary-only"
_MULTICLASS_HINT = "use sklearn.metrics.log_loss for multiclass problems"


class InvalidParameterError(ValueError, TypeError):
    """An argument of the wrong kind (a scalar where an array is expected, a
    non-bool ``normalize``...). Like scikit-learn's ``InvalidParameterError``
    it is both a ``ValueError`` and a ``TypeError``, so that code catching
    either for scikit-learn keeps working."""


def log_loss(y_true, y_pred=None, *, normalize=True, sample_weight=None, labels=None,
             y_proba=None):
    """Log loss (binary cross-entropy) of binary class labels: a drop-in for
    ``sklearn.metrics.log_loss`` on binary problems, computed by fastbce's
    fused kernel (:func:`fastbce.bce`).

    ``-mean(y * log(p) + (1 - y) * log(1 - p))`` over the samples, with ``p``
    the probability of the positive class clipped to ``[eps, 1 - eps]``,
    ``eps = numpy.finfo(y_pred.dtype).eps``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, 1)
        Class labels: two distinct values of any kind scikit-learn accepts
        (strings, ``{-1, 1}``, bools, integers, integral floats). As with
        scikit-learn's ``LabelBinarizer``, the classes are sorted and the
        greater one is the positive class. 0/1 labels (bool, integer or
        float) are read in place; other labels are mapped chunk by chunk.
    y_pred : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, 2)
        Predicted probabilities: of the positive class (1-D or one column),
        or both columns of ``predict_proba`` (classes in sorted order). With
        two columns, as in scikit-learn, a positive sample uses column 1 and a
        negative one column 0, each clipped; rows are not renormalised, and a
        ``UserWarning`` says when a row does not sum to one (within
        ``1e-8 + sqrt(eps)``). float64, float32 and float16 set ``eps``; other
        dtypes are read as float64.
    normalize : bool, default=True
        Return the (weighted) mean loss per sample; otherwise their (weighted)
        sum.
    sample_weight : array-like of shape (n_samples,), optional
        Sample weights (``>= 0``). The mean is ``sum(w * loss) / sum(w)``.
    labels : array-like, optional
        The two classes, when ``y_true`` may hold only one of them (or to
        check that it holds no other). A ``UserWarning`` is given when they
        are not in sorted order, as in scikit-learn (the positive class is the
        greater one, whatever the order).
    y_proba : array-like, optional
        scikit-learn 1.9's name for ``y_pred``; pass one or the other.

    Returns
    -------
    float
        Accumulated in float64 whatever the input dtypes.

    Raises
    ------
    ValueError
        As scikit-learn does: more or fewer than two classes (here: also a
        clear "binary-only" error for multiclass input or ``y_pred`` with more
        than two columns), labels not in ``labels``, non-integral float labels
        ("Unknown label type: continuous"), probabilities outside [0, 1] or
        NaN, inconsistent lengths, empty input, NaN or infinite sample weights,
        all-zero sample weights, complex or non-numeric predictions. Messages
        name the first invalid index and its value where there is one.
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

    - Binary only: multiclass ``y_true`` or ``labels``, and ``y_pred`` with
      more than two columns, raise ``ValueError`` (scikit-learn computes the
      multiclass loss). Label-indicator ``y_true`` (2-D with several columns)
      is not accepted; a single column is.
    - Negative sample weights raise ``ValueError`` naming the first one
      (scikit-learn uses them as given, which makes no sense for a metric).
    - 1-D probabilities: the loss of a negative sample is ``-log(1 - p)``
      computed accurately from ``p``; scikit-learn first rounds ``1 - p`` to
      the float type. The two differ by at most about one unit in the last
      place of 1 per sample (``~1e-16`` absolute in float64, ``~6e-8`` in
      float32): visible only in relative terms when the loss is tiny.
    - float32 predictions are summed in float64 (scikit-learn sums in
      float32); float16 ones are computed in float64 with float16's ``eps``
      (scikit-learn computes in float16). The results agree to the precision
      of the input type, and fastbce's are the more accurate.
    - When several things are wrong, the one reported may differ; the
      exception type is scikit-learn's for each.
    - ``y_pred=`` is not deprecated here (it is fastbce's name); ``y_proba=``
      is accepted as an alias.

    Cost: numeric labels are checked in one cheap pass (their min and max,
    chunk by chunk); then 0/1 labels with 1-D float32/float64 probabilities
    take one call of fastbce's kernel, reading everything in place, and other
    inputs go through it in chunks of 65,536 rows. No full-size temporary,
    except for string or object labels, whose classes are found by sorting
    (``numpy.unique``) as scikit-learn does.

    Examples
    --------
    >>> from fastbce.metrics import log_loss
    >>> round(log_loss(["spam", "ham", "ham", "spam"],
    ...                [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]), 5)
    0.21616
    >>> round(log_loss([-1, 1, 1], [0.1, 0.8, 0.7]), 5)
    0.22839
    """
    if y_proba is not None:
        if y_pred is not None:
            raise InvalidParameterError(
                "pass the predicted probabilities as y_pred or as y_proba, not both")
        y_pred = y_proba
    elif y_pred is None:
        raise InvalidParameterError("log_loss() needs the predicted probabilities y_pred")
    if not isinstance(normalize, (bool, np.bool_)):
        raise InvalidParameterError(
            f"The 'normalize' parameter of log_loss must be an instance of 'bool' or "
            f"'numpy.bool_'. Got {normalize!r} instead.")

    proba, eps, sum_dtype, column = _as_probabilities(y_pred)
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
            raise _multiclass_error(classes)
        else:
            classes = _found_classes(found)

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


# -- inputs -------------------------------------------------------------------

def _as_array(x, name):
    """x as an ndarray; InvalidParameterError for scalars and None (not array-like)."""
    if x is None or isinstance(x, (str, bytes, numbers.Number)):
        raise InvalidParameterError(f"{name} must be an array-like, got {x!r}")
    array = x if isinstance(x, np.ndarray) else np.asarray(x)
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
            raise ValueError(
                f"y_pred has {proba.shape[1]} columns, but {_BINARY_ONLY}: pass the "
                f"probabilities of the positive class (shape (n_samples,)) or both columns "
                f"of predict_proba (shape (n_samples, 2)); {_MULTICLASS_HINT}")
    return proba, eps, dtype, column


def _as_labels(y_true):
    y = _as_array(y_true, "y_true")
    _check_not_mixed(y_true, y, "y_true")
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"y_true must hold class labels, shape (n_samples,) or (n_samples, 1), got "
            f"shape {y.shape} ({_BINARY_ONLY} and takes no label-indicator matrix)")
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


def _shown(values):
    return "[" + ", ".join(map(repr, values)) + "]"


def _multiclass_error(found):
    return ValueError(
        f"{_BINARY_ONLY}, but y_true has more than two classes (found {_shown(found)}); "
        f"{_MULTICLASS_HINT}")


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
        raise _multiclass_error(sorted(seen))
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
    given = _as_array(labels, "labels")
    _check_not_mixed(labels, given, "labels")
    if given.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {given.shape}")
    _check_label_dtype(given, "labels")
    kind = given.dtype.kind
    if kind not in "biuf":
        classes = _string_classes(given, "labels").tolist()
    else:
        if kind == "f":
            if not np.isfinite(given).all():
                raise ValueError(f"Input labels contains NaN or infinity: {labels}")
            for value in given.tolist():
                if not float(value).is_integer():
                    raise _continuous_error(value, "labels")
        classes = np.unique(given).tolist()
    if len(classes) < 2:
        raise ValueError(
            f"The labels array needs to contain at least two labels, got {classes}.")
    if len(classes) > 2:
        raise ValueError(
            f"{_BINARY_ONLY}, but labels has more than two classes ({_shown(classes)}); "
            f"{_MULTICLASS_HINT}")
    if given.tolist() != classes:
        warnings.warn(
            f"Labels passed were {labels}. But this function assumes labels are ordered "
            f"lexicographically. Pass the ordered labels={classes} and ensure that the "
            f"columns of y_pred correspond to this ordering.", UserWarning, stacklevel=3)
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
            bad = ~((proba >= 0) & (proba <= 1))
            row, col = np.unravel_index(int(np.argmax(bad)), proba.shape)
            raise _probability_error(proba[row, col].item(), f"y_pred[{start + row}, {col}]")
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
            i = int(np.argmax(bad))
            where = f"y_pred[{start + i}, 0]" if self.column else f"y_pred[{start + i}]"
            return _probability_error(proba[i].item(), where)
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
            warnings.warn(self.warning, UserWarning, stacklevel=3)
        n = self.proba.shape[0]
        if self.weights is None:
            return self.loss / n if normalize else self.loss
        if not (math.isfinite(self.loss) and math.isfinite(self.weight)):
            self._check_finite_weights()
        if self.weight == 0:
            # the weights are >= 0 (the kernel checked): all of them are zero
            raise ValueError("Sample weights must contain at least one non-zero number.")
        return self.loss / self.weight if normalize else self.loss


def _probability_error(value, where):
    if math.isnan(value):
        return ValueError(f"Input y_pred contains NaN: {where} is the first")
    side = "greater than 1" if value > 1 else "lower than 0"
    return ValueError(
        f"y_pred contains values {side}: {where} = {value!r} is the first; log_loss needs "
        f"probabilities in [0, 1]")
