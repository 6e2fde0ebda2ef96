"""Products of any rank (core/linalg.py): dot, tensordot, batched_dot, batched_tensordot, matmul.

Most tests are one line of a table: ``case(id, build, numpy_expected, *values)``; ``check`` compares
the backend with the reference and with NumPy (dtype included) and runs verify_grad on float inputs.
"""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core import linalg, ops
from arignote.core.graph import toposort

from checks import check, symbolic_like


def U(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, shape).astype(dtype)


def I(*shape, seed=0, dtype="int32"):
    return np.random.default_rng(seed).integers(-4, 5, shape).astype(dtype)


def case(id, build, expected, *values, grad=True):
    return pytest.param(build, expected, values, grad, id=id)


def einsum(spec):
    return lambda *xs: np.einsum(spec, *xs)


def td(axes):
    return lambda a, b: np.tensordot(a, b, axes)


# np.dot accepts every pair of ranks; the summed size is 3 (a's last axis, b's second-to-last).
DOT_A = {0: (), 1: (3,), 2: (2, 3), 3: (4, 2, 3), 4: (2, 1, 2, 3)}
DOT_B = {0: (), 1: (3,), 2: (3, 2), 3: (2, 3, 4), 4: (2, 1, 3, 2)}
# np.matmul: (..., n, k) @ (..., k, m) with k = 4; batch axes (2, 3) align on the right.
MM_A = {1: (4,), 2: (2, 4), 3: (3, 2, 4), 4: (2, 3, 2, 4)}
MM_B = {1: (4,), 2: (4, 2), 3: (3, 4, 2), 4: (2, 3, 4, 2)}

DOT_CASES = [case(f"dot-{ra}d-{rb}d", T.dot, np.dot, U(*DOT_A[ra]), U(*DOT_B[rb], seed=1))
             for ra in range(5) for rb in range(5)]
MATMUL_CASES = [case(f"matmul-{ra}d-{rb}d", T.matmul, np.matmul, U(*MM_A[ra]), U(*MM_B[rb], seed=1))
                for ra in range(1, 5) for rb in range(1, 5)]

