/*
 * _vmath.h -- branch-free, auto-vectorizable exp / log / log1p for fastbce.
 *
 *   float fb_expf(float)     double fb_exp(double)
 *   float fb_logf(float)     double fb_log(double)
 *   float fb_log1pf(float)   double fb_log1p(double)
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
 * target): the 1.5*2^23 / 1.5*2^52 "shifter" rounding tricks and the
 * error-free transformations (Fast2Sum, 2Sum, exact products of split
 * operands) rely on it.  Results do not depend on -ffp-contract.
 *
 * Methods
 * -------
 * fb_expf / fb_exp: x is clamped to [-104, 89] / [-746, 710] (outside,
 *   the result is +0 resp. +inf anyway).  n = round(x/ln2) by the shifter
 *   trick; r1 = x - n*ln2_hi is exact (ln2_hi has 15 / 29 significant
 *   bits), t = -n*ln2_lo, r = r1 + t, |r| <= 0.3467.
 *   e^r = 1 + r + r^2/2 + r^3*P(r), P minimax of degree 4 / 8 (relative
 *   error of the approximation 2^-33.2 / 2^-57.4).  1 + r1 + r^2/2 is
 *   accumulated exactly (Fast2Sum twice; r is split into 12 / 26-bit halves
 *   so that the leading part of r^2/2 is exact), so only the final addition
 *   rounds significantly.  The result is scaled by 2^n = 2^n1 * 2^n2
 *   (n1 = round(n/2)), two normal powers of two built from the shifter
 *   bits: subnormal results are rounded only once more (by the second
 *   product) and overflow produces +inf by itself.
 *   Special values: +-0 -> 1, +inf -> +inf, -inf -> +0, NaN -> NaN;
 *   x > log(FLT_MAX) = 88.7228 / log(DBL_MAX) = 709.7827 -> +inf;
 *   subnormal results are within ~0.78 ulp of the subnormal spacing
 *   (double rounding); x < -103.972 / -745.133 (result < half the smallest
 *   subnormal) -> +0.
 * fb_logf / fb_log: subnormal inputs are first scaled by 2^24 / 2^54 (a
 *   select).  x = 2^k * m with m in [sqrt(1/2), sqrt(2)) by integer
 *   arithmetic on the bits (no int64 arithmetic shifts, compares or
 *   int64->double conversions, which SSE2/AVX2 lack); f = m - 1 (exact).
 *   s = f/(2+f), z = s^2, log(1+f) = f - f^2/2 + s*(f^2/2 + R(z)) with
 *   R(z) ~ 2z/3 + 2z^2/5 + ... minimax with 3 / 7 terms (error 2^-30.2 /
 *   2^-59.5).  k*ln2_hi + f - (f^2/2)_hi is summed exactly (two Fast2Sums,
 *   f split in halves so that (f^2/2)_hi is exact); the small rest
 *   (k*ln2_lo, the Fast2Sum errors, (f^2/2)_lo, the s-term) is added last.
 *   Special values: +-0 -> -inf, x < 0 (incl. -inf) -> NaN, +inf -> +inf,
 *   NaN -> NaN, 1 -> +0; subnormal inputs are handled at full accuracy.
 * fb_log1pf / fb_log1p: u = 1 + x with its exact rounding error c (Knuth
 *   2Sum).  Where u reduces with k == 0 (x in ~[-0.29, 0.41]) the kernel
 *   runs directly on f = x (no rounding at all, so tiny x gives exactly x);
 *   otherwise log1p(x) = log(u) + c/u, with c/u = c*2^-k/(1+f) ~
 *   c*2^-k*(1 - 2s + 2s^2) folded into the tail.  Near -1, 1 + x is exact.
 *   Special values: +-0 -> +-0 (sign kept), -1 -> -inf, x < -1 (incl.
 *   -inf) -> NaN, +inf -> +inf, NaN -> NaN, |x| tiny -> x.
 *
 * Measured accuracy
 * -----------------
 * Max error in ulps of the correctly rounded result (subnormal results
 * counted in units of the subnormal spacing), for the vectorized loops
 * compiled by GCC 12.2 -O3, with the default -ffp-contract=fast ("fast")
 * and with -fno-trapping-math -ffp-contract=off ("off", fastbce's setup.py
 * flags; SSE2 has no FMA, so both are the same there):
 *   float32: EXHAUSTIVE over all 2^32 inputs, reference glibc double
 *            exp/log/log1p;
 *   float64: 6e7 points per function (log-uniform over the whole finite
 *            range of each sign incl. subnormals, uniform on [-750, 712]
 *            / [0.5, 2] / [-1, 1], dense near 0, 1, -1 and the overflow
 *            and underflow thresholds), reference glibc 80-bit long
 *            double expl/logl/log1pl.
 *
 *                        SSE2 (baseline)  -mavx2 -mfma    AVX-512 + FMA
 *                                         fast / off      fast / off
 *   fb_expf              0.584            0.584 / 0.584   0.584 / 0.584
 *     subnormal results  0.755            0.755 / 0.755   0.755 / 0.755
 *   fb_logf              0.659            0.635 / 0.659   0.635 / 0.659
 *   fb_log1pf            0.659            0.641 / 0.659   0.641 / 0.659
 *   fb_exp               0.618            0.618 / 0.618   0.618 / 0.618
 *     subnormal results  0.782            0.782 / 0.782   0.782 / 0.782
 *   fb_log               0.651            0.639 / 0.651   0.639 / 0.651
 *   fb_log1p             0.661            0.637 / 0.661   0.637 / 0.661
 *
 * (Also checked, on samples: -O0, -O2 -ffp-contract=off, -mavx without
 * FMA, -march=x86-64-v2 / -v4: all within the same bounds.)
 * tests/test_vmath.py asserts <= 0.75 ulp (normal results) and <= 1 ulp
 * (subnormal results) on ~1e7 float32 / ~1.4e6 float64 points plus exact
 * special values.
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

FB_INLINE float fb_expf(float x)
{
    /* clamp; a NaN fails both comparisons, passes through and propagates
     * through the arithmetic below (NaN * anything = NaN), so it needs no
     * final select */
    float xc = fb_self(x < -104.0f, -104.0f, x);
    xc = fb_self(xc > 89.0f, 89.0f, xc);

    float z = FB_FMAF(xc, FB_INVLN2_F, FB_SHIFT_F);
    float n = z - FB_SHIFT_F;                     /* round(x / ln2) */
    float r1 = FB_FMAF(-n, FB_LN2HI_F, xc);       /* exact */
    float t = -n * FB_LN2LO_F;
    float r = r1 + t;                             /* |r| <= 0.3467 */

    /* e^r = 1 + r + r^2/2 + r^3*P(r), P minimax (rel. error 2^-33.2).
     * r = rh + rl, rh of 12 significant bits, so rh^2/2 is exact. */
    float P = 0.00019739484f;
    P = FB_FMAF(P, r, 0.0013935086f);
    P = FB_FMAF(P, r, 0.008333571f);
    P = FB_FMAF(P, r, 0.041666463f);
    P = FB_FMAF(P, r, 0.16666666f);
    float rh = fb_asf32(fb_asu32(r) & 0xfffff000u);
    float rl = r - rh;
    float hh = 0.5f * rh * rh;                    /* exact */
    float hl = FB_FMAF(0.5f * rl, rl, rh * rl);   /* r^2/2 - hh */
    float s = 1.0f + r1;                          /* Fast2Sum(1, r1) */
    float e = (1.0f - s) + r1;
    float s2 = s + hh;                            /* Fast2Sum(s, hh) */
    float e2 = (s - s2) + hh;
    float tail = FB_FMAF(r * r * r, P, (e + e2) + (t + hl));
    float p = s2 + tail;                          /* in [0.7, 1.42] */

    /* 2^n = 2^n1 * 2^n2 with n1 = round(n/2): both factors are normal */
    float z1 = FB_FMAF(n, 0.5f, FB_SHIFT_F);
    float n1 = z1 - FB_SHIFT_F;
    float z2 = (n - n1) + FB_SHIFT_F;
    float sc1 = fb_asf32((fb_asu32(z1) << 23) + 0x3f800000u);
    float sc2 = fb_asf32((fb_asu32(z2) << 23) + 0x3f800000u);
    return (p * sc1) * sc2;
}

