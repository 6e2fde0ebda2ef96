"""Graph rewrites, run in core on the FunctionGraph before any backend sees it, so every backend gets
them. In order:

- ``merge``: identical subexpressions (same op, same inputs) are computed once; equal constants are one.
- ``constant_folding``: nodes whose inputs are all constants are evaluated once, at compile time, with
  the reference backend (unless the result is large).
- ``canonicalize``: y.shape -> an expression of the shapes y is computed from, with the checks computing
  y would make (``infer_shapes``, core/shape_inference.py); x*1, x+0, x-0, x/1, x-x, --x, x**1, x**2 ->
  sqr(x), x**0.5 -> sqrt(x), dimshuffle of dimshuffle, reshape to the same shape, a specify_shape that
  provably holds, a cast and its inverse.
- ``stabilize``: log(softmax) -> log_softmax, log(1+x) -> log1p, exp(x)-1 -> expm1, 1/(1+exp(-x)) and
  exp(x)/(1+exp(x)) -> sigmoid(x), log(sigmoid(x)) -> -softplus(-x), log(1-sigmoid(x)) -> -softplus(x), log(sum(exp(x))) -> a max-shifted
  logsumexp, softmax followed by a negative log-likelihood on integer labels -> SoftmaxCrossentropy.
  ``grad`` applies these to the cost before differentiating, so the gradients are stable too.
- ``fusion``: connected elementwise subgraphs become one Composite op (one loop in compiled backends),
  and a reduction that is the only reader of an elementwise result becomes one FusedReduce op (the
  elements computed as they are summed, no temporary array).
- ``loops``: in a scan, computations of the non-sequences move out of the loop, a sequence row's
  product with a non-sequence matrix becomes one product before the loop, and an output of which
  only the last rows are read keeps only those (``core/scan.py``). The inner graphs of loops and
  branches get the same passes as the graph around them; and, whatever the passes, a node that only
  one branch of an ifelse reads is moved into that branch (``core/ifelse.py``), so it runs only then.
- ``inplace``: lets the plan (``core/plan.py``, ``fgraph.plan.reuse``) write an elementwise result into
  an input buffer that dies there, and compute updates in their shared variable's storage
  (``Plan.updates_in_place``); for those, each operand is first checked to have the shared variable's
  shape (a specify_shape before the first write, ``guard_in_place_updates``), so that nothing can fail
  once the first one is written. Without it the plan reuses nothing.

``ARIGNOTE_REWRITES=none`` turns them all off (for debugging); a comma-separated list of pass names runs
only those. A backend may decline passes with a ``declined_rewrites`` attribute (a set of names).
"""

import numpy as np

from . import nnet, ops
from .config import config
from .plan import in_place_updates, make_plan
from .graph import Apply, Constant, FunctionGraph, TensorVariable, clone_replace, graph_inputs, toposort
from .ifelse import sink_into_branches
from .scan import merge_extended, prune_unused, push_out_invariants, push_out_sequence_products, push_out_sums, save_memory
from .shape_inference import ShapeInference, pending, shared as shared_inference, tie, vector_entries
from .shape_inference import session as shape_session
from .types import TensorType, is_float

PASSES = ("merge", "constant_folding", "canonicalize", "stabilize", "loops", "fusion", "inplace")
FOLD_LIMIT = 10_000  # constant folding keeps the computation when the result has more elements


def selected_passes(backend=None):
    setting = (config.rewrites or "all").strip().lower()
    if setting == "none":
        return ()
    wanted = PASSES if setting == "all" else tuple(p.strip() for p in setting.split(",") if p.strip())
    unknown = [p for p in wanted if p not in PASSES]
    if unknown:
        raise ValueError(f"ARIGNOTE_REWRITES names unknown rewrites {unknown}; known: {', '.join(PASSES)}")
    declined = set(getattr(backend, "declined_rewrites", ()) or ())
    return tuple(p for p in PASSES if p in wanted and p not in declined)


def rewrite(fgraph, backend=None):
    """Apply the selected passes to ``fgraph`` in place."""
    with shape_session():  # the shapes rewrites infer are kept for the next ones
        return _rewrite(fgraph, backend)


def _rewrite(fgraph, backend):
    passes = selected_passes(backend)
    for _ in range(4):  # a later pass can open opportunities for an earlier one
        before = _fingerprint(fgraph)
        if "merge" in passes:
            merge(fgraph)
        if "constant_folding" in passes:
            fold_constants(fgraph)
        if "canonicalize" in passes:
            infer_shapes(fgraph)
            apply_local(fgraph, CANONICALIZE)
        if "stabilize" in passes:
            apply_local(fgraph, STABILIZE)
        if "merge" in passes:
            merge(fgraph)
        if _fingerprint(fgraph) == before:
            break
    # the passes of loops and branches walk the graph several times: only for graphs that have them
    if any(hasattr(node.op, "inner_graphs") for node in fgraph.apply_nodes):
        # branches are lazy whatever the passes: a node only one branch reads runs inside it
        sink_into_branches(fgraph)
        if "loops" in passes:
            merge_extended(fgraph)
            push_out_invariants(fgraph)
            push_out_sequence_products(fgraph)
            save_memory(fgraph)
            push_out_sums(fgraph)
            prune_unused(fgraph)
            if "canonicalize" in passes:  # what they leave behind: x[None][0], zeros + y (an accumulator's start)
                apply_local(fgraph, CANONICALIZE)
        rewrite_inner_graphs(fgraph, backend)
    if "inplace" in passes:  # before fusion, which would hide the sum around the product
        gemm_updates(fgraph)
    if "fusion" in passes:
        fuse(fgraph)
        fuse_reductions(fgraph)
    if "inplace" in passes:
        guard_in_place_updates(fgraph)
    narrow_blas = getattr(backend, "blas_narrower_than_cpu", None)  # a fact of the backend's BLAS
    make_plan(fgraph, reuse="inplace" in passes, narrow_blas=bool(narrow_blas and narrow_blas()))
    return fgraph


