"""Slow, obviously correct float64 oracle of the raw sums behind fastbce.evaluate.

``raw_sums_oracle`` takes the arguments of ``fastbce._evaluate._raw_sums``
(1-D operands of one length; a scalar pos_weight as shape ()) and returns the
same dict of float64 arrays, computed element by element in Python floats with
the ``math`` module and summed with ``math.fsum`` (exactly rounded), straight
from the definitions in ``_raw_sums``'s docstring. ``first_invalid_oracle``
names the element ``_raw_sums`` must reject. Neither validates anything else:
feed them good input. About a few microseconds per element: for tests only.
"""
import math

import numpy as np

from fastbce._reference import _sigmoid, _softplus  # the float64 reference's stable forms

__all__ = ["raw_sums_oracle", "first_invalid_oracle", "SUM_NAMES", "BIN_SUM_NAMES"]

SUM_NAMES = ("count", "weight", "loss", "brier", "prob", "above", "below")
BIN_SUM_NAMES = ("bin_weight", "bin_prob")




def _times(factor, value):
    """factor * value, with 0 * inf = 0 (a zero-weight term contributes nothing)."""
    return 0.0 if factor == 0.0 else factor * value


def _as_floats(array, size):
    if array is None:
        return [1.0] * size
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return [float(array)] * size
    return array.tolist()


def first_invalid_oracle(labels, predictions, weights=None, pos_weights=None, *, from_logits=False):
    """(flat index, argument name) of the first invalid element, or (-1, None).

    Checked at each index in bce's order: y_true, y_pred, sample_weight, pos_weight."""
    size = len(predictions)
    y, x = _as_floats(labels, size), _as_floats(predictions, size)
    w = None if weights is None else _as_floats(weights, size)
    pw = None if pos_weights is None else _as_floats(pos_weights, size)
    for i in range(size):
        if not 0.0 <= y[i] <= 1.0:
            return i, "y_true"
        if (math.isnan(x[i]) if from_logits else not 0.0 <= x[i] <= 1.0):
            return i, "y_pred"
        if w is not None and not w[i] >= 0.0:
            return i, "sample_weight"
        if pw is not None and not pw[i] > 0.0:
            return i, "pos_weight"
    return -1, None


def raw_sums_oracle(labels, predictions, weights=None, pos_weights=None, *, from_logits=False,
                    eps=None, threshold=0.5, codes=None, n_groups=1, bins=None):
    """The raw sums (dict name -> float64 array [G, 2], or [G, K, 2] for the bin sums)."""
    size = len(predictions)
    if eps is None:
        eps = float(np.finfo(np.asarray(predictions).dtype).eps)
    y, x = _as_floats(labels, size), _as_floats(predictions, size)
    w, pw = _as_floats(weights, size), _as_floats(pos_weights, size)
    g = [0] * size if codes is None else [int(c) for c in codes]
    terms = {}  # (name, group, [bin,] part) -> list of terms

    def add(key, value):
        terms.setdefault(key, []).append(value)

    for i in range(size):
        parts = (1.0 - y[i], y[i])                       # class part 0, 1
        weighted = (w[i] * parts[0], w[i] * parts[1])
        if from_logits:
            p = _sigmoid(x[i])
            minus_logs = (_softplus(x[i]), _softplus(-x[i]))   # -log(1 - p), -log(p)
        else:
            p = x[i]
            clipped = min(max(p, eps), 1.0 - eps)
            minus_logs = (-math.log1p(-clipped), -math.log(clipped))
        for c in (0, 1):
            add(("count", g[i], c), parts[c])
            add(("weight", g[i], c), weighted[c])
            add(("loss", g[i], c), _times(weighted[c] * (pw[i] if c else 1.0), minus_logs[c]))
            add(("brier", g[i], c), weighted[c] * (p * p if c == 0 else (1.0 - p) * (1.0 - p)))
            add(("prob", g[i], c), weighted[c] * p)
            add(("above" if p >= threshold else "below", g[i], c), weighted[c])
            if bins:
                k = min(math.floor(p * bins), bins - 1)
                add(("bin_weight", g[i], k, c), weighted[c])
                add(("bin_prob", g[i], k, c), weighted[c] * p)

    sums = {name: np.zeros((n_groups, 2)) for name in SUM_NAMES}
    if bins:
        sums.update({name: np.zeros((n_groups, bins, 2)) for name in BIN_SUM_NAMES})
    for (name, *index), values in terms.items():
        sums[name][tuple(index)] = math.fsum(values)
    return sums
