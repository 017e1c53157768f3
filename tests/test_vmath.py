"""Accuracy and special-value tests for the vectorized exp/log/log1p of
fastbce/_vmath.h, evaluated through fastbce._kernels.vmath_eval (a plain C
loop, auto-vectorized exactly like the kernels).

Accuracy is measured in ulps of the result (on the subnormal grid for
subnormal results) against a more precise reference: float64 NumPy for
float32, and 80-bit long double NumPy (x86-64 Linux) for float64.  Where
long double is not wider than double the float64 sweep uses mpmath on a
subsample instead.
"""
import numpy as np
import pytest

from fastbce import _kernels
from fastbce._kernels import vmath_eval

FUNCS = ("exp", "log", "log1p", "softplus")

# Bounds asserted here, per function (the header documents the design bound
# of 2 ulp and the measured maxima, which are slightly lower: exp 1.013,
# log 0.88, log1p 0.96 ulp for normal results and ~0.78 ulp for subnormal
# exp results, float32 exhaustive / float64 3e7 points, on SSE2, AVX2+FMA
# and AVX-512 builds; softplus 1.76 with FMA, 2.11 without: SSE2 baseline).
BOUNDS_NORMAL = {"exp": 1.05, "log": 0.95, "log1p": 1.0,
                 "softplus": 2.15 if _kernels.TARGET == "baseline" else 2.0}
BOUND_SUBNORMAL = 0.8

NP_FUNCS = {"exp": np.exp, "log": np.log, "log1p": np.log1p,
            # softplus(-a) = log1p(exp(-a)), for a = |x| >= 0
            "softplus": lambda a: np.log1p(np.exp(-a))}

HAVE_WIDE_LONGDOUBLE = np.finfo(np.longdouble).nmant >= 63


