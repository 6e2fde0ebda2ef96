"""From a FunctionGraph to the Python source of one njit function (a "segment") per run of nodes.

Every node becomes a few lines of the segment, commented with the node and where it was built:
elementwise nodes and fused Composites become loop nests in kernels of their own (njit, defined
just above the segment, so the segment reads as calls); reductions are loop nests too, fused with
the elementwise node they reduce when nothing else needs it; matrix products call NumPy's BLAS (``runtime.gemm``); the
ops whose logic does not depend on the graph call helpers compiled once (``runtime.py``).

A node ``emit`` cannot do inside njit (see ``PYTHON_ONLY``) ends the segment; the Python glue calls it
between two segments. Shapes are dynamic; ranks, dtypes and broadcastable patterns are static.
"""

import re

import numpy as np

from arignote.core import linalg, nnet, ops, random
from arignote.core.graph import Constant

from . import table as T

PARALLEL_MIN = 1 << 20  # elements: larger elementwise results are computed with prange
# Below about a million elements threads cost more than they save: numba's workqueue layer (see
# _version_text) takes some 250 us to start and join a parallel loop on two cores, as long as a
# 500x500 float32 exp on one core (a 2000x2000 one: 1.0 ms with prange, 1.6 ms without).
# A prange twin costs a second compile of its loop (parfors: about a second each), so only the
# elementwise nodes where threads pay off get one: those with transcendental functions (memory-bound
# arithmetic gains little from a second core), at most PARALLEL_NODES per graph, the costliest first.
PARALLEL_NODES = 2
COSTLY = {"Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Expm1", "Log1p", "Log2", "Log10", "Sin", "Cos", "Tan",
          "Arcsin", "Arccos", "Arctan", "Sinh", "Cosh", "Arctanh", "Erf", "Erfc", "Pow", "Softplus"}


def st(dtype):
    """The NumPy scalar type of ``dtype`` as numba source."""
    name = np.dtype(dtype).name
    return "np.bool_" if name == "bool" else f"np.{name}"


def _cast(expr, from_dtype, to_dtype):
    return expr if np.dtype(from_dtype) == np.dtype(to_dtype) else f"{st(to_dtype)}({expr})"


def _literal(value, dtype):
    item = np.asarray(value).item()
    text = f"float({str(item)!r})" if isinstance(item, float) else repr(item)
    return f"{st(dtype)}({text})"


def _tuple(items):
    return "(" + "".join(f"{i}, " for i in items) + ")"


def _transpose(x, perm):
    """A view of ``x`` with its axes in the order ``perm``: ``.T`` for a matrix, else as_strided
    (numba's ndarray.transpose costs seconds of compile time)."""
    if list(perm) == list(range(len(perm))):
        return x
    if list(perm) == [1, 0]:
        return f"{x}.T"
    return (f"np.lib.stride_tricks.as_strided({x}, {_tuple(f'{x}.shape[{p}]' for p in perm)}, "
            f"{_tuple(f'{x}.strides[{p}]' for p in perm)})")


def _product(items):
    return " * ".join(items) if items else "1"


def scalar_steps(node):
    """The scalar body of an elementwise node: (inner nodes, inner inputs, inner outputs)."""
    if isinstance(node.op, ops.Composite):
        body = node.op.fgraph
        return body.apply_nodes, body.inputs, body.outputs
    return [node], node.inputs, node.outputs


def fusable(node):
    """Whether every scalar op of an elementwise node has a template."""
    return isinstance(node.op, ops.Elemwise) and all(
        isinstance(T.IMPLEMENTATIONS.get(type(inner.op)), T.Scalar) for inner in scalar_steps(node)[0])


REDUCTIONS = (ops.Sum, ops.Mean, ops.Prod, ops.Max, ops.Min, ops.All, ops.Any)
# ops done by the Python glue between segments, and why
PYTHON_ONLY = {
    ops.Map: "its inner graph is a program of its own, run once per step",
    ops.AdvancedSubtensor: "NumPy's advanced indexing (masks, several index arrays) has no njit form; "
                           "one integer vector among full slices is compiled",
    ops.AdvancedIncSubtensor: "np.add.at with masks or several index arrays has no njit form; one integer "
                              "vector among full slices is compiled",
}


def _one_index_vector(node):
    """The axis of x[..., idx, ...] when an advanced (inc)subtensor's index is one integer vector among
    full slices (the case compiled; masks and several arrays stay in NumPy), else None."""
    if type(node.op) not in (ops.AdvancedSubtensor, ops.AdvancedIncSubtensor):
        return None
    arrays = [k for k, e in enumerate(node.op.idx_list) if e[0] == "array"]
    if len(arrays) != 1 or node.op.idx_list[arrays[0]] != ("array", 1, False) or any(
            e != ("slice", None, None, None) for e in node.op.idx_list if e[0] != "array"):
        return None
    return arrays[0]


def _loops_except(lines, nd, axis):
    """Append loops i0, i1... over every axis of x but ``axis`` (the index loop, already open at one
    indent); the indent of their body."""
    indent = "    "
    for d in range(nd):
        if d != axis:
            lines.append(f"{indent}for i{d} in range(x.shape[{d}]):")
            indent += "    "
    return indent


def _checked_index(label):
    """The loop over the index vector ``idx`` (m entries) binding j, checked against n and wrapped."""
    return ["for k in range(m):", "    j = idx[k]", "    if j < -n or j >= n:",
            f"        raise IndexError('{label}: index out of range')", "    if j < 0:", "        j += n"]


