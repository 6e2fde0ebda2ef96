"""The Numba backend: each FunctionGraph becomes the Python source of one ``numba.njit`` function.

- generator.py renders the graph: ``segment0(inputs..., constants...)`` returns the tuple of outputs;
  each node is a few lines commented with the node (the glue lists where the user built each one),
  written by the emitter that table.py (the one table: scalar templates and node emitters, by op
  class) lists for its op; the emitters live by op family: elemwise.py (loop nests of elementwise
  nodes and Composites), reductions.py (reductions, FusedReduce, argmax, the extremum mask),
  shapes.py, indexing.py, products.py (BLAS), nnet.py (softmax, cross-entropies), random.py,
  conv.py (convolutions as im2col + BLAS, through helpers compiled once per dtype), pool.py (pooling),
  shares.py (work the glue shares out between threads),
  loops.py (Scan and IfElse: each inner graph a module of its own, called from the node's kernel).
- Core decides, the backend carries out: fusion (Composite, FusedReduce), which elementwise result is
  written into a dying input buffer (``plan.reuse``), which loops are worth threads (``plan.threads``:
  the first PARALLEL_NODES of them get a ``prange`` twin, in a second variant of the program that the
  glue calls only when an input has PARALLEL_MIN elements or more, so that numba compiles them only
  then). The glue runs one twin at a time in the process (``_twin``): numba's workqueue layer aborts
  the process when two threads enter parallel loops at once, so a thread that finds the twin busy
  runs the plain program. The convolutions of ``plan.image_threads`` and the matrix products of
  ``plan.product_threads`` run from the glue between two segments, their images or columns shared out
  between threads (shares.py: ``conv.SplitImages``, ``products.SplitColumns``), and the whole call then
  runs the BLAS on one core (``plan.blas_one_core``): docs/conv.md. So do the row ops of
  ``plan.threads`` (poolings, the softmax cross-entropy and its gradient: ``shares.SplitRows``), whose
  ``prange`` twins ran slower than one loop.
- runtime.py holds the njit helpers written once (labels, per-row ops, dot, SplitMix64...). Programs
  import a copy of it written into the cache, so that numba keeps its machine code there too.
  panels.py holds the kernels of products of few rows, C callbacks that runtime.py calls by name.
- vecmath.py (optional) makes LLVM call SIMD exp/sin/tanh...; used when its ``enable()`` succeeds.
- The ops of ``table.PYTHON_ONLY`` run in NumPy (the reference implementation) between two compiled
  segments: advanced indexing with boolean masks or several index arrays (one integer vector among
  full slices is compiled), and a Scan or IfElse whose inner graph holds such an op
  (``table.python_reason``). Every other op runs inside njit.
- Each kernel is a module of its own named by a hash of its source, so graphs that share a kernel
  share its compiled code; matrix products go through ``runtime.gemm``, compiled once per dtype.

The Python side stays minimal: ``run(inputs)`` is ``return list(segment0(*inputs, constants...))``
when the whole graph compiles (when every output is 0-d, segment0 writes them into arrays the glue
makes); its ``fast(inputs)`` checks the inputs inline and calls segment0's compiled overload for their
types without the dispatcher (``_fast_glue``; docs/functions.md, "What a call costs"). Compiled code
raises with constant messages (numba's rule); the exception is then explained by running the same
inputs through the reference backend, whose error names the op, the shapes and dtypes, and where the
user built the node (``node_failure``).

Everything generated is written under ``ARIGNOTE_CACHE_DIR/numba`` (user-only permissions), in files
named by a hash of their source and of the versions involved, compiled with ``numba.njit(cache=True)``:
a new process with the same graph loads machine code from disk instead of compiling. Modules run from
the source generated here, never from their files, and numba reads only index and object files whose
digests their module's manifest holds (diskcache.py, docs/cache.md).
``f.backend_source`` shows the glue and the generated module. numba is imported only when this backend
is asked whether it is available or to compile.
"""

import contextlib
import hashlib
import importlib.util
import os
import re
import sys
import threading
import time
import warnings

import numpy as np

