"""Updates computed in their shared variable's storage (core/plan.py ``in_place_updates``): the
storage survives the call, the results are those of computing the updates apart, outputs see the old
values, and a call that raises leaves every shared variable as it was, on every backend."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T

rng = np.random.default_rng(7)


def _storage(*shared):
    return [s.get_value(borrow=True).__array_interface__["data"][0] for s in shared]


def _in_place(f):
    return f.maker.fgraph.plan.updates_in_place


def _mlp(backend, momentum=True):
    x, y = T.fmatrix("x"), T.ivector("y")
    W = arignote.shared(rng.standard_normal((6, 4)).astype("float32"), name="W")
    b = arignote.shared(np.zeros(4, "float32"), name="b")
    v = arignote.shared(np.zeros((6, 4), "float32"), name="v")
    p = T.nnet.softmax(T.tanh(T.dot(x, W) + b))
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y]) + 1e-3 * (W ** 2).sum()
    gW, gb = arignote.grad(cost, [W, b])
    vn = 0.9 * v - 0.1 * gW
    updates = [(W, W + vn), (b, b - 0.1 * gb), (v, vn)] if momentum else [(W, W - 0.1 * gW), (b, b - 0.1 * gb)]
    return x, y, cost, (W, b, v), updates


def test_a_training_step_keeps_every_parameters_storage(backend, monkeypatch):
    x, y, cost, shared, updates = _mlp(backend)
    f = arignote.function([x, y], cost, updates=updates, backend=backend)
    assert sorted(_in_place(f)) == [1, 2, 3]
    before = _storage(*shared)
    X, Y = rng.standard_normal((5, 6)).astype("float32"), np.array([0, 1, 3, 2, 1], "int32")
    values = [s.get_value() for s in shared]
    for _ in range(3):
        f(X, Y)
    assert _storage(*shared) == before
    # the same steps computed with the updates into new buffers (no in-place pass) agree
    for s, value in zip(shared, values):
        s.set_value(value)
    monkeypatch.setattr(arignote.config, "rewrites", "merge,constant_folding,canonicalize,stabilize,loops,fusion")
    g = arignote.function([x, y], cost, updates=updates, backend=backend)
    monkeypatch.undo()
    assert _in_place(g) == {}
    for _ in range(3):
        g(X, Y)
    expected = [s.get_value() for s in shared]
    for s, value in zip(shared, values):
        s.set_value(value)
    for _ in range(3):
        f(X, Y)
    for s, want in zip(shared, expected):
        np.testing.assert_allclose(s.get_value(), want, rtol=1e-5, atol=1e-6)


def test_outputs_see_the_old_values(backend):
    W = arignote.shared(np.arange(6.0).reshape(2, 3), name="W")
    f = arignote.function([], [W.sum(), W * 2], updates=[(W, W + 1)], backend=backend)
    assert _in_place(f)
    total, doubled = f()
    assert total == 15 and np.array_equal(doubled, np.arange(6.0).reshape(2, 3) * 2)
    assert np.array_equal(W.get_value(), np.arange(6.0).reshape(2, 3) + 1)
    # an output that is the shared variable itself (or a view of it): the update is not done in place
    g = arignote.function([], [W, W.T], updates=[(W, W + 1)], backend=backend)
    assert not _in_place(g)
    old, old_t = g()
    assert np.array_equal(old, np.arange(6.0).reshape(2, 3) + 1) and np.array_equal(old_t, old.T)
    assert np.array_equal(W.get_value(), np.arange(6.0).reshape(2, 3) + 2)


def test_swapped_updates_read_the_old_values(backend):
    a = arignote.shared(np.array([1.0, 2.0]), name="a")
    b = arignote.shared(np.array([10.0, 20.0]), name="b")
    f = arignote.function([], [], updates=[(a, b + 0), (b, a + 0)], backend=backend)
    f()
    assert np.array_equal(a.get_value(), [10.0, 20.0]) and np.array_equal(b.get_value(), [1.0, 2.0])
    f()
    assert np.array_equal(a.get_value(), [1.0, 2.0]) and np.array_equal(b.get_value(), [10.0, 20.0])


def test_a_failing_check_leaves_every_shared_variable_as_it_was(backend):
    # b's update cannot fit b: its check runs before W's update is written
    W = arignote.shared(np.ones((2, 3)), name="W")
    b = arignote.shared(np.ones(3), name="b")
    gw, gb = T.dmatrix("gw"), T.dvector("gb")
    f = arignote.function([gw, gb], [], updates=[(W, W - gw), (b, b - gb)], backend=backend)
    assert sorted(_in_place(f)) == [0, 1]
    with pytest.raises(ValueError):
        f(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ValueError):
        f(np.ones((2, 2)), np.ones(3))
    assert np.array_equal(W.get_value(), np.ones((2, 3))) and np.array_equal(b.get_value(), np.ones(3))
    f(np.ones((2, 3)), np.ones(3))
    assert not W.get_value().any() and not b.get_value().any()


def test_momentum_checks_the_velocity_against_the_weights(backend):
    # v's new value feeds W's update: a v of another shape than W fails before either is written
    W = arignote.shared(np.ones((2, 3)), name="W")
    v = arignote.shared(np.zeros((2, 3)), name="v")
    g = T.dmatrix("g")
    vn = 0.5 * v - g
    f = arignote.function([g], [], updates=[(v, vn), (W, W + vn)], backend=backend)
    assert sorted(_in_place(f)) == [0, 1]
    v.set_value(np.zeros((2, 1)))  # broadcasts with g, but not W's shape
    with pytest.raises(ValueError):
        f(np.ones((2, 1)))
    assert np.array_equal(W.get_value(), np.ones((2, 3))) and np.array_equal(v.get_value(), np.zeros((2, 1)))


def test_an_index_error_after_the_updates_changes_nothing(backend):
    W = arignote.shared(np.ones(4), name="W")
    E = arignote.shared(np.zeros((3, 2)), name="E")
    i = T.lscalar("i")
    f = arignote.function([i], W[i] * 3, updates=[(W, W * 2), (E, T.inc_subtensor(E[i], 1.0))], backend=backend)
    assert sorted(_in_place(f)) == [1, 2]
    with pytest.raises(IndexError):
        f(5)
    with pytest.raises(IndexError):
        f(3)  # W[3] exists, E[3] does not: E's update runs first among the updates, before W's write
    assert np.array_equal(W.get_value(), np.ones(4)) and not E.get_value().any()
    assert f(1) == 3.0
    assert np.array_equal(W.get_value(), np.full(4, 2.0)) and np.array_equal(E.get_value()[1], [1.0, 1.0])


def test_storage_shared_with_other_inputs_is_copied_first(backend):
    base = np.arange(4.0)
    s1 = arignote.shared(base, name="s1", borrow=True)
    s2 = arignote.shared(base, name="s2", borrow=True)  # the very same array
    x = T.dvector("x")
    f = arignote.function([x], s2 * 10 + x, updates=[(s1, s1 + 1)], backend=backend)
    assert _in_place(f)
    out = f(np.zeros(4))
    assert np.array_equal(out, np.arange(4.0) * 10)
    assert np.array_equal(s1.get_value(), np.arange(4.0) + 1) and np.array_equal(s2.get_value(), np.arange(4.0))
    # an explicit input that is the shared variable's own storage
    g = arignote.function([x], s1.sum() + x.sum(), updates=[(s1, s1 * 0 + x[::-1])], backend=backend)
    storage = s1.get_value(borrow=True)
    assert g(storage) == 2 * storage.sum()
    assert np.array_equal(s1.get_value(), (np.arange(4.0) + 1)[::-1])


def test_a_value_that_is_not_contiguous_or_writeable_is_replaced_by_a_copy(backend):
    W = arignote.shared(np.zeros((2, 2)), name="W")
    f = arignote.function([], [], updates=[(W, W + 1)], backend=backend)
    view = np.arange(8.0).reshape(2, 4)[:, ::2]
    W.set_value(view, borrow=True)
    f()
    assert np.array_equal(W.get_value(), view + 1) and np.array_equal(view, [[0.0, 2.0], [4.0, 6.0]])
    frozen = np.ones((2, 2))
    frozen.flags.writeable = False
    W.set_value(frozen, borrow=True)
    f()
    assert np.array_equal(W.get_value(), np.full((2, 2), 2.0)) and np.array_equal(frozen, np.ones((2, 2)))


def test_cross_checked_and_profiled_calls(backend):
    x, y, cost, shared, updates = _mlp(backend, momentum=False)
    X, Y = rng.standard_normal((5, 6)).astype("float32"), np.array([0, 1, 3, 2, 1], "int32")
    checked = arignote.function([x, y], cost, updates=updates, backend=backend, check=True)
    profiled = arignote.function([x, y], cost, updates=updates, backend=backend, profile=True)
    assert _in_place(checked) and _in_place(profiled)
    before = shared[0].get_value()
    checked(X, Y)
    profiled(X, Y)
    assert not np.allclose(shared[0].get_value(), before)
    assert "Composite" in profiled.profile._summary_text(20, 20)


def _ops(f):
    return [type(node.op).__name__ for node in f.maker.fgraph.apply_nodes]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows, cols", [(4, 3), (6, 40)])  # (6, 40): the C backend's few-rows product
def test_a_product_update_is_one_gemm_into_the_weights(backend, dtype, rows, cols, monkeypatch):
    x, d = T.matrix("x", dtype=dtype), T.matrix("d", dtype=dtype)
    W = arignote.shared(rng.standard_normal((rows, cols)).astype(dtype), name="W")
    v = arignote.shared(rng.standard_normal((rows, cols)).astype(dtype), name="v")
    lr = T.scalar("lr", dtype=dtype)
    vn = 0.9 * v - lr * T.dot(x.T, d + 1)  # another product: one read by two updates stays a product
    updates = [(W, W - 0.1 * (T.dot(x.T, d) + 0.01 * W)), (v, vn)]
    X, D = rng.standard_normal((5, rows)).astype(dtype), rng.standard_normal((5, cols)).astype(dtype)
    f = arignote.function([x, d, lr], [], updates=updates, backend=backend)
    assert _ops(f).count("Gemm") == 2 and sorted(_in_place(f)) == [0, 1]
    w0, v0 = W.get_value(), v.get_value()
    before = _storage(W, v)
    f(X, D, np.asarray(0.5, dtype))
    assert _storage(W, v) == before
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12)
    np.testing.assert_allclose(W.get_value(), w0 - 0.1 * (X.T @ D + 0.01 * w0), **tol)
    np.testing.assert_allclose(v.get_value(), 0.9 * v0 - 0.5 * (X.T @ (D + 1)), **tol)
    with pytest.raises(ValueError):  # d's columns do not fit W's: checked before anything is written
        f(X, D[:, :2], np.asarray(0.5, dtype))
    np.testing.assert_allclose(W.get_value(), w0 - 0.1 * (X.T @ D + 0.01 * w0), **tol)


def test_a_product_read_elsewhere_stays_a_product(backend):
    x, d = T.dmatrices("x", "d")
    W = arignote.shared(np.ones((2, 2)), name="W")
    g = T.dot(x.T, d)
    f = arignote.function([x, d], g.sum(), updates=[(W, W - g)], backend=backend)
    assert "Gemm" not in _ops(f)
    X = np.arange(4.0).reshape(2, 2)
    assert f(X, X) == (X.T @ X).sum()
    np.testing.assert_allclose(W.get_value(), 1 - X.T @ X)
    # a bias-like term that broadcasts is not a multiple of W: no gemm either
    b = T.dvector("b")
    h = arignote.function([x, d, b], [], updates=[(W, W - T.dot(x.T, d) + b)], backend=backend)
    assert "Gemm" not in _ops(h)


def test_a_gradient_with_weight_decay_is_one_gemm(backend):
    # grad writes the decay's gradient as second(W, l2) * 2 * W: still a multiple of W
    x = T.dmatrix("x")
    W = arignote.shared(rng.standard_normal((3, 2)), name="W")
    cost = T.tanh(T.dot(x, W)).sum() + 0.01 * (W ** 2).sum()
    f = arignote.function([x], cost, updates=[(W, W - 0.1 * arignote.grad(cost, W))], backend=backend)
    assert "Gemm" in _ops(f) and _in_place(f)
    X, w0 = rng.standard_normal((4, 3)), W.get_value()
    f(X)
    d = 1 - np.tanh(X @ w0) ** 2
    np.testing.assert_allclose(W.get_value(), w0 - 0.1 * (X.T @ d + 0.02 * w0), rtol=1e-12)


def test_a_copy_without_updates_changes_no_shared_variable(backend):
    W = arignote.shared(np.ones((2, 2)), name="W")
    other = arignote.shared(np.full((2, 2), 5.0), name="other")
    f = arignote.function([], W.sum(), updates=[(W, W + 1)], backend=backend)
    assert _in_place(f)
    bare = f.copy(delete_updates=True)
    assert bare() == 4.0 and bare() == 4.0 and np.array_equal(W.get_value(), np.ones((2, 2)))
    swapped = f.copy(swap={W: other})
    assert swapped() == 20.0 and np.array_equal(other.get_value(), np.full((2, 2), 6.0))
    assert f() == 4.0 and np.array_equal(W.get_value(), np.full((2, 2), 2.0))
