"""Theano's tutorial, "Derivatives in Theano": grad, the logistic's derivative, jacobian and hessian
(by hand with scan, and theano.gradient's), Rop and Lop."""
import numpy
import theano
import theano.tensor as T
from theano import pp

x = T.dscalar("x")
y = x ** 2
gy = T.grad(y, x)
assert "x" in pp(gy)
f = theano.function([x], gy)
assert f(4) == 8.0 and numpy.allclose(f(94.2), 188.4)

x = T.dmatrix("x")
s = T.sum(1 / (1 + T.exp(-x)))
dlogistic = theano.function([x], T.grad(s, x))
assert numpy.allclose(dlogistic([[0, 1], [-1, -2]]), [[0.25, 0.19661193], [0.19661193, 0.10499359]])

x = T.dvector("x")
y = x ** 2
J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]), non_sequences=[y, x])
f = theano.function([x], J, updates=updates)
assert numpy.array_equal(f([4, 4]), [[8, 0], [0, 8]])
assert numpy.array_equal(theano.function([x], theano.gradient.jacobian(y, x))([4, 4]), [[8, 0], [0, 8]])

x = T.dvector("x")
y = x ** 2
cost = y.sum()
gy = T.grad(cost, x)
H, updates = theano.scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]), non_sequences=[gy, x])
f = theano.function([x], H, updates=updates)
assert numpy.array_equal(f([4, 4]), [[2, 0], [0, 2]])
assert numpy.array_equal(theano.function([x], theano.gradient.hessian(cost, x))([4, 4]), [[2, 0], [0, 2]])

W = T.dmatrix("W")
V = T.dmatrix("V")
x = T.dvector("x")
y = T.dot(x, W)
JV = T.Rop(y, W, V)
f = theano.function([W, V, x], JV)
assert numpy.array_equal(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2, 2])
v = T.dvector("v")
VJ = T.Lop(y, W, v)
f = theano.function([v, x], VJ)
assert numpy.array_equal(f([2, 2], [0, 1]), [[0, 0], [2, 2]])

x = T.dvector("x")
v = T.dvector("v")
y = T.sum(x ** 2)
gy = T.grad(y, x)
vH = T.grad(T.sum(gy * v), x)
f = theano.function([x, v], vH)
assert numpy.array_equal(f([4, 4], [2, 2]), [4, 4])
print("ok")
