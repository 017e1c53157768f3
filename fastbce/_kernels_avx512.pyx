# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""fastbce kernels compiled for the avx512 CPU target (see _kernels.pxi)."""
include "_kernels.pxi"