def gemm_updates(fgraph):
    """An update of a float matrix W that is a sum of W's multiples and of one matrix product, with
    scalar factors (``W - lr * dot(x, y)``, ``W - lr * (dot(x, y) + l2 * W)``, momentum's
    ``mu * v - lr * dot(x, y)``), becomes ``gemm(W, alpha, x, y, beta)``: one BLAS product that the
    plan can accumulate straight into W's storage (Theano's GemmInplace), instead of the product in a
    buffer of its own and a pass over both. Only where the product is read by nothing else."""
    targets = getattr(fgraph, "update_targets", None)
    if not targets:
        return
    readers = {}
    for node in fgraph.apply_nodes:
        for var in node.inputs:
            readers[var] = readers.get(var, 0) + 1
    for var in fgraph.outputs:
        readers[var] = readers.get(var, 0) + 1
    replacements = {}
    for j, i in targets.items():
        result, shared = fgraph.outputs[j], fgraph.inputs[i]
        if shared.ndim != 2 or shared.dtype not in ("float32", "float64") or result.type != shared.type:
            continue
        terms = []
        if not _linear_terms(result, [], terms):
            continue
        products = [(f, t) for f, t in terms if t.owner is not None and type(t.owner.op) is ops.Dot
                    and all(v.ndim == 2 and v.dtype == shared.dtype for v in t.owner.inputs) and readers.get(t) == 1]
        selves = [f for f, t in terms if t is shared]
        if len(products) != 1 or not selves or len(selves) + 1 != len(terms):
            continue
        (factors, product), = products
        x, y = product.owner.inputs
        beta = _scale(selves[0], shared.dtype)
        for more in selves[1:]:
            beta = beta + _scale(more, shared.dtype)
        new = ops.gemm(shared, _scale(factors, shared.dtype), x, y, beta)
        if new.type == result.type:
            new.trace, new.name = result.trace, result.name
            replacements[result] = new
    if replacements:
        fgraph.outputs = clone_replace(fgraph.outputs, replacements)
        fold_constants(fgraph)


def _linear_terms(var, factors, terms):
    """Adds to ``terms`` the (scalar factors, term) whose sum ``var`` is, through additions,
    subtractions, negations and products with scalars (all axes broadcastable); False when a term
    does not have var's type (a bias row, a broadcast)."""
    op = var.owner.op if var.owner is not None else None
    if type(op) is ops.Add:
        return all(_linear_terms(v, factors, terms) for v in var.owner.inputs)
    if type(op) is ops.Sub:
        a, b = var.owner.inputs
        return _linear_terms(a, factors, terms) and _linear_terms(b, factors + [-1], terms)
    if type(op) is ops.Neg:
        return _linear_terms(var.owner.inputs[0], factors + [-1], terms)
    if type(op) is ops.Mul:
        a, b = var.owner.inputs
        for scalar, other in ((a, b), (b, a)):
            scale = _scalar_factors(scalar, other) if other.type == var.type else None
            if scale is not None:
                return _linear_terms(other, factors + scale, terms)
    if any(var.broadcastable):
        return False
    terms.append((factors, var))
    return True


def _scalar_factors(var, like):
    """The scalars (all axes broadcastable) whose product ``var`` is, where multiplying ``like`` by var
    is multiplying it by them: ``second(like, s)`` (s filling like's shape, as grad writes the
    gradient of a sum) counts as s; None when var is not such a product."""
    if all(var.broadcastable):
        return [var]
    op = var.owner.op if var.owner is not None else None
    if type(op) is ops.Second:
        shape_of, value = var.owner.inputs
        return [value] if shape_of is like and all(value.broadcastable) else None
    if type(op) is ops.Mul:
        a, b = (_scalar_factors(v, like) for v in var.owner.inputs)
        return None if a is None or b is None else a + b
    return None


def _scale(factors, dtype):
    """The product of ``factors`` (numbers and variables with every axis broadcastable) as a 0-d
    variable of ``dtype``."""
    total = Constant(TensorType(dtype, ()), np.array(1, dtype))
    for factor in factors:
        if not isinstance(factor, TensorVariable) or isinstance(factor, Constant):
            factor = Constant(TensorType(dtype, ()), np.asarray(getattr(factor, "data", factor), dtype).reshape(()))
        elif factor.ndim:
            factor = ops.dimshuffle(factor, ())
        total = ops.mul(total, ops.cast(factor, dtype))
    return total


