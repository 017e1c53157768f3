/*
 * _vmath.h -- branch-free, auto-vectorizable exp / log / log1p / softplus
 * for fastbce.
 *
 *   float fb_expf(float)       double fb_exp(double)
 *   float fb_logf(float)       double fb_log(double)
 *   float fb_log1pf(float)     double fb_log1p(double)
 *   float fb_softplusf(float)  double fb_softplus(double)   [log1p(exp(-a)), a >= 0]
 *
 * Accuracy contract: <= 2 ulp (design bound) for every function, dtype and
 * target, over the whole input range, except softplus without FMA (SSE2
 * baseline: 2.2 ulp); measured maxima are ~1 ulp (exp, log, log1p) and
 * 1.76 ulp (softplus with FMA) / 2.11 ulp (SSE2), see the table below.
 *
 * Every function is a `static inline` C99 function made only of
 * arithmetic, bit manipulation on uint32_t/uint64_t (through memcpy) and
 * bit-mask selects, so that GCC (12) at -O3 -- without -ffast-math and
 * without -march=native -- vectorizes a plain loop
 * `for (i...) out[i] = fb_expf(in[i]);` for baseline x86-64 (SSE2),
 * -mavx2 -mfma and -mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma.  There
 * are no intrinsics, tables, data-dependent branches or library calls;
 * fma()/fmaf() are used only where the target has a hardware FMA (__FMA__
 * on x86, __ARM_FEATURE_FMA on AArch64), otherwise a*b+c is written out.
 * Plain C99 + stdint.h + string.h + math.h; also compiles as C++.
 * Everything is computed unconditionally, so FP exception flags (overflow,
 * invalid, ...) may be raised spuriously; results are unaffected.
 * Requires round-to-nearest and FLT_EVAL_METHOD == 0 (SSE or any non-x87
 * target): the 1.5*2^23 / 1.5*2^52 "shifter" rounding tricks and the few
 * exact operations noted below rely on it.  Results do not depend on
 * -ffp-contract beyond the measured bounds.
 *
 * (fb_exp_negf / fb_exp_neg: exp(-a) for a >= 0, the loss kernels' case, bit for
 *  bit fb_expf(-a) / fb_exp(-a) with fewer operations: see there.)
 *
 * Methods (single-word arithmetic; previous versions used double-word
 * compensation throughout for <= 0.67 ulp at about half the speed)
 * -------
 * fb_expf / fb_exp: x is clamped to [-104, 89] / [-746, 710] (outside,
 *   the result is +0 resp. +inf anyway).  n = round(x/ln2) by the shifter
 *   trick; r = (x - n*ln2_hi) - n*ln2_lo (the first step exact: ln2_hi has
 *   15 / 29 significant bits), |r| <= 0.3467.  e^r = 1 + w,
 *   w = r + r^2*Q(r), Q minimax of degree 4 / 9 (Horner; relative error of
 *   the approximation 2^-28.3 / 2^-57.9).  The result (1 + w) is scaled by
 *   2^n = 2^n1 * 2^(n-n1), n1 = round(n/2), two normal powers of two built
 *   from the shifter bits with integer shifts/adds: subnormal results are
 *   rounded only once more (by the second product) and overflow produces
 *   +inf by itself.
 *   Special values: +-0 -> 1, +inf -> +inf, -inf -> +0, NaN -> NaN;
 *   x > log(FLT_MAX) = 88.7228 / log(DBL_MAX) = 709.7827 -> +inf;
 *   subnormal results within ~0.78 ulp of the subnormal spacing;
 *   x < -103.972 / -745.133 (result < half the smallest subnormal) -> +0.
 * fb_logf / fb_log: subnormal inputs are first scaled by 2^24 / 2^54 (a
 *   select).  x = 2^k * m with m in [sqrt(1/2), sqrt(2)) by integer
 *   arithmetic on the bits (no int64 arithmetic shifts, compares or
 *   int64->double conversions, which SSE2/AVX2 lack); f = m - 1 (exact).
 *   float:  log(1+f) = f + f^2*Q(f), Q minimax of degree 8 in f (no
 *           division; relative error 2^-27.8).
 *   double: s = f/(2+f), z = s^2, log(1+f) = f - hfsq + s*(hfsq + z*T(z)),
 *           hfsq = f^2/2, T minimax with 7 terms (error 2^-59.5); one
 *           division is cheaper here than the degree-20 division-free
 *           polynomial (measured: 907 vs 737 M/s on AVX-512).
 *   log(x) = k*ln2_hi + (f + (tail + k*ln2_lo)): k*ln2_hi is exact, so
 *   only the final addition rounds at full weight.
 *   Special values: +-0 -> -inf, x < 0 (incl. -inf) -> NaN, +inf -> +inf,
 *   NaN -> NaN, 1 -> +0; subnormal inputs are handled at full accuracy.
 * fb_log1pf / fb_log1p: u = 1 + x and c = x - (u - 1), which is the exact
 *   rounding error of u wherever it is used (|c| <= ulp(u)/2).  Where u
 *   reduces with k == 0 (x in ~[-0.29, 0.41]) the kernel runs directly on
 *   f = x (no rounding at all: tiny x gives exactly x); otherwise
 *   log1p(x) = log(u) + c/u with c/u = c*2^-k/(1+f) ~ c*2^-k*(1 - f + f^2)
 *   folded into the tail.  Near -1, 1 + x is exact.
 *   Special values: +-0 -> +-0 (sign kept), -1 -> -inf, x < -1 (incl.
 *   -inf) -> NaN, +inf -> +inf, NaN -> NaN, |x| tiny -> x.
 * fb_softplusf / fb_softplus (a = |x| >= 0; softplus(-a) = log1p(e^-a)):
 *   e = e^-a by the exp kernel above; then log1p(e) = e + e^2*S(e), S
 *   minimax on [0, 1] of degree 8 / 20 (relative error 2^-27.0 / 2^-58.8).
 *   Carrying e's own rounding error (Fast2Sum on 1 + w, then el/(1+e))
 *   gained 0.2 ulp (1.54 -> 1.76 without it) for a quarter more operations
 *   in the loss kernels, so it was dropped.  No second range reduction and
 *   no division; for large a, e^2*S vanishes and the result is e (same
 *   relative accuracy as exp, also for subnormal results: within ~0.78 ulp
 *   of the subnormal spacing).  a > 104 / 746 (incl. +inf) -> +0, NaN ->
 *   NaN, +-0 -> ln 2.  Negative a is outside the contract (not
 *   special-cased; accuracy degrades, use a = |x|).
 *
 * Measured accuracy
 * -----------------
 * Max error in ulps of the correctly rounded result (subnormal results
 * counted in units of the subnormal spacing), for the vectorized loops
 * compiled by GCC 12.2 with fastbce's flags -O3 -fno-trapping-math
 * -ffp-contract=off plus the target's flags:
 *   float32: EXHAUSTIVE over all 2^32 inputs (softplus: all 2^31 a >= 0),
 *            reference glibc double exp/log/log1p (softplus:
 *            log1p(exp(-a)) in double);
 *   float64: 3e7 points per function (log-uniform over the whole finite
 *            range of each sign incl. subnormals, uniform on [-750, 712]
 *            / [0.5, 2] / [-1, 1], dense near 0, 1, -1, the reduction
 *            boundaries and the overflow/underflow thresholds; softplus
 *            2e7 points on [0, 750], [0, 2], [705, 750] and log-uniform
 *            [2^-63, 768]), reference glibc 80-bit long double.
 *
 *                        SSE2 (baseline)  -mavx2 -mfma    AVX-512 + FMA
 *   fb_expf              0.989           1.013           1.013
 *     subnormal results  0.749           0.749           0.749
 *   fb_logf              0.905           0.876           0.876
 *   fb_log1pf            0.986           0.957           0.957
 *   fb_softplusf         2.106           1.755           1.755
 *     subnormal results  0.749           0.749           0.749
 *   fb_exp               0.961           0.997           0.997
 *     subnormal results  0.768           0.769           0.769
 *   fb_log               0.838           0.836           0.836
 *   fb_log1p             0.919           0.890           0.890
 *   fb_softplus          2.060           1.742           1.742
 *     subnormal results  0.768           0.778           0.778
 *
 * (softplus without the rounding-error term: float32 exhaustive again,
 * float64 4e7 points uniform on [0, 746] and [0, 2]; 2026-11-26.)
 * tests/test_vmath.py asserts these maxima (rounded up: exp 1.05, log
 * 0.95, log1p 1.0, softplus 2.0 / 2.15 on SSE2 ulp; subnormal results
 * 0.8) on ~1e7 float32 / ~1.4e6
 * float64 points plus exact special values.
 *
 * Throughput (bare C loop `out[i] = f(in[i])`, 65536 elements in cache,
 * 1 thread, M elements/s, same harness and run, 2-core AVX-512 Xeon; old =
 * the previous double-word version of this header):
 *
 *               AVX-512            AVX2+FMA           SSE2
 *               old   new  x       old   new  x       old   new  x
 *   expf       1879  3500 1.86     994  1863 1.87     425   696 1.64
 *   logf       1646  2453 1.49     993  1337 1.35     464   520 1.12
 *   log1pf     1324  2069 1.56     802  1050 1.31     390   421 1.08
 *   exp         724  1129 1.56     413   609 1.47     160   196 1.23
 *   log         686   920 1.34     447   597 1.34     192   216 1.13
 *   log1p       521   676 1.30     346   471 1.36     149   168 1.13
 *
 *   softplus (new) vs log1p(exp(-a)) with the new functions, a in [0, 20]:
 *   float32    1899 vs 967 (1.96x)  1070 vs 431 (2.48x)  326 vs 170 (1.92x)
 *   float64     457 vs 292 (1.57x)   291 vs 166 (1.75x)   73 vs  53 (1.38x)
 */