CASES = DOT_CASES + MATMUL_CASES + [
    # tensordot: int axes (0 is the outer product), explicit axis lists, negative and permuted axes
    case("tensordot-axes0", lambda a, b: T.tensordot(a, b, 0), td(0), U(2, 3), U(3, 2, seed=1)),
    case("tensordot-axes0-scalar", lambda a, b: T.tensordot(a, b, 0), td(0), U(), U(3, 2, seed=1)),
    case("tensordot-axes1-1d", lambda a, b: T.tensordot(a, b, 1), td(1), U(3), U(3, seed=1)),
    case("tensordot-axes1-3d", lambda a, b: T.tensordot(a, b, 1), td(1), U(2, 3, 4), U(4, 2, 3, seed=1)),
    case("tensordot-default-3d", T.tensordot, td(2), U(2, 3, 4), U(3, 4, 2, seed=1)),
    case("tensordot-axes2-4d", lambda a, b: T.tensordot(a, b, 2), td(2),
         U(2, 1, 3, 2), U(3, 2, 2, 2, seed=1)),
    case("tensordot-axes3", lambda a, b: T.tensordot(a, b, 3), td(3), U(2, 2, 3, 2), U(2, 3, 2, 3, seed=1)),
    case("tensordot-all-axes", lambda a, b: T.tensordot(a, b, 2), td(2), U(2, 3), U(2, 3, seed=1)),
    case("tensordot-lists", lambda a, b: T.tensordot(a, b, [[1], [0]]), td([[1], [0]]),
         U(2, 3), U(3, 4, seed=1)),
    case("tensordot-int-pair", lambda a, b: T.tensordot(a, b, (0, 1)), td((0, 1)), U(3, 2), U(4, 3, seed=1)),
    case("tensordot-permuted", lambda a, b: T.tensordot(a, b, ([0, 2], [2, 0])), td(([0, 2], [2, 0])),
         U(2, 3, 4), U(4, 2, 2, seed=1)),
    case("tensordot-negative", lambda a, b: T.tensordot(a, b, ([-1, 0], [0, -1])), td(([-1, 0], [0, -1])),
         U(2, 3, 4), U(4, 3, 2, seed=1)),
    case("tensordot-middle-4d", lambda a, b: T.tensordot(a, b, ([1, 3], [2, 0])), td(([1, 3], [2, 0])),
         U(2, 3, 2, 2), U(2, 2, 3, 2, seed=1)),
    # batched_dot, Theano's shapes: (B, n, k)·(B, k, m), 2-d with 3-d, vectors, higher ranks
    case("batched_dot-3d-3d", T.batched_dot, einsum("bnk,bkm->bnm"), U(3, 2, 4), U(3, 4, 2, seed=1)),
    case("batched_dot-2d-2d", T.batched_dot, einsum("bk,bk->b"), U(3, 4), U(3, 4, seed=1)),
    case("batched_dot-3d-2d", T.batched_dot, einsum("bnk,bk->bn"), U(3, 2, 4), U(3, 4, seed=1)),
    case("batched_dot-2d-3d", T.batched_dot, einsum("bk,bkm->bm"), U(3, 4), U(3, 4, 2, seed=1)),
    case("batched_dot-1d-3d", T.batched_dot, lambda a, b: a[:, None, None] * b, U(3), U(3, 2, 4, seed=1)),
    case("batched_dot-2d-1d", T.batched_dot, lambda a, b: a * b[:, None], U(3, 2), U(3, seed=1)),
    case("batched_dot-4d-3d", T.batched_dot, einsum("bpnk,bkm->bpnm"), U(2, 3, 2, 4), U(2, 4, 3, seed=1)),
    case("batched_dot-3d-4d", T.batched_dot, einsum("bnk,bqkm->bnqm"), U(2, 3, 4), U(2, 2, 4, 3, seed=1)),
    case("batched_dot-4d-4d", T.batched_dot, einsum("bpnk,bqkm->bpnqm"),
         U(2, 2, 1, 3), U(2, 2, 3, 2, seed=1)),
    case("batched_dot-4d-2d", T.batched_dot, einsum("bpnk,bk->bpn"), U(2, 2, 3, 4), U(2, 4, seed=1)),
    case("batched_tensordot-int", lambda a, b: T.batched_tensordot(a, b, 2), einsum("bij,bijk->bk"),
         U(2, 3, 4), U(2, 3, 4, 2, seed=1)),
    case("batched_tensordot-lists", lambda a, b: T.batched_tensordot(a, b, ([1, 2], [2, 1])),
         einsum("bij,bjik->bk"), U(2, 3, 2), U(2, 2, 3, 4, seed=1)),
    # matmul batch axes stretch where their type is broadcastable (dimshuffle('x') makes such axes)
    case("matmul-bcast-a-front", lambda a, b: T.matmul(a.dimshuffle("x", 0, 1), b),
         lambda a, b: np.matmul(a[None], b), U(2, 4), U(3, 4, 2, seed=1)),
    case("matmul-bcast-b-front", lambda a, b: T.matmul(a, b.dimshuffle("x", 0, 1)),
         lambda a, b: np.matmul(a, b[None]), U(3, 2, 4), U(4, 2, seed=1)),
    case("matmul-bcast-both", lambda a, b: T.matmul(a.dimshuffle("x", 0, 1), b.dimshuffle("x", 0, 1)),
         lambda a, b: np.matmul(a[None], b[None]), U(2, 4), U(4, 2, seed=1)),
    case("matmul-bcast-cross", lambda a, b: T.matmul(a.dimshuffle("x", 0, 1, 2), b.dimshuffle(0, "x", 1, 2)),
         lambda a, b: np.matmul(a[None], b[:, None]), U(3, 2, 4), U(2, 4, 2, seed=1)),
    case("matmul-bcast-middle", lambda a, b: T.matmul(a, b.dimshuffle(0, "x", 1, 2)),
         lambda a, b: np.matmul(a, b[:, None]), U(2, 3, 2, 4), U(2, 4, 2, seed=1)),
    case("matmul-bcast-5d", lambda a, b: T.matmul(a.dimshuffle(0, "x", 1, 2, 3), b),
         lambda a, b: np.matmul(a[:, None], b), U(2, 1, 2, 3), U(3, 1, 3, 2, seed=1)),
    case("matmul-bcast-1d", lambda a, b: T.matmul(a, b.dimshuffle(0, "x", 1, 2)),
         lambda a, b: np.matmul(a, b[:, None]), U(4), U(2, 4, 2, seed=1)),
    # dtypes: float32, mixed, integers, booleans (NumPy's result dtype)
    case("dot-float32", T.dot, np.dot, U(2, 3, dtype="float32"), U(2, 3, 2, dtype="float32", seed=1)),
    case("matmul-float32", T.matmul, np.matmul, U(2, 2, 3, dtype="float32"),
         U(2, 3, 2, dtype="float32", seed=1)),
    case("tensordot-float32", T.tensordot, td(2), U(2, 3, 4, dtype="float32"),
         U(3, 4, dtype="float32", seed=1)),
    case("batched_dot-float32", T.batched_dot, einsum("bnk,bkm->bnm"), U(2, 2, 3, dtype="float32"),
         U(2, 3, 2, dtype="float32", seed=1)),
    case("matmul-float32-float64", T.matmul, np.matmul, U(2, 2, 3, dtype="float32"), U(2, 3, 2, seed=1)),
    case("dot-int32", T.dot, np.dot, I(2, 3, 4), I(4, 2, seed=1)),
    case("matmul-int64", T.matmul, np.matmul, I(2, 2, 3, dtype="int64"), I(2, 3, 2, dtype="int64", seed=1)),
    case("matmul-int8", T.matmul, np.matmul, I(2, 2, 3, dtype="int8"), I(3, 2, dtype="int8", seed=1)),
    case("tensordot-int-uint8", T.tensordot, td(2), I(2, 3, 4), I(3, 4, 2, dtype="uint8", seed=1)),
    case("batched_dot-int64", T.batched_dot, einsum("bnk,bkm->bnm"), I(2, 2, 3, dtype="int64"),
         I(2, 3, 2, dtype="int64", seed=1)),
    case("matmul-int-float", T.matmul, np.matmul, I(2, 2, 3), U(2, 3, 2, dtype="float32", seed=1)),
    case("matmul-bool", T.matmul, np.matmul, I(2, 2, 3) > 0, I(2, 3, 2, seed=1) > 0),
    # size-0 axes: batch, free and summed
    case("matmul-empty-batch", T.matmul, np.matmul, U(0, 2, 3), U(0, 3, 2, seed=1)),
    case("matmul-empty-rows", T.matmul, np.matmul, U(2, 0, 3), U(2, 3, 2, seed=1)),
    case("matmul-empty-sum", T.matmul, np.matmul, U(2, 2, 0), U(2, 0, 3, seed=1)),
    case("dot-empty-sum-3d", T.dot, np.dot, U(2, 3, 0), U(2, 0, 3, seed=1)),
    case("tensordot-empty", T.tensordot, td(2), U(2, 0, 3), U(0, 3, 4, seed=1)),
    case("tensordot-empty-free", lambda a, b: T.tensordot(a, b, 1), td(1), U(0, 2, 3), U(3, 0, seed=1)),
    case("batched_dot-empty", T.batched_dot, einsum("bnk,bkm->bnm"), U(0, 2, 3), U(0, 3, 2, seed=1)),
    # views: transposed, reversed (negative strides), strided
    case("matmul-transposed", T.matmul, np.matmul, U(3, 2, 4).transpose(2, 1, 0), U(4, 3, 2, seed=1)[::-1]),
    case("dot-strided", T.dot, np.dot, U(2, 6, 3)[:, ::2], U(3, 4, seed=1).T[::-1, ::-1].T),
    case("tensordot-reversed", T.tensordot, td(2), U(2, 3, 4)[::-1, :, ::-1], U(3, 4, 2, seed=1)[:, ::-1]),
    case("batched_dot-views", T.batched_dot, einsum("bnk,bkm->bnm"), U(2, 3, 4).transpose(0, 2, 1),
         U(4, 3, 2, seed=1)[::-2, :, ::-1]),
    # few rows (3 to 20) times a matrix of unit column stride and at least two vectors of columns: the
    # C backend's register blocks (runtime.h's ari_few_rows), the last panel of columns overlapping the
    # one before; the gradient with respect to A is such a product too
    case("dot-few-rows", T.dot, np.dot, U(20, 40), U(40, 70, seed=1)),
    case("dot-few-rows-float32", T.dot, np.dot, U(11, 50, dtype="float32"), U(50, 33, seed=1, dtype="float32"),
         grad=False),
    case("dot-three-rows-views", T.dot, np.dot, U(12, 9)[::-4, ::-1], U(9, 41, seed=1)[::-1, 3:]),
    case("dot-few-rows-broadcast-row", T.dot, np.dot, U(5, 1), U(1, 40, seed=1)),
]


