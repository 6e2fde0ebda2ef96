"""Loops: the Scan op (an inner FunctionGraph run once per step) with its gradient, and Theano's
``scan``, ``map``, ``reduce``, ``foldl``, ``foldr`` and ``until`` built on it.

The op's contract (every backend carries out the same one; the reference backend's Python loop is the
specification):

- inner graph inputs: one row of each sequence, then each recurrent output's taps (the state ``k``
  steps back for each tap ``k`` of ``taps[j]``, in that order), then the non-sequences;
  inner graph outputs: each recurrent output's new state, each mapped ("nit_sot") output's row, and,
  for a while-loop (``as_while``), the condition that ends the loop after the step that makes it true;
- outer inputs: the step count ``n``, each sequence (at least ``n`` rows, row ``t`` read by step
  ``t``), each recurrent output's initial rows (exactly ``-min(taps[j])`` of them), the non-sequences;
- outer outputs: for each recurrent output its buffer, the initial rows followed by one row per step;
  for each mapped output one row per step. ``keep[j]`` (set by the save-memory rewrite, never by a user)
  says that only the last ``keep[j]`` rows of output j are read: the loop then holds ``buffer_rows(j)``
  rows (at least ``keep[j]``, and one more than the deepest tap, so that a step never overwrites a row
  it reads) and the output is the last ``buffer_rows(j)`` rows (all of them when there are fewer).
"""

import builtins

from . import ops
from .graph import Apply, Constant, FunctionGraph, Op, as_tensor_variable, clone_replace
from .test_values import built_without_test_values, give_first_step_values
from .types import DISCRETE_DTYPES, TensorType, is_float


class until:
    """Returned by a step function (alone or with its outputs and updates): stop after the step
    where ``condition`` is true. The outputs then have one row per step run."""

    def __init__(self, condition):
        condition = as_tensor_variable(condition)
        if condition.ndim != 0:
            raise TypeError(f"until: the condition must be a scalar, got {condition.describe()}")
        self.condition = condition


class OrderedUpdates(dict):
    """The updates a scan returns ({shared variable: new value}), in the order they were made; falsy
    when empty. Pass them to ``function(..., updates=)``."""

    def __add__(self, other):
        merged = OrderedUpdates(self)
        merged.update(other)
        return merged


def _row_type(var):
    """The type of one row of ``var`` (its first axis dropped)."""
    return TensorType(var.dtype, var.broadcastable[1:])


