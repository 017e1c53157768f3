"""Slow, obviously correct float64 reference for fastbce (the test oracle).

Every element is computed in Python floats (IEEE float64) with the ``math``
module, straight from the formulas of SPEC.md section 1, and reductions use
``math.fsum`` (exactly rounded sums).  It validates nothing: feed it good input.

It is meant for correctness checks and as the benchmark's ground truth, not
for speed (about a microsecond per element).
"""

import math
import warnings

import numpy as np

__all__ = ["bce_reference", "bce_grad_reference"]

_REDUCTIONS = ("mean", "sum", "none")


def _prepare(y_true, y_pred, sample_weight, pos_weight, label_smoothing, eps):
    """Broadcast everything to float64 lists; return (y, x, w, pw, eps, shape)."""
    pred = np.asarray(y_pred)
    dtype = pred.dtype if pred.dtype in (np.float32, np.float64) else np.float64
    if eps is None:
        eps = float(np.finfo(dtype).eps)
    w = 1.0 if sample_weight is None else sample_weight
    pw = 1.0 if pos_weight is None else pos_weight
    arrays = np.broadcast_arrays(np.asarray(y_true), pred, np.asarray(w), np.asarray(pw))
    shape = arrays[0].shape
    y, x, w, pw = (a.astype(np.float64).ravel().tolist() for a in arrays)
    a = float(label_smoothing)
    if a:
        y = [yi * (1.0 - a) + a / 2.0 for yi in y]
    return y, x, w, pw, float(eps), shape


def _softplus(z):
    """log(1 + exp(z)), stable, exact limits at +-inf."""
    if z == math.inf:
        return math.inf
    if z == -math.inf:
        return 0.0
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _loss_logit(y, x, w, pw):
    if w == 0.0:
        return 0.0
    c = 1.0 + (pw - 1.0) * y
    if x == math.inf:  # loss ~ (1 - y) * x
        return math.inf if y < 1.0 else 0.0
    if x == -math.inf:  # loss ~ -pw * y * x
        return math.inf if y > 0.0 else 0.0
    return w * ((1.0 - y) * x + c * _softplus(-x))


def _loss_proba(y, p, w, pw, eps):
    p = min(max(p, eps), 1.0 - eps)
    return -w * (pw * y * math.log(p) + (1.0 - y) * math.log1p(-p))


def _grad_logit(y, x, w, pw):
    return w * ((1.0 + (pw - 1.0) * y) * _sigmoid(x) - pw * y)


def _grad_proba(y, p, w, pw, eps):
    p = min(max(p, eps), 1.0 - eps)
    return w * (-pw * y / p + (1.0 - y) / (1.0 - p))


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _denominator(reduction, w):
    """What the mean divides by: sum of the broadcast weights (n if unweighted)."""
    return math.fsum(w) if reduction == "mean" else 1.0


def bce_reference(y_true, y_pred, *, from_logits=False, reduction="mean",
                  sample_weight=None, pos_weight=None, label_smoothing=0.0, eps=None):
    """Binary cross-entropy in float64: a float for "mean"/"sum", else an array."""
    _check_reduction(reduction)
    y, x, w, pw, eps, shape = _prepare(y_true, y_pred, sample_weight, pos_weight,
                                       label_smoothing, eps)
    if from_logits:
        losses = [_loss_logit(*t) for t in zip(y, x, w, pw)]
    else:
        losses = [_loss_proba(*t, eps) for t in zip(y, x, w, pw)]
    if reduction == "none":
        return np.array(losses, dtype=np.float64).reshape(shape)
    total = math.fsum(losses)
    if reduction == "sum":
        return total
    denom = _denominator(reduction, w)
    if denom == 0.0:
        warnings.warn("mean of empty (or zero-weight) input", RuntimeWarning, stacklevel=2)
        return math.nan
    return total / denom


def bce_grad_reference(y_true, y_pred, *, from_logits=False, reduction="mean",
                       sample_weight=None, pos_weight=None, label_smoothing=0.0, eps=None):
    """Gradient of bce_reference w.r.t. y_pred, float64, broadcast shape."""
    _check_reduction(reduction)
    y, x, w, pw, eps, shape = _prepare(y_true, y_pred, sample_weight, pos_weight,
                                       label_smoothing, eps)
    if from_logits:
        grads = [_grad_logit(*t) for t in zip(y, x, w, pw)]
    else:
        grads = [_grad_proba(*t, eps) for t in zip(y, x, w, pw)]
    grad = np.array(grads, dtype=np.float64).reshape(shape)
    if reduction == "mean":
        denom = _denominator(reduction, w)
        grad = grad / denom if denom else np.full(shape, math.nan)
    return grad
