"""Scan and IfElse in the C backend: the step and the branches are functions of the one generated program
(no Python per step), results written straight into the output rows, rings for kept rows, errors that
name the inner op and the step. Values and gradients against the reference."""

import re
import resource
import time

import numpy as np
import pytest

pytest.importorskip("cffi")
pytest.importorskip("scipy")

import arignote  # noqa: E402
import arignote.tensor as T  # noqa: E402
from arignote.ifelse import ifelse  # noqa: E402
from arignote.scan_module import until  # noqa: E402

from checks import assert_same  # noqa: E402

rng = np.random.default_rng(7)
X8 = rng.uniform(-1, 1, (8, 3))
V9 = rng.uniform(-1, 1, 9)
W = rng.uniform(-0.5, 0.5, (3, 3))
for _array in (X8, V9, W):
    _array.setflags(write=False)  # a backend must never write into its inputs


def same(inputs, outputs, *values, c="c"):
    """The C function of the graph, its results checked against the reference's on ``values``."""
    f = arignote.function(inputs, outputs, backend=c, on_unused_input="ignore")
    mine, reference = f(*values), arignote.function(inputs, outputs, backend="reference", on_unused_input="ignore")(*values)
    for a, b in zip(mine if isinstance(mine, list) else [mine], reference if isinstance(reference, list) else [reference]):
        assert_same(a, b, "c vs reference")
    return f


def loop_of(source):
    """The C text of the first scan loop of ari_run."""
    program = source[source.index("int ari_run("):]
    start = program.index("for (t = 0; t < n; t++) {")
    return program[start:program.index("\n        }\n", start)]


# ---------------------------------------------------------------------------------------------------
# values


def test_sequence_taps_and_a_mapped_output(c):
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    out, _ = arignote.scan(lambda xm1, x0, x2, h: [h * 0.5 + xm1 * x2 - x0, T.sum(h) * x0],
                           sequences=dict(input=x, taps=[-1, 0, 2]), outputs_info=[h0, None])
    f = same([x, h0], out, X8, V9[:3])
    assert f(X8, V9[:3])[0].shape == (5, 3)
    same([x, h0], out, X8[::-1, ::2], V9[:2])  # strided, reversed rows


def test_recurrent_taps_minus_three_and_minus_one(c):
    a0, w = T.dvector("a0"), T.dscalar("w")
    out, _ = arignote.scan(lambda a3, a1, w: a1 * w - a3 + 1, outputs_info=dict(initial=a0, taps=[-3, -1]),
                           non_sequences=w, n_steps=10)
    assert same([a0, w], out, V9[:3], 0.7)(V9[:3], 0.7).shape == (10,)
    x0 = T.dmatrix("x0")  # matrix rows as the state, three of them
    out, _ = arignote.scan(lambda a3, a1: T.tanh(T.dot(a1, W) + a3), outputs_info=dict(initial=x0, taps=[-3, -1]), n_steps=6)
    same([x0], out, X8[:3])
    same([x0], out[-2:], X8[:3])  # only the last rows kept: a ring


def test_mapped_outputs_of_several_shapes(c):
    x = T.dmatrix("x")
    out, _ = arignote.scan(lambda r: [r * 2, T.sum(r), T.outer(r, r)], sequences=x)
    same([x], out, X8)
    same([x], out, X8[:0])  # zero steps: (0,), (0,) and (0, 0, 0): no row's shape is known


def test_go_backwards_and_a_matrix_state(c):
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    out, _ = arignote.scan(lambda xt, h: T.tanh(T.dot(h, W) + xt), sequences=x, outputs_info=h0, go_backwards=True)
    same([x, h0], out, X8, V9[:3])


def test_while_loops(c):
    x = T.dvector("x")
    out, _ = arignote.scan(lambda xt, s: [s + xt, until(s + xt > 2)], sequences=x, outputs_info=T.zeros_like(x[0]))
    f = same([x], out, np.abs(V9) + 0.5)
    assert f(np.abs(V9) + 0.5).shape[0] < 9
    long = np.full(1000, 0.001)  # 1000 steps, never true: buffers grow past their first capacity
    assert same([x], out, long)(long).shape == (1000,)
    out2, _ = arignote.scan(lambda xt, s: [s + xt, xt * 2, until(s > 0.5)], sequences=x,
                            outputs_info=[T.zeros_like(x[0]), None])
    same([x], out2, long)
    same([x], [out2[0][-1], out2[1][-3:]], long)  # rings in a while-loop