class Scan(Op):
    __props__ = ("fgraph", "n_seqs", "taps", "n_nit", "keep", "as_while", "truncate", "name")

    def __init__(self, fgraph, n_seqs, taps, n_nit, keep=None, as_while=False, truncate=-1, name=None):
        self.fgraph = fgraph
        self.n_seqs = int(n_seqs)
        self.taps = tuple(tuple(int(k) for k in t) for t in taps)
        self.n_nit = int(n_nit)
        self.n_rec = len(self.taps)
        self.keep = tuple(keep) if keep is not None else (None,) * (self.n_rec + self.n_nit)
        self.as_while = bool(as_while)
        self.truncate = int(truncate)
        self.name = name
        self.n_taps = builtins.sum(len(t) for t in self.taps)
        self.n_ns = len(fgraph.inputs) - self.n_seqs - self.n_taps
        expected_outputs = self.n_rec + self.n_nit + int(self.as_while)
        if self.n_ns < 0 or len(fgraph.outputs) != expected_outputs or len(self.keep) != self.n_rec + self.n_nit:
            raise ValueError(f"Scan: an inner graph of {len(fgraph.inputs)} inputs and {len(fgraph.outputs)} "
                             f"outputs does not fit {self.n_seqs} sequences, taps {self.taps}, {self.n_nit} "
                             f"mapped outputs{' and a condition' if self.as_while else ''}")
        for t in self.taps:
            if not t or builtins.any(k >= 0 for k in t):
                raise ValueError(f"Scan: the taps of a recurrent output must be negative, got {t}")

    def __str__(self):
        kind = "while" if self.as_while else "for"
        name = f"{self.name}, " if self.name else ""
        return (f"Scan{{{name}{kind}, {self.n_seqs} seq, taps={list(builtins.map(list, self.taps))}, {self.n_nit} mapped, "
                f"{len(self.fgraph.apply_nodes)} inner node(s)"
                + (f", keep={list(self.keep)}" if builtins.any(k is not None for k in self.keep) else "") + "}")

    def inner_graphs(self):
        return [self.fgraph]

    def with_inner_graphs(self, graphs, **changes):
        """This op with another inner graph (same inputs and outputs) and ``changes`` to its props."""
        props = dict(n_seqs=self.n_seqs, taps=self.taps, n_nit=self.n_nit, keep=self.keep,
                     as_while=self.as_while, truncate=self.truncate, name=self.name)
        props.update(changes)
        return Scan(graphs[0], **props)

    # -- the parts of the inner graph and of the outer inputs

    def depth(self, j):
        """How many rows before the current step recurrent output j reads (its initial rows)."""
        return -builtins.min(self.taps[j])

    def buffer_rows(self, j):
        """Rows a compiled loop holds for output j (recurrent or mapped): all (None), or ``keep[j]``
        widened to one more than the deepest tap, so a step's result never lands on a row it reads."""
        keep = self.keep[j]
        if keep is None:
            return None
        return builtins.max(keep, self.depth(j) + 1) if j < self.n_rec else keep

    def inner_seqs(self):
        return self.fgraph.inputs[:self.n_seqs]

    def inner_taps(self):
        """One list per recurrent output: the inner inputs of its taps, in the order of ``taps[j]``."""
        result, at = [], self.n_seqs
        for t in self.taps:
            result.append(self.fgraph.inputs[at:at + len(t)])
            at += len(t)
        return result

    def inner_non_seqs(self):
        return self.fgraph.inputs[self.n_seqs + self.n_taps:]

    def split_outer(self, inputs):
        """(n, sequences, initial rows, non-sequences) of a node's inputs."""
        s, r = self.n_seqs, self.n_rec
        return inputs[0], inputs[1:1 + s], inputs[1 + s:1 + s + r], inputs[1 + s + r:]

    def make_node(self, n, *outer):
        n = ops.cast(ops._as(n), "int64")
        outer = [ops._as(v) for v in outer]
        if n.ndim != 0:
            raise TypeError(f"{self}: the step count must be a scalar, got {n.describe()}")
        if len(outer) != self.n_seqs + self.n_rec + len(self.inner_non_seqs()):
            raise TypeError(f"{self}: expected {self.n_seqs + self.n_rec + self.n_ns} outer inputs after the step "
                            f"count, got {len(outer)}")
        _, seqs, inits, non_seqs = self.split_outer([n, *outer])
        states = [taps[0].type for taps in self.inner_taps()]
        for what, given, wanted in ([("sequence", v, i.type) for v, i in zip(seqs, self.inner_seqs())]
                                    + [("initial state", v, t) for v, t in zip(inits, states)]):
            if given.ndim != wanted.ndim + 1 or _row_type(given) != wanted:
                raise TypeError(f"{self}: a {what} of type {given.type} does not give rows of type {wanted}")
        for given, inner in zip(non_seqs, self.inner_non_seqs()):
            if given.type != inner.type:
                raise TypeError(f"{self}: a non-sequence of type {given.type} where the step expects {inner.type}")
        outputs = [ops._out(t.dtype, (False,) + t.broadcastable) for t in states]
        outputs += [ops._out(o.dtype, (False,) + o.broadcastable)
                    for o in self.fgraph.outputs[self.n_rec:self.n_rec + self.n_nit]]
        return Apply(self, [n, *outer], outputs)

    def infer_shape(self, node, shapes):
        """Each output's rows (the initial rows and one per step, or the last ``keep``) and the shape of
        a row, when the step's shapes follow from its inputs' with no check (a step that may fail must
        run to fail) and each state keeps its shape; the outer inputs are checked as the loop checks
        them. A while-loop's number of steps is known only when it runs."""
        from . import shape_inference as si

        if self.as_while:
            return [None] * len(node.outputs)
        n, seqs, inits, _ = self.split_outer(node.inputs)
        _, seq_shapes, init_shapes, ns_shapes = self.split_outer(shapes)
        states = [tuple(s[1:]) for s in init_shapes]
        known = ([tuple(s[1:]) for s in seq_shapes] + [states[j] for j, t in enumerate(self.taps) for _ in t]
                 + [tuple(s) for s in ns_shapes])
        step = si.inner_shapes(self.fgraph.inputs, self.fgraph.outputs, known)
        rows = [step.shape(o) for o in self.fgraph.outputs[:self.n_rec + self.n_nit]] if step else None
        if rows is None or not builtins.all(si.same_shape(rows[j], states[j]) for j in range(self.n_rec)):
            return [None] * len(node.outputs)
        results = []
        for j in range(self.n_rec + self.n_nit):
            length = si.add(self.depth(j), n) if j < self.n_rec else n
            kept = self.buffer_rows(j)
            row = rows[j]
            if j >= self.n_rec and not si.positive(n):  # after no step, a mapped output's rows have no shape
                row = tuple(si.switch(ops.gt(n, 0), r, 0) for r in row)
            results.append((length if kept is None else si.minimum(kept, length),) + tuple(row))
        checks = []  # what the loop checks before its first step
        for s, shape in zip(seqs, seq_shapes):
            if not si.same_size(shape[0], n):  # at least n rows: the first n rows of a stand-in are n
                checks.append(ops.specify_shape(si.stand_in(s, shape)[:n], [n] + [None] * s.ndim))
        for j, (x0, shape) in enumerate(zip(inits, init_shapes)):
            if si.value_of(shape[0]) != self.depth(j):
                checks.append(ops.specify_shape(si.stand_in(x0, shape), [self.depth(j)] + [None] * x0.ndim))
        if not seqs and not si.nonneg(n):
            checks.append(si.empty("int8", n, 0))  # a negative number of steps is an error
        for check in checks:
            results = [si.checked(r, check, node) for r in results]
        return results

    @built_without_test_values  # the backward step's placeholders have none; its outer nodes get theirs
    def grad(self, inputs, outputs, output_grads):
        return scan_grad(self, inputs, outputs, output_grads)


# ---------------------------------------------------------------------------------------------------
# The gradient: a second scan, walking the steps backwards (backpropagation through time).


def _reverse(x, start, stop):
    """Rows start .. stop-1 of ``x``, last first."""
    return x[start:stop][::-1]


