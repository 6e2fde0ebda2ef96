"""Ops written in Python (core/pyop.py: a ``perform`` method, ``as_op``) in the C backend: the generated
program calls back into Python for such a node, wherever it sits (inside a loop's step or a branch too).

Why a callback rather than cutting the program into compiled segments with Python between them: the
node may sit inside a Scan's step, which runs in C; one C program keeps the plan's buffer lifetimes as
they are; and a callback costs a few microseconds, as a segment's return to Python would.

- ``emit_python`` writes the node's block. The callback's address reaches the block as a constant
  argument of the program (a ``PerformSlot``, one per node), so it is passed down to inner graphs like
  any constant, and programs of the same graph share one compiled module (the address is not in the
  source). The block hands the input descriptors to the callback; the callback writes the shape and
  address of each (C-contiguous) array perform made into the output descriptors; the block allocates
  the outputs with the program's allocator (``alloc``: buffers, words, destinations), copies them, and
  calls the callback once more with NULL so that Python lets go of its arrays.
- ``bind`` (called by ``CProgram``) makes the callbacks with cffi (``ffi.callback``: cffi takes the GIL,
  which the program's call released) and writes their addresses into the program's constants.
- The callback copies each input into an array of its own (perform may keep it, the program's buffer
  may not live), runs ``run_perform`` (its checks of the outputs' types), and on any exception keeps
  it, writes its message into ``err`` and returns 1: the block ends the program with ``PYTHON_FAILED``
  and ``CProgram`` raises the kept exception (of perform's own type, naming the node; inside a loop,
  prefixed with the loop's node and step).
"""

import numpy as np

from arignote.core.errors import describe_node
from arignote.core.graph import Constant
from arignote.core.pyop import node_error, run_perform, same_type
from arignote.core.types import TensorType

from .ctext import comment, ct

PYTHON_FAILED = 4  # the return code of a program whose Python op failed (1-3: runtime.h's FAIL codes)
SIGNATURE = "int(arr_t *, char *)"


class PerformSlot(Constant):
    """A constant argument of the program that holds, when it runs, the address of the callback that
    runs ``node``'s perform (written by ``bind``; 0 in the graph)."""

    def __init__(self, node):
        super().__init__(TensorType("int64", ()), 0, name=f"perform of {node.op}")
        self.node = node


def emit_python(g, node, index, ins, outs):
    slot = g.name(PerformSlot(node))
    nin = len(ins)
    call = "perform(NULL, err);"
    lines = [f"/* {comment(node.op)} is written in Python: its perform is called back, the outputs copied */",
             f"arr_t pa[{nin + len(outs)}];  /* the inputs, then the outputs perform made */"]
    lines += [f"pa[{k}] = {x};" for k, x in enumerate(ins)]
    lines.append(f"int (*perform)(arr_t *, char *) = (int (*)(arr_t *, char *))*(const intptr_t *){slot}.data;")
    lines.append(f"if (perform(pa, err)) {{ *where = -1; rc = {PYTHON_FAILED}; goto done; }}  /* err: its message */")
    for j, (var, v) in enumerate(zip(node.outputs, outs)):
        lines.append(f"{v} = pa[{nin + j}];  /* the shape perform gave output {j} */")
        lines.append(g.alloc(var, index, cleanup=call))
        lines.append(f"ari_copy(&{v}, &pa[{nin + j}], {var.ndim}, sizeof({ct(var.dtype)}));")
    lines.append(call + "  /* Python lets go of the arrays perform made */")
    return "\n".join(lines)


def _read(ffi, d, dtype, nd):
    """A copy, owned by NumPy, of the array the descriptor ``d`` describes (strides in elements)."""
    shape, strides = tuple(d.shape[0:nd]), tuple(d.strides[0:nd])
    if 0 in shape:
        return np.zeros(shape, dtype)
    low = sum(s * (n - 1) for s, n in zip(strides, shape) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(strides, shape) if s > 0)
    size = dtype.itemsize
    base = np.frombuffer(ffi.buffer(d.data + low * size, (high - low + 1) * size), dtype)
    return np.lib.stride_tricks.as_strided(base[-low:], shape, [s * size for s in strides]).copy()


class Callbacks:
    """The callbacks of one program's Python nodes, the arrays the last perform made (until the
    program has copied them) and the exception of a failed one."""

    def __init__(self, ffi):
        from . import ERR_SIZE

        self.ffi, self.err_size = ffi, ERR_SIZE
        self.made = {}  # slot -> arrays perform made, until the program has copied them
        self.failure = None
        self.keep = []  # the cffi callbacks: alive as long as the program

    def make(self, node, slot):
        ffi, nin = self.ffi, len(node.inputs)
        types = [(np.dtype(v.dtype), v.ndim) for v in node.inputs]

        def perform(args, err):
            if args == ffi.NULL:
                self.made.pop(slot, None)
                return 0
            values = []
            try:
                values = [_read(ffi, args[k], dtype, nd) for k, (dtype, nd) in enumerate(types)]
                made = []
                for j, result in enumerate(run_perform(node, values)):
                    result = result if result.flags.c_contiguous else result.copy()
                    d = args[nin + j]
                    d.data = ffi.cast("char *", result.ctypes.data)
                    d.shape[0:result.ndim] = result.shape
                    d.strides[0:result.ndim] = [s // result.itemsize for s in result.strides]
                    made.append(result)
                self.made[slot] = made
                return 0
            except BaseException as error:  # KeyboardInterrupt too: raised again once C has returned
                self.fail(node, error, values, err)
                return 1

        def unexpected(kind, error, traceback):  # an error of the handler itself: still no silent result
            self.failure = error
            return 1

        callback = ffi.callback(SIGNATURE, perform, error=1, onerror=unexpected)
        self.keep.append(callback)
        return int(ffi.cast("intptr_t", callback))

    def fail(self, node, error, values, err):
        failure = node_error(node, error, values) if isinstance(error, Exception) else error
        if failure is not error:
            failure.__cause__ = error
        self.failure = failure
        message = str(failure).encode(errors="replace")[: self.err_size - 1]
        self.ffi.memmove(err, message + b"\0", len(message) + 1)

    def take_failure(self, message, where, nodes):
        """The exception to raise for a program that returned PYTHON_FAILED: the kept one when the
        Python node is a node of ari_run (``where`` -1), else one of its type naming the node of
        ari_run (a loop, a branch) that holds it, with the C message (step, inner node, perform's)."""
        failure, self.failure = self.failure, None
        self.made.clear()
        if failure is None:
            return RuntimeError(message)
        if not isinstance(failure, Exception) or not 0 <= where < len(nodes):
            return failure
        wrapped = same_type(failure, f"{describe_node(nodes[where])}: {message}")
        wrapped.__cause__ = failure
        return wrapped


def bind(program, consts):
    """The Callbacks of ``program`` (a CProgram), their addresses written into its PerformSlot
    constants; None when it has no Python node."""
    slots = [k for k, c in enumerate(consts) if isinstance(c, PerformSlot)]
    if not slots:
        return None
    callbacks = Callbacks(program.ffi)
    for k in slots:
        address = np.array(callbacks.make(consts[k].node, k), dtype=np.int64)
        program.consts[k] = address
        program._describe(program.ins[program.nin + k], address)
    return callbacks