def guard_in_place_updates(fgraph):
    """Each operand of an elementwise update the plan will compute in its shared variable's storage
    read through a specify_shape against that shared variable's shape, and against the shapes of the
    shared variables of the updates in place that read its result (momentum's ``W + v_new``): all these
    checks run before the first update is written (the plan runs those updates last), and no update
    can then fail halfway through a call. An update whose checks would need its own shared variable
    read through a view (no other operand has its full shape) is not computed in place. The checks
    keep the update's place of building, for their messages."""
    while True:
        updates = in_place_updates(fgraph)
        late = [n for n in fgraph.apply_nodes if n in updates]
        target = {n: fgraph.inputs[updates[n][1]] for n in late}
        shapes = {}  # node -> the shared variables whose shape its result must have
        for node in reversed(late):
            readers = [m for m in late if node.outputs[0] in m.inputs]
            shapes[node] = [target[node]] + [s for m in readers for s in shapes[m] if s is not target[node]]
        unguardable = [updates[n][0] for n in late if len(shapes[n]) > 1 and not _covers_shape(n, target[n], updates)]
        if not unguardable:
            break
        fgraph.update_targets = {j: i for j, i in fgraph.update_targets.items() if j not in unguardable}
    replacements = {}  # filled in topological order: an update reading another reads its new node
    results = {n.outputs[0] for n in late}
    for node in late:
        guarded = []
        if type(node.op) is ops.Gemm:  # x's rows and y's columns are the result's; y's rows x's columns
            z, alpha, x, y, beta = [replacements.get(v, v) for v in node.inputs]
            y = ops.specify_shape(y, [ops.shape_i(x, 1), None])
            for shared in shapes[node]:
                x = ops.specify_shape(x, [ops.shape_i(shared, 0), None])
                y = ops.specify_shape(y, [None, ops.shape_i(shared, 1)])
            x.trace = y.trace = y.owner.inputs[0].trace = node.outputs[0].trace
            guarded = [z, alpha, x, y, beta]
        for var in [] if guarded else [replacements.get(v, v) for v in node.inputs]:
            if var is target[node] or var in results or all(var.broadcastable):
                guarded.append(var)  # the result of another update: checked where it is computed
                continue
            for shared in shapes[node]:
                var = ops.specify_shape(var, [None if b else ops.shape_i(shared, axis)
                                              for axis, b in enumerate(var.broadcastable)])
                var.trace = node.outputs[0].trace
            guarded.append(var)
        if any(new is not old for new, old in zip(guarded, node.inputs)):
            new = node.op.make_node(*guarded).outputs[0]
            new.trace, new.name = node.outputs[0].trace, node.outputs[0].name
            replacements[node.outputs[0]] = new
            results.add(new)
    if replacements:
        fgraph.outputs = clone_replace(fgraph.outputs, replacements)


def _covers_shape(node, shared, updates):
    """Whether the operands of elementwise ``node`` other than ``shared`` and the results of updates
    span every axis of ``shared`` that is not broadcastable (so that checking them checks its shape)."""
    if type(node.op) is ops.Gemm:
        return True
    if not isinstance(node.op, ops.Elemwise):
        return False
    spanned = [False] * shared.ndim
    for var in node.inputs:
        if var is not shared and var.owner not in updates:
            spanned = [s or not b for s, b in zip(spanned, var.broadcastable)]
    return all(s or b for s, b in zip(spanned, shared.broadcastable))


def rewrite_inner_graphs(fgraph, backend=None):
    """The same passes applied to the inner graphs of loops and branches (a rewritten copy each: the
    op in the user's graph keeps its own). One node at a time, the graph rebuilt after each, so that
    a rebuilt node never reads the outputs of a node that has been replaced."""
    done, rewritten = {}, set()
    for _ in range(10_000):
        for node in fgraph.apply_nodes:
            inner = getattr(node.op, "inner_graphs", None)
            if inner is None or id(node.op) in rewritten:
                continue
            if node.op not in done:
                copies = [FunctionGraph(g.inputs, g.outputs) for g in inner()]
                for copy in copies:
                    rewrite(copy, backend)
                done[node.op] = node.op.with_inner_graphs(copies)
                rewritten.add(id(done[node.op]))
            new = done[node.op].make_node(*node.inputs)
            fgraph.outputs = clone_replace(fgraph.outputs, dict(zip(node.outputs, new.outputs)))
            break
        else:
            return


def _fingerprint(fgraph):
    return tuple((str(n.op), tuple(id(i) for i in n.inputs)) for n in fgraph.apply_nodes)


# ---------------------------------------------------------------------------------------------------
# The engine: rebuild the graph in topological order, letting local rewrites replace node outputs.


def _rebuild_node(node, new_inputs):
    if all(n is o for n, o in zip(new_inputs, node.inputs)):
        return node
    outputs = [o.clone() for o in node.outputs]
    return Apply(node.op, new_inputs, outputs)


def _same_type(old, new):
    return new.dtype == old.dtype and new.broadcastable == old.broadcastable


def rewrite_outputs(outputs, stop, local_rewrites, protected=()):
    """``outputs`` with ``local_rewrites`` applied to every node between ``stop`` and them, repeatedly,
    until none applies. A local rewrite gets (node, protected) and returns replacements for the node's
    outputs or None; ``protected`` variables must stay in the graph (rewrites do not absorb them)."""
    protected = set(map(id, protected))
    for _ in range(8):
        memo, changed = {}, False
        for node in toposort(outputs, stop=stop):
            new = _rebuild_node(node, [memo.get(i, i) for i in node.inputs])
            memo.update(zip(node.outputs, new.outputs))
            for local in local_rewrites:
                replacement = local(new, protected)
                if replacement is None:
                    continue
                replacement = [_coerce(r, o) for r, o in zip(replacement, new.outputs)]
                if any(r is None for r in replacement):
                    continue
                for old, r in zip(node.outputs, replacement):
                    if r.name is None:
                        r.name = old.name
                    memo[old] = r
                changed = True
                break
        outputs = [memo.get(o, o) for o in outputs]
        if not changed:
            return outputs
    return outputs


