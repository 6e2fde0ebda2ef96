"""Every op of core/ops.py, values and gradients, on every backend, against NumPy.

Most tests are one line of a table: ``case(id, build, numpy_expected, *values)``. ``build`` makes the
symbolic expression from inputs typed like ``values``; ``numpy_expected`` computes the expected array
from the same values (its dtype is checked too); ``check`` compares the backend with the reference and
with NumPy, and runs verify_grad when every input and the output are floats.
"""

import warnings

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core import ops

from checks import case, check, freeze_arrays, run_case


# ---------------------------------------------------------------------------------------------------
# Values


def U(*shape, seed=0, low=-2.0, high=2.0, dtype="float64"):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def I(*shape, dtype="int32", seed=0, low=-5, high=6):
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


M, N = U(3, 4), U(3, 4, seed=1)                       # matrices
POS = U(3, 4, seed=2, low=0.5, high=2.0)               # positive matrix (log, sqrt, divisor, base)
V, COL = U(4, seed=3), U(3, seed=4)                    # a row's worth and a column's worth
S, S2 = np.array(0.7), np.array(-1.3)                  # 0-d
T3 = U(2, 3, 4, seed=6)
BIG = U(4, 6, seed=5)                                  # source of views
BIG2 = U(4, 6, seed=7)
E03, E30, E0 = np.zeros((0, 3)), np.zeros((3, 0)), np.zeros(0)
F32, G32, P32 = M.astype("float32"), N.astype("float32"), POS.astype("float32")
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 1e300, -1e-300])
SPECIAL2 = np.array([np.nan, np.inf, np.inf, 0.0, 0.0, -1.5, -2.5, np.nan, 1.0])
EXTREME = np.array([-1000.0, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0])
I8 = I(3, 4, dtype="int8", low=-128, high=128)
I8b = I(3, 4, dtype="int8", seed=1, low=-128, high=128)
U8 = I(3, 4, dtype="uint8", low=0, high=256)
U8b = I(3, 4, dtype="uint8", seed=1, low=0, high=256)
I32, I32b = I(3, 4), I(3, 4, seed=1)
I32nz = np.where(I32b == 0, 3, I32b).astype("int32")   # no zero divisors
I64 = I(3, 4, dtype="int64", seed=2, low=-10**12, high=10**12)
B1 = I(3, 4, seed=3, low=0, high=2).astype(bool)
B2 = I(3, 4, seed=4, low=0, high=2).astype(bool)
freeze_arrays(globals())  # a backend must never write into its inputs


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---------------------------------------------------------------------------------------------------
# Elementwise ops: float64 values and gradients