#ifndef FASTBCE_VMATH_H
#define FASTBCE_VMATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(__FMA__) || (defined(__aarch64__) && defined(__ARM_FEATURE_FMA))
#define FB_FMAF(a, b, c) fmaf((a), (b), (c))
#define FB_FMA(a, b, c) fma((a), (b), (c))
#define FB_HAVE_FMA 1
#else
#define FB_FMAF(a, b, c) ((a) * (b) + (c))
#define FB_FMA(a, b, c) ((a) * (b) + (c))
#define FB_HAVE_FMA 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FB_INLINE static inline __attribute__((always_inline))
#else
#define FB_INLINE static inline
#endif

/* ---- bit casts ---------------------------------------------------------- */
FB_INLINE uint32_t fb_asu32(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
FB_INLINE float fb_asf32(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
FB_INLINE uint64_t fb_asu64(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
FB_INLINE double fb_asf64(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

/* a * b + c in one rounding where the hardware has FMA (two elsewhere):
 * for sums of exact products (a 0/1 factor), the same value either way */
FB_INLINE float fb_fmaf(float a, float b, float c) { return FB_FMAF(a, b, c); }
FB_INLINE double fb_fma(double a, double b, double c) { return FB_FMA(a, b, c); }

/* Selects.  Written with bit masks instead of ?: because GCC otherwise
 * sinks the computation of the selected value into a conditional block,
 * which under the default -ftrapping-math it refuses to if-convert (no
 * vectorization without AVX-512 masking).
 * float:  mask from an ordinary comparison (32-bit lanes, fine on SSE2).
 * double: SSE2 cannot turn a double comparison into a 64-bit integer mask
 *         (GCC 12: "patt = cmp ? 1 : 0 not supported"), so the double
 *         functions build their masks with integer arithmetic on the bits:
 *         all-ones iff the sign bit of some difference is set. */
FB_INLINE float fb_self(int c, float a, float b)
{
    uint32_t m = (uint32_t)0 - (uint32_t)(c != 0);
    return fb_asf32((fb_asu32(a) & m) | (fb_asu32(b) & ~m));
}
/* m is 0 or all-ones */
FB_INLINE double fb_selm(uint64_t m, double a, double b)
{
    return fb_asf64((fb_asu64(a) & m) | (fb_asu64(b) & ~m));
}
/* all-ones iff the top bit of v is set */
FB_INLINE uint64_t fb_m_top(uint64_t v) { return (uint64_t)0 - (v >> 63); }
/* all-ones iff v == 0, for v < 2^63 */
FB_INLINE uint64_t fb_m_zero(uint64_t v) { return fb_m_top(v - 1); }
/* all-ones iff v < B (unsigned), for a constant B < 2^63 */
FB_INLINE uint64_t fb_m_ult(uint64_t v, uint64_t B) { return fb_m_top(~v & (v - B)); }
#define FB_ABS64 0x7fffffffffffffffULL
#define FB_INF64 0x7ff0000000000000ULL
/* all-ones iff x is a NaN */
FB_INLINE uint64_t fb_m_isnan(double x) { return fb_m_top(FB_INF64 - (fb_asu64(x) & FB_ABS64)); }

/* ---- constants ------------------------------------------------------------ */
#define FB_SHIFT_F 12582912.0f              /* 1.5 * 2^23 */
#define FB_SHIFT_D 6755399441055744.0       /* 1.5 * 2^52 */
#define FB_INVLN2_F 1.442695f
#define FB_INVLN2_D 1.4426950408889634
#define FB_LN2HI_F 0.69314575f              /* 15 significant bits */
#define FB_LN2LO_F 1.4286068e-06f
#define FB_LN2HI_D 0.6931471806019545       /* 29 significant bits */
#define FB_LN2LO_D (-4.2009150726810846e-11)
#define FB_SQRTH_F 0x3f3504f3u              /* bits of sqrt(1/2) */
#define FB_SQRTH_D 0x3fe6a09e667f3bcdULL

/* ======================================================================= */
/* exp                                                                       */
/* ======================================================================= */

/* e^r for |r| <= 0.3466: 1 + r + r^2*Q(r), Q minimax of degree 4 / 9
 * (relative error of the approximation 2^-28.3 / 2^-57.9).  Written as
 * 1 + (r + r^2*Q) so that only the last addition rounds at full weight. */
FB_INLINE float fb__expf_w(float r)
{
    float Q = 0.001382135204039514f;
    Q = FB_FMAF(Q, r, 0.00836866907775402f);
    Q = FB_FMAF(Q, r, 0.04166825860738754f);
    Q = FB_FMAF(Q, r, 0.1666652113199234f);
    Q = FB_FMAF(Q, r, 0.4999999403953552f);
    return FB_FMAF(r * r, Q, r);                  /* e^r - 1 */
}

FB_INLINE double fb__exp_w(double r)
{
    double Q = 2.5007236767375718e-08;
    Q = FB_FMA(Q, r, 2.7630193858816136e-07);
    Q = FB_FMA(Q, r, 2.7557558421815688e-06);
    Q = FB_FMA(Q, r, 2.4801493173866594e-05);
    Q = FB_FMA(Q, r, 0.00019841269546303945);
    Q = FB_FMA(Q, r, 0.0013888888943697528);
    Q = FB_FMA(Q, r, 0.008333333333470189);
    Q = FB_FMA(Q, r, 0.04166666666652881);
    Q = FB_FMA(Q, r, 0.16666666666666466);
    Q = FB_FMA(Q, r, 0.5000000000000011);
    return FB_FMA(r * r, Q, r);                   /* e^r - 1 */
}

/* The range reduction shared by the exp kernels: n = round(xc / ln2) (the
 * shifter trick; *z keeps n in its low bits, *n is n as a float),
 * r = xc - n*ln2 with |r| <= 0.3467; returns w = e^r - 1 (1 + w in
 * [0.7, 1.42]). */
FB_INLINE float fb__expf_reduce(float xc, float *z, float *n)
{
    *z = FB_FMAF(xc, FB_INVLN2_F, FB_SHIFT_F);
    *n = *z - FB_SHIFT_F;
    float r = FB_FMAF(-*n, FB_LN2HI_F, xc);       /* exact */
    r = FB_FMAF(-*n, FB_LN2LO_F, r);
    return fb__expf_w(r);
}

/* xc already clamped to [-104, 89] (or NaN): e^xc = (1 + w) * sc1 * sc2,
 * both scales normal powers of two. */
FB_INLINE float fb__expf_clamped(float xc)
{
    float z, n;
    float w = fb__expf_reduce(xc, &z, &n);
    /* 2^n = 2^n1 * 2^(n-n1), n1 = round(n/2): both factors normal.  The
     * shifter bits of z, z1 are C + n, C + n1 with C's low 9 bits zero. */
    float z1 = FB_FMAF(n, 0.5f, FB_SHIFT_F);
    uint32_t A = fb_asu32(z) << 23, B = fb_asu32(z1) << 23;
    float sc1 = fb_asf32(B + 0x3f800000u);
    float sc2 = fb_asf32((A + 0x3f800000u) - B);
    return ((1.0f + w) * sc1) * sc2;
}

FB_INLINE float fb_expf(float x)
{
    /* clamp; a NaN fails both comparisons and propagates by itself */
    float xc = fb_self(x < -104.0f, -104.0f, x);
    xc = fb_self(xc > 89.0f, 89.0f, xc);
    return fb__expf_clamped(xc);
}

/* as fb__expf_reduce */
FB_INLINE double fb__exp_reduce(double xc, double *z, double *n)
{
    *z = FB_FMA(xc, FB_INVLN2_D, FB_SHIFT_D);
    *n = *z - FB_SHIFT_D;
    double r = FB_FMA(-*n, FB_LN2HI_D, xc);       /* exact */
    r = FB_FMA(-*n, FB_LN2LO_D, r);
    return fb__exp_w(r);
}

/* xc already clamped to [-746, 710]; as fb__expf_clamped */
FB_INLINE double fb__exp_clamped(double xc)
{
    double z, n;
    double w = fb__exp_reduce(xc, &z, &n);
    double z1 = FB_FMA(n, 0.5, FB_SHIFT_D);
    uint64_t A = fb_asu64(z) << 52, B = fb_asu64(z1) << 52;
    double sc1 = fb_asf64(B + 0x3ff0000000000000ULL);
    double sc2 = fb_asf64((A + 0x3ff0000000000000ULL) - B);
    return ((1.0 + w) * sc1) * sc2;
}

FB_INLINE double fb_exp(double x)
{
    /* clamp; the masks see the sign of x + 746 and of 710 - xc.  A NaN
     * may get clamped but is restored at the end. */
    double xc = fb_selm(fb_m_top(fb_asu64(x + 746.0)), -746.0, x);
    xc = fb_selm(fb_m_top(fb_asu64(710.0 - xc)), 710.0, xc);
    double y = fb__exp_clamped(xc);
    return fb_selm(fb_m_isnan(x), x, y);          /* NaN -> NaN */
}

/* exp(-a) for a >= 0 (or NaN), as the loss kernels need it: one clamp
 * (a > 104 / 746 -> +0) and 2^-n built with one constant offset,
 * 2^(n+24) / 2^(n+54), which is normal for every n >= -150 / -1076 here;
 * the product (1 + w) * 2^(n+24) is exact, so the final * 2^-24 rounds the
 * same real number as fb_expf's two scales: bit for bit fb_expf(-a). */
FB_INLINE float fb_exp_negf(float a)
{
    float z, n;
    float w = fb__expf_reduce(-fb_self(a > 104.0f, 104.0f, a), &z, &n);
    float scale = fb_asf32((fb_asu32(z) << 23) + ((127u + 24u) << 23));
    return ((1.0f + w) * scale) * 5.9604644775390625e-08f;   /* 2^-24 */
}

FB_INLINE double fb_exp_neg(double a)
{
    /* 746 < a <= +inf -> 746; a NaN (any sign) is not clamped (unsigned
     * test on the bits) and propagates */
    uint64_t ia = fb_asu64(a);
    uint64_t big = fb_m_ult(ia - 0x4087500000000001ULL, FB_INF64 - 0x4087500000000000ULL);
    double z, n;
    double w = fb__exp_reduce(-fb_selm(big, 746.0, a), &z, &n);
    double scale = fb_asf64((fb_asu64(z) << 52) + ((1023ULL + 54ULL) << 52));
    return ((1.0 + w) * scale) * 5.551115123125783e-17;      /* 2^-54 */
}

/* ======================================================================= */
/* log / log1p                                                               */
/* ======================================================================= */

/* log(1+f) - f = f^2 * Q(f) for f in [sqrt(1/2)-1, sqrt(2)-1], Q minimax
 * of degree 8 (relative error of log1p 2^-27.8). */
FB_INLINE float fb__log1pf_Q(float f)
{
    float Q = -0.07623893767595291f;
    Q = FB_FMAF(Q, f, 0.12910659611225128f);
    Q = FB_FMAF(Q, f, -0.1324537843465805f);
    Q = FB_FMAF(Q, f, 0.14180979132652283f);
    Q = FB_FMAF(Q, f, -0.16608664393424988f);
    Q = FB_FMAF(Q, f, 0.20002005994319916f);
    Q = FB_FMAF(Q, f, -0.2500160336494446f);
    Q = FB_FMAF(Q, f, 0.33333325386047363f);
    Q = FB_FMAF(Q, f, -0.49999988079071045f);
    return Q;
}

/* Core: u > 0 finite and normal; returns log(u) - kadj*ln2.  With with_c
 * (compile-time constant) returns log1p(x) where u + c == 1 + x. */
FB_INLINE float fb__logf_core(float u, float kadj, float x, float c, const int with_c)
{
    uint32_t tmp = fb_asu32(u) - FB_SQRTH_F + 0x40000000u;
    float m = fb_asf32((tmp & 0x007fffffu) + FB_SQRTH_F);     /* [sqrt(.5), sqrt(2)) */
    float k = (fb_asf32((tmp >> 23) | 0x4b000000u) - 8388736.0f) - kadj;
    float f = m - 1.0f;                                        /* exact */
    float lo = k * FB_LN2LO_F;
    if (with_c) {
        /* where k == 0, 1 + x needs no reduction: use f = x exactly;
         * elsewhere add c/u = c*2^-k/(1+f) ~ c*2^-k*(1 - f + f^2) */
        int k0 = k == 0.0f;
        float sc = fb_asf32(0x7f800000u - (tmp & 0xff800000u)); /* 2^-k */
        float c2 = c * fb_self(u < 1e30f, sc, 0.0f);             /* k < 100 */
        lo = FB_FMAF(c2, FB_FMAF(f, f, -f), c2) + lo;
        f = fb_self(k0, x, f);
        lo = fb_self(k0, 0.0f, lo);
    }
    float t = f * f;
    float Q = fb__log1pf_Q(f);
    /* k*ln2_hi is exact; f + tail rounds at a small weight */
    return FB_FMAF(k, FB_LN2HI_F, f + FB_FMAF(t, Q, lo));
}

FB_INLINE double fb__log_core(double u, double kadj, double x, double c, const int with_c)
{
    uint64_t tmp = fb_asu64(u) - FB_SQRTH_D + 0x4000000000000000ULL;
    double m = fb_asf64((tmp & 0x000fffffffffffffULL) + FB_SQRTH_D);
    double k = (fb_asf64((tmp >> 52) | 0x4330000000000000ULL) - 4503599627371520.0) - kadj;
    double f = m - 1.0;
    double lo = k * FB_LN2LO_D;
    if (with_c) {
        uint64_t k0 = fb_m_zero((tmp >> 52) ^ 1024u);          /* k == 0 */
        double sc = fb_asf64(0x7ff0000000000000ULL - (tmp & 0xfff0000000000000ULL));
        double c2 = c * fb_selm(fb_m_top((tmp >> 52) - 2024u), sc, 0.0);   /* k < 1000 */
        lo = FB_FMA(c2, FB_FMA(f, f, -f), c2) + lo;
        f = fb_selm(k0, x, f);
        lo = fb_selm(k0, 0.0, lo);
    }
    /* log(1+f) = f - hfsq + s*(hfsq + R(z)), s = f/(2+f), z = s^2,
     * R(z) = z*T(z), T minimax with 7 terms (error 2^-59.5) */
    double s = f / (2.0 + f);
    double z = s * s;
    double T = 0.14795990713340249;
    T = FB_FMA(T, z, 0.15314052939496275);
    T = FB_FMA(T, z, 0.18183563933314942);
    T = FB_FMA(T, z, 0.22222198587836625);
    T = FB_FMA(T, z, 0.2857142874215451);
    T = FB_FMA(T, z, 0.3999999999941631);
    T = FB_FMA(T, z, 0.6666666666666734);
    double hfsq = 0.5 * f * f;
    double tail = FB_FMA(s, FB_FMA(z, T, hfsq), lo) - hfsq;   /* log1p(f) - f + lo */
    return FB_FMA(k, FB_LN2HI_D, f + tail);                    /* k*ln2_hi exact */
}

FB_INLINE float fb_logf(float x)
{
    /* scale subnormals (and garbage for x <= 0, fixed below) by 2^24 */
    float xs = fb_self(x < 1.17549435e-38f, x * 16777216.0f, x);
    float kadj = x < 1.17549435e-38f ? 24.0f : 0.0f;
    float y = fb__logf_core(xs, kadj, 0.0f, 0.0f, 0);
    /* specials: +-0 -> -inf, x < 0 -> NaN, +inf -> +inf, NaN -> NaN */
    float sp = x == 0.0f ? -INFINITY : (x < 0.0f ? NAN : x);
    return fb_self((x > 0.0f) & (x < INFINITY), y, sp);
}

FB_INLINE double fb_log(double x)
{
    uint64_t ix = fb_asu64(x);
    uint64_t sub = fb_m_top(ix - 0x0010000000000000ULL);
    double xs = fb_selm(sub, x * 18014398509481984.0, x);
    double kadj = fb_selm(sub, 54.0, 0.0);
    double y = fb__log_core(xs, kadj, 0.0, 0.0, 0);
    double sp = fb_selm(fb_m_top(ix), (double)NAN, x);
    sp = fb_selm(fb_m_zero(ix & FB_ABS64), -(double)INFINITY, sp);
    return fb_selm(fb_m_ult(ix - 1, 0x7fefffffffffffffULL), y, sp);   /* 0 < x < inf */
}

FB_INLINE float fb_log1pf(float x)
{
    /* u + c == 1 + x exactly where it matters (see header) */
    float u = 1.0f + x;
    float c = x - (u - 1.0f);
    float y = fb__logf_core(u, 0.0f, x, c, 1);
    float sp = x == -1.0f ? -INFINITY : (x < -1.0f ? NAN : x);
    return fb_self((x > -1.0f) & (x < INFINITY) & (x != 0.0f), y, sp);
}

FB_INLINE double fb_log1p(double x)
{
    double u = 1.0 + x;
    double c = x - (u - 1.0);
    double y = fb__log_core(u, 0.0, x, c, 1);
    uint64_t iu = fb_asu64(u), ix = fb_asu64(x);
    double sp = fb_selm(fb_m_top(iu), (double)NAN, x);
    sp = fb_selm(fb_m_zero(iu & FB_ABS64), -(double)INFINITY, sp);
    uint64_t ok = fb_m_ult(iu - 1, 0x7fefffffffffffffULL) & ~fb_m_zero(ix & FB_ABS64);
    return fb_selm(ok, y, sp);
}

/* ======================================================================= */
/* softplus(-a) = log1p(exp(-a)), a >= 0                                     */
/* ======================================================================= */

/* e = exp(-a) in (0, 1] by the exp kernel above; then
 * log1p(e) = e + e^2*S(e) with S minimax on [0, 1] of degree 8 / 20
 * (relative error of log1p 2^-27.0 / 2^-58.8): no second range
 * reduction, and e + e^2*S == e exactly once e^2*S < ulp(e)/2.  The
 * rounding error of e itself is not carried (it adds at most ~0.25 ulp,
 * measured below, for a quarter fewer operations). */
FB_INLINE float fb__softplusf_exp(float a, float *exp_neg_a)
{
    float e = fb_exp_negf(a);     /* a > 104 (+inf included) -> +0; NaN propagates */
    float S = -0.0036767940036952496f;
    S = FB_FMAF(S, e, 0.021872449666261673f);
    S = FB_FMAF(S, e, -0.06091603264212608f);
    S = FB_FMAF(S, e, 0.11024598032236099f);
    S = FB_FMAF(S, e, -0.15569238364696503f);
    S = FB_FMAF(S, e, 0.1977422833442688f);
    S = FB_FMAF(S, e, -0.24975082278251648f);
    S = FB_FMAF(S, e, 0.3333224952220917f);
    S = FB_FMAF(S, e, -0.5f);
    *exp_neg_a = e;                               /* == fb_expf(-a), bit for bit */
    return FB_FMAF(e * e, S, e);
}

FB_INLINE float fb_softplusf(float a)
{
    float e;
    return fb__softplusf_exp(a, &e);
}

/* softplus(-a) and sigmoid(-a) = e / (1 + e), e = exp(-a), a >= 0: one exp
 * for both. The sigmoid is bit for bit the one computed from fb_expf(-a). */
FB_INLINE float fb_softplus_sigmoidf(float a, float *sigmoid_neg_a)
{
    float e;
    float softplus = fb__softplusf_exp(a, &e);
    *sigmoid_neg_a = e / (1.0f + e);
    return softplus;
}

FB_INLINE double fb__softplus_exp(double a, double *exp_neg_a)
{
    double e = fb_exp_neg(a);

    double S = -1.7414703539718758e-05;
    S = FB_FMA(S, e, 0.00020819057296765292);
    S = FB_FMA(S, e, -0.001183213799741887);
    S = FB_FMA(S, e, 0.004273839477285146);
    S = FB_FMA(S, e, -0.011092733380228518);
    S = FB_FMA(S, e, 0.022251973886726364);
    S = FB_FMA(S, e, -0.036401875403568686);
    S = FB_FMA(S, e, 0.05087147629580786);
    S = FB_FMA(S, e, -0.06345536399058829);
    S = FB_FMA(S, e, 0.07361081812337494);
    S = FB_FMA(S, e, -0.08221486451072507);
    S = FB_FMA(S, e, 0.09060612648871719);
    S = FB_FMA(S, e, -0.09993519157568061);
    S = FB_FMA(S, e, 0.11110037694055677);
    S = FB_FMA(S, e, -0.12499865875326513);
    S = FB_FMA(S, e, 0.14285702085073274);
    S = FB_FMA(S, e, -0.16666665899045316);
    S = FB_FMA(S, e, 0.19999999969139778);
    S = FB_FMA(S, e, -0.2499999999931011);
    S = FB_FMA(S, e, 0.33333333333327103);
    S = FB_FMA(S, e, -0.5);
    *exp_neg_a = e;                               /* == fb_exp(-a), bit for bit */
    return FB_FMA(e * e, S, e);
}

FB_INLINE double fb_softplus(double a)
{
    double e;
    return fb__softplus_exp(a, &e);
}

FB_INLINE double fb_softplus_sigmoid(double a, double *sigmoid_neg_a)
{
    double e;
    double softplus = fb__softplus_exp(a, &e);
    *sigmoid_neg_a = e / (1.0 + e);
    return softplus;
}

#endif /* FASTBCE_VMATH_H */
