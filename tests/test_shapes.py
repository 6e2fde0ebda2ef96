"""Shape ops (flatten reshape dimshuffle transpose arange alloc zeros ones fill join stack specify_shape
squeeze expand_dims broadcast patterns repeat tile outer): values, dtypes, errors and gradients, on
every backend, against NumPy.

Most tests are one line: ``case(id, build, numpy_expected, *values)``; ``check`` compares the backend
with the reference and with NumPy (dtype included) and runs verify_grad when inputs and output are
floats. Ops that only move, copy or drop elements also have their gradients compared with NumPy's
(``selection_grads``: the same NumPy function applied to arrays of element numbers).
"""

import numpy as np
import pytest

import arignote
import arignote.tensor as T

from checks import assert_same, check, freeze_arrays, selection_grads, symbolic_like, weighted_grads


def U(*shape, seed=0, low=-2.0, high=2.0, dtype="float64"):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


M, N = U(3, 4), U(3, 4, seed=1)
M2 = U(2, 4, seed=2)
T3 = U(2, 3, 4, seed=3)
V, W3 = U(4, seed=4), U(3, seed=5)
S = np.array(1.5)
ROW, COL = U(1, 4, seed=6), U(3, 1, seed=7)
F32 = U(3, 4, seed=8, dtype="float32")
I32 = np.arange(12, dtype="int32").reshape(3, 4)
freeze_arrays(globals())  # a backend must never write into its inputs


def case(id, build, expected, *values, grad=True, select=True):
    return pytest.param(build, expected, values, grad, select, id=id)


def run_case(build, expected, values, grad, select, backend):
    want = np.asarray(expected(*values))
    check(build, list(values), backend, expected=want, grad=grad)
    if grad and select and want.dtype.kind == "f" and any(np.asarray(v).dtype.kind == "f" for v in values):
        grads, weights = weighted_grads(build, list(values), backend)
        for k, (g, e) in enumerate(zip(grads, selection_grads(expected, values, weights))):
            assert_same(g, e.astype(g.dtype), f"gradient of input {k}")


# ---------------------------------------------------------------------------------------------------
# flatten, reshape, dimshuffle, transpose

LAYOUT = [
    case("flatten", T.flatten, np.ravel, T3),
    case("flatten_ndim2", lambda a: T.flatten(a, 2), lambda a: a.reshape(2, 12), T3),
    case("flatten_ndim3_is_identity", lambda a: T.flatten(a, 3), lambda a: a, T3),
    case("flatten_outdim", lambda a: T.flatten(a, outdim=2), lambda a: a.reshape(2, 12), T3),
    case("flatten_method", lambda a: a.flatten(), np.ravel, T3),
    case("flatten_method_2", lambda a: a.flatten(2), lambda a: a.reshape(2, 12), T3),
    case("flatten_method_outdim", lambda a: a.flatten(outdim=2), lambda a: a.reshape(3, 4), M),
    case("flatten_vector", lambda a: a.flatten(), lambda a: a, V),
    case("flatten_scalar", lambda a: T.flatten(a), lambda a: a.reshape(1), S),
    case("flatten_transposed", lambda a: a.T.flatten(), lambda a: a.T.ravel(), M),
    case("flatten_int", lambda a: a.flatten(), np.ravel, I32),
    case("reshape_minus1_last", lambda a: a.reshape((4, -1)), lambda a: a.reshape(4, -1), T3),
    case("reshape_minus1_first", lambda a: a.reshape((-1, 2, 2)), lambda a: a.reshape(-1, 2, 2), T3),
    case("reshape_symbolic_first", lambda a: a.reshape((a.shape[0], -1)), lambda a: a.reshape(2, -1), T3),
    case("reshape_symbolic_product", lambda a: a.reshape((a.shape[0] * a.shape[1], a.shape[2])),
         lambda a: a.reshape(6, 4), T3),
    case("reshape_symbolic_last", lambda a: a.reshape((-1, a.shape[-1])), lambda a: a.reshape(-1, 4), T3),
    case("reshape_like_other", lambda a, b: a.reshape(b.shape), lambda a, b: a.reshape(b.shape), M, U(2, 6)),
    case("reshape_fn_varargs", lambda a: T.reshape(a, (2, 6)).reshape(12), lambda a: a.reshape(12), M),
    case("dimshuffle_x_front", lambda a: a.dimshuffle("x", 0), lambda a: a[None], V),
    case("dimshuffle_x_back", lambda a: a.dimshuffle(0, "x"), lambda a: a[:, None], V),
    case("dimshuffle_conv_bias", lambda a: a.dimshuffle("x", 0, "x", "x"), lambda a: a[None, :, None, None], W3),
    case("dimshuffle_permute_x", lambda a: a.dimshuffle(2, "x", 0, 1), lambda a: a.transpose(2, 0, 1)[:, None], T3),
    case("dimshuffle_list_arg", lambda a: a.dimshuffle([1, 0]), lambda a: a.T, M),
    case("dimshuffle_fn", lambda a: T.dimshuffle(a, ("x", 1, 0)), lambda a: a.T[None], M),
    case("dimshuffle_drop_broadcastable", lambda a: T.addbroadcast(a, 0).dimshuffle(1), lambda a: a[0], ROW),
    case("dimshuffle_broadcast_add", lambda a, b: a.dimshuffle(0, "x") + b, lambda a, b: a[:, None] + b, W3, M,
         select=False),
    case("transpose_T", lambda a: a.T, lambda a: a.T, M),
    case("transpose_T_3d", lambda a: a.T, lambda a: a.T, T3),
    case("transpose_vector", lambda a: a.T, lambda a: a, V),
    case("transpose_fn_axes", lambda a: T.transpose(a, (1, 2, 0)), lambda a: a.transpose(1, 2, 0), T3),
    case("transpose_method_axes", lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1), T3),
    case("transpose_method_tuple", lambda a: a.transpose((0, 2, 1)), lambda a: a.transpose(0, 2, 1), T3),
    case("transpose_int", lambda a: a.T, lambda a: a.T, I32),
]


