"""``fastbce bench``: fastbce side by side with its peers.

For each case (operation, input kind, dtype), size and thread count, every
implementation is timed on the same data in the same run (best of several
repeats) and reported as throughput (M elements/s) and as a speed ratio,
``peer time / fastbce time`` (above 1: fastbce is faster). Peers that are not
installed are left out. NumPy and scikit-learn run on one thread whatever
the thread count; PyTorch, numexpr and Numba are given the same thread count
as fastbce.

The compiler peers: ``jax`` (``jax.jit`` of the stable formulas, the gradient
by ``jax.grad`` / ``jax.value_and_grad``), ``optax``
(``optax.sigmoid_binary_cross_entropy``, jitted; the loss on logits) and
``torch_compile`` (``torch.compile`` of PyTorch's loss, and of the forward +
backward step for the gradient). Each compiled function is warmed up on the
exact shapes and dtypes first: its compile (first call) time is left out of
the timings and reported once per case. XLA's CPU thread pool is sized when
JAX starts, so JAX and optax are timed in a subprocess per case and thread
count, started with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` at 1
thread and pinned (``sched_setaffinity``, Linux) to as many cores as the
thread count; it regenerates the same data from the same seed. A compiler peer
that fails to compile (torch.compile's CPU backend needs a C++ compiler) is
left out with a note.

Labels are uint8 for fastbce (its recommended input: a quarter of the memory
traffic of float32 labels) and float of the prediction's dtype for the peers,
which need them; ``--float-labels`` gives fastbce float labels too.

The tasks (``--tasks``) are fastbce's ``bce``, ``bce_grad`` and
``bce_and_grad`` and its evaluation report, ``evaluate``: log loss, Brier
score, accuracy, precision, recall and F1 in one pass, against the
scikit-learn calls giving the same figures (``log_loss``,
``brier_score_loss``, ``accuracy_score`` and
``precision_recall_fscore_support(average="binary")`` on the hard predictions
``y_pred >= threshold``, made by NumPy within the timed call), and against
``fastbce.bce`` alone on the same data, its reference point: the report's
cost over the loss alone.
"""
import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

import fastbce
from fastbce import _kernels

SIZES = (1_000, 100_000, 10_000_000)
QUICK_SIZES = (1_000, 100_000, 2_000_000)
# (operation, input kind): the cases of the table
CASES = (
    ("bce", "logits"),
    ("bce", "probabilities"),
    ("bce_grad", "logits"),
    ("bce_and_grad", "logits"),
    ("bce_and_grad", "probabilities"),
)
QUICK_CASES = (("bce", "logits"), ("bce", "probabilities"), ("bce_and_grad", "logits"))
# the evaluation report's case, in the full and the quick run (its pytest-benchmark
# suite is benchmarks/test_evaluate_speed.py, not test_bce_speed.py's CASES)
EVALUATE_CASES = (("evaluate", "probabilities"),)
BCE_OPS = ("bce", "bce_grad", "bce_and_grad")
TASKS = BCE_OPS + ("evaluate",)
PEERS = ("numpy", "sklearn", "torch", "numexpr", "numba", "jax", "optax", "torch_compile")
# peers timed in a subprocess per case and thread count (XLA's threads are fixed at start)
SUBPROCESS_PEERS = ("jax", "optax")
# peers that compile: their first call (trace + compile) is timed apart, left out of the timings
COMPILED_PEERS = ("jax", "optax", "torch_compile")
# fastbce's own reference point of a task, timed beside it on the same data
REFERENCES = {"evaluate": "bce"}
EVALUATE_THRESHOLD = 0.5
# the figures of the evaluation report compared between implementations
EVALUATE_FIGURES = ("log_loss", "brier", "accuracy", "precision", "recall", "f1")
# scikit-learn's largest size: its log_loss runs at ~20 M elements/s and the
# report's 4 calls at ~4 M elements/s (1e7: seconds a call; above: minutes)
SKLEARN_MAX_N = 10_000_000
# --quick: the report's 4 calls only up to 1e6 (the largest quick size would add seconds)
QUICK_SKLEARN_MAX_N = {"evaluate": 1_000_000}


# --- the data ----------------------------------------------------------------