ELEMWISE = [
    case("add", lambda a, b: a + b, np.add, M, N),
    case("sub", lambda a, b: a - b, np.subtract, M, N),
    case("mul", lambda a, b: a * b, np.multiply, M, N),
    case("truediv", lambda a, b: a / b, np.true_divide, M, POS),
    case("intdiv", lambda a, b: a // b, np.floor_divide, M * 3, POS),
    case("mod", lambda a, b: a % b, np.remainder, M * 3, POS),
    case("mod_negative_divisor", lambda a, b: a % b, np.remainder, M * 3, -POS),
    case("pow", lambda a, b: a ** b, np.power, POS, N),
    case("pow_int_exponent", lambda a: a ** 3, lambda a: a ** 3, M),
    case("rpow", lambda a: 2 ** a, lambda a: 2 ** a, M),
    case("maximum", T.maximum, np.maximum, M, N),
    case("minimum", T.minimum, np.minimum, M, N),
    case("neg", lambda a: -a, np.negative, M),
    case("neg_fn", T.neg, np.negative, M),
    case("abs", abs, np.abs, M),
    case("abs_fn", T.abs_, np.abs, M),
    case("sgn", T.sgn, np.sign, M),
    case("exp", T.exp, np.exp, M),
    case("log", T.log, np.log, POS),
    case("sqrt", T.sqrt, np.sqrt, POS),
    case("tanh", T.tanh, np.tanh, M),
    case("sigmoid", T.sigmoid, sigmoid, M),
    case("sigmoid_extreme", T.sigmoid, sigmoid, EXTREME),
    case("tanh_extreme", T.tanh, np.tanh, EXTREME),
    case("eq", T.eq, np.equal, M, np.where(B1, M, N)),
    case("neq", T.neq, np.not_equal, M, np.where(B1, M, N)),
    case("lt", lambda a, b: a < b, np.less, M, N),
    case("gt", lambda a, b: a > b, np.greater, M, N),
    case("le", lambda a, b: a <= b, np.less_equal, M, np.where(B1, M, N)),
    case("ge", lambda a, b: a >= b, np.greater_equal, M, np.where(B1, M, N)),
    case("lt_fn", T.lt, np.less, M, N),
    case("gt_fn", T.gt, np.greater, M, N),
    case("le_fn", T.le, np.less_equal, M, N),
    case("ge_fn", T.ge, np.greater_equal, M, N),
    case("reflected_comparison", lambda a: 0 < a, lambda a: 0 < a, M),
    case("switch", lambda c, a, b: T.switch(c > 0, a, b), lambda c, a, b: np.where(c > 0, a, b), N, M, POS),
    case("where_alias", lambda c, a, b: T.where(c > 0, a, b), lambda c, a, b: np.where(c > 0, a, b), N, M, POS),
    case("switch_weak_zero", lambda c, a: T.switch(c > 0, a, 0), lambda c, a: np.where(c > 0, a, 0.0), N, M),
    case("second", T.second, lambda a, b: b, M, N),
    case("fill_weak", lambda a: T.fill(a, 3), lambda a: np.full_like(a, 3), M),
    case("zeros_like", T.zeros_like, np.zeros_like, M),
    case("ones_like", T.ones_like, np.ones_like, M),
    case("cast_f32", lambda a: T.cast(a, "float32"), lambda a: a.astype("float32"), M),
    case("cast_f64", lambda a: T.cast(a, "float64"), lambda a: a.astype("float64"), F32),
    case("astype", lambda a: a.astype("float32"), lambda a: a.astype("float32"), M),
    case("composite", lambda a, b: T.tanh(a * b + 1) / (1 + T.exp(-a)), lambda a, b: np.tanh(a * b + 1) / (1 + np.exp(-a)), M, N),
    case("xlogx", T.xlogx.xlogx, lambda a: a * np.log(a), POS),
    case("xlogy0", T.xlogx.xlogy0, lambda a, b: np.where(a == 0, 0.0, a * np.log(b)), np.where(M > 0, M, 0.0), POS),
]


@pytest.mark.parametrize("build, expected, values, grad", ELEMWISE)
def test_elemwise(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Broadcasting, views, empty arrays

BROADCAST = [
    case("matrix_plus_row", lambda a, b: a + b.dimshuffle("x", 0), lambda a, b: a + b[None, :], M, V),
    case("matrix_times_col", lambda a, b: a * b.dimshuffle(0, "x"), lambda a, b: a * b[:, None], M, COL),
    case("matrix_minus_scalar", lambda a, s: a - s, np.subtract, M, S),
    case("scalar_div_matrix", lambda s, a: s / a, np.true_divide, S, POS),
    case("vector_pads_left", lambda v, a: v / a, np.true_divide, V, POS),
    case("row_max_col", lambda c, r: T.maximum(c.dimshuffle(0, "x"), r.dimshuffle("x", 0)),
         lambda c, r: np.maximum(c[:, None], r[None, :]), COL, V),
    case("pow_col_row", lambda c, r: c.dimshuffle(0, "x") ** r.dimshuffle("x", 0),
         lambda c, r: c[:, None] ** r[None, :], POS[:, 0], V),
    case("switch_broadcast", lambda c, a, b: T.switch(c.dimshuffle("x", 0) > 0, a, b.dimshuffle(0, "x")),
         lambda c, a, b: np.where(c[None, :] > 0, a, b[:, None]), V, M, COL),
    case("second_broadcast", lambda a, b: T.second(a, b.dimshuffle("x", 0)),
         lambda a, b: np.broadcast_to(b, a.shape).copy(), M, V),
    case("mod_scalar", lambda a, s: a % s, np.remainder, M, S),
    case("tensor3_plus_matrix", lambda t, m: t + m, np.add, T3, M),
    case("scalar_scalar", lambda s, t: s * t + T.exp(s), lambda s, t: s * t + np.exp(s), S, S2),
    # non-contiguous and negative-stride views passed as inputs
    case("strided_rows", lambda a, b: a * b + T.exp(a), lambda a, b: a * b + np.exp(a), BIG[::2], BIG2[1::2]),
    case("reversed", lambda a, b: a - b, np.subtract, BIG[::-1], BIG2),
    case("transposed", lambda a, b: a * b, np.multiply, BIG.T, BIG2.T[::-1, ::-1]),
    case("negative_column_step", lambda a: T.tanh(a) * 2, lambda a: np.tanh(a) * 2, BIG[:, ::-2]),
    case("view_broadcast", lambda a, v: a + v.dimshuffle("x", 0), lambda a, v: a + v, BIG.T, BIG[::-1, 0]),
    # size-0 axes
    case("empty_plus_row", lambda a, b: a + b.dimshuffle("x", 0), lambda a, b: a + b, E03, V[:3]),
    case("empty_exp", T.exp, np.exp, E0),
    case("empty_mul", lambda a, b: a * b, np.multiply, E30, E30),
    case("empty_comparison", lambda a, b: a < b, np.less, E03, E03),
    case("empty_switch", lambda c, a: T.switch(c > 0, a, 1.0), lambda c, a: np.where(c > 0, a, 1.0), E03, E03),
]


@pytest.mark.parametrize("build, expected, values, grad", BROADCAST)
def test_broadcast_views_empty(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# NaN and infinity (no gradients)

SPECIALS = [
    case(f"{name}_special", fn, np_fn, SPECIAL, grad=False)
    for name, fn, np_fn in [
        ("exp", T.exp, np.exp), ("log", T.log, np.log), ("sqrt", T.sqrt, np.sqrt), ("tanh", T.tanh, np.tanh),
        ("sigmoid", T.sigmoid, sigmoid), ("abs", T.abs_, np.abs), ("sgn", T.sgn, np.sign), ("neg", T.neg, np.negative),
        ("xlogx", T.xlogx, lambda a: np.where(a == 0, 0.0, a * np.log(a))),
    ]
] + [
    case(f"{name}_special", fn, np_fn, SPECIAL, SPECIAL2, grad=False)
    for name, fn, np_fn in [
        ("add", T.add, np.add), ("sub", T.sub, np.subtract), ("mul", T.mul, np.multiply),
        ("truediv", T.true_div, np.true_divide), ("intdiv", T.int_div, np.floor_divide), ("mod", T.mod, np.remainder),
        ("pow", T.pow, np.power), ("maximum", T.maximum, np.maximum), ("minimum", T.minimum, np.minimum),
        ("eq", T.eq, np.equal), ("neq", T.neq, np.not_equal), ("lt", T.lt, np.less), ("gt", T.gt, np.greater),
        ("le", T.le, np.less_equal), ("ge", T.ge, np.greater_equal),
        ("xlogy0", T.xlogy0, lambda a, b: np.where(a == 0, 0.0, a * np.log(b))),
    ]
] + [
    case("switch_nan_cond", lambda c, a: T.switch(c, a, -a), lambda c, a: np.where(c, a, -a), SPECIAL, SPECIAL2, grad=False),
    case("cast_special_f32", lambda a: T.cast(a, "float32"), lambda a: a.astype("float32"), SPECIAL, grad=False),
    case("cast_special_bool", lambda a: T.cast(a, "bool"), lambda a: a.astype(bool), SPECIAL, grad=False),
    case("sum_special", T.sum, np.sum, SPECIAL[1:3], grad=False),
    case("sum_nan", T.sum, np.sum, SPECIAL, grad=False),
    case("mean_inf", T.mean, np.mean, SPECIAL[1:2], grad=False),
    case("max_nan", T.max, np.max, SPECIAL, grad=False),
    case("max_inf", T.max, np.max, SPECIAL[1:], grad=False),
    case("max_neg_inf", T.max, np.max, SPECIAL[2:3], grad=False),
    case("dot_inf", T.dot, np.dot, SPECIAL[1:3], SPECIAL2[1:3], grad=False),
]


@pytest.mark.parametrize("build, expected, values, grad", SPECIALS)
def test_nan_and_infinity(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Integer, unsigned, boolean and float32 dtypes (expected dtypes come from NumPy)

DTYPES = [
    case("int8_add_wraps", lambda a, b: a + b, np.add, I8, I8b),
    case("int8_sub", lambda a, b: a - b, np.subtract, I8, I8b),
    case("int8_mul", lambda a, b: a * b, np.multiply, I8, I8b),
    case("int8_neg_wraps", lambda a: -a, np.negative, np.array([-128, -1, 0, 127], "int8")),
    case("int8_abs_wraps", abs, np.abs, np.array([-128, -1, 0, 127], "int8")),
    case("int8_sgn", T.sgn, np.sign, I8),
    case("int8_truediv_float64", lambda a, b: a / b, np.true_divide, I8, np.where(I8b == 0, 1, I8b).astype("int8")),
    case("int32_intdiv_floors", lambda a, b: a // b, np.floor_divide, I32, I32nz),
    case("int32_mod_sign_of_divisor", lambda a, b: a % b, np.remainder, I32, I32nz),
    case("int32_intdiv_by_zero", lambda a, b: a // b, np.floor_divide, I32, I32b),
    case("int32_mod_by_zero", lambda a, b: a % b, np.remainder, I32, I32b),
    case("int32_pow", lambda a, b: a ** b, np.power, I32, np.abs(I32b)),
    case("int32_maximum", T.maximum, np.maximum, I32, I32b),
    case("int32_minimum", T.minimum, np.minimum, I32, I32b),
    case("int32_lt_float", lambda a, b: a < b, np.less, I32, M * 5),
    case("int32_eq", T.eq, np.equal, I32, I32b),
    case("int64_mul", lambda a, b: a * b, np.multiply, I64, I32),
    case("int64_big_values", lambda a: a + a, lambda a: a + a, I64),
    case("uint8_sub_wraps", lambda a, b: a - b, np.subtract, U8, U8b),
    case("uint8_neg_wraps", lambda a: -a, np.negative, U8),
    case("uint8_plus_int8_int16", lambda a, b: a + b, np.add, U8, I8),
    case("uint8_maximum_int8", T.maximum, np.maximum, U8, I8),
    case("uint8_intdiv", lambda a, b: a // b, np.floor_divide, U8, np.maximum(U8b, 1)),
    case("bool_add_is_or", lambda a, b: a + b, np.add, B1, B2),
    case("bool_mul_is_and", lambda a, b: a * b, np.multiply, B1, B2),
    case("bool_maximum", T.maximum, np.maximum, B1, B2),
    case("bool_abs", abs, np.abs, B1),
    case("bool_truediv", lambda a, b: a / b, np.true_divide, B1, B2),
    case("bool_intdiv_int8", lambda a, b: a // b, np.floor_divide, B1, B2),
    case("bool_eq", T.eq, np.equal, B1, B2),
    case("bool_plus_float", lambda a, b: a + b, np.add, B1, M),
    case("bool_switch_int_branches", T.switch, np.where, B1, I32, I8),
    case("int8_switch_cond", lambda c, a, b: T.switch(c, a, b), np.where, I8, M, N),
    case("switch_int8_float32", lambda c, a, b: T.switch(c, a, b), np.where, B1, I8, F32),
    case("float32_add", lambda a, b: a + b, np.add, F32, G32),
    case("float32_mul_float64", lambda a, b: a * b, np.multiply, F32, N),
    case("float32_div_int32", lambda a, b: a / b, np.true_divide, F32, I32nz),
    case("float32_plus_int8", lambda a, b: a + b, np.add, F32, I8),
    case("float32_plus_int16", lambda a, b: a + b, np.add, F32, I32.astype("int16")),
    case("float32_plus_int64", lambda a, b: a + b, np.add, F32, I64),
    case("float32_pow", lambda a, b: a ** b, np.power, P32, G32),
    case("float32_exp", T.exp, np.exp, F32),
    case("float32_log", T.log, np.log, P32),
    case("float32_sqrt", T.sqrt, np.sqrt, P32),
    case("float32_tanh", T.tanh, np.tanh, F32),
    case("float32_sigmoid", T.sigmoid, lambda a: (1 / (1 + np.exp(-a))).astype("float32"), F32),
    case("float32_mod", lambda a, b: a % b, np.remainder, F32 * 3, P32),
    case("float32_maximum", T.maximum, np.maximum, F32, G32),
    case("float32_switch", lambda c, a, b: T.switch(c > 0, a, b), lambda c, a, b: np.where(c > 0, a, b), G32, F32, P32),
    # float-valued ops on integers follow Theano: small integers give float32, wide ones float64
    case("exp_int8_float32", T.exp, lambda a: np.exp(a.astype("float32")), np.array([-3, 0, 2, 5], "int8")),
    case("exp_bool_float32", T.exp, lambda a: np.exp(a.astype("float32")), B1),
    case("log_uint8_float32", T.log, lambda a: np.log(a.astype("float32")), U8),
    case("sqrt_int16_float32", T.sqrt, lambda a: np.sqrt(a.astype("float32")), np.abs(I32).astype("int16")),
    case("sigmoid_uint16_float32", T.sigmoid, lambda a: sigmoid(a.astype("float32")), U8.astype("uint16")),
    case("exp_int32_float64", T.exp, lambda a: np.exp(a.astype("float64")), I32),
    case("tanh_int64_float64", T.tanh, lambda a: np.tanh(a.astype("float64")), I32.astype("int64")),
    case("log_uint32_float64", T.log, lambda a: np.log(a.astype("float64")), U8.astype("uint32")),
    # casts
    case("cast_float_to_int_truncates", lambda a: T.cast(a, "int32"), lambda a: a.astype("int32"),
         np.array([-1.7, -0.2, 0.0, 0.5, 2.9, -3.0])),
    case("cast_int64_to_int8_wraps", lambda a: T.cast(a, "int8"), lambda a: a.astype("int8"),
         np.array([300, -200, 127, -128, 0], "int64")),
    case("cast_int_to_uint8_wraps", lambda a: T.cast(a, "uint8"), lambda a: a.astype("uint8"), I32),
    case("cast_float_to_bool", lambda a: T.cast(a, "bool"), lambda a: a.astype(bool), np.array([0.0, -0.0, 0.5, -2.0])),
    case("cast_bool_to_float", lambda a: T.cast(a, "float32"), lambda a: a.astype("float32"), B1),
    case("cast_int_to_float64", lambda a: T.cast(a, "float64"), lambda a: a.astype("float64"), I64),
    case("cast_int_to_bool", lambda a: T.cast(a, "bool"), lambda a: a.astype(bool), I32),
]


@pytest.mark.parametrize("build, expected, values, grad", DTYPES)
def test_dtypes(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Python scalars are weak: they take the dtype of the tensor they meet when their value fits

WEAK = [
    case("float32_times_2.0", lambda a: a * 2.0, lambda a: a * 2.0, F32),
    case("float32_plus_1", lambda a: a + 1, lambda a: a + 1, F32),
    case("1.0_minus_float32", lambda a: 1.0 - a, lambda a: 1.0 - a, F32),
    case("float32_pow_2", lambda a: a ** 2, lambda a: a ** 2, F32),
    case("float32_div_3", lambda a: a / 3, lambda a: a / 3, F32),
    case("int8_plus_1", lambda a: a + 1, lambda a: a + 1, I8),
    case("int8_times_minus_1", lambda a: a * -1, lambda a: a * -1, I8),
    case("int8_plus_True", lambda a: a + True, lambda a: a + True, I8),
    case("int8_intdiv_2", lambda a: a // 2, lambda a: a // 2, I8),
    case("int8_mod_3", lambda a: a % 3, lambda a: a % 3, I8),
    case("int8_plus_1000_widens", lambda a: a + 1000, lambda a: a.astype("int64") + 1000, I8),
    case("int8_times_0.5_floatX", lambda a: a * 0.5, lambda a: a * 0.5, I8),
    case("int32_times_0.5_floatX", lambda a: a * 0.5, lambda a: a * 0.5, I32),
    case("int8_div_2_float64", lambda a: a / 2, lambda a: a / 2, I8),
    case("uint8_minus_1_wraps", lambda a: a - 1, lambda a: a - 1, U8),
    case("uint8_lt_minus_1", lambda a: a < -1, lambda a: a < -1, U8),
    case("uint8_gt_minus_1", lambda a: a > -1, lambda a: a > -1, U8),
    case("int8_lt_200", lambda a: a < 200, lambda a: a < 200, I8),
    case("bool_plus_1_int64", lambda a: a + 1, lambda a: a + 1, B1),
    case("bool_times_0.5", lambda a: a * 0.5, lambda a: a * 0.5, B1),
    case("int8_maximum_0", lambda a: T.maximum(a, 0), lambda a: np.maximum(a, 0), I8),
    case("float32_switch_0", lambda a: T.switch(a > 0, a, 0), lambda a: np.where(a > 0, a, 0), F32),
    case("int8_switch_weak_branches", lambda a: T.switch(a > 0, a, 1), lambda a: np.where(a > 0, a, 1), I8),
    case("numpy_scalar_is_strong", lambda a: a * np.float64(2.0), lambda a: a * np.float64(2.0), F32),
]


@pytest.mark.parametrize("build, expected, values, grad", WEAK)
def test_weak_python_scalars(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


def test_switch_condition_dtype_does_not_leak_into_result(backend):
    """The condition only selects: a float64 mask must not turn int8 or float32 branches into float64.
    (NumPy's where and Theano's switch both give the branches' dtype.)"""
    mask = np.array([1.0, 0.0, 2.0])
    check(lambda c, a: T.switch(c, a, 1), [mask, np.array([5, 6, 7], "int8")], backend,
          expected=np.where(mask, np.array([5, 6, 7], "int8"), 1))
    check(lambda c, a: T.switch(c, a, 0), [mask, F32[0, :3]], backend, expected=np.where(mask, F32[0, :3], 0))


def test_weak_float_with_floatX32(floatX32, backend):
    """Under floatX=float32 a bare Python float is float32: int8 * 0.5 is float32, float64 stays float64."""
    assert (T.bvector() * 0.5).dtype == "float32"
    assert (T.dvector() * 0.5).dtype == "float64"
    assert (T.vector() * 0.5).dtype == "float32"
    assert T.constant(0.5).dtype == "float32"
    assert T.as_tensor_variable([0.5, 1.0]).dtype == "float32"
    check(lambda a: a * 0.5, [I8], backend, expected=I8 * np.float32(0.5))
    check(lambda a: a / 2.0 + T.exp(a), [F32], backend, expected=F32 / np.float32(2) + np.exp(F32))


# ---------------------------------------------------------------------------------------------------
# Dtype rules, symbolically

f32, f64, i8, i16, i32, i64, u8, u16, b = "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "bool"


def v(dtype):
    return T.vector(dtype=dtype)


DTYPE_RULES = [
    # NumPy promotion (ufunc resolution)
    ('v(f32) + v(f64)', f64), ('v(i8) + v(u8)', i16), ('v(i32) * v(f32)', f64),
    ('v(i16) * v(f32)', f32), ('v(i8) / v(i8)', f64), ('v(f32) / v(i8)', f32),
    ('v(i8) // v(i8)', i8), ('v(b) // v(b)', i8), ('v(b) + v(b)', b),
    ('v(u8) % v(i8)', i16), ('v(i64) ** v(i8)', i64), ('T.maximum(v(u8), v(u16))', u16),
    ('abs(v(i8))', i8), ('-v(u8)', u8), ('T.sgn(v(f32))', f32),
    # weak Python scalars
    ('v(f32) * 2.0', f32), ('v(f32) + 1', f32), ('v(i8) + 1', i8), ('v(i8) * 0.5', f64),
    ('v(i32) * 0.5', f64), ('v(u8) - 1', u8), ('v(u8) + 300', i64), ('v(b) + 1', i64),
    ('v(b) + True', b), ('2 ** v(i16)', i16), ('v(f64) * 2.0', f64),
    # float-valued ops (Theano's rule: no float16)
    ('T.exp(v(i8))', f32), ('T.exp(v(u8))', f32), ('T.log(v(i16))', f32),
    ('T.sqrt(v(b))', f32), ('T.tanh(v(i32))', f64), ('T.sigmoid(v(i64))', f64),
    ('T.exp(v(f32))', f32), ('T.exp(v(f64))', f64),
    # comparisons, switch, fill, cast
    ('v(f32) < v(f64)', b), ('T.eq(v(i8), 1)', b), ('T.switch(v(b), v(i8), v(f32))', f32),
    ('T.switch(v(b), v(i8), v(i8))', i8), ('T.fill(v(f32), 1)', f32), ('T.second(v(f32), v(i8))', i8),
    ('T.cast(v(f64), "int16")', i16), ('T.cast(v(i8), "floatX")', f64),
    # reductions
    ('T.sum(v(i32))', i64), ('T.sum(v(i8))', i64), ('T.sum(v(b))', i64),
    ('T.sum(v(u8))', "uint64"), ('T.sum(v(f32))', f32), ('T.sum(v(i32), dtype="int32")', i32),
    ('T.sum(v(f32), dtype="float64")', f64), ('T.mean(v(i32))', f64), ('T.mean(v(b))', f64),
    ('T.mean(v(f32))', f32), ('T.mean(v(i8), dtype="float32")', f32), ('T.max(v(i8))', i8),
    ('T.max(v(b))', b), ('T.max(v(f32))', f32),
    # dot, shapes
    ('T.dot(v(f32), v(f32))', f32), ('T.dot(v(f32), v(f64))', f64), ('T.dot(v(i8), v(i8))', i8),
    ('T.dot(T.matrix(dtype=i32), v(f32))', f64), ('v(f32).shape', i64), ('v(i8).shape[0]', i64),
    ('v(u8).reshape((2, -1))', u8), ('v(i16).dimshuffle("x", 0)', i16),
]


@pytest.mark.parametrize("expression, dtype", DTYPE_RULES, ids=[f"{e} is {d}" for e, d in DTYPE_RULES])
def test_dtype_rule(expression, dtype):
    assert eval(expression).dtype == dtype


@pytest.mark.parametrize("build, dtypes", [
    (lambda a, b: a - b, "bool, bool"), (lambda a, b: -a, "bool"), (lambda a, b: T.sgn(a), "bool"),
])
def test_ops_numpy_does_not_define_raise_type_error(build, dtypes):
    with pytest.raises(TypeError, match=dtypes):
        build(v(b), v(b))


def test_unsupported_and_mismatched_arity():
    with pytest.raises(TypeError, match="Add takes 2"):
        T.add(T.vector())
    with pytest.raises(TypeError, match="Switch takes 3"):
        T.switch(T.vector(), T.vector())
    with pytest.raises(TypeError, match="float16"):
        T.cast(T.vector(), "float16")


def test_integer_to_negative_integer_power_raises_naming_pow(backend):
    x = T.bvector("x")
    f = arignote.function([x], x ** -1, backend=backend)
    with pytest.raises(ValueError, match="Pow"):
        f(np.array([1, 2], "int8"))


# ---------------------------------------------------------------------------------------------------
# Theano's runtime broadcasting rule: a size-1 axis stretches only where its type is broadcastable


def test_size_one_value_in_matrix_input_does_not_stretch(backend):
    x, y = T.matrix("x"), T.matrix("y")
    f = arignote.function([x, y], x + y, backend=backend)
    with pytest.raises(ValueError) as info:
        f(np.ones((1, 3)), np.ones((4, 3)))
    message = str(info.value)
    assert "Add" in message and "(1, 3)" in message and "(4, 3)" in message


@pytest.mark.parametrize("build", [
    lambda x, y: x + y, lambda x, y: y * x, lambda x, y: T.maximum(x, y), lambda x, y: T.switch(x > 0, x, y),
    lambda x, y: x < y, lambda x, y: T.second(x, y),
], ids=["Add", "Mul", "Maximum", "Switch", "Lt", "Second"])
def test_broadcasting_rule_names_op_and_shapes(build, backend):
    x, y = T.matrix("x"), T.matrix("y")
    out = build(x, y)
    f = arignote.function([x, y], out, backend=backend)
    with pytest.raises(ValueError) as info:
        f(np.ones((1, 3)), np.ones((4, 3)))
    message = str(info.value)
    assert type(out.owner.op).__name__ in message
    assert "(1, 3)" in message and "(4, 3)" in message


def test_size_zero_does_not_broadcast_against_size_one(backend):
    x, y = T.matrix("x"), T.matrix("y")
    with pytest.raises(ValueError, match="Add"):
        arignote.function([x, y], x + y, backend=backend)(E03, np.ones((1, 3)))


@pytest.mark.parametrize("make, value, out_shape", [
    (T.row, U(1, 3, seed=8), (4, 3)), (T.col, U(4, 1, seed=8), (4, 3)), (T.scalar, np.array(2.0), (4, 3)),
    (T.matrix, U(4, 3, seed=8), (4, 3)),
], ids=["row", "col", "scalar", "matrix"])
def test_broadcastable_types_stretch(make, value, out_shape, backend):
    x, m = make("x"), T.matrix("m")
    base = U(4, 3)
    f = arignote.function([x, m], m * x - x, backend=backend)
    result = f(value, base)
    assert result.shape == out_shape
    np.testing.assert_allclose(result, base * value - value)


def test_row_and_col_make_an_outer_table(backend):
    r, c = T.row("r"), T.col("c")
    f = arignote.function([r, c], r + c, backend=backend)
    np.testing.assert_array_equal(f(V[None, :], COL[:, None]), V[None, :] + COL[:, None])
    assert (r + c).broadcastable == (False, False)
    assert (r + 1).broadcastable == (True, False)


def test_broadcastable_gradients(backend):
    """Gradients of broadcast inputs are summed back to the inputs' shapes (and types)."""
    r, m, s = T.row("r"), T.matrix("m"), T.scalar("s")
    cost = T.sum(m * r * s)
    gr, gs = T.grad(cost, [r, s])
    assert gr.broadcastable == (True, False) and gs.ndim == 0
    f = arignote.function([r, m, s], [gr, gs], backend=backend)
    got_r, got_s = f(V[None, :], U(3, 4), np.array(2.0))
    np.testing.assert_allclose(got_r, (U(3, 4) * 2.0).sum(axis=0, keepdims=True))
    np.testing.assert_allclose(got_s, (U(3, 4) * V[None, :]).sum())


# ---------------------------------------------------------------------------------------------------
# Reductions


REDUCTIONS = [
    case(f"{name}_{label}", (lambda fn, kw: lambda a: fn(a, **kw))(fn, kw),
         (lambda np_fn, kw: lambda a: np_fn(a, **kw))(np_fn, kw), value)
    for name, fn, np_fn in [("sum", T.sum, np.sum), ("mean", T.mean, np.mean), ("max", T.max, np.max)]
    for label, kw, value in [
        ("all", {}, M), ("axis0", {"axis": 0}, M), ("axis1", {"axis": 1}, M), ("axis_neg", {"axis": -1}, M),
        ("tuple", {"axis": (0, 2)}, T3), ("tuple_neg", {"axis": (-1, 0)}, T3), ("tuple_all", {"axis": (0, 1, 2)}, T3),
        ("keepdims", {"axis": 1, "keepdims": True}, M), ("keepdims_all", {"keepdims": True}, T3),
        ("keepdims_tuple", {"axis": (0, -1), "keepdims": True}, T3), ("empty_tuple", {"axis": ()}, M),
        ("vector", {}, V), ("scalar", {}, S), ("scalar_axis_none_keepdims", {"keepdims": True}, S),
        ("transposed_view", {"axis": 0}, BIG.T), ("reversed_view", {"axis": 1}, BIG[::-1, ::2]),
        ("float32", {"axis": 0}, F32), ("float32_all", {}, F32),
    ]
] + [
    case("sum_method", lambda a: a.sum(axis=1), lambda a: a.sum(axis=1), M),
    case("mean_method", lambda a: a.mean(axis=0, keepdims=True), lambda a: a.mean(axis=0, keepdims=True), M),
    case("max_method", lambda a: a.max(axis=-1), lambda a: a.max(axis=-1), M),
    case("sum_int32_int64", T.sum, np.sum, I32),
    case("sum_int32_axis", lambda a: T.sum(a, axis=0), lambda a: np.sum(a, axis=0), I32),
    case("sum_int8_no_overflow", T.sum, np.sum, I8),
    case("sum_uint8_uint64", T.sum, np.sum, U8),
    case("sum_bool_counts", lambda a: T.sum(a, axis=1), lambda a: np.sum(a, axis=1), B1),
    case("sum_dtype_int8_wraps", lambda a: T.sum(a, dtype="int8"), lambda a: np.sum(a, dtype="int8"), I8),
    case("sum_dtype_float64", lambda a: T.sum(a, axis=0, dtype="float64"), lambda a: np.sum(a, axis=0, dtype="float64"), F32),
    case("sum_int_dtype_float32", lambda a: T.sum(a, dtype="float32"), lambda a: np.sum(a, dtype="float32"), I32),
    case("mean_int_float64", T.mean, np.mean, I32),
    case("mean_bool_float64", lambda a: T.mean(a, axis=0), lambda a: np.mean(a, axis=0), B1),
    case("mean_int8_dtype_float32", lambda a: T.mean(a, dtype="float32"), lambda a: np.mean(a, dtype="float32"), I8),
    case("mean_float32_dtype_float64", lambda a: T.mean(a, axis=1, dtype="float64"), lambda a: np.mean(a, axis=1, dtype="float64"), F32),
    case("max_int8", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), I8),
    case("max_uint8", T.max, np.max, U8),
    case("max_int64", lambda a: T.max(a, axis=0), lambda a: np.max(a, axis=0), I64),
    case("max_bool", lambda a: T.max(a, axis=0), lambda a: np.max(a, axis=0), B1),
    case("sum_empty_all", T.sum, np.sum, E03),
    case("sum_empty_axis", lambda a: T.sum(a, axis=0), lambda a: np.sum(a, axis=0), E03),
    case("sum_empty_result", lambda a: T.sum(a, axis=1), lambda a: np.sum(a, axis=1), E03),
    case("mean_empty_result", lambda a: T.mean(a, axis=1), lambda a: np.mean(a, axis=1), E03),
    case("max_empty_result", lambda a: T.max(a, axis=1), lambda a: np.max(a, axis=1), E03),
    case("max_over_nonempty_axis", lambda a: T.max(a, axis=0), lambda a: np.max(a, axis=0), E30),
    case("sum_int_empty", T.sum, np.sum, np.zeros((0, 2), "int8")),
    case("reductions_chain", lambda a: T.max(a, axis=0) - T.mean(a) + T.sum(a ** 2, axis=0),
         lambda a: np.max(a, axis=0) - np.mean(a) + np.sum(a ** 2, axis=0), M),
]


@pytest.mark.parametrize("build, expected, values, grad", REDUCTIONS)
def test_reductions(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


def test_reduction_method_dtype(backend):
    """Theano's methods take dtype=: ``x.sum(axis=0, dtype='float64')``, ``x.mean(dtype='float32')``."""
    check(lambda a: a.sum(axis=0, dtype="float64"), [F32], backend, expected=F32.sum(axis=0, dtype="float64"))
    check(lambda a: a.mean(dtype="float32"), [I8], backend, expected=I8.mean(dtype="float32"))


def test_mean_of_empty_is_nan_without_warnings(backend):
    x = T.matrix("x")
    f = arignote.function([x], [T.mean(x), T.mean(x, axis=0)], backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total, columns = f(E03)
    assert np.isnan(total) and total.dtype == "float64"
    assert columns.shape == (3,) and np.isnan(columns).all()


@pytest.mark.parametrize("axis", [None, 0, (0, 1)])
def test_max_of_empty_raises_naming_max(axis, backend):
    x = T.matrix("x")
    f = arignote.function([x], T.max(x, axis=axis), backend=backend)
    with pytest.raises(ValueError, match="Max"):
        f(E03)


@pytest.mark.parametrize("reduce, name", [(T.sum, "Sum"), (T.mean, "Mean"), (T.max, "Max")])
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (1, -1), (0, 0)])
def test_reduction_axis_errors(reduce, name, axis):
    with pytest.raises(ValueError, match=name):
        reduce(T.matrix("x"), axis=axis)


@pytest.mark.parametrize("reduce", [T.sum, T.mean, T.max])
@pytest.mark.parametrize("axis", [0.5, "0", (0, 1.0)])
def test_reduction_axis_type_errors(reduce, axis):
    with pytest.raises(TypeError):
        reduce(T.matrix("x"), axis=axis)


def test_reduction_of_scalar_with_axis_0_is_an_error():
    with pytest.raises(ValueError, match="Sum"):
        T.sum(T.scalar(), axis=0)


def test_reduction_types():
    t = T.tensor3("t")
    assert T.sum(t, axis=1).broadcastable == (False, False)
    assert T.sum(t, axis=1, keepdims=True).broadcastable == (False, True, False)
    assert T.max(t, axis=(0, 2), keepdims=True).broadcastable == (True, False, True)
    assert T.mean(t).ndim == 0
    assert T.sum(T.row(), axis=1).broadcastable == (True,)
    assert T.sum(t, axis=-1).owner.op.axis == (2,)
    assert T.sum(t, axis=(2, 0)).owner.op.axis == (0, 2)


def test_max_gradient_goes_to_the_first_maximal_element(backend):
    x = T.matrix("x")
    f = arignote.function([x], T.grad(T.sum(T.max(x, axis=1) * np.array([1.0, 2.0])), x), backend=backend)
    np.testing.assert_array_equal(f(np.array([[1.0, 3.0, 3.0], [5.0, 4.0, 5.0]])),
                                  [[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    g = arignote.function([x], T.grad(T.max(x), x), backend=backend)
    np.testing.assert_array_equal(g(np.array([[1.0, 7.0], [7.0, 7.0]])), [[0.0, 1.0], [0.0, 0.0]])
    h = arignote.function([x], T.grad(T.max(x, axis=0, keepdims=True).sum(), x), backend=backend)
    np.testing.assert_array_equal(h(np.array([[2.0, np.inf], [2.0, 1.0]])), [[1.0, 1.0], [0.0, 0.0]])


def test_max_gradient_of_empty_result_is_empty(backend):
    x = T.matrix("x")
    f = arignote.function([x], T.grad(T.max(x, axis=1).sum(), x), backend=backend)
    assert f(E03).shape == (0, 3)


def test_mean_gradient_divides_by_count(backend):
    x = T.tensor3("x")
    f = arignote.function([x], T.grad(T.mean(x, axis=(0, 2)).sum(), x), backend=backend)
    np.testing.assert_allclose(f(T3), np.full(T3.shape, 1 / 8))


# ---------------------------------------------------------------------------------------------------
# DimShuffle, Reshape, Shape, ShapeI, MakeVector

SHAPES = [
    case("transpose", lambda a: a.T, lambda a: a.T, M),
    case("transpose_fn", T.transpose, np.transpose, T3),
    case("transpose_axes", lambda a: T.transpose(a, (1, 2, 0)), lambda a: np.transpose(a, (1, 2, 0)), T3),
    case("transpose_method", lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1), T3),
    case("vector_T", lambda a: a.T * 2, lambda a: a * 2, V),
    case("dimshuffle_row", lambda a: a.dimshuffle("x", 0), lambda a: a[None, :], V),
    case("dimshuffle_col", lambda a: a.dimshuffle(0, "x"), lambda a: a[:, None], V),
    case("dimshuffle_list", lambda a: a.dimshuffle([1, "x", 0]), lambda a: a.T[:, None, :], M),
    case("dimshuffle_tensor4", lambda a: a.dimshuffle("x", 0, "x", "x"), lambda a: a[None, :, None, None], V),
    case("dimshuffle_scalar", lambda s: s.dimshuffle("x", "x"), lambda s: s.reshape(1, 1), S),
    case("dimshuffle_drop", lambda a: a.dimshuffle("x", 0, 1).dimshuffle(2, 1), lambda a: a.T, M),
    case("dimshuffle_view", lambda a: a.dimshuffle(1, "x", 0), lambda a: a.T[:, None, :], BIG[::-1, ::2]),
    case("dimshuffle_empty", lambda a: a.dimshuffle(1, 0, "x"), lambda a: a.T[:, :, None], E03),
    case("dimshuffle_int", lambda a: a.dimshuffle(1, 0), lambda a: a.T, I8),
    case("dimshuffle_bool", lambda a: a.T, lambda a: a.T, B1),
    case("reshape_flat", lambda a: a.reshape((12,)), lambda a: a.reshape(12), M),
    case("reshape_minus1", lambda a: a.reshape((2, -1)), lambda a: a.reshape(2, -1), M),
    case("reshape_minus1_first", lambda a: a.reshape((-1, 3)), lambda a: a.reshape(-1, 3), M),
    case("reshape_flatten", lambda a: a.reshape((-1,)), lambda a: a.reshape(-1), T3),
    case("reshape_single_int", lambda a: a.reshape(-1), lambda a: a.reshape(-1), T3),
    case("reshape_varargs", lambda a: a.reshape(6, 2), lambda a: a.reshape(6, 2), M),
    case("reshape_list", lambda a: a.reshape([4, 3]), lambda a: a.reshape(4, 3), M),
    case("reshape_fn", lambda a: T.reshape(a, (2, 2, 3)), lambda a: a.reshape(2, 2, 3), M),
    case("reshape_to_scalar", lambda a: a.reshape(()), lambda a: a.reshape(()), np.array([2.5])),
    case("reshape_view", lambda a: a.reshape((3, 2, 2)), lambda a: a.reshape(3, 2, 2), BIG[::-1, ::2].T),
    case("reshape_transposed", lambda a: a.T.reshape((2, 6)), lambda a: a.T.reshape(2, 6), M),
    case("reshape_symbolic", lambda a: a.reshape((a.shape[0], -1)), lambda a: a.reshape(a.shape[0], -1), T3),
    case("reshape_symbolic_product", lambda a: a.reshape((a.shape[0] * a.shape[1], a.shape[2])),
         lambda a: a.reshape(6, 4), T3),
    case("reshape_symbolic_swap", lambda a: a.reshape((a.shape[1], a.shape[0])), lambda a: a.reshape(4, 3), M),
    case("reshape_empty", lambda a: a.reshape((3, 0)), lambda a: a.reshape(3, 0), E03),
    case("reshape_empty_minus1", lambda a: a.reshape((-1,)), lambda a: a.reshape(-1), E03),
    case("reshape_int", lambda a: a.reshape((4, -1)), lambda a: a.reshape(4, -1), I8),
    case("reshape_bool", lambda a: a.reshape((2, 6)), lambda a: a.reshape(2, 6), B1),
    case("reshape_then_add_row", lambda a, r: a.reshape((1, -1)) + r, lambda a, r: a.reshape(1, -1) + r, V, np.ones((3, 4))),
    case("shape", lambda a: a.shape, lambda a: np.array(a.shape, "int64"), M),
    case("shape_fn", T.shape, lambda a: np.array(a.shape, "int64"), T3),
    case("shape_view", lambda a: a.shape, lambda a: np.array(a.shape, "int64"), BIG[::-1, ::3]),
    case("shape_empty", lambda a: a.shape, lambda a: np.array(a.shape, "int64"), E03),
    case("shape_scalar", lambda a: a.shape, lambda a: np.zeros(0, "int64"), S),
    case("shape_int", lambda a: a.shape, lambda a: np.array(a.shape, "int64"), I8),
    case("shape_i", lambda a: a.shape[1], lambda a: np.int64(a.shape[1]), T3),
    case("shape_i_negative", lambda a: a.shape[-1], lambda a: np.int64(a.shape[-1]), T3),
    case("shape_i_fn", lambda a: T.shape_i(a, 0), lambda a: np.int64(a.shape[0]), E03),
    case("shape_in_arithmetic", lambda a: a * a.shape[0], lambda a: a * a.shape[0], M),
    case("shape_normalizes", lambda a: a.sum() / a.shape[1], lambda a: a.sum() / a.shape[1], M),
    case("shape_float32_arith", lambda a: a * T.cast(a.shape[0], "float32"), lambda a: a * np.float32(3), F32),
    case("make_vector", lambda s, t: T.as_tensor_variable([s, t * 2]), lambda s, t: np.array([s, t * 2]), S, S2),
    case("make_vector_constant", lambda s: T.as_tensor_variable([s, 1.5, s * s]), lambda s: np.array([s, 1.5, s * s]), S),
    case("make_vector_one", lambda s: T.as_tensor_variable([T.exp(s)]) * 2, lambda s: np.array([np.exp(s) * 2]), S),
    case("make_vector_mixed", lambda i, s: T.as_tensor_variable([i, s]), lambda i, s: np.array([i, s], "float64"), np.array(3, "int32"), S),
    case("make_vector_ints", lambda a: T.as_tensor_variable([a.shape[1], a.shape[0]]), lambda a: np.array([4, 3], "int64"), M),
    case("make_vector_float32", lambda a, b: T.as_tensor_variable([a, b]), lambda a, b: np.array([a, b], "float32"),
         np.array(1.5, "float32"), np.array(-2, "float32")),
]


@pytest.mark.parametrize("build, expected, values, grad", SHAPES)
def test_shapes(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


def test_make_vector_gradient_is_element_indexing(backend):
    """The gradient of MakeVector picks each element of the output gradient back out."""
    check(lambda a: T.as_tensor_variable([a[1], a[0] * a[2]]) ** 2, [V], backend,
          expected=np.array([V[1], V[0] * V[2]]) ** 2)


def test_second_derivative_through_make_vector(backend):
    s = T.scalar("s")
    cost = T.sum(T.as_tensor_variable([s, s * 3]) ** 2)  # 10 s^2
    f = arignote.function([s], T.grad(T.grad(cost, s), s), backend=backend)
    np.testing.assert_allclose(f(1.5), 20.0)


def test_dimshuffle_drops_broadcastable_axes(backend):
    r, t = T.row("r"), T.tensor(broadcastable=(False, True, False, True), name="t")
    assert r.dimshuffle(1).broadcastable == (False,)
    assert t.dimshuffle(2, 0).broadcastable == (False, False)
    f = arignote.function([r, t], [r.dimshuffle(1), t.dimshuffle(2, "x", 0)], backend=backend)
    tv = U(3, 1, 4, 1)
    got_r, got_t = f(V[None, :], tv)
    np.testing.assert_array_equal(got_r, V)
    np.testing.assert_array_equal(got_t, tv[:, 0, :, 0].T[:, None, :])
    g = arignote.function([t], T.grad(T.sum(t.dimshuffle(2, 0) * np.arange(4.0)[:, None]), t), backend=backend)
    np.testing.assert_array_equal(g(tv), np.broadcast_to(np.arange(4.0)[None, None, :, None], tv.shape))


@pytest.mark.parametrize("pattern, error", [
    ((0,), ValueError), ((0, 0), ValueError), ((0, 2), ValueError), ((1, 0, -1), ValueError), (("y", 0, 1), ValueError),
])
def test_dimshuffle_errors(pattern, error):
    with pytest.raises(error, match="dimshuffle"):
        T.matrix().dimshuffle(*pattern)


def test_dimshuffle_types():
    m = T.matrix()
    assert m.dimshuffle("x", 0, 1).broadcastable == (True, False, False)
    assert m.dimshuffle(1, 0) is not m and m.dimshuffle(0, 1) is m
    assert T.col().T.broadcastable == (True, False)
    assert T.row().T.broadcastable == (False, True)
    assert T.vector().T.broadcastable == (False,)


def test_reshape_types():
    m = T.matrix()
    assert m.reshape((1, -1)).broadcastable == (True, False)
    assert m.reshape((m.shape[0], 1)).broadcastable == (False, True)
    assert m.reshape((m.shape[0], -1)).ndim == 2
    assert T.reshape(m, T.lvector(), ndim=3).ndim == 3


def test_reshape_by_shape_vector_input(backend):
    check(lambda a, s: T.reshape(a, s, ndim=2), [M, np.array([2, 6])], backend, expected=M.reshape(2, 6))
    check(lambda a, s: T.reshape(a, s, ndim=1), [M, np.array([-1], "int32")], backend, expected=M.reshape(-1))


def test_reshape_like_another_variable(backend):
    """Theano's idiom ``x.reshape(y.shape)``: the length of a shape vector is y.ndim."""
    check(lambda a, b: a.reshape(b.shape), [M, np.zeros((2, 6))], backend, expected=M.reshape(2, 6))
    check(lambda a, b: T.reshape(a, b.shape), [T3, np.zeros((4, 6))], backend, expected=T3.reshape(4, 6))


def test_reshape_size_mismatch_names_reshape(backend):
    x = T.matrix("x")
    f = arignote.function([x], x.reshape((4, -1)), backend=backend)
    with pytest.raises(ValueError, match="Reshape"):
        f(np.ones((3, 3)))
    g = arignote.function([x], x.reshape((x.shape[0], 5)), backend=backend)
    with pytest.raises(ValueError) as info:
        g(M)
    assert "Reshape" in str(info.value) and "(3, 4)" in str(info.value)


def test_reshape_build_errors():
    m = T.matrix()
    with pytest.raises(ValueError, match="at most one -1"):
        m.reshape((-1, -1))
    with pytest.raises(ValueError):
        m.reshape((2, -3))
    with pytest.raises(TypeError, match="vector of ints"):
        T.reshape(m, T.vector(), ndim=2)
    with pytest.raises(ValueError, match="ndim"):
        T.reshape(m, T.lvector())
    with pytest.raises(ValueError, match="ndim"):
        T.reshape(m, T.constant(np.array([3, 4])), ndim=3)


def test_shape_errors():
    m = T.matrix("m")
    with pytest.raises(IndexError):
        m.shape[2]
    with pytest.raises(IndexError):
        m.shape[-3]
    with pytest.raises(ValueError, match="ShapeI"):
        T.shape_i(m, 2)
    assert m.shape.dtype == "int64" and m.shape.ndim == 1
    assert m.shape[0].ndim == 0 and m.shape[0].owner.op == ops.ShapeI(0)
    assert m.shape[-1].owner.op == ops.ShapeI(1)


def test_make_vector_rejects_non_scalars():
    with pytest.raises(TypeError):
        T.as_tensor_variable([T.scalar(), T.vector()])


# ---------------------------------------------------------------------------------------------------
# Dot

DOTS = [
    case("vector_vector", T.dot, np.dot, V, V[::-1].copy()),
    case("matrix_vector", T.dot, np.dot, M, V),
    case("vector_matrix", T.dot, np.dot, COL, M),
    case("matrix_matrix", T.dot, np.dot, M, N.T.copy()),
    case("matmul_operator", lambda a, b: a @ b, np.matmul, M, U(4, 2)),
    case("dot_method", lambda a, b: a.dot(b), np.dot, M, V),
    case("row_matrix", lambda r, m: T.dot(r.dimshuffle("x", 0), m), lambda r, m: r[None, :] @ m, COL, M),
    case("matrix_col", lambda m, c: T.dot(m, c.dimshuffle(0, "x")), lambda m, c: m @ c[:, None], M, V),
    case("col_row_outer", lambda c, r: T.dot(c.dimshuffle(0, "x"), r.dimshuffle("x", 0)),
         lambda c, r: np.outer(c, r), COL, V),
    case("outer_fn", T.outer, np.outer, COL, V),
    case("scalar_is_mul", T.dot, np.multiply, S, M),
    case("matrix_scalar_is_mul", T.dot, np.multiply, M, S),
    case("views", T.dot, np.dot, BIG.T, BIG2[::-1]),
    case("views_vector", T.dot, np.dot, BIG[::2, ::-1], BIG2[0, ::-1]),
    case("empty_inner", T.dot, np.dot, E30, np.zeros((0, 2))),
    case("empty_outer", T.dot, np.dot, E03, U(3, 2)),
    case("empty_vector", T.dot, np.dot, E0, E0),
    case("float32", T.dot, np.dot, F32, G32.T),
    case("float32_float64", T.dot, lambda a, b: np.dot(a.astype("float64"), b), F32, N.T),
    case("int8", T.dot, np.dot, I8, I8b.T),
    case("int32_float64", T.dot, lambda a, b: np.dot(a.astype("float64"), b), I32, V),
    case("bool", T.dot, np.dot, B1, B2.T),
    case("chain", lambda a, b, c: T.dot(T.dot(a, b), c), lambda a, b, c: a @ b @ c, M, U(4, 2), U(2, seed=9)),
    case("inf", T.dot, np.dot, np.array([[np.inf, 1.0]]), np.array([1.0, 2.0]), grad=False),
]


@pytest.mark.parametrize("build, expected, values, grad", DOTS)
def test_dot(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


def test_dot_types_and_errors(backend):
    assert T.dot(T.vector(), T.vector()).ndim == 0
    assert T.dot(T.matrix(), T.vector()).broadcastable == (False,)
    assert T.dot(T.vector(), T.matrix()).broadcastable == (False,)
    assert T.dot(T.row(), T.col()).broadcastable == (True, True)
    assert T.dot(T.row(), T.matrix()).broadcastable == (True, False)
    assert isinstance(T.dot(T.scalar(), T.matrix()).owner.op, ops.Mul)
    with pytest.raises(TypeError, match="dot"):
        ops.dot(T.tensor3(), T.matrix())  # the 2-d primitive; T.dot follows np.dot for any ranks
    a, b = T.matrix("a"), T.matrix("b")
    f = arignote.function([a, b], T.dot(a, b), backend=backend)
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((2, 3)))
    assert "Dot" in str(info.value) and "(2, 3)" in str(info.value)


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((3, 4), (4,)), ((3,), (3, 4)), ((3, 4), (4, 2))],
                         ids=["vv", "mv", "vm", "mm"])
def test_dot_gradients_are_the_textbook_ones(shapes, backend):
    a, b = (T.tensor(broadcastable=(False,) * len(s)) for s in shapes)
    av, bv = U(*shapes[0], seed=1), U(*shapes[1], seed=2)
    out = T.dot(a, b)
    w = U(*np.dot(av, bv).shape, seed=3)
    ga, gb = arignote.function([a, b], T.grad(T.sum(out * w), [a, b]), backend=backend)(av, bv)
    a2, b2, w2 = np.atleast_2d(av), bv.reshape(bv.shape[0], -1), w.reshape(np.atleast_2d(av).shape[0], -1)
    np.testing.assert_allclose(ga, (w2 @ b2.T).reshape(av.shape))
    np.testing.assert_allclose(gb, (a2.T @ w2).reshape(bv.shape))


# ---------------------------------------------------------------------------------------------------
# Gradients of Switch, Cast, Maximum/Minimum, Second, with exact expectations


def test_switch_gradient(backend):
    c, a, b = T.vector("c"), T.vector("a"), T.vector("b")
    out = T.switch(c > 0, a, b)
    ga, gb, gc = T.grad(T.sum(out * 3), [a, b, c])
    f = arignote.function([c, a, b], [ga, gb, gc], backend=backend)
    cv = np.array([1.0, -1.0, 0.0, 2.0])
    got_a, got_b, got_c = f(cv, V, V)
    np.testing.assert_array_equal(got_a, np.where(cv > 0, 3.0, 0.0))
    np.testing.assert_array_equal(got_b, np.where(cv > 0, 0.0, 3.0))
    np.testing.assert_array_equal(got_c, np.zeros(4))


def test_switch_gradient_to_broadcast_branch(backend):
    c, a, s = T.matrix("c"), T.matrix("a"), T.scalar("s")
    gs = T.grad(T.sum(T.switch(c > 0, a, s)), s)
    f = arignote.function([c, a, s], gs, backend=backend)
    np.testing.assert_allclose(f(N, M, np.array(1.0)), np.sum(N <= 0))


def test_cast_gradient(backend):
    x = T.vector("x")
    g = T.grad(T.sum(T.cast(x, "float32") * np.float32(2)), x)
    assert g.dtype == "float64"
    np.testing.assert_array_equal(arignote.function([x], g, backend=backend)(V), np.full(4, 2.0))
    y = T.fvector("y")
    g32 = T.grad(T.sum(T.cast(y, "float64") ** 2), y)
    assert g32.dtype == "float32"
    np.testing.assert_allclose(arignote.function([y], g32, backend=backend)(F32[0]), 2 * F32[0], rtol=1e-6)


def test_cast_to_integer_blocks_the_gradient(backend):
    """No gradient flows through a cast to an integer (Theano's rule): d/dx of int(x) * y is 0."""
    x, y = T.vector("x"), T.vector("y")
    gx, gy = T.grad(T.sum(T.cast(x, "int32") * y), [x, y])
    got_x, got_y = arignote.function([x, y], [gx, gy], backend=backend)(V * 3, V)
    np.testing.assert_array_equal(got_x, np.zeros(4))
    np.testing.assert_array_equal(got_y, (V * 3).astype("int32"))
    check(lambda a, b: T.cast(a, "int32") * b, [V * 3, V], backend, expected=(V * 3).astype("int32") * V)


def test_cast_to_same_dtype_is_no_node():
    x = T.fvector()
    assert T.cast(x, "float32") is x
    assert isinstance(T.cast(x, "float64").owner.op, ops.Cast)
    assert T.cast(x, "floatX").dtype == "float64"


def test_maximum_minimum_gradient_ties(backend):
    """On ties, Maximum's gradient goes to its first input, Minimum's too (like Theano's ge/le rule)."""
    x, y = T.vector("x"), T.vector("y")
    f = arignote.function([x, y], T.grad(T.sum(T.maximum(x, y)), [x, y]) + T.grad(T.sum(T.minimum(x, y)), [x, y]),
                          backend=backend)
    xv, yv = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])
    gmax_x, gmax_y, gmin_x, gmin_y = f(xv, yv)
    np.testing.assert_array_equal(gmax_x, [1, 1, 0])
    np.testing.assert_array_equal(gmax_y, [0, 0, 1])
    np.testing.assert_array_equal(gmin_x, [1, 0, 1])
    np.testing.assert_array_equal(gmin_y, [0, 1, 0])


def test_second_gradient(backend):
    x, y = T.matrix("x"), T.vector("y")
    gx, gy = T.grad(T.sum(T.second(x, y.dimshuffle("x", 0)) * 2), [x, y], disconnected_inputs="ignore")
    got_x, got_y = arignote.function([x, y], [gx, gy], backend=backend, on_unused_input="ignore")(M, V)
    np.testing.assert_array_equal(got_x, np.zeros_like(M))
    np.testing.assert_array_equal(got_y, np.full(4, 6.0))


def test_integer_ops_have_zero_gradients(backend):
    x = T.vector("x")
    cost = T.sum(x // 1.5 + T.sgn(x) + T.cast(x > 0, "float64"))
    np.testing.assert_array_equal(arignote.function([x], T.grad(cost, x), backend=backend)(V), np.zeros(4))


SORTED = U(3, 4, seed=11)


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_sort_and_argsort(axis, backend):
    check(lambda a: T.sort(a, axis) * 2, [SORTED], backend, expected=np.sort(SORTED, axis) * 2)
    check(lambda a: T.argsort(a, axis), [SORTED], backend, expected=np.argsort(SORTED, axis, kind="stable"))


def test_sort_gradient_goes_back_to_each_element(backend):
    weights = np.arange(4.0)
    x = T.dvector("x")
    f = arignote.function([x], T.grad((T.sort(x) * weights).sum(), x), backend=backend)
    values = np.array([3.0, -1.0, 2.0, 0.5])
    expected = np.empty(4)
    expected[np.argsort(values)] = weights
    np.testing.assert_array_equal(f(values), expected)


def test_theanos_three_spellings_of_xlogx():
    from arignote.tensor.xlogx import xlogx, xlogy0

    x, y = T.dvectors("x", "y")
    assert T.xlogx.xlogx is xlogx and T.xlogx.xlogy0 is xlogy0 is T.xlogy0
    assert type(T.xlogx(x).owner.op) is type(xlogx(x).owner.op)
    zero = arignote.function([x, y], [T.xlogx(x), T.xlogy0(x, y)], backend="reference")
    assert [r.tolist() for r in zero(np.zeros(2), np.array([0.0, np.inf]))] == [[0.0, 0.0], [0.0, 0.0]]
