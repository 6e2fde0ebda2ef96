"""The graph rewrites (core/rewrite.py): merge, constant folding, canonicalization, stabilization,
elementwise fusion and inplace marking, as function() applies them and exposes them in
``f.maker.fgraph`` and ``debugprint(f)``.

Each rewrite is checked twice: on the structure of the rewritten graph (op types and counts, against the
same graph compiled with ``config.rewrites = "none"`` so that a rewrite that stops firing fails), and on
values (rewritten against unrewritten and against NumPy, on every backend where values are computed).
"""

import os
import re
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.backends.reference import ReferenceBackend
from arignote.core import nnet, ops, rewrite as rewrite_module
from arignote.core.graph import Constant, FunctionGraph
from arignote.core.plugins import registry
from arignote.core.rewrite import rewrite, selected_passes

from checks import assert_same


# ---------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(autouse=True)
def rewrites():
    """A setter for ``arignote.config.rewrites``. Every test here starts with all passes (whatever
    ARIGNOTE_REWRITES the suite runs under), and the setting in force before it is restored afterwards,
    whatever the test did."""
    saved = config.rewrites
    config.rewrites = "all"

    def set_rewrites(value):
        config.rewrites = value

    yield set_rewrites
    config.rewrites = saved


def requires(backend, *passes):
    """Skip a structural check on a backend that declines one of ``passes`` (declined_rewrites)."""
    declined = set(passes) & set(getattr(registry.get(backend), "declined_rewrites", ()) or ())
    if declined:
        pytest.skip(f"backend {backend!r} declines the {', '.join(sorted(declined))} rewrite(s)")


def nodes(f):
    return f.maker.fgraph.apply_nodes


def op_types(f):
    """The op classes of the rewritten graph, in topological order (composites as Composite; a
    FusedReduce as its reduction and its elementwise op)."""
    result = []
    for n in nodes(f):
        parts = (n.op.elemwise, n.op.reduce) if isinstance(n.op, ops.FusedReduce) else (n.op,)
        result += [type(p) for p in parts]
    return result


def all_op_types(f):
    """The op classes of the graph and of every composite's scalar body."""
    found = []
    for node in nodes(f):
        parts = (node.op.elemwise, node.op.reduce) if isinstance(node.op, ops.FusedReduce) else (node.op,)
        for op in parts:
            found.append(type(op))
            if isinstance(op, ops.Composite):
                found.extend(type(inner.op) for inner in op.fgraph.apply_nodes)
    return found


def count(f, op_class):
    """How many nodes of the rewritten graph apply ``op_class`` (composite bodies not included)."""
    return op_types(f).count(op_class)


def composites(f):
    return [n for n in nodes(f) if isinstance(n.op, ops.Composite)]


def tol(dtype):
    return {"float32": 2e-5}.get(np.dtype(dtype).name, 1e-10)


def close(actual, expected, what=""):
    """assert_same with room for rewritten arithmetic (another order of operations)."""
    assert_same(actual, expected, what, tol=tol(np.asarray(actual).dtype))


def compile_under(setting, build, backend, set_rewrites):
    """``build()`` -> (inputs, outputs), built and compiled with ``config.rewrites = setting`` (grad
    reads the setting when the graph is built, function when it is compiled)."""
    set_rewrites(setting)
    inputs, outputs = build()
    return arignote.function(inputs, outputs, backend=backend, on_unused_input="ignore")


def np_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # a slice of -inf only: log(0) = -inf
    with np.errstate(divide="ignore"):
        result = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return result if keepdims else np.squeeze(result, axis=axis)


def np_sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


def np_log_sigmoid(x):
    return -np.logaddexp(0, -x)


def six_op_chain(x, y):
    """Six elementwise ops over two inputs: exp, mul, sin, add, tanh, sub."""
    return T.tanh(T.exp(x) * y + T.sin(x)) - y


def np_six_op_chain(x, y):
    return np.tanh(np.exp(x) * y + np.sin(x)) - y


# ---------------------------------------------------------------------------------------------------
# function() exposes the rewritten graph; ARIGNOTE_REWRITES / config.rewrites select the passes


def test_function_exposes_the_rewritten_graph_in_maker_fgraph_and_debugprint(rewrites):
    x = T.dvector("x")
    f = arignote.function([x], (x * 1 + 0) * 2, backend="reference")
    assert isinstance(f.maker.fgraph, FunctionGraph)
    assert op_types(f) == [ops.Mul]
    (node,) = nodes(f)
    assert node.inputs[0] is f.maker.fgraph.inputs[0]
    text = arignote.debugprint(f, file="str")
    assert text.splitlines()[0].startswith("Mul [id A]")
    assert "Add" not in text

    rewrites("none")
    plain = arignote.function([x], (x * 1 + 0) * 2, backend="reference")
    assert sorted(k.__name__ for k in op_types(plain)) == ["Add", "Mul", "Mul"]
    assert "Add" in arignote.debugprint(plain, file="str")
    np.testing.assert_array_equal(f(np.array([1.0, -2.5])), plain(np.array([1.0, -2.5])))


SUBPROCESS_PROBE = textwrap.dedent("""
    import arignote, arignote.tensor as T
    x, y = T.dvectors("x", "y")
    f = arignote.function([x, y], [T.tanh(T.exp(x) * y + T.sin(x)) - y, x * 1], backend="reference")
    print(arignote.config.rewrites)
    print(" ".join(type(n.op).__name__ for n in f.maker.fgraph.apply_nodes))
    print(repr(f.maker.fgraph.plan.reuse))
""")