class Loops:
    """The pieces of a loop nest over an elementwise node (or over one array, ``node`` None): the
    prologue that finds and checks the sizes, and the body that loads the inputs and computes."""

    def __init__(self, gen, node, source=None, label=""):
        self.gen = gen
        if node is None:
            inputs, self.inner_nodes, self.inner_inputs, self.inner_outputs = [source], [], [source], [source]
            nd = source.ndim
        else:
            self.inner_nodes, self.inner_inputs, self.inner_outputs = scalar_steps(node)
            inputs = node.inputs
            nd = node.outputs[0].ndim
        self.nd, self.inputs = nd, inputs
        self.args = [f"a{k}" for k in range(len(inputs))]
        self.idx = [f"i{d}" for d in range(nd)]
        self.prologue, self.sizes, self.guards = [], [], False
        patterns = [i.broadcastable for i in inputs]
        for d in range(nd):
            owners = [k for k, p in enumerate(patterns) if not p[d]]
            if not owners:
                self.sizes.append("1")
                continue
            self.prologue.append(f"s{d} = a{owners[0]}.shape[{d}]")
            for k in owners[1:]:
                self.prologue += [f"if a{k}.shape[{d}] != s{d}:",
                                  f"    raise ValueError('{label}: input shapes disagree on axis {d}')"]
            self.sizes.append(f"s{d}")
        self.body, self.names, self.constants = [], {}, []
        for k, (var, pattern) in enumerate(zip(self.inner_inputs, patterns)):
            where = ", ".join("0" if b else i for b, i in zip(pattern, self.idx)) if nd else "()"
            self.body.append(f"x{k} = a{k}[{where}]")
            self.names[var] = f"x{k}"
        for step, inner in enumerate(self.inner_nodes):
            self._step(step, inner, label)

    def name_of(self, var):
        if var not in self.names:  # a constant of the body
            self.names[var] = f"K{len(self.constants)}"
            self.constants.append(f"{self.names[var]} = {_literal(var.data, var.dtype)}")
        return self.names[var]

    def _step(self, step, inner, label):
        entry = T.IMPLEMENTATIONS[type(inner.op)]
        out_dtype = inner.outputs[0].dtype
        in_dtypes = [v.dtype for v in inner.inputs]
        values = [self.name_of(v) for v in inner.inputs]
        if entry.cast == "out":
            values = [_cast(v, d, out_dtype) for v, d in zip(values, in_dtypes)]
        elif entry.cast == "values":
            values = values[:1] + [_cast(v, d, out_dtype) for v, d in zip(values[1:], in_dtypes[1:])]
        elif entry.cast == "common":
            common = np.result_type(*in_dtypes)
            values = [_cast(v, d, common) for v, d in zip(values, in_dtypes)]
        if entry.helper:
            self.gen.helpers.add(entry.helper)
        vector = self.gen.vector_math.get((type(inner.op).__name__, np.dtype(out_dtype).name))
        if vector and all(np.dtype(d) == np.dtype(out_dtype) for d in in_dtypes):
            expression = f"_vm.{vector}({', '.join(values)})"
        else:
            expression = entry.render(values, in_dtypes, out_dtype)
        guard = (entry.guard or {}).get(np.dtype(out_dtype).kind)
        if guard:
            self.guards = True
            self.body += [f"if {guard[0].format(*values)}:",
                          f"    raise ValueError('{label}: {guard[1]}')"]
        self.names[inner.outputs[0]] = f"t{step}"
        self.body.append(f"t{step} = {st(out_dtype)}({expression})  # {inner.op}")

    def nest(self, body, parallel=False, order=None):
        """The loop nest (over ``order``, default every axis in turn) around ``body``."""
        lines, indent = [], ""
        for position, d in enumerate(order if order is not None else range(self.nd)):
            loop = "_nb.prange" if parallel and position == 0 else "range"
            lines.append(f"{indent}for i{d} in {loop}({self.sizes[d]}):")
            indent += "    "
        return lines + [indent + line for line in body]


def _function(name, args, lines, parallel=False, fastmath=False, kernel=True):
    flags = (", parallel=True" if parallel else "") + (", fastmath={'reassoc'}" if fastmath else "")
    # kernels are called from the segments only: no CPython or C-callback wrappers to compile
    flags += ", no_cpython_wrapper=True, no_cfunc_wrapper=True" if kernel else ""
    return "\n".join([f"@_nb.njit(cache=True, error_model='numpy', nogil=True{flags})",
                      f"def {name}({', '.join(args)}):"] + ["    " + part for line in lines for part in line.split("\n")])