def test_zero_steps(c):
    s0, n = T.dvector("s0"), T.lscalar("n")
    out, _ = arignote.scan(lambda s: [s * 2, T.sum(s)], outputs_info=[s0, None], n_steps=n)
    f = same([s0, n], out, V9[:2], 0)
    assert [r.shape for r in f(V9[:2], 0)] == [(0, 2), (0,)]
    same([s0, n], out, V9[:2], 5)


def test_errors_of_the_loop(c):
    x, n = T.dvector("x"), T.lscalar("n")
    out, _ = arignote.scan(lambda xt: xt * 2, sequences=x, n_steps=n)
    f = arignote.function([x, n], out, backend=c)
    with pytest.raises(ValueError, match=r"Scan\{.*\): sequence 0 has 9 rows, fewer than the 12 steps"):
        f(V9, 12)
    out, _ = arignote.scan(lambda s: s * 2, outputs_info=x, n_steps=n)
    with pytest.raises(ValueError, match="the number of steps must not be negative, got -1"):
        arignote.function([x, n], out, backend=c)(V9, -1)
    a0 = T.dvector("a0")
    out, _ = arignote.scan(lambda a3, a1: a1 + a3, outputs_info=dict(initial=a0, taps=[-3, -1]), n_steps=4)
    with pytest.raises(ValueError, match=r"initial value of recurrent output 0 has 2 rows; its taps \[-3, -1\] read 3"):
        arignote.function([a0], out, backend=c)(V9[:2])


def test_a_step_output_of_another_shape_names_the_scan_the_output_and_the_step(c):
    s0 = T.dvector("s0")
    out, _ = arignote.scan(lambda s: T.concatenate([s, s]), outputs_info=s0, n_steps=3)
    with pytest.raises(ValueError, match=r"^Scan\{.*\} \(built at .*test_c_loops.py:\d+.*\): at step 0: recurrent output 0 "
                                         r"has shape \(4,\), but its state has shape \(2,\)"):
        arignote.function([s0], out, backend=c)(V9[:2])
    v = T.dvector("v")
    out, _ = arignote.scan(lambda i: v[:i + 1], sequences=T.arange(3))
    with pytest.raises(ValueError, match=r"at step 1: mapped output 0 has shape \(2,\), but its earlier rows have shape \(1,\)"):
        arignote.function([v], out, backend=c)(V9)


def test_an_error_in_the_step_names_the_inner_op_and_the_step(c):
    x, i = T.dvector("x"), T.lvector("i")
    out, _ = arignote.scan(lambda it: x[it], sequences=i)
    f = arignote.function([x, i], out, backend=c)
    with pytest.raises(IndexError, match=r"^Scan\{.*\} \(built at .*test_c_loops.py:\d+.*\): at step 3: "
                                         r"Subtensor\{.*\} \(built at .*test_c_loops.py:\d+.*\): index 7 is out of bounds"):
        f(V9[:5], np.array([0, 1, 2, 7, 1]))
    np.testing.assert_allclose(f(V9[:5], np.array([4, 0, -1])), V9[:5][[4, 0, -1]])


# ---------------------------------------------------------------------------------------------------
# memory and speed: results written into the rows, rings for the rows kept


def test_the_scalar_step_writes_into_the_row_with_no_allocation_per_step(c):
    x, s0 = T.fvector("x"), T.fscalar("s0")
    out, _ = arignote.scan(lambda xt, s: 0.999 * s + xt, sequences=x, outputs_info=s0)
    for kept in (out, out[-1]):
        f = same([x, s0], kept, np.linspace(0, 1, 50, dtype="float32"), np.float32(0.5))
        loop, source = loop_of(f.backend_source), f.backend_source
        assert re.search(r"int sub = ari_step\d+\(args, res, err, where\);", loop)
        for word in ("malloc", "ari_alloc", "memcpy", "ari_copy", "ari_free"):
            assert word not in loop, word
        step = source[source.index("static int ari_step"):source.index("\n}\n", source.index("static int ari_step"))]
        assert "if (out[0].data) { if (!ari_into(" in step  # the body writes into the row it is given
        assert "scratch" not in step and "= {0}" not in step  # nothing zeroed per step
    big, one = np.random.default_rng(0).random(100_000, dtype=np.float32), np.ones(1, np.float32)

    def best(a, reps):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            f(a, np.float32(0.5))
            times.append(time.perf_counter() - start)
        return min(times)

    per_step = (best(big, 20) - best(one, 50)) / (len(big) - 1)
    assert per_step < 50e-9, f"{per_step * 1e9:.1f} ns per step"  # about 3 ns measured (docs/c-backend.md)