FB_INLINE double fb_exp(double x)
{
    /* clamp; the masks see the sign of x + 746 and of 710 - xc.  A NaN
     * may get clamped but is restored at the end. */
    double xc = fb_selm(fb_m_top(fb_asu64(x + 746.0)), -746.0, x);
    xc = fb_selm(fb_m_top(fb_asu64(710.0 - xc)), 710.0, xc);

    double z = FB_FMA(xc, FB_INVLN2_D, FB_SHIFT_D);
    double n = z - FB_SHIFT_D;
    double r1 = FB_FMA(-n, FB_LN2HI_D, xc);       /* exact */
    double t = -n * FB_LN2LO_D;
    double r = r1 + t;

    /* e^r = 1 + r + r^2/2 + r^3*P(r), P of degree 8 (rel. error 2^-57.4),
     * evaluated with an even/odd split */
    double r2 = r * r;
    double Pe = 2.4978343294752094e-08;
    Pe = FB_FMA(Pe, r2, 2.755764125716157e-06);
    Pe = FB_FMA(Pe, r2, 0.0001984126946550971);
    Pe = FB_FMA(Pe, r2, 0.008333333333500463);
    Pe = FB_FMA(Pe, r2, 0.16666666666666433);
    double Po = 2.7625232124499904e-07;
    Po = FB_FMA(Po, r2, 2.4801508577833857e-05);
    Po = FB_FMA(Po, r2, 0.0013888888926871861);
    Po = FB_FMA(Po, r2, 0.04166666666660379);
    double P = FB_FMA(Po, r, Pe);
    double rh = fb_asf64(fb_asu64(r) & 0xfffffffff8000000ULL);
    double rl = r - rh;
    double hh = 0.5 * rh * rh;                    /* exact */
    double hl = FB_FMA(0.5 * rl, rl, rh * rl);
    double s = 1.0 + r1;                          /* Fast2Sum(1, r1) */
    double e = (1.0 - s) + r1;
    double s2 = s + hh;                           /* Fast2Sum(s, hh) */
    double e2 = (s - s2) + hh;
    double tail = FB_FMA(r2 * r, P, (e + e2) + (t + hl));
    double p = s2 + tail;

    double z1 = FB_FMA(n, 0.5, FB_SHIFT_D);
    double n1 = z1 - FB_SHIFT_D;
    double z2 = (n - n1) + FB_SHIFT_D;
    double sc1 = fb_asf64((fb_asu64(z1) << 52) + 0x3ff0000000000000ULL);
    double sc2 = fb_asf64((fb_asu64(z2) << 52) + 0x3ff0000000000000ULL);
    double y = (p * sc1) * sc2;
    return fb_selm(fb_m_isnan(x), x, y);          /* NaN -> NaN */
}

