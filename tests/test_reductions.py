"""Reductions (sum mean prod max min argmax argmin all any var std): values, dtypes and gradients,
on every backend, against NumPy.

Most tests are one line: ``case(id, build, numpy_expected, *values)``; ``check`` compares the backend
with the reference and with NumPy (dtype included) and runs verify_grad for float inputs and outputs.
Gradients are also compared with gradients worked out in NumPy (``weighted_grads``), which is what
catches the tie-breaking and zero-handling rules that finite differences cannot see.
"""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core import ops

from checks import assert_same, case, check, freeze_arrays, run_case, symbolic_like, weighted_grads


def U(*shape, seed=0, low=-2.0, high=2.0, dtype="float64"):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def I(*shape, dtype="int32", seed=0, low=-5, high=6):
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


M = U(3, 4)
T3 = U(2, 3, 4, seed=1)
V = U(5, seed=2)
S = np.array(0.7)
F32 = U(3, 4, seed=3, dtype="float32")
I32 = I(3, 4)
I8 = I(3, 4, dtype="int8", seed=1, low=-128, high=128)
U8 = I(3, 4, dtype="uint8", seed=2, low=0, high=256)
B = I(3, 4, seed=3, low=0, high=2).astype(bool)
NAN = M.copy()
NAN[1, 2] = np.nan
E03, E30 = np.zeros((0, 3)), np.zeros((3, 0))
# rows long enough for the compiled backends' vector lanes: NaN inside a lane, in a row's tail, a row of
# NaN, infinities, and a row without any
WIDE = U(5, 37, seed=4)
WIDE[0, 3], WIDE[1, 35], WIDE[2, :], WIDE[3, 9], WIDE[3, 20] = np.nan, np.nan, np.nan, np.inf, -np.inf
WIDE32 = WIDE.astype("float32")
freeze_arrays(globals())  # a backend must never write into its inputs


def numpy_arg(fn, a, axis=None, keepdims=False):
    """np.argmax/argmin, extended to a tuple of axes the way Theano does it: those axes moved to the
    end and flattened into one."""
    if axis is None or isinstance(axis, int):
        return fn(a, axis=axis, keepdims=keepdims)
    axes = sorted(ax % a.ndim for ax in axis)
    kept = [ax for ax in range(a.ndim) if ax not in axes]
    moved = np.transpose(a, kept + axes)
    result = fn(moved.reshape(moved.shape[: len(kept)] + (-1,)), axis=-1)
    if keepdims:
        result = np.expand_dims(result, tuple(axes))
    return result


# ---------------------------------------------------------------------------------------------------
# Every reduction, every kind of axis, with and without keepdims

OPS = [
    ("sum", T.sum, np.sum), ("mean", T.mean, np.mean), ("prod", T.prod, np.prod),
    ("max", T.max, np.max), ("min", T.min, np.min), ("all", T.all, np.all), ("any", T.any, np.any),
    ("var", T.var, np.var), ("std", T.std, np.std),
    ("argmax", T.argmax, lambda a, **kw: numpy_arg(np.argmax, a, **kw)),
    ("argmin", T.argmin, lambda a, **kw: numpy_arg(np.argmin, a, **kw)),
]
AXES = [("none", None), ("0", 0), ("1", 1), ("neg", -1), ("tuple", (0, 2)), ("tuple_neg", (-1, 0)),
        ("tuple_all", (0, 1, 2))]


def _reduce(fn, axis, keepdims):
    return lambda a: fn(a, axis=axis, keepdims=keepdims)


# the gradients along the axes test_gradients_against_numpy checks exactly are not checked again here
# by finite differences (each check compiles one more function per backend)
GRADIENT_AXES = ["none", "1", "neg", "tuple"]
AXIS_CASES = [
    case(f"{name}_{label}{'_keepdims' if keepdims else ''}", _reduce(fn, axis, keepdims),
         _reduce(np_fn, axis, keepdims), T3, grad=label not in GRADIENT_AXES)
    for name, fn, np_fn in OPS for label, axis in AXES for keepdims in (False, True)
]


