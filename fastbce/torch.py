"""PyTorch drop-ins backed by fastbce's kernels: ``import fastbce.torch``.

    >>> import torch
    >>> from fastbce.torch import BCEWithLogitsLoss
    >>> loss_fn = BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0]))  # as torch.nn's
    >>> loss_fn
    BCEWithLogitsLoss()

:func:`binary_cross_entropy_with_logits`, :func:`binary_cross_entropy`,
:class:`BCEWithLogitsLoss` and :class:`BCELoss` take the arguments of their
``torch.nn.functional`` / ``torch.nn`` namesakes (deprecated ``size_average``
and ``reduce`` included, in the same positions) and give PyTorch's results,
gradients and errors. On CPU float32/float64 tensors the loss and its
gradient with respect to ``input`` come from one fused fastbce pass in the
forward call (``fastbce.bce_and_grad``, reading the tensors' memory in place
through ``.numpy()`` and writing the gradient into a tensor's memory); the
backward only scales that saved gradient by ``grad_output``. Both run on
``torch.get_num_threads()`` threads. The gradient's buffer of the previous
call is reused once nothing refers to it any more (:func:`empty_cache`).
Everything else is handed to PyTorch's own ``torch.nn.functional`` function
(see "Fallbacks" below), so the results are PyTorch's in every case, to
rounding: fastbce's formulas are evaluated differently (a stable softplus,
``-y/p + (1-y)/(1-p)`` for ``(p-y)/(p(1-p))``, float64 sums) and agree with
PyTorch's to a few units in the last place of the terms they add.

Where PyTorch's semantics differ from fastbce's own functions
--------------------------------------------------------------
=========================  ===========================  ==========================
                           ``fastbce.bce(y, p, ...)``   ``fastbce.torch`` (PyTorch)
=========================  ===========================  ==========================
argument order             ``(y_true, y_pred)``         ``(input, target)``
``"mean"`` with weights    ``sum(w * loss) / sum(w)``   ``sum(w * loss) / n``
probabilities near 0 / 1   clipped to ``[eps, 1-eps]``  each log clamped at -100;
                           (``eps = finfo.eps``)        gradient ``(p - y) /
                                                        max(p (1 - p), 1e-12)``
infinite logits            the limit (0 or inf)         PyTorch's NaN/inf
labels outside [0, 1]      ``ValueError``               accepted (logits);
                                                        ``RuntimeError`` (probs)
probabilities outside      ``ValueError``               ``RuntimeError``
[0, 1] or NaN
negative weight / NaN      ``ValueError``               accepted (as PyTorch)
logit / ``pos_weight<=0``
weight, pos_weight         broadcast together with      must broadcast *to* the
                           the inputs (NumPy rules)     input's shape; ``target``
                                                        must have input's shape
reduced result             Python float (float64 sum)   0-dim tensor of input's
                                                        dtype (float64 sum,
                                                        rounded once)
``label_smoothing``,       available                    not in PyTorch's API
``eps``
=========================  ===========================  ==========================

The fast path calls fastbce with ``reduction="sum"`` and scales by ``1 / n``
where PyTorch's mean differs from fastbce's, and with an ``eps`` (1e-31)
below every probability it is given, so that fastbce's clipping never acts.

Fallbacks to ``torch.nn.functional``
------------------------------------
- devices other than CPU (CUDA, meta, ...), dtypes other than float32 and
  float64 (float16, bfloat16, ...), mixed dtypes, non-strided layouts,
  tensor subclasses, functorch transforms (vmap, grad, jvp), forward-mode
  AD, ``torch.compile`` tracing, shapes PyTorch rejects, unknown ``reduction``;
- small inputs, where PyTorch's lower per-call cost wins: under 2**15
  elements for logits, 2**12 for probabilities (``_MIN_FAST_SIZE``);
- ``target`` (or ``weight``/``pos_weight``) that requires grad: PyTorch
  gives a gradient for the target (and an error for the weights); fastbce
  computes only the gradient with respect to ``input``, so these calls are
  PyTorch's own, gradients included;
- probabilities where PyTorch's clamps act: below 2e-12 or above
  1 - 2e-12 when a gradient is wanted (the ``1e-12`` floor of
  ``p (1 - p)``), below 1e-30 or exactly 1 otherwise (the -100 clamp of the
  logs); this includes NaN and values outside [0, 1], for which PyTorch
  raises its ``RuntimeError``;
- infinite or NaN logits, weights or pos_weights (where PyTorch's formula
  gives NaNs and fastbce the limits);
- values fastbce rejects but PyTorch accepts or rejects with its own error
  (labels outside [0, 1], negative weights, ``pos_weight <= 0``).

None of these costs a pass of its own: the fused pass is told the ranges
above as its valid ranges and checks each chunk while it is in cache; the
first value outside them stops the pass, and the call is redone by PyTorch
(at the cost of the partial fastbce pass).

Higher derivatives: with ``create_graph=True`` the backward evaluates
PyTorch's gradient formula in differentiable torch operations instead of
scaling the saved gradient, so double backward (gradient penalties,
Hessian-vector products) gives PyTorch's results. Forward-mode AD
(``torch.autograd.forward_ad``, ``torch.func.jvp``) runs PyTorch's function.
When autograd does not need the gradient (``torch.no_grad``, or an ``input``
without ``requires_grad``), only the loss is computed, by ``fastbce.bce``.
"""
if __name__ == "torch":
    # This file was found as the top-level module "torch": a script run from
    # inside the fastbce/ folder (python fastbce/bench.py, or python started
    # there) puts that folder first on sys.path. Take the folder off sys.path
    # and load the real PyTorch under the name: once this file has run, the
    # import system hands `import torch` whatever sys.modules["torch"] holds.
    import importlib as _importlib
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != _here]
    del _sys.modules["torch"]
    _importlib.import_module("torch")

