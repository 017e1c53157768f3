"""fastbce.evaluate / Evaluator: the one-pass evaluation report (issue #5).

- the raw sums against the slow float64 oracle (tests/evaluate_oracle.py);
- every figure against scikit-learn on the same inputs (log_loss,
  brier_score_loss, accuracy_score, precision_recall_fscore_support,
  balanced_accuracy_score exactly to rounding; roc_auc_score and
  average_precision_score within the error bounds the report gives);
- groups, streaming (chunks, merges, pickling), empty and bad input.
"""
import json
import math
import pickle
import sys
import warnings

import numpy as np
import pytest

import fastbce
from fastbce._evaluate import (
    BIN_SUM_NAMES, SUM_NAMES, Evaluation, Evaluator, GroupEvaluations, _named_sums, _raw_sums,
    evaluate,
)
from evaluate_oracle import first_invalid_oracle, raw_sums_oracle

from conftest import RTOL_REDUCED

metrics = pytest.importorskip("sklearn.metrics")
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

RTOL = 1e-12
SCALARS = ("n", "weight_sum", "log_loss", "brier", "positive_rate", "mean_prediction", "threshold",
           "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "f1", "balanced_accuracy")
BINNED = ("roc_auc", "roc_auc_error_bound", "average_precision", "average_precision_error_bound",
          "ece")


# ---------------------------------------------------------------- helpers

def make_binary(n, seed=0, *, positive_rate=0.4, logits=False, soft=False):
    """Hard 0/1 int labels (soft floats with soft=True), probabilities (or logits), weights."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_rate).astype(np.int64)
    # informative predictions: positives higher on average
    score = rng.normal(0.0, 1.0, n) + 1.2 * y
    p = 1.0 / (1.0 + np.exp(-score))
    if soft:
        y = np.clip(y * 0.8 + rng.random(n) * 0.2, 0.0, 1.0)
    w = rng.random(n) * 2.0
    w[rng.random(n) < 0.05] = 0.0
    return y, (score if logits else p), w


def assert_figures_close(actual, expected, rtol=RTOL, names=SCALARS):
    """Every named figure of two Evaluations (or dicts) equal within rtol (nan == nan)."""
    for name in names:
        a = actual[name] if isinstance(actual, dict) else getattr(actual, name)
        e = expected[name] if isinstance(expected, dict) else getattr(expected, name)
        if isinstance(e, float) and math.isnan(e):
            assert math.isnan(a), (name, a, e)
        else:
            assert a == pytest.approx(e, rel=rtol, abs=1e-300), (name, a, e)


def assert_dicts_close(actual, expected, rtol=RTOL):
    """Nested to_dict() outputs equal within rtol (exactly with rtol=0), nan == nan."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_dicts_close(actual[key], expected[key], rtol)
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_dicts_close(a, e, rtol)
    elif isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual)
        elif rtol == 0:
            assert actual == expected
        else:
            assert actual == pytest.approx(expected, rel=rtol, abs=1e-15)
    else:
        assert actual == expected


def sklearn_figures(y, p, threshold=0.5, sample_weight=None):
    """The scikit-learn figures for hard labels and probabilities."""
    decided = (p >= threshold).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            y, decided, average="binary", sample_weight=sample_weight, zero_division="warn")
        balanced = metrics.balanced_accuracy_score(y, decided, sample_weight=sample_weight)
    (tn, fp), (fn, tp) = metrics.confusion_matrix(y, decided, labels=[0, 1],
                                                  sample_weight=sample_weight)
    return dict(
        log_loss=metrics.log_loss(y, p, sample_weight=sample_weight, labels=[0, 1]),
        brier=metrics.brier_score_loss(y, p, sample_weight=sample_weight, labels=[0, 1]),
        accuracy=metrics.accuracy_score(y, decided, sample_weight=sample_weight),
        precision=float(precision), recall=float(recall), f1=float(f1),
        balanced_accuracy=float(balanced), tp=float(tp), fp=float(fp), tn=float(tn), fn=float(fn),
        positive_rate=float(np.average(y, weights=sample_weight)),
        mean_prediction=float(np.average(p, weights=sample_weight)),
        weight_sum=float(len(y) if sample_weight is None else np.sum(sample_weight)),
    )


# ---------------------------------------------------------------- the raw sums

