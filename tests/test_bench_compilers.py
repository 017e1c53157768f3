"""The compiler peers of ``fastbce bench`` (JAX, optax, torch.compile): same
values as fastbce on the bench's data, and the bench runs with them.

Each skips without its package. torch.compile compiles each function on first
use (seconds; the first compile in a process ~10-20 s): a few cases only.
"""
import numpy as np
import pytest

import fastbce
from fastbce import bench

N = 10_000
RTOL = {"float32": 1e-5, "float64": 1e-10}


@pytest.fixture(autouse=True)
def _restore_jax_x64():
    """The float64 cases turn on JAX's x64 mode: back as it was for the other tests."""
    try:
        import jax
    except ImportError:
        yield
        return
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)


def _fastbce(op, kind, dtype):
    labels, y_pred = bench.make_data(N, np.dtype(dtype), kind)
    result = bench.fastbce_impl(op, kind, labels, y_pred, 1, float_labels=False)()
    return labels, y_pred, result


def _check(op, kind, dtype, ours, theirs):
    rtol = RTOL[dtype]
    if op == "bce":
        assert theirs == pytest.approx(ours, rel=rtol)
        return
    if op == "bce_and_grad":
        assert theirs[0] == pytest.approx(ours[0], rel=rtol)
        ours, theirs = ours[1], theirs[1]
    assert theirs.dtype == np.dtype(dtype)  # float32 stays float32 (JAX's x64 mode on or not)
    scale = np.abs(ours).max()
    np.testing.assert_allclose(theirs, ours, rtol=rtol, atol=rtol * scale)


JAX_CASES = [("bce", "logits"), ("bce", "probabilities"), ("bce_grad", "logits"),
             ("bce_and_grad", "logits"), ("bce_and_grad", "probabilities")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op,kind", JAX_CASES, ids=[f"{op}-{kind}" for op, kind in JAX_CASES])
def test_jax_matches_fastbce(op, kind, dtype):
    pytest.importorskip("jax")
    labels, y_pred, ours = _fastbce(op, kind, dtype)
    impl = bench.PEER_IMPLS["jax"](op, kind, labels.astype(y_pred.dtype), y_pred, 1)
    assert impl.compile_seconds > 0
    _check(op, kind, dtype, ours, impl())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optax_matches_fastbce(dtype):
    pytest.importorskip("optax")
    labels, y_pred, ours = _fastbce("bce", "logits", dtype)
    impl = bench.PEER_IMPLS["optax"]("bce", "logits", labels.astype(y_pred.dtype), y_pred, 1)
    _check("bce", "logits", dtype, ours, impl())
    assert bench.PEER_IMPLS["optax"]("bce", "probabilities", labels, y_pred, 1) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_jax_in_subprocess(threads):
    """The bench's path: a fresh Python per thread count, the same data from the seed."""
    pytest.importorskip("jax")
    labels, y_pred, ours = _fastbce("bce_and_grad", "logits", "float64")
    timing = bench.time_in_subprocess("jax", "bce_and_grad", "logits", "float64", N, threads, 0.01)
    assert "error" not in timing, timing
    assert timing["seconds"] > 0 and timing["compile_seconds"] > 0
    assert timing["figures"][0] == pytest.approx(ours[0], rel=1e-10)


def test_subprocess_env_single_thread_flag():
    assert "--xla_cpu_multi_thread_eigen=false" in bench._subprocess_env(1)["XLA_FLAGS"]
    assert "--xla_cpu_multi_thread_eigen=false" not in bench._subprocess_env(2).get("XLA_FLAGS", "")


TORCH_CASES = [("bce", "logits", "float32"), ("bce", "probabilities", "float64"),
               ("bce_and_grad", "logits", "float32")]


@pytest.mark.parametrize("op,kind,dtype", TORCH_CASES, ids=["-".join(c) for c in TORCH_CASES])
def test_torch_compile_matches_fastbce(op, kind, dtype):
    pytest.importorskip("torch")
    labels, y_pred, ours = _fastbce(op, kind, dtype)
    try:
        impl = bench.PEER_IMPLS["torch_compile"](op, kind, labels.astype(y_pred.dtype), y_pred, 1)
    except bench.PeerUnavailable as error:
        pytest.skip(str(error))
    assert impl.compile_seconds > 0
    _check(op, kind, dtype, ours, impl())


@pytest.mark.parametrize("capability", ["avx2", "avx512"])
def test_torch_compile_held_to_an_isa_matches_fastbce(capability, monkeypatch):
    """ATEN_CPU_CAPABILITY holds Inductor to an ISA (the bench's AVX2
    comparisons); alone, avx2 on an AVX-512 machine made Inductor read half
    the elements (bench.match_inductor_vector_width)."""
    pytest.importorskip("torch")
    import torch._inductor.config as inductor_config
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
    # (not monkeypatch.setattr: its undo deletes the setting, which hides
    # it from torch's config module for good)
    before = inductor_config.cpp.simdlen
    inductor_config.cpp.simdlen = None
    try:
        for op in ("bce", "bce_and_grad"):
            labels, y_pred, ours = _fastbce(op, "logits", "float32")
            try:
                impl = bench.PEER_IMPLS["torch_compile"](op, "logits", labels.astype(y_pred.dtype), y_pred, 1)
            except bench.PeerUnavailable as error:
                pytest.skip(str(error))
            _check(op, "logits", "float32", ours, impl())
            assert inductor_config.cpp.simdlen == {"avx2": 256, "avx512": 512}[capability]
    finally:
        inductor_config.cpp.simdlen = before


def test_bench_runs_with_compiler_peers(capsys, tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--peers", "jax,torch_compile", "--sizes", "1000", "--tasks", "bce",
                       "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "vs jax" in text and "compile time" in text
    import json
    figures = json.loads(out.read_text())
    timed = {r["impl"] for r in figures["records"]}
    assert "jax" in timed
    assert "jax" in figures["compile_seconds"]
    if "torch_compile" not in figures["left_out"]:
        assert "torch_compile" in timed
    assert all(r["agrees"] for r in figures["records"])


def test_bench_leaves_out_a_peer_that_cannot_compile(capsys, monkeypatch):
    """No C++ compiler for torch.compile (simulated): a note, not a crash."""
    pytest.importorskip("torch")  # the bench's header reads PyTorch's version
    def failing(op, kind, y, y_pred, threads):
        raise bench.PeerUnavailable("torch.compile failed (InvalidCxxCompiler: no working C++ compiler found)")
    monkeypatch.setitem(bench.PEER_IMPLS, "torch_compile", failing)
    monkeypatch.setattr(bench, "installed_peers", lambda wanted: [p for p in wanted if p in ("numpy", "torch_compile")])
    assert bench.main(["--quick", "--peers", "numpy,torch_compile", "--sizes", "1000", "--tasks", "bce",
                       "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "left out: torch_compile: torch.compile failed (InvalidCxxCompiler" in text
    assert "vs numpy" in text and "vs torch_compile" not in text


def test_default_peers_without_compilers(monkeypatch):
    """installed_peers drops the compiler peers whose package is absent."""
    import builtins
    real_import = builtins.__import__

    def no_compilers(name, *args, **kwargs):
        if name in ("jax", "optax", "torch"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_compilers)
    found = bench.installed_peers(list(bench.PEERS))
    assert not {"jax", "optax", "torch", "torch_compile"} & set(found)
    assert "numpy" in found
