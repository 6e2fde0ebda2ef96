"""The C backend: one generated C translation unit per FunctionGraph, compiled and loaded through cffi,
cached on disk.

- generator.py turns the graph into one function ``ari_run`` (no Python runs between nodes), carrying
  out the graph's plan (core/plan.py: buffer lifetimes, in-place reuse, which loops take threads);
  table.py is its one table from op to C (``SCALAR``: elementwise ops as C expressions, fused into
  single loops; ``EMIT``: every op to the function writing its block), the emitters grouped by op
  family: elemwise.py, reductions.py, shapes.py, indexing.py, products.py, nnet.py, conv.py, pool.py,
  random.py, loops.py (Scan) and branches.py (IfElse), whose inner graphs are static functions of the
  same program.
- runtime.h is what every program includes: arrays and buffers, threads, BLAS (ari_matmul), the scalar
  functions C spells differently from NumPy.
- build.py compiles (``-I`` this folder) and keeps modules in ``ARIGNOTE_CACHE_DIR/c/<key>/``,
  checksummed, published by atomic rename.

``f.backend_source`` shows the generated C, commented with the graph node each block came from.
Registered through the entry point ``c`` (pyproject.toml); every op of the vocabulary has a C
implementation.
"""

import threading

import numpy as np

from arignote.core.errors import describe_node, verbose_detail
from arignote.core.plan import plan_of
from arignote.core.plugins import Availability, Backend, hookimpl

from .. import blas
from . import build, python_ops

ERRORS = {1: ValueError, 2: IndexError, 3: MemoryError}
ERR_SIZE = 2048  # bytes of a message (runtime.h: ARI_ERR)


def _blas_pointers(ffi):
    """sgemm, dgemm, sgemv, dgemv, whether their integers are 64-bit, and the function that makes the
    BLAS single-threaded for a while (NULL when it cannot) (``arignote.backends.blas``)."""
    found = blas.entry_points()
    return ([ffi.cast("void *", found[n]) for n in ("sgemm", "dgemm", "sgemv", "dgemv")] + [int(found["ilp64"])]
            + [ffi.cast("void *", found["solo"] if found["solo_sets_threads"] else 0)])


SMALL = 1 << 16  # outputs up to this many bytes are copied into a NumPy array; larger ones are wrapped
KEPT = -2  # ari_call's code for a call that left outputs in the program's buffers (runtime.h: ARI_KEPT)