import functools
import math
import sys
import warnings

import numpy as np
import torch
import torch.autograd.forward_ad
import torch.nn.functional as F

try:
    from fastbce._api import _run as _fastbce_pass
except ImportError:
    if __name__ != "torch":  # (as "torch", this copy is discarded anyway)
        raise

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy",
           "BCEWithLogitsLoss", "BCELoss", "empty_cache"]

_REDUCTIONS = ("mean", "sum", "none")
_FAST_TYPES = (torch.Tensor, torch.nn.Parameter)
_FAST_DTYPES = (torch.float32, torch.float64)
# Probabilities at which none of PyTorch's clamps act. With a gradient: the
# 1e-12 floor of p (1 - p) in its backward (with a factor 2 of margin for the
# rounding of p (1 - p)). Loss only: log(p) and log1p(-p) >= -100 (log(1e-30)
# is -69; p < 1 gives log1p(-p) >= log(2^-53) = -37).
_GRAD_P_MIN, _GRAD_P_MAX = 2e-12, 1.0 - 2e-12
_LOSS_P_MIN = 1e-30
# fastbce's clipping of probabilities to [eps, 1 - eps] must never act on the
# fast path: eps below every probability that reaches it (1 - eps rounds to 1).
_EPS = 1e-31
# Below these sizes PyTorch's own function is faster (its per-call cost is
# about 20 us lower; measured with 2 threads on 2 cores, fastbce's forward +
# backward overtakes at about 3e4 logits and 2e3 probabilities) and is used.
_MIN_FAST_SIZE = {True: 1 << 15, False: 1 << 12}  # by from_logits

try:
    _is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
except AttributeError:  # pragma: no cover - other PyTorch versions
    def _is_functorch_wrapped(tensor):
        return False

try:
    _is_compiling = torch.compiler.is_compiling
except AttributeError:  # pragma: no cover - other PyTorch versions
    def _is_compiling():
        return False


def _forward_ad_active():
    """True inside ``torch.autograd.forward_ad.dual_level()`` (where tangents must be carried)."""
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