@pytest.mark.parametrize("build, expected, values, grad", CASES)
def test_products(backend, build, expected, values, grad):
    for value in values:
        value.setflags(write=False)  # a backend must never write into its inputs
    check(build, values, backend, expected=expected(*values), grad=grad)


# Which products the backends' own kernels compute rather than the BLAS is the plan's (own_rows,
# docs/products.md): every one where the BLAS runs narrower vectors than the CPU, else a few rows. Both
# settings agree with NumPy on rows around every bound (2, 3, two blocks, 64), B's layouts (unit
# columns, reversed, transposed: the BLAS, or from 64 rows a copy on the blocks) and a short last
# panel (45 columns); and, the blocks
# computing C^T = B^T A^T for few columns and an A of unit row stride, on 2, 3 and 10 columns. Each
# also as an update W <- 0.5 W - 0.25 A . B, a Gemm computed in W's storage (alpha and beta).
@pytest.mark.parametrize("narrow", [False, True], ids=["blas as wide as the cpu", "blas narrower"])
@pytest.mark.parametrize("rows", [2, 3, 12, 20, 21, 64, 65, 130])
def test_products_agree_whichever_kernels_the_plan_picks(backend, monkeypatch, narrow, rows):
    from arignote.backends import blas

    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: narrow)
    a, b, z = U(rows, 40, seed=1, dtype="float32"), U(40, 45, seed=2, dtype="float32"), U(rows, 45, seed=3, dtype="float32")
    cases = [(T.dot, [a, b], a @ b),
             (lambda x, y: T.dot(x[::-1], y[:, ::-1]), [a, b], a[::-1] @ b[:, ::-1]),
             (lambda x, y: T.dot(x, y.T), [a, b.T.copy()], a @ b)]
    cases += [(lambda x, y: T.dot(x.T, y), [a.T.copy(), b[:, :columns]], a @ b[:, :columns]) for columns in (2, 3, 10)]
    for build, values, expected in cases:
        check(build, values, backend, expected=expected.astype("float32"), grad=False)
        x, y = T.fmatrix("x"), T.fmatrix("y")
        w = arignote.shared(z[:, :expected.shape[1]].copy())
        step = arignote.function([x, y], [], updates=[(w, 0.5 * w - 0.25 * build(x, y))], backend=backend)
        step(*values)
        np.testing.assert_allclose(w.get_value(), 0.5 * z[:, :expected.shape[1]] - 0.25 * expected, rtol=1e-5, atol=1e-5)


