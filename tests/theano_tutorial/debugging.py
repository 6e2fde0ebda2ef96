"""Theano's tutorial, "Debugging Theano": test values catch a shape error at the line that builds it."""
import numpy
import theano
import theano.tensor as T

theano.config.compute_test_value = "raise"
x = T.matrix("x")
x.tag.test_value = numpy.random.rand(5, 10).astype(theano.config.floatX)
W1 = theano.shared(numpy.random.rand(10, 20).astype(theano.config.floatX), "W1")
b1 = theano.shared(numpy.zeros(20, dtype=theano.config.floatX), "b1")
W2 = theano.shared(numpy.random.rand(15, 10).astype(theano.config.floatX), "W2")  # wrong on purpose
h1 = T.tanh(T.dot(x, W1) + b1)
assert h1.tag.test_value.shape == (5, 20)
try:
    h2 = T.dot(h1, W2)  # (5, 20) . (15, 10): the error is raised here, when the graph is built
except ValueError as error:
    message = str(error)
    assert "20" in message and "15" in message, message
else:
    raise AssertionError("the mismatched dot was not caught when it was built")
theano.config.compute_test_value = "off"
print("ok")
