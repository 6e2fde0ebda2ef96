"""Theano's tutorial, "Conditions": ifelse (lazy) against switch (both branches computed)."""
import numpy
import theano
import theano.tensor as T
from theano.ifelse import ifelse

a, b = T.scalars("a", "b")
x, y = T.matrices("x", "y")
z_switch = T.switch(T.lt(a, b), T.mean(x), T.mean(y))
z_lazy = ifelse(T.lt(a, b), T.mean(x), T.mean(y))
f_switch = theano.function([a, b, x, y], z_switch)
f_lazyifelse = theano.function([a, b, x, y], z_lazy)
val1, val2 = 0.0, 1.0
big_mat1 = numpy.ones((100, 100), dtype=theano.config.floatX)
big_mat2 = numpy.zeros((100, 100), dtype=theano.config.floatX)
assert f_switch(val1, val2, big_mat1, big_mat2) == 1.0
assert f_lazyifelse(val1, val2, big_mat1, big_mat2) == 1.0
assert f_lazyifelse(val2, val1, big_mat1, big_mat2) == 0.0
# lazy: the branch not taken is not computed, so its bad shapes do not matter
bad = ifelse(T.lt(a, b), T.mean(x), T.mean(T.dot(x, y)))
mismatched = numpy.ones((2, 3), dtype=theano.config.floatX)
assert theano.function([a, b, x, y], bad)(0.0, 1.0, mismatched, mismatched) == 1.0
print("ok")
