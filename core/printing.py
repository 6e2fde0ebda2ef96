"""Printing graphs as Theano does: ``pprint``/``pp`` (one infix expression) and ``debugprint`` (an
indented tree, one line per variable). Drawing them is in drawing.py (``pydotprint``).

    >>> pp((x ** 2) + y)
    '((x ** 2) + y)'
    >>> debugprint(x * y, print_type=True)
    Mul [id A] <TensorType(float64, vector)>
     |x [id B] <TensorType(float64, vector)>
     |y [id C] <TensorType(float64, vector)>

A variable without a name prints as its type in angle brackets (``<TensorType(float64, vector)>``); the
text of a type is ``str(var.type)``, whatever types.py makes it.
"""

import sys

import numpy as np

from . import ops
from .graph import Constant, FunctionGraph, Variable, toposort

# ---------------------------------------------------------------------------------------------------
# Leaves: names, types and constants


def type_text(var):
    return f"<{var.type}>"


def constant_value_text(data, limit=6):
    """A constant's value, short: ``2``, ``0.5``, ``[1.0, 2.0]``; ``(1, 1) of 2.0`` for a broadcast
    scalar; ``shape=(10, 10)`` when there are more than ``limit`` elements."""
    if data.ndim == 0:
        return repr(data.item())
    if data.size == 1:
        return f"{data.shape} of {data.reshape(()).item()!r}"
    if data.size <= limit:
        return repr(data.tolist())
    return f"shape={data.shape}"


def leaf_text(var):
    """How a variable with no owner is shown: its name, its value (constants), or its type."""
    if var.name:
        return var.name
    if isinstance(var, Constant):
        return f"TensorConstant{{{constant_value_text(var.data)}}}"
    return type_text(var)


# ---------------------------------------------------------------------------------------------------
# pprint: one infix expression


_ELEMWISE_NAMES = {"Second": "fill", "RoundHalfAwayFromZero": "round", "RoundHalfToEven": "round_half_to_even",
                   "IsNan": "isnan", "IsInf": "isinf"}
_PREFIX = {"Neg": "-", "Invert": "~"}
_FUNCTION_NAMES = {"Dot": "dot", "BatchedDot": "batched_dot", "Softmax": "softmax", "LogSoftmax": "log_softmax",
                   "Argsort": "argsort", "Reshape": "reshape", "Alloc": "alloc", "ARange": "arange",
                   "Repeat": "repeat", "SpecifyShape": "specify_shape"}


def _pp_constant(var):
    if var.name:
        return var.name
    data = var.data
    if data.size == 1 and all(var.broadcastable):
        value = data.reshape(()).item()
        if var.weak and isinstance(value, float) and value.is_integer():
            value = int(value)  # a bare Python number the user wrote as ``x ** 2``
        return repr(value)
    if data.size <= 6:
        return repr(data.tolist())
    return f"<{var.type} constant of shape {data.shape}>"


def _axis_text(axis, ndim, keepdims=False):
    if axis is None or tuple(axis) == tuple(range(ndim)):
        text = ""
    elif len(axis) == 1:
        text = f", axis={axis[0]}"
    else:
        text = f", axis={tuple(axis)}"
    return text + (", keepdims=True" if keepdims else "")


def _reduce_text(op, ndim, arg):
    name = type(op).__name__.lower()
    dtype = f", dtype={op.dtype!r}" if getattr(op, "dtype", None) is not None else ""
    return f"{name}({arg}{_axis_text(op.axis, ndim, op.keepdims)}{dtype})"


def _index_text(description, args):
    """``1:3, ?`` with each symbolic part replaced by its expression (in the order of the op's inputs)."""
    args = iter(args)

    def part(value):
        return "" if value is None else next(args) if value == ops.SYMBOLIC else str(value)

    parts = []
    for entry in description:
        if entry[0] == "newaxis":
            parts.append("None")
        elif entry[0] == "array":
            parts.append(next(args))
        elif entry[0] == "index":
            parts.append(part(entry[1]))
        else:
            text = f"{part(entry[1])}:{part(entry[2])}"
            step = part(entry[3])
            parts.append(text + (f":{step}" if step else ""))
    return ", ".join(parts)


def _elemwise_text(op, args):
    kind = type(op).__name__
    if kind in ops._INFIX:
        return f"({args[0]} {ops._INFIX[kind]} {args[1]})"
    if kind in _PREFIX:
        return _PREFIX[kind] + args[0]
    if kind == "Abs":
        return f"|{args[0]}|"
    if isinstance(op, ops.Cast):
        return f"cast({args[0]}, {op.dtype!r})"
    return f"{_ELEMWISE_NAMES.get(kind, kind.lower())}({', '.join(args)})"