def _probe(rewrites_env):
    env = {k: v for k, v in os.environ.items() if k != "ARIGNOTE_REWRITES"}
    if rewrites_env is not None:
        env["ARIGNOTE_REWRITES"] = rewrites_env
    done = subprocess.run([sys.executable, "-c", SUBPROCESS_PROBE], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_ARIGNOTE_REWRITES_none_leaves_the_graph_unrewritten_in_a_fresh_process():
    setting, names, inplace = _probe("none")
    assert setting == "none"
    assert sorted(names.split()) == sorted("Exp Mul Sin Add Tanh Sub Mul".split())
    assert inplace == "{}"
    setting, names, inplace = _probe(None)  # the default: every pass
    assert setting == "all"
    assert names.split() == ["Composite"]  # x * 1 is x itself: no node
    assert inplace == "{}"  # the composite reads the caller's arrays: nothing to overwrite


def test_unknown_pass_name_raises_ValueError(rewrites):
    x = T.dvector("x")
    rewrites("merge,frobnicate")
    with pytest.raises(ValueError, match="frobnicate"):
        selected_passes()
    with pytest.raises(ValueError, match="unknown rewrites.*frobnicate"):
        arignote.function([x], x * 2, backend="reference")


def test_a_list_of_passes_runs_only_those(rewrites):
    x, y = T.dvectors("x", "y")
    rewrites(" Merge , canonicalize ")  # spaces and case do not matter
    assert selected_passes() == ("merge", "canonicalize")
    f = arignote.function([x, y], T.exp(x * y) + T.exp(x * y) * 1, backend="reference")
    assert count(f, ops.Mul) == 1 and count(f, ops.Exp) == 1 and count(f, ops.Add) == 1
    assert not composites(f) and f.maker.fgraph.plan.reuse == {}


class NoFusionBackend(ReferenceBackend):
    """The reference backend, declining the fusion pass."""

    name = "test-rewrite-nofusion"
    declined_rewrites = {"fusion"}


@pytest.fixture
def nofusion_backend():
    registry.register(NoFusionBackend())
    yield NoFusionBackend.name
    registry.reset()


def test_a_backend_declining_fusion_gets_every_other_pass_but_no_composite(nofusion_backend):
    assert "fusion" not in selected_passes(registry.get(nofusion_backend))
    x, y = T.dvectors("x", "y")
    build = lambda: six_op_chain(x * 1, y)  # noqa: E731
    declined = arignote.function([x, y], build(), backend=nofusion_backend)
    assert not composites(declined)
    assert count(declined, ops.Mul) == 1  # canonicalize still ran: x * 1 is gone
    assert len(nodes(declined)) == 6
    fused = arignote.function([x, y], build(), backend="reference")
    assert op_types(fused) == [ops.Composite]
    xv, yv = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, -3.0])
    close(declined(xv, yv), np_six_op_chain(xv, yv))
    close(fused(xv, yv), np_six_op_chain(xv, yv))


# ---------------------------------------------------------------------------------------------------
# merge


def test_a_graph_that_writes_x_times_y_twice_computes_it_once(backend, rewrites):
    requires(backend, "merge", "fusion")
    x, y = T.dvectors("x", "y")
    build = lambda: ([x, y], (x * y) + (x * y))  # noqa: E731
    xv, yv = np.array([1.0, -2.0, 3.5]), np.array([4.0, 0.5, -1.0])

    only_merge = compile_under("merge", build, backend, rewrites)
    assert count(only_merge, ops.Mul) == 1
    (add,) = [n for n in nodes(only_merge) if isinstance(n.op, ops.Add)]
    assert add.inputs[0] is add.inputs[1]

    unrewritten = compile_under("none", build, backend, rewrites)
    assert count(unrewritten, ops.Mul) == 2

    default = compile_under("all", build, backend, rewrites)
    (node,) = nodes(default)  # fused; the body computes x * y once too
    assert [type(n.op) for n in node.op.fgraph.apply_nodes].count(ops.Mul) == 1
    for f in (only_merge, unrewritten, default):
        close(f(xv, yv), 2 * xv * yv)