@pytest.mark.parametrize("build, expected, values, grad, select", LAYOUT)
def test_layout(build, expected, values, grad, select, backend):
    run_case(build, expected, values, grad, select, backend)


def test_layout_types():
    t = T.tensor3()
    assert T.flatten(t).broadcastable == (False,) and t.flatten(2).ndim == 2
    assert T.vector().dimshuffle("x", 0).broadcastable == (True, False)
    assert t.dimshuffle(2, "x", 0, 1).broadcastable == (False, True, False, False)
    assert T.col().T.broadcastable == (True, False)
    assert t.reshape((t.shape[0], -1)).ndim == 2
    assert T.matrix().reshape((3, 1)).broadcastable == (False, True)


@pytest.mark.parametrize("ndim", [0, 4])
def test_flatten_ndim_out_of_range(ndim):
    with pytest.raises(ValueError, match="flatten"):
        T.flatten(T.tensor3(), ndim)


def test_dimshuffle_cannot_drop_a_non_broadcastable_axis():
    with pytest.raises(ValueError, match="broadcastable"):
        T.matrix().dimshuffle(1)


def test_reshape_with_a_symbolic_size_input(backend):
    n = T.lscalar("n")
    x = T.matrix("x")
    f = arignote.function([x, n], x.reshape((n, -1)), backend=backend)
    np.testing.assert_array_equal(f(M, 6), M.reshape(6, -1))
    np.testing.assert_array_equal(f(M, 2), M.reshape(2, -1))
    with pytest.raises(ValueError, match="Reshape"):
        f(M, 5)


VIEWS = {  # views whose reshape must copy (the same slicing on a variable and on an array)
    "steps_reversed": lambda x: x[::-1],  # whole steps in a row (an LSTM's states fed backwards)
    "batch_reversed": lambda x: x[:, ::-1],
    "units_reversed": lambda x: x[:, :, ::-1],  # no run of unit stride left
    "every_other_step": lambda x: x[::2],
    "a_length_one_axis": lambda x: x[::-1, 1:2],
    "transposed": lambda x: x.T,
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "int16", "bool"])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_reshape_copies_views_of_any_layout(backend, view, dtype):
    """A reshape that cannot be a view copies its input's elements in order, whatever the strides of
    the view it reshapes and of the array passed (the C backend merges the axes that run on)."""
    x = T.tensor3("x", dtype=dtype)
    f = arignote.function([x], VIEWS[view](x).reshape((-1, 3)), backend=backend)
    value = (np.arange(6 * 4 * 3) % 120).reshape(6, 4, 3).astype(dtype)
    for passed in (value, value[:, ::-1], value[::-2]):
        got = f(passed)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, VIEWS[view](passed).reshape(-1, 3))


# ---------------------------------------------------------------------------------------------------
# arange


def _arange_case(id, build, expected, *values):
    return case(id, build, expected, *values, grad=False)


