"""jacobian, hessian, Lop and Rop against Jacobians and Hessians worked out by hand in NumPy, on every
backend.

Each graph below comes with its analytic Jacobians (one per input, shaped f.shape + input.shape); Lop
and Rop are checked against the explicit products with them: Lop(f, x, u) = tensordot(u, J) over f's
axes, Rop(f, x, e) = tensordot(J, e) over x's axes. The analytic Jacobians are themselves checked
against central finite differences, so a slip in this file cannot pass unnoticed.
"""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core.grad import DisconnectedInputError

from checks import symbolic_like


def U(*shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def delta(n):
    return np.eye(n)


# ---------------------------------------------------------------------------------------------------
# Graphs with their analytic Jacobians


def _tanh_wx_jacobians(W, x):
    s = 1 - np.tanh(W @ x) ** 2
    JW = np.einsum("i,ij,k->ijk", s, delta(W.shape[0]), x)
    Jx = s[:, None] * W
    return [JW, Jx]


def _products_jacobians(a, b, c):
    return [np.diag(b * c), np.diag(a * c), np.diag(a * b)]


def _softmax_like_jacobians(v):
    s = softmax(v)
    return [np.diag(s) - np.outer(s, s)]


def _softmax_rows_jacobians(X):
    s = softmax(X, axis=1)
    n, m = X.shape
    return [np.einsum("ik,ij,jl->ijkl", delta(n), s, delta(m)) - np.einsum("ik,ij,il->ijkl", delta(n), s, s)]


def _matrix_product_jacobians(X, Y):
    JX = np.einsum("ik,lj->ijkl", delta(X.shape[0]), Y)
    JY = np.einsum("ik,lj->ijkl", X, delta(Y.shape[1]))
    return [JX, JY]


def _log_sum_exp_jacobians(v):
    return [softmax(v)]


def _mlp_jacobians(W, b, x):
    h = np.tanh(W @ x + b)
    s = 1 - h ** 2
    n = W.shape[0]
    # f = h * h.sum(): df_i/dh_k = delta_ik * sum(h) + h_i
    dfdh = delta(n) * h.sum() + h[:, None]
    dh_dW = np.einsum("k,kp,q->kpq", s, delta(n), x)
    dh_db = np.diag(s)
    dh_dx = s[:, None] * W
    return [np.einsum("ik,kpq->ipq", dfdh, dh_dW), dfdh @ dh_db, dfdh @ dh_dx]


GRAPHS = {
    "tanh_Wx": (lambda W, x: T.tanh(T.dot(W, x)), [U(2, 3), U(3, seed=1)], _tanh_wx_jacobians),
    "products": (lambda a, b, c: a * b * c, [U(3), U(3, seed=1), U(3, seed=2)], _products_jacobians),
    "softmax_like": (lambda v: T.exp(v) / T.sum(T.exp(v)), [U(4, low=-2, high=2)], _softmax_like_jacobians),
    "softmax_rows": (lambda X: T.exp(X) / T.exp(X).sum(axis=1, keepdims=True), [U(2, 3, low=-2, high=2)],
                     _softmax_rows_jacobians),
    "matrix_product": (lambda X, Y: T.dot(X, Y), [U(2, 3), U(3, 2, seed=1)], _matrix_product_jacobians),
    "log_sum_exp": (lambda v: T.log(T.sum(T.exp(v))), [U(5)], _log_sum_exp_jacobians),
    "mlp": (lambda W, b, x: T.tanh(T.dot(W, x) + b) * T.tanh(T.dot(W, x) + b).sum(),
            [U(3, 2), U(3, seed=1), U(2, seed=2)], _mlp_jacobians),
}
NAMES = list(GRAPHS)


def numeric_jacobians(build, values, eps=1e-6):
    """Central finite differences of build's NumPy evaluation (through the reference backend)."""
    inputs = symbolic_like(values)
    f = arignote.function(inputs, build(*inputs), backend="reference")
    out_shape = f(*values).shape
    result = []
    for k, value in enumerate(values):
        J = np.zeros(out_shape + value.shape)
        for index in np.ndindex(value.shape):
            up, down = [np.array(v) for v in values], [np.array(v) for v in values]
            up[k][index] += eps
            down[k][index] -= eps
            J[(Ellipsis,) + index] = (f(*up) - f(*down)) / (2 * eps)
        result.append(J)
    return result


@pytest.mark.parametrize("name", NAMES)
def test_analytic_jacobians_of_this_file_are_right(name):
    build, values, jacobians = GRAPHS[name]
    for analytic, numeric in zip(jacobians(*values), numeric_jacobians(build, values)):
        np.testing.assert_allclose(analytic, numeric, atol=1e-8)


# ---------------------------------------------------------------------------------------------------
# jacobian


@pytest.mark.parametrize("name", NAMES)
def test_jacobian_wrt_a_list(name, backend):
    build, values, jacobians = GRAPHS[name]
    inputs = symbolic_like(values)
    result = T.jacobian(build(*inputs), inputs)
    assert isinstance(result, list) and len(result) == len(inputs)
    got = arignote.function(inputs, result, backend=backend)(*values)
    for k, (g, e) in enumerate(zip(got, jacobians(*values))):
        assert g.shape == e.shape and g.dtype == "float64", (k, g.shape, e.shape)
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=f"input {k}")


