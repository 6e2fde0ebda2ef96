"""Compiling generated C, loading it through cffi, and the on-disk cache of compiled programs.

The program is compiled straight to a shared library by the C compiler (no Python.h, no setuptools:
a compile takes about 0.1 s) and loaded with cffi's ``dlopen``; it is closed once no program or array uses it
(``Module``).

A program lives in ``<cache dir>/c/<key>/program.so`` where the key hashes the generated source, the runtime it
includes (runtime.h, found with ``-I`` in this package's folder), the compiler and its flags, arignote's
version and the Python ABI. The entry's ``manifest.json`` holds the SHA-256 of each of its files and is
written last; the library is loaded only when the folders are this user's alone and its digest agrees
(``backends/cache.py``): a missing, damaged or planted entry is rebuilt, never loaded. Compiles happen in
a staging folder that becomes the entry by one atomic rename, so two processes compiling the same graph
both succeed (the first rename wins, the other process loads that entry). Where the cache folder is
refused or cannot be written, programs are compiled in a private temporary folder (warned once).
"""

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import weakref

from .. import blas, cache

# -O1 with the vectorizer (dynamic cost model) vectorizes the fused loops at 60% of -O2's compile time;
# -g0 and no Python.h keep a compile near 0.1 s. -fno-math-errno lets calls to math functions vectorize, into glibc's libmvec (ARI_VECMATH).
# -fexpensive-optimizations (5% more compile time) turns on gcc's vzeroupper insertion, off at -O1: without it
# the SSE code of a scalar libm call in a loop's remainder, or NumPy's after the program returns, runs with
# the vector registers' upper halves dirty (a 500x500 tanh(x + b) took 440 us instead of 137).
CFLAGS = ["-O1", "-fexpensive-optimizations", "-ftree-vectorize", "-g0", "-fwrapv", "-fno-math-errno", "-ffp-contract=off", "-fvect-cost-model=dynamic", "-fopenmp-simd", "-std=gnu11", "-w",
          "-fPIC", "-shared"]


def cflags():
    """CFLAGS plus what this machine offers: AVX2/FMA or AVX-512 with 512-bit vectors, and glibc's vector
    math library libmvec (ARI_VECMATH) when it has a variant of every function runtime.h declares for
    that width (a missing one would fail only when first called)."""
    import ctypes
    import platform

    flags = list(CFLAGS)
    if platform.machine() in ("x86_64", "AMD64"):
        cpu = blas.cpu_flags()
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
typedef struct { arr_t *in; arr_t *out; char *err; int *where; int64_t *shapes; } ari_state;
int ari_call(ari_state *state, intptr_t args, intptr_t made);
int ari_fast(arr_t *consts, intptr_t made);
void ari_take_error(char *err, int *where);
void ari_set_types(intptr_t ndarray, intptr_t list, intptr_t tuple);
void ari_collect(intptr_t *objs, arr_t *out, int n, int64_t *sizes);
void ari_set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv, int ilp64, void *solo);
void ari_free(void *data);
void ari_release_spares(void);
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
    """``<cache dir>/c``, checked (``backends/cache.py``), or this process's private temporary folder."""
    return cache.folder("c")


PROGRAM = "program.so"
LAYOUT = "entries with manifest.json"  # in the key: entries of another layout are other entries


def cache_key(source):
    parts = [source, _runtime_digest(), compiler(), " ".join(_flags()), _version(), sys.implementation.cache_tag,
             sysconfig.get_config_var("EXT_SUFFIX") or "", CDEF, LAYOUT]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


_runtime_cache = []


def _runtime_digest():
    """The checksum of runtime.h, read once per process: a program compiled against another runtime is
    another cache entry."""
    if not _runtime_cache:
        with open(RUNTIME, "rb") as f:
            _runtime_cache.append(cache.digest(f.read()))
    return _runtime_cache[0]


_flags_cache = []


def _flags():
    if not _flags_cache:
        _flags_cache.append(cflags())
    return _flags_cache[0]


class Module:
    """A compiled program: ``ffi`` and ``lib`` as cffi gives them (``lib.ari_run`` ...). The library stays
    loaded while something uses it: its CPrograms, and the NumPy arrays wrapping buffers it made (their
    destructor, ``free``, holds the module). Then its spare buffers are freed and it is closed, so that
    a process compiling graph after graph does not keep every program it ever loaded (docs/memory.md)."""

    def __init__(self, ffi, lib, path):
        self.ffi, self.lib, self.path = ffi, lib, path
        # not at exit: arrays freed later in the interpreter's shutdown still call the library
        weakref.finalize(self, _unload, ffi, lib).atexit = False

    def free(self, data):
        """The destructor of a NumPy array wrapping a buffer of this program (``ffi.gc``)."""
        self.lib.ari_free(data)


def _unload(ffi, lib):
    try:
        release = lib.ari_release_spares
    except (AttributeError, ffi.error):  # the probe's library has none
        release = None
    if release is not None:
        release()
    ffi.dlclose(lib)