def make_data(n, dtype, kind, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, n).astype(dtype)
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-logits))).astype(np.uint8)
    y_pred = logits if kind == "logits" else (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(dtype)
    return labels, y_pred


# --- the implementations -------------------------------------------------------
# Each maker returns a zero-argument callable computing the case on the data
# (its result is used to check that all agree), or None if it does not apply.

def fastbce_impl(op, kind, labels, y_pred, threads, float_labels, **options):
    """``options``: further keyword arguments of fastbce.evaluate (bins=, groups=)."""
    y = labels.astype(y_pred.dtype) if float_labels else labels
    logits = kind == "logits"
    if op == "bce":
        return lambda: fastbce.bce(y, y_pred, from_logits=logits, num_threads=threads)
    if op == "evaluate":
        return lambda: fastbce.evaluate(y, y_pred, from_logits=logits, threshold=EVALUATE_THRESHOLD,
                                        num_threads=threads, **options)
    grad = np.empty_like(y_pred)
    if op == "bce_grad":
        return lambda: fastbce.bce_grad(y, y_pred, from_logits=logits, out=grad, num_threads=threads)
    return lambda: fastbce.bce_and_grad(y, y_pred, from_logits=logits, out=grad, num_threads=threads)


def numpy_impl(op, kind, y, y_pred, threads):
    if op not in BCE_OPS:
        return None
    n = y_pred.size
    if kind == "logits":
        x = y_pred

        def loss():
            return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))

        def grad():
            return (1 / (1 + np.exp(-x)) - y) / n
    else:
        eps = np.finfo(y_pred.dtype).eps
        p = y_pred

        def loss():
            q = np.clip(p, eps, 1 - eps)
            return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))

        def grad():
            q = np.clip(p, eps, 1 - eps)
            return ((1 - y) / (1 - q) - y / q) / n
    if op == "bce":
        return loss
    if op == "bce_grad":
        return grad
    return lambda: (loss(), grad())


def sklearn_impl(op, kind, y, y_pred, threads):
    if op not in ("bce", "evaluate") or kind != "probabilities":
        return None
    from sklearn import metrics
    if op == "bce":
        return lambda: metrics.log_loss(y, y_pred, labels=[0, 1])

    def report():  # fastbce.evaluate's figures, from the hard predictions it makes
        hard = y_pred >= EVALUATE_THRESHOLD
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(y, hard, average="binary")
        return types.SimpleNamespace(
            log_loss=metrics.log_loss(y, y_pred, labels=[0, 1]), brier=metrics.brier_score_loss(y, y_pred),
            accuracy=metrics.accuracy_score(y, hard), precision=precision, recall=recall, f1=f1)
    return report


def torch_impl(op, kind, y, y_pred, threads):
    if op not in BCE_OPS:
        return None
    import torch
    import torch.nn.functional as F
    target = torch.from_numpy(y)
    loss_fn = F.binary_cross_entropy_with_logits if kind == "logits" else F.binary_cross_entropy

    return _torch_run(loss_fn, y_pred, target, op, threads)


def _torch_run(loss_fn, y_pred, target, op, threads):
    """One timed call of a PyTorch loss function (eager or compiled): the
    loss alone, or a forward + backward step for the gradient."""
    import torch

    def run():
        torch.set_num_threads(threads)
        if op == "bce":
            with torch.no_grad():
                return float(loss_fn(torch.from_numpy(y_pred), target))
        inp = torch.from_numpy(y_pred).requires_grad_(True)
        loss = loss_fn(inp, target)
        loss.backward()
        grad = inp.grad.numpy()
        return grad if op == "bce_grad" else (float(loss.detach()), grad)
    return run


def numexpr_impl(op, kind, y, y_pred, threads):
    if op != "bce":
        return None
    import numexpr as ne
    n = y_pred.size
    eps = np.finfo(y_pred.dtype).eps
    if kind == "logits":
        expression = "sum(where(x > 0, x, 0) - x * y + log1p(exp(-abs(x))))"
        local = {"x": y_pred, "y": y}
    else:
        expression = "sum(-(y * log(where(p < eps, eps, where(p > 1 - eps, 1 - eps, p))) + (1 - y) * log1p(-where(p < eps, eps, where(p > 1 - eps, 1 - eps, p)))))"
        local = {"p": y_pred, "y": y, "eps": y_pred.dtype.type(eps)}

    def run():
        ne.set_num_threads(threads)
        return float(ne.evaluate(expression, local_dict=local)) / n
    return run


