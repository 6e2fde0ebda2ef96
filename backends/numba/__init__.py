"""The Numba backend: each FunctionGraph becomes the Python source of one function; its elementwise
work (single ops and fused ``Composite`` bodies) becomes explicit loop nests compiled with
``numba.njit`` (``prange`` over the outer axis on large arrays), matrix products call ``np.dot``.

Everything generated is written under ``ARIGNOTE_CACHE_DIR/numba`` (user-only permissions), in files
named by a hash of their source and of the versions involved; kernels are compiled with
``numba.njit(cache=True)``, so a new process with the same graph loads machine code from disk instead
of compiling. ``f.backend_source`` shows the generated function and its kernels, each line commented
with the graph node it came from.

numba is imported only when this backend is asked whether it is available or to compile.
"""

import hashlib
import importlib.util
import os
import sys

import numpy as np

from arignote.core.config import config
from arignote.core.errors import UnsupportedOpError, node_failure
from arignote.core.graph import Constant
from arignote.core import ops
from arignote.core.plugins import Availability, Backend, hookimpl

from . import table as T

CODEGEN_VERSION = "1"
PARALLEL_MIN = 1 << 17  # elements: larger elementwise results are computed with prange


def _scalar_type(dtype):
    name = np.dtype(dtype).name
    return "np.bool_" if name == "bool" else f"np.{name}"


# ---------------------------------------------------------------------------------------------------
# the disk cache


_versions = None
_loaded = {}  # file stem -> module (a kernel is compiled once per process, whatever graph uses it)


def _version_text():
    global _versions
    if _versions is None:
        import numba

        if not os.environ.get("NUMBA_THREADING_LAYER"):
            # OpenMP's worker threads spin after a parallel loop and starve the BLAS threads of the
            # np.dot that follows (ten times slower training steps on two cores); the workqueue sleeps
            numba.config.THREADING_LAYER = "workqueue"

        _versions = f"arignote-numba {CODEGEN_VERSION}; numba {numba.__version__}; numpy {np.__version__}; " \
                    f"python {sys.version.split()[0]}"
    return _versions


def cache_directory():
    path = os.path.join(config.cache_dir, "numba")
    if not os.path.isdir(path):
        # user-only, but only what this creates: ARIGNOTE_CACHE_DIR may name a folder others share
        if not os.path.isdir(config.cache_dir):
            os.makedirs(config.cache_dir, mode=0o700, exist_ok=True)
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _write(source, prefix):
    """Write ``source`` to the cache (once: numba's cache is keyed by the file's time stamp) and
    return the file's path and stem."""
    digest = hashlib.sha256((_version_text() + "\n" + source).encode()).hexdigest()[:24]
    stem = f"{prefix}_{digest}"
    path = os.path.join(cache_directory(), stem + ".py")
    if not os.path.exists(path):
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w") as file:
            file.write(source)
        os.replace(temporary, path)
    return path, stem


def _import(source, prefix):
    path, stem = _write(source, prefix)
    module = _loaded.get(stem)
    if module is None:
        name = f"arignote_numba_{stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _loaded[stem] = module
    return module


# ---------------------------------------------------------------------------------------------------
# elementwise kernels


def _scalar_steps(node):
    """The scalar body of an elementwise node: (inner nodes, inner inputs, inner outputs)."""
    if isinstance(node.op, ops.Composite):
        body = node.op.fgraph
        return body.apply_nodes, body.inputs, body.outputs
    return [node], node.inputs, node.outputs


def _cast(expr, from_dtype, to_dtype):
    return expr if np.dtype(from_dtype) == np.dtype(to_dtype) else f"{_scalar_type(to_dtype)}({expr})"


def _literal(value, dtype):
    item = np.asarray(value).item()
    text = f"float({str(item)!r})" if isinstance(item, float) else repr(item)
    return f"{_scalar_type(dtype)}({text})"


def fusable(node):
    """Whether every scalar op of an elementwise node has a template."""
    return isinstance(node.op, ops.Elemwise) and all(
        isinstance(T.IMPLEMENTATIONS.get(type(inner.op)), T.Scalar) for inner in _scalar_steps(node)[0])


def reducible(node):
    return (type(node.op) in (ops.Sum, ops.Mean) and node.outputs[0].dtype in ("float32", "float64")
            and node.inputs[0].ndim > 0)