# A short sum into many elements (MLP training's 500 x 10 by 10 x 500): its result's stores count in
# its work (core.plan.PRODUCT_STORE_WORK), so threads share its columns, and its B, transposed and
# small, goes to the blocks copied (from 64 rows; each share copies its columns). In the reference's
# values, on one thread and on three, reversed, and as an update W <- 0.5 W - 0.25 d . w^T (a Gemm).
@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_short_sum_by_a_small_transposed_matrix(backend, monkeypatch, threads, dtype):
    from arignote.backends import blas

    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: True)
    monkeypatch.setenv("ARIGNOTE_THREADS", threads)
    d, w, z = U(500, 10, seed=1, dtype=dtype), U(490, 10, seed=2, dtype=dtype), U(500, 490, seed=3, dtype=dtype)
    exact = d.astype("float64") @ w.T
    for build, expected in [(lambda x, y: T.dot(x, y.T), exact),
                            (lambda x, y: T.dot(x[::-1], y[::-1].T), exact[::-1, ::-1])]:
        inputs = symbolic_like([d, w])
        f = arignote.function(inputs, build(*inputs), backend=backend)
        assert backend == "reference" or f.maker.fgraph.plan.product_threads  # the BLAS on one core
        result = f(d, w)
        assert result.dtype == dtype
        np.testing.assert_allclose(result, expected, rtol=0, atol=8 * np.finfo(dtype).eps * np.abs(expected).max())
    shared = arignote.shared(z.copy())
    x, y = T.matrix("x", dtype=dtype), T.matrix("y", dtype=dtype)
    arignote.function([x, y], [], updates=[(shared, 0.5 * shared - 0.25 * T.dot(x, y.T))], backend=backend)(d, w)
    expected = 0.5 * z - 0.25 * exact
    np.testing.assert_allclose(shared.get_value(), expected, rtol=0, atol=8 * np.finfo(dtype).eps * np.abs(expected).max())


