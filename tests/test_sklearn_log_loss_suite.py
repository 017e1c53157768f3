"""scikit-learn's own tests of ``log_loss``, run against fastbce.metrics.log_loss.

The tests of ``sklearn.metrics.tests.test_classification`` and
``sklearn.metrics.tests.test_common`` selected by ``-k "log_loss and not
d2_log_loss"`` run unmodified in a child pytest, with a plugin that puts
fastbce's function in the place of scikit-learn's before those modules are
imported: ``from sklearn.metrics import log_loss`` and the metric registries
that test_common builds at import (``partial(log_loss, normalize=False)``...)
then hold fastbce's. The plugin counts the calls, so that a run that never
reached fastbce (a renamed import in a future scikit-learn) fails here
instead of passing vacuously.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("sklearn.metrics.tests.test_classification")

# scikit-learn's tests that cannot pass for a reason of principle
# (node id suffix -> reason); strict xfails
EXPECTED_FAILURES = {}

SELECTION = "log_loss and not d2_log_loss"

PLUGIN = textwrap.dedent('''
    import functools, json, os
    import sklearn.metrics
    import fastbce.metrics

    calls = [0]

    @functools.wraps(fastbce.metrics.log_loss)
    def log_loss(*args, **kwargs):
        calls[0] += 1
        return fastbce.metrics.log_loss(*args, **kwargs)

    # before collection imports the test modules
    sklearn.metrics.log_loss = log_loss
    import sklearn.metrics._classification as classification
    classification.log_loss = log_loss

    def pytest_collection_modifyitems(session, config, items):
        import sklearn.metrics.tests.test_classification as tc
        import sklearn.metrics.tests.test_common as tm
        assert tc.log_loss is log_loss and tm.log_loss is log_loss
        for registry in ("METRICS", "CLASSIFICATION_METRICS", "CONTINUOUS_CLASSIFICATION_METRICS"):
            for name, metric in getattr(tm, registry, {}).items():
                if "log_loss" in name and not name.startswith("d2"):
                    assert getattr(metric, "func", metric) is log_loss, (registry, name)

    def pytest_sessionfinish(session, exitstatus):
        with open(os.environ["FASTBCE_SUITE_REPORT"], "w") as f:
            json.dump({"calls": calls[0]}, f)
''')


def _run_suite(tmp_path, selection=SELECTION, **environment):
    plugin = tmp_path / "fastbce_swap_log_loss.py"
    plugin.write_text(PLUGIN)
    report = tmp_path / "report.json"
    results = tmp_path / "results.xml"
    # the folder holding the fastbce these tests imported (installed, or a
    # checkout built in place), not the checkout, whose fastbce/ may be uncompiled
    import fastbce
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    env = dict(os.environ, FASTBCE_SUITE_REPORT=str(report), **environment,
               PYTHONPATH=os.pathsep.join([str(tmp_path), where, os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "pytest", "-p", "fastbce_swap_log_loss", "-p", "no:cacheprovider",
               "--pyargs", "sklearn.metrics.tests.test_classification",
               "sklearn.metrics.tests.test_common", "-k", selection, "-q", "-rfEX",
               f"--junitxml={results}", "-W", "ignore::pytest.PytestUnraisableExceptionWarning"]
    done = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=600)
    return done, report, results


def _outcomes(results):
    import xml.etree.ElementTree as ET
    outcomes = {}
    for case in ET.parse(results).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = ("failed" if kinds & {"failure", "error"} else
                          "skipped" if "skipped" in kinds else "passed")
    return outcomes


def _check(done, report, results, least_passed, least_calls):
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert results.exists(), output
    outcomes = _outcomes(results)
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    unexpected = [name for name in failed if not any(name.endswith(k) for k in EXPECTED_FAILURES)]
    assert not unexpected, output
    now_passing = [k for k in EXPECTED_FAILURES if not any(n.endswith(k) for n in failed)]
    assert not now_passing, ("expected failures now pass", now_passing)
    assert done.returncode == 0, output
    passed = sum(outcome == "passed" for outcome in outcomes.values())
    assert passed >= least_passed, output
    # they ran fastbce's function
    assert json.loads(report.read_text())["calls"] >= least_calls, output
    return passed


def test_sklearn_log_loss_tests_pass_with_fastbce(tmp_path):
    # scikit-learn 1.9.1: 42 tests (test_log_loss*, and test_common's invariance,
    # sample-weight, inf/NaN, dataframe checks of log_loss and unnormalized_log_loss)
    _check(*_run_suite(tmp_path), least_passed=35, least_calls=100)


def test_sklearn_array_api_log_loss_tests_pass_with_fastbce(tmp_path):
    # scikit-learn's array API checks run only with SCIPY_ARRAY_API=1 and a namespace
    # installed (array_api_strict, PyTorch): fastbce takes such arrays through NumPy
    if not any(_installed(name) for name in ("array_api_strict", "torch")):
        pytest.skip("neither array_api_strict nor PyTorch is installed")
    _check(*_run_suite(tmp_path, SELECTION + " and array_api", SCIPY_ARRAY_API="1"),
           least_passed=1, least_calls=1)


def _installed(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None
