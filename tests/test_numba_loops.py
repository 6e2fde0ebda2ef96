"""Scan and IfElse compiled by the Numba backend: values and gradients as the reference gives them, the
loop inside njit (no Python per step), rows kept as Scan.keep says, lazy branches, and failures
explained by the reference (the inner op, the step)."""

import resource

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core.ifelse import IfElse, ifelse
from arignote.core.scan import Scan, until

pytest.importorskip("numba")
from arignote.backends.numba import table  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """One fresh cache for the module: its tests share compiled kernels, none of the user's."""
    saved = config.cache_dir
    config.cache_dir = str(tmp_path_factory.mktemp("cache"))
    yield
    config.cache_dir = saved


def both(inputs, outputs, values, tol=1e-12):
    """The numba function's results, checked against the reference's (dtype, shape, values)."""
    f = arignote.function(inputs, outputs, backend="numba")
    got, expected = f(*values), arignote.function(inputs, outputs, backend="reference")(*values)
    for g, e in zip(got if isinstance(got, list) else [got], expected if isinstance(expected, list) else [expected]):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)
    return f, got


def compiled(f, op=Scan):
    """Every node of ``op`` in f's graph runs inside njit: one segment, no node in NumPy."""
    source = f.backend_source
    glue = source.split("# arignote numba backend: the compiled part")[0]
    assert "segment0(*inputs" in glue and "in NumPy" not in glue, glue
    assert f"{op.__name__}{{" in glue and ("r = step(" if op is Scan else "then_branch(") in source
    return source


R = np.random.default_rng(0)


def test_sequence_taps_and_output_taps_and_a_mapped_output():
    x, a0, w = T.dmatrix("x"), T.dmatrix("a0"), T.dvector("w")
    (a, m), _ = arignote.scan(lambda xm1, x0, xp2, a3, a1, w: [a1 * w + a3 * xm1 + xp2 - x0, T.sum(a1) * x0],
                              sequences=dict(input=x, taps=[-1, 0, 2]),
                              outputs_info=[dict(initial=a0, taps=[-3, -1]), None], non_sequences=w)
    f, (got_a, got_m) = both([x, a0, w], [a, m], [R.normal(size=(9, 2)), R.normal(size=(3, 2)), R.normal(size=2)])
    compiled(f)
    assert got_a.shape == (6, 2) and got_m.shape == (6, 2)


def test_go_backwards_matrix_state_and_a_strided_sequence():
    x, h0, w = T.dtensor3("x"), T.dmatrix("h0"), T.dmatrix("w")
    h, _ = arignote.scan(lambda xt, h, w: T.tanh(T.dot(h, w) + xt), sequences=x, outputs_info=h0,
                         non_sequences=w, go_backwards=True)
    f, _ = both([x, h0, w], h, [R.normal(size=(5, 2, 6))[:, :, ::2], R.normal(size=(2, 3)), R.normal(size=(3, 3)).T])
    compiled(f)


def test_scalar_rows_of_reversed_and_strided_sequences():
    x, s0 = T.dvector("x"), T.dscalar("s0")
    for backwards in (False, True):
        s, _ = arignote.scan(lambda xt, s: s * 0.5 + xt, sequences=x, outputs_info=s0, go_backwards=backwards)
        f, _ = both([x, s0], [s, s[-1]], [R.normal(size=14)[::3], np.float64(1)])
        compiled(f)


def test_steps_returning_their_inputs_views_of_them_and_constants():
    x, s0 = T.dmatrix("x"), T.dvector("s0")
    (s, a, b, c), _ = arignote.scan(lambda xt, s: [s[::-1], xt, xt.T, T.constant(np.array([1.0, 2.0]))],
                                    sequences=x, outputs_info=[s0, None, None, None])
    f, _ = both([x, s0], [s, a, b, c], [R.normal(size=(4, 2)), R.normal(size=2)])
    compiled(f)


