"""ifelse does what a Theano user expects on every backend: lazy (only the branch taken runs), branches
of different shapes, several outputs, nesting, inside scan, gradients of both branches."""

import numpy as np
import pytest

import arignote
import arignote as theano
import arignote.tensor as T
from arignote.core.ifelse import IfElse
from arignote.ifelse import ifelse

XV = np.array([1.0, 2.0, 3.0])
XV.setflags(write=False)


def compile_(backend, inputs, outputs, **kwargs):
    return arignote.function(inputs, outputs, backend=backend, **kwargs)


def test_the_theano_import_paths():
    assert theano.ifelse.ifelse is ifelse
    out = ifelse(T.lscalar("c"), T.dvector("a"), T.dvector("b"))
    assert isinstance(out.owner.op, IfElse)


def test_only_the_branch_taken_runs(backend):
    c, x, i = T.lscalar("c"), T.dvector("x"), T.lscalar("i")
    f = compile_(backend, [c, x, i], ifelse(c, x[i] * 2, T.sum(x)))
    assert f(0, XV, 10) == 6.0        # x[10] would raise IndexError: the then-branch did not run
    assert f(1, XV, 2) == 6.0
    with pytest.raises(IndexError):
        f(1, XV, 10)
    g = compile_(backend, [c, x, i], ifelse(c, T.sum(x), T.exp(x[i])))
    assert g(1, XV, -7) == 6.0        # the else-branch would raise
    np.testing.assert_allclose(g(0, XV, -1), np.exp(3.0))


def test_work_shared_by_the_branches_and_work_of_one_branch(backend):
    # exp(x) is read by both branches (computed once, before); x[i] only by the then-branch
    c, x, i = T.lscalar("c"), T.dvector("x"), T.lscalar("i")
    y = T.exp(x)
    f = compile_(backend, [c, x, i], ifelse(c, y[i] + y[0], T.sum(y)))
    np.testing.assert_allclose(f(0, XV, 10), np.exp(XV).sum())
    np.testing.assert_allclose(f(1, XV, 1), np.exp(2.0) + np.exp(1.0))
    # a node also used outside the ifelse runs whatever the condition
    z = x[i]
    h = compile_(backend, [c, x, i], [ifelse(c, z, T.sum(x)), z + 1])
    with pytest.raises(IndexError):
        h(0, XV, 10)


def test_a_scan_in_the_branch_not_taken_does_not_run(backend):
    c, x, n = T.lscalar("c"), T.dvector("x"), T.lscalar("n")
    doubled, _ = arignote.scan(lambda x_t: x_t * 2, sequences=x, n_steps=n)
    f = compile_(backend, [c, x, n], ifelse(c, T.sum(doubled), -T.sum(x)))
    assert f(0, XV, 10) == -6.0   # 10 steps over 3 rows would raise ValueError
    assert f(1, XV, 2) == 6.0
    with pytest.raises(ValueError):
        f(1, XV, 10)


def test_branches_of_different_shapes(backend):
    c, x = T.lscalar("c"), T.dvector("x")
    f = compile_(backend, [c, x], ifelse(c, x[:2], T.concatenate([x, x])))
    np.testing.assert_array_equal(f(1, XV), XV[:2])
    np.testing.assert_array_equal(f(0, XV), np.concatenate([XV, XV]))
    m = T.dmatrix("m")
    g = compile_(backend, [c, m], ifelse(c, m, m.T[:1]))
    mv = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(g(1, mv), mv)
    np.testing.assert_array_equal(g(0, mv), mv.T[:1])