class Generator:
    """Renders the module: helper templates, one kernel per loop nest, and the segments."""

    def __init__(self, fgraph, vector_math):
        self.fgraph = fgraph
        self.vector_math = vector_math  # (scalar op class name, dtype name) -> vecmath function
        self.helpers = set()
        self.kernels = []  # module-level function sources
        self.names = {}
        self.constants = []  # the Constant variables, passed to the segments as arguments
        self.fresh = set()  # variables whose buffer this program allocated (nothing else aliases it)
        for var in fgraph.inputs:
            self.name(var)
        uses = {}
        for node in fgraph.apply_nodes:
            for var in node.inputs:
                uses[var] = uses.get(var, 0) + 1
        for var in fgraph.outputs:
            uses[var] = uses.get(var, 0) + 2
        # an elementwise node whose only use is a reduction is computed inside the reduction's loop
        self.fused_into, self.skipped = {}, set()
        for node in fgraph.apply_nodes:
            producer = node.inputs[0].owner if node.inputs else None
            if isinstance(node.op, REDUCTIONS) and producer is not None and len(producer.outputs) == 1 \
                    and uses.get(node.inputs[0]) == 1 and fusable(producer):
                self.fused_into[node] = producer
                self.skipped.add(producer)
        cost = {}
        for node in fgraph.apply_nodes:
            if isinstance(node.op, ops.Elemwise) and node not in self.skipped and node.outputs[0].ndim \
                    and any(v.ndim == node.outputs[0].ndim and not any(v.broadcastable) for v in node.inputs):
                costly = sum(type(inner.op).__name__ in COSTLY for inner in scalar_steps(node)[0])
                if costly:
                    cost[node] = costly
        # none in graphs with matrix products: BLAS runs its own threads there, and two thread pools on
        # the same cores starve each other (the training step is BLAS-bound anyway)
        blas = any(isinstance(node.op, (ops.Dot, linalg.BatchedDot)) for node in fgraph.apply_nodes)
        self.parallel = set() if blas else set(sorted(cost, key=cost.get, reverse=True)[:PARALLEL_NODES])

    def name(self, var):
        if var not in self.names:
            if isinstance(var, Constant):
                self.names[var] = f"c{len(self.names)}"
                self.constants.append(var)
            else:
                self.names[var] = f"v{len(self.names)}"
        return self.names[var]

    # -- the segments ------------------------------------------------------------------------------

    def generate(self, import_kernel, runtime="arignote.backends.numba.runtime"):
        """(module source, steps): each step is ("segment", name, argument names, result names) or
        ("python", node index). ``import_kernel(source)`` makes a kernel module importable and returns
        its name; ``runtime`` names the module of helpers the generated code imports as ``_rt``."""
        steps, lines, produced = [], [], []
        for n, node in enumerate(self.fgraph.apply_nodes):
            if (type(node.op) in PYTHON_ONLY and _one_index_vector(node) is None) or (
                    isinstance(node.op, ops.Elemwise) and not fusable(node)):
                if lines:
                    steps.append(("segment", lines, produced))
                    lines, produced = [], []
                steps.append(("python", n))
                for var in node.inputs + node.outputs:
                    self.name(var)
                continue
            # where the user built the node is listed by the glue: kept out of this source, identical
            # graphs built in different places share one compiled (and cached) module
            lines.append(f"# node {n}: {node.op}")
            if node in self.skipped:
                lines.append("# computed inside the loop of the reduction below")
            else:
                lines += self.node(n, node)
            produced += node.outputs
        if lines:
            steps.append(("segment", lines, produced))
        # what each segment reads (arguments) and what later steps or the outputs need (results)
        needed_after = set(self.fgraph.outputs)
        result = []
        for step in reversed(steps):
            if step[0] == "python":
                needed_after.update(self.fgraph.apply_nodes[step[1]].inputs)
                result.append(step)
                continue
            _, lines, produced = step
            produced_set = set(produced)
            outs = [v for v in dict.fromkeys(produced) if v in needed_after]
            reads = []
            for node in self.fgraph.apply_nodes:
                if node.outputs[0] not in produced_set or node in self.skipped:
                    continue
                source = self.fused_into[node] if node in self.fused_into else node
                reads += [v for v in source.inputs if v not in produced_set]
            reads = list(dict.fromkeys(reads))
            needed_after -= produced_set
            needed_after.update(reads)
            result.append(("segment", lines, [self.name(v) for v in reads], [self.name(v) for v in outs]))
        steps = result[::-1]
        if steps and steps[0][0] == "segment":  # the first segment takes every input, in order
            _, lines, reads, outs = steps[0]
            inputs = [self.name(v) for v in self.fgraph.inputs]
            steps[0] = ("segment", lines, inputs + [r for r in reads if r not in inputs], outs)
        if len(steps) == 1 and steps[0][0] == "segment":  # ... and the only one returns every output
            _, lines, reads, _ = steps[0]
            outs = [self.name(v) for v in self.fgraph.outputs]
            passed = [v for v in self.fgraph.outputs if isinstance(v, Constant) and self.name(v) not in reads]
            steps[0] = ("segment", lines, reads + list(dict.fromkeys(self.name(v) for v in passed)), outs)
        header = ["import math", "import numpy as np", "import numba as _nb",
                  f"import {runtime} as _rt"]
        if self.vector_math:
            header.append("from arignote.backends.numba import vecmath as _vm")
        source = ["# arignote numba backend: the compiled part of the program"] + header
        # each kernel (and its prange twin) is a module of its own, named by its source: graphs that
        # share a kernel share its compiled and cached code
        groups = {}
        for text in self.kernels:
            base = re.search(r"def (node\d+)", text).group(1)
            groups.setdefault(base, []).append(text)
        for base, texts in groups.items():
            body = re.sub(r"^# node \d+: ", "# ", "\n\n\n".join(texts), flags=re.M)
            body = body.replace(f"def {base}_parallel(", "def kernel_parallel(").replace(f"def {base}(", "def kernel(")
            helpers = [T.HELPERS[h].strip() + "\n\n" for h in sorted(T.HELPERS) if h + "(" in body]
            module = import_kernel("\n".join(header) + "\n\n\n" + "".join(helpers) + "\n" + body + "\n")
            names = f"kernel as {base}" + (f", kernel_parallel as {base}_parallel" if len(texts) > 1 else "")
            source.append(f"from {module} import {names}")
        source.append("\n")
        named = []
        for k, step in enumerate(steps):
            if step[0] == "python":
                named.append(step)
                continue
            _, lines, reads, outs = step
            name = f"segment{k}"
            body = lines + [f"return {_tuple(outs)}"]
            source.append(_function(name, reads, body, kernel=False) + "\n\n")
            named.append(("segment", name, reads, outs))
        return "\n".join(source), named

    # -- one node --------------------------------------------------------------------------------

    def node(self, n, node):
        op = type(node.op)
        args = [self.name(v) for v in node.inputs]
        outs = [self.name(v) for v in node.outputs]
        method = getattr(self, "op_" + op.__name__, None)
        if isinstance(node.op, ops.Elemwise):
            lines = self.elemwise(n, node, args, outs)
        elif isinstance(node.op, REDUCTIONS):
            lines = self.reduction(n, node, args, outs)
        elif method is not None:
            lines = method(n, node, args, outs)
        else:
            from arignote.core.errors import UnsupportedOpError

            raise UnsupportedOpError(f"the numba backend has no implementation of {node.op}")
        return lines

    def label(self, n, node):
        return f"@{n} {type(node.op).__name__}"

    def elemwise(self, n, node, args, outs):
        loops = Loops(self, node, label=type(node.op).__name__)
        out_shape = _tuple(loops.sizes)
        target = self.fgraph.inplace.get(node) if hasattr(self.fgraph, "inplace") else None
        if target is not None:
            var = node.inputs[target]
            out = node.outputs[0]
            if not (var in self.fresh and var.dtype == out.dtype and var.broadcastable == out.broadcastable
                    and len(node.outputs) == 1 and var not in self.fgraph.outputs):
                target = None
        kernel_args = list(loops.args)
        prologue = list(loops.prologue) + loops.constants
        if target is not None:
            prologue.append(f"o0 = a{target}  # written in place: nothing else needs this buffer")
        else:
            prologue += [f"o{k} = np.empty({out_shape}, dtype={st(o.dtype)})" for k, o in enumerate(node.outputs)]
        where = ", ".join(loops.idx) if loops.nd else "()"
        body = loops.body + [f"o{k}[{where}] = {loops.name_of(o)}" for k, o in enumerate(loops.inner_outputs)]
        result = [f"return {_tuple(f'o{k}' for k in range(len(node.outputs)))}"]
        name = f"node{n}"
        comment = f"# node {n}: {node.op}"
        self.kernels.append(comment + "\n" + _function(name, kernel_args, prologue + loops.nest(body) + result))
        call = f"{name}({', '.join(args)})"
        big = [a for a, v in zip(args, node.inputs) if v.ndim == loops.nd and not any(v.broadcastable) and v.ndim]
        if node in self.parallel and big and not loops.guards:
            self.kernels.append(comment + " (parallel twin, for large arrays)\n" + _function(
                name + "_parallel", kernel_args, prologue + loops.nest(body, parallel=True) + result, parallel=True))
            call = f"{call} if {big[0]}.size < {PARALLEL_MIN} else {name}_parallel({', '.join(args)})"
        self.fresh.update(node.outputs)
        return [f"{_tuple(outs)} = {call}"]

    def reduction(self, n, node, args, outs):
        op = node.op
        producer = self.fused_into.get(node)
        label = type(node.op).__name__
        if producer is not None:
            loops = Loops(self, producer, label=label)
            args = [self.name(v) for v in producer.inputs]
            value = loops.name_of(loops.inner_outputs[0])
        else:
            loops = Loops(self, None, source=node.inputs[0], label=label)
            value = "x0"
        nd, axes = loops.nd, op.axis
        kept = [d for d in range(nd) if d not in axes]
        out_dtype = node.outputs[0].dtype
        in_dtype = (producer.outputs[0] if producer is not None else node.inputs[0]).dtype
        is_float = np.dtype(out_dtype).kind == "f"
        acc_dtype = "float64" if is_float else out_dtype
        kind = type(op)
        if kind in (ops.Sum, ops.Mean):
            init, update = "0", "acc{at} += {T}({v})"
        elif kind is ops.Prod:
            init, update = "1", "acc{at} *= {T}({v})"
        elif kind in (ops.All, ops.Any):
            acc_dtype = "bool"
            init = "True" if kind is ops.All else "False"
            update = "acc{at} = acc{at} and bool({v})" if kind is ops.All else "acc{at} = acc{at} or bool({v})"
        else:  # Max, Min: NaN propagates, as in NumPy
            acc_dtype = in_dtype
            sign = ">" if kind is ops.Max else "<"
            info = np.finfo if np.dtype(in_dtype).kind == "f" else np.iinfo
            if np.dtype(in_dtype).kind == "b":
                init = "False" if kind is ops.Max else "True"
            elif np.dtype(in_dtype).kind == "f":
                init = "-np.inf" if kind is ops.Max else "np.inf"
            else:
                init = repr(int(info(in_dtype).min if kind is ops.Max else info(in_dtype).max))
            if np.dtype(in_dtype).kind == "f":  # LLVM's NaN-propagating max/min, which vectorize
                update = "acc{at} = _rt." + ("fmax" if kind is ops.Max else "fmin") + "(acc{at}, {T}({v}))"
            else:  # a select, not a branch, so that LLVM vectorizes it
                update = "acc{at} = {v} if {v} " + sign + " acc{at} else acc{at}"
        T_ = st(acc_dtype)
        sizes = loops.sizes
        kept_sizes = [sizes[d] for d in kept]
        prologue = list(loops.prologue) + loops.constants
        if kind in (ops.Max, ops.Min):
            prologue += [f"if {_product([sizes[d] for d in axes])} == 0:  # as NumPy, whatever the kept sizes",
                         f"    raise ValueError('{label}: zero-size array to reduction operation')"]
        full = not kept
        at = "" if full else "[" + ", ".join(f"i{d}" for d in kept) + "]"
        if full:
            prologue.append(f"acc = {T_}({init})")
        else:
            prologue.append(f"acc = np.full({_tuple(kept_sizes)}, {T_}({init}))")
        body = loops.body + update.format(at=at, v=value, T=T_).split("\n")
        # the kept axes outermost when the reduction runs over the last axes (one accumulator per row)
        order = kept + list(axes) if kept and axes and max(kept) < min(axes) else None
        lines = prologue + loops.nest(body, order=order)
        if kind is ops.Mean:
            lines.append(f"acc = acc / np.float64({_product([sizes[d] for d in axes])})")
        out_shape = [("1" if d in axes else sizes[d]) for d in range(nd)] if op.keepdims else kept_sizes
        if full:
            lines += [f"out = np.empty({_tuple(out_shape)}, dtype={st(out_dtype)})",
                      f"out[{', '.join('0' for _ in out_shape) or '()'}] = acc", "return out"]
        else:
            lines.append(f"return acc.astype({st(out_dtype)}).reshape({_tuple(out_shape)})")
        name = f"node{n}"
        fastmath = kind in (ops.Sum, ops.Mean) and is_float  # lets LLVM vectorize the float sum
        self.kernels.append(f"# node {n}: {op}" + (f" of {producer.op}" if producer else "") + "\n"
                            + _function(name, loops.args, lines, fastmath=fastmath))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = {name}({', '.join(args)})"]

    def op_Argmax(self, n, node, args, outs):
        op = node.op
        x = node.inputs[0]
        nd = x.ndim
        axes = list(range(nd)) if op.axis is None else [op.axis]
        label = type(node.op).__name__
        kept = [d for d in range(nd) if d not in axes]
        sizes = [f"a0.shape[{d}]" for d in range(nd)]
        sign = "<" if isinstance(op, ops.Argmin) else ">"
        is_float = np.dtype(x.dtype).kind == "f"
        lines = [f"if {_product([sizes[d] for d in axes])} == 0:",
                 f"    raise ValueError('{label}: attempt to get the arg of an empty sequence')"]
        shape = [("1" if d in axes else sizes[d]) for d in range(nd)] if op.keepdims else [sizes[d] for d in kept]
        if is_float and axes == [nd - 1]:  # along the rows: runtime's two passes, which vectorize
            rows = _product([sizes[d] for d in kept])
            lines += [f"where = np.empty({rows}, dtype=np.int64)",
                      f"_rt.arg_extremum_rows(np.ascontiguousarray(a0).reshape(({rows}, {sizes[-1]})), "
                      f"{isinstance(op, ops.Argmin)}, where)",
                      f"return where.reshape({_tuple(shape)})"]
            self.kernels.append(f"# node {n}: {op}\n" + _function(f"node{n}", ["a0"], lines))
            self.fresh.update(node.outputs)
            return [f"{outs[0]} = node{n}({args[0]})"]
        lines += [f"best = np.empty({_tuple(sizes[d] for d in kept)}, dtype=a0.dtype)",
                 f"where = np.zeros({_tuple(sizes[d] for d in kept)}, dtype=np.int64)"]
        at = "[" + ", ".join(f"i{d}" for d in kept) + "]" if kept else "[()]"
        flat = " + ".join(f"i{d} * {_product([sizes[e] for e in axes if e > d])}" for d in axes) or "0"
        indent = ""
        for d in kept + axes:
            lines.append(f"{indent}for i{d} in range({sizes[d]}):")
            indent += "    "
        nan = f" or (v != v and best{at} == best{at})" if is_float else ""
        first = " and ".join(f"i{d} == 0" for d in axes) or "True"
        lines += [f"{indent}v = a0[{', '.join(f'i{d}' for d in range(nd)) or '()'}]",
                  f"{indent}if {first} or v {sign} best{at}{nan}:",
                  f"{indent}    best{at} = v",
                  f"{indent}    where{at} = {flat}"]
        lines.append(f"return where.reshape({_tuple(shape)})")
        self.kernels.append(f"# node {n}: {op}\n" + _function(f"node{n}", ["a0"], lines))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({args[0]})"]

    op_Argmin = op_Argmax

    def op_ExtremumMask(self, n, node, args, outs):
        op = node.op
        x = node.inputs[0]
        nd = x.ndim
        axes = list(op.axis)
        kept = [d for d in range(nd) if d not in axes]
        sizes = [f"a0.shape[{d}]" for d in range(nd)]
        sign = "<" if op.minimum else ">"
        is_float = np.dtype(x.dtype).kind == "f"
        at = "[" + ", ".join(f"i{d}" for d in kept) + "]" if kept else "[()]"
        flat = " + ".join(f"i{d} * {_product([sizes[e] for e in axes if e > d])}" for d in axes) or "0"
        everything = ", ".join(f"i{d}" for d in range(nd)) or "()"
        lines = [f"best = np.empty({_tuple(sizes[d] for d in kept)}, dtype=a0.dtype)",
                 f"where = np.zeros({_tuple(sizes[d] for d in kept)}, dtype=np.int64)",
                 f"out = np.zeros({_tuple(sizes)}, dtype=np.bool_)"]
        first = " and ".join(f"i{d} == 0" for d in axes) or "True"
        nan = f" or (v != v and best{at} == best{at})" if is_float else ""

        def nest(body):
            result, indent = [], ""
            for d in kept + axes:
                result.append(f"{indent}for i{d} in range({sizes[d]}):")
                indent += "    "
            return result + [indent + line for line in body]

        lines += nest([f"v = a0[{everything}]", f"if {first} or v {sign} best{at}{nan}:",
                       f"    best{at} = v", f"    where{at} = {flat}"])
        lines += nest([f"out[{everything}] = where{at} == {flat}"])
        lines.append("return out")
        self.kernels.append(f"# node {n}: {op}\n" + _function(f"node{n}", ["a0"], lines))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({args[0]})"]

    # -- views and shapes ----------------------------------------------------------------------------

    def op_DimShuffle(self, n, node, args, outs):
        order = node.op.new_order
        x, nd = args[0], node.inputs[0].ndim
        kept = [a for a in order if a != "x"]
        dropped = [a for a in range(nd) if a not in kept]
        lines = [f"if {x}.shape[{a}] != 1:\n    raise ValueError('{self.label(n, node)}: "
                 f"a dropped axis must have size 1')" for a in dropped]
        if nd == 0:
            return lines + [f"{outs[0]} = {x}.reshape({_tuple('1' for _ in order)})"]
        perm = kept + dropped
        y = _transpose(x, perm)
        index = ["None" if a == "x" else ":" for a in order] + ["0"] * len(dropped)
        if all(i == ":" for i in index):
            return lines + [f"{outs[0]} = {y}"]
        if all(i != ":" for i in index):  # only size-1 axes: a copy (numba cannot index to such views)
            return lines + [f"{outs[0]} = np.ascontiguousarray({x}).reshape({_tuple('1' for _ in order)})"]
        return lines + [f"{outs[0]} = {y}[{', '.join(index)}]"]

    def op_Reshape(self, n, node, args, outs):
        ndim = node.outputs[0].ndim
        shape = _tuple(f"{args[1]}[{k}]" for k in range(ndim))
        return [f"{outs[0]} = np.ascontiguousarray({args[0]}).reshape({shape})"]

    def op_Shape(self, n, node, args, outs):
        lines = [f"{outs[0]} = np.empty({node.inputs[0].ndim}, dtype=np.int64)"]
        return lines + [f"{outs[0]}[{k}] = {args[0]}.shape[{k}]" for k in range(node.inputs[0].ndim)]

    def op_ShapeI(self, n, node, args, outs):
        return [f"{outs[0]} = _rt.scalar({args[0]}.shape[{node.op.i}], np.empty((), dtype=np.int64))"]

    def op_MakeVector(self, n, node, args, outs):
        dtype = st(node.outputs[0].dtype)
        lines = [f"{outs[0]} = np.empty({len(args)}, dtype={dtype})"]
        return lines + [f"{outs[0]}[{k}] = {dtype}({a}[()])" for k, a in enumerate(args)]

    def op_Rebroadcast(self, n, node, args, outs):
        lines = [f"if {args[0]}.shape[{a}] != 1:\n    raise ValueError('{self.label(n, node)}: "
                 f"a broadcastable axis must have size 1')" for a, b in node.op.axes if b]
        return lines + [f"{outs[0]} = {args[0]}"]

    def op_SpecifyShape(self, n, node, args, outs):
        given = iter(args[1:])
        lines = []
        for axis, known in enumerate(node.op.known):
            if known:
                lines += [f"if {args[0]}.shape[{axis}] != {next(given)}[()]:",
                          f"    raise ValueError('{self.label(n, node)}: the shape differs from the specified one')"]
        return lines + [f"{outs[0]} = {args[0]}"]

    def op_Alloc(self, n, node, args, outs):
        value = node.inputs[0]
        nd = node.outputs[0].ndim
        pad = nd - value.ndim
        label = type(node.op).__name__
        lines = [f"s{d} = np.int64(a{d + 1}[()])" for d in range(nd)]
        lines += [f"if s{d} < 0:\n    raise ValueError('{label}: negative size')" for d in range(nd)]
        for d in range(value.ndim):
            if not value.broadcastable[d]:
                lines += [f"if a0.shape[{d}] != s{d + pad}:",
                          f"    raise ValueError('{label}: the value does not fit the shape')"]
        lines.append(f"out = np.empty({_tuple(f's{d}' for d in range(nd))}, dtype={st(value.dtype)})")
        index = ", ".join("0" if b else f"i{d + pad}" for d, b in enumerate(value.broadcastable)) or "()"
        body, indent = [], ""
        for d in range(nd):
            body.append(f"{indent}for i{d} in range(s{d}):")
            indent += "    "
        body.append(f"{indent}out[{', '.join(f'i{d}' for d in range(nd)) or '()'}] = a0[{index}]")
        self.kernels.append(f"# node {n}: {node.op}\n" + _function(
            f"node{n}", [f"a{k}" for k in range(len(args))], lines + body + ["return out"]))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({', '.join(args)})"]

    def op_ARange(self, n, node, args, outs):
        dtype = st(node.op.dtype)
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = _rt.arange({args[0]}[()], {args[1]}[()], {args[2]}[()], np.empty(0, dtype={dtype}))"]

    def op_Join(self, n, node, args, outs):
        dtype = st(node.outputs[0].dtype)
        parts = [a if v.dtype == node.outputs[0].dtype else f"{a}.astype({dtype})" for a, v in zip(args, node.inputs)]
        if len(parts) == 1:
            return [f"{outs[0]} = {parts[0]}.copy()"]
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = np.concatenate({_tuple(parts)}, axis={node.op.axis})"]

    def op_Repeat(self, n, node, args, outs):
        """Each entry along the axis copied counts[k] times, with loops (numba's np.repeat has no axis)."""
        x, repeats = node.inputs
        nd, axis = x.ndim, node.op.axis
        others = [d for d in range(nd) if d != axis]
        lines = [f"n = x.shape[{axis}]", "counts = np.empty(n, dtype=np.int64)"]
        if repeats.ndim == 0:
            lines += ["for k in range(n):", "    counts[k] = r[()]"]
        else:
            lines += ["if r.shape[0] != n and r.shape[0] != 1:",
                      "    raise ValueError('Repeat: one count per entry along the axis, or one count')",
                      "for k in range(n):", "    counts[k] = r[k] if r.shape[0] != 1 else r[0]"]
        lines += ["total = 0", "for k in range(n):", "    if counts[k] < 0:",
                  "        raise ValueError('Repeat: negative count')", "    total += counts[k]"]
        shape = _tuple("total" if d == axis else f"x.shape[{d}]" for d in range(nd))
        lines += [f"out = np.empty({shape}, dtype=x.dtype)", "at = 0", "for k in range(n):",
                  "    for c in range(counts[k]):"]
        indent = "        "
        for d in others:
            lines.append(f"{indent}for i{d} in range(x.shape[{d}]):")
            indent += "    "
        target = ", ".join("at" if d == axis else f"i{d}" for d in range(nd))
        source = ", ".join("k" if d == axis else f"i{d}" for d in range(nd))
        lines += [f"{indent}out[{target}] = x[{source}]", "        at += 1", "return out"]
        self.kernels.append(f"# node {n}: {node.op}\n" + _function(f"node{n}", ["x", "r"], lines))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({args[0]}, {args[1]})"]

    # -- indexing ------------------------------------------------------------------------------------

    def _basic_index(self, x, description, index_args):
        """The numba index expression of a basic index, integers checked against their axis."""
        values = iter(index_args)

        def value(part):
            return "None" if part is None else (f"{next(values)}[()]" if part == ops.SYMBOLIC else str(part))

        parts, axis = [], 0
        for entry in description:
            if entry[0] == "newaxis":
                parts.append("None")
                continue
            if entry[0] == "index":
                parts.append(f"_rt.index({value(entry[1])}, {x}.shape[{axis}])")
            else:
                start, stop, step = (value(p) for p in entry[1:])
                parts.append(f"slice({start}, {stop}, {step})")
            axis += 1
        return parts

    def op_Subtensor(self, n, node, args, outs):
        parts = self._basic_index(args[0], node.op.idx_list, args[1:])
        if not parts:
            return [f"{outs[0]} = {args[0]}"]
        if node.outputs[0].ndim == 0:  # numba gives a scalar: a 0-d array holds it
            return [f"{outs[0]} = _rt.scalar({args[0]}[{', '.join(parts)}], "
                    f"np.empty((), dtype={st(node.outputs[0].dtype)}))"]
        return [f"{outs[0]} = {args[0]}[{', '.join(parts) or '...'}]"]

    def op_AdvancedSubtensor(self, n, node, args, outs):
        """x[..., idx, ...] for one integer vector: checked indices, copied with loops."""
        axis, nd = _one_index_vector(node), node.inputs[0].ndim
        shape = _tuple("m" if d == axis else f"x.shape[{d}]" for d in range(nd))
        lines = [f"n, m = x.shape[{axis}], idx.shape[0]", f"out = np.empty({shape}, dtype=x.dtype)"]
        lines += _checked_index("AdvancedSubtensor")
        indent = _loops_except(lines, nd, axis)
        target = ", ".join("k" if d == axis else f"i{d}" for d in range(nd))
        source = ", ".join("j" if d == axis else f"i{d}" for d in range(nd))
        lines += [f"{indent}out[{target}] = x[{source}]", "return out"]
        self.kernels.append(f"# node {n}: {node.op}\n" + _function(f"node{n}", ["x", "idx"], lines))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({args[0]}, {args[1]})"]

    def op_AdvancedIncSubtensor(self, n, node, args, outs):
        """A copy of x with y added (or set) at x[..., idx, ...] for one integer vector, in index order:
        repeated indices accumulate (np.add.at), and the last write wins when setting."""
        x, y = node.inputs[:2]
        axis, nd = _one_index_vector(node), x.ndim
        pad = nd - y.ndim
        lines = ["out = x.copy()", f"n, m = x.shape[{axis}], idx.shape[0]"]
        for d in range(y.ndim):
            if not y.broadcastable[d]:
                size = "m" if d + pad == axis else f"x.shape[{d + pad}]"
                lines += [f"if y.shape[{d}] != {size}:",
                          f"    raise ValueError('{type(node.op).__name__}: the value does not fit the region')"]
        lines += _checked_index(type(node.op).__name__)
        indent = _loops_except(lines, nd, axis)
        target = ", ".join("j" if d == axis else f"i{d}" for d in range(nd))
        source = ", ".join("0" if b else ("k" if d + pad == axis else f"i{d + pad}")
                           for d, b in enumerate(y.broadcastable)) or "()"
        value = f"{st(x.dtype)}(y[{source}])"
        lines.append(f"{indent}out[{target}] = {value}" if node.op.set_instead_of_inc
                     else f"{indent}out[{target}] += {value}")
        self.kernels.append(f"# node {n}: {node.op}\n" + _function(f"node{n}", ["x", "y", "idx"], lines + ["return out"]))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({', '.join(args)})"]

    def op_IncSubtensor(self, n, node, args, outs):
        x, y = node.inputs[:2]
        parts = self._basic_index("out", node.op.idx_list, [f"a{k + 2}" for k in range(len(args) - 2)])
        region_nd = sum(e[0] != "index" for e in node.op.idx_list) + x.ndim - sum(
            e[0] != "newaxis" for e in node.op.idx_list)
        label = type(node.op).__name__
        setting = node.op.set_instead_of_inc
        lines = ["out = a0.copy()"]
        index = ", ".join(parts)
        value_type = st(x.dtype)
        if region_nd == 0:
            target = f"out[{index}]"
            new = f"{value_type}(a1[()])" if setting else f"{target} + {value_type}(a1[()])"
            lines.append(f"{target} = {new}")
        else:
            lines.append(f"region = out[{index or '...'}]")
            pad = region_nd - y.ndim
            for d in range(y.ndim):
                if not y.broadcastable[d]:
                    lines += [f"if a1.shape[{d}] != region.shape[{d + pad}]:",
                              f"    raise ValueError('{label}: the value does not fit the region')"]
            indent = ""
            for d in range(region_nd):
                lines.append(f"{indent}for i{d} in range(region.shape[{d}]):")
                indent += "    "
            at = ", ".join(f"i{d}" for d in range(region_nd))
            source = ", ".join("0" if b else f"i{d + pad}" for d, b in enumerate(y.broadcastable)) or "()"
            new = f"{value_type}(a1[{source}])"
            lines.append(f"{indent}region[{at}] = {new}" if setting else f"{indent}region[{at}] += {new}")
        self.kernels.append(f"# node {n}: {node.op}\n" + _function(
            f"node{n}", [f"a{k}" for k in range(len(args))], lines + ["return out"]))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({', '.join(args)})"]

    # -- products ------------------------------------------------------------------------------------

    def op_Dot(self, n, node, args, outs):
        a, b = node.inputs
        out = node.outputs[0]
        dtype = st(out.dtype)
        x, y = (name if v.dtype == out.dtype else f"{name}.astype({dtype})" for name, v in zip(args, node.inputs))
        self.fresh.update(node.outputs)
        # vectors as one-row or one-column matrices; views with a step are typed "any layout", so that
        # every product of a dtype shares one compiled helper whatever its operands' layouts
        x2 = f"{x}[::1, ::1]" if a.ndim == 2 else f"{x}[None, ::1]"
        y2 = f"{y}[::1, ::1]" if b.ndim == 2 else f"{y}[::1, None]"
        if np.dtype(out.dtype).kind == "f":  # BLAS: NumPy's own library (runtime.gemm)
            call = f"_rt.gemm({x2}, {y2})"
        else:  # integers and booleans: loops (BLAS has none)
            call = f"_rt.dot_loops({x2}, {y2}, np.empty(0, dtype={dtype}))"
        if a.ndim == 2 and b.ndim == 2:
            return [f"{outs[0]} = {call}"]
        if a.ndim == 2:
            return [f"{outs[0]} = {call}[:, 0].copy()"]
        if b.ndim == 2:
            return [f"{outs[0]} = {call}[0].copy()"]
        return [f"{outs[0]} = _rt.scalar({call}[0, 0], np.empty((), dtype={dtype}))"]

    def op_BatchedDot(self, n, node, args, outs):
        out = node.outputs[0]
        dtype = st(out.dtype)
        x, y = (name if v.dtype == out.dtype else f"{name}.astype({dtype})" for name, v in zip(args, node.inputs))
        label = type(node.op).__name__
        product = "_rt.gemm(a[i, ::1, ::1], b[i, ::1, ::1])" if np.dtype(out.dtype).kind == "f" else \
            f"_rt.dot_loops(a[i], b[i], np.empty(0, dtype={dtype}))"
        lines = ["if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:",
                 f"    raise ValueError('{label}: shapes do not fit (B, n, k) . (B, k, m)')",
                 f"out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype={dtype})",
                 "for i in range(a.shape[0]):", f"    out[i] = {product}", "return out"]
        self.kernels.append(f"# node {n}: {node.op}\n" + _function(f"node{n}", ["a", "b"], lines))
        self.fresh.update(node.outputs)
        return [f"{outs[0]} = node{n}({x}, {y})"]

    # -- nnet and random -------------------------------------------------------------------------------

    def _exp(self, dtype):
        """The exp of ``dtype`` the loops call: vecmath's SIMD one when it is enabled."""
        vector = self.vector_math.get(("Exp", np.dtype(dtype).name))
        return f"_vm.{vector}" if vector else "np.exp"

    @staticmethod
    def _row_max(dtype):
        """The line finding ``top``, the max of row i of ``x`` in ``dtype`` (NaN if the row holds one)."""
        return [f"top = _rt.row_max(x, i, {st(dtype)}(-np.inf))"]

    def _softmax_rows(self, dtype, finish, before=()):
        """Lines of a kernel over the rows i of a 2-d ``x``: exp(x[i] - max) written to out[i] in one
        loop LLVM vectorizes, ``total``, their sum in float64, in another, then the ``finish`` lines."""
        T_, exp = st(dtype), self._exp(dtype)
        lines = ["rows, n = x.shape", *before, f"out = np.empty((rows, n), dtype={T_})", "for i in range(rows):"]
        body = self._row_max(dtype)
        body += ["for j in range(n):", f"    out[i, j] = {exp}({T_}(x[i, j]) - top)",
                 "total = 0.0", "for j in range(n):", "    total += np.float64(out[i, j])", *finish]
        return lines + ["    " + line for line in body] + ["return out"]

    def _softmax_kernel(self, n, node, log):
        """Softmax (or LogSoftmax) of each row of a 2-d ``x``, in the output dtype."""
        T_ = st(node.outputs[0].dtype)
        if log:
            finish = [f"log_total = {T_}(np.log(total))", "for j in range(n):",
                      f"    out[i, j] = ({T_}(x[i, j]) - top) - log_total"]
        else:
            finish = [f"total_ = {T_}(total)", "for j in range(n):", "    out[i, j] = out[i, j] / total_"]
        lines = self._softmax_rows(node.outputs[0].dtype, finish)
        # reassociation lets LLVM vectorize the float64 sum (the only chain of additions here)
        self.kernels.append(f"# node {n}: {node.op}, row by row\n" + _function(f"node{n}", ["x"], lines, fastmath=True))
        return f"node{n}"

    def _along_rows(self, n, node, args, outs, log):
        """A row kernel over a 2-d view: the op's axes last, the others folded into rows."""
        x = node.inputs[0]
        nd, axes = x.ndim, list(node.op.axis)
        others = [d for d in range(nd) if d not in axes]
        kernel = self._softmax_kernel(n, node, log)
        if nd == 2 and axes == [1]:
            return [f"{outs[0]} = {kernel}({args[0]})"]
        perm = others + axes
        moved = _transpose(args[0], perm)
        rows = _product([f"{args[0]}.shape[{d}]" for d in others])
        cols = _product([f"{args[0]}.shape[{d}]" for d in axes])
        inverse = [perm.index(d) for d in range(nd)]
        moved_shape = _tuple(f"{args[0]}.shape[{d}]" for d in perm)
        lines = [f"{outs[0]} = {kernel}(np.ascontiguousarray({moved}).reshape(({rows}, {cols})))",
                 f"{outs[0]} = {outs[0]}.reshape({moved_shape})"]
        if inverse != list(range(nd)):
            lines.append(f"{outs[0]} = {_transpose(outs[0], inverse)}")
        return lines

    def op_Softmax(self, n, node, args, outs):
        self.fresh.update(node.outputs)
        return self._along_rows(n, node, args, outs, log=False)

    def op_LogSoftmax(self, n, node, args, outs):
        self.fresh.update(node.outputs)
        return self._along_rows(n, node, args, outs, log=True)

    def op_SoftmaxCrossentropy(self, n, node, args, outs):
        """logsumexp(x[i]) - x[i, y[i]], the max shifted out (a non-finite max shifts by 0)."""
        self.fresh.update(node.outputs)
        dtype = node.outputs[0].dtype
        T_, exp = st(dtype), self._exp(dtype)
        lines = ["rows, n = x.shape", "_rt.check_labels(rows, n, y)", f"out = np.empty(rows, dtype={T_})",
                 f"row = np.empty(n, dtype={T_})", "for i in range(rows):"]
        body = self._row_max(dtype) + ["if not np.isfinite(top):", f"    top = {T_}(0)",
                                      "for j in range(n):", f"    row[j] = {exp}({T_}(x[i, j]) - top)",
                                      "total = 0.0", "for j in range(n):", "    total += np.float64(row[j])",
                                      f"out[i] = {T_}({T_}(np.log(total)) + top) - {T_}(x[i, y[i]])"]
        lines += ["    " + line for line in body] + ["return out"]
        self.kernels.append(f"# node {n}: {node.op}, row by row\n" + _function(f"node{n}", ["x", "y"], lines,
                                                                                fastmath=True))
        return [f"{outs[0]} = node{n}({args[0]}, {args[1]})"]

    def op_SoftmaxCrossentropyGrad(self, n, node, args, outs):
        """Per row: the softmax (as op_Softmax computes it) times g[i], then -g[i] added at the label."""
        self.fresh.update(node.outputs)
        T_ = st(node.outputs[0].dtype)
        check = [] if node.inputs[1].broadcastable[0] else [
            "if g.shape[0] != rows:", f"    raise ValueError('{self.label(n, node)}: expected one value per row')"]
        finish = [f"total_ = {T_}(total)", "gi = g[0] if one else g[i]", "for j in range(n):",
                  "    out[i, j] = (out[i, j] / total_) * gi", "out[i, y[i]] += -gi"]
        lines = self._softmax_rows(node.outputs[0].dtype, finish,
                                   before=[*check, "_rt.check_labels(rows, n, y)", "one = g.shape[0] == 1"])
        self.kernels.append(f"# node {n}: {node.op}, row by row\n" + _function(f"node{n}", ["x", "g", "y"], lines,
                                                                                fastmath=True))
        return [f"{outs[0]} = node{n}({', '.join(args)})"]

    def op_PickPerRow(self, n, node, args, outs):
        self.fresh.update(node.outputs)
        dtype = st(node.outputs[0].dtype)
        return [f"{outs[0]} = _rt.pick_per_row({args[0]}, {args[1]}, np.empty({args[0]}.shape[0], dtype={dtype}))"]

    def op_IncPerRow(self, n, node, args, outs):
        self.fresh.update(node.outputs)
        dtype = st(node.outputs[0].dtype)
        lines = []
        if not node.inputs[1].broadcastable[0]:
            lines += [f"if {args[1]}.shape[0] != {args[0]}.shape[0]:",
                      f"    raise ValueError('{self.label(n, node)}: expected one value per row')"]
        return lines + [f"{outs[0]} = _rt.inc_per_row({args[0]}, {args[1]}, {args[2]}, "
                        f"np.empty({args[0]}.shape, dtype={dtype}))"]

    def op_RandomUniform(self, n, node, args, outs):
        self.fresh.update(node.outputs)
        nd = node.op.ndim
        label = self.label(n, node)
        sizes = [f"{args[1]}[{k}]" for k in range(nd)]
        lines = [f"if {args[1]}.shape[0] != {nd}:\n    raise ValueError('{label}: the shape has the wrong length')"]
        lines += [f"if {s} < 0:\n    raise ValueError('{label}: negative size')" for s in sizes]
        lines += [f"{outs[1]} = np.empty({_product(sizes)}, dtype={st(node.op.dtype)})",
                  f"{outs[0]} = _rt.random_uniform({args[0]}, {outs[1]}, {24 if node.op.dtype == 'float32' else 53})",
                  f"{outs[1]} = {outs[1]}.reshape({_tuple(sizes)})"]
        return lines

    def op_Argsort(self, n, node, args, outs):
        self.fresh.update(node.outputs)
        x, nd = args[0], node.inputs[0].ndim
        rows = _product([f"{x}.shape[{d}]" for d in range(nd - 1)])
        return [f"{outs[0]} = _rt.argsort_rows(np.ascontiguousarray({x}).reshape(({rows}, {x}.shape[{nd - 1}])), "
                f"np.empty(({rows}, {x}.shape[{nd - 1}]), dtype=np.int64)).reshape({x}.shape)"]


_ = (nnet, random)  # the op modules whose ops the methods above are named after
