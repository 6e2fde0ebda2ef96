"""Theano's tutorial, "Loop": scan computing A ** k, a polynomial, a running sum, and an RNN step."""
import numpy
import theano
import theano.tensor as T

k = T.iscalar("k")
A = T.vector("A")
result, updates = theano.scan(fn=lambda prior_result, A: prior_result * A, outputs_info=T.ones_like(A),
                              non_sequences=A, n_steps=k)
final_result = result[-1]
power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
assert numpy.allclose(power(numpy.arange(10, dtype=theano.config.floatX), 2), numpy.arange(10) ** 2)

coefficients = T.vector("coefficients")
x = T.scalar("x")
max_coefficients_supported = 10000
components, updates = theano.scan(fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
                                  outputs_info=None,
                                  sequences=[coefficients, T.arange(max_coefficients_supported)],
                                  non_sequences=x)
polynomial = components.sum()
calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
test_coefficients = numpy.asarray([1, 0, 2], dtype=theano.config.floatX)
assert numpy.allclose(calculate_polynomial(test_coefficients, 3), 19.0)

up_to = T.iscalar("up_to")
seq = T.arange(up_to)
outputs_info = T.as_tensor_variable(numpy.asarray(0, seq.dtype))
scan_result, scan_updates = theano.scan(fn=lambda v, s: s + v, outputs_info=outputs_info, sequences=seq)
triangular_sequence = theano.function(inputs=[up_to], outputs=scan_result)
assert numpy.array_equal(triangular_sequence(15), numpy.cumsum(numpy.arange(15)))

X = T.matrix("X")
W = T.matrix("W")
b_sym = T.vector("b_sym")
results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
x = numpy.eye(2, dtype=theano.config.floatX)
w = numpy.ones((2, 2), dtype=theano.config.floatX)
b = numpy.ones((2), dtype=theano.config.floatX)
b[1] = 2
assert numpy.allclose(compute_elementwise(x, w, b), numpy.tanh(x.dot(w) + b), atol=1e-6)
print("ok")