def scan_grad(op, inputs, outputs, output_grads):
    """Gradients of a Scan node: one backward Scan whose step differentiates the forward step, given
    what that step read (the sequences' rows and the states, taken from the forward buffers) and the
    intermediate values it computed (kept by the forward loop: ``_read_residuals``). It carries, for each recurrent output, the gradient of the states the coming
    steps read (a window of ``depth`` rows, or the state itself for depth 1) and, for each
    non-sequence, the sum of its gradients so far. ``truncate`` keeps the last ``truncate`` steps."""
    from .grad import grad as symbolic_grad

    if op.as_while:
        raise TypeError(f"{op}: a scan that stops on a condition (until) has no gradient; give it a fixed "
                        "number of steps to differentiate it")
    if builtins.any(k is not None for k in op.keep):
        raise TypeError(f"{op}: a scan whose rows were dropped (keep) cannot be differentiated")
    n, seqs, inits, non_seqs = op.split_outer(inputs)
    bufs, g_bufs, g_nits = outputs[:op.n_rec], output_grads[:op.n_rec], output_grads[op.n_rec:]
    steps = n if op.truncate < 0 else ops.minimum(n, op.truncate)
    start = n - steps  # the first forward step the backward pass reaches

    # the backward step's sequences (b_seqs) and their outer values (outer_seqs), reversed: the
    # forward sequences' rows, then the states each tap read
    b_seqs = [i.type(f"{i.name or 'row'}") for i in op.inner_seqs()]
    outer_seqs = [_reverse(s, start, n) for s in seqs]
    b_taps, replace = [], dict(zip(op.inner_seqs(), b_seqs))
    for j, (taps, tap_inputs) in enumerate(zip(op.taps, op.inner_taps())):
        m = op.depth(j)
        row = []
        for k, inner in zip(taps, tap_inputs):
            p = inner.type(f"state{j}[t{k}]")
            row.append(p)
            replace[inner] = p
            outer_seqs.append(bufs[j][m + k + start:m + k + n][::-1])
        b_taps.append(row)
    b_seqs += [p for row in b_taps for p in row]
    b_non_seqs = [i.type(i.name) for i in op.inner_non_seqs()]
    replace.update(zip(op.inner_non_seqs(), b_non_seqs))
    cloned = {}
    forward = clone_replace(op.fgraph.outputs, dict(replace), memo=cloned)
    rec_outs, nit_outs = forward[:op.n_rec], forward[op.n_rec:op.n_rec + op.n_nit]

    differentiable = [is_float(t[0].dtype) for t in op.inner_taps()]
    known = {}
    for k, (out, g) in enumerate(zip(nit_outs, g_nits)):
        if g is not None and is_float(out.dtype):
            p = out.type(f"grad_mapped{k}")
            b_seqs.append(p)
            outer_seqs.append(_reverse(g, start, n))
            known[out] = p
    windows = []  # backward recurrent state per differentiable recurrent output
    for j, (out, g) in enumerate(zip(rec_outs, g_bufs)):
        if not differentiable[j]:
            windows.append(None)
            continue
        m = op.depth(j)
        state_type = op.inner_taps()[j][0].type
        window = state_type(f"grad_state{j}") if m == 1 else TensorType(state_type.dtype, (False,) + state_type.broadcastable)(f"grad_window{j}")
        windows.append(window)
        dy = window if m == 1 else window[m - 1]
        if g is not None:
            p = out.type(f"grad_out{j}")
            b_seqs.append(p)
            outer_seqs.append(g[m + start:m + n][::-1])
            dy = dy + p
        known[out] = known[out] + dy if out in known else dy
    wrt_seqs = [(i, p) for i, p in enumerate(b_seqs[:op.n_seqs]) if is_float(p.dtype)]
    wrt_taps = [(j, k, p) for j, row in enumerate(b_taps) if differentiable[j] for k, p in zip(op.taps[j], row)]
    wrt_ns = [(w, p) for w, p in enumerate(b_non_seqs) if is_float(p.dtype)]
    wrt = [p for _, p in wrt_seqs] + [p for _, _, p in wrt_taps] + [p for _, p in wrt_ns]
    grads = symbolic_grad(None, wrt, known_grads=known, disconnected_inputs="ignore") if known and wrt else \
        [ops.zeros_like(p) for p in wrt]
    g_seq_rows = grads[:len(wrt_seqs)]
    g_tap = {(j, k): g for (j, k, _), g in zip(wrt_taps, grads[len(wrt_seqs):len(wrt_seqs) + len(wrt_taps)])}
    g_ns = grads[len(wrt_seqs) + len(wrt_taps):]

    # the backward step's new recurrent states: windows, then the non-sequences' running sums
    new_states, state_inits, accumulators = [], [], []
    for j, window in enumerate(windows):
        if window is None:
            continue
        m = op.depth(j)
        tap_grads = [g_tap.get((j, k), None) for k in range(-m, 0)]
        if m == 1:
            new_states.append(tap_grads[0])
            state_inits.append(ops.zeros_like(inits[j]))
        else:
            shape_row = ops.zeros_like(window[0])
            rows = ops.stack([g if g is not None else shape_row for g in tap_grads])
            shifted = ops.join(0, ops.zeros_like(window[:1]), window[:m - 1])
            new_states.append(rows + shifted)
            state_inits.append(ops.zeros_like(inits[j])[None])
    for (w, p), g in zip(wrt_ns, g_ns):
        total = p.type(f"grad_sum{w}")
        accumulators.append(total)
        new_states.append(total + g)
        state_inits.append(ops.zeros_like(non_seqs[w])[None])
    carried = [w for w in windows if w is not None] + accumulators
    inner_outputs = new_states + list(g_seq_rows)
    inner_outputs, extended = _read_residuals(op, inputs, cloned, replace, inner_outputs, b_seqs, outer_seqs,
                                              start, n)
    if extended is not None:  # the forward values come from the scan that also keeps the residuals
        outer_seqs = clone_replace(outer_seqs, dict(zip(outputs, extended.outputs)))
    inner = FunctionGraph(b_seqs + carried + b_non_seqs, inner_outputs)
    backward = Scan(inner, len(b_seqs), [(-1,)] * len(carried), len(g_seq_rows),
                    name=f"grad of {op.name}" if op.name else "grad")
    results = backward(steps, *outer_seqs, *state_inits, *non_seqs)
    results = results if isinstance(results, list) else [results]
    finals = [r[-1] for r in results[:len(carried)]]
    seq_rows = results[len(carried):]

    complete = ops.cast(ops.eq(steps, n), "int8")  # truncated: the initial states get no gradient
    grads_out = [None]  # the step count
    seq_grads = [None] * op.n_seqs
    for (i, _), rows in zip(wrt_seqs, seq_rows):
        # shaped like the sequence's rows, also after zero steps (when a mapped output's rows have no shape)
        rows = ops.reshape(rows, [ops.shape_i(rows, 0)] + [ops.shape_i(seqs[i], a) for a in range(1, seqs[i].ndim)])
        seq_grads[i] = ops.inc_subtensor(ops.zeros_like(seqs[i])[start:n], rows[::-1])
    init_grads, finals_iter = [], iter(finals)
    for j in range(op.n_rec):
        if windows[j] is None:
            init_grads.append(None)
            continue
        final = next(finals_iter)
        g = (final[None] if op.depth(j) == 1 else final) * complete
        if g_bufs[j] is not None:
            g = g + g_bufs[j][:op.depth(j)]
        init_grads.append(g)
    ns_grads = [None] * len(non_seqs)
    for (w, _), final in zip(wrt_ns, finals_iter):
        ns_grads[w] = final
    return grads_out + seq_grads + init_grads + ns_grads