def _coerce(replacement, old):
    """A replacement with the old variable's exact type, or None when that cannot be had for free."""
    replacement = ops._as(replacement)
    if replacement.ndim != old.ndim:
        return None
    if replacement.dtype != old.dtype:
        replacement = ops.cast(replacement, old.dtype)
    if replacement.broadcastable != old.broadcastable:
        # a replacement may know more (broadcastable where the old type was not): forget it
        if any(o and not r for o, r in zip(old.broadcastable, replacement.broadcastable)):
            return None
        replacement = ops.patternbroadcast(replacement, old.broadcastable)
    return replacement


def apply_local(fgraph, local_rewrites):
    fgraph.outputs = rewrite_outputs(fgraph.outputs, fgraph.inputs, local_rewrites)


def stabilize_graph(outputs, protected=()):
    """The stabilization rewrites applied to the graph of ``outputs`` (used by grad before it
    differentiates, so that gradients come from the stable form)."""
    # the protected variables (grad's wrt) are leaves: a rewrite above them would rebuild them, and
    # the cost would then depend on a copy of the variable the gradient is asked for
    roots = [v for v in graph_inputs(outputs) if not isinstance(v, Constant)] + list(protected)
    return rewrite_outputs(list(outputs), roots, CANONICALIZE + STABILIZE, protected)


# ---------------------------------------------------------------------------------------------------
# merge and constant folding


def merge(fgraph):
    memo, seen, constants = {}, {}, {}

    def canonical(var):
        var = memo.get(var, var)
        if isinstance(var, Constant):
            return constants.setdefault(var.signature(), var)
        return var

    for node in fgraph.apply_nodes:
        inputs = [canonical(i) for i in node.inputs]
        key = (node.op, tuple(map(id, inputs)))
        if key in seen:
            memo.update(zip(node.outputs, seen[key]))
            continue
        new = _rebuild_node(node, inputs)
        memo.update(zip(node.outputs, new.outputs))
        seen[key] = new.outputs
    fgraph.outputs = [canonical(o) for o in fgraph.outputs]


def fold_constants(fgraph):
    from .plugins import registry

    reference = registry.get("reference")

    def fold(node, protected):
        if not node.inputs or not all(isinstance(i, Constant) for i in node.inputs):
            return None
        try:
            values = reference.compile(FunctionGraph([], node.outputs))([])
        except Exception:
            return None  # let it fail when the function runs, with the usual message
        if any(np.size(v) > FOLD_LIMIT for v in values):
            return None
        folded = []
        for out, value in zip(node.outputs, values):
            constant = Constant(out.type, value)
            constant.trace = out.trace
            folded.append(constant)
        return folded

    apply_local(fgraph, [fold])


# ---------------------------------------------------------------------------------------------------
# canonicalization


def _constant_value(var):
    """The value of a one-element constant (so replacing ``x op c`` by x cannot change a shape), else None."""
    if isinstance(var, Constant) and var.data.size == 1:
        return var.data.flat[0]
    return None


def _is(var, op_class):
    return var.owner is not None and isinstance(var.owner.op, op_class)


def _free(var, protected):
    """Whether a rewrite may absorb ``var`` (it is computed and nobody asked to keep it)."""
    return var.owner is not None and id(var) not in protected


def _neutral(op_class, neutral, positions):
    def rewrite(node, protected):
        if type(node.op) is not op_class:
            return None
        for keep, drop in positions:
            value = _constant_value(node.inputs[drop])
            if value is not None and value == neutral and _same_type(node.outputs[0], node.inputs[keep]):
                return [node.inputs[keep]]
        return None

    return rewrite


def _sub_self(node, protected):
    x, y = node.inputs if type(node.op) is ops.Sub else (None, None)
    if x is not None and x is y:
        return [ops.zeros_like(x, node.outputs[0].dtype)]
    return None


def _double_neg(node, protected):
    if type(node.op) is ops.Neg and _is(node.inputs[0], ops.Neg) and _free(node.inputs[0], protected):
        return [node.inputs[0].owner.inputs[0]]
    return None


def _power(node, protected):
    if type(node.op) is not ops.Pow:
        return None
    x, exponent = node.inputs
    value = _constant_value(exponent)
    if value is None:
        return None
    if value == 1 and _same_type(node.outputs[0], x):
        return [x]
    # computed in the result's dtype, as Pow does: int8 ** 2.0 is float64 (100 ** 2.0 = 10000.0), where
    # sqr of the int8 itself would wrap (to 16) and sqrt of it would round in float32
    dtype = node.outputs[0].dtype
    if value == 2:
        return [ops.sqr(ops.cast(x, dtype))]
    if value == 0.5 and is_float(dtype):
        return [ops.sqrt(ops.cast(x, dtype))]
    return None


def _dimshuffle_chain(node, protected):
    if type(node.op) is not ops.DimShuffle:
        return None
    x = node.inputs[0]
    if node.op.new_order == tuple(range(x.ndim)):
        return [x]
    if _is(x, ops.DimShuffle) and _free(x, protected):
        inner = x.owner.op.new_order
        combined = tuple("x" if a == "x" else inner[a] for a in node.op.new_order)
        return [ops.dimshuffle(x.owner.inputs[0], combined)]
    return None