def test_products_and_joins_written_straight_into_the_loops_rows():
    """A step's Dot and Join land in the row the loop hands them (no copy per step), from step 0 for a
    recurrent output and from step 1 for a mapped one (its rows are allocated after step 0), and are
    computed as the reference computes them: a product reading the previous row of its own buffer, a
    join of float32 and float64 parts, rows read by other outputs of the same step."""
    x, h0, w = T.dtensor3("x"), T.dmatrix("h0"), T.dmatrix("w")
    v = T.fvector("v")

    def step(xt, h, w, v):
        d = T.dot(h, w)
        joined = T.concatenate([T.tanh(d), xt, T.alloc(v, h.shape[0], 2)], axis=1)
        return [d, joined, T.dot(joined, joined.T), T.sum(joined)]

    (h, j, g, s), _ = arignote.scan(step, sequences=x, outputs_info=[h0, None, None, None], non_sequences=[w, v])
    values = [R.normal(size=(5, 3, 4)), R.normal(size=(3, 4)), R.normal(size=(4, 4)) / 2,
              R.normal(size=2).astype("float32")]
    f, _ = both([x, h0, w, v], [h, j, g, s], values)
    source = compiled(f)
    assert "_rt.gemm_into(" in source and "at += " in source, "the products and the join write into the rows"
    # the same step on awkward views: reversed rows of the sequence, a transposed, strided w
    both([x, h0, w, v], [h, j, g, s], [values[0][::-1, :, ::-1], values[1][:, ::-1],
                                     R.normal(size=(8, 4))[::2].T / 2, values[3][::-1]])


def test_elementwise_steps_over_strided_reversed_and_broadcast_rows():
    """The elementwise kernels of a step read rows whose last axis has a unit stride through borrowed
    views, and others through copies: every kind of row gives the reference's values."""
    x, a0, b = T.dtensor3("x"), T.dmatrix("a0"), T.drow("b")
    a, _ = arignote.scan(lambda xt, a, b: T.tanh(xt * a + b) - T.exp(-a) * xt[:, ::-1], sequences=x,
                         outputs_info=a0, non_sequences=b)
    base = R.normal(size=(4, 3, 10))
    for seq in (base[:, :, :5], base[:, :, ::2], base[::-1, ::-1, 5:], base[:, :, ::-2], base[:, :, :0]):
        init = R.normal(size=(3, seq.shape[2]))
        f, _ = both([x, a0, b], a, [seq, init, R.normal(size=(1, seq.shape[2]))])
        compiled(f)


def test_a_while_loop_stops_after_the_step_that_makes_the_condition_true():
    x = T.dvector("x")
    s, _ = arignote.scan(lambda xt, s: [s + xt, until(s + xt > 2)], sequences=x, outputs_info=T.zeros_like(x[0]))
    f, got = both([x], s, [np.full(100, 0.5)])
    compiled(f)
    assert got.shape == (5,)  # 0.5, 1.0 .. 2.5: the fifth step makes it true
    _, got = both([x], s, [np.full(3, 0.1)])  # never true: every step runs
    assert got.shape == (3,)


def test_a_long_while_loop_grows_its_buffers():
    n = T.lscalar("n")
    (s, m), _ = arignote.scan(lambda s: [s + 1, T.stack([s, s]), until(s >= 99)], outputs_info=[T.constant(0.0), None],
                              n_steps=n)
    f, (got_s, got_m) = both([n], [s, m], [np.int64(10 ** 9)])
    assert got_s.shape == (100,) and got_m.shape == (100, 2)
    assert "_rt.grow(" in compiled(f)  # not 10 ** 9 rows


@pytest.mark.parametrize("rank", [1, 2])
def test_zero_steps(rank):
    x = T.dtensor3("x") if rank == 2 else T.dmatrix("x")
    s0 = T.dmatrix("s0") if rank == 2 else T.dvector("s0")
    (s, m), _ = arignote.scan(lambda xt, s: [s * 2 + xt, xt + 1], sequences=x, outputs_info=[s0, None])
    shape = (0, 2, 3) if rank == 2 else (0, 3)
    f, (got_s, got_m) = both([x, s0], [s, m], [np.zeros(shape), np.ones(shape[1:])])
    assert got_s.shape == shape[:1] + shape[1:] and got_m.shape == (0,) * len(shape)  # nit rows: (0, 0, ...)
    compiled(f)