RAW_CASES = {
    "plain": {},
    "weights": {"weights": True},
    "pos_weight_scalar": {"pos_weight": 2.5},
    "pos_weight_array": {"pos_weight": "array"},
    "groups": {"groups": 5},
    "bins": {"bins": 7},
    "everything": {"weights": True, "pos_weight": "array", "groups": 4, "bins": 10},
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
@pytest.mark.parametrize("case", list(RAW_CASES))
def test_raw_sums_match_oracle(case, from_logits, dtype):
    spec = RAW_CASES[case]
    n = 2000
    rng = np.random.default_rng(7)
    y, pred, w = make_binary(n, seed=3, logits=from_logits, soft=True)
    y[:300] = np.round(y[:300])
    pred = pred.astype(dtype)
    if not from_logits:
        pred[:20] = 0.0
        pred[20:40] = 1.0
    weights = w if spec.get("weights") else None
    pos_weights = None
    if spec.get("pos_weight") == "array":
        pos_weights = rng.uniform(0.25, 4.0, n)
    elif spec.get("pos_weight") is not None:
        pos_weights = np.asarray(spec["pos_weight"], dtype=np.float64)
    n_groups = spec.get("groups", 1)
    codes = rng.integers(0, n_groups, n).astype(np.int64) if "groups" in spec else None
    keywords = dict(from_logits=from_logits, eps=float(np.finfo(dtype).eps), threshold=0.4,
                    codes=codes, n_groups=n_groups, bins=spec.get("bins"))
    actual = _raw_sums(y, pred, weights, pos_weights, num_threads=None, **keywords)
    expected = raw_sums_oracle(y, pred, weights, pos_weights, **keywords)
    assert sorted(actual) == sorted(expected)
    for name in expected:
        assert actual[name].dtype == np.float64 and actual[name].shape == expected[name].shape, name
        np.testing.assert_allclose(actual[name], expected[name], rtol=RTOL_REDUCED[np.dtype(dtype)],
                                   atol=1e-300, err_msg=name)


def test_raw_sums_across_blocks_match_oracle():
    # more elements than one block of the implementation (2^16 for NumPy, 2^14 for the kernel)
    n = 70_001
    y, p, w = make_binary(n, seed=11, soft=True)
    codes = (np.arange(n) % 3).astype(np.int64)
    keywords = dict(from_logits=False, eps=1e-7, threshold=0.5, codes=codes, n_groups=3, bins=4)
    actual = _raw_sums(y, p, w, None, num_threads=None, **keywords)
    expected = raw_sums_oracle(y, p, w, None, **keywords)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_paths_equal_the_general_one_bit_for_bit(from_logits, dtype):
    """0/1 labels with a scalar pos_weight take their own loops: without
    weights (the counts added up as integers), with sample weights, with
    groups, with both; a pos_weight array of the same value takes the
    general ones.
    The sums are the same to the last bit, with bins, infinite logits,
    probabilities of exactly 0 and 1 and zero weights, over several blocks;
    with a chunk of soft labels among binary ones (the general loops in
    both), to rounding where there are no weights ("below" is then weight -
    above, not compared, and the counts are added in another order)."""
    rng = np.random.default_rng(11)
    n = 3 * 16384 + 517
    y = (rng.random(n) < 0.3).astype(np.float64)
    p = rng.random(n)
    p[[5, 40000]] = [0.0, 1.0]
    y[[5, 40000]] = [0.0, 1.0]
    p = p.astype(dtype)
    if from_logits:
        with np.errstate(divide="ignore"):
            p = np.log(p / (1 - p)).astype(dtype)  # (0 and 1: -inf and inf)
    soft = y.copy()
    soft[20000:20300] = rng.random(300)  # that chunk takes the general loops
    codes = rng.integers(0, 5, n)
    weights = rng.random(n).astype(dtype)
    weights[[7, 30000]] = 0
    ones = np.ones(n, dtype)
    scalar, array = np.asarray(2.5), np.full(n, 2.5, dtype)
    keywords = dict(from_logits=from_logits, eps=1e-7, threshold=0.3, num_threads=2)
    for labels, soft_labels in ((y, False), (soft, True)):
        for bins in (None, 7):
            for w in (None, ones, weights):
                binary = _raw_sums(labels, p, w, scalar, codes=None, n_groups=1, bins=bins, **keywords)
                general = _raw_sums(labels, p, ones if w is None else w, array, codes=None, n_groups=1,
                                    bins=bins, **keywords)
                rtol = 1e-15 if soft_labels and w is None else 0
                for name in binary:
                    if not (rtol and name == "below"):
                        np.testing.assert_allclose(binary[name], general[name], rtol=rtol, atol=0,
                                                   err_msg=f"weights {w is not None}: {name}")
            # with groups: the same sums per group, to the last bit, soft
            # labels included (but "below" without weights: weight - above,
            # against a sum of its own with weights of one); with weights
            # too, an infinite one included (its chunk takes the general
            # loops, whose other-class terms are then NaN)
            grouped = [_raw_sums(labels, p, w, pw, codes=codes, n_groups=5, bins=bins, **keywords)
                       for w, pw in ((None, scalar), (None, array), (ones, array))]
            for name in grouped[0]:
                for other in grouped[1:]:
                    if soft_labels and name == "below" and other is grouped[2]:
                        np.testing.assert_allclose(grouped[0][name], other[name], rtol=1e-12, atol=0,
                                                   err_msg=f"groups: {name}")
                    else:
                        np.testing.assert_array_equal(grouped[0][name], other[name], err_msg=f"groups: {name}")
            infinite = weights.copy()
            infinite[12345] = np.inf
            for w in (weights, infinite):
                binary, general = (_raw_sums(labels, p, w, pw, codes=codes, n_groups=5, bins=bins, **keywords)
                                   for pw in (scalar, array))
                for name in binary:
                    np.testing.assert_array_equal(binary[name], general[name],
                                                  err_msg=f"weighted groups: {name}")


def test_raw_sums_names():
    y, p, _ = make_binary(10)
    sums = _raw_sums(y, p, None, None, from_logits=False, eps=1e-7, threshold=0.5, codes=None,
                     n_groups=1, bins=3, num_threads=1)
    assert set(sums) == set(SUM_NAMES) | set(BIN_SUM_NAMES)
    assert sums["count"].shape == (1, 2) and sums["bin_weight"].shape == (1, 3, 2)


def test_raw_sums_infinite_logits_are_limits_not_nan():
    y = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    x = np.array([-np.inf, np.inf, np.inf, -np.inf, 3.0])
    sums = _raw_sums(y[:2], x[:2], None, None, from_logits=True, eps=1e-7, threshold=0.5,
                     codes=None, n_groups=1, bins=2, num_threads=1)
    assert np.array_equal(sums["loss"], [[0.0, 0.0]])
    sums = _raw_sums(y, x, None, None, from_logits=True, eps=1e-7, threshold=0.5,
                     codes=None, n_groups=1, bins=2, num_threads=1)
    assert np.isinf(sums["loss"]).all() and not np.isnan(sums["loss"]).any()


@pytest.mark.parametrize("operand", ["y_true", "y_pred", "sample_weight", "pos_weight"])
def test_raw_sums_names_first_invalid_element_like_oracle(operand):
    n = 100
    y, p, w = make_binary(n, seed=5)
    y, p, w, pw = y.astype(float), p.copy(), w.copy(), np.ones(n)
    arrays = {"y_true": y, "y_pred": p, "sample_weight": w, "pos_weight": pw}
    arrays[operand][[70, 40]] = [-1.0, np.nan]
    arrays["y_true"][90] = 2.0  # a later bad label does not count
    index, name = first_invalid_oracle(y, p, w, pw)
    assert (index, name) == (40, operand)
    with pytest.raises(ValueError, match=rf"^{operand}\[40\] = nan: "):
        _raw_sums(y, p, w, pw, from_logits=False, eps=1e-7, threshold=0.5, codes=None,
                  n_groups=1, bins=None, num_threads=1)


# ---------------------------------------------------------------- log loss == bce

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
@pytest.mark.parametrize("keywords", ["plain", "sample_weight", "pos_weight", "pos_weight_array",
                                      "eps", "all"])
def test_log_loss_equals_bce(keywords, from_logits, dtype):
    y, pred, w = make_binary(5000, seed=1, logits=from_logits, soft=True)
    pred = pred.astype(dtype)
    pw = np.random.default_rng(2).uniform(0.25, 4.0, y.shape)
    kw = {"plain": {}, "sample_weight": {"sample_weight": w}, "pos_weight": {"pos_weight": 3.0},
          "pos_weight_array": {"pos_weight": pw}, "eps": {"eps": 1e-3},
          "all": {"sample_weight": w, "pos_weight": pw, "eps": 1e-4}}[keywords]
    expected = fastbce.bce(y, pred, from_logits=from_logits, **kw)
    ev = evaluate(y, pred, from_logits=from_logits, **kw)
    # bce computes float32 predictions in float32
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    assert ev.log_loss == pytest.approx(expected, rel=rtol)


def test_log_loss_equals_bce_nd_and_broadcast():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (50, 4)).astype(np.uint8)
    p = rng.random((50, 4))
    w = rng.random(4)
    pw = np.array([1.0, 2.0, 0.5, 3.0])
    ev = evaluate(y, p, sample_weight=w, pos_weight=pw)
    assert ev.n == 200
    assert ev.log_loss == pytest.approx(fastbce.bce(y, p, sample_weight=w, pos_weight=pw), rel=1e-13)
    flat = evaluate(y.ravel(), p.ravel(), sample_weight=np.tile(w, 50), pos_weight=np.tile(pw, 50))
    assert_figures_close(ev, flat)
    # non-contiguous views read as one flat population too
    assert_figures_close(evaluate(y.T, p.T), evaluate(y.T.ravel(), p.T.ravel()))