def _reshape_same(node, protected):
    """x.reshape(sizes) -> x where the sizes are provably x's (x.shape, or its entries)."""
    if type(node.op) is not ops.Reshape:
        return None
    x, shape = node.inputs
    if x.ndim != node.op.ndim or not (isinstance(shape, Constant) or _is(shape, (ops.Shape, ops.MakeVector))):
        return None
    inference = shared_inference()
    same = all(inference.same_size(e, n) for e, n in zip(vector_entries(shape, x.ndim), inference.shape(x)))
    return [x] if same else None


def _cast_round_trip(node, protected):
    if type(node.op) is not ops.Cast or not _is(node.inputs[0], ops.Cast):
        return None
    original = node.inputs[0].owner.inputs[0]
    middle = node.inputs[0].dtype
    # NumPy calls int64 -> float64 "safe", but a float64 holds integers exactly only up to 2 ** 53: the
    # round trip is the identity only when the middle float is wider than the integer
    source = np.dtype(original.dtype)
    lossy = source.kind in "iu" and np.dtype(middle).kind == "f" and source.itemsize >= np.dtype(middle).itemsize
    if node.op.dtype == original.dtype and np.can_cast(original.dtype, middle, "safe") and not lossy:
        return [original]
    return None


def _shape_from_input(node, protected):
    """fill(f(x, ...), c) -> fill(x, c) when f is elementwise and x has f's broadcast pattern: fill
    only needs the shape, so f need not be computed for it (the L2 penalty's gradient, for one)."""
    if type(node.op) is not ops.Second or not isinstance(getattr(node.inputs[0].owner, "op", None), ops.Elemwise):
        return None
    shaped = node.inputs[0]
    for source in shaped.owner.inputs:
        if source.broadcastable == shaped.broadcastable and not isinstance(source, Constant):
            return [ops.fill(source, node.inputs[1])]
    return None


def infer_shapes(fgraph):
    """shape(y) and shape_i(y) -> the expression of the shapes (and values) y is computed from that
    the ops state (``infer_shape``, core/shape_inference.py), with the checks that computing y would
    make, so that y need not run for its shape. Values that every call computes anyway are leaves of
    those expressions (reading their shape costs nothing, and their computation makes their checks),
    and the shape of such a value is replaced only where it is a constant."""
    always, memo, origin, inference = _always_computed(fgraph), {}, {}, None

    def computed(var):
        return origin.get(id(var), var) in always

    for node in fgraph.apply_nodes:
        new = _rebuild_node(node, [memo.get(i, i) for i in node.inputs])
        memo.update(zip(node.outputs, new.outputs))
        origin.update((id(n), o) for n, o in zip(new.outputs, node.outputs))
        if type(node.op) not in (ops.Shape, ops.ShapeI):
            continue
        y = new.inputs[0]
        if computed(y):
            sizes = shared_inference().inferred_sizes(y)
            if sizes is None or not all(isinstance(s, Constant) for s in sizes):
                continue
            sizes = [sizes[node.op.i]] if type(node.op) is ops.ShapeI else list(sizes)
        else:
            inference = inference or ShapeInference(computed=computed)
            sizes = inference.inferred_sizes(y)
            if sizes is None:
                continue
            sizes = [sizes[node.op.i]] if type(node.op) is ops.ShapeI else list(sizes)
            checks = pending(sizes, inference.all_checks(y))
            if checks and not sizes:
                continue  # the shape of a scalar has no size to carry the checks: y runs
            sizes = tie(sizes, checks)
        replacement = _coerce(sizes[0] if type(node.op) is ops.ShapeI else ops.stack_scalars(sizes, "int64"),
                              node.outputs[0])
        if replacement is not None:
            replacement.name = node.outputs[0].name
            memo[node.outputs[0]] = replacement
    fgraph.outputs = [memo.get(o, o) for o in fgraph.outputs]


def _always_computed(fgraph):
    """The variables every call computes: what the outputs need (a node computes all its outputs),
    except through shape reads (which inference may replace) and through the inputs of a branch
    (computed only when it is taken)."""
    found, stack = set(), list(fgraph.outputs)
    while stack:
        var = stack.pop()
        if var in found:
            continue
        found.add(var)
        node = var.owner
        if node is None or type(node.op) in (ops.Shape, ops.ShapeI):
            continue
        found.update(node.outputs)
        lazy = set(getattr(node.op, "lazy_inputs", lambda node: ())(node))
        stack.extend(v for p, v in enumerate(node.inputs) if p not in lazy)
    return found


def _proven_specify_shape(node, protected):
    """specify_shape(x, sizes) -> x where x provably has those sizes."""
    if type(node.op) is not ops.SpecifyShape or not _same_type(node.outputs[0], node.inputs[0]):
        return None
    x, given, inference = node.inputs[0], iter(node.inputs[1:]), shared_inference()
    proven = all(not known or inference.same_size(next(given), n)
                 for known, n in zip(node.op.known, inference.shape(x)))
    return [x] if proven else None


def _index_make_vector(node, protected):
    """stack(a, b, c)[1] -> b (a size read from a shape that inference made)."""
    if type(node.op) is not ops.Subtensor or len(node.inputs) != 1 or not _is(node.inputs[0], ops.MakeVector) \
            or len(node.op.idx_list) != 1 or node.op.idx_list[0][0] != "index":
        return None
    scalars, k = node.inputs[0].owner.inputs, node.op.idx_list[0][1]  # a constant index (no index input)
    return [scalars[k]] if -len(scalars) <= k < len(scalars) else None