def _read_residuals(op, inputs, cloned, replace, inner_outputs, b_seqs, outer_seqs, start, n):
    """Have the backward step read the forward step's intermediate values (its residuals) instead of
    computing them again: each value the gradient reads from the recomputed forward step, when it
    depends on the step's sequence rows or states, becomes a mapped output of an extended copy of the
    forward scan (``extends`` names the original; the ``loops`` rewrite merges the two, so the forward
    loop runs once) and a sequence of the backward scan. Views are kept as views of their stored base.
    Returns (the backward step's outputs reading the residuals, the extended forward node or None)."""
    from .graph import toposort

    placeholders = {id(v) for v in replace.values()}
    origin = {id(c): o for o, c in cloned.items() if id(c) not in placeholders and o not in replace}
    varying = {id(replace[i]) for i in op.fgraph.inputs[:op.n_seqs + op.n_taps]}
    for node in toposort(inner_outputs, stop=b_seqs):
        if builtins.any(id(i) in varying for i in node.inputs):
            varying.update(id(o) for o in node.outputs)
    residuals = {}
    for node in toposort(inner_outputs, stop=b_seqs):
        if builtins.any(id(o) in origin for o in node.outputs):
            continue  # a node of the recomputed forward step
        for var in node.inputs:
            while var.owner is not None and var.owner.op.view_map and id(var.owner.inputs[0]) in origin:
                var = var.owner.inputs[0]  # keep the view, store its base
            if id(var) in origin and id(var) in varying and not isinstance(var, Constant):
                residuals.setdefault(id(var), var)
    if not residuals:
        return inner_outputs, None
    residuals = list(residuals.values())
    ext_inner = FunctionGraph(op.fgraph.inputs, op.fgraph.outputs[:op.n_rec + op.n_nit]
                              + [origin[id(r)] for r in residuals] + op.fgraph.outputs[op.n_rec + op.n_nit:])
    ext_op = op.with_inner_graphs([ext_inner], n_nit=op.n_nit + len(residuals),
                                  keep=op.keep + (None,) * len(residuals))
    ext_op.extends = op
    extended = ext_op.make_node(*inputs)
    stored = extended.outputs[op.n_rec + op.n_nit:]
    rows = [r.type(f"residual{k}") for k, r in enumerate(residuals)]
    b_seqs += rows
    outer_seqs += [_reverse(s, start, n) for s in stored]
    return clone_replace(inner_outputs, dict(zip(residuals, rows))), extended


def merge_extended(fgraph):
    """A forward scan and its extended copy made by a gradient (same inputs, the same step with more
    mapped outputs) become one node: the copy's."""
    extended = [node for node in fgraph.apply_nodes if getattr(node.op, "extends", None) is not None]
    memo = {}
    for node in fgraph.apply_nodes:
        for ext in extended:
            if node is not ext and node.op == ext.op.extends and len(node.inputs) == len(ext.inputs) \
                    and builtins.all(a is b for a, b in zip(node.inputs, ext.inputs)):
                memo.update(zip(node.outputs, ext.outputs))
                break
    _replace_nodes(fgraph, memo)
    return bool(memo)


# ---------------------------------------------------------------------------------------------------
# Theano's scan and its relatives


def _listify(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _sequence_slices(spec, go_backwards):
    """(the sequence, its taps, one outer slice per tap): for taps ts, step t reads row
    t + k + max(-min(ts), 0) for each k, and the sequence gives len - max(max(ts), 0) - max(-min(ts), 0)
    steps (Theano's rule); ``go_backwards`` reverses each tap's slice, so the walk starts at the end."""
    if isinstance(spec, dict):
        x, taps = as_tensor_variable(spec["input"]), spec.get("taps", [0])
        taps = [] if taps is None else _listify(taps)
    else:
        x, taps = as_tensor_variable(spec), [0]
    if x.ndim == 0:
        raise TypeError(f"scan: a sequence must have at least one axis to iterate over, got {x.describe()}")
    taps = [int(k) for k in taps]
    if not taps:
        return x, [], []
    before, after = builtins.max(-builtins.min(taps), 0), builtins.max(builtins.max(taps), 0)
    slices = []
    for k in taps:
        begin, end = k + before, k - after
        part = x[begin:] if end == 0 else x[begin:end]
        slices.append(part[::-1] if go_backwards else part)  # Theano's rule: each tap's slice reversed
    return x, taps, slices


def _output_spec(info, index):
    """(initial rows or None, taps, the state's type) of one entry of ``outputs_info``."""
    if info is None:
        return None, None, None
    if isinstance(info, dict):
        if info.get("initial") is None:
            return None, None, None
        x0, taps = as_tensor_variable(info["initial"]), [int(k) for k in _listify(info.get("taps", [-1]))]
    else:
        x0, taps = as_tensor_variable(info), [-1]
    if not taps or builtins.any(k >= 0 for k in taps):
        raise ValueError(f"scan: the taps of output {index} must be negative (past states), got {taps}")
    if taps == [-1]:
        return ops.dimshuffle(x0, ["x"] + list(range(x0.ndim))), taps, x0.type
    depth = -builtins.min(taps)
    if x0.ndim == 0:
        raise TypeError(f"scan: output {index} has taps {taps}, so its initial value must hold {depth} rows "
                        f"(one axis more than the state), got {x0.describe()}")
    return x0[:depth], taps, _row_type(x0)


def _is_updates(item):
    from .shared import SharedVariable

    return isinstance(item, dict) or (isinstance(item, (list, tuple)) and len(item) > 0 and builtins.all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], SharedVariable) for p in item))


def _parse_step_result(result):
    """(outputs, updates, condition) from what a step function returned: outputs (a variable or a
    list), an updates dict (or list of pairs), an ``until``, or a tuple or list mixing those."""
    outputs, updates, found = [], {}, []

    def visit(item, top):
        if isinstance(item, until):
            found.append(item.condition)
        elif _is_updates(item):
            updates.update(dict(item))
        elif isinstance(item, (list, tuple)):
            for part in item:
                visit(part, False) if top else outputs.append(part)
        elif item is not None:
            outputs.append(item)

    visit(result, True)
    return outputs, updates, (found[0] if found else None)


def _inner_dependent(roots, placeholders):
    """ids of the variables among the ancestors of ``roots`` that depend on one of ``placeholders``."""
    from .graph import toposort

    dependent = set(builtins.map(id, placeholders))
    for node in toposort(roots, stop=placeholders):
        if builtins.any(id(i) in dependent for i in node.inputs):
            dependent.update(id(o) for o in node.outputs)
    return dependent


