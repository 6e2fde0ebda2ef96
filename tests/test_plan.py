"""The decisions core makes once for every backend: the reduction-fusion rewrite (FusedReduce), the
buffer plan (core/plan.py) and the traits declared on ops; and that every backend receives the same
rewritten graph for the same function."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core import conformance, linalg, ops, plan
from arignote.core.graph import FunctionGraph
from arignote.core.plan import PARALLEL_MIN, plan_of

from checks import assert_same, backends_under_test


pytestmark = pytest.mark.usefixtures("all_rewrites")  # whatever ARIGNOTE_REWRITES the suite runs under


def graph(f):
    return f.maker.fgraph


def fused(f):
    return [n for n in graph(f).apply_nodes if isinstance(n.op, ops.FusedReduce)]


# ---------------------------------------------------------------------------------------------------
# reduction fusion


@pytest.mark.parametrize("reduce", [T.sum, T.mean, T.prod, T.max, T.min, T.all, T.any])
def test_every_reduction_absorbs_the_elementwise_result_it_alone_reads(reduce, backend):
    x, y = T.dmatrices("x", "y")
    f = arignote.function([x, y], reduce(T.exp(x) - y, axis=1), backend=backend)
    (node,) = fused(f)
    assert type(node.op.reduce).__name__ == reduce.__name__.capitalize()
    assert isinstance(node.op.elemwise, ops.Composite) and node.inputs == graph(f).inputs
    assert len(graph(f).apply_nodes) == 1  # no temporary: the reduction is the whole graph
    assert f"{node.op.reduce} of Composite{{" in arignote.debugprint(f, file="str")
    xv, yv = np.random.default_rng(0).normal(size=(2, 3, 5))
    assert_same(f(xv, yv), np.asarray(getattr(np, reduce.__name__)(np.exp(xv) - yv, axis=1)))


def test_an_elementwise_result_read_elsewhere_or_returned_is_not_fused():
    x = T.dvector("x")
    e = T.exp(x)
    read_twice = arignote.function([x], [T.sum(e) * e], backend="reference")
    assert not fused(read_twice)
    returned = arignote.function([x], [T.sum(e), e], backend="reference")
    assert not fused(returned)
    assert fused(arignote.function([x], T.sum(e), backend="reference"))


def test_a_body_that_may_fail_is_not_fused():
    i, j = T.lvectors("i", "j")
    f = arignote.function([i, j], T.sum(i ** j), backend="reference")
    assert not fused(f)  # an integer to a negative power raises: the reduction could not report it
    assert ops.Pow().may_fail(["int64", "int64"]) and not ops.Pow().may_fail(["float64", "int64"])
    assert fused(arignote.function([i, j], T.sum(i * j), backend="reference"))


def test_a_fused_reduction_differentiates_as_the_two_nodes_it_replaces(backend):
    x, y = T.dmatrices("x", "y")
    node = ops.FusedReduce(ops.Sum((0,)), ops.Mul())
    xv, yv = np.random.default_rng(1).normal(size=(2, 4, 3))
    arignote.verify_grad(lambda a, b: node(a, b), [xv, yv], backend=backend, rng=np.random.default_rng(2))
    g = arignote.function([x, y], T.grad(node(x, y).sum(), x), backend=backend)
    assert_same(g(xv, yv), np.broadcast_to(yv, xv.shape))


def test_every_fused_reduce_case_of_the_kit_builds_a_fused_reduce():
    cases = [c for c in conformance.CASES if c.op is ops.FusedReduce]
    assert len(cases) >= 7
    for case in cases:
        inputs = [a.type()(f"a{k}") for k, a in enumerate(case.args)]
        f = arignote.function(inputs, case.build(*inputs), backend="reference", on_unused_input="ignore")
        assert fused(f), case.name


# ---------------------------------------------------------------------------------------------------
# every backend receives the same graph


def _programs():
    x, y = T.fmatrices("x", "y")
    b = T.frow("b")
    labels = T.lvector("labels")
    w = arignote.shared(np.ones((4, 3), "float32"), name="w")
    p = T.nnet.softmax(T.tanh(T.dot(x, w) + b))
    cost = T.nnet.categorical_crossentropy(p, labels).mean() + 1e-4 * (w ** 2).sum()
    yield [x, b, labels], cost, [(w, w - 0.1 * T.grad(cost, w))]
    yield [x, y], [((x - y) ** 2).sum(axis=1), T.max(T.exp(x), axis=0), T.argmax(x, axis=1)], []
    yield [x, y], [T.exp(-x * x) * T.sin(y) + T.tanh(x * y), (x - x.mean()).sum()], []


def test_every_backend_receives_the_same_rewritten_graph():
    """The same graph, and the same plan wherever the backends' BLAS is the same (a BLAS narrower than
    the CPU hands the products to the compiled backends' own kernels: plan.narrow_blas)."""
    names = backends_under_test() + ["reference"]
    for inputs, outputs, updates in _programs():
        printed, plans = {}, {}
        for name in names:
            f = arignote.function(inputs, outputs, updates=updates, backend=name)
            printed[name] = arignote.debugprint(f, file="str")
            plans.setdefault(graph(f).plan.narrow_blas, set()).add(graph(f).plan.describe())
        assert len(set(printed.values())) == 1, printed
        assert all(len(described) == 1 for described in plans.values()), plans


