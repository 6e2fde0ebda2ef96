"""scan and its relatives (map, reduce, foldl, foldr, until) do what a Theano user expects, on every
backend: each semantic checked against a plain NumPy loop, gradients against finite differences."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core.scan import Scan
from arignote.gradient import hessian, jacobian
from arignote.scan_module import until
from arignote.tensor.shared_randomstreams import RandomStreams

rng = np.random.default_rng(20240611)
X5 = rng.uniform(-1, 1, (5, 3))       # a sequence of 5 rows of 3
X7 = rng.uniform(-1, 1, (7, 2))
V6 = rng.uniform(-1, 1, 6)
H0 = rng.uniform(-1, 1, 3)
W33 = rng.uniform(-0.6, 0.6, (3, 3))
for _array in (X5, X7, V6, H0, W33):
    _array.setflags(write=False)  # a backend must never write into its inputs


def compile_(backend, inputs, outputs, **kwargs):
    return arignote.function(inputs, outputs, backend=backend, **kwargs)


def grad_check(backend, build, points):
    arignote.verify_grad(build, [np.array(p) for p in points], backend=backend, rng=np.random.default_rng(3))


def scans_of(f):
    """The Scan nodes of a compiled function's rewritten graph (the outer graph only)."""
    return [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, Scan)]


def op_names(fgraph):
    names = []
    for node in fgraph.apply_nodes:
        names.append(type(node.op).__name__)
        body = getattr(node.op, "fgraph", None)
        if body is not None and type(node.op).__name__ in ("Composite", "FusedReduce"):
            names += op_names(body)
    return names


# ---------------------------------------------------------------------------------------------------
# steps, rows and the initial state


def test_initial_state_is_not_part_of_the_output(backend):
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    out, updates = arignote.scan(lambda x_t, h: h * 0.5 + x_t, sequences=x, outputs_info=h0)
    result = compile_(backend, [x, h0], out)(X5, H0)
    h, expected = H0, []
    for row in X5:
        h = h * 0.5 + row
        expected.append(h)
    assert result.shape == (5, 3)
    np.testing.assert_allclose(result, expected, rtol=1e-12)
    assert not updates


def test_step_count_is_n_steps_else_the_shortest_sequence(backend):
    a, b = T.dvector("a"), T.dvector("b")
    out, _ = arignote.scan(lambda x, y: x * y, sequences=[a, b])
    f = compile_(backend, [a, b], out)
    np.testing.assert_allclose(f(V6, V6[:4]), V6[:4] ** 2)
    np.testing.assert_allclose(f(V6[:3], V6), V6[:3] ** 2)
    n = T.lscalar("n")
    out, _ = arignote.scan(lambda x, y: x * y, sequences=[a, b], n_steps=n)
    f = compile_(backend, [a, b, n], out)
    np.testing.assert_allclose(f(V6, V6, 2), V6[:2] ** 2)
    # the shortest sequence after taps: taps [-2, 0] on 6 rows give 4 steps
    out, _ = arignote.scan(lambda x_m2, x0: x0 - x_m2, sequences=[dict(input=a, taps=[-2, 0])])
    np.testing.assert_allclose(compile_(backend, [a], out)(V6), V6[2:] - V6[:-2])


def test_a_sequence_shorter_than_n_steps_raises(backend):
    a, n = T.dvector("a"), T.lscalar("n")
    out, _ = arignote.scan(lambda x: x * 2, sequences=a, n_steps=n)
    f = compile_(backend, [a, n], out)
    np.testing.assert_allclose(f(V6, 6), V6 * 2)
    with pytest.raises(ValueError):
        f(V6, 7)


def test_zero_steps_give_zero_rows(backend):
    x, h0, n = T.dmatrix("x"), T.dvector("h0"), T.lscalar("n")
    out, _ = arignote.scan(lambda h: h + 1, outputs_info=h0, n_steps=n)
    f = compile_(backend, [h0, n], out)
    assert f(H0, 0).shape == (0, 3)
    np.testing.assert_allclose(f(H0, 2), [H0 + 1, H0 + 2])
    mapped, _ = arignote.scan(lambda x_t: x_t * 2, sequences=x)
    result = compile_(backend, [x], mapped)(X5[:0])
    assert result.shape[0] == 0 and result.ndim == 2


def test_negative_n_steps_raises():
    with pytest.raises(ValueError):
        arignote.scan(lambda h: h + 1, outputs_info=T.dscalar("h"), n_steps=-1)


# ---------------------------------------------------------------------------------------------------
# taps and the order of the step function's arguments


def test_sequence_taps(backend):
    x = T.dmatrix("x")
    out, _ = arignote.scan(lambda before, now, ahead: before + 10 * now + 100 * ahead,
                           sequences=dict(input=x, taps=[-1, 0, 2]))
    result = compile_(backend, [x], out)(X7)
    expected = [X7[t - 1] + 10 * X7[t] + 100 * X7[t + 2] for t in range(1, len(X7) - 2)]
    assert result.shape == (4, 2)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_output_taps_read_the_initial_rows(backend):
    x0 = T.dvector("x0")
    # x0 holds the 3 first values: x[t] = x[t-3] + 2 x[t-1]
    out, _ = arignote.scan(lambda x_m3, x_m1: x_m3 + 2 * x_m1,
                           outputs_info=dict(initial=x0, taps=[-3, -1]), n_steps=6)
    start = np.array([1.0, -2.0, 0.5])
    values = list(start)
    for _ in range(6):
        values.append(values[-3] + 2 * values[-1])
    result = compile_(backend, [x0], out)(start)
    np.testing.assert_allclose(result, values[3:], rtol=1e-12)


