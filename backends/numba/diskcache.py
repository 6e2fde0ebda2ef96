"""The numba backend's disk cache: generated modules and numba's own cache files, each checked before use.

Each generated module ``<stem>.py`` (program, kernel, runtime copy, helpers) has a manifest beside it,
``<stem>.manifest.json``: the SHA-256 of the module and of every index (``.nbi``) and object (``.nbc``)
file numba wrote for its functions (``numba/core/caching.py``: ``<stem>.<function>-<line>.py311.nbi``,
``...<n>.nbc``, in ``__pycache__`` beside the module, or under ``NUMBA_CACHE_DIR``).

- A module is run from the source generated in this process, never from the file: the file is
  rewritten when it differs (numba stamps its cache with the file's hash and needs it to exist).
- numba's own ``cache=True`` would read its files unchecked. Every ``njit(cache=True)`` function and
  ``cfunc(cache=True)`` callback of our modules gets ``VerifiedCache`` instead
  (``Dispatcher.enable_caching`` and ``CFunc.enable_caching``, replaced for our files only):
  numba's format and file names, but a file is unpickled only from bytes whose digest the manifest
  holds (read once through ``cache.read_private``, under a shared lock); a file the manifest does not
  cover is deleted and numba compiles again; each file numba writes (private, mode 0o600) is added to
  the manifest under the folder's exclusive lock, so that concurrent compiles agree.
- Where nothing can be written, a module runs from memory and its functions compile without a disk
  cache (``NullCache``).
"""

import contextlib
import io
import os
import pickle
import uuid

from .. import cache

PYCACHE = "__pycache__"
MEMORY = "<arignote numba module {stem}>"  # the file name of a module run from memory
_running = set()  # the file names of our modules being run now (their njit functions are made then)
_installed = []


def install():
    """Give our modules' njit(cache=True) functions a VerifiedCache (or none): others keep numba's."""
    if _installed:
        return
    from numba.core.caching import NullCache
    from numba.core.ccallback import CFunc
    from numba.core.dispatcher import Dispatcher

    def verified(numba_enable_caching, python_function):
        def enable_caching(compiled):
            function = python_function(compiled)
            filename = function.__code__.co_filename
            if filename not in _running:
                return numba_enable_caching(compiled)
            if filename.startswith("<"):  # run from memory: no disk cache
                compiled._cache = NullCache()
            else:
                compiled._cache = _verified_cache()(function, manifest(filename))
        return enable_caching

    # njit functions, and the C callbacks of panels.py
    for kind, python_function in ((Dispatcher, lambda d: d.py_func), (CFunc, lambda c: c._pyfunc)):
        _installed.append((kind, kind.enable_caching))
        kind.enable_caching = verified(kind.enable_caching, python_function)


def manifest(path):
    """The Manifest of the module file ``path``."""
    return cache.Manifest(path[: -len(".py")] + ".manifest.json")


@contextlib.contextmanager
def running(path):
    """Run a module of ours inside: its njit(cache=True) functions get VerifiedCache (or none)."""
    _running.add(path)
    try:
        yield
    finally:
        _running.discard(path)


def place(folder, stem, source):
    """Write ``<stem>.py`` (when missing or different) and its manifest in ``folder``; returns the file's
    path, which the module must be compiled under (``compile(source, path, "exec")``)."""
    path = os.path.join(folder, stem + ".py")
    data = source.encode()
    cache.make_folder(os.path.join(folder, PYCACHE))  # before numba makes it with the umask's mode
    with cache.locked(folder, exclusive=True):
        try:
            current = cache.read_private(path)
        except OSError:
            current = None
        if current != data:
            cache.write_private(path, data)
        covering = manifest(path)
        if covering.read().get(stem + ".py") != cache.digest(data):  # new: numba's files are not covered
            covering.write({stem + ".py": cache.digest(data)})
    return path


_classes = []


def _verified_cache():
    """VerifiedCache, made once numba is imported (its base classes are numba's)."""
    if _classes:
        return _classes[0]
    from numba.core.caching import FunctionCache, IndexDataCacheFile

    class VerifiedCacheFile(IndexDataCacheFile):
        """numba's index and object files, read only when the manifest holds their digest."""

        def __init__(self, cache_path, filename_base, source_stamp, manifest):
            super().__init__(cache_path, filename_base, source_stamp)
            self._manifest = manifest
            self._folder = os.path.dirname(manifest.path)

        def _name(self, path):
            return os.path.relpath(path, self._folder)

        def _trusted(self, path):
            """The bytes of ``path`` if the manifest holds their digest; else None, and the file goes."""
            try:
                cache.check_folder(self._cache_path)
            except OSError:  # a folder others could write (NUMBA_CACHE_DIR): nothing in it is used
                return None
            with cache.locked(self._folder, exclusive=False):
                try:
                    data = cache.read_private(path)
                except FileNotFoundError:
                    return None
                except OSError:
                    data = None
                if data is not None and self._manifest.read().get(self._name(path)) == cache.digest(data):
                    return data
                cache.remove(path)  # damaged, planted or unverifiable: numba compiles again
                return None

        def _load_index(self):
            data = self._trusted(self._index_path)
            if data is None:
                return {}
            stream = io.BytesIO(data)
            try:  # our own bytes: they fail only for another numba (whose classes differ)
                if pickle.load(stream) != self._version:
                    return {}
                stamp, overloads = pickle.loads(stream.read())
            except Exception:
                return {}
            return overloads if stamp == self._source_stamp else {}

        def _load_data(self, name):
            path = self._data_path(name)
            data = self._trusted(path)
            if data is None:
                raise FileNotFoundError(path)  # numba's load() then compiles
            try:
                return pickle.loads(data)
            except Exception as error:
                raise OSError(f"numba's cache file {path} cannot be read: {error}") from error

        def save(self, key, data):
            try:
                cache.check_folder(self._cache_path)
                with cache.locked(self._folder, exclusive=True):
                    super().save(key, data)
            except OSError as error:
                cache.warn(self._cache_path, error, "The compiled function runs, but is compiled again in the "
                                                    "next process")

        def _save_index(self, overloads):
            with cache.locked(self._folder, exclusive=True):
                super()._save_index(overloads)
                self._record(self._index_path)

        def _save_data(self, name, data):
            with cache.locked(self._folder, exclusive=True):
                super()._save_data(name, data)
                self._record(self._data_path(name))

        def _record(self, path):
            self._manifest.update(**{self._name(path): cache.digest(cache.read_private(path))})

        @contextlib.contextmanager
        def _open_for_write(self, filepath):
            temporary = f"{filepath}.{uuid.uuid4().hex[:12]}.tmp"
            try:
                with cache.open_new(temporary) as file:
                    yield file
                os.replace(temporary, filepath)
            except BaseException:
                cache.remove(temporary)
                raise

    class VerifiedCache(FunctionCache):
        """numba's FunctionCache (its locator, names and formats) with VerifiedCacheFile."""

        def __init__(self, py_func, manifest):
            super().__init__(py_func)
            plain = self._cache_file
            self._cache_file = VerifiedCacheFile(plain._cache_path, self._impl.filename_base,
                                                 plain._source_stamp, manifest)

    _classes.append(VerifiedCache)
    return VerifiedCache