def test_merge_makes_equal_constants_one_and_keeps_different_ones_apart(backend, rewrites):
    requires(backend, "merge")
    x = T.dvector("x")
    rewrites("merge")
    f = arignote.function([x], [x + np.float64(3.0), x * np.float64(3.0)], backend=backend)
    constants = [i for n in nodes(f) for i in n.inputs if isinstance(i, Constant)]
    assert len(constants) == 2 and constants[0] is constants[1]
    close(f(np.array([1.0, 2.0]))[1], np.array([3.0, 6.0]))

    # 0.0 and -0.0 are equal numbers but different constants: 1 / (x * 0.0) is +inf, 1 / (x * -0.0) -inf
    rewrites("all")
    g = arignote.function([x], [1 / (x * np.float64(0.0)), 1 / (x * np.float64(-0.0))], backend=backend)
    positive, negative = g(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(positive, [np.inf, np.inf])
    np.testing.assert_array_equal(negative, [-np.inf, -np.inf])
    # and equal values of another dtype are other constants: int64 i * 3 stays exact for large ints
    i = T.lvector("i")
    h = arignote.function([i, x], [i * np.int64(3), x * np.float64(3.0)], backend=backend)
    constants = [v for n in nodes(h) for v in n.inputs if isinstance(v, Constant)]
    assert len(constants) == 2 and constants[0] is not constants[1]
    big, scaled = h(np.array([2**62 // 3]), np.array([1.0]))
    np.testing.assert_array_equal(big, [(2**62 // 3) * 3])
    assert big.dtype == np.int64 and scaled.dtype == np.float64


# ---------------------------------------------------------------------------------------------------
# constant folding


def test_constant_subgraphs_are_folded_at_compile_time(backend, rewrites):
    requires(backend, "constant_folding")
    x = T.dvector("x")
    c = T.constant(np.arange(4.0))
    build = lambda: ([x], x + (T.exp(c) * 2 + T.sum(c)))  # noqa: E731
    folded = compile_under("constant_folding", build, backend, rewrites)
    assert op_types(folded) == [ops.Add]
    (node,) = nodes(folded)
    (constant,) = [i for i in node.inputs if isinstance(i, Constant)]
    np.testing.assert_allclose(constant.data, np.exp(np.arange(4.0)) * 2 + 6.0)

    plain = compile_under("none", build, backend, rewrites)
    assert {ops.Exp, ops.Mul, ops.Sum} <= set(op_types(plain))
    xv = np.array([1.0, 2.0, 3.0, 4.0])
    close(folded(xv), xv + np.exp(np.arange(4.0)) * 2 + 6.0)
    close(folded(xv), plain(xv))


def test_constant_folding_keeps_a_large_alloc_unfolded(backend, rewrites):
    requires(backend, "constant_folding")
    m = T.dmatrix("m")
    limit = rewrite_module.FOLD_LIMIT
    rows = limit // 100
    rewrites("constant_folding")
    big = arignote.function([m], m + T.alloc(np.float64(1.5), rows + 1, 100), backend=backend)
    assert ops.Alloc in op_types(big)
    assert all(i.data.size <= limit for n in nodes(big) for i in n.inputs if isinstance(i, Constant))
    close(big(np.zeros((rows + 1, 100))), np.full((rows + 1, 100), 1.5))

    # exactly at the limit it is folded into a constant
    small = arignote.function([m], m + T.alloc(np.float64(1.5), rows, 100), backend=backend)
    assert ops.Alloc not in op_types(small)
    close(small(np.ones((rows, 100))), np.full((rows, 100), 2.5))


# ---------------------------------------------------------------------------------------------------
# canonicalization


def _identity_cases():
    return {
        "x * 1": lambda x: x * 1,
        "1 * x": lambda x: 1 * x,
        "x + 0": lambda x: x + 0,
        "0 + x": lambda x: 0 + x,
        "x - 0": lambda x: x - 0,
        "x / 1": lambda x: x / 1,
        "x ** 1": lambda x: x ** 1,
        "--x": lambda x: -(-x),
        "x.T.T": lambda x: x.T.T,
        "reshape(x, x.shape)": lambda x: x.reshape(x.shape),
        "reshape(x, (rows, cols))": lambda x: x.reshape((x.shape[0], x.shape[1])),
        "float32(float64(x))": lambda x: T.cast(T.cast(x, "float64"), "float32"),
        "x[None][0]": lambda x: x[None][0],
        "x.dimshuffle('x', 0, 1)[-1]": lambda x: x.dimshuffle("x", 0, 1)[-1],
        "zeros_like(x) + x": lambda x: T.zeros_like(x) + x,
        "x + zeros_like(x)[None][0]": lambda x: x + T.zeros_like(x)[None][0],
    }


@pytest.mark.parametrize("case", sorted(_identity_cases()))
def test_canonicalize_removes_useless_computations(case, rewrites):
    build = _identity_cases()[case]
    m = T.fmatrix("m")
    rewrites("canonicalize")
    f = arignote.function([m], build(m), backend="reference")
    assert nodes(f) == [], f"{case}: {op_types(f)}"
    assert f.maker.fgraph.outputs[0] is f.maker.fgraph.inputs[0]
    rewrites("none")
    assert nodes(arignote.function([m], build(m), backend="reference")), "the case must build nodes"
    value = np.arange(6, dtype="float32").reshape(2, 3) - 2.5
    close(f(value), value)


def test_a_scans_weight_gradient_starts_from_its_first_term_not_from_zeros(backend, rewrites):
    """The loop rewrites leave zeros_like(W)[None][0] + dW and dimshuffle('x', 0, 1)(g)[-1] behind
    (a gradient summed over the steps, pushed out of the loop): canonicalized after them, no zeros
    are filled, added or indexed."""
    requires(backend, "canonicalize", "loops")
    X, Wx, Wh, b = T.dtensor3("X"), T.dmatrix("Wx"), T.dmatrix("Wh"), T.dvector("b")
    step = lambda x_t, h: T.tanh(T.dot(x_t, Wx) + T.dot(h, Wh) + b)  # noqa: E731

    def build():
        hs, _ = arignote.scan(step, sequences=X, outputs_info=T.zeros((X.shape[1], Wh.shape[1])))
        cost = (hs[-1] ** 2).sum()
        return [X, Wx, Wh, b], [cost, *arignote.grad(cost, [Wx, Wh, b])]

    f = compile_under("all", build, backend, rewrites)
    outer = f.maker.fgraph.apply_nodes
    assert not [n for n in outer if str(n.op) == "Subtensor{None}" or type(n.op) is ops.Rebroadcast]
    assert not [n for n in outer if type(n.op) is ops.Add and any(_is_fill(i) for i in n.inputs)]
    assert not [n for n in outer if _is_fill(n.outputs[0]) and n.inputs[0] in (Wx, Wh, b)]
    rng = np.random.default_rng(3)
    values = rng.uniform(-1, 1, (5, 2, 3)), *rng.uniform(-0.5, 0.5, (2, 3, 3)), rng.uniform(-1, 1, 3)
    for a, e in zip(f(*values), compile_under("none", build, "reference", rewrites)(*values)):
        close(a, e)


def _is_fill(var):
    return var.owner is not None and type(var.owner.op) is ops.Second


def test_canonicalize_turns_powers_into_sqr_and_sqrt(backend, rewrites):
    requires(backend, "canonicalize")
    x = T.dvector("x")
    rewrites("canonicalize")
    f = arignote.function([x], [x ** 2, x ** 0.5], backend=backend)
    assert sorted(k.__name__ for k in op_types(f)) == ["Sqr", "Sqrt"]
    assert ops.Pow not in op_types(f)
    xv = np.array([0.0, 2.0, 9.0, 1e-3])
    square, root = f(xv)
    close(square, xv ** 2)
    close(root, np.sqrt(xv))


def test_power_rewrites_compute_in_the_result_dtype(backend, rewrites):
    """Regression: int8 ** 2.0 is float64, and sqr of the int8 itself wraps (100 ** 2 = 16 in int8)."""
    requires(backend, "canonicalize")
    b = T.bvector("b")
    f = arignote.function([b], [b ** 2.0, b ** 0.5, b ** 2], backend=backend)
    assert ops.Pow not in all_op_types(f)
    bv = np.array([100, 3, 2, -7], dtype="int8")
    as_float, root, as_int = f(bv)
    close(as_float, bv.astype("float64") ** 2.0)
    with np.errstate(invalid="ignore"):
        close(root, np.sqrt(bv.astype("float64")))  # NaN for -7
    np.testing.assert_array_equal(as_int, bv ** 2)  # int8 ** int: wraps, in both forms
    assert as_int.dtype == np.int8


def test_canonicalize_x_minus_x_is_zero_even_for_nan_and_inf(backend, rewrites):
    """Documented behaviour: x - x is rewritten to zeros, so where x is NaN or +-inf the rewritten graph
    gives 0 (unrewritten, NaN). Every other entry agrees."""
    requires(backend, "canonicalize")
    x = T.dvector("x")
    xv = np.array([np.nan, np.inf, -np.inf, 1.5, -0.0])
    f = arignote.function([x], x - x, backend=backend)
    assert ops.Sub not in all_op_types(f)
    np.testing.assert_array_equal(f(xv), np.zeros(5))
    rewrites("none")
    g = arignote.function([x], x - x, backend=backend)
    np.testing.assert_array_equal(g(xv), [np.nan, np.nan, np.nan, 0.0, 0.0])
    # an integer x - x keeps its dtype
    i = T.ivector("i")
    rewrites("all")
    h = arignote.function([i], i - i, backend=backend)
    assert h(np.array([3, -4], dtype="int32")).dtype == np.int32


def test_canonicalize_merges_chains_of_dimshuffles(backend, rewrites):
    requires(backend, "canonicalize")
    m = T.dmatrix("m")
    rewrites("canonicalize")
    f = arignote.function([m], m.dimshuffle(1, 0).dimshuffle("x", 1, 0).dimshuffle(0, 2, "x", 1), backend=backend)
    (node,) = nodes(f)
    assert type(node.op) is ops.DimShuffle and node.op.new_order == ("x", 1, "x", 0)
    mv = np.arange(6.0).reshape(2, 3)
    close(f(mv), mv.T[None, :, None, :])


def test_cast_round_trips_are_removed_only_when_lossless(backend, rewrites):
    requires(backend, "canonicalize")
    x = T.dvector("x")
    i = T.lvector("i")
    s = T.ivector("s")
    rewrites("canonicalize")
    f = arignote.function([x, i, s], [
        T.cast(T.cast(x, "float32"), "float64"),  # lossy: kept
        T.cast(T.cast(i, "float64"), "int64"),  # lossy above 2 ** 53: kept (regression)
        T.cast(T.cast(s, "float64"), "int32"),  # exact: removed
    ], backend=backend)
    assert count(f, ops.Cast) == 4
    assert f.maker.fgraph.outputs[2] is f.maker.fgraph.inputs[2]
    xv = np.array([1 / 3, 1e-50])
    iv = np.array([2**53 + 1, -(2**60) - 1])
    sv = np.array([2**31 - 1, -(2**31)], dtype="int32")
    through32, through64, same = f(xv, iv, sv)
    close(through32, xv.astype("float32").astype("float64"))
    np.testing.assert_array_equal(through64, iv.astype("float64").astype("int64"))
    np.testing.assert_array_equal(same, sv)


# ---------------------------------------------------------------------------------------------------
# stabilization


def test_log_softmax(backend, rewrites):
    requires(backend, "stabilize")
    z = T.dmatrix("z")
    f = arignote.function([z], T.log(T.nnet.softmax(z)), backend=backend)
    assert op_types(f) == [nnet.LogSoftmax]
    zv = np.array([[1e4, 0.0, -1e4], [3.0, 2.0, 1.0]])
    result = f(zv)
    assert np.isfinite(result).all()
    close(result, np_log_softmax(zv))
    rewrites("none")
    assert not np.isfinite(arignote.function([z], T.log(T.nnet.softmax(z)), backend=backend)(zv)).all()


def test_log1p_and_expm1(backend, rewrites):
    requires(backend, "stabilize", "merge")
    x = T.dvector("x")
    f = arignote.function([x], [T.log(1 + x), T.log(x + 1), T.exp(x) - 1], backend=backend)
    kinds = all_op_types(f)
    assert kinds.count(ops.Log1p) == 1 and kinds.count(ops.Expm1) == 1  # log(1 + x), log(x + 1) merged
    assert ops.Log not in kinds and ops.Exp not in kinds
    xv = np.array([1e-20, -1e-18, 0.5, 3.0])
    a, b, c = f(xv)
    close(a, np.log1p(xv))
    close(b, np.log1p(xv))
    close(c, np.expm1(xv))
    assert a[0] == 1e-20 and c[0] == 1e-20  # log(1 + 1e-20) would be 0
    # an integer x is not turned into log1p (it would change the dtype rules): values still right
    i = T.lvector("i")
    g = arignote.function([i], T.log(1 + i), backend=backend)
    close(g(np.array([0, 4])), np.log1p(np.array([0.0, 4.0])))


def test_log_sigmoid_is_minus_softplus(backend, rewrites):
    requires(backend, "stabilize")
    x = T.dvector("x")
    build = lambda: ([x], [T.log(T.nnet.sigmoid(x)), T.log(1 - T.nnet.sigmoid(x))])  # noqa: E731
    f = compile_under("all", build, backend, rewrites)
    kinds = all_op_types(f)
    assert kinds.count(nnet.Softplus) == 2 and ops.Log not in kinds and ops.Sigmoid not in kinds
    xv = np.array([-800.0, -30.0, 0.0, 2.0, 800.0])
    low, high = f(xv)
    assert low[0] == -800.0  # not -inf
    assert high[-1] == -800.0
    close(low, np_log_sigmoid(xv))
    close(high, np_log_sigmoid(-xv))
    plain_low, plain_high = compile_under("none", build, backend, rewrites)(xv)
    assert plain_low[0] == -np.inf and plain_high[-1] == -np.inf


@pytest.mark.parametrize("spelling", ["1/(1+exp(-x))", "exp(x)/(1+exp(x))", "1/(exp(-x)+1) float32"])
def test_the_logistic_spelt_with_exp_is_a_sigmoid(backend, rewrites, spelling):
    requires(backend, "stabilize")
    dtype = "float32" if "float32" in spelling else "float64"
    x = T.vector("x", dtype=dtype)
    p = {"1/(1+exp(-x))": lambda: 1 / (1 + T.exp(-x)), "exp(x)/(1+exp(x))": lambda: T.exp(x) / (1 + T.exp(x)),
         "1/(exp(-x)+1) float32": lambda: 1 / (T.exp(-x) + 1)}[spelling]
    build = lambda: ([x], [p(), T.log(p()), T.log(1 - p())])  # noqa: E731
    f = compile_under("all", build, backend, rewrites)
    kinds = all_op_types(f)
    assert ops.Exp not in kinds and ops.Log not in kinds and ops.TrueDiv not in kinds, kinds
    xv = np.array([-800.0, -30.0, 0.0, 2.0, 800.0], dtype=dtype)
    value, low, high = f(xv)
    assert value.dtype == dtype and low.dtype == dtype
    wide = xv.astype("float64")
    close(value, np_sigmoid(wide).astype(dtype))
    close(low, np_log_sigmoid(wide).astype(dtype))
    close(high, np_log_sigmoid(-wide).astype(dtype))
    assert np.isfinite(low).all() and np.isfinite(high).all()  # log(0) without the rewrite


def test_a_logistic_whose_denominator_is_used_elsewhere_is_still_right(backend, rewrites):
    x = T.dvector("x")
    d = 1 + T.exp(-x)
    value, denominator = arignote.function([x], [1 / d, d], backend=backend)(np.array([-2.0, 0.0, 3.0]))
    close(value, np_sigmoid(np.array([-2.0, 0.0, 3.0])))
    close(denominator, 1 + np.exp(np.array([2.0, 0.0, -3.0])))


def test_log_sigmoid_gradient_is_stable(backend, rewrites):
    requires(backend, "stabilize")
    x = T.dvector("x")
    build = lambda: ([x], arignote.grad(T.sum(T.log(T.nnet.sigmoid(x))), x))  # noqa: E731
    xv = np.array([-800.0, -1.0, 0.0, 5.0, 800.0])
    g = compile_under("all", build, backend, rewrites)(xv)
    close(g, np_sigmoid(-xv))  # d/dx log(sigmoid(x)) = 1 - sigmoid(x)
    assert g[0] == 1.0
    plain = compile_under("none", build, backend, rewrites)(xv)
    assert not np.isfinite(plain[0])


@pytest.mark.parametrize("axis, keepdims", [(1, False), (0, True), (None, False)])
def test_logsumexp_is_max_shifted(backend, rewrites, axis, keepdims):
    requires(backend, "stabilize")
    m = T.dmatrix("m")
    build = lambda: ([m], T.log(T.sum(T.exp(m), axis=axis, keepdims=keepdims)))  # noqa: E731
    f = compile_under("all", build, backend, rewrites)
    # one shift: the rewrite must not match what it built (it did, nesting 32 Max/Sub pairs)
    assert count(f, ops.Max) == 1
    assert count(f, ops.Sum) == 1
    mv = np.array([[1e4, 0.0, -3.0], [-np.inf, -np.inf, -np.inf], [2.0, 1.0, 700.0]])
    result = f(mv)
    assert np.isfinite(result).sum() == result.size - (axis == 1)  # a row of -inf gives -inf
    close(result, np_logsumexp(mv, axis=axis, keepdims=keepdims))
    if axis == 1:
        plain = compile_under("none", build, backend, rewrites)(mv)
        assert plain[0] == np.inf  # exp(1e4) overflows without the shift


def test_logsumexp_gradient_is_stable(backend, rewrites):
    requires(backend, "stabilize")
    m = T.dmatrix("m")
    build = lambda: ([m], arignote.grad(T.sum(T.log(T.sum(T.exp(m), axis=1))), m))  # noqa: E731
    mv = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    close(compile_under("all", build, backend, rewrites)(mv), np_softmax(mv, axis=1))
    assert not np.isfinite(compile_under("none", build, backend, rewrites)(mv)).all()


def test_logsumexp_over_an_empty_axis(rewrites):
    m = T.dmatrix("m")
    f = arignote.function([m], T.log(T.sum(T.exp(m), axis=1)), backend="reference")
    np.testing.assert_array_equal(f(np.zeros((2, 0))), [-np.inf, -np.inf])
    g = arignote.function([m], T.log(T.sum(T.exp(m), axis=(0, 1), keepdims=True)), backend="reference")
    np.testing.assert_array_equal(g(np.zeros((0, 3))), [[-np.inf]])


def _nll_expressions(z, y):
    return {
        "log(softmax)[arange(z.shape[0]), y]": -T.mean(T.log(T.nnet.softmax(z))[T.arange(z.shape[0]), y]),
        "log(softmax)[arange(y.shape[0]), y]": -T.mean(T.log(T.nnet.softmax(z))[T.arange(y.shape[0]), y]),
        "log_softmax[arange(n), y]": -T.mean(T.nnet.log_softmax(z)[T.arange(z.shape[0]), y]),
        "categorical_crossentropy": T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(z), y)),
        "PickPerRow(log_softmax)": -T.mean(nnet.PickPerRow()(T.nnet.log_softmax(z), y)),
    }


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(_nll_expressions(T.dmatrix(), T.ivector())))
def test_softmax_nll_becomes_one_stable_op_with_finite_gradient(backend, rewrites, case, dtype):
    """The issue's check: -mean(log(softmax(z))[arange(n), y]) stays finite with its gradient for logits
    of magnitude 1e4, on every backend."""
    requires(backend, "stabilize")
    z, y = T.matrix("z", dtype=dtype), T.ivector("y")

    def build():
        cost = _nll_expressions(z, y)[case]
        return [z, y], [cost, arignote.grad(cost, z)]

    f = compile_under("all", build, backend, rewrites)
    rng = np.random.default_rng(7)
    zv = (rng.standard_normal((5, 4)) * 1e4).astype(dtype)
    yv = np.array([0, 3, 1, 1, 2], dtype="int32")
    cost, grad = f(zv, yv)
    assert np.isfinite(cost) and np.isfinite(grad).all()
    z64 = zv.astype("float64")
    close(cost, np.asarray(-np_log_softmax(z64)[np.arange(5), yv].mean(), dtype=dtype))
    onehot = np.eye(4)[yv]
    close(grad, ((np_softmax(z64) - onehot) / 5).astype(dtype))

    # the cost is one SoftmaxCrossentropy; neither it nor its gradient takes a log of a softmax
    forward = arignote.function([z, y], build()[1][0], backend=backend)
    assert count(forward, nnet.SoftmaxCrossentropy) == 1
    assert not {nnet.Softmax, nnet.LogSoftmax, ops.Log, ops.AdvancedSubtensor, nnet.PickPerRow} \
        & set(all_op_types(forward))
    # the gradient is the cheap (softmax - onehot) * g: one op, no log-softmax machinery
    kinds = all_op_types(f)
    assert kinds.count(nnet.SoftmaxCrossentropyGrad) == 1 and not {nnet.Softmax, nnet.IncPerRow} & set(kinds)
    assert not {nnet.LogSoftmax, ops.Log, ops.AdvancedIncSubtensor, ops.Exp} & set(kinds)

    if "log(softmax)" in case or case == "categorical_crossentropy":  # the others are stable as written
        unstable = compile_under("none", build, backend, rewrites)(zv, yv)
        assert not (np.isfinite(unstable[0]) and np.isfinite(unstable[1]).all())


def test_nll_rewrite_needs_rows_to_be_arange(backend, rewrites):
    """log_softmax(z)[rows, y] with rows other than arange(n) is left alone (and stays right)."""
    requires(backend, "stabilize")
    z, y = T.dmatrix("z"), T.ivector("y")
    f = arignote.function([z, y], T.nnet.log_softmax(z)[T.arange(z.shape[0])[::-1], y], backend=backend)
    assert nnet.SoftmaxCrossentropy not in op_types(f)
    zv = np.arange(12.0).reshape(3, 4) / 7
    yv = np.array([0, 3, 1], dtype="int32")
    close(f(zv, yv), np_log_softmax(zv)[[2, 1, 0], yv])


def test_nll_rewrite_checks_its_labels(rewrites):
    """Documented behaviour: the rewritten op checks the labels (one per row, in [0, classes)), so a
    label of -1, which plain indexing reads as the last class, raises IndexError instead."""
    z, y = T.dmatrix("z"), T.ivector("y")
    build = lambda: ([z, y], T.nnet.log_softmax(z)[T.arange(z.shape[0]), y])  # noqa: E731
    zv, yv = np.zeros((2, 4)), np.array([1, -1], dtype="int32")
    close(compile_under("none", build, "reference", rewrites)(zv, yv), np.full(2, -np.log(4)))
    with pytest.raises(IndexError, match="out of range"):
        compile_under("all", build, "reference", rewrites)(zv, yv)


# ---------------------------------------------------------------------------------------------------
# rewrites never absorb what the user asked for


def test_outputs_asked_for_are_kept(backend):
    requires(backend, "stabilize")
    x, z = T.dvector("x"), T.dmatrix("z")
    sm, s, e, neg, prod = T.nnet.softmax(z), T.nnet.sigmoid(x), T.exp(x), -x, x * x
    f = arignote.function([x, z], [T.log(sm), sm, T.log(s), s, e - 1, e, -neg, neg, T.exp(prod) + 1, prod],
                          backend=backend)
    outputs = f.maker.fgraph.outputs
    assert outputs[1].owner is not None and type(outputs[1].owner.op) is nnet.Softmax
    assert type(outputs[0].owner.op) is nnet.LogSoftmax
    xv, zv = np.array([-2.0, 0.5, 3.0]), np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]])
    values = f(xv, zv)
    expected = [np_log_softmax(zv), np_softmax(zv), np_log_sigmoid(xv), np_sigmoid(xv), np.expm1(xv),
                np.exp(xv), xv, -xv, np.exp(xv * xv) + 1, xv * xv]
    for k, (got, want) in enumerate(zip(values, expected)):
        close(got, want, f"output {k}")


def test_grad_with_respect_to_a_softmax_inside_the_cost(backend):
    """p = softmax(z) is a wrt of grad: the stabilization applied to the cost must keep p in the graph."""
    z, y = T.dmatrix("z"), T.ivector("y")
    p = T.nnet.softmax(z)
    cost = -T.mean(T.log(p)[T.arange(z.shape[0]), y])
    g_p, g_z = arignote.grad(cost, [p, z])
    f = arignote.function([z, y], [g_p, g_z, cost], backend=backend)
    zv = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 1.0, -2.0], [1.0, 1.0, 1.0]])
    yv = np.array([2, 0, 1, 1], dtype="int32")
    gp, gz, c = f(zv, yv)
    onehot = np.eye(3)[yv]
    close(gp, -onehot / (4 * np_softmax(zv)))
    close(gz, (np_softmax(zv) - onehot) / 4)
    close(c, -np_log_softmax(zv)[np.arange(4), yv].mean())


