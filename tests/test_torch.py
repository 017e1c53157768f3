"""fastbce.torch against torch.nn.functional: same losses, gradients, errors.

Each comparison also checks which path ran: the fused fastbce path, or the
fallback to PyTorch's own function. The size thresholds below which
fastbce.torch hands calls to PyTorch are set to 0 here, so that small test
inputs run on fastbce's kernels.
"""
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastbce.torch as ft  # noqa: E402

# PyTorch's own functions, captured before the fixture below wraps them to
# count the fallbacks
TORCH_BCE_LOGITS = F.binary_cross_entropy_with_logits
TORCH_BCE = F.binary_cross_entropy
DTYPES = [torch.float32, torch.float64]
REDUCTIONS = ["mean", "sum", "none"]
# element-wise tolerance: relative, plus 16 ulps of the terms the formula adds
RTOL = {torch.float32: 4e-6, torch.float64: 1e-12}
FLOOR_ULPS = 16


@pytest.fixture(autouse=True)
def paths(monkeypatch):
    """Counts of the calls that reached fastbce's kernels and of those that PyTorch computed."""
    counts = {"fast": 0, "fallback": 0}
    monkeypatch.setattr(ft, "_MIN_FAST_SIZE", {True: 0, False: 0})
    fused = ft._fused

    def counting_fused(*args):
        result = fused(*args)  # raises _Fallback before counting
        counts["fast"] += 1
        return result

    def counting(function):
        def wrapper(*args, **kwargs):
            counts["fallback"] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(ft, "_fused", counting_fused)
    monkeypatch.setattr(F, "binary_cross_entropy_with_logits", counting(TORCH_BCE_LOGITS))
    monkeypatch.setattr(F, "binary_cross_entropy", counting(TORCH_BCE))
    return counts


def expect_path(paths, path):
    other = "fallback" if path == "fast" else "fast"
    assert paths[path] >= 1 and paths[other] == 0, paths
    paths["fast"] = paths["fallback"] = 0


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make_targets(shape, dtype, generator):
    """A third exactly 0, a third exactly 1, the rest soft."""
    y = torch.rand(shape, generator=generator, dtype=torch.float64)
    kind = torch.randint(0, 3, shape, generator=generator)
    y[kind == 0] = 0.0
    y[kind == 1] = 1.0
    return y.to(dtype)


def term_scale(x, y, w, pw, *, from_logits, grad, reduction):
    """Size of the terms the formula adds, element-wise (reduced like the result for a reduced loss)."""
    x, y = x.detach().double(), y.double()
    w = torch.ones(()) if w is None else w.double()
    pw = torch.ones(()) if pw is None else pw.double()
    if from_logits and grad:
        scale = w * (1 + 2 * pw)
    elif from_logits:
        scale = w * torch.clamp(pw, min=1) * (1 + x.abs())
    elif grad:
        scale = w * (y / x + (1 - y) / (1 - x))
    else:
        scale = w * (1 + x.abs().log().neg() + (1 - x).abs().log().neg())
    scale = torch.broadcast_to(scale, x.shape)
    if reduction == "mean":
        scale = scale / x.numel()
    if grad or reduction == "none":
        return scale
    return scale.sum()


def assert_close(actual, expected, scale, dtype):
    assert actual.dtype == expected.dtype == dtype and actual.shape == expected.shape
    actual, expected = actual.detach().double(), expected.detach().double()
    eps = torch.finfo(dtype).eps
    rtol = RTOL[dtype] if actual.dim() else 2 * RTOL[dtype]  # PyTorch sums in the input's dtype
    ok = (actual - expected).abs() <= rtol * expected.abs() + FLOOR_ULPS * eps * scale
    ok |= (actual == expected)  # infinities
    assert bool(ok.all()), (f"{int((~ok).sum())} of {ok.numel()} differ; first at "
                            f"{(~ok).nonzero()[:3].tolist()}: {actual[~ok][:3].tolist()} vs "
                            f"{expected[~ok][:3].tolist()}")


