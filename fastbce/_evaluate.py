"""One-pass evaluation report: log loss, Brier score, confusion counts and,
with ``bins=``, ROC AUC, average precision and calibration, overall and per
group, from one pass over the data (:func:`evaluate`), or streamed chunk by
chunk (:class:`Evaluator`).

The design: one pass fills a few float64 *raw sums* per group and class part
(:func:`_raw_sums`); every figure of the report is computed from them
afterwards (:func:`_figures`; the bins-derived ones by :class:`_BinnedRows`,
when first read). The sums are additive, so chunks, threads and
accumulators on other machines combine by adding them (:meth:`Evaluator.merge`),
and they are kept split by class part so that class weights (including
``class_weight="balanced"``, which needs the class counts of the whole
population) are applied only when the report is made.

Class parts: an element with label ``y`` counts as ``y`` of a positive and
``1 - y`` of a negative (a soft label splits; a 0/1 label falls in one part).
"""
from __future__ import annotations

import math
import numbers
import operator
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Optional

import numpy as np

from . import _kernels
from ._api import (
    SERIAL_BELOW,
    _normalize_axes,
    _DEFAULT_EPS,
    _REASONS,
    _as_labels,
    _as_numeric_array,
    _as_predictions,
    _as_weights,
    _broadcast_shape,
    _check_eps,
    _check_num_threads,
    _invalid_value_error,
    _is_kernel_float,
)

__all__ = ["evaluate", "Evaluation", "Evaluator", "GroupEvaluations", "ThresholdTable",
           "ReliabilityCurve"]

# The raw sums, kept as the kernel fills them: a float64 table with one row
# per group, each sum of SUM_NAMES as two columns (class part 0 = the element
# weighted by 1 - y, part 1 = by y), then with bins=K four columns per bin:
# w (1 - y), w y, w (1 - y) p, w y p. One array, so that adding a chunk or an
# accumulator is one operation.
SUM_NAMES, BIN_SUM_NAMES = _kernels.SUM_NAMES, _kernels.BIN_SUM_NAMES
_N_SUM_COLUMNS = 2 * len(SUM_NAMES)
_COLUMN = {name: 2 * k for k, name in enumerate(SUM_NAMES)}   # part 0's column; part 1 is next


def _table_width(bins):
    return _N_SUM_COLUMNS + 4 * (bins or 0)


def _named_sums(table, bins):
    """The sums of a table by name, as views: [G, 2] each, and with bins=K
    ``bin_weight`` and ``bin_prob`` [G, K, 2]."""
    sums = {name: table[:, k:k + 2] for name, k in _COLUMN.items()}
    if bins:
        per_bin = table[:, _N_SUM_COLUMNS:].reshape(len(table), bins, 4)
        sums["bin_weight"] = per_bin[:, :, 0:2]
        sums["bin_prob"] = per_bin[:, :, 2:4]
    return sums


# --------------------------------------------------------------------------
# The per-element pass
# --------------------------------------------------------------------------

def _raw_sums(labels, predictions, weights, pos_weights, **keywords):
    """The raw sums of one pass over the data: dict name -> float64 array.

    ``labels``, ``predictions``, ``weights`` (or None) and ``pos_weights``
    (or None; shape () for a scalar) are ndarrays of one common 1-D shape;
    labels in their own dtype, predictions float32 or float64. ``codes`` is
    an int64 array of group slots in ``[0, n_groups)``, or None (one group).
    For group g and class part c (c = 0: the element with factor 1 - y,
    c = 1: with factor y), with p clipped to [eps, 1 - eps] in the logs only,
    and for logits x: -log(1 - p) = softplus(x), -log(p) = softplus(-x):

        count[g, c]  = sum (1-y), sum y                    (unweighted)
        weight[g, c] = sum w (1-y), sum w y
        loss[g, c]   = sum w (1-y) (-log(1-p)), sum w pw y (-log p)
        brier[g, c]  = sum w (1-y) p^2, sum w y (1-p)^2
        prob[g, c]   = sum w (1-y) p, sum w y p
        above[g, c]  = sum w (1-y) [p >= t], sum w y [p >= t]
        below[g, c]  = sum w (1-y) [p < t], sum w y [p < t]
        bin_weight[g, k, c], bin_prob[g, k, c]   (with bins=K: the weight and
            w p sums of bin k = min(floor(p K), K - 1) of the unclipped p)

    A term whose factor (w (1-y), or w pw y) is 0 is 0, even where the log
    is infinite (an infinite logit). Values are validated as
    :func:`fastbce.bce` does: a ValueError naming the argument, the first
    invalid index and its value; ``given`` (argument name -> the array as the
    caller gave it) and ``shape`` (the broadcast shape) let the message name
    the caller's index; by default the 1-D operands are named.
    """
    return _named_sums(_sum_table(labels, predictions, weights, pos_weights, **keywords),
                       keywords["bins"])


def _sum_table(labels, predictions, weights, pos_weights, *, from_logits, eps, threshold, codes,
               n_groups, bins, num_threads, given=None, shape=None):
    """:func:`_raw_sums` (see there for the operands) as the kernel's table (see _named_sums)."""
    if pos_weights is not None and pos_weights.ndim == 0 and not pos_weights > 0:
        value = (given or {}).get("pos_weight", pos_weights)
        raise ValueError(f"pos_weight = {np.asarray(value).item()!r}: {_REASONS['pos_weight']}")
    _, kernel_labels = _as_labels(labels)
    dtype = predictions.dtype
    if weights is not None and not _is_kernel_float(weights.dtype):
        weights = weights.astype(dtype)
    pos_weight_value = 1.0
    if pos_weights is not None and pos_weights.ndim == 0:
        pos_weight_value, pos_weights = float(pos_weights), None
    elif pos_weights is not None and pos_weights.dtype != dtype:
        pos_weights = pos_weights.astype(dtype)
    size = predictions.shape[0]
    threads = _kernels.max_threads() if num_threads is None else num_threads
    table = np.zeros((n_groups, _table_width(bins)))
    bad_index, bad_operand = _kernels.evaluate_kernel(
        kernel_labels[None], predictions[None], None if weights is None else weights[None],
        None if pos_weights is None else pos_weights[None], None if codes is None else codes[None],
        table, from_logits, pos_weight_value, eps, threshold, bins or 0,
        1 if size < SERIAL_BELOW else threads)
    if bad_index >= 0:
        operands = {"y_true": labels, "y_pred": predictions, "sample_weight": weights,
                    "pos_weight": pos_weights}
        array = (given or {}).get(bad_operand)
        if array is None:
            array = operands[bad_operand]
        raise _invalid_value_error(bad_operand, array, shape if shape is not None else labels.shape,
                                   bad_index, from_logits)
    return table


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------

