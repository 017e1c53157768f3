"""Options for the benchmark suites: ``pytest benchmarks [--big]``."""
import os
import sys

# --import-mode=importlib (pyproject.toml) does not put benchmarks/ on
# sys.path: add it so that the suites can `from _throughput import ...`.
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_addoption(parser):
    parser.addoption("--big", action="store_true", help="also benchmark n = 1e8")


def pytest_generate_tests(metafunc):
    if "n" in metafunc.fixturenames:
        sizes = [1_000, 100_000, 10_000_000]
        if metafunc.config.getoption("--big"):
            sizes.append(100_000_000)
        metafunc.parametrize("n", sizes, ids=lambda n: f"n={n:.0e}")