def grad_of(function, x, *args, grad_output_seed=None, **kwargs):
    """(loss, d loss / d x), with a random grad_output for element-wise losses."""
    x = x.detach().clone().requires_grad_(True)
    loss = function(x, *args, **kwargs)
    if loss.dim():
        grad_output = torch.rand(loss.shape, generator=gen(grad_output_seed or 7), dtype=loss.dtype) + 0.5
    else:
        grad_output = torch.tensor(1.0, dtype=loss.dtype)
    (grad,) = torch.autograd.grad(loss, x, grad_output)
    return loss, grad


# ----------------------------------------------------------------- logits

# (input shape, weight shape or None, pos_weight shape or None)
LOGIT_CASES = {
    "1d": ((1001,), None, None),
    "1d-weight": ((1001,), (1001,), None),
    "1d-pos_weight-scalar": ((1001,), None, ()),
    "2d-pos_weight-k": ((257, 5), None, (5,)),
    "2d-weight-k": ((257, 5), (5,), None),
    "2d-weight-column": ((257, 5), (257, 1), None),
    "2d-weight-full-pos_weight-k": ((257, 5), (257, 5), (5,)),
    "2d-both-k": ((257, 5), (5,), (5,)),
    "2d-pos_weight-full": ((257, 5), None, (257, 5)),
    "3d-pos_weight-channels": ((7, 3, 11), (1, 1, 11), (3, 1)),
    "scalar-input": ((), None, None),
}


def logit_data(shape, w_shape, pw_shape, dtype, seed=0):
    g = gen(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 5).to(dtype)
    y = make_targets(shape, dtype, g)
    w = None if w_shape is None else (torch.rand(w_shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    pw = (None if pw_shape is None
          else (torch.rand(pw_shape, generator=g, dtype=torch.float64) * 3.75 + 0.25).to(dtype))
    return x, y, w, pw


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(LOGIT_CASES))
def test_logits_match_torch(paths, case, dtype, reduction):
    x, y, w, pw = logit_data(*LOGIT_CASES[case], dtype)
    kw = dict(weight=w, pos_weight=pw, reduction=reduction)
    loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, **kw)
    expect_path(paths, "fast")
    expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, **kw)
    assert_close(loss, expected_loss, term_scale(x, y, w, pw, from_logits=True, grad=False,
                                                 reduction=reduction), dtype)
    assert_close(grad, expected_grad, term_scale(x, y, w, pw, from_logits=True, grad=True,
                                                 reduction=reduction), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_logits_extreme_values(paths, dtype):
    big = torch.finfo(dtype).max / 4
    values = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 15.0, -15.0, 17.0, -17.0, 30.0, -30.0,
                           40.0, -40.0, 88.0, -88.0, 104.0, -104.0, 700.0, -700.0, 1e4, -1e4, 1e30, -1e30,
                           big, -big], dtype=dtype)
    x = values.repeat_interleave(3)
    y = torch.tensor([0.0, 1.0, 0.3], dtype=dtype).repeat(values.numel())
    for pw in (None, torch.tensor(2.5, dtype=dtype)):
        for reduction in REDUCTIONS:
            loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, pos_weight=pw, reduction=reduction)
            expect_path(paths, "fast")
            expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, pos_weight=pw, reduction=reduction)
            assert_close(loss, expected_loss, term_scale(x, y, None, pw, from_logits=True, grad=False,
                                                         reduction=reduction), dtype)
            assert_close(grad, expected_grad, term_scale(x, y, None, pw, from_logits=True, grad=True,
                                                         reduction=reduction), dtype)
    # the largest finite logits stay on the fast path (element-wise: their
    # sum overflows PyTorch's float32 mean, not fastbce's float64 one)
    x = torch.tensor([torch.finfo(dtype).max, -torch.finfo(dtype).max], dtype=dtype).repeat_interleave(3)
    y = torch.tensor([0.0, 1.0, 0.3], dtype=dtype).repeat(2)
    loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, reduction="none")
    expect_path(paths, "fast")
    expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, reduction="none")
    assert_close(loss, expected_loss, term_scale(x, y, None, None, from_logits=True, grad=False,
                                                 reduction="none"), dtype)
    assert_close(grad, expected_grad, term_scale(x, y, None, None, from_logits=True, grad=True,
                                                 reduction="none"), dtype)