class CProgram:
    """The executable. A call hands C the address of the list of input arrays (``id``): C reads the
    arrays' data, shapes and strides itself (``ari_items``, ``ari_from_numpy``), runs the program, writes
    the output shapes into ``shapes`` and fills the arrays made before the call: every 0-d output's, and
    each small output's in the shape it had in the last call (``guess``). Other small outputs are then
    copied into NumPy arrays (``ari_collect``), large ones wrapped without a copy and freed with the
    array. Inputs of another type, dtype or with odd strides take the slow path."""

    def __init__(self, fgraph, source, consts, module, compiled_now=False):
        self.fgraph = fgraph
        self.compiled_now = compiled_now  # False when the program came from the cache
        self.source = source
        self.ffi, self.lib = module.ffi, module.lib
        self.module = module  # the library stays loaded while this program lives (build.Module)
        ffi = self.ffi
        self.lib.ari_set_blas(*_blas_pointers(ffi))
        self.lib.ari_set_types(id(np.ndarray), id(list), id(tuple))
        self.nin, nout = len(fgraph.inputs), len(fgraph.outputs)
        self.consts = [np.ascontiguousarray(c.data) for c in consts]
        # one descriptor more than the inputs and constants: a profiled program's timers
        self.ins = ffi.new("arr_t[]", self.nin + len(self.consts) + 1)
        self.outs = ffi.new("arr_t[]", max(1, nout))
        self.dest = ffi.new("intptr_t[]", max(1, nout))
        self.shapes = np.zeros((max(1, nout), 16), np.int64)
        self.shapes_ptr = ffi.cast("int64_t *", ffi.from_buffer(self.shapes))
        self.sizes = np.zeros(max(1, nout), np.int64)
        self.sizes_ptr = ffi.cast("int64_t *", ffi.from_buffer(self.sizes))
        self.err = ffi.new(f"char[{ERR_SIZE}]")
        self.where = ffi.new("int *")
        self.lock = threading.Lock()
        self.blas_one_core = plan_of(fgraph).blas_one_core
        # what every call holds: the lock (the descriptors are shared by every call of this program, and
        # cffi releases the GIL during the C call) and, where the plan says so, the BLAS on one core
        self.held = _Both(self.lock, blas.one_core) if self.blas_one_core else self.lock
        self.in_place = plan_of(fgraph).updates_in_place  # output -> the input it is computed in
        blas.entry_points()  # (sets blas.one_core's function)
        self.out_types = [(np.dtype(v.dtype), v.ndim, np.dtype(v.dtype).itemsize) for v in fgraph.outputs]
        self.out_dtypes = [dtype for dtype, _, _ in self.out_types]
        # the shape each output's array is made in before a call, for ari_call to fill (None: none made):
        # () for a 0-d output; a small output's shape in the last call, which the next one mostly repeats
        self.guess = [() if v.ndim == 0 and j not in self.in_place else None for j, v in enumerate(fgraph.outputs)]
        self.all_guessed = None not in self.guess
        self.scalar_dtypes = [np.dtype(v.dtype) for v in fgraph.outputs if v.ndim == 0]
        self.units = [()] * len(self.scalar_dtypes)
        self.shape_rows = [self.shapes[j, :nd] for j, (_, nd, _) in enumerate(self.out_types)]
        self.in_dtypes = [np.dtype(v.dtype) for v in fgraph.inputs]
        for k, c in enumerate(self.consts):
            self._describe(self.ins[self.nin + k], c)
        self.python = python_ops.bind(self, consts)  # the callbacks of its ops written in Python, if any
        self._call = self._caller()
        self.fast = self._fast_entry(consts)

    def _describe(self, d, a):
        d.data = self.ffi.cast("char *", a.__array_interface__["data"][0])
        nd = a.ndim
        if nd:
            d.shape[0:nd] = a.shape
            isz = a.itemsize
            d.strides[0:nd] = [s // isz for s in a.strides]

    def __call__(self, inputs):
        with self.held:
            return self._call(inputs)

    def _fast_entry(self, consts):
        """``fast(values)`` (core/function.py): the outputs of a call whose inputs C takes as they are,
        else None (the Function then checks and converts them, and calls the program as usual). A program
        whose outputs are all 0-d and that needs no lock for anything else (an op written in Python, the
        BLAS on one core) calls ``ari_fast``: no lock, one C call of two arguments; others ``ari_call``
        under the lock."""
        from .generator import has_fast_entry

        if self.python is not None or self.blas_one_core or not has_fast_entry(self.fgraph, consts):
            return self._fast_locked
        call, descriptors, failed, empty = self.lib.ari_fast, self.ins + self.nin, self._fast_failed, np.empty
        if len(self.scalar_dtypes) == 1:  # the list ari_fast reads: the 0-d outputs' arrays, then the inputs
            dtype, = self.scalar_dtypes

            def fast(values):
                made = [empty((), dtype), values]
                rc = call(descriptors, id(made))
                if rc:
                    return failed(rc)
                del made[1]
                return made
            return fast
        units, dtypes = self.units, self.scalar_dtypes

        def fast(values):
            made = list(map(empty, units, dtypes))
            made.append(values)
            rc = call(descriptors, id(made))
            if rc:
                return failed(rc)
            del made[-1]
            return made
        return fast

    def _fast_failed(self, rc):
        """None for -1 (an input C does not take as it is), else raise the error ari_fast left in this
        thread's buffers."""
        if rc == -1:
            return None
        with self.lock:
            self.lib.ari_take_error(self.err, self.where)
            raise self._error(rc)

    def _fast_locked(self, inputs):
        with self.held:
            return self._call(inputs, slow=False)

    def _caller(self):
        """``_call(inputs, slow=True)``, what every call runs under the program's lock, with what it reads
        bound once (a call of a small function costs about as much as these lookups)."""
        call = self.lib.ari_call
        state = self.state = self.ffi.new("ari_state *", (self.ins, self.outs, self.err, self.where, self.shapes_ptr))
        guess, dtypes, in_place, empty = self.guess, self.out_dtypes, self.in_place.items(), np.empty

        def _call(inputs, slow=True):
            # C reads the arrays from `inputs` and fills the outputs' arrays made here: both lists stay
            # alive (referenced from this frame) for the whole call. -1: inputs C does not take as they
            # are, run by the slow path (None when not ``slow``: fast's caller checks and converts them)
            if self.all_guessed:
                made = list(map(empty, guess, dtypes))
            else:
                made = [None if shape is None else empty(shape, dtype) for shape, dtype in zip(guess, dtypes)]
            rc = call(state, id(inputs), id(made))
            if rc == 0:
                for j, k in in_place:
                    made[j] = inputs[k]
                return made
            if rc == KEPT:
                return self._collect(made, inputs)
            if rc == -1:
                return self._slow(inputs) if slow else None
            raise self._error(rc)
        return _call

    def _slow(self, inputs):
        keep = []
        for k, (a, dtype) in enumerate(zip(inputs, self.in_dtypes)):
            a = np.asarray(a, dtype=dtype)
            if any(s % a.itemsize for s in a.strides) or not a.dtype.isnative:
                a = np.ascontiguousarray(a, dtype=dtype.newbyteorder("="))
            keep.append(a)
            self._describe(self.ins[k], a)
        rc = self.lib.ari_run(self.ins, self.outs, self.err, self.where)
        if rc:
            raise self._error(rc)
        for j, (d, (_, nd, _)) in enumerate(zip(self.outs, self.out_types)):
            if nd:
                self.shapes[j, :nd] = list(d.shape[0:nd])
        return self._collect([None] * len(self.out_types), keep)

    def _collect(self, made, inputs):
        """The outputs as NumPy arrays: those of ``made`` (one item per output) that C delivered into
        (its buffer then NULL) as they are; other small ones copied into fresh arrays (``ari_collect``),
        large ones wrapped and freed with the array. A small output's shape is the next call's guess."""
        results, dest, sizes, outs, null = [], self.dest, self.sizes, self.outs, self.ffi.NULL
        small = False
        for j, (dtype, nd, isz) in enumerate(self.out_types):
            if j in self.in_place:  # an update computed in its shared variable's storage
                dest[j] = 0
                results.append(inputs[self.in_place[j]])
                continue
            if made[j] is not None and outs[j].data == null:
                dest[j] = 0
                results.append(made[j])
                continue
            shape = tuple(self.shape_rows[j].tolist())
            nbytes = isz
            for s in shape:
                nbytes *= s
            self.guess[j] = shape if nbytes <= SMALL else None
            if nbytes <= SMALL:
                array = np.empty(shape, dtype)
                dest[j] = id(array)
                sizes[j] = nbytes
                small = True
            else:
                dest[j] = 0
                owner = self.ffi.gc(outs[j].data, self.module.free)  # holds the library
                array = np.frombuffer(self.ffi.buffer(owner, nbytes), dtype).reshape(shape)
            results.append(array)
        self.all_guessed = None not in self.guess
        if small:
            self.lib.ari_collect(dest, outs, len(results), self.sizes_ptr)
        return results

    def _error(self, rc):
        message = self.ffi.string(self.err).decode(errors="replace")
        index = self.where[0]
        if self.python is not None:  # perform's own exception, or the arrays it made to let go of
            if rc == python_ops.PYTHON_FAILED:
                return self.python.take_failure(message, index, self.fgraph.apply_nodes)
            self.python.made.clear()
        kind = ERRORS.get(rc, RuntimeError)
        if 0 <= index < len(self.fgraph.apply_nodes):  # the op and where it was built (what a Composite fuses)
            node = self.fgraph.apply_nodes[index]
            return kind(f"{describe_node(node)}: {message}{verbose_detail(node)}")
        return kind(message)


class _Both:
    """Two context managers entered as one, the first first (cheaper per call than an ExitStack)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __enter__(self):
        self.first.__enter__()
        try:
            self.second.__enter__()
        except BaseException:
            self.first.__exit__(None, None, None)
            raise

    def __exit__(self, *exc):
        try:
            self.second.__exit__(*exc)
        finally:
            self.first.__exit__(*exc)
        return False


class ProfiledCProgram(CProgram):
    """A program generated with a timer around each node (generator.generate(profile=True)): C adds
    each node's nanoseconds into ``node_ns``, handed to it as the descriptor after the constants."""

    def __init__(self, fgraph, source, consts, module, compiled_now=False):
        super().__init__(fgraph, source, consts, module, compiled_now)
        self.node_ns = np.zeros(max(1, len(fgraph.apply_nodes)), np.int64)
        self.ins[self.nin + len(self.consts)].data = self.ffi.cast("char *", self.node_ns.ctypes.data)

    def profiled(self, inputs):
        """(the outputs, the seconds of each node of ``fgraph.apply_nodes`` in this call), run as a plain
        call runs (the BLAS on one core where the plan says so: without, a LeNet step took 26 ms, not 11)."""
        with self.held:
            self.node_ns[:] = 0
            results = self._call(inputs)
            return results, self.node_ns[: len(self.fgraph.apply_nodes)] * 1e-9


class CBackend(Backend):
    name = "c"
    # above reference (0): the default wherever a C compiler works (available() says so)
    priority = 2

    def available(self):
        try:
            import importlib.util

            import cffi  # noqa: F401
        except ImportError as error:
            return Availability(False, f"{error.name} is not installed (pip install cffi scipy)")
        if importlib.util.find_spec("scipy") is None:
            return Availability(False, "scipy is not installed (pip install scipy): its BLAS computes products")
        why = build.probe()
        return Availability(why is None, why or "")

    def compile(self, fgraph, profile=False):
        from . import generator

        source, consts = generator.generate(fgraph, profile=profile)
        module, compiled_now = build.load_or_build(source)
        return (ProfiledCProgram if profile else CProgram)(fgraph, source, consts, module, compiled_now)

    def blas_narrower_than_cpu(self):
        return blas.narrower_than_cpu()  # the BLAS NumPy calls, which the compiled backends share


@hookimpl
def arignote_backends():
    return [CBackend()]
