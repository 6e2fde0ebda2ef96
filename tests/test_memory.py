"""A process that compiles graph after graph keeps what its live functions need, not every program it
ever compiled (docs/memory.md). The long measurement is a command, not a test:
``python -m arignote.bench.memory --graphs 2000``."""

import gc
import sys

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.bench.memory import graph, memory_maps, resident_mb

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
GRAPHS = 20  # after one graph of each of the bench's five families


@pytest.fixture
def cold_cache(tmp_path, monkeypatch):
    """A new cache directory: every graph is compiled, as in a process that meets new graphs."""
    monkeypatch.setattr(arignote.config, "cache_dir", str(tmp_path / "cache"))


@pytest.fixture
def release_at_once(monkeypatch):
    """The numba backend keeps no unused module for reuse (holding.KEEP_UNUSED = 0)."""
    pytest.importorskip("numba")
    from arignote.backends.numba import holding

    monkeypatch.setattr(holding, "KEEP_UNUSED", 0)


def compile_call_drop(backend, first, count):
    """Compile and call the bench's graphs first ... first + count - 1 on ``backend``, keeping none."""
    for k in range(first, first + count):
        inputs, outputs, values = graph(k)
        arignote.function(inputs, outputs, backend=backend)(*values)
    gc.collect()


@linux
def test_graph_after_graph_memory_stays_bounded(backend, cold_cache, release_at_once):
    """Before, numba kept 1.5 MB a graph and the C backend 3 memory maps a graph (its libraries were
    never unloaded); the bound here is 40 % of numba's old rate (it keeps about 200 KB a graph over
    the first graphs of a process, 100 KB over thousands)."""
    first = 7919  # constants no other test uses
    compile_call_drop(backend, first, 5)
    compile_call_drop(backend, first + 5, 5)
    rss, maps = resident_mb(), memory_maps()
    compile_call_drop(backend, first + 10, GRAPHS)
    grown_kb, more_maps = (resident_mb() - rss) * 1024, memory_maps() - maps
    print(f"{backend}: {grown_kb / GRAPHS:.0f} KB and {more_maps / GRAPHS:.2f} maps more per graph")
    assert grown_kb / GRAPHS < 600, f"{backend}: {grown_kb / GRAPHS:.0f} KB more memory per graph compiled"
    # numba's JIT engine (MCJIT) unmaps machine code only with the engine: two maps per code library
    assert more_maps < (4 if backend == "numba" else 1) * GRAPHS, f"{backend}: {more_maps} more memory maps"


def test_a_dropped_function_is_freed(backend):
    """No cache of the core keeps a compiled function (or its program) once the user drops it."""
    import weakref

    x = T.vector("x")
    f = arignote.function([x], T.exp(x) * 3.25, backend=backend)
    f(np.ones(3))
    gone = weakref.ref(f)
    del f
    gc.collect()
    assert gone() is None


# ---------------------------------------------------------------------------------------------------
# the C backend: a library is closed once nothing uses it


def mapped_programs():
    """The paths of the compiled C programs mapped in this process."""
    with open("/proc/self/maps") as f:
        return {line.split()[-1] for line in f if line.rstrip().endswith("/program.so")}


@linux
def test_c_closes_the_libraries_of_dropped_functions(c, cold_cache):
    before = mapped_programs()
    compile_call_drop(c, 31337, 6)
    assert mapped_programs() - before == set()


@linux
def test_c_output_outlives_its_function(c, cold_cache):
    """A large output wraps a buffer the program allocated (no copy): the library that frees it stays
    loaded until the array goes, whatever happened to the function."""
    x = T.vector("x")
    before = mapped_programs()
    f = arignote.function([x], T.exp(x) + 0.015625, backend=c)
    big = f(np.zeros(100_000))  # 800 KB: wrapped, not copied
    program = mapped_programs() - before
    assert big.base is not None and len(program) == 1
    del f
    gc.collect()
    assert program <= mapped_programs()  # the array holds it
    assert np.all(big == 1.015625)
    del big
    gc.collect()
    assert not program & mapped_programs()


@linux
def test_c_unloading_frees_the_spare_buffers(c, cold_cache):
    """Each program keeps freed large buffers for its next call (runtime.h: ari_free); they are freed
    when its library is closed, not lost with it."""
    from arignote.bench.memory import malloc_in_use_mb

    x = T.vector("x")
    f = arignote.function([x], [T.exp(x) + 1.5, x * 3.5], backend=c)
    in_use = malloc_in_use_mb()
    if in_use != in_use:
        pytest.skip("no mallinfo2 (not glibc)")
    for _ in range(2):
        f(np.zeros(1_000_000))  # two 8 MB outputs, dropped: into the program's spare slots
    assert malloc_in_use_mb() > in_use + 12
    del f
    gc.collect()
    assert malloc_in_use_mb() < in_use + 4


# ---------------------------------------------------------------------------------------------------
# the numba backend: modules, njit functions and their LLVM modules are released


def generated_modules():
    return {name for name in sys.modules if name.startswith(("arignote_numba_program_", "arignote_numba_kernel_"))}


def numba_dispatchers():
    from numba.core.registry import CPUDispatcher

    def ours(o):
        try:  # gc also lists weak proxies, whose referent may be gone (ReferenceError)
            return isinstance(o, CPUDispatcher) and o.py_func.__module__.startswith(
                ("arignote_numba_program_", "arignote_numba_kernel_"))
        except ReferenceError:
            return False

    return [o for o in gc.get_objects() if ours(o)]


