"""Test values (config.compute_test_value, var.tag.test_value): ops evaluated as the graph is built."""

import sys
import warnings

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core import test_values
from arignote.core.grad import Rop, jacobian
from arignote.core.test_values import get_debug_values, get_test_value
from arignote.ifelse import ifelse
from arignote.tensor.shared_randomstreams import RandomStreams

from checks import assert_same


@pytest.fixture
def mode(monkeypatch):
    """Set config.compute_test_value for one test: ``mode("raise")``; restored afterwards."""
    return lambda value: monkeypatch.setattr(config, "compute_test_value", value)


def here():
    """'this file:the caller's line', as error messages name where a variable was built."""
    return f"{__file__}:{sys._getframe(1).f_lineno}"


def matrix_with(value, name="x"):
    x = T.matrix(name)
    x.tag.test_value = value
    return x


# --- Theano's tutorial "Using Test Values": the bad dot is caught on the line that builds it


def test_tutorial_dot_of_mismatched_shapes_raises_where_it_is_built(mode):
    mode("warn")
    W1 = arignote.shared(np.random.rand(2, 10, 10), "W1")
    W2 = arignote.shared(np.random.rand(15, 20), "W2")
    x = T.matrix("x"); x_line = here()  # noqa: E702
    x.tag.test_value = np.random.rand(5, 10)
    func_of_W1 = W1.dimshuffle(2, 0, 1).flatten(2).T  # (20, 10): nothing says so until it runs
    with pytest.raises(ValueError) as error:
        dot_line = here(); h1 = T.dot(x, func_of_W1)  # noqa: E702  (the line that builds the bad node)
        T.dot(h1, W2.T)
    message = str(error.value)
    assert "Dot" in message and "(5, 10)" in message and "(20, 10)" in message, message
    assert f"built at {dot_line} in " in message, message  # the bad node's line...
    assert f"'x' (TensorType(float64, matrix), built at {x_line} in " in message, message  # ...and x's


def test_values_flow_through_ops_shared_variables_and_constants(mode):
    mode("raise")
    x = matrix_with(np.array([[1.0, 2.0], [3.0, 4.0]]))
    w = arignote.shared(np.array([10.0, 20.0]), "w")
    y = (x * 2 + w).sum(axis=0) + T.constant(0.5)
    assert_same(y.tag.test_value, np.array([28.5, 52.5]))
    assert_same(get_test_value(w), w.get_value())
    assert_same(get_test_value(T.constant(3.0)), np.array(3.0))
    assert_same(get_test_value(2), np.array(2))  # a number is a constant
    assert T.argmax(x, axis=1).tag.test_value.tolist() == [1, 1]  # integer outputs keep their dtype
    assert T.argmax(x, axis=1).tag.test_value.dtype == np.int64


def test_a_shared_value_is_read_when_the_op_is_built(mode):
    mode("raise")
    w = arignote.shared(np.ones(2), "w")
    before = w * 3
    w.set_value(np.full(2, 2.0))
    assert before.tag.test_value.tolist() == [3.0, 3.0]
    assert (w * 3).tag.test_value.tolist() == [6.0, 6.0]


def test_off_computes_nothing_and_never_calls_the_machinery(mode, monkeypatch):
    mode("off")

    def forbidden(node):
        raise AssertionError("compute_test_values called while compute_test_value is 'off'")

    monkeypatch.setattr(test_values, "compute_test_values", forbidden)
    x = matrix_with(np.ones((2, 2)))
    y = T.dot(x, T.matrix("unset")) + 1
    assert not hasattr(y.tag, "test_value")
    assert get_debug_values(x) == []


# --- an input without a test value: the setting decides