@pytest.mark.parametrize("build, expected, values, grad", AXIS_CASES)
def test_reduction_axes(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


MORE_CASES = [
    # vectors, scalars, views, float32
    case("sum_vector", T.sum, np.sum, V),
    case("prod_vector", T.prod, np.prod, V),
    case("max_scalar", T.max, np.max, S),
    case("argmax_scalar", T.argmax, np.argmax, S),
    case("var_vector", T.var, np.var, V),
    case("sum_transposed", lambda a: T.sum(a.T, axis=0), lambda a: np.sum(a.T, axis=0), M),
    case("max_float32", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), F32),
    case("std_float32", lambda a: T.std(a, axis=0), lambda a: np.std(a, axis=0), F32),
    case("mean_float32", T.mean, np.mean, F32),
    case("var_ddof", lambda a: T.var(a, axis=1, ddof=1), lambda a: np.var(a, axis=1, ddof=1), M),
    case("std_ddof_keepdims", lambda a: T.std(a, axis=0, ddof=1, keepdims=True),
         lambda a: np.std(a, axis=0, ddof=1, keepdims=True), M),
    # methods
    case("method_sum", lambda a: a.sum(axis=1, keepdims=True), lambda a: a.sum(axis=1, keepdims=True), M),
    case("method_mean_dtype", lambda a: a.mean(dtype="float32"), lambda a: a.mean(dtype="float32"), I32),
    case("method_prod", lambda a: a.prod(axis=0), lambda a: a.prod(axis=0), M),
    case("method_min", lambda a: a.min(axis=-1), lambda a: a.min(axis=-1), M),
    case("method_argmax", lambda a: a.argmax(axis=1), lambda a: a.argmax(axis=1), M),
    case("method_argmin", lambda a: a.argmin(), lambda a: a.argmin(), M),
    case("method_all_any", lambda a: a.all(axis=0) | a.any(axis=0), lambda a: a.all(axis=0) | a.any(axis=0), B),
    case("method_var_std", lambda a: a.var(axis=0) + a.std(axis=0), lambda a: a.var(axis=0) + a.std(axis=0), M),
    # dtype=
    case("sum_dtype_float64", lambda a: T.sum(a, axis=0, dtype="float64"),
         lambda a: np.sum(a, axis=0, dtype="float64"), F32),
    case("sum_dtype_float32", lambda a: T.sum(a, dtype="float32"), lambda a: np.sum(a, dtype="float32"), M),
    case("sum_int_dtype_int8_wraps", lambda a: T.sum(a, dtype="int8"), lambda a: np.sum(a, dtype="int8"), I8),
    case("sum_int_dtype_float64", lambda a: T.sum(a, axis=1, dtype="float64"),
         lambda a: np.sum(a, axis=1, dtype="float64"), I32),
    case("sum_bool_dtype_int32", lambda a: T.sum(a, dtype="int32"), lambda a: np.sum(a, dtype="int32"), B),
    case("mean_dtype_float32", lambda a: T.mean(a, axis=1, dtype="float32"),
         lambda a: np.mean(a, axis=1, dtype="float32"), M),
    case("mean_float32_dtype_float64", lambda a: T.mean(a, dtype="float64"), lambda a: np.mean(a, dtype="float64"), F32),
    case("mean_int_dtype_float32", lambda a: T.mean(a, axis=0, dtype="float32"),
         lambda a: np.mean(a, axis=0, dtype="float32"), I8),
    case("prod_dtype_float64", lambda a: T.prod(a, axis=1, dtype="float64"),
         lambda a: np.prod(a, axis=1, dtype="float64"), F32),
    case("prod_int_dtype_int16", lambda a: T.prod(a, axis=0, dtype="int16"),
         lambda a: np.prod(a, axis=0, dtype="int16"), I8),
    # integer and boolean inputs: the accumulator and result dtypes
    case("sum_int32_is_int64", T.sum, np.sum, I32),
    case("sum_int8_axis_is_int64", lambda a: T.sum(a, axis=0), lambda a: np.sum(a, axis=0, dtype="int64"), I8),
    case("sum_uint8_is_uint64", lambda a: T.sum(a, axis=1), lambda a: np.sum(a, axis=1), U8),
    case("sum_bool_counts_int64", lambda a: T.sum(a, axis=1), lambda a: np.sum(a, axis=1), B),
    case("prod_int32_is_int64", lambda a: T.prod(a, axis=1), lambda a: np.prod(a, axis=1), I32),
    case("prod_bool_is_int64", lambda a: T.prod(a, axis=0), lambda a: np.prod(a, axis=0), B),
    case("mean_int32_is_float64", T.mean, np.mean, I32),
    case("mean_int8_axis_is_float64", lambda a: T.mean(a, axis=1), lambda a: np.mean(a, axis=1), I8),
    case("mean_bool_is_float64", lambda a: T.mean(a, axis=0), lambda a: np.mean(a, axis=0), B),
    case("var_int_is_float64", lambda a: T.var(a, axis=0), lambda a: np.var(a, axis=0), I32),
    case("std_bool_is_float64", T.std, np.std, B),
    case("max_int8_stays_int8", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), I8),
    case("min_uint8_stays_uint8", T.min, np.min, U8),
    case("max_bool_stays_bool", lambda a: T.max(a, axis=0), lambda a: np.max(a, axis=0), B),
    case("argmax_int8", lambda a: T.argmax(a, axis=0), lambda a: np.argmax(a, axis=0), I8),
    case("argmin_bool", lambda a: T.argmin(a, axis=1), lambda a: np.argmin(a, axis=1), B),
    case("all_float_is_bool", lambda a: T.all(a, axis=1), lambda a: np.all(a, axis=1), np.array([[1.0, 0.0], [2.0, -1.0]])),
    case("any_float_is_bool", lambda a: T.any(a, axis=0), lambda a: np.any(a, axis=0), np.array([[0.0, 0.0], [0.0, -0.5]])),
    case("all_int_is_bool", T.all, np.all, I32),
    case("any_int_is_bool", lambda a: T.any(a, axis=-1, keepdims=True), lambda a: np.any(a, axis=-1, keepdims=True), I32),
    case("all_bool", lambda a: T.all(a, axis=0), lambda a: np.all(a, axis=0), B),
    case("any_bool", lambda a: T.any(a, axis=1), lambda a: np.any(a, axis=1), B),
    # NaN propagates (and is "the maximum" for argmax, as in NumPy; NaN is nonzero for all/any)
    case("sum_nan", lambda a: T.sum(a, axis=0), lambda a: np.sum(a, axis=0), NAN, grad=False),
    case("mean_nan", T.mean, np.mean, NAN, grad=False),
    case("prod_nan", lambda a: T.prod(a, axis=1), lambda a: np.prod(a, axis=1), NAN, grad=False),
    case("max_nan", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), NAN, grad=False),
    case("min_nan", lambda a: T.min(a, axis=0), lambda a: np.min(a, axis=0), NAN, grad=False),
    case("max_nan_all", T.max, np.max, NAN, grad=False),
    case("max_nan_rows", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), WIDE, grad=False),
    case("min_nan_rows_f32", lambda a: T.min(a, axis=-1), lambda a: np.min(a, axis=-1), WIDE32, grad=False),
    case("max_nan_columns_f32", lambda a: T.max(a, axis=0), lambda a: np.max(a, axis=0), WIDE32, grad=False),
    case("min_nan_columns", lambda a: T.min(a, axis=0), lambda a: np.min(a, axis=0), WIDE, grad=False),
    case("max_nan_wide_all", T.max, np.max, WIDE32, grad=False),
    case("max_rows_without_nan", lambda a: T.max(a[3:], axis=1), lambda a: np.max(a[3:], axis=1), WIDE, grad=False),
    case("min_nan_rows_transposed", lambda a: T.min(a.T, axis=0), lambda a: np.min(a.T, axis=0), WIDE32, grad=False),
    case("argmax_nan_rows", lambda a: T.argmax(a, axis=1), lambda a: np.argmax(a, axis=1), WIDE),
    case("argmin_nan_rows_f32", lambda a: T.argmin(a, axis=-1), lambda a: np.argmin(a, axis=-1), WIDE32),
    case("argmax_rows_reversed", lambda a: T.argmax(a[3:, ::-1], axis=1), lambda a: np.argmax(a[3:, ::-1], axis=1), WIDE),
    case("argmin_ties_and_zeros", lambda a: T.argmin(a, axis=1), lambda a: np.argmin(a, axis=1),
         np.array([[0.0, -0.0, 1, -1, -1, 2, 3, 4, 5, -1, 0], [-0.0, 0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])),
    case("var_nan", lambda a: T.var(a, axis=1), lambda a: np.var(a, axis=1), NAN, grad=False),
    case("std_nan", lambda a: T.std(a, axis=0), lambda a: np.std(a, axis=0), NAN, grad=False),
    case("argmax_nan", lambda a: T.argmax(a, axis=1), lambda a: np.argmax(a, axis=1), NAN),
    case("argmin_nan", lambda a: T.argmin(a, axis=0), lambda a: np.argmin(a, axis=0), NAN),
    case("all_nan", lambda a: T.all(a, axis=1), lambda a: np.all(a, axis=1), np.array([[np.nan, 1.0], [np.nan, 0.0]])),
    case("any_nan", lambda a: T.any(a, axis=1), lambda a: np.any(a, axis=1), np.array([[np.nan, 0.0], [0.0, 0.0]])),
    # empty inputs
    case("sum_empty_is_0", T.sum, np.sum, E03),
    case("sum_empty_axis", lambda a: T.sum(a, axis=0), lambda a: np.sum(a, axis=0), E03),
    case("sum_empty_result", lambda a: T.sum(a, axis=1), lambda a: np.sum(a, axis=1), E03),
    case("sum_empty_int_is_int64_0", T.sum, np.sum, np.zeros((0, 2), "int32")),
    case("prod_empty_is_1", T.prod, np.prod, E03),
    case("prod_empty_axis", lambda a: T.prod(a, axis=1), lambda a: np.prod(a, axis=1), E30),
    case("all_empty_true", T.all, np.all, E03),
    case("any_empty_false", T.any, np.any, E03),
    case("max_empty_result", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), E03),
    case("max_nonempty_axis_of_empty", lambda a: T.max(a, axis=0), lambda a: np.max(a, axis=0), E30),
    case("argmax_nonempty_axis_of_empty", lambda a: T.argmax(a, axis=0), lambda a: np.argmax(a, axis=0), E30),
    # argmax / argmin: ties go to the first position; tuples of axes flatten those axes together
    case("argmax_ties", lambda a: T.argmax(a, axis=1), lambda a: np.array([1, 0]), np.array([[1.0, 3.0, 3.0], [5.0, 4.0, 5.0]])),
    case("argmin_ties", lambda a: T.argmin(a), lambda a: np.int64(1), np.array([[2.0, 0.0], [0.0, 0.0]])),
    case("argmax_tuple_hand", lambda a: T.argmax(a, axis=(0, 2)), lambda a: np.array([3, 0, 5]),
         np.array([[[0, 1, 2], [5, 0, 0], [0, 0, 0]], [[9, 0, 0], [0, 0, 0], [0, 0, 7]]])),
    case("argmax_tuple_order_irrelevant", lambda a: T.argmax(a, axis=(2, 0)),
         lambda a: numpy_arg(np.argmax, a, axis=(0, 2)), T3),
    case("argmax_tuple_keepdims", lambda a: T.argmax(a, axis=(1, 2), keepdims=True),
         lambda a: a.reshape(2, -1).argmax(axis=1).reshape(2, 1, 1), T3),
    case("argmin_tuple_neg_keepdims", lambda a: T.argmin(a, axis=(-3, -2), keepdims=True),
         lambda a: numpy_arg(np.argmin, a, axis=(0, 1), keepdims=True), T3),
    case("argmax_all_axes_is_flat", lambda a: T.argmax(a, axis=(0, 1)), lambda a: np.argmax(a), M),
    case("argmax_none_keepdims", lambda a: T.argmax(a, keepdims=True), lambda a: np.argmax(a, keepdims=True), T3),
    case("argmax_int_axis_keepdims", lambda a: T.argmax(a, axis=-2, keepdims=True),
         lambda a: np.argmax(a, axis=-2, keepdims=True), T3),
]