def test_logits_large_input_on_threads(paths):
    """Past fastbce's serial threshold (2^15), with the torch thread count passed on."""
    x, y, w, pw = logit_data((20011, 7), (7,), (7,), torch.float32, seed=3)
    loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, w, pos_weight=pw)
    expect_path(paths, "fast")
    expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, w, pos_weight=pw)
    assert_close(loss, expected_loss, term_scale(x, y, w, pw, from_logits=True, grad=False, reduction="mean"),
                 torch.float32)
    assert_close(grad, expected_grad, term_scale(x, y, w, pw, from_logits=True, grad=True, reduction="mean"),
                 torch.float32)


def test_non_contiguous_inputs(paths):
    """Transposed, sliced and expanded tensors are read in place; the gradient keeps the input's strides."""
    g = gen(5)
    base = torch.randn(64, 40, generator=g, dtype=torch.float64) * 4
    x = base.t()  # (40, 64), transposed
    y = make_targets((64, 1), torch.float64, g).expand(64, 40).t()  # stride 0
    w = torch.rand(40, 2, generator=g, dtype=torch.float64)[:, 1:]  # (40, 1), strided
    loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, w, reduction="sum")
    expect_path(paths, "fast")
    expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, w, reduction="sum")
    torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-14)
    assert grad.stride() == x.stride()
    p = torch.sigmoid(base).t()
    loss, grad = grad_of(ft.binary_cross_entropy, p, y, w, reduction="none")
    expect_path(paths, "fast")
    expected_loss, expected_grad = grad_of(TORCH_BCE, p, y, w, reduction="none")
    torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------- probabilities

PROB_CASES = {
    "1d": ((1001,), None),
    "1d-weight": ((1001,), (1001,)),
    "2d-weight-k": ((257, 5), (5,)),
    "2d-weight-column": ((257, 5), (257, 1)),
    "3d-weight": ((7, 3, 11), (3, 1)),
}


def prob_data(shape, w_shape, dtype, seed=0):
    g = gen(seed)
    # piled up near 0 and 1, but inside [2e-12, 1 - 2e-12] where no clamp acts
    u = torch.rand(shape, generator=g, dtype=torch.float64)
    p = torch.sigmoid(torch.logit(u) * 4).clamp(1e-9, 1 - 1e-6).to(dtype)
    y = make_targets(shape, dtype, g)
    w = None if w_shape is None else (torch.rand(w_shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    return p, y, w


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(PROB_CASES))
def test_probabilities_match_torch(paths, case, dtype, reduction):
    p, y, w = prob_data(*PROB_CASES[case], dtype)
    loss, grad = grad_of(ft.binary_cross_entropy, p, y, w, reduction=reduction)
    expect_path(paths, "fast")
    expected_loss, expected_grad = grad_of(TORCH_BCE, p, y, w, reduction=reduction)
    assert_close(loss, expected_loss, term_scale(p, y, w, None, from_logits=False, grad=False,
                                                 reduction=reduction), dtype)
    assert_close(grad, expected_grad, term_scale(p, y, w, None, from_logits=False, grad=True,
                                                 reduction=reduction), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_probabilities_at_the_edges_of_the_fast_path(paths, dtype):
    below_one = 1 - torch.finfo(dtype).eps / 2  # the largest value below 1
    values = [2.001e-12, 3e-12, 1e-9, 1e-6, 0.25, 0.5, 0.75, 1 - 1e-6]
    values += [1 - 2e-12] if dtype == torch.float64 else [float(below_one)]
    p = torch.tensor(values, dtype=dtype).repeat_interleave(3)
    y = torch.tensor([0.0, 1.0, 0.3], dtype=dtype).repeat(len(values))
    for reduction in REDUCTIONS:
        loss, grad = grad_of(ft.binary_cross_entropy, p, y, reduction=reduction)
        expect_path(paths, "fast")
        expected_loss, expected_grad = grad_of(TORCH_BCE, p, y, reduction=reduction)
        assert_close(loss, expected_loss, term_scale(p, y, None, None, from_logits=False, grad=False,
                                                     reduction=reduction), dtype)
        assert_close(grad, expected_grad, term_scale(p, y, None, None, from_logits=False, grad=True,
                                                     reduction=reduction), dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_probabilities_exactly_0_and_1_are_pytorchs(paths, dtype, reduction):
    """PyTorch clamps the logs at -100 and p (1 - p) at 1e-12: those calls are its own."""
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.5, 1e-13, 1e-40, 1 - 1e-13], dtype=dtype)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 0.0], dtype=dtype)
    loss, grad = grad_of(ft.binary_cross_entropy, p, y, reduction=reduction)
    expect_path(paths, "fallback")
    expected_loss, expected_grad = grad_of(TORCH_BCE, p, y, reduction=reduction)
    torch.testing.assert_close(loss, expected_loss, rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)
    with torch.no_grad():  # the loss alone: the -100 clamp still acts at 0 and 1
        torch.testing.assert_close(ft.binary_cross_entropy(p, y, reduction=reduction),
                                   TORCH_BCE(p, y, reduction=reduction), rtol=0, atol=0)
    expect_path(paths, "fallback")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_probabilities_loss_only_where_only_the_gradient_clamps(paths, dtype):
    """Without a gradient, p in [1e-30, 2e-12) and (1 - 2e-12, 1) stays on the fast path."""
    values = [1e-30, 1e-20, 1e-13, 0.5]
    if dtype == torch.float64:
        values.append(1 - 1e-13)
    p = torch.tensor(values, dtype=dtype).repeat_interleave(2)
    y = torch.tensor([0.0, 1.0], dtype=dtype).repeat(len(values))
    for reduction in REDUCTIONS:
        with torch.no_grad():
            loss = ft.binary_cross_entropy(p, y, reduction=reduction)
        expect_path(paths, "fast")
        assert loss.grad_fn is None and not loss.requires_grad
        assert_close(loss, TORCH_BCE(p, y, reduction=reduction),
                     term_scale(p, y, None, None, from_logits=False, grad=False, reduction=reduction), dtype)