def test_numba_releases_the_modules_of_dropped_functions(numba_backend, release_at_once):
    from arignote.backends import numba as backend
    from arignote.backends.numba import holding

    def release():
        holding.sweep(backend._loaded)  # what the next program made would do
        gc.collect()
        holding.sweep(backend._loaded)  # the LLVM modules of the code libraries freed meanwhile

    x = T.vector("x")
    keep = arignote.function([x], T.tanh(x) * 2.5, backend=numba_backend)
    keep(np.ones(3))
    compile_call_drop(numba_backend, 104729, 5)  # the runtime helpers these graphs call: compiled once
    release()
    kept_modules, kept = generated_modules(), len(numba_dispatchers())
    engine = numba_dispatchers()[0].targetctx.codegen()._engine._ee
    engine_modules = len(engine._modules)
    compile_call_drop(numba_backend, 104734, 5)
    release()
    assert generated_modules() == kept_modules
    assert len(numba_dispatchers()) == kept
    assert len(engine._modules) <= engine_modules
    np.testing.assert_allclose(keep(np.zeros(2)), [0.0, 0.0])  # the live one still runs
    y = T.vector("y")
    again = arignote.function([y], T.tanh(y) * 2.5, backend=numba_backend)  # its modules, shared
    np.testing.assert_allclose(again(np.ones(1)), np.tanh([1.0]) * 2.5)


def test_numba_keeps_recently_dropped_modules_for_reuse(numba_backend):
    """A kernel that graph after graph shares is not imported (and loaded) again for each of them."""
    from arignote.backends import numba as backend

    x = T.vector("x")
    arignote.function([x], T.sqrt(x) * 1.75, backend=numba_backend)(np.ones(2))
    gc.collect()
    loaded = dict(backend._loaded)
    arignote.function([x], T.sqrt(x) * 1.75, backend=numba_backend)(np.ones(2))
    assert {k: m for k, m in backend._loaded.items() if k in loaded} == loaded


def test_numba_builds_no_pass_builder_for_declarations(numba_backend):
    """Every llvmlite pass builder leaks its instrumentation callbacks; numba made one for each function
    of each LLVM module, declarations included (40 of 47 in a small graph), and never freed the pass
    managers at all."""
    from llvmlite.binding import ffi, newpassmanagers

    optimized = []
    original = newpassmanagers.FunctionPassManager.run

    def recording(self, function, *args):
        optimized.append(function.is_declaration)
        return original(self, function, *args)

    x = T.vector("x")
    try:
        newpassmanagers.FunctionPassManager.run = recording
        arignote.function([x], T.tanh(x) * 0.0078125 + 1, backend=numba_backend)(np.ones(2))
    finally:
        newpassmanagers.FunctionPassManager.run = original
    assert optimized and not any(optimized)
    for kind in (newpassmanagers.ModulePassManager, newpassmanagers.FunctionPassManager):
        assert kind._dispose is not ffi.ObjectRef._dispose


def test_skipping_declarations_goes_back_to_numbas_way_where_numba_needs_the_module_itself(monkeypatch):
    """The wrapper that hands numba a module's definitions only must never break a compile: a numba
    whose optimizer passes the module to LLVM (a TypeError on the wrapper) gets the module itself."""
    from numba.core.codegen import CPUCodeLibrary

    from arignote.backends.numba import holding

    class Module:
        functions = ["declared", "defined"]

    seen = []

    def optimizer_that_needs_the_module(library, ll_module):
        if not isinstance(ll_module, Module):
            raise TypeError("expected an LLVM module")
        seen.append(list(ll_module.functions))

    monkeypatch.setattr(CPUCodeLibrary, "_optimize_functions", optimizer_that_needs_the_module)
    holding.skip_declarations()
    wrapped = CPUCodeLibrary._optimize_functions
    assert wrapped is not optimizer_that_needs_the_module
    wrapped(None, Module())
    wrapped(None, Module())
    assert seen == [["declared", "defined"]] * 2 and not wrapped.skips_declarations
    holding.skip_declarations()  # set up again: not wrapped twice
    assert CPUCodeLibrary._optimize_functions is wrapped


def test_numba_releases_a_module_only_after_the_modules_that_import_it(numba_backend, monkeypatch):
    """A program's module imports its kernels' modules. With one unused module kept, the kernel's was
    released (its globals cleared) while the program's stayed loaded; the same graph compiled again
    took that program module, and a call needing a new specialization of the kernel failed with
    NameError: name 'np' is not defined (a fuzzer finding)."""
    from arignote.backends.numba import holding

    monkeypatch.setattr(holding, "KEEP_UNUSED", 1)
    x = T.dmatrix("x")

    def graph():
        return arignote.function([x], T.exp(x) * 0.0001220703125 + 3, backend=numba_backend)

    from arignote.core.plan import PARALLEL_MIN

    large = np.ones((PARALLEL_MIN // 1000 + 1, 1000))  # the program's parallel twin runs
    f = graph()
    f(large)
    del f
    gc.collect()
    arignote.function([x], x - 0.000244140625, backend=numba_backend)  # the next program made sweeps
    again = graph()
    large.setflags(write=False)  # another numba type: a new specialization of every kernel
    np.testing.assert_allclose(again(large), np.exp(1.0) * 0.0001220703125 + 3)