# Few columns (3 to one vector's lanes) of a product of many rows (64 or more): B copied one vector wide,
# its columns last, and blocks of rows by that vector (runtime.h's ari_narrow, panels.py's _narrow);
# wider results, or a B too long to copy (1100 terms), go to the BLAS. B of unit column stride or
# transposed, A reversed, and as an update W <- 0.5 W - 0.25 a . b (a Gemm), float32 and float64.
@pytest.mark.parametrize("columns", [3, 7, 10, 16, 17])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_few_columns_of_many_rows(backend, monkeypatch, columns, dtype):
    from arignote.backends import blas

    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: True)
    for k in (300, 1100):
        a, b, z = U(130, k, seed=1, dtype=dtype), U(k, columns, seed=2, dtype=dtype), U(130, columns, seed=3, dtype=dtype)
        exact = a.astype("float64") @ b
        tolerance = np.sqrt(k) * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b)).max()  # sums in another order
        for build, values, expected in [(T.dot, [a, b], exact),
                                        (lambda x, y: T.dot(x[::-1], y.T), [a, b.T.copy()], exact[::-1])]:
            inputs = symbolic_like(values)
            result = arignote.function(inputs, build(*inputs), backend=backend)(*values)
            assert result.dtype == dtype
            np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance)
        shared = arignote.shared(z.copy())
        x, y = T.matrix("x", dtype=dtype), T.matrix("y", dtype=dtype)
        arignote.function([x, y], [], updates=[(shared, 0.5 * shared - 0.25 * T.dot(x, y))], backend=backend)(a, b)
        np.testing.assert_allclose(shared.get_value(), 0.5 * z - 0.25 * exact, rtol=0, atol=tolerance)