@pytest.mark.parametrize("name", NAMES)
def test_jacobian_wrt_each_input(name, backend):
    build, values, jacobians = GRAPHS[name]
    inputs = symbolic_like(values)
    output = build(*inputs)
    for k, (wrt, expected) in enumerate(zip(inputs, jacobians(*values))):
        J = T.jacobian(output, wrt)
        assert not isinstance(J, list) and J.ndim == output.ndim + wrt.ndim
        got = arignote.function(inputs, J, backend=backend, on_unused_input="ignore")(*values)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"input {k}")


def test_jacobian_vector_wrt_vector(backend):
    v = T.vector("v")
    f = arignote.function([v], T.jacobian(v ** 2 + 3 * v[::-1], v), backend=backend)
    x = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(f(x), np.diag(2 * x) + 3 * np.eye(3)[::-1])
    g = arignote.function([v], T.jacobian(v[:2] * 3, v), backend=backend)
    np.testing.assert_array_equal(g(x), [[3, 0, 0], [0, 3, 0]])


def test_jacobian_of_a_matrix_expression_wrt_a_matrix(backend):
    X = T.matrix("X")
    x = U(2, 3)
    J = arignote.function([X], T.jacobian(X ** 2, X), backend=backend)(x)
    expected = np.einsum("ik,jl->ijkl", np.eye(2), np.eye(3)) * 2 * x[:, :, None, None]
    np.testing.assert_allclose(J, expected, rtol=1e-14)
    K = arignote.function([X], T.jacobian(X.sum(axis=0), X), backend=backend)(x)
    np.testing.assert_array_equal(K, np.einsum("kj,i->kij", np.eye(3), np.ones(2)))


def test_jacobian_of_a_scalar_is_the_gradient(backend):
    v = T.vector("v")
    J = T.jacobian(T.sum(v ** 3), v)
    assert J.ndim == 1
    np.testing.assert_allclose(arignote.function([v], J, backend=backend)(np.array([1.0, 2.0])), [3.0, 12.0])


def test_jacobian_float32_and_disconnected_inputs(backend):
    v, w = T.fvector("v"), T.fvector("w")
    J = T.jacobian(v * 2, v)
    assert J.dtype == "float32"
    np.testing.assert_array_equal(arignote.function([v], J, backend=backend)(np.ones(2, "float32")),
                                  2 * np.eye(2, dtype="float32"))
    with pytest.raises(DisconnectedInputError):
        T.jacobian(v * 2, w)
    Jw = T.jacobian(v * 2, w, disconnected_inputs="ignore")
    got = arignote.function([v, w], Jw, backend=backend, on_unused_input="ignore")(np.ones(2, "float32"),
                                                                                   np.ones(3, "float32"))
    np.testing.assert_array_equal(got, np.zeros((2, 3)))


