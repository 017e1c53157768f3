"""Every label dtype at full speed? Throughput by label dtype, per kernel target.

    python benchmarks/label_dtypes.py                     # every target this CPU runs
    python benchmarks/label_dtypes.py --n 2e7 --targets avx2 --repeat 9

For each kernel target (each in its own process, forced with
FASTBCE_TARGET), each case (the reduced logits loss, the reduced
probability loss, bce_and_grad on logits) and 1 thread and all threads, it
prints M elements/s for bool, uint8, int8, int16, int32, int64, float16,
float32 and float64 labels beside float32 predictions, and the slowest label
type's throughput as a fraction of the fastest's (the goal: at least 0.85).
Each figure is the best of --repeat calls, the label dtypes interleaved in
every round, so that a noisy neighbour slows them all alike.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

LABEL_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
CASES = ("logits mean", "probabilities mean", "bce_and_grad logits")


def measure(n, repeat, threads_list):
    """{case: {threads: {dtype: M elements/s}}} for the target in use."""
    import fastbce

    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, n).astype(np.float32)
    p = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    y = rng.random(n) < 1 / (1 + np.exp(-x))
    labels = {name: y.astype(name) for name in LABEL_DTYPES}
    grad = np.empty_like(x)
    calls = {
        "logits mean": lambda t, lab: fastbce.bce(lab, x, from_logits=True, num_threads=t),
        "probabilities mean": lambda t, lab: fastbce.bce(lab, p, num_threads=t),
        "bce_and_grad logits": lambda t, lab: fastbce.bce_and_grad(lab, x, from_logits=True, out=grad,
                                                                   num_threads=t),
    }
    results = {}
    for case, call in calls.items():
        results[case] = {}
        for threads in threads_list:
            best = {name: float("inf") for name in LABEL_DTYPES}
            for _ in range(repeat):
                for name in LABEL_DTYPES:
                    start = time.perf_counter()
                    call(threads, labels[name])
                    best[name] = min(best[name], time.perf_counter() - start)
            results[case][threads] = {name: n / best[name] / 1e6 for name in LABEL_DTYPES}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1e7, help="elements (default 1e7)")
    parser.add_argument("--repeat", type=int, default=7, help="calls per figure, best taken (default 7)")
    parser.add_argument("--targets", help="comma-separated targets (default: every one this CPU runs)")
    parser.add_argument("--threads", help="comma-separated thread counts (default: 1 and all)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = int(args.n)

    from fastbce import _kernels

    threads_list = ([int(t) for t in args.threads.split(",")] if args.threads
                    else sorted({1, _kernels.max_threads()}))
    if args.worker:
        print(json.dumps({"target": _kernels.TARGET, "results": measure(n, args.repeat, threads_list)}))
        return 0
    targets = args.targets.split(",") if args.targets else list(_kernels.AVAILABLE_TARGETS)
    print(f"label dtypes, float32 predictions, n = {n:,}, best of {args.repeat}; M elements/s")
    everything = {}
    worst = 1.0
    for target in targets:
        command = [sys.executable, os.path.abspath(__file__), "--worker", "--n", str(n),
                   "--repeat", str(args.repeat), "--threads", ",".join(map(str, threads_list))]
        env = dict(os.environ, FASTBCE_TARGET=target)
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        if report["target"] != target:
            print(f"\n{target}: not available here (got {report['target']}); skipped")
            continue
        everything[target] = report["results"]
        print(f"\ntarget {target}")
        print(f"{'case':<21}{'threads':>8}" + "".join(f"{name:>9}" for name in LABEL_DTYPES) + "  slowest/fastest")
        for case in CASES:
            for threads, figures in report["results"][case].items():
                ratio = min(figures.values()) / max(figures.values())
                worst = min(worst, ratio)
                print(f"{case:<21}{threads:>8}" + "".join(f"{figures[name]:>9,.0f}" for name in LABEL_DTYPES)
                      + f"  {ratio:.2f}")
    print(f"\nworst slowest/fastest ratio: {worst:.2f} (goal: >= 0.85)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": n, "repeat": args.repeat, "results": everything}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
