"""An example arignote backend plugin, written as a third party would write one.

It compiles a FunctionGraph into a list of steps and runs them with NumPy. It implements a few ops
itself (its own table, below) and borrows the reference backend's implementations for the rest,
which is a practical way to grow a backend op by op while `arignote conformance toy` stays green.
"""

import numpy as np

import arignote
from arignote.backends.reference.table import IMPLEMENTATIONS as REFERENCE_TABLE
from arignote.core import ops
from arignote.core.graph import Constant


def _elementwise(ufunc):
    def run(node, *values):
        # Theano's broadcasting rule: a size-1 axis stretches only where the type says so
        ops.broadcast_shapes(node.op, [v.shape for v in values], [i.broadcastable for i in node.inputs])
        return ufunc(*values)

    return run


# This backend's own implementations: op class -> function(node, *input arrays) -> output array.
TABLE = {
    ops.Add: _elementwise(np.add),
    ops.Mul: _elementwise(np.multiply),
    ops.Tanh: _elementwise(np.tanh),
    ops.Dot: lambda node, a, b: np.dot(a, b),
    ops.Sum: lambda node, x: np.sum(x, axis=node.op.axis, keepdims=node.op.keepdims, dtype=node.outputs[0].dtype),
}


class Program:
    """What compile() returns: called with the input arrays, returns the output arrays."""

    def __init__(self, fgraph):
        self.inputs = fgraph.inputs
        self.outputs = fgraph.outputs
        self.steps = []
        for node in fgraph.apply_nodes:
            impl = TABLE.get(type(node.op)) or REFERENCE_TABLE.get(type(node.op))
            if impl is None:
                raise arignote.core.errors.UnsupportedOpError(f"the toy backend has no implementation of {node.op}")
            self.steps.append((node, impl))
        self.source = "\n".join(f"{node.outputs[0]!r} = {node.op}(...)" for node, _ in self.steps)

    def __call__(self, values):
        env = dict(zip(self.inputs, values))
        with np.errstate(all="ignore"):
            for node, impl in self.steps:
                args = [v.data if isinstance(v, Constant) else env[v] for v in node.inputs]
                results = impl(node, *args)
                results = results if len(node.outputs) > 1 else (results,)
                for var, value in zip(node.outputs, results):
                    env[var] = np.asarray(value, dtype=var.dtype)  # the declared dtype, as 0-d arrays too
        return [v.data.copy() if isinstance(v, Constant) else env[v] for v in self.outputs]


class ToyBackend(arignote.Backend):
    name = "toy"
    priority = -1  # never the default unless selected

    def available(self):
        return arignote.Availability(True)

    def compile(self, fgraph):
        return Program(fgraph)


@arignote.hookimpl
def arignote_backends():
    return [ToyBackend()]