# ---------------------------------------------------------------------------------------------------
# the plan


def test_views_are_taken_from_view_map_only():
    x = T.dmatrix("x")
    idx = T.lvector("idx")
    view, copy = x.T[1:], x[idx]
    fg = FunctionGraph([x, idx], [T.exp(view), T.exp(copy)], clone=False)
    plan = plan_of(fg)
    assert plan.root(view) is x and plan.root(view.owner.inputs[0]) is x
    assert plan.root(copy) is copy  # advanced indexing copies (AdvancedSubtensor.view_map is empty)
    assert ops.AdvancedSubtensor.view_map == {} and ops.Subtensor.view_map == {0: 0}


def test_a_buffer_dies_after_its_last_reader_through_any_view():
    x = T.dmatrix("x")
    e = T.exp(x)
    t = e.T
    s = T.sum(e * 2)
    out = T.tanh(t) + s
    fg = FunctionGraph([x], [out], clone=False)
    plan = plan_of(fg)
    through_view = [i for i, n in enumerate(plan.nodes) if t in n.inputs]
    directly = [i for i, n in enumerate(plan.nodes) if e in n.inputs and n is not t.owner]
    assert plan.last_read[e] == max(through_view + directly) and plan.root(t) is e
    assert e in plan.dying[plan.last_read[e]]
    only_view = plan_of(FunctionGraph([x], [T.tanh(t)], clone=False))  # exp, its transpose, tanh
    assert only_view.last_read[e] == 2 and e in only_view.dying[2]
    assert x in plan.dying[plan.last_read[x]] and plan.last_read[x] < plan.last_read[e]


def test_reuse_takes_a_dying_buffer_of_the_same_type_only():
    a, b = T.dmatrices("a", "b")
    d = T.dot(a, b)
    f = arignote.function([a, b], T.exp(d) * 2, backend="reference")
    (node,) = [n for n in graph(f).apply_nodes if isinstance(n.op, ops.Elemwise)]
    assert graph(f).plan.reuse == {node: 0}
    # another dtype: no reuse
    g = arignote.function([a, b], T.cast(T.exp(d), "float32"), backend="reference")
    assert graph(g).plan.reuse == {}
    # returned, or read later: no reuse
    h = arignote.function([a, b], [T.exp(d), d], backend="reference")
    assert graph(h).plan.reuse == {}
    # an input of the function: never
    k = arignote.function([a], T.exp(a) * 2, backend="reference")
    assert graph(k).plan.reuse == {}


