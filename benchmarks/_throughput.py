"""Helpers shared by the pytest-benchmark suites."""


def record_throughput(benchmark, n):
    """Store M elements/s (from the fastest round) in the benchmark's extra
    info; nothing under --benchmark-disable, where no time was taken."""
    if not getattr(benchmark, "disabled", False) and benchmark.stats:
        benchmark.extra_info["melem_per_s"] = n / benchmark.stats["min"] / 1e6
