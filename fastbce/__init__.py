"""fastbce: fast, fused, numerically stable binary cross-entropy.

    >>> import fastbce
    >>> round(fastbce.bce([1, 0, 1, 0], [0.9, 0.2, 0.8, 0.4]), 4)
    0.2656

Public API: :func:`bce`, :func:`bce_grad`, :func:`bce_and_grad`.
"""
from ._api import bce, bce_and_grad, bce_grad

__version__ = "0.1.0"

__all__ = ["bce", "bce_grad", "bce_and_grad", "__version__"]
