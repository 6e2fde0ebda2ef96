"""Ops written in Python (Theano's ``Op`` with ``perform``, ``as_op``) on every backend: values, shapes,
gradients, errors, and such ops among compiled nodes, in updates, inside loops and branches."""

import pickle

import numpy
import numpy as np
import pytest

import arignote
import arignote as theano
import arignote.tensor as T
from arignote.compile.ops import FromFunctionOp, as_op
from arignote.ifelse import ifelse

rng = np.random.default_rng(20240620)
A34 = rng.uniform(-1, 1, (3, 4))
B42 = rng.uniform(-1, 1, (4, 2))
X54 = rng.uniform(-1, 1, (5, 4))
for _array in (A34, B42, X54):
    _array.setflags(write=False)  # a backend must never write into its inputs


# Theano's tutorial, "Creating a new Op: Python implementation"
class DoubleOp(theano.Op):
    __props__ = ()

    def make_node(self, x):
        x = theano.tensor.as_tensor_variable(x)
        return theano.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        x = inputs[0]
        z = output_storage[0]
        z[0] = x * 2

    def infer_shape(self, node, i0_shapes):
        return i0_shapes

    def grad(self, inputs, output_grads):
        return [output_grads[0] * 2]


class DoubleOp2(theano.gof.Op):  # the tutorial's second form: itypes and otypes, no make_node
    __props__ = ()
    itypes = [T.dmatrix]
    otypes = [T.dmatrix]

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0] * 2


# Theano's documentation of as_op
def infer_shape_numpy_dot(node, input_shapes):
    ashp, bshp = input_shapes
    return [ashp[:-1] + bshp[-1:]]


@as_op(itypes=[T.dmatrix, T.dmatrix], otypes=[T.dmatrix], infer_shape=infer_shape_numpy_dot)
def numpy_dot(a, b):
    return numpy.dot(a, b)


@as_op(itypes=[T.dvector], otypes=[T.dscalar, T.lvector])
def norm_and_order(v):  # two outputs: a 0-d float and an int vector
    return np.sqrt(np.sum(v * v)), np.argsort(v)


class Counted(theano.Op):
    """x * factor, counting its performs; no __props__: two instances are never merged (Theano)."""

    def __init__(self, factor):
        self.factor = factor
        self.calls = 0

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return theano.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        self.calls += 1
        output_storage[0][0] = inputs[0] * self.factor

    def grad(self, inputs, output_grads):
        return [Counted(self.factor)(output_grads[0])]  # its gradient is a Python op too


class Scale(theano.Op):
    """a * x + b with the Theano 1.0 spellings: __props__, __str__, L_op, infer_shape(fgraph, ...)."""

    __props__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b
        super().__init__()

    def __str__(self):
        return f"Scale({self.a}x+{self.b})"

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return theano.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = self.a * inputs[0] + self.b

    def infer_shape(self, fgraph, node, input_shapes):
        return input_shapes

    def L_op(self, inputs, outputs, output_grads):
        return [self.a * output_grads[0]]


class Boom(Exception):
    pass


class Misbehaving(theano.Op):
    """Fails in the way ``how`` says when the sum of its input exceeds 3."""

    __props__ = ("how",)

    def __init__(self, how):
        self.how = how

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return theano.Apply(self, [x], [T.TensorType(x.dtype, (False,) * x.ndim)()])

    def perform(self, node, inputs, output_storage):
        x = inputs[0]
        if x.sum() <= 3:
            output_storage[0][0] = x + 1
        elif self.how == "raise":
            raise Boom(f"too big: {x.sum():g}")
        elif self.how == "dtype":
            output_storage[0][0] = (x + 1).astype("float32")
        elif self.how == "ndim":
            output_storage[0][0] = (x + 1).reshape(-1)[:, None]
        elif self.how == "overwrite":
            x += 1
            output_storage[0][0] = x
        # "unset": output_storage[0][0] stays None