ARANGE = [
    _arange_case("int_stop", lambda: T.arange(5), lambda: np.arange(5, dtype="int64")),
    _arange_case("int_start_stop_step", lambda: T.arange(2, 11, 3), lambda: np.arange(2, 11, 3, dtype="int64")),
    _arange_case("int_negative_step", lambda: T.arange(10, 0, -3), lambda: np.arange(10, 0, -3, dtype="int64")),
    _arange_case("int_empty", lambda: T.arange(3, 1), lambda: np.arange(3, 1, dtype="int64")),
    _arange_case("float_stop", lambda: T.arange(2.5), lambda: np.arange(2.5)),
    _arange_case("float_step", lambda: T.arange(0, 1, 0.25), lambda: np.arange(0, 1, 0.25)),
    _arange_case("float_negative_step", lambda: T.arange(1.0, -1.0, -0.5), lambda: np.arange(1.0, -1.0, -0.5)),
    _arange_case("dtype_arg", lambda: T.arange(4, dtype="float32"), lambda: np.arange(4, dtype="float32")),
    _arange_case("dtype_int32", lambda: T.arange(1, 7, 2, dtype="int32"), lambda: np.arange(1, 7, 2, dtype="int32")),
    _arange_case("symbolic_stop", lambda n: T.arange(n), lambda n: np.arange(n, dtype="int64"), np.array(4, "int64")),
    _arange_case("symbolic_int32_stop", lambda n: T.arange(n), lambda n: np.arange(n, dtype="int64"), np.array(3, "int32")),
    _arange_case("symbolic_negative_step", lambda a, b, s: T.arange(a, b, s),
                 lambda a, b, s: np.arange(a, b, s, dtype="int64"), np.array(5), np.array(-2), np.array(-2)),
    _arange_case("symbolic_float", lambda a: T.arange(a, 0.0, -0.5), lambda a: np.arange(a, 0.0, -0.5), np.array(2.0)),
    _arange_case("symbolic_float32_stop", lambda a: T.arange(a), lambda a: np.arange(a, dtype="float32"),
                 np.array(3.0, "float32")),
    _arange_case("symbolic_float32_weak_step", lambda a: T.arange(0, a, 0.5),
                 lambda a: np.arange(0, a, 0.5, dtype="float32"), np.array(2.0, "float32")),
    _arange_case("symbolic_shape", lambda x: T.arange(x.shape[0]), lambda x: np.arange(3, dtype="int64"), M),
]


@pytest.mark.parametrize("build, expected, values, grad, select", ARANGE)
def test_arange(build, expected, values, grad, select, backend):
    run_case(build, expected, values, grad, select, backend)


def test_arange_dtype_rules(floatX32):
    assert T.arange(5).dtype == "int64"
    assert T.arange(T.iscalar()).dtype == "int64"
    assert T.arange(T.bscalar(), 10).dtype == "int64"
    assert T.arange(2.5).dtype == "float32"  # floatX
    assert T.arange(T.fscalar()).dtype == "float32"
    assert T.arange(T.dscalar()).dtype == "float64"
    assert T.arange(T.lscalar(), 5.0).dtype == "float32"
    assert T.arange(3, dtype="int16").dtype == "int16"
    assert T.arange(5).broadcastable == (False,)


def test_arange_step_zero_is_an_error(backend):
    with pytest.raises(ValueError, match="step"):
        T.arange(0, 5, 0)
    with pytest.raises(ValueError, match="step"):
        T.arange(0.0, 1.0, 0.0)
    step = T.lscalar("step")
    f = arignote.function([step], T.arange(0, 5, step), backend=backend)
    np.testing.assert_array_equal(f(2), [0, 2, 4])
    with pytest.raises(ValueError, match="step"):
        f(0)


def test_arange_refuses_non_scalars():
    with pytest.raises(TypeError, match="arange"):
        T.arange(T.lvector())


# ---------------------------------------------------------------------------------------------------
# alloc, zeros, ones, zeros_like, ones_like, fill