def test_several_outputs(backend):
    c, x = T.lscalar("c"), T.dvector("x")
    outs = ifelse(c, [x[:2], T.sum(x), x * 0 + 1], [x, T.max(x), x ** 2])
    assert isinstance(outs, list) and len(outs) == 3
    f = compile_(backend, [c, x], outs)
    for got, want in zip(f(1, XV), [XV[:2], 6.0, np.ones(3)]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(f(0, XV), [XV, 3.0, XV ** 2]):
        np.testing.assert_array_equal(got, want)


def test_nested_ifelse_is_lazy_at_every_level(backend):
    c, x, i = T.lscalar("c"), T.dvector("x"), T.lscalar("i")
    out = ifelse(c > 0, ifelse(c > 1, x[i], x[0] * 10), T.sum(x))
    f = compile_(backend, [c, x, i], out)
    assert f(0, XV, 10) == 6.0
    assert f(1, XV, 10) == 10.0
    assert f(2, XV, 2) == 3.0
    with pytest.raises(IndexError):
        f(2, XV, 10)


def test_ifelse_inside_scan(backend):
    k, x = T.lvector("k"), T.dvector("x")
    # a negative k would index out of range, but its branch is not taken
    out, _ = arignote.scan(lambda k_t, h, x_: ifelse(k_t >= 0, h + x_[k_t], h * 0.5), sequences=k,
                           outputs_info=T.constant(0.0, dtype="float64"), non_sequences=x)
    ks = np.array([0, -5, 2, -100, 1])
    h, expected = 0.0, []
    for kv in ks:
        h = h + XV[kv] if kv >= 0 else h * 0.5
        expected.append(h)
    np.testing.assert_allclose(compile_(backend, [k, x], out)(ks, XV), expected, rtol=1e-12)


def test_gradient_through_ifelse_inside_scan(backend):
    def build(xs):
        out, _ = arignote.scan(lambda x_t, h: ifelse(x_t > 0, h * x_t, h + x_t), sequences=xs,
                               outputs_info=T.constant(1.0, dtype="float64"))
        return out
    arignote.verify_grad(build, [np.array([0.5, -1.0, 2.0, -0.3])], backend=backend, rng=np.random.default_rng(1))


@pytest.mark.parametrize("taken", [1, 0], ids=["then", "else"])
def test_gradient_with_respect_to_both_branches(backend, taken):
    def build(a, b):
        return ifelse(np.int64(taken), T.tanh(a) * b[:3], b[1:] ** 2 + a)
    arignote.verify_grad(build, [np.array([0.3, -0.2, 0.5]), np.array([1.0, -2.0, 0.5, 0.7])], backend=backend,
                         rng=np.random.default_rng(2))
    c, a, b = T.lscalar("c"), T.dvector("a"), T.dvector("b")
    grads = compile_(backend, [c, a, b], T.grad(T.sum(ifelse(c, a * 2, b * 3)), [a, b]))
    ga, gb = grads(taken, XV, XV)
    np.testing.assert_array_equal(ga, np.full(3, 2.0 if taken else 0.0))
    np.testing.assert_array_equal(gb, np.full(3, 0.0 if taken else 3.0))


def test_gradient_of_a_branch_sharing_an_input(backend):
    c, x = T.lscalar("c"), T.dvector("x")
    g = compile_(backend, [c, x], T.grad(T.sum(ifelse(c, x * 2, x ** 2)), x))
    np.testing.assert_allclose(g(1, XV), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(g(0, XV), 2 * XV)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "int32", "int64", "float32", "float64"])
def test_condition_of_any_scalar_dtype(backend, dtype):
    c, x = T.scalar("c", dtype=dtype), T.dvector("x")
    f = compile_(backend, [c, x], ifelse(c, x, -x))
    np.testing.assert_array_equal(f(np.array(1).astype(dtype), XV), XV)
    np.testing.assert_array_equal(f(np.array(0).astype(dtype), XV), -XV)
    nonzero = {"bool": True, "float32": 0.5, "float64": -0.25}.get(dtype, 2)
    np.testing.assert_array_equal(f(np.array(nonzero).astype(dtype), XV), XV)


def test_a_comparison_as_condition(backend):
    a, b = T.dscalars("a", "b")
    f = compile_(backend, [a, b], ifelse(T.lt(a, b), a, b))
    assert f(1.0, 2.0) == 1.0 and f(3.0, 2.0) == 2.0


def test_type_mismatch_errors():
    c = T.lscalar("c")
    with pytest.raises(TypeError) as info:
        ifelse(c, T.fvector("f"), T.dvector("d"))
    assert "float32" in str(info.value) and "float64" in str(info.value) and "output 0" in str(info.value)
    with pytest.raises(TypeError) as info:
        ifelse(c, [T.dvector("a"), T.dmatrix("m")], [T.dvector("b"), T.dvector("v")])
    assert "output 1" in str(info.value) and "matrix" in str(info.value)
    with pytest.raises(ValueError):
        ifelse(c, [T.dvector("a"), T.dvector("b")], [T.dvector("c")])
    with pytest.raises(TypeError):
        ifelse(T.dvector("not_scalar"), T.dvector("a"), T.dvector("b"))


def test_a_python_number_takes_the_other_branch_dtype(backend):
    c, s = T.lscalar("c"), T.fscalar("s")
    out = ifelse(c, s, 0)
    assert out.dtype == "float32"
    f = compile_(backend, [c, s], out)
    assert f(0, np.float32(2.0)) == 0.0 and f(1, np.float32(2.0)) == 2.0


def test_outputs_are_fresh_writeable_arrays(backend):
    c, x = T.lscalar("c"), T.dvector("x")
    f = compile_(backend, [c, x], ifelse(c, x, x * 2))
    result = f(1, XV)
    np.testing.assert_array_equal(result, XV)
    assert result.flags.writeable and not np.may_share_memory(result, XV)
    result[0] = 42.0
    assert XV[0] == 1.0


def test_ifelse_of_shared_variables_and_updates(backend):
    w = arignote.shared(np.array([1.0, 2.0]), name="w")
    c = T.lscalar("c")
    step = compile_(backend, [c], ifelse(c, w * 10, w), updates=[(w, ifelse(c, w + 1, w - 1))])
    np.testing.assert_array_equal(step(1), [10.0, 20.0])   # the outputs see the old value
    np.testing.assert_array_equal(w.get_value(), [2.0, 3.0])
    np.testing.assert_array_equal(step(0), [2.0, 3.0])
    np.testing.assert_array_equal(w.get_value(), [1.0, 2.0])