@pytest.mark.parametrize("build, expected, values, grad", MORE_CASES)
def test_reductions(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


def test_symbolic_dtypes():
    assert T.sum(T.imatrix()).dtype == "int64"
    assert T.sum(T.bmatrix(), axis=0).dtype == "int64"
    assert T.sum(T.matrix(dtype="uint16")).dtype == "uint64"
    assert T.sum(T.matrix(dtype="bool")).dtype == "int64"
    assert T.sum(T.fmatrix()).dtype == "float32"
    assert T.sum(T.imatrix(), dtype="float32").dtype == "float32"
    assert T.mean(T.imatrix()).dtype == "float64"
    assert T.mean(T.fmatrix()).dtype == "float32"
    assert T.mean(T.fmatrix(), dtype="float64").dtype == "float64"
    assert T.prod(T.wmatrix()).dtype == "int64"
    assert T.max(T.bmatrix()).dtype == "int8"
    assert T.argmax(T.fmatrix(), axis=0).dtype == "int64"
    assert T.all(T.fmatrix()).dtype == "bool" and T.any(T.imatrix(), axis=1).dtype == "bool"
    assert T.var(T.imatrix()).dtype == "float64" and T.std(T.fmatrix()).dtype == "float32"
    assert T.argmax(T.tensor3(), axis=(0, 2), keepdims=True).broadcastable == (True, False, True)
    assert T.argmax(T.tensor3(), axis=(0, 2)).broadcastable == (False,)
    assert T.argmax(T.matrix(), keepdims=True).broadcastable == (True, True)


# ---------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("reduce, name", [(T.max, "Max"), (T.min, "Min")])
@pytest.mark.parametrize("axis", [None, 0, (0, 1), -2])
def test_extremum_of_empty_raises_naming_the_op(reduce, name, axis, backend):
    x = T.matrix("x")
    f = arignote.function([x], reduce(x, axis=axis), backend=backend)
    with pytest.raises(ValueError, match=name):
        f(E03)


@pytest.mark.parametrize("reduce, name", [(T.argmax, "Argmax"), (T.argmin, "Argmin")])
def test_arg_extremum_of_empty_raises_naming_the_op(reduce, name, backend):
    x = T.matrix("x")
    f = arignote.function([x], reduce(x), backend=backend)
    with pytest.raises(ValueError, match=name):
        f(E03)


@pytest.mark.parametrize("reduce", [T.sum, T.mean, T.prod, T.max, T.min, T.all, T.any, T.argmax, T.argmin,
                                    T.var, T.std])
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (1, 1)])
def test_bad_axis_is_refused_when_building(reduce, axis):
    with pytest.raises(ValueError):
        reduce(T.matrix("x"), axis=axis)


