"""The kernel's narrower valid ranges (limits=, used by fastbce.torch): the
predictions' range is checked by the math loops' own comparisons, the
weights' by a loop of their own; a value outside stops the pass like an
invalid one, and the first one is named."""
import numpy as np
import pytest

from fastbce._api import _run

N = 3 * 16384 + 77   # several blocks, a partial last chunk


def run(y, pred, *, from_logits, limits, weight=None, want_grad=True):
    out = np.empty_like(pred) if want_grad else None
    return _run(y, pred, from_logits, "mean", weight, None, 0.0, None, out, 2,
                True, want_grad, limits=limits)


def data(dtype, from_logits):
    rng = np.random.default_rng(5)
    y = (rng.random(N) < 0.4).astype(np.uint8)
    pred = (rng.normal(0, 3, N) if from_logits else rng.uniform(0.3, 0.7, N)).astype(dtype)
    return y, pred


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("want_grad", [False, True])
def test_values_inside_the_limits_are_those_without_limits(dtype, from_logits, want_grad):
    y, pred = data(dtype, from_logits)
    limits = (-20.0, 20.0, 1e30) if from_logits else (0.25, 0.75, 1e30)
    with_limits = run(y, pred, from_logits=from_logits, limits=limits, want_grad=want_grad)
    without = run(y, pred, from_logits=from_logits, limits=None, want_grad=want_grad)
    assert with_limits[0] == without[0]
    if want_grad:
        np.testing.assert_array_equal(with_limits[1], without[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits, limits, inside, outside", [
    (False, (0.25, 0.75, 1e30), 0.75, 0.8),
    (False, (0.25, 0.75, 1e30), 0.25, 0.2),
    (False, (-1.0, 2.0, 1e30), 1.0, 1.5),     # never wider than [0, 1]
    (True, (-20.0, 20.0, 1e30), 20.0, 20.5),
    (True, (-20.0, 20.0, 1e30), -20.0, -np.inf),
    (True, (-20.0, 20.0, 1e30), 0.0, np.nan),
])
def test_the_first_value_outside_the_limits_is_named(dtype, from_logits, limits, inside, outside):
    y, pred = data(dtype, from_logits)
    pred[[100, 20000, 40000]] = inside
    run(y, pred, from_logits=from_logits, limits=limits)   # the bounds themselves are valid
    pred[[30001, 45000]] = outside
    for want_grad in (False, True):
        with pytest.raises(ValueError, match=r"y_pred\[30001\]"):
            run(y, pred, from_logits=from_logits, limits=limits, want_grad=want_grad)


def test_weights_above_their_limit_are_named():
    y, pred = data(np.float32, True)
    weight = np.ones(N, np.float32)
    weight[[9, 33333]] = [3.0, 5.0]
    run(y, pred, from_logits=True, limits=(-20.0, 20.0, 5.0), weight=weight)
    with pytest.raises(ValueError, match=r"sample_weight\[33333\]"):
        run(y, pred, from_logits=True, limits=(-20.0, 20.0, 4.0), weight=weight)


def test_logit_limits_must_be_symmetric():
    y, pred = data(np.float32, True)
    with pytest.raises(ValueError, match="symmetric"):
        run(y, pred, from_logits=True, limits=(-5.0, 20.0, 1e30))