ALLOC = [
    case("alloc_scalar", lambda s: T.alloc(s, 2, 3), lambda s: np.full((2, 3), s), S),
    case("alloc_python_number", lambda x: T.alloc(2.5, x.shape[0], 2) + x[:, :2],
         lambda x: 2.5 + x[:, :2], M, select=False),
    case("alloc_vector_rows", lambda v: T.alloc(v, 3, 4), lambda v: np.broadcast_to(v, (3, 4)), V),
    case("alloc_vector_3d", lambda v: T.alloc(v, 2, 3, 4), lambda v: np.broadcast_to(v, (2, 3, 4)), V),
    case("alloc_col_stretches", lambda c: T.alloc(T.addbroadcast(c, 1), 3, 5), lambda c: np.broadcast_to(c, (3, 5)),
         COL),
    case("alloc_row_stretches", lambda r: T.alloc(T.addbroadcast(r, 0), 2, 3, 4),
         lambda r: np.broadcast_to(r, (2, 3, 4)), ROW),
    case("alloc_matrix_same_shape", lambda m: T.alloc(m, 2, 3, 4), lambda m: np.broadcast_to(m, (2, 3, 4)), M),
    case("alloc_symbolic_sizes", lambda v, x: T.alloc(v, x.shape[0] * 2, x.shape[1]),
         lambda v, x: np.broadcast_to(v, (6, 4)), V, M),
    case("alloc_int", lambda v: T.alloc(v, 2, 4), lambda v: np.broadcast_to(v, (2, 4)), I32[0]),
    case("alloc_empty", lambda v: T.alloc(v, 0, 4), lambda v: np.broadcast_to(v, (0, 4)), V),
    case("zeros_shape", lambda x: T.zeros(x.shape), lambda x: np.zeros(x.shape), M, select=False),
    case("zeros_tuple_symbolic", lambda x: T.zeros((x.shape[1], 2)), lambda x: np.zeros((4, 2)), M, select=False),
    case("zeros_int_dtype", lambda x: T.zeros((x.shape[0],), dtype="int32"), lambda x: np.zeros(3, "int32"), M),
    case("zeros_constant", lambda: T.zeros((2, 3)), lambda: np.zeros((2, 3))),
    case("zeros_int_size", lambda: T.zeros(3, dtype="int8"), lambda: np.zeros(3, "int8")),
    case("ones_shape", lambda x: T.ones(x.shape) * x, lambda x: x.copy(), T3),
    case("ones_symbolic_scalar_size", lambda n: T.ones(n), lambda n: np.ones(int(n)), np.array(3, "int64")),
    case("ones_bool", lambda x: T.ones((x.shape[0], 1), dtype="bool"), lambda x: np.ones((3, 1), bool), M),
    case("zeros_like", T.zeros_like, np.zeros_like, M, select=False),
    case("zeros_like_dtype", lambda x: T.zeros_like(x, dtype="int8"), lambda x: np.zeros_like(x, dtype="int8"), M),
    case("ones_like", T.ones_like, np.ones_like, F32, select=False),
    case("ones_like_int", T.ones_like, np.ones_like, I32),
    case("ones_like_dtype", lambda x: T.ones_like(x, dtype="float32"), lambda x: np.ones(x.shape, "float32"), I32),
    case("fill_python_number", lambda x: T.fill(x, 3.0), lambda x: np.full_like(x, 3.0), M, select=False),
    case("fill_scalar_variable", lambda x, s: T.fill(x, s), lambda x, s: np.full(x.shape, s), M, S),
    case("fill_row", lambda x, r: T.fill(x, T.addbroadcast(r, 0)), lambda x, r: np.broadcast_to(r, x.shape), M, ROW),
    case("second_is_fill", lambda x, s: T.second(x, s), lambda x, s: np.full(x.shape, s), T3, S),
]


@pytest.mark.parametrize("build, expected, values, grad, select", ALLOC)
def test_alloc_and_fill(build, expected, values, grad, select, backend):
    run_case(build, expected, values, grad, select, backend)


def test_zeros_ones_fill_types(floatX32):
    x = T.matrix("x", dtype="float64")
    assert T.zeros((2, 3)).dtype == "float32" and T.ones(x.shape).dtype == "float32"
    assert T.zeros_like(x).dtype == "float64" and T.ones_like(T.imatrix()).dtype == "int32"
    assert T.zeros((1, x.shape[0])).broadcastable == (True, False)
    assert T.alloc(T.col(), 3, 4).broadcastable == (False, False)
    assert T.alloc(T.scalar(), 1, 4).broadcastable == (True, False)
    assert T.zeros(x.shape).ndim == 2


def test_alloc_value_axis_disagreeing_is_an_error(backend):
    v, m = T.vector("v"), T.matrix("m")
    f = arignote.function([v], T.alloc(v, 3, 5), backend=backend)
    with pytest.raises(ValueError, match="Alloc") as info:
        f(V)  # 4 elements for an axis of 5
    assert "(3, 5)" in str(info.value) and "(1, 4)" in str(info.value)
    g = arignote.function([m], T.alloc(m, 3, 4), backend=backend)
    with pytest.raises(ValueError, match="Alloc"):
        g(ROW)  # a size-1 axis of a matrix is not broadcastable: it does not stretch
    np.testing.assert_array_equal(g(M), M)


def test_a_negative_alloc_size_is_an_error_showing_every_size(backend):
    n = T.lscalar("n")
    f = arignote.function([n], T.alloc(0.0, n, 3, 2), backend=backend)
    with pytest.raises(ValueError, match=r"Alloc.*negative size in shape \(-1, 3, 2\)"):
        f(-1)


def test_alloc_value_with_too_many_axes():
    with pytest.raises(TypeError, match="alloc"):
        T.alloc(T.tensor3(), 3, 4)