def test_ignore_skips_silently(mode):
    mode("ignore")
    y = T.matrix("y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = matrix_with(np.ones((2, 2))) + y
    assert not hasattr(z.tag, "test_value")
    with pytest.raises(AttributeError, match="'y' .* has no test value"):
        get_test_value(y)


def test_warn_warns_at_the_users_line_and_skips(mode):
    mode("warn")
    y = T.matrix("y")
    with pytest.warns(UserWarning, match=r"Add .*its input 1, 'y' .* has no test value") as caught:
        line = here(); z = matrix_with(np.ones((2, 2))) + y  # noqa: E702
    assert f"{caught[0].filename}:{caught[0].lineno}" == line
    assert not hasattr(z.tag, "test_value")


def test_raise_names_the_op_and_the_input(mode):
    mode("raise")
    y = T.matrix("y")
    with pytest.raises(ValueError, match=r"cannot compute the test value of Add .*its input 1, 'y' .*"
                                         r"has no test value; give it one with `var.tag.test_value"):
        matrix_with(np.ones((2, 2))) + y


def test_pdb_opens_the_debugger_then_raises(mode, monkeypatch):
    import pdb

    seen = []
    monkeypatch.setattr(pdb, "post_mortem", lambda tb: seen.append(tb))
    mode("pdb")
    with pytest.raises(ValueError, match="has no test value"):
        matrix_with(np.ones((2, 2))) + T.matrix("y")
    with pytest.raises(ValueError, match="not aligned"):
        T.dot(matrix_with(np.ones((2, 3))), matrix_with(np.ones((2, 3))))
    assert len(seen) == 2 and all(tb is not None for tb in seen)
    frames, tb = [], seen[1]
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert frames[-1].endswith("table.py")  # the debugger opens where the reference called NumPy's dot


def test_errors_are_raised_whatever_the_setting(mode):
    for setting in ("ignore", "warn", "raise"):
        mode(setting)
        a = matrix_with(np.ones((2, 3)))
        with pytest.raises(ValueError, match=r"Add .*\(2, 3\).*\(3, 2\).*disagree"):
            a + a.T


def test_a_variable_computed_without_test_values_is_not_reported(mode):
    # only a root without a value is reported: what depends on it was skipped when it was built
    mode("ignore")
    z = T.matrix("y") * 2
    mode("raise")
    w = z + matrix_with(np.ones((2, 2)))
    assert not hasattr(w.tag, "test_value")


def test_a_node_built_by_make_node_gets_its_value_when_a_later_op_needs_it(mode):
    # make_node (rewrites such as grad's stabilization, clone_replace) skips Op.__call__
    mode("raise")
    x = matrix_with(np.full((1, 2), 2.0))
    inner = T.exp(x).owner.op.make_node(x).outputs[0]
    assert not hasattr(inner.tag, "test_value")
    assert_same((inner + 1).tag.test_value, np.exp([[2.0, 2.0]]) + 1)
    assert_same(inner.tag.test_value, np.exp([[2.0, 2.0]]))


class NoImplementation(arignote.core.graph.Op):
    """An op no backend implements (a third-party backend's own op, say)."""

    def make_node(self, x):
        return arignote.core.graph.Apply(self, [x], [x.type()])


def test_an_op_without_a_reference_implementation(mode):
    mode("raise")
    x = matrix_with(np.ones((1, 1)))
    with pytest.raises(ValueError, match="test value of NoImplementation .*no implementation of NoImplementation"):
        NoImplementation()(x)
    mode("ignore")
    assert not hasattr(NoImplementation()(x).tag, "test_value")


def test_get_debug_values(mode):
    mode("raise")
    x, y = matrix_with(np.ones((1, 1))), T.matrix("y")
    assert [v.tolist() for v in get_debug_values(x)] == [[[1.0]]]
    (pair,) = get_debug_values(x, T.constant(2.0))
    assert pair[0].tolist() == [[1.0]] and pair[1] == 2.0
    with pytest.raises(AttributeError, match="argument 1: 'y'"):
        get_debug_values(x, y)
    mode("ignore")
    assert get_debug_values(x, y) == []


# --- setting a test value checks it against the variable's type (Theano's TensorType.filter)


def test_a_test_value_is_converted_to_the_variables_type():
    x = T.fmatrix("x")
    x.tag.test_value = [[1, 2], [3, 4]]  # exact: converted
    assert x.tag.test_value.dtype == np.float32
    x.tag.test_value = np.ones((2, 2), dtype=np.float32)
    i = T.ivector("i")
    i.tag.test_value = np.array([1, 2], dtype=np.int8)  # a safe cast
    assert i.tag.test_value.dtype == np.int32
    s = T.fscalar("s")
    s.tag.test_value = 0.5  # a Python float fits every float type
    assert s.tag.test_value.dtype == np.float32


@pytest.mark.parametrize("make, value, complaint", [
    (T.fmatrix, np.ones((2, 2)), "converting float64 to TensorType.float32, matrix. would lose precision"),
    (T.ivector, [1.5, 2.0], "would lose precision"),
    (T.matrix, np.ones(3), "expected 2 dimension"),
    (T.row, np.ones((3, 2)), "axis 0 .* is broadcastable and must have size 1"),
    (T.matrix, "text", "cannot convert str"),
])
def test_a_test_value_that_does_not_fit_is_refused(make, value, complaint):
    x = make("x")
    with pytest.raises(TypeError, match=f"test value of 'x' .*{complaint}"):
        x.tag.test_value = value
    assert not hasattr(x.tag, "test_value")


def test_a_symbolic_test_value_is_refused():
    x = T.matrix("x")
    with pytest.raises(TypeError, match="must be an array, not the symbolic"):
        x.tag.test_value = T.matrix("y")


def test_tag_is_a_scratchpad_and_clones_do_not_share_it():
    x = T.matrix("x")
    x.tag.note = "anything"
    x.tag.test_value = np.ones((1, 1))
    assert x.tag.note == "anything"
    assert not hasattr(x.clone().tag, "test_value")
    del x.tag.test_value
    assert not hasattr(x.tag, "test_value")


# --- loops and branches


def test_scan_step_sees_the_first_rows_and_the_loop_gets_its_value(mode):
    mode("raise")
    seq = matrix_with(np.arange(12.0).reshape(4, 3), "seq")
    h0 = T.vector("h0")
    h0.tag.test_value = np.zeros(3)
    W = arignote.shared(np.eye(3) * 0.5, "W")
    first_rows = []

    def step(row, h):
        first_rows.append((row.tag.test_value.copy(), h.tag.test_value.copy()))
        return T.tanh(T.dot(row, W) + h)

    hs, _ = arignote.scan(step, sequences=[seq], outputs_info=[h0])
    assert_same(first_rows[0][0], np.arange(3.0))
    assert_same(first_rows[0][1], np.zeros(3))
    expected, h = [], np.zeros(3)
    for row in np.arange(12.0).reshape(4, 3):
        h = np.tanh(row @ (np.eye(3) * 0.5) + h)
        expected.append(h)
    assert_same(hs.tag.test_value, np.array(expected))


def test_scan_taps_and_go_backwards_read_the_rows_theano_reads(mode):
    mode("raise")
    x = T.vector("x")
    x.tag.test_value = np.array([1.0, 2.0, 3.0, 4.0])
    init = T.vector("init")
    init.tag.test_value = np.array([10.0, 20.0])
    seen = []

    def step(x_next, x_now, older, old):
        seen.extend(float(v.tag.test_value) for v in (x_next, x_now, older, old))
        return x_now + older + old

    out, _ = arignote.scan(step, sequences=[dict(input=x, taps=[1, 0])],
                           outputs_info=[dict(initial=init, taps=[-2, -1])], go_backwards=True)
    # backwards, the first step reads tap 1 = x[3], tap 0 = x[2], then the initial rows in order
    assert seen == [4.0, 3.0, 10.0, 20.0]
    assert_same(out.tag.test_value, np.array([3.0 + 10 + 20, 2.0 + 20 + 33, 1.0 + 33 + 55]))


def test_an_error_inside_the_step_is_raised_where_the_step_builds_it(mode):
    mode("raise")
    seq = matrix_with(np.ones((4, 3)), "seq")
    W = arignote.shared(np.ones((2, 5)), "W")  # rows should be 3

    def step(row):
        return T.dot(row, W)
    line = here()
    with pytest.raises(ValueError) as error:
        arignote.scan(step, sequences=[seq])
    message = str(error.value)
    assert "Dot" in message and "(3,)" in message and "(2, 5)" in message, message
    assert f"built at {line.rsplit(':', 1)[0]}:{int(line.rsplit(':', 1)[1]) - 1} in step" in message, message


def test_an_error_at_a_later_step_is_raised_when_the_scan_is_built(mode):
    mode("raise")
    seq = T.vector("seq")
    seq.tag.test_value = np.array([1.0, 1.0, 0.0])
    s0 = T.vector("s0")
    s0.tag.test_value = np.ones(1)
    with pytest.raises(ValueError, match="Scan.*at step 2"):
        # the state's length comes from the row: 1 element, then 1, then 0
        arignote.scan(lambda r, s: s[:T.cast(r, "int64")] * 2, sequences=[seq], outputs_info=[s0])


def test_ifelse_takes_the_branch_the_test_values_choose(mode):
    mode("raise")
    a = T.scalar("a")
    a.tag.test_value = -1.0
    x = T.vector("x")
    x.tag.test_value = np.array([1.0, 2.0])
    z = ifelse(T.gt(a, 0), x * 2, x * 3)
    assert_same(z.tag.test_value, np.array([3.0, 6.0]))
    assert_same(arignote.grad(z.sum(), x).tag.test_value, np.array([3.0, 3.0]))


# --- gradients and compiled functions with test values on


def _model():
    """A small recurrent model, its cost and gradients, built with test values on: (inputs, outputs,
    updates, test values of the inputs)."""
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(5, 3)), np.array([0, 2, 1, 1, 0], dtype="int32")]
    x, y = T.matrix("x"), T.ivector("y")
    for var, value in zip((x, y), values):
        var.tag.test_value = value
    W = arignote.shared(rng.normal(size=(3, 3)) * 0.5, "W")
    U = arignote.shared(rng.normal(size=(3, 3)) * 0.5, "U")
    b = arignote.shared(np.zeros(3), "b")
    hs, _ = arignote.scan(lambda row, h: T.tanh(T.dot(row, W) + T.dot(h, U) + b),
                          sequences=[x], outputs_info=[T.zeros_like(b)])
    p = T.nnet.softmax(hs)
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y]) + 0.01 * T.log(1 + T.exp(W)).sum()
    grads = arignote.grad(cost, [W, U, b])
    updates = [(v, v - 0.1 * g) for v, g in zip((W, U, b), grads)]
    return [x, y], [cost] + grads, updates, values


