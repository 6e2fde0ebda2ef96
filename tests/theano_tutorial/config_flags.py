"""THEANO_FLAGS as Theano programs set them (the test runs this with floatX=float32 and more)."""
import numpy
import theano
import theano.tensor as T

assert theano.config.floatX == "float32", theano.config.floatX
assert theano.config.device == "cpu"
x = T.matrix("x")
assert x.dtype == "float32"
theano.config.warn.round = False
f = theano.function([x], (x * 2).sum())
assert f(numpy.ones((2, 2), "float32")).dtype == numpy.float32
print("ok")
