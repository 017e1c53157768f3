# The per-element math of binary cross-entropy: the one place for it.
#
# Every function is a small `inline ... noexcept nogil` function over the
# compute type (`floating`: float32 or float64), named after the math it
# implements. The kernel loops in _kernels.pyx call these and nothing else,
# so swapping the transcendentals (exp, log, log1p) touches only this file.
from libc.math cimport fabs, fabsf
from libc.stdint cimport uint16_t, uint32_t
from libc.string cimport memcpy

ctypedef fused floating:
    float
    double


# branch-free exp/log/log1p that the compiler vectorizes (error bounds in _vmath.h)
from fastbce._vmath cimport (
    fb_expf, fb_exp, fb_exp_negf, fb_exp_neg, fb_logf, fb_log, fb_log1pf, fb_log1p, fb_softplusf, fb_softplus,
    fb_softplus_sigmoidf, fb_softplus_sigmoid, fb_fmaf, fb_fma,
)


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return fb_expf(x)
    else:
        return fb_exp(x)


cdef inline floating exp_neg(floating a) noexcept nogil:
    # exp(-a) for a >= 0 (a = |x|): bit for bit exp_(-a), fewer operations
    if floating is float:
        return fb_exp_negf(a)
    else:
        return fb_exp_neg(a)


cdef inline floating log_(floating x) noexcept nogil:
    if floating is float:
        return fb_logf(x)
    else:
        return fb_log(x)


cdef inline floating log1p_(floating x) noexcept nogil:
    if floating is float:
        return fb_log1pf(x)
    else:
        return fb_log1p(x)


cdef inline floating softplus_neg(floating a) noexcept nogil:
    # softplus(-a) = log1p(exp(-a)) for a >= 0, in one pass (twice as fast as the two)
    if floating is float:
        return fb_softplusf(a)
    else:
        return fb_softplus(a)


cdef inline floating softplus_sigmoid_neg(floating a, floating* sigmoid_neg_a) noexcept nogil:
    # softplus(-a) and sigmoid(-a) from one exp(-a), a >= 0; the sigmoid is
    # bit for bit exp_(-a) / (1 + exp_(-a))
    if floating is float:
        return fb_softplus_sigmoidf(a, sigmoid_neg_a)
    else:
        return fb_softplus_sigmoid(a, sigmoid_neg_a)