# ---------------------------------------------------------------------------------------------------
# elementwise fusion


def test_a_chain_of_six_elementwise_ops_over_two_inputs_is_one_composite(backend, rewrites):
    requires(backend, "fusion")
    x, y = T.dvectors("x", "y")
    build = lambda: ([x, y], six_op_chain(x, y))  # noqa: E731
    f = compile_under("all", build, backend, rewrites)
    (node,) = nodes(f)
    assert type(node.op) is ops.Composite
    assert len(node.op.fgraph.apply_nodes) == 6
    assert sorted(k.__name__ for k in all_op_types(f)[1:]) == ["Add", "Exp", "Mul", "Sin", "Sub", "Tanh"]
    assert node.inputs == f.maker.fgraph.inputs
    text = arignote.debugprint(f, file="str")
    assert text.splitlines() == [f"{node.op} [id A]", " |x [id B]", " |y [id C]"]
    assert text.startswith("Composite{")
    assert len(nodes(compile_under("none", build, backend, rewrites))) == 6
    xv, yv = np.array([0.5, -1.0, 2.0, 0.0]), np.array([1.5, 0.25, -3.0, 7.0])
    close(f(xv, yv), np_six_op_chain(xv, yv))


def test_fusion_with_broadcasting_inputs(backend):
    requires(backend, "fusion")
    m, r = T.dmatrix("m"), T.drow("r")
    v = T.dvector("v")
    f = arignote.function([m, r, v], T.exp(m) * r + T.tanh(m) * 2 - v, backend=backend)
    (composite,) = composites(f)
    assert composite.outputs[0] is f.maker.fgraph.outputs[0]
    assert len(composite.op.fgraph.apply_nodes) == 6
    assert op_types(f) == [ops.DimShuffle, ops.Composite]  # v is padded to a row, then read as is
    assert composite.inputs[:2] == f.maker.fgraph.inputs[:2]
    rng = np.random.default_rng(3)
    mv, rv, vv = rng.standard_normal((3, 4)), rng.standard_normal((1, 4)), rng.standard_normal(4)
    close(f(mv, rv, vv), np.exp(mv) * rv + np.tanh(mv) * 2 - vv)


