"""Custom binary cross-entropy objectives for XGBoost and LightGBM.

Each boosting round, the booster hands its raw scores (margins, logits) to
the objective, which returns the gradient and hessian of the loss with
respect to them. The objectives here compute both with
:func:`fastbce.grad_hess`: one fused, multithreaded pass, no temporaries,
exact for every margin (no NaN or overflow at +-inf). The loss is that of
``fastbce.bce(y, raw_score, from_logits=True, sample_weight=w,
pos_weight=pw, label_smoothing=a)``::

    grad = w * (c * s - pw * y)        hess = w * c * s * (1 - s)
    s = sigmoid(raw_score),  c = 1 + (pw - 1) * y,  y <- y * (1 - a) + a / 2

With 0/1 labels, no ``pos_weight`` and no ``label_smoothing`` this is the
built-in objective (XGBoost's ``binary:logistic``, LightGBM's ``binary``),
sample weights applied the same way (both multiply the gradient and the
hessian by the row's weight): the same trees, to float rounding. On top of
it: a ``pos_weight`` (a scalar or one per row), ``label_smoothing`` and soft
labels in [0, 1].

One object serves all four calling conventions: ``obj(raw_scores, dtrain)``
of ``xgboost.train`` and ``lightgbm.train`` (labels and weights are read from
the ``DMatrix`` / ``Dataset``) and ``obj(y_true, raw_scores,
sample_weight)`` of ``XGBClassifier(objective=...)`` and
``LGBMClassifier(objective=...)``. It holds plain values, so models that
carry it pickle and clone. Neither library is imported by fastbce.

XGBoost
-------
::

    import numpy as np, xgboost as xgb, fastbce.boosting

    params = {"objective": "binary:logistic",            # the link for predict()
              "base_score": np.average(y, weights=w)}    # the built-in's intercept
    booster = xgb.train(params, xgb.DMatrix(X, label=y, weight=w), 100,
                        obj=fastbce.boosting.xgboost_objective())
    proba = booster.predict(xgb.DMatrix(X_test))       # probabilities

    clf = xgb.XGBClassifier(n_estimators=100, base_score=np.average(y, weights=w),
                            objective=fastbce.boosting.xgboost_objective())
    clf.fit(X, y, sample_weight=w)
    proba = clf.predict_proba(X_test)[:, 1]

What to set, and why:

- ``base_score``: with a custom objective XGBoost does not estimate the
  intercept; it starts from ``base_score=0.5``. The built-in
  ``binary:logistic`` starts from the weighted mean label, in probability
  space (``logit`` of it as the margin): pass it as above.
- ``"objective": "binary:logistic"`` in ``xgb.train``'s params (which
  ``XGBClassifier`` sets by itself) makes ``base_score`` a probability and
  ``predict`` return probabilities, as with the built-in; the custom
  objective still computes the gradients. Left out, XGBoost falls back to
  ``reg:squarederror``: ``base_score`` is then a margin (use
  :func:`prior_logit`) and ``predict`` returns raw margins: turn them into
  probabilities with :func:`fastbce.sigmoid`.
- ``scale_pos_weight`` is ignored with a custom objective: pass
  ``pos_weight=`` here. XGBoost scales rows whose label is exactly 1; for
  0/1 labels that is the same gradient and hessian.
- XGBoost floors the built-in hessian at ``1e-16 * w``; fastbce's is exact
  (it reaches 0 only for ``w = 0`` or margins beyond about +-104 in float32).
  XGBoost passes float32 margins: the objective computes in float32.

LightGBM
--------
::

    import numpy as np, lightgbm as lgb, fastbce, fastbce.boosting

    init = fastbce.boosting.prior_logit(y, w)           # the built-in's start
    train = lgb.Dataset(X, y, weight=w, init_score=np.full(len(y), init))
    booster = lgb.train({"objective": fastbce.boosting.lightgbm_objective()}, train, 100)
    proba = fastbce.sigmoid(booster.predict(X_test) + init)

    clf = lgb.LGBMClassifier(n_estimators=100, objective=fastbce.boosting.lightgbm_objective())
    clf.fit(X, y, sample_weight=w, init_score=np.full(len(y), init))
    proba = fastbce.sigmoid(clf.predict(X_test, raw_score=True) + init)

What to set, and why:

- With a callable objective LightGBM runs objective ``"none"``: no
  ``boost_from_average``, so training starts from 0 unless the ``Dataset``
  (or ``fit``) gets an ``init_score``. The built-in ``binary`` starts from
  ``log(p / (1 - p))``, ``p`` the weighted fraction of positives (clipped to
  [1e-15, 1 - 1e-15]): :func:`prior_logit`. (Or train the built-in with
  ``boost_from_average=False`` and no ``init_score`` here.)
- ``init_score`` is not stored in the model and ``predict`` returns raw
  scores (``LGBMClassifier.predict_proba`` too, with a warning): add the
  initial score back and apply :func:`fastbce.sigmoid`.
- ``scale_pos_weight`` / ``is_unbalance`` are ignored with a callable
  objective: pass ``pos_weight=`` here (LightGBM's ``scale_pos_weight``
  multiplies the rows with label > 0: the same for 0/1 labels).
- LightGBM's ``binary`` treats every label > 0 as positive; fastbce uses
  the label's value (soft labels, like LightGBM's ``cross_entropy``).
"""
import math