def _bits_to_f32(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def _bits_to_f64(bits):
    return np.asarray(bits, dtype=np.uint64).view(np.float64)


def _ulp_errors(y, ref, dtype):
    """Per-element ulp error of y against the wider reference ref.

    Non-finite and overflowing references must be matched exactly (checked
    here); the returned error array is 0 there.  Also returns the mask of
    subnormal (or zero) reference values, whose ulp is the subnormal spacing.
    """
    fi = np.finfo(dtype)
    p = fi.nmant + 1
    emin = fi.minexp
    with np.errstate(over="ignore", invalid="ignore"):
        ref_r = ref.astype(dtype)
    nan_ref = np.isnan(ref)
    assert np.all(np.isnan(y[nan_ref])), "NaN expected"
    inf_ref = np.isinf(ref_r) & ~nan_ref
    assert np.array_equal(y[inf_ref], ref_r[inf_ref]), "inf (overflow) mismatch"
    fin = ~nan_ref & ~inf_ref
    assert np.all(np.isfinite(y[fin])), "unexpected inf/NaN for a finite result"
    r = np.where(fin, ref, 1)
    _, e = np.frexp(r)
    e = np.where(r == 0, emin, np.maximum(e.astype(np.int64) - 1, emin))
    ulp = np.ldexp(np.ones_like(r), (e - (p - 1)).astype(np.int32))
    with np.errstate(invalid="ignore"):
        err = np.where(fin, np.abs(y.astype(r.dtype) - r) / ulp, 0).astype(np.float64)
    sub = fin & (np.abs(r) < fi.smallest_normal)
    return err, sub


def _check(name, x, y, ref, dtype):
    err, sub = _ulp_errors(y, ref, dtype)
    en = np.where(sub, 0, err)
    es = np.where(sub, err, 0)
    i, j = int(np.argmax(en)), int(np.argmax(es))
    bound = BOUNDS_NORMAL[name]
    assert en[i] <= bound, (
        f"{name} {np.dtype(dtype).name}: {en[i]:.4f} ulp (bound {bound}) "
        f"at x={x[i]!r}: got {y[i]!r}, want {ref[i]!r}")
    assert es[j] <= BOUND_SUBNORMAL, (
        f"{name} {np.dtype(dtype).name}: subnormal result {es[j]:.4f} ulp "
        f"(bound {BOUND_SUBNORMAL}) at x={x[j]!r}: got {y[j]!r}, want {ref[j]!r}")
    return en[i], es[j]


# ---------------------------------------------------------------------------
# (a) dense sweeps
# ---------------------------------------------------------------------------

def _f32_sweep_inputs(name):
    # every 431st bit pattern of the whole 32-bit space (both signs,
    # subnormals, inf, NaN) -> ~1e7 points; plus dense local sets
    bits = np.arange(0, 2**32, 431, dtype=np.uint64).astype(np.uint32)
    parts = [_bits_to_f32(bits)]
    one = np.float32(1)
    if name == "exp":
        parts.append(np.linspace(-104, 89, 200001, dtype=np.float32))
        # around the overflow and underflow thresholds
        for c in (88.72284, -87.33655, -103.27893, -103.97208):
            b = _bits_to_f32(np.array([np.float32(c)]).view(np.uint32)[0]
                             + np.arange(-20000, 20000, dtype=np.int64))
            parts.append(b)
    elif name == "softplus":  # defined for a >= 0 (and NaN)
        parts = [_bits_to_f32(bits[bits < 2**31]), np.linspace(0, 104, 200001, dtype=np.float32)]
    elif name == "log":
        parts.append(np.linspace(0.5, 2, 200001, dtype=np.float32))
        b = np.array([one]).view(np.uint32)[0] + np.arange(-50000, 50000, dtype=np.int64)
        parts.append(_bits_to_f32(b))
    else:
        parts.append(np.linspace(-1, 1, 200001, dtype=np.float32))
        m1 = np.array([np.float32(-1)]).view(np.uint32)[0] - np.arange(1, 50000, dtype=np.int64)
        parts.append(_bits_to_f32(m1))  # just above -1
        parts.append(_bits_to_f32(np.arange(0, 2**31 - 2**23, 997, dtype=np.int64)))  # x >= 0
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("name", FUNCS)
def test_sweep_float32(name):
    x = _f32_sweep_inputs(name)
    y = vmath_eval(name, x)
    assert y.dtype == np.float32 and y.shape == x.shape
    with np.errstate(all="ignore"):
        ref = NP_FUNCS[name](x.astype(np.float64))
    _check(name, x, y, ref, np.float32)


def _f64_sweep_inputs(name, rng):
    n = 250_000

    def bitrange(lo, hi, k):
        a = np.array([lo], dtype=np.float64).view(np.uint64)[0]
        b = np.array([hi], dtype=np.float64).view(np.uint64)[0]
        return _bits_to_f64(rng.integers(int(a), int(b), size=k, dtype=np.uint64))

    parts = []
    if name == "exp":
        parts += [rng.uniform(-750, 712, n), rng.uniform(-1, 1, n),
                  bitrange(1e-300, 750.0, n), -bitrange(1e-300, 750.0, n),
                  rng.uniform(709.6, 709.8, n // 2),       # overflow threshold
                  rng.uniform(-745.2, -707.5, n),          # subnormal results
                  rng.uniform(-1e-6, 1e-6, n // 4),
                  np.arange(-1075, 1025) * np.log(2.0)]    # reduction boundaries
    elif name == "softplus":
        parts += [bitrange(5e-324, np.finfo(np.float64).max, n), rng.uniform(0, 750, n),
                  rng.uniform(0, 1, n), rng.uniform(700, 746, n // 2)]
    elif name == "log":
        parts += [bitrange(5e-324, np.finfo(np.float64).max, 2 * n),
                  bitrange(5e-324, 2.2250738585072014e-308, n // 2),   # subnormal x
                  rng.uniform(0.5, 2.0, n),
                  1.0 + rng.uniform(-1e-3, 1e-3, n),
                  1.0 + np.ldexp(rng.uniform(-1, 1, n // 2), -rng.integers(0, 60, n // 2))]
    else:
        parts += [bitrange(5e-324, np.finfo(np.float64).max, n),
                  -bitrange(5e-324, 1.0, n),
                  rng.uniform(-1, 1, n),
                  -1.0 + np.ldexp(rng.uniform(0, 1, n // 2), -rng.integers(0, 54, n // 2)),
                  np.ldexp(rng.uniform(-1, 1, n // 2), -rng.integers(0, 60, n // 2)),
                  rng.uniform(-0.3, 0.42, n)]
    return np.concatenate(parts).astype(np.float64)


@pytest.mark.parametrize("name", FUNCS)
def test_sweep_float64(name):
    rng = np.random.default_rng(12345)
    x = _f64_sweep_inputs(name, rng)
    y = vmath_eval(name, x)
    assert y.dtype == np.float64 and y.shape == x.shape
    if HAVE_WIDE_LONGDOUBLE:
        with np.errstate(all="ignore"):
            ref = NP_FUNCS[name](x.astype(np.longdouble))
        _check(name, x, y, ref, np.float64)
    else:  # pragma: no cover - non-x86 platforms
        mpmath = pytest.importorskip("mpmath")
        mpmath.mp.prec = 80
        idx = rng.choice(x.size, 20_000, replace=False)
        x, y = x[idx], y[idx]
        f = {"exp": mpmath.exp, "log": mpmath.log, "log1p": mpmath.log1p,
             "softplus": lambda a: mpmath.log1p(mpmath.exp(-a))}[name]
        errs = []
        for xi, yi in zip(x.tolist(), y.tolist()):
            if name == "log" and xi <= 0 or name == "log1p" and xi <= -1:
                continue
            r = f(mpmath.mpf(xi))
            if not mpmath.isfinite(r) or abs(r) > np.finfo(np.float64).max:
                continue
            e = max(int(mpmath.floor(mpmath.log(abs(r), 2))) if r != 0 else -1022, -1022)
            errs.append(float(abs(mpmath.mpf(yi) - r) / mpmath.ldexp(1, e - 52)))
        assert max(errs) <= max(BOUNDS_NORMAL[name], BOUND_SUBNORMAL)


# ---------------------------------------------------------------------------
# (b) special values, exact
# ---------------------------------------------------------------------------

DTYPES = (np.float32, np.float64)


def _ev(name, vals, dt):
    return vmath_eval(name, np.array(vals, dtype=dt))


def _same(a, b):
    """Bitwise-ish equality: NaN == NaN, and the sign of zero matters."""
    a = np.asarray(a)
    b = np.asarray(b, dtype=a.dtype)
    return bool(np.all((np.isnan(a) & np.isnan(b))
                       | ((a == b) & (np.signbit(a) == np.signbit(b)))))


@pytest.mark.parametrize("dt", DTYPES)
def test_exp_special(dt):
    inf, nan = np.inf, np.nan
    fi = np.finfo(dt)
    y = _ev("exp", [0.0, -0.0, inf, -inf, nan, -nan, fi.max, -fi.max,
                    fi.smallest_subnormal, -fi.smallest_subnormal, 1e-30, -1e-30], dt)
    assert _same(y, [1, 1, inf, 0.0, nan, nan, inf, 0.0, 1, 1, 1, 1])
    if dt is np.float32:
        over, under0 = 88.72284, -103.98
        big = _ev("exp", [88.72283], dt)[0]
        assert np.isfinite(big) and big > 3.4e38
        sub = _ev("exp", [-100.0, -103.2], dt)
        ref = np.exp(np.array([-100.0, -103.2], dtype=np.float32).astype(np.float64)).astype(np.float32)
        assert np.all(sub > 0) and np.all(np.abs(sub.view(np.int32) - ref.view(np.int32)) <= 1)
    else:
        over, under0 = 709.79, -745.2
        assert np.isfinite(_ev("exp", [709.782712893384], dt)[0])
        assert _ev("exp", [-745.13], dt)[0] == 5e-324
        sub = _ev("exp", [-720.0, -740.0], dt)
        ref = np.exp(np.array([-720.0, -740.0], dtype=np.longdouble)).astype(np.float64)
        assert np.all(np.abs(sub.view(np.int64) - ref.view(np.int64)) <= 1)
    assert _ev("exp", [over], dt)[0] == inf
    assert _same(_ev("exp", [under0, -1e4], dt), [0.0, 0.0])


@pytest.mark.parametrize("dt", DTYPES)
def test_log_special(dt):
    inf, nan = np.inf, np.nan
    fi = np.finfo(dt)
    y = _ev("log", [0.0, -0.0, -1.0, -inf, -fi.smallest_subnormal, inf, nan, 1.0], dt)
    assert _same(y, [-inf, -inf, nan, nan, nan, inf, nan, 0.0])
    # subnormal inputs are exact-ish (correctly rounded here)
    xs = np.array([fi.smallest_subnormal, fi.smallest_subnormal * 3,
                   fi.smallest_normal / 2, fi.smallest_normal, fi.max, 2.0, 0.5], dtype=dt)
    wide = np.float64 if dt is np.float32 else np.longdouble
    ref = np.log(xs.astype(wide)).astype(dt)
    y = vmath_eval("log", xs)
    assert np.all(np.abs(y.view(np.int32 if dt is np.float32 else np.int64)
                         - ref.view(np.int32 if dt is np.float32 else np.int64)) <= 1)
    assert y[0] == ref[0]  # log(min subnormal), a nicely rounded value


@pytest.mark.parametrize("dt", DTYPES)
def test_log1p_special(dt):
    inf, nan = np.inf, np.nan
    fi = np.finfo(dt)
    y = _ev("log1p", [-1.0, -1.5, -inf, inf, nan, 0.0, -0.0], dt)
    assert _same(y, [-inf, nan, nan, inf, nan, 0.0, -0.0])
    tiny = np.array([1e-30, -1e-30, fi.smallest_subnormal, -fi.smallest_subnormal,
                     fi.smallest_normal, -fi.smallest_normal, 2.0 ** -(fi.nmant + 3),
                     -(2.0 ** -(fi.nmant + 3))], dtype=dt)
    assert _same(vmath_eval("log1p", tiny), tiny)   # log1p(x) == x exactly
    # just above -1 (1 + x exact) and huge x
    xs = np.array([-1 + fi.epsneg, -1 + 2 * fi.epsneg, -0.5, fi.max], dtype=dt)
    wide = np.float64 if dt is np.float32 else np.longdouble
    ref = np.log1p(xs.astype(wide)).astype(dt)
    y = vmath_eval("log1p", xs)
    it = np.int32 if dt is np.float32 else np.int64
    assert np.all(np.abs(y.view(it) - ref.view(it)) <= 1)


@pytest.mark.parametrize("dt", DTYPES)
def test_softplus_special(dt):
    y = _ev("softplus", [np.inf, np.nan, 0.0, -0.0], dt)
    assert y[0] == 0 and not np.signbit(y[0])
    assert np.isnan(y[1])
    assert y[2] == y[3] == dt(np.log(2.0))


@pytest.mark.parametrize("dt", DTYPES)
def test_exp_neg_is_exp_of_minus_a_bit_for_bit(dt):
    """The kernels' exp(-a), a >= 0 (one clamp, one scale), is exp(-a) exactly."""
    if dt is np.float32:
        # every 61st float32 from +0 to past the underflow threshold (104)
        a = np.arange(0, 0x42d20000, 61, dtype=np.uint32).view(np.float32)
    else:
        rng = np.random.default_rng(3)
        a = np.concatenate([rng.uniform(0, 750, 2_000_000), rng.uniform(0, 2, 500_000),
                            np.exp(rng.uniform(-745, 6.6, 500_000)),
                            np.nextafter(np.array([708.0, 709.78, 744.44, 745.13, 746.0]), 800)])
    special = np.array([0.0, -0.0, np.inf, np.nan, 104.0, 746.0, 1e30], dtype=dt)
    a = np.concatenate([a.astype(dt), special])
    it = np.uint32 if dt is np.float32 else np.uint64
    got, ref = vmath_eval("exp_neg", a), vmath_eval("exp", -a)
    nan = np.isnan(ref)
    assert nan.sum() == 1 and np.isnan(got[nan]).all()
    assert np.array_equal(got[~nan].view(it), ref[~nan].view(it))


def test_interface():
    x = np.linspace(0.1, 3, 37)
    for name in FUNCS:
        for dt in DTYPES:
            xi = x.astype(dt)
            y = vmath_eval(name, xi)
            assert y.dtype == dt and y.shape == xi.shape
            np.testing.assert_allclose(y, NP_FUNCS[name](xi), rtol=4 * np.finfo(dt).eps)
            # non-contiguous input is accepted (copied)
            np.testing.assert_array_equal(vmath_eval(name, xi[::2]), y[::2])
            # read-only input
            ro = xi.copy()
            ro.flags.writeable = False
            np.testing.assert_array_equal(vmath_eval(name, ro), y)
    assert vmath_eval("exp", np.empty(0, np.float32)).shape == (0,)
    with pytest.raises(ValueError):
        vmath_eval("sqrt", x)
    with pytest.raises(TypeError):
        vmath_eval("exp", x.astype(np.int64))
    with pytest.raises(ValueError):
        vmath_eval("exp", np.ones((2, 2)))
