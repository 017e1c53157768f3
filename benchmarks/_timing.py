"""Helpers shared by the benchmark scripts and the pytest-benchmark suites."""
import argparse
import time


def record_throughput(benchmark, n):
    """Store M elements/s (from the fastest round) in the benchmark's extra
    info; nothing under --benchmark-disable, where no time was taken."""
    if not getattr(benchmark, "disabled", False) and benchmark.stats:
        benchmark.extra_info["melem_per_s"] = n / benchmark.stats["min"] / 1e6


def best_time(function, rounds):
    """The shortest of `rounds` timed calls of function(), in seconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def size_and_threads(description, default_size=1e7):
    """(n, thread counts) from the command line: --n 1e7 --threads 1,2."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=float, default=default_size)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    return int(args.n), [int(t) for t in args.threads.split(",")]
