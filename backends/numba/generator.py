"""From a FunctionGraph to the Python source of one njit function (a "segment") per run of nodes.

Every node becomes a few lines of the segment, commented with the node: the emitter that ``table.py``
lists for its op class writes them, and the kernels they call (one module per kernel, named by a hash
of its source, so that graphs sharing a kernel share its compiled and cached code). A node that runs
in NumPy (``table.python_reason``) ends the segment; the Python glue calls it between two segments.
Shapes are dynamic; ranks, dtypes and broadcastable patterns are static.

The generator decides nothing about the graph: fusion is in the graph (Composite, FusedReduce), the
buffers an elementwise node may write into are ``plan.reuse``, the loops worth a ``prange`` twin are
given (``parallel``: the driver takes them from ``plan.threads``).

The small functions at the top write source text from parameters; emitters use them.
"""

import numpy as np

from arignote.core.errors import UnsupportedOpError
from arignote.core.graph import Constant
from arignote.core.plan import plan_of
# Text not written by arignote (ops' names, where the user built a node) reaches generated source only
# through core's renderers: a comment is ``# `` + py_comment(text) (core/sourcetext.py)
from arignote.core.sourcetext import py_comment

HEADER = ["import math", "import numpy as np", "import numba as _nb"]


def st(dtype):
    """The NumPy scalar type of ``dtype`` as numba source."""
    name = np.dtype(dtype).name
    return "np.bool_" if name == "bool" else f"np.{name}"


def cast(expr, from_dtype, to_dtype):
    """``expr`` converted to ``to_dtype`` (as is when it has that dtype already)."""
    return expr if np.dtype(from_dtype) == np.dtype(to_dtype) else f"{st(to_dtype)}({expr})"


def literal(value, dtype):
    """A scalar constant of ``dtype`` (inf and NaN included) as numba source."""
    item = np.asarray(value).item()
    text = f"float({str(item)!r})" if isinstance(item, float) and not np.isfinite(item) else repr(item)
    return f"{st(dtype)}({text})"


def tup(items):
    """A tuple display of ``items`` (one element keeps its comma)."""
    return "(" + "".join(f"{i}, " for i in items) + ")"


def product(items):
    return " * ".join(items) if items else "1"


def transpose(x, perm):
    """A view of ``x`` with its axes in the order ``perm``: ``.T`` for a matrix, else as_strided
    (numba's ndarray.transpose costs seconds of compile time)."""
    if list(perm) == list(range(len(perm))):
        return x
    if list(perm) == [1, 0]:
        return f"{x}.T"
    return (f"np.lib.stride_tricks.as_strided({x}, {tup(f'{x}.shape[{p}]' for p in perm)}, "
            f"{tup(f'{x}.strides[{p}]' for p in perm)})")


def nest(sizes, body, order=None, parallel=False):
    """Loops i<d> over ``range(sizes[d])`` for each axis d of ``order`` (default: every axis in turn,
    the first with ``prange`` when ``parallel``) around the lines of ``body``."""
    lines, indent = [], ""
    for position, d in enumerate(order if order is not None else range(len(sizes))):
        loop = "_nb.prange" if parallel and position == 0 else "range"
        lines.append(f"{indent}for i{d} in {loop}({sizes[d]}):")
        indent += "    "
    return lines + [indent + line for line in body]


def function(name, args, lines, parallel=False, fastmath=False, kernel=True):
    """An njit function's source; an entry of ``lines`` may hold several lines."""
    flags = (", parallel=True" if parallel else "") + (", fastmath={'reassoc'}" if fastmath else "")
    # kernels are called from the segments only: no CPython or C-callback wrappers to compile
    flags += ", no_cpython_wrapper=True, no_cfunc_wrapper=True" if kernel else ""
    body = ["    " + part for line in lines for part in line.split("\n")]
    return "\n".join([f"@_nb.njit(cache=True, error_model='numpy', nogil=True{flags})",
                      f"def {name}({', '.join(args)}):"] + body)


class Kernel:
    """One kernel module: ``kernel`` (and ``kernel_parallel``, its prange twin, when there is one),
    with the scalar helpers it calls defined above it."""

    def __init__(self, call, text, helpers, twin):
        self.call, self.text, self.helpers, self.twin = call, text, helpers, twin

    def source(self, header):
        helpers = "".join(h.strip() + "\n\n" for h in self.helpers)
        return "\n".join(header) + "\n\n\n" + helpers + "\n" + self.text + "\n"