# ---------------------------------------------------------------------------------------------------
# Gradients against NumPy


def _expand(g, shape, axis, keepdims):
    """A reduction's output-shaped array broadcast back over the input's shape."""
    axes = tuple(range(len(shape))) if axis is None else tuple(np.atleast_1d(axis) % len(shape))
    if not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _first_extremum_mask(a, axes, fn):
    """1.0 at the first arg-max (or arg-min) of each reduced slice (C order over ``axes``), else 0."""
    axes = tuple(range(a.ndim)) if axes is None else tuple(sorted(axes))
    kept = [ax for ax in range(a.ndim) if ax not in axes]
    moved = np.transpose(a, kept + list(axes))
    flat = moved.reshape(moved.shape[: len(kept)] + (-1,))
    mask = np.zeros(flat.shape)
    np.put_along_axis(mask, fn(flat, axis=-1)[..., None], 1.0, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(kept + list(axes)))


def _prod_of_others(a, axes):
    """For each element, the product of the other elements of its reduced slice (by brute force)."""
    reduced = range(a.ndim) if axes is None else axes
    result = np.empty_like(a)
    for index in np.ndindex(a.shape):
        others = a.copy()
        others[index] = 1.0
        slice_products = np.prod(others, axis=axes, keepdims=True)
        result[index] = slice_products[tuple(0 if d in reduced else i for d, i in enumerate(index))]
    return result