def _plain(value):
    """A JSON-friendly Python scalar for a group value."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _floats(array):
    return np.asarray(array, dtype=np.float64).ravel().tolist()


def _read_only(array):
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ThresholdTable:
    """Confusion counts and scores at each bin edge ``k / bins``, ``k = 0 .. bins``.

    At edge ``k / K`` the predictions in bins ``>= k`` count as positive
    (``floor(p K) >= k``, which is ``p >= k / K`` up to the rounding of
    ``p K``); the last edge, 1.0, counts none (``p = 1`` falls in the last
    bin). Counts are weighted (sample and class weights); precision, recall
    and F1 are 0.0 where undefined (scikit-learn's ``zero_division``
    default); ``fpr`` (false-positive rate; ``recall`` is the true-positive
    rate) is nan without negatives; accuracy is nan for an empty population.
    """
    threshold: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    accuracy: np.ndarray
    fpr: np.ndarray

    def to_dict(self):
        """Column name -> list of floats."""
        return {f.name: _floats(getattr(self, f.name)) for f in fields(self)}

    def to_frame(self):
        """A pandas DataFrame, one row per threshold."""
        return _pandas().DataFrame({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, eq=False)
class ReliabilityCurve:
    """Reliability (calibration) curve: one entry per non-empty bin.

    ``mean_predicted`` is the weighted mean predicted probability of the
    bin, ``observed_rate`` its weighted fraction of positives, ``weight``
    its total weight, ``bin`` its index (``p`` in ``[bin / K, (bin + 1) / K)``).
    A bin is non-empty when its weight is positive.
    """
    bin: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    weight: np.ndarray

    def to_dict(self):
        out = {f.name: _floats(getattr(self, f.name)) for f in fields(self)}
        out["bin"] = [int(k) for k in self.bin]
        return out

    def to_frame(self):
        return _pandas().DataFrame({f.name: getattr(self, f.name) for f in fields(self)})


_MAKING = threading.Lock()


class GroupEvaluations(Mapping):
    """Read-only mapping: group value -> :class:`Evaluation`, in sorted group order.

    Keys are the group values as Python scalars (``ev.groups[3]``,
    ``ev.groups["north"]``; NumPy scalars of the same value find them too).
    A group's report is made when first read (its figures are already
    computed, for all groups at once) and is the same object on every read;
    a pickle or copy holds every report.
    """

    def __init__(self, evaluations):
        self._evaluations = dict(evaluations)
        self._make = None

    @classmethod
    def _deferred(cls, values, make):
        """The reports of these group values, each made on its first read
        (make(k) is the report of values[k]): a report with thousands of
        groups is often read for a few of them, or for the overall figures."""
        groups = cls.__new__(cls)
        groups._evaluations = dict(zip(values, range(len(values))))  # a row index until made
        groups._make = make
        return groups

    def __getitem__(self, value):
        try:
            evaluation = self._evaluations[value]
        except KeyError:
            raise KeyError(f"no group {value!r}; the groups are {list(self._evaluations)!r}") from None
        if type(evaluation) is int:
            with _MAKING:  # threads reading one group at once get one report
                evaluation = self._evaluations[value]
                if type(evaluation) is int:
                    # (replacing a key's value leaves any iteration over the keys valid)
                    evaluation = self._evaluations[value] = self._make(evaluation)
        return evaluation

    def __reduce__(self):
        # a pickle or copy holds the reports themselves
        return GroupEvaluations, (dict(self.items()),)

    def __iter__(self):
        return iter(self._evaluations)

    def __len__(self):
        return len(self._evaluations)

    def __repr__(self):
        return f"GroupEvaluations({list(self._evaluations)!r})"


_SCALAR_NAMES = ("n", "weight_sum", "log_loss", "brier", "positive_rate", "mean_prediction",
                 "threshold", "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "f1",
                 "balanced_accuracy")
_BINNED_SCALAR_NAMES = ("roc_auc", "roc_auc_error_bound", "average_precision",
                        "average_precision_error_bound", "ece")
# the fields of a report with bins that are computed when first read (see _Deferred)
_DEFERRED_NAMES = _BINNED_SCALAR_NAMES + ("bin_edges", "bin_positives", "bin_negatives",
                                          "threshold_table", "reliability")


class _Deferred:
    """A bins-derived field of :class:`Evaluation`, computed on its first read
    (see _BinnedRows): a report is often read for a few scalars, and its
    tables cost more than a small pass. Until then the instance holds a
    :class:`_PendingBins`."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, evaluation, owner=None):
        if evaluation is None:
            return None  # the field's default (dataclasses reads it here)
        value = evaluation.__dict__[self.name]
        if type(value) is _PendingBins:
            evaluation.__dict__.update(value.values(self.name))
            value = evaluation.__dict__[self.name]
        return value

    def __set__(self, evaluation, value):
        # only the dataclass __init__ gets here (a frozen instance refuses users first)
        evaluation.__dict__[self.name] = value


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("to_frame() needs pandas, which is not installed: pip install pandas") from None
    return pandas