def test_probabilities_errors_are_pytorchs(paths):
    y = torch.tensor([0.0, 1.0, 1.0])
    for p in ([0.5, 1.5, 0.2], [0.5, -0.1, 0.2], [0.5, float("nan"), 0.2]):
        with pytest.raises(RuntimeError, match="input should be between 0 and 1"):
            ft.binary_cross_entropy(torch.tensor(p), y)
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
        ft.binary_cross_entropy(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 2.0]))
    with pytest.raises(RuntimeError):  # mixed dtypes
        ft.binary_cross_entropy(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="same size"):
        ft.binary_cross_entropy(torch.full((3,), 0.5), torch.zeros(3, 1))
    with pytest.raises(RuntimeError, match="broadcast"):
        ft.binary_cross_entropy(torch.full((3,), 0.5), torch.zeros(3), torch.ones(2, 3))


# ------------------------------------------------------------- gradients

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_logits(paths, reduction):
    x, y, w, pw = logit_data((13, 4), (4,), (4,), torch.float64, seed=11)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: ft.binary_cross_entropy_with_logits(x, y, w, reduction=reduction, pos_weight=pw), (x,))
    assert paths["fast"] > 0 and paths["fallback"] == 0


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_probabilities(paths, reduction):
    g = gen(12)
    p = (torch.rand(13, 4, generator=g, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    y = make_targets((13, 4), torch.float64, g)
    w = torch.rand(4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: ft.binary_cross_entropy(p, y, w, reduction=reduction), (p,))
    assert paths["fast"] > 0 and paths["fallback"] == 0


def test_gradient_is_handed_over_without_a_copy(monkeypatch):
    """The gradient fastbce wrote becomes x.grad itself (autograd drops the saved reference)."""
    written = []
    fused = ft._fused

    def spy(*args):
        result = fused(*args)
        written.append(result[1].data_ptr())
        return result

    monkeypatch.setattr(ft, "_fused", spy)
    x, y, _, pw = logit_data((1000, 4), None, (4,), torch.float32)
    x.requires_grad_(True)
    ft.binary_cross_entropy_with_logits(x, y, pos_weight=pw).backward()
    assert x.grad.data_ptr() == written[-1]


def test_gradient_buffer_is_reused_only_once_free(paths):
    """The kept gradient buffer is reused only when no tensor or array refers to it any more."""
    x, y, _, pw = logit_data((500, 4), None, (4,), torch.float32)

    def step():
        xi = x.clone().requires_grad_(True)
        ft.binary_cross_entropy_with_logits(xi, y, pos_weight=pw, reduction="sum").backward()
        return xi

    expected = grad_of(TORCH_BCE_LOGITS, x, y, pos_weight=pw, reduction="sum")[1]
    ft.empty_cache()
    kept = step().grad  # buffer A, still referenced
    kept_values = kept.clone()
    xb = step()  # A is busy: a new buffer B
    address_b = xb.grad.data_ptr()
    assert address_b != kept.data_ptr()
    view = xb.grad.numpy()  # a NumPy view keeps B busy too
    del xb
    xc = step()
    assert xc.grad.data_ptr() not in (address_b, kept.data_ptr())
    address_c = xc.grad.data_ptr()
    del view, xc  # B and C free: C is the kept one
    xd = step()
    assert xd.grad.data_ptr() == address_c
    torch.testing.assert_close(xd.grad, expected, rtol=4e-6, atol=1e-6)
    assert torch.equal(kept, kept_values)  # never overwritten
    xe = x.reshape(4, 500).clone().requires_grad_(True)  # same size, other shape: reused too
    del xd
    ft.binary_cross_entropy_with_logits(xe, y.reshape(4, 500), reduction="sum").backward()
    assert xe.grad.data_ptr() == address_c and xe.grad.shape == (4, 500)
    ft.empty_cache()
    assert not ft._spare


def test_backward_twice_with_retain_graph(paths):
    x, y, w, pw = logit_data((300, 3), (3,), (3,), torch.float64)
    x.requires_grad_(True)
    loss = ft.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first, rtol=1e-15, atol=0)
    expected = grad_of(TORCH_BCE_LOGITS, x, y, w, pos_weight=pw)[1]
    torch.testing.assert_close(first, expected, rtol=1e-12, atol=1e-15)
    # a scaled loss scales the saved gradient
    x.grad = None
    (3.0 * ft.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)).backward()
    torch.testing.assert_close(x.grad, 3 * expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_double_backward_is_pytorchs(paths, reduction, from_logits):
    """With create_graph=True the gradient is differentiable, as PyTorch's (gradient penalties, HVPs)."""
    x, y, w, pw = logit_data((13, 4), (4,), (4,), torch.float64, seed=21)
    ours, theirs = ((ft.binary_cross_entropy_with_logits, TORCH_BCE_LOGITS) if from_logits
                    else (ft.binary_cross_entropy, TORCH_BCE))
    kw = dict(pos_weight=pw) if from_logits else {}
    if not from_logits:
        x = torch.sigmoid(x / 3)
    x.requires_grad_(True)
    results = []
    for function in (ours, theirs):
        loss = function(x, y, w, reduction=reduction, **kw)
        grad_output = torch.rand(loss.shape, generator=gen(3), dtype=loss.dtype).requires_grad_(True)
        (grad,) = torch.autograd.grad(loss, x, grad_output, create_graph=True)
        penalty = (grad ** 2).sum()
        results.append((grad, *torch.autograd.grad(penalty, (x, grad_output))))
    expect_path(paths, "fast")
    for a, b in zip(*results):  # PyTorch's double backward is its own analytic formula
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-15)
    assert torch.autograd.gradgradcheck(lambda x: ours(x, y, w, reduction=reduction, **kw), (x,))


