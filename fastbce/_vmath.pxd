# cython: language_level=3
# Declarations of the branch-free, auto-vectorizable math functions in
# _vmath.h (see the comment block there for methods and accuracy).

cdef extern from "_vmath.h" nogil:
    float fb_fmaf(float a, float b, float c)
    double fb_fma(double a, double b, double c)
    float fb_expf(float x)
    double fb_exp(double x)
    float fb_exp_negf(float a)
    double fb_exp_neg(double a)
    float fb_logf(float x)
    double fb_log(double x)
    float fb_log1pf(float x)
    double fb_log1p(double x)
    float fb_softplusf(float a)
    double fb_softplus(double a)
    float fb_softplus_sigmoidf(float a, float* sigmoid_neg_a)
    double fb_softplus_sigmoid(double a, double* sigmoid_neg_a)