def _body_texts(fgraph, args):
    """The outputs of a Composite body as expressions of ``args`` (one text per body input)."""
    texts = dict(zip(fgraph.inputs, args))
    for node in fgraph.apply_nodes:
        inner = [texts[i] if i in texts else _pp_constant(i) for i in node.inputs]
        texts[node.outputs[0]] = _elemwise_text(node.op, inner)
    return [texts[o] if o in texts else _pp_constant(o) for o in fgraph.outputs]


def node_text(node, args, index=0):
    """Output ``index`` of ``node`` as an expression, given its inputs' expressions ``args``."""
    op, inputs = node.op, node.inputs
    if isinstance(op, ops.Composite):
        return _body_texts(op.fgraph, args)[index]
    if isinstance(op, ops.Elemwise):
        return _elemwise_text(op, args)
    if isinstance(op, ops.FusedReduce):
        ndim = max(i.ndim for i in inputs)
        inner = _body_texts(op.elemwise.fgraph, args)[0] if isinstance(op.elemwise, ops.Composite) \
            else _elemwise_text(op.elemwise, args)
        return _reduce_text(op.reduce, ndim, inner)
    if isinstance(op, ops.Reduce):
        return _reduce_text(op, inputs[0].ndim, args[0])
    if isinstance(op, ops.Argmax):
        axis = f", axis={op.axis}" if op.axis is not None else ""
        keepdims = ", keepdims=True" if op.keepdims else ""
        return f"{type(op).__name__.lower()}({args[0]}{axis}{keepdims})"
    if isinstance(op, ops.DimShuffle):
        ndim, order = len(op.input_broadcastable), list(op.new_order)
        kept = [a for a in order if a != "x"]
        if order == list(reversed(range(ndim))) and ndim > 1:
            return f"{args[0]}.T"
        if order[len(order) - ndim:] == list(range(ndim)) and len(kept) == ndim:  # broadcast padding only
            return args[0]
        return f"{args[0]}.dimshuffle({', '.join(repr(a) for a in order)})"
    if isinstance(op, ops.IncSubtensor):
        function = "set_subtensor" if op.set_instead_of_inc else "inc_subtensor"
        return f"{function}({args[0]}[{_index_text(op.idx_list, args[2:])}], {args[1]})"
    if isinstance(op, ops.Subtensor):
        return f"{args[0]}[{_index_text(op.idx_list, args[1:])}]"
    if isinstance(op, ops.Shape):
        return f"{args[0]}.shape"
    if isinstance(op, ops.ShapeI):
        return f"{args[0]}.shape[{op.i}]"
    if isinstance(op, ops.MakeVector):
        return f"[{', '.join(args)}]"
    kind = type(op).__name__
    name = kind.lower() if hasattr(op, "inner_graphs") else _FUNCTION_NAMES.get(kind, str(op))  # scan, ifelse
    suffix = f"[{index}]" if len(node.outputs) > 1 else ""
    return f"{name}({', '.join(args)}){suffix}"


def _roots(obj, what):
    from .function import Function

    if isinstance(obj, Function):
        return list(obj.maker.fgraph.outputs)
    if isinstance(obj, FunctionGraph):
        return list(obj.outputs)
    roots = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not roots or not all(isinstance(r, Variable) for r in roots):
        raise TypeError(f"{what} takes a variable, a list of variables or a compiled function, "
                        f"got {type(obj).__name__}")
    return roots


def pprint(obj):
    """A variable as one infix expression, Theano's ``pp``: ``((x ** 2) + y)``, ``tanh(dot(x, W))``,
    ``x[1:3]``, ``sum(x, axis=0)``. Every binary operation is parenthesised; a named intermediate
    variable is shown by its name; a fused (Composite) op is shown as the expression it computes.
    A list of variables (or a compiled function: its outputs) gives one line per variable."""
    roots = _roots(obj, "pprint")
    lines = []
    for root in roots:
        texts = {}

        def ref(var):
            if var.owner is None:
                return _pp_constant(var) if isinstance(var, Constant) else leaf_text(var)
            return var.name if var.name else texts[var]

        for node in toposort([root]):
            args = [ref(i) for i in node.inputs]
            for index, out in enumerate(node.outputs):
                texts[out] = node_text(node, args, index)
        lines.append(texts[root] if root.owner is not None else ref(root))
    return "\n".join(lines)


pp = pprint


# ---------------------------------------------------------------------------------------------------
# debugprint: an indented tree


def _letters(n):
    text = ""
    while True:
        text = chr(ord("A") + n % 26) + text
        n = n // 26 - 1
        if n < 0:
            return text


def _value_text(value):
    return np.array2string(np.asarray(value), threshold=8, edgeitems=3, separator=", ").replace("\n", "")


