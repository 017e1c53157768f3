"""The compiled kernels for the best CPU target this machine supports.

The same kernel source (_kernels.pxi) is compiled for several x86-64
targets; this module picks, at import, the best one that was built and that
the CPU runs (features as NumPy detects them). Set the environment variable
``FASTBCE_TARGET`` to ``baseline``, ``avx2`` or ``avx512`` to force a lower
target (a target the CPU lacks is refused with a warning).
"""
import importlib
import os
import warnings

# best first; each needs these CPU features (NumPy's names)
TARGETS = ("avx512", "avx2", "baseline")
_REQUIRED_FEATURES = {
    "avx512": ("AVX512F", "AVX512DQ", "AVX512VL", "AVX512BW", "AVX2", "FMA3"),
    "avx2": ("AVX2", "FMA3"),
    "baseline": (),
}


def _cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return __cpu_features__


def _load(target):
    try:
        return importlib.import_module(f"fastbce._kernels_{target}")
    except ImportError:
        return None


def _available():
    features = _cpu_features()
    modules = {}
    for target in TARGETS:
        if all(features.get(f, False) for f in _REQUIRED_FEATURES[target]):
            module = _load(target)
            if module is not None:
                modules[target] = module
    return modules


_modules = _available()
if not _modules:
    raise ImportError(
        "fastbce's compiled kernels are missing. Install fastbce with `pip install .` "
        "(and run it from outside the source checkout, whose uncompiled fastbce/ folder "
        "would shadow the installed package), or build in place with "
        "`python setup.py build_ext --inplace`."
    )
#: targets built and supported by this CPU, best first
AVAILABLE_TARGETS = tuple(_modules)
TARGET = AVAILABLE_TARGETS[0]
_forced = os.environ.get("FASTBCE_TARGET", "").strip().lower()
if _forced:
    if _forced in _modules:
        TARGET = _forced
    else:
        warnings.warn(
            f"FASTBCE_TARGET={_forced!r} is not available here (available: "
            f"{', '.join(AVAILABLE_TARGETS)}); using {TARGET!r}",
            RuntimeWarning,
        )
_module = _modules[TARGET]

openmp_enabled = _module.openmp_enabled
max_threads = _module.max_threads
forked_after_parallel = _module.forked_after_parallel
vmath_eval = _module.vmath_eval
#: the kernels (see _kernels.pxi): each reads its operands' dtypes at run time
bce_kernel = _module.bce_kernel
evaluate_kernel = _module.evaluate_kernel
elementwise_kernel = _module.elementwise_kernel
#: the multi-class log loss of fastbce.metrics.log_loss: one pass over (n, k)
#: probabilities and n int64 class codes, no one-hot matrix. None in an
#: in-place build older than this kernel, so that such a build keeps working
#: for everything else until it is rebuilt (log_loss then says so)
multiclass_kernel = getattr(_module, "multiclass_kernel", None)
#: (smallest, largest) of int32/int64 group codes in one pass (None in an
#: in-place build older than it: NumPy's min() and max() instead)
integer_range = getattr(_module, "integer_range", None)
#: longest row bce_kernel sums per row (axis=)
MAX_ROW_SUM_LENGTH = _module.MAX_ROW_SUM_LENGTH
#: the sums of evaluate_kernel, in the order of its output's columns
SUM_NAMES, BIN_SUM_NAMES = _module.SUM_NAMES, _module.BIN_SUM_NAMES


def module(target=None):
    """The compiled module of a target (default: the one in use)."""
    return _modules[target or TARGET]