_NUMBA_KERNELS = {}


def _numba_kernels():
    if not _NUMBA_KERNELS:
        import numba

        @numba.njit(parallel=True, fastmath=False, cache=False)
        def loss_logits(y, x):
            total = 0.0
            for i in numba.prange(x.size):
                xi = x[i]
                total += max(xi, 0) - xi * y[i] + np.log1p(np.exp(-abs(xi)))
            return total / x.size

        @numba.njit(parallel=True, fastmath=False, cache=False)
        def loss_probabilities(y, p, eps):
            total = 0.0
            for i in numba.prange(p.size):
                q = min(max(p[i], eps), 1 - eps)
                total -= y[i] * np.log(q) + (1 - y[i]) * np.log1p(-q)
            return total / p.size

        @numba.njit(parallel=True, fastmath=False, cache=False)
        def loss_grad_logits(y, x, grad):
            total = 0.0
            n = x.size
            for i in numba.prange(n):
                xi = x[i]
                total += max(xi, 0) - xi * y[i] + np.log1p(np.exp(-abs(xi)))
                grad[i] = (1 / (1 + np.exp(-xi)) - y[i]) / n
            return total / n

        _NUMBA_KERNELS.update(loss_logits=loss_logits, loss_probabilities=loss_probabilities,
                              loss_grad_logits=loss_grad_logits)
    return _NUMBA_KERNELS


def numba_impl(op, kind, y, y_pred, threads):
    import numba
    kernels = _numba_kernels()
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    if op == "bce" and kind == "logits":
        call = lambda: kernels["loss_logits"](y, y_pred)
    elif op == "bce":
        eps = y_pred.dtype.type(np.finfo(y_pred.dtype).eps)
        call = lambda: kernels["loss_probabilities"](y, y_pred, eps)
    elif kind == "logits" and op == "bce_and_grad":
        grad = np.empty_like(y_pred)
        call = lambda: (kernels["loss_grad_logits"](y, y_pred, grad), grad)
    else:
        return None

    def run():
        numba.set_num_threads(threads)
        return call()
    return run


class PeerUnavailable(Exception):
    """A peer that is installed but cannot run here (torch.compile without a C++ compiler)."""


def _warm_up(fn):
    """Call fn once (trace + compile on the exact shapes and dtypes), keeping that
    first call's time as fn.compile_seconds; returns fn."""
    start = time.perf_counter()
    fn()
    fn.compile_seconds = time.perf_counter() - start
    return fn


def _enable_jax_x64(dtype):
    """float64 needs JAX's x64 mode; float32 arrays stay float32 under it."""
    if np.dtype(dtype) == np.float64:
        import jax
        jax.config.update("jax_enable_x64", True)


def jax_impl(op, kind, y, y_pred, threads):
    """jax.jit of the stable formulas, in this process (JAX's threads: those it
    started with; ``run`` times it in a subprocess per thread count)."""
    if op not in BCE_OPS:
        return None
    _enable_jax_x64(y_pred.dtype)
    import jax
    import jax.numpy as jnp
    if kind == "logits":
        def loss(x, t):
            return jnp.mean(jnp.maximum(x, 0) - x * t + jnp.log1p(jnp.exp(-jnp.abs(x))))
    else:
        eps = float(np.finfo(y_pred.dtype).eps)

        def loss(p, t):
            q = jnp.clip(p, eps, 1 - eps)
            return -jnp.mean(t * jnp.log(q) + (1 - t) * jnp.log1p(-q))
    x = jax.device_put(y_pred)
    t = jax.device_put(y)
    if op == "bce":
        f = jax.jit(loss)
        run = lambda: float(f(x, t))
    elif op == "bce_grad":
        f = jax.jit(jax.grad(loss))
        run = lambda: np.asarray(f(x, t).block_until_ready())
    else:
        f = jax.jit(jax.value_and_grad(loss))

        def run():
            value, grad = f(x, t)
            return float(value), np.asarray(grad.block_until_ready())
    return _warm_up(run)


def optax_impl(op, kind, y, y_pred, threads):
    """optax.sigmoid_binary_cross_entropy (mean), jitted: the loss on logits."""
    if op != "bce" or kind != "logits":
        return None
    _enable_jax_x64(y_pred.dtype)
    import jax
    import optax
    f = jax.jit(lambda x, t: optax.sigmoid_binary_cross_entropy(x, t).mean())
    x = jax.device_put(y_pred)
    t = jax.device_put(y)
    return _warm_up(lambda: float(f(x, t)))


