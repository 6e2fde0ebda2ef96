"""Compiling generated C, loading it through cffi, and the on-disk cache of compiled programs.

The program is compiled straight to a shared library by the C compiler (no Python.h, no setuptools:
a compile takes about 0.1 s) and loaded with cffi's ``dlopen``, never to be unloaded.

A program lives in ``<cache dir>/c/<key>/program.so`` where the key hashes the generated source, the runtime it
includes (runtime.h, found with ``-I`` in this package's folder), the compiler and its flags, arignote's
version and the Python ABI. Beside it sits ``program.so.sha256``, its checksum,
written after it: an entry whose checksum is missing or wrong (truncated,
corrupted, half-written) is rebuilt, never loaded. Compiles happen in a private temporary folder and
are moved into place with an atomic rename, so two processes compiling the same graph both succeed
(the last rename wins, and both files are complete).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading

from arignote.core.config import config

# -O1 with the vectorizer (dynamic cost model) vectorizes the fused loops at 60% of -O2's compile time;
# -g0 and no Python.h keep a compile near 0.1 s. -fno-math-errno lets calls to math functions vectorize, into glibc's libmvec (ARI_VECMATH).
# -fexpensive-optimizations (5% more compile time) turns on gcc's vzeroupper insertion, off at -O1: without it
# the SSE code of a scalar libm call in a loop's remainder, or NumPy's after the program returns, runs with
# the vector registers' upper halves dirty (a 500x500 tanh(x + b) took 440 us instead of 137).
CFLAGS = ["-O1", "-fexpensive-optimizations", "-ftree-vectorize", "-g0", "-fwrapv", "-fno-math-errno", "-ffp-contract=off", "-fvect-cost-model=dynamic", "-fopenmp-simd", "-std=gnu11", "-w",
          "-fPIC", "-shared"]


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cflags():
    """CFLAGS plus what this machine offers: AVX2/FMA or AVX-512 with 512-bit vectors, and glibc's vector
    math library libmvec (ARI_VECMATH) when it has a variant of every function runtime.h declares for
    that width (a missing one would fail only when first called)."""
    import ctypes
    import platform

    flags = list(CFLAGS)
    if platform.machine() in ("x86_64", "AMD64"):
        cpu = _cpu_flags()
        widths = [("b", 4, 2)]  # libmvec's variants the loops may call: SSE (b), AVX2 (d), AVX-512 (e)
        if {"avx512f", "avx2", "fma"} <= cpu:
            # the fused loops run twice as many lanes through libmvec's 16-wide functions: elemwise-4m
            # took 4.6 ms instead of 7.2 on one core of a Skylake-X
            flags += ["-mavx2", "-mfma", "-mavx512f", "-mprefer-vector-width=512"]
            widths += [("d", 8, 4), ("e", 16, 8)]
        elif {"avx2", "fma"} <= cpu:
            flags += ["-mavx2", "-mfma"]
            widths += [("d", 8, 4)]
        try:  # glibc's vector math library (ctypes.util.find_library would run ldconfig: slow)
            mvec = ctypes.CDLL("libmvec.so.1")
            for letter, nf, nd in widths:
                for name in VECMATH:
                    args = "vv" if name.startswith("pow") else "v"
                    getattr(mvec, f"_ZGV{letter}N{nf if name.endswith('f') else nd}{args}_{name}")
            flags += ["-DARI_VECMATH"]
        except (OSError, AttributeError):
            pass
    return flags


# the functions runtime.h declares with vector variants (ARI_VECMATH)
VECMATH = ("expf", "exp", "logf", "log", "sinf", "sin", "cosf", "cos", "tanhf", "tanh", "powf", "pow",
           "expm1f", "expm1", "log1pf", "log1p")


LIBS = ["-lm", "-lpthread"]
RUNTIME = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime.h")  # what programs #include

CDEF = """
typedef struct { char *data; int64_t shape[16]; int64_t strides[16]; } arr_t;
int ari_run(arr_t *in, arr_t *out, char *err, int *where);
int ari_call(intptr_t args, arr_t *in, arr_t *out, char *err, int *where, int64_t *shapes, intptr_t made);
void ari_set_types(intptr_t ndarray, intptr_t list, intptr_t tuple);
void ari_collect(intptr_t *objs, arr_t *out, int n, int64_t *sizes);
void ari_set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv, int ilp64);
void ari_free(void *data);
"""


class CompileError(RuntimeError):
    """The C compiler is missing or failed: the message says which and why."""


def compiler():
    """The C compiler command: CC, else the one Python was built with, else cc."""
    return os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]


def _version():
    try:
        import importlib.metadata

        return importlib.metadata.version("arignote")
    except Exception:
        return "unknown"


def cache_root():
    # user-only permissions on the folders arignote makes; a cache_dir the user chose keeps its own
    os.makedirs(config.cache_dir, mode=0o700, exist_ok=True)
    root = os.path.join(config.cache_dir, "c")
    os.makedirs(root, mode=0o700, exist_ok=True)
    try:
        os.chmod(root, 0o700)
    except OSError:
        pass
    return root


def cache_key(source):
    parts = [source, _runtime_digest(), compiler(), " ".join(_flags()), _version(), sys.implementation.cache_tag,
             sysconfig.get_config_var("EXT_SUFFIX") or "", CDEF]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


_runtime_cache = []


def _runtime_digest():
    """The checksum of runtime.h, read once per process: a program compiled against another runtime is
    another cache entry."""
    if not _runtime_cache:
        _runtime_cache.append(_digest(RUNTIME))
    return _runtime_cache[0]


_flags_cache = []


def _flags():
    if not _flags_cache:
        _flags_cache.append(cflags())
    return _flags_cache[0]


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Module:
    """A compiled program: ``ffi`` and ``lib`` as cffi gives them (``lib.ari_run`` ...)."""

    def __init__(self, ffi, lib, path):
        self.ffi, self.lib, self.path = ffi, lib, path


_loaded = {}  # key -> Module, for this process
_lock = threading.Lock()
_ffi = None


def ffi():
    """The cffi FFI of the program interface, in cffi's out-of-line ABI mode: the declarations are
    parsed once, emitted as a small Python module in the cache and imported from there afterwards
    (parsing them costs pycparser's start-up, about 0.15 s, in every process)."""
    global _ffi
    if _ffi is None:
        import importlib.util

        name = "_arignote_c_ffi_" + hashlib.sha256(CDEF.encode()).hexdigest()[:16]
        path = os.path.join(cache_root(), name + ".py")
        if not os.path.exists(path):
            import cffi

            builder = cffi.FFI()
            builder.cdef(CDEF)
            builder.set_source(name, None)
            unique = f"{path}.{os.getpid()}.{threading.get_ident()}"
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # cffi says "generating ..."
                builder.emit_python_code(unique)
            os.replace(unique, path)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _ffi = module.ffi
        except Exception:  # a damaged file: parse the declarations here instead
            import cffi

            _ffi = cffi.FFI()
            _ffi.cdef(CDEF)
    return _ffi


def load_or_build(source):
    """The compiled module for ``source``: from this process, from the disk cache, or compiled now.
    Returns (module, compiled_now)."""
    key = cache_key(source)
    with _lock:
        if key in _loaded:
            return _loaded[key], False
        folder = os.path.join(cache_root(), key)
        so_path = os.path.join(folder, "program.so")
        module = _load_checked(so_path)
        compiled = module is None
        if module is None:
            _compile(source, folder, so_path)
            module = _load_checked(so_path)
            if module is None:
                raise CompileError(f"the compiled program {so_path} could not be loaded after compiling it")
        _loaded[key] = module
        return module, compiled


def _load_checked(so_path):
    """The module at so_path if its checksum file agrees with its contents, else None (rebuild it)."""
    try:
        with open(so_path + ".sha256") as f:
            expected = f.read().strip()
        if _digest(so_path) != expected:
            return None
    except OSError:
        return None
    try:
        # never unloaded: NumPy arrays wrapping the program's buffers are freed by its ari_free, whenever
        # the last one goes (at interpreter exit, possibly after cffi has dropped the library object)
        return Module(ffi(), ffi().dlopen(so_path, ffi().RTLD_NOW | ffi().RTLD_NODELETE), so_path)
    except Exception:
        return None


def _compile(source, folder, so_path):
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="build-", dir=folder)
    try:
        c_path = os.path.join(tmp, "program.c")
        built = os.path.join(tmp, "program.so")
        with open(c_path, "w") as f:
            f.write(source)
        flags = _flags()
        command = [compiler(), *flags, "-I", os.path.dirname(RUNTIME), c_path, "-o", built, *LIBS,
                   *(["-lmvec"] if "-DARI_VECMATH" in flags else [])]
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:
            raise CompileError(
                f"the C backend needs a C compiler, and {compiler()!r} could not be run ({error.strerror or error}). "
                "Install gcc or clang (or set CC), or choose another backend (ARIGNOTE_BACKEND=reference)"
            ) from None
        if done.returncode != 0 or not os.path.exists(built):
            raise CompileError(
                f"the C compiler {compiler()!r} failed on the generated program (exit status {done.returncode}):\n"
                + (done.stderr or done.stdout)[-3000:]
            )
        digest = _digest(built)
        # atomic publication: the program first, its checksum last (a reader trusts only both)
        unique = f"{so_path}.{os.getpid()}.{threading.get_ident()}"
        shutil.copyfile(built, unique)
        os.replace(unique, so_path)
        with open(unique + ".sum", "w") as f:
            f.write(digest)
        os.replace(unique + ".sum", so_path + ".sha256")
        with open(unique + ".c", "w") as f:  # for people reading the cache (and compiling it again)
            f.write(source)
        os.replace(unique + ".c", os.path.join(folder, "program.c"))
        shutil.copyfile(RUNTIME, unique + ".h")
        os.replace(unique + ".h", os.path.join(folder, "runtime.h"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def probe():
    """None if a trivial program compiles here, else why not (for ``available()``)."""
    try:
        load_or_build(PROBE_SOURCE)
        return None
    except CompileError as error:
        return str(error)
    except Exception as error:
        return f"{type(error).__name__}: {error}"


PROBE_SOURCE = """
#include <stdint.h>
#include <stdlib.h>
typedef struct { char *data; int64_t shape[16]; int64_t strides[16]; } arr_t;
int ari_run(arr_t *in, arr_t *out, char *err, int *where) { return 0; }
int ari_call(intptr_t args, arr_t *in, arr_t *out, char *err, int *where, int64_t *shapes, intptr_t made) { return 0; }
void ari_set_types(intptr_t a, intptr_t b, intptr_t c) {}
void ari_collect(intptr_t *objs, arr_t *out, int n, int64_t *sizes) {}
void ari_set_blas(void *a, void *b, void *c, void *d, void *e, void *f, int g) {}
"""