def test_grad_with_test_values_on_gives_the_gradients_their_values(mode):
    mode("raise")
    inputs, outputs, updates, values = _model()
    for out in outputs + [new for _, new in updates]:
        assert out.tag.test_value is not None
    mode("off")
    expected = arignote.function(inputs, outputs, backend="reference")(*values)
    for out, want in zip(outputs, expected):
        assert_same(out.tag.test_value, want, tol=1e-12)


def test_rop_and_jacobian_with_test_values_on(mode):
    mode("raise")
    x = T.vector("x")
    x.tag.test_value = np.array([0.0, 1.0, 2.0])
    v = T.vector("v")
    v.tag.test_value = np.ones(3)
    y = T.tanh(x) ** 2
    d = 2 * np.tanh([0.0, 1.0, 2.0]) * (1 - np.tanh([0.0, 1.0, 2.0]) ** 2)
    assert_same(get_test_value(Rop(y, x, v)), d)
    assert_same(get_test_value(jacobian(y, x)), np.diag(d))


def test_compiled_functions_are_right_with_test_values_on(mode, backend):
    mode("raise")
    inputs, outputs, updates, values = _model()
    wanted = [o.tag.test_value for o in outputs]
    new_values = [new.tag.test_value for _, new in updates]
    f = arignote.function(inputs, outputs, updates=updates, backend=backend)  # rewrites run with it on
    got = f(*values)
    for out, want in zip(got, wanted):
        assert_same(out, want, tol=1e-9)
    for (var, _), want in zip(updates, new_values):
        assert_same(var.get_value(), want, tol=1e-9)


def test_compiling_never_fails_for_want_of_test_values(mode, backend):
    # inputs without test values: nothing is built on them before compiling, and the rewrites
    # (log1p, softplus, log-softmax) build on the function's own copies, which have none
    mode("raise")
    x = T.vector("x")
    y = T.vector("y")
    mode("off")
    outputs = [T.log(1 + x), T.log(1 + T.exp(y)), T.log(T.nnet.softmax(y))]
    mode("raise")
    f = arignote.function([x, y], outputs, backend=backend)
    a, c = np.array([0.5, 1e-10]), np.array([1.0, -2.0])
    got = f(a, c)
    assert_same(got[0], np.log1p(a))
    assert_same(got[1], np.logaddexp(0, c))
    assert_same(got[2], (c - np.logaddexp.reduce(c))[None])


def test_random_streams_get_a_draw_without_advancing(mode):
    mode("raise")
    streams = RandomStreams(5)
    u = streams.uniform(size=(2, 3))
    draw = u.tag.test_value
    assert draw.shape == (2, 3) and np.all((0 <= draw) & (draw < 1))
    assert_same(arignote.function([], u, backend="reference")(), draw)