def match_inductor_vector_width():
    """Give Inductor (torch.compile's CPU backend) the vector width of
    ATEN_CPU_CAPABILITY (avx2: 256 bits, avx512: 512), where it is set and
    Inductor's own setting (``cpp.simdlen``) is not.

    With ATEN_CPU_CAPABILITY=avx2 alone on an AVX-512 machine, Inductor
    (PyTorch 2.13) compiles for AVX2's 8-lane vectors but steps its loops 16
    elements at a time: it reads half the elements (a mean off by -50%, half
    the gradient left unwritten) in about half the time. docs/kernels.md"""
    import torch._inductor.config as inductor_config
    width = {"avx2": 256, "avx512": 512}.get(os.environ.get("ATEN_CPU_CAPABILITY", "").lower())
    if width and inductor_config.cpp.simdlen is None:
        inductor_config.cpp.simdlen = width


def torch_compile_impl(op, kind, y, y_pred, threads):
    """torch.compile of PyTorch's loss (mean) and, for the gradient, of the
    forward whose backward AOTAutograd compiles too (loss.backward() on a leaf).
    Compiled afresh for each case: Inductor's kernels take the thread count at
    compile time. Raises PeerUnavailable if compiling fails."""
    if op not in BCE_OPS:
        return None
    import torch
    import torch._dynamo
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch._dynamo.reset()  # the compiled kernels hold the thread count: no reuse across cases
    match_inductor_vector_width()
    for limit in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, limit):
            setattr(torch._dynamo.config, limit, max(64, getattr(torch._dynamo.config, limit)))
    loss_fn = F.binary_cross_entropy_with_logits if kind == "logits" else F.binary_cross_entropy
    compiled = torch.compile(lambda inp, target: loss_fn(inp, target), dynamic=False)
    target = torch.from_numpy(y)

    run = _torch_run(compiled, y_pred, target, op, threads)
    try:
        return _warm_up(run)
    except Exception as error:  # Inductor without a C++ compiler, a backend failure
        raise PeerUnavailable(f"torch.compile failed ({type(error).__name__}: "
                              f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})") from error


PEER_IMPLS = {"numpy": numpy_impl, "sklearn": sklearn_impl, "torch": torch_impl,
              "numexpr": numexpr_impl, "numba": numba_impl, "jax": jax_impl, "optax": optax_impl,
              "torch_compile": torch_compile_impl}
PEER_MODULES = {"numpy": "numpy", "sklearn": "sklearn", "torch": "torch",
                "numexpr": "numexpr", "numba": "numba", "jax": "jax", "optax": "optax",
                "torch_compile": "torch"}
# the (operation, input kind) pairs of the subprocess peers (known without importing them)
SUBPROCESS_CASES = {"jax": lambda op, kind: op in BCE_OPS,
                    "optax": lambda op, kind: (op, kind) == ("bce", "logits")}


def installed_peers(wanted):
    found = []
    for peer in wanted:
        try:
            __import__(PEER_MODULES[peer])
        except ImportError:
            continue
        found.append(peer)
    return found


# --- the subprocess peers (JAX: threads fixed when it starts) ---------------------

# the subprocess imports the fastbce of this process: from the folder that
# holds it, first on its path and its working folder (`python -c` puts the
# working folder first: a source checkout's uncompiled fastbce/ would win)
_WORKER_COMMAND = "import sys; from fastbce import bench; sys.exit(bench._worker(sys.argv[1]))"
_FASTBCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))


def _subprocess_env(threads):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_FASTBCE_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    if threads == 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    return env


