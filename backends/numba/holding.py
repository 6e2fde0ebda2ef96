"""What this process holds of the programs it compiled, and letting go of it (docs/memory.md).

numba keeps every module-level njit function forever: its finalizer, registered with
``weakref.finalize``, holds the function's compiled overloads, whose environment holds the module's
globals, which hold the function again. With the modules kept in ``sys.modules`` and in the backend's
table of loaded modules, a process that compiled 2,000 graphs held all of them: 1.6 MB each.

- Each Program holds the modules it imported (its own, its kernels', the helpers' it calls): one count
  per program and module. When the program is garbage collected, its counts are dropped (from a
  finalizer, which only queues them); the next program made (``sweep``) releases the modules that no
  program holds any more, except the KEEP_UNUSED most recently dropped (a module after those that
  import it, so never before them): out of the table and
  ``sys.modules``, their globals cleared (which frees their njit functions, the functions' typing
  and lowering records and their code libraries), their source out of ``linecache``. A later graph
  that needs the module again imports it again, and numba loads its machine code from the disk cache.
- When a code library is freed, its LLVM module (the optimized IR, kept by the JIT engine after the
  machine code was made) is taken out of the engine at the next ``sweep``, under numba's compiler
  lock. The engine keeps the machine code and the object file it came from (MCJIT frees them only
  with the engine: most of the 80 KB a graph that stays), so calls that reach that code through
  another program's code stay valid.
- llvmlite (0.50 here) never frees the pass managers numba builds, several per compiled function
  (``free_pass_managers``): 700 KB a compiled graph, the most of what a process kept. And each pass
  builder leaves 740 bytes (its instrumentation callbacks): numba makes one per function of every
  LLVM module it optimizes, most of them declarations, which have nothing to optimize
  (``skip_declarations``: 56 pass builders a graph become 8).

Modules without a holder (the runtime helpers) stay for the life of the process. Releasing is
best effort: where numba's internals differ from what this expects, memory is kept, nothing fails
(each change to numba or llvmlite checks first that their code is the one it was written for, and
``skip_declarations`` goes back to numba's own way when numba does not take the wrapped module).
"""

import collections
import contextlib
import ctypes
import linecache
import os
import sys
import threading
import weakref

# Modules no program holds that stay loaded, the most recently dropped going last: kernels that graph
# after graph shares (a max over rows, a cast) are not loaded again for each graph. A freshly compiled
# module keeps about 300 KB (its typed IR, code libraries, LLVM module), so the reserve costs up to
# 10 MB; 128 cost 70 MB and kept no less per graph over 2,000 graphs (docs/memory.md).
KEEP_UNUSED = 32

lock = threading.RLock()  # the table of loaded modules and the counts change together
_holders = collections.Counter()  # module name -> the live programs holding it
_dropped = collections.deque()  # the holdings of programs collected since the last sweep
_unused = collections.OrderedDict()  # module name -> (stem, module) held by no program, oldest first
_unused_code = collections.deque()  # (engine, LLVM module) of freed code libraries, to take out


def hold(held, stem, module):
    """Count ``module`` (the table's entry ``stem``) as held by the program whose holdings are ``held``."""
    with lock:
        _holders[module.__name__] += 1
        _unused.pop(module.__name__, None)
        held.append((stem, module))
    return module


def holdings(program):
    """A new program's list of holdings, dropped when ``program`` is garbage collected."""
    held = []
    weakref.finalize(program, _dropped.append, held)
    return held


def sweep(loaded, keep=None):
    """Drop the holdings of the programs collected since the last sweep; release the modules of
    ``loaded`` (stem -> module) that no program holds beyond the ``keep`` (KEEP_UNUSED) most recently
    dropped; take the LLVM modules of freed code libraries out of numba's JIT engine."""
    keep = KEEP_UNUSED if keep is None else keep
    released = []
    with lock:
        while _dropped:
            # a program's modules in reverse import order: a module comes after every module that
            # imports it (a program after its kernels, a kernel after its helpers), so that it is
            # released last; a module kept while one it imports was released would hand later programs
            # functions whose globals are gone (NameError when numba compiles them for a new type)
            for stem, module in reversed(_dropped.popleft()):
                name = module.__name__
                _holders[name] -= 1
                if _holders[name] <= 0:
                    del _holders[name]
                    _unused[name] = (stem, module)
                    _unused.move_to_end(name)
        while len(_unused) > max(0, keep):
            _, (stem, module) = _unused.popitem(last=False)
            if loaded.get(stem) is module:
                del loaded[stem]
            released.append(module)
    for module in released:
        _release(module)
    _remove_unused_code()