def test_pos_weight_affects_only_the_log_loss():
    y, p, w = make_binary(1000, seed=4)
    plain = evaluate(y, p, sample_weight=w, bins=5)
    weighted = evaluate(y, p, sample_weight=w, bins=5, pos_weight=4.0)
    assert weighted.log_loss > plain.log_loss
    assert_figures_close(weighted, plain, names=[n for n in SCALARS + BINNED if n != "log_loss"],
                         rtol=0)


# ---------------------------------------------------------------- against scikit-learn

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_figures_match_sklearn(weighted, threshold):
    y, p, w = make_binary(3000, seed=2)
    sw = w if weighted else None
    ev = evaluate(y, p, threshold=threshold, sample_weight=sw)
    assert ev.n == 3000
    assert_figures_close(ev, sklearn_figures(y, p, threshold, sw), rtol=1e-12,
                         names=[n for n in SCALARS if n not in ("n", "threshold")])
    assert ev.threshold == threshold
    assert np.array_equal(ev.confusion_matrix, [[ev.tn, ev.fp], [ev.fn, ev.tp]])


@pytest.mark.parametrize("class_weight", [{0: 0.3, 1: 2.0}, {1: 5.0}, "balanced"],
                         ids=["both", "missing_class", "balanced"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_class_weight_is_sklearn_sample_weight_times_class_weight(class_weight, weighted):
    y, p, w = make_binary(2000, seed=6, positive_rate=0.2)
    if class_weight == "balanced":
        per_sample = compute_sample_weight("balanced", y)
    else:
        per_sample = np.where(y == 1, class_weight.get(1, 1.0), class_weight.get(0, 1.0))
    sw = per_sample * (w if weighted else 1.0)
    ev = evaluate(y, p, sample_weight=w if weighted else None, class_weight=class_weight)
    assert_figures_close(ev, sklearn_figures(y, p, 0.5, sw), rtol=1e-12,
                         names=[n for n in SCALARS if n not in ("n", "threshold")])


def test_balanced_class_weight_with_one_class_present_weighs_one():
    # scikit-learn: n / (n_classes present * count) = 1 with one class
    y = np.ones(10, dtype=int)
    p = np.linspace(0.05, 0.95, 10)
    ev = evaluate(y, p, class_weight="balanced")
    assert ev.weight_sum == 10.0 and ev.tp + ev.fn == 10.0


@pytest.mark.parametrize("case", ["no_predicted_positives", "no_positives", "no_negatives",
                                  "nothing_positive", "all_correct"])
def test_zero_division_is_sklearns_default_value_without_warning(case):
    y, p, _ = make_binary(200, seed=9)
    threshold = 0.5
    if case == "no_predicted_positives":
        threshold = 1.0
    elif case == "no_positives":
        y = np.zeros_like(y)
    elif case == "no_negatives":
        y = np.ones_like(y)
    elif case == "nothing_positive":
        y, threshold = np.zeros_like(y), 1.0
    elif case == "all_correct":
        p = y * 0.8 + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = evaluate(y, p, threshold=threshold)
    assert_figures_close(ev, sklearn_figures(y, p, threshold), rtol=1e-12,
                         names=["accuracy", "precision", "recall", "f1", "balanced_accuracy",
                                "log_loss", "brier"])


def test_soft_labels_split_into_class_parts():
    rng = np.random.default_rng(8)
    y, p, w = rng.random(500), rng.random(500), rng.random(500)
    ev = evaluate(y, p, sample_weight=w, threshold=0.6)
    assert ev.positive_rate == pytest.approx(np.average(y, weights=w), rel=1e-13)
    # the expected Brier score of a Bernoulli(y) outcome
    assert ev.brier == pytest.approx(np.average((y - p) ** 2 + y * (1 - y), weights=w), rel=1e-12)
    above = p >= 0.6
    assert ev.tp == pytest.approx(np.sum(w * y * above), rel=1e-13)
    assert ev.fp == pytest.approx(np.sum(w * (1 - y) * above), rel=1e-13)
    assert ev.fn == pytest.approx(np.sum(w * y * ~above), rel=1e-13)
    assert ev.tn == pytest.approx(np.sum(w * (1 - y) * ~above), rel=1e-13)


def test_logits_figures_use_sigmoid():
    y, x, w = make_binary(2000, seed=10, logits=True)
    p = 1.0 / (1.0 + np.exp(-x))
    from_logits = evaluate(y, x, from_logits=True, sample_weight=w, bins=8)
    from_proba = evaluate(y, p, sample_weight=w, bins=8)
    assert from_logits.log_loss == pytest.approx(
        fastbce.bce(y, x, from_logits=True, sample_weight=w), rel=1e-13)
    assert_figures_close(from_logits, from_proba, rtol=1e-12,
                         names=[n for n in SCALARS + BINNED if n != "log_loss"])


# ---------------------------------------------------------------- bins

@pytest.mark.parametrize("bins", [1, 5, 20, 1000])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_roc_auc_and_average_precision_within_reported_bounds(bins, weighted):
    y, p, w = make_binary(4000, seed=12)
    sw = w if weighted else None
    ev = evaluate(y, p, sample_weight=sw, bins=bins)
    exact_auc = metrics.roc_auc_score(y, p, sample_weight=sw)
    exact_ap = metrics.average_precision_score(y, p, sample_weight=sw)
    assert 0 <= ev.roc_auc_error_bound <= 0.5
    assert abs(ev.roc_auc - exact_auc) <= ev.roc_auc_error_bound + 1e-12
    assert abs(ev.average_precision - exact_ap) <= ev.average_precision_error_bound + 1e-12
    # the bound is the same-bin pair fraction / 2
    P, N = ev.bin_positives, ev.bin_negatives
    assert ev.roc_auc_error_bound == pytest.approx(0.5 * np.sum(P * N) / (P.sum() * N.sum()), rel=1e-12)


def test_fine_bins_give_the_exact_roc_auc():
    y, p, w = make_binary(3000, seed=13)
    ev = evaluate(y, p, sample_weight=w, bins=1 << 20)
    assert ev.roc_auc_error_bound < 1e-3
    assert ev.roc_auc == pytest.approx(metrics.roc_auc_score(y, p, sample_weight=w), abs=1e-3)


def test_predictions_tied_within_bins_give_sklearns_exact_values():
    # all predictions of a bin equal: sklearn sees the same ties as the bins
    rng = np.random.default_rng(14)
    bins = 10
    y = rng.integers(0, 2, 3000)
    index = rng.integers(0, bins, 3000)
    index = np.where(y == 1, np.maximum(index, rng.integers(0, bins, 3000)), index)
    p = ((np.arange(bins) + 0.5) / bins)[index]
    w = rng.random(3000)
    ev = evaluate(y, p, sample_weight=w, bins=bins)
    assert ev.roc_auc_error_bound > 0.01
    assert ev.roc_auc == pytest.approx(metrics.roc_auc_score(y, p, sample_weight=w), rel=1e-12)
    assert ev.average_precision == pytest.approx(
        metrics.average_precision_score(y, p, sample_weight=w), rel=1e-12)


def test_bins_without_positives_or_negatives():
    p = np.linspace(0.01, 0.99, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        no_pos = evaluate(np.zeros(50, int), p, bins=4)
        no_neg = evaluate(np.ones(50, int), p, bins=4)
    # as scikit-learn: AUC undefined (nan), AP 0 without positives
    assert math.isnan(no_pos.roc_auc) and math.isnan(no_neg.roc_auc)
    assert no_pos.average_precision == 0.0
    assert no_neg.average_precision == 1.0


def test_bin_edges_and_assignment():
    p = np.array([0.0, 0.1, 0.2499, 0.25, 0.5, 0.75, 0.9999, 1.0])
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    ev = evaluate(y, p, bins=4)
    assert ev.bin_edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ev.bin_positives.tolist() == [1.0, 1.0, 0.0, 2.0]   # 0.1 | 0.25 | - | 0.75, 1.0
    assert ev.bin_negatives.tolist() == [2.0, 0.0, 1.0, 1.0]   # 0.0, 0.2499 | - | 0.5 | 0.9999
    assert not ev.bin_edges.flags.writeable


def test_reliability_curve_and_ece_match_sklearn_calibration_curve():
    y, p, _ = make_binary(3000, seed=15)
    p[:100] = p[:100] * 0.1   # a crowded first bin
    p = np.where((p > 0.6) & (p < 0.7), 0.55, p)   # an empty bin
    ev = evaluate(y, p, bins=10)
    prob_true, prob_pred = __import__("sklearn.calibration", fromlist=["x"]).calibration_curve(
        y, p, n_bins=10, strategy="uniform")
    assert 6 not in ev.reliability.bin.tolist()
    np.testing.assert_allclose(ev.reliability.observed_rate, prob_true, rtol=1e-12)
    np.testing.assert_allclose(ev.reliability.mean_predicted, prob_pred, rtol=1e-12)
    bin_of = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bin_of == k].mean() - y[bin_of == k].mean()) * np.mean(bin_of == k)
              for k in np.unique(bin_of))
    assert ev.ece == pytest.approx(ece, rel=1e-12)
    assert ev.reliability.weight.sum() == 3000