@dataclass(frozen=True, eq=False, repr=False)
class Evaluation:
    """The report of :func:`evaluate` / :meth:`Evaluator.result`.

    All figures are weighted by ``sample_weight`` times the class weight of
    the element's class part (scikit-learn's ``sample_weight * class_weight[y]``);
    a soft label ``y`` counts as ``y`` of a positive and ``1 - y`` of a
    negative. ``W`` below is ``weight_sum``.

    Attributes
    ----------
    n : int
        Number of elements.
    weight_sum : float
        Total weight ``W`` (``n`` without weights).
    log_loss : float
        Weighted mean binary cross-entropy: ``fastbce.bce`` on the same
        inputs (``pos_weight`` multiplies the positive part, as there).
    brier : float
        Weighted mean of ``(1 - y) p^2 + y (1 - p)^2`` (for 0/1 labels the
        Brier score ``(y - p)^2`` of scikit-learn's ``brier_score_loss``; for
        a soft label ``(y - p)^2 + y (1 - y)``, the expected Brier score of
        a Bernoulli(y) outcome). ``p`` is unclipped.
    positive_rate, mean_prediction : float
        Weighted mean label and weighted mean predicted probability.
    threshold : float
        A prediction is positive when ``p >= threshold`` (``p = sigmoid(x)``
        for logits).
    tp, fp, tn, fn : float
        Weighted confusion counts at ``threshold``.
    accuracy, precision, recall, f1, balanced_accuracy : float
        As scikit-learn's ``accuracy_score``, ``precision_recall_fscore_support
        (average="binary")`` and ``balanced_accuracy_score``. Where a ratio is
        undefined (no predicted positives, no positives), precision, recall
        and F1 are 0.0 without a warning: scikit-learn's value for its default
        ``zero_division="warn"``. Balanced accuracy is the mean recall over the
        classes that have weight (as scikit-learn drops a class absent from
        ``y_true``).
    bins : int or None
        The ``bins=`` resolution; the figures below are None without it.
    roc_auc : float
        ROC AUC from the per-bin positives and negatives: trapezoids over the
        bin edges, i.e. a pair in the same bin counts as a tie (1/2). nan
        without positives or without negatives (as scikit-learn).
    roc_auc_error_bound : float
        ``|roc_auc - exact| <= roc_auc_error_bound``, where exact is
        scikit-learn's ``roc_auc_score`` on the unbinned predictions: only
        the positive-negative pairs in the same bin can differ, each by at
        most 1/2, so the bound is half the weighted fraction of those pairs,
        ``sum_k P_k N_k / (2 P N)``.
    average_precision : float
        Average precision (scikit-learn's step-function sum, no
        interpolation) with thresholds at the bin edges: ``sum_k (P_k / P)
        precision_k`` over bins with positives, ``precision_k`` the
        precision when bins ``>= k`` are predicted positive. 0.0 without
        positives (scikit-learn's value).
    average_precision_error_bound : float
        ``|average_precision - exact| <= average_precision_error_bound``:
        inside bin k the exact precisions lie between ``T / (T + F + N_k)``
        and ``(T + P_k) / (T + P_k + F)`` (T, F: weighted positives and
        negatives in the bins above), so the bound is ``sum_k (P_k / P) (hi_k - lo_k)``.
    ece : float
        Expected calibration error over the bins: ``sum_k (W_k / W)
        |mean_predicted_k - observed_rate_k|``.
    bin_edges : ndarray
        ``k / bins`` for ``k = 0 .. bins``.
    bin_positives, bin_negatives : ndarray
        Weighted positives and negatives per bin (bin ``k`` holds
        ``min(floor(p bins), bins - 1) == k``, ``p`` unclipped).
    threshold_table : ThresholdTable
        Confusion counts, precision, recall, F1, accuracy at each bin edge.
    reliability : ReliabilityCurve
        Mean predicted probability vs observed positive rate per non-empty bin.
    group : object
        This report's group value (None for the overall report).
    groups : GroupEvaluations or None
        With ``groups=``: group value -> its :class:`Evaluation`, sorted by
        value. None without ``groups=``.

    An empty population (no elements, or zero total weight) has nan figures
    (and zero counts); :func:`evaluate` warns with a RuntimeWarning, as
    ``fastbce.bce``'s mean does.
    """
    n: int
    weight_sum: float
    log_loss: float
    brier: float
    positive_rate: float
    mean_prediction: float
    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    balanced_accuracy: float
    bins: Optional[int] = None
    roc_auc: Optional[float] = _Deferred()
    roc_auc_error_bound: Optional[float] = _Deferred()
    average_precision: Optional[float] = _Deferred()
    average_precision_error_bound: Optional[float] = _Deferred()
    ece: Optional[float] = _Deferred()
    bin_edges: Optional[np.ndarray] = _Deferred()
    bin_positives: Optional[np.ndarray] = _Deferred()
    bin_negatives: Optional[np.ndarray] = _Deferred()
    threshold_table: Optional[ThresholdTable] = _Deferred()
    reliability: Optional[ReliabilityCurve] = _Deferred()
    group: Any = None
    groups: Optional[GroupEvaluations] = None

    def __getstate__(self):
        # a pickle holds the deferred figures' values, not the pending computation
        return {name: getattr(self, name) for name in self.__dict__}

    @classmethod
    def _of(cls, values):
        """The Evaluation of these field values (at least those without a
        default; the others at their defaults): what __init__ makes, without
        its cost per field (a frozen dataclass sets each through
        object.__setattr__, and a report may have thousands of groups)."""
        evaluation = cls.__new__(cls)
        evaluation.__dict__.update(_FIELD_DEFAULTS, **values)
        return evaluation

    @property
    def confusion_matrix(self):
        """``[[tn, fp], [fn, tp]]``, scikit-learn's layout (rows: true class)."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]])

    def _scalar_names(self):
        return _SCALAR_NAMES + (_BINNED_SCALAR_NAMES if self.bins else ())

    def _scalars(self):
        return {name: (int(getattr(self, name)) if name == "n" else float(getattr(self, name)))
                for name in self._scalar_names()}

    def to_dict(self):
        """The report as plain Python values (floats, ints, lists, dicts), for ``json.dumps``.

        Undefined figures are float nan (``json.dumps`` writes ``NaN``).
        With bins: ``bins``, ``bin_edges``, ``bin_positives``,
        ``bin_negatives``, ``threshold_table`` and ``reliability`` (dicts of
        lists). With groups: ``groups``, a list of the group reports, each
        with its ``group`` value (non-JSON values, such as dates, as strings).
        """
        out = {}
        if self.group is not None:
            out["group"] = _plain(self.group)
        out.update(self._scalars())
        out["bins"] = None if self.bins is None else int(self.bins)
        if self.bins:
            out["bin_edges"] = _floats(self.bin_edges)
            out["bin_positives"] = _floats(self.bin_positives)
            out["bin_negatives"] = _floats(self.bin_negatives)
            out["threshold_table"] = self.threshold_table.to_dict()
            out["reliability"] = self.reliability.to_dict()
        if self.groups is not None:
            out["groups"] = [evaluation.to_dict() for evaluation in self.groups.values()]
        return out

    def to_frame(self):
        """A pandas DataFrame of the scalar figures: one row per group, then "overall".

        The index (named ``group``) holds the group values and, last, the
        label ``"overall"`` (a group's own report: one row, its value).
        Raises ImportError without pandas.
        """
        pandas = _pandas()
        rows = [evaluation for evaluation in (self.groups or {}).values()] + [self]
        index = [evaluation.group for evaluation in rows[:-1]]
        index.append("overall" if self.group is None else self.group)
        frame = pandas.DataFrame([evaluation._scalars() for evaluation in rows],
                                 index=pandas.Index(index, name="group", dtype=object))
        return frame

    _REPR_COLUMNS = (("n", "n"), ("log_loss", "log_loss"), ("brier", "brier"),
                     ("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"),
                     ("f1", "f1"), ("balanced_accuracy", "bal_acc"))
    _REPR_BINNED = (("roc_auc", "roc_auc"), ("average_precision", "avg_prec"), ("ece", "ece"))
    _REPR_MAX_GROUPS = 20

    def __repr__(self):
        columns = self._REPR_COLUMNS + (self._REPR_BINNED if self.bins else ())
        rows = []
        groups = list(self.groups or ())
        if len(groups) > self._REPR_MAX_GROUPS:
            half = self._REPR_MAX_GROUPS // 2
            shown = groups[:half] + [_MORE_GROUPS] + groups[-half:]
        else:
            shown = groups
        for value in shown:
            if value is _MORE_GROUPS:
                rows.append([f"... {len(groups) - 2 * half} more groups"])
            else:
                rows.append([str(value)] + self.groups[value]._repr_cells(columns))
        rows.append([("overall" if self.group is None else str(self.group))]
                    + self._repr_cells(columns))
        header = ["group"] + [title for _, title in columns]
        widths = [max(len(header[i]), *(len(r[i]) for r in rows if len(r) > 1))
                  for i in range(len(header))]
        lines = []
        where = "" if self.group is None else f" of group {self.group!r}"
        lines.append(
            f"Evaluation{where}: n={self.n:,}, weight_sum={self.weight_sum:,.6g}, "
            f"threshold={self.threshold:g}" + (f", bins={self.bins}" if self.bins else "")
            + (f", {len(groups)} groups" if self.groups is not None else ""))
        lines.append(f"  at p >= {self.threshold:g}: tp={self.tp:,.6g} fp={self.fp:,.6g} "
                     f"tn={self.tn:,.6g} fn={self.fn:,.6g}")
        lines.append("  " + "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                                      for i, h in enumerate(header)))
        for row in rows:
            if len(row) == 1:
                lines.append("  " + row[0])
            else:
                lines.append("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                              for i, c in enumerate(row)))
        return "\n".join(lines)

    def _repr_cells(self, columns):
        cells = []
        for name, _ in columns:
            value = getattr(self, name)
            cells.append(f"{value:,}" if name == "n" else f"{value:.4f}")
        return cells


# where a report's repr leaves groups out
_MORE_GROUPS = object()

# every field in order (those without a default are MISSING here: Evaluation._of's values give them)
_FIELD_DEFAULTS = {field.name: field.default for field in fields(Evaluation)}


# --------------------------------------------------------------------------
# Figures from raw sums (per row of the table: groups, then overall)
# --------------------------------------------------------------------------

def _ratio(numerator, denominator, undefined):
    """numerator / denominator, `undefined` where the denominator is 0."""
    return numerator / denominator if denominator != 0 else undefined


def _ratios(numerator, denominator, undefined):
    """_ratio of arrays, element-wise (the denominator may broadcast; never dividing by 0)."""
    return np.divide(numerator, denominator, out=np.full(numerator.shape, undefined),
                     where=denominator != 0)


# the sums of a table row in the order _figures unpacks them (part 0, part 1 of each)
_FIGURE_SUMS = ("count", "weight", "loss", "brier", "prob", "above", "below")
_unpack_sums = operator.itemgetter(*(_COLUMN[name] + part for name in _FIGURE_SUMS for part in (0, 1)))


def _figures(sums, class_weight, threshold):
    """The scalar figures from the sums table: dict name -> value.

    `sums` is one row (a list of floats: Python float arithmetic, the same
    IEEE double operations as NumPy's and far cheaper than 0-d arrays for
    one row's few dozen operations) or the table's columns, one float64
    array each (then each figure is an array over the rows: a report with
    many groups costs one NumPy operation per figure, not Python per group).
    Both give the same values bit for bit.
    """
    (count0, count1, weight0, weight1, loss0, loss1, brier0, brier1, prob0, prob1,
     above0, above1, below0, below1) = _unpack_sums(sums)
    arrays = isinstance(count0, np.ndarray)  # the columns of many rows
    ratio = _ratios if arrays else _ratio
    cw0, cw1 = class_weight
    weight0, weight1 = cw0 * weight0, cw1 * weight1
    total = weight0 + weight1
    nan = math.nan
    out = {}
    out["n"] = np.rint(count0 + count1).astype(np.int64) if arrays else round(count0 + count1)
    out["weight_sum"] = total
    out["log_loss"] = ratio(cw0 * loss0 + cw1 * loss1, total, nan)
    out["brier"] = ratio(cw0 * brier0 + cw1 * brier1, total, nan)
    out["positive_rate"] = ratio(weight1, total, nan)
    out["mean_prediction"] = ratio(cw0 * prob0 + cw1 * prob1, total, nan)
    out["threshold"] = threshold
    tp, fn = cw1 * above1, cw1 * below1
    fp, tn = cw0 * above0, cw0 * below0
    out.update(tp=tp, fp=fp, tn=tn, fn=fn)
    out["accuracy"] = ratio(tp + tn, total, nan)
    # scikit-learn's precision_recall_fscore_support: precision = tp / pred_sum,
    # recall = tp / true_sum, F1 = 2 tp / (true_sum + pred_sum); 0 where undefined
    true_sum, pred_sum = tp + fn, tp + fp
    out["precision"] = ratio(tp, pred_sum, 0.0)
    out["recall"] = ratio(tp, true_sum, 0.0)
    out["f1"] = ratio(2.0 * tp, true_sum + pred_sum, 0.0)
    # balanced_accuracy_score: mean per-class recall over the classes present
    has1, has0 = true_sum > 0, (tn + fp) > 0
    recall1, recall0 = ratio(tp, true_sum, 0.0), ratio(tn, tn + fp, 0.0)
    if arrays:
        out["balanced_accuracy"] = ratio(np.where(has0, recall0, 0.0) + np.where(has1, recall1, 0.0),
                                         has0.astype(float) + has1.astype(float), nan)
    else:
        out["balanced_accuracy"] = ratio((recall0 if has0 else 0.0) + (recall1 if has1 else 0.0),
                                         float(has0) + float(has1), nan)
    # an empty population (no weight) has no figures, whatever the conventions above say
    empty = ~(total > 0) if arrays else not total > 0
    if arrays or empty:
        for name in _SCALAR_NAMES[2:]:
            if name not in ("threshold", "tp", "fp", "tn", "fn"):
                out[name] = np.where(empty, nan, out[name]) if arrays else nan
    return out


def _figure_rows(sums, class_weight, threshold):
    """_figures of each row of the [R, N_SUMS] table `sums`: (a function of the
    row index that gives that row's dict, to be called once per row; each
    row's weight_sum)."""
    if len(sums) <= _FEW_ROWS:
        rows = [_figures(row, class_weight, threshold) for row in sums.tolist()]
        return rows.__getitem__, [row["weight_sum"] for row in rows]
    with np.errstate(all="ignore"):  # as Python floats: inf / inf is nan, silently
        columns = _figures(sums.T, class_weight, threshold)
    names = list(columns)
    values = [column.tolist() if isinstance(column, np.ndarray) else [column] * len(sums)
              for column in columns.values()]
    rows = list(zip(*values))
    return (lambda k: dict(zip(names, rows[k]))), values[names.index("weight_sum")]


# up to this many rows, Python floats row by row are faster than NumPy over
# the columns (about 2 us a row against 60 us plus 1 us a row)
_FEW_ROWS = 32


class _BinnedRows:
    """The bins-derived figures of a report's rows (groups, then overall),
    deferred (see _Deferred) in four parts: the scalars, the bin arrays, the
    threshold table, the reliability curve. A row's first read of a field
    fills that part's fields of the row; the arrays behind them are computed
    for every row at once (vectorized over the rows) and kept."""

    def __init__(self, table, class_weight, bins, empty):
        self._table, self._class_weight, self._bins = table, class_weight, bins
        self._empty = empty  # per row: no weight, so no figures

    def values(self, row, name):
        """The deferred fields of `row` in the part that holds `name`: dict name -> value."""
        if name in _BINNED_SCALAR_NAMES:
            return self._scalars(row)
        if name == "threshold_table":
            return {name: self._threshold_table(row)}
        if name == "reliability":
            return {name: self._reliability(row)}
        return {"bin_edges": self._edges, "bin_positives": _read_only(self._parts[row, 1]),
                "bin_negatives": _read_only(self._parts[row, 0])}

    @cached_property
    def _class_weighted(self):
        """[R, 4, K]: the per-bin sums (w (1 - y), w y, w (1 - y) p, w y p) times their class's weight."""
        per_bin = self._table[:, _N_SUM_COLUMNS:].reshape(len(self._table), self._bins, 4)
        cw0, cw1 = self._class_weight
        return np.multiply(per_bin.transpose(0, 2, 1), np.array([cw0, cw1, cw0, cw1])[:, None],
                           order="C")

    @cached_property
    def _parts(self):
        """[R, 2, K]: the weight of each bin, part 0 the negatives N_k, part 1 the positives P_k."""
        return self._class_weighted[:, :2]

    @cached_property
    def _prob(self):
        """[R, K]: the weighted sum of p of each bin."""
        return self._class_weighted[:, 2] + self._class_weighted[:, 3]

    @cached_property
    def _below(self):
        """[R, 2, K + 1]: the weight of the bins < k, k = 0 .. K (negatives, positives)."""
        below = np.zeros(self._parts.shape[:2] + (self._bins + 1,))
        self._parts.cumsum(axis=2, out=below[:, :, 1:])
        return below

    @cached_property
    def _at_or_above(self):
        """[R, 2, K + 1]: the weight of the bins >= k, k = 0 .. K (negatives, positives)."""
        at_or_above = np.zeros(self._parts.shape[:2] + (self._bins + 1,))
        # summed from the last bin down, written from index K - 1 down (index K stays 0)
        self._parts[:, :, ::-1].cumsum(axis=2, out=at_or_above[:, :, -2::-1])
        return at_or_above

    @cached_property
    def _precision(self):
        """[R, K + 1]: the precision when the bins >= k are predicted positive (0 where none is)."""
        fp_t, tp_t = self._at_or_above[:, 0], self._at_or_above[:, 1]
        return _ratios(tp_t, tp_t + fp_t, 0.0)

    @cached_property
    def _edges(self):
        """k / K, k = 0 .. K: one array for every row."""
        return _read_only(np.arange(self._bins + 1) / self._bins)

    @cached_property
    def _scalar_sums(self):
        """Per row, the sums the binned scalars are ratios of (see _scalars): a list of lists."""
        negatives, positives = self._parts[:, 0], self._parts[:, 1]
        bins = self._bins
        # the terms of the sums over the bins, summed in one call
        terms = np.zeros((len(positives), 6, bins))
        # ROC AUC: a positive in bin k beats the negatives below it and ties (1/2)
        # with those in bin k; the same-bin pairs are the only possible error
        np.multiply(positives, self._below[:, 0, :bins] + 0.5 * negatives, out=terms[:, 0])
        np.multiply(positives, negatives, out=terms[:, 1])
        # average precision: bins >= k predicted positive at threshold k / K;
        # the bins without positives add nothing
        fp_at, tp_at = self._at_or_above[:, 0, :bins], self._at_or_above[:, 1, :bins]
        fp_above, tp_above = self._at_or_above[:, 0, 1:], self._at_or_above[:, 1, 1:]  # bins > k
        has_p = positives > 0
        precision_k = self._precision[:, :bins]
        high = _ratios(tp_at, tp_at + fp_above, 1.0)
        low = _ratios(tp_above, tp_above + fp_at, 1.0)
        np.multiply(positives, precision_k, out=terms[:, 2], where=has_p)
        np.multiply(positives, high - low, out=terms[:, 3], where=has_p)
        # calibration: sum_k W_k |mean predicted - observed| = sum_k |sum w p - P_k|
        np.abs(self._prob - positives, out=terms[:, 4])
        np.add(positives, negatives, out=terms[:, 5])
        sums = np.concatenate([self._parts.sum(axis=2), terms.sum(axis=2)], axis=1)
        return sums.tolist()

    def _scalars(self, row):
        total_n, total_p, auc, same_bin, ap, ap_spread, gap, weight = self._scalar_sums[row]
        pairs = total_p * total_n
        nan = math.nan
        values = {
            "roc_auc": _ratio(auc, pairs, nan),
            "roc_auc_error_bound": _ratio(0.5 * same_bin, pairs, nan),
            "average_precision": _ratio(ap, total_p, 0.0),
            "average_precision_error_bound": _ratio(ap_spread, total_p, 0.0),
            "ece": _ratio(gap, weight, nan),
        }
        if self._empty[row]:
            values = dict.fromkeys(values, nan)
        return values

    @cached_property
    def _threshold_columns(self):
        """The threshold table's columns but the threshold: name -> [R, K + 1] (at the K + 1 edges)."""
        fp_t, tp_t = self._at_or_above[:, 0], self._at_or_above[:, 1]
        tn_t, fn_t = self._below[:, 0], self._below[:, 1]
        totals = self._parts.sum(axis=2)
        total = (totals[:, 1] + totals[:, 0])[:, None]
        return dict(
            tp=tp_t, fp=fp_t, tn=tn_t, fn=fn_t,
            precision=self._precision,
            recall=_ratios(tp_t, tp_t + fn_t, 0.0),
            f1=_ratios(2.0 * tp_t, (tp_t + fn_t) + (tp_t + fp_t), 0.0),
            accuracy=_ratios(tp_t + tn_t, total, math.nan),
            fpr=_ratios(fp_t, fp_t + tn_t, math.nan),
        )

    def _threshold_table(self, row):
        return ThresholdTable(threshold=self._edges, **{
            name: _read_only(column[row]) for name, column in self._threshold_columns.items()})

    def _reliability(self, row):
        negatives, positives = self._parts[row]
        weight = positives + negatives
        nonempty = np.flatnonzero(weight > 0)
        return ReliabilityCurve(
            bin=_read_only(nonempty),
            mean_predicted=_read_only(self._prob[row][nonempty] / weight[nonempty]),
            observed_rate=_read_only(positives[nonempty] / weight[nonempty]),
            weight=_read_only(weight[nonempty]))


class _PendingBins:
    """What a deferred field of one report row holds until it is read."""

    def __init__(self, rows, row):
        self.rows, self.row = rows, row

    def values(self, name):
        return self.rows.values(self.row, name)


def _reports(table, class_weight, threshold, bins):
    """The reports of the rows of the sums table (groups, then overall): (a
    function (row index, group value) -> that row's Evaluation, each row's
    weight_sum). A report is made when asked for (see GroupEvaluations._deferred)."""
    figures_of, weight_sums = _figure_rows(table[:, :_N_SUM_COLUMNS], class_weight, threshold)
    binned = bins and _BinnedRows(table, class_weight, bins, [not total > 0 for total in weight_sums])

    def report(row, group):
        values = figures_of(row)
        if bins:
            values["bins"] = bins
            values.update(dict.fromkeys(_DEFERRED_NAMES, _PendingBins(binned, row)))
        values["group"] = group
        return Evaluation._of(values)

    return report, weight_sums


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def _check_class_weight(class_weight):
    """None, "balanced", or (w0, w1) from a mapping {0: w0, 1: w1} (a missing class weighs 1)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f'class_weight must be None, "balanced" or a mapping {{0: w0, 1: w1}}, '
                             f"got {class_weight!r}")
        return "balanced"
    if not isinstance(class_weight, Mapping):
        raise ValueError(f'class_weight must be None, "balanced" or a mapping {{0: w0, 1: w1}}, '
                         f"got {type(class_weight).__name__}")
    pair = [1.0, 1.0]
    for key, value in class_weight.items():
        if isinstance(key, (str, bytes)) or key not in (0, 1):
            raise ValueError(f"class_weight keys must be the classes 0 and 1, got {key!r}")
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"class_weight[{key!r}] must be a number, got {value!r}") from None
        if not (weight >= 0 and math.isfinite(weight)):
            raise ValueError(f"class_weight[{key!r}] must be finite and >= 0, got {value!r}")
        pair[int(key)] = weight
    return tuple(pair)


def _class_weight_pair(class_weight, count):
    """(w0, w1) for the report; "balanced" from the overall unweighted class counts."""
    if class_weight is None:
        return 1.0, 1.0
    if class_weight != "balanced":
        return class_weight
    # scikit-learn: n_samples / (n_classes * bincount(y)), over the classes present
    count0, count1 = float(count[0]), float(count[1])
    present = (count0 > 0) + (count1 > 0)
    total = count0 + count1
    return tuple(total / (present * c) if c > 0 else 1.0 for c in (count0, count1))


def _check_threshold(threshold):
    if (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)
            or not 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    return float(threshold)


def _check_bins(bins):
    if bins is None:
        return None
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer or None, got {bins!r}")
    return int(bins)


def _as_groups(groups):
    array = np.asarray(groups)
    if array.dtype.kind in "cV":
        raise TypeError(f"groups has unsupported dtype {array.dtype}")
    return array


# integer groups spanning at most this many values are coded without a
# bincount (see _code_groups); a wider span would cost the kernel rows of
# absent groups
_MAX_DENSE_GROUPS = 1024


def _code_groups(groups):
    """(sorted distinct values as Python scalars, int64 slot of each element,
    whether some values may be absent) of a 1-D array. With the last True,
    the values are every integer from the smallest to the largest group,
    and the caller drops those without elements (_drop_absent_groups)."""
    if groups.size == 0:
        return [], np.zeros(0, np.int64), False
    if groups.dtype.kind == "i" or (groups.dtype.kind == "u" and groups.dtype.itemsize < 8):
        # small integer codes: a bincount instead of a sort
        low, high = _integer_range(groups)
        offset = None
        if high - low < max(2 * groups.size, 1 << 16):
            offset = groups.astype(np.int64, copy=False) - low if low else groups.astype(np.int64, copy=False)
        if offset is not None and high - low < _MAX_DENSE_GROUPS:
            # few codes (the common case, often already 0..k-1): read in
            # place, and the kernel's counts tell which are present (the
            # bincount cost a fifth of a grouped report)
            return list(range(low, high + 1)), offset, True
        if offset is not None:
            present = np.bincount(offset, minlength=high - low + 1) > 0
            if low == 0 and present.all():
                return list(range(high + 1)), offset, False
            slot_of = np.cumsum(present) - 1
            return (np.flatnonzero(present) + low).tolist(), slot_of[offset].astype(np.int64), False
    if groups.dtype.kind in "OUS":
        # strings: pandas' hash-based factorize, when installed, is many
        # times faster than sorting an object array (None/NaN keep the path below)
        try:
            import pandas
            codes, uniques = pandas.factorize(groups, sort=True)
        except (ImportError, TypeError):
            codes = None
        if codes is not None and not (codes < 0).any():
            return ([u.item() if hasattr(u, "item") else u for u in uniques.tolist()], codes.astype(np.int64),
                    False)
    if groups.dtype.kind == "f" and np.isnan(groups).any():
        raise ValueError(f"groups must not contain NaN (at index {int(np.argmax(np.isnan(groups)))})")
    try:
        values, codes = np.unique(groups, return_inverse=True)
    except TypeError as error:
        raise TypeError(f"groups values cannot be sorted: {error}") from None
    return values.tolist(), codes.reshape(-1).astype(np.int64), False


def _integer_range(values):
    """(smallest, largest) of a non-empty integer array, as Python ints: one
    kernel pass for contiguous int32/int64 (most group codes), else NumPy's
    min() and max()."""
    if (_kernels.integer_range is not None and values.dtype.kind == "i" and values.dtype.itemsize in (4, 8)
            and values.dtype.isnative and values.flags.c_contiguous):
        low, high = _kernels.integer_range(values)
        return int(low), int(high)
    return int(values.min()), int(values.max())


def _drop_absent_groups(values, table):
    """(values, table) without the groups that have no element (a zero count)."""
    count = _COLUMN["count"]
    present = table[:, count:count + 2].sum(axis=1) > 0
    if present.all():
        return values, table
    return [value for value, keep in zip(values, present) if keep], table[present]


def _groups_of_axes(axis, *arrays):
    """Group codes that make evaluate(axis=) a grouped evaluation: the flat
    index over the axes not reduced, as a broadcast view (no full-size array)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays if a is not None))
    axes = _normalize_axes(axis, len(shape))
    kept_shape = [1 if a in axes else n for a, n in enumerate(shape)]
    return np.broadcast_to(np.arange(math.prod(kept_shape), dtype=np.int64).reshape(kept_shape), shape)


_UNSET = object()


class Evaluator:
    """Streaming accumulator of the :func:`evaluate` report.

    ``update`` chunks, ``merge`` accumulators (from other processes: it
    pickles), and ``result()`` gives the report of everything seen: the same,
    within float64 rounding (1e-12 relative), as one :func:`evaluate` call
    on the concatenated chunks, and bit-identical for the same chunking.
    Group values seen in different chunks or accumulators are matched by
    value; the report lists them sorted. Class weights, including
    ``"balanced"`` (computed from the class counts of everything seen), are
    applied in ``result()``.

    Keywords as :func:`evaluate`. With ``eps=None`` each update clips at
    ``numpy.finfo`` eps of that chunk's prediction dtype (as ``fastbce.bce``).
    """

    def __init__(self, *, from_logits=False, threshold=0.5, class_weight=None, pos_weight=None,
                 eps=None, bins=None, num_threads=None):
        self.from_logits = bool(from_logits)
        self.threshold = _check_threshold(threshold)
        self.class_weight = _check_class_weight(class_weight)
        self.bins = _check_bins(bins)
        if eps is not None:
            eps = _check_eps(eps, np.dtype(np.float64))
        self.eps = eps
        if num_threads is not None:
            _check_num_threads(num_threads)
        self.num_threads = num_threads
        self.pos_weight = None
        if pos_weight is not None:
            given = _as_numeric_array(pos_weight, "pos_weight")
            if given.ndim == 0 and not given > 0:
                raise ValueError(f"pos_weight = {given.item()!r}: {_REASONS['pos_weight']}")
            self.pos_weight = given
        self._grouped = None          # unknown until the first update
        self._values = []             # group value of each slot, in order of first sight
        self._slot_of = {}            # group value -> slot
        self._table = np.zeros((0, _table_width(self.bins)))   # the sums, a row per slot

    def __setstate__(self, state):
        if "_sums" in state:
            # pickled before the sums were kept as one table (a dict of arrays by
            # name): the same sums, laid out in a table
            sums = state.pop("_sums")
            state["_table"] = np.zeros((len(sums["count"]), _table_width(state["bins"])))
            for name, view in _named_sums(state["_table"], state["bins"]).items():
                view[...] = sums[name]
        self.__dict__.update(state)

    def _settings(self):
        return (self.from_logits, self.threshold, self.class_weight, self.eps, self.bins)

    def __repr__(self):
        count = _COLUMN["count"]
        n = int(round(float(self._table[:, count:count + 2].sum())))
        groups = f", groups={len(self._values)}" if self._grouped else ""
        return (f"Evaluator(n={n}{groups}, from_logits={self.from_logits}, threshold={self.threshold}, "
                f"class_weight={self.class_weight!r}, bins={self.bins})")

    def _check_grouping(self, grouped):
        if self._grouped is not None and self._grouped != grouped:
            raise ValueError(
                "every update of an Evaluator must pass groups= or none must: this one has "
                + ("no groups after updates with groups" if self._grouped else "groups after updates without"))

    def _slots(self, values):
        """Accumulator slots of these group values, adding the new ones."""
        new = [value for value in values if value not in self._slot_of]
        if new and self._values:
            try:
                new[0] < self._values[0], self._values[0] < new[0]
            except TypeError:
                raise TypeError(f"group values {self._values[0]!r} and {new[0]!r} cannot be "
                                f"sorted together: use one type of group value") from None
        if new:
            for value in new:
                self._slot_of[value] = len(self._values)
                self._values.append(value)
            grown = np.zeros((len(self._values), self._table.shape[1]))
            grown[:len(self._table)] = self._table
            self._table = grown
        slots = [self._slot_of[value] for value in values]
        if slots == list(range(len(self._values))):
            return slice(None)  # every slot in order (always so without groups): no fancy indexing
        return np.array(slots, dtype=np.int64)

    def update(self, y_true, y_pred, sample_weight=None, groups=None):
        """Add a chunk (inputs as :func:`evaluate`); returns the Evaluator.

        A chunk with an invalid value raises as ``fastbce.bce`` does and
        leaves the Evaluator unchanged."""
        grouped = groups is not None
        self._check_grouping(grouped)
        labels, _ = _as_labels(y_true)
        predictions_given, predictions = _as_predictions(y_pred)
        dtype = predictions.dtype
        eps = self.eps if self.eps is not None else _DEFAULT_EPS[dtype.char]
        weights_given = weights = None
        if sample_weight is not None:
            weights_given = weights = _as_numeric_array(sample_weight, "sample_weight")
            if not _is_kernel_float(weights.dtype):
                weights = weights.astype(dtype)
        pos_weights = None
        if self.pos_weight is not None:
            _, pos_weights = _as_weights(self.pos_weight, "pos_weight", dtype)
        group_array = _as_groups(groups) if grouped else None
        shape = predictions.shape
        if labels.shape != shape or weights is not None or pos_weights is not None or grouped:
            shape = _broadcast_shape(
                y_true=labels, y_pred=predictions, sample_weight=weights,
                pos_weight=pos_weights if pos_weights is not None and pos_weights.ndim else None,
                groups=group_array)

        def flat(array):
            if len(shape) == 1 and array.shape == shape:
                return array  # the common case: already flat
            return np.broadcast_to(array, shape).reshape(-1)

        if grouped:
            values, codes, maybe_absent = _code_groups(flat(group_array))
        else:
            values, codes, maybe_absent = [None], None, False
        table = _sum_table(
            flat(labels), flat(predictions), None if weights is None else flat(weights),
            None if pos_weights is None else (pos_weights if pos_weights.ndim == 0 else flat(pos_weights)),
            from_logits=self.from_logits, eps=eps, threshold=self.threshold, codes=codes,
            n_groups=len(values), bins=self.bins, num_threads=self.num_threads,
            given={"y_true": labels, "y_pred": predictions_given, "sample_weight": weights_given,
                   "pos_weight": self.pos_weight},
            shape=shape)
        if maybe_absent:
            values, table = _drop_absent_groups(values, table)
        self._grouped = grouped
        self._add(values, table)
        return self

    def _add(self, values, table):
        slots = self._slots(values)  # first: it may grow the table
        self._table[slots] += table

    def merge(self, other):
        """Add another Evaluator's data into this one (in place); returns this Evaluator.

        The settings (from_logits, threshold, class_weight, pos_weight, eps,
        bins) must match; groups are matched by value."""
        if not isinstance(other, Evaluator):
            raise TypeError(f"can only merge an Evaluator, got {type(other).__name__}")
        mismatched = [name for name, a, b in zip(
            ("from_logits", "threshold", "class_weight", "eps", "bins"),
            self._settings(), other._settings()) if a != b]
        if not _same_pos_weight(self.pos_weight, other.pos_weight):
            mismatched.append("pos_weight")
        if mismatched:
            raise ValueError(f"cannot merge Evaluators with different settings: {', '.join(mismatched)}")
        if other._grouped is None:
            return self
        self._check_grouping(other._grouped)
        values = list(other._values)
        table = other._table.copy()
        self._grouped = other._grouped
        self._add(values, table)
        return self

    def result(self):
        """The :class:`Evaluation` of everything seen so far."""
        return self._result(stacklevel=3)

    def _result(self, stacklevel):
        if not self._grouped:
            # a copy: the report's deferred figures must not see later updates
            table = self._table.copy() if self._values else np.zeros((1, self._table.shape[1]))
            values = []
        else:
            order = sorted(range(len(self._values)), key=self._values.__getitem__)
            values = [self._values[slot] for slot in order]
            by_value = self._table[order]
            table = np.concatenate([by_value, by_value.sum(axis=0, keepdims=True)])
        count = _COLUMN["count"]
        class_weight = _class_weight_pair(self.class_weight, table[-1, count:count + 2])
        report, weight_sums = _reports(table, class_weight, self.threshold, self.bins)
        overall = report(len(table) - 1, None)
        if self._grouped:
            object.__setattr__(overall, "groups", GroupEvaluations._deferred(
                values, lambda k: report(k, values[k])))
        _warn_empty(overall, values, weight_sums[:-1], stacklevel + 1)
        return overall


def _same_pos_weight(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _warn_empty(overall, values, group_weight_sums, stacklevel):
    if not overall.weight_sum > 0:
        what = "empty input" if overall.n == 0 else "input with zero total weight"
        warnings.warn(f"evaluation of {what}: the figures are nan", RuntimeWarning,
                      stacklevel=stacklevel)
        return
    empty = [value for value, weight_sum in zip(values, group_weight_sums) if not weight_sum > 0]
    if empty:
        shown = ", ".join(map(repr, empty[:10])) + (", ..." if len(empty) > 10 else "")
        warnings.warn(f"{len(empty)} group(s) with zero total weight ({shown}): their figures are nan",
                      RuntimeWarning, stacklevel=stacklevel)


def evaluate(y_true, y_pred, *, from_logits=False, threshold=0.5, sample_weight=None,
             class_weight=None, pos_weight=None, eps=None, groups=None, bins=None,
             num_threads=None, axis=None):
    """Evaluation report of binary predictions in one pass: an :class:`Evaluation`.

    Log loss (as :func:`fastbce.bce`), Brier score, confusion counts at
    ``threshold`` and accuracy, precision, recall, F1 and balanced accuracy
    (scikit-learn's definitions); with ``bins=`` also ROC AUC and average
    precision at that resolution (with error bounds against the exact
    values), a threshold table, a reliability curve and the expected
    calibration error; with ``groups=`` every figure per group too.

    Parameters
    ----------
    y_true, y_pred, sample_weight, pos_weight, eps, num_threads
        As :func:`fastbce.bce` (same validation and errors). Inputs of any
        number of dimensions are read as one flat population.
        ``pos_weight`` affects the log loss only.
    from_logits : bool
        ``y_pred`` are logits; probability figures use ``p = sigmoid(x)``.
    threshold : float in [0, 1]
        A prediction is positive when ``p >= threshold``.
    class_weight : None, "balanced" or {0: w0, 1: w1}
        As scikit-learn: every figure weighs an element by ``sample_weight *
        class_weight[y]`` (a soft label's parts by their class's weight);
        ``"balanced"`` is ``n / (n_classes * count(class))`` over the classes
        present, from the overall unweighted counts (also for the groups). A
        class missing from the mapping weighs 1.
    groups : array-like, optional
        Group of each element (integers, strings, anything ``numpy.unique``
        sorts), broadcast against the inputs. The report's ``groups`` maps
        each value to its own :class:`Evaluation`, sorted by value.
    bins : int, optional
        Number of equal-width probability bins on [0, 1] for the ranking and
        calibration figures.
    axis : int or tuple of ints, optional
        Evaluate over these axes only: one report per remaining index, in
        ``groups`` keyed by that index (C-order flat index when several axes
        remain), e.g. ``axis=0`` on (n, k) multi-label outputs gives one
        report per label column. Not with ``groups=``.

    Returns
    -------
    Evaluation
        See :class:`Evaluation` for each figure and its convention. An empty
        population gives nan figures with a RuntimeWarning (as bce's mean).
    """
    evaluator = Evaluator(from_logits=from_logits, threshold=threshold, class_weight=class_weight,
                          pos_weight=pos_weight, eps=eps, bins=bins, num_threads=num_threads)
    if axis is not None:
        if groups is not None:
            raise ValueError("evaluate: pass axis= or groups=, not both (axis= is groups by index)")
        groups = _groups_of_axes(axis, y_true, y_pred, sample_weight)
    evaluator.update(y_true, y_pred, sample_weight=sample_weight, groups=groups)
    return evaluator._result(stacklevel=3)