def elemwise_kernel(node, reduce=None):
    """Source of a module with ``kernel`` and ``kernel_par`` for an elementwise node (None if some
    scalar op has no template). With ``reduce`` (a Sum or Mean of the node's only output, or of an
    input when ``node`` is None), ``kernel`` accumulates that reduction instead of storing the
    elementwise result: one pass, no temporary array."""
    if node is None:
        source = reduce.inputs[0]
        inputs, outputs, inner_nodes, inner_inputs, inner_outputs = [source], [source], [], [source], [source]
        op_text = str(reduce.op)
    else:
        if not fusable(node):
            return None
        inner_nodes, inner_inputs, inner_outputs = _scalar_steps(node)
        inputs, outputs = node.inputs, node.outputs
        op_text = str(node.op) if reduce is None else f"{reduce.op} of {node.op}"
    nd = outputs[0].ndim
    patterns = [i.broadcastable for i in inputs]
    args = [f"a{k}" for k in range(len(inputs))]
    idx = [f"i{d}" for d in range(nd)]
    lines, helpers, constants = [], set(), []
    # the shape of the result: each axis from the first input that is not broadcastable there
    sizes = []
    for d in range(nd):
        owners = [k for k, p in enumerate(patterns) if not p[d]]
        if not owners:
            sizes.append("1")
            continue
        lines.append(f"s{d} = a{owners[0]}.shape[{d}]")
        for k in owners[1:]:
            message = (f"{op_text}: input shapes disagree on axis {d}; a size-1 axis stretches only "
                       "where its type is broadcastable")
            lines.append(f"if a{k}.shape[{d}] != s{d}:")
            lines.append(f"    raise ValueError({message!r})")
        sizes.append(f"s{d}")
    shape = "(" + "".join(s + ", " for s in sizes) + ")"
    if reduce is None:
        for k, out in enumerate(outputs):
            lines.append(f"o{k} = np.empty({shape}, dtype={_scalar_type(out.dtype)})")
    else:
        axes = reduce.op.axis
        kept = [d for d in range(nd) if d not in axes]
        # accumulated in float64 (NumPy sums float32 pairwise: both are far more accurate than float32)
        lines.append(f"acc = np.zeros(({''.join(sizes[d] + ', ' for d in kept)}), dtype=np.float64)")
    # the loop body: load, compute, store
    body = []
    names = {}
    for k, (var, pattern) in enumerate(zip(inner_inputs, patterns)):
        where = ", ".join("0" if b else i for b, i in zip(pattern, idx)) if nd else "()"
        body.append(f"x{k} = a{k}[{where}]" if nd else f"x{k} = np.asarray(a{k})[()]")
        names[var] = f"x{k}"

    def name_of(var):
        if var not in names:  # a constant of the body
            names[var] = f"C{len(constants)}"
            constants.append(f"{names[var]} = {_literal(var.data, var.dtype)}")
        return names[var]

    for step, inner in enumerate(inner_nodes):
        entry = T.IMPLEMENTATIONS[type(inner.op)]
        out_dtype = inner.outputs[0].dtype
        in_dtypes = [v.dtype for v in inner.inputs]
        values = [name_of(v) for v in inner.inputs]
        if entry.cast == "out":
            values = [_cast(v, d, out_dtype) for v, d in zip(values, in_dtypes)]
        elif entry.cast == "values":
            values = values[:1] + [_cast(v, d, out_dtype) for v, d in zip(values[1:], in_dtypes[1:])]
        elif entry.cast == "common":
            common = np.result_type(*in_dtypes)
            values = [_cast(v, d, common) for v, d in zip(values, in_dtypes)]
        if entry.helper:
            helpers.add(entry.helper)
        expression = entry.render(values, in_dtypes, out_dtype)
        guard = (entry.guard or {}).get(np.dtype(out_dtype).kind)
        if guard:
            body.append(f"if {guard[0].format(*values)}:")
            body.append(f"    raise ValueError({(op_text + ': ' + guard[1])!r})")
        names[inner.outputs[0]] = f"t{step}"
        body.append(f"t{step} = {_scalar_type(out_dtype)}({expression})  # {inner.op}")
    where = ", ".join(idx) if nd else "()"
    if reduce is None:
        for k, out in enumerate(inner_outputs):
            body.append(f"o{k}[{where}] = {name_of(out)}")
        result = ", ".join(f"o{k}" for k in range(len(outputs)))
    else:
        at = ", ".join(idx[d] for d in kept) if kept else "()"
        body.append(f"acc[{at}] += np.float64({name_of(inner_outputs[0])})")
        if isinstance(reduce.op, ops.Mean):
            count = " * ".join(sizes[d] for d in axes) or "1"
            lines_after = [f"acc = np.asarray(acc / np.float64({count}))"]
        else:
            lines_after = []
        out_shape = [("1" if d in axes else sizes[d]) for d in range(nd)] if reduce.op.keepdims else \
            [sizes[d] for d in kept]
        lines_after.append(f"o0 = acc.astype({_scalar_type(reduce.outputs[0].dtype)})"
                           f".reshape(({''.join(x + ', ' for x in out_shape)}))")
        result = "o0"

    def function(name, parallel):
        text = [f"@_nb.njit(cache=True, error_model='numpy', nogil=True{', parallel=True' if parallel else ''})",
                f"def {name}({', '.join(args)}):"]
        text += ["    " + line for line in lines]
        indent = "    "
        for d in range(nd):
            loop = "_nb.prange" if parallel and d == 0 else "range"
            text.append(f"{indent}for i{d} in {loop}({sizes[d]}):")
            indent += "    "
        text += [indent + line for line in body]
        if reduce is not None:
            text += ["    " + line for line in lines_after]
        text.append(f"    return {result}")
        return "\n".join(text)

    header = ["import math", "import numpy as np", "import numba as _nb", ""]
    header += [T.HELPERS[h].strip() + "\n" for h in sorted(helpers)] + constants
    source = "\n".join(header) + "\n\n" + function("kernel", False) + "\n\n\n"
    if nd and reduce is None:
        source += function("kernel_par", True) + "\n"
    return source