def test_fusion_keeps_an_intermediate_that_is_an_output(backend):
    requires(backend, "fusion")
    x, y = T.dvectors("x", "y")
    prod = x * y
    f = arignote.function([x, y], [T.exp(prod) + 1, prod], backend=backend)
    (composite,) = composites(f)
    assert f.maker.fgraph.outputs[1] in composite.inputs  # read, not recomputed inside
    assert [type(n.op) for n in composite.op.fgraph.apply_nodes] == [ops.Exp, ops.Add]
    xv, yv = np.array([1.0, 2.0]), np.array([-0.5, 0.25])
    a, b = f(xv, yv)
    close(a, np.exp(xv * yv) + 1)
    close(b, xv * yv)


def test_fusion_does_not_absorb_an_intermediate_read_outside_the_group(backend):
    """x * y is also read by a sum: the composite reads it instead of computing it a second time."""
    requires(backend, "fusion")
    x, y = T.dvectors("x", "y")
    prod = x * y
    f = arignote.function([x, y], T.exp(prod) * 2 + T.sum(prod), backend=backend)
    assert all_op_types(f).count(ops.Mul) == 2  # x * y once, outside; * 2 inside the composite
    (mul,) = [n for n in nodes(f) if type(n.op) is ops.Mul]
    (composite,) = composites(f)
    assert mul.outputs[0] in composite.inputs
    xv, yv = np.array([1.0, 2.0, -1.0]), np.array([-0.5, 0.25, 3.0])
    close(f(xv, yv), np.exp(xv * yv) * 2 + np.sum(xv * yv))


