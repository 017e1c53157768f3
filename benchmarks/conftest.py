"""Options for the benchmark suites: ``pytest benchmarks [--big]``."""


def pytest_addoption(parser):
    parser.addoption("--big", action="store_true", help="also benchmark n = 1e8")


def pytest_generate_tests(metafunc):
    if "n" in metafunc.fixturenames:
        sizes = [1_000, 100_000, 10_000_000]
        if metafunc.config.getoption("--big"):
            sizes.append(100_000_000)
        metafunc.parametrize("n", sizes, ids=lambda n: f"n={n:.0e}")