def run(backend, inputs, outputs, **kwargs):
    return arignote.function(inputs, outputs, backend=backend, **kwargs)


# ---------------------------------------------------------------------------------------------------
# values, shapes and gradients


def test_the_tutorials_double_op(backend):
    x = T.dmatrix("x")
    np.testing.assert_array_equal(run(backend, [x], DoubleOp()(x))(X54), X54 * 2)
    np.testing.assert_array_equal(run(backend, [x], DoubleOp2()(x))(X54), X54 * 2)
    g = run(backend, [x], theano.grad(DoubleOp()(x).sum(), x))(X54)
    np.testing.assert_array_equal(g, np.full_like(X54, 2))
    theano.verify_grad(DoubleOp(), [X54], rng=np.random.default_rng(0), backend=backend)


def test_as_op_numpy_dot_among_compiled_nodes(backend):
    a, b = T.dmatrices("a", "b")
    out = (T.tanh(numpy_dot(T.exp(a) - 1, b * 2)) + 1).sum(axis=0)
    result = run(backend, [a, b], out)(A34, B42)
    np.testing.assert_allclose(result, (np.tanh(np.dot(np.exp(A34) - 1, B42 * 2)) + 1).sum(axis=0), rtol=1e-12)
    assert str(numpy_dot) == "FromFunctionOp{numpy_dot}"


def test_infer_shape_answers_shape_questions_without_running_perform(backend):
    a, b, x = T.dmatrix("a"), T.dmatrix("b"), T.dmatrix("x")
    counted = Counted(3.0)
    f = run(backend, [a, b, x], [numpy_dot(a, b).shape, DoubleOp()(x).shape[1], Scale(2, 1)(x).shape])
    assert [list(np.atleast_1d(v)) for v in f(A34, B42, X54)] == [[3, 2], [4], [5, 4]]
    assert not any(isinstance(n.op, (FromFunctionOp, DoubleOp, Scale)) for n in f.maker.fgraph.apply_nodes)
    g = run(backend, [x], counted(x).shape)  # no infer_shape: the op runs
    assert list(g(X54)) == [5, 4] and counted.calls == 1


def test_several_outputs_scalars_and_integers(backend):
    v = T.dvector("v")
    norm, order = norm_and_order(v)
    values = np.array([3.0, -1.0, 2.0])
    result = run(backend, [v], [norm * 2, order + 1, order])(values)
    assert result[0].shape == () and result[0].dtype == np.float64
    np.testing.assert_allclose(result[0], 2 * np.sqrt(14.0))
    np.testing.assert_array_equal(result[1], [2, 3, 1])
    assert result[2].dtype == np.int64


def test_props_ops_merge_and_props_less_ops_do_not(backend):
    x = T.dmatrix("x")
    first, second = Counted(2.0), Counted(2.0)  # no __props__: distinct, as in Theano
    f = run(backend, [x], [first(x) + second(x), Scale(2, 1)(x) * Scale(2, 1)(x)])
    result = f(X54)
    np.testing.assert_allclose(result[0], X54 * 4)
    np.testing.assert_allclose(result[1], (2 * X54 + 1) ** 2)
    assert first.calls == second.calls == 1
    assert sum(isinstance(n.op, Scale) for n in f.maker.fgraph.apply_nodes) == 1
    assert Scale(2, 1) == Scale(2, 1) != Scale(2, 2) and str(Scale(2, 1)) == "Scale(2x+1)"


def test_gradients_through_python_ops(backend):
    x = T.dmatrix("x")
    cost = (Counted(3.0)(T.sin(x)) * Scale(0.5, 2)(x)).sum()
    g = run(backend, [x], theano.grad(cost, x))(X54)
    np.testing.assert_allclose(g, 3 * np.cos(X54) * (0.5 * X54 + 2) + 3 * np.sin(X54) * 0.5, rtol=1e-12)
    theano.verify_grad(lambda v: Scale(-2, 1)(T.tanh(v)), [X54], rng=np.random.default_rng(1), backend=backend)


