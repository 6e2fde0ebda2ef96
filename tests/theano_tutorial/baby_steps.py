"""Theano's tutorial, "Baby Steps - Algebra": adding scalars, then matrices."""
import numpy
import theano.tensor as T
from theano import function, pp

x = T.dscalar("x")
y = T.dscalar("y")
z = x + y
f = function([x, y], z)
assert f(2, 3) == 5.0
assert numpy.allclose(f(16.3, 12.1), 28.4)
assert type(x) is T.TensorVariable and x.type == T.dscalar
assert str(x.type) == "TensorType(float64, scalar)"
assert pp(z) == "(x + y)"
assert numpy.allclose(z.eval({x: 16.3, y: 12.1}), 28.4)

x = T.dmatrix("x")
y = T.dmatrix("y")
z = x + y
f = function([x, y], z)
assert numpy.array_equal(f([[1, 2], [3, 4]], [[10, 20], [30, 40]]), [[11.0, 22.0], [33.0, 44.0]])
assert numpy.array_equal(f(numpy.array([[1, 2], [3, 4]]), numpy.array([[10, 20], [30, 40]])), [[11, 22], [33, 44]])

# exercise: a ** 2 + b ** 2 + 2 * a * b on vectors
a = T.vector()
b = T.vector()
out = a ** 2 + b ** 2 + 2 * a * b
f = function([a, b], out)
assert numpy.allclose(f([0, 1, 2], [1, 2, 3]), [1.0, 9.0, 25.0])
print("ok")