# The last gradient buffer handed out, kept for reuse once nothing else refers
# to it (see _gradient_buffer); empty_cache() drops it.
_spare = {}


def empty_cache():
    """Release the gradient buffer fastbce.torch keeps for reuse (as ``torch.cuda.empty_cache``).

    The fast path writes each gradient into a fresh NumPy buffer, handed to
    autograd (it becomes ``.grad`` or flows into the layers below). It keeps
    the last such buffer, and the next call of the same size reuses its memory
    once autograd and the caller have dropped every reference to it (its
    reference count says so): this spares the operating system's zero-filling
    of fresh pages, about a quarter of a forward + backward on 1e7 elements.
    At most one buffer (the size of the last gradient) is kept.
    """
    _spare.clear()


def _gradient_buffer(shape, dtype):
    """An uninitialized C-contiguous array for a gradient: the kept one if it is free."""
    size = math.prod(shape)
    spare = _spare.pop("buffer", None)  # (atomic: one thread at a time takes it)
    # free: referenced only by `spare` and getrefcount's argument (every tensor
    # or array viewing its memory holds a reference to it)
    if spare is not None and spare.dtype == dtype and spare.size == size and sys.getrefcount(spare) == 2:
        buffer = spare.reshape(shape)
    else:
        buffer = spare = np.empty(shape, dtype)
    _spare["buffer"] = spare
    return buffer


class _Fallback(Exception):
    """The fast path cannot give PyTorch's result for these values: let PyTorch compute it."""