def test_threshold_table_matches_evaluate_at_each_edge():
    y, p, w = make_binary(2000, seed=16)
    bins = 8
    ev = evaluate(y, p, sample_weight=w, bins=bins)
    table = ev.threshold_table
    assert table.threshold.tolist() == [k / bins for k in range(bins + 1)]
    for k, t in enumerate(table.threshold):
        at = evaluate(y, p, sample_weight=w, threshold=float(t))
        for name in ("tp", "fp", "tn", "fn", "precision", "recall", "f1", "accuracy"):
            assert getattr(table, name)[k] == pytest.approx(getattr(at, name), rel=1e-12, abs=1e-12), (k, name)
        assert table.fpr[k] == pytest.approx(at.fp / (at.fp + at.tn), rel=1e-12, abs=1e-12)
    assert table.recall[0] == 1.0 and table.tp[-1] == 0.0


# ---------------------------------------------------------------- groups

@pytest.mark.parametrize("kind", ["int", "negative_int", "int32", "strided_int", "gapped_int", "wide_int",
                                  "sparse_int", "str", "float", "bool"])
def test_groups_equal_per_group_sklearn(kind):
    """Every kind of group value; integers with gaps (absent values between
    the smallest and the largest: their rows are dropped after the pass),
    spanning more values than _MAX_DENSE_GROUPS (coded by a bincount), or
    sparse (by a sort) included."""
    rng = np.random.default_rng(17)
    n = 3000
    y, p, w = make_binary(n, seed=18)
    codes = rng.integers(0, 4, n)
    groups = {"int": codes, "negative_int": codes - 2, "int32": (codes - 9).astype(np.int32),
              "strided_int": np.repeat(codes, 2)[::2], "gapped_int": codes * 3 - 5, "wide_int": codes * 700,
              "sparse_int": codes * 10**12,
              "str": np.array(["north", "south", "east", "west"])[codes],
              "float": codes * 0.5, "bool": codes % 2 == 0}[kind]
    ev = evaluate(y, p, sample_weight=w, groups=groups, bins=6)
    values = np.unique(groups).tolist()
    assert isinstance(ev.groups, GroupEvaluations)
    assert list(ev.groups) == values and len(ev.groups) == len(values)
    for value in values:
        mask = groups == value
        group = ev.groups[value]
        assert group.group == value and group.groups is None
        assert group.n == mask.sum()
        assert_figures_close(group, sklearn_figures(y[mask], p[mask], 0.5, w[mask]), rtol=1e-12,
                             names=[n for n in SCALARS if n not in ("n", "threshold")])
        assert_figures_close(group, evaluate(y[mask], p[mask], sample_weight=w[mask], bins=6),
                             names=SCALARS + BINNED)
    assert_figures_close(ev, evaluate(y, p, sample_weight=w, bins=6), names=SCALARS + BINNED)
    assert ev.group is None


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_range_of_group_codes_is_numpys_min_and_max(dtype):
    """The one-pass range of integer group codes (fastbce/_evaluate.py), at
    the dtype's extremes, anywhere in the array, for one element."""
    from fastbce import _kernels
    if _kernels.integer_range is None:
        pytest.skip("an in-place build older than integer_range")
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    for values in (np.array([7], dtype), rng.integers(-50, 50, 10_001).astype(dtype),
                   np.array([0, info.max, 3, info.min, -1], dtype), np.arange(100_000, dtype=dtype)[::-1].copy()):
        assert _kernels.integer_range(values) == (values.min(), values.max())
    with pytest.raises(TypeError, match="int32 or int64"):
        _kernels.integer_range(np.arange(3, dtype=np.uint64))