def test_a_million_steps_of_a_vector_state_whose_last_row_is_used_keep_two_rows():
    s0 = T.fvector("s0")
    s, _ = arignote.scan(lambda s: s * np.float32(0.5) + np.float32(1), outputs_info=s0, n_steps=1_000_000)
    f = arignote.function([s0], s[-1], backend="numba")
    source = compiled(f)
    assert "keep=[1]" in source and "_rt.last_rows(" in source
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    got = f(np.zeros(1000, dtype=np.float32))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB
    np.testing.assert_allclose(got, np.full(1000, 2.0, dtype=np.float32))
    assert grown < 200_000, f"the loop grew the process by {grown} KiB (1e9 floats would be 4 GB)"


def test_keep_several_rows_of_a_mapped_output_and_of_deep_taps():
    x, a0 = T.dmatrix("x"), T.dmatrix("a0")
    (a, m), _ = arignote.scan(lambda xt, a3, a1: [a1 + a3 * xt, xt * a1], sequences=x,
                              outputs_info=[dict(initial=a0, taps=[-3, -1]), None])
    outputs = [a[-1], a[-2], a[-5], m[-1], m[-3]]
    f, _ = both([x, a0], outputs, [R.normal(size=(11, 2)), R.normal(size=(3, 2))])
    assert "keep=[5, 3]" in compiled(f)
    both([x, a0], outputs, [R.normal(size=(5, 2)), R.normal(size=(3, 2))])  # as many rows as kept


def test_an_output_with_keep_holds_the_rows_the_reference_holds():
    x, a0 = T.dvector("x"), T.dvector("a0")
    (a, m), _ = arignote.scan(lambda xt, a2, a1: [a1 + a2 * xt, xt * a1], sequences=x,
                              outputs_info=[dict(initial=a0, taps=[-2, -1]), None])
    node = m.owner
    for keep in [(1, 1), (3, 2), (50, 50)]:
        kept = node.op.with_inner_graphs([node.op.fgraph], keep=keep)(*node.inputs)
        for n in (0, 1, 2, 7):
            both([x, a0], kept, [R.normal(size=n), R.normal(size=2)])


def test_nested_scans_and_ifelse_inside_a_step_and_a_scan_inside_a_branch():
    x = T.dmatrix("x")

    def row_step(xt, s):
        inner, _ = arignote.scan(lambda v, c: c * 0.5 + v, sequences=xt, outputs_info=T.constant(0.0))
        return s + ifelse(T.gt(inner[-1], 0), inner, -inner)

    s, _ = arignote.scan(row_step, sequences=x, outputs_info=T.zeros_like(x[0]))
    f, _ = both([x], s, [R.normal(size=(4, 5))])
    compiled(f)
    c = T.dscalar("c")
    cumulative, _ = arignote.scan(lambda v, a: a + v, sequences=x[0], outputs_info=T.constant(0.0))
    g, _ = both([c, x], ifelse(T.gt(c, 0), cumulative, x[1]), [np.float64(1), R.normal(size=(2, 3))])
    compiled(g, IfElse)
    both([c, x], ifelse(T.gt(c, 0), cumulative, x[1]), [np.float64(-1), R.normal(size=(2, 3))])


def test_ifelse_runs_only_the_branch_taken():
    x, i = T.dvector("x"), T.lscalar("i")
    f, got = both([x, i], ifelse(T.lt(i, x.shape[0]), x[i], T.sum(x)), [np.arange(3.0), np.int64(7)])
    compiled(f, IfElse)
    assert got == 3.0  # x[7] would raise IndexError


def test_ifelse_outputs_never_alias_inputs_and_branches_may_differ_in_shape():
    c, x, y = T.bscalar("c"), T.dvector("x"), T.dvector("y")
    f, _ = both([c, x, y], ifelse(c, [x, y[1:]], [x[:1], T.exp(y)]), [np.int8(1), np.arange(4.0), np.arange(2.0)])
    values = np.arange(4.0), np.arange(2.0)
    for flag in (0, 1):
        for out in f(np.int8(flag), *values):
            assert not any(np.shares_memory(out, v) for v in values)


