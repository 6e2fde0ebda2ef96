"""What the C backend's convolutions and poolings promise beyond agreeing with the reference (that is
tests/test_conv.py, on every backend): the im2col scratch is reused across calls of any shape and from
several threads, blocks of images and the 1x1 shortcut agree with the reference, odd strides are read
as they lie, and bad geometry or sizes raise a ValueError naming the op and the shapes, never a crash."""

import threading

import numpy as np
import pytest

pytest.importorskip("cffi")
pytest.importorskip("scipy")

import arignote  # noqa: E402
import arignote.tensor as T  # noqa: E402
from arignote.backends.c import conv as c_conv  # noqa: E402
from arignote.core import conv as C, pool as P  # noqa: E402

from checks import assert_same  # noqa: E402


def U(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def both(inputs, outputs, backend="c"):
    """The C function and the reference function of the graph."""
    return arignote.function(inputs, outputs, backend=backend), arignote.function(inputs, outputs, backend="reference")


def agree(pair, *values):
    mine, reference = (f(*values) for f in pair)
    for a, b in zip(mine if isinstance(mine, list) else [mine], reference if isinstance(reference, list) else [reference]):
        assert_same(a, b, "c vs reference")


def conv_and_grads(dtype="float64", **props):
    """Corr2d, its gradients with respect to x and w (through a weighted sum), as one function."""
    x, w, p = T.tensor4("x", dtype=dtype), T.tensor4("w", dtype=dtype), T.tensor4("p", dtype=dtype)
    y = C.Corr2d(**props)(x, w)
    return both([x, w, p], [y, *arignote.grad((y * p).sum(), [x, w])])


def values_for(n, c, h, w, o, k, dtype="float64", seed=0, **props):
    op = C.Corr2d(**props)
    rows, cols = op.output_shape((h, w), (k, k))
    return U(n, c, h, w, seed=seed, dtype=dtype), U(o, c // op.groups, k, k, seed=seed + 1, dtype=dtype), \
        U(n, o, rows, cols, seed=seed + 2, dtype=dtype)


def test_one_function_called_with_shapes_that_grow_and_shrink(c):
    """The scratch buffer of each call fits that call: larger, smaller, then larger again."""
    pair = conv_and_grads(pad=((1, 0), (2, 1)), stride=(2, 1), groups=2)
    for n, h, w in [(2, 6, 7), (37, 11, 9), (1, 4, 5), (5, 30, 3), (64, 9, 9)]:
        agree(pair, *values_for(n, 4, h, w, 6, 3, pad=((1, 0), (2, 1)), stride=(2, 1), groups=2, seed=n))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_many_blocks_of_images_and_one_image_at_a_time(c, dtype):
    """A batch many times a block (the last block partial), and images large enough to go one at a time."""
    pair = conv_and_grads(dtype)
    small = (c_conv.BLOCK_ELEMENTS // (30 * 9 * 9)) * 3 + 5  # 3 full blocks and a partial one
    agree(pair, *values_for(small, 3, 11, 11, 2, 3, dtype))
    side = int(np.sqrt(c_conv.ONE_IMAGE)) + 3
    agree(pair, *values_for(3, 2, side, side, 4, 2, dtype))


def test_one_by_one_kernels_read_in_place_or_through_strides(c):
    """A 1x1 kernel without padding reads the images in place (no im2col); views of every kind agree."""
    pair = conv_and_grads(groups=2)
    x, w, p = values_for(3, 4, 5, 6, 6, 1, groups=2)
    agree(pair, x, w, p)
    agree(pair, x[:, :, ::-1], w[::-1], p[..., ::-1])  # negative strides
    agree(pair, np.asfortranarray(x), w, np.asfortranarray(p))
    agree(pair, U(3, 4, 5, 12)[..., ::2], U(6, 2, 1, 2)[..., :1], U(3, 6, 5, 6).transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2))
    assert "1x1, stride 1, no padding" in pair[0].backend_source


def test_views_with_negative_and_odd_strides(c):
    pair = conv_and_grads(pad="half", dilation=(2, 1))
    x, w, p = values_for(4, 3, 9, 8, 5, 3, pad="half", dilation=(2, 1))
    big = np.zeros((8, 3, 18, 24))
    big[::2, :, ::2, ::3] = x
    agree(pair, big[::2, :, ::2, ::3], w, p)
    agree(pair, x[::-1, ::-1, ::-1, ::-1].copy()[::-1, ::-1, ::-1, ::-1], w[:, :, ::-1, ::-1], p[::-1])


def test_calls_from_several_threads_and_programs(c):
    """Two functions of the same graph share one compiled program; calls from threads on both (and on
    one of them at once) each get scratch of their own."""
    pairs = [conv_and_grads(), conv_and_grads()]
    cases = [values_for(n, 2, 10, 9, 3, 3, seed=n) for n in (1, 9, 40, 3)]
    expected = [pairs[0][1](*v) for v in cases]
    failures = []

    def work(f):
        for _ in range(5):
            for v, e in zip(cases, expected):
                for a, b in zip(f(*v), e):
                    if not np.allclose(a, b, rtol=1e-10, atol=1e-10):
                        failures.append("differs")

    threads = [threading.Thread(target=work, args=(pair[0],)) for pair in pairs + pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_empty_batches_channels_and_filters(c):
    pair = conv_and_grads()
    agree(pair, *values_for(0, 2, 5, 5, 3, 2))
    agree(pair, U(2, 0, 5, 5), U(3, 0, 2, 2), U(2, 3, 4, 4))
    agree(pair, U(2, 2, 5, 5), U(0, 2, 2, 2), U(2, 0, 4, 4))


@pytest.mark.parametrize("build, values, message", [
    (lambda x, w: C.Corr2d()(x, w), (U(1, 3, 5, 5), U(2, 2, 2, 2)),
     r"Corr2d.*input \(1, 3, 5, 5\) and filters \(2, 2, 2, 2\): the input has 3 channel\(s\)"),
    (lambda x, w: C.Corr2d(groups=2)(x, w), (U(1, 4, 5, 5), U(3, 2, 2, 2)), r"3 filter\(s\) do not divide into 2 group"),
    (lambda x, w: C.Corr2d(pad="full")(x, w), (U(1, 2, 5, 5), U(3, 2, 0, 2)), r"the filters have no taps"),
    (lambda x, w: C.Corr2d(dilation=(3, 1))(x, w), (U(1, 2, 6, 5), U(3, 2, 3, 2)),
     r"the filter spans 7 rows \(dilation 3\), more than the padded input's 6"),
], ids=["channels", "groups", "no taps", "span"])
def test_geometry_errors_name_the_op_and_shapes(c, build, values, message):
    x, w = T.tensor4("x"), T.tensor4("w")
    f = arignote.function([x, w], build(x, w), backend=c)
    with pytest.raises(ValueError, match=message):
        f(*values)


@pytest.mark.parametrize("size, message", [
    ([4, 5, 6], r"expected an image size of 2 non-negative ints, got 3 value"),
    ([4, -5], r"expected an image size of 2 non-negative ints, got \[4, -5\]"),
    ([2 ** 62, 5], r"too large"),
    ([2 ** 40, 2 ** 40], r"the output gradient has shape \(2, 3, 4, 4\), the convolution's output has "
                         r"\(2, 3, 1099511627775, 1099511627775\)"),
    ([7, 7], r"the output gradient has shape \(2, 3, 4, 4\), the convolution's output has \(2, 3, 6, 6\)"),
])
def test_bad_sizes_raise_value_errors(c, size, message):
    w, g, s = T.tensor4("w"), T.tensor4("g"), T.lvector("s")
    f = arignote.function([w, g, s], C.Corr2dGradInputs()(w, g, s), backend=c)
    with pytest.raises(ValueError, match=r"Corr2dGradInputs.*" + message):
        f(U(3, 2, 2, 2), U(2, 3, 4, 4), np.array(size, "int64"))
    x = T.tensor4("x")
    f = arignote.function([x, g, s], C.Corr2dGradWeights()(x, g, s), backend=c)
    with pytest.raises(ValueError, match="Corr2dGradWeights"):
        f(U(2, 2, 5, 5), U(2, 3, 4, 4), np.array(size, "int64"))


def test_the_generated_code_names_its_steps(c):
    x, w = T.ftensor4("x"), T.ftensor4("w")
    y = P.Pool((2, 2), ignore_border=True)(T.tanh(C.Corr2d()(x, w)))
    source = arignote.function([x, w], arignote.grad(y.sum(), w), backend=c).backend_source
    assert "ari_im2col_f32_s1x1_d1x1(" in source and "ari_gemm(0, " in source
    assert "window (2, 2), stride (2, 2), padding (0, 0), ignore_border=True" in source


# ---- pooling


def pool_pair(x, op_class=P.Pool, **props):
    op = P.Pool(**props)
    if op_class is P.Pool:
        return both([x], op(x))
    g = x.type("g")
    if op_class is P.AveragePoolGrad:
        return both([x, g], op_class(*op._props())(x, g))
    return both([x, g], op_class(*op._props())(x, op(x), g))


def test_max_pool_propagates_nan_anywhere_in_the_window(c):
    x = T.tensor4("x")
    pair = pool_pair(x, ws=(2, 3), stride=(1, 2), pad=(1, 1), ignore_border=True)
    a = U(2, 3, 7, 8)
    a[0, 0, 3, 4] = np.nan
    a[1, 2, 0, 0] = np.nan
    a[1, 1, 6, 7] = -np.inf
    agree(pair, a)
    agree(pair, a[:, :, ::-1, ::-2])


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
def test_integer_max_and_wrapping_sums(c, dtype):
    x = T.tensor3("x", dtype=dtype)
    info = np.iinfo(dtype)
    a = np.random.default_rng(3).integers(info.min, info.max, (3, 6, 7), dtype=dtype, endpoint=True)
    for mode in ("max", "sum"):
        agree(pool_pair(x, ws=(3, 2), stride=(2, 2), ignore_border=False, mode=mode), a)


def test_ties_each_get_the_whole_gradient(c):
    x = T.tensor4("x")
    pair = pool_pair(x, P.MaxPoolGrad, ws=(3, 3), stride=(1, 1))
    a = np.floor(U(2, 2, 6, 6) * 2)
    agree(pair, a, U(2, 2, 4, 4))


@pytest.mark.parametrize("ignore_border", [True, False])
@pytest.mark.parametrize("op_class, mode", [(P.MaxPoolGrad, "max"), (P.AveragePoolGrad, "sum"),
                                           (P.AveragePoolGrad, "average_exc_pad")])
def test_gradients_where_windows_tile_the_image_or_not(c, op_class, mode, ignore_border):
    """Windows that tile the image write each element once (no zeroing); others leave zeros uncovered."""
    x = T.tensor4("x", dtype="float32")
    pair = pool_pair(x, op_class, ws=(2, 2), ignore_border=ignore_border, mode=mode)
    for rows, cols in [(6, 8), (7, 8), (6, 9), (1, 1)]:
        a = np.floor(U(2, 3, rows, cols, dtype="float32") * 3)  # ties
        agree(pair, a, U(2, 3, *P.Pool((2, 2), ignore_border=ignore_border).output_shape(rows, cols), dtype="float32"))


@pytest.mark.parametrize("op_class", [P.MaxPoolGrad, P.AveragePoolGrad])
def test_a_pooled_array_of_the_wrong_shape_raises(c, op_class):
    x = T.tensor4("x")
    f, _ = pool_pair(x, op_class, ws=(2, 2), mode="max" if op_class is P.MaxPoolGrad else "average_inc_pad")
    with pytest.raises(ValueError, match=r"for an input of shape \(2, 3, 4, 4\) the pooled arrays have shape "
                                         r"\(2, 3, 2, 2\), got \(2, 3, 2, 3\)"):
        f(U(2, 3, 4, 4), U(2, 3, 2, 3))


def test_large_pooling_of_many_leading_axes(c):
    x = T.TensorType("float32", (False,) * 5)("x")
    a = U(3, 4, 5, 13, 11, dtype="float32")
    for op_class in (P.Pool, P.MaxPoolGrad, P.AveragePoolGrad):
        props = dict(ws=(3, 2), stride=(2, 3), ignore_border=False,
                     mode="average_exc_pad" if op_class is P.AveragePoolGrad else "max")
        pair = pool_pair(x, op_class, **props)
        if op_class is P.Pool:
            agree(pair, a)
        else:
            agree(pair, a, U(3, 4, 5, *P.Pool(**props).output_shape(13, 11), dtype="float32"))



@pytest.mark.parametrize("mode", ["max", "average_inc_pad", "sum"])
def test_large_poolings_split_their_images_between_threads(mode, c):
    """Poolings have independent images (Op.splits_rows): the plan gives them threads, also beside a
    convolution whose BLAS runs on one core, and C splits the images of one past a million elements
    between the cores, with the reference's values on any strides."""
    from arignote.tensor.signal.pool import pool_2d

    x, w = T.tensor4("x"), T.tensor4("w")
    pooled = pool_2d(x, (2, 3), ignore_border=False, mode=mode)
    out = [pooled, arignote.grad((pooled ** 2).sum(), x)]
    f, ref = both([x], out)
    threaded = [type(node.op).__name__ for node in f.maker.fgraph.plan.threads]
    assert "Pool" in threaded and len(threaded) == 2 and f.backend_source.count("ari_parallel(ari_images") >= 2
    X = U(40, 10, 51, 53)  # 1.08 million elements
    for value in (X, X[:, :, ::-1, :], np.swapaxes(X, 0, 1)):
        for got, want in zip(f(value), ref(value)):
            assert_same(got, want)
    conv = T.nnet.conv2d(x, w)
    g = arignote.function([x, w], pool_2d(conv, (2, 2), ignore_border=True, mode=mode), backend=c)
    assert g.maker.fgraph.plan.blas_one_core and g.maker.fgraph.plan.threads
