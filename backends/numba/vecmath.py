"""Vectorized transcendental functions for numba-compiled elementwise loops (glibc's libmvec).

Why: numba lowers ``np.exp``/``np.sin``/``np.tanh``... to LLVM intrinsics (``llvm.exp.f32``...).
The loop vectorizer widens those to ``llvm.exp.v8f32``, but without a vector math library the code
generator splits them back into one scalar libm call per lane, so a numba loop of exp/sin/tanh runs
several times slower than NumPy's SIMD ufuncs.

Why not just ``-vector-library``: numba enables SVML with ``llvmlite.binding.set_option(...,
"-vector-library=SVML")``; the same option with ``LIBMVEC`` would be enough for every function. But
the LLVM 22 inside llvmlite 0.50 does not register that option any more (it is absent from
``set_option(name, "--help-list-hidden")``, and ``set_option`` silently ignores unknown options), so
LLVM's vector-library table cannot be selected from Python.

What we do instead: each function here is declared to LLVM the way clang declares an OpenMP
``declare simd`` function -- a scalar function carrying the ``vector-function-abi-variant``
attribute, which names its vector variants (``_ZGVdN8v_expf`` for 8 float32 lanes in AVX2 registers,
``_ZGVbN4v_expf`` for 4 lanes in SSE registers, ...). The loop vectorizer reads that attribute and
calls the libmvec variant on whole vectors; the scalar remainder of a loop calls the scalar libm
function. The declarations live in ``llvm.compiler.used`` so that no pass drops them before the
vectorizer runs. The scalar function is reached under a private alias (``arignote_vm_expf``,
registered with ``llvmlite.binding.add_symbol``): under its libm name LLVM recognises the libcall and
turns it back into ``llvm.exp`` before vectorizing.

Interface (the numba backend wires it in defensively):

- ``enable()``: call once, before numba compiles or loads from its cache anything that uses
  ``IMPLEMENTATIONS``. Loads libmvec for the JIT linker, registers the scalar aliases and fills
  ``IMPLEMENTATIONS``; returns True, or False (leaving ``IMPLEMENTATIONS`` empty) where the machine
  lacks the support: not x86-64 Linux, or no ``libmvec.so.1`` (glibc < 2.22; the functions other
  than exp/log/sin/cos/pow need glibc >= 2.35 and are left out when missing). Idempotent.
  ``ARIGNOTE_VECMATH=0`` in the environment disables it.
- ``IMPLEMENTATIONS``: ``{(op class name, dtype name): function name}``, e.g. ``("Exp", "float32"):
  "exp_float32"``; the function is an ``@numba.njit(inline="always")`` function of this module taking
  one (two for ``Pow``) scalar of that dtype. Consult it after ``enable()``.

Vector widths are chosen from the CPU features numba compiles for (``NUMBA_CPU_FEATURES`` when set,
else the host's): the AVX2 variants (``d``) only when it has AVX2, the AVX-512 ones
(``e``) only with AVX-512F, the SSE ones (``b``) always, because an 8-lane vector argument is passed
in one ymm register only when the target has AVX -- libmvec's ABI must match what LLVM emits.

On-disk cache (``cache=True``): cached machine code calls ``_ZGVdN8v_expf`` and
``arignote_vm_expf`` by name; both resolve in a new process once ``enable()`` has run there, which
is why it must run before anything is loaded. numba keys its cache on the target CPU and features,
so code holding AVX2 variants is never loaded on a machine without them.

Accuracy: glibc documents its vector functions to at most 4 ULP (``libm-test-ulps``). Measured by
``tests/test_numba_vecmath.py`` against float64 (for float32) and long double (for float64)
references, over random bit patterns of all finite values (denormals and huge values included) plus
dense ranges: every function is within 4 ULP; the worst are float32 erf 4.0 (it saturates to +-1 at
|x| = 3.6533), float32 log 3.9, tan 3.4, float64 sin/cos 3.3, most others below 2.5; over all
2**32 float32 inputs (checked once, too slow for the tests): exp 2.64, sin 2.11, tanh 1.37 ULP,
and NaN/inf exactly where NumPy has them. NumPy's float32 ufuncs (its own SIMD code) measure up to
3.2 ULP on the same inputs; its float64 ufuncs stay below 1 ULP, so float64 results can differ from
NumPy's by about 3 ULP (a relative tolerance of 1e-12 fails where a sum cancels, e.g.
exp(-x*x) + sin(x) near its zero: give such comparisons an absolute tolerance).

Special values follow NumPy: NaN propagates, exp(inf)=inf, exp(-inf)=0, overflow gives inf,
sin(inf)=NaN, tanh(+-inf)=+-1, zero signs are kept, huge arguments of sin/cos/tan are reduced
exactly (libmvec sends lanes outside its fast range through the scalar libm routine). Where NumPy's
float32 ufuncs flush an underflowing result to zero early (exp2(-149.6)), libmvec returns the
correctly rounded denormal. An element computed in a loop's scalar remainder (libm, correctly
rounded in practice) may differ in the last bits from the same value computed in a vector lane.
"""

