"""Indexing: basic slicing (constant and symbolic bounds, negative steps), ints, None, Ellipsis, integer
arrays, boolean masks, set_subtensor and inc_subtensor on all of them; out-of-range errors; the
minibatch ``givens`` pattern; no aliasing of returned arrays. On every backend, against NumPy.

An index is written once as ``key(m, x, *index_values)`` with ``m`` the module (``T`` or ``np``), so
the same line builds the symbolic index and the NumPy one. ``check`` compares the backend with the
reference and with NumPy and runs verify_grad; gradients are also compared with NumPy's: for a plain
index by applying it to arrays of element numbers (``selection_grads``), for set/inc by hand.
"""

import numpy as np
import pytest

import arignote
import arignote.tensor as T

from checks import assert_same, check, freeze_arrays, selection_grads, symbolic_like, weighted_grads


def U(*shape, seed=0, low=-2.0, high=2.0, dtype="float64"):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


X = U(4, 5)
T3 = U(2, 3, 4, seed=1)
V = U(6, seed=2)
P = U(4, 3, seed=3, low=0.1, high=1.0)
F32 = U(4, 5, seed=4, dtype="float32")
IX = np.arange(20, dtype="int32").reshape(4, 5)
MASK = X > 0
freeze_arrays(globals())  # a backend must never write into its inputs


def i64(*values):
    return np.array(values if len(values) != 1 else values[0], dtype="int64")


class IndexOf:
    """Stands for an array in a ``key`` function: ``IndexOf(a)[key]`` is the key itself."""

    def __init__(self, array):
        self.shape = array.shape

    def __getitem__(self, key):
        return key


def numpy_index(key, x, idx):
    """The NumPy index that ``key`` applies to x."""
    return key(np, IndexOf(x), *idx)


def positions(index):
    """A NumPy index with boolean masks replaced by the positions they select (for np.add.at)."""
    result = []
    for part in index if isinstance(index, tuple) else (index,):
        if isinstance(part, np.ndarray) and part.dtype == bool:
            result.extend(np.nonzero(part))
        else:
            result.append(part)
    return tuple(result)