def test_groups_lookup_by_numpy_scalar_and_missing_group():
    ev = evaluate([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.1], groups=[3, 3, 5, 5])
    assert ev.groups[np.int64(5)] is ev.groups[5]
    with pytest.raises(KeyError, match="no group 4"):
        ev.groups[4]


def test_figures_of_many_rows_equal_row_by_row_bit_for_bit(monkeypatch):
    """Many groups' figures come from NumPy over the table's columns, a few
    groups' from Python floats row by row (fastbce/_evaluate.py, _figures):
    the same values bit for bit, edge rows (no weight, one class, infinite
    sums) included."""
    from fastbce import _evaluate
    rng = np.random.default_rng(40)
    table = rng.random((60, _evaluate._N_SUM_COLUMNS)) * rng.choice([0.0, 1e-300, 1.0, 1e300], (60, 1))
    table[:, :2] = rng.integers(0, 10**6, (60, 2))   # the counts: whole numbers
    table[1] = 0.0
    table[2, 1::2] = 0.0                      # no positives
    table[3, 0::2] = 0.0                      # no negatives
    table[4, 2:4] = np.inf                    # infinite weights
    table[5, :2] = (0.75, 0.95)               # soft labels' counts: n rounds to nearest
    table[6, :2] = (1.25, 1.25)               # ... and halves to even
    table[7] = 1.0
    table[7, 10] = np.inf                     # infinite negatives above the threshold
    for class_weight in ((1.0, 1.0), (0.25, 3.0), (0.0, 1.0)):
        for threshold in (0.5, 0.0):
            monkeypatch.setattr(_evaluate, "_FEW_ROWS", 0)
            figures_of, weight_sums = _evaluate._figure_rows(table, class_weight, threshold)
            by_columns = [figures_of(k) for k in range(len(table))]
            monkeypatch.setattr(_evaluate, "_FEW_ROWS", len(table))
            figures_of, expected_sums = _evaluate._figure_rows(table, class_weight, threshold)
            by_rows = [figures_of(k) for k in range(len(table))]
            np.testing.assert_array_equal(weight_sums, expected_sums)
            for columns, rows in zip(by_columns, by_rows):
                assert list(columns) == list(rows)
                for name in rows:
                    assert type(columns[name]) is type(rows[name]), name
                    assert (columns[name] == rows[name]
                            or (math.isnan(columns[name]) and math.isnan(rows[name]))), name


