"""Shape inference (core/shape_inference.py; each op's ``infer_shape`` sits next to the op): ``y.shape`` of a
computed y becomes an expression of the shapes (and values) y is computed from, so y does not run for its
shape, and the checks that computing y makes stay unless they provably hold.

Every conformance case is run for its shapes on every backend: the shapes equal those of the computed
values, the cases that raise still raise, and (on the reference, by watching the op's implementation)
an op whose shape is inferred never computes anything: what is left of it in the graph runs on
zero-element stand-ins (the checks).
"""

import zlib
from collections import defaultdict

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.backends.reference import ReferenceProgram
from arignote.backends.reference.table import IMPLEMENTATIONS
from arignote.core import ifelse as F
from arignote.core import nnet, ops
from arignote.core import scan as S
from arignote.core.conformance import CASES, vocabulary
from arignote.core.graph import Apply, FunctionGraph, Op, TensorVariable, toposort
from arignote.core.rewrite import rewrite
from arignote.core.shape_inference import ShapeCheck, ShapeInference
from arignote.core.types import TensorType


pytestmark = pytest.mark.usefixtures("all_rewrites")  # whatever ARIGNOTE_REWRITES the suite runs under


def shape_function(inputs, outputs, backend):
    return arignote.function(inputs, [o.shape for o in outputs], backend=backend, on_unused_input="ignore")


def real_runs(f, op_class, values):
    """The outputs of the calls of ``op_class``'s reference implementation, running ``f``'s graph on
    ``values`` (also where it runs inside a fused node)."""
    calls = []  # (input arrays, output arrays) of each call
    entry = IMPLEMENTATIONS[op_class]

    class Spy:
        def __init__(self, entry):
            self.entry = entry

        def bind(self, table):
            return Spy(self.entry.bind(table)) if hasattr(self.entry, "bind") else self

        def __call__(self, node, *xs):
            return self.record(xs, self.entry(node, *xs))

        def compute(self, node, *xs):  # a Composite's body, on whole arrays
            return self.record(xs, getattr(self.entry, "compute", self.entry)(node, *xs))

        def record(self, xs, result):
            calls.append((xs, result if isinstance(result, tuple) else (result,)))
            return result

    ReferenceProgram(f.maker.fgraph, {**IMPLEMENTATIONS, op_class: Spy(entry)})([np.asarray(v) for v in values])
    return calls


def computes(calls, dtype):
    """Whether a call computed a result of ``dtype`` from arrays that hold elements (a check reads a
    stand-in with none, or makes none, or makes the booleans of the range check of index arrays)."""
    def arrays(values):
        return [v for v in values if np.ndim(v)]

    return any(arrays(outs) and all(np.size(v) for v in arrays(xs) + arrays(outs))
               and any(np.asarray(o).dtype == dtype for o in outs) for xs, outs in calls)


# ---------------------------------------------------------------------------------------------------
# Every op, through the conformance cases


def test_every_op_of_the_vocabulary_states_its_shape_rule():
    missing = [op.__name__ for op in vocabulary() if not callable(getattr(op, "infer_shape", None))]
    assert not missing, (f"ops without infer_shape: {missing}; write one next to the op (one that returns None, "
                         "with the reason, where the shape can only be read from the result)")


CASES_BY_OP = defaultdict(list)
for _case in CASES:
    CASES_BY_OP[_case.op.__name__].append(_case)