from arignote.core import ops
from arignote.core.errors import UnsupportedOpError, node_failure
from arignote.core.plan import PARALLEL_MIN, plan_of
from arignote.core.plugins import Availability, Backend, hookimpl
from arignote.core.pyop import implementation, node_error
from arignote.core.sourcetext import py_comment  # user text in the glue: comments only, rendered

from .. import blas, cache, malloc


def _prefer_512_bit_vectors(numba):
    """On AVX-512 machines, let LLVM's loop vectorizer use 512-bit vectors (as the C backend does, with
    -mprefer-vector-width=512), unless the user chose the features (NUMBA_CPU_FEATURES) or numba has
    already set up its code generator. LLVM's tuning for these CPUs prefers 256 bits, which makes the
    loops call libmvec's 8-lane functions: glibc 2.36's 8-lane tanhf costs 0.77 ns an element, its
    16-lane one 0.32 (a 500x500 float32 tanh: 168 us instead of 121). Called when this package is
    imported, before its modules are: shares.py's signatures set numba's code generator up, and called
    from the first compile, as it was, it came too late (elemwise-4m took 3.55 ms instead of 2.47)."""
    from llvmlite import binding
    from numba.core import registry

    if numba.config.CPU_FEATURES is not None or "_toplevel_target_context" in vars(registry.cpu_target):
        return
    features = binding.get_host_cpu_features()
    if features.get("avx512f") and features.get("evex512", True):
        numba.config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"


import numba  # noqa: E402  (the backend's own dependency: this package is imported once it is chosen)

_prefer_512_bit_vectors(numba)

from . import conv, diskcache, holding, products, shares  # noqa: E402
from .generator import Generator

CODEGEN_VERSION = "3"
# A prange twin costs a second compile of its loop (parfors: about a second each), so only the first
# PARALLEL_NODES of the plan's loops worth threads get one. Below PARALLEL_MIN elements (core's
# threshold for cheap work, read here by the tests too) its threads cost more than they save, whatever
# the node's plan.parallel_min (which assumes threads as cheap as C's crew, or shares.py's: row ops
# follow it): numba's workqueue layer (see _version_text) takes some 250 us to start and join a
# parallel loop on two cores, as long as a 500x500 float32 exp on one core (a 2000x2000 one: 1.0 ms
# with prange, 1.6 ms without).
PARALLEL_NODES = 2


# ---------------------------------------------------------------------------------------------------
# the disk cache


_versions = None
_loaded = {}  # file stem -> module (a kernel is compiled once per process, whatever graph uses it)
# while a program that imported it lives (holding.py: released with the last one)


def _version_text():
    global _versions
    if _versions is None:
        import numba

        malloc.keep_freed_memory()  # numba's temporaries come from malloc: reuse them, no page faults
        holding.free_pass_managers()
        holding.skip_declarations()

        if not os.environ.get("NUMBA_THREADING_LAYER"):
            # OpenMP's worker threads spin after a parallel loop and starve the BLAS threads of the
            # np.dot that follows (ten times slower training steps on two cores); the workqueue sleeps
            numba.config.THREADING_LAYER = "workqueue"
        _programs_link_without_reoptimizing()
        # numba's advice about non-contiguous arrays is not for the user of a generated program
        warnings.filterwarnings("ignore", category=numba.core.errors.NumbaPerformanceWarning)

        _versions = f"arignote-numba {CODEGEN_VERSION}; numba {numba.__version__}; numpy {np.__version__}; " \
                    f"python {sys.version.split()[0]}"
    return _versions


PROGRAM_SEGMENT = "arignote_numba_program_"  # in the mangled names of a program module's functions


def _programs_link_without_reoptimizing():
    """Compile a program's segments without numba's module optimization after linking. numba links
    every function a compiled function calls (kernels, runtime helpers, numba's own overloads, each
    already optimized in its own library) into the caller's module and runs the whole optimization
    pipeline over it again, then generates its machine code: for a program's segment, which is glue
    (allocations, checks, calls; the loops are in the kernels), that second optimization was a third
    of numba's compile time and made the code no faster (docs/numba-backend.md, "Compile time"). The
    segment's own function is still optimized when it is added (numba's function passes). Only the
    segments of top-level programs are concerned: inner graphs of loops run their segment every step
    and keep the full pipeline, as does every function outside arignote's programs."""
    from numba.core import codegen

    library = codegen.CPUCodeLibrary
    optimize = library._optimize_final_module
    if getattr(optimize, "keeps_linked_code", False):
        return

    def optimize_final_module(self):
        if not _is_program_segment(self):
            optimize(self)

    optimize_final_module.keeps_linked_code = True
    library._optimize_final_module = optimize_final_module