def test_many_groups_are_made_when_read_and_equal_a_few_groups_report(monkeypatch):
    from fastbce import _evaluate
    y, p, w = make_binary(6000, seed=41)
    groups = np.arange(6000) % 150
    w[groups == 7] = 0.0
    y[groups == 8] = 1
    keywords = dict(sample_weight=w, class_weight={0: 0.5, 1: 2.0}, groups=groups, bins=7)
    with pytest.warns(RuntimeWarning, match=r"1 group\(s\) with zero total weight \(7\)"):
        ev = evaluate(y, p, **keywords)
    assert 150 > _evaluate._FEW_ROWS
    made = lambda: sum(type(report) is not int for report in ev.groups._evaluations.values())
    assert made() == 0
    assert "more groups" in repr(ev) and made() == 2 * Evaluation._REPR_MAX_GROUPS // 2
    assert ev.groups[100] is ev.groups[100] and ev.groups[100].group == 100
    monkeypatch.setattr(_evaluate, "_FEW_ROWS", 10**9)
    with pytest.warns(RuntimeWarning, match="zero total weight"):
        row_by_row = evaluate(y, p, **keywords)
    assert_dicts_close(ev.to_dict(), row_by_row.to_dict(), rtol=0)
    assert made() == 150
    assert_dicts_close(pickle.loads(pickle.dumps(ev)).to_dict(), row_by_row.to_dict(), rtol=0)
    mask = groups == 11
    alone = evaluate(y[mask], p[mask], sample_weight=w[mask], class_weight={0: 0.5, 1: 2.0}, bins=7)
    assert_figures_close(ev.groups[11], alone, names=SCALARS + BINNED)
    fresh = evaluate(y, p, **dict(keywords, sample_weight=None))
    assert [value for value in fresh.groups] == list(range(150))
    assert [report.group for report in fresh.groups.values()] == list(range(150))
    assert isinstance(pickle.loads(pickle.dumps(fresh.groups)), GroupEvaluations)
    # threads reading the same groups at once get one report per group
    from concurrent.futures import ThreadPoolExecutor
    shared = evaluate(y, p, **dict(keywords, sample_weight=None))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: a race would show
    try:
        with ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(lambda k: [shared.groups[value] for value in range(150)], range(8)))
    finally:
        sys.setswitchinterval(interval)
    assert all(all(a is b for a, b in zip(seen[0], other)) for other in seen[1:])


def test_class_weight_balanced_per_group_uses_overall_counts():
    y, p, w = make_binary(2000, seed=19, positive_rate=0.15)
    groups = np.arange(2000) % 3
    ev = evaluate(y, p, sample_weight=w, class_weight="balanced", groups=groups)
    sw = compute_sample_weight("balanced", y) * w
    for value in range(3):
        mask = groups == value
        assert_figures_close(ev.groups[value], sklearn_figures(y[mask], p[mask], 0.5, sw[mask]),
                             names=["log_loss", "brier", "accuracy", "precision", "recall", "f1",
                                    "balanced_accuracy", "tp", "fp", "tn", "fn", "weight_sum"])


def test_groups_broadcast_against_the_inputs():
    rng = np.random.default_rng(20)
    y, p = rng.integers(0, 2, (30, 3)), rng.random((30, 3))
    rows = np.repeat([[0], [1], [2]], 10, axis=0)   # (30, 1): one group per row
    ev = evaluate(y, p, groups=rows)
    assert ev.groups[1].n == 30
    assert_figures_close(ev.groups[1], evaluate(y[10:20], p[10:20]))
    with pytest.raises(ValueError, match="shapes do not broadcast together.*groups"):
        evaluate(y, p, groups=np.zeros(30))


def test_groups_with_nan_rejected():
    with pytest.raises(ValueError, match="NaN"):
        evaluate([0, 1], [0.3, 0.6], groups=[1.0, np.nan])


# ---------------------------------------------------------------- streaming

def chunked(evaluator, y, p, w, groups, sizes):
    start = 0
    for size in sizes:
        stop = start + size
        evaluator.update(y[start:stop], p[start:stop],
                         sample_weight=None if w is None else w[start:stop],
                         groups=None if groups is None else groups[start:stop])
        start = stop
    assert start == len(y)
    return evaluator


SETTINGS = dict(threshold=0.4, bins=12, class_weight="balanced", pos_weight=1.5)


@pytest.mark.parametrize("grouped", [False, True], ids=["ungrouped", "grouped"])
def test_chunks_give_the_one_call_report(grouped):
    n = 5000
    y, p, w = make_binary(n, seed=21)
    # groups first seen in different chunks: "c" only in the last ones
    groups = np.where(np.arange(n) < 3000, np.array(["a", "b"])[np.arange(n) % 2], "c") if grouped else None
    one = evaluate(y, p, sample_weight=w, groups=groups, **SETTINGS)
    streamed = chunked(Evaluator(**SETTINGS), y, p, w, groups, [1000, 0, 1, 2499, 1500]).result()
    assert_dicts_close(streamed.to_dict(), one.to_dict(), rtol=1e-12)
    if grouped:
        assert list(streamed.groups) == ["a", "b", "c"]


def test_same_chunking_is_bit_identical():
    y, p, w = make_binary(4000, seed=22)
    groups = np.arange(4000) % 5
    sizes = [700, 1300, 2000]
    first = chunked(Evaluator(**SETTINGS), y, p, w, groups, sizes).result().to_dict()
    second = chunked(Evaluator(**SETTINGS), y, p, w, groups, sizes).result().to_dict()
    assert_dicts_close(first, second, rtol=0)


def test_merge_order_and_group_alignment():
    y, p, w = make_binary(6000, seed=23)
    groups = np.random.default_rng(24).choice([7, 3, 11, 5], 6000)
    parts = [slice(0, 2000), slice(2000, 4500), slice(4500, 6000)]
    # part 0 has no group 11: slots differ between the accumulators
    groups[parts[0]] = np.where(groups[parts[0]] == 11, 3, groups[parts[0]])
    one = evaluate(y, p, sample_weight=w, groups=groups, **SETTINGS).to_dict()

    def part(i):
        s = parts[i]
        return Evaluator(**SETTINGS).update(y[s], p[s], sample_weight=w[s], groups=groups[s])

    for order in [(0, 1, 2), (2, 0, 1), (1, 2, 0)]:
        merged = part(order[0])
        for i in order[1:]:
            assert merged.merge(part(i)) is merged
        assert_dicts_close(merged.result().to_dict(), one, rtol=1e-12)
    # merging two is commutative to the bit
    assert_dicts_close(part(0).merge(part(1)).result().to_dict(),
                       part(1).merge(part(0)).result().to_dict(), rtol=0)
    # an empty accumulator merges as nothing
    assert_dicts_close(Evaluator(**SETTINGS).merge(part(2)).result().to_dict(),
                       part(2).merge(Evaluator(**SETTINGS)).result().to_dict(), rtol=0)


@pytest.mark.parametrize("setting", [dict(threshold=0.5), dict(bins=11), dict(class_weight=None),
                                     dict(pos_weight=2.0), dict(eps=1e-3), dict(from_logits=True)])
