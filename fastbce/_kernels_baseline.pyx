# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""fastbce kernels compiled for the baseline CPU target (see _kernels.pxi)."""
include "_kernels.pxi"
