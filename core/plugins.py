"""Backends are plugins: found through the entry-point group ``arignote.backends``, loaded with pluggy.

A plugin is a module (or object) named by an entry point. It implements the hook
``arignote_backends()``, marked with ``arignote.hookimpl``, returning the Backend objects it provides.
The built-in backends are registered exactly this way. Plugins are loaded on first use, not when
arignote is imported, and a plugin that fails to load is recorded and reported only when selected.
"""

import importlib.metadata
from typing import NamedTuple

import pluggy

from .config import config

ENTRY_POINT_GROUP = "arignote.backends"
hookspec = pluggy.HookspecMarker("arignote")
hookimpl = pluggy.HookimplMarker("arignote")


class BackendHooks:
    """The hooks a backend plugin may implement."""

    @hookspec
    def arignote_backends(self):
        """Return a list of Backend objects (or a single one) provided by this plugin."""


class Availability(NamedTuple):
    """Whether a backend can run here; truthy when it can, with the reason when it cannot."""

    usable: bool
    reason: str = ""

    def __bool__(self):
        return self.usable


class Backend:
    """Base class for backends (optional: any object with ``name`` and ``compile`` will do).

    ``compile(fgraph)`` returns an executable: a callable that takes the input arrays in the order of
    ``fgraph.inputs`` and returns a list of output arrays in the order of ``fgraph.outputs``. Each output
    is a new array the caller may keep, except that an output may be a view of an input where the op
    that produced it says so in its ``view_map``. The executable may have a ``source`` attribute with the
    generated code.

    ``compile(fgraph, profile=True)`` (optional: core asks only a ``compile`` that takes ``profile``)
    returns an executable that also has ``profiled(inputs)``, returning (the outputs, the seconds each
    node of ``fgraph.apply_nodes`` took in that call): ``function(..., profile=True)`` (core/profile.py).
    """

    name = None
    priority = 0  # the default backend is the usable one with the highest priority

    def available(self):
        return Availability(True)

    def compile(self, fgraph, profile=False):
        raise NotImplementedError(f"backend {self.name!r} does not implement compile()")

    def blas_narrower_than_cpu(self):
        """Whether the BLAS this backend calls runs narrower vectors than the CPU has (optional): the
        plan then hands every float product to the backend's own kernels (core/plan.py, own_rows)."""
        return False

    def __repr__(self):
        return f"<backend {self.name}>"


class BackendError(LookupError):
    """A backend was asked for that is not installed, not loadable, or not usable here."""


class Registry:
    """The installed backends, loaded once on first use."""

    def __init__(self):
        self._backends = None
        self._broken = {}  # name -> why it could not be loaded
        self._availability = {}

    def reset(self):
        """Forget what was loaded (for tests and for plugins installed while running)."""
        self.__init__()

    def _load(self):
        if self._backends is not None:
            return
        self._backends, self._broken, self._availability = {}, {}, {}
        manager = pluggy.PluginManager("arignote")
        manager.add_hookspecs(BackendHooks)
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in self._broken or manager.has_plugin(entry_point.name):
                continue  # the same distribution seen twice on sys.path
            try:
                manager.register(entry_point.load(), name=entry_point.name)
            except Exception as error:
                self._broken[entry_point.name] = (
                    f"plugin {entry_point.value!r} could not be loaded: {type(error).__name__}: {error}"
                )
        implemented = set()
        for impl in manager.hook.arignote_backends.get_hookimpls():
            implemented.add(impl.plugin_name)
            try:
                provided = impl.function()
                provided = list(provided) if isinstance(provided, (list, tuple)) else [provided]
                for backend in provided:
                    self.register(backend)
            except Exception as error:
                self._broken[impl.plugin_name] = (
                    f"plugin {impl.plugin_name!r} failed in arignote_backends(): {type(error).__name__}: {error}"
                )
        for plugin_name, _ in manager.list_name_plugin():
            if plugin_name not in implemented and plugin_name not in self._broken:
                self._broken[plugin_name] = f"plugin {plugin_name!r} implements no arignote_backends() hook"

    def register(self, backend):
        """Add a backend object directly (plugins normally arrive through entry points)."""
        self._load()
        if not isinstance(getattr(backend, "name", None), str) or not callable(getattr(backend, "compile", None)):
            raise TypeError(f"{backend!r} is not a backend: it needs a str `name` and a `compile(fgraph)` method")
        if backend.name in self._backends and self._backends[backend.name] is not backend:
            raise ValueError(f"two plugins provide a backend named {backend.name!r}")
        self._backends[backend.name] = backend

    def names(self):
        self._load()
        return sorted(self._backends)

    def broken(self):
        self._load()
        return dict(self._broken)

    def availability(self, name):
        self._load()
        if name not in self._availability:
            backend = self._backends[name]
            try:
                result = backend.available() if hasattr(backend, "available") else True
            except Exception as error:
                result = Availability(False, f"available() failed: {type(error).__name__}: {error}")
            if isinstance(result, tuple) and not isinstance(result, Availability):
                # a plain `return False, "no compiler"` is a non-empty tuple, truthy: read it as meant
                result = Availability(*result)
            if not isinstance(result, Availability):
                result = Availability(bool(result), "" if result else "the backend says it is unavailable")
            self._availability[name] = result
        return self._availability[name]

    def default_name(self):
        """The usable backend with the highest priority."""
        # Asked in priority order, stopping at the first usable one: asking numba, say, imports it.
        # Ties go to the name that sorts first, so installing a plugin never changes the default by its name.
        for name in sorted(self.names(), key=lambda n: (-getattr(self._backends[n], "priority", 0), n)):
            if self.availability(name):
                return name
        raise BackendError("no usable backend is installed: " + self._listing())

    def get(self, name=None):
        """The backend called ``name``, else ARIGNOTE_BACKEND's, else the default one."""
        name = name or config.backend or self.default_name()
        self._load()
        if name in self._broken:
            raise BackendError(f"backend {name!r} is installed but broken: {self._broken[name]}")
        if name not in self._backends:
            raise BackendError(f"no backend named {name!r}; installed: {self._listing()}")
        availability = self.availability(name)
        if not availability:
            raise BackendError(f"backend {name!r} is installed but not usable here: {availability.reason}")
        return self._backends[name]

    def _listing(self):
        parts = [n + ("" if self.availability(n) else f" (unusable: {self.availability(n).reason})")
                 for n in self.names()]
        parts += [f"{n} (broken)" for n in sorted(self._broken)]
        return ", ".join(parts) or "none"


registry = Registry()


def get_backend(name=None):
    return registry.get(name)