def time_in_subprocess(peer, op, kind, dtype, n, threads, min_total, timeout=600):
    """Time a SUBPROCESS_PEERS peer on the case in a fresh Python started for the
    thread count; {"seconds", "figures", "compile_seconds"} or {"error"}."""
    job = {"peer": peer, "op": op, "kind": kind, "dtype": np.dtype(dtype).name, "n": int(n),
           "threads": int(threads), "min_total": min_total}
    try:
        done = subprocess.run([sys.executable, "-c", _WORKER_COMMAND, json.dumps(job)], cwd=_FASTBCE_ROOT,
                              env=_subprocess_env(threads), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _worker(job_text):
    """The subprocess side of time_in_subprocess: prints one JSON line."""
    job = json.loads(job_text)
    threads = job["threads"]
    if hasattr(os, "sched_setaffinity"):  # at most `threads` cores for XLA's pool, before JAX starts
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[:threads])
    dtype = np.dtype(job["dtype"])
    labels, y_pred = make_data(job["n"], dtype, job["kind"])
    try:
        impl = PEER_IMPLS[job["peer"]](job["op"], job["kind"], labels.astype(dtype), y_pred, threads)
        seconds = best_time(impl, min_total=job["min_total"])
        figures = _figures_of(impl())
    except Exception as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"[:300]}))
        return 0
    print(json.dumps({"seconds": seconds, "figures": figures.tolist(),
                      "compile_seconds": getattr(impl, "compile_seconds", None)}))
    return 0


# --- timing --------------------------------------------------------------------

def best_time(fn, min_total=0.2, min_repeats=3, max_repeats=200):
    """Best wall time of fn() over repeats (at least min_repeats, about min_total seconds)."""
    fn()  # warm-up: first-call costs (JIT, page faults) are not the steady state
    best = float("inf")
    spent = 0.0
    repeats = 0
    while repeats < min_repeats or (spent < min_total and repeats < max_repeats):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        repeats += 1
    return best


def _figures_of(result):
    """The figures compared between implementations, a float64 array: the loss
    (a gradient: its sum), or an evaluation report's EVALUATE_FIGURES."""
    if hasattr(result, "log_loss"):
        return np.array([getattr(result, name) for name in EVALUATE_FIGURES], dtype=np.float64)
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, np.ndarray):
        return np.array([np.sum(result, dtype=np.float64)])
    return np.array([float(result)])


def machine_header(peers):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {"fastbce": fastbce.__version__, "python": platform.python_version()}
    for peer in peers:
        module = __import__(PEER_MODULES[peer])
        versions[PEER_MODULES[peer]] = getattr(module, "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "target": _kernels.TARGET,
        "openmp": bool(_kernels.openmp_enabled()),
        "max_threads": _kernels.max_threads(),
        "versions": versions,
    }


def run_ceiling_probe(source, n):
    """Compile and run the ceiling probe C file; {threads: {metric: M elements/s}}."""
    binary = os.path.join(tempfile.mkdtemp(prefix="fastbce-"), "ceiling_probe")
    subprocess.run(["gcc", "-O3", "-march=native", "-ffast-math", "-fopenmp", source, "-o", binary, "-lm"],
                   check=True)
    output = subprocess.run([binary, str(n)], check=True, capture_output=True, text=True).stdout
    figures = {}
    for line in output.splitlines():
        parts = line.split()
        threads = int(line.split("=")[1].split()[0])
        figures[threads] = {
            "read bandwidth (2 x f32 streams)": float(parts[parts.index("read2xf32") + 1]),
            "C loop -ffast-math libmvec (f32 labels)": float(parts[parts.index("bce_logits_f32") + 1]),
            "C loop -ffast-math libmvec (u8 labels)": float(parts[parts.index("bce_logits_f32_u8labels") + 1]),
        }
    return figures