class Generator:
    """Renders the module: one kernel module per loop nest (imported by the module), and the segments.
    ``parallel``: the elementwise nodes whose kernels get a prange twin (called on large inputs);
    ``split``: {node: why} for the nodes that the glue runs, their work shared out between threads
    (shares.py)."""

    def __init__(self, fgraph, vector_math=None, parallel=(), prefix=None, targets=None, target_args=(),
                 split=None):
        from . import table  # the emitters import this module

        self.table = table
        self.fgraph = fgraph
        self.plan = plan_of(fgraph)
        self.vector_math = vector_math or {}  # (scalar op class name, dtype name) -> vecmath function
        self.parallel = set(parallel)
        self.split = split or {}
        self.glue_kernels = {}  # node index -> the Kernel of a split node whose kernel the glue calls
        self.kernel_modules = {}  # Kernel -> the name of its module, once imported
        self.prefix = prefix  # an inner graph's labels start with its ops' ("Scan > ": loops.py)
        self.targets = targets or {}  # var -> the argument an elementwise node may write it into (loops.py)
        self.target_args = list(target_args)  # an inner segment's last arguments: the targets (loops.py)
        self.kernels = []
        self.names = {}
        self.constants = []  # the Constant variables, passed to the segments as arguments
        self.hidden_reads = {}  # node -> constants of its inner graphs, passed to it as arguments
        self.import_kernel, self.runtime = None, None  # set by generate (loops.py imports inner graphs)
        self.output_args = []  # set by generate: the arrays a program's only segment writes its 0-d outputs into
        for var in fgraph.inputs:
            self.name(var)

    def name(self, var):
        if var not in self.names:
            if isinstance(var, Constant):
                self.names[var] = f"c{len(self.names)}"
                self.constants.append(var)
            else:
                self.names[var] = f"v{len(self.names)}"
        return self.names[var]

    def label(self, n, node):
        """The prefix of a compiled error message: the glue reads the node's index back from it (an
        inner graph's has none: its loop's module is shared wherever the loop sits)."""
        return f"@{n} {type(node.op).__name__}" if self.prefix is None else f"{self.prefix}{type(node.op).__name__}"

    def kernel(self, n, node, args, lines, note="", fastmath=False, twin=None, helpers=()):
        """Add node ``n``'s kernel: ``kernel(args)`` running ``lines`` and, when ``twin`` holds lines,
        ``kernel_parallel`` running them with ``parallel=True``; both commented with the node's op and
        ``note``. Returns the name the segment calls it by (``node<n>``; the twin: ``node<n>_parallel``).
        The kernel of a node the glue runs (``split``) gets a Python wrapper."""
        comment = f"# {py_comment(f'{node.op}{note}')}"
        glue = node in self.split
        texts = [f"{comment}\n{function('kernel', args, lines, fastmath=fastmath, kernel=not glue)}"]
        if twin is not None:
            texts.append(f"{comment} (parallel twin, for large arrays)\n"
                         + function("kernel_parallel", args, twin, parallel=True))
        call = f"node{n}"
        self.kernels.append(Kernel(call, "\n\n\n".join(texts), list(helpers), twin is not None))
        if glue:
            self.glue_kernels[n] = self.kernels[-1]
        return call

    # -- one node --------------------------------------------------------------------------------

    def node(self, n, node):
        emit = self.table.EMITTERS.get(type(node.op))
        if emit is None:
            raise UnsupportedOpError(f"the numba backend has no implementation of {node.op}")
        return emit(self, n, node, [self.name(v) for v in node.inputs], [self.name(v) for v in node.outputs])

    # -- the segments ------------------------------------------------------------------------------

    def generate(self, import_kernel, runtime="arignote.backends.numba.runtime", inner=False, split=False):
        """(module source, steps): each step is ("segment", name, argument names, result names) or
        ("python", node index, why). ``import_kernel(source)`` makes a kernel module importable and
        returns its name; ``runtime`` names the module of helpers the generated code imports as ``_rt``.
        ``inner``: an inner graph's module (loops.py): one segment, called from njit code only, whose
        arguments are the inputs, the constants, then the targets' names. ``split``: one step per node
        (step k is node k), so that the glue can time each node (profiling)."""
        self.import_kernel, self.runtime = import_kernel, runtime
        nodes = self.plan.nodes
        steps, lines, produced = [], [], []
        for n, node in enumerate(nodes):
            why = self.table.python_reason(node)
            if node in self.split:
                why = self.split[node]
                if node.op.splits_rows:  # its kernel, called by the glue (the lines to call it are not needed)
                    self.node(n, node)
            if why is not None:
                if lines:
                    steps.append(("segment", lines, produced))
                    lines, produced = [], []
                steps.append(("python", n, why))
                for var in node.inputs + node.outputs:
                    self.name(var)
                continue
            # where the user built the node is listed by the glue: kept out of this source, identical
            # graphs built in different places share one compiled (and cached) module
            lines.append(f"# node {n}: {py_comment(node.op)}")
            lines += self.node(n, node)
            produced += node.outputs
            if split:
                steps.append(("segment", lines, produced))
                lines, produced = [], []
        if lines or inner:
            steps.append(("segment", lines, produced))
        steps = self._arguments(steps)
        if not inner and not split and len(steps) == 1 and steps[0][0] == "segment" and all(
                v.ndim == 0 for v in self.fgraph.outputs):
            # its caller makes the outputs' arrays: numba makes no Python array of its own (the most
            # expensive part of a call of a small program)
            self.output_args = [f"_out{j}" for j in range(len(self.fgraph.outputs))]
        header = HEADER + [f"import {runtime} as _rt"]
        if self.vector_math:
            header.append("from arignote.backends.numba import vecmath as _vm")
        source = ["# arignote numba backend: the compiled part of the program"] + header
        for kernel in self.kernels:
            module = self.kernel_modules[kernel] = import_kernel(kernel.source(header))
            twin = f", kernel_parallel as {kernel.call}_parallel" if kernel.twin else ""
            source.append(f"from {module} import kernel as {kernel.call}{twin}")
        source.append("\n")
        named = []
        for k, step in enumerate(steps):
            if step[0] == "python":
                named.append(step)
                continue
            _, lines, reads, outs = step
            name = f"segment{k}"
            reads = reads + self.target_args if inner else reads
            if self.output_args:
                ending = [f"{a}[()] = {o}[()]" for a, o in zip(self.output_args, outs)]
                source.append(function(name, reads + self.output_args, lines + ending, kernel=False) + "\n\n")
            else:
                source.append(function(name, reads, lines + [f"return {tup(outs)}"], kernel=inner) + "\n\n")
            named.append(("segment", name, reads, outs))
        return "\n".join(source), named

    def _arguments(self, steps):
        """The steps with what each segment reads (its arguments) and what later steps or the outputs
        need from it (its results), as names."""
        fgraph, nodes = self.fgraph, self.plan.nodes
        needed_after = set(fgraph.outputs)
        result = []
        for step in reversed(steps):
            if step[0] == "python":
                needed_after.update(nodes[step[1]].inputs)
                result.append(step)
                continue
            _, lines, produced = step
            produced_set = set(produced)
            outs = [v for v in dict.fromkeys(produced) if v in needed_after]
            reads = []
            for node in nodes:
                if node.outputs[0] in produced_set:
                    reads += [v for v in node.inputs + self.hidden_reads.get(node, []) if v not in produced_set]
            reads = list(dict.fromkeys(reads))
            needed_after -= produced_set
            needed_after.update(reads)
            result.append(("segment", lines, [self.name(v) for v in reads], [self.name(v) for v in outs]))
        steps = result[::-1]
        if steps and steps[0][0] == "segment":  # the first segment takes every input, in order
            _, lines, reads, outs = steps[0]
            inputs = [self.name(v) for v in fgraph.inputs]
            steps[0] = ("segment", lines, inputs + [r for r in reads if r not in inputs], outs)
        if len(steps) == 1 and steps[0][0] == "segment":  # ... and the only one returns every output
            _, lines, reads, _ = steps[0]
            outs = [self.name(v) for v in fgraph.outputs]
            passed = [v for v in fgraph.outputs if isinstance(v, Constant) and self.name(v) not in reads]
            steps[0] = ("segment", lines, reads + list(dict.fromkeys(self.name(v) for v in passed)), outs)
        return steps