def expected_grad(name, a, axis, keepdims, w):
    """d sum(reduce(a) * w) / da, by hand."""
    wb = _expand(w, a.shape, axis, keepdims)
    axes = None if axis is None else tuple(np.atleast_1d(axis) % a.ndim)
    count = a.size if axes is None else int(np.prod([a.shape[ax] for ax in axes]))
    if name == "sum":
        return wb.copy()
    if name == "mean":
        return wb / count
    if name == "prod":
        return wb * _prod_of_others(a, axes)
    if name == "max":
        return wb * _first_extremum_mask(a, axes, np.argmax)
    if name == "min":
        return wb * _first_extremum_mask(a, axes, np.argmin)
    centered = a - np.mean(a, axis=axes, keepdims=True)
    if name == "var":
        return wb * 2 * centered / count
    std = np.std(a, axis=axes, keepdims=True)
    return wb * centered / (count * std)


GRAD_OPS = [("sum", T.sum), ("mean", T.mean), ("prod", T.prod), ("max", T.max), ("min", T.min),
            ("var", T.var), ("std", T.std)]


@pytest.mark.parametrize("name, fn", GRAD_OPS, ids=[n for n, _ in GRAD_OPS])
@pytest.mark.parametrize("axis", [dict(AXES)[label] for label in GRADIENT_AXES], ids=GRADIENT_AXES)
@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keepdims"])
def test_gradients_against_numpy(name, fn, axis, keepdims, backend):
    (g,), w = weighted_grads(lambda a: fn(a, axis=axis, keepdims=keepdims), [T3], backend)
    assert_same(g, expected_grad(name, T3, axis, keepdims, w), f"d{name}")


