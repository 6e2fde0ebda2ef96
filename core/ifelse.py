"""Branches: the IfElse op and Theano's ``ifelse``.

``IfElse`` holds two inner FunctionGraphs, the branches. Outer inputs: the condition (a scalar, true
when nonzero), the then-branch's inputs, the else-branch's inputs; outputs: the taken branch's
outputs. Only the taken branch runs, on every backend. ``ifelse`` builds the node with branches that
pass their values through; the ``branches`` rewrite (``sink_into_branches``) then moves into each
branch the nodes that only it reads, so that they are computed only when it is taken.
"""

from .graph import Apply, Constant, FunctionGraph, Op, as_tensor_variable, clone_replace, toposort
from .types import is_float


def _output_type(then_var, else_var, index):
    if then_var.dtype != else_var.dtype or then_var.ndim != else_var.ndim:
        fix = (f"use T.cast(..., '{then_var.dtype}')" if then_var.ndim == else_var.ndim else
               "reshape, dimshuffle or sum one of them to the other's number of axes")
        raise TypeError(f"ifelse: output {index} is {then_var.type} in the then-branch but {else_var.type} in "
                        f"the else-branch; both branches must give the same dtype and number of axes ({fix})")
    return then_var.dtype, tuple(a and b for a, b in zip(then_var.broadcastable, else_var.broadcastable))


class IfElse(Op):
    __props__ = ("then_graph", "else_graph", "name")

    def __init__(self, then_graph, else_graph, name=None):
        if len(then_graph.outputs) != len(else_graph.outputs):
            raise ValueError(f"IfElse: the then-branch has {len(then_graph.outputs)} outputs, the else-branch "
                             f"{len(else_graph.outputs)}")
        self.then_graph, self.else_graph, self.name = then_graph, else_graph, name
        self.n_then = len(then_graph.inputs)

    def __str__(self):
        return (f"IfElse{{{self.name + ', ' if self.name else ''}{len(self.then_graph.outputs)} output(s), "
                f"then {len(self.then_graph.apply_nodes)} node(s), else {len(self.else_graph.apply_nodes)}}}")

    def inner_graphs(self):
        return [self.then_graph, self.else_graph]

    def with_inner_graphs(self, graphs):
        return IfElse(graphs[0], graphs[1], name=self.name)

    def split_outer(self, inputs):
        """(condition, then-branch inputs, else-branch inputs) of a node's inputs."""
        return inputs[0], inputs[1:1 + self.n_then], inputs[1 + self.n_then:]

    def make_node(self, condition, *branch_inputs):
        condition = as_tensor_variable(condition)
        if condition.ndim != 0:
            raise TypeError(f"ifelse: the condition must be a scalar, got {condition.describe()}")
        branch_inputs = [as_tensor_variable(v) for v in branch_inputs]
        expected = self.then_graph.inputs + self.else_graph.inputs
        if len(branch_inputs) != len(expected) or any(v.type != e.type for v, e in zip(branch_inputs, expected)):
            raise TypeError(f"{self}: the inputs {[str(v.type) for v in branch_inputs]} do not match the branches' "
                            f"{[str(e.type) for e in expected]}")
        outputs = []
        for k, (t, e) in enumerate(zip(self.then_graph.outputs, self.else_graph.outputs)):
            dtype, broadcastable = _output_type(t, e, k)
            outputs.append(t.type.__class__(dtype, broadcastable)())
        return Apply(self, [condition, *branch_inputs], outputs)

    def lazy_inputs(self, node):
        """The positions of the inputs that only the taken branch computes (shape inference leaves the
        shapes of the outputs to the node when one of them makes a check)."""
        return range(1, len(node.inputs))

    def infer_shape(self, node, shapes):
        """Each output's shape when both branches state theirs with no check (a branch that may fail
        must run to fail): the sizes where they agree, else the taken branch's, picked by the condition."""
        from . import ops, shape_inference as si

        condition, _, _ = self.split_outer(node.inputs)
        _, then_shapes, else_shapes = self.split_outer(shapes)
        branches = [si.inner_shapes(g.inputs, g.outputs, s)
                    for g, s in ((self.then_graph, then_shapes), (self.else_graph, else_shapes))]
        if None in branches:
            return [None] * len(node.outputs)
        taken = ops.neq(condition, 0)
        return [tuple(a if si.same_size(a, b) else si.switch(taken, a, b)
                      for a, b in zip(branches[0].shape(t), branches[1].shape(e)))
                for t, e in zip(self.then_graph.outputs, self.else_graph.outputs)]

    def branch_expressions(self, inputs):
        """The outputs of both branches as graphs of the node's outer inputs: (then, else)."""
        _, then_inputs, else_inputs = self.split_outer(inputs)
        then_exprs = clone_replace(self.then_graph.outputs, dict(zip(self.then_graph.inputs, then_inputs)))
        else_exprs = clone_replace(self.else_graph.outputs, dict(zip(self.else_graph.inputs, else_inputs)))
        return then_exprs, else_exprs

    def grad(self, inputs, outputs, output_grads):
        from . import ops
        from .grad import grad

        condition, then_inputs, else_inputs = self.split_outer(inputs)
        grads = [None]
        for branch_inputs, exprs in zip((then_inputs, else_inputs), self.branch_expressions(inputs)):
            known = {e: g for e, g in zip(exprs, output_grads) if g is not None and is_float(e.dtype)}
            wrt = [v for v in branch_inputs if is_float(v.dtype)]
            found = dict(zip(wrt, grad(None, wrt, known_grads=known, disconnected_inputs="ignore"))) if known and wrt else {}
            taken = branch_inputs is then_inputs
            for v in branch_inputs:
                if v not in found:
                    grads.append(None)
                    continue
                zero = ops.zeros_like(v)
                grads.append(ifelse(condition, found[v], zero) if taken else ifelse(condition, zero, found[v]))
        return grads


