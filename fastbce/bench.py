"""``fastbce bench``: fastbce side by side with its peers.

For each case (operation, input kind, dtype), size and thread count, every
implementation is timed on the same data in the same run (best of several
repeats) and reported as throughput (M elements/s) and as a speed ratio,
``peer time / fastbce time`` (above 1: fastbce is faster). Peers that are not
installed are left out. NumPy and scikit-learn run on one thread whatever
the thread count; PyTorch, numexpr and Numba are given the same thread count
as fastbce.

Labels are uint8 for fastbce (its recommended input: a quarter of the memory
traffic of float32 labels) and float of the prediction's dtype for the peers,
which need them; ``--float-labels`` gives fastbce float labels too.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

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
PEERS = ("numpy", "sklearn", "torch", "numexpr", "numba")


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

def fastbce_impl(op, kind, labels, y_pred, threads, float_labels):
    y = labels.astype(y_pred.dtype) if float_labels else labels
    logits = kind == "logits"
    if op == "bce":
        return lambda: fastbce.bce(y, y_pred, from_logits=logits, num_threads=threads)
    grad = np.empty_like(y_pred)
    if op == "bce_grad":
        return lambda: fastbce.bce_grad(y, y_pred, from_logits=logits, out=grad, num_threads=threads)
    return lambda: fastbce.bce_and_grad(y, y_pred, from_logits=logits, out=grad, num_threads=threads)


def numpy_impl(op, kind, y, y_pred, threads):
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
    if op != "bce" or kind != "probabilities":
        return None
    from sklearn.metrics import log_loss
    return lambda: log_loss(y, y_pred, labels=[0, 1])


def torch_impl(op, kind, y, y_pred, threads):
    import torch
    import torch.nn.functional as F
    target = torch.from_numpy(y)
    loss_fn = F.binary_cross_entropy_with_logits if kind == "logits" else F.binary_cross_entropy

    def run():
        torch.set_num_threads(threads)
        if op == "bce":
            with torch.no_grad():
                return float(loss_fn(torch.from_numpy(y_pred), target))
        inp = torch.from_numpy(y_pred).requires_grad_(True)
        loss = loss_fn(inp, target)
        loss.backward()
        grad = inp.grad.numpy()
        return grad if op == "bce_grad" else (float(loss), grad)
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


PEER_IMPLS = {"numpy": numpy_impl, "sklearn": sklearn_impl, "torch": torch_impl,
              "numexpr": numexpr_impl, "numba": numba_impl}
PEER_MODULES = {"numpy": "numpy", "sklearn": "sklearn", "torch": "torch",
                "numexpr": "numexpr", "numba": "numba"}


def installed_peers(wanted):
    found = []
    for peer in wanted:
        try:
            __import__(PEER_MODULES[peer])
        except ImportError:
            continue
        found.append(peer)
    return found


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


def _loss_of(result):
    if isinstance(result, tuple):
        return float(result[0])
    if isinstance(result, np.ndarray):
        return float(np.sum(result, dtype=np.float64))
    return float(result)


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
        versions[peer] = getattr(module, "__version__", "?")
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


def run(sizes, cases, dtypes, thread_counts, peers, float_labels=False, progress=True, min_total=0.2):
    """All timings, as a list of records."""
    records = []
    jobs = [(op, kind, dtype, n, t) for (op, kind) in cases for dtype in dtypes for n in sizes for t in thread_counts]
    for number, (op, kind, dtype, n, threads) in enumerate(jobs, 1):
        labels, y_pred = make_data(n, dtype, kind)
        y_float = labels.astype(dtype)
        impls = {"fastbce": fastbce_impl(op, kind, labels, y_pred, threads, float_labels)}
        for peer in peers:
            if peer in ("numpy", "sklearn") and threads != min(thread_counts):
                continue  # single-threaded peers: timed once, at the lowest thread count
            if peer == "sklearn" and n > 10_000_000:
                continue  # ~20 M elements/s: minutes at the largest sizes
            impl = PEER_IMPLS[peer](op, kind, y_float, y_pred, threads)
            if impl is not None:
                impls[peer] = impl
        reference = None
        for name, impl in impls.items():
            if progress:
                print(f"\r[{number}/{len(jobs)}] {op} {kind} {np.dtype(dtype).name} n={n:,} "
                      f"threads={threads}: {name:<8}", end="", file=sys.stderr, flush=True)
            seconds = best_time(impl, min_total=min_total)
            value = _loss_of(impl())
            if name == "fastbce":
                reference = value
            agrees = bool(np.isclose(value, reference, rtol=1e-3, atol=1e-6)) if reference is not None else None
            records.append({
                "op": op, "input": kind, "dtype": np.dtype(dtype).name, "n": int(n), "threads": int(threads),
                "impl": name, "seconds": seconds, "melem_per_s": n / seconds / 1e6, "agrees": agrees,
            })
    if progress:
        print("\r" + " " * 100 + "\r", end="", file=sys.stderr, flush=True)
    return records


def format_table(records, peers):
    """Rows of text: fastbce's throughput and each peer's speed ratio."""
    groups = {}
    for r in records:
        groups.setdefault((r["op"], r["input"], r["dtype"], r["n"], r["threads"]), {})[r["impl"]] = r
    single = {}
    for (op, kind, dtype, n, threads), impls in groups.items():
        for peer in ("numpy", "sklearn"):
            if peer in impls:
                single[(op, kind, dtype, n, peer)] = impls[peer]
    columns = ["fastbce M/s"] + [f"vs {p}" for p in peers]
    header = f"{'case':<34}{'n':>12}{'thr':>5}" + "".join(f"{c:>13}" for c in columns)
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
        case = f"{op} {kind} {dtype}"
        lines.append(f"{case:<34}{n:>12,}{threads:>5}" + "".join(f"{c:>13}" for c in cells))
    return lines


def plot(records, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = sorted({(r["op"], r["input"], r["dtype"]) for r in records})
    thread_counts = sorted({r["threads"] for r in records})
    fig, axes = plt.subplots(len(thread_counts), 1, figsize=(9, 4.2 * len(thread_counts)), squeeze=False)
    case = next((c for c in cases if c == ("bce", "logits", "float32")), cases[0])
    for ax, threads in zip(axes[:, 0], thread_counts):
        impls = sorted({r["impl"] for r in records if (r["op"], r["input"], r["dtype"]) == case})
        for impl in impls:
            points = sorted(
                (r["n"], r["melem_per_s"]) for r in records
                if (r["op"], r["input"], r["dtype"]) == case and r["impl"] == impl
                and (r["threads"] == threads or impl in ("numpy", "sklearn"))
            )
            if points:
                ax.plot(*zip(*points), marker="o", label=impl + (" (1 thread)" if impl in ("numpy", "sklearn") else ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("elements")
        ax.set_ylabel("M elements / s")
        ax.set_title(f"{' '.join(case)} mean, {threads} thread{'s' if threads > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_size(text):
    return int(float(text))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastbce bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute on 2 cores)")
    parser.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")],
                        help="comma-separated sizes (default 1e3,1e5,1e7; add 1e8 for the largest)")
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")],
                        help="comma-separated thread counts (default: 1 and all)")
    parser.add_argument("--dtypes", default=None, help="float32,float64 (default both; --quick: float32)")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
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
    cases = QUICK_CASES if args.quick else CASES
    peers = installed_peers([p for p in args.peers.split(",") if p])
    header = machine_header(peers)

    print(f"fastbce bench — fastbce {fastbce.__version__}, kernels: {header['target']} target, "
          f"OpenMP {'on' if header['openmp'] else 'off'} ({header['max_threads']} threads)")
    print(f"machine: {header['cpu']}, {header['cores']} cores; "
          + ", ".join(f"{k} {v}" for k, v in header["versions"].items() if k != "fastbce"))
    missing = [p for p in PEERS if p not in peers]
    if missing:
        print(f"not installed (left out): {', '.join(missing)}")
    print("ratio = peer time / fastbce time (above 1: fastbce is faster); numpy and sklearn run on 1 thread; "
          f"labels: {'float' if args.float_labels else 'uint8'} for fastbce, float for peers; "
          "'!' marks a peer whose result disagrees by more than 1e-3 relative "
          "(numexpr accumulates float32 sums in float32)")
    print()
    records = run(sizes, cases, dtypes, thread_counts, peers, float_labels=args.float_labels,
                  min_total=0.1 if args.quick else 0.3)
    for line in format_table(records, peers):
        print(line)

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
            json.dump({"machine": header, "records": records, "ceiling": ceiling}, f, indent=1)
        print(f"\nraw figures written to {args.json}")
    if args.plot:
        plot(records, args.plot)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
