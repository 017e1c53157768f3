"""Runtime CPU dispatch: the target in use, forcing one, and every target agreeing."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbce
from fastbce import _kernels
from fastbce._reference import bce_reference


def _run_python(code, **env):
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    environ = {k: v for k, v in os.environ.items() if k != "FASTBCE_TARGET"}
    environ.update(PYTHONPATH=where, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, cwd=os.path.dirname(where) or "/", timeout=120)


def test_the_best_available_target_is_used_unless_forced():
    forced = os.environ.get("FASTBCE_TARGET")
    assert _kernels.TARGET == (forced if forced in _kernels.AVAILABLE_TARGETS else _kernels.AVAILABLE_TARGETS[0])
    assert _kernels.AVAILABLE_TARGETS[-1] == "baseline"


@pytest.mark.parametrize("target", _kernels.AVAILABLE_TARGETS)
def test_fastbce_target_forces_a_target(target):
    proc = _run_python("from fastbce import _kernels; print(_kernels.TARGET)", FASTBCE_TARGET=target)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == target


def test_an_unavailable_target_warns_and_falls_back():
    proc = _run_python("import warnings; warnings.simplefilter('always');"
                       "from fastbce import _kernels; print(_kernels.TARGET)", FASTBCE_TARGET="no-such-cpu")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == _kernels.AVAILABLE_TARGETS[0]
    assert "FASTBCE_TARGET" in proc.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["proba", "logits"])
def test_every_target_agrees_with_the_reference(dtype, from_logits):
    rng = np.random.default_rng(5)
    n = 50_001
    y = rng.integers(0, 2, n).astype(np.uint8)
    x = rng.normal(0, 4, n)
    y_pred = (x if from_logits else 1 / (1 + np.exp(-x))).astype(dtype)
    expected = bce_reference(y, y_pred, from_logits=from_logits, reduction="sum")
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    for target in _kernels.AVAILABLE_TARGETS:
        kernel = _kernels.module(target).bce_kernel
        total, _, bad, _ = kernel(y[None], y_pred[None], None, None, None, None, None, from_logits, True,
                                  1.0, float(np.finfo(dtype).eps), 0.0, 1.0, 1)
        assert bad == -1
        assert total == pytest.approx(expected, rel=rtol), target
