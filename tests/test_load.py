"""Load and faults: many Python threads at once, memory over thousands of
calls (error paths included), and inputs of more than 2**31 and 2**32
elements (without that much memory).

Nothing here is timed: no assertion is on a duration.

1. Threads: 8 Python threads call every entry point at once, on inputs large
   enough for the kernels' own thread pool, with failing calls interleaved;
   every result must be bit-identical (bytes of arrays, ``float.hex`` of
   floats) to the same call made alone on the main thread beforehand, and
   every error message identical.
2. Memory: anonymous resident memory (Linux ``/proc/self/status``) stays flat over
   thousands of calls of each entry point, failing calls included, each
   entry point measured in a fresh subprocess.
3. Size: a 2-D and a 1-D call over more than 2**32 elements built from
   strided views of a few MB (``np.broadcast_to``, ``as_strided`` with
   overlapping rows) are right, and an invalid value past 2**31 (and past
   2**32) is named by its true index. A 1-D operand whose invalid element
   lies past 2**31 cannot be a view of a small array (one stride: stride 0
   repeats one element everywhere), so it is an ``np.zeros`` array, whose
   untouched pages the kernel reads as the operating system's shared zero
   page (no resident memory; Linux), which also gives ``evaluate`` a 1-D
   population of more than 2**31; and, with ``FASTBCE_BIG_TESTS=1`` and
   16 GB available, a real 10.7 GB one (about a minute).
"""
import concurrent.futures
import json
import math
import os
import random
import subprocess
import sys
import threading

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastbce
from fastbce import _kernels, metrics

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _canon(value):
    """A hashable, exactly comparable form of a result: arrays as (dtype,
    shape, bytes), floats as float.hex (so -0.0 != 0.0 and every bit counts),
    exceptions as (type, message)."""
    if isinstance(value, BaseException):
        return ("error", type(value).__name__, str(value))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (float, np.floating)):
        return ("float", type(value).__name__, float(value).hex())
    if isinstance(value, (int, np.integer)):
        return ("int", int(value))
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return ("dict", tuple((key, _canon(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_canon(item) for item in value))
    if isinstance(value, fastbce.Evaluation):
        return ("evaluation", _canon(value.to_dict()))
    if type(value).__module__.startswith("torch"):
        return ("tensor", _canon(value.detach().numpy()))
    raise TypeError(f"no exact comparison for {type(value).__name__}")


def _first_difference(got, want, path="result"):
    """Where two _canon values first differ, in words."""
    if type(got) is not type(want):
        return f"{path}: {str(got)[:200]} != {str(want)[:200]}"
    if isinstance(got, tuple) and got and got[0] == "array" and want[0] == "array" and got[1:3] == want[1:3]:
        dtype, shape = np.dtype(got[1]), got[2]
        a, b = (np.frombuffer(v[3], dtype).reshape(shape) for v in (got, want))
        at = tuple(np.argwhere(a.view(f"u{dtype.itemsize}") != b.view(f"u{dtype.itemsize}"))[0])
        return f"{path}[{', '.join(map(str, at))}]: {a[at]!r} != {b[at]!r}"
    if isinstance(got, tuple) and len(got) == len(want):
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                return _first_difference(g, w, f"{path}.{i}")
    return f"{path}: {str(got)[:200]} != {str(want)[:200]}"


def _outcome(call):
    try:
        return _canon(call())
    except (ValueError, TypeError) as error:
        return _canon(error)


def _run_python(code, *args, **env):
    """Run `code` (with sys.argv[1:] = args) in a fresh interpreter that
    imports this same fastbce (as tests/test_dispatch.py; FASTBCE_TARGET, if
    set, is kept: the same kernels are measured)."""
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    environ = dict(os.environ, PYTHONPATH=where, **env)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=environ, cwd=os.path.dirname(where) or "/", timeout=300)


def _mem_available():
    """MemAvailable in bytes (Linux), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------
# 1. many Python threads at once
# --------------------------------------------------------------------------

N = (1 << 16) + 3          # above the kernels' serial threshold (2**15): their thread pool runs
ROWS_2D, COLS_2D = 256, 257      # a 2-D case of 65,792 elements
N_WORKERS = 8
REPEATS = 3                # every case this many times in every worker


def _thread_inputs():
    rng = np.random.default_rng(2024)
    x64 = rng.normal(0.0, 4.0, N)
    p64 = 1.0 / (1.0 + np.exp(-x64))
    p64[::997] = 0.0        # clipping matters
    p64[5::1009] = 1.0
    d = dict(
        y=rng.integers(0, 2, N).astype(np.uint8),
        y_soft=rng.random(N).astype(np.float32),
        x32=x64.astype(np.float32), x64=x64,
        p32=p64.astype(np.float32), p64=p64,
        w32=(rng.random(N) * 2).astype(np.float32),
        pw64=rng.uniform(0.5, 3.0, N),
        groups=rng.integers(0, 7, N),
        groups_str=np.array(["a", "bb", "c"])[rng.integers(0, 3, N)],
        y2=rng.integers(0, 2, (ROWS_2D, COLS_2D)).astype(np.int8),
        x2=rng.normal(0.0, 3.0, (ROWS_2D, COLS_2D)).astype(np.float32),
        w_col=rng.random((ROWS_2D, 1)),
    )
    d["p2"] = (1.0 / (1.0 + np.exp(-d["x2"]))).astype(np.float32)
    # bad copies: each invalid value past the first blocks, with valid ones before it
    d["p_nan"] = d["p32"].copy(); d["p_nan"][N - 7] = np.nan
    d["p_big"] = d["p64"].copy(); d["p_big"][40_000] = 1.5
    d["x_nan"] = d["x32"].copy(); d["x_nan"][50_001] = np.nan
    d["y_two"] = d["y"].copy(); d["y_two"][33_333] = 2
    d["w_neg"] = d["w32"].copy(); d["w_neg"][60_000] = -0.5
    d["pw_zero"] = d["pw64"].copy(); d["pw_zero"][45_678] = 0.0
    d["x2_nan"] = d["x2"].copy(); d["x2_nan"][200, 100] = np.nan
    for array in d.values():
        array.flags.writeable = False
    return d


def _evaluator_merged(d, num_threads):
    half = N // 2
    first = fastbce.Evaluator(bins=16, class_weight="balanced", num_threads=num_threads)
    first.update(d["y"][:half], d["p32"][:half], sample_weight=d["w32"][:half], groups=d["groups"][:half])
    second = fastbce.Evaluator(bins=16, class_weight="balanced", num_threads=num_threads)
    second.update(d["y"][half:], d["p32"][half:], sample_weight=d["w32"][half:], groups=d["groups"][half:])
    return first.merge(second).result()


def _thread_cases(d):
    """(name, zero-argument call) for every entry point, failing calls included."""
    cases = []
    for t in (2, None):
        k = dict(num_threads=t)
        cases += [
            (f"bce logits f32 mean t={t}", lambda k=k: fastbce.bce(d["y"], d["x32"], from_logits=True, **k)),
            (f"bce logits f64 sum weighted t={t}", lambda k=k: fastbce.bce(
                d["y"], d["x64"], from_logits=True, reduction="sum", sample_weight=d["w32"],
                pos_weight=d["pw64"], **k)),
            (f"bce proba f32 none t={t}", lambda k=k: fastbce.bce(d["y"], d["p32"], reduction="none", **k)),
            (f"bce proba f64 mean smoothing t={t}", lambda k=k: fastbce.bce(
                d["y_soft"], d["p64"], label_smoothing=0.1, pos_weight=2.5, **k)),
            (f"bce 2-D axis=-1 t={t}", lambda k=k: fastbce.bce(
                d["y2"], d["x2"], from_logits=True, axis=-1, sample_weight=d["w_col"], **k)),
            (f"bce 2-D broadcast weights t={t}", lambda k=k: fastbce.bce(
                d["y2"], d["p2"], sample_weight=d["w_col"], **k)),
            (f"bce_grad logits mean weighted t={t}", lambda k=k: fastbce.bce_grad(
                d["y"], d["x32"], from_logits=True, sample_weight=d["w32"], **k)),
            (f"bce_grad proba out= t={t}", lambda k=k: fastbce.bce_grad(
                d["y"], d["p64"], reduction="sum", out=np.empty(N), **k)),
            (f"bce_and_grad logits t={t}", lambda k=k: fastbce.bce_and_grad(
                d["y"], d["x32"], from_logits=True, pos_weight=d["pw64"], **k)),
            (f"bce_and_grad proba none t={t}", lambda k=k: fastbce.bce_and_grad(
                d["y_soft"], d["p32"], reduction="none", **k)),
            (f"bce_and_grad 2-D axis=0 t={t}", lambda k=k: fastbce.bce_and_grad(
                d["y2"], d["x2"], from_logits=True, axis=0, **k)),
            (f"grad_hess t={t}", lambda k=k: fastbce.grad_hess(
                d["y"], d["x32"], sample_weight=d["w32"], pos_weight=1.5, **k)),
            (f"sigmoid t={t}", lambda k=k: fastbce.sigmoid(d["x64"], **k)),
            (f"log_sigmoid t={t}", lambda k=k: fastbce.log_sigmoid(d["x32"], **k)),
            (f"softplus 2-D t={t}", lambda k=k: fastbce.softplus(d["x2"], **k)),
            (f"evaluate bins groups t={t}", lambda k=k: fastbce.evaluate(
                d["y"], d["p32"], sample_weight=d["w32"], groups=d["groups"], bins=32, **k)),
            (f"evaluate logits string groups t={t}", lambda k=k: fastbce.evaluate(
                d["y_soft"], d["x64"], from_logits=True, groups=d["groups_str"], bins=10,
                pos_weight=d["pw64"], **k)),
            (f"evaluate 2-D axis=0 t={t}", lambda k=k: fastbce.evaluate(d["y2"], d["p2"], axis=0, **k)),
            (f"Evaluator update merge result t={t}", lambda t=t: _evaluator_merged(d, t)),
            # failing calls
            (f"bce NaN probability t={t}", lambda k=k: fastbce.bce(d["y"], d["p_nan"], **k)),
            (f"bce probability 1.5 t={t}", lambda k=k: fastbce.bce(d["y"], d["p_big"], reduction="none", **k)),
            (f"bce NaN logit t={t}", lambda k=k: fastbce.bce(d["y"], d["x_nan"], from_logits=True, **k)),
            (f"bce_grad label 2 t={t}", lambda k=k: fastbce.bce_grad(d["y_two"], d["p32"], **k)),
            (f"bce_and_grad negative weight t={t}", lambda k=k: fastbce.bce_and_grad(
                d["y"], d["x32"], from_logits=True, sample_weight=d["w_neg"], **k)),
            (f"bce_and_grad pos_weight 0 t={t}", lambda k=k: fastbce.bce_and_grad(
                d["y"], d["x64"], from_logits=True, pos_weight=d["pw_zero"], **k)),
            (f"bce 2-D NaN axis=-1 t={t}", lambda k=k: fastbce.bce(
                d["y2"], d["x2_nan"], from_logits=True, axis=-1, **k)),
            (f"grad_hess NaN t={t}", lambda k=k: fastbce.grad_hess(d["y"], d["x_nan"], **k)),
            (f"grad_hess shapes t={t}", lambda k=k: fastbce.grad_hess(d["y"], d["x32"][:-1], **k)),
            (f"sigmoid complex t={t}", lambda k=k: fastbce.sigmoid(d["x64"].astype(complex), **k)),
            (f"evaluate label 2 t={t}", lambda k=k: fastbce.evaluate(
                d["y_two"], d["p32"], groups=d["groups"], bins=8, **k)),
            (f"evaluate negative weight t={t}", lambda k=k: fastbce.evaluate(
                d["y"], d["p64"], sample_weight=d["w_neg"], bins=8, **k)),
        ]
    cases += [
        ("log_loss f32", lambda: metrics.log_loss(d["y"], d["p32"])),
        ("log_loss f64 weighted", lambda: metrics.log_loss(d["y"], d["p64"], sample_weight=d["w32"])),
        ("log_loss two columns", lambda: metrics.log_loss(
            d["y"], np.stack([1 - d["p64"], d["p64"]], axis=1))),
        ("log_loss string labels", lambda: metrics.log_loss(
            np.where(d["y"] == 1, "spam", "ham"), d["p32"])),
        ("log_loss NaN", lambda: metrics.log_loss(d["y"], d["p_nan"])),
        ("log_loss label 2", lambda: metrics.log_loss(d["y_two"], d["p32"], labels=[0, 1])),
        ("log_loss lengths", lambda: metrics.log_loss(d["y"], d["p32"][:-1])),
    ]
    return cases


def _hammer(cases, reference, n_workers=N_WORKERS, repeats=REPEATS):
    """Run every case `repeats` times in each of n_workers threads, in a
    different shuffled order per thread, all starting at once; returns the
    mismatches with `reference` and the number of calls made."""
    barrier = threading.Barrier(n_workers)

    def worker(seed):
        order = [i for i in range(len(cases)) for _ in range(repeats)]
        random.Random(seed).shuffle(order)
        barrier.wait(timeout=60)
        mismatches = []
        for i in order:
            name, call = cases[i]
            got = _outcome(call)
            if got != reference[i]:
                mismatches.append(f"thread {seed}, {name}: {_first_difference(got, reference[i])}")
        return mismatches, len(order)

    with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
        results = list(pool.map(worker, range(n_workers)))
    return [m for mismatches, _ in results for m in mismatches], sum(n for _, n in results)


def test_many_threads_at_once_give_the_results_of_one_call_alone():
    d = _thread_inputs()
    cases = _thread_cases(d)
    reference = [_outcome(call) for _, call in cases]  # alone, on the main thread
    # the case list means what it says: the failing calls fail, the others do not
    failing = {name for (name, _), got in zip(cases, reference) if got[0] == "error"}
    expected_failing = {name for name, _ in cases
                        if any(word in name for word in ("NaN", "1.5", "label 2", "negative", "pos_weight 0",
                                                          "shapes", "complex", "lengths"))}
    assert failing == expected_failing, failing ^ expected_failing
    assert any(got[1] == "TypeError" for got in reference)
    mismatches, calls = _hammer(cases, reference)
    assert calls == N_WORKERS * REPEATS * len(cases)
    assert not mismatches, f"{len(mismatches)} results differ from the call alone:\n" + "\n".join(mismatches[:10])


def _torch_cases(torch, fbt):
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.normal(0, 3, (N,)).astype(np.float32))
    target = torch.from_numpy(rng.integers(0, 2, N).astype(np.float32))
    p = torch.sigmoid(x).clamp(1e-6, 1 - 1e-6)
    weight = torch.from_numpy(rng.random(N).astype(np.float32))
    pos_weight = torch.tensor(2.0)
    x2 = torch.from_numpy(rng.normal(0, 3, (ROWS_2D, COLS_2D)))  # float64
    t2 = torch.from_numpy(rng.random((ROWS_2D, COLS_2D)))
    bad_target = target.clone()
    bad_target[12_345] = 2.0

    def backward(loss_fn, inputs, *args, reduction_sum=False):
        leaf = inputs.clone().requires_grad_(True)
        loss = loss_fn(leaf, *args)
        (loss.sum() if reduction_sum else loss).backward()
        return loss.detach(), leaf.grad

    return [
        ("bce_with_logits", lambda: backward(fbt.binary_cross_entropy_with_logits, x, target)),
        ("bce_with_logits weighted sum", lambda: backward(
            lambda i, t: fbt.binary_cross_entropy_with_logits(i, t, weight, reduction="sum",
                                                             pos_weight=pos_weight), x, target)),
        ("BCEWithLogitsLoss none f64 2-D", lambda: backward(
            fbt.BCEWithLogitsLoss(reduction="none"), x2, t2, reduction_sum=True)),
        ("binary_cross_entropy", lambda: backward(fbt.binary_cross_entropy, p, target)),
        ("BCELoss weighted", lambda: backward(fbt.BCELoss(weight=weight), p, target)),
        ("forward only", lambda: fbt.binary_cross_entropy_with_logits(x, target, reduction="none")),
        # fastbce refuses the label 2 and hands the call to PyTorch (element-wise:
        # PyTorch's own reductions are not what this test is about)
        ("target 2 (PyTorch's own result)", lambda: backward(
            lambda i, t: fbt.binary_cross_entropy_with_logits(i, t, reduction="none"), x, bad_target,
            reduction_sum=True)),
        ("probability > 1 (PyTorch's RuntimeError)", lambda: _torch_error(
            torch, lambda: fbt.binary_cross_entropy(p * 2, target))),
    ]


def _torch_error(torch, call):
    try:
        call()
    except RuntimeError as error:
        return ("RuntimeError", str(error))
    return "no error"


def test_many_threads_at_once_with_fastbce_torch():
    """fastbce.torch's forward + backward from 8 threads: the gradient buffer
    it keeps for reuse is shared by every thread (a gradient written into a
    buffer another thread still uses would show here)."""
    torch = pytest.importorskip("torch")
    import fastbce.torch as fbt
    cases = _torch_cases(torch, fbt)
    reference = [_outcome(call) for _, call in cases]
    assert "RuntimeError" in str(reference[-1])
    mismatches, calls = _hammer(cases, reference, repeats=4)
    assert calls == N_WORKERS * 4 * len(cases)
    assert not mismatches, f"{len(mismatches)} results differ from the call alone:\n" + "\n".join(mismatches[:10])


# --------------------------------------------------------------------------
# 2. resident memory over thousands of calls, failing calls included
# --------------------------------------------------------------------------

# Run in a fresh interpreter per entry point (so that one entry point's
# allocations do not blur another's): build the inputs, warm up (every call
# WARM_ROUNDS times: caches, NumPy's and malloc's free lists, OpenMP's pool
# reach their steady size), read the anonymous resident set size (a leak's
# arrays and objects; the pages of shared libraries' code, which a path run
# first in the measured phase faults in, are reported but not bounded), make every call
# ROUNDS times (phase 1), count the live Python objects
# (sys.getallocatedblocks), make every call ROUNDS times again (phase 2),
# read both again; print the growth of each. A round makes every small call
# once and, every MEDIUM_EVERY rounds, every medium call once.
_MEMORY_SCRIPT = r'''
import gc, json, os, sys, warnings
import numpy as np
import fastbce
from fastbce import metrics

GROUP, WARM_ROUNDS, ROUNDS, MEDIUM_EVERY = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def rss(field="RssAnon"):
    """Resident memory of one kind, in bytes: anonymous pages (the heap,
    arrays, thread stacks: where a leak shows) by default. Pages mapped from
    files (a shared library's code faulted in the first time a rare path
    runs) are counted apart and reported, not bounded."""
    with open("/proc/self/status") as status:
        sizes = dict(line.split(":", 1) for line in status)
    return int(sizes[field].split()[0]) * 1024


def inputs(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, n)
    p = 1.0 / (1.0 + np.exp(-x))
    d = dict(y=rng.integers(0, 2, n).astype(np.uint8), x32=x.astype(np.float32), x64=x,
             p32=p.astype(np.float32), p64=p, w=rng.random(n).astype(np.float32),
             groups=rng.integers(0, 5, n))
    d["p_nan"] = d["p32"].copy(); d["p_nan"][n - 3] = np.nan
    d["x_nan"] = d["x32"].copy(); d["x_nan"][n - 3] = np.nan
    d["y_two"] = d["y"].copy(); d["y_two"][n - 2] = 2
    d["w_neg"] = d["w"].copy(); d["w_neg"][n - 1] = -1.0
    d["complex"] = d["p64"].astype(np.complex128)
    d["short"] = d["p32"][:-1]
    d["out32"] = np.empty(n, np.float32)
    return d


SMALL = inputs(1000, 1)            # on the calling thread
MEDIUM = inputs((1 << 16) + 3, 2)  # on the kernels' thread pool


def fails(exception, call, *args, **kwargs):
    def run():
        try:
            call(*args, **kwargs)
        except exception:
            return
        raise AssertionError(f"{call.__name__} did not raise {exception.__name__}")
    return run


def bce_like(f, d, grad_hess=False):
    """Good and failing calls of a function of (y_true, y_pred, **keywords)."""
    logit = {} if grad_hess else {"from_logits": True}
    calls = [lambda: f(d["y"], d["x32"], **logit),
             lambda: f(d["y"], d["x64"], sample_weight=d["w"], pos_weight=2.0, **logit),
             fails(ValueError, f, d["y"], d["x_nan"], **logit),
             fails(ValueError, f, d["y_two"], d["x32"], **logit),
             fails(ValueError, f, d["y"], d["x32"], sample_weight=d["w_neg"], **logit),
             fails(TypeError, f, d["y"], d["complex"], **logit),
             fails(ValueError, f, d["y"], d["short"], **logit)]
    if not grad_hess:
        calls += [lambda: f(d["y"], d["p32"], reduction="sum"),
                  lambda: f(d["y"], d["p64"], reduction="none"),
                  lambda: f(d["y"].reshape(1, -1), d["x32"].reshape(1, -1), from_logits=True, axis=-1),
                  fails(ValueError, f, d["y"], d["p_nan"]),
                  fails(ValueError, f, d["y_two"], d["p32"], reduction="none")]
    return calls


def elementwise(d):
    calls = []
    for f in (fastbce.sigmoid, fastbce.log_sigmoid, fastbce.softplus):
        calls += [lambda f=f: f(d["x64"]), lambda f=f: f(d["x32"], out=d["out32"]),
                  fails(TypeError, f, d["complex"]), fails(ValueError, f, d["x64"], out=d["out32"]),
                  fails(ValueError, f, d["x32"], num_threads=0)]
    return calls


def evaluate(d):
    e = fastbce.evaluate
    return [lambda: e(d["y"], d["p32"]),
            lambda: e(d["y"], d["p64"], sample_weight=d["w"], groups=d["groups"], bins=20),
            lambda: e(d["y"], d["x32"], from_logits=True, class_weight="balanced", bins=8),
            fails(ValueError, e, d["y"], d["p_nan"], groups=d["groups"], bins=20),
            fails(ValueError, e, d["y_two"], d["p32"], bins=20),
            fails(ValueError, e, d["y"], d["p32"], sample_weight=d["w_neg"], groups=d["groups"]),
            fails(TypeError, e, d["y"], d["complex"]),
            fails(ValueError, e, d["y"], d["short"])]


def evaluator(d):
    half = d["y"].size // 2

    def merged():
        a = fastbce.Evaluator(bins=10).update(d["y"][:half], d["p32"][:half], groups=d["groups"][:half])
        b = fastbce.Evaluator(bins=10).update(d["y"][half:], d["p32"][half:], groups=d["groups"][half:])
        return a.merge(b).result()

    def bad_updates():
        acc = fastbce.Evaluator(bins=10).update(d["y"], d["p32"])
        for args in ((d["y"], d["p_nan"]), (d["y_two"], d["p32"]), (d["y"], d["short"])):
            try:
                acc.update(*args)
            except ValueError:
                pass
            else:
                raise AssertionError("no error")
        try:
            acc.update(d["y"], d["p32"], sample_weight=d["w_neg"])
        except ValueError:
            pass
        else:
            raise AssertionError("no error")
        return acc.result()

    return [merged, bad_updates, fails(TypeError, fastbce.Evaluator().update, d["y"], d["complex"])]


def log_loss(d):
    f = metrics.log_loss
    return [lambda: f(d["y"], d["p32"]), lambda: f(d["y"], d["p64"], sample_weight=d["w"]),
            lambda: f(np.where(d["y"] == 1, "spam", "ham"), d["p32"]),
            fails(ValueError, f, d["y"], d["p_nan"]), fails(ValueError, f, d["y_two"], d["p32"], labels=[0, 1]),
            fails(ValueError, f, d["y"], d["p32"], sample_weight=d["w_neg"]),
            fails(ValueError, f, d["y"], d["complex"]), fails(ValueError, f, d["y"], d["short"])]


def torch_calls(d):
    import torch
    import fastbce.torch as fbt
    x, t, w = (torch.from_numpy(d[k]).float() for k in ("x32", "y", "w"))
    p = torch.from_numpy(d["p32"]).clamp(1e-6, 1 - 1e-6)

    def backward(loss_fn, inputs, *args):
        leaf = inputs.clone().requires_grad_(True)
        loss_fn(leaf, *args).backward()
        return leaf.grad

    return [lambda: backward(fbt.binary_cross_entropy_with_logits, x, t),
            lambda: backward(fbt.BCEWithLogitsLoss(weight=w, reduction="sum"), x, t),
            lambda: backward(fbt.binary_cross_entropy, p, t),
            lambda: backward(fbt.BCELoss(weight=w), p, t),
            fails(RuntimeError, fbt.binary_cross_entropy, p * 2, t),
            fails(ValueError, fbt.binary_cross_entropy_with_logits, x, t[:-1])]


GROUPS = {
    "bce": lambda d: bce_like(fastbce.bce, d),
    "bce_grad": lambda d: bce_like(fastbce.bce_grad, d),
    "bce_and_grad": lambda d: bce_like(fastbce.bce_and_grad, d),
    "grad_hess": lambda d: bce_like(fastbce.grad_hess, d, grad_hess=True),
    "sigmoid/log_sigmoid/softplus": elementwise,
    "evaluate": evaluate,
    "Evaluator": evaluator,
    "metrics.log_loss": log_loss,
    "fastbce.torch": torch_calls,
}
small_calls, medium_calls = GROUPS[GROUP](SMALL), GROUPS[GROUP](MEDIUM)
warnings.simplefilter("ignore")


def rounds(n):
    """Every small call n times, every medium call n / MEDIUM_EVERY times."""
    for i in range(n):
        for call in small_calls:
            call()
        if i % MEDIUM_EVERY == 0:
            for call in medium_calls:
                call()


rounds(WARM_ROUNDS)
gc.collect()
rss_start, file_rss_start = rss(), rss("RssFile")
rounds(ROUNDS)
gc.collect()
blocks_middle = sys.getallocatedblocks()
rounds(ROUNDS)
gc.collect()
print(json.dumps({"small_calls": 2 * ROUNDS * len(small_calls),
                  "medium_calls": 2 * -(-ROUNDS // MEDIUM_EVERY) * len(medium_calls),
                  "rss_growth": rss() - rss_start, "blocks_growth": sys.getallocatedblocks() - blocks_middle,
                  "rounds": ROUNDS, "rss": rss(), "file_rss_growth": rss("RssFile") - file_rss_start}))
'''

MEMORY_GROUPS = ["bce", "bce_grad", "bce_and_grad", "grad_hess", "sigmoid/log_sigmoid/softplus", "evaluate",
                 "Evaluator", "metrics.log_loss", "fastbce.torch"]

# Bounds. Over its two phases a group makes each of its small calls
# 2 * rounds >= 800 times (1,000 elements: the outputs and float arrays of a
# call are 4-8 KiB) and each medium call 2 * rounds / medium_every >= 20
# times (65,539 elements: 64 KiB of labels, 256-512 KiB float arrays).
# Leaking one output or float array per call of any single one of these call
# types adds >= 3 MiB (small: 800 x 4 KiB; medium: 20 x 256 KiB), three times
# the bound, and leaking it on every call (or keeping a failing call's
# traceback and the arrays its frames hold) far more. Measured here (2 cores,
# glibc, CPython 3.11, runs repeated): growth of 0-80 KiB, 150-400 KiB with
# PyTorch loaded (CPython's arenas and malloc's free lists settling), so
# PyTorch's group has twice the bound: its 20 medium calls of each kind
# handle 256 KiB tensors (5 MiB for one leaked per call) and its 1,000 small
# calls of each kind 4 KiB ones.
RSS_GROWTH_BOUND = {"fastbce.torch": 2 << 20}
DEFAULT_RSS_GROWTH_BOUND = 1 << 20
# Python objects (sys.getallocatedblocks()) over the second phase only, once
# caches have settled: one leaked object (a view, a tuple, an exception) per
# call of a single call type adds `rounds` blocks, twice the bound; measured
# here: 13-120, and 291 once for Evaluator in CI's environment (pandas,
# pyarrow, polars installed), whatever the number of rounds (caches
# settling, not a trend).
MIN_ROUNDS = 500
# (warm-up rounds, rounds per phase, medium calls every this many rounds)
MEMORY_ROUNDS = {"evaluate": (40, 800, 40), "Evaluator": (20, 800, 40), "fastbce.torch": (20, 500, 50)}
DEFAULT_MEMORY_ROUNDS = (60, 500, 25)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status (Linux)")
@pytest.mark.parametrize("group", MEMORY_GROUPS)
def test_resident_memory_stays_flat_over_thousands_of_calls(group):
    if group == "fastbce.torch":
        pytest.importorskip("torch")
    warm, rounds, medium_every = MEMORY_ROUNDS.get(group, DEFAULT_MEMORY_ROUNDS)
    proc = _run_python(_MEMORY_SCRIPT, group, warm, rounds, medium_every)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rounds >= MIN_ROUNDS and 2 * rounds // medium_every >= 20, (rounds, medium_every)
    assert report["small_calls"] >= 2000 and report["medium_calls"] >= 40, report
    assert report["rss_growth"] < RSS_GROWTH_BOUND.get(group, DEFAULT_RSS_GROWTH_BOUND), (
        f"{group}: resident memory grew by {report['rss_growth'] / 2**20:.2f} MiB over "
        f"{report['small_calls']} small and {report['medium_calls']} medium calls: {report}")
    assert report["blocks_growth"] < rounds // 2, (
        f"{group}: {report['blocks_growth']} more Python objects after {rounds} rounds: {report}")


# --------------------------------------------------------------------------
# 3. more than 2**31 and 2**32 elements, from views of a few MB
# --------------------------------------------------------------------------
# Logits: their kernel runs about 1e9 elements/s on 2 cores here, so that a
# pass over 2**32 elements takes a few seconds.
# Tolerance of the reduced results against the float64 closed forms below:
# both add the same float32 per-element losses (the closed form gets them
# from fastbce element-wise) in float64; the kernel adds them in 16 lanes
# per 16,384-element block and the blocks in order, all terms positive (no
# cancellation), so its rounding errors are those of a float64 sum of
# positive terms: a relative 1e-14 or so here (random-walk growth over
# ~2**18 block sums), and 1e-12 leaves room for any summation order while a
# miscounted element, row, or block (2**-32 relative at the very least: one
# element of 2**32) or a wrong divisor shows.
RTOL_HUGE = 1e-12
BIG_TESTS = os.environ.get("FASTBCE_BIG_TESTS") == "1"


def huge(test):
    """Shapes of more than 2**31 elements need a 64-bit Py_ssize_t. On a
    lower kernel target forced with FASTBCE_TARGET (as CI runs the suite once
    per target) these tests take minutes (the baseline target reads
    stride-0 operands at ~50M elements/s): they run on the best target only,
    the index arithmetic being the same source in every target, unless
    FASTBCE_BIG_TESTS=1."""
    lower_target = _kernels.TARGET != _kernels.AVAILABLE_TARGETS[0]
    test = pytest.mark.skipif(lower_target and not BIG_TESTS,
                              reason="size tests run on the best kernel target (or with FASTBCE_BIG_TESTS=1)")(test)
    return pytest.mark.skipif(sys.maxsize < 2**40, reason="needs a 64-bit Python")(test)

COLS_HUGE = 1 << 20
ROWS_HUGE = (1 << 32) // COLS_HUGE + 1     # 4,097 rows: 2**32 + 2**20 elements


def _hankel(base, rows, cols):
    """The read-only (rows, cols) view v[i, j] = base[i + j] of a 1-D array of
    rows + cols - 1 elements: every row is a different window, yet the view
    takes (rows + cols) elements of memory."""
    assert base.shape == (rows + cols - 1,) and base.flags.c_contiguous
    return as_strided(base, (rows, cols), (base.itemsize, base.itemsize), writeable=False)


def _hankel_counts(rows, cols):
    """How many times base[k] appears in _hankel(base, rows, cols), for each k."""
    k = np.arange(rows + cols - 1)
    return np.minimum.reduce([k + 1, np.full_like(k, rows), np.full_like(k, cols), rows + cols - 1 - k])


def _huge_2d_inputs():
    rng = np.random.default_rng(31)
    m = ROWS_HUGE + COLS_HUGE - 1
    labels = (rng.random(m) < 0.3).astype(np.uint8)
    logits = rng.normal(0.0, 3.0, m).astype(np.float32)
    return labels, logits


@huge
def test_a_2d_call_over_2_32_elements_is_right():
    labels, logits = _huge_2d_inputs()
    y, x = _hankel(labels, ROWS_HUGE, COLS_HUGE), _hankel(logits, ROWS_HUGE, COLS_HUGE)
    n = ROWS_HUGE * COLS_HUGE
    assert n > 2**32 and y.base is not None and x.base is not None
    counts = _hankel_counts(ROWS_HUGE, COLS_HUGE)
    assert counts.sum() == n
    # the same float32 per-element losses, each times its number of appearances, in float64
    per_element = fastbce.bce(labels, logits, from_logits=True, reduction="none").astype(np.float64)
    expected_sum = math.fsum(per_element * counts)
    mean = fastbce.bce(y, x, from_logits=True)
    assert mean == pytest.approx(expected_sum / n, rel=RTOL_HUGE)


@huge
def test_a_2d_invalid_value_past_2_31_elements_is_named_by_its_true_index():
    labels, logits = _huge_2d_inputs()
    x = _hankel(logits, ROWS_HUGE, COLS_HUGE)
    # a label 2 whose first appearance (C order) is at row 2**31 // COLS_HUGE + 7,
    # last column: flat index 2**31 + 8 * 2**20 - 1
    row = 2**31 // COLS_HUGE + 7
    bad_labels = labels.copy()
    bad_labels[row + COLS_HUGE - 1] = 2
    y = _hankel(bad_labels, ROWS_HUGE, COLS_HUGE)
    # every element before it in C order is one of base[:row + COLS_HUGE - 1]
    assert y[row, COLS_HUGE - 1] == 2 and (bad_labels[:row + COLS_HUGE - 1] <= 1).all()
    with pytest.raises(ValueError) as info:
        fastbce.bce(y, x, from_logits=True)
    assert str(info.value) == (f"y_true[{row}, {COLS_HUGE - 1}] = 2: labels must be in [0, 1]; "
                               f"this is the first invalid element")
    # a NaN logit in a (rows, 1) column broadcast against (rows, cols) labels,
    # in the last row: flat index 2**32 (one past the largest 32-bit unsigned
    # index), named in the column's own shape
    column = logits[:ROWS_HUGE, None].copy()
    column[ROWS_HUGE - 1, 0] = np.nan
    with pytest.raises(ValueError) as info:
        fastbce.bce(_hankel(labels, ROWS_HUGE, COLS_HUGE), column, from_logits=True, reduction="sum")
    assert str(info.value) == (f"y_pred[{ROWS_HUGE - 1}, 0] = nan: logits must not be NaN; "
                               f"this is the first invalid element")


N_HUGE = 2**32 + 2**16 + 5
N_PAST_2_31 = 2**31 + 2**16 + 5


@huge
def test_a_1d_call_over_2_31_elements_of_broadcast_scalars_is_right():
    n = N_PAST_2_31
    x0, w0 = np.float32(-1.25), np.float32(0.375)
    x = np.broadcast_to(np.array(x0), (n,))
    y = np.broadcast_to(np.array(1, dtype=np.uint8), (n,))
    w = np.broadcast_to(np.array(w0), (n,))
    # the float32 loss of one element, from a full vector chunk
    one = fastbce.bce(np.ones(4096, np.uint8), np.full(4096, x0), from_logits=True, pos_weight=2.5,
                      sample_weight=np.full(4096, w0), reduction="none")
    total = fastbce.bce(y, x, from_logits=True, pos_weight=2.5, sample_weight=w, reduction="sum")
    assert total == pytest.approx(float(one[0]) * n, rel=RTOL_HUGE)


def _zero_page_labels(n):
    """np.zeros(n, uint8): calloc'd pages that the kernel reads as the shared
    zero page, without making them resident (Linux). Skips where that cannot be relied on."""
    if not sys.platform.startswith("linux"):
        pytest.skip("relies on Linux's lazily zero-filled anonymous memory")
    available = _mem_available()
    if available is None or available < n + (4 << 30):  # room even if every page became resident
        pytest.skip(f"needs {(n >> 30) + 4} GiB of available memory in case the zero pages become resident")
    return np.zeros(n, dtype=np.uint8)


@huge
def test_a_1d_invalid_label_past_2_32_is_named_by_its_true_index():
    y = _zero_page_labels(N_HUGE)
    x = np.broadcast_to(np.array(np.float32(0.5)), (N_HUGE,))
    bad = 2**32 + 7
    y[[5, 2**31, bad + 1]] = 1
    y[bad] = 2
    with pytest.raises(ValueError) as info:
        fastbce.bce(y, x, from_logits=True)
    assert str(info.value) == f"y_true[{bad}] = 2: labels must be in [0, 1]; this is the first invalid element"


@huge
def test_evaluate_over_2_31_elements_counts_every_one():
    n = N_PAST_2_31
    y = _zero_page_labels(n)
    positives = [3, 2**31 - 1, 2**31, n - 1]
    y[positives] = 1
    x0 = np.float32(0.75)  # p > 0.5: every element predicted positive
    x = np.broadcast_to(np.array(x0), (n,))
    report = fastbce.evaluate(y, x, from_logits=True)
    assert report.n == n
    assert (report.tp, report.fn, report.fp, report.tn) == (len(positives), 0, n - len(positives), 0)
    # evaluate's own float32 loss of an element of each label, from a full
    # vector chunk (its loss rounds differently from bce's, and on a few
    # elements from its chunks: within float32's rounding, 1e-7 relative)
    loss = [fastbce.evaluate(np.full(4096, label, np.uint8), np.full(4096, x0), from_logits=True).log_loss
            for label in (0, 1)]
    expected = ((n - len(positives)) * loss[0] + len(positives) * loss[1]) / n
    assert report.log_loss == pytest.approx(expected, rel=RTOL_HUGE)


# -- with real memory: opt-in ----------------------------------------------

BIG_N = 2**31 + 2**20 + 3   # uint8 labels + float32 logits: 10.7 GB


@huge
@pytest.mark.skipif(not BIG_TESTS, reason="set FASTBCE_BIG_TESTS=1 (needs 16 GB of memory and a minute)")
@pytest.mark.skipif(BIG_TESTS and (_mem_available() or 0) < 16 << 30, reason="needs 16 GB of available memory")
def test_a_real_1d_array_past_2_31_elements():
    """A real 1-D array of 2**31 + 2**20 + 3 random elements: the sum equals
    the sum of its pieces (each under 2**31), evaluate's report that of an
    Evaluator fed the pieces, and an invalid value past 2**31 is named by its
    index, for logits and probabilities. About a minute on 2 cores, 10.7 GB."""
    n = BIG_N
    y = np.empty(n, dtype=np.uint8)
    x = np.empty(n, dtype=np.float32)
    piece = 1 << 28
    rng = np.random.default_rng(2)
    pieces = [slice(start, min(start + piece, n)) for start in range(0, n, piece)]
    expected = 0.0
    by_pieces = fastbce.Evaluator(from_logits=True, bins=10)
    for s in pieces:
        y[s] = rng.integers(0, 2, s.stop - s.start, dtype=np.uint8)
        rng.standard_normal(s.stop - s.start, dtype=np.float32, out=x[s])
        x[s] *= 3
        expected += fastbce.bce(y[s], x[s], from_logits=True, reduction="sum")
        by_pieces.update(y[s], x[s])
    assert fastbce.bce(y, x, from_logits=True) == pytest.approx(expected / n, rel=RTOL_HUGE)
    report, expected_report = fastbce.evaluate(y, x, from_logits=True, bins=10), by_pieces.result()
    assert report.n == n == expected_report.n
    assert report.tp + report.fn == int(np.count_nonzero(y))
    for name in ("tp", "fp", "tn", "fn"):  # sums of ones in float64: exact
        assert getattr(report, name) == getattr(expected_report, name), name
    for name in ("log_loss", "brier", "mean_prediction", "roc_auc"):
        assert getattr(report, name) == pytest.approx(getattr(expected_report, name), rel=RTOL_HUGE), name

    bad = 2**31 + 12_345
    y[bad] = 2
    with pytest.raises(ValueError) as info:
        fastbce.bce(y, x, from_logits=True)
    assert str(info.value) == f"y_true[{bad}] = 2: labels must be in [0, 1]; this is the first invalid element"
    with pytest.raises(ValueError) as info:
        fastbce.evaluate(y, x, from_logits=True)
    assert str(info.value) == f"y_true[{bad}] = 2: labels must be in [0, 1]; this is the first invalid element"
    y[bad] = 1
    fastbce.sigmoid(x, out=x)  # now probabilities
    x[n - 2] = np.nan
    with pytest.raises(ValueError) as info:
        fastbce.bce(y, x)
    assert str(info.value) == (f"y_pred[{n - 2}] = nan: probabilities must be in [0, 1] (pass "
                               f"from_logits=True for logits); this is the first invalid element")
