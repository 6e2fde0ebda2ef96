"""grad() and verify_grad(): symbolic reverse mode, checked against values and finite differences."""

import warnings

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import DisconnectedInputError, GradientError, function, grad, shared, verify_grad
from arignote.backends.reference import table
from arignote.core import ops

RNG = np.random.default_rng(1234)


def test_grad_of_one_variable(backend):
    x = T.dvector("x")
    g = grad(T.sum(x ** 2), x)
    assert g.type == x.type
    np.testing.assert_allclose(function([x], g, backend=backend)([1.0, -2.0]), [2.0, -4.0])


def test_grad_of_a_list_returns_a_list(backend):
    x, y = T.dvector("x"), T.dvector("y")
    gs = grad(T.sum(x * y), [x, y])
    assert isinstance(gs, list) and len(gs) == 2
    gx, gy = function([x, y], gs, backend=backend)([1.0, 2.0], [3.0, 4.0])
    np.testing.assert_allclose(gx, [3.0, 4.0])
    np.testing.assert_allclose(gy, [1.0, 2.0])
    (only,) = grad(T.sum(x * y), (x,))
    np.testing.assert_allclose(function([x, y], only, backend=backend)([1.0, 2.0], [3.0, 4.0]), [3.0, 4.0])


def test_grad_of_a_shared_variable(backend):
    w = shared(np.array([1.0, 2.0]), name="w")
    x = T.dvector("x")
    g = grad(T.sum(T.tanh(x * w)), w)
    xv = np.array([0.5, -1.0])
    expected = xv * (1 - np.tanh(xv * w.get_value()) ** 2)
    np.testing.assert_allclose(function([x], g, backend=backend)(xv), expected, rtol=1e-12)


def test_consider_constant(backend):
    x = T.dvector("x")
    z = x * 2
    cost = T.sum(z * x)  # 2 x^2: gradient 4x, or 2x with z held constant
    free = function([x], grad(cost, x), backend=backend)([1.0, 2.0])
    held = function([x], grad(cost, x, consider_constant=[z]), backend=backend)([1.0, 2.0])
    np.testing.assert_allclose(free, [4.0, 8.0])
    np.testing.assert_allclose(held, [2.0, 4.0])


def test_known_grads_without_a_cost(backend):
    x = T.dvector("x")
    z = x * x
    gz = T.dvector("gz")
    g = grad(None, x, known_grads={z: gz})  # 2 x gz
    np.testing.assert_allclose(function([x, gz], g, backend=backend)([1.0, 2.0], [1.0, -2.0]), [2.0, -8.0])
    with pytest.raises(ValueError):
        grad(None, x)


def test_known_grads_add_to_the_cost(backend):
    x = T.dvector("x")
    z = x * 3
    g = grad(T.sum(x), x, known_grads={z: T.ones_like(z)})
    np.testing.assert_allclose(function([x], g, backend=backend)([1.0, 2.0]), [4.0, 4.0])


def test_disconnected_inputs(backend):
    x, y = T.dvector("x"), T.dvector("unrelated_y")
    cost = T.sum(x)
    with pytest.raises(DisconnectedInputError, match="unrelated_y"):
        grad(cost, y)
    with pytest.raises(DisconnectedInputError):
        grad(cost, [x, y])
    with pytest.warns(UserWarning, match="unrelated_y"):
        warned = grad(cost, y, disconnected_inputs="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ignored = grad(cost, y, disconnected_inputs="ignore")
    for g in (warned, ignored):
        value = function([y], g, backend=backend)([5.0, 6.0, 7.0])
        np.testing.assert_array_equal(value, np.zeros(3))
    with pytest.raises(ValueError):
        grad(cost, y, disconnected_inputs="sometimes")


def test_grad_of_a_broadcast_row_is_summed_back(backend):
    r, m = T.drow("r"), T.dmatrix("m")
    g = grad(T.sum((r + m) ** 2), r)
    assert g.broadcastable == (True, False)
    rv, mv = np.ones((1, 3)), np.arange(6.0).reshape(2, 3)
    value = function([r, m], g, backend=backend)(rv, mv)
    assert value.shape == (1, 3)
    np.testing.assert_allclose(value, (2 * (rv + mv)).sum(axis=0, keepdims=True))


def test_grad_of_a_scalar_times_a_matrix_is_summed_back(backend):
    a, m = T.dscalar("a"), T.dmatrix("m")
    ga, gm = grad(T.sum(a * m), [a, m])
    assert ga.ndim == 0 and gm.ndim == 2
    mv = np.arange(6.0).reshape(2, 3)
    va, vm = function([a, m], [ga, gm], backend=backend)(2.0, mv)
    assert va.shape == () and va == mv.sum()
    np.testing.assert_array_equal(vm, np.full((2, 3), 2.0))


def test_grad_of_a_broadcastable_shared_bias(backend):
    b = shared(np.zeros((1, 3)), broadcastable=(True, False), name="b")
    m = T.dmatrix("m")
    g = grad(T.sum((m + b) * m), b)
    mv = np.arange(6.0).reshape(2, 3)
    value = function([m], g, backend=backend)(mv)
    assert value.shape == (1, 3)
    np.testing.assert_allclose(value, mv.sum(axis=0, keepdims=True))


def test_non_scalar_cost_is_refused():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="must be a scalar"):
        grad(x * 2, x)


