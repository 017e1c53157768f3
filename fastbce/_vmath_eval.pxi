# Included by fastbce/_kernels.pyx.  Exposes the _vmath.h functions to Python
# for testing: each is applied in a plain C loop, compiled exactly like the
# kernels' loops (so it is auto-vectorized the same way).

cimport cython
from cython cimport floating
from fastbce._vmath cimport fb_expf, fb_exp, fb_logf, fb_log, fb_log1pf, fb_log1p


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _vmath_apply(int which, const floating[::1] x, floating[::1] out) noexcept nogil:
    cdef Py_ssize_t i, n = x.shape[0]
    if n == 0:
        return
    cdef const floating *xp = &x[0]
    cdef floating *op = &out[0]
    if floating is float:
        if which == 0:
            for i in range(n):
                op[i] = fb_expf(xp[i])
        elif which == 1:
            for i in range(n):
                op[i] = fb_logf(xp[i])
        else:
            for i in range(n):
                op[i] = fb_log1pf(xp[i])
    else:
        if which == 0:
            for i in range(n):
                op[i] = fb_exp(xp[i])
        elif which == 1:
            for i in range(n):
                op[i] = fb_log(xp[i])
        else:
            for i in range(n):
                op[i] = fb_log1p(xp[i])


def vmath_eval(str name, x):
    """Apply fastbce's vectorized exp/log/log1p element-wise.

    name: "exp", "log" or "log1p".  x: 1-D float32 or float64 array
    (made C-contiguous if it is not).  Returns a new array of x's dtype.
    """
    import numpy as _np
    cdef int which
    if name == "exp":
        which = 0
    elif name == "log":
        which = 1
    elif name == "log1p":
        which = 2
    else:
        raise ValueError(f"unknown function {name!r}; expected 'exp', 'log' or 'log1p'")
    arr = _np.ascontiguousarray(x)
    if arr.ndim != 1:
        raise ValueError("x must be 1-D")
    out = _np.empty_like(arr)
    cdef const float[::1] xf
    cdef float[::1] of
    cdef const double[::1] xd
    cdef double[::1] od
    if arr.dtype == _np.float32:
        xf = arr
        of = out
        with nogil:
            _vmath_apply(which, xf, of)
    elif arr.dtype == _np.float64:
        xd = arr
        od = out
        with nogil:
            _vmath_apply(which, xd, od)
    else:
        raise TypeError(f"x must be float32 or float64, not {arr.dtype}")
    return out
