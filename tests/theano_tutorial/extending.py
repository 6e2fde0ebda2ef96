"""Theano's tutorial, "Creating a new Op: Python implementation": DoubleOp with grad and infer_shape,
and as_op."""
import numpy
import theano
import theano.tensor as T
from theano.compile.ops import as_op


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


x = T.matrix()
f = theano.function([x], DoubleOp()(x))
inp = numpy.random.rand(5, 4).astype(theano.config.floatX)
assert numpy.allclose(inp * 2, f(inp))
g = theano.function([x], theano.grad(DoubleOp()(x).sum(), x))
assert numpy.allclose(g(inp), 2)
theano.gradient.verify_grad(DoubleOp(), [numpy.random.rand(5, 7)], rng=numpy.random.RandomState(0))


def infer_shape_numpy_dot(node, input_shapes):
    ashp, bshp = input_shapes
    return [ashp[:-1] + bshp[-1:]]


@as_op(itypes=[T.fmatrix, T.fmatrix], otypes=[T.fmatrix], infer_shape=infer_shape_numpy_dot)
def numpy_dot(a, b):
    return numpy.dot(a, b)


a, b = T.fmatrices("a", "b")
f = theano.function([a, b], T.tanh(numpy_dot(a, b)) + 1)
u, v = numpy.random.rand(3, 4).astype("float32"), numpy.random.rand(4, 2).astype("float32")
assert numpy.allclose(f(u, v), numpy.tanh(u.dot(v)) + 1, atol=1e-6)
print("ok")