def _captured(roots, dependent):
    """The outer variables the step reads: those it does not compute per step but uses (a shared
    variable, an input, or something computed once before the loop), in discovery order."""
    from .graph import toposort

    found = {}
    for node in toposort(roots, stop=[]):
        if id(node.outputs[0]) not in dependent:
            continue
        for i in node.inputs:
            if id(i) not in dependent and not isinstance(i, Constant):
                found.setdefault(id(i), i)
    for r in roots:
        if id(r) not in dependent and not isinstance(r, Constant):
            found.setdefault(id(r), r)
    return list(found.values())


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, truncate_gradient=-1,
         go_backwards=False, mode=None, name=None, profile=False, allow_gc=None, strict=False,
         return_list=False):
    """Theano's scan: ``fn`` is called once with symbolic rows of the sequences (one per tap), the
    past states of the recurrent outputs (one per tap) and the non-sequences, and describes one step.
    Returns ``(outputs, updates)``: each output with one row per step (the initial states left out),
    a variable when there is one output (unless ``return_list``), and the updates to pass to
    ``function`` (the shared variables the step updates, random streams included)."""
    from .shared import SharedVariable

    seq_specs = _listify(sequences)
    infos = _listify(outputs_info) if outputs_info is not None else None
    non_seqs = [as_tensor_variable(v) for v in _listify(non_sequences)]
    if int(truncate_gradient) == 0 or (int(truncate_gradient) < 0 and int(truncate_gradient) != -1):
        raise ValueError(f"scan: truncate_gradient must be -1 (no truncation) or a positive number of steps, "
                         f"got {truncate_gradient}")

    seq_args, seq_outer = [], []
    for number, spec in enumerate(seq_specs):
        x, taps, slices = _sequence_slices(spec, go_backwards)
        for k, part in zip(taps, slices):
            p = _row_type(x)(f"{x.name or f'sequence{number}'}[t{'+' if k >= 0 else ''}{k}]")
            seq_args.append(p)
            seq_outer.append(part)
    if n_steps is None:
        if not seq_outer:
            raise ValueError("scan: give sequences or n_steps, so that the number of steps is known")
        count = ops.shape_i(seq_outer[0], 0)
        for part in seq_outer[1:]:
            count = ops.minimum(count, ops.shape_i(part, 0))
    else:
        count = as_tensor_variable(n_steps)
        if count.ndim != 0 or count.dtype not in DISCRETE_DTYPES or count.dtype == "bool":
            raise TypeError(f"scan: n_steps must be an integer scalar, got {count.describe()}")
        count = ops.cast(count, "int64")
        if isinstance(count, Constant) and int(count.data) < 0:
            raise ValueError(f"scan: n_steps must not be negative, got {int(count.data)}")

    specs = [_output_spec(info, i) for i, info in enumerate(infos)] if infos is not None else None
    tap_args, rec_specs = [], []
    for i, (x0, taps, state_type) in enumerate(specs or []):
        if x0 is None:
            continue
        placeholders = [state_type(f"output{i}[t{k}]") for k in taps]
        tap_args += placeholders
        rec_specs.append((i, x0, taps, state_type, placeholders))

    give_first_step_values([(p, part, 0) for p, part in zip(seq_args, seq_outer)]
                           + [(p, x0, k - builtins.min(taps)) for _, x0, taps, _, placeholders in rec_specs
                              for p, k in zip(placeholders, taps)])
    first_serial = next(SharedVariable._serials)
    result = fn(*seq_args, *tap_args, *non_seqs)
    outs, updates, condition = _parse_step_result(result)
    outs = [as_tensor_variable(o) for o in outs]
    if specs is None:
        specs = [(None, None, None)] * len(outs)
    elif len(outs) != len(specs):
        raise ValueError(f"scan: the step function returned {len(outs)} output(s) but outputs_info describes "
                         f"{len(specs)}; give None in outputs_info for an output that is not recurrent")
    for i, x0, taps, state_type, _ in rec_specs:
        out = outs[i]
        if out.type != state_type:
            fix = (f"T.cast(..., '{state_type.dtype}')" if out.dtype != state_type.dtype else
                   "T.unbroadcast(...) / T.patternbroadcast(...) (or give the initial state that pattern)")
            raise TypeError(f"scan: output {i} of the step function ({out.describe()}) has type {out.type}, but its "
                            f"initial state has type {state_type}; a step must return its state's type: use {fix}")

    # shared variables the step updates (explicitly, or random streams drawn inside it) are carried
    updates = {k: as_tensor_variable(v) for k, v in updates.items()}
    roots = outs + list(updates.values()) + ([condition] if condition is not None else [])
    placeholders = seq_args + tap_args
    states = {id(k): k for k in updates}
    from .graph import ancestors

    for var in ancestors(roots):
        if isinstance(var, SharedVariable) and var.serial > first_serial and var.default_update is not None \
                and id(var) not in states:
            states[id(var)] = var
            updates[var] = var.default_update
    roots = outs + list(updates.values()) + ([condition] if condition is not None else [])
    carried = list(states.values())
    for var in carried:
        if not isinstance(var, SharedVariable):
            raise TypeError(f"scan: the step function updates {var.describe()}, which is not a shared variable")
        if updates[var].type != var.type:
            raise TypeError(f"scan: the update of {var.describe()} has type {updates[var].type}, not {var.type}")
    state_args = [v.type(f"{v.name or 'shared'}[t-1]") for v in carried]
    dependent = _inner_dependent(roots, placeholders + carried)
    captured = _captured(roots, dependent)
    captured = [v for v in captured if id(v) not in states]
    if strict:
        loose = [v for v in captured if not isinstance(v, SharedVariable) and v not in non_seqs]
        if loose:
            raise ValueError(f"scan(strict=True): the step function uses {', '.join(v.describe() for v in loose)}, "
                             "which is not among non_sequences")
    ns_args = [v.type(v.name) for v in captured]
    replace = dict(zip(carried, state_args))
    replace.update(zip(captured, ns_args))
    rec_outs = [outs[i] for i, *_ in rec_specs] + [updates[v] for v in carried]
    nit_index = [i for i, spec in enumerate(specs) if spec[0] is None]
    inner_outs = rec_outs + [outs[i] for i in nit_index] + ([ops.cast(condition, "bool")] if condition is not None else [])
    inner_outs = clone_replace(inner_outs, replace)
    inner_inputs = seq_args + tap_args + state_args + ns_args
    fgraph = FunctionGraph(inner_inputs, inner_outs)
    taps = [taps for _, _, taps, _, _ in rec_specs] + [[-1]] * len(carried)
    op = Scan(fgraph, len(seq_args), taps, len(nit_index), as_while=condition is not None,
              truncate=truncate_gradient, name=name)
    inits = [x0 for _, x0, *_ in rec_specs] + [ops.dimshuffle(v, ["x"] + list(range(v.ndim))) for v in carried]
    results = op(count, *seq_outer, *inits, *captured)
    results = results if isinstance(results, list) else [results]

    returned = [None] * len(specs)
    for (i, _, taps, _, _), buf in zip(rec_specs, results):
        returned[i] = buf[-builtins.min(taps):]
    for i, out in zip(nit_index, results[len(rec_outs):]):
        returned[i] = out
    new_updates = OrderedUpdates()
    for var, buf in zip(carried, results[len(rec_specs):len(rec_outs)]):
        new_updates[var] = buf[-1]
        if var.serial > first_serial and var.default_update is not None:
            var.default_update = buf[-1]  # a stream drawn only inside the loop advances with it
    if len(returned) == 1 and not return_list:
        return returned[0], new_updates
    return returned, new_updates