def _zeros_shaped_like(var):
    """x when ``var`` is zeros shaped like x (``zeros_like(x)``, i.e. fill(x, 0)), else None."""
    owner = var.owner
    if owner is not None and type(owner.op) is ops.Second and _constant_value(owner.inputs[1]) == 0:
        return owner.inputs[0]
    return None


def _add_terms(var, depth=0):
    owner = var.owner
    if owner is not None and type(owner.op) is ops.Add and depth < 32:
        return _add_terms(owner.inputs[0], depth + 1) + _add_terms(owner.inputs[1], depth + 1)
    return [var]


def _slice_of_one_axis(idx_list):
    """(axis, start, stop) when ``idx_list`` slices one axis with constant bounds (step 1) and takes
    every other axis whole, else None."""
    found = None
    for axis, entry in enumerate(idx_list):
        if entry == ("slice", None, None, None):
            continue
        if entry[0] != "slice" or found is not None or entry[3] not in (None, 1) \
                or not all(b is None or isinstance(b, int) and b >= 0 for b in entry[1:3]):
            return None
        found = (axis, entry[1] or 0, entry[2])
    return found


def _split_gradient_join(node, protected):
    """A sum of ``inc_subtensor(zeros_like(x)[..., a:b], v)`` over slices that tile one axis of x
    (the gradient of splitting a tensor, as an LSTM splits its gates) is the join of the v's: one
    copy instead of a zero-filled array and an addition per slice."""
    if type(node.op) is not ops.Add:
        return None
    out = node.outputs[0]
    terms, parts, shape_source, axis = _add_terms(out), [], None, None
    if len(terms) < 2:
        return None
    for term in terms:
        owner = term.owner
        if owner is None or type(owner.op) is not ops.IncSubtensor or owner.op.set_instead_of_inc or len(owner.inputs) != 2:
            return None
        base, piece = _zeros_shaped_like(owner.inputs[0]), owner.inputs[1]
        where = _slice_of_one_axis(owner.op.idx_list)
        if base is None or where is None or (shape_source is not None and (base is not shape_source or where[0] != axis)):
            return None
        if piece.ndim != out.ndim or piece.dtype != out.dtype or any(p and not o for p, o in zip(piece.broadcastable, out.broadcastable)):
            return None
        shape_source, axis = base, where[0]
        parts.append((where[1], where[2], piece))
    parts.sort(key=lambda p: p[0])
    if parts[0][0] != 0 or parts[-1][1] is not None or any(a[1] != b[0] for a, b in zip(parts, parts[1:])):
        return None
    return [ops.join(axis, *[p for _, _, p in parts])]


def _plus_zeros(node, protected):
    """zeros_like(s) + y -> y where y already has the sum's type (a gradient accumulator that starts
    from zeros: its first addition), y's shape checked against s's when it runs (as the sum did)."""
    if type(node.op) is not ops.Add or len(node.inputs) != 2:
        return None
    for zeros, other in (node.inputs, node.inputs[::-1]):
        shaped = _zeros_shaped_like(zeros)
        if shaped is not None and shaped.ndim == other.ndim and _same_type(node.outputs[0], other):
            return [other if shaped is other else
                    ops.specify_shape(other, [ops.shape_i(shaped, k) for k in range(shaped.ndim)])]
    return None


def _new_axis_indexed(node, protected):
    """x[None][0] -> x, and dimshuffle('x', 0, 1, ...)(x)[-1] -> x (through a Rebroadcast of that
    axis): indexing the one row of a new leading axis (how a scan's gradient wraps an accumulator)."""
    if type(node.op) is not ops.Subtensor or len(node.inputs) != 1 or len(node.op.idx_list) != 1:
        return None
    kind, *where = node.op.idx_list[0]
    if kind != "index" or where not in ([0], [-1]):
        return None
    x = node.inputs[0]
    while _is(x, ops.Rebroadcast) and all(axis == 0 for axis, _ in x.owner.op.axes):
        x = x.owner.inputs[0]
    owner = x.owner
    if owner is None:
        return None
    if type(owner.op) is ops.Subtensor and owner.op.idx_list == (("newaxis",),) and len(owner.inputs) == 1:
        return [owner.inputs[0]]
    inner = owner.inputs[0] if owner.inputs else None
    if type(owner.op) is ops.DimShuffle and owner.op.new_order == ("x", *range(inner.ndim)):
        return [inner]
    return None


def _shape_through(node, protected):
    """The length of an axis read from what gives the result its shape: x[None].shape[i + 1] ->
    x.shape[i]; fill(s, c).shape[i] -> s.shape[i] for a scalar c (zeros kept alive for a shape only)."""
    if type(node.op) is not ops.ShapeI or node.inputs[0].owner is None:
        return None
    owner, i = node.inputs[0].owner, node.op.i
    if type(owner.op) is ops.Subtensor and owner.op.idx_list == (("newaxis",),) and len(owner.inputs) == 1 and i:
        return [ops.shape_i(owner.inputs[0], i - 1)]
    if type(owner.op) is ops.Second and owner.inputs[0].ndim == node.inputs[0].ndim and all(owner.inputs[1].broadcastable):
        return [ops.shape_i(owner.inputs[0], i)]
    return None


CANONICALIZE = [
    _shape_from_input,
    _shape_through,
    _index_make_vector,
    _proven_specify_shape,
    _plus_zeros,
    _new_axis_indexed,
    _split_gradient_join,
    _neutral(ops.Mul, 1, [(0, 1), (1, 0)]),
    _neutral(ops.Add, 0, [(0, 1), (1, 0)]),
    _neutral(ops.Sub, 0, [(0, 1)]),
    _neutral(ops.TrueDiv, 1, [(0, 1)]),
    _sub_self,
    _double_neg,
    _power,
    _dimshuffle_chain,
    _reshape_same,
    _cast_round_trip,
]