import numpy as np

from ._api import grad_hess

__all__ = ["BCEObjective", "xgboost_objective", "lightgbm_objective", "prior_logit"]

# LightGBM's kEpsilon: the bound its binary objective clips the mean label to
_PRIOR_CLIP = 1e-15


class BCEObjective:
    """A gradient-boosting objective: the binary cross-entropy of the raw
    scores, gradient and hessian from :func:`fastbce.grad_hess`.

    Made by :func:`xgboost_objective` and :func:`lightgbm_objective` (the
    same class: either works with either library). Called as

    - ``obj(raw_scores, dataset)`` (``xgboost.train(obj=...)``,
      ``lightgbm.train(params={"objective": obj})``): the labels and weights
      come from ``dataset.get_label()`` and ``dataset.get_weight()``;
    - ``obj(y_true, raw_scores, sample_weight=None)`` (``XGBClassifier`` and
      ``LGBMClassifier(objective=obj)``, or by hand).

    Returns ``(grad, hess)`` in the raw scores' float dtype and shape.
    """

    def __init__(self, pos_weight=None, label_smoothing=0.0, *, num_threads=None):
        if pos_weight is not None:
            pos_weight = np.asarray(pos_weight)
            if pos_weight.ndim == 0:
                pos_weight = float(pos_weight)
        label_smoothing = float(label_smoothing)
        # checked now, by fastbce itself (its messages), rather than at the first round
        probe = np.zeros(np.shape(pos_weight) if isinstance(pos_weight, np.ndarray) else 1)
        grad_hess(probe, probe, label_smoothing=label_smoothing, pos_weight=pos_weight,
                  num_threads=num_threads)
        self.pos_weight = pos_weight
        self.label_smoothing = label_smoothing
        self.num_threads = num_threads

    def __call__(self, y_true_or_scores, scores_or_dataset, sample_weight=None):
        # LightGBM's scikit-learn wrapper counts the parameters (3: it passes
        # the weights, possibly None, positionally); XGBoost's looks for one
        # named sample_weight and passes it only when there are weights.
        if hasattr(scores_or_dataset, "get_label"):  # a DMatrix or a Dataset
            if sample_weight is not None:
                raise TypeError("sample_weight comes from the dataset: do not pass it too")
            dataset = scores_or_dataset
            return self.grad_hess(dataset.get_label(), y_true_or_scores, dataset.get_weight())
        return self.grad_hess(y_true_or_scores, scores_or_dataset, sample_weight)

    def grad_hess(self, y_true, raw_score, sample_weight=None):
        """``(grad, hess)`` of the objective at ``raw_score``."""
        raw = np.asarray(raw_score)
        y = np.asarray(y_true)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            if sample_weight.size == 0:  # XGBoost's "no weights"
                sample_weight = None
        # libraries hand labels over flat: give them the scores' shape
        # (weights are one per row: a column against (rows, targets) scores)
        if y.shape != raw.shape and y.size == raw.size:
            y = y.reshape(raw.shape)
        if sample_weight is not None and raw.ndim == 2 and sample_weight.shape == raw.shape[:1]:
            sample_weight = sample_weight[:, None]
        return grad_hess(y, raw, sample_weight=sample_weight, pos_weight=self.pos_weight,
                         label_smoothing=self.label_smoothing, num_threads=self.num_threads)

    def __repr__(self):
        pos_weight = self.pos_weight
        if isinstance(pos_weight, np.ndarray):
            pos_weight = f"<array of shape {pos_weight.shape}>"
        return (f"fastbce.boosting.BCEObjective(pos_weight={pos_weight}, "
                f"label_smoothing={self.label_smoothing}, num_threads={self.num_threads})")


