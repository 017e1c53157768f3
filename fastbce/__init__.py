"""fastbce: fast, fused, numerically stable binary cross-entropy.

    >>> import fastbce
    >>> round(fastbce.bce([1, 0, 1, 0], [0.9, 0.2, 0.8, 0.4]), 4)
    0.2656

Public API: :func:`bce`, :func:`bce_grad`, :func:`bce_and_grad`;
:func:`evaluate` (one-pass report), :class:`Evaluator` (streaming) and
:func:`evaluate_file`; :func:`grad_hess` (boosting objectives, see
:mod:`fastbce.boosting`); the element-wise :func:`sigmoid`,
:func:`log_sigmoid` and :func:`softplus`. Drop-in modules:
:mod:`fastbce.metrics` (scikit-learn's ``log_loss``), :mod:`fastbce.torch`
(PyTorch's BCE losses), :mod:`fastbce.dask` (Dask arrays and DataFrames).
"""
from ._api import bce, bce_and_grad, bce_grad, grad_hess, log_sigmoid, sigmoid, softplus
from ._evaluate import Evaluation, Evaluator, evaluate
from ._evaluate_io import evaluate_file
from . import metrics  # noqa: E402  (only NumPy)

# modules that import a heavy peer load on first use: `import fastbce` never
# imports PyTorch, Dask, XGBoost or LightGBM
_LAZY_MODULES = ("torch", "dask", "boosting")


def __getattr__(name):
    if name in _LAZY_MODULES:
        import importlib
        return importlib.import_module(f"fastbce.{name}")
    raise AttributeError(f"module 'fastbce' has no attribute {name!r}")


__version__ = "0.2.0"

__all__ = ["bce", "bce_grad", "bce_and_grad", "grad_hess", "sigmoid", "log_sigmoid", "softplus",
           "evaluate", "Evaluation", "Evaluator", "evaluate_file", "metrics", "__version__"]