def _is_program_segment(library):
    """Whether numba's code library ``library`` is a segment of a top-level program."""
    return library.name.startswith("segment") and any(
        PROGRAM_SEGMENT in function.name for function in library._final_module.functions
        if not function.is_declaration)


def cache_directory():
    """``<cache dir>/numba``, checked (``backends/cache.py``), or this process's private temporary folder."""
    return cache.folder("numba")


def _stem(source, prefix):
    """The file name of ``source`` without ".py": named by its hash and the versions involved."""
    digest = hashlib.sha256((_version_text() + "\n" + source).encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


def _write(source, prefix):
    """Write ``source`` into the cache with its manifest (``diskcache.place``) and return the file name to
    compile it under, and its stem: in the private temporary folder where the cache cannot be written
    (warned), or, where nothing can be written, the name of a module run from memory (no disk cache)."""
    stem = _stem(source, prefix)
    folder = None
    try:
        folder = cache_directory()
        return diskcache.place(folder, stem, source), stem
    except OSError as error:
        if folder is not None and not cache.is_private(folder):
            cache.warn(folder, error)
            with contextlib.suppress(OSError):
                return diskcache.place(cache.private_folder("numba"), stem, source), stem
    return diskcache.MEMORY.format(stem=stem), stem


def _import(source, prefix):
    """The module of ``source``, run from this source (never from the file: diskcache.py)."""
    stem = _stem(source, prefix)
    module = _loaded.get(stem)
    if module is None:
        diskcache.install()  # our njit(cache=True) functions read only numba files the manifest covers
        path, _ = _write(source, prefix)
        name = f"arignote_numba_{stem}"
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, None, origin=path))
        module.__file__ = path
        sys.modules[name] = module
        with diskcache.running(path):
            exec(compile(source, path, "exec"), vars(module))
        _loaded[stem] = module
    return module


def _import_held(source, prefix, held):
    """``_import`` for a program: the module stays loaded while a program holding it lives."""
    with holding.lock:  # not released between being found and being counted
        module = _import(source, prefix)
        return holding.hold(held, module.__name__[len("arignote_numba_"):], module)


def _runtime_module():
    """The name of runtime.py's copy in the cache, imported. Kernels import the copy, so that numba
    keeps the helpers' machine code under ARIGNOTE_CACHE_DIR with everything else (numba caches a
    module's functions beside its file: for the package's own runtime.py that would be inside the
    installation, shared by every cache directory, and a cold cache would not be cold)."""
    width = 64 if _bind_blas()["ilp64"] else 32
    panels = _bind_panels()
    source = _package_source("runtime.py")
    source += f"\n\n# this process's BLAS takes {width}-bit integers (a copy, and its cache, per width)\n" \
              f"_INT = np.int{width}\n# products of 3 to FEW_ROWS rows go to panels.py's kernels\n" \
              f"FEW_ROWS, _COPY_ROWS, _COPY_BYTES = {panels.FEW_ROWS}, {panels.COPY_ROWS}, {panels.COPY_BYTES}\n" \
              f"_PANEL_BYTES = {panels.PANEL_BYTES}\n"
    return _import(source, "runtime").__name__


def _package_source(name):
    with open(os.path.join(os.path.dirname(__file__), name)) as file:
        return file.read()


def _bind_panels():
    """Run panels.py's copy in the cache (its C callbacks compiled, or loaded from the cache) and name
    its kernels for LLVM (arignote_few_rows_float32, ..._float64), as ``_bind_blas`` names BLAS's."""
    from llvmlite import binding

    panels = _import(_package_source("panels.py"), "panels")
    for dtype in ("float32", "float64"):
        binding.add_symbol(f"arignote_few_rows_{dtype}", getattr(panels, f"few_rows_{dtype}").address)
    shares.KERNELS_BOUND = True
    return panels


