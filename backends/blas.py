"""The BLAS that the compiled backends call for matrix products, found once per process.

NumPy's own OpenBLAS comes first: it is loaded already, and sharing its thread pool matters. OpenBLAS
workers spin for a while after each call, and two pools on few cores fight: a training step ran three
times slower next to NumPy. SciPy's bundled OpenBLAS is next (32-bit integers), loaded without importing
scipy.linalg (half a second); ``scipy.linalg.cython_blas`` last. Both compiled backends take the
addresses from ``entry_points()`` (C through function pointers, numba through named LLVM symbols).
"""


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
    import ctypes
    import glob
    import os

    site = _site(folder.split(".")[0])
    for path in sorted(glob.glob(os.path.join(site, folder, "lib*openblas*.so*"))) if site else ():
        try:
            lib = ctypes.CDLL(path)
            found = {name: ctypes.cast(getattr(lib, f"{prefix}{name}{suffix}"), ctypes.c_void_p).value
                     for name in ("sgemm", "dgemm", "sgemv", "dgemv")}
            found["ilp64"] = ilp64
            return found
        except (OSError, AttributeError):
            continue
    return None


def _cython_blas():
    """The BLAS function pointers scipy.linalg.cython_blas exports as PyCapsules (32-bit integers)."""
    import ctypes

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
    """{"sgemm", "dgemm", "sgemv", "dgemv": address, "ilp64": whether its integers are 64-bit}, from
    the first of BLAS_SOURCES that works."""
    if not _found:
        for source in BLAS_SOURCES:
            try:
                found = source()
            except ImportError:
                found = None
            if found:
                _found.update(found)
                break
    return _found