def test_fusion_keeps_integer_wraparound_of_each_step(backend, rewrites):
    """The composite computes step by step in each op's dtype: int8 products wrap as unfused ones do."""
    requires(backend, "fusion")
    a, b = T.bvectors("a", "b")
    build = lambda: ([a, b], (a * b + 1) // 3 - a)  # noqa: E731
    f = compile_under("all", build, backend, rewrites)
    assert op_types(f) == [ops.Composite]
    av, bv = np.array([100, -7, 127], dtype="int8"), np.array([3, 9, 127], dtype="int8")
    expected = compile_under("none", build, backend, rewrites)(av, bv)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(expected, (av * bv + np.int8(1)) // np.int8(3) - av)
    np.testing.assert_array_equal(f(av, bv), expected)


def test_the_reference_backend_runs_a_composite_as_one_step():
    x, y = T.dvectors("x", "y")
    f = arignote.function([x, y], six_op_chain(x, y), backend="reference")
    steps = [line for line in f.backend_source.splitlines() if line.startswith("v")]
    assert len(steps) == 1 and "Composite{" in steps[0]


# ---------------------------------------------------------------------------------------------------
# inplace


def test_an_elementwise_result_overwrites_a_buffer_nothing_else_needs(backend, rewrites):
    requires(backend, "inplace")
    a, b = T.dmatrices("a", "b")
    build = lambda: ([a, b], T.exp(T.dot(a, b)))  # noqa: E731
    f = compile_under("all", build, backend, rewrites)
    (exp_node,) = [n for n in nodes(f) if type(n.op) is ops.Exp]
    assert f.maker.fgraph.plan.reuse == {exp_node: 0}
    assert type(exp_node.inputs[0].owner.op) is ops.Dot
    av, bv = np.arange(6.0).reshape(2, 3) / 10, np.arange(12.0).reshape(3, 4) / 10
    close(f(av, bv), np.exp(av @ bv))
    assert compile_under("none", build, backend, rewrites).maker.fgraph.plan.reuse == {}


def test_the_reference_listing_shows_the_buffer_a_result_goes_into(rewrites):
    a, b = T.dmatrices("a", "b")
    f = arignote.function([a, b], T.exp(T.dot(a, b)), backend="reference")
    listing = f.backend_source
    dot_slot = re.search(r"^(v\d+) = Dot\(", listing, re.M).group(1)
    assert re.search(rf"^v\d+ = Exp\({dot_slot}\) \(into {dot_slot}\)", listing, re.M), listing
    rewrites("none")
    assert "(into" not in arignote.function([a, b], T.exp(T.dot(a, b)), backend="reference").backend_source


def test_inplace_skips_buffers_that_are_returned_or_used_twice(backend):
    requires(backend, "inplace")
    a, b = T.dmatrices("a", "b")
    d = T.dot(a, b)
    returned = arignote.function([a, b], [d, T.exp(d)], backend=backend)
    assert returned.maker.fgraph.plan.reuse == {}
    av, bv = np.arange(4.0).reshape(2, 2), np.ones((2, 2))
    dv, ev = returned(av, bv)
    close(dv, av @ bv)  # not overwritten by exp
    close(ev, np.exp(av @ bv))
    # d is read by the sum and then by the composite: the composite, its last reader, may take it over
    twice = arignote.function([a, b], T.exp(d) + T.sin(d) * T.sum(d), backend=backend)
    (composite,) = [n for n in nodes(twice) if isinstance(n.op, ops.Composite)]
    assert twice.maker.fgraph.plan.reuse == {composite: composite.inputs.index(composite.inputs[0])}
    assert type(composite.inputs[twice.maker.fgraph.plan.reuse[composite]].owner.op) is ops.Dot
    close(twice(av, bv), np.exp(av @ bv) + np.sin(av @ bv) * np.sum(av @ bv))
    # ... but not while a later node still reads it through a view
    viewed = arignote.function([a, b], [T.exp(d) * 2, d.T.sum(axis=0)], backend=backend)
    assert not any(type(n.inputs[k].owner.op) is ops.Dot for n, k in viewed.maker.fgraph.plan.reuse.items())
    close(viewed(av, bv)[1], (av @ bv).sum(axis=1))


def test_inplace_never_writes_into_a_callers_array_or_shared_storage(backend):
    x, m = T.dvector("x"), T.dmatrix("m")
    w_value = np.array([[0.5, -1.0], [2.0, 3.0]])
    w = arignote.shared(w_value, name="w", borrow=True)
    counter = arignote.shared(np.array([1.0, 2.0]), name="counter")
    graphs = [
        T.exp(x), x * 2 + 1, T.exp(x * 1) + 0, -(-x), T.tanh(m.T) * 3, T.exp(m[0]) + x,
        T.exp(m.reshape((4,))) + 1, T.exp(w) * m, T.tanh(w.T + m) - w, T.exp(T.dot(w, m)) + w,
        T.exp(counter) * x, T.sqr(T.cast(x, "float32")),
    ]
    xv, mv = np.array([0.25, -1.5]), np.array([[1.0, 2.0], [3.0, 4.0]])
    x_copy, m_copy, w_copy = xv.copy(), mv.copy(), w_value.copy()
    counter_storage = counter.get_value(borrow=True)
    counter_copy = counter_storage.copy()
    for k, out in enumerate(graphs):
        f = arignote.function([x, m], out, backend=backend, on_unused_input="ignore")
        fgraph = f.maker.fgraph
        for node, position in fgraph.plan.reuse.items():
            root = fgraph.plan.root(node.inputs[position])
            assert root not in fgraph.inputs and not isinstance(root, Constant), f"graph {k}"
        for _ in range(2):
            f(xv, mv)
        np.testing.assert_array_equal(xv, x_copy, err_msg=f"graph {k} wrote into x")
        np.testing.assert_array_equal(mv, m_copy, err_msg=f"graph {k} wrote into m")
        np.testing.assert_array_equal(w_value, w_copy, err_msg=f"graph {k} wrote into w")
        assert w.get_value(borrow=True) is w_value
        np.testing.assert_array_equal(counter_storage, counter_copy, err_msg=f"graph {k} wrote into counter")

    # with an update, the new value is computed in the shared variable's own storage (w_value, which
    # borrow=True made its storage: Theano's contract), after the output read the old value
    step = arignote.function([x], T.exp(w[0]) * x, updates=[(w, T.tanh(w) * 2)], backend=backend)
    close(step(xv), np.exp(w_copy[0]) * xv)
    assert np.shares_memory(w.get_value(borrow=True), w_value)
    close(w_value, np.tanh(w_copy) * 2)


# ---------------------------------------------------------------------------------------------------
# every rewrite preserves values: rewritten against unrewritten, and against NumPy


def _value_cases():
    def grad_case(z, w, labels):
        cost = T.sum(T.log(T.nnet.softmax(z)) * w) + T.sum(T.log(T.nnet.sigmoid(z))) \
            + T.sum(T.log(1 + T.exp(z) - 1 + w))
        return arignote.grad(cost, z)

    def np_grad_case(z, w, labels):
        return w - np_softmax(z) * w.sum(axis=1, keepdims=True) + np_sigmoid(-z) + np.exp(z) / (np.exp(z) + w)

    c = np.arange(4.0)
    return {
        "neutral elements": (lambda z, w, _: [z * 1 + 0, 1 * (z - 0) / 1 + 0 * w, z ** 1],
                             lambda z, w, _: [z, z, z]),
        "x - x, --x": (lambda z, w, _: (z - z) + -(-w), lambda z, w, _: w),
        "powers": (lambda z, w, _: z ** 2 + w ** 0.5, lambda z, w, _: z ** 2 + np.sqrt(w)),
        "dimshuffles": (lambda z, w, _: z.T.T + w.dimshuffle(1, "x", 0).dimshuffle(2, 0),
                        lambda z, w, _: z + w),
        "reshapes": (lambda z, w, _: z.reshape(z.shape) * w.reshape((w.shape[0], w.shape[1])),
                     lambda z, w, _: z * w),
        "casts": (lambda z, w, _: [T.cast(T.cast(z, "float32"), "float64"),
                                   T.cast(T.cast(T.cast(w, "float32"), "float64"), "float32")],
                  lambda z, w, _: [z.astype("float32").astype("float64"), w.astype("float32")]),
        "log softmax": (lambda z, w, _: T.log(T.nnet.softmax(z)), lambda z, w, _: np_log_softmax(z)),
        "log1p, expm1": (lambda z, w, _: T.log(1 + w) + T.log(w + 1) - (T.exp(z) - 1),
                         lambda z, w, _: 2 * np.log1p(w) - np.expm1(z)),
        "log sigmoid": (lambda z, w, _: T.log(T.nnet.sigmoid(z)) + T.log(1 - T.nnet.sigmoid(w)),
                        lambda z, w, _: np_log_sigmoid(z) + np_log_sigmoid(-w)),
        "logsumexp": (lambda z, w, _: [T.log(T.sum(T.exp(z), axis=1)), T.log(T.exp(w).sum(keepdims=True))],
                      lambda z, w, _: [np_logsumexp(z, axis=1), np_logsumexp(w, keepdims=True)]),
        "softmax nll": (lambda z, w, y: [-T.mean(T.log(T.nnet.softmax(z))[T.arange(z.shape[0]), y]),
                                         T.nnet.categorical_crossentropy(T.nnet.softmax(w), y)],
                        lambda z, w, y: [-np_log_softmax(z)[np.arange(3), y].mean(),
                                         -np_log_softmax(w)[np.arange(3), y]]),
        "merge and fusion": (lambda z, w, _: [six_op_chain(z, w), (z * w) + (z * w) / (1 + T.exp(z * w))],
                             lambda z, w, _: [np_six_op_chain(z, w), z * w + z * w / (1 + np.exp(z * w))]),
        "constant folding": (lambda z, w, _: z + T.exp(T.constant(c)) * 2 - T.sum(T.constant(c) ** 2),
                             lambda z, w, _: z + np.exp(c) * 2 - 14.0),
        "broadcasting": (lambda z, w, _: T.exp(z) * w[0] + z.sum(axis=1, keepdims=True) / 3,
                         lambda z, w, _: np.exp(z) * w[0] + z.sum(axis=1, keepdims=True) / 3),
        "gradient": (grad_case, np_grad_case),
    }


@pytest.mark.parametrize("case", sorted(_value_cases()))
def test_every_rewrite_preserves_values(backend, rewrites, case):
    build, expected = _value_cases()[case]
    rng = np.random.default_rng(sorted(_value_cases()).index(case))
    zv = rng.uniform(-3, 3, (3, 4))
    wv = rng.uniform(0.5, 2.0, (3, 4))
    yv = np.array([2, 0, 3], dtype="int32")
    functions, results = {}, {}
    for setting in ("none", "all"):
        z, w, y = T.dmatrix("z"), T.dmatrix("w"), T.ivector("y")
        functions[setting] = compile_under(setting, lambda: ([z, w, y], build(z, w, y)), backend, rewrites)
        results[setting] = functions[setting](zv, wv, yv)
    kinds = {setting: sorted(map(str, all_op_types(f))) for setting, f in functions.items()}
    assert kinds["all"] != kinds["none"], "the case must exercise some rewrite"
    rewritten_values, plain_values = results["all"], results["none"]
    want = expected(zv, wv, yv)
    if not isinstance(rewritten_values, list):
        rewritten_values, plain_values, want = [rewritten_values], [plain_values], [want]
    for k, (a, b, e) in enumerate(zip(rewritten_values, plain_values, want)):
        close(a, b, f"{case}, output {k}: rewritten vs unrewritten")
        close(a, np.asarray(e, dtype=a.dtype), f"{case}, output {k}: rewritten vs NumPy")


# ---------------------------------------------------------------------------------------------------
# the MLP training graph: rewritten quickly, to the stable op, with the same values


def _mlp(seed=0, batch=20, sizes=(784, 500, 10)):
    rng = np.random.default_rng(seed)
    i, h, o = sizes
    x, y = T.fmatrix("x"), T.ivector("y")
    values = [rng.uniform(-0.07, 0.07, (i, h)).astype("float32"), np.zeros(h, "float32"),
              rng.uniform(-0.1, 0.1, (h, o)).astype("float32"), np.zeros(o, "float32")]
    params = [arignote.shared(v.copy(), name=n) for v, n in zip(values, ("W1", "b1", "W2", "b2"))]
    W1, b1, W2, b2 = params
    hidden = T.tanh(T.dot(x, W1) + b1)
    p = T.nnet.softmax(T.dot(hidden, W2) + b2)
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y]) + np.float32(1e-4) * ((W1 ** 2).sum() + (W2 ** 2).sum())
    updates = [(q, q - np.float32(0.01) * g) for q, g in zip(params, arignote.grad(cost, params))]
    data = (rng.random((batch, i), dtype=np.float32), rng.integers(0, o, batch).astype("int32"))
    return x, y, params, cost, updates, data