import ctypes
import platform
import sys

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from arignote.core.config import config

# (op class name, libmvec base name, arity); the base name is the float64 one, float32 adds "f"
_FUNCTIONS = [
    ("Exp", "exp", 1), ("Log", "log", 1), ("Sin", "sin", 1), ("Cos", "cos", 1), ("Pow", "pow", 2),
    ("Tanh", "tanh", 1), ("Expm1", "expm1", 1), ("Log1p", "log1p", 1), ("Log2", "log2", 1),
    ("Log10", "log10", 1), ("Tan", "tan", 1), ("Arcsin", "asin", 1), ("Arccos", "acos", 1),
    ("Arctan", "atan", 1), ("Sinh", "sinh", 1), ("Cosh", "cosh", 1), ("Arctanh", "atanh", 1),
    ("Arcsinh", "asinh", 1), ("Arccosh", "acosh", 1), ("Erf", "erf", 1), ("Erfc", "erfc", 1),
    ("Exp2", "exp2", 1), ("Arctan2", "atan2", 2), ("Hypot", "hypot", 2),
]

_DTYPES = {"float32": ("f", types.float32, ir.FloatType()),
           "float64": ("", types.float64, ir.DoubleType())}

# ISA letter of the vector-function ABI -> (lanes of float32, lanes of float64, target feature)
_ISAS = {"b": (4, 2, None), "d": (8, 4, "avx2"), "e": (16, 8, "avx512f")}

_ALIAS = "arignote_vm_"
_LIBMVEC, _LIBM = "libmvec.so.1", "libm.so.6"

IMPLEMENTATIONS = {}

_state = {"enabled": None, "variants": {}}  # variants: scalar C name -> [(isa, lanes)]


def _scalar_name(base, dtype):
    return base + _DTYPES[dtype][0]


def _declare(module, name, fnty):
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, fnty, name)


def _keep_alive(module, fns):
    """Append ``fns`` to ``llvm.compiler.used``, so no pass drops the unused vector declarations."""
    gv = module.globals.get("llvm.compiler.used")
    old = list(gv.initializer.constant) if gv is not None else []
    new = old + [f for f in fns if f not in old]
    if gv is not None and len(new) == len(old):
        return
    arr = ir.ArrayType(ir.PointerType(), len(new))
    if gv is None:
        gv = ir.GlobalVariable(module, arr, "llvm.compiler.used")
        gv.linkage = "appending"
        gv.section = "llvm.metadata"
    gv.value_type = arr
    gv.initializer = ir.Constant(arr, new)


def _make_intrinsic(cname, nbtype, lltype, arity):
    """A numba intrinsic calling ``cname`` through its alias, declared with its vector variants."""

    def codegen(context, builder, sig, args):
        module = builder.module
        scalar = _declare(module, _ALIAS + cname, ir.FunctionType(lltype, [lltype] * arity))
        if not scalar.attributes:
            vfns, mangled = [], []
            for isa, lanes in _state["variants"].get(cname, ()):
                vty = ir.VectorType(lltype, lanes)
                vname = "_ZGV%sN%d%s_%s" % (isa, lanes, "v" * arity, cname)
                vfns.append(_declare(module, vname, ir.FunctionType(vty, [vty] * arity)))
                # "_LLVM_": LLVM's own calling convention for vector types, which is the ABI of
                # libmvec's variants when the target has the ISA (see _ISAS)
                mangled.append("_ZGV_LLVM_N%d%s_%s%s(%s)" % (lanes, "v" * arity, _ALIAS, cname, vname))
            _keep_alive(module, vfns)
            # no memory access and no unwinding (errno is not observed), so calls can be vectorized
            scalar.attributes.add("nounwind")
            scalar.attributes.add("readnone")
            if mangled:
                # llvmlite only knows enumerated attributes; a string attribute is added verbatim
                set.add(scalar.attributes, '"vector-function-abi-variant"="%s"' % ",".join(mangled))
        return builder.call(scalar, args)

    if arity == 1:
        def typer(typingctx, x):
            return nbtype(nbtype), codegen
    else:
        def typer(typingctx, x, y):
            return nbtype(nbtype, nbtype), codegen
    typer.__name__ = "_vm_" + cname
    return intrinsic(typer)