def test_a_million_steps_of_a_vector_state_keep_two_rows(c):
    s0 = T.fvector("s0")
    out, _ = arignote.scan(lambda s: s * np.float32(0.5) + np.float32(1), outputs_info=s0, n_steps=1_000_000)
    f = arignote.function([s0], out[-1], backend=c)
    assert "(ring buffer)" in f.backend_source and "ari_min_i64(ari_add_sat(1, n), 2)" in f.backend_source
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = f(np.zeros(1000, np.float32))
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    np.testing.assert_allclose(result, np.full(1000, 2.0, np.float32))
    assert grown_kb < 100_000, f"{grown_kb} kB"  # a million rows would be 4 GB


# ---------------------------------------------------------------------------------------------------
# nesting and branches


def test_nested_scans(c):
    x = T.dmatrix("x")

    def row_cumsum(r):
        inner, _ = arignote.scan(lambda v, acc: acc + v, sequences=r, outputs_info=T.zeros_like(r[0]))
        return inner

    out, _ = arignote.scan(row_cumsum, sequences=x)
    f = same([x], out, X8)
    np.testing.assert_allclose(f(X8), np.cumsum(X8, axis=1))
    out, _ = arignote.scan(lambda r, h: h + row_cumsum(r)[-1], sequences=x, outputs_info=T.zeros_like(x[0, 0]))
    same([x], out, X8)
    same([x], out[-1], X8)


def test_ifelse_runs_only_the_branch_taken(c):
    x, i = T.dvector("x"), T.lscalar("i")
    y = ifelse(T.lt(i, x.shape[0]), x[i] * 2, T.sum(x))  # x[i] would raise
    f = same([x, i], y, V9, 3)
    assert f(V9, 100) == pytest.approx(V9.sum())
    with pytest.raises(IndexError, match=r"IfElse\{.*\): in the then-branch: Subtensor\{.*\} \(built at .*test_c_loops"):
        arignote.function([x, i], ifelse(T.ge(i, 0), x[i], T.sum(x)), backend=c)(V9, 100)


def test_ifelse_conditions_shapes_and_no_aliasing(c):
    x, y, cond = T.dvector("x"), T.dvector("y"), T.dscalar("c")
    outs = ifelse(cond, [x, T.sum(y)], [x[:2] * 3, y[0]])
    for value in (0.0, -0.5, np.nan):
        same([cond, x, y], outs, value, V9, V9[:4])
    k = T.lscalar("k")
    same([k, x], ifelse(k, x, x[::-1]), 2, V9)
    a = np.array(V9)
    f = arignote.function([cond, x, y], outs, backend=c)
    first = f(1.0, a, V9)[0]
    a[:] = 0  # the output is a copy, not the input passed through
    np.testing.assert_allclose(first, V9)


def test_ifelse_inside_a_step_and_a_scan_inside_a_branch(c):
    x, h0 = T.dvector("x"), T.dscalar("h0")
    out, _ = arignote.scan(lambda xt, h: ifelse(T.gt(xt, 0), h + xt, h * 0.5), sequences=x, outputs_info=h0)
    same([x, h0], out, V9, 1.0)
    same([x, h0], out[-1], V9, 1.0)
    out, _ = arignote.scan(lambda xt: ifelse(T.gt(xt, 0), T.stack([xt, xt]), T.stack([xt, xt, xt])), sequences=x)
    with pytest.raises(ValueError, match=r"at step \d: IfElse\{.*\): in the else-branch: mapped output 0 has shape \(3,\)"):
        arignote.function([x], out, backend=c)(np.array([1.0, -1.0]))
    doubled, _ = arignote.scan(lambda v: v * 2, sequences=x)
    y = ifelse(T.gt(h0, 0), doubled, x)
    f = same([x, h0], y, V9, 1.0)
    same([x, h0], y, V9, -1.0)
    assert "ari_then" in f.backend_source and "ari_step" in f.backend_source


# ---------------------------------------------------------------------------------------------------
# gradients


def test_gradients_through_scan(c):
    x, h0, w = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("w")
    out, _ = arignote.scan(lambda xt, h, w: T.tanh(T.dot(h, w) + xt), sequences=x, outputs_info=h0, non_sequences=w)
    cost = T.sum(out ** 2) + T.sum(out[-1])
    grads = arignote.grad(cost, [x, h0, w])
    same([x, h0, w], [cost] + grads, X8, V9[:3], W)
    a0 = T.dvector("a0")
    out, _ = arignote.scan(lambda xt, a3, a1: a1 * xt + a3 * 0.5, sequences=x[:, 0],
                           outputs_info=dict(initial=a0, taps=[-3, -1]))
    cost = T.sum(out * T.arange(8))
    same([x, a0], [cost] + arignote.grad(cost, [x, a0]), X8, V9[:3])
