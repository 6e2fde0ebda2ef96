"""Compiling generated C through cffi, and the on-disk cache of compiled modules.

A module lives in ``<cache dir>/c/<key>/`` where the key hashes the generated source, the compiler and
its flags, arignote's version and the Python ABI. Beside the extension sits ``<name>.sha256``, the
checksum of the extension written after it: an entry whose checksum is missing or wrong (truncated,
corrupted, half-written) is rebuilt, never loaded. Compiles happen in a private temporary folder and
are moved into place with an atomic rename, so two processes compiling the same graph both succeed
(the last rename wins, and both files are complete).
"""

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import sysconfig
import tempfile
import threading

from arignote.core.config import config

# -O2 costs little more than -O1 on these small translation units and vectorizes the fused loops.
CFLAGS = ["-O2", "-fwrapv", "-fno-math-errno", "-std=gnu11", "-Wno-unused-variable",
          "-Wno-unused-label", "-Wno-unused-but-set-variable", "-Wno-unused-function"]

CDEF = """
typedef struct { char *data; int64_t shape[16]; int64_t strides[16]; } arr_t;
int ari_run(arr_t *in, arr_t *out, char *err, int *where);
void ari_set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv);
void free(void *);
"""


class CompileError(RuntimeError):
    """The C compiler is missing or failed: the message says which and why."""


def compiler():
    """The C compiler command cffi/distutils will use (CC, else the one Python was built with)."""
    return os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"


def _version():
    try:
        import importlib.metadata

        return importlib.metadata.version("arignote")
    except Exception:
        return "unknown"


def cache_root():
    root = os.path.join(config.cache_dir, "c")
    os.makedirs(root, mode=0o700, exist_ok=True)
    try:
        os.chmod(config.cache_dir, 0o700)
        os.chmod(root, 0o700)
    except OSError:
        pass
    return root


def cache_key(source):
    parts = [source, compiler(), " ".join(CFLAGS), os.environ.get("CFLAGS", ""), _version(),
             sys.implementation.cache_tag, sysconfig.get_config_var("EXT_SUFFIX") or "", CDEF]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


_loaded = {}  # key -> module, for this process
_lock = threading.Lock()


def load_or_build(source):
    """The compiled module for ``source``: from this process, from the disk cache, or compiled now.
    Returns (module, compiled_now)."""
    key = cache_key(source)
    with _lock:
        if key in _loaded:
            return _loaded[key], False
        name = f"_arignote_c_{key}"
        folder = os.path.join(cache_root(), key)
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        so_path = os.path.join(folder, name + suffix)
        module = _load_checked(name, so_path)
        compiled = module is None
        if module is None:
            _compile(name, source, folder, so_path)
            module = _load_checked(name, so_path)
            if module is None:
                raise CompileError(f"the compiled module {so_path} could not be loaded after compiling it")
        _loaded[key] = module
        return module, compiled


def _load_checked(name, so_path):
    sum_path = so_path + ".sha256"
    try:
        with open(sum_path) as f:
            expected = f.read().strip()
        if _digest(so_path) != expected:
            return None
    except OSError:
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, so_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception:
        return None


def _compile(name, source, folder, so_path):
    import cffi

    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="build-", dir=folder)
    try:
        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        ffi.set_source(name, source, extra_compile_args=CFLAGS, libraries=["m"])
        try:
            built = ffi.compile(tmpdir=tmp, verbose=False)
        except Exception as error:
            detail = str(error)
            log = getattr(error, "__cause__", None)
            raise CompileError(
                f"the C backend could not compile the generated code with {compiler()!r}: "
                f"{type(error).__name__}: {detail}{' (' + str(log) + ')' if log else ''}. Install a C "
                "compiler (gcc or clang) or set CC, or choose another backend (ARIGNOTE_BACKEND=reference)"
            ) from None
        digest = _digest(built)
        # atomic publication: the extension first, its checksum last (a reader trusts only both)
        unique = f"{so_path}.{os.getpid()}.{threading.get_ident()}"
        shutil.copyfile(built, unique)
        os.replace(unique, so_path)
        with open(unique + ".sum", "w") as f:
            f.write(digest)
        os.replace(unique + ".sum", so_path + ".sha256")
        with open(os.path.join(folder, name + ".c"), "w") as f:  # for people reading the cache
            f.write(source)
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
void ari_set_blas(void *a, void *b, void *c, void *d) {}
"""