# ---------------------------------------------------------------------------------------------------
# the generated function


class _Fallback:
    """A node computed by the reference backend's NumPy implementation, called from the generated code."""

    __slots__ = ("node", "impl", "dtypes", "single")

    def __init__(self, node, impl):
        self.node, self.impl = node, impl
        self.dtypes = [np.dtype(o.dtype) for o in node.outputs]
        self.single = len(node.outputs) == 1

    def __call__(self, *args):  # the generated function runs it under np.errstate(all="ignore")
        result = self.impl(self.node, *args)
        if self.single:
            return np.asarray(result, dtype=self.dtypes[0])
        return tuple(np.asarray(r, dtype=d) for r, d in zip(result, self.dtypes))


def _reference_table():
    from arignote.backends.reference.table import IMPLEMENTATIONS

    return IMPLEMENTATIONS


class Program:
    """Builds the source of ``run(inputs)`` for a FunctionGraph and the namespace it runs in."""

    def __init__(self, fgraph):
        self.fgraph = fgraph
        reference = _reference_table()
        names, namespace = {}, {"np": np}
        lines, kernels = [], []
        self.nodes, self.node_inputs = [], []

        def name(var):
            if var not in names:
                if isinstance(var, Constant):
                    names[var] = f"c{len(names)}"
                    namespace[names[var]] = var.data
                else:
                    names[var] = f"v{len(names)}"
            return names[var]

        inputs = [name(v) for v in fgraph.inputs]
        # an elementwise node whose only use is a Sum or Mean is computed inside the reduction's loop
        uses = {}
        for node in fgraph.apply_nodes:
            for var in node.inputs:
                uses[var] = uses.get(var, 0) + 1
        for var in fgraph.outputs:
            uses[var] = uses.get(var, 0) + 2
        fused_into = {}  # reduction node -> the elementwise node it computes
        for node in fgraph.apply_nodes:
            producer = node.inputs[0].owner if node.inputs else None
            if reducible(node) and producer is not None and len(producer.outputs) == 1 \
                    and uses.get(node.inputs[0]) == 1 and fusable(producer):
                fused_into[node] = producer
        skipped = {id(p): r for r, p in fused_into.items()}
        for n, node in enumerate(fgraph.apply_nodes):
            args = [name(v) for v in node.inputs]
            outs = ", ".join(name(v) for v in node.outputs)
            self.nodes.append(node)
            self.node_inputs.append(args)
            lines.append(f"_n = {n}")
            lines.append(f"# {node.op}  (built at {node.outputs[0].built_at()})")
            if id(node) in skipped:
                lines.append(f"# computed inside the loop of {skipped[id(node)].op}, below")
                continue
            entry = T.IMPLEMENTATIONS.get(type(node.op))
            kernel = None
            if node in fused_into:
                producer = fused_into[node]
                args = [name(v) for v in producer.inputs]
                self.node_inputs[-1] = args
                self.nodes[-1] = producer  # what a failure inside the loop is about
                kernel = elemwise_kernel(producer, reduce=node)
            elif reducible(node):
                kernel = elemwise_kernel(None, reduce=node)
            elif isinstance(node.op, ops.Elemwise):
                kernel = elemwise_kernel(node)
            if kernel is not None and reducible(node):
                module = _import(kernel, "kernel")
                kernels.append(f"# ---- kernel K{n}: {node.op}\n{kernel}")
                namespace[f"K{n}"] = module.kernel
                lines.append(f"{outs} = K{n}({', '.join(args)})")
            elif kernel is not None:
                module = _import(kernel, "kernel")
                kernels.append(f"# ---- kernel K{n}: {node.op}\n{kernel}")
                namespace[f"K{n}"] = module.kernel
                call = f"K{n}({', '.join(args)})"
                big = [a for a, v in zip(args, node.inputs) if v.ndim == node.outputs[0].ndim
                       and not any(v.broadcastable) and v.ndim]
                if big:
                    namespace[f"K{n}p"] = module.kernel_par
                    call = f"K{n}({', '.join(args)}) if {big[0]}.size < {PARALLEL_MIN} else " \
                           f"K{n}p({', '.join(args)})"
                lines.append(f"{outs} = {call}")
            elif entry == T.GLUE:
                lines.append(f"{outs} = {T.glue_line(node, args)}")
            elif type(node.op) in reference:
                namespace[f"R{n}"] = _Fallback(node, reference[type(node.op)])
                lines.append(f"{outs} = R{n}({', '.join(args)})  # NumPy (reference implementation)")
            else:
                raise UnsupportedOpError(f"the numba backend has no implementation of {node.op}")
        outputs = [name(v) for v in fgraph.outputs]
        unpack = f"    {', '.join(inputs)}, = inputs\n" if inputs else ""
        # NumPy calls (np.dot, the reference implementations) run with floating-point warnings off, as
        # in the reference backend; a graph of compiled kernels only does not pay for np.errstate
        quiet = any(isinstance(namespace.get(f"R{n}"), _Fallback) or T.IMPLEMENTATIONS.get(type(node.op)) == T.GLUE
                    for n, node in enumerate(fgraph.apply_nodes))
        if quiet:
            lines = ['with np.errstate(all="ignore"):'] + ["    " + line for line in lines]
        body = "\n".join("        " + line for line in lines) or "        pass"
        self.glue = (f"# arignote numba backend: {len(fgraph.apply_nodes)} nodes, "
                     f"{len(kernels)} compiled kernels\n"
                     f"def run(inputs):\n{unpack}    _n = -1\n    try:\n{body}\n"
                     f"    except Exception as error:\n        raise _fail(_n, error, locals()) from error\n"
                     f"    return [{', '.join(outputs)}]\n")
        namespace["_fail"] = self.failure
        path, _ = _write(self.glue, "function")
        exec(compile(self.glue, path, "exec"), namespace)
        self.run = namespace["run"]
        self.namespace = namespace
        self.source = self.glue + ("\n\n" + "\n\n".join(kernels) if kernels else "")
        self.run.source = self.source

    def failure(self, n, error, local_values):
        if n < 0:
            return error
        node = self.nodes[n]
        values = [local_values[a] if a in local_values else self.namespace.get(a) for a in self.node_inputs[n]]
        impl = _reference_table().get(type(node.op))
        if impl is not None and not isinstance(error, (MemoryError, RecursionError)):
            try:  # the reference's own words for what is wrong, when it agrees that something is
                with np.errstate(all="ignore"):
                    impl(node, *values)
            except Exception as reference_error:
                error = reference_error
        return node_failure(node, error, values)


class NumbaBackend(Backend):
    name = "numba"
    priority = -1  # not the default yet: see the report (the plugin tests expect reference as default)

    def available(self):
        try:
            import numba  # noqa: F401
        except Exception as error:  # not installed, or broken
            return Availability(False, f"numba cannot be imported: {type(error).__name__}: {error}")
        return Availability(True)

    def compile(self, fgraph):
        return Program(fgraph).run


@hookimpl
def arignote_backends():
    return [NumbaBackend()]