def test_failures_name_the_inner_op_and_the_step():
    x, i = T.dmatrix("x"), T.lscalar("i")
    out, _ = arignote.scan(lambda xt: xt[i + 2], sequences=x)
    f = arignote.function([x, i], out, backend="numba")
    compiled(f)
    with pytest.raises(IndexError, match=r"(?s)at step 0.*Subtensor"):
        f(np.ones((3, 2)), np.int64(0))
    s0 = T.dvector("s0")
    grows, _ = arignote.scan(lambda xt, s: T.concatenate([s, xt]), sequences=x, outputs_info=s0)
    with pytest.raises(ValueError, match="at step 0: recurrent output 0 has shape"):
        arignote.function([x, s0], grows, backend="numba")(np.ones((3, 1)), np.ones(2))
    short, _ = arignote.scan(lambda xt: xt * 2, sequences=x, n_steps=4)
    with pytest.raises(ValueError, match="fewer than the 4 steps"):
        arignote.function([x], short, backend="numba")(np.ones((3, 2)))
    n = T.lscalar("n")
    negative, _ = arignote.scan(lambda s: s * 2, outputs_info=s0, n_steps=n)
    with pytest.raises(ValueError, match="must not be negative"):
        arignote.function([s0, n], negative, backend="numba")(np.ones(2), np.int64(-1))
    ragged, _ = arignote.scan(lambda t: T.arange(t), sequences=T.arange(3))
    with pytest.raises(ValueError, match="mapped output 0 has shape"):
        arignote.function([], ragged, backend="numba")()


def test_gradients_through_scan_match_the_reference():
    x, h0, w = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("w")
    h, _ = arignote.scan(lambda xt, h, w: T.tanh(T.dot(h, w) + xt), sequences=x, outputs_info=h0, non_sequences=w)
    cost = T.sum(h[-1] ** 2) + T.sum(h)
    f, _ = both([x, h0, w], T.grad(cost, [x, h0, w]), [R.normal(size=(6, 3)), R.normal(size=3), R.normal(size=(3, 3))])
    compiled(f)


def test_an_inner_op_that_runs_in_numpy_runs_the_whole_loop_in_numpy_saying_why():
    x = T.dmatrix("x")
    out, _ = arignote.scan(lambda xt: T.sum(xt[T.gt(xt, 0)]), sequences=x)
    f, _ = both([x], out, [R.normal(size=(4, 3))])
    assert "in NumPy (its inner graph runs AdvancedSubtensor in NumPy" in f.backend_source
    node = next(n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, Scan))
    assert table.python_reason(node) is not None


def test_a_compiled_loop_between_python_steps_gets_its_inner_constants():
    x = T.dvector("x")
    positive = x[T.gt(x, 0)]  # runs in NumPy: the glue calls two segments around it
    out, _ = arignote.scan(lambda v, s: s * 0.25 + v * np.array([1.0, 2.0]), sequences=positive,
                           outputs_info=T.zeros((2,), dtype="float64"))
    f, _ = both([x], out, [R.normal(size=9)])
    glue = f.backend_source.split("# arignote numba backend: the compiled part")[0]
    assert "in 2 compiled segment(s)" in glue and not any("Scan" in line for line in glue.splitlines() if "in NumPy" in line)


def test_scalar_state_costs_a_few_nanoseconds_per_step():
    """s = 0.999 s + x_t over float32: no allocation per step (the doc reports ~2.7 ns on the
    development machine; a generous bound here, for loaded test machines)."""
    import time

    X, s0 = T.fvector("X"), T.fscalar("s0")
    s, _ = arignote.scan(lambda x, s: np.float32(0.999) * s + x, sequences=X, outputs_info=s0)
    f = arignote.function([X, s0], s[-1], backend="numba")
    compiled(f)
    values = np.random.default_rng(1).random(100_000).astype(np.float32)

    def best(v):
        times = []
        for _ in range(20):
            start = time.perf_counter()
            f(v, np.float32(0))
            times.append(time.perf_counter() - start)
        return min(times)

    per_step = (best(values) - best(values[:1])) / (len(values) - 1)
    assert per_step < 40e-9, f"{per_step * 1e9:.1f} ns per step"