def map(fn, sequences, non_sequences=None, truncate_gradient=-1, go_backwards=False, mode=None, name=None):
    """``fn`` applied to each row of the sequences: ``(outputs, updates)``."""
    return scan(fn, sequences=sequences, outputs_info=None, non_sequences=non_sequences,
                truncate_gradient=truncate_gradient, go_backwards=go_backwards, mode=mode, name=name)


def reduce(fn, sequences, outputs_info, non_sequences=None, go_backwards=False, mode=None, name=None):
    """The last state of a scan: ``(last values, updates)``."""
    outputs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info, non_sequences=non_sequences,
                            go_backwards=go_backwards, mode=mode, name=name, return_list=True)
    lasts = [o[-1] for o in outputs]
    return (lasts[0] if len(lasts) == 1 else lasts), updates


def foldl(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """reduce, first row first."""
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=False, mode=mode, name=name)


def foldr(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """reduce, last row first."""
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=True, mode=mode, name=name)


def map_range(n, fn):
    """``fn(i)`` for i in range(n), each output stacked along a new first axis (the loop behind
    ``jacobian``); ``fn`` returns one variable or a list."""
    index = ops.arange(ops.cast(as_tensor_variable(n), "int64"))
    listed = []

    def step(i):
        result = fn(i)
        listed.append(isinstance(result, (list, tuple)))
        return result

    outputs, _ = scan(step, sequences=[index], return_list=True)
    return outputs if listed[0] else outputs[0]


# ---------------------------------------------------------------------------------------------------
# Rewrites of scans (run by core.rewrite before the backends see the graph)


def _rebuilt(node, op, inputs):
    """``node`` rebuilt with ``op`` on ``inputs``: {old output: new output}."""
    new = op.make_node(*inputs)
    return dict(zip(node.outputs, new.outputs))


def _replace_nodes(fgraph, memo):
    if memo:
        fgraph.outputs = clone_replace(fgraph.outputs, memo)


def each_scan(transform):
    """A pass from ``transform(fgraph, node)`` (returns {old variable: new one} or nothing): applied to
    one Scan node at a time, the graph rebuilt after each change, until none changes. (Replacing several
    nodes at once would leave a new node reading an old node's outputs.) The pass returns whether it
    changed the graph."""

    def run(fgraph):
        changed = False
        for _ in range(10_000):
            for node in fgraph.apply_nodes:
                memo = transform(fgraph, node) if isinstance(node.op, Scan) else None
                if memo:
                    _replace_nodes(fgraph, memo)
                    changed = True
                    break
            else:
                return changed
        return changed

    run.__doc__, run.__name__ = transform.__doc__, transform.__name__
    return run


@each_scan
def push_out_invariants(fgraph, node):
    """Computations of the non-sequences (and constants) only move out of the loop: the loop reads
    their results as new non-sequences. Non-sequences the step no longer reads are dropped."""
    memo = {}
    op, inner = node.op, node.op.fgraph
    n, seqs, inits, non_seqs = op.split_outer(node.inputs)
    invariant = set(builtins.map(id, op.inner_non_seqs()))
    moved = []
    for inner_node in inner.apply_nodes:
        reads_state = builtins.any(id(i) not in invariant and not isinstance(i, Constant) for i in inner_node.inputs)
        if not reads_state and builtins.any(id(i) in invariant for i in inner_node.inputs):
            invariant.update(id(o) for o in inner_node.outputs)
            moved.append(inner_node)
    moved_outputs = {id(o) for m in moved for o in m.outputs}
    frontier = {}
    for inner_node in inner.apply_nodes:
        if inner_node in moved:
            continue
        for i in inner_node.inputs:
            if id(i) in moved_outputs:
                frontier.setdefault(id(i), i)
    for o in inner.outputs:
        if id(o) in moved_outputs:
            frontier.setdefault(id(o), o)
    used = {id(i) for m in inner.apply_nodes if m not in moved for i in m.inputs} | set(builtins.map(id, inner.outputs))
    kept_ns = [(p, v) for p, v in zip(op.inner_non_seqs(), non_seqs) if id(p) in used]
    if not frontier and len(kept_ns) == len(non_seqs):
        return None
    frontier = list(frontier.values())
    outer_values = clone_replace(frontier, dict(zip(op.inner_non_seqs(), non_seqs)))
    inner_clients = inner.clients()
    for k, value in enumerate(frontier):
        # a transposed matrix every step multiplies by is copied once, C-ordered: BLAS runs the small
        # per-step products faster on it (dot(dz_t, W.T) of an LSTM's backward step: 1.5x)
        if value.ndim == 2 and value.owner is not None and type(value.owner.op) is ops.DimShuffle \
                and tuple(value.owner.op.new_order) == (1, 0) and inner_clients.get(value) \
                and builtins.all(type(c.op) is ops.Dot for c, _ in inner_clients[value]):
            outer_values[k] = ops.second(outer_values[k], outer_values[k])
    new_ns = [v.type(v.name) for v in frontier]
    head = inner.inputs[:op.n_seqs + op.n_taps]
    outputs = clone_replace(inner.outputs, dict(zip(frontier, new_ns)))
    new_inner = FunctionGraph(head + [p for p, _ in kept_ns] + new_ns, outputs)
    new_op = op.with_inner_graphs([new_inner])
    memo.update(_rebuilt(node, new_op, [n, *seqs, *inits, *[v for _, v in kept_ns], *outer_values]))
    return memo