def run(sizes, cases, dtypes, thread_counts, peers, float_labels=False, progress=True, min_total=0.2,
        sklearn_max_n=None, notes=None):
    """All timings, as a list of records. ``sklearn_max_n``: {op: the largest
    size scikit-learn is timed at}, for the ops not at SKLEARN_MAX_N. ``notes``:
    a dict filled with {peer: why it was left out} for a peer that could not run
    (a compiler peer failing to compile); its other cases are skipped."""
    sklearn_max_n = sklearn_max_n or {}
    notes = {} if notes is None else notes
    records = []
    jobs = [(op, kind, dtype, n, t) for (op, kind) in cases for dtype in dtypes for n in sizes for t in thread_counts]
    for number, (op, kind, dtype, n, threads) in enumerate(jobs, 1):
        labels, y_pred = make_data(n, dtype, kind)
        y_float = labels.astype(dtype)
        impls = {"fastbce": fastbce_impl(op, kind, labels, y_pred, threads, float_labels)}
        if op in REFERENCES:
            impls[REFERENCES[op]] = fastbce_impl(REFERENCES[op], kind, labels, y_pred, threads, float_labels)
        for peer in peers:
            if peer in notes:
                continue
            if peer in ("numpy", "sklearn") and threads != min(thread_counts):
                continue  # single-threaded peers: timed once, at the lowest thread count
            if peer == "sklearn" and n > sklearn_max_n.get(op, SKLEARN_MAX_N):
                continue
            if peer in SUBPROCESS_PEERS:
                if SUBPROCESS_CASES[peer](op, kind):
                    impls[peer] = peer  # timed by time_in_subprocess below
                continue
            if progress and peer in COMPILED_PEERS:
                print(f"\r[{number}/{len(jobs)}] {op} {kind} {np.dtype(dtype).name} n={n:,} "
                      f"threads={threads}: {peer} (compiling)", end="", file=sys.stderr, flush=True)
            try:
                impl = PEER_IMPLS[peer](op, kind, y_float, y_pred, threads)
            except PeerUnavailable as error:
                notes[peer] = str(error)
                continue
            if impl is not None:
                impls[peer] = impl
        reference = None
        for name, impl in impls.items():
            if progress:
                print(f"\r[{number}/{len(jobs)}] {op} {kind} {np.dtype(dtype).name} n={n:,} "
                      f"threads={threads}: {name:<14}", end="", file=sys.stderr, flush=True)
            compile_seconds = None
            if isinstance(impl, str):
                timing = time_in_subprocess(impl, op, kind, dtype, n, threads, min_total)
                if "error" in timing:
                    notes[name] = timing["error"]
                    continue
                seconds, value = timing["seconds"], np.array(timing["figures"], dtype=np.float64)
                compile_seconds = timing["compile_seconds"]
            else:
                seconds = best_time(impl, min_total=min_total)
                value = _figures_of(impl())
                compile_seconds = getattr(impl, "compile_seconds", None)
            if name == "fastbce":
                reference = value
            common = min(value.size, reference.size)  # fastbce.bce beside the report: the loss only
            agrees = bool(np.allclose(value[:common], reference[:common], rtol=1e-3, atol=1e-6))
            record = {
                "op": op, "input": kind, "dtype": np.dtype(dtype).name, "n": int(n), "threads": int(threads),
                "impl": name, "seconds": seconds, "melem_per_s": n / seconds / 1e6, "agrees": agrees,
            }
            if name in COMPILED_PEERS:
                record["compile_seconds"] = compile_seconds
            records.append(record)
        if "torch_compile" in impls:
            import torch._dynamo
            torch._dynamo.reset()  # free the case's compiled graphs
    if progress:
        print("\r" + " " * 100 + "\r", end="", file=sys.stderr, flush=True)
    return records


def compile_lines(records):
    """A line per compiler peer: its compile (first call) times, left out of the timings."""
    lines = []
    for peer in COMPILED_PEERS:
        times = [(r["op"], r["input"], r["dtype"], r["n"], r["threads"], r["compile_seconds"])
                 for r in records if r["impl"] == peer and r.get("compile_seconds") is not None]
        if not times:
            continue
        cells = ", ".join(f"{op} {kind} {dtype} n={n:,} thr={t}: {s:.2f} s" for op, kind, dtype, n, t, s in times)
        lines.append(f"  {peer}: {cells}")
    if lines:
        lines.insert(0, "compile time (first call on the exact shapes and dtypes, trace + compile + one run; "
                        "left out of the timings; torch_compile: Inductor's on-disk cache makes a repeat "
                        "compile of the same graph fast):")
    return lines