def _release(module):
    if sys.modules.get(module.__name__) is module:
        del sys.modules[module.__name__]
    path = getattr(module, "__file__", None)
    if path:  # numba reads its source through linecache, by the path relative to the working folder
        with contextlib.suppress(ValueError):
            linecache.cache.pop(os.path.relpath(path), None)
        linecache.cache.pop(path, None)
    namespace = vars(module)
    for value in list(namespace.values()):
        overloads = getattr(value, "overloads", None)  # an njit function (a numba Dispatcher) ...
        defined_here = getattr(getattr(value, "py_func", None), "__module__", None) == module.__name__
        if isinstance(overloads, dict) and defined_here:  # ... of this module, not one it imported
            for compiled in list(overloads.values()):
                _when_freed(getattr(compiled, "library", None))
    namespace.clear()  # the cycle through the globals: the module's njit functions can now be freed


def _when_freed(library):
    """Queue the library's LLVM module for removal from the JIT engine once the library is freed."""
    try:
        module = library._final_module
        engine = library.codegen._engine._ee
    except AttributeError:  # another numba's internals, or not a compiled library
        return
    weakref.finalize(library, _unused_code.append, (engine, module))


def _remove_unused_code():
    if not _unused_code:
        return
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:  # no compile is adding a module to the engine meanwhile
        while _unused_code:
            engine, module = _unused_code.popleft()
            if module in getattr(engine, "_modules", ()):
                engine.remove_module(module)  # its IR is freed with the last reference, here


def free_pass_managers():
    """Give llvmlite's ModulePassManager and FunctionPassManager the ``_dispose`` of their base
    NewPassManager where they inherit ObjectRef's empty one first (the order of their bases, in
    llvmlite 0.50): numba builds a pass manager per function it optimizes and drops it, and without
    this LLVM's objects stay (heaptrack: 700 KB a compiled graph). Process-wide, as numba's other
    settings; nothing changes where llvmlite disposes of them itself."""
    try:
        from llvmlite.binding import ffi, newpassmanagers
    except ImportError:  # an llvmlite with the legacy pass managers only
        return
    dispose = getattr(newpassmanagers, "NewPassManager", None)
    dispose = getattr(dispose, "_dispose", None)
    if dispose is None:
        return
    for kind in ("ModulePassManager", "FunctionPassManager"):
        cls = getattr(newpassmanagers, kind, None)
        if cls is not None and cls._dispose is ffi.ObjectRef._dispose:
            cls._dispose = dispose


class _DefinedFunctions:
    """An LLVM module whose ``functions`` are only those with a body (for ``skip_declarations``)."""

    def __init__(self, module):
        object.__setattr__(self, "_module", module)

    @property
    def functions(self):
        return (f for f in self._module.functions if not f.is_declaration)

    def __getattr__(self, name):
        return getattr(self._module, name)

    def __setattr__(self, name, value):
        setattr(self._module, name, value)


def skip_declarations():
    """numba's ``CPUCodeLibrary._optimize_functions`` builds a pass builder and runs the function passes
    on each function of a module, declarations included (40 of 47 in a small program's modules), and
    every pass builder leaks its instrumentation callbacks in llvmlite (``LLVMPY_CreatePassBuilder``).
    Hand it the module's definitions only: a declaration has no body for the passes to change."""
    try:
        from numba.core.codegen import CPUCodeLibrary
    except ImportError:
        return
    numba_optimize = getattr(CPUCodeLibrary, "_optimize_functions", None)
    if numba_optimize is None or hasattr(numba_optimize, "skips_declarations"):
        return

    def optimize_defined_functions(library, ll_module):
        if optimize_defined_functions.skips_declarations:
            try:
                return numba_optimize(library, _DefinedFunctions(ll_module))
            except (TypeError, ctypes.ArgumentError):  # a numba that hands the module itself to LLVM
                optimize_defined_functions.skips_declarations = False
        return numba_optimize(library, ll_module)  # (passes run again are harmless: they are idempotent)

    optimize_defined_functions.skips_declarations = True
    CPUCodeLibrary._optimize_functions = optimize_defined_functions