def _bind_blas():
    """Name the BLAS functions runtime.gemm calls (arignote_sgemm, arignote_dgemm) for LLVM: NumPy's
    own library where it can be found (``arignote.backends.blas``)."""
    from llvmlite import binding

    found = blas.entry_points()
    for name in ("sgemm", "dgemm"):
        binding.add_symbol(f"arignote_{name}", found[name])
    return found


# numba's workqueue threading layer (the one this backend uses) aborts the process when two threads
# enter parallel loops at once: a parallel twin runs only while no other thread of the process runs one
_parallel_slot = threading.Lock()


def _twin(plain, parallel, use_parallel, *args):
    """``parallel(*args)`` when ``use_parallel`` and no other thread is inside a parallel twin, else
    ``plain(*args)`` (the same results, on one thread): a thread never waits for another's loop."""
    if use_parallel and _parallel_slot.acquire(blocking=False):
        try:
            return parallel(*args)
        finally:
            _parallel_slot.release()
    return plain(*args)


# ---------------------------------------------------------------------------------------------------
# the program


def _vector_math():
    """vecmath's (scalar op name, dtype) -> function table, once it has configured LLVM (if it can);
    {} when the module is missing or offers neither."""
    global _vectors
    if _vectors is None:
        try:
            from . import vecmath
        except ImportError:
            _vectors = {}
            return _vectors
        enable = getattr(vecmath, "enable", None)
        try:
            if enable is not None:
                enable()
            _vectors = dict(getattr(vecmath, "IMPLEMENTATIONS", {}) or {})
        except Exception:  # a broken optional speed-up must not break compiling
            _vectors = {}
    return _vectors


_vectors = None


class _Fallback:
    """A node computed by the reference backend's NumPy implementation, called between segments."""

    __slots__ = ("node", "impl", "dtypes", "single")

    def __init__(self, node, impl):
        self.node, self.impl = node, impl
        self.dtypes = [np.dtype(o.dtype) for o in node.outputs]
        self.single = len(node.outputs) == 1

    def __call__(self, *args):
        try:
            with np.errstate(all="ignore"):
                result = self.impl(self.node, *args)
        except Exception as error:
            failure = node_error(self.node, error, args)  # a Python op's keeps its type (core/pyop.py)
            failure.arignote_explained = True
            raise failure from error
        if self.single:
            return np.asarray(result, dtype=self.dtypes[0])
        return tuple(np.asarray(r, dtype=d) for r, d in zip(result, self.dtypes))


def _reference_table():
    from arignote.backends.reference.table import IMPLEMENTATIONS

    return IMPLEMENTATIONS


