# Included by fastbce/_kernels.pxi: the math's exp/log/log1p (_math.pxd, on
# _vmath.h) exposed to Python for the tests, applied in plain loops compiled
# with the kernels' flags, so that they are vectorized as the kernels are.
import numpy as _np

from fastbce._math cimport exp_, exp_neg, log_, log1p_, softplus_neg

_MATH_FUNCTIONS = {"exp": 0, "log": 1, "log1p": 2, "softplus": 3, "exp_neg": 4}


cdef void apply_math(int which, const floating[::1] x, floating[::1] out) noexcept nogil:
    cdef Py_ssize_t i, n = x.shape[0]
    if which == 0:
        for i in range(n):
            out[i] = exp_(x[i])
    elif which == 1:
        for i in range(n):
            out[i] = log_(x[i])
    elif which == 2:
        for i in range(n):
            out[i] = log1p_(x[i])
    elif which == 3:  # softplus(-a) = log1p(exp(-a)), for a >= 0
        for i in range(n):
            out[i] = softplus_neg(x[i])
    else:  # exp(-a), for a >= 0
        for i in range(n):
            out[i] = exp_neg(x[i])


def vmath_eval(str name, x):
    """fastbce's vectorized exp, log, log1p, softplus (log1p(exp(-a)), a >= 0) or
    exp_neg (exp(-a), a >= 0) applied to a 1-D float32/float64 array."""
    if name not in _MATH_FUNCTIONS:
        raise ValueError(f"unknown function {name!r}; expected one of {sorted(_MATH_FUNCTIONS)}")
    cdef int which = _MATH_FUNCTIONS[name]
    values = _np.ascontiguousarray(x)
    if values.dtype not in (_np.float32, _np.float64):
        raise TypeError(f"x must be float32 or float64, not {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"x must be 1-D, not {values.ndim}-D")
    out = _np.empty_like(values)
    cdef const float[::1] x32
    cdef float[::1] out32
    cdef const double[::1] x64
    cdef double[::1] out64
    if values.dtype == _np.float32:
        x32, out32 = values, out
        with nogil:
            apply_math(which, x32, out32)
    else:
        x64, out64 = values, out
        with nogil:
            apply_math(which, x64, out64)
    return out