def format_table(records, peers):
    """Rows of text: fastbce's throughput, each peer's speed ratio and, for a
    task with a reference point (REFERENCES), fastbce's time over the reference's."""
    timed = {r["impl"] for r in records}
    peers = [p for p in peers if p in timed]  # a peer of none of the tasks run: no column
    references = [ref for ref in dict.fromkeys(REFERENCES.values()) if ref in timed]
    groups = {}
    for r in records:
        groups.setdefault((r["op"], r["input"], r["dtype"], r["n"], r["threads"]), {})[r["impl"]] = r
    single = {}
    for (op, kind, dtype, n, threads), impls in groups.items():
        for peer in ("numpy", "sklearn"):
            if peer in impls:
                single[(op, kind, dtype, n, peer)] = impls[peer]
    columns = ["fastbce M/s"] + [f"vs {p}" for p in peers] + [f"x {ref} time" for ref in references]
    widths = [max(13, len(c) + 2) for c in columns]
    header = f"{'case':<34}{'n':>12}{'thr':>5}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths))
    lines = [header, "-" * len(header)]
    for (op, kind, dtype, n, threads), impls in groups.items():
        ours = impls["fastbce"]
        cells = [f"{ours['melem_per_s']:,.0f}"]
        for peer in peers:
            rec = impls.get(peer) or (single.get((op, kind, dtype, n, peer)) if peer in ("numpy", "sklearn") else None)
            if rec is None:
                cells.append("-")
            else:
                mark = "" if rec["agrees"] in (None, True) else "!"
                cells.append(f"{rec['seconds'] / ours['seconds']:.1f}x{mark}")
        for ref in references:
            rec = impls.get(ref)
            mark = "" if rec is None or rec["agrees"] in (None, True) else "!"
            cells.append("-" if rec is None else f"{ours['seconds'] / rec['seconds']:.2f}x{mark}")
        case = f"{op} {kind} {dtype}"
        lines.append(f"{case:<34}{n:>12,}{threads:>5}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    return lines


PLOT_CASES = (("bce", "logits", "float32"), ("evaluate", "probabilities", "float32"))


def plot(records, path):
    """Throughput against size: a row per thread count, a column per case of
    PLOT_CASES in the records (or the first case if none)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = sorted({(r["op"], r["input"], r["dtype"]) for r in records})
    thread_counts = sorted({r["threads"] for r in records})
    shown = [c for c in PLOT_CASES if c in cases] or cases[:1]
    fig, axes = plt.subplots(len(thread_counts), len(shown), figsize=(9 * len(shown), 4.2 * len(thread_counts)),
                             squeeze=False)
    for (row, threads), (column, case) in itertools.product(enumerate(thread_counts), enumerate(shown)):
        ax = axes[row, column]
        impls = sorted({r["impl"] for r in records if (r["op"], r["input"], r["dtype"]) == case})
        for impl in impls:
            points = sorted(
                (r["n"], r["melem_per_s"]) for r in records
                if (r["op"], r["input"], r["dtype"]) == case and r["impl"] == impl
                and (r["threads"] == threads or impl in ("numpy", "sklearn"))
            )
            if impl == REFERENCES.get(case[0]):
                label = f"fastbce.{impl} alone (reference)"
            elif impl == "fastbce" and case[0] in REFERENCES:
                label = f"fastbce.{case[0]}"
            else:
                label = impl + (" (1 thread)" if impl in ("numpy", "sklearn") else "")
            if points:
                ax.plot(*zip(*points), marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("elements")
        ax.set_ylabel("M elements / s")
        what = "report" if case[0] == "evaluate" else "mean"
        ax.set_title(f"{' '.join(case)} {what}, {threads} thread{'s' if threads > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_size(text):
    return int(float(text))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastbce bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute on 2 cores)")
    parser.add_argument("--tasks", default=None,
                        help=f"comma-separated subset of {','.join(TASKS)} (default all; --quick: "
                             f"{', '.join(dict.fromkeys(op for op, _ in QUICK_CASES + EVALUATE_CASES))})")
    parser.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")],
                        help="comma-separated sizes (default 1e3,1e5,1e7; add 1e8 for the largest)")
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")],
                        help="comma-separated thread counts (default: 1 and all)")
    parser.add_argument("--dtypes", default=None, help="float32,float64 (default both; --quick: float32)")
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated subset of {','.join(PEERS)} (default: those installed; "
                             f"--quick leaves out the compiled peers {', '.join(COMPILED_PEERS)}, whose "
                             f"compiles would double its time)")
    parser.add_argument("--float-labels", action="store_true", help="give fastbce float labels, as the peers")
    parser.add_argument("--ceiling", metavar="PROBE.c",
                        help="also compile (gcc -march=native -ffast-math) and run the ceiling probe C file")
    parser.add_argument("--json", metavar="FILE", help="write the raw figures as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw throughput against size (needs matplotlib)")
    args = parser.parse_args(argv)

    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    all_threads = _kernels.max_threads()
    thread_counts = args.threads or sorted({1, all_threads})
    dtypes = [np.dtype(d) for d in (args.dtypes or ("float32" if args.quick else "float32,float64")).split(",")]
    tasks = [t for t in (args.tasks or ",".join(TASKS)).split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    cases = [c for c in (QUICK_CASES if args.quick else CASES) + EVALUATE_CASES if c[0] in tasks]
    if not cases:
        parser.error(f"no case of {', '.join(tasks)} in the {'quick' if args.quick else 'full'} run")
    sklearn_max_n = QUICK_SKLEARN_MAX_N if args.quick else {}
    if args.peers is None:
        args.peers = ",".join(p for p in PEERS if not (args.quick and p in COMPILED_PEERS))
    peers = installed_peers([p for p in args.peers.split(",") if p])
    header = machine_header(peers)

    print(f"fastbce bench — fastbce {fastbce.__version__}, kernels: {header['target']} target, "
          f"OpenMP {'on' if header['openmp'] else 'off'} ({header['max_threads']} threads)")
    print(f"machine: {header['cpu']}, {header['cores']} cores; "
          + ", ".join(f"{k} {v}" for k, v in header["versions"].items() if k != "fastbce"))
    missing = [p for p in args.peers.split(",") if p and p not in peers]
    if missing:
        print(f"not installed (left out): {', '.join(missing)}")
    print("ratio = peer time / fastbce time (above 1: fastbce is faster); numpy and sklearn run on 1 thread; "
          f"labels: {'float' if args.float_labels else 'uint8'} for fastbce, float for peers; "
          "'!' marks a peer whose result disagrees by more than 1e-3 relative "
          "(numexpr accumulates float32 sums in float32)")
    ops = {op for op, _ in cases}
    if "evaluate" in ops:
        print(f"evaluate: fastbce.evaluate (threshold {EVALUATE_THRESHOLD}) vs scikit-learn's log_loss + "
              "brier_score_loss + accuracy_score + precision_recall_fscore_support(average='binary') "
              "(with NumPy's y_pred >= threshold); 'x bce time' = evaluate's time / fastbce.bce's alone "
              "on the same data (target: at most 2x)")
    for op, limit in sklearn_max_n.items():
        if op in ops and "sklearn" in peers and max(sizes) > limit:
            print(f"--quick: scikit-learn is left out of {op} above {limit:,} elements (its calls take seconds there)")
    if any(p in peers for p in SUBPROCESS_PEERS):
        print("jax/optax: timed in a subprocess per case and thread count (XLA's thread pool is fixed when "
              "JAX starts): 1 thread = XLA_FLAGS=--xla_cpu_multi_thread_eigen=false and pinned to 1 core; "
              "t threads = pinned to t cores")
    print()
    notes = {}
    records = run(sizes, cases, dtypes, thread_counts, peers, float_labels=args.float_labels,
                  min_total=0.1 if args.quick else 0.3, sklearn_max_n=sklearn_max_n, notes=notes)
    for line in format_table(records, peers):
        print(line)
    compiled = compile_lines(records)
    if compiled:
        print()
        for line in compiled:
            print(line)
    for peer, why in notes.items():
        print(f"left out: {peer}: {why}")

    ceiling = None
    if args.ceiling:
        n = max(sizes)
        ceiling = run_ceiling_probe(args.ceiling, n)
        ours = {r["threads"]: r["melem_per_s"] for r in records
                if (r["op"], r["input"], r["dtype"], r["n"], r["impl"]) == ("bce", "logits", "float32", n, "fastbce")}
        print()
        print(f"ceiling probe ({args.ceiling}, n={n:,}, M elements/s) beside fastbce bce logits float32 mean:")
        for threads, figures in sorted(ceiling.items()):
            if threads not in ours:
                continue
            for name, value in figures.items():
                print(f"  {threads} thr  {name:<42}{value:>9,.0f}   fastbce / this = {ours[threads] / value:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            compile_seconds = {}
            for r in records:
                if r.get("compile_seconds") is not None:
                    key = f"{r['op']} {r['input']} {r['dtype']} n={r['n']} threads={r['threads']}"
                    compile_seconds.setdefault(r["impl"], {})[key] = r["compile_seconds"]
            json.dump({"machine": header, "records": records, "ceiling": ceiling,
                       "compile_seconds": compile_seconds, "left_out": notes}, f, indent=1)
        print(f"\nraw figures written to {args.json}")
    if args.plot:
        plot(records, args.plot)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