class _TreePrinter:
    """Writes the lines of debugprint, sharing ``done`` ({node or leaf: id text}) across its roots."""

    def __init__(self, ids, done, depth, print_type, stop_on_name, storage):
        if ids not in ("CHAR", "int", "id", ""):
            raise ValueError(f"debugprint: ids must be 'CHAR', 'int', 'id' or '', got {ids!r}")
        self.ids, self.done, self.depth = ids, done, depth
        self.print_type, self.stop_on_name, self.storage = print_type, stop_on_name, storage
        self.lines, self.inner = [], []

    def ident(self, key):
        if key not in self.done:
            number = len(self.done)
            self.done[key] = {"CHAR": f"[id {_letters(number)}]", "int": f"[id {number}]",
                              "id": f"[id {id(key)}]", "": ""}[self.ids]
        return self.done[key]

    def describe(self, var):
        key = var.owner if var.owner is not None else var
        ident = self.ident(key)
        type_part = f" {type_text(var)}" if self.print_type else ""
        if var.owner is not None:
            index = f".{var.index}" if len(var.owner.outputs) > 1 else ""
            name = f" {var.name!r}" if var.name else ""
            head = f"{var.owner.op}{index}"
            return " ".join(p for p in (head, ident) if p) + type_part + name
        text = " ".join(p for p in (leaf_text(var), ident) if p) + type_part
        if var in self.storage:
            text += f" {_value_text(self.storage[var])}"
        return text

    def tree(self, root, label="", prefix="", marker=" |"):
        stack = [(root, prefix, 0)]
        while stack:
            var, indent, level = stack.pop()
            if 0 <= self.depth <= level:
                continue
            key = var.owner if var.owner is not None else var
            seen = key in self.done
            self.lines.append(indent + self.describe(var) + (label if level == 0 else ""))
            node = var.owner
            if node is None or seen or (self.stop_on_name and var.name and level > 0):
                continue
            if hasattr(node.op, "inner_graphs") and node.op not in [op for op, _ in self.inner]:
                self.inner.append((node.op, var))
            for child in reversed(node.inputs):
                stack.append((child, indent + marker, level + 1))

    def inner_graphs(self):
        """Theano prints the graphs inside loops and branches after the outer graph."""
        if not self.inner:
            return
        self.lines += ["", "Inner graphs:", ""]
        position = 0
        while position < len(self.inner):  # inner graphs may hold loops of their own
            op, var = self.inner[position]
            position += 1
            self.lines.append(self.describe(var))
            for graph in op.inner_graphs():
                for out in graph.outputs:
                    self.tree(out, prefix=" >", marker=" |")


def debugprint(obj, depth=-1, print_type=False, file=None, ids="CHAR", stop_on_name=False, done=None,
               print_storage=False):
    """Print the graph of a variable, a list of variables or a compiled function as a tree (Theano's
    ``debugprint``).

    Each line is a variable: an op's output (``Mul [id A]``, then ``'name'`` if it has one) or a leaf
    (its name, its value for a constant, or its type). A node seen before is shown again by its id,
    not expanded. A compiled function prints the graph it runs, its updates marked; graphs inside
    loops and branches follow under "Inner graphs:".

    ``depth``: how many levels to print (-1: all). ``print_type``: add each variable's type.
    ``ids``: 'CHAR' (A, B, ...), 'int' (0, 1, ...), 'id' (Python's id) or '' (none). ``stop_on_name``:
    do not expand a named variable below the roots. ``done``: a dict of nodes already printed (and
    their ids), shared between calls. ``print_storage``: add the current value of shared variables
    (and of constants). ``file``: where to write (default stdout); ``file='str'`` returns the text.
    """
    from .function import Function

    storage = {}
    if isinstance(obj, Function):
        fgraph = obj.maker.fgraph
        roots = list(fgraph.outputs)
        labels = [""] * len(obj.maker.outputs) + [f"  (update of {t!r})" for t in obj._update_targets]
        if print_storage:
            shared_inputs = fgraph.inputs[len(obj.maker.inputs):]
            storage = {v: s.get_value(borrow=True) for v, s in zip(shared_inputs, obj._shared_inputs)}
    else:
        roots = _roots(obj, "debugprint")
        labels = [""] * len(roots)
    if print_storage:
        from .graph import graph_inputs
        from .shared import SharedVariable

        for var in graph_inputs(roots):
            if isinstance(var, SharedVariable):
                storage[var] = var.get_value(borrow=True)
            elif isinstance(var, Constant) and var.data.size > 6:  # small ones show their value anyway
                storage[var] = var.data

    printer = _TreePrinter(ids, {} if done is None else done, depth, print_type, stop_on_name, storage)
    for root, label in zip(roots, labels):
        printer.tree(root, label)
    printer.inner_graphs()
    text = "\n".join(printer.lines) + "\n"
    if file == "str":
        return text
    (file or sys.stdout).write(text)
    return file
