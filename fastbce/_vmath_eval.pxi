# Included by fastbce/_kernels.pxi: the math's exp/log/log1p (_math.pxd, on
# _vmath.h) exposed to Python for the tests, applied in plain loops compiled
# with the kernels' flags, so that they are vectorized as the kernels are.
import numpy as _np

from fastbce._math cimport exp_, exp_neg, log_, log1p_, softplus_neg

_MATH_FUNCTIONS = {"exp": 0, "log": 1, "log1p": 2, "softplus": 3, "exp_neg": 4}


cdef void apply_math(int which, const floating* x, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
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
    cdef cnp.ndarray values = _np.ascontiguousarray(x)
    if values.dtype not in (_np.float32, _np.float64):
        raise TypeError(f"x must be float32 or float64, not {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"x must be 1-D, not {values.ndim}-D")
    cdef cnp.ndarray out = _np.empty_like(values)
    cdef Py_ssize_t n = values.shape[0]
    if values.dtype == _np.float32:
        with nogil:
            apply_math(which, <const float*> cnp.PyArray_DATA(values), <float*> cnp.PyArray_DATA(out), n)
    else:
        with nogil:
            apply_math(which, <const double*> cnp.PyArray_DATA(values), <double*> cnp.PyArray_DATA(out), n)
    return out