def sum_to_shape(g, shape):
    """g summed over the axes a value of ``shape`` was stretched along (leading axes, then size-1 axes)."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return g.sum(axis=tuple(a for a, s in enumerate(shape) if s == 1 and g.shape[a] != 1), keepdims=True)


# ---------------------------------------------------------------------------------------------------
# Reading: x[key]

def case(id, key, x, *index_values, grad=True):
    return pytest.param(key, x, index_values, grad, id=id)


READ = [
    # basic slicing with constant bounds
    case("slice", lambda m, x: x[1:3], X),
    case("slice_2d", lambda m, x: x[1:, ::2], X),
    case("slice_negative_bounds", lambda m, x: x[-3:-1, -2:], X),
    case("slice_reversed", lambda m, x: x[::-1], X),
    case("slice_negative_step", lambda m, x: x[3:0:-2, ::-3], X),
    case("slice_past_the_end", lambda m, x: x[2:10, 4:100], X),
    case("slice_empty", lambda m, x: x[3:1], X),
    case("slice_3d", lambda m, x: x[:, 1:, ::-1], T3),
    # symbolic bounds
    case("sym_start_stop", lambda m, x, a, b: x[a:b], X, i64(1), i64(3)),
    case("sym_start", lambda m, x, a: x[a:], V, i64(2)),
    case("sym_stop", lambda m, x, b: x[:b], V, i64(-2)),
    case("sym_negative_start", lambda m, x, a: x[a:, a:], X, i64(-2)),
    case("sym_step", lambda m, x, s: x[::s], V, i64(2)),
    case("sym_negative_step", lambda m, x, s: x[::s], V, i64(-1)),
    case("sym_negative_step_2", lambda m, x, a, b, s: x[a:b:s], V, i64(5), i64(0), i64(-2)),
    case("sym_negative_step_none_stop", lambda m, x, a, s: x[a::s, ::s], X, i64(-1), i64(-2)),
    case("sym_int32_bounds", lambda m, x, a, b: x[a:b, 1], X, np.array(0, "int32"), np.array(3, "int32")),
    case("sym_uint8_bound", lambda m, x, a: x[:, a:], X, np.array(2, "uint8")),
    case("sym_arithmetic", lambda m, x, i: x[i * 2:(i + 1) * 2], X, i64(1)),
    case("sym_empty", lambda m, x, a: x[a:], X, i64(9)),
    # ints (negative ones wrap)
    case("int", lambda m, x: x[1], X),
    case("int_negative", lambda m, x: x[-1], X),
    case("int_pair", lambda m, x: x[2, 3], X),
    case("int_pair_negative", lambda m, x: x[-4, -5], X),
    case("int_then_slice", lambda m, x: x[1, ::-2], X),
    case("int_3d", lambda m, x: x[:, -1, 2], T3),
    case("int_numpy_scalar", lambda m, x: x[np.int64(2)], X),
    case("sym_int", lambda m, x, i: x[i], X, i64(2)),
    case("sym_int_negative", lambda m, x, i: x[:, i], X, i64(-5)),
    case("sym_int_pair", lambda m, x, i, j: x[i, j], X, i64(-1), i64(0)),
    # None and Ellipsis
    case("none_col", lambda m, x: x[:, None], V),
    case("none_front", lambda m, x: x[None], X),
    case("none_many", lambda m, x: x[None, 1:, None, 0], X),
    case("none_after_int", lambda m, x: x[1, None], X),
    case("ellipsis_last", lambda m, x: x[..., 1], T3),
    case("ellipsis_first", lambda m, x: x[0, ...], T3),
    case("ellipsis_middle", lambda m, x: x[1, ..., ::-1], T3),
    case("ellipsis_none", lambda m, x: x[..., None], X),
    case("ellipsis_alone", lambda m, x: x[...], X),
    # integer arrays
    case("int_array", lambda m, x, i: x[i], X, i64(3, 0, 2)),
    case("int_array_repeated", lambda m, x, i: x[i], X, i64(1, 1, 3, 1)),
    case("int_array_negative", lambda m, x, i: x[i], V, i64(-1, 0, -6)),
    case("int_array_columns", lambda m, x, i: x[:, i], X, i64(4, 4, 0)),
    case("int_array_int32", lambda m, x, i: x[i], X, np.array([2, 2], "int32")),
    case("int_array_int8", lambda m, x, i: x[i], V, np.array([-1, 3], "int8")),
    case("int_array_uint8_columns", lambda m, x, i: x[1:, i], X, np.array([3, 0], "uint8")),
    case("int_array_2d", lambda m, x, i: x[i], V, i64([0, 5], [5, 5])),
    case("int_array_2d_rows", lambda m, x, i: x[i], X, i64([0, 1], [3, 3])),
    case("int_array_empty", lambda m, x, i: x[i], X, np.zeros(0, "int64")),
    case("arange_pairs", lambda m, x, y: x[m.arange(x.shape[0]), y], P, i64(2, 0, 1, 1)),
    case("two_arrays", lambda m, x, i, j: x[i, j], X, i64(0, 3, 3), i64(4, -1, 4)),
    case("array_and_slice", lambda m, x, i: x[i, 1:4], X, i64(3, 0, 3)),
    case("array_and_int", lambda m, x, i: x[i, -1], X, i64(2, 1)),
    case("array_3d_middle", lambda m, x, i: x[:, i], T3, i64(2, 0)),
    case("arrays_3d_split", lambda m, x, i: x[i, :, i], T3, i64(1, 0)),
    case("array_and_none", lambda m, x, i: x[:, i, None], T3, i64(2)),
    case("list_index", lambda m, x: x[[0, 2, 2]], X),
    case("list_index_negative", lambda m, x: x[[-1, 0]], V),
    case("list_pairs", lambda m, x: x[[0, 2], [1, 1]], X),
    case("list_columns", lambda m, x: x[:, [4, 0]], X),
    case("ndarray_index", lambda m, x: x[np.array([3, 1])], X),
    # boolean masks
    case("mask", lambda m, x, k: x[k], X, MASK),
    case("mask_rows", lambda m, x, k: x[k], X, np.array([True, False, True, True])),
    case("mask_columns", lambda m, x, k: x[:, k], X, np.array([False, True, True, False, True])),
    case("mask_all_false", lambda m, x, k: x[k], X, np.zeros((4, 5), bool)),
    case("mask_3d_leading", lambda m, x, k: x[k], T3, T3[:, :, 0] > 0),
    case("mask_list", lambda m, x: x[[True, False, False, True]], X),
    case("int_index_of_ints", lambda m, x, i: x[i, ::2], IX, i64(0, -1)),
    case("mask_of_ints", lambda m, x, k: x[k], IX, IX % 3 == 0),
    case("float32", lambda m, x, i: x[i, 1:], F32, i64(3, 3)),
]


@pytest.mark.parametrize("key, x, index_values, grad", READ)
def test_read(key, x, index_values, grad, backend):
    build = lambda x, *idx: key(T, x, *idx)  # noqa: E731
    expected = lambda x, *idx: np.array(key(np, x, *idx))  # noqa: E731
    values = [x, *index_values]
    check(build, values, backend, expected=expected(*values), grad=grad)
    if grad and x.dtype.kind == "f":
        (g,), weights = weighted_grads(build, values, backend)
        assert_same(g, selection_grads(expected, values, weights)[0].astype(x.dtype), "gradient of x")


def test_read_with_a_mask_computed_from_x(backend):
    x = T.matrix("x")
    f = arignote.function([x], [x[x > 0], T.grad(T.sum(x[x > 0] ** 2), x)], backend=backend)
    values, g = f(X)
    np.testing.assert_array_equal(values, X[X > 0])
    np.testing.assert_allclose(g, np.where(X > 0, 2 * X, 0), rtol=1e-12)
    v = T.vector("v")
    out = arignote.function([v], v[(v > 0) & (v < 1)], backend=backend)(V)
    np.testing.assert_array_equal(out, V[(V > 0) & (V < 1)])


def test_repeated_indices_accumulate_in_the_gradient(backend):
    W, idx = T.matrix("W"), T.lvector("idx")
    g = arignote.function([W, idx], T.grad(T.sum(W[idx]), W), backend=backend)(X, [1, 1, 3, 1])
    expected = np.zeros_like(X)
    expected[1], expected[3] = 3.0, 1.0
    np.testing.assert_array_equal(g, expected)
    p, y = T.matrix("p"), T.lvector("y")
    nll = -T.mean(T.log(p)[T.arange(y.shape[0]), y])
    g = arignote.function([p, y], T.grad(nll, p), backend=backend)(P, [2, 0, 2, 2])
    expected = np.zeros_like(P)
    expected[[0, 1, 2, 3], [2, 0, 2, 2]] = -1 / (4 * P[[0, 1, 2, 3], [2, 0, 2, 2]])
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_indexing_types():
    x, i, iv = T.matrix("x"), T.lscalar("i"), T.lvector("iv")
    assert x[1].broadcastable == (False,) and x[1, 2].ndim == 0
    assert x[:, None].broadcastable == (False, True, False)
    assert x[i:].ndim == 2 and x[i].ndim == 1
    assert x[iv].broadcastable == (False, False) and x[iv, 0].ndim == 1
    assert x[x > 0].ndim == 1
    assert T.row()[:, 1:].broadcastable == (True, False)
    assert T.tensor3()[..., 0].ndim == 2
    assert x[T.lmatrix()].ndim == 3


@pytest.mark.parametrize("key, error", [
    (lambda x: x[1, 2, 3], IndexError),
    (lambda x: x[..., 1, ...], IndexError),
    (lambda x: x[::0], ValueError),
    (lambda x: x[1.5], TypeError),
    (lambda x: x[T.scalar()], TypeError),
    (lambda x: x[T.vector()], IndexError),
    (lambda x: x[T.lscalar():T.scalar()], TypeError),
])
def test_bad_indices_are_refused_when_building(key, error):
    with pytest.raises(error):
        key(T.matrix("x"))


# ---------------------------------------------------------------------------------------------------
# Writing: set_subtensor and inc_subtensor

def write_case(id, key, x, y, *index_values):
    return pytest.param(key, x, y, index_values, id=id)


WRITE = [
    write_case("slice", lambda m, x: x[1:3], X, U(2, 5, seed=10)),
    write_case("slice_negative_step", lambda m, x: x[::-2, 1:], X, U(2, 4, seed=10)),
    write_case("int", lambda m, x: x[2], X, U(5, seed=10)),
    write_case("int_negative", lambda m, x: x[-1, -2], X, np.array(9.0)),
    write_case("none", lambda m, x: x[None, 1:3], V, U(1, 2, seed=10)),
    write_case("ellipsis", lambda m, x: x[..., 0], T3, U(2, 3, seed=10)),
    write_case("sym_slice", lambda m, x, a, b: x[a:b], X, U(2, 5, seed=10), i64(1), i64(3)),
    write_case("sym_negative_step", lambda m, x, a, s: x[a::s], V, U(3, seed=10), i64(-1), i64(-2)),
    write_case("sym_int", lambda m, x, i: x[:, i], X, U(4, seed=10), i64(-2)),
    write_case("scalar_into_slice", lambda m, x: x[1:, 2:], X, np.array(5.0)),
    write_case("vector_into_rows", lambda m, x: x[1:3], X, U(5, seed=10)),
    write_case("vector_into_column_block", lambda m, x: x[:, 1:3], X, U(2, seed=10)),
    write_case("int_array", lambda m, x, i: x[i], X, U(2, 5, seed=10), i64(3, 0)),
    write_case("int_array_repeated", lambda m, x, i: x[i], X, U(4, 5, seed=10), i64(1, 3, 1, 1)),
    write_case("int_array_repeated_row", lambda m, x, i: x[i], X, U(5, seed=10), i64(2, 2)),
    write_case("int_array_repeated_scalar", lambda m, x, i: x[i], V, np.array(2.5), i64(0, -6, 0)),
    write_case("int_array_columns", lambda m, x, i: x[:, i], X, U(4, 3, seed=10), i64(4, 0, 4)),
    write_case("int_array_2d", lambda m, x, i: x[i], V, U(2, 2, seed=10), i64([0, 1], [1, 5])),
    write_case("arange_pairs", lambda m, x, y: x[m.arange(x.shape[0]), y], P, U(4, seed=10), i64(2, 0, 1, 1)),
    write_case("pairs_repeated", lambda m, x, i, j: x[i, j], X, U(3, seed=10), i64(0, 0, 3), i64(1, 1, -1)),
    write_case("array_and_slice", lambda m, x, i: x[i, 1:4], X, U(2, 3, seed=10), i64(3, 3)),
    write_case("list_index", lambda m, x: x[[0, 2, 0]], X, U(3, 5, seed=10)),
    write_case("mask", lambda m, x, k: x[k], X, U(int(MASK.sum()), seed=10), MASK),
    write_case("mask_scalar", lambda m, x, k: x[k], X, np.array(-1.0), MASK),
    write_case("mask_rows", lambda m, x, k: x[k], X, U(5, seed=10), np.array([True, False, False, True])),
    write_case("mask_columns", lambda m, x, k: x[:, k], X, U(4, 2, seed=10), np.array([0, 1, 0, 0, 1], bool)),
]


def numpy_write(key, set_instead, x, y, *idx):
    out = np.array(x, dtype=x.dtype)
    index = numpy_index(key, x, idx)
    if set_instead:
        out[index] = y
    else:
        np.add.at(out, positions(index), y)  # repeated positions accumulate
    return out


def numpy_write_grads(key, set_instead, x, y, idx, w):
    """d sum(result * w) / dx and / dy for set_subtensor / inc_subtensor, by hand."""
    index = numpy_index(key, x, idx)
    if not set_instead:
        return w, sum_to_shape(np.asarray(w[index]), y.shape)
    gx = w.copy()
    gx[index] = 0.0
    # each position of x keeps the last value written to it: only that element of (stretched) y counts
    region = np.asarray(w[index])
    numbers = np.arange(region.size).reshape(region.shape)
    written = np.full(x.shape, -1)
    written[index] = numbers
    return gx, sum_to_shape(np.where(written[index] == numbers, region, 0.0), y.shape)


@pytest.mark.parametrize("set_instead", [True, False], ids=["set", "inc"])
@pytest.mark.parametrize("key, x, y, index_values", WRITE)
def test_write(key, x, y, index_values, set_instead, backend):
    write = T.set_subtensor if set_instead else T.inc_subtensor
    build = lambda x, y, *idx: write(key(T, x, *idx), y)  # noqa: E731
    values = [x, y, *index_values]
    check(build, values, backend, expected=numpy_write(key, set_instead, *values))
    (gx, gy), w = weighted_grads(build, values, backend)
    ex, ey = numpy_write_grads(key, set_instead, x, y, index_values, w)
    assert_same(gx, ex, "gradient of x")
    assert_same(gy, ey, "gradient of y")


def test_inc_subtensor_repeated_indices_accumulate(backend):
    x, i, y = T.matrix("x"), T.lvector("i"), T.matrix("y")
    f = arignote.function([x, i, y], T.inc_subtensor(x[i], y), backend=backend)
    out = f(np.zeros((3, 2)), [0, 2, 0, 0], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]))
    np.testing.assert_array_equal(out, [[13.0, 16.0], [0.0, 0.0], [3.0, 4.0]])
    v, s = T.vector("v"), T.scalar("s")
    g = arignote.function([v, s], T.inc_subtensor(v[[1, 1, 1]], s), backend=backend)
    np.testing.assert_array_equal(g(np.zeros(3), 2.0), [0.0, 6.0, 0.0])
    # a counting pattern: bincount by inc_subtensor
    counts = arignote.function([i], T.inc_subtensor(T.zeros((4,), "int64")[i], 1), backend=backend)
    np.testing.assert_array_equal(counts([3, 0, 3, 3, 1]), [1, 1, 0, 3])


def test_set_subtensor_repeated_indices_keep_the_last_value(backend):
    x, i, y = T.vector("x"), T.lvector("i"), T.vector("y")
    out = T.set_subtensor(x[i], y)
    f = arignote.function([x, i, y], [out, *T.grad(T.sum(out * [1.0, 10.0, 100.0]), [x, y])], backend=backend)
    result, gx, gy = f(np.zeros(3), [2, 0, 2], np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(result, [2.0, 0.0, 3.0])
    np.testing.assert_array_equal(gx, [0.0, 10.0, 0.0])
    np.testing.assert_array_equal(gy, [0.0, 1.0, 100.0])  # the first write to position 2 is lost


def test_value_broadcasting_into_a_region(backend):
    """A row (broadcastable) stretches over the rows of a region; a (1, n) matrix does not."""
    x, r, m = T.matrix("x"), T.row("r"), T.matrix("m")
    f = arignote.function([x, r], T.inc_subtensor(x[1:3], r), backend=backend)
    row = np.arange(5.0)[None]
    np.testing.assert_array_equal(f(X, row), X + np.array([0, 1, 1, 0])[:, None] * row)
    g = arignote.function([x, r], T.grad(T.sum(T.set_subtensor(x[1:3], r) * X), r), backend=backend)
    np.testing.assert_array_equal(g(X, row), X[1:3].sum(axis=0, keepdims=True))
    h = arignote.function([x, m], T.set_subtensor(x[1:3], m), backend=backend)
    with pytest.raises(ValueError, match="SetSubtensor"):
        h(X, row)
    c = T.col("c")
    k = arignote.function([x, c], T.set_subtensor(x[:, [0, 2]], c), backend=backend)
    col = np.array([[1.0], [2.0], [3.0], [4.0]])
    expected = X.copy()
    expected[:, [0, 2]] = col
    np.testing.assert_array_equal(k(X, col), expected)


def test_write_value_shape_errors(backend):
    x, v = T.matrix("x"), T.vector("v")
    with pytest.raises(TypeError):
        T.set_subtensor(x[1], T.matrix())  # more axes than the region
    with pytest.raises(TypeError, match="indexed variable"):
        T.set_subtensor(x, v)
    f = arignote.function([x, v], T.set_subtensor(x[x > 0], v), backend=backend)
    with pytest.raises(ValueError, match="SetSubtensor"):
        f(X, np.ones(int(MASK.sum()) + 1))


def test_write_types(backend):
    x, i = T.fmatrix("x"), T.lvector("i")
    assert T.set_subtensor(x[1:], 2.0).dtype == "float32"
    assert T.inc_subtensor(x[i], 1).dtype == "float32"
    assert T.inc_subtensor(T.row()[:, 1:], 1.0).broadcastable == (True, False)
    f = arignote.function([x, i], T.inc_subtensor(x[i], 0.5), backend=backend)
    out = f(F32, [0, 0])
    assert out.dtype == "float32"
    np.testing.assert_array_equal(out[0], F32[0] + np.float32(1.0))


# ---------------------------------------------------------------------------------------------------
# Out-of-range indices


OUT_OF_RANGE = [
    pytest.param(lambda x: x[7], [], "7", "0", "4", id="const_int"),
    pytest.param(lambda x: x[-5], [], "-5", "0", "4", id="const_negative_int"),
    pytest.param(lambda x: x[1, 5], [], "5", "1", "5", id="const_int_axis1"),
    pytest.param(lambda x, i: x[i], [i64(4)], "4", "0", "4", id="sym_int"),
    pytest.param(lambda x, i: x[:, i], [i64(-6)], "-6", "1", "5", id="sym_negative_int_axis1"),
    pytest.param(lambda x, i: x[i], [i64(0, 9, 1)], "9", "0", "4", id="int_array"),
    pytest.param(lambda x, i: x[i], [i64(-5)], "-5", "0", "4", id="int_array_negative"),
    pytest.param(lambda x, i: x[:, i], [i64(2, 5)], "5", "1", "5", id="int_array_axis1"),
    pytest.param(lambda x, i: x[T.arange(4), i], [i64(0, 1, 7, 2)], "7", "1", "5", id="arange_pairs"),
    pytest.param(lambda x: x[[0, 4]], [], "4", "0", "4", id="list"),
]


@pytest.mark.parametrize("write", [None, T.set_subtensor, T.inc_subtensor], ids=["read", "set", "inc"])
@pytest.mark.parametrize("key, index_values, index, axis, size", OUT_OF_RANGE)
def test_out_of_range_index_names_axis_index_and_size(key, index_values, index, axis, size, write, backend):
    inputs = symbolic_like([X, *index_values])
    out = key(*inputs)
    if write is not None:
        out = write(out, 1.0)
    f = arignote.function(inputs, out, backend=backend)
    with pytest.raises(IndexError) as info:
        f(X, *index_values)
    message = str(info.value)
    assert f"index {index}" in message and f"axis {axis}" in message and f"size {size}" in message, message


def test_out_of_range_slices_are_clipped_as_in_numpy(backend):
    x, a, b = T.matrix("x"), T.lscalar("a"), T.lscalar("b")
    f = arignote.function([x, a, b], x[a:b], backend=backend)
    np.testing.assert_array_equal(f(X, -100, 100), X)
    assert f(X, 10, 20).shape == (0, 5)


# ---------------------------------------------------------------------------------------------------
# The minibatch pattern, and aliasing


def test_minibatch_givens_with_a_symbolic_slice_of_shared_data(backend):
    data = np.arange(40.0).reshape(10, 4)
    labels = np.arange(10) % 3
    shared_x = arignote.shared(data, name="shared_x")
    shared_y = arignote.shared(labels.astype("float64"), name="shared_y")
    y_int = T.cast(shared_y, "int32")
    index, batch_size = T.lscalar("index"), 3
    x, y = T.matrix("x"), T.ivector("y")
    w = arignote.shared(np.zeros((4, 3)), name="w")
    p = T.nnet.softmax(T.dot(x, w))
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y])
    train = arignote.function(
        [index], [cost, x.sum(axis=1), y], updates=[(w, w - 0.01 * T.grad(cost, w))],
        givens={x: shared_x[index * batch_size:(index + 1) * batch_size],
                y: y_int[index * batch_size:(index + 1) * batch_size]},
        backend=backend)
    c, sums, ys = train(1)
    np.testing.assert_allclose(c, np.log(3.0), rtol=1e-12)
    np.testing.assert_array_equal(sums, data[3:6].sum(axis=1))
    np.testing.assert_array_equal(ys, labels[3:6])
    assert ys.dtype == "int32"
    xb, yb = data[3:6], labels[3:6]
    gw = xb.T @ (np.full((3, 3), 1 / 3) - np.eye(3)[yb]) / 3
    np.testing.assert_allclose(w.get_value(), -0.01 * gw, rtol=1e-12, atol=1e-15)
    c, sums, ys = train(3)  # the last, short batch
    np.testing.assert_array_equal(sums, data[9:].sum(axis=1))
    np.testing.assert_array_equal(ys, labels[9:])


def test_indexing_results_do_not_alias_the_input(backend):
    x, i = T.matrix("x"), T.lvector("i")
    outputs = [x[1:3], x[::-1].T, x[1], x[..., None], x[i], x[x > 0], T.set_subtensor(x[0], 0.0), x[0, 0]]
    f = arignote.function([x, i], outputs, backend=backend)
    a = np.array(X)
    results = f(a, [0, 0])
    for r in results:
        assert r.flags.writeable
        r[...] = 123.0
    np.testing.assert_array_equal(a, X)
    again = f(a, [0, 0])
    np.testing.assert_array_equal(again[0], X[1:3])


def test_indexing_results_do_not_alias_shared_values_or_each_other(backend):
    s = arignote.shared(np.array(X), name="s")
    f = arignote.function([], [s[1:3], s[1:3], s.T[0], s[-1]], backend=backend)
    first, second, column, last = f()
    first[...] = 7.0
    column[...] = 8.0
    last[...] = 9.0
    np.testing.assert_array_equal(second, X[1:3])
    np.testing.assert_array_equal(s.get_value(), X)
    np.testing.assert_array_equal(f()[0], X[1:3])