# ---------------------------------------------------------------------------------------------------
# stabilization


def _log_softmax(node, protected):
    if type(node.op) is ops.Log and _is(node.inputs[0], nnet.Softmax) and _free(node.inputs[0], protected):
        softmax = node.inputs[0].owner
        return [nnet.LogSoftmax(softmax.op.axis)(softmax.inputs[0])]
    return None


def _plus_one(var):
    """x when ``var`` is 1 + x or x + 1 (a constant all-ones operand), else None."""
    if type(getattr(var.owner, "op", None)) is ops.Add:
        a, b = var.owner.inputs
        if _constant_value(a) == 1:
            return b
        if _constant_value(b) == 1:
            return a
    return None


def _log1p(node, protected):
    if type(node.op) is ops.Log and _free(node.inputs[0], protected):
        x = _plus_one(node.inputs[0])
        if x is not None and is_float(x.dtype):
            return [ops.log1p(x)]
    return None


def _expm1(node, protected):
    if type(node.op) is ops.Sub and _constant_value(node.inputs[1]) == 1 and _is(node.inputs[0], ops.Exp) \
            and _free(node.inputs[0], protected):
        return [ops.expm1(node.inputs[0].owner.inputs[0])]
    return None


def _sigmoid_of_exp(node, protected):
    """1 / (1 + exp(t)) -> sigmoid(-t), exp(t) / (1 + exp(t)) -> sigmoid(t): the logistic function as
    programs spell it, so that log(p) and log(1 - p) of it become softplus (_log_sigmoid), not log(0)."""
    if type(node.op) is not ops.TrueDiv or not is_float(node.outputs[0].dtype):
        return None
    numerator, denominator = node.inputs
    e = _plus_one(denominator)
    if e is None or not _is(e, ops.Exp) or not _free(denominator, protected):
        return None
    t = ops.cast(e.owner.inputs[0], node.outputs[0].dtype)  # computed in the division's precision
    if _constant_value(numerator) == 1:
        return [ops.sigmoid(-t)]
    if numerator is e or (_is(numerator, ops.Exp) and numerator.owner.inputs[0] is e.owner.inputs[0]):
        return [ops.sigmoid(t)]
    return None


def _log_sigmoid(node, protected):
    if type(node.op) is not ops.Log:
        return None
    z = node.inputs[0]
    if _is(z, ops.Sigmoid) and _free(z, protected):
        return [-nnet.softplus(-z.owner.inputs[0])]
    if _is(z, ops.Sub) and _free(z, protected) and _constant_value(z.owner.inputs[0]) == 1:
        s = z.owner.inputs[1]
        if _is(s, ops.Sigmoid) and _free(s, protected):
            return [-nnet.softplus(s.owner.inputs[0])]
    return None


def _max_shifted(x):
    """Whether ``x`` is a - switch(isinf(m), 0, m): logits that _logsumexp already shifted."""
    if not _is(x, ops.Sub) or not _is(x.owner.inputs[1], ops.Switch):
        return False
    return _is(x.owner.inputs[1].owner.inputs[0], ops.IsInf)


def _max_or_minus_inf(x, axis):
    """max(x) over ``axis`` with the reduced axes kept (size 1), -inf where they are empty: the
    reduced axes are flattened into one and a -inf is appended to it, so Max never sees an empty axis."""
    kept = [a for a in range(x.ndim) if a not in axis]
    sizes = [ops.shape_i(x, a) for a in kept]
    flat = ops.reshape(ops.dimshuffle(x, kept + list(axis)), sizes + [ops.element_count(x, axis)])
    minus_inf = ops.alloc(Constant(TensorType(x.dtype, ()), -np.inf), *sizes, 1)
    shift = ops.Max((len(kept),), False)(ops.join(len(kept), flat, minus_inf))
    pattern, position = [], 0
    for a in range(x.ndim):
        pattern.append("x" if a in axis else position)
        position += a not in axis
    return ops.dimshuffle(shift, pattern)


def _logsumexp(node, protected):
    if type(node.op) is not ops.Log or not _is(node.inputs[0], ops.Sum) or not _free(node.inputs[0], protected):
        return None
    total = node.inputs[0].owner
    e = total.inputs[0]
    if not _is(e, ops.Exp) or not _free(e, protected) or not is_float(e.dtype):
        return None
    x = e.owner.inputs[0]
    axis, keepdims = total.op.axis, total.op.keepdims
    if _max_shifted(x):
        # what this rewrite built (log(sum(exp(x - shift))) + shift): matching it again would shift the
        # shifted logits once more on every pass
        return None
    shift = _max_or_minus_inf(x, axis)
    shift = ops.switch(ops.isinf(shift), 0, shift)  # all -inf, empty, or an inf max: no shift
    result = ops.log(ops.Sum(axis, True, total.op.dtype)(ops.exp(x - shift))) + shift
    if not keepdims:
        result = ops.dimshuffle(result, [a for a in range(x.ndim) if a not in axis])
    return [result]


def _labels_cover_rows(index, x, y):
    """Whether ``index`` is arange(0, n, 1) with n the number of rows of x or of labels y."""
    if not _is(index, ops.ARange):
        return False
    start, stop, step = index.owner.inputs
    inference = shared_inference()
    rows = any(v.ndim and inference.same_size(stop, inference.shape(v)[0]) for v in (x, y))
    return _constant_value(start) == 0 and _constant_value(step) == 1 and rows