@each_scan
def push_out_sequence_products(fgraph, node):
    """``dot(x_t, W)`` for a sequence row x_t and a non-sequence matrix W becomes one matrix product
    before the loop (the rows of X·W, a new sequence): one large BLAS call instead of one per step."""
    memo = {}
    op, inner = node.op, node.op.fgraph
    n, seqs, inits, non_seqs = op.split_outer(node.inputs)
    outer_of = dict(zip(builtins.map(id, op.inner_seqs()), seqs))
    outer_of.update(zip(builtins.map(id, op.inner_non_seqs()), non_seqs))
    seq_ids = set(builtins.map(id, op.inner_seqs()))
    ns_ids = set(builtins.map(id, op.inner_non_seqs()))
    products = [m for m in inner.apply_nodes if isinstance(m.op, ops.Dot) and id(m.inputs[0]) in seq_ids
                and id(m.inputs[1]) in ns_ids and m.inputs[1].ndim == 2 and m.inputs[0].ndim in (1, 2)]
    if not products:
        return None
    new_seqs, new_inputs, replace = [], [], {}
    for m in products:
        x, w = outer_of[id(m.inputs[0])][:n], outer_of[id(m.inputs[1])]
        if x.ndim == 2:
            value = ops.dot(x, w)
        else:
            flat = ops.reshape(x, [-1, ops.shape_i(x, 2)])
            value = ops.reshape(ops.dot(flat, w), [ops.shape_i(x, 0), ops.shape_i(x, 1), ops.shape_i(w, 1)])
        if _row_type(value) != m.outputs[0].type:
            continue
        p = m.outputs[0].type(f"{m.inputs[0].name}·W")
        new_seqs.append(value)
        new_inputs.append(p)
        replace[m.outputs[0]] = p
    if not replace:
        return None
    outputs = clone_replace(inner.outputs, replace)
    rest = inner.inputs[op.n_seqs:]
    new_inner = FunctionGraph(op.inner_seqs() + new_inputs + rest, outputs)
    new_op = op.with_inner_graphs([new_inner], n_seqs=op.n_seqs + len(new_inputs))
    memo.update(_rebuilt(node, new_op, [n, *seqs, *new_seqs, *inits, *non_seqs]))
    return memo


def _last_rows_read(var, clients, outputs, skip=0):
    """How many last rows of ``var`` its readers need when each reads one row counted from the end
    (``var[-i]``, or ``var[skip:][-i]`` through a slice dropping the initial rows); None when a reader
    needs more. Returns (rows, [(reader's output, -i, whether it reads through the slice)])."""
    if id(var) in outputs:
        return None, []
    rows, reads = 0, []
    for client, position in clients.get(var, ()):
        if type(client.op) is not ops.Subtensor or position != 0:
            return None, []
        entry = client.op.idx_list[0] if len(client.op.idx_list) == 1 else None
        if entry is not None and entry[0] == "index" and isinstance(entry[1], int) and entry[1] < 0:
            rows = builtins.max(rows, -entry[1])
            reads.append((client.outputs[0], entry[1], False))
        elif entry is not None and entry[0] == "slice" and skip and entry[1:] == (skip, None, None):
            more, further = _last_rows_read(client.outputs[0], clients, outputs)
            if more is None:
                return None, []
            rows = builtins.max(rows, more)
            reads += [(v, i, True) for v, i, _ in further]
        else:
            return None, []
    return (rows or None), reads


@each_scan
def save_memory(fgraph, node):
    """An output of which only the last rows are read (``out[-1]``, a reduce's result, a shared
    variable's final state) keeps only those rows (``keep``): a million-step loop over a vector state
    holds a few rows, not a million."""
    clients, outputs = fgraph.clients(), set(builtins.map(id, fgraph.outputs))
    memo = {}
    op, keep, reads = node.op, list(node.op.keep), []
    for j, out in enumerate(node.outputs):
        if keep[j] is not None:
            continue
        # a while-loop's step count is known only inside it: there, only direct reads of the last rows
        skip = op.depth(j) if j < op.n_rec and not op.as_while else 0
        rows, found = _last_rows_read(out, clients, outputs, skip=skip)
        if rows is not None:
            keep[j] = rows
            reads.append((j, found))
    if not reads:
        return None
    new = op.with_inner_graphs([op.fgraph], keep=tuple(keep)).make_node(*node.inputs)
    n = node.inputs[0]
    for j, found in reads:
        kept = new.outputs[j]
        # through the slice: the rows of the steps only, so that out[-i] after fewer than i steps raises
        steps_only = kept[ops.maximum(ops.shape_i(kept, 0) - n, 0):]
        for var, index, through_slice in found:
            memo[var] = (steps_only if through_slice else kept)[index]
    trimmed = {j for j, _ in reads}
    memo.update((o, n) for j, (o, n) in enumerate(zip(node.outputs, new.outputs)) if j not in trimmed)
    return memo


def _rows_of_steps(x):
    """The (steps, rows, columns) tensor ``x`` as one matrix of every step's rows."""
    return ops.reshape(x, [-1, ops.shape_i(x, 2)])


def _summed_over_rows(term):
    """v when ``term`` is ``sum(v, axis=0)`` of a matrix v (kept dims, or dimshuffled after), else None."""
    inner = term.owner.inputs[0] if type(term.owner.op) is ops.DimShuffle else term
    owner = inner.owner
    if owner is not None and type(owner.op) is ops.Sum and tuple(owner.op.axis) == (0,) and owner.inputs[0].ndim == 2:
        return owner.inputs[0]
    return None


def _transposed_row(var, seq_ids):
    """The sequence row (an inner input) that ``var`` is the transpose of, or None."""
    owner = var.owner
    if owner is None or type(owner.op) is not ops.DimShuffle or tuple(owner.op.new_order) != (1, 0):
        return None
    return owner.inputs[0] if id(owner.inputs[0]) in seq_ids else None