def test_step_arguments_come_in_theano_order(backend):
    a, b, c0, d0, w, v = T.dvector("a"), T.dvector("b"), T.dvector("c0"), T.dscalar("d0"), T.dscalar("w"), T.dscalar("v")
    seen = []

    def step(a_m1, a_0, b_0, c_m2, c_m1, d_m1, w_, v_):
        seen.append([a_m1, a_0, b_0, c_m2, c_m1, d_m1, w_, v_])
        c = a_m1 + 2 * a_0 + 4 * b_0 + 8 * c_m2 + 0.5 * c_m1 + w_
        mapped = a_0 * v_
        d = d_m1 - c * v_
        return c, mapped, d

    outs, _ = arignote.scan(step, sequences=[dict(input=a, taps=[-1, 0]), b],
                            outputs_info=[dict(initial=c0, taps=[-2, -1]), None, d0],
                            non_sequences=[w, v])
    assert len(seen) == 1 and seen[0][6] is w and seen[0][7] is v  # non-sequences are passed as given
    av, bv, cv, dv, wv, vv = np.arange(1.0, 7.0), np.linspace(-1, 1, 5), np.array([0.3, -0.2]), 0.7, 0.25, -1.5
    result = compile_(backend, [a, b, c0, d0, w, v], outs)(av, bv, cv, dv, wv, vv)
    cs, ds, ms = list(cv), [dv], []
    for t in range(5):  # a gives 5 steps (tap -1), b 5
        c = av[t] + 2 * av[t + 1] + 4 * bv[t] + 8 * cs[-2] + 0.5 * cs[-1] + wv
        cs.append(c)
        ms.append(av[t + 1] * vv)
        ds.append(ds[-1] - c * vv)
    for got, want in zip(result, [cs[2:], ms, ds[1:]]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_step_can_return_outputs_updates_both_or_until(backend):
    counter = arignote.shared(np.float64(0.0), name="counter")
    x = T.dvector("x")
    # outputs only
    out, upd = arignote.scan(lambda x_t: x_t * 3, sequences=x)
    assert not upd
    np.testing.assert_allclose(compile_(backend, [x], out)(V6), V6 * 3)
    # an updates dict only
    out, upd = arignote.scan(lambda x_t: {counter: counter + x_t}, sequences=x)
    assert not out and list(upd) == [counter]
    compile_(backend, [x], [], updates=upd)(V6)
    np.testing.assert_allclose(counter.get_value(), V6.sum(), rtol=1e-12)
    # both (outputs first, as Theano's tutorials write it, and updates first)
    counter.set_value(np.float64(0.0))
    for order in (0, 1):
        counter.set_value(np.float64(1.0))
        out, upd = arignote.scan(
            lambda x_t: (x_t * 2, {counter: counter * 2}) if order == 0 else ({counter: counter * 2}, x_t * 2),
            sequences=x)
        f = compile_(backend, [x], out, updates=upd)
        np.testing.assert_allclose(f(V6), V6 * 2)
        assert counter.get_value() == 2.0 ** 6
    # outputs and an until
    h0 = T.dscalar("h0")
    out, _ = arignote.scan(lambda h: (h * 2, until(h * 2 > 50)), outputs_info=h0, n_steps=100)
    np.testing.assert_allclose(compile_(backend, [h0], out)(1.0), [2.0, 4, 8, 16, 32, 64])


def test_one_output_is_a_variable_several_a_list(backend):
    x = T.dvector("x")
    one, updates = arignote.scan(lambda x_t: x_t + 1, sequences=x)
    assert isinstance(one, arignote.core.graph.Variable)
    assert isinstance(updates, dict) and not updates and len(updates) == 0
    listed, _ = arignote.scan(lambda x_t: x_t + 1, sequences=x, return_list=True)
    assert isinstance(listed, list) and len(listed) == 1
    two, _ = arignote.scan(lambda x_t: [x_t + 1, x_t * 2], sequences=x)
    assert isinstance(two, list) and len(two) == 2
    a, b = compile_(backend, [x], two)(V6)
    np.testing.assert_allclose(a, V6 + 1)
    np.testing.assert_allclose(b, V6 * 2)
    np.testing.assert_allclose(compile_(backend, [x], listed[0])(V6), V6 + 1)


def test_updates_are_dict_like_and_truthy_when_not_empty():
    s = arignote.shared(np.float64(0.0), name="s")
    _, updates = arignote.scan(lambda: {s: s + 1}, n_steps=3)
    assert updates and len(updates) == 1 and s in updates
    assert [k for k, _ in updates.items()] == [s]
    assert isinstance(dict(updates), dict)


def test_go_backwards_gives_outputs_in_step_order(backend):
    x, h0 = T.dvector("x"), T.dscalar("h0")
    out, _ = arignote.scan(lambda x_t, h: 0.5 * h + x_t, sequences=x, outputs_info=h0, go_backwards=True)
    result = compile_(backend, [x, h0], out)(V6, 0.25)
    h, expected = 0.25, []
    for value in V6[::-1]:
        h = 0.5 * h + value
        expected.append(h)
    np.testing.assert_allclose(result, expected, rtol=1e-12)
    # with taps: step t reads rows counted from the end
    out, _ = arignote.scan(lambda x_m1, x_0: x_0 - 10 * x_m1, sequences=dict(input=x, taps=[-1, 0]), go_backwards=True)
    result = compile_(backend, [x], out)(V6)
    forward = V6[1:] - 10 * V6[:-1]
    np.testing.assert_allclose(result, forward[::-1], rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# type errors


def test_a_step_returning_another_dtype_raises_a_helpful_type_error():
    h0 = T.fscalar("h0")
    with pytest.raises(TypeError) as info:
        arignote.scan(lambda h: h * np.float64(2.0) + T.dscalar("d"), outputs_info=h0, n_steps=3)
    message = str(info.value)
    assert "output 0" in message and "float32" in message and "float64" in message and "cast" in message


def test_a_step_returning_another_broadcast_pattern_raises_a_helpful_type_error():
    h0, m = T.row("h0", dtype="float64"), T.dmatrix("m")
    with pytest.raises(TypeError) as info:
        arignote.scan(lambda h, m_: h + m_[:1] * 0 + T.dot(h, m_), outputs_info=h0, non_sequences=m, n_steps=2)
    message = str(info.value)
    assert "output 0" in message
    assert "unbroadcast" in message or "patternbroadcast" in message
    assert str(h0.type) in message


def test_the_fix_the_type_error_suggests_works(backend):
    h0, m = T.row("h0", dtype="float64"), T.dmatrix("m")
    out, _ = arignote.scan(lambda h, m_: T.patternbroadcast(T.dot(h, m_), h0.broadcastable),
                           outputs_info=h0, non_sequences=m, n_steps=3)
    start = H0[None, :]
    result = compile_(backend, [h0, m], out)(start, W33)
    np.testing.assert_allclose(result[-1], start @ W33 @ W33 @ W33, rtol=1e-12)
    assert result.shape == (3, 1, 3)


# ---------------------------------------------------------------------------------------------------
# shared variables and random streams inside the step


def test_shared_variables_updated_inside_the_step_are_written_once_after_the_call(backend):
    acc = arignote.shared(np.array([1.0, 2.0]), name="acc")
    x = T.dvector("x")

    def step(x_t):
        return acc * 1.0, {acc: acc + x_t}  # each step sees the state the steps before it left

    seen, updates = arignote.scan(step, sequences=x)
    f = compile_(backend, [x], [seen, acc * 1.0], updates=updates)
    values = np.array([0.5, -1.0, 2.0])
    rows, outer = f(values)
    expected, state = [], np.array([1.0, 2.0])
    for value in values:
        expected.append(state.copy())
        state = state + value
    np.testing.assert_allclose(rows, expected, rtol=1e-12)
    np.testing.assert_allclose(outer, [1.0, 2.0])  # the outputs see the old value
    np.testing.assert_allclose(acc.get_value(), state, rtol=1e-12)
    f(values)
    np.testing.assert_allclose(acc.get_value(), state + values.sum(), rtol=1e-12)


def test_random_streams_inside_the_step_draw_new_numbers_each_step(backend):
    n = 4
    srng = RandomStreams(seed=99)
    out, updates = arignote.scan(lambda: srng.uniform(size=(3,)), n_steps=n)
    assert len(updates) == 1
    state = next(iter(updates))
    assert isinstance(state, arignote.SharedVariable)
    f = compile_(backend, [], out, updates=updates)
    first, second = f(), f()
    assert first.shape == (n, 3)
    assert len(np.unique(first)) == first.size
    assert not np.allclose(first, second)
    assert ((first >= 0) & (first < 1)).all()
    # the loop's draws are the stream's: one draw of n*3 numbers from the same seed, then the next
    flat = RandomStreams(seed=99)
    whole = compile_(backend, [], flat.uniform(size=(2 * n * 3,)))()
    np.testing.assert_allclose(np.concatenate([first.ravel(), second.ravel()]), whole, rtol=1e-7)
    # the state is written once after the call: it has advanced by the 2 * n * 3 numbers drawn
    np.testing.assert_array_equal(state.get_value(), flat.state_updates[0][0].get_value())


def test_random_streams_in_scan_advance_without_passing_the_updates(backend):
    srng = RandomStreams(seed=5)
    out, updates = arignote.scan(lambda: srng.normal(size=(2,)), n_steps=3)
    f = compile_(backend, [], out)  # Theano's default updates carry the state
    a, b = f(), f()
    assert a.shape == (3, 2) and not np.allclose(a, b)


# ---------------------------------------------------------------------------------------------------
# scans in scans


def test_nested_scans(backend):
    m = T.dmatrix("m")

    def row_cumsum(row):
        inner, _ = arignote.scan(lambda v, acc: acc + v, sequences=row, outputs_info=T.constant(0.0, dtype="float64"))
        return inner

    out, _ = arignote.scan(row_cumsum, sequences=m)
    np.testing.assert_allclose(compile_(backend, [m], out)(X5), np.cumsum(X5, axis=1), rtol=1e-12)


def test_nested_scan_reads_the_outer_state(backend):
    h0, k = T.dscalar("h0"), T.lscalar("k")

    def outer_step(h):
        inner, _ = arignote.scan(lambda g: g * 0.5 + h, outputs_info=h, n_steps=k)
        return inner[-1]

    out, _ = arignote.scan(outer_step, outputs_info=h0, n_steps=3)
    h, expected = 1.5, []
    for _ in range(3):
        g = h
        for _ in range(2):
            g = g * 0.5 + h
        h = g
        expected.append(h)
    np.testing.assert_allclose(compile_(backend, [h0, k], out)(1.5, 2), expected, rtol=1e-12)


def test_a_scan_feeds_another(backend):
    x, h0 = T.dvector("x"), T.dscalar("h0")
    first, _ = arignote.scan(lambda x_t, h: h + x_t, sequences=x, outputs_info=h0)
    second, _ = arignote.scan(lambda c_t, p: c_t * p, sequences=first, outputs_info=T.constant(1.0, dtype="float64"))
    result = compile_(backend, [x, h0], second)(V6, 0.5)
    np.testing.assert_allclose(result, np.cumprod(0.5 + np.cumsum(V6)), rtol=1e-12)
    grad_check(backend, lambda xs: arignote.scan(
        lambda c_t, p: c_t * p, sequences=arignote.scan(lambda x_t, h: h + x_t, sequences=xs,
                                                        outputs_info=T.constant(0.5, dtype="float64"))[0],
        outputs_info=T.constant(1.0, dtype="float64"))[0], [V6])


def test_grad_inside_the_step(backend):
    x = T.dvector("x")
    # the derivative of sum(tanh(c * x)) with respect to c, for each c of a sequence
    cs = T.dvector("cs")
    out, _ = arignote.scan(lambda c: T.grad(T.sum(T.tanh(c * x)), c), sequences=cs)
    cv = np.array([0.1, 0.5, -1.0])
    xv = np.array([0.3, -0.7, 1.2, 2.0])
    expected = [np.sum(xv * (1 - np.tanh(c * xv) ** 2)) for c in cv]
    np.testing.assert_allclose(compile_(backend, [cs, x], out)(cv, xv), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# gradients, checked against finite differences


def rnn(x, h0, w, backwards=False):
    out, _ = arignote.scan(lambda x_t, h, w_: T.tanh(T.dot(h, w_) + x_t), sequences=x, outputs_info=h0,
                           non_sequences=w, go_backwards=backwards)
    return out


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
def test_grad_of_all_rows_wrt_sequence_initial_state_and_weights(backend, backwards):
    grad_check(backend, lambda x, h0, w: rnn(x, h0, w, backwards), [X5, H0, W33])


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
def test_grad_of_the_last_row(backend, backwards):
    grad_check(backend, lambda x, h0, w: rnn(x, h0, w, backwards)[-1], [X5, H0, W33])


def test_grad_of_a_mapped_output_and_a_recurrent_one(backend):
    def build(x, h0):
        h, m = arignote.scan(lambda x_t, h: [h * x_t + 0.1, T.sin(x_t) * h], sequences=x,
                             outputs_info=[h0, None])[0]
        return T.sum(h ** 2) + T.sum(m)
    grad_check(backend, build, [X5, H0])


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
def test_grad_through_sequence_taps(backend, backwards):
    def build(x, w):
        out, _ = arignote.scan(lambda a, b, c, w_: T.tanh(a * w_ + b * c), sequences=dict(input=x, taps=[-1, 0, 2]),
                               non_sequences=w, go_backwards=backwards)
        return out
    grad_check(backend, build, [X7, np.array([0.3, -0.4])])


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
def test_grad_through_output_taps(backend, backwards):
    def build(x, init):
        out, _ = arignote.scan(lambda x_t, s3, s1: T.tanh(0.5 * s3 - 0.7 * s1 + x_t), sequences=x,
                               outputs_info=dict(initial=init, taps=[-3, -1]), go_backwards=backwards)
        return out
    grad_check(backend, build, [X5, rng.uniform(-1, 1, (3, 3))])


def test_grad_through_output_taps_of_the_last_row_only(backend):
    def build(init, c):
        out, _ = arignote.scan(lambda s2, s1, c_: s2 * c_ + T.sin(s1), outputs_info=dict(initial=init, taps=[-2, -1]),
                               non_sequences=c, n_steps=5)
        return out[-1]
    grad_check(backend, build, [np.array([0.2, -0.5]), np.array(0.8)])


def test_grad_wrt_a_shared_variable_used_inside(backend):
    w = arignote.shared(W33.copy(), name="w")
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    out, _ = arignote.scan(lambda x_t, h: T.tanh(T.dot(h, w) + x_t), sequences=x, outputs_info=h0)
    cost = T.sum(out[-1] ** 2) + T.sum(out)
    g = compile_(backend, [x, h0], T.grad(cost, w))(X5, H0)
    value = compile_(backend, [x, h0], cost)

    def at(wv):
        w.set_value(wv)
        return float(value(X5, H0))

    numeric = np.zeros_like(W33)
    for index in np.ndindex(*W33.shape):
        delta = np.zeros_like(W33)
        delta[index] = 1e-6
        numeric[index] = (at(W33 + delta) - at(W33 - delta)) / 2e-6
    w.set_value(W33.copy())
    np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def test_grad_wrt_a_sequence_that_is_also_a_non_sequence(backend):
    # x is both read row by row and whole: both paths reach its gradient
    grad_check(backend, lambda x: arignote.scan(lambda r, h, m: h + T.sum(r * m[0]), sequences=x,
                                                outputs_info=T.constant(0.0, dtype="float64"),
                                                non_sequences=x)[0], [X5])


def test_truncate_gradient_keeps_the_last_steps(backend):
    x, h0, w = T.dvector("x"), T.dscalar("h0"), T.dscalar("w")
    n, k, wv, h0v = len(V6), 2, 0.7, 0.3
    out, _ = arignote.scan(lambda x_t, h, w_: w_ * h + x_t, sequences=x, outputs_info=h0, non_sequences=w,
                           truncate_gradient=k)
    gx, gh0 = compile_(backend, [x, h0, w], T.grad(out[-1], [x, h0]))(V6, h0v, wv)
    # h[n-1] = w^n h0 + sum_t w^(n-1-t) x[t]; only the last k steps are backpropagated
    expected = np.array([wv ** (n - 1 - t) if t >= n - k else 0.0 for t in range(n)])
    np.testing.assert_allclose(gx, expected, rtol=1e-12)
    assert gh0 == 0.0
    full, _ = arignote.scan(lambda x_t, h, w_: w_ * h + x_t, sequences=x, outputs_info=h0, non_sequences=w)
    gx, gh0 = compile_(backend, [x, h0, w], T.grad(full[-1], [x, h0]))(V6, h0v, wv)
    np.testing.assert_allclose(gx, wv ** (n - 1 - np.arange(n)), rtol=1e-12)
    np.testing.assert_allclose(gh0, wv ** n, rtol=1e-12)


def test_truncate_gradient_of_all_rows(backend):
    x, h0, w = T.dvector("x"), T.dscalar("h0"), T.dscalar("w")
    n, k, wv = len(V6), 3, 0.6
    out, _ = arignote.scan(lambda x_t, h, w_: w_ * h + x_t, sequences=x, outputs_info=h0, non_sequences=w,
                           truncate_gradient=k)
    gx = compile_(backend, [x, h0, w], T.grad(T.sum(out), x))(V6, 0.0, wv)
    # Theano truncates the backward loop to the last k steps: step t (t >= n-k) gets the gradient of
    # every row s >= t; earlier steps get none
    expected = np.array([sum(wv ** (s - t) for s in range(t, n)) if t >= n - k else 0.0 for t in range(n)])
    np.testing.assert_allclose(gx, expected, rtol=1e-12)


def test_hessian_of_a_cost_computed_through_scan(backend):
    p, x = T.dvector("p"), T.dvector("x")
    # cost = sum_t h_t with h_t = h_{t-1} * p_t-independent..., a polynomial in p with a closed form
    out, _ = arignote.scan(lambda x_t, h, p_: h * p_ + x_t * p_ ** 2, sequences=x,
                           outputs_info=T.zeros_like(p), non_sequences=p)
    cost = T.sum(out[-1] ** 2)
    hess = compile_(backend, [p, x], hessian(cost, p))
    grad = compile_(backend, [p, x], T.grad(cost, p))
    pv, xv = np.array([0.5, -0.8, 1.1]), np.array([0.3, 0.9, -0.4, 0.2])
    result = hess(pv, xv)
    numeric = np.zeros((3, 3))
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-5
        numeric[i] = (grad(pv + e, xv) - grad(pv - e, xv)) / 2e-5
    assert result.shape == (3, 3)
    np.testing.assert_allclose(result, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(result, result.T, rtol=1e-10, atol=1e-12)
    # closed form: each component is independent, h_n = sum_t p^(n-t+1) x_t; cost = sum h_n^2
    n = len(xv)
    h = sum(pv ** (n - t + 1) * xv[t] for t in range(n))
    dh = sum((n - t + 1) * pv ** (n - t) * xv[t] for t in range(n))
    d2h = sum((n - t + 1) * (n - t) * pv ** (n - t - 1) * xv[t] for t in range(n))
    np.testing.assert_allclose(np.diag(result), 2 * dh ** 2 + 2 * h * d2h, rtol=1e-10)
    np.testing.assert_allclose(result - np.diag(np.diag(result)), 0, atol=1e-12)


def test_jacobian_values(backend):
    x = T.dvector("x")
    jac = compile_(backend, [x], jacobian(x ** 2 + T.sum(x) * x, x))(V6)
    np.testing.assert_allclose(jac, np.diag(2 * V6) + np.diag(np.full(6, V6.sum())) + V6[:, None], rtol=1e-12)
    m = T.dmatrix("m")
    jm = compile_(backend, [m, x], jacobian(T.dot(m, x[:3]), [m, x]))
    jmv, jxv = jm(W33, V6)
    assert jmv.shape == (3, 3, 3) and jxv.shape == (3, 6)
    expected = np.zeros((3, 3, 3))
    for i in range(3):
        expected[i, i, :] = V6[:3]
    np.testing.assert_allclose(jmv, expected, rtol=1e-12)
    np.testing.assert_allclose(jxv, np.hstack([W33, np.zeros((3, 3))]), rtol=1e-12)


def test_jacobian_of_a_scan_output(backend):
    x, h0 = T.dvector("x"), T.dscalar("h0")
    out, _ = arignote.scan(lambda x_t, h: 0.5 * h + x_t, sequences=x, outputs_info=h0)
    jac = compile_(backend, [x, h0], jacobian(out, x))(V6, 0.1)
    n = len(V6)
    expected = np.array([[0.5 ** (s - t) if t <= s else 0.0 for t in range(n)] for s in range(n)])
    np.testing.assert_allclose(jac, expected, rtol=1e-12)


def test_hessian_closed_form(backend):
    x = T.dvector("x")
    hess = compile_(backend, [x], hessian(T.sum(x ** 3) + T.sum(x) ** 2, x))(V6)
    np.testing.assert_allclose(hess, np.diag(6 * V6) + 2, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# map, reduce, foldl, foldr


def test_map(backend):
    a, b = T.dvector("a"), T.dvector("b")
    out, updates = arignote.map(lambda x, y: x * y + 1, sequences=[a, b])
    assert not updates
    np.testing.assert_allclose(compile_(backend, [a, b], out)(V6, V6[::-1]), V6 * V6[::-1] + 1, rtol=1e-12)
    m, w = T.dmatrix("m"), T.dmatrix("w")
    rows, _ = arignote.map(lambda r, w_: T.dot(r, w_), sequences=m, non_sequences=w)
    np.testing.assert_allclose(compile_(backend, [m, w], rows)(X5, W33), X5 @ W33, rtol=1e-12)


def test_reduce_foldl_foldr(backend):
    x, s0 = T.dvector("x"), T.dscalar("s0")
    step = lambda x_t, acc: 2 * acc + x_t  # order matters  # noqa: E731
    total, updates = arignote.reduce(lambda x_t, acc: acc + x_t, sequences=x, outputs_info=s0)
    assert not updates and total.ndim == 0
    left, _ = arignote.foldl(step, sequences=x, outputs_info=s0)
    right, _ = arignote.foldr(step, sequences=x, outputs_info=s0)
    t, l_, r_ = compile_(backend, [x, s0], [total, left, right])(V6, 0.5)
    np.testing.assert_allclose(t, 0.5 + V6.sum(), rtol=1e-12)
    acc = 0.5
    for v in V6:
        acc = 2 * acc + v
    np.testing.assert_allclose(l_, acc, rtol=1e-12)
    acc = 0.5
    for v in V6[::-1]:
        acc = 2 * acc + v
    np.testing.assert_allclose(r_, acc, rtol=1e-12)
    grad_check(backend, lambda xs: arignote.foldr(step, sequences=xs, outputs_info=T.constant(0.5, dtype="float64"))[0], [V6])


def test_reduce_with_several_outputs(backend):
    x = T.dvector("x")
    (lo, hi), _ = arignote.reduce(lambda x_t, a, b: [T.minimum(a, x_t), T.maximum(b, x_t)], sequences=x,
                                  outputs_info=[x[0], x[0]])
    got = compile_(backend, [x], [lo, hi])(V6)
    np.testing.assert_allclose(got, [V6.min(), V6.max()])


# ---------------------------------------------------------------------------------------------------
# until: while-loops


def test_until_stops_after_the_step_where_the_condition_holds(backend):
    h0, limit = T.dscalar("h0"), T.dscalar("limit")
    out, _ = arignote.scan(lambda h, lim: (h * 2, until(h * 2 >= lim)), outputs_info=h0, non_sequences=limit,
                           n_steps=1000)
    f = compile_(backend, [h0, limit], out)
    np.testing.assert_allclose(f(1.0, 20.0), [2.0, 4.0, 8.0, 16.0, 32.0])
    np.testing.assert_allclose(f(1.0, 2.0), [2.0])   # true at once: one step
    np.testing.assert_allclose(f(1.0, 1e300 * 10), 2.0 ** np.arange(1, 1001))   # never true: n_steps


def test_until_with_a_sequence_and_a_mapped_output(backend):
    x = T.dvector("x")
    out, _ = arignote.scan(lambda x_t: (x_t * 10, until(x_t < 0)), sequences=x)
    values = np.array([0.5, 0.2, -0.1, 0.3, -0.5])
    np.testing.assert_allclose(compile_(backend, [x], out)(values), [5.0, 2.0, -1.0])
    np.testing.assert_allclose(compile_(backend, [x], out)(np.abs(values)), np.abs(values) * 10)


def test_until_with_a_shared_update(backend):
    count = arignote.shared(np.int64(0), name="count")
    h0 = T.dscalar("h0")
    out, updates = arignote.scan(lambda h: ([h + 1], {count: count + 1}, until(h + 1 >= 4)), outputs_info=h0,
                                 n_steps=10)
    result = compile_(backend, [h0], out, updates=updates)(0.5)
    np.testing.assert_allclose(result, [1.5, 2.5, 3.5, 4.5])
    assert int(count.get_value()) == 4


def test_a_while_loop_has_no_gradient():
    h0 = T.dscalar("h0")
    out, _ = arignote.scan(lambda h: (h * 2, until(h > 5)), outputs_info=h0, n_steps=10)
    with pytest.raises(TypeError):
        T.grad(out[-1], h0)


# ---------------------------------------------------------------------------------------------------
# errors inside a loop


def test_an_error_inside_the_loop_names_the_op_where_it_was_built_and_the_step(backend):
    table, x = T.dvector("table"), T.lvector("x")
    out, _ = arignote.scan(lambda i, t: t[i] * 2, sequences=x, non_sequences=table)  # line of the failing op
    line = test_an_error_inside_the_loop_names_the_op_where_it_was_built_and_the_step.__code__.co_firstlineno + 2
    f = compile_(backend, [x, table], out)
    np.testing.assert_allclose(f(np.array([0, 2, 1]), np.array([1.0, 2.0, 3.0])), [2.0, 6.0, 4.0])
    with pytest.raises(IndexError) as info:
        f(np.array([0, 1, 2, 7, 0]), np.array([1.0, 2.0, 3.0]))
    message = str(info.value)
    assert "Subtensor" in message, message
    assert f"test_scan.py:{line}" in message, message
    assert "step 3" in message, message


# ---------------------------------------------------------------------------------------------------
# rewrites: save memory, push out invariants and sequence products


def test_save_memory_keeps_only_the_last_row(backend):
    compiled = backend != "reference"
    steps, size = (2_000_000, ()) if compiled else (3_000, (1000,))
    h0, n = T.dvector("h0") if size else T.dscalar("h0"), T.lscalar("n")
    out, _ = arignote.scan(lambda h: h * 0.999 + 1.0, outputs_info=h0, n_steps=n)
    f = compile_(backend, [h0, n], out[-1])
    [node] = scans_of(f)
    assert node.op.keep[0] is not None and node.op.keep[0] <= 2, node.op
    assert "keep" in arignote.debugprint(f, file="str")
    start = np.full(size, 2.0) if size else 2.0
    result = f(start, steps)
    # h_n = 1000 + (h0 - 1000) * 0.999^n
    np.testing.assert_allclose(result, 1000 + (np.asarray(start) - 1000) * 0.999 ** steps, rtol=1e-9)
    assert np.shape(result) == size
    few = f(start, 3)
    np.testing.assert_allclose(few, ((start * 0.999 + 1) * 0.999 + 1) * 0.999 + 1, rtol=1e-12)


def test_save_memory_with_taps_and_a_reduce(backend):
    x0 = T.dvector("x0")
    fib, _ = arignote.scan(lambda a, b: a + b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=30)
    total, _ = arignote.reduce(lambda x_t, acc: acc + x_t, sequences=T.dvector("x"), outputs_info=T.constant(0.0, dtype="float64"))
    f = compile_(backend, [x0], [fib[-1], fib[-2]])
    [node] = scans_of(f)
    assert node.op.keep[0] is not None
    a, b = 0.0, 1.0
    for _ in range(30):
        a, b = b, a + b
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), [b, a])
    assert total.ndim == 0


def test_all_rows_read_are_not_trimmed(backend):
    h0 = T.dscalar("h0")
    out, _ = arignote.scan(lambda h: h + 1, outputs_info=h0, n_steps=5)
    f = compile_(backend, [h0], [out.sum(), out[-1]])
    [node] = scans_of(f)
    assert node.op.keep == (None,)
    np.testing.assert_allclose(f(0.0), [15.0, 5.0])


def test_loop_invariants_move_out_of_the_loop(backend):
    x, w, b = T.dmatrix("x"), T.dmatrix("w"), T.dvector("b")
    out, _ = arignote.scan(lambda x_t, h, w_, b_: T.tanh(x_t + T.dot(h, T.dot(w_, w_)) + T.exp(b_)),
                           sequences=x, outputs_info=T.zeros_like(b), non_sequences=[w, b])
    f = compile_(backend, [x, w, b], out)
    [node] = scans_of(f)
    inner = op_names(node.op.fgraph)
    assert inner.count("Dot") == 1, inner   # dot(h, ...) stays, dot(w, w) moved out
    assert "Exp" not in " ".join(inner), inner
    outer = op_names(f.maker.fgraph)
    assert "Dot" in outer, outer
    bv = np.array([0.1, -0.2, 0.3])
    h, expected = np.zeros(3), []
    for row in X5:
        h = np.tanh(row + h @ (W33 @ W33) + np.exp(bv))
        expected.append(h)
    np.testing.assert_allclose(f(X5, W33, bv), expected, rtol=1e-12)


def test_sequence_products_move_out_of_the_loop(backend):
    x, w, u, h0 = T.dmatrix("x"), T.dmatrix("w"), T.dmatrix("u"), T.dvector("h0")
    out, _ = arignote.scan(lambda x_t, h, w_, u_: T.tanh(T.dot(x_t, w_) + T.dot(h, u_)), sequences=x,
                           outputs_info=h0, non_sequences=[w, u])
    f = compile_(backend, [x, w, u, h0], out)
    [node] = scans_of(f)
    assert op_names(node.op.fgraph).count("Dot") == 1   # only dot(h, u) is left inside
    assert "Dot" in op_names(f.maker.fgraph)
    wv = rng.uniform(-1, 1, (3, 3))
    h, expected = H0, []
    for row in X5:
        h = np.tanh(row @ wv + h @ W33)
        expected.append(h)
    np.testing.assert_allclose(f(X5, wv, W33, H0), expected, rtol=1e-12)
    grad_check(backend, lambda xs, ws: arignote.scan(
        lambda x_t, h, w_: T.tanh(T.dot(x_t, w_) + h), sequences=xs, outputs_info=T.zeros_like(xs[0]),
        non_sequences=ws)[0], [X5, wv])


# ---------------------------------------------------------------------------------------------------
# more of Theano's conventions


def test_n_steps_must_be_an_integer():
    # Theano: "n_steps must be an int"; a float step count is a mistake, not something to truncate
    with pytest.raises((TypeError, ValueError)):
        arignote.scan(lambda h: h + 1, outputs_info=T.dscalar("h0"), n_steps=T.dscalar("n"))


def test_outputs_info_dict_without_taps_is_the_state_itself(backend):
    h0 = T.dvector("h0")
    a, _ = arignote.scan(lambda h: h * 2, outputs_info=dict(initial=h0), n_steps=3)
    b, _ = arignote.scan(lambda h: h * 2, outputs_info=dict(initial=h0, taps=[-1]), n_steps=3)
    c, _ = arignote.scan(lambda x_t: x_t * 2, sequences=dict(input=T.dmatrix("m")), outputs_info=dict(initial=None))
    f = compile_(backend, [h0], [a, b])
    for result in f(H0):
        np.testing.assert_allclose(result, [H0 * 2, H0 * 4, H0 * 8])
    assert c.ndim == 2


def test_only_some_output_taps(backend):
    # taps=[-2] alone: two interleaved recurrences; x0 holds 2 rows
    def build(x0, w):
        out, _ = arignote.scan(lambda s2, w_: s2 * w_ + 1, outputs_info=dict(initial=x0, taps=[-2]),
                               non_sequences=w, n_steps=5)
        return out
    x0, w = T.dvector("x0"), T.dscalar("w")
    values = [1.0, 2.0]
    for _ in range(5):
        values.append(values[-2] * 0.5 + 1)
    np.testing.assert_allclose(compile_(backend, [x0, w], build(x0, w))(np.array([1.0, 2.0]), 0.5), values[2:])
    grad_check(backend, build, [np.array([1.0, 2.0]), np.array(0.5)])


def test_integer_and_float_states_together(backend):
    x, h0 = T.dvector("x"), T.dscalar("h0")
    (count, h), _ = arignote.scan(lambda x_t, c, h: [c + 1, h * c + x_t], sequences=x,
                                  outputs_info=[T.constant(np.int64(0)), h0])
    assert count.dtype == "int64"
    f = compile_(backend, [x, h0], [count, h] + T.grad(T.sum(h), [x, h0]))
    counts, hs, gx, gh0 = f(np.ones(4), 1.0)
    np.testing.assert_array_equal(counts, [1, 2, 3, 4])
    np.testing.assert_allclose(hs, [1.0, 2.0, 5.0, 16.0])     # h_t = h_(t-1) * t + 1
    np.testing.assert_allclose(gx, [10.0, 9.0, 4.0, 1.0])
    assert gh0 == 0.0


def test_truncate_gradient_of_a_non_sequence(backend):
    x, h0, w = T.dvector("x"), T.dscalar("h0"), T.dscalar("w")
    n, k, wv, h0v = len(V6), 2, 0.7, 0.3
    out, _ = arignote.scan(lambda x_t, h, w_: w_ * h + x_t, sequences=x, outputs_info=h0, non_sequences=w,
                           truncate_gradient=k)
    gw = compile_(backend, [x, h0, w], T.grad(out[-1], w))(V6, h0v, wv)
    hs = [h0v]
    for t in range(n):
        hs.append(wv * hs[-1] + V6[t])
    # the last k steps each contribute (d h_(n-1) / d h_t) * h_(t-1)
    np.testing.assert_allclose(gw, sum(wv ** (n - 1 - t) * hs[t] for t in range(n - k, n)), rtol=1e-12)


def test_a_draw_made_before_the_loop_is_the_same_every_step(backend):
    srng = RandomStreams(seed=3)
    u = srng.uniform(size=(2,))
    out, updates = arignote.scan(lambda: u * 1.0, n_steps=3)
    assert not updates  # the draw is made once, outside the loop
    result = compile_(backend, [], out)()
    np.testing.assert_array_equal(result, [result[0]] * 3)


def test_random_streams_in_nested_scans(backend):
    srng = RandomStreams(seed=11)

    def outer():
        inner, inner_updates = arignote.scan(lambda: srng.uniform(size=(2,)), n_steps=2)
        return inner, inner_updates

    out, updates = arignote.scan(outer, n_steps=3)
    assert len(updates) == 1
    f = compile_(backend, [], out, updates=updates)
    first, second = f(), f()
    assert first.shape == (3, 2, 2)
    whole = compile_(backend, [], RandomStreams(seed=11).uniform(size=(24,)))()
    np.testing.assert_allclose(np.concatenate([first.ravel(), second.ravel()]), whole, rtol=1e-7)


def test_updates_of_a_scan_apply_only_when_given_to_function(backend):
    counter = arignote.shared(np.float64(0.0), name="counter")
    x = T.dvector("x")
    out, updates = arignote.scan(lambda x_t: (x_t * 2, {counter: counter + x_t}), sequences=x)
    compile_(backend, [x], out)(np.ones(3))
    assert counter.get_value() == 0.0
    compile_(backend, [x], out, updates=updates)(np.ones(3))
    assert counter.get_value() == 3.0


def test_strict_requires_every_outer_variable_among_non_sequences(backend):
    x, w = T.dvector("x"), T.dscalar("w")
    with pytest.raises(ValueError, match="non_sequences"):
        arignote.scan(lambda x_t: x_t * w, sequences=x, strict=True)
    out, _ = arignote.scan(lambda x_t, w_: x_t * w_, sequences=x, non_sequences=w, strict=True)
    np.testing.assert_allclose(compile_(backend, [x, w], out)(V6, 2.0), V6 * 2)


def test_go_backwards_with_n_steps_reads_the_last_rows(backend):
    x = T.dvector("x")
    out, _ = arignote.scan(lambda x_t: x_t * 1, sequences=x, n_steps=2, go_backwards=True)
    np.testing.assert_allclose(compile_(backend, [x], out)(V6), V6[::-1][:2])
    out, _ = arignote.scan(lambda x_t: (x_t * 1, until(x_t < 0)), sequences=x, go_backwards=True)
    values = np.array([-1.0, 2.0, -3.0, 4.0, 5.0])
    np.testing.assert_allclose(compile_(backend, [x], out)(values), [5.0, 4.0, -3.0])


def test_mapped_rows_of_changing_shape_raise(backend):
    i, x = T.lvector("i"), T.dvector("x")
    out, _ = arignote.scan(lambda i_t, x_: x_[:i_t], sequences=i, non_sequences=x)
    f = compile_(backend, [i, x], out)
    np.testing.assert_allclose(f(np.array([2, 2]), V6), [V6[:2], V6[:2]])
    with pytest.raises(ValueError, match="step 1"):
        f(np.array([1, 2]), V6)


def test_givens_reach_the_variables_the_step_reads(backend):
    data = arignote.shared(np.arange(4.0), name="data")
    x, w = T.dvector("x"), T.dscalar("w")
    out, _ = arignote.scan(lambda x_t, w_: x_t * w_, sequences=x, non_sequences=w)
    np.testing.assert_allclose(compile_(backend, [w], out, givens={x: data * 2})(3.0), np.arange(4.0) * 6)


def test_identity_steps_and_invariant_outputs(backend):
    # outputs that are a step's input passed through, or do not depend on the step at all
    x, h0, w = T.dvector("x"), T.dscalar("h0"), T.dscalar("w")
    same, _ = arignote.scan(lambda h: h, outputs_info=h0, n_steps=3)
    rows, _ = arignote.scan(lambda x_t: x_t, sequences=x)
    (scaled, const), _ = arignote.scan(lambda x_t, w_: [x_t * w_, T.exp(w_)], sequences=x, non_sequences=w)
    fixed, _ = arignote.scan(lambda h, w_: T.exp(w_), outputs_info=h0, non_sequences=w, n_steps=3)
    f = compile_(backend, [x, h0, w], [same, rows, scaled, const, fixed])
    got = f(V6, 2.0, 0.5)
    for result, want in zip(got, [[2.0] * 3, V6, V6 * 0.5, [np.exp(0.5)] * 6, [np.exp(0.5)] * 3]):
        np.testing.assert_allclose(result, want, rtol=1e-12)
    got[1][0] = 99.0  # returned arrays are writeable and are not the input
    assert V6[0] != 99.0


def test_sequence_products_of_a_batch_move_out(backend):
    x, w = T.dtensor3("x"), T.dmatrix("w")
    out, _ = arignote.scan(lambda x_t, h, w_: T.tanh(T.dot(x_t, w_) + h), sequences=x,
                           outputs_info=T.zeros((2, 3), dtype="float64"), non_sequences=w)
    f = compile_(backend, [x, w], out)
    [node] = scans_of(f)
    assert "Dot" not in op_names(node.op.fgraph)
    xv, wv = rng.uniform(-1, 1, (4, 2, 5)), rng.uniform(-1, 1, (5, 3))
    h, expected = np.zeros((2, 3)), []
    for t in range(4):
        h = np.tanh(xv[t] @ wv + h)
        expected.append(h)
    np.testing.assert_allclose(f(xv, wv), expected, rtol=1e-12)


def test_save_memory_does_not_change_what_indexing_an_empty_result_does(backend):
    # without the rewrite out[-1] of a loop of 0 steps is an IndexError, and out[-2] of 1 step too;
    # a rewrite must not turn these errors into the initial state
    h0, n = T.dscalar("h0"), T.lscalar("n")
    out, _ = arignote.scan(lambda h: h + 1, outputs_info=h0, n_steps=n)
    last, before_last = compile_(backend, [h0, n], out[-1]), compile_(backend, [h0, n], out[-2])
    assert last(5.0, 2) == 7.0 and before_last(5.0, 2) == 6.0
    with pytest.raises(IndexError):
        last(5.0, 0)
    with pytest.raises(IndexError):
        before_last(5.0, 1)


def test_the_step_reads_a_shared_variable_before_the_outer_update(backend):
    w = arignote.shared(np.float64(2.0), name="w")
    x = T.dvector("x")
    out, _ = arignote.scan(lambda x_t: x_t * w, sequences=x)
    f = compile_(backend, [x], out, updates=[(w, w + 1)])
    np.testing.assert_allclose(f(V6), V6 * 2)
    np.testing.assert_allclose(f(V6), V6 * 3)
    assert w.get_value() == 4.0


def batch_rnn(x, h0, w, u, truncate=-1):
    out, _ = arignote.scan(lambda x_t, h, w_, u_: T.tanh(T.dot(x_t, w_) + T.dot(h, u_)), sequences=x,
                           outputs_info=h0, non_sequences=[w, u], truncate_gradient=truncate)
    return out


BATCH = [rng.uniform(-1, 1, (4, 2, 3)), rng.uniform(-1, 1, (2, 3)), rng.uniform(-0.7, 0.7, (3, 3)),
         rng.uniform(-0.7, 0.7, (3, 3))]


def test_grad_of_a_batch_rnn(backend):
    # the weights' gradients are sums over steps of products of rows (pushed out of the backward loop)
    grad_check(backend, lambda x, h0, w, u: T.sum(batch_rnn(x, h0, w, u)[-1] ** 2) + T.sum(batch_rnn(x, h0, w, u)),
               BATCH)


@pytest.mark.parametrize("truncate", [-1, 2])
def test_loop_rewrites_do_not_change_results(backend, truncate):
    from arignote import config

    x, h0, w, u = T.dtensor3("x"), T.dmatrix("h0"), T.dmatrix("w"), T.dmatrix("u")
    out = batch_rnn(x, h0, w, u, truncate)
    cost = T.sum(out[-1] ** 2) + T.sum(out * 0.5)
    outputs = [out, out[-1]] + T.grad(cost, [x, h0, w, u])
    saved = config.rewrites
    try:
        config.rewrites = "none"
        plain = arignote.function([x, h0, w, u], outputs, backend="reference")(*BATCH)
    finally:
        config.rewrites = saved
    rewritten = compile_(backend, [x, h0, w, u], outputs)(*BATCH)
    for got, want in zip(rewritten, plain):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if truncate > 0:
        gx = rewritten[2]
        assert np.all(gx[:-truncate] == 0) and np.all(gx[-truncate:] != 0)


def test_gradient_of_a_loop_of_zero_steps_is_zero(backend):
    # a sequence of 0 rows: 0 steps, and every gradient is zero (of the inputs' shapes)
    x, h0, w = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("w")
    out, _ = arignote.scan(lambda x_t, h, w_: T.tanh(T.dot(h, w_) + x_t), sequences=x, outputs_info=h0,
                           non_sequences=w)
    f = compile_(backend, [x, h0, w], T.grad(T.sum(out), [x, h0, w]))
    gx, gh0, gw = f(np.zeros((0, 3)), H0, W33)
    assert gx.shape == (0, 3) and gh0.shape == (3,) and gw.shape == (3, 3)
    assert not gh0.any() and not gw.any()
    gx, gh0, gw = f(X5[:1], H0, W33)
    np.testing.assert_allclose(gh0, W33 @ (1 - np.tanh(H0 @ W33 + X5[0]) ** 2), rtol=1e-12)


def test_gradient_through_a_loop_that_draws_noise_uses_the_same_draws(backend):
    # dropout-like noise inside the step: the gradient must see the forward pass's numbers
    x = T.dmatrix("x")
    srng = RandomStreams(seed=6)

    def step(r):
        u = srng.uniform(size=r.shape)
        return [r * u + srng.normal(size=r.shape) * 0.1, u]

    (out, noise), updates = arignote.scan(step, sequences=x)
    f = compile_(backend, [x], [out, noise, T.grad(T.sum(out ** 2), x)], updates=updates)
    values = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])
    first = f(values)
    second = f(values)
    assert not np.allclose(first[1], second[1])
    for rows, u, g in (first, second):
        np.testing.assert_allclose(g, 2 * rows * u, rtol=1e-12)