class Program:
    """The executable: the glue ``run(inputs)`` that calls the compiled segments (one for a graph
    whose every op runs inside njit) and returns the list of outputs."""

    def __init__(self, fgraph, profile=False):
        self.fgraph = fgraph
        _version_text()  # sets the threading layer before numba compiles anything
        holding.sweep(_loaded)  # what programs collected since the last one held
        held = holding.holdings(self)  # the modules this program imports, released with it
        plan = plan_of(fgraph)
        # the nodes whose work threads share run from the glue (shares.py): convolutions (their images) and
        # products (their columns) with the BLAS on one core for the whole call (plan.blas_one_core), and
        # the row ops of plan.threads (their rows)
        split = {}
        if shares.threads_for_shares() > 1:
            split.update({node: "its images split between threads (plan.image_threads)" for node in plan.image_threads})
            split.update({node: "its columns split between threads (plan.product_threads)"
                          for node in plan.product_threads})
            split.update({node: "its rows split between threads (plan.threads)" for node in plan.threads
                          if node.op.splits_rows})
        generator = Generator(fgraph, _vector_math(), split=split)
        kernels = []

        def import_kernel(source):
            kernels.append(source)
            return _import_held(source, "kernel", held).__name__

        # Parallel (prange) kernels cost about a second of compile each, so they live in a variant of
        # the program that the glue calls only on large inputs: numba compiles it on that first call.
        # profile: one segment per node (step k is node k), each call timed by the glue (docs/profiling.md)
        module_source, steps = generator.generate(import_kernel, _runtime_module(), split=profile)
        module = _import_held(module_source, "program", held)
        parallel_source = None
        loops = [node for node in plan.threads if isinstance(node.op, ops.Elemwise)]  # row ops: SplitRows
        if loops and steps and all(step[0] == "segment" for step in steps):
            twin = Generator(fgraph, _vector_math(), parallel=loops[:PARALLEL_NODES])
            parallel_source, _ = twin.generate(import_kernel, _runtime_module(), split=profile)
        large = f"max((i.size for i in inputs), default=0) >= {PARALLEL_MIN}"
        namespace = {"_fail": self.failure, "_clock": time.perf_counter_ns, "_twin": _twin}
        if profile and parallel_source is not None:  # each segment has its twin, picked as the plain program does
            twin_module = _import_held(parallel_source, "program", held)
            namespace.update({f"{name}_parallel": getattr(twin_module, name) for _, name, _, _ in steps})
        reference = None
        inputs = [generator.name(v) for v in fgraph.inputs]
        lines, segments = [], 0
        for k, step in enumerate(steps):
            if step[0] == "segment":
                _, name, reads, outs = step
                namespace[name] = getattr(module, name)
                segments += 1
                if f"{name}_parallel" in namespace:
                    lines.append(f"{_tuple(outs)} = _twin({name}, {name}_parallel, _large, {', '.join(reads)})")
                else:
                    lines.append(f"{_tuple(outs)} = {name}({', '.join(reads)})")
            else:
                _, n, why = step
                node = plan.nodes[n]
                if node in split:
                    if node in plan.image_threads:
                        helpers = conv.helpers(generator)
                        namespace[f"R{n}"] = conv.SplitImages(node, sys.modules[helpers], plan.own_rows)
                    elif node in plan.product_threads:
                        helpers = generator.runtime
                        in_place = plan.reuse.get(node) == 0  # a Gemm computed in z's storage
                        namespace[f"R{n}"] = products.SplitColumns(node, sys.modules[helpers], in_place, plan.own_rows)
                    else:
                        helpers = generator.kernel_modules[generator.glue_kernels[n]]
                        namespace[f"R{n}"] = shares.SplitRows(node, sys.modules[helpers].kernel, plan.parallel_min[node])
                    args = ", ".join(generator.name(v) for v in node.inputs)
                    lines.append(f"{generator.name(node.outputs[0])} = R{n}({args})  # node {n}: {py_comment(why)}, "
                                 f"helpers {helpers}")
                    if profile:
                        lines.append(f"_now = _clock(); _ns[{k}] = _now - _then; _then = _now")
                    continue
                reference = reference or _reference_table()
                impl = implementation(reference, node.op)  # an op written in Python: its perform
                if impl is None:
                    raise UnsupportedOpError(f"the numba backend has no implementation of {node.op}")
                namespace[f"R{n}"] = _Fallback(node, impl)
                args = ", ".join(generator.name(v) for v in node.inputs)
                results = _tuple(generator.name(v) for v in node.outputs) if len(node.outputs) > 1 \
                    else generator.name(node.outputs[0])
                lines.append(f"{results} = R{n}({args})"
                             f"  # node {n}: {py_comment(f'{node.op} in NumPy ({why})')}")
            if profile:  # the node's time: its call and the unpacking of its results
                lines.append(f"_now = _clock(); _ns[{k}] = _now - _then; _then = _now")
        outputs = [generator.name(v) for v in fgraph.outputs]
        for var in generator.constants:  # writable C arrays: one numba type whatever the constant's flags
            namespace[generator.name(var)] = np.array(var.data, dtype=var.dtype)
        fast = len(steps) == 1 and steps[0][0] == "segment" and not profile
        if fast:  # all in njit: one call, the inputs as they come
            constants = list(steps[0][2][len(inputs):])
            targets = generator.output_args  # the arrays, made by the glue, that segment0 writes 0-d outputs into
            namespace.update({f"_otype{j}": np.dtype(fgraph.outputs[j].dtype) for j in range(len(targets))})
            namespace["_empty"] = np.empty
            twin = None
            if parallel_source is not None:
                namespace["segment0_parallel"] = _import_held(parallel_source, "program", held).segment0
                twin = ["segment0", "segment0_parallel", large]
            lines = _calling("segment0", ["*inputs"] + constants, targets, twin)
        unpack = f"    {', '.join(inputs)}, = inputs\n" if inputs and not fast else ""
        body = "\n".join("        " + line for line in lines)
        built = "".join(f"#   node {n}: {py_comment(f'{node.op}, built at {node.outputs[0].built_at()}')}\n"
                        for n, node in enumerate(plan.nodes))
        result = f"[{', '.join(outputs)}]"
        if profile:  # profiled(inputs): (the outputs, the seconds of each node); run(inputs): the outputs
            large = f"    _large = {large}\n" if parallel_source is not None else ""
            head = (f"def profiled(inputs):\n{unpack}{large}    _ns = [0] * {len(steps)}\n"
                    "    try:\n        _then = _clock()\n")
            tail = (f"    return {result}, [t * 1e-9 for t in _ns]\n\n\n"
                    "def run(inputs):\n    return profiled(inputs)[0]\n")
        else:
            head = f"def run(inputs):\n{unpack}    try:\n"
            tail = "" if fast else f"    return {result}\n"
        self.glue = (f"# arignote numba backend: {len(plan.nodes)} nodes in {segments} compiled segment(s)"
                     f"{', each timed (profile=True)' if profile else ''}\n{built}{head}{body or '        pass'}\n"
                     f"    except Exception as error:\n        raise _fail(error, inputs) from None\n{tail}")
        if fast:
            self.glue += _fast_glue(fgraph, inputs, constants, targets, twin, namespace)
        path, _ = _write(self.glue, "glue")
        exec(compile(self.glue, path, "exec"), namespace)
        self.run = namespace["run"]
        if split and plan.blas_one_core:  # the BLAS on one core while the shares' threads run
            self.run = _on_one_blas_core(self.run)
            if profile:
                self.run.profiled = _on_one_blas_core(namespace["profiled"])
        if fast:
            self.run.fast = namespace["fast"]
        if profile and not split:
            self.run.profiled = namespace["profiled"]
        self.module = module
        self.source = self.glue + "\n\n" + module_source + (
            f"\n\n# ---- the program for large inputs (prange kernels)\n{parallel_source}" if parallel_source else ""
        ) + "".join(f"\n\n# ---- kernel module\n{k}" for k in dict.fromkeys(kernels))
        self.run.source = self.source

    def failure(self, error, inputs):
        """The exception a failed call raises: the reference backend's own (naming the op, the shapes
        and where the node was built) when it agrees that the inputs are wrong; a MemoryError too (an
        impossible size fails there at once, with the op's name, which compiled code cannot give)."""
        if getattr(error, "arignote_explained", False) or isinstance(error, RecursionError):
            return error
        import numba

        if isinstance(error, numba.core.errors.NumbaError):  # a compile failure, not bad inputs
            return error
        from arignote.backends.reference import ReferenceProgram

        try:
            ReferenceProgram(self.fgraph, _reference_table())(inputs)
        except Exception as reference_error:
            return reference_error
        if isinstance(error, MemoryError):  # the reference had the memory: nothing names the node
            return MemoryError(f"the numba backend ran out of memory ({error}) where the reference backend "
                               "did not")
        match = re.match(r"@(\d+) ", str(error))
        if match is None:
            return RuntimeError(f"the numba backend failed where the reference backend does not: "
                                f"{type(error).__name__}: {error}")
        node = self.fgraph.apply_nodes[int(match.group(1))]
        return node_failure(node, type(error)(str(error)[match.end():]), [])