def test_jacobian_consider_constant(backend):
    v = T.vector("v")
    c = v * 2
    J = T.jacobian(c * v, v, consider_constant=[c])
    x = np.array([1.0, -3.0])
    np.testing.assert_array_equal(arignote.function([v], J, backend=backend)(x), np.diag(2 * x))


# ---------------------------------------------------------------------------------------------------
# hessian


def _poly_case(id, build, values, hessian):
    return pytest.param(build, values, hessian, id=id)


A = np.array([[1.0, 2.0, 0.0], [-1.0, 3.0, 4.0], [0.5, 0.0, -2.0]])

HESSIANS = [
    _poly_case("cubic", lambda v: T.sum(v ** 3) + v[0] * v[1] * v[2], [np.array([1.0, -2.0, 0.5])],
               lambda v: [np.diag(6 * v) + np.array([[0, v[2], v[1]], [v[2], 0, v[0]], [v[1], v[0], 0]])]),
    _poly_case("quadratic_form", lambda v: T.dot(v, T.dot(A, v)), [U(3)], lambda v: [A + A.T]),
    _poly_case("squared_norm_times_sum", lambda v: T.sum(v ** 2) * T.sum(v), [U(4)],
               lambda v: [2 * np.sum(v) * np.eye(4) + 2 * (v[:, None] + v[None, :])]),
    _poly_case("quartic_2d", lambda v: v[0] ** 4 + v[0] ** 2 * v[1] - 3 * v[1] ** 2, [np.array([0.5, 2.0])],
               lambda v: [np.array([[12 * v[0] ** 2 + 2 * v[1], 2 * v[0]], [2 * v[0], -6.0]])]),
    _poly_case("matrix_cubic", lambda X: T.sum(X ** 3) + T.sum(X) ** 2, [U(2, 2)],
               lambda X: [np.einsum("ik,jl->ijkl", np.eye(2), np.eye(2)) * 6 * X[:, :, None, None] + 2]),
    _poly_case("two_vectors", lambda v, w: T.sum(v ** 2 * w) + T.dot(v, w) ** 2, [U(3), U(3, seed=1)],
               lambda v, w: [np.diag(2 * w) + 2 * np.outer(w, w), 2 * np.outer(v, v)]),
    _poly_case("linear_in_one", lambda v, w: T.sum(v ** 2 * w), [U(3), U(3, seed=1)],
               lambda v, w: [np.diag(2 * w), np.zeros((3, 3))]),
]


@pytest.mark.parametrize("build, values, hessian", HESSIANS)
def test_hessian_of_polynomials(build, values, hessian, backend):
    inputs = symbolic_like(values)
    cost = build(*inputs)
    expected = hessian(*values)
    H = T.hessian(cost, inputs)
    assert isinstance(H, list) and len(H) == len(inputs)
    got = arignote.function(inputs, H, backend=backend)(*values)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == values[k].shape * 2
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, err_msg=f"input {k}")
    single = T.hessian(cost, inputs[0])
    assert not isinstance(single, list)
    got = arignote.function(inputs, single, backend=backend, on_unused_input="ignore")(*values)
    np.testing.assert_allclose(got, expected[0], rtol=1e-12, atol=1e-12)


def test_hessian_of_a_non_scalar_is_refused():
    v = T.vector("v")
    with pytest.raises(TypeError, match="scalar"):
        T.hessian(v ** 2, v)


def test_hessian_is_symmetric_and_matches_the_jacobian_of_the_gradient(backend):
    build, values, _ = GRAPHS["log_sum_exp"]
    (v,) = symbolic_like(values)
    H, JG = arignote.function([v], [T.hessian(build(v), v), T.jacobian(T.grad(build(v), v), v)],
                              backend=backend)(*values)
    s = softmax(values[0])
    np.testing.assert_allclose(H, np.diag(s) - np.outer(s, s), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(H, H.T, atol=1e-15)
    np.testing.assert_array_equal(H, JG)


# ---------------------------------------------------------------------------------------------------
# Lop and Rop


def _points(values_like, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, np.shape(v)) for v in values_like]