# A long sum over many rows (more than 2 MiB of A's rows) runs in chunks of the sum, the columns of B
# packed up to 1024 at a time (docs/products.md): 1000 terms make three unequal chunks, and 2200
# columns leave each thread's share more than one packed run, the last with a short panel.
@pytest.mark.parametrize("dtype, rows", [("float32", 540), ("float64", 270)])
def test_long_sums_agree_in_chunks(backend, monkeypatch, dtype, rows):
    from arignote.backends import blas

    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: True)
    a, b, z = U(rows, 1000, seed=1, dtype=dtype), U(1000, 2200, seed=2, dtype=dtype), U(rows, 2200, seed=3, dtype=dtype)
    exact = a.astype("float64") @ b
    for build, values, expected in [
            (T.dot, [a, b], exact),
            (lambda x, y: T.dot(x.T, y), [a.T.copy(), b], exact),
            (lambda x, y: T.dot(x[::-1], y), [a, b], exact[::-1])]:
        inputs = symbolic_like(values)
        result = arignote.function(inputs, build(*inputs), backend=backend)(*values)
        assert result.dtype == dtype
        # rounding of 1000-term sums in another order than NumPy's: a few units in the last place
        np.testing.assert_allclose(result, expected, rtol=0, atol=8 * np.finfo(dtype).eps * np.abs(expected).max())
    # an update W <- 0.5 W - 0.25 a . b, a Gemm in W's storage: the first chunk scales W, the others add
    w = arignote.shared(z.copy())
    x, y = T.matrix("x", dtype=dtype), T.matrix("y", dtype=dtype)
    arignote.function([x, y], [], updates=[(w, 0.5 * w - 0.25 * T.dot(x, y))], backend=backend)(a, b)
    expected = 0.5 * z - 0.25 * exact
    np.testing.assert_allclose(w.get_value(), expected, rtol=0, atol=8 * np.finfo(dtype).eps * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------
# Sizes that do not fit: a ValueError that names the op and the shapes


def run(build, *values, backend="reference"):
    inputs = symbolic_like(values)
    return arignote.function(inputs, build(*inputs), backend=backend)(*values)


@pytest.mark.parametrize("build, a, b, message", [
    (T.dot, U(2, 3), U(4, 2), r"Dot .*\(2, 3\).*\(4, 2\)"),
    (T.dot, U(2, 3, 4), U(5, 2), r"Dot .*not aligned"),
    (T.tensordot, U(2, 3, 4), U(4, 3, 2), r"SpecifyShape.*shape is \(4, 3, 2\).*expects \(3, 4, None\)"),
    (T.tensordot, U(2, 3), U(3, 2), r"SpecifyShape.*\(3, 2\).*\(2, 3\)"),  # same product, per-axis check
    (lambda a, b: T.tensordot(a, b, 1), U(2, 3), U(4, 3), r"Dot .*\(2, 3\).*\(4, 3\)"),
    (T.batched_dot, U(2, 3, 4), U(3, 4, 5), r"BatchedDot .*\(2, 3, 4\).*\(3, 4, 5\).*batch sizes differ"),
    (T.batched_dot, U(2, 3, 4), U(2, 5, 1), r"BatchedDot .*summed sizes differ"),
    (T.batched_dot, U(2, 4), U(3, 4), r"BatchedDot .*batch sizes differ"),
    (T.batched_dot, U(2), U(3, 4), r"Mul.*\(2, 1\).*\(3, 4\)"),
    (T.matmul, U(2, 3, 4), U(2, 5, 2), r"BatchedDot .*\(2, 3, 4\).*\(2, 5, 2\).*summed sizes differ"),
    # a batch axis of size 1 whose type is not broadcastable does not stretch
    (T.matmul, U(1, 3, 4), U(2, 4, 2), r"BatchedDot .*\(1, 3, 4\).*\(2, 4, 2\).*broadcastable"),
    (T.matmul, U(2, 3, 2, 2), U(3, 2, 2, 2), r"SpecifyShape.*\(3, 2, 2, 2\).*expects \(2, 3, None, None\)"),
    (T.matmul, U(3), U(2, 4, 2), r"Dot .*\(3,\).*not aligned"),
])
def test_size_mismatch_is_a_value_error(backend, build, a, b, message):
    with pytest.raises(ValueError, match=message):
        run(build, a, b, backend=backend)


@pytest.mark.parametrize("build, error, message", [
    (lambda: T.tensordot(T.matrix(), T.matrix(), ([0, 1], [0])), ValueError, r"tensordot: 2 axes of a"),
    (lambda: T.tensordot(T.matrix(), T.matrix(), ([2], [0])), ValueError,
     r"tensordot: axis 2 is out of range"),
    (lambda: T.tensordot(T.matrix(), T.vector(), 2), ValueError, r"tensordot: cannot sum over 2 axes"),
    (lambda: T.tensordot(T.matrix(), T.matrix(), -1), ValueError, r"tensordot: cannot sum over -1 axes"),
    (lambda: T.tensordot(T.matrix(), T.matrix(), ([0, 0], [0, 1])), ValueError, r"tensordot: axis repeated"),
    (lambda: T.tensordot(T.matrix(), T.matrix(), "x"), ValueError,
     r"tensordot: axes must be an int or a pair"),
    (lambda: T.tensordot(T.matrix(), T.matrix(), ([0.5], [0])), TypeError, r"tensordot: axes must be ints"),
    (lambda: T.matmul(T.scalar(), T.matrix()), ValueError, r"matmul: scalar operands"),
    (lambda: T.matmul(T.tensor3(), T.scalar()), ValueError, r"matmul: scalar operands"),
    (lambda: T.batched_dot(T.scalar(), T.matrix()), TypeError, r"batched_dot: both operands need"),
    (lambda: T.batched_tensordot(T.tensor3(), T.tensor3(), ([0], [1])), ValueError, r"batch axis"),
    (lambda: linalg.BatchedDot()(T.matrix(), T.tensor3()), TypeError, r"BatchedDot: expected \(B, n, k\)"),
])
def test_bad_arguments_are_refused_when_building(build, error, message):
    with pytest.raises(error, match=message):
        build()


# ---------------------------------------------------------------------------------------------------
# Graphs: built from existing ops, with Dot and BatchedDot as the only products


def op_types(output):
    return {type(node.op) for node in toposort([output])}


PLUMBING = {ops.DimShuffle, ops.Reshape, ops.ShapeI, ops.MakeVector, ops.Mul, ops.SpecifyShape}


@pytest.mark.parametrize("output, products", [
    (T.dot(T.matrix(), T.vector()), {ops.Dot}),
    (T.matmul(T.matrix(), T.matrix()), {ops.Dot}),
    (T.matmul(T.tensor3(), T.matrix()), {ops.Dot}),  # no batch axis on both sides: one matrix product
    (T.tensordot(T.tensor4(), T.tensor3(), 2), {ops.Dot}),
    (T.dot(T.tensor4(), T.tensor3()), {ops.Dot}),
    (T.batched_dot(T.tensor3(), T.tensor3()), {linalg.BatchedDot}),
    (T.batched_dot(T.matrix(), T.tensor3()), {linalg.BatchedDot}),
    (T.matmul(T.tensor4(), T.tensor4()), {linalg.BatchedDot}),
    (T.batched_tensordot(T.tensor4(), T.tensor4(), ([1, 3], [2, 1])), {linalg.BatchedDot}),
])
def test_products_are_graphs_of_existing_ops(output, products):
    assert op_types(output) - PLUMBING == products


def test_matrices_and_3d_batches_need_no_plumbing():
    assert op_types(T.matmul(T.matrix(), T.matrix())) == {ops.Dot}
    assert op_types(T.batched_dot(T.tensor3(), T.tensor3())) == {linalg.BatchedDot}


def test_several_merged_pairs_are_checked_one_by_one_and_single_pairs_are_not():
    assert ops.SpecifyShape in op_types(T.tensordot(T.tensor3(), T.tensor3(), 2))
    assert ops.SpecifyShape not in op_types(T.tensordot(T.tensor3(), T.tensor3(), 1))


@pytest.mark.parametrize("output, pattern", [
    (T.matmul(T.tensor3().dimshuffle("x", 0, 1, 2), T.tensor3()), (True, False, False, False)),
    (T.matmul(T.matrix().dimshuffle("x", 0, 1), T.col().dimshuffle("x", 0, 1)), (True, False, True)),
    (T.matmul(T.col().dimshuffle("x", 0, 1), T.row()), (True, False, False)),
    (T.matmul(T.row().dimshuffle("x", 0, 1), T.tensor3()), (False, True, False)),
    (T.tensordot(T.col(), T.row(), 0), (False, True, True, False)),
    (T.batched_dot(T.tensor3(), T.matrix()), (False, False)),
    (T.dot(T.tensor3(), T.row()), (False, False, False)),
])
def test_broadcastable_patterns(output, pattern):
    assert output.broadcastable == pattern


def test_tensor_exports_the_general_products():
    assert T.dot is linalg.dot and T.matmul is linalg.matmul and T.tensordot is linalg.tensordot
    assert T.batched_dot is linalg.batched_dot and T.batched_tensordot is linalg.batched_tensordot


def test_batched_dot_gradient_through_broadcastable_axes(backend):
    # (B, k) against (B, k, m): the missing axis is a broadcastable one inside; the gradient keeps shapes
    check(lambda a, b: T.batched_dot(a, b).sum(axis=1), [U(3, 4), U(3, 4, 2, seed=1)], backend,
          expected=np.einsum("bk,bkm->b", U(3, 4), U(3, 4, 2, seed=1)))
