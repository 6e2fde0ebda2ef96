"""The BLAS that the compiled backends call for matrix products, found once per process.

NumPy's own OpenBLAS comes first: it is loaded already, and sharing its thread pool matters. OpenBLAS
workers spin for a while after each call, and two pools on few cores fight: a training step ran three
times slower next to NumPy. SciPy's bundled OpenBLAS is next (32-bit integers), loaded without importing
scipy.linalg (half a second); ``scipy.linalg.cython_blas`` last. Both compiled backends take the
addresses from ``entry_points()`` (C through function pointers, numba through named LLVM symbols).

``entry_points()["solo"]`` is the address of ``solo(begin)``, a C-callable function that makes the
BLAS single-threaded while a program splits work between threads of its own (``Plan.image_threads``):
``solo(1)`` before the threads start, ``solo(0)`` after they end; ``with one_core:`` does the same
from Python, around a whole call (``Plan.blas_one_core``). Regions of several threads or programs
nest (a count, under a lock): the first saves OpenBLAS's thread count and sets it to 1, the last puts
it back. Another thread of the process calling the BLAS meanwhile runs on one core too.
When the BLAS offers no thread count (SciPy's Cython BLAS), ``solo`` does nothing and
``entry_points()["solo_sets_threads"]`` is False: programs then keep their work on one thread.
"""

import ctypes
import functools
import threading


def _site(package):
    """The folder that holds ``package`` (site-packages), where wheels keep their bundled libraries."""
    import importlib.util
    import os

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.dirname(list(spec.submodule_search_locations)[0])


def _bundled_openblas(folder, prefix, suffix, ilp64):
    """The BLAS entry points of an OpenBLAS a wheel bundles in ``<site>/<folder>`` (symbols
    ``<prefix>sgemm<suffix>`` ...), loaded by path (a library the process already has, like NumPy's,
    is the same library: the same thread pool), or None. ``ilp64``: its integers are 64-bit."""
    import glob
    import os

    site = _site(folder.split(".")[0])
    for path in sorted(glob.glob(os.path.join(site, folder, "lib*openblas*.so*"))) if site else ():
        try:
            lib = ctypes.CDLL(path)
            found = {name: ctypes.cast(getattr(lib, f"{prefix}{name}{suffix}"), ctypes.c_void_p).value
                     for name in ("sgemm", "dgemm", "sgemv", "dgemv")}
            found["ilp64"] = ilp64
            openblas_suffix = "64_" if ilp64 else ""  # of OpenBLAS's own (C) functions
            found["threads"] = _thread_count(lib, prefix, openblas_suffix)
            found["kernel_set"] = _kernel_set(lib, prefix, openblas_suffix)
            return found
        except (OSError, AttributeError):
            continue
    return None


def _thread_count(lib, prefix, suffix):
    """OpenBLAS's (get, set) of its thread count, as ctypes functions, or None. Their C names (the
    Fortran ones, ending in ``_``, take a pointer)."""
    try:
        get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
        set_ = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
    except AttributeError:
        return None
    get.restype, get.argtypes = ctypes.c_int, []
    set_.restype, set_.argtypes = None, [ctypes.c_int]
    return get, set_


def _kernel_set(lib, prefix, suffix):
    """The name of the kernels an OpenBLAS runs ("Haswell", "SkylakeX", ...: it picks them for the
    CPU when loaded, or as OPENBLAS_CORETYPE says), or None."""
    try:
        corename = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
    except AttributeError:
        return None
    corename.restype, corename.argtypes = ctypes.c_char_p, []
    return corename().decode(errors="replace").strip() or None


def _cython_blas():
    """The BLAS function pointers scipy.linalg.cython_blas exports as PyCapsules (32-bit integers)."""
    import scipy.linalg.cython_blas as cython_blas

    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    found = {"ilp64": False}
    for name in ("sgemm", "dgemm", "sgemv", "dgemv"):
        capsule = cython_blas.__pyx_capi__[name]
        found[name] = get_pointer(capsule, get_name(capsule))
    return found


# Where BLAS comes from, best first (see the module's docstring).
BLAS_SOURCES = (
    lambda: _bundled_openblas("numpy.libs", "scipy_", "_64_", True),  # numpy >= 2 wheels
    lambda: _bundled_openblas("numpy.libs", "", "_64_", True),        # numpy 1.2x wheels (openblas64_)
    lambda: _bundled_openblas("scipy.libs", "scipy_", "_", False),
    _cython_blas,
)

_found = {}


def entry_points():
    """{"sgemm", "dgemm", "sgemv", "dgemv": address, "ilp64": whether its integers are 64-bit,
    "kernel_set": OpenBLAS's name for its kernels or None}, from the first of BLAS_SOURCES that works."""
    if not _found:
        for source in BLAS_SOURCES:
            try:
                found = source()
            except ImportError:
                found = None
            if found:
                _found.update(found)
                break
        threads = _found.pop("threads", None)
        _found["solo"] = _solo_entry(*threads) if threads else _solo_entry(None, None)
        _found["solo_sets_threads"] = bool(threads)
        _thread_control[:] = threads or ()
    return _found


_thread_control = []  # OpenBLAS's (get, set) of its thread count, when it has them


@functools.cache
def cpu_flags():
    """The CPU's feature flags (/proc/cpuinfo's "flags": "avx2", "avx512f"...), empty where unknown."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# OpenBLAS's kernel sets whose products use AVX-512
AVX512_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}


def narrower_than_cpu():
    """Whether the BLAS computes products with narrower vectors than this CPU has: an OpenBLAS running
    AVX2 kernels (OPENBLAS_CORETYPE=Haswell, or a build older than the CPU) on a CPU with AVX-512 and
    FMA. arignote's own register blocks (runtime.h's ari_few_rows, numba's panels.py) then run the
    products about twice as fast: one core, float32, 220-234 GFLOP/s against 98-130 (docs/products.md)."""
    kernels = entry_points().get("kernel_set")
    return kernels is not None and kernels.lower() not in AVX512_KERNELS and {"avx512f", "avx2", "fma"} <= cpu_flags()


def thread_count():
    """The BLAS's thread count now (1 inside a region of ``solo``), or None when it cannot be read."""
    entry_points()
    return _thread_control[0]() if _thread_control else None


class _OneCore:
    """``with one_core:``: the BLAS single-threaded for the block (``solo``, from Python)."""

    def __enter__(self):
        _solo_now[0](1)

    def __exit__(self, *exc):
        _solo_now[0](0)


one_core = _OneCore()
_solo_now = [lambda begin: None]  # the solo function of the BLAS found (entry_points sets it)
_SOLO = ctypes.CFUNCTYPE(None, ctypes.c_int)
_solo_lock = threading.Lock()
_solo_state = {"depth": 0, "saved": 1}
_solo_callbacks = []  # kept alive: C and numba hold their addresses for the life of the process


def _solo_entry(get_threads, set_threads):
    def solo(begin):
        if set_threads is None:  # a BLAS without a thread count: nothing to do
            return
        with _solo_lock:
            if begin:
                if _solo_state["depth"] == 0:
                    _solo_state["saved"] = get_threads()
                    set_threads(1)
                _solo_state["depth"] += 1
            elif _solo_state["depth"] > 0:
                _solo_state["depth"] -= 1
                if _solo_state["depth"] == 0:
                    set_threads(_solo_state["saved"])

    _solo_now[0] = solo
    callback = _SOLO(solo)
    _solo_callbacks.append(callback)
    return ctypes.cast(callback, ctypes.c_void_p).value