def test_an_inc_subtensor_takes_over_its_dying_x_only(backend):
    """inc_subtensor(x[1:], y) writes into x's buffer where x, computed, dies there; the values stay
    those of a copy (the gradient of hs[-1] of a scan built two such zero buffers per call)."""
    a, y = T.dmatrices("a", "y")
    z = T.exp(a)
    f = arignote.function([a, y], T.inc_subtensor(z[1:], y) * 2, backend=backend)
    (node,) = [n for n in graph(f).apply_nodes if isinstance(n.op, ops.IncSubtensor)]
    assert graph(f).plan.reuse.get(node) == 0
    av, yv = np.arange(12.0).reshape(3, 4) / 10, np.ones((2, 4))
    expected = np.exp(av)
    expected[1:] += yv
    assert_same(f(av, yv), expected * 2)
    assert_same(f(av, yv[:, ::-1].copy()), expected * 2)
    # x read later, x a function's input, or y a view of x: a copy
    g = arignote.function([a, y], [T.inc_subtensor(z[1:], y), z], backend=backend)
    h = arignote.function([a, y], T.inc_subtensor(a[1:], y), backend=backend)
    k = arignote.function([a], T.inc_subtensor(z[1:], z[:-1]), backend=backend)
    for other in (g, h, k):
        assert not [n for n in graph(other).plan.reuse if isinstance(n.op, ops.IncSubtensor)]
    shifted = np.exp(av)
    shifted[1:] += np.exp(av)[:-1]
    assert_same(k(av), shifted)
    assert_same(g(av, yv)[1], np.exp(av))


def test_reuse_is_off_without_the_inplace_pass():
    a, b = T.dmatrices("a", "b")
    config.rewrites = "merge,fusion"
    f = arignote.function([a, b], T.exp(T.dot(a, b)), backend="reference")
    assert graph(f).plan.reuse == {}


def test_threads_go_to_costly_loops_in_graphs_without_products():
    x, y = T.fvectors("x", "y")
    f = arignote.function([x, y], [T.exp(x) * T.sin(y) + T.tanh(x), x + y], backend="reference")
    costly = [n for n in graph(f).apply_nodes if n.op.costly]
    cheap = [n for n in graph(f).apply_nodes if not n.op.costly]
    assert graph(f).plan.threads == costly and cheap and not set(cheap) & set(graph(f).plan.threads)
    m = T.fmatrix("m")
    g = arignote.function([m], T.exp(T.dot(m, m)) + 1, backend="reference")
    assert graph(g).plan.threads == []  # BLAS keeps the cores busy
    assert PARALLEL_MIN == 1 << 20


