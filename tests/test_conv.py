"""conv2d and pool_2d on every backend: values against brute-force NumPy loops written from the
definitions (not from the ops' geometry helpers), gradients against finite differences, Theano's
argument spellings, output-size rules and errors."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.tensor.nnet import conv as old_conv
from arignote.tensor.nnet.abstract_conv import get_conv_output_shape
from arignote.tensor.signal import downsample, pool

from checks import check, freeze_arrays


def U(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


# ---------------------------------------------------------------------------------------------------
# Oracles: one output element at a time


def conv_oracle(x, w, pads=((0, 0), (0, 0)), stride=(1, 1), dilation=(1, 1), groups=1, flip=True):
    """out[n, o, i, j] = sum over c, a, b of x_padded[n, group(o) * C + c, i*sh + a*dh, j*sw + b*dw] *
    w'[o, c, a, b], w' the filters flipped when ``flip``; pads ((top, bottom), (left, right))."""
    if flip:
        w = w[:, :, ::-1, ::-1]
    n, channels, h, wd = x.shape
    o, c, kh, kw = w.shape
    xp = np.zeros((n, channels, h + pads[0][0] + pads[0][1], wd + pads[1][0] + pads[1][1]), x.dtype)
    xp[:, :, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + wd] = x
    rows = (xp.shape[2] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    cols = (xp.shape[3] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((n, o, rows, cols))
    per_group = o // groups
    for b_ in range(n):
        for f in range(o):
            g = f // per_group
            for i in range(rows):
                for j in range(cols):
                    total = 0.0
                    for ch in range(c):
                        for a in range(kh):
                            for b in range(kw):
                                total += (float(xp[b_, g * c + ch, i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1]])
                                          * float(w[f, ch, a, b]))
                    out[b_, f, i, j] = total
    return out.astype(x.dtype)


def pool_oracle(x, ws, ignore_border, stride=None, pad=(0, 0), mode="max"):
    """Theano's Pool.perform, transcribed: the padded image, windows [r*st, r*st + ws) cut at its end,
    max/sum over the part inside the image, averages over the window (inc_pad) or that part (exc_pad)."""
    stride = stride or ws
    h, w = x.shape[-2:]
    ph, pw = h + 2 * pad[0], w + 2 * pad[1]

    def count(size, k, s):
        if ignore_border:
            return max(0, (size - k) // s + 1)
        if s >= k:
            return (size - 1) // s + 1
        return max(0, (size - 1 - k + s) // s) + 1 if size else 0
    rows, cols = count(ph, ws[0], stride[0]), count(pw, ws[1], stride[1])
    out = np.zeros(x.shape[:-2] + (rows, cols), x.dtype)
    for index in np.ndindex(*x.shape[:-2]):
        img = x[index]
        for r in range(rows):
            r0, r1 = r * stride[0], min(r * stride[0] + ws[0], ph)
            for c in range(cols):
                c0, c1 = c * stride[1], min(c * stride[1] + ws[1], pw)
                inside = img[max(r0 - pad[0], 0):min(r1 - pad[0], h), max(c0 - pad[1], 0):min(c1 - pad[1], w)]
                if mode == "max":
                    out[index + (r, c)] = inside.max()
                    continue
                total = inside.sum(dtype=x.dtype)
                divisor = {"sum": 1, "average_inc_pad": (r1 - r0) * (c1 - c0)}.get(mode, inside.size)
                out[index + (r, c)] = total / divisor if divisor != 1 else total
    return out


X = U(2, 3, 6, 5)
W = U(4, 3, 3, 2, seed=1)
XG = U(1, 4, 7, 6, seed=2)
WG = U(6, 2, 3, 3, seed=3)
X32, W32 = X.astype("float32"), W.astype("float32")
W33 = U(4, 3, 3, 3, seed=5)
IMG = U(2, 3, 7, 6, seed=4)
freeze_arrays(globals())

CONVS = [  # (id, conv2d keywords, the oracle's (pads, stride, dilation, groups, flip), x, w)
    ("valid", {}, (((0, 0), (0, 0)), (1, 1), (1, 1), 1, True), X, W),
    ("full", {"border_mode": "full"}, (((2, 2), (1, 1)), (1, 1), (1, 1), 1, True), X, W),
    ("half", {"border_mode": "half"}, (((1, 1), (1, 1)), (1, 1), (1, 1), 1, True), X, W),
    ("int padding", {"border_mode": 2}, (((2, 2), (2, 2)), (1, 1), (1, 1), 1, True), X, W),
    ("pair padding, strides", {"border_mode": (1, 0), "subsample": (2, 3)}, (((1, 1), (0, 0)), (2, 3), (1, 1), 1, True), X, W),
    ("asymmetric", {"border_mode": ((0, 2), (3, 1))}, (((0, 2), (3, 1)), (1, 1), (1, 1), 1, True), X, W),
    ("no flip", {"filter_flip": False}, (((0, 0), (0, 0)), (1, 1), (1, 1), 1, False), X, W),
    ("dilation", {"filter_dilation": (2, 2), "border_mode": "half"}, (((2, 2), (2, 2)), (1, 1), (2, 2), 1, True), X, W33),
    ("groups", {"num_groups": 2, "subsample": 2}, (((0, 0), (0, 0)), (2, 2), (1, 1), 2, True), XG, WG),
    ("half, even kernel, dilation", {"border_mode": "half", "filter_dilation": (1, 3)},
     (((1, 1), (2, 2)), (1, 1), (1, 3), 1, True), X, W),
    ("float32", {"border_mode": "full", "subsample": (1, 2)}, (((2, 2), (1, 1)), (1, 2), (1, 1), 1, True), X32, W32),
    ("1x1", {}, (((0, 0), (0, 0)), (1, 1), (1, 1), 1, True), X, W[:, :, :1, :1]),
    ("kernel of the input's size", {}, (((0, 0), (0, 0)), (1, 1), (1, 1), 1, True), X, U(2, 3, 6, 5, seed=9)),
    ("reversed views", {"border_mode": 1}, (((1, 1), (1, 1)), (1, 1), (1, 1), 1, True), X[::-1, :, ::-1, ::-1], W[:, ::-1]),
    ("rows of 8, LeNet's second layer", {}, (((0, 0), (0, 0)), (1, 1), (1, 1), 1, True), U(3, 4, 12, 12, seed=6),
     U(5, 4, 5, 5, seed=7)),
]


@pytest.mark.parametrize("id, kw, geometry, x, w", CONVS, ids=[c[0] for c in CONVS])
def test_conv2d_matches_the_definition(backend, id, kw, geometry, x, w):
    expected = conv_oracle(x, w, *geometry)
    check(lambda a, b: T.nnet.conv2d(a, b, **kw), [x, w], backend, expected=expected, grad=False)


# Gradients against finite differences on every backend for a few geometries; the conformance kit
# compares every backend's gradients with the reference's on all of its cases.
@pytest.mark.parametrize("kw", [{"border_mode": ((1, 0), (0, 2)), "subsample": (2, 1), "filter_dilation": (1, 2)},
                                {"num_groups": 2, "border_mode": "half", "subsample": (1, 2)}],
                         ids=["asymmetric strided dilated", "groups half strided"])
def test_conv2d_gradients_match_finite_differences(backend, kw):
    x, w = (XG, WG) if "num_groups" in kw else (X, W)
    check(lambda a, b: T.nnet.conv2d(a, b, **kw), [x, w], backend)


def test_conv2d_second_derivatives(backend):
    """d/dx and d/dw of a gradient: Corr2dGradInputs and Corr2dGradWeights differentiated in turn."""
    def grad_of_input(a, b):
        return T.grad(T.sum(T.tanh(T.nnet.conv2d(a, b, subsample=(2, 1), border_mode="full"))), a)
    check(grad_of_input, [X, W], backend)


POOLS = [  # (id, pool_2d keywords, x); gradients against finite differences for those marked GRAD
    ("max 2x2", dict(ws=(2, 2), ignore_border=True), IMG),
    ("max, partial windows", dict(ws=(2, 2), ignore_border=False), IMG),
    ("max, overlapping, partial", dict(ws=(3, 2), stride=(1, 2), ignore_border=False), IMG),
    ("max, stride beyond the window", dict(ws=(2, 2), stride=(3, 3), ignore_border=False), IMG),
    ("max, padding", dict(ws=(3, 3), stride=(2, 2), pad=(1, 2), ignore_border=True), IMG),
    ("sum", dict(ws=(2, 3), ignore_border=False, mode="sum"), IMG),
    ("average_inc_pad", dict(ws=(3, 3), stride=(2, 1), pad=(1, 1), ignore_border=True, mode="average_inc_pad"), IMG),
    ("average_exc_pad", dict(ws=(3, 3), stride=(2, 1), pad=(2, 1), ignore_border=True, mode="average_exc_pad"), IMG),
    ("average_inc_pad, partial", dict(ws=(2, 4), ignore_border=False, mode="average_inc_pad"), IMG),
    ("average_exc_pad, partial", dict(ws=(4, 4), stride=(2, 3), ignore_border=False, mode="average_exc_pad"), IMG),
    ("a matrix", dict(ws=(2, 2), ignore_border=True), IMG[0, 0]),
    ("float32, 3 axes", dict(ws=(2, 3), stride=(1, 1), ignore_border=True, mode="average_exc_pad"), IMG[0].astype("float32")),
    ("window larger than the image", dict(ws=(9, 9), ignore_border=False), IMG),
]


GRAD = {"max, overlapping, partial", "max, padding", "average_inc_pad", "average_exc_pad, partial", "sum"}


@pytest.mark.parametrize("id, kw, x", POOLS, ids=[p[0] for p in POOLS])
def test_pool_2d_matches_theano(backend, id, kw, x):
    oracle_kw = {k: v for k, v in kw.items() if k != "ws"}
    check(lambda a: pool.pool_2d(a, **kw), [x], backend, expected=pool_oracle(x, kw["ws"], **oracle_kw),
          grad=id in GRAD)


def test_max_pool_gradient_goes_to_every_tied_maximum(backend):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, -1.0, 3.0]])
    f = arignote.function([xs := T.dmatrix("x")], T.grad(T.sum(pool.pool_2d(xs, (2, 2), ignore_border=True) * [[1.0, 10.0]]), xs),
                          backend=backend)
    np.testing.assert_array_equal(f(x), [[0, 1, 10, 0], [1, 0, 0, 10]])


def test_max_pool_second_derivative(backend):
    check(lambda a: T.grad(T.sum(pool.pool_2d(a, (2, 3), ignore_border=False, stride=(1, 2)) ** 2), a), [IMG], backend)


def test_integer_pooling(backend):
    x = np.random.default_rng(0).integers(-100, 100, (2, 5, 6)).astype("int8")
    check(lambda a: pool.pool_2d(a, (2, 2), ignore_border=False), [x], backend, expected=pool_oracle(x, (2, 2), False))
    check(lambda a: pool.pool_2d(a, (3, 2), ignore_border=True, mode="sum"), [x], backend,
          expected=pool_oracle(x, (3, 2), True, mode="sum"))


def test_pooling_handed_one_array_twice(backend):
    """The pooling gradients read their arrays by name: one array in two places (x as the h of
    MaxPoolGradGrad, the pooled values as the gradient of MaxPoolGrad) must be one array to the kernel,
    here large enough (a million elements) that its images are split between threads."""
    from arignote.core import pool as P

    x = np.random.default_rng(3).standard_normal((4, 512, 512)).astype("float32")
    ws, stride, pad = (2, 3), (1, 2), (0, 0)

    pooled = lambda a: P.Pool(ws, stride, pad, False, "max")(a)
    check(lambda a: P.MaxPoolGradGrad(ws, stride, pad, False, "max")(a, pooled(a), a), [x], backend, grad=False)
    check(lambda a: P.MaxPoolGrad(ws, stride, pad, False, "max")(a, pooled(a), pooled(a)), [x], backend, grad=False)


def _tiled_gradient_oracle(x, out, g, ws, mode):
    """The gradient of a pooling whose windows tile x: each window's g to its maxima (max) or its share
    to every element."""
    spread = lambda a: np.repeat(np.repeat(a, ws[0], -2), ws[1], -1)
    if mode == "max":
        return np.where(x == spread(out), spread(g), 0).astype(x.dtype)
    return (spread(g) / (1 if mode == "sum" else ws[0] * ws[1])).astype(x.dtype)


def _layouts(a):
    """``a`` in C order, as a view with a row stride of its own (a slice of wider rows), in Fortran
    order, and with its columns reversed."""
    wide = np.zeros(a.shape[:-1] + (a.shape[-1] + 5,), a.dtype)
    wide[..., 2:2 + a.shape[-1]] = a
    return {"C": a, "rows of wider rows": wide[..., 2:2 + a.shape[-1]], "Fortran": np.asfortranarray(a),
            "reversed columns": a[..., ::-1].copy()[..., ::-1]}


@pytest.mark.parametrize("ws, shape, dtype", [((2, 2), (2, 3, 6, 8), "float32"), ((2, 2), (2, 3, 6, 8), "float64"),
                                              ((1, 3), (2, 4, 393), "float64"), ((3, 1), (2, 6, 5), "float32"),
                                              ((2, 2), (3, 4, 260), "float32"), ((2, 2), (4, 512, 512), "float32")],
                         ids=["2x2", "2x2, float64", "1x3, 131 windows a row", "3x1", "2x2, 130 windows a row",
                              "2x2, a million elements"])
def test_gradients_of_windows_that_tile_the_image(backend, ws, shape, dtype):
    """Where the windows tile the image, the gradients write each element once (and with unit column
    strides a row of windows at a time): ties, NaN in x, infinite and NaN gradients, rows longer than
    one buffer, images split between threads, and each layout."""
    from arignote.core import pool as P

    rng = np.random.default_rng(5)
    x = rng.integers(-3, 3, shape).astype(dtype)  # many tied maxima
    x.flat[::97] = np.nan
    out = np.asarray(arignote.function([a := T.tensor(dtype, (False,) * len(shape))], P.Pool(ws, ws, (0, 0), True, "max")(a),
                                       backend="reference")(x))
    g = rng.standard_normal(out.shape).astype(dtype)
    g.flat[::13], g.flat[5::17] = np.inf, np.nan
    symbols = [T.tensor(dtype, (False,) * len(shape)) for _ in range(3)]
    for mode in ["max", "sum", "average_exc_pad"]:
        if mode == "max":
            op, args, values = P.MaxPoolGrad(ws, ws, (0, 0), True, mode), symbols, (x, out, g)
        else:
            op, args, values = P.AveragePoolGrad(ws, ws, (0, 0), True, mode), [symbols[0], symbols[2]], (x, g)
        f = arignote.function(args, op(*args), backend=backend)
        expected = _tiled_gradient_oracle(x, out, g, ws, mode)
        for name, layout in _layouts(x).items():
            laid = [_layouts(v)[name] for v in values[1:]]
            np.testing.assert_array_equal(f(layout, *laid), expected, err_msg=f"{mode}, {name}")


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16"])
@pytest.mark.parametrize("ws, ignore_border", [((2, 2), True), ((3, 2), False), ((2, 3), False)])
def test_max_pooling_of_long_rows_of_windows(backend, ws, ignore_border, dtype):
    """Rows of many windows that do not overlap (max-pooled column by column on c), NaN in each row
    of a window, partial windows at the border, and a view whose columns are not adjacent."""
    x = np.random.default_rng(8).integers(-50, 50, (2, 3, 7, 41)).astype(dtype)
    if dtype.startswith("float"):
        x[0, 0, 0, 4], x[0, 1, 1, 9], x[1, 2, 2, 30], x[1, 0, 6, 40] = np.nan, np.nan, np.nan, np.nan
    for view in (x, x[..., ::-1]):
        out = check(lambda a: pool.pool_2d(a, ws, ignore_border=ignore_border), [view], backend, grad=False,
                    expected=pool_oracle(view, ws, ignore_border))
        assert np.isnan(out).sum() == np.isnan(pool_oracle(view, ws, ignore_border)).sum()


def test_nan_is_the_maximum(backend):
    x = IMG.copy()
    x[0, 0, 1, 1] = np.nan
    out = check(lambda a: pool.pool_2d(a, (2, 2), ignore_border=True), [x], backend, grad=False)
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[0, 0, 0, 1])


# ---------------------------------------------------------------------------------------------------
# Theano's spellings, the shape rules, errors


def test_the_older_spellings():
    x, w = T.tensor4("x"), T.tensor4("w")
    f = arignote.function([x, w], [old_conv.conv2d(x, w, border_mode="full", image_shape=X.shape, filter_shape=W.shape),
                                   downsample.max_pool_2d(x, (2, 2), ignore_border=True),
                                   pool.pool_2d(x, ds=(2, 2), st=(1, 1), padding=(1, 1), ignore_border=True)],
                          backend="reference")
    full, pooled, padded = f(X, W)
    np.testing.assert_allclose(full, conv_oracle(X, W, ((2, 2), (1, 1))))
    np.testing.assert_array_equal(pooled, pool_oracle(X, (2, 2), True))
    np.testing.assert_array_equal(padded, pool_oracle(X, (2, 2), True, (1, 1), (1, 1)))


def test_ignore_border_left_out_warns_and_keeps_partial_windows():
    x = T.dmatrix("x")
    with pytest.warns(UserWarning, match="ignore_border"):
        y = pool.pool_2d(x, (2, 2))
    assert arignote.function([x], y, backend="reference")(np.ones((3, 3))).shape == (2, 2)


@pytest.mark.parametrize("call, message", [
    (lambda x: pool.pool_2d(x, (2, 2), pad=(1, 1), ignore_border=False), "ignore_border=True"),
    (lambda x: pool.pool_2d(x, (2, 2), pad=(2, 0), ignore_border=True), "smaller than the window"),
    (lambda x: pool.pool_2d(x, (2, 2), ignore_border=True, mode="median"), "mode"),
    (lambda x: T.nnet.conv2d(x, x, border_mode="same"), "border_mode"),
    (lambda x: T.nnet.conv2d(x, x, subsample=(0, 1)), "at least 1"),
    (lambda x: T.nnet.conv2d(x, x, input_shape=(2, 3, 4, 4), filter_shape=(4, 2, 3, 3)), "channel"),
    (lambda x: T.nnet.conv2d(x, x, input_shape=(2, 3, 4, 4), filter_shape=(4, 3, 5, 3)), "spans 5 rows"),
    (lambda x: old_conv.conv2d(x, x, border_mode="half"), "'valid' or 'full'"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(T.tensor4("x"))


def test_a_wrong_input_shape_hint_fails_when_called(backend):
    x, w = T.tensor4("x"), T.tensor4("w")
    f = arignote.function([x, w], T.nnet.conv2d(x, w, input_shape=(2, 3, 6, 6)), backend=backend)
    with pytest.raises(ValueError):
        f(X, W)


def test_runtime_geometry_errors_name_the_op_and_shapes(backend):
    x, w = T.tensor4("x"), T.tensor4("w")
    f = arignote.function([x, w], T.nnet.conv2d(x, w, num_groups=2), backend=backend)
    with pytest.raises(ValueError, match=r"(?s)Corr2d.*\(2, 3, 6, 5\)"):
        f(X, W)
    g = arignote.function([x, w], T.nnet.conv2d(x, w), backend=backend)
    with pytest.raises(ValueError, match="spans"):
        g(X[:, :, :2], W)


def test_output_shapes_follow_theano():
    assert get_conv_output_shape((8, 3, 28, 28), (20, 3, 5, 5), "valid", (1, 1)) == (8, 20, 24, 24)
    assert get_conv_output_shape((8, 3, 28, 28), (20, 3, 5, 5), "full", (2, 2)) == (8, 20, 16, 16)
    assert get_conv_output_shape((8, 3, 28, 27), (20, 3, 4, 5), "half", (1, 1), (2, 1)) == (8, 20, 28, 27)
    assert get_conv_output_shape((None, 3, 28, 28), (20, 3, 5, 5), (1, 2), (3, 1)) == (None, 20, 9, 28)
    assert [pool.pool_output_length(n, 3, 1, 0, False) for n in range(6)] == [0, 1, 1, 1, 2, 3]
    assert [pool.pool_output_length(n, 2, 2, 0, True) for n in range(6)] == [0, 0, 1, 1, 2, 2]


def test_shapes_are_known_without_running_the_convolution():
    x, w = T.tensor4("x"), T.tensor4("w")
    y = pool.pool_2d(T.nnet.conv2d(x, w, border_mode="full", subsample=(2, 1)), (2, 2), ignore_border=False)
    f = arignote.function([x, w], y.shape, backend="reference")
    assert tuple(f(X, W)) == (2, 4, 2, 3)
    nodes = f.maker.fgraph.toposort()
    assert not any(type(n.op).__name__ == "Pool" for n in nodes)
    # one Corr2d is left: the check of the geometry, on an empty batch (core/shape_inference.py)
    (check,) = [n for n in nodes if type(n.op).__name__ == "Corr2d"]
    assert type(check.inputs[0].owner.op).__name__ == "Alloc" and check.inputs[0].owner.inputs[1].data == 0
    with pytest.raises(ValueError, match="channel"):
        f(X, W[:, :1])


def test_an_empty_axis_has_no_windows_even_padded(backend):
    x = T.tensor3("x")
    f = arignote.function([x], pool.pool_2d(x, (3, 2), ignore_border=True, pad=(1, 1)), backend=backend)
    assert f(np.zeros((2, 0, 3))).shape == (2, 0, 2)
    assert pool.pool_output_length(0, 3, 1, 1, True) == 0


def test_blocks_of_images_split_between_threads():
    """On c, convolutions with enough work run their blocks of images on threads of their own, BLAS on
    one core meanwhile (core.plan.Plan.image_threads): one image per block and several, groups and padding;
    the filters' gradient adds the same blocks per thread on every call (the same bits twice); the
    BLAS's thread count is back afterwards."""
    from arignote.backends import blas
    from arignote.core import conv as C
    from arignote.core.plan import IMAGE_THREADS_MIN

    def conv_and_grads(dtype, backend):
        x, w, p = (T.tensor4(name, dtype=dtype) for name in "xwp")
        y = C.Corr2d(pad=((1, 2), (0, 1)), groups=2)(x, w)
        return arignote.function([x, w, p], [y, *arignote.grad((y * p).sum(), [x, w])], backend=backend)

    threads_before = blas.thread_count()
    f, exact = conv_and_grads("float32", "c"), conv_and_grads("float64", "reference")
    assert "splits its images between threads" in f.maker.fgraph.plan.describe()
    for n, c, side, o, k in [(48, 4, 40, 8, 5), (64, 20, 12, 50, 5)]:  # P >= 256: one image a block; P < 256: several
        rows, cols = C.Corr2d(pad=((1, 2), (0, 1))).output_shape((side, side), (k, k))
        values = [U(*shape, seed=n, dtype="float32") for shape in [(n, c, side, side), (o, c // 2, k, k), (n, o, rows, cols)]]
        assert n * o * rows * cols * (c // 2) * k * k >= IMAGE_THREADS_MIN and values[0].size >= 1 << 16
        expected = exact(*[v.astype("float64") for v in values])
        first, second = f(*values), f(*values)
        for a, b, e in zip(first, second, expected):  # sums of up to 20,000 products
            np.testing.assert_allclose(a, e, rtol=0, atol=np.abs(e).max() * 1e-5)
            np.testing.assert_array_equal(a, b)
    assert blas.thread_count() == threads_before
    assert "the BLAS runs on one core for the whole call" in f.maker.fgraph.plan.describe()


@pytest.mark.parametrize("narrow", [False, True], ids=["blas as wide as the cpu", "blas narrower"])
@pytest.mark.parametrize("filters", [8, 70])
def test_convolutions_agree_whichever_kernels_the_plan_picks(backend, monkeypatch, narrow, filters):
    """The forward and input-gradient GEMMs go to the backends' own kernels up to plan.own_rows rows
    (docs/products.md): 64 in a convolution's graph, every one where the BLAS is narrower than the CPU;
    8 and 70 filters (rows of the forward GEMM) and 3 x 4 x 4 taps (48 rows of the input's gradient)
    fall on both sides, blocks of several images and one image a block, values and gradients."""
    from arignote.backends import blas

    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: narrow)
    for x in (U(6, 3, 9, 10, seed=4, dtype="float32"), U(2, 3, 20, 21, seed=5, dtype="float32")):
        w = U(filters, 3, 4, 4, seed=6, dtype="float32")
        check(lambda a, b: T.nnet.conv2d(a, b, border_mode="half"), [x, w], backend,
              expected=conv_oracle(x.astype("float64"), w.astype("float64"), ((2, 2), (2, 2))).astype("float32"),
              grad=False)
        p = U(*conv_oracle(x, w, ((2, 2), (2, 2))).shape, seed=7, dtype="float32")
        for wrt in (0, 1):
            check(lambda a, b, q: arignote.grad((T.nnet.conv2d(a, b, border_mode="half") * q).sum(), [a, b][wrt]),
                  [x, w, p], backend, grad=False)


@pytest.mark.parametrize("threads", ["2", "3"])
def test_products_beside_a_convolution_split_their_columns_between_threads(backend, monkeypatch, threads):
    """In a graph with a convolution the BLAS stays on one core (plan.blas_one_core), so the compiled
    backends share the columns of large matrix products out between threads of their own
    (plan.product_threads): a dense layer's product, its transposed gradient products and the weights'
    update computed as one Gemm in their storage give the reference's values, with shares of unequal
    widths (3 threads), and a call whose shapes do not fit changes no weight."""
    from arignote.backends import blas
    from arignote.core.plan import IMAGE_THREADS_MIN

    monkeypatch.setenv("ARIGNOTE_THREADS", threads)
    if backend == "numba":  # its glue hands shares out only for larger products (products.SPLIT_MIN)
        from arignote.backends.numba import products

        monkeypatch.setattr(products, "SPLIT_MIN", IMAGE_THREADS_MIN)
    rng = np.random.default_rng(11)
    x, w, y = T.ftensor4("x"), T.ftensor4("w"), T.fmatrix("y")
    W = arignote.shared(rng.standard_normal((200, 301)).astype("float32") * 0.1, name="W")
    h = T.tanh(T.nnet.conv2d(x, w).flatten(2))  # (n, 8 * 5 * 5 = 200)
    cost = ((T.dot(h, W) - y) ** 2).mean()
    gW, gx = arignote.grad(cost, [W, x])
    f = arignote.function([x, w, y], [cost, gx], updates=[(W, W - 0.5 * gW)], backend=backend)
    plan = f.maker.fgraph.plan
    assert plan.blas_one_core and len(plan.product_threads) >= 2
    assert any(type(node.op).__name__ == "Gemm" for node in plan.product_threads)
    assert 160 * 200 * 301 >= IMAGE_THREADS_MIN  # each product: enough work to split
    X, Wc = rng.standard_normal((160, 3, 9, 9)).astype("float32"), rng.standard_normal((8, 3, 5, 5)).astype("float32")
    Y = rng.standard_normal((160, 301)).astype("float32")
    w0 = W.get_value()
    ref = arignote.function([x, w, y], [cost, gx], updates=[(W, W - 0.5 * gW)], backend="reference")
    before = blas.thread_count()
    got = f(X, Wc, Y)
    w1 = W.get_value()
    W.set_value(w0)
    expected = ref(X, Wc, Y)
    for a, e in zip(got + [w1], expected + [W.get_value()]):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-4 * np.abs(e).max())
    assert blas.thread_count() == before
    W.set_value(w1)
    with pytest.raises(ValueError):
        f(X, Wc, Y[:, :300])
    np.testing.assert_array_equal(W.get_value(), w1)
