"""The wrong answers of issue 21 (item 6, and the inputs of item 7), each against NumPy on every backend:
bitwise ops of a bool and an integer, NumPy's float floor division and remainder (and so the gradient
of %), inc_subtensor of an integer tensor by floats (core's one rule, IncSubtensor.sum_dtype), slice
steps near +-2**63, the IndexError of an index into an empty axis, big-endian inputs, ragged lists."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core import ops

_compiled = {}


def compiled(backend, build):
    """``build()`` -> (inputs, outputs), compiled once per backend (numba compiles cost seconds)."""
    if (backend, build) not in _compiled:
        inputs, outputs = build()
        _compiled[backend, build] = arignote.function(inputs, outputs, backend=backend)
    return _compiled[backend, build]


def assert_identical(actual, expected, what=""):
    """Same dtype, same values, NaN where NumPy has NaN, and the same sign of every zero."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    np.testing.assert_array_equal(actual, expected, err_msg=what)
    if actual.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected), err_msg=f"{what}: signs of zeros")


# ---- bitwise ops of a bool and an integer: NumPy computes them in the integer dtype (True & 2 is 0)

def _bitwise():
    b, i = T.scalar("b", dtype="bool"), T.lscalar("i")
    bv, iv = T.vector("bv", dtype="bool"), T.lvector("iv")
    return [b, i, bv, iv], [b & i, b | i, b ^ i, bv & iv, bv | iv, bv ^ iv, iv & bv]


def test_bitwise_ops_of_a_bool_and_an_integer_are_bitwise(backend):
    b, i, bv, iv = np.True_, np.int64(2), np.array([True, False, True]), np.array([2, 3, -1])
    got = compiled(backend, _bitwise)(b, i, bv, iv)
    want = [b & i, b | i, b ^ i, bv & iv, bv | iv, bv ^ iv, iv & bv]
    for k, (g, w) in enumerate(zip(got, want)):
        assert_identical(g, w, f"output {k}")


# ---- floor division and remainder of floats: NumPy's npy_divmod, signs of zeros included

X = np.array([1.0, np.inf, -np.inf, 5, -5, 5, -5, 0, -0.0, 0, np.nan, 1, 1e308, 3, -3, 7, 1e-300, -1e-300,
              -7.5, 7.5, 0.3, -0.3, 1, -1])
Y = np.array([0.001, 3, 3, -3, 3, 0, 0, -2, 2, 0, 1, np.nan, 1e-308, np.inf, np.inf, -np.inf, 1e300, 1e300,
              2, -2, 0.1, 0.1, -np.inf, np.inf])