def test_a_costly_loop_splits_from_fewer_elements_the_more_costly_functions_it_runs():
    """plan.parallel_min: PARALLEL_MIN elements of cheap work, each costly function of a loop (or a
    row op's exps) counted COSTLY_ELEMENT times; the C backend passes it to ari_parallel."""
    from arignote.core.plan import COSTLY_ELEMENT

    x, y = T.fmatrices("x", "y")
    labels = T.ivector("labels")
    outputs = [T.tanh(x + y), T.exp(x) * T.sin(y) + T.tanh(x) * y,
               T.nnet.categorical_crossentropy(T.nnet.softmax(x), labels)]
    f = arignote.function([x, y, labels], outputs, backend="reference")
    made = graph(f).plan
    least = {n.outputs[0]: made.parallel_min[n] for n in made.threads}
    tanh, three, rows = (graph(f).outputs[k].owner for k in range(3))
    assert least == {tanh.outputs[0]: PARALLEL_MIN // COSTLY_ELEMENT,
                     three.outputs[0]: PARALLEL_MIN // (3 * COSTLY_ELEMENT),
                     rows.outputs[0]: PARALLEL_MIN // COSTLY_ELEMENT}
    assert f"is worth threads from {PARALLEL_MIN // (3 * COSTLY_ELEMENT)} elements" in made.describe()


@pytest.mark.parametrize("narrow", [False, True])
def test_products_run_on_the_own_kernels_by_the_blas_and_the_graph(narrow):
    """own_rows: every product where the BLAS runs narrower vectors than the CPU, whose products then
    share their columns between the program's threads with the BLAS on one core; up to 64 rows in a
    graph whose BLAS runs on one core anyway (a convolution's); else the backends' few rows."""
    x, w = T.fmatrices("x", "w")
    images = T.ftensor4("images")
    features = T.nnet.conv2d(images, w.dimshuffle("x", "x", 0, 1)).flatten(2)

    def made(inputs, output):
        return plan.Plan(graph(arignote.function(inputs, output, backend="reference")), narrow_blas=narrow)

    dense, conv, vector = made([x, w], T.tanh(T.dot(x, w))), made([images, w], T.dot(features, w)), made([x], T.exp(x))
    assert [dense.own_rows, conv.own_rows, vector.own_rows] == ([plan.ALL_ROWS] * 3 if narrow else
                                                                [None, plan.OWN_ROWS_ONE_CORE, None])
    assert dense.blas_one_core == narrow and conv.blas_one_core and not vector.blas_one_core
    assert len(dense.product_threads) == narrow and len(conv.product_threads) == 1
    assert ("every float product run on the backend's own kernels" in dense.describe()) == narrow
    assert "float products of up to 64 rows" in conv.describe() or narrow


def test_the_backend_tells_the_plan_whether_its_blas_is_narrower(monkeypatch):
    """The rewrites ask the backend (Backend.blas_narrower_than_cpu): the compiled ones answer for the
    BLAS they share, the reference (which calls none) and a plan made without a backend say no."""
    from arignote.backends import blas

    x, w = T.fmatrices("x", "w")
    for narrow in (False, True):
        monkeypatch.setattr(blas, "narrower_than_cpu", lambda: narrow)
        for backend in backends_under_test():
            made = graph(arignote.function([x, w], T.dot(x, w), backend=backend)).plan
            assert made.narrow_blas == (narrow and backend != "reference")
    assert plan_of(FunctionGraph([x, w], [T.dot(x, w)])).narrow_blas is False


def test_a_blas_is_narrower_than_the_cpu_by_its_kernels_and_the_cpu(monkeypatch):
    from arignote.backends import blas

    wide = {"avx512f", "avx2", "fma"}
    for kernels, cpu, narrower in [("Haswell", wide, True), ("SkylakeX", wide, False), ("Cooperlake", wide, False),
                                   ("Haswell", {"avx2", "fma"}, False), (None, wide, False), ("Zen", wide, True)]:
        monkeypatch.setattr(blas, "entry_points", lambda: {"kernel_set": kernels})
        monkeypatch.setattr(blas, "cpu_flags", lambda: cpu)
        assert blas.narrower_than_cpu() == narrower, (kernels, cpu)


def test_plan_of_makes_a_plan_for_a_graph_handed_over_directly():
    x = T.dvector("x")
    fg = FunctionGraph([x], [T.exp(x) + 1])
    assert not hasattr(fg, "plan")
    assert plan_of(fg) is fg.plan and plan_of(fg) is fg.plan


# ---------------------------------------------------------------------------------------------------
# traits declared on ops


def test_compute_dtypes():
    assert ops.Add().compute_dtype(["int8", "float32"], "float32") == "float32"
    assert ops.Lt().compute_dtype(["int8", "float32"], "bool") == "float32"
    assert ops.IsNan().compute_dtype(["float32"], "bool") == "float32"
    assert ops.Cast("int32").compute_dtype(["float64"], "int32") == "float64"
    assert ops.Switch().value_inputs_start == 1
    assert ops.Exp().costly and not ops.Add().costly


@pytest.mark.parametrize("op, dtype, identity", [
    (ops.Sum((0,)), "float32", 0), (ops.Prod((0,)), "int64", 1), (ops.Max((0,)), "float32", -np.inf),
    (ops.Min((0,)), "int8", 127), (ops.Max((0,)), "bool", False), (ops.All((0,)), "bool", True),
    (ops.Any((0,)), "int32", False)])
def test_reduction_identities_are_the_neutral_element(op, dtype, identity):
    value = op.identity(dtype)
    assert value == identity
    data = np.array([3, 1, 2], dtype)
    step = {"add": np.add, "multiply": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
            "and": np.logical_and, "or": np.logical_or}[op.combine]
    for element in data:
        assert step(value, element) == element or op.combine in ("and", "or")


def test_accumulator_dtypes():
    assert ops.Sum((0,)).accumulator_dtype("float32", "float32") == "float64"
    assert ops.Mean((0,)).accumulator_dtype("int32", "float64") == "float64" and ops.Mean((0,)).divides
    assert ops.Sum((0,)).accumulator_dtype("int8", "int64") == "int64"
    assert ops.Max((0,)).accumulator_dtype("float32", "float32") == "float32" and not ops.Max((0,)).has_identity
    assert ops.All((0,)).accumulator_dtype("int32", "bool") == "bool"
    assert linalg.BatchedDot is not None