def test_integer_wrt_gets_zeros(backend):
    x, i = T.dvector("x"), T.ivector("i")
    cost = T.sum(x * T.cast(i, "float64"))
    gx, gi = grad(cost, [x, i])
    vx, vi = function([x, i], [gx, gi], backend=backend)([1.0, 2.0], [3, 4])
    np.testing.assert_array_equal(vx, [3.0, 4.0])
    assert vi.shape == (2,)
    np.testing.assert_array_equal(vi, [0, 0])


def test_gradients_of_float32_variables_are_float32(backend):
    f = T.fvector("f")
    d = T.dscalar("d")  # a float64 operand upcasts the cost, not f's gradient
    w = shared(np.ones(2, dtype="float32"), name="w32")
    cost = T.mean(T.exp(f) * 2 + f ** 2) + T.sum(f * d) + T.sum(w * f * 0.5)
    assert cost.dtype == "float64"
    gf, gw = grad(cost, [f, w])
    assert gf.dtype == "float32" and gw.dtype == "float32"
    vf, vw = function([f, d], [gf, gw], backend=backend)(np.array([0.0, 1.0], dtype="float32"), 3.0)
    assert vf.dtype == np.float32 and vw.dtype == np.float32
    fv = np.array([0.0, 1.0])
    np.testing.assert_allclose(vf, (2 * np.exp(fv) + 2 * fv) / 2 + 3.0 + 0.5, rtol=1e-6)
    np.testing.assert_allclose(vw, 0.5 * fv, rtol=1e-6)


def test_gradients_in_float32_mode(backend, floatX32):
    x = T.vector("x")
    assert x.dtype == "float32"
    g = grad(T.sum(T.sigmoid(x) * 3.0), x)
    assert g.dtype == "float32"
    value = function([x], g, backend=backend)([0.0, 1.0])
    assert value.dtype == np.float32


# --- verify_grad ------------------------------------------------------------------------------------

def test_verify_grad_passes_on_correct_graphs(backend):
    a, b = RNG.random(3) + 0.5, RNG.random(3)
    verify_grad(lambda u, v: T.sum(T.tanh(u) * v + T.log(u) / (v + 1)), [a, b], backend=backend, rng=0)
    verify_grad(lambda m: T.sum(T.dot(m, m.T) * m.sum()), [RNG.random((2, 3))], backend=backend, rng=0)
    verify_grad(lambda s: s ** 3, [np.array(0.7)], backend=backend, rng=0)


def test_verify_grad_handles_fortran_ordered_points(backend):
    transposed = RNG.random((3, 2)).T  # not C-contiguous: perturbing it must still reach the function
    verify_grad(lambda m: T.sum(m * m), [transposed], backend=backend, rng=0)


class WrongSquare(ops.Elemwise):
    """x ** 2 with a deliberately wrong gradient (x instead of 2x)."""

    @staticmethod
    def grad_rule(x, z, g):
        return [g * x]


class RightSquare(ops.Elemwise):
    """The same op with the right gradient: a control for the test below."""

    @staticmethod
    def grad_rule(x, z, g):
        return [g * 2 * x]


def test_verify_grad_raises_gradient_error_on_a_wrong_gradient(monkeypatch):
    # The op is made up for this test, so only the reference backend knows it (for the test's duration).
    for op_class in (WrongSquare, RightSquare):
        monkeypatch.setitem(table.IMPLEMENTATIONS, op_class, table.float_elemwise(np.square))
    point = [RNG.random(4) + 0.5]
    verify_grad(lambda x: RightSquare()(x), point, backend="reference", rng=0)
    with pytest.raises(GradientError, match="disagrees with finite differences"):
        verify_grad(lambda x: WrongSquare()(x), point, backend="reference", rng=0)
    assert issubclass(GradientError, AssertionError)


# --- a training example -----------------------------------------------------------------------------

def test_logistic_regression_learns(backend):
    rng = np.random.default_rng(0)
    n, d = 200, 3
    true_w = np.array([2.0, -3.0, 1.0])
    features = rng.normal(size=(n, d))
    labels = (features @ true_w + 0.5 > 0).astype("float64")  # linearly separable

    X, y = T.dmatrix("X"), T.dvector("y")
    w = shared(np.zeros(d), name="w")
    b = shared(0.0, name="b")
    p = T.sigmoid(T.dot(X, w) + b)
    loss = -T.mean(y * T.log(p) + (1 - y) * T.log(1 - p))
    gw, gb = grad(loss, [w, b])
    learning_rate = 1.0
    train = function([X, y], loss, updates=[(w, w - learning_rate * gw), (b, b - learning_rate * gb)],
                     backend=backend)
    predict = function([X], p > 0.5, backend=backend)

    losses = [float(train(features, labels)) for _ in range(150)]
    assert losses[0] == pytest.approx(np.log(2))
    assert losses[-1] < 0.25 * losses[0]
    assert all(later <= earlier + 1e-12 for earlier, later in zip(losses, losses[1:]))
    accuracy = np.mean(predict(features) == labels.astype(bool))
    assert accuracy > 0.9
    assert np.dot(w.get_value(), true_w) > 0  # it found the right direction