def _built(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    values = [a.make(rng) for a in case.args]
    inputs = [a.type()(f"in{k}") for k, a in enumerate(case.args)]
    built = case.build(*inputs)
    return inputs, (list(built) if isinstance(built, (list, tuple)) else [built]), values


@pytest.mark.parametrize("op_name", sorted(CASES_BY_OP))
def test_inferred_shapes_are_those_of_the_values(op_name, backend):
    # the cases that compute are checked together, through one compiled function (a compile each would
    # cost the numba suite minutes); each raising case through its own
    together = ([], [], [], [])  # inputs, outputs, values, the case of each output
    for case in CASES_BY_OP[op_name]:
        inputs, outputs, values = _built(case)
        if case.raises is not None:
            with pytest.raises(case.raises):
                shape_function(inputs, outputs, backend)(*values)
            continue
        for part, more in zip(together, (inputs, outputs, values, [case.name] * len(outputs))):
            part.extend(more)
    inputs, outputs, values, names = together
    if outputs:
        expected = arignote.function(inputs, outputs, backend="reference", on_unused_input="ignore")(*values)
        got = shape_function(inputs, outputs, backend)(*values)
        assert [tuple(s) for s in got] == [np.shape(e) for e in expected], names


# ops whose shape is read from their result (their checks need the labels' values), and the fused
# reduction, which only fusion, the last pass, makes (test_shape_of_a_fused_reduction)
NOT_INFERRED_IN_CASES = {"PickPerRow", "IncPerRow", "SoftmaxCrossentropy", "SoftmaxCrossentropyGrad", "FusedReduce",
                         "ShapeI"}  # ShapeI's cases are 0-d: their shape is ()


@pytest.mark.parametrize("op_name", sorted(CASES_BY_OP))
def test_an_inferred_shape_does_not_run_the_op(op_name):
    watched = 0
    for case in CASES_BY_OP[op_name]:
        if case.raises is not None:
            continue
        inputs, outputs, values = _built(case)
        inference = ShapeInference()
        for o in outputs:
            nodes = [n for n in toposort([o]) if isinstance(n.op, case.op)]
            inferred = all(inference.inferred_sizes(v) is not None for n in nodes for v in n.outputs)
            if not o.ndim or not nodes or not inferred:
                continue
            watched += 1
            f = shape_function(inputs, [o], "reference")
            assert not computes(real_runs(f, case.op, values), o.dtype), f"{case.name}: the op ran for its shape"
    assert watched or op_name in NOT_INFERRED_IN_CASES, f"no case of {op_name} had its shape inferred"


# ---------------------------------------------------------------------------------------------------
# Theano's examples: the value-computing op is gone from the graph


def _no_real_run(f, op_class, values, dtype="float64"):
    assert not computes(real_runs(f, op_class, values), dtype)


def test_shape_of_a_square(backend):
    x = T.matrix("x")
    f = arignote.function([x], (x ** 2).shape, backend=backend)
    assert list(f(np.ones((3, 4)))) == [3, 4]
    kinds = {type(n.op) for n in f.maker.fgraph.apply_nodes}
    assert not kinds & {ops.Pow, ops.Sqr, ops.Alloc}  # nothing computed, nothing to check


def test_shape_of_a_join_checks_the_other_axes(backend):
    x, y = T.matrix("x"), T.matrix("y")
    f = arignote.function([x, y], T.join(0, x, y).shape, backend=backend)
    assert list(f(np.ones((2, 3)), np.ones((4, 3)))) == [6, 3]
    with pytest.raises(ValueError, match="Join"):
        f(np.ones((2, 3)), np.ones((4, 5)))
    _no_real_run(f, ops.Join, [np.ones((2, 3)), np.ones((4, 3))])


def test_shape_of_a_product_checks_the_summed_sizes(backend):
    x, W = T.matrix("x"), T.matrix("W")
    f = arignote.function([x, W], T.dot(x, W).shape, backend=backend)
    assert list(f(np.ones((3, 4)), np.ones((4, 5)))) == [3, 5]
    with pytest.raises(ValueError, match="Dot"):
        f(np.ones((3, 4)), np.ones((3, 5)))
    _no_real_run(f, ops.Dot, [np.ones((3, 4)), np.ones((4, 5))])


@pytest.mark.parametrize("rows", [0, 1, 2, 5])
def test_shape_of_a_slice(rows, backend):
    x = T.matrix("x")
    f = arignote.function([x], [x[1:3].shape, x[-4::-2].shape, x[:, ::3].shape], backend=backend)
    value = np.ones((rows, 7))
    assert [list(s) for s in f(value)] == [list(value[1:3].shape), list(value[-4::-2].shape), list(value[:, ::3].shape)]
    assert not any(isinstance(n.op, ops.Subtensor) for n in f.maker.fgraph.apply_nodes)  # a slice cannot fail


def test_shape_of_a_slice_with_symbolic_bounds_and_step(backend):
    x, a, b, c = T.vector("x"), T.lscalar("a"), T.lscalar("b"), T.lscalar("c")
    f = arignote.function([x, a, b, c], x[a:b:c].shape, backend=backend)
    value = np.arange(6.0)
    for start, stop, step in [(1, 5, 2), (-1, -7, -1), (9, 0, -3), (-2, 100, 1), (4, 1, 1), (0, 6, -1)]:
        assert list(f(value, start, stop, step)) == [len(value[start:stop:step])], (start, stop, step)
    with pytest.raises(ValueError):
        f(value, 0, 1, 0)  # a step of 0 is an error, as when the slice is computed


def test_shape_of_a_reshape(backend):
    x = T.tensor3("x")
    f = arignote.function([x], [x.reshape((2, -1)).shape, x.reshape((x.shape[0], 6)).shape, x.flatten(2).shape],
                          backend=backend)
    assert [list(s) for s in f(np.ones((4, 3, 2)))] == [[2, 12], [4, 6], [4, 6]]
    with pytest.raises(ValueError):
        f(np.ones((4, 3, 3)))  # 36 elements into (4, 6)
    with pytest.raises(ValueError):
        f(np.ones((3, 1, 1)))  # 3 elements into (2, -1)
    assert not any(isinstance(n.op, ops.Reshape) for n in f.maker.fgraph.apply_nodes)


def test_shape_of_a_reshape_to_a_symbolic_shape(backend):
    x, s = T.matrix("x"), T.lvector("s")
    f = arignote.function([x, s], x.reshape(s, ndim=3).shape, backend=backend)
    assert list(f(np.ones((4, 6)), np.array([2, -1, 3]))) == [2, 4, 3]
    assert list(f(np.ones((4, 6)), np.array([24, 1, 1]))) == [24, 1, 1]
    for wrong in ([2, -1, -1], [5, -1, 1], [0, -1, 1], [-2, -3, 4]):
        with pytest.raises(ValueError):
            f(np.ones((4, 6)), np.array(wrong))


def test_shape_of_a_fused_reduction(backend):
    x, y = T.matrix("x"), T.row("y")
    fused = ops.FusedReduce(ops.Sum((1,)), ops.Sub())(x, y)  # what fusion makes, built directly
    f = arignote.function([x, y], fused.shape, backend=backend)
    assert list(f(np.ones((3, 4)), np.ones((1, 4)))) == [3]
    with pytest.raises(ValueError):
        f(np.ones((3, 4)), np.ones((1, 5)))
    _no_real_run(f, ops.FusedReduce, [np.ones((3, 4)), np.ones((1, 4))])


def test_shape_of_a_sum(backend):
    x = T.tensor3("x")
    f = arignote.function([x], [x.sum(axis=0).shape, x.max(axis=(0, 2), keepdims=True).shape], backend=backend)
    assert [list(s) for s in f(np.ones((2, 3, 4)))] == [[3, 4], [1, 3, 1]]
    with pytest.raises(ValueError):
        f(np.ones((0, 3, 4)))  # the max of nothing
    assert not any(isinstance(n.op, ops.Sum) and n.outputs[0].ndim for n in f.maker.fgraph.apply_nodes)
    _no_real_run(f, ops.Max, [np.ones((2, 3, 4))])


# ---------------------------------------------------------------------------------------------------
# Checks: kept unless they provably hold


def test_elementwise_shapes_that_may_differ_are_checked(backend):
    x, y = T.matrix("x"), T.matrix("y")
    f = arignote.function([x, y], (x + y).shape, backend=backend)
    assert list(f(np.ones((3, 4)), np.ones((3, 4)))) == [3, 4]
    with pytest.raises(ValueError, match=r"Add.*test_shape_inference\.py"):  # the op, where the user built it
        f(np.ones((3, 4)), np.ones((3, 5)))
    _no_real_run(f, ops.Add, [np.ones((3, 4)), np.ones((3, 4))])


def test_checks_that_provably_hold_are_left_out():
    x, b = T.matrix("x"), T.vector("b")
    for shape in [(x + x).shape, (T.tanh(x) * x + x.sum(axis=0)).shape, (x[1:] * T.exp(x)[1:]).shape,
                  T.zeros_like(x).shape, T.specify_shape(x, (x.shape[0], x.shape[1])).shape, (x + 1.5).shape,
                  T.dot(x, x.T).shape]:
        f = arignote.function([x], shape, backend="reference")
        assert not any(isinstance(n.op, ops.Alloc) for n in f.maker.fgraph.apply_nodes)  # no stand-in
    # sizes that may differ when it runs: b's length and x's columns, 2 columns and up to 2 more
    for shape in [(x + b).shape, (x[:, :2] * x[:, 2:4]).shape, T.dot(x, x).shape]:
        f = arignote.function([x, b], shape, backend="reference", on_unused_input="ignore")
        assert any(isinstance(n.op, ops.Alloc) for n in f.maker.fgraph.apply_nodes)


def test_a_specify_shape_that_provably_holds_is_removed():
    x = T.matrix("x")
    f = arignote.function([x], T.specify_shape(T.exp(x), x.shape) * 2, backend="reference")
    assert not any(isinstance(n.op, ops.SpecifyShape) for n in f.maker.fgraph.apply_nodes)
    g = arignote.function([x], T.specify_shape(x, (3, 4)) * 2, backend="reference")
    assert any(isinstance(n.op, ops.SpecifyShape) for n in g.maker.fgraph.apply_nodes)


def test_specify_shape_is_checked_when_only_the_shape_is_read(backend):
    x = T.matrix("x")
    f = arignote.function([x], T.specify_shape(x, (3, 4)).shape, backend=backend)
    assert list(f(np.ones((3, 4)))) == [3, 4]
    with pytest.raises(ValueError):
        f(np.ones((3, 5)))


def test_checks_reach_through_what_the_size_does_not_read(backend):
    # the sum's shape () carries no size: the check of x + y rides on the next op's sizes
    x, y, z = T.vector("x"), T.vector("y"), T.matrix("z")
    f = arignote.function([x, y, z], (T.sum(x + y) * z).shape, backend=backend)
    assert list(f(np.ones(3), np.ones(3), np.ones((2, 5)))) == [2, 5]
    with pytest.raises(ValueError):
        f(np.ones(3), np.ones(4), np.ones((2, 5)))


def test_a_value_computed_anyway_keeps_its_shape_read():
    x, y = T.matrix("x"), T.matrix("y")
    s = x + y
    f = arignote.function([x, y], [s * 2, s.shape], backend="reference")
    assert not any(isinstance(n.op, ops.Alloc) for n in f.maker.fgraph.apply_nodes)  # s runs: it checks itself
    assert [np.shape(v) for v in f(np.ones((2, 3)), np.ones((2, 3)))] == [(2, 3), (2,)]
    with pytest.raises(ValueError):
        f(np.ones((2, 3)), np.ones((2, 4)))


# ---------------------------------------------------------------------------------------------------
# Shapes that depend on values, loops, branches, ops without a rule


def test_shape_of_a_boolean_mask_counts_its_true_values(backend):
    x = T.matrix("x")
    f = arignote.function([x], x[x > 0].shape, backend=backend)
    value = np.array([[1.0, -2, 3], [0, 5, -1]])
    assert list(f(value)) == [3]
    _no_real_run(f, ops.AdvancedSubtensor, [value])


def test_shape_of_an_index_array_checks_its_range(backend):
    x, i = T.matrix("x"), T.lvector("i")
    f = arignote.function([x, i], [x[i].shape, x[:, i].shape, x[i, 0].shape], backend=backend)
    assert [list(s) for s in f(np.ones((3, 4)), np.array([0, 2, -1, 1, 1]))] == [[5, 4], [3, 5], [5]]
    with pytest.raises(IndexError):
        f(np.ones((3, 4)), np.array([0, 3]))
    _no_real_run(f, ops.AdvancedSubtensor, [np.ones((3, 4)), np.array([0, 2])])


def test_shape_of_arange_with_symbolic_bounds(backend):
    a, b, c = T.dscalar("a"), T.dscalar("b"), T.dscalar("c")
    f = arignote.function([a, b, c], T.arange(a, b, c).shape, backend=backend)
    for start, stop, step in [(0, 10, 3), (5, 1, -1.5), (2, 2, 1), (3, 0, 1), (0.5, 2.25, 0.25)]:
        assert list(f(start, stop, step)) == [len(np.arange(start, stop, step))]
    with pytest.raises(ValueError):
        f(0, 1, 0)
    assert not any(isinstance(n.op, ops.ARange) and n.inputs[0] is not n.inputs[1] for n in f.maker.fgraph.apply_nodes)


def test_shape_of_a_loop_whose_step_keeps_the_shapes(backend):
    x = T.matrix("x")
    hs, _ = S.scan(lambda xt, h: T.tanh(h + xt), sequences=x, outputs_info=T.zeros_like(x[0]))
    f = arignote.function([x], [hs.shape, hs[-1].shape], backend=backend)
    assert [list(s) for s in f(np.ones((5, 3)))] == [[5, 3], [3]]
    assert not any(isinstance(n.op, S.Scan) for n in f.maker.fgraph.apply_nodes)
    with pytest.raises(IndexError):
        f(np.ones((0, 3)))  # x[0], the initial state, of no rows


def test_shape_of_a_loop_over_a_computed_sequence(backend):
    x = T.matrix("x")
    hs, _ = S.scan(lambda xt, h: h * xt, sequences=T.exp(x)[1:], outputs_info=T.ones_like(x[0]))
    f = arignote.function([x], hs.shape, backend=backend)
    assert list(f(np.ones((5, 3)))) == [4, 3]
    assert not any(isinstance(n.op, (S.Scan, ops.Exp)) for n in f.maker.fgraph.apply_nodes)


def test_a_loop_whose_step_may_fail_runs_for_its_shape(backend):
    x, w = T.matrix("x"), T.vector("w")
    hs, _ = S.scan(lambda xt, h, w: h * w + xt, sequences=x, outputs_info=T.zeros_like(x[0]), non_sequences=w)
    f = arignote.function([x, w], hs.shape, backend=backend)
    assert list(f(np.ones((5, 3)), np.ones(3))) == [5, 3]
    assert any(isinstance(n.op, S.Scan) for n in f.maker.fgraph.apply_nodes)  # w may not fit the rows
    with pytest.raises(ValueError):
        f(np.ones((5, 3)), np.ones(4))


def test_shape_of_a_while_loop_is_read_from_it(backend):
    x = T.vector("x")
    s, _ = S.scan(lambda xt, s: [s + xt, S.until(s + xt > 2)], sequences=x, outputs_info=T.zeros_like(x[0]))
    f = arignote.function([x], s.shape, backend=backend)
    assert list(f(np.ones(8))) == [3]
    assert any(isinstance(n.op, S.Scan) for n in f.maker.fgraph.apply_nodes)


def test_shape_of_a_branch(backend):
    c, x, y = T.lscalar("c"), T.matrix("x"), T.matrix("y")
    same = F.ifelse(c, T.exp(x), x * 2)
    other = F.ifelse(c, x, y.T)
    f = arignote.function([c, x, y], [same.shape, other.shape], backend=backend)
    assert [list(s) for s in f(1, np.ones((2, 3)), np.ones((4, 5)))] == [[2, 3], [2, 3]]
    assert [list(s) for s in f(0, np.ones((2, 3)), np.ones((4, 5)))] == [[2, 3], [5, 4]]
    assert not any(isinstance(n.op, F.IfElse) for n in f.maker.fgraph.apply_nodes)


def test_a_branch_that_may_fail_runs_for_its_shape(backend):
    c, x, i = T.lscalar("c"), T.matrix("x"), T.lscalar("i")
    f = arignote.function([c, x, i], F.ifelse(c, x[i:i + 1], x).shape, backend=backend)
    assert list(f(0, np.ones((2, 3)), 7)) == [2, 3]
    assert list(f(1, np.ones((2, 3)), 1)) == [1, 3]
    g = arignote.function([c, x, i], F.ifelse(c, x[i][None], x).shape, backend=backend)
    assert list(g(0, np.ones((2, 3)), 7)) == [2, 3]  # x[7] is out of range, but not computed
    with pytest.raises(IndexError):
        g(1, np.ones((2, 3)), 7)


def test_label_ops_are_read_from_their_result(backend):
    p, y = T.matrix("p"), T.ivector("y")
    f = arignote.function([p, y], T.nnet.categorical_crossentropy(p, y).shape, backend=backend)
    assert list(f(np.full((3, 4), 0.25), np.array([0, 3, 1], "int32"))) == [3]
    with pytest.raises(IndexError):
        f(np.full((3, 4), 0.25), np.array([0, 4, 1], "int32"))  # a label out of range


class _NoRule(Op):
    """An op that states no shape (as an op written in Python may not)."""

    def make_node(self, x):
        return Apply(self, [x], [TensorVariable(x.type)])


def test_an_op_without_a_rule_keeps_its_shape_read():
    x = T.matrix("x")
    y = _NoRule()(x)
    assert ShapeInference().inferred_sizes(y) is None
    graph = FunctionGraph([x], [(T.exp(y) * 2).shape])
    rewrite(graph)
    shape_reads = [n for n in graph.apply_nodes if isinstance(n.op, (ops.Shape, ops.ShapeI))]
    assert shape_reads and all(n.inputs[0].owner is not None and isinstance(n.inputs[0].owner.op, _NoRule)
                               for n in shape_reads)


def test_rules_receive_and_give_theano_shapes():
    x, W = T.matrix("x"), T.matrix("W")
    node = T.dot(x, W).owner
    (sizes,) = node.op.infer_shape(node, [(3, 4), (4, 5)])  # ints in, scalars out (Theano's signature)
    assert [int(getattr(s, "data", s)) for s in sizes] == [3, 5]
    assert not getattr(sizes, "checks", ())
    (checked,) = node.op.infer_shape(node, [(3, 4), (5, 2)])
    assert [type(c) for c in checked.checks] == [ShapeCheck]