def test_max_min_gradient_goes_to_the_first_extremum_only(backend):
    x = T.matrix("x")
    ties = np.array([[1.0, 3.0, 3.0], [5.0, 4.0, 5.0], [2.0, 2.0, 2.0]])
    grad = lambda out: arignote.function([x], T.grad(out, x), backend=backend)(ties)  # noqa: E731
    np.testing.assert_array_equal(grad(T.sum(T.max(x, axis=1) * [1.0, 2.0, 3.0])),
                                  [[0, 1, 0], [2, 0, 0], [3, 0, 0]])
    np.testing.assert_array_equal(grad(T.sum(T.min(x, axis=1) * [1.0, 2.0, 3.0])),
                                  [[1, 0, 0], [0, 2, 0], [3, 0, 0]])
    np.testing.assert_array_equal(grad(T.sum(T.max(x, axis=0))), [[0, 0, 0], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(grad(T.sum(T.min(x, axis=0, keepdims=True))), [[1, 0, 0], [0, 0, 0], [0, 1, 1]])
    column_ties = np.array([[3.0, 1.0, 2.0], [3.0, 2.0, 2.0], [1.0, 2.0, 0.0]])
    f = arignote.function([x], T.grad(T.sum(T.max(x, axis=0) * [1.0, 2.0, 3.0]), x), backend=backend)
    np.testing.assert_array_equal(f(column_ties), [[1, 0, 3], [0, 2, 0], [0, 0, 0]])
    np.testing.assert_array_equal(grad(T.max(x)), [[0, 0, 0], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(grad(T.min(x)), [[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    # over a tuple of axes, "first" is in C order over those axes
    t = T.tensor3("t")
    cube = np.zeros((2, 2, 2))
    cube[0, 0, 1] = cube[1, 0, 0] = 9.0  # slice t[:, 0, :]: (0, 0, 1) comes first in C order
    cube[0, 1, 1] = cube[1, 1, 0] = 9.0  # slice t[:, 1, :]: (0, 1, 1) comes first
    f = arignote.function([t], T.grad(T.sum(T.max(t, axis=(0, 2))), t), backend=backend)
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 1] = expected[0, 1, 1] = 1.0
    np.testing.assert_array_equal(f(cube), expected)
    g = arignote.function([t], T.grad(T.max(t, axis=(1, 2)).sum(), t), backend=backend)
    tied = np.ones((2, 2, 2))
    expected = np.zeros((2, 2, 2))
    expected[:, 0, 0] = 1.0
    np.testing.assert_array_equal(g(tied), expected)


def test_max_gradient_on_a_plateau_sums_to_one(backend):
    """However many positions tie, the gradient of max over a slice sums to exactly one."""
    x = T.matrix("x")
    f = arignote.function([x], T.grad(T.max(x, axis=1).sum(), x), backend=backend)
    g = f(np.array([[7.0] * 5, [1.0, 7.0, 7.0, 7.0, 0.0]]))
    np.testing.assert_array_equal(g.sum(axis=1), [1.0, 1.0])
    np.testing.assert_array_equal(g, [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]])


ZEROS = np.array([[1.0, 2.0, 3.0, 4.0],      # no zero: product of the others
                  [2.0, 0.0, 3.0, 5.0],      # one zero: it gets the product of the others, the rest 0
                  [0.0, 4.0, 0.0, 2.0],      # two zeros: all 0
                  [0.0, 0.0, 0.0, 0.0]])     # all zeros: all 0


@pytest.mark.parametrize("axis", [1, None, 0, (0, 1)])
def test_prod_gradient_with_zeros(axis, backend):
    (g,), w = weighted_grads(lambda a: T.prod(a, axis=axis), [ZEROS], backend)
    assert_same(g, expected_grad("prod", ZEROS, axis, False, w), "dprod")


def test_prod_gradient_with_zeros_by_hand(backend):
    x = T.matrix("x")
    f = arignote.function([x], T.grad(T.prod(x, axis=1).sum(), x), backend=backend)
    np.testing.assert_array_equal(f(ZEROS), [[24, 12, 8, 6], [0, 30, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    v = T.vector("v")
    g = arignote.function([v], T.grad(T.prod(v), v), backend=backend)
    np.testing.assert_array_equal(g(np.array([3.0, 0.0, -2.0])), [0.0, -6.0, 0.0])
    np.testing.assert_array_equal(g(np.array([0.0, 5.0, 0.0])), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(g(np.array([0.0])), [1.0])


def test_prod_gradient_with_zeros_keepdims_and_dtype(backend):
    x = T.fmatrix("x")
    f = arignote.function([x], T.grad(T.prod(x, axis=1, keepdims=True, dtype="float64").sum(), x),
                          backend=backend)
    g = f(ZEROS.astype("float32"))
    assert g.dtype == "float32"
    np.testing.assert_array_equal(g, [[24, 12, 8, 6], [0, 30, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_gradient_through_dtype_changes_has_the_input_dtype(backend):
    x = T.fmatrix("x")
    for out in [T.sum(x, dtype="float64"), T.mean(x, dtype="float64"), T.prod(x, dtype="float64")]:
        g = arignote.function([x], T.grad(out, x), backend=backend)(F32)
        assert g.dtype == "float32"
    y = T.matrix("y")
    g = arignote.function([y], T.grad(T.sum(y, dtype="float32"), y), backend=backend)(M)
    assert g.dtype == "float64" and np.array_equal(g, np.ones_like(M))


def test_integer_reductions_have_no_gradient_path(backend):
    """An argmax, an all or a sum of an integer cast contributes nothing to the gradient."""
    x = T.matrix("x")
    cost = T.sum(x) + T.cast(T.argmax(x), "float64") + T.cast(T.any(x > 0), "float64")
    g = arignote.function([x], T.grad(cost, x), backend=backend)(M)
    np.testing.assert_array_equal(g, np.ones_like(M))


def test_gradients_of_reductions_of_empty_slices_are_empty(backend):
    x = T.matrix("x")
    f = arignote.function([x], T.grad(T.sum(T.max(x, axis=1)) + T.sum(T.mean(x, axis=1)), x), backend=backend)
    assert f(E03).shape == (0, 3)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_all_and_any_over_lanes_rows_and_columns(axis, backend):
    """all/any, alone and fused with the elementwise test they reduce, over runs longer than the
    compiled backends' lanes (8 or 16, with a tail), with NaN (nonzero, hence true) and -0.0 (false)."""
    values = np.random.default_rng(5).normal(size=(5, 37)).astype("float32")
    values[1, 3], values[2, 30], values[0] = np.nan, -0.0, 1.0
    values[3, :] = 0.0
    x = T.fmatrix("x")
    cases = [(T.all(x, axis=axis), np.all(values, axis=axis)), (T.any(x, axis=axis), np.any(values, axis=axis)),
             (T.all(x > -1, axis=axis), np.all(values > -1, axis=axis)),
             (T.any(T.isnan(x), axis=axis), np.any(np.isnan(values), axis=axis))]
    f = arignote.function([x], [c for c, _ in cases], backend=backend)
    for got, (_, expected) in zip(f(values), cases):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", ["C", "F", "reversed", "every second column", "a 3-d block"])
def test_reductions_over_every_axis_of_each_layout(layout, backend):
    """A reduction over every axis reads a C-contiguous array as one flat run (numba) or in lanes (C),
    any other layout through the strides: each agrees with NumPy, NaN included, on runs with tails."""
    base = np.random.default_rng(6).normal(size=(6, 4, 37))
    base[2, 1, 5] = np.nan
    values = {"C": base[1], "F": np.asfortranarray(base[1]), "reversed": base[1, ::-1, ::-1],
              "every second column": base[1, :, ::2], "a 3-d block": base[:, 1:3]}[layout]
    clean = np.nan_to_num(values, nan=0.5)
    x = T.TensorType("float64", (False,) * values.ndim)("x")
    reductions = [(T.max, np.max), (T.min, np.min), (T.prod, np.prod), (T.sum, np.sum), (T.mean, np.mean),
                  (T.any, np.any), (T.all, np.all)]
    f = arignote.function([x], [reduce(x) for reduce, _ in reductions], backend=backend)
    for array in (values, clean):
        for got, (_, expected) in zip(f(array), reductions):
            np.testing.assert_allclose(got, expected(array), rtol=1e-12)


@pytest.mark.parametrize("layouts", [("C", "C"), ("C", "reversed"), ("F", "C")])
def test_fused_reductions_over_every_axis_of_two_operands(layouts, backend):
    """A reduction of an elementwise body of two operands over every axis (one FusedReduce node) reads
    them as flat runs when both are C-contiguous, else through their strides: NaN and infinity included,
    each agrees with NumPy."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(2, 9, 37)).astype(np.float32)
    base[0, 3, 5], base[1, 4, 36] = np.nan, np.inf

    def view(layout, array):
        return {"C": array, "F": np.asfortranarray(array), "reversed": array[::-1, ::-1]}[layout]

    a, b = view(layouts[0], base[0]), view(layouts[1], base[1])
    x, y = T.fmatrices("x", "y")
    cases = [(T.sum((x - y) ** 2), lambda p, q: np.sum(((p - q) ** 2).astype(np.float64))),
             (T.max(x * y), lambda p, q: np.max(p * q)), (T.prod(1 + x / 8 + y / 8), lambda p, q: np.prod(1 + p / 8 + q / 8))]
    f = arignote.function([x, y], [c for c, _ in cases], backend=backend)
    assert sum(isinstance(n.op, ops.FusedReduce) for n in f.maker.fgraph.apply_nodes) == len(cases)
    for p, q in [(a, b), (np.nan_to_num(a, nan=0.5, posinf=2.0), np.nan_to_num(b, nan=0.5, posinf=2.0))]:
        for got, (_, expected) in zip(f(p, q), cases):
            np.testing.assert_allclose(got, expected(p, q), rtol=2e-5)