def _divmod():
    x, y, xf, yf = T.dvector("x"), T.dvector("y"), T.fvector("xf"), T.fvector("yf")
    return [x, y, xf, yf], [x // y, x % y, xf // yf, xf % yf]


def test_float_floor_division_and_remainder_are_numpys(backend):
    with np.errstate(over="ignore"):  # 1e308 and 1e300 become inf
        xf, yf = X.astype(np.float32), Y.astype(np.float32)
    got = compiled(backend, _divmod)(X, Y, xf, yf)
    with np.errstate(all="ignore"):
        want = [X // Y, X % Y, xf // yf, xf % yf]
    assert want[0][0] == 999  # 1.0 // 0.001: 0.001 is a little more than a thousandth
    for what, g, w in zip(["float64 //", "float64 %", "float32 //", "float32 %"], got, want):
        assert_identical(g, w, what)


def _mod_grad():
    x, y = T.dvector("x"), T.dvector("y")
    return [x, y], arignote.grad(T.sum(x % y), [x, y])


def test_the_gradient_of_remainder_uses_numpys_floor_division(backend):
    x, y = np.array([1.0, 7.5, -7.5, 5]), np.array([0.001, 2, 2, -3])
    gx, gy = compiled(backend, _mod_grad)(x, y)
    assert_identical(gx, np.ones(4))
    assert_identical(gy, -(x // y))  # -999 for 1.0 % 0.001, not -1000


# ---- inc_subtensor of integers by floats: the sum in NumPy's dtype for x + y, as np.add.at

def _inc_int_by_float():
    x, y, ys = T.lvector("x"), T.dscalar("y"), T.dvector("ys")
    idx = T.lvector("idx")
    return [x, y, ys, idx], [T.inc_subtensor(x[1:], y),           # a basic region
                             T.inc_subtensor(x[idx], y),          # repeated positions: one sum at a time
                             T.inc_subtensor(x[idx], ys),
                             T.inc_subtensor(x[::2], -0.5),       # a bare Python float stays a float
                             T.set_subtensor(x[idx], ys)]


def test_inc_subtensor_of_integers_by_floats_adds_as_np_add_at(backend):
    x, y, ys, idx = np.array([2, -3, 5, 7]), -0.5, np.array([-0.5, 0.75, -0.5]), np.array([0, 0, 2])

    def add_at(index, value):
        out = x.copy()
        np.add.at(out, index, value)
        return out

    got = compiled(backend, _inc_int_by_float)(x, y, ys, idx)
    set_at = x.copy()
    set_at[idx] = ys
    want = [add_at(slice(1, None), y), add_at(idx, y), add_at(idx, ys), add_at(slice(None, None, 2), -0.5), set_at]
    assert want[1][0] == 0  # 2 - 0.5 = 1.5 -> 1, then 1 - 0.5 = 0.5 -> 0 (converting y first left 2)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_identical(g, w, f"output {k}")


def test_the_dtype_rule_of_inc_subtensor_is_decided_in_core():
    inc, put = ops.IncSubtensor([("slice", None, None, None)]), ops.IncSubtensor([("slice", None, None, None)], True)
    assert inc.sum_dtype("int64", "float64") == "float64"
    assert inc.sum_dtype("uint8", "int8") == "int16"
    assert inc.sum_dtype("float32", "float64") == "float64"
    assert put.sum_dtype("int64", "float64") == "int64"


# ---- slice steps near +-2**63, constant and symbolic

def _slices():
    x = T.dvector("x")
    return [x], [x[::2 ** 63 - 1], x[::-2 ** 63 + 1], x[::-(2 ** 63)], x[3::-(2 ** 63)],
                 x[-2 ** 63:2 ** 63 - 1:2 ** 63 - 1]]


def _slice_step():
    x, step = T.dvector("x"), T.lscalar("step")
    return [x, step], x[::step]


def test_slice_steps_near_the_int64_limits(backend):
    x = np.arange(5.0)
    got = compiled(backend, _slices)(x)
    want = [x[::2 ** 63 - 1], x[::-2 ** 63 + 1], x[::-(2 ** 63)], x[3::-(2 ** 63)], x[-2 ** 63:2 ** 63 - 1:2 ** 63 - 1]]
    for k, (g, w) in enumerate(zip(got, want)):
        assert_identical(g, w, f"output {k}")
    f = compiled(backend, _slice_step)
    for step in (2 ** 63 - 1, -2 ** 63 + 1, -2 ** 63, 2 ** 62, -3):
        assert_identical(f(x, step), x[::step], f"step {step}")


# ---- an index into an axis of size 0 is checked even when the result is empty

def _take_rows():
    m, idx = T.dmatrix("m"), T.lvector("idx")
    return [m, idx], m[idx]


def _inc_rows():
    m, idx = T.dmatrix("m"), T.lvector("idx")
    return [m, idx], T.inc_subtensor(m[idx], 1.0)


@pytest.mark.parametrize("build", [_take_rows, _inc_rows], ids=["subtensor", "inc_subtensor"])
def test_an_index_out_of_bounds_is_an_error_when_the_result_is_empty(backend, build):
    f = compiled(backend, build)
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 2"):
        f(np.zeros((2, 0)), np.array([5]))
    with pytest.raises(IndexError):
        f(np.zeros((2, 0)), np.array([-3]))
    assert f(np.zeros((2, 0)), np.array([1, -2])).shape == (2, 0)


def _set_columns():
    m, y = T.dmatrix("m"), T.dmatrix("y")
    return [m, y], T.set_subtensor(m[:, [1, 0]], y)


def test_an_index_out_of_bounds_is_reported_before_a_value_that_does_not_fit(backend):
    f = compiled(backend, _set_columns)
    with pytest.raises(IndexError, match="index 1 is out of bounds for axis 1 with size 0"):
        f(np.zeros((3, 0)), np.zeros((3, 0)))
    with pytest.raises(ValueError):
        f(np.zeros((3, 2)), np.zeros((3, 3)))
    assert_identical(f(np.zeros((3, 2)), np.arange(6.0).reshape(3, 2)), np.arange(6.0).reshape(3, 2)[:, ::-1])


def test_repeat_counts_of_dtype_uint64_are_refused_as_numpy_refuses_them():
    with pytest.raises(TypeError, match="int64"):
        np.repeat(np.arange(3), np.ones(3, dtype="uint64"))
    with pytest.raises(TypeError, match="repeat: repeats of dtype uint64 are not supported.*T.cast"):
        T.repeat(T.dvector("x"), T.vector("counts", dtype="uint64"))
    assert T.repeat(T.dvector("x"), T.vector("counts", dtype="uint32")).dtype == "float64"


# ---- inputs: another byte order is a layout, converted at the boundary; a ragged list names its input

def _double():
    m = T.dmatrix("m")
    return [m], m * 2


def test_big_endian_inputs_are_accepted(backend):
    f = compiled(backend, _double)
    for value in (np.arange(6, dtype=">f8").reshape(2, 3), np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)),
                  np.arange(6, dtype=">i4").reshape(2, 3)):
        assert_identical(f(value), value.astype(np.float64) * 2, str(value.dtype))


def test_a_ragged_list_input_names_the_input(backend):
    with pytest.raises(ValueError, match="input m of function: .*inhomogeneous"):
        compiled(backend, _double)([[1.0, 2.0], [3.0]])


# ---- IncPerRow (the gradient of picking one entry per row) adds as NumPy's x[i, y[i]] += v[i]

def _inc_per_row():
    from arignote.core import nnet

    x, v, y = T.fmatrix("x"), T.dvector("v"), T.lvector("y")
    return [x, v, y], nnet.IncPerRow()(x, v, y)


def test_inc_per_row_adds_in_numpys_dtype_and_refuses_what_numpy_refuses(backend):
    from arignote.core import nnet

    with pytest.raises(TypeError, match="IncPerRow.*float64.*int8"):
        nnet.IncPerRow()(T.matrix("m", dtype="int8"), T.dvector("v"), T.lvector("y"))
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    v, y = np.array([1.0, 2.0 ** -23 + 2.0 ** -49]), np.array([1, 0])
    expected = x.copy()
    expected[np.arange(2), y] += v  # in float64, then rounded to float32: 3 + 2**-22 (v rounded first: 3)
    assert expected[1, 0] > 3
    assert_identical(compiled(backend, _inc_per_row)(x, v, y), expected)


# ---- softmax and the cross-entropy of a bool matrix (numba's NaN-propagating max took numbers only)

def _bool_rows():
    from arignote.core import nnet

    x, y = T.matrix("x", dtype="bool"), T.lvector("y")
    return [x, y], [nnet.SoftmaxCrossentropy()(x, y), nnet.softmax(x), T.max(x, axis=1)]


def test_row_ops_of_a_bool_matrix(backend):
    x, y = np.array([[True, False, True], [False, False, True]]), np.array([0, 2])
    got = compiled(backend, _bool_rows)(x, y)
    expected = compiled("reference", _bool_rows)(x, y)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6)
        assert g.dtype == e.dtype


# ---- uint64 indices and bounds past int64's range (the backends index in int64, where they wrapped
# around to negative ones: x[i:] returned all of x)

def _uint64_indexing():
    from arignote.core.types import TensorType

    x, i = T.dmatrix("x"), TensorType("uint64", ())("i")
    return [x, i], [x[i:], x[1:i], x[::2][i:], T.inc_subtensor(x[i:], 1.0)]


def _uint64_index(kind):
    def build():
        from arignote.core.types import TensorType

        x, i = T.dmatrix("x"), TensorType("uint64", ())("i")
        return [x, i], {"scalar": x[i], "array": x[T.stack([i, i])], "inc": T.inc_subtensor(x[i], 1.0)}[kind]
    build.__name__ = f"uint64_{kind}"
    return build


_UINT64_INDEX = {kind: _uint64_index(kind) for kind in ("scalar", "array", "inc")}


@pytest.mark.parametrize("big", [2 ** 63 - 1, 2 ** 63, 2 ** 63 + 5, 2 ** 64 - 1])
def test_uint64_bounds_past_int64_clamp_like_python_ints(backend, big):
    x = np.arange(15.0).reshape(3, 5)
    got = compiled(backend, _uint64_indexing)(x, np.uint64(big))
    expected = [x[big:], x[1:big], x[::2][big:], x.copy()]
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_identical(g, e, f"output {k}")
    for kind, build in _UINT64_INDEX.items():
        with pytest.raises(IndexError):
            compiled(backend, build)(x, np.uint64(big))
        assert compiled(backend, build)(x, np.uint64(2)).shape[-1] == 5


# ---- integer powers wrap as NumPy's (numba's np.power of integers went through floats)

def _int_powers():
    x, y = T.lvector("x"), T.lvector("y")
    b = T.vector("b", dtype="uint8")
    return [x, y, b], [x ** y, x ** 3, b ** 5]


def test_integer_powers_wrap_as_numpy(backend):
    x = np.array([2 ** 63 - 1, 3, -3, 0, 1, -2 ** 63, 7], dtype=np.int64)
    y = np.array([3, 40, 39, 0, 5, 3, 0], dtype=np.int64)
    b = np.array([255, 3, 2, 0, 17, 200, 1], dtype=np.uint8)
    got = compiled(backend, _int_powers)(x, y, b)
    with np.errstate(all="ignore"):
        expected = [x ** y, x ** 3, b ** 5]
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_identical(g, e, f"output {k}")


# ---- reshape with -1 when another size is 0: NumPy cannot know the -1 and raises (numba returned one)

def _flatten_rows():
    x = T.tensor3("x")
    return [x], x.reshape((x.shape[0], -1))


def test_reshape_with_minus_one_beside_a_size_of_zero_raises(backend):
    f = compiled(backend, _flatten_rows)
    with pytest.raises(ValueError):
        np.zeros((0, 2, 2)).reshape((0, -1))
    with pytest.raises(ValueError):
        f(np.zeros((0, 2, 2)))
    assert f(np.zeros((2, 0, 3))).shape == (2, 0)
    assert f(np.ones((3, 2, 2))).shape == (3, 4)


# ---- the smallest integer divided by -1: the processor's division traps (SIGFPE killed numba's
# process); NumPy wraps the quotient and gives a remainder of 0

def _int_division():
    x, y = T.vector("x", dtype="int32"), T.vector("y", dtype="int32")
    a, b = T.lvector("a"), T.lvector("b")
    return [x, y, a, b], [x % y, x // y, a % b, a // b]


def test_the_smallest_integer_divided_by_minus_one(backend):
    low32, low64 = np.iinfo(np.int32).min, np.iinfo(np.int64).min
    x, y = np.array([low32, 7, -7, 5, low32], np.int32), np.array([-1, 0, -1, 3, 2], np.int32)
    a, b = np.array([low64, -9, 0, low64], np.int64), np.array([-1, -1, -1, 0], np.int64)
    got = compiled(backend, _int_division)(x, y, a, b)
    with np.errstate(all="ignore"):
        expected = [x % y, x // y, a % b, a // b]
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_identical(g, e, f"output {k}")