def test_rewriting_the_mlp_training_graph_takes_well_under_a_second():
    x, y, params, cost, updates, _ = _mlp()
    fgraph = FunctionGraph([x, y] + params, [cost] + [e for _, e in updates])
    before = len(fgraph.apply_nodes)
    start = time.perf_counter()
    rewrite(fgraph, registry.get("reference"))
    seconds = time.perf_counter() - start
    print(f"\nrewriting the 784-500-10 MLP training graph ({before} -> {len(fgraph.apply_nodes)} nodes): "
          f"{seconds * 1000:.1f} ms")
    assert seconds < 1.0
    kinds = [type(n.op) for n in fgraph.apply_nodes]
    assert kinds.count(nnet.SoftmaxCrossentropy) == 1
    assert ops.Log not in kinds and nnet.LogSoftmax not in kinds and ops.AdvancedSubtensor not in kinds
    assert ops.Composite in kinds and len(fgraph.apply_nodes) < before


def test_mlp_training_step_is_the_same_with_and_without_rewrites(backend, rewrites):
    requires(backend, "fusion")
    results = {}
    for setting in ("none", "all"):
        rewrites(setting)
        x, y, params, cost, updates, (xv, yv) = _mlp(seed=1, batch=16, sizes=(30, 20, 5))
        train = arignote.function([x, y], cost, updates=updates, backend=backend)
        costs = [train(xv, yv) for _ in range(3)]
        results[setting] = costs + [q.get_value() for q in params]
        assert (ops.Composite in op_types(train)) == (setting == "all")
    for k, (a, b) in enumerate(zip(results["all"], results["none"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"result {k}")
