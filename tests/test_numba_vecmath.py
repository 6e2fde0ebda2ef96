"""backends/numba/vecmath.py: libmvec vector math inside numba loops.

What is checked: every function of IMPLEMENTATIONS, run in a numba loop (so through the vector
variants, the vectorizer's epilogue and the scalar remainder), is within a few ULP of a float64
(float32 functions) or long double (float64 functions) reference over wide input ranges -- random
bit patterns cover denormals and huge values -- and agrees with NumPy on special values: NaN, +-inf,
+-0 (sign included), overflow and underflow. Also: the loops really call libmvec's vector variants,
prange kernels and numba's on-disk cache work, and enable() reports False cleanly where the support
is missing.
"""

import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

numba = pytest.importorskip("numba")
from arignote.backends.numba import vecmath  # noqa: E402
from arignote.core.config import config  # noqa: E402

ENABLED = vecmath.enable()
needs_libmvec = pytest.mark.skipif(
    not ENABLED, reason="vecmath.enable() returned False: needs x86-64 Linux with glibc's libmvec")

# glibc documents its vector functions to at most 4 ULP (libm-test-ulps); measured, the worst case
# is 3.99999 (float32 erf, where it saturates to +-1 at |x| = 3.6533; every float32 in [2, 10]
# checked), then log float32 3.9, tan 3.4, sin/cos float64 3.3
MAX_ULP = 4.0
# the float64 erf/erfc reference is math.erf itself (no long double erf in NumPy), off by up to 1 ULP
REFERENCE_SLACK = {("erf", "float64"): 1.0, ("erfc", "float64"): 1.0}

_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
NUMPY = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "pow": np.power, "tanh": np.tanh,
    "expm1": np.expm1, "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "atanh": np.arctanh, "asinh": np.arcsinh, "acosh": np.arccosh, "exp2": np.exp2,
    "atan2": np.arctan2, "hypot": np.hypot,
    # NumPy has no erf: the backend computes it with math.erf in float64, so that is the semantics
    "erf": lambda x: _erf(x.astype(np.float64)).astype(x.dtype),
    "erfc": lambda x: _erfc(x.astype(np.float64)).astype(x.dtype),
}
BINARY = {"pow", "atan2", "hypot"}

# where each function is worth sampling densely, besides random bit patterns over all floats
DENSE = {
    "exp": (-110, 90), "exp2": (-155, 130), "expm1": (-20, 90), "log": (0, 4), "log2": (0, 4),
    "log10": (0, 4), "log1p": (-1, 4), "sin": (-100, 100), "cos": (-100, 100), "tan": (-100, 100),
    "asin": (-1, 1), "acos": (-1, 1), "atanh": (-1, 1), "acosh": (1, 10), "sinh": (-90, 90),
    "cosh": (-90, 90), "erf": (-6, 6), "erfc": (-6, 12), "pow": (0, 8),
}

ALL = [(op, base, dtype) for op, base, _ in vecmath._FUNCTIONS for dtype in ("float32", "float64")]


def ids(case):
    return f"{case[0]}-{case[2]}"


def specials(dtype):
    f = np.finfo(dtype)
    values = [np.nan, np.inf, 0.0, 1.0, 0.5, 2.0, np.pi / 2, np.pi, 10.0, 88.7, 89.0, 103.9, 104.0,
              709.7, 710.0, 745.0, 1e6, 1e22, 1e30, 1e300, float(f.max), float(f.tiny),
              float(f.smallest_subnormal), 7 * float(f.smallest_subnormal), 1e-30, 1e-300, 0.9999,
              1.0001]
    with np.errstate(over="ignore"):
        values = np.array(values, dtype=dtype)
    return np.concatenate([values, -values])