def _make_function(opname, base, arity, dtype):
    """The ``@njit(inline="always")`` function of IMPLEMENTATIONS for one op and dtype."""
    cname = _scalar_name(base, dtype)
    _, nbtype, lltype = _DTYPES[dtype]
    call = _make_intrinsic(cname, nbtype, lltype, arity)
    if arity == 1:
        def fn(x):
            return call(x)
    else:
        def fn(x, y):
            return call(x, y)
    name = "%s_%s" % (base, dtype)
    fn.__name__ = fn.__qualname__ = name
    return name, numba.njit(inline="always", nogil=True)(fn)


def _target_features():
    """The CPU features numba compiles for: like numba's JIT codegen, NUMBA_CPU_FEATURES when set
    (NUMBA_CPU_NAME alone does not change the features numba passes to LLVM), else the host's."""
    from numba.core import codegen, config
    features = config.CPU_FEATURES
    if features is None:
        features = codegen.get_host_cpu_features()
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "-evex512" in features.split(","):
        enabled.discard("avx512f")  # AVX-512 limited to 256 bits: 16-lane vectors use two ymm
    return enabled


def _supported():
    return (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
            and config.vecmath)


def enable():
    """Make the libmvec-backed IMPLEMENTATIONS usable; True on success, False where unsupported."""
    if _state["enabled"] is not None:
        return _state["enabled"]
    _state["enabled"] = False
    try:
        if not _supported():
            return False
        import llvmlite.binding as ll
        features = _target_features()
        isas = [isa for isa, (_, _, need) in _ISAS.items() if need is None or need in features]
        mvec = ctypes.CDLL(_LIBMVEC)
        libm = ctypes.CDLL(_LIBM)
        ll.load_library_permanently(_LIBMVEC)  # the JIT linker resolves _ZGV... from here
        found = {}
        for opname, base, arity in _FUNCTIONS:
            for dtype in _DTYPES:
                cname = _scalar_name(base, dtype)
                variants = []
                for isa in isas:
                    lanes = _ISAS[isa][0] if dtype == "float32" else _ISAS[isa][1]
                    if hasattr(mvec, "_ZGV%sN%d%s_%s" % (isa, lanes, "v" * arity, cname)):
                        variants.append((isa, lanes))
                if variants and hasattr(libm, cname):
                    found[(opname, dtype)] = (base, arity, cname, variants)
        if not found:
            return False
        for (opname, dtype), (base, arity, cname, variants) in found.items():
            ll.add_symbol(_ALIAS + cname, ctypes.cast(getattr(libm, cname), ctypes.c_void_p).value)
            _state["variants"][cname] = variants
            name, fn = _make_function(opname, base, arity, dtype)
            globals()[name] = fn
            IMPLEMENTATIONS[(opname, dtype)] = name
    except Exception:  # an optional speed-up: any failure leaves plain numba code, not a crash
        IMPLEMENTATIONS.clear()
        return False
    _state["enabled"] = True
    return True


def _benchmark(n=4 << 20, repeats=20):
    """exp(-a*a)*sin(b)+tanh(a*b) on n float32: numba loops (serial, prange) with and without
    IMPLEMENTATIONS, as ratios of time against NumPy's own expression measured in the same process
    (best of ``repeats``; the figures are noisy on a shared machine)."""
    import time

    import numpy as np

    numba.config.THREADING_LAYER = "workqueue"  # what the numba backend forces
    enabled = enable()

    def kernel(parallel, ex, si, th):
        loop = numba.prange if parallel else range

        def run(a, b, out):
            for i in loop(a.size):
                out[i] = ex(-a[i] * a[i]) * si(b[i]) + th(a[i] * b[i])
        return numba.njit(parallel=parallel, error_model="numpy")(run)

    rng = np.random.default_rng(0)
    a = rng.standard_normal(n).astype(np.float32)
    b = (3 * rng.standard_normal(n)).astype(np.float32)
    out = np.empty_like(a)

    def best(fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    functions = {"np.exp/np.sin/np.tanh": (np.exp, np.sin, np.tanh)}
    if enabled:
        functions["vecmath"] = tuple(globals()[f"{f}_float32"] for f in ("exp", "sin", "tanh"))
    print(f"enable() = {enabled}; {n} float32 elements")
    for label, fns in functions.items():
        for parallel in (False, True):
            k = kernel(parallel, *fns)
            k(a, b, out)
            numpy_time = best(lambda: np.exp(-a * a) * np.sin(b) + np.tanh(a * b))
            numba_time = best(lambda: k(a, b, out))
            print(f"{label:22s} parallel={parallel!s:5s} numba {numba_time * 1e3:7.2f} ms, NumPy "
                  f"{numpy_time * 1e3:7.2f} ms: ratio {numba_time / numpy_time:.2f}")


if __name__ == "__main__":
    _benchmark()