_loaded = weakref.WeakValueDictionary()  # key -> Module, for this process, while it is used
_lock = threading.Lock()
_ffi = None


def ffi():
    """The cffi FFI of the program interface, in cffi's out-of-line ABI mode: the declarations are
    parsed once, emitted as a small Python module kept in a cache entry (checked like a program) and
    run from there afterwards (parsing them costs pycparser's start-up, about 0.15 s, in every process)."""
    global _ffi
    if _ffi is None:
        name = "ffi_" + hashlib.sha256(CDEF.encode()).hexdigest()[:16]
        root = cache_root()
        source = (cache.read_entry(root, name) or {}).get("ffi.py")
        if source is None:
            source = _ffi_module(name)
            try:
                cache.store(root, name, {"ffi.py": source})
            except OSError:  # parsed again by the next process; compiling says why the cache is unwritable
                pass
        try:
            namespace = {"__name__": "_arignote_c_" + name}
            exec(compile(source, os.path.join(root, name, "ffi.py"), "exec"), namespace)
            _ffi = namespace["ffi"]
        except Exception:  # a module of another cffi version: parse the declarations here instead
            import cffi

            _ffi = cffi.FFI()
            _ffi.cdef(CDEF)
    return _ffi


def _ffi_module(name):
    """The source of cffi's out-of-line module of CDEF (cffi writes it to a file: a temporary one)."""
    import contextlib
    import io

    import cffi

    builder = cffi.FFI()
    builder.cdef(CDEF)
    builder.set_source("_arignote_c_" + name, None)
    with tempfile.TemporaryDirectory(prefix="arignote-ffi-") as folder:
        path = os.path.join(folder, "ffi.py")
        with contextlib.redirect_stdout(io.StringIO()):  # cffi says "generating ..."
            builder.emit_python_code(path)
        with open(path, "rb") as file:
            return file.read()


def load_or_build(source):
    """The compiled module for ``source``: from this process, from the disk cache, or compiled now.
    Returns (module, compiled_now)."""
    key = cache_key(source)
    with _lock:
        module = _loaded.get(key)
        if module is not None:
            return module, False
        root = cache_root()
        module = _load_checked(root, key)
        compiled = module is None
        if module is None:
            root = _compile(source, root, key)
            module = _load_checked(root, key)
            if module is None:
                raise CompileError(f"the compiled program {os.path.join(root, key, PROGRAM)} could not be loaded "
                                   "after compiling it")
        _loaded[key] = module
        return module, compiled


def _load_checked(root, key):
    """The module of the entry ``root/key`` if every digest of its manifest agrees (``cache.read_entry``:
    private folders, files opened without following links), else None (rebuild it)."""
    files = cache.read_entry(root, key)
    if files is None or PROGRAM not in files:
        return None
    so_path = os.path.join(root, key, PROGRAM)
    try:
        # closed when the Module is freed: arrays wrapping the program's buffers hold it (Module.free)
        return Module(ffi(), ffi().dlopen(so_path, ffi().RTLD_NOW), so_path)
    except Exception:
        return None


def _compile(source, root, key):
    """Compile ``source`` and publish it as the entry ``root/key``; returns the root it is in: ``root``,
    or where ``root`` cannot be written (read-only, full disk), this process's private folder (warned)."""
    try:
        _compile_into(source, root, key)
        return root
    except (OSError, CompileError) as error:
        if cache.is_private(root):
            raise
        try:
            private = cache.private_folder("c")
            _compile_into(source, private, key)  # fails again where the compiler or the program is at fault
        except OSError as again:
            if isinstance(error, OSError):
                cache.warn(root, error, f"Nor can a private temporary folder be written ({again.strerror}): the C "
                                        "backend cannot compile")
            raise
        if not isinstance(error, OSError):  # the compiler could not write there
            error = OSError(errno.EIO, str(error).strip().splitlines()[-1])
        cache.warn(root, error)
        return private


def _compile_into(source, root, key):
    staging = cache.stage(root)
    try:
        c_path = os.path.join(staging, "program.c")  # kept for people reading the cache (and compiling it again)
        built = os.path.join(staging, PROGRAM)
        with cache.open_new(c_path) as f:
            f.write(source.encode())
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
        os.chmod(built, 0o700)  # the compiler's mode follows the umask: nobody else may write it
        with open(RUNTIME, "rb") as header, cache.open_new(os.path.join(staging, "runtime.h")) as copy:
            shutil.copyfileobj(header, copy)
        cache.publish(root, key, staging)  # the manifest last, then one rename
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


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
typedef struct { arr_t *in; arr_t *out; char *err; int *where; int64_t *shapes; } ari_state;
int ari_call(ari_state *state, intptr_t args, intptr_t made) { return 0; }
void ari_set_types(intptr_t a, intptr_t b, intptr_t c) {}
void ari_collect(intptr_t *objs, arr_t *out, int n, int64_t *sizes) {}
void ari_set_blas(void *a, void *b, void *c, void *d, void *e, void *f, int g) {}
"""