def sample(base, dtype, n=60_000, seed=0):
    rng = np.random.default_rng(seed)
    itype = np.int32 if dtype == "float32" else np.int64
    bits = rng.integers(np.iinfo(itype).min, np.iinfo(itype).max, n, dtype=itype).view(dtype)
    lo, hi = DENSE.get(base, (-20, 20))
    x = np.concatenate([specials(dtype), bits[np.isfinite(bits)], rng.uniform(lo, hi, n).astype(dtype),
                        rng.uniform(-1.5, 1.5, n // 4).astype(dtype)])
    # an odd length, so each loop has a vector body, a vector epilogue and a scalar remainder
    return x if x.size % 2 else x[:-1]


_kernels = {}


def run(name, *args):
    """``name`` applied elementwise in a numba loop (the way the backend's kernels call it)."""
    fn = getattr(vecmath, name)
    if name not in _kernels:
        if len(args) == 1:
            def kernel(x, out):
                for i in range(x.size):
                    out[i] = fn(x[i])
        else:
            def kernel(x, y, out):
                for i in range(x.size):
                    out[i] = fn(x[i], y[i])
        _kernels[name] = numba.njit(kernel)
    out = np.empty_like(args[0])
    _kernels[name](*args, out)
    return out


def reference(base, *args):
    """The exact value, closely enough: float64 for float32 arguments, long double for float64."""
    dtype = args[0].dtype
    wide = np.float64 if dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        if base in ("erf", "erfc"):
            return (_erf if base == "erf" else _erfc)(*[a.astype(np.float64) for a in args]).astype(wide)
        return NUMPY[base](*[a.astype(wide) for a in args])


def ulp_error(got, exact):
    """|got - exact| in units of the last place of the binade holding ``exact``, in got's dtype."""
    dtype = got.dtype
    with np.errstate(all="ignore"):
        rounded = np.abs(exact).astype(dtype)
        # rounding up into the next binade must not double the unit
        rounded = np.where(rounded.astype(exact.dtype) > np.abs(exact),
                           np.nextafter(rounded, dtype.type(0)), rounded)
        unit = np.spacing(rounded).astype(exact.dtype)
        return (np.abs(got.astype(exact.dtype) - exact) / unit).astype(np.float64)


def implemented(op, dtype):
    if not ENABLED:
        pytest.skip("vecmath.enable() returned False: needs x86-64 Linux with glibc's libmvec")
    if (op, dtype) not in vecmath.IMPLEMENTATIONS:
        pytest.skip(f"this glibc's libmvec has no {op} for {dtype}")
    return vecmath.IMPLEMENTATIONS[(op, dtype)]


def arguments(base, dtype, seed=0):
    x = sample(base, dtype, seed=seed)
    if base not in BINARY:
        return (x,)
    rng = np.random.default_rng(seed + 1)
    s = specials(dtype)
    # every pair of special values, then random pairs
    sx, sy = np.repeat(s, s.size), np.tile(s, s.size)
    return np.concatenate([sx, x]), np.concatenate([sy, rng.permutation(x)])


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_accuracy_in_ulps(case):
    op, base, dtype = case
    name = implemented(op, dtype)
    if dtype == "float64" and np.finfo(np.longdouble).nmant < 63:
        pytest.skip("no 80-bit long double for the float64 reference")
    args = arguments(base, dtype)
    got = run(name, *args)
    exact = reference(base, *args)
    with np.errstate(all="ignore"):
        finite = np.isfinite(exact.astype(dtype))
    err = ulp_error(got[finite], exact[finite])
    worst = int(np.argmax(err))
    bound = MAX_ULP + REFERENCE_SLACK.get((base, dtype), 0.0)
    assert err[worst] <= bound, (
        f"{name}{tuple(a[finite][worst] for a in args)} = {got[finite][worst]!r}, "
        f"exact {exact[finite][worst]!r}: {err[worst]:.2f} ULP")


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_special_values_match_numpy(case):
    """NaN where NumPy gives NaN, and the same infinities and signed zeros (overflow, underflow,
    exp(-inf) = 0, tanh(+-inf) = +-1, sin(inf) = NaN, ...)."""
    op, base, dtype = case
    name = implemented(op, dtype)
    args = arguments(base, dtype)
    got = run(name, *args)
    with np.errstate(all="ignore"):
        expected = NUMPY[base](*args).astype(dtype)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    same = (got == expected) & (np.signbit(got) == np.signbit(expected)) | np.isnan(expected)
    # special arguments (NaN, +-inf, +-0): exactly NumPy's value, zero signs included
    special = np.zeros(got.shape, bool)
    for a in args:
        special |= ~np.isfinite(a) | (a == 0)
    # overflow and underflow: NumPy's inf or zero, or closer to the exact value than NumPy (NumPy's
    # float32 exp2 flushes 2**-149.6 to 0 where the correctly rounded value is 2**-149)
    limits = (np.isinf(expected) | (expected == 0) | np.isinf(got) | (got == 0)) & ~special
    exact = reference(base, *args)
    close = (ulp_error(got, exact) <= MAX_ULP + REFERENCE_SLACK.get((base, dtype), 0.0)) & (
        np.signbit(got) == np.signbit(exact))
    bad = np.flatnonzero(special & ~same | limits & ~same & ~close)
    assert bad.size == 0, [(tuple(a[i] for a in args), got[i], expected[i]) for i in bad[:10]]


@needs_libmvec
def test_headline_cases():
    """The benchmark's functions on the values that most often go wrong."""
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -200.0, 1e30, -3e38], np.float32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(run("exp_float32", x),
                                      [np.nan, np.inf, 0, 1, 1, np.inf, 0, np.inf, 0])
        np.testing.assert_array_equal(run("tanh_float32", x), [np.nan, 1, -1, 0, -0.0, 1, -1, 1, -1])
        assert np.signbit(run("tanh_float32", x)[4])
        s = run("sin_float32", x)
        np.testing.assert_array_equal(np.isnan(s), [True, True, True] + [False] * 6)
        # huge arguments need the full range reduction: compare with the float64 value
        big = np.array([1e30, -3e38, 1e10, 12345678.0], np.float32)
        assert np.all(ulp_error(run("sin_float32", big), np.sin(big.astype(np.float64))) <= MAX_ULP)
        assert np.all(ulp_error(run("cos_float32", big), np.cos(big.astype(np.float64))) <= MAX_ULP)


@needs_libmvec
def test_loops_call_the_vector_variants():
    """The point of the module: the vectorizer widens the calls into libmvec's variants."""
    run("exp_float32", np.ones(33, np.float32))
    kernel = _kernels["exp_float32"]
    asm = kernel.inspect_asm(kernel.signatures[0])
    assert "_ZGV" in asm and "_expf" in asm
    features = vecmath._target_features()
    if "avx512f" in features:
        assert "_ZGVeN16v_expf" in asm or "_ZGVdN8v_expf" in asm
    elif "avx2" in features:
        assert "_ZGVdN8v_expf" in asm


@needs_libmvec
def test_the_backend_has_loops_call_16_lane_functions_on_avx512(tmp_path):
    """On an AVX-512 machine the numba backend has LLVM use 512-bit vectors (LLVM's tuning prefers 256
    bits there), so that loops call libmvec's 16-lane functions (tanhf: 2.4 times as fast as the 8-lane
    one). numba fixes its features when its code generator is first set up, so the backend sets them
    when it is imported: checked in a fresh process that uses the backend, then compiles a loop."""
    script = textwrap.dedent("""
        import re
        import numpy as np
        import arignote, arignote.tensor as T
        a = T.fvector("a")
        arignote.function([a], T.tanh(a), backend="numba")(np.ones(100, np.float32))
        import numba
        from arignote.backends.numba import vecmath
        tanh = vecmath.tanh_float32

        @numba.njit
        def loop(x, out):
            for i in range(x.size):
                out[i] = tanh(x[i])

        loop(np.ones(64, np.float32), np.empty(64, np.float32))
        calls = sorted(set(re.findall(r"_ZGV\\w+", loop.inspect_asm(loop.signatures[0]))))
        print(numba.config.CPU_FEATURES or "-", " ".join(calls))
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_FEATURES"}
    env["ARIGNOTE_CACHE_DIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    features, *calls = run.stdout.split()
    host = numba.core.codegen.get_host_cpu_features()
    if "+avx512f" in host.split(",") and "-evex512" not in host.split(","):
        assert features.endswith(",-prefer-256-bit") and "_ZGVeN16v_tanhf" in calls, (features[-40:], calls)
    else:
        assert features == "-" and "_ZGVeN16v_tanhf" not in calls


@needs_libmvec
def test_implementations_table():
    for (op, dtype), name in vecmath.IMPLEMENTATIONS.items():
        assert dtype in ("float32", "float64")
        assert isinstance(getattr(vecmath, name), numba.core.registry.CPUDispatcher)
    for key in [("Exp", "float32"), ("Sin", "float64"), ("Tanh", "float32"), ("Log", "float64")]:
        assert key in vecmath.IMPLEMENTATIONS
    assert vecmath.enable() is True  # idempotent


@needs_libmvec
def test_prange_kernel_and_benchmark_expression():
    """exp(-a*a)*sin(b)+tanh(a*b), as the backend compiles it: prange, float32 throughout."""
    ex, si, th = vecmath.exp_float32, vecmath.sin_float32, vecmath.tanh_float32

    @numba.njit(parallel=True, error_model="numpy")
    def kernel(a, b, out):
        for i in numba.prange(a.size):
            out[i] = ex(-a[i] * a[i]) * si(b[i]) + th(a[i] * b[i])

    rng = np.random.default_rng(3)
    a = rng.standard_normal(100_003).astype(np.float32)
    b = (3 * rng.standard_normal(100_003)).astype(np.float32)
    out = np.empty_like(a)
    kernel(a, b, out)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = np.exp(-(a * a).astype(np.float64)) * np.sin(b64) + np.tanh((a * b).astype(np.float64))
    np.testing.assert_allclose(out, exact, rtol=0, atol=4e-7)
    assert np.abs(out - exact).max() <= 2 * np.abs(
        (np.exp(-a * a) * np.sin(b) + np.tanh(a * b)) - exact).max() + 1e-7


@needs_libmvec
def test_on_disk_cache_in_a_new_process(tmp_path):
    """Cached machine code calls libmvec by name: a second process, after enable(), loads it and
    gets the same values."""
    (tmp_path / "kmod.py").write_text(textwrap.dedent("""
        import numba
        from arignote.backends.numba import vecmath
        assert vecmath.enable()
        ex, th = vecmath.exp_float32, vecmath.tanh_float64

        @numba.njit(cache=True)
        def kernel(a, b, out, out64):
            for i in range(a.size):
                out[i] = ex(a[i])
                out64[i] = th(b[i])
    """))
    script = textwrap.dedent("""
        import numpy as np
        import kmod
        a = np.linspace(-100, 100, 1001).astype(np.float32)
        out, out64 = np.empty_like(a), np.empty(a.size)
        kmod.kernel(a, a.astype(np.float64), out, out64)
        print(sum(kmod.kernel.stats.cache_hits.values()), out.tobytes().hex(), out64.tobytes().hex())
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    (hits1, *values1), (hits2, *values2) = (r.stdout.split() for r in runs)
    assert (hits1, hits2) == ("0", "1")
    assert values1 == values2


@pytest.fixture
def fresh_vecmath(monkeypatch):
    """Run enable() as if for the first time; the module's real state comes back afterwards."""
    saved = dict(vars(vecmath))
    monkeypatch.setattr(vecmath, "_state", {"enabled": None, "variants": {}})
    monkeypatch.setattr(vecmath, "IMPLEMENTATIONS", {})
    yield vecmath
    for name in set(vars(vecmath)) - set(saved):
        delattr(vecmath, name)
    vars(vecmath).update(saved)


def test_enable_false_without_libmvec(fresh_vecmath, monkeypatch):
    monkeypatch.setattr(vecmath, "_LIBMVEC", "libarignote-no-such-library.so.1")
    assert vecmath.enable() is False
    assert vecmath.IMPLEMENTATIONS == {}
    assert vecmath.enable() is False


def test_enable_false_on_another_machine(fresh_vecmath, monkeypatch):
    monkeypatch.setattr(vecmath.platform, "machine", lambda: "aarch64")
    assert vecmath.enable() is False
    assert vecmath.IMPLEMENTATIONS == {}


def test_enable_false_when_disabled(fresh_vecmath, monkeypatch):
    monkeypatch.setattr(config, "vecmath", False)
    assert vecmath.enable() is False
    assert vecmath.IMPLEMENTATIONS == {}


WIDTHS = {  # the variants a target gets -> features removed from the real target's to get them
    "b": {"avx2", "avx512f"}, "bd": {"avx512f"}, "bde": set()}


@pytest.mark.parametrize("isas", sorted(WIDTHS))
def test_each_vector_width(isas, fresh_vecmath, monkeypatch):
    """Each width's variants, as chosen from the target's features, compute the right values; a
    target without AVX gets only the 4-lane SSE variants, since libmvec's 8-lane ABI passes ymm
    registers, which LLVM uses for <8 x float> only when the target has AVX."""
    if not ENABLED:
        pytest.skip("vecmath.enable() returned False: needs x86-64 Linux with glibc's libmvec")
    real = vecmath._target_features()
    needed = {"bd": {"avx2"}, "bde": {"avx2", "avx512f"}}.get(isas, set())
    if not needed <= real:
        pytest.skip(f"the CPU lacks {needed - real}")
    monkeypatch.setattr(vecmath, "_target_features", lambda: real - WIDTHS[isas])
    assert vecmath.enable()
    assert vecmath._state["variants"]["expf"] == [("b", 4), ("d", 8), ("e", 16)][: len(isas)]
    assert vecmath._state["variants"]["sin"] == [("b", 2), ("d", 4), ("e", 8)][: len(isas)]
    for base, dtype in [("exp", "float32"), ("sin", "float32"), ("tanh", "float32"),
                        ("exp", "float64"), ("sin", "float64")]:
        fn = getattr(vecmath, f"{base}_{dtype}")

        @numba.njit
        def kernel(x, out):
            for i in range(x.size):
                out[i] = fn(x[i])

        x = sample(base, dtype, n=20_000)
        out = np.empty_like(x)
        kernel(x, out)
        exact = reference(base, x)
        with np.errstate(all="ignore"):
            finite = np.isfinite(exact.astype(dtype))
            expected = NUMPY[base](x)
        assert np.all(ulp_error(out[finite], exact[finite]) <= MAX_ULP), (base, dtype)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
        np.testing.assert_array_equal(out[~finite], expected[~finite])
        cname = base + ("f" if dtype == "float32" else "")
        called = set(re.findall(r"_ZGV([bde])N\d+v_" + cname + r"\b",
                                kernel.inspect_asm(kernel.signatures[0])))
        assert called and called <= set(isas), (base, dtype, called)


def test_benchmark_script_runs(capsys):
    """``python -m arignote.backends.numba.vecmath`` (figures not checked: timings are noisy)."""
    vecmath._benchmark(n=1001, repeats=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 2 * (1 + ENABLED) and all("ratio" in line for line in lines[1:])


@needs_libmvec
def test_strided_and_nested_loops():
    """The backend's loop nests: prange over the outer axis, any strides (a transposed view here)."""
    ex, ta = vecmath.exp_float64, vecmath.tanh_float32

    @numba.njit(parallel=True)
    def kernel(x, y, out, out32):
        for i in numba.prange(x.shape[0]):
            for j in range(x.shape[1]):
                out[i, j] = ex(x[i, j])
                out32[i, j] = ta(y[i, j])

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((301, 77)) * 30).T  # not contiguous
    y = (rng.standard_normal((77, 301 * 2)) * 5).astype(np.float32)[:, ::2]
    out, out32 = np.empty(x.shape), np.empty(y.shape, np.float32)
    kernel(x, y, out, out32)
    assert np.all(ulp_error(out, reference("exp", x)) <= MAX_ULP)
    assert np.all(ulp_error(out32, reference("tanh", y)) <= MAX_ULP)