def test_no_grad_and_inputs_without_grad(paths, monkeypatch):
    """Only the loss is computed (fastbce.bce) when autograd does not need the gradient."""
    called = []
    real = ft._fastbce_pass

    def spy(*args, **kwargs):
        called.append(kwargs["want_grad"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "_fastbce_pass", spy)
    x, y, w, pw = logit_data((200, 3), (3,), (3,), torch.float32)
    expected = TORCH_BCE_LOGITS(x, y, w, pos_weight=pw)
    loss = ft.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)
    assert loss.grad_fn is None
    with torch.no_grad():
        loss2 = ft.binary_cross_entropy_with_logits(x.requires_grad_(True), y, w, pos_weight=pw)
    assert not loss2.requires_grad
    with torch.inference_mode():
        loss3 = ft.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)
    expect_path(paths, "fast")
    assert called == [False, False, False]
    for value in (loss, loss2, loss3):
        torch.testing.assert_close(value, expected, rtol=2e-6, atol=1e-7)


def test_threads_follow_torch(paths, monkeypatch):
    seen = []
    real = ft._fastbce_pass

    def spy(*args, **kwargs):
        seen.append(kwargs["num_threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "_fastbce_pass", spy)
    before = torch.get_num_threads()
    x, y, _, _ = logit_data((1000,), None, None, torch.float32)
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ft.binary_cross_entropy_with_logits(x.requires_grad_(True), y).backward()
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2]


# -------------------------------------------------------------- training

def train(loss_fn, dtype, steps=25, probabilities=False):
    torch.manual_seed(1234)
    model = torch.nn.Linear(10, 4).to(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    g = gen(99)
    features = torch.randn(512, 10, generator=g, dtype=dtype)
    labels = (features[:, :4] + 0.5 * torch.randn(512, 4, generator=g, dtype=dtype) > 0).to(dtype)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        out = model(features)
        loss = loss_fn(torch.sigmoid(out) if probabilities else out, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_training_matches_torch(paths, dtype):
    pos_weight = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=dtype)
    weight = torch.tensor([1.0, 0.5, 2.0, 1.0], dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)
    for ours, theirs, probabilities in (
        (ft.BCEWithLogitsLoss(weight, pos_weight=pos_weight),
         torch.nn.BCEWithLogitsLoss(weight, pos_weight=pos_weight), False),
        (ft.BCELoss(weight), torch.nn.BCELoss(weight), True),
    ):
        model, losses = train(ours, dtype, probabilities=probabilities)
        expect_path(paths, "fast")
        expected_model, expected_losses = train(theirs, dtype, probabilities=probabilities)
        assert losses[-1] < losses[0] * 0.8
        np.testing.assert_allclose(losses, expected_losses, rtol=tol["rtol"])
        for a, b in zip(model.parameters(), expected_model.parameters()):
            torch.testing.assert_close(a, b, **tol)
        paths["fast"] = paths["fallback"] = 0  # PyTorch's modules counted as fallbacks


# ------------------------------------------------------------- fallbacks

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_falls_back(paths, dtype):
    x, y, w, pw = logit_data((64, 3), (3,), (3,), torch.float32)
    x, y, w, pw = (t.to(dtype) for t in (x, y, w, pw))
    loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, w, pos_weight=pw)
    expect_path(paths, "fallback")
    expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, w, pos_weight=pw)
    assert loss.dtype == grad.dtype == dtype
    torch.testing.assert_close(loss, expected_loss, rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)
    p = torch.sigmoid(x.float()).to(dtype)
    torch.testing.assert_close(ft.binary_cross_entropy(p, y, w), TORCH_BCE(p, y, w), rtol=0, atol=0)
    expect_path(paths, "fallback")