def xgboost_objective(pos_weight=None, label_smoothing=0.0, *, num_threads=None):
    """A custom objective for XGBoost: ``xgb.train(params, dtrain,
    obj=xgboost_objective())`` or ``XGBClassifier(objective=xgboost_objective())``.

    Binary cross-entropy of the margins, as ``binary:logistic`` (see the
    module documentation for the ``base_score`` and ``objective`` to set).
    ``pos_weight`` (a scalar, or one per row) replaces XGBoost's
    ``scale_pos_weight``; ``label_smoothing`` as :func:`fastbce.bce`;
    ``num_threads`` for :func:`fastbce.grad_hess` (default: all cores).
    Labels and sample weights come from the ``DMatrix`` (or ``fit``).
    Returns a :class:`BCEObjective`.
    """
    return BCEObjective(pos_weight, label_smoothing, num_threads=num_threads)


def lightgbm_objective(pos_weight=None, label_smoothing=0.0, *, num_threads=None):
    """A custom objective for LightGBM: ``lgb.train({"objective":
    lightgbm_objective(), ...}, train_set)`` or
    ``LGBMClassifier(objective=lightgbm_objective())``.

    Binary cross-entropy of the raw scores, as ``objective="binary"`` (see
    the module documentation for the ``init_score`` to set, and for turning
    raw predictions into probabilities). ``pos_weight`` (a scalar, or one per
    row) replaces ``scale_pos_weight``; ``label_smoothing`` as
    :func:`fastbce.bce`; ``num_threads`` for :func:`fastbce.grad_hess`.
    Labels and weights come from the ``Dataset`` (or ``fit``). Returns a
    :class:`BCEObjective`.
    """
    return BCEObjective(pos_weight, label_smoothing, num_threads=num_threads)


def prior_logit(y_true, sample_weight=None, *, pos_weight=None, label_smoothing=0.0):
    """The best constant raw score: the logit where boosting should start.

    ``log(p / (1 - p))`` with ``p`` the weighted mean label, clipped to
    ``[1e-15, 1 - 1e-15]``: the start of LightGBM's ``binary`` objective
    (``boost_from_average``) and, as a margin, of XGBoost's
    ``binary:logistic`` (its ``base_score`` is ``p``). Use it as LightGBM's
    ``init_score`` (one per row), or as XGBoost's ``base_score`` when the
    params name no objective.

    With ``pos_weight`` / ``label_smoothing`` it is the minimizer of that
    objective, ``log(sum(w * pw * y) / sum(w * (1 - y)))`` (smoothed ``y``).
    The built-ins do otherwise (LightGBM ignores ``scale_pos_weight`` here,
    XGBoost approximates with one Newton step), so to reproduce them pass
    neither. Returns a Python float.
    """
    y = np.asarray(y_true, dtype=np.float64)
    if y.size == 0:
        raise ValueError("prior_logit of empty labels")
    if not ((y >= 0) & (y <= 1)).all():
        raise ValueError("labels must be in [0, 1]")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    y = y * (1.0 - label_smoothing) + label_smoothing / 2.0 if label_smoothing else y
    w = 1.0 if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if not np.all(w >= 0):
        raise ValueError("sample weights must be >= 0 (and not NaN)")
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    if not np.all(pw > 0):
        raise ValueError("pos_weight must be > 0 (and not NaN)")
    y, w, pw = np.broadcast_arrays(y, w, pw)
    positive = float(np.sum(w * pw * y))
    negative = float(np.sum(w * (1.0 - y)))
    if not positive + negative > 0:
        raise ValueError("the sum of sample_weight is zero")
    p = min(max(positive / (positive + negative), _PRIOR_CLIP), 1.0 - _PRIOR_CLIP)
    return math.log(p / (1.0 - p))