/* ======================================================================= */
/* log / log1p                                                               */
/* ======================================================================= */

/* Core: u > 0 finite and normal.  Returns log(u) - kadj*ln2 as one rounded
 * value.  With with_c (a compile-time constant) it returns log1p(x) where
 * u + c == 1 + x exactly (|c| <= ulp(u)/2). */
FB_INLINE float fb__logf_core(float u, float kadj, float x, float c, const int with_c)
{
    uint32_t tmp = fb_asu32(u) - FB_SQRTH_F + 0x40000000u;
    float m = fb_asf32((tmp & 0x007fffffu) + FB_SQRTH_F);     /* [sqrt(.5), sqrt(2)) */
    /* k = (tmp >> 23) - 128, converted exactly via the 2^23 mantissa trick */
    float k = (fb_asf32((tmp >> 23) | 0x4b000000u) - 8388736.0f) - kadj;
    float f = m - 1.0f;                                        /* exact */
    if (with_c) {
        /* log1p: where k == 0, 1 + x needs no reduction; use f = x exactly */
        f = fb_self(k == 0.0f, x, f);
        c = fb_self(k == 0.0f, 0.0f, c);
    }
    float s = f / (2.0f + f);
    float z = s * s;
    float R = FB_FMAF(FB_FMAF(0.2987215f, z, 0.39977553f), z, 0.66666776f) * z;
    /* f = fh + fl with fh of 12 significant bits: fh*fh, fh*fl exact */
    float fh = fb_asf32(fb_asu32(f) & 0xfffff000u);
    float fl = f - fh;
    float hh = 0.5f * fh * fh;                                 /* exact */
    float hl = FB_FMAF(0.5f * fl, fl, fh * fl);                /* f^2/2 - hh */
    float hfsq = hh + hl;
    float a = k * FB_LN2HI_F;                                  /* exact */
    float hi = a + f;                                          /* Fast2Sum */
    float e = (a - hi) + f;
    float hi2 = hi - hh;                                       /* Fast2Sum */
    float e2 = (hi - hi2) - hh;
    /* log(u) = hi2 + e2 + e + k*ln2_lo - hl + s*(hfsq + R) */
    float pl = hl - s * (hfsq + R);
    float lo = FB_FMAF(k, FB_LN2LO_F, e + e2);
    if (with_c) {
        /* c/u = c * 2^-k / (1+f),  1/(1+f) = (1-s)/(1+s) ~ 1 - 2s + 2s^2 */
        float sc = fb_asf32(0x7f800000u - (tmp & 0xff800000u)); /* 2^-k */
        float c2 = c * fb_self(u < 1e30f, sc, 0.0f);             /* k < 100 */
        lo = lo + FB_FMAF(c2, -2.0f * s * (1.0f - s), c2);
    }
    return hi2 + (lo - pl);
}

