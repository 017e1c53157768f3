"""Fork safety: after a parallel call, a forked child gets the parent's
results and never hangs (docs/kernels.md, "Processes and threads").

OpenMP's worker threads do not survive fork(): a child's next parallel region
would wait for them forever. The kernels run serial in such a child and say
so once with a RuntimeWarning. Each case runs in a fresh interpreter under a
timeout, so that a hang fails the test instead of stalling the suite.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import fastbce
from fastbce import _kernels

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")

# every entry point, on inputs large enough for the thread pool (> SERIAL_BELOW)
SETUP = """
import os, pickle, sys, warnings
import numpy as np
import fastbce
from fastbce import _kernels

rng = np.random.default_rng(7)
n = 300_000
x = rng.normal(0, 3, n).astype(np.float32)
p = 1 / (1 + np.exp(-x.astype(np.float64)))
y = (rng.random(n) < p).astype(np.int64)
w = rng.random(n)
groups = rng.integers(0, 5, n)

def calls(threads):
    def evaluation():
        ev = fastbce.evaluate(y, p, sample_weight=w, bins=50, groups=groups, num_threads=threads)
        return [ev.log_loss, ev.brier, ev.roc_auc, ev.tp, ev.groups[3].log_loss]
    out = {
        "bce": lambda: fastbce.bce(y, x, from_logits=True, num_threads=threads),
        "bce probabilities": lambda: fastbce.bce(y, p, sample_weight=w, num_threads=threads),
        "bce_grad": lambda: fastbce.bce_grad(y, x, from_logits=True, num_threads=threads).tobytes(),
        "bce_and_grad": lambda: (lambda r: (r[0], r[1].tobytes()))(
            fastbce.bce_and_grad(y, p, pos_weight=2.0, num_threads=threads)),
        "bce none": lambda: fastbce.bce(y, x, from_logits=True, reduction="none", num_threads=threads).tobytes(),
        "bce axis": lambda: fastbce.bce(y.reshape(600, 500), x.reshape(600, 500), from_logits=True, axis=-1,
                                        num_threads=threads).tobytes(),
        "grad_hess": lambda: tuple(a.tobytes() for a in fastbce.grad_hess(y, x, num_threads=threads)),
        "sigmoid": lambda: fastbce.sigmoid(x, num_threads=threads).tobytes(),
        "log_sigmoid": lambda: fastbce.log_sigmoid(x, num_threads=threads).tobytes(),
        "softplus": lambda: fastbce.softplus(x, num_threads=threads).tobytes(),
        "evaluate": evaluation,
    }
    if TORCH:
        import torch
        fastbce_torch = fastbce.torch
        def torch_step():
            logits = torch.from_numpy(x.copy()).requires_grad_()
            loss = fastbce_torch.binary_cross_entropy_with_logits(logits, torch.from_numpy(y.astype(np.float32)))
            loss.backward()
            return loss.item(), logits.grad.numpy().tobytes()
        out["fastbce.torch"] = torch_step
    return out
"""


def _run(body, torch=False, timeout=120):
    code = f"TORCH = {torch}\n" + SETUP + textwrap.dedent(body)
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    env = dict(os.environ, PYTHONPATH=where)
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              cwd=os.path.dirname(where) or "/", timeout=timeout)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"a forked child hung (no answer in {timeout} s): {error.stderr}")


OS_FORK = """
expected = {name: call() for name, call in calls(2).items()}   # parallel in the parent
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = {name: call() for name, call in calls(2).items()}
        got_default = {name: call() for name, call in calls(None).items()}
    report = {"same": sorted(name for name in expected if got[name] == expected[name]),
              "same_default": sorted(name for name in expected if got_default[name] == expected[name]),
              "warnings": [str(w.message) for w in caught if "fork" in str(w.message)],
              "serial": _kernels.forked_after_parallel()}
    os.write(write, pickle.dumps(report))
    os._exit(0)
os.close(write)
data = b""
while chunk := os.read(read, 1 << 16):
    data += chunk
_, status = os.waitpid(pid, 0)
report = pickle.loads(data)
report["expected"] = sorted(expected)
report["parent_serial"] = _kernels.forked_after_parallel()
print(repr(report))
"""


@pytest.mark.skipif(not _kernels.openmp_enabled(), reason="serial build: no thread pool to lose")
@pytest.mark.parametrize("with_torch", [False, True], ids=["numpy", "torch"])
def test_os_fork_child_after_a_parallel_call_gets_the_same_results(with_torch):
    if with_torch:
        pytest.importorskip("torch")
    proc = _run(OS_FORK, torch=with_torch)
    assert proc.returncode == 0, proc.stderr
    report = eval(proc.stdout.strip().splitlines()[-1])
    assert report["same"] == report["expected"]
    assert report["same_default"] == report["expected"]
    assert report["serial"] and not report["parent_serial"]
    # said once, naming the remedy
    assert len(report["warnings"]) == 1, report["warnings"]
    assert "spawn" in report["warnings"][0] and "forkserver" in report["warnings"][0]


POOL = """
import multiprocessing
expected = {name: call() for name, call in calls(2).items()}

def child(name):
    return calls(2)[name]()

with multiprocessing.get_context("fork").Pool(2) as pool:
    got = pool.map(child, list(expected))
print(repr([name for name, value in zip(expected, got) if value != expected[name]]))
"""


@pytest.mark.skipif(not _kernels.openmp_enabled(), reason="serial build: no thread pool to lose")
def test_fork_pool_workers_after_a_parallel_call_get_the_same_results():
    proc = _run(POOL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


SERIAL_PARENT = """
expected = {name: call() for name, call in calls(1).items()}   # the parent never went parallel
pid = os.fork()
if pid == 0:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = all(call() == expected[name] for name, call in calls(2).items())
    fork_warnings = [w for w in caught if "fork" in str(w.message)]
    os._exit(0 if same and not fork_warnings and not _kernels.forked_after_parallel() else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_child_of_a_serial_parent_keeps_its_threads_and_says_nothing():
    proc = _run(SERIAL_PARENT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0"


SPAWN = """
import multiprocessing
expected = calls(2)["bce"]()

def child(_):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no fork warning in a spawned worker
        return calls(2)["bce"](), fastbce._kernels.forked_after_parallel()

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        print(pool.map(child, range(2)) == [(expected, False)] * 2)
"""


@pytest.mark.skipif(not _kernels.openmp_enabled(), reason="serial build: no thread pool to lose")
def test_the_spawn_remedy_runs_parallel_children(tmp_path):
    # spawn re-imports the main module: it must be a file
    script = tmp_path / "spawn_case.py"
    script.write_text("TORCH = False\n" + SETUP + textwrap.dedent(SPAWN))
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, PYTHONPATH=where), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "True"