def test_merge_rejects_other_settings(setting):
    with pytest.raises(ValueError, match="different settings: " + next(iter(setting))):
        Evaluator(**SETTINGS).merge(Evaluator(**{**SETTINGS, **setting}))
    with pytest.raises(TypeError):
        Evaluator().merge(object())


def test_grouped_and_ungrouped_updates_do_not_mix():
    evaluator = Evaluator().update([0, 1], [0.2, 0.8], groups=["a", "b"])
    with pytest.raises(ValueError, match="groups="):
        evaluator.update([0, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="groups="):
        Evaluator().update([0, 1], [0.2, 0.8]).merge(evaluator)
    with pytest.raises(TypeError, match="cannot be sorted together"):
        evaluator.update([0, 1], [0.2, 0.8], groups=[1, 2])


def test_pickle_roundtrip_mid_stream():
    y, p, w = make_binary(3000, seed=25)
    groups = np.arange(3000) % 4
    evaluator = Evaluator(**SETTINGS).update(y[:1000], p[:1000], sample_weight=w[:1000],
                                             groups=groups[:1000])
    revived = pickle.loads(pickle.dumps(evaluator))
    for e in (evaluator, revived):
        e.update(y[1000:], p[1000:], sample_weight=w[1000:], groups=groups[1000:])
    assert_dicts_close(revived.result().to_dict(), evaluator.result().to_dict(), rtol=0)
    report = evaluator.result()
    again = pickle.loads(pickle.dumps(report))
    assert isinstance(again, Evaluation)
    assert_dicts_close(again.to_dict(), report.to_dict(), rtol=0)


def test_unpickles_an_evaluator_pickled_with_sums_by_name():
    # Evaluators pickled before the sums were one table kept them as a dict of arrays by name
    y, p, w = make_binary(2000, seed=29)
    groups = np.arange(2000) % 3
    evaluator = Evaluator(**SETTINGS).update(y[:1500], p[:1500], sample_weight=w[:1500],
                                             groups=groups[:1500])
    state = dict(evaluator.__dict__)
    state["_sums"] = {name: view.copy() for name, view in _named_sums(state.pop("_table"), 12).items()}
    legacy = Evaluator.__new__(Evaluator)
    legacy.__setstate__(state)
    for e in (evaluator, legacy):
        e.update(y[1500:], p[1500:], sample_weight=w[1500:], groups=groups[1500:])
    assert_dicts_close(legacy.result().to_dict(), evaluator.result().to_dict(), rtol=0)


def test_report_is_not_changed_by_later_updates():
    # the bins-derived figures are computed when first read: after these updates
    y, p, w = make_binary(3000, seed=30)
    for groups in (None, np.arange(3000) % 3, np.arange(3000) % 40):  # (40: the figures by columns)
        evaluator = Evaluator(bins=8)
        evaluator.update(y[:1000], p[:1000], sample_weight=w[:1000],
                         groups=None if groups is None else groups[:1000])
        report = evaluator.result()
        evaluator.update(y[1000:], p[1000:], sample_weight=w[1000:],
                         groups=None if groups is None else groups[1000:])
        alone = evaluate(y[:1000], p[:1000], sample_weight=w[:1000], bins=8,
                         groups=None if groups is None else groups[:1000])
        assert_dicts_close(report.to_dict(), alone.to_dict(), rtol=0)


def test_bins_figures_do_not_depend_on_what_is_read_first():
    y, p, w = make_binary(1000, seed=31)
    groups = np.arange(1000) % 4
    expected = evaluate(y, p, sample_weight=w, bins=9, groups=groups).to_dict()
    for first in ("roc_auc", "ece", "bin_positives", "threshold_table", "reliability"):
        ev = evaluate(y, p, sample_weight=w, bins=9, groups=groups)
        getattr(ev.groups[2], first)
        getattr(ev, first)
        assert_dicts_close(ev.to_dict(), expected, rtol=0)


def test_failed_update_leaves_the_evaluator_unchanged():
    evaluator = Evaluator(bins=3).update([0, 1, 1], [0.1, 0.9, 0.4], groups=["a", "b", "a"])
    before = evaluator.result().to_dict()
    with pytest.raises(ValueError, match=r"y_pred\[1\] = 1.5"):
        evaluator.update([0, 1], [0.3, 1.5], groups=["c", "c"])
    assert_dicts_close(evaluator.result().to_dict(), before, rtol=0)
    assert list(evaluator.result().groups) == ["a", "b"]


# ---------------------------------------------------------------- empty input

def test_empty_input_is_nan_with_runtime_warning():
    with pytest.warns(RuntimeWarning, match="empty input"):
        ev = evaluate([], [], bins=4)
    assert ev.n == 0 and ev.weight_sum == 0 and ev.tp == 0
    for name in ("log_loss", "brier", "accuracy", "precision", "recall", "f1", "balanced_accuracy",
                 "roc_auc", "average_precision", "ece"):
        assert math.isnan(getattr(ev, name)), name
    with pytest.warns(RuntimeWarning, match="empty input"):
        Evaluator().result()
    with pytest.warns(RuntimeWarning, match="zero total weight"):
        assert math.isnan(evaluate([0, 1], [0.2, 0.4], sample_weight=[0, 0]).log_loss)
    with pytest.warns(RuntimeWarning, match="empty input"):
        ev = evaluate([], [], groups=[])
    assert len(ev.groups) == 0


def test_group_with_zero_weight_is_nan_with_runtime_warning():
    with pytest.warns(RuntimeWarning, match=r"1 group\(s\) with zero total weight \('b'\)"):
        ev = evaluate([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.1], sample_weight=[1, 1, 0, 0],
                      groups=["a", "a", "b", "b"])
    assert math.isnan(ev.groups["b"].log_loss) and math.isnan(ev.groups["b"].precision)
    assert ev.groups["b"].n == 2
    assert ev.groups["a"].log_loss == pytest.approx(fastbce.bce([0, 1], [0.2, 0.7]), rel=1e-13)


def test_no_warning_for_a_good_report():
    y, p, w = make_binary(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(y, p, sample_weight=w, bins=5, groups=np.arange(100) % 3)


# ---------------------------------------------------------------- bad input

BAD_INPUTS = {
    "label": dict(y_true=[0, 1, 2], y_pred=[0.1, 0.2, 0.3]),
    "label_nan": dict(y_true=[0, np.nan, 1], y_pred=[0.1, 0.2, 0.3]),
    "probability": dict(y_true=[0, 1, 1], y_pred=[0.1, 1.2, 0.3]),
    "logit_nan": dict(y_true=[0, 1, 1], y_pred=[0.1, np.nan, 3.0], from_logits=True),
    "sample_weight": dict(y_true=[0, 1, 1], y_pred=[0.1, 0.2, 0.3], sample_weight=[1, 1, -1]),
    "pos_weight_scalar": dict(y_true=[0, 1], y_pred=[0.1, 0.2], pos_weight=0.0),
    "pos_weight_array": dict(y_true=[0, 1], y_pred=[0.1, 0.2], pos_weight=[1.0, -2.0]),
    "nd_index": dict(y_true=np.zeros((2, 3)), y_pred=np.array([[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]])),
    "broadcast_index": dict(y_true=np.zeros((2, 3)), y_pred=np.full((2, 3), 0.5),
                            sample_weight=np.array([1.0, -1.0, 1.0])),
    "shapes": dict(y_true=[0, 1, 1], y_pred=[0.1, 0.2]),
    "eps": dict(y_true=[0, 1], y_pred=[0.1, 0.2], eps=0.7),
    "num_threads": dict(y_true=[0, 1], y_pred=[0.1, 0.2], num_threads=0),
    "dtype": dict(y_true=[0, 1], y_pred=np.array([0.1, 0.2], dtype=complex)),
    "dtype_label": dict(y_true=np.array(["0", "1"]), y_pred=[0.1, 0.2]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_the_bce_error(case):
    kw = dict(BAD_INPUTS[case])
    y_true, y_pred = kw.pop("y_true"), kw.pop("y_pred")
    with pytest.raises((ValueError, TypeError)) as expected:
        fastbce.bce(y_true, y_pred, **kw)
    with pytest.raises(expected.type) as actual:
        evaluate(y_true, y_pred, bins=3, **kw)
    assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("keywords, message", [
    (dict(threshold=1.5), "threshold"), (dict(threshold=float("nan")), "threshold"),
    (dict(bins=0), "bins"), (dict(bins=True), "bins"), (dict(bins=2.5), "bins"),
    (dict(class_weight="balance"), "class_weight"), (dict(class_weight={2: 1.0}), "class_weight"),
    (dict(class_weight={0: -1.0}), "class_weight"), (dict(class_weight=[1, 2]), "class_weight"),
])
def test_bad_settings_raise(keywords, message):
    with pytest.raises(ValueError, match=message):
        evaluate([0, 1], [0.1, 0.9], **keywords)


# ---------------------------------------------------------------- output forms

def _plain_json_types(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json_types(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


@pytest.mark.parametrize("kind", ["plain", "bins_groups"])
def test_to_dict_is_json_serialisable(kind):
    y, p, w = make_binary(500, seed=26)
    ev = (evaluate(y, p) if kind == "plain" else
          evaluate(y, p, sample_weight=w, bins=5, groups=np.array(["x", "y"])[np.arange(500) % 2]))
    d = ev.to_dict()
    assert _plain_json_types(d)
    assert_dicts_close(json.loads(json.dumps(d)), d, rtol=0)
    assert d["log_loss"] == ev.log_loss and type(d["n"]) is int
    if kind == "bins_groups":
        assert [g["group"] for g in d["groups"]] == ["x", "y"]
        assert len(d["threshold_table"]["precision"]) == 6
        assert d["groups"][1]["log_loss"] == ev.groups["y"].log_loss
    else:
        assert "groups" not in d and d["bins"] is None and ev.roc_auc is None


def test_to_frame_one_row_per_group_then_overall():
    pd = pytest.importorskip("pandas")
    y, p, w = make_binary(600, seed=27)
    groups = np.arange(600) % 3
    ev = evaluate(y, p, sample_weight=w, bins=4, groups=groups)
    frame = ev.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.tolist() == [0, 1, 2, "overall"] and frame.index.name == "group"
    assert set(SCALARS + BINNED) <= set(frame.columns)
    assert frame.loc["overall", "log_loss"] == ev.log_loss
    assert frame.loc[2, "f1"] == ev.groups[2].f1
    assert evaluate(y, p).to_frame().index.tolist() == ["overall"]
    assert ev.groups[1].to_frame().index.tolist() == [1]
    assert ev.threshold_table.to_frame().shape == (5, 10)


def test_to_frame_without_pandas_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pandas"):
        evaluate([0, 1], [0.2, 0.7]).to_frame()


def test_repr_is_a_small_table():
    y, p, _ = make_binary(300, seed=28)
    ev = evaluate(y, p, bins=4, groups=np.array(["left", "right"])[np.arange(300) % 2])
    text = repr(ev)
    lines = text.splitlines()
    assert len(lines) >= 5 and lines[0].startswith("Evaluation")
    assert any(line.strip().startswith("left") for line in lines)
    assert any(line.strip().startswith("overall") for line in lines)
    assert "log_loss" in text and "roc_auc" in text and f"{ev.log_loss:.4f}" in text
    many = evaluate(np.zeros(100), np.full(100, 0.3), groups=np.arange(100))
    assert "more groups" in repr(many) and len(repr(many).splitlines()) < 30


def test_evaluation_is_frozen():
    ev = evaluate([0, 1], [0.2, 0.7], bins=2)
    with pytest.raises(AttributeError):
        ev.log_loss = 0.0
    with pytest.raises(AttributeError):
        ev.roc_auc = 0.5  # before it is first read
    with pytest.raises(AttributeError):
        del ev.threshold_table
    assert ev.roc_auc == 1.0
    with pytest.raises(ValueError):
        ev.bin_positives[0] = 1.0
    with pytest.raises(ValueError):
        ev.threshold_table.precision[0] = 1.0
