"""The reference backend: every op in NumPy, run node by node in topological order.

Obviously correct beats fast here: it is the specification the other backends are checked against.
"""

from time import perf_counter

import numpy as np

from arignote.core.errors import UnsupportedOpError
from arignote.core.graph import Constant
from arignote.core.plan import plan_of
from arignote.core.plugins import Backend, hookimpl
from arignote.core.pyop import implementation, node_error
from arignote.core.sourcetext import escaped, py_comment

from .table import IMPLEMENTATIONS


def _writing_into(impl, position):
    """An elementwise implementation that writes its result into input ``position`` (the plan
    found that nothing else needs that buffer) when the buffer is a fresh array of the result's
    dtype and shape; otherwise it computes into a new array as usual."""

    def run(node, *xs):
        target = xs[position]
        if target.base is None and target.flags.writeable and target.dtype == node.outputs[0].dtype:
            return impl.into(node, target, *xs)
        return impl(node, *xs)

    return run


def _stored_in(impl, position):
    """An update the plan computes in its shared variable's storage (input ``position``): computed
    and checked as usual, then stored there (core hands that storage over writeable and apart)."""

    def run(node, *xs):
        target = xs[position]
        np.copyto(target, impl(node, *xs))
        return target

    return run


def implementation_of(op, table=IMPLEMENTATIONS):
    """The entry of ``table`` that computes ``op``, bound to ``table`` when it runs other ops."""
    impl = implementation(table, op)  # an op written in Python runs its perform (core/pyop.py)
    if impl is None:
        raise UnsupportedOpError(f"the reference backend has no implementation of {op}")
    if hasattr(impl, "bind"):  # implementations that run other ops use this program's table
        impl = impl.bind(table)
    return impl


def evaluate_node(node, values):
    """The outputs of one Apply node on input arrays ``values`` (a list, each of its output's dtype),
    errors worded by node_failure: how test values are computed as a graph is built."""
    impl = implementation_of(node.op)
    with np.errstate(all="ignore"):
        try:
            results = impl(node, *values)
        except Exception as error:
            raise node_error(node, error, values) from error
    results = (results,) if len(node.outputs) == 1 else results
    return [np.asarray(value, dtype=var.dtype) for value, var in zip(results, node.outputs)]


class ReferenceProgram:
    """The executable: a list of steps, each an implementation applied to slots of a value store."""

    def __init__(self, fgraph, table):
        self.fgraph = fgraph
        slots = {}
        for var in fgraph.inputs:
            slots[var] = len(slots)
        self.constants = []
        self.steps = []
        self.writes_into = {}  # node -> the input whose buffer it may reuse
        plan = plan_of(fgraph)
        for node in fgraph.apply_nodes:
            impl = implementation_of(node.op, table)
            if node in plan.late:  # an update computed in its shared variable's storage
                impl = _stored_in(impl, plan.reuse[node])
                self.writes_into[node] = plan.reuse[node]
            elif node in plan.reuse and hasattr(impl, "into"):
                impl = _writing_into(impl, plan.reuse[node])
                self.writes_into[node] = plan.reuse[node]
            for var in node.inputs:
                if isinstance(var, Constant) and var not in slots:
                    slots[var] = len(slots)
                    self.constants.append((slots[var], var.data))
            for var in node.outputs:
                slots[var] = len(slots)
            self.steps.append((node, impl, [slots[v] for v in node.inputs], [slots[v] for v in node.outputs],
                               [np.dtype(v.dtype) for v in node.outputs]))
        for var in fgraph.outputs:
            if isinstance(var, Constant) and var not in slots:
                slots[var] = len(slots)
                self.constants.append((slots[var], var.data))
        self.size = len(slots)
        self.output_slots = [slots[v] for v in fgraph.outputs]
        self.source = self._listing(slots)

    def _listing(self, slots):
        lines = [f"# reference program: inputs {', '.join(f'v{slots[v]}' for v in self.fgraph.inputs)}"]
        for node, _, ins, outs, _ in self.steps:
            note = f" (into v{ins[self.writes_into[node]]})" if node in self.writes_into else ""
            lines.append(f"{', '.join(f'v{o}' for o in outs)} = {escaped(node.op)}({', '.join(f'v{i}' for i in ins)})"
                         f"{note}    # built at {py_comment(node.outputs[0].built_at())}")  # one line per node
        lines.append(f"return {', '.join(f'v{o}' for o in self.output_slots)}")
        return "\n".join(lines)

    def __call__(self, inputs):
        return self._run(inputs, None)

    def profiled(self, inputs):
        """(the outputs, the seconds of each node): each step's Python call is timed, the conversion of
        its results included (function(..., profile=True), core/profile.py)."""
        seconds = [0.0] * len(self.steps)
        return self._run(inputs, seconds), seconds

    def _run(self, inputs, seconds):
        store = [None] * self.size
        store[: len(inputs)] = inputs
        for slot, data in self.constants:
            store[slot] = data
        with np.errstate(all="ignore"):
            for k, (node, impl, ins, outs, dtypes) in enumerate(self.steps):
                if seconds is not None:
                    start = perf_counter()
                args = [store[i] for i in ins]
                try:
                    results = impl(node, *args)
                except Exception as error:
                    raise node_error(node, error, args) from error
                if len(outs) == 1:
                    results = (results,)
                for slot, value, dtype in zip(outs, results, dtypes):
                    store[slot] = np.asarray(value, dtype=dtype)
                if seconds is not None:
                    seconds[k] = perf_counter() - start
        return [store[s] for s in self.output_slots]


class ReferenceBackend(Backend):
    name = "reference"
    priority = 0
    evaluate_node = staticmethod(evaluate_node)  # one node on arrays: core/test_values.py asks for it

    def compile(self, fgraph, profile=False):
        # every program can time its nodes (ReferenceProgram.profiled): ``profile`` changes nothing
        return ReferenceProgram(fgraph, IMPLEMENTATIONS)


@hookimpl
def arignote_backends():
    return [ReferenceBackend()]