FB_INLINE double fb__log_core(double u, double kadj, double x, double c, const int with_c)
{
    uint64_t tmp = fb_asu64(u) - FB_SQRTH_D + 0x4000000000000000ULL;
    double m = fb_asf64((tmp & 0x000fffffffffffffULL) + FB_SQRTH_D);
    double k = (fb_asf64((tmp >> 52) | 0x4330000000000000ULL) - 4503599627371520.0) - kadj;
    double f = m - 1.0;
    if (with_c) {
        uint64_t k0 = fb_m_zero((tmp >> 52) ^ 1024u);          /* k == 0 */
        f = fb_selm(k0, x, f);
        c = fb_selm(k0, 0.0, c);
    }
    double s = f / (2.0 + f);
    double z = s * s;
    double z2 = z * z;
    /* R(z) = z*(L1 + L2 z + ... + L7 z^6), even/odd split in z */
    double Ra = FB_FMA(FB_FMA(FB_FMA(0.14799034987313864, z2, 0.1818357472829575), z2,
                              0.2857142874396765), z2, 0.6666666666666735);
    double Rb = FB_FMA(FB_FMA(0.15313762559523444, z2, 0.22222198390967896), z2,
                       0.39999999999408603);
    double R = FB_FMA(Rb, z, Ra) * z;
    /* f = fh + fl with fh of 26 significant bits: fh*fh, fh*fl exact */
    double fh = fb_asf64(fb_asu64(f) & 0xfffffffff8000000ULL);
    double fl = f - fh;
    double hh = 0.5 * fh * fh;
    double hl = FB_FMA(0.5 * fl, fl, fh * fl);
    double hfsq = hh + hl;
    double a = k * FB_LN2HI_D;
    double hi = a + f;                                         /* Fast2Sum */
    double e = (a - hi) + f;
    double hi2 = hi - hh;                                      /* Fast2Sum */
    double e2 = (hi - hi2) - hh;
    double pl = hl - s * (hfsq + R);
    double lo = FB_FMA(k, FB_LN2LO_D, e + e2);
    if (with_c) {
        double sc = fb_asf64(0x7ff0000000000000ULL - (tmp & 0xfff0000000000000ULL));
        double c2 = c * fb_selm(fb_m_top((tmp >> 52) - 2024u), sc, 0.0);   /* k < 1000 */
        lo = lo + FB_FMA(c2, -2.0 * s * (1.0 - s), c2);
    }
    return hi2 + (lo - pl);
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
    /* scale subnormals (and garbage for x <= 0, fixed below) by 2^54 */
    uint64_t sub = fb_m_top(ix - 0x0010000000000000ULL);
    double xs = fb_selm(sub, x * 18014398509481984.0, x);
    double kadj = fb_selm(sub, 54.0, 0.0);
    double y = fb__log_core(xs, kadj, 0.0, 0.0, 0);
    /* specials: +-0 -> -inf, x < 0 -> NaN, +inf -> +inf, NaN -> NaN */
    double sp = fb_selm(fb_m_top(ix), (double)NAN, x);
    sp = fb_selm(fb_m_zero(ix & FB_ABS64), -(double)INFINITY, sp);
    return fb_selm(fb_m_ult(ix - 1, 0x7fefffffffffffffULL), y, sp);   /* 0 < x < inf */
}

FB_INLINE float fb_log1pf(float x)
{
    /* u + c == 1 + x exactly (Knuth 2Sum); u >= 2^-24 or u == 0 for x >= -1 */
    float u = 1.0f + x;
    float bb = u - 1.0f;
    float c = (1.0f - (u - bb)) + (x - bb);
    float y = fb__logf_core(u, 0.0f, x, c, 1);
    /* specials: -1 -> -inf, x < -1 -> NaN, +-0 -> +-0, +inf, NaN -> x */
    float sp = x == -1.0f ? -INFINITY : (x < -1.0f ? NAN : x);
    return fb_self((x > -1.0f) & (x < INFINITY) & (x != 0.0f), y, sp);
}

FB_INLINE double fb_log1p(double x)
{
    double u = 1.0 + x;
    double bb = u - 1.0;
    double c = (1.0 - (u - bb)) + (x - bb);
    double y = fb__log_core(u, 0.0, x, c, 1);
    /* specials: -1 -> -inf, x < -1 -> NaN, +-0 -> +-0, +inf, NaN -> x.
     * x > -1 <=> u > 0, x == -1 <=> u == 0 (u = 1 + x rounded). */
    uint64_t iu = fb_asu64(u), ix = fb_asu64(x);
    double sp = fb_selm(fb_m_top(iu), (double)NAN, x);
    sp = fb_selm(fb_m_zero(iu & FB_ABS64), -(double)INFINITY, sp);
    uint64_t ok = fb_m_ult(iu - 1, 0x7fefffffffffffffULL) & ~fb_m_zero(ix & FB_ABS64);
    return fb_selm(ok, y, sp);
}

#endif /* FASTBCE_VMATH_H */