@each_scan
def push_out_sums(fgraph, node):
    """A running sum of which only the final value is read, ``acc + dot(x_tᵀ, v_t)`` for a sequence
    row x_t (a weight's gradient in backpropagation through time) or ``acc + sum(v_t, axis=0)`` (a
    bias's), becomes the mapped output v_t and one product (or sum) over all steps' rows after the
    loop: ``acc₀ + Xᵀ·V``."""
    memo = {}
    if node.op.as_while:
        return None
    op, inner = node.op, node.op.fgraph
    n, seqs, inits, non_seqs = op.split_outer(node.inputs)
    seq_ids = {id(p): i for i, p in enumerate(op.inner_seqs())}
    clients = inner.clients()
    found = {}  # recurrent output -> (the per-step factor, its sum over the steps from the factor's rows)
    for j, (taps, tap_inputs) in enumerate(zip(op.taps, op.inner_taps())):
        out, acc = inner.outputs[j], tap_inputs[0]
        if taps != (-1,) or op.keep[j] != 1 or out.owner is None or type(out.owner.op) is not ops.Add \
                or len(clients.get(acc, ())) != 1 or builtins.sum(o is out for o in inner.outputs) != 1:
            continue
        a, b = out.owner.inputs
        term = b if a is acc else a if b is acc else None
        if term is None or term.owner is None:
            continue
        if type(term.owner.op) is ops.Dot:
            left, right = term.owner.inputs
            row = _transposed_row(left, seq_ids)
            if row is not None and row.ndim == 2 and right.ndim == 2:
                x = seqs[seq_ids[id(row)]][:n]
                found[j] = (right, lambda flat_v, x=x: ops.dot(ops.transpose(_rows_of_steps(x)), flat_v))
        else:
            summed = _summed_over_rows(term)
            if summed is not None:  # sum(v_t, axis=0) for all t is one sum over every step's rows
                found[j] = (summed, lambda flat_v, term=term, v=summed: clone_replace([term], {v: flat_v})[0])
    if not found:
        return None
    kept = [j for j in range(op.n_rec) if j not in found]
    taps_inputs = op.inner_taps()
    factors = list({id(factor): factor for factor, _ in found.values()}.values())  # one output per factor
    factor_position = {id(factor): k for k, factor in enumerate(factors)}
    new_inner = FunctionGraph(op.inner_seqs() + [p for j in kept for p in taps_inputs[j]] + op.inner_non_seqs(),
                              [inner.outputs[j] for j in kept] + inner.outputs[op.n_rec:op.n_rec + op.n_nit]
                              + factors + inner.outputs[op.n_rec + op.n_nit:])
    keep = [op.keep[j] for j in kept] + list(op.keep[op.n_rec:]) + [None] * len(factors)
    new_op = op.with_inner_graphs([new_inner], taps=[op.taps[j] for j in kept], n_nit=op.n_nit + len(factors),
                                  keep=tuple(keep))
    new = new_op.make_node(n, *seqs, *[inits[j] for j in kept], *non_seqs)
    for position, j in enumerate(kept):
        memo[node.outputs[j]] = new.outputs[position]
    for k in range(op.n_nit):
        memo[node.outputs[op.n_rec + k]] = new.outputs[len(kept) + k]
    for j, (factor, _) in found.items():
        rows = new.outputs[len(kept) + op.n_nit + factor_position[id(factor)]]
        # the factor's width is the sum's last axis (also after zero steps, when its rows have no shape)
        width = ops.shape_i(inits[j], inits[j].ndim - 1)
        total = inits[j][0] + found[j][1](ops.reshape(rows, [-1, width]))
        memo[node.outputs[j]] = ops.patternbroadcast(ops.expand_dims(total, 0), node.outputs[j].broadcastable)
    return memo


@each_scan
def prune_unused(fgraph, node):
    """Outputs nobody reads, with the recurrent states only they need, and inputs the step no longer
    reads, leave the loop (a backward scan computes the gradients of every input; most are unused)."""
    from .graph import ancestors

    clients, graph_outputs = fgraph.clients(), set(builtins.map(id, fgraph.outputs))
    memo = {}
    op, inner = node.op, node.op.fgraph
    n, seqs, inits, non_seqs = op.split_outer(node.inputs)
    wanted = {k for k, o in enumerate(node.outputs) if clients.get(o) or id(o) in graph_outputs}
    while True:
        roots = [inner.outputs[k] for k in sorted(wanted)] + (inner.outputs[-1:] if op.as_while else [])
        read = set(builtins.map(id, ancestors(roots, stop=inner.inputs)))
        more = {j for j, ps in enumerate(op.inner_taps()) if j not in wanted and builtins.any(id(p) in read for p in ps)}
        if not more:
            break
        wanted |= more
    rec = [j for j in range(op.n_rec) if j in wanted]
    nit = [k for k in range(op.n_nit) if op.n_rec + k in wanted]
    seq_kept = [i for i, p in enumerate(op.inner_seqs()) if id(p) in read]
    ns_kept = [w for w, p in enumerate(op.inner_non_seqs()) if id(p) in read]
    if len(rec) == op.n_rec and len(nit) == op.n_nit and len(seq_kept) == op.n_seqs and len(ns_kept) == op.n_ns:
        return None
    taps_inputs = op.inner_taps()
    new_inner = FunctionGraph([op.inner_seqs()[i] for i in seq_kept] + [p for j in rec for p in taps_inputs[j]]
                              + [op.inner_non_seqs()[w] for w in ns_kept],
                              [inner.outputs[j] for j in rec] + [inner.outputs[op.n_rec + k] for k in nit]
                              + (inner.outputs[-1:] if op.as_while else []))
    new_op = op.with_inner_graphs([new_inner], n_seqs=len(seq_kept), taps=[op.taps[j] for j in rec], n_nit=len(nit),
                                  keep=tuple([op.keep[j] for j in rec] + [op.keep[op.n_rec + k] for k in nit]))
    new = new_op.make_node(n, *[seqs[i] for i in seq_kept], *[inits[j] for j in rec], *[non_seqs[w] for w in ns_kept])
    for position, k in enumerate(rec + [op.n_rec + k for k in nit]):
        memo[node.outputs[k]] = new.outputs[position]

    return memo