def test_alloc_and_fill_gradients_against_numpy(backend):
    """Each value element collects the output gradient of every position it was copied to."""
    (gv, gx), w = weighted_grads(lambda v, x: T.alloc(v, x.shape[0] * 2, 4), [V, M], backend)
    np.testing.assert_allclose(gv, w.sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(gx, np.zeros_like(M))
    (gx, gs), w = weighted_grads(lambda x, s: T.fill(x, s) * x, [M, S], backend)
    np.testing.assert_allclose(gs, (w * M).sum(), rtol=1e-12)
    np.testing.assert_allclose(gx, w * S, rtol=1e-12)
    (gc,), w = weighted_grads(lambda c: T.alloc(T.addbroadcast(c, 1), 2, 3, 5), [COL], backend)
    np.testing.assert_allclose(gc, w.sum(axis=(0, 2))[:, None], rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# join, concatenate, stack

JOIN = [
    case("join_0", lambda a, b: T.join(0, a, b), lambda a, b: np.concatenate([a, b], 0), M, M2),
    case("join_1", lambda a, b: T.join(1, a, b), lambda a, b: np.concatenate([a, b], 1), M, N),
    case("join_negative_axis", lambda a, b: T.join(-1, a, b), lambda a, b: np.concatenate([a, b], -1), M, COL),
    case("join_three", lambda a, b, c: T.join(0, a, b, c), lambda a, b, c: np.concatenate([a, b, c]), V, W3, V),
    case("join_list_form", lambda a, b: T.join(0, [a, b]), lambda a, b: np.concatenate([a, b]), M, M2),
    case("join_one", lambda a: T.join(0, a), lambda a: a.copy(), M),
    case("join_3d", lambda a, b: T.join(2, a, b), lambda a, b: np.concatenate([a, b], 2), T3, T3[:, :, :1]),
    case("join_with_empty", lambda a, b: T.join(0, a, b), lambda a, b: np.concatenate([a, b]), M, np.zeros((0, 4))),
    case("join_upcasts", lambda a, b: T.join(0, a, b), lambda a, b: np.concatenate([a, b]), I32, M, grad=False),
    case("join_ints", lambda a, b: T.join(1, a, b), lambda a, b: np.concatenate([a, b], 1), I32, I32),
    case("concatenate", lambda a, b: T.concatenate([a, b]), lambda a, b: np.concatenate([a, b]), M, M2),
    case("concatenate_axis", lambda a, b: T.concatenate([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1), M, COL),
    case("concatenate_tuple", lambda a, b: T.concatenate((a, b, a), axis=-1),
         lambda a, b: np.concatenate((a, b, a), -1), V, W3),
    case("concatenate_same_twice", lambda a: T.concatenate([a, a * 2]), lambda a: np.concatenate([a, a * 2]), V,
         select=False),
    case("stack_list", lambda a, b: T.stack([a, b]), lambda a, b: np.stack([a, b]), V, V[::-1]),
    case("stack_varargs", lambda a, b: T.stack(a, b), lambda a, b: np.stack([a, b]), V, V[::-1]),
    case("stack_axis1", lambda a, b: T.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1), M, N),
    case("stack_axis_neg", lambda a, b: T.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1), M, N),
    case("stack_varargs_axis", lambda a, b, c: T.stack(a, b, c, axis=1), lambda a, b, c: np.stack([a, b, c], 1),
         V, V * 2, V * 3),
    case("stack_scalars", lambda a, b: T.stack([a, b, a]), lambda a, b: np.stack([a, b, a]), S, np.array(-2.0)),
    case("stack_ints", lambda a, b: T.stack([a, b]), lambda a, b: np.stack([a, b]), I32, I32),
]


@pytest.mark.parametrize("build, expected, values, grad, select", JOIN)
def test_join_and_stack(build, expected, values, grad, select, backend):
    run_case(build, expected, values, grad, select, backend)


def test_join_gradient_splits_back(backend):
    a, b = T.matrix("a"), T.matrix("b")
    w = np.arange(35.0).reshape(5, 7)
    cost = T.sum(T.join(1, a, b, a) * w)
    f = arignote.function([a, b], T.grad(cost, [a, b]), backend=backend)
    ga, gb = f(np.ones((5, 3)), np.ones((5, 1)))
    np.testing.assert_array_equal(ga, w[:, 0:3] + w[:, 4:7])
    np.testing.assert_array_equal(gb, w[:, 3:4])
    v, u = T.vector("v"), T.vector("u")
    g = arignote.function([v, u], T.grad(T.sum(T.stack([v, u], axis=1) * w[:3, :2]), [v, u]), backend=backend)
    gv, gu = g(np.ones(3), np.ones(3))
    np.testing.assert_array_equal(gv, w[:3, 0])
    np.testing.assert_array_equal(gu, w[:3, 1])


def test_join_mismatched_shapes_is_an_error(backend):
    a, b = T.matrix("a"), T.matrix("b")
    f = arignote.function([a, b], T.join(0, a, b), backend=backend)
    with pytest.raises(ValueError, match="Join"):
        f(M, np.ones((2, 5)))
    g = arignote.function([a, b], T.stack([a, b]), backend=backend)
    with pytest.raises(ValueError, match="Join"):
        g(M, M2)
    with pytest.raises(TypeError, match="join"):
        T.join(0, a, T.vector())
    with pytest.raises(ValueError, match="join"):
        T.join(2, a, b)


def test_join_and_stack_types():
    assert T.join(0, T.row(), T.row()).broadcastable == (False, False)
    assert T.join(1, T.col(), T.col()).broadcastable == (False, False)
    assert T.join(0, T.row(), T.matrix()).broadcastable == (False, False)
    assert T.join(1, T.col(), T.matrix()).broadcastable == (False, False)
    assert T.join(0, T.imatrix(), T.fmatrix()).dtype == "float64"
    assert T.stack([T.scalar(), T.scalar()]).broadcastable == (False,)
    assert T.stack([T.vector(), T.vector()], axis=1).ndim == 2


# ---------------------------------------------------------------------------------------------------
# specify_shape, squeeze, expand_dims, addbroadcast, unbroadcast, patternbroadcast

PATTERNS = [
    case("specify_shape", lambda a: T.specify_shape(a, (3, 4)) * 2, lambda a: a * 2, M, select=False),
    case("specify_shape_partial", lambda a: T.specify_shape(a, (None, 4)), lambda a: a, M),
    case("specify_shape_symbolic", lambda a, b: T.specify_shape(a, b.shape) + b, lambda a, b: a + b, M, N,
         select=False),
    case("squeeze_row", lambda a: T.squeeze(T.addbroadcast(a, 0)), lambda a: a[0], ROW),
    case("squeeze_col", lambda a: T.addbroadcast(a, 1).squeeze(), lambda a: a[:, 0], COL),
    case("squeeze_nothing", T.squeeze, lambda a: a, M),
    case("squeeze_axis", lambda a: T.squeeze(a, axis=0), lambda a: a[0], ROW),
    case("squeeze_axis_of_matrix", lambda a: T.squeeze(a, axis=1), lambda a: a[:, 0], COL),
    case("squeeze_negative_axis_of_tensor", lambda a: T.squeeze(a, axis=-1), lambda a: a[..., 0], T3[:, :, :1]),
    case("squeeze_dimshuffled", lambda a: T.squeeze(a.dimshuffle("x", 0, "x")), lambda a: a, V),
    case("expand_dims_0", lambda a: T.expand_dims(a, 0), lambda a: np.expand_dims(a, 0), M),
    case("expand_dims_1", lambda a: T.expand_dims(a, 1), lambda a: np.expand_dims(a, 1), M),
    case("expand_dims_last", lambda a: T.expand_dims(a, 2), lambda a: np.expand_dims(a, 2), M),
    case("expand_dims_negative", lambda a: T.expand_dims(a, -1), lambda a: np.expand_dims(a, -1), M),
    case("expand_dims_negative_2", lambda a: T.expand_dims(a, -2), lambda a: np.expand_dims(a, -2), V),
    case("expand_dims_scalar", lambda a: T.expand_dims(a, 0), lambda a: a.reshape(1), S),
    case("addbroadcast_stretches", lambda a, b: T.addbroadcast(a, 0) + b, lambda a, b: a + b, ROW, M, select=False),
    case("addbroadcast_two_axes", lambda a, b: T.addbroadcast(a, 0, 1) * b, lambda a, b: a * b,
         np.array([[2.0]]), M, select=False),
    case("unbroadcast_same_shape", lambda a, b: T.unbroadcast(a, 0) + b, lambda a, b: a + b, ROW, ROW * 3,
         select=False),
    case("patternbroadcast", lambda a, b: T.patternbroadcast(a, (False, True)) * b, lambda a, b: a * b, COL, M,
         select=False),
]


@pytest.mark.parametrize("build, expected, values, grad, select", PATTERNS)
def test_patterns(build, expected, values, grad, select, backend):
    run_case(build, expected, values, grad, select, backend)


def test_squeeze_of_broadcastable_axes(backend):
    """Without ``axis``, squeeze drops the axes that are broadcastable in the type, and only those."""
    r, c, m = T.row("r"), T.col("c"), T.matrix("m")
    assert T.squeeze(r).broadcastable == (False,)
    assert T.squeeze(c).broadcastable == (False,)
    assert T.squeeze(m).broadcastable == (False, False)
    t = T.TensorType("float64", (True, False, True))("t")
    assert T.squeeze(t).ndim == 1
    f = arignote.function([r, c, m, t], [T.squeeze(r), T.squeeze(c), T.squeeze(m), T.squeeze(t)], backend=backend)
    outs = f(ROW, COL, ROW, np.ones((1, 3, 1)))
    np.testing.assert_array_equal(outs[0], ROW[0])
    np.testing.assert_array_equal(outs[1], COL[:, 0])
    assert outs[2].shape == (1, 4)  # a size-1 axis that is not broadcastable stays
    np.testing.assert_array_equal(outs[3], np.ones(3))
    g = arignote.function([c], T.grad(T.sum(T.squeeze(c) * W3), c), backend=backend)
    np.testing.assert_array_equal(g(COL), W3[:, None])


def test_squeeze_explicit_axis_is_checked_when_it_runs(backend):
    m = T.matrix("m")
    out = T.squeeze(m, axis=0)
    assert out.broadcastable == (False,)
    f = arignote.function([m], out, backend=backend)
    np.testing.assert_array_equal(f(ROW), ROW[0])
    with pytest.raises(ValueError, match="size 1"):
        f(M)
    with pytest.raises(ValueError, match="squeeze"):
        T.squeeze(m, axis=2)


def test_specify_shape_mismatch_names_both_shapes(backend):
    m = T.matrix("m")
    f = arignote.function([m], T.specify_shape(m, (2, 3)), backend=backend)
    np.testing.assert_array_equal(f(np.ones((2, 3))), np.ones((2, 3)))
    with pytest.raises(ValueError) as info:
        f(np.ones((3, 2)))
    assert "(3, 2)" in str(info.value) and "(2, 3)" in str(info.value)
    n = T.lscalar("n")
    g = arignote.function([m, n], T.specify_shape(m, (n, None)), backend=backend)
    assert g(M, 3).shape == (3, 4)
    with pytest.raises(ValueError) as info:
        g(M, 5)
    assert "(3, 4)" in str(info.value) and "(5, None)" in str(info.value)
    with pytest.raises(ValueError, match="specify_shape"):
        T.specify_shape(m, (2, 3, 4))


def test_specify_shape_types_and_gradient(backend):
    m = T.matrix("m")
    assert T.specify_shape(m, (1, 4)).broadcastable == (True, False)
    assert T.specify_shape(m, (None, 4)).broadcastable == (False, False)
    f = arignote.function([m], T.grad(T.sum(T.specify_shape(m, (1, 4)) * M), m), backend=backend)
    np.testing.assert_array_equal(f(ROW), M.sum(axis=0, keepdims=True))


def test_broadcast_pattern_functions():
    m, r = T.matrix(), T.row()
    assert T.addbroadcast(m, 0).broadcastable == (True, False)
    assert T.addbroadcast(m, 0, 1).broadcastable == (True, True)
    assert T.addbroadcast(r, 0) is r
    assert T.unbroadcast(r, 0).broadcastable == (False, False)
    assert T.unbroadcast(m, 0) is m
    assert T.patternbroadcast(m, (False, True)).broadcastable == (False, True)
    assert T.patternbroadcast(r, (False, False)).broadcastable == (False, False)
    assert T.expand_dims(m, 1).broadcastable == (False, True, False)
    with pytest.raises(ValueError, match="expand_dims"):
        T.expand_dims(m, 3)


def test_addbroadcast_checks_size_one_when_it_runs(backend):
    m, n = T.matrix("m"), T.matrix("n")
    f = arignote.function([m, n], T.addbroadcast(m, 0) + n, backend=backend)
    np.testing.assert_array_equal(f(ROW, M), ROW + M)
    with pytest.raises(ValueError, match="size 1"):
        f(M2, M)


def test_unbroadcast_stops_stretching(backend):
    r, m = T.row("r"), T.matrix("m")
    f = arignote.function([r, m], T.unbroadcast(r, 0) + m, backend=backend)
    np.testing.assert_array_equal(f(ROW, ROW), 2 * ROW)
    with pytest.raises(ValueError, match="Add"):
        f(ROW, M)


def test_broadcast_pattern_gradients(backend):
    """Through addbroadcast the gradient of a stretched row sums over the rows it met."""
    m, n = T.matrix("m"), T.matrix("n")
    f = arignote.function([m, n], T.grad(T.sum((T.addbroadcast(m, 0) * n) ** 2), [m, n]), backend=backend)
    gm, gn = f(ROW, M)
    np.testing.assert_allclose(gm, (2 * ROW * M * M).sum(axis=0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(gn, 2 * ROW * ROW * M, rtol=1e-12)
    r = T.row("r")
    g = arignote.function([r], T.grad(T.sum(T.unbroadcast(r, 0) * ROW), r), backend=backend)
    np.testing.assert_array_equal(g(ROW), ROW)


# ---------------------------------------------------------------------------------------------------
# repeat, tile, outer

REPEAT = [
    case("repeat_flat", lambda a: T.repeat(a, 2), lambda a: np.repeat(a, 2), M),
    case("repeat_axis0", lambda a: T.repeat(a, 3, axis=0), lambda a: np.repeat(a, 3, axis=0), M),
    case("repeat_axis1", lambda a: T.repeat(a, 2, axis=1), lambda a: np.repeat(a, 2, axis=1), M),
    case("repeat_axis_neg", lambda a: T.repeat(a, 2, axis=-1), lambda a: np.repeat(a, 2, axis=-1), T3),
    case("repeat_zero", lambda a: T.repeat(a, 0, axis=0), lambda a: np.repeat(a, 0, axis=0), M),
    case("repeat_vector_counts_axis0", lambda a: T.repeat(a, [2, 0, 1], axis=0),
         lambda a: np.repeat(a, [2, 0, 1], axis=0), M),
    case("repeat_vector_counts_axis1", lambda a: T.repeat(a, [1, 3, 0, 2], axis=1),
         lambda a: np.repeat(a, [1, 3, 0, 2], axis=1), M),
    case("repeat_vector_counts_flat", lambda a: T.repeat(a, [1, 2, 3, 0]), lambda a: np.repeat(a, [1, 2, 3, 0]), V),
    case("repeat_symbolic_scalar", lambda a, r: T.repeat(a, r, axis=1), lambda a, r: np.repeat(a, r, axis=1),
         M, np.array(3, "int32")),
    case("repeat_symbolic_vector", lambda a, r: T.repeat(a, r, axis=0), lambda a, r: np.repeat(a, r, axis=0),
         M, np.array([0, 2, 1], "int64")),
    case("repeat_method", lambda a: a.repeat(2, axis=0), lambda a: a.repeat(2, axis=0), M),
    case("repeat_int", lambda a: T.repeat(a, 2, axis=1), lambda a: np.repeat(a, 2, axis=1), I32),
    case("tile_2d", lambda a: T.tile(a, (2, 3)), lambda a: np.tile(a, (2, 3)), M),
    case("tile_1_1", lambda a: T.tile(a, (1, 1)), lambda a: np.tile(a, (1, 1)), M),
    case("tile_more_reps", lambda a: T.tile(a, (2, 1, 2)), lambda a: np.tile(a, (2, 1, 2)), M),
    case("tile_fewer_reps", lambda a: T.tile(a, (3,)), lambda a: np.tile(a, (3,)), M),
    case("tile_int_reps", lambda a: T.tile(a, 2), lambda a: np.tile(a, 2), V),
    case("tile_vector_to_matrix", lambda a: T.tile(a, (3, 2)), lambda a: np.tile(a, (3, 2)), V),
    case("tile_3d", lambda a: T.tile(a, (1, 2, 2)), lambda a: np.tile(a, (1, 2, 2)), T3),
    case("tile_zero", lambda a: T.tile(a, (0, 2)), lambda a: np.tile(a, (0, 2)), M),
    case("tile_symbolic_reps", lambda a, n: T.tile(a, (n, 1)), lambda a, n: np.tile(a, (int(n), 1)),
         M, np.array(2, "int64")),
    case("tile_int", lambda a: T.tile(a, (2, 2)), lambda a: np.tile(a, (2, 2)), I32),
    case("outer", T.outer, np.outer, V, W3, select=False),
    case("outer_same", lambda a: T.outer(a, a), lambda a: np.outer(a, a), V, select=False),
    case("outer_float32", T.outer, np.outer, F32[0], F32[1], select=False),
]


@pytest.mark.parametrize("build, expected, values, grad, select", REPEAT)
def test_repeat_tile_outer(build, expected, values, grad, select, backend):
    run_case(build, expected, values, grad, select, backend)


def test_repeat_and_tile_gradients_by_hand(backend):
    x = T.matrix("x")
    w = np.arange(1.0, 13.0).reshape(2, 6)
    f = arignote.function([x], T.grad(T.sum(T.repeat(x, [1, 0, 2], axis=1) * w[:, :3]), x), backend=backend)
    np.testing.assert_array_equal(f(np.ones((2, 3))), [[1, 0, 5], [7, 0, 17]])
    g = arignote.function([x], T.grad(T.sum(T.tile(x, (1, 2)) * w), x), backend=backend)
    np.testing.assert_array_equal(g(np.ones((2, 3))), w[:, :3] + w[:, 3:])
    h = arignote.function([x], T.grad(T.sum(T.repeat(x, 2) * w.ravel()[:12]), x), backend=backend)
    np.testing.assert_array_equal(h(np.ones((2, 3))), (w.ravel()[0::2] + w.ravel()[1::2]).reshape(2, 3))


def test_outer_gradient_by_hand(backend):
    a, b = T.vector("a"), T.vector("b")
    w = np.arange(12.0).reshape(4, 3)
    ga, gb = arignote.function([a, b], T.grad(T.sum(T.outer(a, b) * w), [a, b]), backend=backend)(V, W3)
    np.testing.assert_allclose(ga, w @ W3, rtol=1e-12)
    np.testing.assert_allclose(gb, V @ w, rtol=1e-12)


def test_repeat_errors(backend):
    with pytest.raises(TypeError, match="repeat"):
        T.repeat(T.matrix(), 2.0)
    x, r = T.matrix("x"), T.lvector("r")
    f = arignote.function([x, r], T.repeat(x, r, axis=1), backend=backend)
    with pytest.raises(ValueError, match="Repeat"):
        f(M, np.array([1, 2]))  # 2 counts for 4 columns