def test_strided_inputs_and_outputs_that_alias_inputs(backend):
    x = T.dmatrix("x")
    same = as_op(itypes=[T.dmatrix], otypes=[T.dmatrix])(lambda m: m)  # returns its input itself
    f = run(backend, [x], [same(x.T), same(x[::-1, ::2]) * 1.0, same(x)])
    transposed, sliced, whole = f(X54)
    np.testing.assert_array_equal(transposed, X54.T)
    np.testing.assert_array_equal(sliced, X54[::-1, ::2])
    assert not np.may_share_memory(whole, X54) and whole.flags.writeable


class FirstRow(theano.Op):
    """x[:1], a view of its input declared in Theano's form of view_map."""

    __props__ = ()
    view_map = {0: [0]}

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return theano.Apply(self, [x], [T.TensorType(x.dtype, (True, False))()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0][:1]


def test_a_declared_view(backend):
    x = T.dmatrix("x")
    assert FirstRow.view_map == {0: 0}  # arignote's form, for the buffer plan
    first, after = run(backend, [x], [FirstRow()(T.exp(x)) * 2, T.exp(x) + 1])(X54)
    np.testing.assert_allclose(first, np.exp(X54[:1]) * 2, rtol=1e-12)
    np.testing.assert_allclose(after, np.exp(X54) + 1, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# errors


def test_an_exception_in_perform_keeps_its_type_and_names_the_node(backend):
    x = T.dmatrix("x")
    f = run(backend, [x], T.exp(Misbehaving("raise")(x * 2)) + 1)
    for _ in range(2):  # and the program still works afterwards
        with pytest.raises(Boom, match=r"Misbehaving\{how='raise'\} \(built at .*test_python_ops.py.*too big: 40"):
            f(np.ones((4, 5)))
        np.testing.assert_allclose(f(np.zeros((2, 2))), np.full((2, 2), np.e + 1))


@pytest.mark.parametrize("how, message", [
    ("dtype", r"perform gave output 0 of dtype float32, but make_node declared TensorType\(float64, matrix\)"),
    ("ndim", r"perform gave output 0 of shape \(20, 1\) \(2 dimension\(s\)\)|shape \(20, 1\)"),
    ("unset", r"perform did not set output 0: output_storage\[0\]\[0\] is still None"),
    ("overwrite", r"read-only.*perform must not write into its inputs"),
])
def test_what_perform_gives_is_checked(backend, how, message):
    x = T.dtensor3("x") if how == "ndim" else T.dmatrix("x")
    f = run(backend, [x], Misbehaving(how)(x) * 2)
    shape = (2, 2, 5) if how == "ndim" else (4, 5)
    with pytest.raises((TypeError, ValueError), match=message) as info:
        f(np.ones(shape))
    assert f"Misbehaving{{how='{how}'}}" in str(info.value)
    np.testing.assert_array_equal(f(np.zeros(shape)), np.full(shape, 2.0))


def test_a_broadcastable_output_of_the_wrong_length(backend):
    x = T.dmatrix("x")
    row = as_op(itypes=[T.dmatrix], otypes=[T.TensorType("float64", (True, False))])(lambda m: m * 1)
    with pytest.raises(TypeError, match=r"axis 0 is broadcastable \(its length must be 1\)"):
        run(backend, [x], row(x) + 1)(X54)
    np.testing.assert_array_equal(run(backend, [x], row(x) + 1)(X54[:1]), X54[:1] + 1)


def test_no_grad_says_to_define_one():
    x = T.dmatrix("x")
    with pytest.raises(TypeError, match=r"FromFunctionOp\{numpy_dot\} has no gradient.*define grad\(self, inputs, "
                                         r"output_grads\).*built at .*test_python_ops.py"):
        theano.grad(numpy_dot(x, x).sum(), x)
    with pytest.raises(TypeError, match=r"DoubleOp2 has no gradient.*define grad"):
        theano.grad(DoubleOp2()(x).sum(), x)


def test_make_node_mistakes_are_named():
    class ReturnsList(theano.Op):
        def make_node(self, x):
            return [x]

        def perform(self, node, inputs, output_storage):
            pass

    with pytest.raises(TypeError, match=r"ReturnsList.make_node must return Apply\(self, inputs, outputs\)"):
        ReturnsList()(T.dvector())
    with pytest.raises(TypeError, match=r"FromFunctionOp\{numpy_dot\}: input 0 must be TensorType\(float64, matrix\)"):
        numpy_dot(T.fmatrix(), T.dmatrix())
    with pytest.raises(TypeError, match=r"takes 2 input\(s\)"):
        numpy_dot(T.dmatrix())


# ---------------------------------------------------------------------------------------------------
# in updates, loops and branches


def test_updates_through_a_python_op(backend):
    w = theano.shared(np.ones(3), name="w")
    x = T.dvector("x")
    step = run(backend, [x], (w * x).sum(), updates=[(w, DoubleOp()(w) + x)])
    assert step(np.array([1.0, 2.0, 3.0])) == 6.0  # the outputs see the old value
    np.testing.assert_array_equal(w.get_value(), [3.0, 4.0, 5.0])
    assert step(np.zeros(3)) == 0.0
    np.testing.assert_array_equal(w.get_value(), [6.0, 8.0, 10.0])


def test_inside_scan_values_gradients_and_errors(backend):
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    hs, _ = theano.scan(lambda x_t, h: T.tanh(DoubleOp()(h) * 0.5 + Scale(2, 0)(x_t)), sequences=x, outputs_info=h0)
    h, expected = np.linspace(-1, 1, 4), []
    for row in X54:
        h = np.tanh(h + 2 * row)
        expected.append(h)
    np.testing.assert_allclose(run(backend, [x, h0], hs)(X54, np.linspace(-1, 1, 4)), expected, rtol=1e-12)
    theano.verify_grad(lambda xs, first: theano.scan(
        lambda x_t, h: T.tanh(DoubleOp()(h) * 0.5 + Scale(2, 0)(x_t)), sequences=xs, outputs_info=first)[0],
        [X54, np.linspace(-1, 1, 4)], rng=np.random.default_rng(2), backend=backend)
    ys, _ = theano.scan(lambda x_t: Misbehaving("raise")(x_t) * 2, sequences=x)
    f = run(backend, [x], ys)
    with pytest.raises(Boom, match=r"Scan.*at step 2: Misbehaving\{how='raise'\} \(built at .*too big: 5"):
        f(np.array([[0.0], [1.0], [5.0]]))
    np.testing.assert_array_equal(f(np.array([[0.0], [1.0]])), [[2.0], [4.0]])


def test_only_the_branch_taken_runs_its_python_op(backend):
    x, c = T.dvector("x"), T.lscalar("c")
    then_op, else_op = Counted(2.0), Counted(-1.0)
    f = run(backend, [c, x], ifelse(c, then_op(x) + 1, else_op(x) * 3))
    np.testing.assert_array_equal(f(1, np.ones(3)), np.full(3, 3.0))
    np.testing.assert_array_equal(f(0, np.ones(3)), np.full(3, -3.0))
    np.testing.assert_array_equal(f(1, np.zeros(2)), np.ones(2))
    assert (then_op.calls, else_op.calls) == (2, 1)


def test_a_function_with_an_as_op_pickles(backend):
    a, b = T.dmatrices("a", "b")
    f = run(backend, [a, b], numpy_dot(a, b) + 1)
    assert pickle.loads(pickle.dumps(numpy_dot)) is numpy_dot
    np.testing.assert_allclose(pickle.loads(pickle.dumps(f))(A34, B42), A34 @ B42 + 1, rtol=1e-12)