cdef inline floating abs_(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline float half_label_to_float(uint16_t h) noexcept nogil:
    # the IEEE half-precision number (NumPy's float16) with bits h, for a
    # label: its sign, exponent and mantissa moved into a float's fields and
    # rebiased by one exact multiplication by 2**112 (subnormal halves
    # included). Exact for every finite half; inf and NaN come out as finite
    # values above 1, which are invalid labels all the same. Branch-free, so
    # that the conversion loop vectorizes.
    cdef uint32_t bits = ((<uint32_t> (h & 0x8000)) << 16) | ((<uint32_t> (h & 0x7fff)) << 13)
    cdef float value
    memcpy(&value, &bits, 4)
    return value * <float> 5.192296858534828e+33


# --- validity checks: nonzero when the value is bad (NaN included) ---------
# Written as `not (low <= v <= high)` so that NaN, which compares false, is bad.

cdef inline int invalid_label(floating y) noexcept nogil:
    return not (y >= 0 and y <= 1)


cdef inline int invalid_probability(floating p) noexcept nogil:
    return not (p >= 0 and p <= 1)


cdef inline int invalid_logit(floating x) noexcept nogil:
    # +-inf logits are valid (their loss is the limit); only NaN is bad
    return x != x


cdef inline int invalid_sample_weight(floating w) noexcept nogil:
    return not (w >= 0)


cdef inline int invalid_pos_weight(floating pw) noexcept nogil:
    return not (pw > 0)


# --- the math --------------------------------------------------------------
# Constants are typed `floating` (`one`): a bare 1 is a C double, which would
# silently compute float32 inputs in double precision.

cdef inline floating smooth_label(floating y, floating keep, floating half_smoothing) noexcept nogil:
    # Keras: y * (1 - a) + a / 2, with keep = 1 - a and half_smoothing = a / 2
    return y * keep + half_smoothing


cdef inline floating clip_probability(floating p, floating eps) noexcept nogil:
    # scikit-learn's log_loss clips to [eps, 1 - eps] before the logs
    # (selects, not branches, so that loops vectorize; NaN stays NaN)
    cdef floating one = 1
    p = eps if p < eps else p
    return one - eps if p > one - eps else p


cdef inline floating loss_probability(floating y, floating p, floating w, floating pw) noexcept nogil:
    # -w * (pw * y * log(p) + (1 - y) * log(1 - p)), p already clipped.
    # log1p(-p) keeps log(1 - p) accurate for small p.
    cdef floating one = 1
    return -w * (pw * y * log_(p) + (one - y) * log1p_(-p))


cdef inline floating grad_probability(floating y, floating p, floating w, floating pw) noexcept nogil:
    # d loss / d p = w * (-pw * y / p + (1 - y) / (1 - p)), p already clipped
    cdef floating one = 1
    return w * ((one - y) / (one - p) - pw * y / p)


cdef inline floating loss_probability_binary(floating y, floating p, floating w, floating pw) noexcept nogil:
    # loss_probability for y exactly 0 or 1, with one log instead of two:
    # y = 1: -w * pw * log(p); y = 0: -w * log(1 - p), where 1 - p = u + c
    # exactly (Fast2Sum, p <= 1) and log(1 - p) = log(u) + c / u. c is 0 for
    # p >= 1/2 (Sterbenz); below, 1 / u = 1 / (1 - t) ~ 1 + t + t^2 with
    # t = 1 - u < 1/2 is within 1/8, and |c / u| < 1 ulp of log(u) there, so
    # the approximation adds at most 1/8 ulp.
    cdef floating one = 1, zero = 0
    cdef floating u = one - p
    cdef floating c = (one - u) - p
    cdef floating t = one - u
    cdef bint positive = y != zero
    cdef floating q = p if positive else u
    cdef floating correction = zero if positive else c * (one + t + t * t)
    return -w * (pw if positive else one) * (log_(q) + correction)


cdef inline floating grad_probability_binary(floating y, floating p, floating w, floating pw) noexcept nogil:
    # grad_probability for y exactly 0 or 1 with one division: -w * pw / p or
    # w / (1 - p); bit for bit the same value
    cdef floating one = 1, zero = 0
    cdef bint positive = y != zero
    return w * ((-pw if positive else one) / (p if positive else one - p))


cdef inline floating plus_exact_product(floating total, floating a, floating b) noexcept nogil:
    # total + a * b for a product that is exact (b is 0 or 1): one fused
    # operation where the hardware has FMA, the same value as the two
    if floating is float:
        return fb_fmaf(a, b, total)
    else:
        return fb_fma(a, b, total)


cdef inline floating times_or_zero(floating coefficient, floating x) noexcept nogil:
    # coefficient * x, with 0 * inf taken as its limit 0 rather than NaN
    cdef floating zero = 0
    return coefficient * x if coefficient != zero else zero


cdef inline floating pos_weight_factor(floating y, floating pw) noexcept nogil:
    # c = 1 + (pw - 1) * y, the weight of softplus(-x) in the loss; exactly 1
    # when pw is 1, written so that it folds away where pw is the constant 1
    # (the unweighted loops)
    cdef floating one = 1
    return one if pw == one else one + (pw - one) * y


cdef inline floating linear_coefficient(floating y, floating x, floating pw) noexcept nogil:
    # k = 1 - y for x >= 0, -pw * y for x < 0: the loss's factor of x once
    # softplus(-x) = max(-x, 0) + softplus(-|x|) is folded into the linear
    cdef floating one = 1, zero = 0
    return one - y if x >= zero else -pw * y


cdef inline floating loss_logit_given(floating y, floating x, floating w, floating pw,
                                     floating softplus_neg_abs_x) noexcept nogil:
    # w * (k * x + c * softplus(-|x|)): no cancellation for large |x|, and
    # each infinity gives the loss's limit (0 or +inf) instead of inf - inf
    cdef floating loss = (times_or_zero(linear_coefficient(y, x, pw), x)
                          + pos_weight_factor(y, pw) * softplus_neg_abs_x)
    return w * loss


cdef inline floating grad_logit_given(floating y, floating x, floating w, floating pw,
                                     floating sigmoid_neg_abs_x) noexcept nogil:
    # w * (c * sigmoid(x) - pw * y). With s = sigmoid(-|x|) (from
    # exp(-|x|), which never overflows), the identity c - pw * y = 1 - y gives
    #   x >= 0:  (1 - y) - c * s      x < 0:  c * s - pw * y
    # so the small term is computed directly instead of as 1 - sigmoid.
    cdef floating one = 1, zero = 0
    cdef floating cs = pos_weight_factor(y, pw) * sigmoid_neg_abs_x
    cdef floating nonnegative_x = (one - y) - cs
    cdef floating negative_x = cs - pw * y
    return w * (nonnegative_x if x >= zero else negative_x)


cdef inline floating loss_logit(floating y, floating x, floating w, floating pw) noexcept nogil:
    return loss_logit_given(y, x, w, pw, softplus_neg(abs_(x)))


cdef inline floating grad_logit(floating y, floating x, floating w, floating pw) noexcept nogil:
    cdef floating one = 1
    cdef floating e = exp_neg(abs_(x))
    return grad_logit_given(y, x, w, pw, e / (one + e))


cdef inline floating loss_and_grad_logit(floating y, floating x, floating w, floating pw,
                                        floating* grad) noexcept nogil:
    # both from one exp(-|x|); the same values as loss_logit and grad_logit
    cdef floating sigmoid_neg_abs_x
    cdef floating softplus_neg_abs_x = softplus_sigmoid_neg(abs_(x), &sigmoid_neg_abs_x)
    grad[0] = grad_logit_given(y, x, w, pw, sigmoid_neg_abs_x)
    return loss_logit_given(y, x, w, pw, softplus_neg_abs_x)


# --- elementwise building blocks (fastbce.sigmoid, log_sigmoid, softplus) ---

cdef inline floating sigmoid_(floating x) noexcept nogil:
    # from e = exp(-|x|), which never overflows: 1 / (1 + e) for x >= 0,
    # e / (1 + e) below, so that neither side loses the small result
    cdef floating one = 1, zero = 0
    cdef floating e = exp_neg(abs_(x))
    return (one if x >= zero else e) / (one + e)


cdef inline floating softplus_(floating x) noexcept nogil:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exact limits at +-inf
    cdef floating zero = 0
    return (x if x > zero else zero) + softplus_neg(abs_(x))


cdef inline floating log_sigmoid_(floating x) noexcept nogil:
    # log(sigmoid(x)) = -softplus(-x)
    cdef floating zero = 0
    return -((-x if x < zero else zero) + softplus_neg(abs_(x)))


# --- gradient and hessian for boosting (fastbce.grad_hess) -------------------

cdef inline floating grad_hess_logit(floating y, floating x, floating w, floating pw,
                                    floating* hess) noexcept nogil:
    # gradient as grad_logit (bit for bit) and the hessian
    # w * c * sigmoid(x) * (1 - sigmoid(x)), c = 1 + (pw - 1) * y; the product
    # is even in x, so it is s * (1 - s) with s = sigmoid(-|x|) <= 1/2, where
    # 1 - s loses nothing
    cdef floating one = 1
    cdef floating e = exp_neg(abs_(x))
    cdef floating s = e / (one + e)
    hess[0] = w * pos_weight_factor(y, pw) * (s * (one - s))
    return grad_logit_given(y, x, w, pw, s)


# --- the per-element parts of the evaluation report (fastbce.evaluate) ------

cdef inline floating logit_parts(floating x, floating* neg_log_p, floating* neg_log_not_p) noexcept nogil:
    # p = sigmoid(x), -log(p) = softplus(-x) and -log(1 - p) = softplus(x),
    # all from one exp(-|x|); infinities give the limits (0 or +inf)
    cdef floating one = 1, zero = 0
    cdef floating s
    cdef floating shared = softplus_sigmoid_neg(abs_(x), &s)
    neg_log_p[0] = (-x if x < zero else zero) + shared
    neg_log_not_p[0] = (x if x > zero else zero) + shared
    return one - s if x >= zero else s


cdef inline floating logit_own_parts(floating x, bint positive, floating* own_loss) noexcept nogil:
    # p = sigmoid(x), and the loss of the element's own class: -log(p) =
    # softplus(-x) when positive, else -log(1 - p) = softplus(x); the same
    # values as logit_parts', with one ramp: softplus(z) = max(z, 0) +
    # softplus(-|z|), z = -x or x
    cdef floating one = 1, zero = 0
    cdef floating s
    cdef floating shared = softplus_sigmoid_neg(abs_(x), &s)
    cdef floating z = -x if positive else x
    own_loss[0] = (z if z > zero else zero) + shared
    return one - s if x >= zero else s


cdef inline void probability_parts(floating p, floating eps, floating* neg_log_p,
                                   floating* neg_log_not_p) noexcept nogil:
    # -log(p) and -log(1 - p) of p clipped to [eps, 1 - eps], as bce
    cdef floating clipped = clip_probability(p, eps)
    neg_log_p[0] = -log_(clipped)
    neg_log_not_p[0] = -log1p_(-clipped)