def _softmax_nll(node, protected):
    """log_softmax(x)[arange(n), y], PickPerRow(log_softmax(x), y) and log(PickPerRow(softmax(x), y))
    -> -SoftmaxCrossentropy(x, y)."""
    op = node.op
    if type(op) is ops.Log and _is(node.inputs[0], nnet.PickPerRow) and _free(node.inputs[0], protected):
        p, y = node.inputs[0].owner.inputs
        if _is(p, nnet.Softmax) and p.owner.op.axis == (1,) and _free(p, protected):
            return [-nnet.SoftmaxCrossentropy()(p.owner.inputs[0], y)]
    if type(op) is nnet.PickPerRow:
        lsm, y = node.inputs
        if _is(lsm, nnet.LogSoftmax) and lsm.owner.op.axis == (1,) and _free(lsm, protected):
            return [-nnet.SoftmaxCrossentropy()(lsm.owner.inputs[0], y)]
    if type(op) is ops.AdvancedSubtensor and op.idx_list == (("array", 1, False), ("array", 1, False)):
        lsm, rows, y = node.inputs
        if _is(lsm, nnet.LogSoftmax) and lsm.owner.op.axis == (1,) and lsm.ndim == 2 and _free(lsm, protected):
            x = lsm.owner.inputs[0]
            if y.dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32") \
                    and _labels_cover_rows(rows, x, y):
                return [-nnet.SoftmaxCrossentropy()(x, y)]
    return None


STABILIZE = [_log_softmax, _log1p, _expm1, _sigmoid_of_exp, _log_sigmoid, _logsumexp, _softmax_nll]


# ---------------------------------------------------------------------------------------------------
# fusion


def _fusable(node):
    return isinstance(node.op, ops.Elemwise) and not isinstance(node.op, ops.Composite) \
        and len(node.outputs) == 1


def fuse(fgraph):
    """Replace each connected group of elementwise nodes (where every intermediate result is used only
    inside the group and has the group's broadcast pattern) by one Composite node."""
    clients = fgraph.clients()
    outputs = set(map(id, fgraph.outputs))
    assigned, replacements = set(), {}
    for node in reversed(fgraph.apply_nodes):
        if not _fusable(node) or node in assigned:
            continue
        group, frontier = [node], list(node.inputs)
        pattern = node.outputs[0].broadcastable
        while frontier:
            var = frontier.pop()
            producer = var.owner
            if producer is None or not _fusable(producer) or producer in assigned or producer in group:
                continue
            if id(var) in outputs or var.broadcastable != pattern:
                continue
            if not all(client in group for client, _ in clients.get(var, [])):
                continue
            group.append(producer)
            frontier.extend(producer.inputs)
        assigned.update(group)
        if len(group) > 1:
            replacements[node.outputs[0]] = _composite(group)
    _put_in_place(fgraph, replacements)


def _put_in_place(fgraph, replacements):
    """Rebuild ``fgraph``, putting each replacement node (on rebuilt inputs) in the place of the
    single-output node whose output it replaces."""
    memo = {}
    for node in fgraph.apply_nodes:
        root = node.outputs[0]
        source = replacements[root].owner if root in replacements else node
        new = _rebuild_node(source, [memo.get(i, i) for i in source.inputs])
        memo.update(zip(node.outputs, new.outputs))
    fgraph.outputs = [memo.get(o, o) for o in fgraph.outputs]


def _composite(group):
    """One Composite node computing the output of ``group[0]`` from the group's outside inputs."""
    order = [n for n in toposort([group[0].outputs[0]]) if n in set(group)]
    inside = {o for n in group for o in n.outputs}
    outer, scalar = [], {}
    for n in order:
        for var in n.inputs:
            if var in inside or var in scalar:
                continue
            if isinstance(var, Constant) and var.data.size == 1:
                scalar[var] = Constant(TensorType(var.dtype, ()), var.data.reshape(()))
                continue
            outer.append(var)
            scalar[var] = TensorType(var.dtype, ())(f"i{len(outer) - 1}")
    for n in order:
        body_out = TensorVariable(TensorType(n.outputs[0].dtype, ()))
        Apply(n.op, [scalar[i] for i in n.inputs], [body_out])
        scalar[n.outputs[0]] = body_out
    body = FunctionGraph([scalar[v] for v in outer], [scalar[group[0].outputs[0]]], clone=False)
    return ops.Composite(body)(*outer)


def fuse_reductions(fgraph):
    """Replace each reduction whose input is an elementwise result read by nothing else (and not
    returned) by one FusedReduce node on the elementwise node's inputs. Bodies that may fail (an
    integer to a negative power) stay apart: a reduction's loop has no place to report the error."""
    clients = fgraph.clients()
    outputs = set(map(id, fgraph.outputs))
    replacements = {}
    for node in fgraph.apply_nodes:
        if not isinstance(node.op, ops.Reduce):
            continue
        var = node.inputs[0]
        producer = var.owner
        if (producer is None or not isinstance(producer.op, ops.Elemwise) or len(producer.outputs) != 1
                or id(var) in outputs or len(clients.get(var, [])) != 1
                or producer.op.may_fail([v.dtype for v in producer.inputs])):
            continue
        replacements[node.outputs[0]] = ops.FusedReduce(node.op, producer.op)(*producer.inputs)
    _put_in_place(fgraph, replacements)