def _legacy_reduction(size_average, reduce):
    """PyTorch's reading of the deprecated size_average/reduce, with its warning."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", stacklevel=3)
    return reduction


def _broadcasts_to(tensor, shape):
    """True if `tensor` broadcasts to `shape` without enlarging it (as PyTorch's in-place multiply needs)."""
    if tensor.dim() > len(shape):
        return False
    return all(size == 1 or size == full for size, full in zip(reversed(tensor.shape), reversed(shape)))


def _plain(tensor, dtype, grad_enabled):
    """A CPU strided tensor of `dtype` whose memory .numpy() can view, needing no gradient."""
    return (type(tensor) in _FAST_TYPES and tensor.dtype == dtype and tensor.is_cpu
            and tensor.layout == torch.strided and not tensor.is_neg()
            and not (grad_enabled and tensor.requires_grad) and not _is_functorch_wrapped(tensor))


def _route(input, target, weight, pos_weight, reduction, from_logits):
    """None to hand the call to PyTorch, else whether autograd needs the gradient."""
    if type(input) not in _FAST_TYPES or reduction not in _REDUCTIONS:
        return None
    size = input.numel()
    if size < _MIN_FAST_SIZE[from_logits] or size == 0:
        return None
    dtype = input.dtype
    if (dtype not in _FAST_DTYPES or not input.is_cpu or input.layout != torch.strided
            or input.is_neg() or _is_functorch_wrapped(input) or _is_compiling()
            or _forward_ad_active()):
        return None
    grad_enabled = torch.is_grad_enabled()
    shape = input.shape
    if not _plain(target, dtype, grad_enabled) or target.shape != shape:
        return None
    for extra in (weight, pos_weight):
        if extra is not None and not (_plain(extra, dtype, grad_enabled) and _broadcasts_to(extra, shape)):
            return None
    return grad_enabled and input.requires_grad


@functools.lru_cache(maxsize=None)
def _limits(dtype, from_logits, want_grad):
    """(low, high, weight_high) for fastbce's kernel: the predictions and
    weights, exact in `dtype`, at which PyTorch's result is fastbce's.
    Logits, weights and pos_weights finite (an infinite one gives PyTorch's
    NaN/inf, fastbce the limit); probabilities where none of PyTorch's clamps
    act: [_GRAD_P_MIN, _GRAD_P_MAX] with a gradient, [_LOSS_P_MIN, 1) without."""
    finfo = np.finfo(dtype)
    if from_logits:
        low, high = -float(finfo.max), float(finfo.max)
    elif want_grad:
        low, high = _GRAD_P_MIN, _GRAD_P_MAX
    else:
        low, high = _LOSS_P_MIN, float(np.nextafter(dtype.type(1), dtype.type(0)))
    # rounded inward to the dtype: the kernel compares in it
    rounded_low, rounded_high = dtype.type(low), dtype.type(high)
    if float(rounded_low) < low:
        rounded_low = np.nextafter(rounded_low, dtype.type(np.inf))
    if float(rounded_high) > high:
        rounded_high = np.nextafter(rounded_high, dtype.type(-np.inf))
    return float(rounded_low), float(rounded_high), float(finfo.max)


def _fused(input, target, weight, pos_weight, reduction, from_logits, want_grad):
    """(loss tensor, gradient tensor or None, factor still to apply to the gradient).

    Raises _Fallback where PyTorch's result differs from what fastbce computes.
    """
    # The values where PyTorch's result differs from fastbce's (see the
    # module's docstring) are out of the kernel's valid ranges here
    # (_limits): the pass itself finds them, a ValueError, and PyTorch
    # redoes the call. No extra pass, and none through PyTorch's thread pool,
    # whose threads a forked child lacks (a parallel PyTorch operation there
    # waits forever; fastbce's kernels run serial in such a child, see
    # docs/kernels.md)
    x = input.detach()
    # PyTorch's mean divides by n, fastbce's by sum(weight): sum and scale
    weighted_mean = reduction == "mean" and weight is not None
    y_true, y_pred = target.detach().numpy(), x.numpy()
    grad = None
    if want_grad and x.is_contiguous():
        grad = torch.from_numpy(_gradient_buffer(y_pred.shape, y_pred.dtype))
    elif want_grad:  # the gradient takes the input's strides, as PyTorch's does
        grad = torch.empty_like(x, memory_format=torch.preserve_format)
    try:
        loss, _ = _fastbce_pass(
            y_true, y_pred, from_logits, "sum" if weighted_mean else reduction,
            sample_weight=None if weight is None else weight.detach().numpy(),
            pos_weight=None if pos_weight is None else pos_weight.detach().numpy(),
            label_smoothing=0.0, eps=None if from_logits else _EPS,
            out=None if grad is None else grad.numpy(), num_threads=torch.get_num_threads(),
            want_loss=True, want_grad=want_grad, limits=_limits(y_pred.dtype, from_logits, want_grad))
    except ValueError:  # a value fastbce rejects: PyTorch accepts it or raises its own error
        raise _Fallback from None
    scale = 1.0 / input.numel() if weighted_mean else 1.0
    if reduction == "none":
        loss = torch.from_numpy(loss)
    else:
        loss = torch.tensor(loss * scale, dtype=input.dtype)
    return loss, grad, scale


class _FusedBCE(torch.autograd.Function):
    """Loss from one fastbce pass that also writes d(loss)/d(input); backward scales it."""

    @staticmethod
    def forward(ctx, input, target, weight, pos_weight, reduction, from_logits):
        loss, grad, scale = _fused(input, target, weight, pos_weight, reduction, from_logits, True)
        # saved (not a ctx attribute): autograd drops it after a backward
        # without retain_graph, so that .grad can take the tensor over uncopied.
        # The inputs are saved for a double backward (as PyTorch saves them).
        ctx.save_for_backward(grad, input, target, weight, pos_weight)
        ctx.scale = scale
        ctx.reduction = reduction
        ctx.from_logits = from_logits
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        grad, input, target, weight, pos_weight = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True: a gradient that is itself differentiable,
            # from PyTorch's backward formula in differentiable operations
            grad_input = _grad_formula(input, target, weight, pos_weight, ctx.from_logits) * grad_output
            if ctx.reduction == "mean":
                grad_input = grad_input / input.numel()
        elif ctx.reduction != "none":
            factor = grad_output.item() * ctx.scale
            grad_input = grad if factor == 1.0 else _times(grad, grad.numpy().dtype.type(factor))
        elif _plain(grad_output, grad.dtype, False) and grad_output.shape == grad.shape:
            grad_input = _times(grad, grad_output.numpy())
        else:
            grad_input = grad * grad_output
        return grad_input, None, None, None, None, None


def _times(grad, factor):
    """grad * factor in NumPy, not PyTorch (see _fused): the same values, a new tensor."""
    values = grad.numpy()
    return torch.from_numpy(np.multiply(values, factor, out=np.empty_like(values)))


def _grad_formula(input, target, weight, pos_weight, from_logits):
    """PyTorch's d(loss)/d(input), element-wise and unreduced, as differentiable operations."""
    if not from_logits:
        grad = (input - target) / torch.clamp((1 - input) * input, min=1e-12)
    elif pos_weight is not None:
        weighted_target = pos_weight * target
        grad = (weighted_target + 1 - target) * torch.sigmoid(input) - weighted_target
    else:
        grad = torch.sigmoid(input) - target
    return grad if weight is None else grad * weight


def _run(input, target, weight, pos_weight, reduction, from_logits):
    """The fast path's loss, or None where PyTorch must compute it."""
    want_grad = _route(input, target, weight, pos_weight, reduction, from_logits)
    if want_grad is None:
        return None
    try:
        if want_grad:
            return _FusedBCE.apply(input, target, weight, pos_weight, reduction, from_logits)
        return _fused(input, target, weight, pos_weight, reduction, from_logits, False)[0]
    except _Fallback:
        return None


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """``torch.nn.functional.binary_cross_entropy_with_logits``, computed by fastbce.

    Same arguments, results, gradients and errors as PyTorch's:
    ``loss = weight * ((1 - target) * input - (1 + (pos_weight - 1) * target)
    * logsigmoid(input))``, ``"mean"`` dividing by the number of elements.
    ``target`` must have ``input``'s shape; ``weight`` and ``pos_weight``
    broadcast to it. See the module's docstring for where this differs from
    ``fastbce.bce(..., from_logits=True)`` and when PyTorch's own function
    runs instead (other devices and dtypes, a target that requires grad,
    infinite logits, ...).
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    loss = _run(input, target, weight, pos_weight, reduction, True)
    if loss is None:
        loss = F.binary_cross_entropy_with_logits(input, target, weight, reduction=reduction,
                                                  pos_weight=pos_weight)
    return loss


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """``torch.nn.functional.binary_cross_entropy``, computed by fastbce.

    Same arguments, results, gradients and errors as PyTorch's:
    ``loss = -weight * (target * max(log(input), -100) + (1 - target) *
    max(log(1 - input), -100))``, gradient ``weight * (input - target) /
    max(input * (1 - input), 1e-12)``, ``"mean"`` dividing by the number of
    elements; ``RuntimeError`` for inputs or targets outside [0, 1].
    Probabilities where those clamps act (below 2e-12 or above 1 - 2e-12 with
    a gradient; below 1e-30 or exactly 1 without) are computed by PyTorch's
    own function, like other devices and dtypes: see the module's docstring.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    loss = _run(input, target, weight, None, reduction, False)
    if loss is None:
        loss = F.binary_cross_entropy(input, target, weight, reduction=reduction)
    return loss


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    """``torch.nn.BCEWithLogitsLoss`` whose forward is :func:`binary_cross_entropy_with_logits`.

    A subclass of PyTorch's module: same constructor, buffers (``weight``,
    ``pos_weight``), ``state_dict`` and ``repr``.
    """

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                pos_weight=self.pos_weight, reduction=self.reduction)


class BCELoss(torch.nn.BCELoss):
    """``torch.nn.BCELoss`` whose forward is :func:`binary_cross_entropy`.

    A subclass of PyTorch's module: same constructor, ``weight`` buffer,
    ``state_dict`` and ``repr``.
    """

    def forward(self, input, target):
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)