@pytest.mark.parametrize("name", NAMES)
def test_lop_is_u_times_the_jacobian(name, backend):
    build, values, jacobians = GRAPHS[name]
    inputs = symbolic_like(values)
    output = build(*inputs)
    out_value = arignote.function(inputs, output, backend="reference")(*values)
    (u_value,) = _points([out_value], seed=3)
    u = output.type("u")
    result = T.Lop(output, inputs, u)
    assert isinstance(result, list) and len(result) == len(inputs)
    got = arignote.function(inputs + [u], result, backend=backend)(*values, u_value)
    for k, (g, J) in enumerate(zip(got, jacobians(*values))):
        expected = np.tensordot(u_value, J, axes=out_value.ndim)
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12, err_msg=f"input {k}")
    single = T.Lop(output, inputs[0], u)
    got = arignote.function(inputs + [u], single, backend=backend, on_unused_input="ignore")(*values, u_value)
    np.testing.assert_allclose(got, np.tensordot(u_value, jacobians(*values)[0], axes=out_value.ndim),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_rop_is_the_jacobian_times_e(name, backend):
    build, values, jacobians = GRAPHS[name]
    inputs = symbolic_like(values)
    output = build(*inputs)
    e_values = _points(values, seed=4)
    es = [i.type(f"e{k}") for k, i in enumerate(inputs)]
    result = T.Rop(output, inputs, es)
    assert not isinstance(result, list) and result.ndim == output.ndim
    got = arignote.function(inputs + es, result, backend=backend)(*values, *e_values)
    Js = jacobians(*values)
    expected = sum(np.tensordot(J, e, axes=e.ndim) for J, e in zip(Js, e_values))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    for k, (wrt, e, e_value, J) in enumerate(zip(inputs, es, e_values, Js)):
        got = arignote.function(inputs + [e], T.Rop(output, wrt, e), backend=backend,
                                on_unused_input="ignore")(*values, e_value)
        np.testing.assert_allclose(got, np.tensordot(J, e_value, axes=e_value.ndim), rtol=1e-10, atol=1e-12,
                                   err_msg=f"input {k}")


def test_lop_and_rop_of_several_expressions(backend):
    W, x = T.matrix("W"), T.vector("x")
    Wv, xv = U(2, 3), U(3, seed=1)
    f1, f2 = T.tanh(T.dot(W, x)), x * x
    u1, u2 = T.vector("u1"), T.vector("u2")
    u1v, u2v = U(2, seed=2), U(3, seed=3)
    JW, Jx = _tanh_wx_jacobians(Wv, xv)
    gW, gx = arignote.function([W, x, u1, u2], T.Lop([f1, f2], [W, x], [u1, u2]), backend=backend)(Wv, xv, u1v, u2v)
    np.testing.assert_allclose(gW, np.tensordot(u1v, JW, axes=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, u1v @ Jx + u2v * 2 * xv, rtol=1e-10, atol=1e-12)
    e = T.vector("e")
    ev = U(3, seed=5)
    r1, r2 = arignote.function([W, x, e], T.Rop([f1, f2], x, e), backend=backend)(Wv, xv, ev)
    np.testing.assert_allclose(r1, Jx @ ev, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r2, 2 * xv * ev, rtol=1e-10, atol=1e-12)


def test_rop_of_an_integer_output_is_zero(backend):
    x, e = T.vector("x"), T.vector("e")
    r = T.Rop([T.argmax(x), x * 3], x, e)
    r0, r1 = arignote.function([x, e], r, backend=backend)(np.array([1.0, 5.0]), np.array([2.0, -1.0]))
    np.testing.assert_array_equal(r0, 0.0)
    np.testing.assert_array_equal(r1, [6.0, -3.0])


def test_lop_and_rop_argument_errors():
    x, y = T.vector("x"), T.vector("y")
    with pytest.raises(ValueError, match="Lop"):
        T.Lop([x * 2, x * 3], x, [y])
    with pytest.raises(ValueError, match="Rop"):
        T.Rop(x * 2, [x, y], [y])