def ifelse(condition, then_branch, else_branch, name=None):
    """``then_branch`` if ``condition`` (a scalar) is nonzero, else ``else_branch``: a variable or a
    list of them (the same number in both, each pair of the same dtype and number of axes; the shapes
    may differ). Only the branch taken is computed."""
    single = not isinstance(then_branch, (list, tuple))
    then_vars = [as_tensor_variable(v) for v in ([then_branch] if single else then_branch)]
    else_vars = [as_tensor_variable(v) for v in ([else_branch] if not isinstance(else_branch, (list, tuple)) else else_branch)]
    if len(then_vars) != len(else_vars):
        raise ValueError(f"ifelse: the then-branch has {len(then_vars)} outputs but the else-branch {len(else_vars)}")
    from . import ops

    for k, (t, e) in enumerate(zip(then_vars, else_vars)):
        if t.dtype != e.dtype:  # a bare Python number takes the other branch's dtype
            if isinstance(e, Constant) and e.weak:
                else_vars[k] = ops.cast(e, t.dtype)
            elif isinstance(t, Constant) and t.weak:
                then_vars[k] = ops.cast(t, e.dtype)
        _output_type(then_vars[k], else_vars[k], k)
    then_inputs = [v.type(v.name) for v in then_vars]
    else_inputs = [v.type(v.name) for v in else_vars]
    op = IfElse(FunctionGraph(then_inputs, then_inputs, clone=False),
                FunctionGraph(else_inputs, else_inputs, clone=False), name=name)
    outputs = op(condition, *then_vars, *else_vars)
    return outputs if not single else (outputs[0] if isinstance(outputs, list) else outputs)


# ---------------------------------------------------------------------------------------------------
# The rewrite that makes branches lazy


def _exclusive_nodes(fgraph, node, side, clients):
    """The nodes that only ``side`` (1: then, 2: else) of the IfElse ``node`` needs: none of their
    outputs is a graph output or read by anything but such nodes or that side of ``node``."""
    op = node.op
    positions = range(1, 1 + op.n_then) if side == 1 else range(1 + op.n_then, len(node.inputs))
    roots = [node.inputs[p] for p in positions]
    outputs = set(map(id, fgraph.outputs))
    exclusive = set()
    for candidate in reversed(toposort(roots, stop=fgraph.inputs)):
        ok = True
        for out in candidate.outputs:
            if id(out) in outputs:
                ok = False
            for client, position in clients.get(out, ()):
                if client is node and position in positions:
                    continue
                if client not in exclusive:
                    ok = False
        if ok:
            exclusive.add(candidate)
    return exclusive


def sink_into_branches(fgraph):
    """Move into each branch of each IfElse the nodes only that branch reads (repeatedly, so that an
    IfElse inside a branch moves in with everything it alone needs). Returns whether it changed."""
    changed = False
    for _ in range(100):
        clients = fgraph.clients()
        for node in reversed(fgraph.apply_nodes):
            if not isinstance(node.op, IfElse):
                continue
            moved = [_exclusive_nodes(fgraph, node, side, clients) for side in (1, 2)]
            if moved[0] or moved[1]:
                _replace(fgraph, node, _absorb(fgraph, node, moved))
                changed = True
                break
        else:
            return changed
    return changed


def _absorb(fgraph, node, moved):
    """A new IfElse node whose branches also compute the ``moved`` nodes (per side)."""
    from .graph import ancestors, graph_inputs

    op = node.op
    graphs, outer = [], []
    for exprs, nodes in zip(op.branch_expressions(node.inputs), moved):
        inside = {id(o) for n in nodes for o in n.outputs}
        # the branch reads what the outer graph computes outside the moved nodes
        stop = [v for v in ancestors(fgraph.outputs) if id(v) not in inside]
        inputs = [v for v in graph_inputs(exprs, stop=stop) if not isinstance(v, Constant)]
        graphs.append(FunctionGraph(inputs, exprs))
        outer.append(inputs)
    new_op = IfElse(graphs[0], graphs[1], name=op.name)
    return new_op.make_node(node.inputs[0], *outer[0], *outer[1])


def _replace(fgraph, old, new):
    memo = dict(zip(old.outputs, new.outputs))
    fgraph.outputs = clone_replace(fgraph.outputs, memo)