@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_target_requiring_grad_falls_back(paths, from_logits):
    x, y, w, pw = logit_data((40, 3), (3,), (3,), torch.float64)
    ours, theirs = ((ft.binary_cross_entropy_with_logits, TORCH_BCE_LOGITS) if from_logits
                    else (ft.binary_cross_entropy, TORCH_BCE))
    kw = dict(pos_weight=pw) if from_logits else {}
    if not from_logits:
        x = torch.sigmoid(x)
    results = []
    for function in (ours, theirs):
        xi, yi = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        loss = function(xi, yi, w, reduction="sum", **kw)
        results.append((loss, *torch.autograd.grad(loss, (xi, yi))))
    expect_path(paths, "fallback")
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_weights_requiring_grad_raise_as_pytorch(paths):
    x, y, w, pw = logit_data((40, 3), (3,), (3,), torch.float32)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        ft.binary_cross_entropy_with_logits(x, y, w.requires_grad_(True))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'pos_weight'"):
        ft.binary_cross_entropy_with_logits(x, y, pos_weight=pw.requires_grad_(True))


@pytest.mark.parametrize("case", ["inf-logit", "nan-logit", "target-above-1", "target-negative",
                                  "negative-weight", "zero-pos_weight", "negative-pos_weight", "nan-target",
                                  "inf-weight", "inf-pos_weight", "inf-scalar-pos_weight"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_values_fastbce_rejects_give_pytorchs_result(paths, case, dtype):
    """Found inside the fused pass (its valid ranges are narrowed to where
    PyTorch's result is fastbce's), then PyTorch's own call."""
    x, y, w, pw = logit_data((30, 4), (4,), (4,), dtype)
    if case == "inf-logit":
        x[3, 1], x[5, 2], x[7, 0], x[9, 3] = math.inf, -math.inf, math.inf, -math.inf
        y[3, 1], y[7, 0] = 1.0, 0.0
    elif case == "nan-logit":
        x[4, 2] = math.nan
    elif case == "target-above-1":
        y[2, 2] = 1.5
    elif case == "target-negative":
        y[2, 2] = -2.0
    elif case == "negative-weight":
        w[1] = -0.5
    elif case == "zero-pos_weight":
        pw[0] = 0.0
    elif case == "negative-pos_weight":
        pw[3] = -1.0
    elif case == "nan-target":
        y[0, 0] = math.nan
    elif case == "inf-weight":
        w[2] = math.inf
    elif case == "inf-pos_weight":
        pw[1] = math.inf
    elif case == "inf-scalar-pos_weight":
        pw = torch.tensor(math.inf, dtype=dtype)
    for reduction in REDUCTIONS:
        loss, grad = grad_of(ft.binary_cross_entropy_with_logits, x, y, w, pos_weight=pw, reduction=reduction)
        expect_path(paths, "fallback")
        expected_loss, expected_grad = grad_of(TORCH_BCE_LOGITS, x, y, w, pos_weight=pw, reduction=reduction)
        torch.testing.assert_close(loss, expected_loss, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0, equal_nan=True)


# PyTorch's own warning, from its meta/vmap machinery
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_other_fallbacks(paths):
    x, y, _, _ = logit_data((6, 4), None, None, torch.float32)
    # meta tensors
    meta = ft.binary_cross_entropy_with_logits(x.to("meta"), y.to("meta"), reduction="none")
    assert meta.device.type == "meta" and meta.shape == x.shape
    # empty input: PyTorch's nan, without fastbce's warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isnan(ft.binary_cross_entropy_with_logits(torch.zeros(0), torch.zeros(0)))
        assert torch.isnan(ft.binary_cross_entropy(torch.zeros(0), torch.zeros(0)))
    # mixed dtypes: PyTorch's type promotion
    loss = ft.binary_cross_entropy_with_logits(x, y.double())
    assert loss.dtype == TORCH_BCE_LOGITS(x, y.double()).dtype
    # forward-mode AD
    import torch.autograd.forward_ad as fwAD
    tangent = torch.randn(x.shape, generator=gen(4))
    with fwAD.dual_level():
        jvps = [fwAD.unpack_dual(function(fwAD.make_dual(x, tangent), y)).tangent
                for function in (ft.binary_cross_entropy_with_logits, TORCH_BCE_LOGITS)]
    torch.testing.assert_close(jvps[0], jvps[1], rtol=0, atol=0)
    # vmap (a functorch transform)
    xs = x.double()
    ys = y.double()
    torch.testing.assert_close(
        torch.func.vmap(lambda row, t: ft.binary_cross_entropy_with_logits(row, t))(xs, ys),
        torch.func.vmap(lambda row, t: TORCH_BCE_LOGITS(row, t))(xs, ys), rtol=0, atol=0)
    expect_path(paths, "fallback")


def test_shape_and_argument_errors_are_pytorchs(paths):
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="must be the same as input size"):
        ft.binary_cross_entropy_with_logits(x, torch.zeros(3, 1))
    for extra in ("weight", "pos_weight"):
        with pytest.raises(RuntimeError, match="broadcast"):
            ft.binary_cross_entropy_with_logits(x, x, **{extra: torch.ones(2, 3)})
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        ft.binary_cross_entropy_with_logits(x, x, reduction="average")
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        ft.binary_cross_entropy(x + 0.5, x, reduction="average")


def test_legacy_size_average_and_reduce(paths):
    x, y, w, _ = logit_data((20, 3), (3,), None, torch.float64)
    for size_average, reduce, reduction in ((False, None, "sum"), (None, False, "none"), (True, True, "mean")):
        with pytest.warns(UserWarning, match="size_average and reduce"):
            loss = ft.binary_cross_entropy_with_logits(x, y, w, size_average, reduce)
        torch.testing.assert_close(loss, TORCH_BCE_LOGITS(x, y, w, reduction=reduction), rtol=1e-12, atol=1e-14)
        with pytest.warns(UserWarning, match="size_average and reduce"):
            loss = ft.binary_cross_entropy(torch.sigmoid(x), y, w, size_average, reduce)
        torch.testing.assert_close(loss, TORCH_BCE(torch.sigmoid(x), y, w, reduction=reduction),
                                   rtol=1e-12, atol=1e-14)


def test_small_inputs_go_to_pytorch_by_default(paths, monkeypatch):
    monkeypatch.undo()  # the module's own thresholds (and PyTorch's functions unwrapped)
    called = []
    fused = ft._fused
    monkeypatch.setattr(ft, "_fused", lambda *a: called.append(a) or fused(*a))
    small = torch.zeros(ft._MIN_FAST_SIZE[True] - 1)
    ft.binary_cross_entropy_with_logits(small, small)
    ft.binary_cross_entropy(small[: ft._MIN_FAST_SIZE[False] - 1] + 0.5, small[: ft._MIN_FAST_SIZE[False] - 1])
    assert not called
    big = torch.zeros(ft._MIN_FAST_SIZE[True])
    ft.binary_cross_entropy_with_logits(big, big)
    ft.binary_cross_entropy(big[: ft._MIN_FAST_SIZE[False]] + 0.5, big[: ft._MIN_FAST_SIZE[False]])
    assert len(called) == 2


# --------------------------------------------------------------- modules

def test_modules_are_pytorchs_with_a_fast_forward(paths):
    w, pw = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.25])
    pairs = [
        (ft.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()),
        (ft.BCEWithLogitsLoss(w, reduction="sum", pos_weight=pw),
         torch.nn.BCEWithLogitsLoss(w, reduction="sum", pos_weight=pw)),
        (ft.BCELoss(), torch.nn.BCELoss()),
        (ft.BCELoss(w, reduction="none"), torch.nn.BCELoss(w, reduction="none")),
    ]
    for ours, theirs in pairs:
        assert isinstance(ours, type(theirs)) and isinstance(ours, torch.nn.Module)
        assert repr(ours) == repr(theirs)
        assert ours.reduction == theirs.reduction
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value)
        assert [name for name, _ in ours.named_buffers()] == [name for name, _ in theirs.named_buffers()]
        ours.load_state_dict(theirs.state_dict())
        # buffers follow .to()
        ours64, theirs64 = ours.to(torch.float64), theirs.to(torch.float64)
        x, y, _, _ = logit_data((100, 3), None, None, torch.float64)
        inp = x if isinstance(theirs, torch.nn.BCEWithLogitsLoss) else torch.sigmoid(x)
        paths["fast"] = paths["fallback"] = 0
        loss, grad = grad_of(ours64, inp, y)
        expect_path(paths, "fast")
        expected_loss, expected_grad = grad_of(theirs64, inp, y)
        torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-14)
        paths["fast"] = paths["fallback"] = 0
    assert repr(ft.BCEWithLogitsLoss(pos_weight=pw)) == "BCEWithLogitsLoss()"
    assert list(ft.BCEWithLogitsLoss(w, pos_weight=pw).state_dict()) == ["weight", "pos_weight"]
    assert list(ft.BCELoss().state_dict()) == []


def test_importing_torch_from_inside_the_package_folder_gets_pytorch(tmp_path):
    """A script run from fastbce/ has that folder on sys.path: `import torch` must still be PyTorch."""
    package = os.path.dirname(os.path.abspath(ft.__file__))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(package))
    code = ("import torch, torch.nn.functional; print(torch.__file__); "
            "import fastbce.torch; print(fastbce.torch.torch is torch)")
    result = subprocess.run([sys.executable, "-c", code], cwd=package, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    torch_file, same = result.stdout.split()
    assert os.path.dirname(torch_file) != package
    assert torch_file == torch.__file__ and same == "True"