def _on_one_blas_core(run):
    """``run`` with the BLAS single-threaded while it runs (``blas.one_core``)."""
    def on_one_core(inputs):
        with blas.one_core:
            return run(inputs)
    return on_one_core


def _calling(callee, arguments, targets, twin=None):
    """The glue's lines that run ``callee(*arguments)`` (through ``_twin`` when ``twin`` gives its first
    arguments) and return the list of outputs: those it returns, or, where the segment writes its 0-d
    outputs into arrays made by the glue (``targets``), those arrays."""
    if twin is not None:
        callee, arguments = "_twin", twin + arguments
    if not targets:
        return [f"return list({callee}({', '.join(arguments)}))"]
    made = [f"{t} = _empty((), _otype{j})" for j, t in enumerate(targets)]
    return made + [f"{callee}({', '.join(arguments + targets)})", f"return [{', '.join(targets)}]"]


def _fast_glue(fgraph, names, constants, targets, twin, namespace):
    """``fast(inputs)`` (core/function.py's ``_fast_entry``), the glue of a program wholly in njit:
    None unless each input is exactly an ndarray of its dtype and rank, length 1 on its broadcastable
    axes (what core's own checks let through unchanged), checked inline; else the outputs, as ``run``
    gives them. A program with a parallel twin is called through ``_twin``; any other calls segment0's
    compiled overload for the inputs' numba types (layout, writability) directly: found by their
    fingerprints in ``_entries``, filled by ``_learn`` on the first call of each, so that numba's
    dispatcher does not type the arguments again at each call."""
    namespace["_ndarray"] = np.ndarray
    checks = []
    for k, (var, name) in enumerate(zip(fgraph.inputs, names)):
        namespace[f"_dtype{k}"] = np.dtype(var.dtype)
        checks.append(f"type({name}) is not _ndarray or {name}.dtype is not _dtype{k} or {name}.ndim != {var.ndim}")
        checks += [f"{name}.shape[{d}] != 1" for d, b in enumerate(var.broadcastable) if b]
    lines = [f"{', '.join(names)}, = inputs"] if names else []
    if checks:
        lines += ["if (" + "\n        or ".join(checks) + "):", "    return None"]
    if twin is not None:
        body = _calling("segment0", names + constants, targets, twin)
    else:
        from numba._dispatcher import compute_fingerprint

        entries = namespace["_entries"] = {}
        namespace["_fingerprint"] = compute_fingerprint
        namespace["_learn"] = _learner(namespace["segment0"], entries)
        lines.append("key = (" + "".join(f"_fingerprint({n}), " for n in names) + ")  # the inputs' numba types")
        body = ["entry = _entries.get(key) or _learn(key)"] + _calling("entry", names + constants, targets)
    return ("\n\ndef fast(inputs):  # the inputs as core's checks would let them through, or None\n"
            + "".join(f"    {line}\n" for line in lines) + "    try:\n"
            + "".join(f"        {line}\n" for line in body)
            + "    except Exception as error:\n        raise _fail(error, inputs) from None\n")


def _learner(dispatcher, entries):
    """``learn(key)``: a function that calls ``dispatcher`` (compiling it for the arguments' types if
    need be) and remembers in ``entries[key]`` the compiled overload's entry point for those types
    (numba's ``entry_point``: the call without the dispatcher's typing), or the dispatcher itself when
    it ran an overload of other types (one it converts the arguments to)."""
    import numba

    def learn(key):
        def first(*arguments):
            results = dispatcher(*arguments)
            compiled = dispatcher.overloads.get(tuple(numba.typeof(a) for a in arguments))
            entries[key] = dispatcher if compiled is None else compiled.entry_point
            return results
        return first
    return learn


def _tuple(names):
    return "(" + "".join(f"{n}, " for n in names) + ")"


class NumbaBackend(Backend):
    name = "numba"
    priority = -1  # not the default yet: see the report (the plugin tests expect reference as default)

    def available(self):
        try:
            import numba  # noqa: F401
        except Exception as error:  # not installed, or broken
            return Availability(False, f"numba cannot be imported: {type(error).__name__}: {error}")
        return Availability(True)

    def compile(self, fgraph, profile=False):
        return Program(fgraph, profile).run

    def blas_narrower_than_cpu(self):
        return blas.narrower_than_cpu()  # the BLAS NumPy calls, which the compiled backends share


@hookimpl
def arignote_backends():
    return [NumbaBackend()]
